"""The worker side of the sandbox: a fork-server ("zygote") that starts one isolated process tree per job.

The grader starts the zygote as a fresh interpreter (``python -I -S``, minimal environment) that imports
torch and this module and never runs a torch op or any student code, so forking it is safe and cheap (a job
costs about 25-30 ms of forking and confinement). For every job (one graded function: its extracted code and its cases) it forks::

    zygote --fork--> supervisor (trusted, waits; kills on request, deadline or grader exit)
                       --fork--> runner: sets up the sandbox, drops privileges, runs the student code

Run modes (chosen once by probing, or forced):

* ``root``     grader is root: new mount, PID, network and IPC namespaces; an allow-list view of the file
               system (a tmpfs root holding the Python installation and the system folders read-only and a
               private size-capped /tmp, see confine.py); runner is PID 1 of its namespace, so when it dies the
               kernel kills every process it started; then setuid to the job's own uid; Landlock on top.
* ``userns``   not root, user namespaces allowed: the same, inside a new user namespace, with every capability
               dropped instead of changing user.
* ``landlock`` no namespaces: a Landlock allow-list (read the Python installation and system folders, write a
               private folder whose size the supervisor watches, no TCP, no signals out of the sandbox from ABI
               6); the job's own uid when root; the supervisor is a child subreaper and kills every descendant
               when the runner ends.
* ``plain``    only resource limits, seccomp, the import blocker, the subreaper clean-up and (when root) the
               job's own uid, whose files in the shared temporary folders are removed afterwards.

Every job that starts as root runs under its own uid (``JOB_UID_BASE`` + the supervisor's pid, unique while the
job lives), so concurrent workers, even of different submissions, cannot signal, trace or share files with one
another and ``RLIMIT_NPROC`` counts exactly the job's processes. In every mode: address space (except for the
CUDA cases' worker), CPU seconds, processes, file size, open files, no core dumps, a seccomp filter (no sockets,
no SysV IPC or memfd, no tracing, no new namespaces), and, where control groups can be created (as root), one
group per job capping memory of every kind, processes and CPU (at most one CPU; the tree's CPU time is
watched). The protocol with the grader is in sandbox.py (grader side); messages use the wire format.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import time

import torch

from . import cgroups, confine, wire
from . import isolation as iso
from .modes import MODES

__all__ = ["zygote_main", "MODES", "JOB_UID_BASE"]

JOB_UID_BASE = 0x7F000000          # + supervisor pid (< 2**22): ids no account and no file normally uses
_WATCH_S = 0.05                    # how often the supervisor checks CPU time and the folder's size
_MAX_FOLDER_ENTRIES = 4096
_CGROUPS: cgroups.CgroupParent | None = None


# ------------------------------------------------------------------------------------------------ probing
def _probe(mode: str) -> bool:
    """Try the privileged steps of a mode in a throw-away child."""
    pid = os.fork()
    if pid == 0:
        try:
            if mode == "root":
                if os.geteuid() != 0:
                    os._exit(1)
                iso.unshare(iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWNET | iso.CLONE_NEWIPC)
                _probe_view()
            elif mode == "userns":
                if os.geteuid() == 0:                  # its workers would be uid 0 outside: root uses "root"
                    os._exit(1)
                uid, gid = os.getuid(), os.getgid()
                iso.unshare(iso.CLONE_NEWUSER | iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWNET | iso.CLONE_NEWIPC)
                iso.write_id_maps(uid, gid)
                _probe_view()
            elif mode == "landlock":
                iso.landlock_restrict(["/usr"], [], None)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _probe_view() -> None:
    """The steps of the allow-list view (confine.py) that a kernel or container may refuse."""
    iso.make_mounts_private()
    iso.mount_tmpfs("/tmp", 1)
    os.mkdir("/tmp/.old", 0o700)
    iso.pivot_root("/tmp", "/tmp/.old")
    iso.detach_mount("/.old")


def choose_mode(requested: str) -> tuple[str, dict]:
    available = {m: _probe(m) for m in MODES[:-1]}
    available["plain"] = True
    if requested != "auto":
        return (requested if available.get(requested) else ""), available
    return next(m for m in MODES if available[m]), available


# ------------------------------------------------------------------------------------------------ zygote
def zygote_main(sock_fd: int, requested_mode: str = "auto") -> None:
    """Serve jobs from the grader until it closes the socket."""
    global _CGROUPS
    try:
        iso.set_dumpable(False)                      # same-uid sandboxes cannot ptrace the zygote
    except OSError:
        pass
    sock = socket.socket(fileno=sock_fd)
    _preload()
    mode, available = choose_mode(requested_mode)
    _CGROUPS, cgroup = cgroups.open_parent(f"autograder-{os.getpid()}") if mode else (None, "")
    wire.send_msg(sock, {
        "kind": "ready", "mode": mode, "available": available, "landlock_abi": iso.landlock_abi(),
        "pid": os.getpid(), "torch": torch.__version__, "euid": os.geteuid(),
        "cgroup": cgroup if _CGROUPS is not None else "", "cgroup_problem": "" if _CGROUPS is not None else cgroup,
        "seccomp": iso.seccomp_supported(), "job_uids": os.geteuid() == 0 and mode != "userns",
    })
    if not mode:
        os._exit(3)
    try:
        while True:
            _reap()
            got = wire.recv_msg(sock, max_fds=3)
            if got is None:
                break
            job, fds = got
            pid = os.fork()
            if pid == 0:
                sock.close()
                try:
                    supervise(job, mode, *fds)
                finally:
                    os._exit(1)
            for fd in fds:
                os.close(fd)
    finally:
        if _CGROUPS is not None:
            while True:                                # the supervisors remove their own groups
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break
            _CGROUPS.remove()
    os._exit(0)


def _preload() -> None:
    """Import (never run) modules that graded code commonly needs, once, instead of in every worker: torch
    loads its symbolic-shape machinery (sympy, ~0.5 s) lazily in broadcast_shapes and in autograd.grad with
    explicit grad_outputs."""
    import importlib

    for name in ("torch.fx.experimental.symbolic_shapes", "torch.nn.functional", "torch.testing", "numpy", "math"):
        try:
            importlib.import_module(name)
        except Exception:
            pass


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if _CGROUPS is not None:                       # a supervisor killed before it removed its group
            _CGROUPS.remove_job(f"job-{pid}")


# ------------------------------------------------------------------------------------------------ supervisor
def _vmsize_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    return 0


def _count_processes(uid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def supervise(job: dict, mode: str, results_w: int, status_w: int, kill_r: int) -> None:
    """Start the runner, wait for it (or kill it), make sure nothing it started survives, report."""
    os.setsid()

    def report(tree) -> None:
        data = wire.encode(tree)
        try:
            os.write(status_w, data)
        except OSError:
            pass

    run_uid, run_gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:                               # every job its own uid: workers cannot reach each other
        run_uid = run_gid = JOB_UID_BASE + os.getpid()
        if job.get("workdir"):
            os.chown(job["workdir"], run_uid, run_gid)
    limits = dict(job["limits"])
    limits["as_bytes"] = max(int(limits["as_mb"]) << 20, (_vmsize_kb() << 10) + (64 << 20))
    limits["nproc_total"] = int(limits["nproc"]) + (1 if run_uid >= JOB_UID_BASE else _count_processes(run_uid))
    group = None
    if _CGROUPS is not None:
        memory = (int(limits["cuda_memory_mb"]) if job.get("cuda") else int(limits["as_mb"])) << 20
        try:
            group = _CGROUPS.job(f"job-{os.getpid()}", memory, int(limits["nproc"]))
        except OSError as exc:
            report({"event": "error", "message": f"sandbox set-up failed: control group: {exc}"})
            os._exit(1)
    try:
        if mode in ("root", "userns"):
            flags = iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWNET | iso.CLONE_NEWIPC
            if mode == "userns":                       # never as root (choose_mode refuses it)
                iso.unshare(flags | iso.CLONE_NEWUSER)
                iso.write_id_maps(run_uid, run_gid)
            else:
                iso.unshare(flags)
            iso.make_mounts_private()
        else:
            iso.set_child_subreaper()
    except OSError as exc:
        report({"event": "error", "message": f"sandbox set-up failed: {exc}"})
        _cleanup(group, None, run_uid, mode)
        os._exit(1)
    go_r, go_w = os.pipe()
    conf_r, conf_w = os.pipe()                          # the runner says "confined" (or why not) before student code
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (go_w, conf_r, status_w, kill_r):
                os.close(fd)
            confine.runner_main(job, mode, limits, results_w, go_r, conf_w, run_uid, run_gid)
        finally:
            os._exit(70)
    os.close(go_r)
    os.close(conf_w)
    os.close(results_w)
    if group is not None:
        try:
            group.attach(pid)
        except OSError as exc:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            report({"event": "error", "message": f"sandbox set-up failed: control group: {exc}"})
            _cleanup(group, None, run_uid, mode)
            os._exit(1)
    report({"event": "started", "pid": pid, "as_limit_mb": limits["as_bytes"] >> 20})
    os.write(go_w, b"g")
    os.close(go_w)
    watch = _watcher(job, limits, group, mode)
    killed = _wait_or_kill(pid, kill_r, time.monotonic() + float(job["hard_timeout"]), watch)
    _, status, usage = os.wait4(pid, 0)
    confined = _read_all(conf_r)
    if not confined.startswith(b"c") and killed is None:
        reason = confined[1:].decode(errors="replace") if confined.startswith(b"E") else "the runner died while confining itself"
        report({"event": "error", "message": f"sandbox set-up failed in the runner: {reason}"})
    cpu = group.cpu_seconds() if group is not None else float(usage.ru_utime + usage.ru_stime)
    if killed is None and group is not None and group.oom_killed():
        killed = "memory"
    _cleanup(group, job.get("workdir"), run_uid, mode)
    report({
        "event": "exited",
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed": killed,
        "maxrss_kb": int(usage.ru_maxrss),
        "cpu_s": cpu,
    })
    os._exit(0)


def _cleanup(group, workdir: str | None, run_uid: int, mode: str) -> None:
    """Nothing of the job survives: its processes, its control group, its folder, its files in /tmp."""
    if mode in ("landlock", "plain"):
        _kill_descendants()
    if group is not None:
        group.kill_all()
        group.remove()
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    if mode == "plain" and run_uid >= JOB_UID_BASE:    # plain mode may write wherever the world may
        for folder in ("/tmp", "/var/tmp", "/dev/shm"):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid == run_uid:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
                except OSError:
                    pass


def _folder_usage(path: str, limit_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``path``; stops counting past ``limit_entries``."""
    total, count, stack = 0, 0, [path]
    while stack and count <= limit_entries:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            count += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total, count


def _watcher(job: dict, limits: dict, group, mode: str):
    """A check run every few milliseconds while the runner lives: a kill reason, or None."""
    cpu_budget = float(limits["cpu_s"])
    folder = job.get("workdir") if mode in ("landlock", "plain") else None
    budget = int(limits["tmp_mb"]) << 20

    def check() -> str | None:
        if group is not None and group.cpu_seconds() > cpu_budget:
            return "cpu"
        if folder:
            used, entries = _folder_usage(folder, _MAX_FOLDER_ENTRIES)
            if used > budget or entries > _MAX_FOLDER_ENTRIES:
                return "disk"
        return None

    return check if (group is not None or folder) else None


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks)


def _wait_or_kill(pid: int, kill_r: int, deadline: float, watch=None) -> str | None:
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "deadline"
                break
            ready, _, _ = select.select([pidfd, kill_r], [], [], min(remaining, _WATCH_S) if watch else remaining)
            if pidfd in ready:
                return None
            if kill_r in ready:
                reason = "grader"
                break
            over = watch() if watch and not ready else None
            if over:
                reason = over
                break
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        return reason
    finally:
        os.close(pidfd)


def _kill_descendants() -> None:
    """Kill every process below this one (orphans were re-parented here: we are a child subreaper)."""
    me = os.getpid()
    for _ in range(200):
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        stat = f.read()
                    parents[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
                except (OSError, ValueError):
                    pass
        below, frontier = set(), {me}
        while frontier:
            frontier = {p for p, pp in parents.items() if pp in frontier and p not in below}
            below |= frontier
        for p in below:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            if not below:
                return
        if not below:
            return
        time.sleep(0.01)
