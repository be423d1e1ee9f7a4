"""Do the project files agree with each other (environment.yml vs pyproject.toml, CI vs README)?"""
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}              # PyPI name -> conda-forge name where they differ


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower()


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        reqs += [r for r in items if not r.startswith(project["name"])]
    return {_name(r): r for r in reqs}


def test_environment_yml_names_every_pyproject_requirement():
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
        else:
            conda[_name(dep)] = dep
    assert any(p.strip() in ("-e .", "-e .[dev]") for p in pip), "environment.yml must install the project via pip"
    assert "python" in conda and "pip" in conda
    missing, loose = [], []
    for name, req in _pyproject_requirements().items():
        conda_name = CONDA_NAMES.get(name, name)
        if conda_name not in conda:
            missing.append(name)
            continue
        bound = re.search(r">=\s*([\w.]+)", req)
        if bound and bound.group(1) not in conda[conda_name]:
            loose.append(f"{conda_name}: pyproject says {req!r}, environment.yml says {conda[conda_name]!r}")
    assert not missing, f"environment.yml lacks {missing}"
    assert not loose, "; ".join(loose)


def test_ci_runs_the_readme_test_command_and_fails_on_no_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme
    assert re.search(r'"\$rc" -eq 5', ci), ".ci/run must turn pytest's 'no tests' (exit 5) into a failure"


def test_every_top_level_folder_of_the_layout_exists_and_says_what_it_is_for():
    for folder in ["assignments", "solutions", "course_lib", "autograder", "data_scripts"]:
        path = ROOT / folder
        assert path.is_dir(), folder
        has_code = any(path.glob("*.py")) or any(path.glob("*/*.ipynb"))
        assert has_code or (path / "README.md").is_file(), f"{folder}/ is empty and has no README"
