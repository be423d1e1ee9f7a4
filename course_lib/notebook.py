"""Helpers for the assignment notebooks: optional warm-ups, an output folder, smoke-mode labels, earlier work.

* :func:`optional` -- ``with optional("rotate_batch_loop"):`` runs a cell that uses an *ungraded* warm-up and, if
  the warm-up is still ``raise NotImplementedError()``, prints one line and skips the rest of the cell instead of
  stopping "Run All" (graded functions are never optional: their cells stop the notebook with a clear message).
* :func:`output_path` -- where a notebook writes files (GIFs, figures): ``outputs/`` beside the notebook, one
  folder that the release build and the submission ignore.
* :func:`figure_title` -- a title that says "smoke mode" when the experiment ran at its tiny test settings.
* :func:`load_functions` -- functions you wrote in an earlier assignment's notebook, defined again here (a5 builds
  on a4): the notebook is read, never executed; only the definitions the named functions need are run.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
from pathlib import Path
from typing import Callable, Iterator

from .manifest import is_withheld, reference
from .utils import smoke_mode

__all__ = ["optional", "output_path", "figure_title", "load_functions", "OUTPUT_DIR"]

OUTPUT_DIR = "outputs"


@contextlib.contextmanager
def optional(name: str) -> Iterator[None]:
    """Skip the rest of the block (with a one-line note) when ungraded warm-up ``name`` is not written yet."""
    try:
        yield
    except NotImplementedError:
        print(f"{name} is not written yet (it is not graded): this cell is skipped. Write it above and run this "
              "cell again to see the comparison.")


def output_path(filename: str, folder: str | os.PathLike | None = None) -> Path:
    """``outputs/<filename>`` beside the notebook (the working folder), created on first use."""
    base = Path(folder) if folder is not None else Path.cwd() / OUTPUT_DIR
    base.mkdir(parents=True, exist_ok=True)
    return base / filename


def figure_title(text: str) -> str:
    """``text``, marked "(smoke mode: tiny settings, numbers not meaningful)" when ``COURSE_SMOKE=1``."""
    return f"{text} (smoke mode: tiny settings, numbers not meaningful)" if smoke_mode() else text


def _needed(tree: ast.Module, names: set[str]) -> list[ast.stmt]:
    """Top-level imports, definitions and constant assignments that ``names`` need (transitively)."""
    defs: dict[str, ast.stmt] = {}
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            keep.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node                          # the last definition wins, as when run in order
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue
            for t in node.targets:
                defs[t.id] = node
    chosen: dict[str, ast.stmt] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        node = defs.get(name)
        if node is None or name in chosen:
            continue
        chosen[name] = node
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    order = {id(node): i for i, node in enumerate(tree.body)}
    return keep + sorted({id(n): n for n in chosen.values()}.values(), key=lambda n: order[id(n)])


def load_functions(notebook: str | os.PathLike, names: list[str] | tuple[str, ...],
                   fallback_to_reference: bool = True) -> dict[str, Callable]:
    """Your definitions of ``names`` from an earlier notebook (read, not executed), as a name -> function dict.

    A name the notebook does not define, or defines only as the untouched scaffold, falls back to course_lib's
    reference when this edition contains it (the instructor edition; a student edition into which the instructor
    released that assignment's references) and ``fallback_to_reference`` is set.

    Raises:
        FileNotFoundError: when ``notebook`` does not exist and a name has no reference to fall back on.
        ValueError: when the notebook is not a readable notebook, or a name is neither defined nor available.
    """
    path = Path(notebook)
    found: dict[str, Callable] = {}
    scaffolds: set[str] = set()
    if path.is_file():
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable notebook ({exc})") from None
        source = "\n\n".join("".join(c.get("source", "")) if isinstance(c.get("source"), list) else c.get("source", "")
                             for c in cells if c.get("cell_type") == "code")
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]   # magics and shell
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
            for cell in cells:
                src = cell.get("source", "")
                src = "".join(src) if isinstance(src, list) else src
                try:
                    tree.body += ast.parse("\n".join(ln for ln in src.splitlines()
                                                     if not ln.lstrip().startswith(("%", "!")))).body
                except SyntaxError:
                    continue                                 # a cell that does not parse defines nothing
        scaffolds = _scaffolds(tree)
        namespace: dict = {}
        exec(compile(ast.Module(body=_needed(tree, set(names)), type_ignores=[]), str(path), "exec"), namespace)
        found = {n: namespace[n] for n in names if callable(namespace.get(n))}
    out: dict[str, Callable] = {}
    for name in names:
        fn = found.get(name)
        if fn is not None and name not in scaffolds:
            out[name] = fn
            continue
        ref = reference(name) if fallback_to_reference else None
        if ref is not None and not is_withheld(ref):
            out[name] = ref
            continue
        where = f"{path}" if path.is_file() else f"{path} (no such file)"
        raise ValueError(f"{name}: not defined (or still a scaffold) in {where}, and this edition of course_lib does "
                         "not contain its reference: finish it in that notebook, or pass the right path")
    return out


def _scaffolds(tree: ast.Module) -> set[str]:
    """Names whose last definition's body is still only ``raise NotImplementedError()`` (after a docstring)."""
    last: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            last[node.name] = node
    out = set()
    for name, node in last.items():
        body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) == 1 and isinstance(body[0], ast.Raise) and "NotImplementedError" in ast.unparse(body[0]):
            out.add(name)
    return out
