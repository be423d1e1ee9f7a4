"""Do the gradescope zip, verify, bench and the plain-pytest hidden suite work end to end?"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile

import pytest

from autograder.gradescope import build_zip
from agpaths import ROOT, cli_env
from nbfactory import NT_XENT_NO_MASK, perfect, release, with_functions, write


def test_gradescope_zip_runs_against_redirected_folders_and_writes_results(tmp_path):
    zpath = build_zip("a1_gans", tmp_path / "autograder.zip")
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        zf.extractall(tmp_path / "ag")
    assert {"setup.sh", "run_autograder", "source/pyproject.toml", "source/autograder/cli.py",
            "source/course_lib/gan.py", "source/autograder/hidden_tests/test_hidden.py"} <= set(names)
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert not any("__pycache__" in n for n in names)
    setup = (tmp_path / "ag" / "setup.sh").read_text()
    assert "download.pytorch.org/whl/cpu" in setup and "pip install /autograder/source" in setup
    run = tmp_path / "ag" / "run_autograder"
    os.chmod(run, 0o755)
    perfect("a1_gans", tmp_path / "submission" / "my_work.ipynb")
    env = cli_env(AUTOGRADER_SUBMISSION_DIR=str(tmp_path / "submission"), AUTOGRADER_RESULTS_DIR=str(tmp_path / "results"),
                  AUTOGRADER_SOURCE_DIR=str(tmp_path / "ag" / "source"), AUTOGRADER_PYTHON=sys.executable,
                  PYTHONPATH="")                                        # only the zip's sources
    proc = subprocess.run(["bash", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    assert res["score"] == 20 and res["max_score"] == 20
    (tmp_path / "submission" / "my_work.ipynb").unlink()
    proc = subprocess.run(["bash", str(run)], env=env, capture_output=True, text=True, timeout=60)
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    assert proc.returncode == 0 and res["score"] == 0 and "No .ipynb" in res["output"]


def _verify(*args):
    return subprocess.run([sys.executable, "-m", "autograder", "verify", *args], env=cli_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_verify_accepts_good_notebooks_rejects_a_bad_solution_and_passes_when_there_are_none(tmp_path):
    sol, rel = tmp_path / "solutions", tmp_path / "assignments"
    perfect("a1_gans", sol / "a1_gans" / "a1_gans.ipynb")
    release("a1_gans", rel / "a1_gans" / "a1_gans.ipynb")
    ok = _verify("--solutions", str(sol), "--assignments", str(rel))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2/2 notebooks as expected" in ok.stdout
    write(with_functions("a1_gans", {"generator_loss": "def generator_loss(logits_fake, saturating=False):\n    return 0\n"}),
          sol / "a1_gans" / "a1_gans.ipynb")
    bad = _verify("--solutions", str(sol), "--assignments", str(rel))
    assert bad.returncode == 1 and "FAIL solution" in bad.stdout and "generator_loss" in bad.stdout
    empty = _verify("--solutions", str(tmp_path / "none"), "--assignments", str(tmp_path / "none"))
    assert empty.returncode == 0 and "no notebooks found" in empty.stdout


@pytest.mark.slow
def test_bench_reports_seconds_memory_and_the_nbgrader_comparison(tmp_path):
    sol = tmp_path / "solutions"
    perfect("a1_gans", sol / "a1_gans" / "a1_gans.ipynb")
    proc = subprocess.run([sys.executable, "-m", "autograder", "bench", "--assignment", "a1_gans", "--solutions", str(sol)],
                          env=cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    cols = next(line for line in proc.stdout.splitlines() if line.startswith("a1_gans")).split()
    cold, warm, nbgrader = float(cols[2]), float(cols[3]), float(cols[4])
    assert cols[1] == "solution" and cols[7] == "20/20"
    assert 0 < warm < cold and nbgrader > warm                         # a warm grade beats nbgrader autograde
    assert 50 < float(cols[8]) < 768                                   # worker peak RSS in MB


def _hidden(notebook, assignment):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "autograder/hidden_tests",
                           "--submission", str(notebook), "--assignment", assignment], env=cli_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_hidden_suite_runs_with_plain_pytest_passing_the_perfect_fixture_and_failing_a_buggy_one(fixture_notebooks, tmp_path):
    good = _hidden(fixture_notebooks["a3_contrastive"]["perfect"], "a3_contrastive")
    assert good.returncode == 0 and "passed" in good.stdout and "failed" not in good.stdout, good.stdout[-2000:]
    from autograder.registry import REGISTRY

    n_checks = int(good.stdout.strip().splitlines()[-1].split()[0])
    assert n_checks == sum(len(spec.checks) for spec in REGISTRY["a3_contrastive"])
    buggy = write(with_functions("a3_contrastive", {"nt_xent_loss": NT_XENT_NO_MASK}), tmp_path / "buggy.ipynb")
    bad = _hidden(buggy, "a3_contrastive")
    assert bad.returncode == 1
    assert "test_check[nt_xent_loss::values]" in bad.stdout
    assert "test_check[info_nce_loss::values]" not in bad.stdout.split("short test summary")[-1]
