"""Bridge for the notebooks' hidden nbgrader test cells: the cell's last expression gives nbgrader the points.

A hidden test cell in a solution notebook reads::

    from autograder.nbgrader_cell import points
    points("nt_xent_loss", "a3_contrastive", 10)

Inside the kernel that ``nbgrader autograde`` runs, :func:`points` grades the notebook file being autograded
(nbgrader copies the submission into the kernel's working folder; pass ``notebook=`` to name it) with the same
out-of-process grader as ``python -m autograder grade``, caches the results per notebook hash in a private
folder of the temporary folder (one grading run serves every cell; a cache folder that another user could have
prepared is never read), prints the function's feedback to stdout and returns its points as a plain float. It
writes nothing to stderr: nbgrader gives 0 to a cell with any stderr output.

nbgrader reads partial credit from a float result (``nbgrader.utils.determine_grade``); this module never runs
student code itself and never imports the hidden checks into the kernel.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from . import sources_digest

__all__ = ["points", "find_notebook", "cached_results"]

_PKG_PARENT = str(Path(__file__).resolve().parent.parent)


def find_notebook(assignment: str, folder: str | Path | None = None) -> Path:
    """The submitted notebook in ``folder`` (default: the kernel's working folder).

    Raises:
        FileNotFoundError: when there is no notebook or several and none is named ``<assignment>.ipynb``.
    """
    folder = Path(folder or os.getcwd())
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if len(found) == 1:
        return found[0]
    named = folder / f"{assignment}.ipynb"
    if named.is_file():
        return named
    raise FileNotFoundError(f"cannot tell which notebook to grade in {folder} ({len(found)} .ipynb files); "
                            "pass notebook=PATH")


_PRIVATE: list[Path] = []                  # a fallback folder, made once per kernel


def _is_private(path: Path) -> bool:
    """A real folder (not a link) owned by this user that nobody else may enter or write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _cache_dir() -> Path:
    """The results cache: ``autograder-nbgrader-<uid>`` in the temporary folder when this user made it private;
    a name anyone could have created first (owned by someone else, open to others, a symbolic link) is never
    trusted, and a private folder of this kernel's own is used instead (no sharing between kernels then)."""
    path = Path(tempfile.gettempdir()) / f"autograder-nbgrader-{os.getuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return _fallback_dir()
    return path if _is_private(path) else _fallback_dir()


def _fallback_dir() -> Path:
    if not _PRIVATE or not _is_private(_PRIVATE[0]):
        _PRIVATE[:] = [Path(tempfile.mkdtemp(prefix="autograder-nbgrader-"))]
    return _PRIVATE[0]


def cached_results(notebook: str | Path, assignment: str, timeout: float = 900.0) -> dict:
    """results.json of ``notebook`` (graded once per notebook content and assignment, then cached)."""
    notebook = Path(notebook).resolve()
    data = notebook.read_bytes()
    key = hashlib.sha256(data + b"\0" + assignment.encode() + b"\0" + os.environ.get("AUTOGRADER_SALT", "").encode()
                         + b"\0" + sources_digest().encode())
    folder = _cache_dir()
    entry = folder / f"{key.hexdigest()[:32]}.json"
    if entry.is_file():
        try:
            return json.loads(entry.read_text())
        except ValueError:
            pass
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=folder)
    os.close(fd)
    env = dict(os.environ)
    env["PYTHONPATH"] = _PKG_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    try:
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--assignment", assignment,
                               "--out", tmp, "--quiet"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=timeout, cwd=_PKG_PARENT)
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"the autograder failed (exit {proc.returncode}): {message[-1] if message else ''}")
        results = json.loads(Path(tmp).read_text())
        os.replace(tmp, entry)
        return results
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def points(function_name: str, assignment: str, max_points: float, notebook: str | Path | None = None,
           verbose: bool = True) -> float:
    """Points for ``function_name`` out of ``max_points`` (scaled from the grader's score), as a float."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(notebook) if notebook else find_notebook(assignment)
        results = cached_results(path, assignment)
        test = next((t for t in results.get("tests", []) if t.get("extra_data", {}).get("function") == function_name), None)
        if test is None:
            raise KeyError(f"{function_name} is not graded in {assignment}")
        if verbose:
            print(test.get("output", ""))
        fraction = float(test["score"]) / float(test["max_score"]) if test["max_score"] else 0.0
        return float(min(float(max_points), round(fraction * float(max_points), 4)))
