"""Judge a Python function against a registry spec without the sandbox (for fast tests of the checks).

The worker's own case runner (``autograder.runner.run_case``) is called in this process; the case goes to it
through the wire format and its reply comes back through the wire format and the grader's reply validation
(replies.clean_reply), so the judges see exactly what they would see from a real worker. :func:`score` adds the
checks' weights as grading.grade_function does (auxiliary checks count only when a random value case is right).
"""
from __future__ import annotations

from autograder.grading import _worker_case
from autograder.registry.core import Cases, FunctionSpec, materialize
from autograder.registry.judges import Context, value
from autograder.replies import clean_reply
from autograder.sandbox import CaseOutcome
from autograder.worker import runner, wire

__all__ = ["simulate", "score", "failures"]


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
            reply = clean_reply(wire.decode(wire.encode(runner.run_case(fn, job))))
            verdicts.append((check.judge or value)(Context(spec, case, m, CaseOutcome(reply=reply))))
        out[check.name] = verdicts
    return out


def score(spec: FunctionSpec, verdicts: dict[str, list]) -> float:
    """The function's points for these verdicts, as the grader adds them."""
    values = verdicts.get("values")
    computes = values is None or any(v.score > 0 for v in values)
    total = 0.0
    for check in spec.checks:
        cases = verdicts.get(check.name) or []
        if cases and (computes or not check.auxiliary):
            total += round(check.weight * sum(v.score for v in cases) / len(cases), 4)
    return round(min(spec.points, total), 2)


def failures(verdicts: dict[str, list]) -> dict[str, str]:
    """check/case -> message of every case that did not pass."""
    return {f"{name}/{i}": v.message for name, vs in verdicts.items() for i, v in enumerate(vs) if v.score < 1}
