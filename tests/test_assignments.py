"""Are the four assignments consistent, leak-free, runnable, and graded the same by nbgrader and the autograder?

These run the real instructor workflow: build the notebooks from their text sources, generate the student
release with nbgrader, execute every solution notebook (smoke mode) and every untouched release notebook with
nbclient, autograde a sample submission with nbgrader and with the autograder, and compare.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402
import release  # noqa: E402
import samples  # noqa: E402

from autograder.registry import REGISTRY  # noqa: E402

ASSIGNMENTS = [n for n in notebooks.ASSIGNMENTS if (ROOT / "solutions" / n / f"{n}.py").is_file()]
VENV_BIN = str(Path(sys.executable).parent)


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"        # nbgrader shells out to alembic
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra)
    return env


@contextlib.contextmanager
def _kernel_env(**extra):
    """The kernel's environment (nbclient starts it from os.environ), restored afterwards so no later test runs in
    smoke mode by accident."""
    before = dict(os.environ)
    os.environ.update(_env(**extra))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def test_every_assignment_has_a_source():
    assert ASSIGNMENTS == list(notebooks.ASSIGNMENTS)


def test_built_notebooks_are_up_to_date_with_their_sources():
    assert notebooks.main(["check"]) == 0, "run `make notebooks`"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_is_up_to_date_and_leak_free(name):
    assert release.main(["--check", name]) == 0, "run `make release`"
    rel = nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    src = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    assert release.find_leaks(rel, src) == []
    text = (ROOT / "assignments" / name / f"{name}.ipynb").read_text()
    assert "nbgrader_cell" not in text and not re.search(r"\bpoints\(", text)     # not project_points(


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_notebook_grades_each_function_once_with_the_registry_points(name):
    nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    graded = {}
    answers = 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
            answers += 1
        m = re.search(r"points\('(\w+)', '(\w+)', ([\d.]+)\)", cell.source)
        if m and meta.get("grade"):
            fn, assignment, pts = m.group(1), m.group(2), float(m.group(3))
            assert assignment == name and fn not in graded
            assert pts == meta["points"], f"{fn}: cell points {meta['points']} vs call {pts}"
            graded[fn] = pts
    expected = {spec.name: spec.points for spec in REGISTRY[name]}
    assert graded == expected
    assert answers >= 2, "each assignment has at least two written questions"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every solution notebook executed in smoke mode (once per module)."""
    from nbclient import NotebookClient

    out = {}
    for name in ASSIGNMENTS:
        nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
        work = tmp_path_factory.mktemp(name)
        shutil.copy(ROOT / "solutions" / name / f"{name}.ipynb", work)      # the hidden test cells grade this file
        with _kernel_env(COURSE_SMOKE="1"):
            NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
        out[name] = nb
    return out


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_notebook_runs_end_to_end_in_smoke_mode(executed, name):
    nb = executed[name]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("check(")]
    assert checks, "every graded function is followed by a self-check"
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "FAIL" not in text, text


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_release_stops_at_its_first_scaffold_with_not_implemented(name, tmp_path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with _kernel_env(COURSE_SMOKE="1"), pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError"
    failed = [i for i, c in enumerate(nb.cells) if any(o.output_type == "error" for o in c.get("outputs", []))]
    first_scaffold = next(i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source
                          and not re.match(r"def \w+_loop\(", c.source))           # loop warm-ups are optional
    assert len(failed) == 1 and failed[0] > first_scaffold
    assert "raise NotImplementedError()" not in "".join(c.source for c in nb.cells[first_scaffold + 1 : failed[0]])


def test_autograder_verify_passes_on_solutions_and_releases():
    out = subprocess.run([sys.executable, "-m", "autograder", "verify"], cwd=ROOT, capture_output=True, text=True,
                         env=_env(), timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_nbgrader_workflow_agrees_with_the_autograder(name, tmp_path):
    """generate_assignment -> autograde -> generate_feedback -> export on a submission with typical mistakes."""
    course = tmp_path / "course"
    (course / "solutions" / name).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "solutions" / name / f"{name}.ipynb", course / "solutions" / name)
    sub_dir = course / "submitted" / "student1" / name
    sub_dir.mkdir(parents=True)
    buggy = {fn: body for fn, _, _, body in samples.typical_mistakes(name)}
    nbformat.write(samples.make_submission(name, buggy), sub_dir / f"{name}.ipynb")

    def nbgrader(*args):
        res = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                             env=_env(), timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
        return res

    nbgrader("generate_assignment", name, "--force")
    nbgrader("autograde", name, "--force")
    nbgrader("generate_feedback", name, "--force")
    nbgrader("export")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb_scores = {g.cell.name: g.score for g in gb.find_submission_notebook(name, name, "student1").grades}
    results = tmp_path / "results.json"
    out = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sub_dir / f"{name}.ipynb"),
                          "--assignment", name, "--out", str(results), "--quiet"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    ag_scores = {t["extra_data"]["function"]: t["score"] for t in json.loads(results.read_text())["tests"]}
    for fn, score in ag_scores.items():
        assert nb_scores[f"test_{fn}"] == pytest.approx(score), fn
    planted = {fn for fn, _, _, _ in samples.typical_mistakes(name)}
    assert all(ag_scores[fn] < 10 for fn in planted) and all(ag_scores[fn] == 10 for fn in ag_scores if fn not in planted)

    with open(course / "grades.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    manual = sum(float(g) for k, g in nb_scores.items() if not k.startswith("test_") and g is not None)
    assert float(row["raw_score"]) == pytest.approx(sum(ag_scores.values()) + manual)

    feedback = (course / "feedback" / "student1" / name / f"{name}.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in feedback and "from autograder" not in feedback


TAMPER = {
    # the test cells call check() and autograder.nbgrader_cell.points in the student's kernel: replace both
    "points": "import autograder.nbgrader_cell as _cell\n_cell.points = lambda *args, **kwargs: float(args[2])\n"
              "check = lambda *args, **kwargs: None\n",
    # make every comparison a kernel-side check could make succeed
    "torch": "import torch\ntorch.allclose = lambda *args, **kwargs: True\ntorch.equal = lambda *args, **kwargs: True\n",
}


def _autograde_tampered(tmp_path: Path, name: str, attack: str, protected: bool) -> dict[str, float]:
    """nbgrader's test-cell scores for a submission with typical mistakes whose first graded cell also tampers."""
    course = tmp_path / ("protected" if protected else "unprotected")
    (course / "solutions" / name).mkdir(parents=True)
    config = (ROOT / "nbgrader_config.py").read_text()
    if not protected:
        config = config.replace('    "autograder.nbgrader_protect.ProtectedGrades",\n', "")
    (course / "nbgrader_config.py").write_text(config)
    shutil.copy(ROOT / "solutions" / name / f"{name}.ipynb", course / "solutions" / name)
    sub_dir = course / "submitted" / "student1" / name
    sub_dir.mkdir(parents=True)
    nb = samples.make_submission(name, {fn: body for fn, _, _, body in samples.typical_mistakes(name)})
    graded = next(c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    graded.source += "\n\n" + TAMPER[attack]
    nbformat.write(nb, sub_dir / f"{name}.ipynb")
    for step in (("generate_assignment", name, "--force"), ("autograde", name, "--force")):
        res = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=course, capture_output=True, text=True,
                             env=_env(), timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grades = gb.find_submission_notebook(name, name, "student1").grades
        return {g.cell.name[len("test_"):]: g.score for g in grades if g.cell.name.startswith("test_")}


@pytest.mark.parametrize("attack", sorted(TAMPER))
def test_nbgrader_autograde_gives_a_tampering_submission_exactly_the_protected_grade(attack, tmp_path):
    name = "a1_gans"
    scores = _autograde_tampered(tmp_path, name, attack, protected=True)
    sub = tmp_path / "protected" / "submitted" / "student1" / name / f"{name}.ipynb"
    results = tmp_path / "results.json"
    out = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sub), "--assignment", name, "--out",
                          str(results), "--quiet"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    protected = {t["extra_data"]["function"]: t["score"] for t in json.loads(results.read_text())["tests"]}
    assert scores == pytest.approx(protected) and sum(protected.values()) < 10 * len(protected)
    if attack == "points":                   # the same notebook without the preprocessor takes every point it asks
        assert _autograde_tampered(tmp_path, name, attack, protected=False) == {fn: 10.0 for fn in protected}
