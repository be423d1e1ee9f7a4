"""Extract what the graded functions need from a notebook, without running it.

The notebook is read with nbformat and each code cell is parsed with ``ast``. From the top level of each cell
we keep only:

* imports (``from __future__`` imports are dropped),
* function and class definitions,
* assignments of simple values to plain names: literals, names, attribute chains, arithmetic on those,
  containers of those, lambdas, and calls of a few harmless constructors (``float``, ``math.sqrt``,
  ``torch.device``, ``torch.tensor``...).

Everything else (training loops, plotting, prints, calls) is dropped and never runs. IPython line magics and
shell escapes (``%time``, ``!pip``, ``x = !ls``, ``obj?``) become ``pass`` when they start a logical line (not
inside brackets, a string or after a backslash: ``(a\n % b)`` is Python); a cell starting with a cell magic
other than ``%%time`` / ``%%timeit`` / ``%%capture`` is skipped. A cell with a syntax error is skipped and
reported; the others still count. The last definition of a name wins, whatever the cell order or metadata.

For each graded function, :meth:`Extraction.program_for` returns just the statements it depends on (a
transitive closure over the global names it reads), so a broken or hostile definition elsewhere in the
notebook cannot affect it.

The file is hostile too, so reading it has budgets that keep the grader's memory small whatever it holds: at
most :data:`MAX_NOTEBOOK_BYTES`, :data:`MAX_JSON_VALUES` JSON values (counted before parsing; a million empty
outputs would otherwise take gigabytes), no nbformat validation (its schema errors on such a file take minutes
and gigabytes), cells of at most :data:`MAX_CELL_CODE` characters and :data:`MAX_CODE` in all (a larger cell is
skipped and reported: a 4 MB list literal parses into 2 GB of syntax tree), and a cell too deeply nested to
parse is skipped and reported. Only each statement's source text and names are kept after parsing.
"""
from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .quoting import one_line

__all__ = ["Statement", "Extraction", "extract_notebook", "extract_cells", "NotebookError", "MAX_NOTEBOOK_BYTES",
           "MAX_JSON_VALUES", "MAX_CELL_CODE", "MAX_CODE", "UNREACHABLE_PACKAGES"]

# Packages graded code can never import (the sandbox refuses them): their imports are not kept, so the notebook's
# own set-up lines (``from course_lib.checks import check``, nbgrader's hidden-test import) cause no notes.
UNREACHABLE_PACKAGES = ("course_lib", "autograder")

MAX_NOTEBOOK_BYTES = 64 << 20
MAX_JSON_VALUES = 1_000_000          # JSON values in the file (each costs ~100 bytes once parsed)
MAX_CELL_CODE = 200_000              # characters of code in one cell (its syntax tree: ~100 MB at most)
MAX_CODE = 4_000_000                 # characters of code parsed in all
_KEEP_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")
_LINE_MAGIC = re.compile(r"^(\s*)(?:[%!]|[\w.\[\], ]+=\s*[%!])")
_HELP = re.compile(r"^(\s*)[\w.]+\s*\?{1,2}\s*$")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)     # unrolled: no regex stack per character
_SAFE_CALLS = {
    "float", "int", "bool", "str", "tuple", "list", "dict", "set", "frozenset", "abs", "min", "max", "round",
    "pow", "len", "range", "math.sqrt", "math.log", "math.exp", "math.pow", "math.cos", "math.sin", "math.radians",
    "torch.device", "torch.tensor", "torch.as_tensor", "np.array", "numpy.array",
}


class NotebookError(ValueError):
    """The file cannot be read as a notebook (the message says why, for the student)."""


@dataclass
class Statement:
    """One kept top-level statement of a code cell."""

    cell: int                       # 1-based position of the cell in the notebook (all cell types count)
    line: int                       # line of the statement inside its cell (1-based)
    source: str
    kind: str                       # import | def | class | assign
    names: set[str]                 # global names it defines
    uses: set[str]                  # global names it reads
    node: ast.AST | None = field(default=None, repr=False)   # not kept after extraction (memory)
    order: int = 0
    params: list[str] = field(default_factory=list)         # def: parameter names (see signature_of)
    loops: list[int] = field(default_factory=list)          # def: lines of loops (see loops_in)
    provided: bool = False                                   # from a cell the course wrote (no notes about it)

    def as_job(self) -> dict:
        return {"cell": self.cell, "line": self.line, "source": self.source}


@dataclass
class Extraction:
    statements: list[Statement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_cells: int = 0
    n_code_cells: int = 0

    def definitions(self) -> dict[str, Statement]:
        """name -> the last statement that defines it."""
        last: dict[str, Statement] = {}
        for st in self.statements:
            for name in st.names:
                last[name] = st
        return last

    def function(self, name: str) -> Statement | None:
        st = self.definitions().get(name)
        return st if st is not None and st.kind == "def" else None

    def program_for(self, name: str) -> list[Statement]:
        """The statements ``name`` needs (empty when it is not defined), in an order that can run: imports first,
        then every definition after the ones it reads (decorators, default values, base classes and constants
        are evaluated at definition time), otherwise in notebook order."""
        last = self.definitions()
        if name not in last:
            return []
        needed, todo = {id(last[name]): last[name]}, [last[name]]
        while todo:
            st = todo.pop()
            for used in st.uses:
                dep = last.get(used)
                if dep is not None and id(dep) not in needed:
                    needed[id(dep)] = dep
                    todo.append(dep)
        ordered = sorted(needed.values(), key=lambda s: s.order)
        imports = [s for s in ordered if s.kind == "import"]
        placed: dict[int, None] = {id(s): None for s in imports}
        out = list(imports)

        def place(st: Statement, stack: set[int]) -> None:
            if id(st) in placed or id(st) in stack:
                return
            stack.add(id(st))
            for used in sorted(st.uses):
                dep = last.get(used)
                if dep is not None and id(dep) in needed and dep is not st:
                    place(dep, stack)
            placed[id(st)] = None
            out.append(st)

        for st in ordered:
            place(st, set())
        return out

    def similar_names(self, name: str) -> list[str]:
        funcs = {n for st in self.statements if st.kind == "def" for n in st.names}
        return difflib.get_close_matches(name, sorted(funcs), n=3, cutoff=0.6)


# ------------------------------------------------------------------------------------------------ reading
def read_cells(path: str | Path) -> list[dict]:
    """The notebook's cells as ``{"cell_type", "source"}`` dicts (nbformat 4, and 3's worksheets).

    Raises:
        NotebookError: when the file is missing, too big, not UTF-8, not JSON, nested too deeply, made of too
            many JSON values, or not a notebook.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise NotebookError(f"cannot open the notebook file: {exc.strerror}") from None
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"the notebook is {size >> 20} MB, more than the {MAX_NOTEBOOK_BYTES >> 20} MB limit "
                            "(clear the outputs and re-submit)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"cannot open the notebook file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            "re-save it from Jupyter instead of editing it by hand") from None
    del raw
    values = _json_values(text)
    if values > MAX_JSON_VALUES:
        raise NotebookError(f"the notebook holds more than {MAX_JSON_VALUES:,} JSON values (about {values:,}; huge "
                            "outputs?): clear the outputs and re-submit")
    try:
        data = json.loads(text)
    except RecursionError:
        raise NotebookError("the file is JSON nested too deeply to be a notebook") from None
    except ValueError as exc:
        raise NotebookError(f"the file is not valid JSON ({exc}); it is damaged or is not a .ipynb notebook") from None
    del text
    cells = data.get("cells") if isinstance(data, dict) else None
    if cells is None and isinstance(data, dict) and isinstance(data.get("worksheets"), list):     # nbformat 3
        cells = [c for ws in data["worksheets"] if isinstance(ws, dict) and isinstance(ws.get("cells"), list)
                 for c in ws["cells"]]
    if not isinstance(cells, list):
        raise NotebookError("the file is JSON but not a Jupyter notebook (it has no list of cells)")
    out = []
    for c in cells:
        if not isinstance(c, dict):
            continue
        kind = c.get("cell_type")
        src = c.get("input", c.get("source", "")) if kind == "code" and "source" not in c else c.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        meta = c.get("metadata")
        provided = isinstance(meta, dict) and _is_provided(meta)
        out.append({"cell_type": kind if isinstance(kind, str) else None, "source": src if isinstance(src, str) else "",
                    "provided": provided})
    return out


def _is_provided(meta: dict) -> bool:
    """A cell the course wrote (set-up, experiments, locked or graded test cells), not one the student writes in:
    marked ``"course": {"provided": true}`` by the notebook builder, or an nbgrader cell that is not a solution."""
    course, nb = meta.get("course"), meta.get("nbgrader")
    if isinstance(course, dict) and course.get("provided") is True:
        return True
    return isinstance(nb, dict) and not nb.get("solution", False)


def _json_values(text: str) -> int:
    """An upper bound on the number of JSON values in ``text`` (separators and containers outside strings);
    cheap when the raw count is already small."""
    def count(t: str) -> int:
        return t.count(",") + t.count("[") + t.count("{") + 1

    rough = count(text)
    return rough if rough <= MAX_JSON_VALUES else count(_JSON_STRING.sub('""', text))


def strip_magics(source: str) -> str | None:
    """IPython syntax -> plain Python with the same line numbers; None for a cell magic we cannot keep.

    A line is a magic only where a Python statement could start: not inside brackets, not inside a
    (triple-quoted or continued) string and not after a line ending in a backslash.
    """
    lines = source.split("\n")
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        if first.split()[0] not in _KEEP_CELL_MAGICS:
            return None
    out = []
    state = _LexState()
    for ln in lines:
        m = (_LINE_MAGIC.match(ln) or _HELP.match(ln)) if state.at_statement_start() else None
        if m:
            out.append(f"{m.group(1)}pass")
            continue
        state.feed(ln)
        out.append(ln)
    return "\n".join(out)


class _LexState:
    """Just enough of Python's tokenizer to tell where a logical line starts: bracket depth, open strings and
    backslash continuations, carried from one physical line to the next."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None          # the delimiter of an open string
        self.continued = False                 # the previous line ended with a backslash

    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        self.continued = False
        while i < n:
            c = line[i]
            if self.quote is not None:
                if c == "\\":
                    if i == n - 1:                 # a backslash at the end continues the string
                        self.continued = len(self.quote) == 1
                    i += 2
                    continue
                if line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                    continue
                i += 1
                continue
            if c == "#":
                break
            if c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(0, self.depth - 1)
            elif c in "'\"":
                self.quote = line[i : i + 3] if line[i : i + 3] in ("'''", '"""') else c
                i += len(self.quote)
                continue
            elif c == "\\" and i == n - 1:
                self.continued = True
            i += 1
        if self.quote is not None and len(self.quote) == 1 and not self.continued:
            self.quote = None                      # an unterminated one-line string: a syntax error anyway


# ------------------------------------------------------------------------------------------------ analysis
def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_simple(node: ast.AST, depth: int = 0) -> bool:
    if depth > 20:
        return False
    simple = lambda n: _is_simple(n, depth + 1)  # noqa: E731
    if isinstance(node, (ast.Constant, ast.Name, ast.Lambda)):
        return True
    if isinstance(node, ast.Attribute):
        return _dotted(node) is not None
    if isinstance(node, ast.UnaryOp):
        return simple(node.operand)
    if isinstance(node, ast.BinOp):
        return simple(node.left) and simple(node.right)
    if isinstance(node, ast.BoolOp):
        return all(map(simple, node.values))
    if isinstance(node, ast.Compare):
        return simple(node.left) and all(map(simple, node.comparators))
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(map(simple, node.elts))
    if isinstance(node, ast.Dict):
        return all(k is not None and simple(k) for k in node.keys) and all(map(simple, node.values))
    if isinstance(node, ast.Call):
        return (_dotted(node.func) in _SAFE_CALLS and all(map(simple, node.args))
                and all(simple(k.value) for k in node.keywords))
    return False


def _target_names(target: ast.AST) -> set[str] | None:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        names: set[str] = set()
        for elt in target.elts:
            sub = _target_names(elt)
            if sub is None:
                return None
            names |= sub
        return names
    return None


def _uses(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _classify(node: ast.stmt) -> tuple[str, set[str]] | None:
    if isinstance(node, ast.Import):
        if any(a.name.split(".")[0] in UNREACHABLE_PACKAGES for a in node.names):
            return None
        return "import", {(a.asname or a.name.split(".")[0]) for a in node.names}
    if isinstance(node, ast.ImportFrom):
        if node.module == "__future__" or any(a.name == "*" for a in node.names) \
                or (node.module or "").split(".")[0] in UNREACHABLE_PACKAGES:
            return None
        return "import", {(a.asname or a.name) for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "def", {node.name}
    if isinstance(node, ast.ClassDef):
        return "class", {node.name}
    if isinstance(node, ast.Assign) and _is_simple(node.value):
        names: set[str] = set()
        for t in node.targets:
            sub = _target_names(t)
            if sub is None:
                return None
            names |= sub
        return "assign", names
    if isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name) \
            and _is_simple(node.value):
        return "assign", {node.target.id}
    return None


def extract_cells(cells: list[dict]) -> Extraction:
    """Analyse already-read cells (``{"cell_type", "source"}``); see the module docstring."""
    ex = Extraction(n_cells=len(cells))
    order, parsed = 0, 0
    for index, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        ex.n_code_cells += 1
        source = cell.get("source", "")
        if len(source) > MAX_CELL_CODE or parsed + len(source) > MAX_CODE:
            limit = "its" if len(source) > MAX_CELL_CODE else "the notebook's"
            ex.notes.append(f"cell {index} has {len(source):,} characters of code, over {limit} limit "
                            f"({MAX_CELL_CODE:,} per cell, {MAX_CODE:,} in all), and was skipped")
            continue
        parsed += len(source)
        src = strip_magics(source)
        if src is None:
            ex.notes.append(f"cell {index} starts with a cell magic and was skipped")
            continue
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            ex.notes.append(f"cell {index} has a syntax error{f' at line {line}' if line else ''} "
                            f"({one_line(str(getattr(exc, 'msg', exc)))[:300]}) and was skipped")
            continue
        except (RecursionError, MemoryError):
            ex.notes.append(f"cell {index} is nested too deeply to parse and was skipped")
            continue
        order = _keep_statements(ex, index, src, tree, order, bool(cell.get("provided")))
    return ex


def _keep_statements(ex: Extraction, index: int, src: str, tree: ast.Module, order: int, provided: bool = False) -> int:
    """Append the kept top-level statements of one parsed cell; returns the running statement order."""
    lines = src.split("\n")
    body = tree.body
    spans = [(_first_line(n), n.end_lineno or n.lineno) for n in body]
    for i, node in enumerate(body):
        kept = _classify(node)
        if kept is None:
            continue
        kind, names = kept
        start, end = spans[i]
        shares_line = (i > 0 and spans[i - 1][1] >= start) or (i + 1 < len(body) and spans[i + 1][0] <= end)
        try:
            text = ast.unparse(node) if shares_line else "\n".join(lines[start - 1 : end])
        except (RecursionError, MemoryError):
            ex.notes.append(f"cell {index}, line {start}: a statement nested too deeply was skipped")
            continue
        order += 1
        st = Statement(cell=index, line=start, source=text, kind=kind, names=names, uses=_uses(node), order=order,
                       provided=provided)
        if kind == "def":
            st.params, st.loops = _signature(node), _loop_lines(node)
        ex.statements.append(st)
    return order


def _first_line(node: ast.stmt) -> int:
    decos = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decos])


def extract_notebook(path: str | Path) -> Extraction:
    """Read and analyse a notebook file.

    Raises:
        NotebookError: when the file cannot be read as a notebook (see :func:`read_cells`).
    """
    return extract_cells(read_cells(path))


# ------------------------------------------------------------------------------------------------ static notes
def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    names += [p.arg for p in a.kwonlyargs]
    if a.kwarg:
        names.append("**" + a.kwarg.arg)
    return names


def _fixed_size(expr: ast.AST) -> bool:
    """An iterable whose length is written in the code: a literal, range() of constants, zip/enumerate of those."""
    if isinstance(expr, (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Constant)):
        return True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        if expr.func.id == "range":
            return all(isinstance(a, ast.Constant) or (isinstance(a, ast.UnaryOp) and isinstance(a.operand, ast.Constant))
                       for a in expr.args)
        if expr.func.id in ("zip", "enumerate", "reversed", "sorted"):
            return bool(expr.args) and all(_fixed_size(a) for a in expr.args[:1 if expr.func.id != "zip" else None])
    return False


def _error_paths(node: ast.AST) -> set[int]:
    """ids of the nodes inside an ``if`` branch that ends by raising (argument checks) or inside a ``raise``."""
    out: set[int] = set()
    for n in ast.walk(node):
        branches = [n.body, n.orelse] if isinstance(n, ast.If) else []
        for body in branches:
            if body and isinstance(body[-1], ast.Raise):
                out.update(id(x) for stmt in body for x in ast.walk(stmt))
        if isinstance(n, ast.Raise):
            out.update(id(x) for x in ast.walk(n))
    return out


def _loop_lines(node: ast.AST) -> list[int]:
    """Lines of the loops whose trip count grows with the data: not loops over a fixed, written-out number of
    items (``range(4)``, a tuple of names), and not loops that only build an error message."""
    errors = _error_paths(node)
    lines = set()
    for n in ast.walk(node):
        if id(n) in errors:
            continue
        if isinstance(n, (ast.For, ast.AsyncFor)) and not _fixed_size(n.iter):
            lines.add(n.lineno)
        elif isinstance(n, ast.While):
            lines.add(n.lineno)
        elif isinstance(n, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)) \
                and not all(_fixed_size(g.iter) for g in n.generators):
            lines.add(n.lineno)
    return sorted(lines)


def signature_of(st: Statement) -> list[str]:
    """Parameter names of a function statement, in order (``*args`` / ``**kw`` shown with their stars)."""
    return list(st.params)


def loops_in(st: Statement) -> list[int]:
    """Line numbers (inside the cell) of Python loops and comprehensions in a function body."""
    return list(st.loops)
