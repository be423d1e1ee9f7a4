"""Normalised syntax trees: the same code up to names, comments, docstrings, annotations and message text.

Two uses, one definition: the grader derives a submission's seed from the normalised code its graded functions
need (a comment, a reformatting or a renamed local does not re-roll the hidden cases), and the student edition's
leak scan compares functions by their normalised form (renaming variables or rewording messages does not hide a
copy of a reference). Normalising drops docstrings, annotations, decorators and comments, replaces every string by
one placeholder, and renames every identifier (arguments, locals, globals, function names) by order of first use;
attribute names, keyword names and numbers are kept: they are the computation.
"""
from __future__ import annotations

import ast
import hashlib

__all__ = ["normalise", "digest"]


class _Normalise(ast.NodeTransformer):
    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"n{len(self.names)}")

    def _function(self, node):
        node.name = self._rename(node.name)
        node.decorator_list, node.returns = [], None
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        node.body = body or [ast.Pass()]
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node):
        node.name = self._rename(node.name)
        node.decorator_list = []
        self.generic_visit(node)
        return node

    def visit_arg(self, node):
        node.arg, node.annotation = self._rename(node.arg), None
        return node

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        node.annotation = ast.Constant("a")
        return node

    def visit_Name(self, node):
        node.id = self._rename(node.id)
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, str):
            node.value = "s"
        return node

    def visit_JoinedStr(self, node):
        return ast.Constant("s")


def normalise(node: ast.AST) -> ast.AST:
    """A normalised copy of ``node`` (``node`` itself is unchanged)."""
    copy = ast.parse(ast.unparse(node))
    target = copy.body[0] if isinstance(node, ast.stmt) and len(copy.body) == 1 else copy
    return _Normalise().visit(target)


def digest(node: ast.AST) -> str:
    """sha256 of the normalised tree's dump."""
    return hashlib.sha256(ast.dump(normalise(node), annotate_fields=False).encode()).hexdigest()
