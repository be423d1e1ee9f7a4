"""Leak scan of the student edition: does any function in it compute a graded function?

Every function and method in the student wheel (nested ones included) is compared, as a *normalised* AST
(autograder/astnorm.py), with
every function of the answers: the graded references and the private helpers of their modules, every loop version
(course_lib/naive), and the function of every solution cell of the source notebooks (graded scaffolds, loop
warm-ups, free-form solution cells): renaming variables, rewording messages or reformatting does not hide a copy.
The wheel must also hold no file of autograder/, solutions/ or course_lib/naive, and no
hidden-test text.

    python scripts/leakscan.py dist/student/<wheel>.whl        # exit 1 and list the findings on a leak
"""
from __future__ import annotations

import ast
import re
import sys
import zipfile
from pathlib import Path

import nbformat

from autograder.astnorm import digest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_PATHS = ("autograder/", "solutions/", "course_lib/naive/", "course_lib/naive.py", "course_lib/sourcegen.py")
FORBIDDEN_TEXT = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION", "nbgrader_cell")

__all__ = ["normalized", "functions_in", "answer_digests", "scan_wheel", "main"]


def normalized(node: ast.AST) -> str:
    """sha256 of the normalised function (see autograder.astnorm: names, docstrings, comments and messages
    stripped)."""
    return digest(node)


def functions_in(source: str, nested: bool = True) -> list[ast.AST]:
    """Every function definition in ``source`` (with nested ones and methods), or only the top-level ones."""
    tree = ast.parse(source)
    if not nested:
        return [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _solution_sources() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution"):
                out.append((f"{path.relative_to(ROOT)}:{meta.get('grade_id')}", cell.source))
    return out


def answer_digests() -> dict[str, str]:
    """normalised digest -> what it is, for every function the student edition must not contain."""
    from course_lib.manifest import GRADED

    found: dict[str, str] = {}
    modules = sorted({g.module for g in GRADED})
    for module in modules:                               # references and their modules' helpers
        path = ROOT / "course_lib" / (module.replace(".", "/") + ".py")
        for node in functions_in(path.read_text(encoding="utf-8"), nested=False):
            found.setdefault(normalized(node), f"course_lib.{module}.{node.name}")
    for path in sorted((ROOT / "course_lib" / "naive").glob("*.py")):       # loop versions
        for node in functions_in(path.read_text(encoding="utf-8"), nested=False):
            found.setdefault(normalized(node), f"course_lib.naive.{path.stem}.{node.name}")
    for where, source in _solution_sources():            # solution cells (their top-level function)
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            nodes = functions_in("\n".join(lines), nested=False)
        except SyntaxError:
            continue
        for node in nodes:
            found.setdefault(normalized(node), f"{where} ({node.name})")
    return found


def scan_wheel(wheel: str | Path, answers: dict[str, str] | None = None) -> list[str]:
    """Every leak found in ``wheel`` (an empty list: none)."""
    answers = answer_digests() if answers is None else answers
    findings = []
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if any(name.startswith(p) or f"/{p}" in f"/{name}" for p in FORBIDDEN_PATHS):
                findings.append(f"{name}: a file that only the instructor edition may hold")
                continue
            data = zf.read(name)
            text = data.decode("utf-8", errors="replace")
            for marker in FORBIDDEN_TEXT:
                if marker in text:
                    findings.append(f"{name}: contains {marker!r}")
            if not name.endswith(".py"):
                continue
            try:
                nodes = functions_in(text)
            except SyntaxError as exc:
                findings.append(f"{name}: does not parse ({exc})")
                continue
            for node in nodes:
                hit = answers.get(normalized(node))
                if hit:
                    findings.append(f"{name}:{node.lineno} {node.name}() computes {hit}")
    return findings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not re.search(r"\.whl$", argv[0]):
        print("usage: python scripts/leakscan.py WHEEL.whl", file=sys.stderr)
        return 2
    findings = scan_wheel(argv[0])
    for f in findings:
        print(f"LEAK {f}")
    print(f"leak scan of {Path(argv[0]).name}: " + ("no answer found" if not findings else f"{len(findings)} leak(s)"))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
