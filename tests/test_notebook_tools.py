"""Do the notebook builder and the release checker keep scaffolds in sync with course_lib and catch leaks?"""
import ast
import inspect
import sys
from pathlib import Path

import nbformat
import pytest

import course_lib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402
import release  # noqa: E402

ALL = [name for names in course_lib.GRADED_FUNCTIONS.values() for name in names]


@pytest.mark.parametrize("name", ALL)
def test_scaffold_has_the_reference_signature_and_docstring(name):
    src = notebooks.scaffold_source(name, "return None")
    node = ast.parse(src).body[0]
    ref = inspect.unwrap(getattr(course_lib, name))
    ns = {}
    exec("import torch\nimport torch.nn as nn\nfrom typing import Callable\n" + src, ns)
    assert inspect.signature(ns[name]) == inspect.signature(ref, eval_str=True)
    assert ast.get_docstring(node) == inspect.getdoc(ref)
    assert "### BEGIN SOLUTION" in src and src.rstrip().endswith("### END SOLUTION")


def _write(tmp_path, text):
    p = tmp_path / "x.py"
    p.write_text(text)
    return p


def test_parse_splits_cells_and_reads_attributes(tmp_path):
    p = _write(tmp_path, "# %% [markdown]\n# # T\n\n# %% [tests] id=t points=2\nx = 1\n")
    cells = notebooks.parse(p)
    assert [(k, a) for k, a, _, _ in cells] == [("markdown", {}), ("tests", {"id": "t", "points": "2"})]
    assert cells[1][2] == "x = 1" and cells[1][3] == 4


@pytest.mark.parametrize(
    "text,match",
    [("x = 1\n# %% [code]\n", "before the first cell marker"), ("# %% [bogus]\n", "unknown cell kind"),
     ("# %% [tests] id\n", "key=value")],
)
def test_malformed_sources_name_file_and_line(tmp_path, text, match):
    with pytest.raises(notebooks.SourceError, match=match) as info:
        notebooks.parse(_write(tmp_path, text))
    assert "x.py:" in str(info.value)


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_release_check_finds_markers_and_solution_lines():
    source = _nb("def f(x):\n    ### BEGIN SOLUTION\n    return torch.softplus(-x).mean() + 1\n    ### END SOLUTION")
    clean = _nb("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert release.find_leaks(clean, source) == []
    leaked = _nb("def f(x):\n    return torch.softplus(-x).mean() + 1")
    assert any("solution/hidden line" in leak for leak in release.find_leaks(leaked, source))
    marked = _nb("### BEGIN HIDDEN TESTS\nassert True")
    assert any("marker" in leak for leak in release.find_leaks(marked, source))
