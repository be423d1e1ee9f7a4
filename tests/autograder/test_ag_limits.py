"""Do the worker's resource limits hold against the ways around them: memory outside the address space, a
private folder filled without end, UDP, forks that multiply the CPU and process budgets, and a GPU machine
lifting the address-space limit for every case?"""
from __future__ import annotations

import resource

import pytest

from autograder.sandbox import Sandbox, SandboxConfig


def _mode_sandbox(mode: str, **options) -> Sandbox:
    sb = Sandbox(SandboxConfig(mode=mode, case_timeout_s=5.0, **options))
    try:
        sb.ready()
    except Exception as exc:                                   # the kernel or privileges do not allow this mode
        sb.close()
        pytest.skip(f"sandbox mode {mode} unavailable here: {exc}")
    return sb


def _run(sb: Sandbox, body: str, cases=None):
    src = [{"cell": 1, "line": 1, "source": "import os, sys, time, torch\n" + body}]
    return sb.run_function("f", src, cases or [{"id": "a", "args": [1.0]}])


def _value(outcome) -> list:
    assert outcome.reply and outcome.reply["status"] == "ok", outcome
    return outcome.reply["out"]["data"].tolist()


MODES = ["root", "landlock", "plain"]

MEMFD = ("def f(x):\n    held, mb = [], 0\n    try:\n        for _ in range(40):\n"
         "            fd = os.memfd_create('m')\n            held.append(fd)\n"
         "            for _ in range(16):\n                os.write(fd, b'x' * (1 << 20))\n                mb += 1\n"
         "    except OSError:\n        pass\n    return torch.tensor([float(mb)])\n")


@pytest.mark.parametrize("mode", MODES)
def test_memory_outside_the_address_space_limit_is_refused(mode):
    sb = _mode_sandbox(mode)
    try:
        outcome = _run(sb, MEMFD).outcomes["a"]
    finally:
        sb.close()
    assert _value(outcome)[0] < 64                              # was 640 MB of memfd beside RLIMIT_AS


UDP = ("import socket\ndef f(x):\n    try:\n        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "        s.sendto(b'x', ('127.0.0.1', 9))\n        return torch.tensor([1.0])\n"
       "    except OSError:\n        return torch.tensor([0.0])\n")


@pytest.mark.parametrize("mode", MODES)
def test_no_socket_can_be_opened_udp_included(mode):
    sb = _mode_sandbox(mode)
    try:
        outcome = _run(sb, UDP).outcomes["a"]
    finally:
        sb.close()
    assert _value(outcome) == [0.0]


FILL = ("def f(x):\n    written = 0\n    try:\n        for i in range(40):\n"
        "            with open(f'fill{i}', 'wb') as fh:\n                for _ in range(8):\n"
        "                    fh.write(b'x' * (1 << 20))\n                    written += 1\n"
        "            time.sleep(0.02)\n    except OSError:\n        pass\n    return torch.tensor([float(written)])\n")


@pytest.mark.parametrize("mode", MODES)
def test_the_private_folder_has_a_byte_budget(mode):
    sb = _mode_sandbox(mode, tmp_mb=32)
    try:
        outcome = _run(sb, FILL).outcomes["a"]
    finally:
        sb.close()
    if outcome.reply is not None:                               # a tmpfs: the write fails at the budget
        assert _value(outcome)[0] <= 32
    else:                                                       # a host folder: the worker is stopped
        assert "wrote more than 32 MB" in outcome.failure, outcome


FORKS = ("def f(x):\n    n = 0\n    while n < 200:\n        try:\n            pid = os.fork()\n        except OSError:\n"
         "            break\n        if pid == 0:\n            time.sleep(3)\n            os._exit(0)\n        n += 1\n"
         "    return torch.tensor([float(n)])\n")
BURN = ("def f(x):\n    kids = []\n    for _ in range(4):\n        pid = os.fork()\n        if pid == 0:\n"
        "            end = time.monotonic() + 1.5\n            while time.monotonic() < end:\n                pass\n"
        "            os._exit(0)\n        kids.append(pid)\n    for pid in kids:\n        os.waitpid(pid, 0)\n"
        "    return torch.tensor([x])\n")


@pytest.mark.parametrize("mode", MODES)
def test_forks_cannot_multiply_the_process_and_cpu_budgets(mode):
    sb = _mode_sandbox(mode)
    try:
        forked = _value(_run(sb, FORKS).outcomes["a"])[0]
        burn = _run(sb, BURN)
    finally:
        sb.close()
    assert forked <= sb.config.nproc == 16                       # was 32 beyond every other nobody process
    assert _value(burn.outcomes["a"]) == [1.0]
    if sb.info.get("cgroup"):                                    # one CPU at most for the whole tree
        assert burn.cpu_s < burn.wall_s * 1.1 + 0.3, (burn.cpu_s, burn.wall_s)


LIMIT = "import resource\ndef f(x):\n    return torch.tensor([float(resource.getrlimit(resource.RLIMIT_AS)[0])])\n"


def test_only_the_cuda_cases_run_without_the_address_space_limit():
    sb = _mode_sandbox("auto", cuda=True)
    try:
        run = _run(sb, LIMIT, [{"id": "cpu", "args": [1.0], "device": "cpu"},
                               {"id": "gpu", "args": [1.0], "device": "cuda"}])
    finally:
        sb.close()
    assert _value(run.outcomes["cpu"])[0] not in (-1.0, float(resource.RLIM_INFINITY))
    assert run.workers == 2                                     # the CUDA case ran in a worker of its own
    gpu = run.outcomes["gpu"].reply
    import torch

    if torch.cuda.is_available():
        assert gpu["status"] == "ok" and gpu["out"]["data"].tolist()[0] in (-1.0, float(resource.RLIM_INFINITY))


def test_each_worker_runs_in_its_own_control_group_when_the_grader_can_make_one():
    sb = _mode_sandbox("auto")
    try:
        if not sb.info.get("cgroup"):
            pytest.skip(f"no control groups here: {sb.info.get('cgroup_problem')}")
        body = ("def f(x):\n    raise RuntimeError(open('/proc/self/cgroup').read())\n")
        first, second = (_run(sb, body).outcomes["a"].reply["exc"]["message"] for _ in range(2))
    finally:
        sb.close()
    assert f"autograder-{sb.info['pid']}/job-" in first and first != second
