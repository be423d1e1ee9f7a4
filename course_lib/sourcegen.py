"""Source code generated from the references: scaffolds, solutions, loop cells, stubs (instructor tooling).

A graded function exists once, as its reference in ``course_lib``; the notebook's scaffold, the solution inside
it, the loop cell, the autograder's perfect fixture, the known-mistake submissions and the student edition's
withheld stub are all *generated* from that source here, never copied by hand:

* :func:`header` -- the ``def`` line(s) and docstring exactly as written (the scaffold students see);
* :func:`self_contained_body` -- the reference's body made self-contained: the module-level helpers and
  constants it reads (``course_lib._validate``'s checks, private helpers) become nested definitions at the top
  of the body, ``@torch.no_grad()`` becomes a ``with torch.no_grad():`` block. Only ``torch``, ``nn``, ``F`` and
  ``math`` are assumed imported, as in every notebook's first cell;
* :func:`scaffold_source`, :func:`loop_source`, :func:`stub_source` -- whole cells;
* :func:`call_body` -- a body that calls a self-contained function (a known-mistake variant) with extra
  keyword arguments, for submissions made from the mistake catalogue.

Bodies keep their comments (they are cut from the source text); nested helpers are re-printed from the AST
without annotations or docstrings, so they need no ``typing`` imports.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import types
from typing import Callable

from .manifest import loop_version, reference

__all__ = ["SourceError", "NOTEBOOK_GLOBALS", "header", "self_contained_body", "scaffold_source", "loop_source",
           "stub_source", "call_body", "indent"]

# Names every notebook (and the autograder's fixtures) imports in its first cell.
NOTEBOOK_GLOBALS = {"torch", "nn", "F", "math"}
_ALLOWED_DECORATORS = {"torch.no_grad()"}


class SourceError(ValueError):
    """A function whose source cannot be made self-contained (the message says why and where)."""


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


def _function_node(fn: Callable) -> tuple[ast.FunctionDef, list[str]]:
    fn = inspect.unwrap(fn)
    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    node = ast.parse("\n".join(lines)).body[0]
    if not isinstance(node, ast.FunctionDef):
        raise SourceError(f"{fn.__qualname__} is not a plain function")
    return node, lines


def header(fn: Callable) -> str:
    """``def`` line(s) and docstring of ``fn`` as written in its source file (decorators left out).

    Raises:
        SourceError: when ``fn`` has no docstring (the scaffold's contract).
    """
    node, lines = _function_node(fn)
    if not (node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
            and isinstance(node.body[0].value.value, str)):
        raise SourceError(f"{fn.__qualname__} has no docstring to copy")
    return "\n".join(lines[node.lineno - 1 : node.body[0].end_lineno])


def _raw_body(fn: Callable) -> tuple[str, list[str]]:
    """The statements after the docstring, dedented, comments kept; and the decorators' source."""
    node, lines = _function_node(fn)
    body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                             and isinstance(node.body[0].value, ast.Constant)) else node.body
    if not body:
        raise SourceError(f"{fn.__qualname__} has an empty body")
    first = min([body[0].lineno] + [d.lineno for d in getattr(body[0], "decorator_list", [])])
    text = textwrap.dedent("\n".join(lines[first - 1 : node.end_lineno]))
    return text, [ast.unparse(d) for d in node.decorator_list]


def _free_names(fn: Callable) -> set[str]:
    """Global names read by the body and the defaults (annotations are not evaluated in a nested helper)."""
    node, _ = _function_node(fn)
    bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    roots = node.body + node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
    return {n.id for root in roots for n in ast.walk(root) if isinstance(n, ast.Name) and n.id not in bound}


def _strip(node: ast.FunctionDef) -> ast.FunctionDef:
    """No annotations, no docstring, no decorators (nested helpers need no typing imports)."""
    node.returns = None
    node.decorator_list = []
    for a in ast.walk(node.args):
        if isinstance(a, ast.arg):
            a.annotation = None
    if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
        node.body = node.body[1:] or [ast.Pass()]
    return node


def _dependencies(fn: Callable, out: dict[str, str], imports: set[str]) -> None:
    """Helpers and constants ``fn`` reads from its module, recursively, dependencies first."""
    fn = inspect.unwrap(fn)
    for name in sorted(_free_names(fn)):
        if name in out or name in NOTEBOOK_GLOBALS or name not in fn.__globals__:
            continue
        obj = fn.__globals__[name]
        if isinstance(obj, types.ModuleType):
            imports.add(f"import {obj.__name__}" if obj.__name__ == name else f"import {obj.__name__} as {name}")
        elif isinstance(obj, types.FunctionType) and (obj.__module__ == fn.__module__
                                                       or obj.__module__.startswith("course_lib")):
            out[name] = ""                                    # reserve the slot (recursion)
            _dependencies(obj, out, imports)
            node, _ = _function_node(obj)
            out.pop(name)
            out[name] = ast.unparse(_strip(node))
        elif isinstance(obj, (int, float, str, tuple)) and not isinstance(obj, bool):
            out[name] = f"{name} = {obj!r}"
        elif not hasattr(builtins, name):
            raise SourceError(f"{fn.__qualname__} reads {name!r} ({type(obj).__name__}) from its module, which "
                              "a notebook cell cannot reproduce; write an explicit solution body instead")


def self_contained_body(fn: Callable) -> str:
    """The body of ``fn`` (after its docstring) with everything it reads from its module inlined, at indent 0.

    Raises:
        SourceError: for a decorator other than ``torch.no_grad()`` or a module-level object that is neither a
            function, a module nor a plain constant.
    """
    body, decorators = _raw_body(fn)
    unknown = [d for d in decorators if d not in _ALLOWED_DECORATORS]
    if unknown:
        raise SourceError(f"{inspect.unwrap(fn).__qualname__}: cannot inline the decorator(s) {unknown}")
    helpers: dict[str, str] = {}
    imports: set[str] = set()
    _dependencies(fn, helpers, imports)
    parts = sorted(imports) + list(helpers.values())
    if decorators:                                            # @torch.no_grad() -> a with-block
        body = "with torch.no_grad():\n" + indent(body)
    return "\n\n".join(parts + [body]) if parts else body


def scaffold_source(name: str, body: str | None = None) -> str:
    """The notebook cell of graded function ``name``: the reference's signature and docstring, then the solution
    (``body``, at indent 0, or the reference's own body made self-contained) between nbgrader's markers."""
    ref = reference(name)
    solution = self_contained_body(ref) if body is None else body.strip("\n")
    return f"{header(ref)}\n    ### BEGIN SOLUTION\n{indent(solution)}\n    ### END SOLUTION"


def loop_source(name: str) -> str:
    """The notebook's loop warm-up for ``name``: ``def <name>_loop(...)`` with the loop version's docstring and,
    between the solution markers, its self-contained body."""
    loop = loop_version(name)
    node, lines = _function_node(loop)
    head = header(loop).replace(f"def {loop.__name__}(", f"def {name}_loop(", 1)
    return f"{head}\n    ### BEGIN SOLUTION\n{indent(self_contained_body(loop))}\n    ### END SOLUTION"


def stub_source(name: str, message: str) -> str:
    """``name`` with the reference's signature and docstring whose body raises NotImplementedError(message)."""
    return f"{header(reference(name))}\n    raise NotImplementedError({message!r})"


def call_body(fn: Callable, params: list[str], **kwargs) -> str:
    """A body that defines ``fn`` (self-contained) and returns ``fn(<params>, **kwargs)``: how a submission
    made from the mistake catalogue spells a known-mistake variant."""
    node, _ = _function_node(fn)
    helpers: dict[str, str] = {}
    imports: set[str] = set()
    _dependencies(fn, helpers, imports)
    _, decorators = _raw_body(fn)
    if decorators:
        raise SourceError(f"{fn.__qualname__}: decorated variants are not supported")
    definition = ast.unparse(_strip(node))
    args = ", ".join(params + [f"{k}={v!r}" for k, v in kwargs.items()])
    return "\n\n".join(sorted(imports) + list(helpers.values()) + [definition, f"return {fn.__name__}({args})"])
