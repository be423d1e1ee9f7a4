"""Can a worker's reply, forged by the student's code, earn points or crash the grader?

The worker runs the student's code, so every reply may be forged. A judge must compare exact structures and
lengths with the reference's and fail whatever is missing or malformed; the sandbox must accept replies only
in the order it asked for them, and a message the wire format cannot rebuild is the worker's failure, not the
grader's.
"""
from __future__ import annotations

import json
import struct
import time

import pytest

from autograder.registry import REGISTRY
from autograder.registry.core import Cases, materialize
from autograder.registry.judges import Context, value
from autograder.replies import clean_reply
from autograder.sandbox import CaseOutcome
from autograder.worker import runner, wire
from nbfactory import with_functions, write

SPECS = [spec for specs in REGISTRY.values() for spec in specs]


def _forgeries(m) -> list[dict]:
    """Replies that claim success without carrying what the reference returned (shaped after its output)."""
    ref = m.ref_out
    n = len(ref) if isinstance(ref, (tuple, list)) else 2
    n_args = len(m.args)
    nothing = {"t": "tuple", "n": n, "items": []}
    junk = [{"t": "other", "cls": "x"}] * n_args
    return [
        {"out": nothing, "out2": nothing, "grads": {"status": "ok", "grads": []}, "inputs_after": []},
        {"out": {"t": "tuple", "n": n, "items": [{"t": "none"}] * (n - 1)}, "grads": {"status": "ok", "grads": [None]},
         "inputs_after": junk[:1]},
        {"out": {"t": "list", "n": n + 5, "items": [{"t": "none"}] * n}, "grads": {"status": "no-graph", "grads": []}},
        {"out": {"t": "tensor", "data": "not a tensor"}, "grads": {"status": "ok", "grads": junk}, "inputs_after": junk},
        {"out": {"t": "module", "names": [], "params": [], "requires_grad": [], "buffer_names": [], "buffers": []},
         "inputs_after": [{"t": "module", "names": [], "params": [], "requires_grad": [], "buffer_names": [],
                           "buffers": []}] * n_args},
        {"out": {"t": "tuple", "n": 0, "items": []}, "grads": {"status": "ok", "grads": "all of them"},
         "inputs_after": "unchanged"},
        {"out": "a string", "grads": None, "inputs_after": None, "out2": 7},
        {},
    ]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_forged_reply_trees_earn_nothing_from_any_judge(spec):
    for check in spec.checks:
        factory = Cases(spec.name, check.name, 99)
        check.make(factory)
        for case in factory.items[:2]:
            m = materialize(spec, case)
            for k, forged in enumerate(_forgeries(m)):
                for status in ("ok", "raised"):
                    raw = {"kind": "case", "id": case.id, "status": status, **forged}
                    if status == "raised":
                        raw["exc"] = {"type": 7, "mro": "ValueError", "message": ["z_a"], "where": None}
                    reply = clean_reply(raw)
                    verdict = (check.judge or value)(Context(spec, case, m, CaseOutcome(reply=reply)))
                    assert verdict.score == 0, (check.name, case.id, k, status, verdict)


def test_a_tuple_subclass_cannot_claim_more_items_than_it_holds():
    class Lie(tuple):
        def __len__(self):
            return 2

    desc = runner.describe(Lie())
    assert desc["t"] == "other" and desc["cls"] == "Lie"
    long = runner.describe(tuple(range(40)))
    assert long["t"] == "other"                                 # never a container whose n exceeds its items
    assert runner.describe((1, [2.0, None]))["items"][1] == {"t": "list", "n": 2, "items": [{"t": "float", "v": 2.0},
                                                                                              {"t": "none"}]}
    assert clean_reply({"kind": "case", "id": "a", "status": "ok", "out": {"t": "tuple", "n": 2, "items": []}})["out"]["t"] == "other"


FORGER = '''
import sys as _sys
def _install_{name}():
    r = _sys.modules.get("autograder.worker.runner")
    def fake(fn, case):
        return {{"kind": "case", "id": case["id"], "status": "ok", "out": {{"t": "tuple", "n": 2, "items": []}},
                "out2": {{"t": "tuple", "n": 2, "items": []}}, "grads": {{"status": "ok", "grads": []}},
                "inputs_after": []}}
    if r is not None:
        r.run_case = fake
    return 0
class Lie(tuple):
    def __len__(self):
        return 2
def {name}(*args, _h=_install_{name}(), **kwargs):
    return Lie()
'''


def test_a_function_that_computes_nothing_scores_nothing_even_if_it_patches_the_runner(sandbox, tmp_path):
    from autograder.grading import grade_notebook

    names = [s.name for s in REGISTRY["a4_rendering"]]
    path = write(with_functions("a4_rendering", {n: FORGER.format(name=n) for n in names}), tmp_path / "forger.ipynb")
    result = grade_notebook(path, "a4_rendering", sandbox=sandbox)
    assert {f.name: f.score for f in result.functions} == {n: 0 for n in names}


def _message(tree, indent: str = "    ") -> str:
    """Python source that builds one wire message by hand (as a student could) and writes it to every fd."""
    lines = ["import json, struct", f"h = json.dumps({tree!r}).encode()",
             "data = b'AGW1' + struct.pack('<IQ', len(h), 0) + h", "for fd in range(3, 64):", "    try:",
             "        os.write(fd, data)", "    except OSError:", "        pass"]
    return "".join(f"{indent}{line}\n" for line in lines)


def test_repeated_setup_messages_do_not_extend_the_time_limit(sandbox):
    setup = {"v": 1, "tree": {"kind": "setup", "defined": True, "errors": [], "type": "function"}, "tensors": []}
    body = ("import os, time, torch\ndef f(x):\n    for _ in range(16):\n" + _message(setup, " " * 8)
            + "        time.sleep(0.4)\n    return torch.tensor([x])\n")
    start = time.monotonic()
    run = sandbox.run_function("f", [{"cell": 1, "line": 1, "source": body}], [{"id": "a", "args": [1.0]}])
    elapsed = time.monotonic() - start
    outcome = run.outcomes["a"]
    assert outcome.kind == "bad-output" and "not the next expected" in outcome.failure, outcome
    assert elapsed < sandbox.config.case_timeout_s + 2


def test_a_forged_tensor_shape_fails_the_case_instead_of_the_grader(sandbox):
    forged = {"v": 1, "tree": {"kind": "case", "id": "a", "status": "ok", "out": {"t": "tensor", "data": {"__tensor__": 0}}},
              "tensors": [{"dtype": "float32", "shape": [0, 2**62], "offset": 0, "nbytes": 0}]}
    body = "import os, torch\ndef f(x):\n    if x == 1.0:\n" + _message(forged, " " * 8) + "    return torch.tensor([x])\n"
    run = sandbox.run_function("f", [{"cell": 1, "line": 1, "source": body}], [{"id": "a", "args": [1.0]}, {"id": "b", "args": [2.0]}])
    assert run.outcomes["a"].kind == "bad-output"
    assert run.outcomes["b"].reply["out"]["data"].tolist() == [2.0]
    header = json.dumps(forged).encode()
    with pytest.raises(wire.WireError, match="shape"):
        wire.decode(b"AGW1" + struct.pack("<IQ", len(header), 0) + header)
