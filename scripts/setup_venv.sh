#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment.
#
# Order matters: torch is installed FIRST and then pinned by a constraint file while the project and its
# extras are installed, so nothing can pull a second, multi-gigabyte CUDA build of torch behind our back.
#
# Which torch:
#   TORCH_SPEC=...           explicit pip requirement, e.g. TORCH_SPEC="torch==2.5.1" (wins over everything)
#   TORCH_INDEX_URL=...      extra index for that install, e.g. https://download.pytorch.org/whl/cu124
#   a torch already importable by $PYTHON (e.g. a cluster module or a conda env): the venv is created with
#                            --system-site-packages and that torch is kept as it is
#   nvidia-smi on PATH       PyPI's default Linux wheel, which is the CUDA build
#   otherwise (CPU only)     a local CPU wheel if pip can find one (torch==2.13.0 on the course machines),
#                            else the CPU-only wheel index of pytorch.org
#
# Usage: scripts/setup_venv.sh [VENV_DIR] [EXTRAS]        (defaults: .venv dev)
set -euo pipefail

VENV=${1:-.venv}
EXTRAS=${2:-dev}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
LOCAL_CPU_TORCH=${LOCAL_CPU_TORCH:-torch==2.13.0}

log() { printf '[setup] %s\n' "$*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  log "need Python >= 3.10 as \$PYTHON (got: $("$PYTHON" --version 2>&1 || echo "no $PYTHON"))"
  exit 1
fi

system_torch=""
if [ -z "${TORCH_SPEC:-}" ] && "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  system_torch=$("$PYTHON" -c 'import torch; print(torch.__version__)')
fi

if [ ! -x "$VENV/bin/python" ]; then
  if [ -n "$system_torch" ]; then
    log "keeping the pre-installed torch $system_torch (venv sees system site-packages)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

venv_torch() { "$VENV/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || true; }

if [ -z "$(venv_torch)" ]; then
  if [ -n "${TORCH_SPEC:-}" ]; then
    log "installing $TORCH_SPEC (TORCH_SPEC)"
    "${PIP[@]}" install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    log "nvidia-smi found: installing PyPI's CUDA build of torch"
    "${PIP[@]}" install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch
  else
    log "no GPU: installing a CPU build of torch"
    # A CPU wheel that pip finds without an index (find-links, a wheel cache) is installed as a file, with its
    # dependencies from the package index; otherwise pytorch.org's CPU-only index.
    wheel_dir=$(mktemp -d)
    if "${PIP[@]}" download --no-index --no-deps -q -d "$wheel_dir" "$LOCAL_CPU_TORCH" >/dev/null 2>&1; then
      "${PIP[@]}" install "$wheel_dir"/torch-*.whl
    else
      "${PIP[@]}" install --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" torch
    fi
    rm -rf "$wheel_dir"
  fi
fi

installed=$(venv_torch)
if [ -z "$installed" ]; then
  log "torch is still not importable from $VENV; see the messages above"
  exit 1
fi
# Keep exactly this torch while installing everything else.
constraint="$VENV/torch-constraint.txt"
echo "torch==${installed}" > "$constraint"
log "torch $installed; installing the project with extras [$EXTRAS]"
PIP_CONSTRAINT="$constraint" "${PIP[@]}" install -e "$HERE[$EXTRAS]"

# nbgrader shells out to alembic, and the notebooks need a kernel that runs this venv's python.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null 2>&1 || true
"$VENV/bin/python" - <<'EOF'
import torch, course_lib
print(f"[setup] ready: torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, "
      f"course_lib {course_lib.__version__}")
EOF
