"""Build a Gradescope autograder zip: setup.sh and run_autograder at the root, the package sources in source/.

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/) runs ``setup.sh`` once on its
Ubuntu image to build the grading image, then ``run_autograder`` per submission, which must leave
``/autograder/results/results.json``. Our run_autograder grades ``/autograder/submission/*.ipynb`` (the one
named ``<assignment>.ipynb`` when there are several); the folders and the interpreter can be redirected with
``AUTOGRADER_SUBMISSION_DIR``, ``AUTOGRADER_RESULTS_DIR``, ``AUTOGRADER_SOURCE_DIR`` and ``AUTOGRADER_PYTHON``
(the tests run it that way, against a temporary folder).

The secret salt of the run seeds (``AUTOGRADER_SALT``; without it a student who knows the grader could
reproduce the hidden inputs) reaches Gradescope in one of two ways: ``python -m autograder gradescope --salt-file
PATH`` stores it in the zip as ``source/autograder_salt.txt`` (the zip is uploaded by staff and the file lies in
/autograder/source, which workers cannot see), or an ``AUTOGRADER_SALT`` environment variable set for the
autograder on Gradescope, which wins over the file.
"""
from __future__ import annotations

import os
import stat
import tempfile
import time
import zipfile
from pathlib import Path

__all__ = ["build_zip", "SETUP_SH", "RUN_AUTOGRADER"]

ROOT = Path(__file__).resolve().parent.parent

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image set-up: Python, a CPU build of torch, then this package (course_lib + autograder).
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
export PIP_BREAK_SYSTEM_PACKAGES=1          # Ubuntu 24.04 images mark the system Python as externally managed
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv util-linux
python3 -m pip install --upgrade pip
python3 -m pip install --index-url https://download.pytorch.org/whl/cpu torch
python3 -m pip install /autograder/source
python3 -c "import torch, course_lib, autograder; print('torch', torch.__version__)"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope entry point: grade the submitted notebook for {assignment} into results/results.json.
set -uo pipefail
ASSIGNMENT="{assignment}"
SUBMISSION_DIR="${{AUTOGRADER_SUBMISSION_DIR:-/autograder/submission}}"
RESULTS_DIR="${{AUTOGRADER_RESULTS_DIR:-/autograder/results}}"
SOURCE_DIR="${{AUTOGRADER_SOURCE_DIR:-/autograder/source}}"
PYTHON="${{AUTOGRADER_PYTHON:-python3}}"
mkdir -p "$RESULTS_DIR"
if [ -f "$SOURCE_DIR/autograder_salt.txt" ] && [ -z "${{AUTOGRADER_SALT:-}}" ]; then
  AUTOGRADER_SALT="$(cat "$SOURCE_DIR/autograder_salt.txt")"
  export AUTOGRADER_SALT
fi
shopt -s nullglob
notebooks=("$SUBMISSION_DIR"/*.ipynb)
if [ "${{#notebooks[@]}}" -eq 0 ]; then
  "$PYTHON" - "$RESULTS_DIR/results.json" <<'EOF'
import json, sys
json.dump({{"score": 0.0, "output": "No .ipynb file was submitted: upload your notebook.", "tests": []}},
          open(sys.argv[1], "w"))
EOF
  exit 0
fi
notebook="${{notebooks[0]}}"
if [ -f "$SUBMISSION_DIR/$ASSIGNMENT.ipynb" ]; then
  notebook="$SUBMISSION_DIR/$ASSIGNMENT.ipynb"
fi
cd "$SOURCE_DIR"
export PYTHONPATH="$SOURCE_DIR${{PYTHONPATH:+:$PYTHONPATH}}"
"$PYTHON" -m autograder grade "$notebook" --assignment "$ASSIGNMENT" --out "$RESULTS_DIR/results.json"
"""

_SOURCES = ("course_lib", "autograder")
_TOP_FILES = ("pyproject.toml", "README.md")


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_zip(assignment: str, out: str | Path, salt: str | None = None) -> Path:
    """Write the autograder zip for ``assignment`` (atomically) and return its path.

    Raises:
        ValueError: for an unknown assignment.
    """
    from .registry import REGISTRY

    if assignment not in REGISTRY:
        raise ValueError(f"unknown assignment {assignment!r}; choose one of {', '.join(REGISTRY)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            _add(zf, "setup.sh", SETUP_SH.encode(), executable=True)
            _add(zf, "run_autograder", RUN_AUTOGRADER.format(assignment=assignment).encode(), executable=True)
            for name in _TOP_FILES:
                path = ROOT / name
                if path.is_file():
                    _add(zf, f"source/{name}", path.read_bytes())
            for package in _SOURCES:
                for path in sorted((ROOT / package).rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".ipynb"):
                        _add(zf, f"source/{path.relative_to(ROOT)}", path.read_bytes())
            if salt:
                _add(zf, "source/autograder_salt.txt", salt.encode())
            _add(zf, "source/ASSIGNMENT", f"{assignment}\nbuilt {time.strftime('%Y-%m-%d')}\n".encode())
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out
