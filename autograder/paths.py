"""Which folders a worker must not see, and which Python folders it needs (computed in the grader).

Hidden: the project checkout, the course_lib and autograder packages wherever they are installed, home folders,
the shared data folder, Gradescope's /autograder, the submission's and the output's folders, plus anything in
``AUTOGRADER_HIDE`` (os.pathsep-separated). Exposed: the interpreter's prefixes and the sys.path folders that
belong to a Python installation (the standard library, site-packages / dist-packages), never the current folder,
the script's folder or another PYTHONPATH entry (a grader started from the folder of submissions must not show
it to the workers). The namespace modes build a view of only the exposed and system folders (hidden folders
inside them covered again); Landlock allows reading only the exposed and system folders.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

__all__ = ["PKG_DIR", "default_hidden_paths", "python_paths", "contains"]

PKG_DIR = Path(__file__).resolve().parent


def default_hidden_paths(extra: tuple[str, ...] = ()) -> list[str]:
    """Folders the worker must not see: the project, the grader and reference packages, homes, shared data."""
    paths = {str(PKG_DIR), str(PKG_DIR.parent / "course_lib")}
    spec = importlib.util.find_spec("course_lib")          # located without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        paths.add(str(Path(location).resolve()))
    for entry in sys.path:                                  # every installed copy (e.g. site-packages on Gradescope)
        for package in ("course_lib", "autograder"):
            candidate = Path(entry or ".") / package
            if candidate.is_dir():
                paths.add(str(candidate.resolve()))
    root = PKG_DIR.parent
    if (root / "pyproject.toml").is_file() or (root / ".git").exists():
        paths.add(str(root))
    for p in ("/root", "/home", "/work/shared", "/autograder", os.path.expanduser("~")):
        paths.add(p)
    paths.update(extra)
    paths.update(p for p in os.environ.get("AUTOGRADER_HIDE", "").split(os.pathsep) if p)
    forbidden = {"/", "/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/dev", "/sys", "/tmp", "/var"}
    return sorted(os.path.realpath(p) for p in paths if os.path.realpath(p) not in forbidden and os.path.isabs(p))


def python_paths(hidden: list[str]) -> list[str]:
    """Folders of the Python installation the worker needs: the prefixes and the ``sys.path`` folders, minus the
    project checkout itself and anything inside it that is not part of a Python installation (e.g. tests/)."""
    root = str(PKG_DIR.parent)
    own = {root, str(PKG_DIR), os.path.join(root, "course_lib")}
    prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                os.path.dirname(os.path.realpath(sys.executable))]
    cands = [os.path.realpath(p) for p in prefixes] + [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)]
    out: list[str] = []
    for p in cands:
        if p in own or p in out:
            continue
        parts = p.split(os.sep)
        install = "site-packages" in parts or "dist-packages" in parts or p in map(os.path.realpath, prefixes) \
            or any(part.startswith("python3") for part in parts[-2:])
        if not install:
            continue
        out.append(p)
    return out


def contains(a: str, b: str) -> bool:
    a, b = os.path.normpath(a), os.path.normpath(b)
    return a == b or b.startswith(a.rstrip("/") + "/")
