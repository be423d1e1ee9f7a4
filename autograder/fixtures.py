"""Fixture notebooks built from the course_lib reference sources (for tests, ``bench`` and ``verify``).

* :func:`perfect_notebook` - every graded function of an assignment as the reference wrote it, made
  self-contained: the package-relative imports are dropped and the argument-check helpers it calls
  (``course_lib._validate``, module-level helpers and constants) are copied into a helper cell.
* :func:`release_notebook` - the untouched student release: the same signatures and docstrings with bodies
  ``raise NotImplementedError()``.

Both have the layout of the real assignment notebooks: markdown, an imports cell, one solution cell per
function with nbgrader metadata (``grade_id``, ``solution: true``, ``schema_version: 3``), a self-check call
after each scaffold, an autograded test cell, and top-level experiment code that the grader must never run.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
import types
from pathlib import Path

import nbformat

import course_lib

__all__ = ["perfect_source", "scaffold_source", "make_notebook", "perfect_notebook", "release_notebook",
           "write_notebook", "IMPORTS"]

IMPORTS = (
    "import math\nimport numbers\nfrom typing import Callable, Sequence\n\n"
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F"
)


def _helpers(fn: types.FunctionType, seen: dict[str, str]) -> None:
    """Sources of the course_lib functions and constants ``fn`` reads from its module (recursively)."""
    fn = inspect.unwrap(fn)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for name in sorted(names):
        if name in seen or name not in fn.__globals__:
            continue
        obj = fn.__globals__[name]
        if isinstance(obj, types.FunctionType) and obj.__module__.startswith("course_lib") and obj is not fn:
            seen[name] = ""                                   # reserve the slot (recursion)
            _helpers(obj, seen)
            seen[name] = textwrap.dedent(inspect.getsource(obj))
        elif isinstance(obj, (int, float, str, tuple)) and not isinstance(obj, bool):
            seen[name] = f"{name} = {obj!r}\n"


def perfect_source(name: str) -> tuple[str, str]:
    """(helper code, function code) for graded function ``name``, self-contained."""
    fn = getattr(course_lib, name)
    helpers: dict[str, str] = {}
    _helpers(fn, helpers)
    return "\n\n".join(h for h in helpers.values() if h), textwrap.dedent(inspect.getsource(fn))


def scaffold_source(name: str) -> str:
    """The release scaffold: signature and docstring of the reference, body ``raise NotImplementedError()``."""
    fn = getattr(course_lib, name)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = tree.body[0]
    doc = ast.get_docstring(node, clean=False)
    node.decorator_list = []
    node.body = ([ast.Expr(ast.Constant(doc))] if doc else []) + [
        ast.Raise(exc=ast.Call(ast.Name("NotImplementedError", ast.Load()), [], []), cause=None)]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


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
    for name in course_lib.GRADED_FUNCTIONS[assignment]:
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
    helpers, bodies = {}, {}
    for name in course_lib.GRADED_FUNCTIONS[assignment]:
        h, body = perfect_source(name)
        helpers[name] = h
        bodies[name] = body
    seen, parts = set(), []
    for h in helpers.values():
        for block in h.split("\n\n\n") if h else []:
            if block.strip() and block not in seen:
                seen.add(block)
                parts.append(block)
    return make_notebook(assignment, bodies, helpers="\n\n\n".join(parts), **kwargs)


def release_notebook(assignment: str, **kwargs) -> nbformat.NotebookNode:
    bodies = {name: scaffold_source(name) for name in course_lib.GRADED_FUNCTIONS[assignment]}
    return make_notebook(assignment, bodies, **kwargs)


def write_notebook(nb: nbformat.NotebookNode, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
