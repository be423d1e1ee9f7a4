"""Does the submitted notebook pass each hidden check? (one test per registry check; see conftest.py)"""
from __future__ import annotations

import pytest


def test_check(check_id, graded):
    function, check = check_id.split("::")
    result, fr = graded.function(function)
    if result.notebook_error:
        pytest.fail(f"the notebook could not be read: {result.notebook_error}", pytrace=False)
    if fr.problem:
        pytest.fail(fr.problem, pytrace=False)
    cr = next(c for c in fr.checks if c.name == check)
    failed = [c for c in cr.cases if c.verdict.score < 1.0]
    if failed:
        worst = failed[0]
        pytest.fail(f"{function} {check}: {cr.title}\n{len(failed)} of {len(cr.cases)} cases failed; first: "
                    f"{worst.verdict.message}\nreplay:\n{worst.case.replay(function, worst.m.inputs)}", pytrace=False)
