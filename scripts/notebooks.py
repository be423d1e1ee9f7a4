"""Build the nbgrader source notebooks from their text sources, and the student release from those.

Each assignment is written as a readable, diff-friendly text file ``solutions/<name>/<name>.py`` in a
"percent" cell format; this tool turns it into ``solutions/<name>/<name>.ipynb`` with nbgrader metadata, and
``make release`` turns that into ``assignments/<name>/<name>.ipynb`` with ``nbgrader generate_assignment``.

Cell markers (one per cell, on a line of its own)::

    # %% [markdown]                          text; each line starts with "# " (or is "#")
    # %% [code]                              ordinary code (experiments, plots)
    # %% [scaffold] id=nt_xent_loss          a graded function, generated from course_lib's reference: its exact
                                             signature and docstring, and its body (made self-contained) as the
                                             solution between ### BEGIN/END SOLUTION. A body under the marker
                                             overrides the solution (only where the notebook teaches a different
                                             form on purpose; a test holds it equal to the reference)
    # %% [loop] id=nt_xent_loss              the ungraded loop warm-up ``nt_xent_loss_loop``, generated from the
                                             loop version course_lib.naive.nt_xent_loss_naive
    # %% [tests] id=nt_xent_loss             the graded test cell of a function (points from the manifest): a
                                             visible public check (fails nbgrader's Validate while the function is
                                             unfinished) and the hidden call to the out-of-process grader
    # %% [solution] id=some_id               a free-form autograded answer cell (student edits it)
    # %% [answer] id=q_name points=3         a manually graded free-response (markdown) answer cell
    # %% [readonly]                          a locked code cell (imports, self-checks)

Usage::

    python scripts/notebooks.py build [NAME ...]     # .py -> solutions/<name>/<name>.ipynb
    python scripts/notebooks.py check [NAME ...]     # exit 1 if a built notebook is out of date
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import nbformat

from course_lib.manifest import assignment_names, entry
from course_lib.sourcegen import SourceError as GenerationError
from course_lib.sourcegen import loop_source, scaffold_source
from course_lib.atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = assignment_names()
MARKER = re.compile(r"^# %% \[(\w+)\](.*)$")
KINDS = {"markdown", "code", "scaffold", "loop", "solution", "tests", "answer", "readonly"}
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


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


def student_wheel_url() -> str:
    """The URL (or pip requirement) of the student edition, set once in pyproject.toml's [tool.course]."""
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["course"]["student-wheel-url"]


def install_source(url: str) -> str:
    """The first code cell of every notebook: install the course package where it is missing (Colab, a fresh
    kernel); a no-op where ``course_lib`` is installed (a course JupyterHub, a local install, the grader)."""
    return (
        "# Installs the course package where it is missing (Colab, a fresh kernel); does nothing where it is installed.\n"
        "import importlib.util, subprocess, sys\n"
        f"COURSE_PACKAGE = {url!r}\n"
        "if importlib.util.find_spec(\"course_lib\") is None:\n"
        "    if not COURSE_PACKAGE:\n"
        "        raise RuntimeError(\"course_lib is not installed here: install the course's student package (see the \"\n"
        "                           \"course page), then restart the kernel\")\n"
        "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", COURSE_PACKAGE])"
    )


def tests_source(name: str) -> str:
    """The test cell of graded function ``name``: a visible public check, then the hidden grader call."""
    g = entry(name)
    return (f"# fails nbgrader's Validate while {name} is unfinished or fails a public case\n"
            f"check({name!r}, {name}, strict=True)\n"
            "### BEGIN HIDDEN TESTS\n"
            "from autograder.nbgrader_cell import points\n"
            f"points({name!r}, {g.assignment!r}, {g.points:g})\n"
            "### END HIDDEN TESTS")


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
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    seen: set[str] = set()
    for idx, (kind, attrs, body, lineno) in enumerate(parse(src)):
        where = f"{src}:{lineno}"
        gid = attrs.get("id")
        if kind in {"scaffold", "loop", "tests"}:
            if not gid:
                raise SourceError(f"{where}: a [{kind}] cell needs id=<graded function>")
            try:
                g = entry(gid)
            except ValueError as exc:
                raise SourceError(f"{where}: {exc}") from None
            if g.assignment != name:
                raise SourceError(f"{where}: {gid} is graded in {g.assignment}, not in {name}")
            gid = {"scaffold": gid, "loop": f"{gid}_loop", "tests": f"test_{gid}"}[kind]
        if kind in {"scaffold", "loop", "solution", "tests", "answer"}:
            if not gid:
                raise SourceError(f"{where}: a [{kind}] cell needs id=...")
            if gid in seen:
                raise SourceError(f"{where}: duplicate id {gid!r}")
            seen.add(gid)
        points = float(attrs["points"]) if "points" in attrs else None
        if kind == "answer" and points is None:
            raise SourceError(f"{where}: a [{kind}] cell needs points=...")
        if kind in {"loop", "tests"} and body.strip():
            raise SourceError(f"{where}: a [{kind}] cell is generated; leave its body empty")
        try:
            if kind == "markdown":
                cell = nbformat.v4.new_markdown_cell(_markdown(body, where))
            elif kind == "answer":
                cell = nbformat.v4.new_markdown_cell(_markdown(body, where) or "YOUR ANSWER HERE")
                cell.metadata = _nbgrader(True, True, False, gid, points)
            elif kind == "scaffold":
                cell = nbformat.v4.new_code_cell(scaffold_source(attrs["id"], body or None))
                cell.metadata = _nbgrader(False, True, False, gid)
            elif kind == "loop":
                cell = nbformat.v4.new_code_cell(loop_source(attrs["id"]))
                cell.metadata = _nbgrader(False, True, False, gid)
            elif kind == "solution":
                cell = nbformat.v4.new_code_cell(body)
                cell.metadata = _nbgrader(False, True, False, gid)
            elif kind == "tests":
                cell = nbformat.v4.new_code_cell(tests_source(attrs["id"]))
                cell.metadata = _nbgrader(True, False, True, gid, entry(attrs["id"]).points)
            elif kind == "readonly":
                cell = nbformat.v4.new_code_cell(body)
                cell.metadata = _nbgrader(False, False, True, gid or f"readonly_{idx}")
            else:
                cell = nbformat.v4.new_code_cell(body)
                cell.metadata = {"course": {"provided": True}}    # the course's code: the grader notes nothing in it
        except GenerationError as exc:
            raise SourceError(f"{where}: {exc}") from None
        # stable cell ids, so rebuilding an unchanged source gives a byte-identical notebook
        cell.id = gid or hashlib.sha1(f"{name}:{idx}:{kind}".encode()).hexdigest()[:12]
        nb.cells.append(cell)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    install = nbformat.v4.new_code_cell(install_source(student_wheel_url()))
    install.metadata = _nbgrader(False, False, True, "install_course_package")
    install.id = "install_course_package"
    nb.cells.insert(first_code, install)
    nbformat.validate(nb)
    return nb


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


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
                write_text_atomic(target, text)
                print(f"built {target.relative_to(ROOT)}")
        elif not target.is_file() or target.read_text(encoding="utf-8") != text:
            stale.append(str(target.relative_to(ROOT)))
    if stale:
        print("out of date (run `make notebooks`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
