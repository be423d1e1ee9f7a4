"""Does extraction keep honest code that looks like IPython syntax, and does a hostile notebook file cost only its
own grade (a reason, a zero), never the grader's memory or a crash?"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autograder.notebook import MAX_CELL_CODE, NotebookError, extract_cells, extract_notebook, strip_magics
from agpaths import ROOT, cli_env
from nbfactory import notebook_json, with_functions, write, write_raw


def code(src: str) -> dict:
    return {"cell_type": "code", "source": src, "metadata": {}, "outputs": [], "execution_count": None}


@pytest.mark.parametrize("src", [
    "x = (10\n     % 3)",
    "x = [7\n%2]",
    "x = 10 \\\n    % 3",
    's = """\n%not a magic\n!nor a shell line\n"""',
    "s = 'a\\\n%b'",
    "d = {'a': (1,\n  2)}\n",
])
def test_percent_and_bang_inside_brackets_strings_or_continuations_stay_python(src):
    assert strip_magics(src) == src
    assert extract_cells([code(src)]).statements, src


def test_magics_are_still_recognised_after_brackets_and_strings_close():
    src = "x = (1,\n     2)\n%matplotlib inline\ns = '''\n'''\n!ls\ny = 3"
    assert strip_magics(src) == "x = (1,\n     2)\npass\ns = '''\n'''\npass\ny = 3"


def test_a_graded_function_with_a_continued_modulo_is_kept():
    src = ("def enqueue(queue, ptr, keys):\n    k = queue.shape[0]\n    queue[(ptr + k - 1\n           % k)] = 0\n"
           "    return (ptr + keys.shape[0]\n            % k)\n")
    ex = extract_cells([code(src)])
    assert ex.function("enqueue") is not None and not ex.notes


def _peak_rss_mb_of_extracting(path) -> float:
    """Peak RSS growth (MB) of a fresh interpreter that extracts ``path``."""
    script = ("import resource, sys\nfrom autograder.notebook import extract_notebook, NotebookError\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "try:\n    extract_notebook(sys.argv[1])\nexcept NotebookError:\n    pass\n"
              "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path)], env=cli_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.strip())


def test_a_notebook_of_a_million_empty_outputs_is_refused_cheaply(tmp_path):
    cells = [{**code("x = 1"), "outputs": [{}] * 1_500_000}]
    path = write_raw(tmp_path / "outputs.ipynb", notebook_json(cells))
    with pytest.raises(NotebookError, match="JSON values"):
        extract_notebook(path)
    assert _peak_rss_mb_of_extracting(path) < 150


def test_a_huge_list_literal_is_skipped_without_parsing_it(tmp_path):
    path = write_raw(tmp_path / "literal.ipynb", notebook_json([code("X = [" + "0," * 2_000_000 + "]"),
                                                                code("def f(x):\n    return x")]))
    ex = extract_notebook(path)
    assert ex.function("f") is not None and "X" not in ex.definitions()
    assert any("characters of code" in n and f"{MAX_CELL_CODE:,}" in n for n in ex.notes)
    assert _peak_rss_mb_of_extracting(path) < 150


def test_deeply_nested_json_and_a_deep_lambda_are_reasons_not_crashes(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    data = '{"cells": [], "metadata": {"a": ' + deep + '}, "nbformat": 4, "nbformat_minor": 5}'
    with pytest.raises(NotebookError, match="nested too deeply"):
        extract_notebook(write_raw(tmp_path / "deep.ipynb", data.encode()))
    ex = extract_cells([code("f = " + "lambda: " * 5000 + "0"), code("def g():\n    return 1; h = " + "lambda: " * 950 + "0")])
    assert any("nested too deeply" in n for n in ex.notes)


def test_hostile_files_score_zero_with_a_reason_and_honest_functions_next_to_a_deep_lambda_keep_their_marks(
        sandbox, tmp_path):
    from autograder.grading import grade_notebook

    deep = write_raw(tmp_path / "deep.ipynb", ('{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}").encode())
    result = grade_notebook(deep, "a1_gans", sandbox=sandbox)
    assert result.score == 0 and "nested too deeply" in result.notebook_error
    nb = with_functions("a1_gans", {}, extra_cells=["f = " + "lambda: " * 5000 + "0", "X = [" + "0," * 300_000 + "]"])
    result = grade_notebook(write(nb, tmp_path / "lambda.ipynb"), "a1_gans", sandbox=sandbox)
    assert result.score == result.max_score
    assert any("nested too deeply" in n for n in result.notes) and any("characters of code" in n for n in result.notes)


def test_the_version_3_layout_and_list_sources_are_read_without_nbformat(tmp_path):
    v3 = {"nbformat": 3, "worksheets": [{"cells": [{"cell_type": "code", "input": ["def g(x):\n", "    return x"]}]},
                                        {"cells": [{"cell_type": "markdown", "source": "text"}]}]}
    ex = extract_notebook(write_raw(tmp_path / "v3.ipynb", json.dumps(v3).encode()))
    assert ex.function("g") is not None and ex.n_cells == 2
