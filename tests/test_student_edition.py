"""Does the student edition hold every helper and no answer, and does it run the notebooks from a bare venv?

The build (scripts/student.py) replaces the modules of withheld references by stubs, leaves out the loop versions
and the source generator, ships the synthetic scenes, and leak-scans the wheel (scripts/leakscan.py): every
function in it, as a normalised AST, against every reference, loop version and solution cell. A planted copy of a
reference must fail the scan. Then a fresh virtual environment gets torch and only the student wheel, and runs
every release notebook with the solutions pasted in (smoke mode), and every untouched release.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

import course_lib
from course_lib.manifest import GRADED, assignment_names

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import leakscan  # noqa: E402
import samples  # noqa: E402
import student  # noqa: E402

RELEASED = [n for n in assignment_names() if (ROOT / "assignments" / n / f"{n}.ipynb").is_file()]


@pytest.fixture(scope="module")
def answers():
    return leakscan.answer_digests()


@pytest.fixture(scope="module")
def edition(tmp_path_factory, answers):
    """The default student edition (nothing released): its staged tree and its wheel."""
    work = tmp_path_factory.mktemp("student")
    tree = student.stage(set(), work / "tree")
    wheel = student.build_wheel(tree, work / "dist", course_lib.__version__)
    return tree, wheel


def _run_in(tree: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` with only the staged student tree importable as course_lib: no site processing (so the
    instructor checkout's editable install is not on the path), torch's site-packages added by hand."""
    site = str(Path(torch.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = [{str(tree)!r}, {site!r}]\n"
                           + code], cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_no_answer_no_instructor_file_and_no_hidden_text(edition, answers):
    _, wheel = edition
    assert leakscan.scan_wheel(wheel, answers) == []
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith(("autograder", "solutions")) or "/naive" in n or "sourcegen" in n]
    assert "course_lib/checks_data/nt_xent_loss.json" in names and "course_lib/data/packaged/index.json" in names


def test_a_planted_reference_fails_the_scan(edition, answers, tmp_path):
    tree, _ = edition
    planted = tmp_path / "tree"
    import shutil

    shutil.copytree(tree, planted)
    copy = textwrap.dedent(inspect.getsource(course_lib.sample_pdf)).replace("sample_pdf", "_resample")
    copy = copy.replace("weights", "mass_").replace("bins", "edges_")     # renamed, reworded: still found
    (planted / "course_lib" / "viz.py").write_text((planted / "course_lib" / "viz.py").read_text() + "\n\n" + copy)
    findings = leakscan.scan_wheel(student.build_wheel(planted, tmp_path / "dist", "0.0"), answers)
    assert any("viz.py" in f and "sample_pdf" in f for f in findings), findings


def test_every_graded_name_is_withheld_and_experiments_require_the_students_functions(edition):
    tree, _ = edition
    out = _run_in(tree, textwrap.dedent(f"""
        import importlib, course_lib, torch
        from course_lib.manifest import WithheldError
        for name in {[g.name for g in GRADED]!r}:
            fn = getattr(course_lib, name)
            try:
                fn(*([None] * 8))
            except NotImplementedError as exc:
                assert "withheld" in str(exc), (name, exc)
            except TypeError:
                pass
            else:
                raise AssertionError(name + " computed something")
            assert getattr(fn, "__withheld__", False), name
        for missing in ("course_lib.naive", "course_lib.sourcegen", "course_lib.bench", "autograder"):
            try:
                importlib.import_module(missing)
            except ImportError:
                pass
            else:
                raise AssertionError(missing + " is importable")
        from course_lib.experiments import gan
        try:
            gan.run()
        except WithheldError as exc:
            assert "discriminator_loss" in str(exc)
        else:
            raise AssertionError("the GAN experiment ran without the student's losses")
        print("ok")
    """))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr


def test_released_assignments_keep_their_references(tmp_path):
    tree = student.stage({"a1_gans"}, tmp_path / "tree")
    out = _run_in(tree, "import course_lib, torch\nprint(float(course_lib.discriminator_loss(torch.zeros(2), "
                        "torch.zeros(2))))\nprint(getattr(course_lib.nt_xent_loss, '__withheld__', False))")
    assert out.returncode == 0, out.stderr
    loss, withheld = out.stdout.split()
    assert abs(float(loss) - 2 * 0.6931471805599453) < 1e-6 and withheld == "True"


# ------------------------------------------------------------------------------------------------ bare venv
@pytest.fixture(scope="module")
def bare_venv(edition, tmp_path_factory):
    """A fresh venv with this torch and only the student wheel (plus ipykernel to run notebooks)."""
    _, wheel = edition
    root = tmp_path_factory.mktemp("bare")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    constraint = root / "constraint.txt"
    constraint.write_text(f"torch=={torch.__version__}\n")
    env = dict(os.environ, PIP_CONSTRAINT=str(constraint), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    for args in ([f"torch=={torch.__version__}"], [str(wheel), "ipykernel"]):
        res = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], env=env, capture_output=True,
                             text=True, timeout=1200)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    kernels = root / "share" / "jupyter" / "kernels" / "student"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student edition", "language": "python"}))
    return python, root / "share" / "jupyter"


def _execute(nb, folder: Path, jupyter_path: Path):
    from nbclient import NotebookClient

    env_before = dict(os.environ)
    os.environ.update(COURSE_SMOKE="1", MPLBACKEND="Agg", JUPYTER_PATH=str(jupyter_path))
    try:
        client = NotebookClient(nb, timeout=600, kernel_name="student", resources={"metadata": {"path": str(folder)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)


def test_the_bare_venv_cannot_reach_a_reference(bare_venv):
    python, _ = bare_venv
    code = textwrap.dedent("""
        import importlib, pkgutil, course_lib
        from course_lib.manifest import GRADED, is_withheld
        graded = {g.name for g in GRADED}
        for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if name in graded and callable(value):
                    assert is_withheld(value), f"{info.name}.{name} is a reference"
        print("ok")
    """)
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=600, cwd="/")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def test_every_release_notebook_runs_with_the_solutions_pasted_in(bare_venv, tmp_path):
    _, jupyter_path = bare_venv
    for name in RELEASED:                                  # later notebooks may read earlier ones (a5 reads a4)
        folder = tmp_path / "assignments" / name
        folder.mkdir(parents=True)
        nbformat.write(samples.make_submission(name), folder / f"{name}.ipynb")
    for name in RELEASED:
        folder = tmp_path / "assignments" / name
        nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        _execute(nb, folder, jupyter_path)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        assert errors == [], (name, errors[:1])


@pytest.mark.parametrize("name", RELEASED)
def test_an_untouched_release_stops_at_its_first_scaffold(bare_venv, name, tmp_path):
    from nbclient.exceptions import CellExecutionError

    _, jupyter_path = bare_venv
    for earlier in RELEASED[: RELEASED.index(name)]:     # finished earlier notebooks beside it (a5 reads a4's)
        (tmp_path / earlier).mkdir()
        nbformat.write(samples.make_submission(earlier), tmp_path / earlier / f"{earlier}.ipynb")
    folder = tmp_path / name
    folder.mkdir()
    nb = nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    with pytest.raises(CellExecutionError) as info:
        _execute(nb, folder, jupyter_path)
    assert info.value.ename == "NotImplementedError"
    failed = [i for i, c in enumerate(nb.cells) if any(o.output_type == "error" for o in c.get("outputs", []))]
    first_scaffold = next(i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source
                          and not re.match(r"def \w+_loop\(", c.source))           # loop warm-ups are optional
    assert len(failed) == 1 and failed[0] > first_scaffold


def test_a5_without_a_finished_a4_stops_first_at_saying_which_notebook_to_finish(bare_venv, tmp_path):
    from nbclient.exceptions import CellExecutionError

    _, jupyter_path = bare_venv
    nb = nbformat.read(ROOT / "assignments" / "a5_priors" / "a5_priors.ipynb", as_version=4)
    with pytest.raises(CellExecutionError) as info:
        _execute(nb, tmp_path, jupyter_path)
    assert info.value.ename == "ValueError"
    message = str(info.value.evalue)
    assert "a4_rendering.ipynb (no such file)" in message and "finish it in that notebook" in message
