"""Confine the runner process, then run the student's code in it (called in the forked runner, see zygote.py).

In order: close every inherited descriptor but the results pipe, wait for the supervisor's go (it has put this
process into its control group by then), build the file-system view, point stdin/stdout/stderr at /dev/null,
lower the resource limits, drop privileges (the job's own uid when root, no capabilities in a user namespace),
set ``no_new_privs``, add the Landlock allow-list and the seccomp filter, clear the environment, install the
import blocker and only then execute the extracted statements and the cases (runner.py).

The namespace modes (root, userns) build an *allow-list* view: a fresh tmpfs becomes the root (pivot_root) and
holds only the Python installation and the system folders (bind-mounted read-only), a few device nodes, a
fresh /proc and one private size-capped tmpfs for /tmp, /var/tmp and /dev/shm; everything else (the grader, the
project, home folders, other submissions, /var, /srv, /mnt...) does not exist inside. The other modes keep the
host's tree (Landlock decides what is readable); when the job runs under its own uid there, Python folders that
uid cannot traverse (e.g. an interpreter under /root) are reached through descriptors opened before the drop,
so lazy imports (``import statistics`` inside a graded function) work in every mode.
"""
from __future__ import annotations

import os
import resource
import stat
import sys

import torch

from . import isolation as iso
from . import runner

__all__ = ["runner_main", "SYSTEM_READ", "SYSTEM_VIEW"]

SYSTEM_READ = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/opt"]
# Folders of the allow-list view besides the Python installation (a top-level symlink, e.g. /lib -> usr/lib,
# is recreated as a symlink).
SYSTEM_VIEW = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/sys"]
_DEVICES = ("null", "zero", "full", "random", "urandom")


def _close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def open_view(job: dict) -> dict:
    """Descriptors of everything the allow-list view shows, opened before anything is covered."""
    links, binds = {}, []
    for p in sorted({os.path.normpath(p) for p in SYSTEM_VIEW + list(job["expose"])}, key=len):
        if p in SYSTEM_VIEW and os.path.islink(p):
            links[p] = os.readlink(p)
        elif os.path.isdir(p) and not any(iso.is_ancestor_or_same(b, p) for b, _ in binds):
            binds.append((p, os.open(p, os.O_PATH | os.O_DIRECTORY)))
    devices = {d: os.open(f"/dev/{d}", os.O_PATH) for d in _DEVICES if os.path.exists(f"/dev/{d}")}
    whole_dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY) if job.get("cuda") else None
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
    return {"links": links, "binds": binds, "devices": devices, "whole_dev": whole_dev, "proc": proc}


def _allowlist_root(job: dict, run_uid: int, run_gid: int) -> str:
    """Pivot into a tmpfs that holds only the allowed folders; returns the private working folder."""
    hidden = [os.path.normpath(p) for p in job["hide"]]
    view = open_view(job)
    links, binds, devices, whole_dev = view["links"], view["binds"], view["devices"], view["whole_dev"]
    new = "/tmp"
    iso.mount_tmpfs(new, 1, 0o755)
    os.makedirs(new + "/tmp", 0o755, exist_ok=True)     # one budget for /tmp, /var/tmp and /dev/shm; first, so
    iso.mount_tmpfs(new + "/tmp", int(job["limits"]["tmp_mb"]), 0o1777)   # a Python under /tmp is bound over it
    for p, target in links.items():
        os.symlink(target, new + p)
    for p, fd in binds:
        os.makedirs(new + p, 0o755, exist_ok=True)
        try:                                           # /sys without the cgroup and other mounts under it
            iso.bind_mount_fd(fd, new + p, recursive=p != "/sys")
        except OSError:                                # a user namespace may not split locked mounts
            iso.bind_mount_fd(fd, new + p)
        os.close(fd)
    for h in hidden:                                   # a hidden folder inside an allowed one stays hidden
        if any(iso.is_ancestor_or_same(p, h) for p, _ in binds) and os.path.isdir(new + h):
            iso.mount_tmpfs(new + h, 1, 0o000)
    os.makedirs(new + "/dev", 0o755, exist_ok=True)
    if whole_dev is not None:                          # CUDA needs the driver's device nodes
        iso.bind_mount_fd(whole_dev, new + "/dev", readonly=False)
        os.close(whole_dev)
    else:
        for name, fd in devices.items():
            open(f"{new}/dev/{name}", "w").close()
            iso.bind_mount_fd(fd, f"{new}/dev/{name}", readonly=False)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"{new}/dev/{name}")
    for fd in devices.values():
        os.close(fd)
    for alias, sub in (("/var/tmp", ".var-tmp"), ("/dev/shm", ".dev-shm")):
        os.mkdir(f"{new}/tmp/{sub}", 0o1777)
        os.chmod(f"{new}/tmp/{sub}", 0o1777)
        os.makedirs(new + alias, 0o755, exist_ok=True)
        held = os.open(f"{new}/tmp/{sub}", os.O_PATH | os.O_DIRECTORY)
        iso.bind_mount_fd(held, new + alias, readonly=False)
        os.close(held)
    os.makedirs(new + "/proc", 0o755, exist_ok=True)
    try:
        iso.mount_proc_at(new + "/proc")               # shows only this PID namespace
    except OSError:
        iso.bind_mount_fd(view["proc"], new + "/proc")  # outer processes stay unreachable (PID namespace)
    os.close(view["proc"])
    os.mkdir(new + "/.old", 0o700)
    iso.pivot_root(new, new + "/.old")
    os.chdir("/")
    iso.detach_mount("/.old")
    os.rmdir("/.old")
    work = "/tmp/work"
    os.mkdir(work, 0o700)
    os.chown(work, run_uid, run_gid)
    return work


def _others_can_enter(path: str, uid: int, gid: int) -> bool:
    """Whether a process of ``uid``/``gid`` (no supplementary groups) can traverse every folder down to path."""
    current = "/"
    for part in [p for p in os.path.normpath(path).split("/") if p] + [""]:
        try:
            st = os.stat(current)
        except OSError:
            return False
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if not st.st_mode & bit:
            return False
        current = os.path.join(current, part)
    return True


def _reach_python_through_descriptors(uid: int, gid: int) -> None:
    """Point sys.path and loaded packages' __path__ at /proc/self/fd/N for Python folders the job's uid cannot
    traverse (opened here, before the drop; only the folder itself is reachable through such a descriptor)."""
    moved: dict[str, str] = {}
    for entry in sys.path:
        if entry and os.path.isdir(entry) and not _others_can_enter(entry, uid, gid):
            moved[entry] = f"/proc/self/fd/{os.open(entry, os.O_PATH | os.O_DIRECTORY)}"
    if not moved:
        return

    def through(path: str) -> str:
        for old, new in moved.items():
            if path == old or path.startswith(old + "/"):
                return new + path[len(old):]
        return path

    sys.path[:] = [through(p) for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [through(p) if isinstance(p, str) else p for p in search]
    sys.path_importer_cache.clear()


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
    workdir = _allowlist_root(job, run_uid, run_gid) if mode in ("root", "userns") else job["workdir"]
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
    if not job.get("cuda"):                             # only the CUDA cases' worker lifts it
        rl[resource.RLIMIT_AS] = int(limits["as_bytes"])
    iso.apply_rlimits(rl)
    ruleset = None                                     # built while every path can still be opened
    abi = min(iso.landlock_abi(), int(job.get("landlock_abi_max") or 99))
    if mode != "plain" and job.get("landlock", True) and abi >= 1:
        reads = iso.allow_except(job["expose"] + SYSTEM_READ, job["hide"])
        writes = [workdir, "/dev/null"] + (["/tmp", "/var/tmp", "/dev/shm"] if mode in ("root", "userns") else [])
        if job.get("cuda"):
            writes.append("/dev")
        try:
            ruleset, _ = iso.landlock_ruleset(reads, writes, abi)
        except OSError:
            if mode == "landlock":                     # the mode's only file-system protection: fatal
                raise
    if mode == "userns":
        iso.drop_all_capabilities()
    elif os.geteuid() == 0:
        if mode in ("landlock", "plain"):
            _reach_python_through_descriptors(run_uid, run_gid)
        iso.drop_to_user(run_uid, run_gid)
    iso.set_no_new_privs()
    if ruleset is not None:
        try:
            iso.landlock_enforce(ruleset)
        except OSError:
            if mode == "landlock":
                raise
    if job.get("seccomp", True):
        iso.seccomp_deny_syscalls()
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    sys.dont_write_bytecode = True
    runner.install_import_blocker()
    torch.set_num_threads(1)
