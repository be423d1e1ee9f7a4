"""One control group per worker: a memory cap that counts everything, a process cap, one CPU at most.

``RLIMIT_AS`` bounds only the worker's address space; memory in tmpfs files, memfd and SysV segments, and the
processes a fork bomb adds, escape it. A control group counts all of them for the worker's whole process tree:
``memory.max`` (anonymous memory, page cache, tmpfs and shared memory, without swap), ``pids.max`` (processes and
threads) and a CPU quota of one CPU, whose usage the supervisor also reads to stop a tree that spends more than
its CPU budget however many processes share it.

Both kernel interfaces are handled: the unified hierarchy (cgroup v2, controllers ``memory``, ``pids``, ``cpu``
enabled in a parent that holds no processes of its own) and the legacy one (cgroup v1, one hierarchy per
controller: ``memory``, ``pids``, ``cpu``, ``cpuacct``). Creating groups needs root (or a delegated subtree);
:func:`open_parent` returns None and the reason when it is not possible, and the run modes then rely on the
resource limits alone (the README's threat model says what that leaves open).

References: Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/{memory,pids,cpuacct}.rst in the Linux tree.
"""
from __future__ import annotations

import os
import signal
import time

__all__ = ["CgroupParent", "JobCgroup", "open_parent"]

_V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
_V2_CONTROLLERS = ("memory", "pids", "cpu")


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
                out.append((fields[4].replace("\\040", " "), rest[0], rest[2].split(",")))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "" for the unified hierarchy) -> this process's cgroup path."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                out[c] = path
    return out


class JobCgroup:
    """The group(s) of one job: attach the runner, read its CPU time and OOM kills, kill it, remove it."""

    def __init__(self, version: str, dirs: dict[str, str]):
        self.version, self.dirs = version, dirs          # controller -> folder (v2: one folder under "")

    def _dir(self, controller: str) -> str:
        return self.dirs.get(controller) or self.dirs.get("", "")

    def attach(self, pid: int) -> None:
        for d in set(self.dirs.values()):
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def cpu_seconds(self) -> float:
        try:
            if self.version == "v2":
                for line in _read(os.path.join(self._dir("cpu"), "cpu.stat")).splitlines():
                    if line.startswith("usage_usec"):
                        return int(line.split()[1]) / 1e6
                return 0.0
            return int(_read(os.path.join(self._dir("cpuacct"), "cpuacct.usage"))) / 1e9
        except (OSError, ValueError):
            return 0.0

    def oom_killed(self) -> bool:
        try:
            if self.version == "v2":
                text = _read(os.path.join(self._dir("memory"), "memory.events"))
            else:
                text = _read(os.path.join(self._dir("memory"), "memory.oom_control"))
            counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
            return int(counts.get("oom_kill", "0")) > 0
        except (OSError, ValueError):
            return False

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in _read(os.path.join(self._dir("pids"), "cgroup.procs")).split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        """SIGKILL every process in the group until it is empty (v2: cgroup.kill)."""
        if self.version == "v2":
            try:
                _write(os.path.join(self._dir("pids"), "cgroup.kill"), "1")
            except OSError:
                pass
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.005)

    def remove(self) -> None:
        for d in sorted(set(self.dirs.values()), key=len, reverse=True):
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:                           # tasks still exiting
                    time.sleep(0.005)


class CgroupParent:
    """The folder(s) under which one zygote creates a group per job (``autograder-<zygote pid>``)."""

    def __init__(self, version: str, dirs: dict[str, str]):
        self.version, self.dirs = version, dirs

    def job(self, name: str, memory_bytes: int, pids: int, cpus: float = 1.0) -> JobCgroup:
        """Create and configure the group of one job (raises OSError when the kernel refuses)."""
        made: dict[str, str] = {}
        try:
            for controller, parent in self.dirs.items():
                path = os.path.join(parent, name)
                if path not in made.values():             # cpu and cpuacct may share a hierarchy
                    os.mkdir(path, 0o755)
                made[controller] = path
            cg = JobCgroup(self.version, made)
            period = 100_000
            if self.version == "v2":
                d = made[""]
                _write(os.path.join(d, "memory.max"), str(memory_bytes))
                for optional in ("memory.swap.max", "memory.oom.group"):
                    if os.path.exists(os.path.join(d, optional)):
                        _write(os.path.join(d, optional), "0" if optional.endswith("swap.max") else "1")
                _write(os.path.join(d, "pids.max"), str(pids))
                _write(os.path.join(d, "cpu.max"), f"{int(cpus * period)} {period}")
            else:
                _write(os.path.join(made["memory"], "memory.limit_in_bytes"), str(memory_bytes))
                memsw = os.path.join(made["memory"], "memory.memsw.limit_in_bytes")
                if os.path.exists(memsw):
                    _write(memsw, str(memory_bytes))
                _write(os.path.join(made["pids"], "pids.max"), str(pids))
                _write(os.path.join(made["cpu"], "cpu.cfs_period_us"), str(period))
                _write(os.path.join(made["cpu"], "cpu.cfs_quota_us"), str(int(cpus * period)))
            return cg
        except OSError:
            JobCgroup(self.version, made).remove()
            raise

    def remove_job(self, name: str) -> None:
        """Kill what is left in job group ``name`` and remove it (nothing when it is gone already)."""
        dirs = {c: os.path.join(d, name) for c, d in self.dirs.items() if os.path.isdir(os.path.join(d, name))}
        if dirs:
            group = JobCgroup(self.version, dirs)
            group.kill_all()
            group.remove()

    def remove(self) -> None:
        for d in self.dirs.values():
            try:
                for entry in os.listdir(d):
                    if os.path.isdir(os.path.join(d, entry)):
                        JobCgroup(self.version, {"": os.path.join(d, entry)}).remove()
                os.rmdir(d)
            except OSError:
                pass


def _clean_stale(folder: str) -> None:
    """Remove the empty groups left by zygotes that were killed (``autograder-<pid>`` of a dead pid)."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if entry.startswith("autograder-") and entry[11:].isdigit() and not os.path.exists(f"/proc/{entry[11:]}"):
            CgroupParent("", {"": os.path.join(folder, entry)}).remove()


def open_parent(name: str) -> tuple[CgroupParent | None, str]:
    """Create ``name`` (e.g. ``autograder-<pid>``) under this process's groups; (parent, "v2"/"v1") or
    (None, why not)."""
    if os.geteuid() != 0:
        return None, "not root (no delegated control group)"
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as exc:
        return None, f"cannot read the control groups ({exc.strerror})"
    v2 = [m for m in mounts if m[1] == "cgroup2"]
    for mount, _, _ in v2:
        try:
            controllers = set(_read(os.path.join(mount, "cgroup.controllers")).split())
        except OSError:
            continue
        if not set(_V2_CONTROLLERS) <= controllers:
            continue
        for base in (os.path.join(mount, own.get("", "/").lstrip("/")), mount):
            try:
                _write(os.path.join(base, "cgroup.subtree_control"), " ".join("+" + c for c in _V2_CONTROLLERS))
                _clean_stale(base)
                path = os.path.join(base, name)
                os.makedirs(path, exist_ok=True)
                _write(os.path.join(path, "cgroup.subtree_control"), " ".join("+" + c for c in _V2_CONTROLLERS))
                return CgroupParent("v2", {"": path}), "v2"
            except OSError:
                continue
    dirs: dict[str, str] = {}
    for controller in _V1_CONTROLLERS:
        mount = next((m for m, fs, opts in mounts if fs == "cgroup" and controller in opts), None)
        if mount is None:
            return None, f"no {controller} controller (cgroup v2 without delegation, or v1 without it)"
        base = os.path.join(mount, own.get(controller, "/").lstrip("/"))
        try:
            _clean_stale(base)
            path = os.path.join(base, name)
            os.makedirs(path, exist_ok=True)
            dirs[controller] = path
        except OSError as exc:
            CgroupParent("v1", dirs).remove()
            return None, f"cannot create a {controller} group ({exc.strerror})"
    return CgroupParent("v1", dirs), "v1"
