"""Does the nbgrader bridge give a hidden test cell the same partial credit as `python -m autograder grade`,
inside a real kernel, without writing to stderr (which nbgrader would score as 0)?"""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from autograder.fixtures import perfect_source
from agpaths import ROOT, cli_env
from nbfactory import with_functions, write

nbclient = pytest.importorskip("nbclient")
nbgrader_utils = pytest.importorskip("nbgrader.utils")

# the non-saturating branch with its sign flipped: some checks pass, so the credit is a fraction
BUGGY_GENERATOR = perfect_source("generator_loss").replace("    return F.softplus(-logits_fake).mean()",
                                                              "    return -F.softplus(-logits_fake).mean()")


def _grade_cell(function: str, points: int) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(f"from autograder.nbgrader_cell import points\npoints({function!r}, 'a1_gans', {points})")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": points,
                                 "grade_id": f"hidden_{function}", "schema_version": 3}
    return cell


def test_points_in_a_kernel_match_the_grader_and_nbgrader_reads_them_as_partial_credit(tmp_path, monkeypatch):
    nb = with_functions("a1_gans", {"generator_loss": BUGGY_GENERATOR})
    nb.cells = [c for c in nb.cells if "hidden tests" not in c.source and "%matplotlib" not in c.source]
    nb.cells += [_grade_cell("discriminator_loss", 10), _grade_cell("generator_loss", 4)]
    path = write(nb, tmp_path / "submitted" / "a1_gans.ipynb")          # the kernel's folder holds the notebook

    out = tmp_path / "results.json"
    cli = subprocess.run([sys.executable, "-m", "autograder", "grade", str(path), "--assignment", "a1_gans",
                          "--out", str(out), "--quiet"], env=cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    expected = {t["extra_data"]["function"]: t["score"] / t["max_score"] for t in json.loads(out.read_text())["tests"]}

    executed = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(executed, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    monkeypatch.setenv("PYTHONPATH", cli_env()["PYTHONPATH"])          # the kernel imports this checkout
    monkeypatch.setenv("TMPDIR", str(tmp_path))                        # the bridge's result cache goes here
    client.execute()
    grades = {}
    for cell in executed.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.startswith("hidden_"):
            assert not [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
            grades[grade_id[len("hidden_"):]] = nbgrader_utils.determine_grade(cell)
    assert grades["discriminator_loss"] == (10.0, 10.0)
    score, max_points = grades["generator_loss"]
    assert max_points == 4.0 and score == pytest.approx(4 * expected["generator_loss"], abs=1e-4) and 0 < score < 4
