"""The worker side of the sandbox: a fork-server ("zygote") that starts one isolated process tree per job.

The grader starts the zygote as a fresh interpreter (``python -I -S``, minimal environment) that imports
torch and this module and never runs a torch op or any student code, so forking it is safe and cheap (a job
costs about 25-30 ms of forking and confinement). For every job (one graded function: its extracted code and its cases) it forks::

    zygote --fork--> supervisor (trusted, waits; kills on request, deadline or grader exit)
                       --fork--> runner: sets up the sandbox, drops privileges, runs the student code

Run modes (chosen once by probing, or forced):

* ``root``     grader is root: new mount, PID, network and IPC namespaces; tmpfs over the grader's folders,
               /tmp and the home folders (the Python installation is bind-mounted back, read-only); runner is
               PID 1 of its namespace, so when it dies the kernel kills every process it started; then
               setuid to ``nobody``; Landlock on top when available.
* ``userns``   not root, user namespaces allowed: the same, inside a new user namespace, with every capability
               dropped instead of changing user.
* ``landlock`` no namespaces (still ``nobody`` when root): a Landlock allow-list (read the Python installation
               and system folders, write a private temporary folder, no TCP, no signals out of the sandbox);
               the supervisor is a child subreaper and kills every descendant when the runner ends.
* ``plain``    only resource limits, the import blocker, the subreaper clean-up and (when root) ``nobody``.

Resource limits in every mode: address space, CPU seconds, processes, file size, open files, no core dumps.
The protocol with the grader is in sandbox.py (grader side); messages use the wire format.
"""
from __future__ import annotations

import os
import pwd
import select
import shutil
import signal
import socket
import time

import torch

from . import confine, wire
from . import isolation as iso
from .modes import MODES

__all__ = ["zygote_main", "MODES"]


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
                iso.make_mounts_private()
                iso.mount_tmpfs("/tmp", 1)
            elif mode == "userns":
                uid, gid = os.getuid(), os.getgid()
                iso.unshare(iso.CLONE_NEWUSER | iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWNET | iso.CLONE_NEWIPC)
                iso.write_id_maps(uid, gid)
                iso.make_mounts_private()
                iso.mount_tmpfs("/tmp", 1)
            elif mode == "landlock":
                iso.landlock_restrict(["/usr"], [], None)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def choose_mode(requested: str) -> tuple[str, dict]:
    available = {m: _probe(m) for m in MODES[:-1]}
    available["plain"] = True
    if requested != "auto":
        return (requested if available.get(requested) else ""), available
    return next(m for m in MODES if available[m]), available


# ------------------------------------------------------------------------------------------------ zygote
def zygote_main(sock_fd: int, requested_mode: str = "auto") -> None:
    """Serve jobs from the grader until it closes the socket."""
    try:
        iso.set_dumpable(False)                      # same-uid sandboxes cannot ptrace the zygote
    except OSError:
        pass
    sock = socket.socket(fileno=sock_fd)
    _preload()
    mode, available = choose_mode(requested_mode)
    wire.send_msg(sock, {
        "kind": "ready", "mode": mode, "available": available, "landlock_abi": iso.landlock_abi(),
        "pid": os.getpid(), "torch": torch.__version__,
    })
    if not mode:
        os._exit(3)
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
    if os.geteuid() == 0 and mode != "userns":          # root without namespaces still drops to nobody
        nobody = pwd.getpwnam("nobody")
        run_uid, run_gid = nobody.pw_uid, nobody.pw_gid
        if job.get("workdir"):
            os.chown(job["workdir"], run_uid, run_gid)
    try:
        if mode in ("root", "userns"):
            flags = iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWNET | iso.CLONE_NEWIPC
            if mode == "userns":
                iso.unshare(flags | iso.CLONE_NEWUSER)
                iso.write_id_maps(run_uid, run_gid)
            else:
                iso.unshare(flags)
            iso.make_mounts_private()
        else:
            iso.set_child_subreaper()
    except OSError as exc:
        report({"event": "error", "message": f"sandbox set-up failed: {exc}"})
        os._exit(1)
    limits = dict(job["limits"])
    limits["as_bytes"] = max(int(limits["as_mb"]) << 20, (_vmsize_kb() << 10) + (64 << 20))
    limits["nproc_total"] = _count_processes(run_uid) + int(limits["nproc"])
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
    report({"event": "started", "pid": pid, "as_limit_mb": limits["as_bytes"] >> 20})
    os.write(go_w, b"g")
    os.close(go_w)
    killed = _wait_or_kill(pid, kill_r, time.monotonic() + float(job["hard_timeout"]))
    _, status, usage = os.wait4(pid, 0)
    confined = _read_all(conf_r)
    if not confined.startswith(b"c") and killed is None:
        reason = confined[1:].decode(errors="replace") if confined.startswith(b"E") else "the runner died while confining itself"
        report({"event": "error", "message": f"sandbox set-up failed in the runner: {reason}"})
    if mode in ("landlock", "plain"):
        _kill_descendants()
        if job.get("workdir"):
            shutil.rmtree(job["workdir"], ignore_errors=True)
    report({
        "event": "exited",
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed": killed,
        "maxrss_kb": int(usage.ru_maxrss),
        "cpu_s": float(usage.ru_utime + usage.ru_stime),
    })
    os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks)


def _wait_or_kill(pid: int, kill_r: int, deadline: float) -> str | None:
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "deadline"
                break
            ready, _, _ = select.select([pidfd, kill_r], [], [], remaining)
            if pidfd in ready:
                return None
            if kill_r in ready:
                reason = "grader"
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
