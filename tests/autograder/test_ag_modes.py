"""Does every run mode keep concurrent workers apart, show the worker only an allow-list of folders, run honest
lazy imports, start for a grader that is not root, and report what it does not protect?"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autograder.sandbox import Sandbox, SandboxConfig
from agpaths import ROOT
from nbfactory import perfect, with_functions, write


def _mode_sandbox(mode: str, **options) -> Sandbox:
    sb = Sandbox(SandboxConfig(mode=mode, case_timeout_s=5.0, **options))
    try:
        sb.ready()
    except Exception as exc:                                   # the kernel or privileges do not allow this mode
        sb.close()
        pytest.skip(f"sandbox mode {mode} unavailable here: {exc}")
    return sb


def _run(sb: Sandbox, body: str, args=(1.0,)):
    src = [{"cell": 1, "line": 1, "source": "import os, sys, time, torch\n" + body}]
    return sb.run_function("f", src, [{"id": "a", "args": list(args)}]).outcomes["a"]


def _facts(outcome) -> dict:
    assert outcome.reply and outcome.reply["status"] == "raised", outcome
    return json.loads(outcome.reply["exc"]["message"])


def _runner_pids(zygote: int) -> list[int]:
    """Processes below ``zygote`` that no longer run as root (the runners after they confined themselves)."""
    parents, uids = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parents[int(entry)] = int(fields["PPid"])
            uids[int(entry)] = int(fields["Uid"].split()[0])
    below, frontier = set(), {zygote}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in below}
        below |= frontier
    return [p for p in below if uids.get(p)]


VICTIM = "def f(x):\n    time.sleep(2.5)\n    return torch.tensor([x])\n"
KILLER = ("def f(pid):\n    try:\n        os.kill(int(pid), 9)\n        return torch.tensor([1.0])\n"
          "    except OSError as exc:\n        raise RuntimeError(type(exc).__name__)\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root grader, these modes run one worker at a time")
@pytest.mark.parametrize("mode,options", [("plain", {}), ("landlock", {"landlock_abi_max": 5}), ("root", {})],
                         ids=["plain", "landlock-without-signal-scoping", "root"])
def test_a_worker_cannot_kill_the_worker_of_another_submission(mode, options):
    victim_box, killer_box = _mode_sandbox(mode, **options), _mode_sandbox(mode, **options)
    try:
        assert victim_box.isolates_workers
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(victim=_run(victim_box, VICTIM)))
        thread.start()
        deadline, targets = time.monotonic() + 5, []
        while not targets and time.monotonic() < deadline:
            targets = _runner_pids(victim_box.proc.pid)
            time.sleep(0.02)
        assert targets, "the victim's worker never started"
        attack = _run(killer_box, KILLER, args=(float(max(targets)),))
        thread.join()
    finally:
        victim_box.close()
        killer_box.close()
    assert attack.reply["status"] == "raised", attack              # PermissionError / ProcessLookupError
    assert outcome["victim"].reply and outcome["victim"].reply["status"] == "ok", outcome["victim"]


LAZY = ("def f(x):\n    import statistics, fractions, PIL.Image\n"
        "    return torch.tensor([float(statistics.mean([x, 3.0])), float(fractions.Fraction(1, 2))])\n")


@pytest.mark.parametrize("mode", ["root", "landlock", "plain"])
def test_lazy_imports_inside_a_graded_function_work_in_every_mode(mode):
    sb = _mode_sandbox(mode)
    try:
        outcome = _run(sb, LAZY)
    finally:
        sb.close()
    assert outcome.reply and outcome.reply["status"] == "ok", outcome
    assert outcome.reply["out"]["data"].tolist() == [2.0, 0.5]


VIEW = ("import json\ndef f(x):\n    facts = {'root': sorted(os.listdir('/'))}\n"
        "    for p in ('/var', '/srv', '/mnt', '/home', '/root', '/work', '/opt'):\n"
        "        try:\n            facts[p] = sorted(os.listdir(p))\n        except OSError as exc:\n"
        "            facts[p] = type(exc).__name__\n"
        "    facts['proc'] = len([p for p in os.listdir('/proc') if p.isdigit()])\n"
        "    raise RuntimeError(json.dumps(facts))\n")


def test_root_mode_without_landlock_shows_only_python_and_system_folders():
    sb = _mode_sandbox("root", landlock=False)
    try:
        facts = _facts(_run(sb, VIEW))
    finally:
        sb.close()
    allowed = {"usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc", "sys", "dev", "proc", "tmp", "var"}
    top_python = {Path(p).parts[1] for p in (sys.prefix, sys.base_prefix, os.path.realpath(sys.executable))}
    assert set(facts["root"]) <= allowed | top_python, facts["root"]
    assert facts["/var"] == ["tmp"] and facts["/srv"] == "FileNotFoundError" and facts["/mnt"] == "FileNotFoundError"
    assert facts["/home"] in ("FileNotFoundError", [])
    assert facts["proc"] <= 3


# ------------------------------------------------------------------------------------------------ non-root grader
_DROP = r'''
import json, os, sys
sys.path.insert(0, sys.argv[1])
from autograder.worker import isolation as iso
argv, paths, uid = json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
iso.unshare(iso.CLONE_NEWNS)
iso.make_mounts_private()
held = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in paths]
for top in sorted({t for _, t in json.loads(sys.argv[5])}):
    iso.mount_tmpfs(top, 1, 0o755)
for p, fd in held:
    os.makedirs(p, 0o755, exist_ok=True)
    iso.bind_mount_fd(fd, p)
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
os.execve(argv[0], argv, {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": sys.argv[1]})
'''


def _closed_ancestor(path: str) -> str | None:
    """The first folder on the way to ``path`` that other users cannot enter (None when all can)."""
    current = "/"
    for part in [p for p in Path(path).parts[1:]]:
        current = os.path.join(current, part)
        if os.path.isdir(current) and not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


def _as_unprivileged(argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``argv`` as ``nobody``: as root, in a private mount namespace where the interpreter's folders are
    reachable by others (e.g. a Python under /root); as another user, directly."""
    if os.geteuid() != 0:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    paths = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix) if _closed_ancestor(os.path.realpath(p))})
    tops = [(p, _closed_ancestor(p)) for p in paths]
    if _closed_ancestor(str(ROOT)):
        pytest.skip("the project folder is not readable by other users")
    return subprocess.run([sys.executable, "-c", _DROP, str(ROOT), json.dumps(argv), json.dumps(paths), "65534",
                           json.dumps(tops)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def shared_tmp():
    """A folder the unprivileged grader can read and write (pytest's own folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="ag-nonroot-", dir="/tmp"))
    os.chmod(folder, 0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _unprivileged_userns_possible() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False


@pytest.mark.skipif(not _unprivileged_userns_possible(), reason="user namespaces are disabled")
def test_a_grader_that_is_not_root_grades_in_userns_mode_and_says_what_it_leaves_open(shared_tmp):
    nb = perfect("a1_gans", shared_tmp / "a1_gans.ipynb")
    os.chmod(nb, 0o644)
    out = shared_tmp / "results.json"
    proc = _as_unprivileged([sys.executable, "-m", "autograder", "grade", str(nb), "--assignment", "a1_gans",
                             "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["extra_data"]["sandbox_mode"] == "userns", res["extra_data"]
    assert res["score"] == res["max_score"]
    assert "sandbox: mode userns" in proc.stdout and "not protected:" in proc.stdout
    assert res["extra_data"]["sandbox"]["unprotected"]


def test_a_grader_that_is_not_root_refuses_parallel_jobs_where_workers_share_its_uid(shared_tmp):
    folder = shared_tmp / "subs"
    folder.mkdir(mode=0o777)
    write(with_functions("a1_gans", {}), folder / "a.ipynb")
    os.chmod(folder / "a.ipynb", 0o644)
    proc = _as_unprivileged([sys.executable, "-m", "autograder", "batch", str(folder), "--assignment", "a1_gans",
                             "--out", str(shared_tmp / "book.csv"), "--jobs", "2", "--sandbox", "plain", "--no-progress"])
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "cannot keep concurrent workers apart" in proc.stderr
