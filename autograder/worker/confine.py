"""Confine the runner process, then run the student's code in it (called in the forked runner, see worker.py).

In order: close every inherited descriptor but the results pipe, wait for the supervisor's go, build the
private file-system view (namespace modes: tmpfs over the grader's folders and the temporary folders, the Python
installation bind-mounted back read-only, a fresh /proc), point stdin/stdout/stderr at /dev/null, lower the
resource limits, drop privileges (``nobody`` when root, no capabilities in a user namespace), set
``no_new_privs``, add the Landlock allow-list, clear the environment, install the import blocker and only then
execute the extracted statements and the cases (runner.py).
"""
from __future__ import annotations

import os
import resource
import sys

import torch

from . import isolation as iso
from . import runner

__all__ = ["runner_main", "SYSTEM_READ"]

SYSTEM_READ = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/opt"]


def _close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _private_filesystem(job: dict, run_uid: int, run_gid: int) -> str:
    """Mount namespace view: hide the grader's folders, re-expose the Python installation, private /tmp."""
    hide = sorted({os.path.normpath(p) for p in job["hide"]}, key=len)
    expose = sorted({os.path.normpath(p) for p in job["expose"]}, key=len)
    under_hidden = [p for p in expose if any(iso.is_ancestor_or_same(h, p) for h in hide) and os.path.isdir(p)]
    held = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in under_hidden]
    inside_exposed = [h for h in hide if any(iso.is_ancestor_or_same(e, h) for e in expose)]
    for h in hide:
        if h not in inside_exposed and os.path.isdir(h):
            iso.mount_tmpfs(h, 1)
    for p, fd in held:
        os.makedirs(p, 0o755, exist_ok=True)
        iso.bind_mount_fd(fd, p)
        os.close(fd)
    for h in inside_exposed:
        if os.path.isdir(h):
            iso.mount_tmpfs(h, 1)
    for tmp in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(tmp):
            iso.mount_tmpfs(tmp, int(job["limits"]["tmp_mb"]), 0o1777)
    try:
        iso.mount_proc()
    except OSError:
        pass                                           # the outer /proc stays (processes there are unreachable)
    work = "/tmp/work"
    os.mkdir(work, 0o700)
    os.chown(work, run_uid, run_gid)
    return work


def runner_main(job: dict, mode: str, limits: dict, results_w: int, go_r: int, conf_w: int, run_uid: int,
                run_gid: int) -> None:
    """Confine this process, tell the supervisor so on ``conf_w`` (or why not), then run the student code."""
    _close_other_fds({results_w, go_r, conf_w})
    os.read(go_r, 1)
    os.close(go_r)
    try:
        _confine(job, mode, limits, run_uid, run_gid)
    except BaseException as exc:                       # a sandbox failure, not the student's: no student code ran
        os.write(conf_w, b"E" + f"{type(exc).__name__}: {exc}".encode(errors="replace")[:1000])
        os._exit(71)
    os.write(conf_w, b"c")
    os.close(conf_w)
    runner.run_cases(job["statements"], job["function"], job["cases"], results_w)
    os._exit(0)


def _confine(job: dict, mode: str, limits: dict, run_uid: int, run_gid: int) -> None:
    if mode in ("landlock", "plain"):
        os.setsid()
    workdir = _private_filesystem(job, run_uid, run_gid) if mode in ("root", "userns") else job["workdir"]
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    mb = 1 << 20
    rl = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_CPU: int(limits["cpu_s"]),
        resource.RLIMIT_FSIZE: int(limits["fsize_mb"]) * mb,
        resource.RLIMIT_NOFILE: int(limits["nofile"]),
        resource.RLIMIT_NPROC: int(limits["nproc_total"]),
    }
    if not job.get("cuda"):                             # CUDA reserves far more address space than it uses
        rl[resource.RLIMIT_AS] = int(limits["as_bytes"])
    iso.apply_rlimits(rl)
    if mode == "userns":
        iso.drop_all_capabilities()
    elif os.geteuid() == 0:
        iso.drop_to_user(run_uid, run_gid)
    iso.set_no_new_privs()
    if mode != "plain" and job.get("landlock", True) and iso.landlock_abi() >= 1:
        reads = iso.allow_except(job["expose"] + SYSTEM_READ, job["hide"])
        writes = [workdir, "/dev/null"] + (["/tmp", "/var/tmp", "/dev/shm"] if mode in ("root", "userns") else [])
        if job.get("cuda"):
            writes.append("/dev")
        try:
            iso.landlock_restrict(reads, writes)
        except OSError:
            if mode == "landlock":                     # the mode's only file-system protection: fatal
                raise
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    sys.dont_write_bytecode = True
    runner.install_import_blocker()
    torch.set_num_threads(1)
