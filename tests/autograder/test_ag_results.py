"""Does grading give full marks to the reference, zero to the untouched release, identical scores on a regrade,
and a results.json that follows Gradescope's spec? Do the command's exit codes follow the contract?"""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

import course_lib
from autograder import cli
from autograder.registry import REGISTRY
from autograder.grading import grade_notebook, run_seed
from autograder.results import results_json
from agpaths import ASSIGNMENTS, ROOT, cli_env
from nbfactory import ENQUEUE_DROPS, NT_XENT_NO_MASK, with_functions, write


@pytest.fixture(scope="module")
def graded(sandbox, fixture_notebooks):
    return {(a, kind): grade_notebook(fixture_notebooks[a][kind], a, sandbox=sandbox)
            for a in ASSIGNMENTS for kind in ("perfect", "release")}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_perfect_fixture_scores_full_marks(graded, assignment):
    result = graded[(assignment, "perfect")]
    assert result.score == result.max_score == 10 * len(result.functions)
    assert result.notebook_error is None and not result.notes


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_release_scores_zero_without_a_grader_error(graded, assignment):
    result = graded[(assignment, "release")]
    assert result.score == 0 and result.notebook_error is None
    for f in result.functions:
        assert f.problem is None
        assert all(c.verdict.message.startswith(("not implemented yet", "not credited")) for cr in f.checks for c in cr.cases)


def test_results_json_follows_the_gradescope_spec(graded):
    result = graded[("a3_contrastive", "perfect")]
    res = json.loads(json.dumps(results_json(result)))           # plain JSON, no NaN
    total = sum(spec.points for spec in REGISTRY["a3_contrastive"])
    assert res["score"] == total and res["max_score"] == total and res["execution_time"] > 0
    assert res["visibility"] == "visible" and res["output_format"] == "text"
    assert [t["extra_data"]["function"] for t in res["tests"]] == list(course_lib.GRADED_FUNCTIONS["a3_contrastive"])
    for t in res["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "visibility", "status", "extra_data", "output_format"}
        assert t["status"] == "passed" and t["score"] == t["max_score"] == 10
        assert sum(c["score"] for c in t["extra_data"]["checks"].values()) == pytest.approx(t["score"])
    assert sum(t["score"] for t in res["tests"]) == res["score"]
    assert res["extra_data"]["sha256"] == result.sha256 and res["extra_data"]["seed"] == result.seed


def test_grading_the_same_file_twice_gives_identical_scores_and_seed_replays(sandbox, tmp_path):
    nb = write(with_functions("a3_contrastive", {"enqueue": ENQUEUE_DROPS}), tmp_path / "buggy.ipynb")
    first = grade_notebook(nb, "a3_contrastive", sandbox=sandbox, functions=("enqueue",))
    second = grade_notebook(nb, "a3_contrastive", sandbox=sandbox, functions=("enqueue",))
    scores = lambda r: [(c.name, c.score) for f in r.functions for c in f.checks]  # noqa: E731
    assert first.seed == second.seed and scores(first) == scores(second) and 0 < first.score < 10
    salted = run_seed(first.sha256, "a3_contrastive", salt="secret")
    assert salted != first.seed
    replay = grade_notebook(nb, "a3_contrastive", sandbox=sandbox, seed=first.seed, salt="secret", functions=("enqueue",))
    assert scores(replay) == scores(first)



def test_the_seed_follows_the_code_not_outputs_metadata_or_markdown(sandbox, tmp_path):
    # nbgrader autograde grades a rewritten copy of the file: the same code must get the same cases
    nb = with_functions("a3_contrastive", {"nt_xent_loss": NT_XENT_NO_MASK})
    first = write(nb, tmp_path / "a.ipynb")
    nb.metadata["rewritten_by"] = "nbgrader"
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("a note that changes the file's bytes"))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="printed\n")]
    second = write(nb, tmp_path / "b.ipynb")
    a = grade_notebook(first, "a3_contrastive", sandbox=sandbox, functions=("nt_xent_loss",))
    b = grade_notebook(second, "a3_contrastive", sandbox=sandbox, functions=("nt_xent_loss",))
    assert a.sha256 != b.sha256 and a.seed == b.seed
    nb.cells.append(nbformat.v4.new_code_cell("from autograder.nbgrader_cell import points\nUNUSED = 1"))
    c = grade_notebook(write(nb, tmp_path / "c.ipynb"), "a3_contrastive", sandbox=sandbox, functions=("nt_xent_loss",))
    assert c.seed == a.seed                                         # code no graded function uses
    nb.cells.append(nbformat.v4.new_code_cell("def nt_xent_loss(z_a, z_b, temperature=0.5):\n"
                                              "    return (z_a * z_b).sum() * 0.0"))    # redefined: last one wins
    d = grade_notebook(write(nb, tmp_path / "d.ipynb"), "a3_contrastive", sandbox=sandbox, functions=("nt_xent_loss",))
    assert d.seed != a.seed                                         # the graded code changed

def _cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "autograder", *args], env=cli_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_grade_command_writes_results_prints_a_summary_and_exits_zero(fixture_notebooks, tmp_path):
    out = tmp_path / "out" / "results.json"
    proc = _cli("grade", str(fixture_notebooks["a1_gans"]["release"]), "--assignment", "a1_gans", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "discriminator_loss" in proc.stdout and "generator_loss" in proc.stdout and "total" in proc.stdout
    assert json.loads(out.read_text())["score"] == 0
    assert not list(out.parent.glob(".*.tmp"))                    # the temporary file was renamed, not left behind


@pytest.mark.parametrize("args,needle", [
    (["grade", "missing.ipynb", "--assignment", "a1_gans", "--out", "r.json"], "no such notebook"),
    (["grade", "x.ipynb", "--assignment", "a9_nope", "--out", "r.json"], "unknown assignment"),
    (["batch", ".", "--assignment", "a1_gans", "--out", "g.csv", "--jobs", "0"], "positive integer"),
    (["batch", ".", "--assignment", "a1_gans", "--out", "g.csv", "--jobs", "two"], "positive integer"),
    (["grade", "x.ipynb", "--out", "r.json"], "--assignment"),
    ([], "command"),
])
def test_usage_errors_exit_two_with_a_one_line_message(args, needle, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


@pytest.mark.parametrize("command", ["grade", "batch", "gradescope", "verify", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0 and "--" in capsys.readouterr().out


def test_a_grader_failure_exits_one_and_still_writes_a_results_file(fixture_notebooks, tmp_path, monkeypatch):
    import autograder.grading

    def broken(*a, **k):
        raise RuntimeError("simulated grader failure")

    monkeypatch.setattr(autograder.grading, "grade_notebook", broken)
    out = tmp_path / "results.json"
    code = cli.main(["grade", str(fixture_notebooks["a1_gans"]["perfect"]), "--assignment", "a1_gans", "--out", str(out)])
    assert code == 1
    res = json.loads(out.read_text())
    assert res["score"] == 0 and "simulated grader failure" in res["output"]
