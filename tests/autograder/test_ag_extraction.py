"""Does extraction keep exactly what the graded functions need, run nothing, and survive broken notebooks?"""
from __future__ import annotations

import json

import pytest

from autograder.notebook import NotebookError, extract_cells, extract_notebook, loops_in, signature_of, strip_magics
from nbfactory import notebook_json, write_raw


def code(src: str) -> dict:
    return {"cell_type": "code", "source": src, "metadata": {}, "outputs": [], "execution_count": None}


def test_only_imports_definitions_and_simple_constants_are_kept():
    ex = extract_cells([code(
        "import torch\nimport torch.nn.functional as F\nEPS = 1e-5\nSCALE = 2 * EPS\nDEV = torch.device('cpu')\n"
        "model = train_for_hours()\nprint('hi')\nfor i in range(3):\n    pass\nx: int = 3\n"
        "def f(a):\n    return a + EPS\nclass K:\n    pass\nf(1)\n")])
    kinds = {tuple(sorted(s.names)): s.kind for s in ex.statements}
    assert kinds == {("torch",): "import", ("F",): "import", ("EPS",): "assign", ("SCALE",): "assign",
                     ("DEV",): "assign", ("x",): "assign", ("f",): "def", ("K",): "class"}


@pytest.mark.parametrize("line,kept", [
    ("%matplotlib inline", "pass"), ("!pip install torch", "pass"), ("files = !ls", "pass"),
    ("torch.nn?", "pass"), ("    %time f()", "    pass"), ("x = 1  # 100% sure", "x = 1  # 100% sure"),
])
def test_ipython_magics_become_pass_and_keep_line_numbers(line, kept):
    assert strip_magics(f"a = 1\n{line}\nb = 2") == f"a = 1\n{kept}\nb = 2"


def test_cell_magics_other_than_timing_skip_the_cell():
    assert strip_magics("%%bash\nrm -rf /") is None
    assert strip_magics("%%time\ndef f():\n    return 1") == "pass\ndef f():\n    return 1"


def test_a_syntax_error_skips_only_its_cell_and_is_reported():
    ex = extract_cells([code("def f(:\n    pass"), {"cell_type": "markdown", "source": "text"}, code("def g():\n    return 2")])
    assert [s.names for s in ex.statements] == [{"g"}]
    assert len(ex.notes) == 1 and "cell 1" in ex.notes[0] and "syntax error" in ex.notes[0]


def test_the_last_definition_wins_and_order_and_metadata_do_not_matter():
    cells = [code("def f():\n    return 1"), code("def helper():\n    return 10"), code("def f():\n    return helper()")]
    ex = extract_cells(cells)
    program = ex.program_for("f")
    assert [s.source for s in program] == ["def helper():\n    return 10", "def f():\n    return helper()"]
    reordered = extract_cells(list(reversed(cells)))             # now the first f is the last one
    assert [s.source for s in reordered.program_for("f")] == ["def f():\n    return 1"]


def test_program_for_is_the_transitive_closure_of_used_names_only():
    ex = extract_cells([code("import torch\nimport numpy as np\nC = 3\nD = C + 1\n"
                             "def a(x):\n    return b(x) * D\ndef b(x):\n    return torch.relu(x)\n"
                             "def unrelated():\n    return np.zeros(1)")])
    names = [n for s in ex.program_for("a") for n in s.names]
    assert set(names) == {"torch", "C", "D", "a", "b"}
    assert ex.program_for("missing") == []


def test_statements_sharing_a_line_are_split_exactly():
    ex = extract_cells([code("import os; X = 1; os.system('echo pwned')")])
    assert [s.source for s in ex.statements] == ["import os", "X = 1"]


def test_similar_names_suggest_a_renamed_function_and_signature_and_loops_are_read():
    ex = extract_cells([code("def nt_xent(z_a, z_b, temperature=0.5, *rest, **kw):\n"
                             "    for i in range(len(z_a)):\n        pass\n    for j in range(3):\n        pass\n"
                             "    return [v for v in z_a]")])
    assert ex.similar_names("nt_xent_loss") == ["nt_xent"]
    st = ex.definitions()["nt_xent"]
    assert signature_of(st) == ["z_a", "z_b", "temperature", "*rest", "**kw"]
    assert loops_in(st) == [2, 6]                        # range(3) is a written-out size, not a data loop


def test_five_thousand_cells_are_extracted_quickly_enough_and_completely(tmp_path):
    cells = [code(f"def f{i}(x):\n    return x + {i}") for i in range(5000)]
    path = write_raw(tmp_path / "big.ipynb", notebook_json(cells))
    ex = extract_notebook(path)
    assert ex.n_code_cells == 5000 and len(ex.statements) == 5000
    assert ex.program_for("f4999")[0].source.endswith("x + 4999")


@pytest.mark.parametrize("data,reason", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2, 3]", "not a Jupyter notebook"),
    (json.dumps({"cells": {}}).encode(), "not a Jupyter notebook"),
    ('{"cells": [], "x": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    (b"", "not valid JSON"),
])
def test_unreadable_files_raise_notebook_error_that_says_why(tmp_path, data, reason):
    path = write_raw(tmp_path / "bad.ipynb", data)
    with pytest.raises(NotebookError, match=reason):
        extract_notebook(path)


def test_notebook_without_nbgrader_metadata_or_with_old_format_still_extracts(tmp_path):
    plain = write_raw(tmp_path / "plain.ipynb", notebook_json([code("def f(x):\n    return x")]))
    assert extract_notebook(plain).function("f") is not None
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "def g(x):\n    return x", "outputs": [], "language": "python"}]}]}
    old = write_raw(tmp_path / "v3.ipynb", json.dumps(v3).encode())
    assert extract_notebook(old).function("g") is not None


def test_empty_notebook_has_nothing_to_grade(tmp_path):
    ex = extract_notebook(write_raw(tmp_path / "empty.ipynb", notebook_json([])))
    assert ex.statements == [] and ex.function("f") is None
