"""Does batch grading write one gradebook row per submission, survive broken ones, run in parallel with the same
results, and resume after kill -9 by grading only what is missing?"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder.batch import grade_batch
from agpaths import ROOT, cli_env
from nbfactory import perfect, release, with_functions, write, write_raw


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    perfect("a1_gans", folder / "alice" / "a1_gans.ipynb")
    release("a1_gans", folder / "bob" / "a1_gans.ipynb")
    write(with_functions("a1_gans", {"generator_loss": "def generator_loss(logits_fake, saturating=False):\n    return 0\n"}),
          folder / "carol" / "a1_gans.ipynb")
    write_raw(folder / "dave" / "a1_gans.ipynb", b"{ broken")
    write_raw(folder / "erin" / ".ipynb_checkpoints" / "a1_gans-checkpoint.ipynb", b"{}")   # ignored
    return folder


def _rows(path):
    with open(path, newline="") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


def test_batch_writes_one_row_per_submission_with_scores_and_errors(submissions, tmp_path):
    out = tmp_path / "gradebook.csv"
    summary = grade_batch(submissions, "a1_gans", out, jobs=2, progress=False)
    rows = _rows(out)
    assert sorted(rows) == ["alice/a1_gans.ipynb", "bob/a1_gans.ipynb", "carol/a1_gans.ipynb", "dave/a1_gans.ipynb"]
    assert rows["alice/a1_gans.ipynb"]["total"] == "20.0" and rows["alice/a1_gans.ipynb"]["error"] == ""
    assert rows["bob/a1_gans.ipynb"]["total"] == "0.0"
    assert rows["carol/a1_gans.ipynb"]["discriminator_loss"] == "10.0" and float(rows["carol/a1_gans.ipynb"]["generator_loss"]) == 0
    assert "not valid JSON" in rows["dave/a1_gans.ipynb"]["error"] and rows["dave/a1_gans.ipynb"]["total"] == "0.0"
    assert summary.graded == 4 and summary.cached == 0 and summary.failed == 0
    with open(out, newline="") as f:
        assert next(csv.reader(f)) == ["submission", "sha256", "discriminator_loss", "generator_loss", "total", "max_total", "error",
                                     "sandbox_mode"]
    again = grade_batch(submissions, "a1_gans", out, jobs=1, progress=False)
    assert again.cached == 4 and again.graded == 0 and _rows(out) == rows


def test_batch_resumes_after_kill_9_and_grades_only_what_is_missing(tmp_path):
    folder = tmp_path / "subs"
    for i in range(5):
        write(with_functions("a1_gans", {}, extra_cells=[f"# submission {i}"]), folder / f"s{i}.ipynb")
    out, cache = tmp_path / "book.csv", tmp_path / "cache"
    args = [sys.executable, "-m", "autograder", "batch", str(folder), "--assignment", "a1_gans", "--out", str(out),
            "--cache-dir", str(cache), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(args, env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(cache.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(cache.glob("*.json")))
    assert 1 <= done < 5
    for entry in cache.glob("*.json"):                               # every entry is complete (atomic writes)
        assert json.loads(entry.read_text())["max_score"] == 20
    rerun = subprocess.run(args, env=cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{5 - done} graded, {done} from the cache" in rerun.stdout
    rows = _rows(out)
    assert len(rows) == 5 and all(r["total"] == "20.0" for r in rows.values())
