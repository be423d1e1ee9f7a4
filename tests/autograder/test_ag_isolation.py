"""Which protections hold inside a worker, in each run mode, and does the sandbox contain hostile processes?

The probe below runs inside a worker and reports what it can see and do; the assertions say which mode must
block what (the README's threat model states the same table).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from autograder.worker.isolation import landlock_abi
from autograder.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[2]

PROBE = f'''
import os, socket, subprocess, torch
def probe(x):
    facts = {{}}
    def t(key, fn):
        try:
            facts[key] = repr(fn())
        except BaseException as exc:
            facts[key] = "ERR " + type(exc).__name__
    t("uid", os.getuid)
    t("read_reference", lambda: open({str(ROOT / "course_lib" / "gan.py")!r}).read()[:20])
    t("read_grader", lambda: open({str(ROOT / "autograder" / "registry" / "gan.py")!r}).read()[:20])
    t("import_reference", lambda: __import__("course_lib").__name__)
    t("import_hidden_checks", lambda: __import__("autograder.registry").__name__)
    t("list_project", lambda: sorted(os.listdir({str(ROOT)!r})))
    t("write_project", lambda: open({str(ROOT / "pwned.txt")!r}, "w").write("x"))
    t("network", lambda: socket.create_connection(("127.0.0.1", 22), timeout=0.5))
    t("processes_visible", lambda: len([p for p in os.listdir("/proc") if p.isdigit()]))
    t("signal_init", lambda: os.kill(1, 0))
    t("subprocess", lambda: subprocess.run(["true"]).returncode)
    return torch.tensor([float(len(facts))]), facts
'''


def _probe(sb: Sandbox) -> dict:
    src = PROBE.replace("return torch.tensor([float(len(facts))]), facts", "raise RuntimeError(repr(facts))")
    run = sb.run_function("probe", [{"cell": 1, "line": 1, "source": src}], [{"id": "p", "args": [0]}])
    reply = run.outcomes["p"].reply
    assert reply and reply["status"] == "raised", run.outcomes["p"]
    import ast

    return ast.literal_eval(reply["exc"]["message"])


def _mode_sandbox(mode: str):
    sb = Sandbox(SandboxConfig(mode=mode, case_timeout_s=2.0))
    try:
        sb.ready()
    except Exception as exc:                                   # the kernel or privileges do not allow this mode
        sb.close()
        pytest.skip(f"sandbox mode {mode} unavailable here: {exc}")
    return sb


def test_the_strongest_mode_hides_the_reference_and_the_grader_and_blocks_network(sandbox):
    facts = _probe(sandbox)
    assert facts["import_reference"].startswith("ERR ImportError")
    assert facts["import_hidden_checks"].startswith("ERR ImportError")
    assert not (ROOT / "pwned.txt").exists() and facts["write_project"].startswith("ERR")
    if sandbox.mode == "plain":
        pytest.skip("plain mode: files stay readable (see the README's threat model)")
    assert facts["read_reference"].startswith("ERR") and facts["read_grader"].startswith("ERR")
    # the project's files are not there: listing it fails, or (a venv inside the checkout, bound into the view
    # where Landlock allows reading, e.g. a checkout under /tmp) shows only the folder that leads to that venv
    venv = Path(sys.prefix).resolve()
    lead = [venv.relative_to(ROOT).parts[0]] if venv.is_relative_to(ROOT) else []
    assert facts["list_project"].startswith("ERR") or facts["list_project"] == repr(lead), facts["list_project"]
    assert facts["network"].startswith("ERR")


def test_root_mode_runs_as_its_own_unprivileged_uid_in_its_own_pid_namespace(sandbox):
    from autograder.worker.zygote import JOB_UID_BASE

    if sandbox.mode != "root":
        pytest.skip(f"grader runs in {sandbox.mode} mode")
    facts = _probe(sandbox)
    assert int(facts["uid"]) >= JOB_UID_BASE
    assert int(facts["processes_visible"]) <= 3                # itself (PID 1) and the probe's children
    assert facts["subprocess"] == "0"                          # ordinary subprocesses still work inside


@pytest.mark.parametrize("mode", ["userns", "landlock", "plain"])
def test_fallback_modes_keep_what_they_promise(mode):
    sb = _mode_sandbox(mode)
    try:
        facts = _probe(sb)
    finally:
        sb.close()
    assert facts["import_reference"].startswith("ERR ImportError")        # the meta-path blocker, every mode
    assert not (ROOT / "pwned.txt").exists()
    if mode in ("userns", "landlock"):
        assert facts["read_reference"].startswith("ERR") and facts["read_grader"].startswith("ERR")
        assert facts["network"].startswith("ERR")
    if mode == "userns":
        assert int(facts["processes_visible"]) <= 3
    if mode == "plain" and os.geteuid() == 0:
        assert facts["read_reference"].startswith("'")                     # documented: plain mode cannot hide files


def _run(sb: Sandbox, body: str, n_cases: int = 3, args=(1.0,)):
    src = [{"cell": 1, "line": 1, "source": "import os, sys, time, torch\n" + body}]
    cases = [{"id": f"c{i}", "args": list(args)} for i in range(n_cases)]
    start = time.monotonic()
    run = sb.run_function("f", src, cases)
    return run, time.monotonic() - start


def test_an_infinite_loop_costs_at_most_two_case_limits_and_later_cases_are_skipped(sandbox):
    run, elapsed = _run(sandbox, "def f(x):\n    while True:\n        pass\n", n_cases=5)
    kinds = [run.outcomes[f"c{i}"].kind for i in range(5)]
    assert kinds == ["timeout", "timeout", "not-run", "not-run", "not-run"]
    assert elapsed < 2 * sandbox.config.case_timeout_s + 3


def test_a_timeout_in_one_case_does_not_lose_the_others(sandbox):
    body = "def f(x):\n    if x > 1:\n        while True:\n            pass\n    return torch.tensor([x])\n"
    src = [{"cell": 1, "line": 1, "source": "import torch\n" + body}]
    run = sandbox.run_function("f", src, [{"id": "a", "args": [1.0]}, {"id": "b", "args": [2.0]}, {"id": "c", "args": [0.5]}])
    assert run.outcomes["a"].reply["status"] == "ok" and run.outcomes["b"].kind == "timeout"
    assert run.outcomes["c"].reply["status"] == "ok" and run.outcomes["c"].reply["out"]["data"].item() == 0.5


def test_memory_bombs_fail_inside_the_worker_and_the_worker_stays_small(sandbox):
    run, _ = _run(sandbox, "def f(x):\n    return torch.ones(1 << 31)\n", n_cases=1)
    reply = run.outcomes["c0"].reply
    assert reply["status"] == "raised" and "allocate" in reply["exc"]["message"]
    run, _ = _run(sandbox, "def f(x):\n    blocks = []\n    while True:\n        blocks.append(bytearray(1 << 24))\n", n_cases=1)
    assert run.outcomes["c0"].reply["exc"]["type"] == "MemoryError"
    assert run.maxrss_kb < sandbox.config.memory_mb * 1024


def test_exits_segfaults_and_signals_end_only_their_case_with_a_clear_reason(sandbox):
    for body, expect in [
        ("def f(x):\n    sys.exit(3)\n", "SystemExit"),
        ("def f(x):\n    os._exit(7)\n", "exit status 7"),
        ("def f(x):\n    import ctypes\n    ctypes.string_at(0)\n", "SIGSEGV"),
        ("def f(x):\n    import ctypes\n    ctypes.CDLL(None).abort()\n", "SIGABRT"),
    ]:
        run, _ = _run(sandbox, body, n_cases=1)
        o = run.outcomes["c0"]
        text = o.failure or o.reply["exc"]["type"]
        assert expect in text or (expect == "SIGABRT" and sandbox.mode in ("root", "userns") and o.kind == "crash"), (body, o)


def test_a_fork_bomb_is_contained_and_graded_in_time(sandbox):
    body = ("def f(x):\n    for _ in range(10000):\n        try:\n            if os.fork() == 0:\n                time.sleep(30)\n"
            "                os._exit(0)\n        except OSError:\n            break\n    return torch.tensor([x])\n")
    run, elapsed = _run(sandbox, body, n_cases=1)
    assert elapsed < 15


def test_a_detached_grandchild_dies_with_the_worker_and_cannot_touch_files_outside(sandbox, tmp_path):
    target = tmp_path / "results.json"
    target.write_text('{"score": 0}')
    marker = tmp_path / "alive.txt"
    body = (f"def f(x):\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n            time.sleep(1.0)\n"
            f"            for p in ({str(target)!r}, {str(marker)!r}):\n                try:\n"
            f"                    open(p, 'w').write('HACKED')\n                except OSError:\n                    pass\n"
            f"        os._exit(0)\n    return torch.tensor([x])\n")
    run, _ = _run(sandbox, body, n_cases=1)
    assert run.outcomes["c0"].reply["status"] == "ok"
    time.sleep(2.0)
    assert target.read_text() == '{"score": 0}' and not marker.exists()


def test_a_worker_writing_garbage_into_its_result_pipe_is_reported_not_trusted(sandbox):
    body = ("def f(x):\n    for fd in range(3, 64):\n        try:\n            os.write(fd, b'AGW1' + b'\\xff' * 64)\n"
            "        except OSError:\n            pass\n    return torch.tensor([x])\n")
    run, _ = _run(sandbox, body, n_cases=2)
    assert run.outcomes["c0"].kind in ("bad-output", "crash") and "malformed" in (run.outcomes["c0"].failure or "")


def test_landlock_is_reported_and_torch_works_under_every_limit(sandbox):
    run, _ = _run(sandbox, "def f(x):\n    a = torch.randn(64, 64, requires_grad=True)\n    (a @ a).sum().backward()\n"
                           "    return a.grad.sum() * 0 + x\n", n_cases=1)
    assert run.outcomes["c0"].reply["status"] == "ok"
    assert landlock_abi() >= 0
