"""Fixture notebooks made from course_lib's references (for tests, ``bench`` and ``verify``).

* :func:`perfect_notebook` - every graded function of an assignment as the reference wrote it, made
  self-contained by course_lib.sourcegen (the helpers it reads become nested definitions);
* :func:`release_notebook` - the untouched student release: the same signatures and docstrings with bodies
  ``raise NotImplementedError()``;
* :func:`mistake_source` - a graded function written with one of the registry's known mistakes (the catalogue
  the judges use), as a student would hand it in.

The notebooks have the layout of the real assignment notebooks: markdown, an imports cell, one solution cell per
function with nbgrader metadata (``grade_id``, ``solution: true``, ``schema_version: 3``), a self-check call
after each scaffold, an autograded test cell, and top-level experiment code that the grader must never run.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from course_lib.manifest import functions, reference
from course_lib.sourcegen import header, indent, self_contained_body

__all__ = ["function_source", "perfect_source", "release_source", "mistake_source", "make_notebook",
           "perfect_notebook", "release_notebook", "write_notebook", "IMPORTS"]

IMPORTS = (
    "import math\nfrom typing import Callable, Sequence\n\n"
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F"
)


def function_source(name: str, body: str) -> str:
    """``def`` line and docstring of graded function ``name`` (as the reference wrote them), then ``body``."""
    return f"{header(reference(name))}\n{indent(body)}\n"


def perfect_source(name: str) -> str:
    return function_source(name, self_contained_body(reference(name)))


def release_source(name: str) -> str:
    return function_source(name, "raise NotImplementedError()")


def mistake_source(name: str, mistake: str) -> str:
    """Graded function ``name`` with the registry's known mistake ``mistake`` (see ``Mistake.body``)."""
    from .registry import SPECS

    spec = SPECS[name]
    found = next((m for m in spec.mistakes if m.name == mistake), None)
    if found is None:
        raise ValueError(f"{name} has no known mistake {mistake!r}; known: {[m.name for m in spec.mistakes]}")
    return function_source(name, found.body(spec.params))


def _meta(grade_id: str, solution: bool, grade: bool = False, points: float | None = None) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": not solution, "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def make_notebook(assignment: str, bodies: dict[str, str], helpers: str = "", test_cells: bool = True,
                  experiment_cells: bool = True) -> nbformat.NotebookNode:
    """An assignment-shaped notebook whose solution cells hold ``bodies[name]`` (code text)."""
    cells = [nbformat.v4.new_markdown_cell(f"# {assignment}\n\nImplement every function below; run the self-check "
                                           "after each one.", metadata=_meta("intro", False)),
             nbformat.v4.new_code_cell(IMPORTS + "\nfrom course_lib.checks import check", metadata=_meta("imports", False))]
    if helpers:
        cells.append(nbformat.v4.new_code_cell(helpers, metadata=_meta("helpers", False)))
    for name in functions(assignment):
        cells.append(nbformat.v4.new_markdown_cell(f"## `{name}`", metadata=_meta(f"{name}_intro", False)))
        cells.append(nbformat.v4.new_code_cell(bodies[name], metadata=_meta(f"{name}_solution", True)))
        cells.append(nbformat.v4.new_code_cell(f'check("{name}", {name})', metadata=_meta(f"{name}_selfcheck", False)))
        if test_cells:
            cells.append(nbformat.v4.new_code_cell(
                f"# hidden tests for {name} run here when grading\nassert callable({name})",
                metadata=_meta(f"{name}_tests", False, grade=True, points=10)))
    if experiment_cells:
        cells.append(nbformat.v4.new_code_cell(
            "%matplotlib inline\nlosses = []\nfor step in range(3):\n    losses.append(step ** 2)\nprint(losses)",
            metadata=_meta("experiment", False)))
    for i, cell in enumerate(cells):                      # stable ids: the same notebook has the same bytes
        cell["id"] = f"cell-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def perfect_notebook(assignment: str, **kwargs) -> nbformat.NotebookNode:
    return make_notebook(assignment, {name: perfect_source(name) for name in functions(assignment)}, **kwargs)


def release_notebook(assignment: str, **kwargs) -> nbformat.NotebookNode:
    return make_notebook(assignment, {name: release_source(name) for name in functions(assignment)}, **kwargs)


def write_notebook(nb: nbformat.NotebookNode, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
