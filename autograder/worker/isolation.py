"""Operating-system isolation primitives for the worker processes (Linux; ctypes only, no dependencies).

Each graded function runs in a process tree set up like this (see zygote.py)::

    zygote --fork--> supervisor --unshare(ns)+fork--> runner (PID 1 of a new PID namespace)
                     (trusted)                        (runs student code)

The primitives here are: namespaces (mount, PID, network, IPC, and a user namespace when not root), mounts for
the allow-list view of the file system (tmpfs, bind mounts of held descriptors, proc, pivot_root, lazy unmount;
see confine.py), resource limits, dropping privileges (to the job's uid when root, or clearing every capability),
Landlock (a kernel allow-list of readable / writable paths plus, from ABI 6, a ban on signalling processes
outside the sandbox), a seccomp filter of system calls and ``no_new_privs``. Each primitive raises OSError when
it cannot be applied; which ones are used depends on the run mode chosen in zygote.py.

References:
    namespaces(7), pid_namespaces(7), user_namespaces(7), mount(2), pivot_root(2), prctl(2), seccomp(2),
    setrlimit(2); the Landlock documentation, https://docs.kernel.org/userspace-api/landlock.html (ABI 1-7).
"""
from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct

__all__ = [
    "CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWNET", "CLONE_NEWIPC", "CLONE_NEWUSER",
    "unshare", "mount_tmpfs", "bind_mount_fd", "make_mounts_private", "mount_proc", "mount_proc_at", "landlock_abi",
    "landlock_restrict", "set_no_new_privs", "set_child_subreaper", "set_dumpable", "drop_to_user",
    "drop_all_capabilities", "apply_rlimits", "write_id_maps", "is_ancestor_or_same", "allow_except",
    "pivot_root", "detach_mount", "seccomp_supported", "seccomp_deny_syscalls", "landlock_ruleset",
    "landlock_enforce",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 0x1000, 0x4000, 0x40000

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 4, 38, 36

_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_SYS_CAPSET = 126
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

# Landlock file-system rights by the ABI that introduced them.
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1                      # EXECUTE .. MAKE_SYM
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _err(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    """unshare(2); raises OSError when the kernel or the privileges do not allow it."""
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        raise _err("unshare")


def _mount(source: bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None) -> None:
    if _libc.mount(source, os.fsencode(target), fstype, flags, data) != 0:
        raise _err(f"mount {target}")


def make_mounts_private() -> None:
    """Stop mount events from propagating back to the parent namespace (mount --make-rprivate /)."""
    _mount(b"none", "/", None, MS_REC | MS_PRIVATE, None)


def mount_tmpfs(target: str, size_mb: int, mode: int = 0o755) -> None:
    """An empty tmpfs over ``target`` (hides what was there; capped at ``size_mb``)."""
    _mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode={mode:o}".encode())


def bind_mount_fd(fd: int, target: str, readonly: bool = True, recursive: bool = True) -> None:
    """Bind-mount the file or folder held open by ``fd`` (opened before it was hidden) onto ``target``."""
    _mount(f"/proc/self/fd/{fd}".encode(), target, None, MS_BIND | (MS_REC if recursive else 0), None)
    if readonly:
        try:
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
        except OSError:
            pass                                           # read-only is a bonus: the tree is root-owned anyway



def mount_proc_at(target: str = "/proc") -> None:
    """A proc file system that shows only the current PID namespace, mounted on ``target``."""
    _mount(b"proc", target, b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)


mount_proc = mount_proc_at


def write_id_maps(uid: int, gid: int) -> None:
    """Map the caller's own uid/gid into a fresh user namespace (identity mapping, one id each).

    A non-dumpable process's /proc files belong to root, so it could not write its own maps: the process is
    made dumpable for these three writes and non-dumpable again (it is alone in its new namespaces then).
    """
    set_dumpable(True)
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    finally:
        set_dumpable(False)


_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
MNT_DETACH = 2


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): ``new_root`` (a mount point) becomes ``/``; the old root is moved to ``put_old``."""
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown architecture {os.uname().machine}")
    if _libc.syscall(ctypes.c_long(nr), os.fsencode(new_root), os.fsencode(put_old)) != 0:
        raise _err("pivot_root")


def detach_mount(target: str) -> None:
    """umount2(target, MNT_DETACH): lazily unmount a whole tree (the old root after pivot_root)."""
    if _libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH)) != 0:
        raise _err(f"umount {target}")


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise _err(f"prctl({option})")


def set_no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper() -> None:
    """Orphaned descendants are re-parented to the caller, which can then find and kill them."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_dumpable(flag: bool) -> None:
    """A non-dumpable process cannot be ptraced (or its memory read) by same-uid processes."""
    _prctl(PR_SET_DUMPABLE, int(flag))


def set_parent_death_signal(sig: int) -> None:
    _prctl(PR_SET_PDEATHSIG, sig)


def drop_to_user(uid: int, gid: int) -> None:
    """setgroups([]) + setresgid + setresuid: from root this also clears every capability."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def drop_all_capabilities() -> None:
    """capset(2) with empty effective, permitted and inheritable sets (for user-namespace root)."""
    header = struct.pack("Ii", 0x20080522, 0)                      # _LINUX_CAPABILITY_VERSION_3, this thread
    data = bytes(24)                                               # two zeroed {effective, permitted, inheritable}
    if _libc.syscall(_SYS_CAPSET, ctypes.c_char_p(header), ctypes.c_char_p(data)) != 0:
        raise _err("capset")


def apply_rlimits(limits: dict[int, int]) -> None:
    """Lower soft and hard limits (``resource.RLIMIT_*`` -> value); never raises a limit."""
    for which, value in limits.items():
        soft, hard = resource.getrlimit(which)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (new, new))


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers (0 when Landlock is missing or disabled)."""
    r = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return int(r) if r > 0 else 0


def _fs_rights(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def landlock_restrict(read_paths: list[str], write_paths: list[str], abi: int | None = None) -> int:
    """Restrict the calling thread (and everything it forks later) to a Landlock allow-list.

    ``read_paths`` get read + execute; ``write_paths`` get every file-system right. When the ABI allows it,
    TCP bind/connect is denied entirely and signals / abstract unix sockets cannot reach processes outside
    the sandbox. Requires ``no_new_privs`` (set here). Returns the ABI used.

    Raises:
        OSError: when Landlock is unavailable or a step fails (the caller decides how to fall back).
    """
    ruleset, abi = landlock_ruleset(read_paths, write_paths, abi)
    landlock_enforce(ruleset)
    return abi


def landlock_ruleset(read_paths: list[str], write_paths: list[str], abi: int | None = None) -> tuple[int, int]:
    """Build the ruleset of :func:`landlock_restrict` without enforcing it: (ruleset fd, ABI). The paths are
    opened now, so a process about to drop its privileges can build it while it can still open them all."""
    abi = landlock_abi() if abi is None else abi
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available")
    handled_fs = _fs_rights(abi)
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("Q", handled_fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _err("landlock_create_ruleset")
    try:
        read_rights = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        for paths, rights in ((read_paths, read_rights), (write_paths, handled_fs)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue                                       # a missing path needs no rule
                try:
                    allowed = rights if os.path.isdir(path) else rights & _FILE_ONLY
                    rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed, fd), 12)
                    if _libc.syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
                                     rule, ctypes.c_uint32(0)) != 0:
                        raise _err(f"landlock_add_rule {path}")
                finally:
                    os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return int(ruleset), abi


def landlock_enforce(ruleset: int) -> None:
    """Enforce (and close) a ruleset from :func:`landlock_ruleset` on the calling thread."""
    try:
        set_no_new_privs()
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise _err("landlock_restrict_self")
    finally:
        os.close(ruleset)


def allow_except(paths: list[str], hidden: list[str], depth: int = 0) -> list[str]:
    """Split an allow-list so that it covers ``paths`` but none of ``hidden``: a path that contains a hidden
    one is replaced by its children (recursively), a path equal to a hidden one is dropped. (A listed path
    inside a hidden folder stays: it was re-exposed on purpose, e.g. the Python installation.)"""
    out: list[str] = []
    for p in paths:
        p = os.path.normpath(p)
        if any(os.path.normpath(h) == p for h in hidden):
            continue
        if not any(is_ancestor_or_same(p, h) for h in hidden):
            out.append(p)
        elif depth < 8 and os.path.isdir(p):
            try:
                children = [os.path.join(p, c) for c in sorted(os.listdir(p))]
            except OSError:
                continue
            out += allow_except(children, hidden, depth + 1)
    return out


def is_ancestor_or_same(a: str, b: str) -> bool:
    """True when path ``a`` equals ``b`` or contains it (both absolute and normalised)."""
    a, b = os.path.normpath(a), os.path.normpath(b)
    return a == b or b.startswith(a.rstrip("/") + "/")


# ------------------------------------------------------------------------------------------------ seccomp
# System calls a graded function never needs and that would let it reach past the limits: sockets (network,
# including UDP, which Landlock does not cover), SysV IPC and memfd (memory outside RLIMIT_AS that can outlive
# the process), tracing other processes, new namespaces (clone with CLONE_NEW* flags is refused; clone3's flags
# are in memory, so clone3 reports ENOSYS and the C library falls back to clone), io_uring, BPF, keyrings,
# userfaultfd and perf events.
_DENY = {
    "x86_64": {"socket": 41, "shmget": 29, "shmat": 30, "semget": 64, "msgget": 68, "ptrace": 101, "mount": 165,
               "umount2": 166, "pivot_root": 155, "add_key": 248, "request_key": 249, "keyctl": 250,
               "unshare": 272, "perf_event_open": 298, "setns": 308, "process_vm_readv": 310,
               "process_vm_writev": 311, "memfd_create": 319, "bpf": 321, "userfaultfd": 323,
               "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "memfd_secret": 447},
    "aarch64": {"socket": 198, "shmget": 194, "shmat": 196, "semget": 190, "msgget": 186, "ptrace": 117,
                "mount": 40, "umount2": 39, "pivot_root": 41, "add_key": 217, "request_key": 218, "keyctl": 219,
                "unshare": 97, "perf_event_open": 241, "setns": 268, "process_vm_readv": 270,
                "process_vm_writev": 271, "memfd_create": 279, "bpf": 280, "userfaultfd": 282,
                "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "memfd_secret": 447},
}
_CLONE = {"x86_64": (56, 435), "aarch64": (220, 435)}             # clone, clone3
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_supported() -> bool:
    """Whether :func:`seccomp_deny_syscalls` knows this architecture's system call numbers."""
    return os.uname().machine in _DENY


def seccomp_deny_syscalls() -> list[str]:
    """Install the seccomp filter above (after ``no_new_privs``): the listed calls fail with EPERM, clone with a
    namespace flag too, clone3 with ENOSYS, another architecture's calls kill the process. Returns the names
    of the refused calls.

    Raises:
        OSError: on an unknown architecture or when the kernel refuses the filter.
    """
    machine = os.uname().machine
    if machine not in _DENY:
        raise OSError(errno.ENOSYS, f"seccomp: no system call table for {machine}")
    deny, (clone, clone3) = _DENY[machine], _CLONE[machine]
    eperm = _RET_ERRNO | errno.EPERM
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ_K, 1, 0, _AUDIT_ARCH[machine]), (_RET_K, 0, 0, _RET_KILL_PROCESS),
            (_LD_W_ABS, 0, 0, 0)]
    if machine == "x86_64":                                        # the x32 ABI's numbers have bit 30 set
        prog += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, eperm)]
    for nr in sorted(set(deny.values())):
        prog += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, eperm)]
    prog += [(_JEQ_K, 0, 1, clone3), (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
             (_JEQ_K, 0, 3, clone), (_LD_W_ABS, 0, 0, 16), (_JSET_K, 0, 1, _CLONE_NEW_FLAGS), (_RET_K, 0, 0, eperm),
             (_RET_K, 0, 0, _RET_ALLOW)]
    filters = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), filters)
    set_no_new_privs()
    if _libc.prctl(_PR_SET_SECCOMP, ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(fprog), 0, 0) != 0:
        raise _err("seccomp")
    return sorted(deny)
