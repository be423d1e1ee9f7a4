"""Build the student edition: what a class installs, holding every helper and no answer.

    python scripts/student.py [--release a1_gans,a4_rendering] [--out dist/student]

writes into ``--out``:

* ``dl_course_student-<version>-py3-none-any.whl`` -- ``course_lib`` with the graded references withheld: each
  module that holds references of an assignment not named in ``--release`` is replaced by stubs with the same
  signatures and docstrings that raise ``NotImplementedError`` saying the function is withheld (the notebooks'
  experiments then require the student's own function, see ``course_lib.manifest.resolve``); the loop versions,
  the source generator and the benchmark are left out; the synthetic NeRF scenes the notebooks use are generated
  here and shipped inside (their renderer needs references);
* ``assignments/<name>/<name>.ipynb`` -- the release notebooks;
* ``README.md`` -- install, open, self-check, submit.

The wheel is then leak-scanned (scripts/leakscan.py) and the build fails on any finding. ``--release`` names
assignments whose references the instructor hands out (later notebooks build on earlier ones).
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

from course_lib.atomic import atomic_path, write_text_atomic
from course_lib.manifest import GRADED, assignment_names
from course_lib.sourcegen import stub_source

ROOT = Path(__file__).resolve().parents[1]
DIST_NAME = "dl_course_student"
INSTRUCTOR_ONLY = ("naive", "bench.py", "sourcegen.py", "nerf/bench.py")   # relative to course_lib/
# The synthetic scenes the notebooks ask for (nerf_scene keyword arguments), default and smoke settings.
PACKAGED_SCENES = ({"size": 64}, {"size": 16})
REQUIRES = ["torch>=2.4", "numpy>=1.24", "matplotlib>=3.7", "imageio>=2.30", "pillow>=9.0", "tqdm>=4.60",
            "nbformat>=5.9"]
EXTRAS = {"jupyter": ["jupyterlab>=4.1", "ipykernel>=6.25", "ipywidgets>=8.0"]}

__all__ = ["answer_modules", "stub_module", "stage", "build_wheel", "main"]


def answer_modules(released: set[str]) -> dict[str, list[str]]:
    """course_lib module -> the graded functions it holds, for every module whose references are withheld.

    Raises:
        ValueError: when a module holds references of a released and of a withheld assignment.
    """
    modules: dict[str, list[str]] = {}
    for g in GRADED:
        modules.setdefault(g.module, []).append(g.name)
    out = {}
    for module, names in modules.items():
        assignments = {g.assignment for g in GRADED if g.name in names}
        if assignments <= released:
            continue
        if assignments & released:
            raise ValueError(f"course_lib.{module} holds references of {sorted(assignments)}: release all or none")
        out[module] = names
    return out


def stub_module(module: str, names: list[str]) -> str:
    """The student edition's ``course_lib.<module>``: the graded functions as withheld stubs."""
    assignment = next(g.assignment for g in GRADED if g.name == names[0])
    parts = [f'"""course_lib.{module} in the student edition: the graded functions of {assignment} are withheld.\n\n'
             f"You write them in your {assignment} notebook; pass your functions to the experiments that need "
             'them.\n"""',
             "from __future__ import annotations", f"__all__ = {names!r}"]
    for name in names:
        message = (f"{name} is withheld from the student edition of course_lib: you write it in your {assignment} "
                   f"notebook (and pass it, e.g. {name}={name}, to the experiments that use it)")
        parts.append(stub_source(name, message) + f"\n\n\n{name}.__withheld__ = True")
    return "\n\n\n".join(parts) + "\n"


def _package_scenes(dest: Path) -> list[dict]:
    """Generate the packaged scenes with this (instructor) edition's renderer; returns their index."""
    from course_lib.data.analytic_scene import VERSION, nerf_scene
    from course_lib.data.cache import cache_path, packaged_path

    index = []
    for kwargs in PACKAGED_SCENES:
        nerf_scene(**kwargs)                               # generates (or reads) the cache file
        params = {"n_views": 100, "size": 100, "seed": 0, "n_holdout": 6, "beta": 0.01, **kwargs}
        params["beta"] = float(params["beta"])
        src = cache_path("nerf_scene", VERSION, params)
        name = packaged_path("nerf_scene", VERSION, params).name
        shutil.copy(src, dest / name)
        index.append({"file": name, "params": params})
    return index


def stage(released: set[str], dest: Path) -> Path:
    """The student edition's ``course_lib`` tree under ``dest`` (which is emptied first)."""
    if dest.exists():
        shutil.rmtree(dest)
    src = ROOT / "course_lib"

    def ignore(folder, names):
        rel = Path(folder).relative_to(src)
        return [n for n in names if n in ("__pycache__", "packaged") or n.endswith(".pyc")
                or (rel / n).as_posix() in INSTRUCTOR_ONLY]

    shutil.copytree(src, dest / "course_lib", ignore=ignore)
    for module, names in answer_modules(released).items():
        (dest / "course_lib" / (module.replace(".", "/") + ".py")).write_text(stub_module(module, names), encoding="utf-8")
    packaged = dest / "course_lib" / "data" / "packaged"
    packaged.mkdir(parents=True)
    (packaged / "index.json").write_text(json.dumps(_package_scenes(packaged), indent=1) + "\n", encoding="utf-8")
    (dest / "course_lib" / "edition.json").write_text(
        json.dumps({"edition": "student", "released": sorted(released)}, indent=1) + "\n", encoding="utf-8")
    return dest


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(tree: Path, out: Path, version: str) -> Path:
    """A pure-Python wheel of ``tree/course_lib`` (deterministic: sorted entries, fixed timestamps)."""
    dist_info = f"{DIST_NAME}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {DIST_NAME.replace('_', '-')}", f"Version: {version}",
                "Summary: Course package (student edition): helpers, data sets, experiments and the self-check "
                "for the GAN / self-supervised / contrastive / neural rendering assignments",
                "Requires-Python: >=3.10"]
    metadata += [f"Requires-Dist: {r}" for r in REQUIRES]
    for extra, reqs in EXTRAS.items():
        metadata.append(f"Provides-Extra: {extra}")
        metadata += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    files = {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted((tree / "course_lib").rglob("*"))
             if p.is_file()}
    files[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: scripts/student.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/top_level.txt"] = b"course_lib\n"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    files[f"{dist_info}/RECORD"] = record.getvalue().encode()
    wheel = out / f"{DIST_NAME}-{version}-py3-none-any.whl"
    with atomic_path(wheel) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
    return wheel


STUDENT_README = """# {title}: student edition

## Install (once)

```bash
python -m venv course-env && source course-env/bin/activate     # any Python >= 3.10
pip install "{wheel}[jupyter]"                                   # course_lib, its helpers and JupyterLab
```

(The wheel names `torch` as a dependency: on a machine with an NVIDIA GPU, install the CUDA build of torch first,
as https://pytorch.org describes, and pip keeps it.)

## Open an assignment

```bash
jupyter lab assignments/a1_gans/a1_gans.ipynb
```

## Check your work as you go

After each function you write, the next cell runs `check("<function>", <function>)`: a few public cases, one
PASS/FAIL line each, with what was expected and what you returned. The grade comes from many more hidden cases, run
by the course's autograder on the notebook you submit. `course_lib` does not contain the graded functions (they
raise `NotImplementedError` saying they are withheld): you write them in the notebook.

## Submit

Submit the notebook file itself (`<assignment>.ipynb`), saved, with your functions in their cells (use your course's
submission system: Gradescope, nbgrader's Assignment List, or as your instructor says). Files the notebook writes go
to `outputs/` beside it; they are not graded.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="", help="comma-separated assignments whose references to include")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "student", help="output folder")
    args = parser.parse_args(argv)
    released = {a.strip() for a in args.release.split(",") if a.strip()}
    unknown = sorted(released - set(assignment_names()))
    if unknown:
        parser.error(f"--release: unknown assignment(s) {unknown}; known: {', '.join(assignment_names())}")
    import course_lib
    from leakscan import scan_wheel

    try:
        tree = stage(released, ROOT / "build" / "student")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob(f"{DIST_NAME}-*.whl"):
        old.unlink()
    wheel = build_wheel(tree, args.out, course_lib.__version__)
    findings = scan_wheel(wheel)
    if findings:
        wheel.unlink()
        print("error: the student edition would leak answers:\n  " + "\n  ".join(findings), file=sys.stderr)
        return 1
    for name in assignment_names():
        src = ROOT / "assignments" / name / f"{name}.ipynb"
        if src.is_file():
            dest = args.out / "assignments" / name / f"{name}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
    write_text_atomic(args.out / "README.md", STUDENT_README.format(title="Deep-learning course", wheel=wheel.name))
    size = wheel.stat().st_size
    withheld = sorted(set(assignment_names()) - released)
    print(f"student edition: {wheel.relative_to(ROOT) if wheel.is_relative_to(ROOT) else wheel} ({size / 1e6:.2f} MB); "
          f"references withheld for {', '.join(withheld) or 'no assignment'}"
          + (f", released for {', '.join(sorted(released))}" if released else ""))
    print(f"leak scan: no answer found in {wheel.name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
