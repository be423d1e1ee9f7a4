"""Build the nbgrader source notebooks from their text sources, and the student release from those.

Each assignment is written as a readable, diff-friendly text file ``solutions/<name>/<name>.py`` in a
"percent" cell format; this tool turns it into ``solutions/<name>/<name>.ipynb`` with nbgrader metadata, and
``make release`` turns that into ``assignments/<name>/<name>.ipynb`` with ``nbgrader generate_assignment``.

Cell markers (one per cell, on a line of its own)::

    # %% [markdown]                          text; each line starts with "# " (or is "#")
    # %% [code]                              ordinary code (experiments, plots)
    # %% [scaffold] id=nt_xent_loss          a graded function: the signature and docstring are taken from
                                             course_lib.<id>; the cell body (below the marker) is the
                                             solution code, wrapped in ### BEGIN/END SOLUTION
    # %% [solution] id=some_id               a free-form autograded answer cell (student edits it)
    # %% [tests] id=test_x points=10         a locked grade cell (hidden tests go inside
                                             ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS)
    # %% [answer] id=q_name points=3         a manually graded free-response (markdown) answer cell
    # %% [readonly]                          a locked code cell (imports, self-checks)

Usage::

    python scripts/notebooks.py build [NAME ...]     # .py -> solutions/<name>/<name>.ipynb
    python scripts/notebooks.py check [NAME ...]     # exit 1 if a built notebook is out of date
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ("a1_gans", "a2_pretext", "a3_contrastive", "a4_rendering")
MARKER = re.compile(r"^# %% \[(\w+)\](.*)$")
KINDS = {"markdown", "code", "scaffold", "solution", "tests", "answer", "readonly"}


class SourceError(ValueError):
    """A malformed notebook source file (names the file and line)."""


def _attrs(text: str, where: str) -> dict[str, str]:
    attrs = {}
    for token in text.split():
        if "=" not in token:
            raise SourceError(f"{where}: expected key=value after the cell marker, got {token!r}")
        key, value = token.split("=", 1)
        attrs[key] = value
    return attrs


def parse(path: Path) -> list[tuple[str, dict[str, str], str, int]]:
    """Split a source file into (kind, attributes, body, line number) tuples."""
    cells: list[tuple[str, dict[str, str], list[str], int]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = MARKER.match(line)
        if m:
            kind = m.group(1)
            if kind not in KINDS:
                raise SourceError(f"{path}:{lineno}: unknown cell kind {kind!r} (known: {sorted(KINDS)})")
            cells.append((kind, _attrs(m.group(2), f"{path}:{lineno}"), [], lineno))
        elif cells:
            cells[-1][2].append(line)
        elif line.strip() and not line.startswith("#"):
            raise SourceError(f"{path}:{lineno}: code before the first cell marker")
    return [(k, a, "\n".join(body).strip("\n"), n) for k, a, body, n in cells]


def _markdown(body: str, where: str) -> str:
    out = []
    for line in body.splitlines():
        if line == "#":
            out.append("")
        elif line.startswith("# "):
            out.append(line[2:])
        elif not line.strip():
            out.append("")
        else:
            raise SourceError(f"{where}: markdown lines must start with '# ', got {line!r}")
    return "\n".join(out).strip("\n")


def reference_header(name: str) -> str:
    """The ``def`` line(s) and docstring of ``course_lib.<name>`` exactly as written in its source file
    (decorators are not part of the contract and are left out)."""
    import ast
    import textwrap

    import course_lib

    fn = inspect.unwrap(getattr(course_lib, name))
    lines, _ = inspect.getsourcelines(fn)
    src = textwrap.dedent("".join(lines))
    node = ast.parse(src).body[0]
    if not (isinstance(node, ast.FunctionDef) and node.body and isinstance(node.body[0], ast.Expr)):
        raise SourceError(f"course_lib.{name} has no docstring to copy")
    src_lines = src.splitlines()
    return "\n".join(src_lines[node.lineno - 1 : node.body[0].end_lineno])


def scaffold_source(name: str, solution: str) -> str:
    """The reference's exact signature and docstring, then the solution body between the markers."""
    body = "\n".join(("    " + ln) if ln.strip() else "" for ln in solution.splitlines())
    return f"{reference_header(name)}\n    ### BEGIN SOLUTION\n{body}\n    ### END SOLUTION"


def _nbgrader(grade: bool, solution: bool, locked: bool, grade_id: str, points: float | None = None) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def build(name: str) -> nbformat.NotebookNode:
    src = SOLUTIONS / name / f"{name}.py"
    if not src.is_file():
        raise SourceError(f"{src}: no such source file")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    seen: set[str] = set()
    for idx, (kind, attrs, body, lineno) in enumerate(parse(src)):
        where = f"{src}:{lineno}"
        gid = attrs.get("id")
        if kind in {"scaffold", "solution", "tests", "answer"}:
            if not gid:
                raise SourceError(f"{where}: a [{kind}] cell needs id=...")
            if gid in seen:
                raise SourceError(f"{where}: duplicate id {gid!r}")
            seen.add(gid)
        points = float(attrs["points"]) if "points" in attrs else None
        if kind in {"tests", "answer"} and points is None:
            raise SourceError(f"{where}: a [{kind}] cell needs points=...")
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(_markdown(body, where))
        elif kind == "answer":
            cell = nbformat.v4.new_markdown_cell(_markdown(body, where) or "YOUR ANSWER HERE")
            cell.metadata = _nbgrader(True, True, False, gid, points)
        elif kind == "scaffold":
            cell = nbformat.v4.new_code_cell(scaffold_source(gid, body))
            cell.metadata = _nbgrader(False, True, False, gid)
        elif kind == "solution":
            cell = nbformat.v4.new_code_cell(body)
            cell.metadata = _nbgrader(False, True, False, gid)
        elif kind == "tests":
            cell = nbformat.v4.new_code_cell(body)
            cell.metadata = _nbgrader(True, False, True, gid, points)
        elif kind == "readonly":
            cell = nbformat.v4.new_code_cell(body)
            cell.metadata = _nbgrader(False, False, True, gid or f"readonly_{idx}")
        else:
            cell = nbformat.v4.new_code_cell(body)
        # stable cell ids, so rebuilding an unchanged source gives a byte-identical notebook
        cell.id = gid or hashlib.sha1(f"{name}:{idx}:{kind}".encode()).hexdigest()[:12]
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("names", nargs="*", help=f"assignments (default: every one with a source: {', '.join(ASSIGNMENTS)})")
    args = parser.parse_args(argv)
    names = args.names or [n for n in ASSIGNMENTS if (SOLUTIONS / n / f"{n}.py").is_file()]
    unknown = [n for n in names if n not in ASSIGNMENTS]
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; known: {list(ASSIGNMENTS)}")
    stale = []
    for name in names:
        try:
            text = _dumps(build(name))
        except SourceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        target = SOLUTIONS / name / f"{name}.ipynb"
        if args.command == "build":
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                write_atomic(target, text)
                print(f"built {target.relative_to(ROOT)}")
        elif not target.is_file() or target.read_text(encoding="utf-8") != text:
            stale.append(str(target.relative_to(ROOT)))
    if stale:
        print("out of date (run `make notebooks`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
