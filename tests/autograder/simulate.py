"""Judge a Python function against a registry spec without the sandbox (for fast tests of the checks).

The worker's own case runner (``autograder.runner.run_case``) is called in this process and its reply is sent
through the wire format, so the judges see exactly what they would see from a real worker.
"""
from __future__ import annotations

from autograder.worker import runner, wire
from autograder.grading import _worker_case
from autograder.registry.core import Cases, FunctionSpec, materialize
from autograder.registry.judges import Context, value
from autograder.sandbox import CaseOutcome

__all__ = ["simulate"]


def simulate(spec: FunctionSpec, fn, seed: int = 1234) -> dict[str, list]:
    """check name -> list of Verdicts for ``fn`` standing in for the student's function."""
    out: dict[str, list] = {}
    for check in spec.checks:
        factory = Cases(spec.name, check.name, seed)
        check.make(factory)
        verdicts = []
        for case in factory.items:
            m = materialize(spec, case)
            job = wire.decode(wire.encode(_worker_case(case, m)))          # the worker gets its own copies
            reply = wire.decode(wire.encode(runner.run_case(fn, job)))
            verdicts.append((check.judge or value)(Context(spec, case, m, CaseOutcome(reply=reply))))
        out[check.name] = verdicts
    return out
