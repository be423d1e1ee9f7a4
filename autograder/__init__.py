"""autograder: grade a submitted notebook out of process against the reference implementations in course_lib.

The grader extracts the graded functions from the notebook without running it (notebook.py), runs them in
isolated worker processes (sandbox.py, worker/) on cases generated and scored in
the grader's own process (registry/, grading.py), and writes a Gradescope results.json (results.py).
Command line: ``python -m autograder grade|batch|gradescope|verify|bench`` (cli.py).

This package file stays import-light on purpose: the worker's fork-server imports ``autograder.worker``,
which must not pull in course_lib or the hidden checks.
"""
from __future__ import annotations

__version__ = "1.0.0"

__all__ = ["__version__", "grade_notebook", "sources_digest"]


def sources_digest() -> str:
    """sha256 of the grader's sources (hidden_tests/ aside) and course_lib's, read as files without importing
    course_lib or the checks (the nbgrader bridge calls this inside the student's kernel)."""
    import hashlib
    import importlib.util
    from pathlib import Path

    roots = [Path(__file__).resolve().parent]
    spec = importlib.util.find_spec("course_lib")
    roots += [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "hidden_tests" not in path.parts:
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()


def grade_notebook(*args, **kwargs):
    """Grade one notebook; see :func:`autograder.grading.grade_notebook`."""
    from .grading import grade_notebook as _grade

    return _grade(*args, **kwargs)
