"""Options for running the hidden checks with plain pytest::

    pytest autograder/hidden_tests --submission NB.ipynb --assignment NAME [--seed N] [--sandbox MODE] [--timeout S]

Every check of the registry becomes one test (``<function>::<check>``). Student code runs only in the isolated
workers: each graded function is run once through the sandbox (lazily, the first time one of its checks is
collected for running) and every test then asserts on its own check's result.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("autograder")
    group.addoption("--submission", default=None, help="the notebook to grade")
    group.addoption("--assignment", default=None, help="a1_gans | a2_pretext | a3_contrastive | a4_rendering")
    group.addoption("--seed", type=int, default=None, help="replay with this seed")
    group.addoption("--sandbox", default="auto", help="sandbox mode (auto, root, userns, landlock, plain)")
    group.addoption("--timeout-per-check", type=float, default=5.0, help="wall seconds per check")


def pytest_configure(config):
    if config.getoption("--submission") and not config.getoption("--assignment"):
        raise pytest.UsageError("--submission needs --assignment NAME")


def pytest_generate_tests(metafunc):
    if "check_id" not in metafunc.fixturenames:
        return
    from autograder.registry import REGISTRY

    wanted = metafunc.config.getoption("--assignment")
    ids = [f"{spec.name}::{check.name}" for assignment, specs in REGISTRY.items() if not wanted or assignment == wanted
           for spec in specs for check in spec.checks]
    metafunc.parametrize("check_id", ids)


class _Lazy:
    """Grades one function at a time through the sandbox and remembers the results."""

    def __init__(self, config):
        from autograder.sandbox import Sandbox, SandboxConfig

        self.path = Path(config.getoption("--submission"))
        self.assignment = config.getoption("--assignment")
        self.seed = config.getoption("--seed")
        cfg = SandboxConfig(mode=config.getoption("--sandbox"), case_timeout_s=config.getoption("--timeout-per-check"),
                            hide=(str(self.path.resolve().parent),))
        self.sandbox = Sandbox(cfg).start()
        self.results = {}

    def function(self, name: str):
        if name not in self.results:
            from autograder.grading import grade_notebook

            result = grade_notebook(self.path, self.assignment, seed=self.seed, sandbox=self.sandbox, functions=(name,))
            self.results[name] = (result, result.functions[0])
        return self.results[name]


@pytest.fixture(scope="session")
def graded(request):
    if not request.config.getoption("--submission"):
        pytest.skip("run with --submission NB.ipynb --assignment NAME")
    lazy = _Lazy(request.config)
    yield lazy
    lazy.sandbox.close()
