"""Shared fixtures for the autograder tests: one sandbox (zygote) for the session and generated fixture
notebooks. Helpers live in agpaths.py and nbfactory.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from agpaths import ASSIGNMENTS  # noqa: E402


@pytest.fixture(scope="session")
def sandbox():
    """One zygote for the whole session (2 s per check: every honest case takes milliseconds)."""
    from autograder.sandbox import Sandbox, SandboxConfig

    sb = Sandbox(SandboxConfig(case_timeout_s=2.0, cpu_s_per_case=2.0)).start()
    yield sb
    sb.close()


@pytest.fixture(scope="session")
def fixture_notebooks(tmp_path_factory):
    """assignment -> {"perfect": path, "release": path}."""
    from nbfactory import perfect, release

    base = tmp_path_factory.mktemp("fixture_notebooks")
    return {a: {"perfect": perfect(a, base / "perfect" / f"{a}.ipynb"),
                "release": release(a, base / "release" / f"{a}.ipynb")} for a in ASSIGNMENTS}
