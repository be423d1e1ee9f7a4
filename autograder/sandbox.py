"""The grader's side of the sandbox: start the zygote, hand it jobs, watch the workers, collect their replies.

One :class:`Sandbox` serves one grading run (or a batch slot). ``run_function`` sends one graded function
with its cases and returns one outcome per case. Each case has a wall-clock limit, measured from the previous
reply; when it runs out, the worker's whole process tree is killed, that case is marked as timed out and a
fresh worker continues with the remaining cases. After ``max_failures`` timeouts or crashes the rest of the
function's cases are marked as not run, so an infinite loop costs at most ``max_failures`` case limits.

Pipes per job (created here, passed to the zygote with SCM_RIGHTS): results (runner -> grader, wire
messages), status (supervisor -> grader: started / exited with exit status, peak RSS and CPU time), kill
(grader -> supervisor: closing it kills the runner). ``run_function`` returns only after the supervisor has
reported that the runner and everything it started are gone.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .paths import PKG_DIR, default_hidden_paths, python_paths

from .worker.modes import MODES

# torch-free at import time: the CLI starts the zygote before it imports torch itself (the wire format, which
# imports torch, is loaded on first use).

__all__ = ["SandboxConfig", "Sandbox", "CaseOutcome", "FunctionRun", "SandboxError"]


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code): the grader reports an internal error."""


@dataclass
class SandboxConfig:
    """Limits and run mode for every worker (see the README's threat model for what each mode protects)."""

    mode: str = "auto"                 # auto | root | userns | landlock | plain
    case_timeout_s: float = 5.0        # wall clock per case (from the previous reply)
    setup_timeout_s: float = 10.0      # wall clock for defining the student's code
    cpu_s_per_case: float = 5.0        # CPU seconds per case (RLIMIT_CPU = this x cases + setup)
    memory_mb: int = 768               # RLIMIT_AS of the worker (absolute; see README for the measurement)
    nproc: int = 16                    # processes and threads of the worker's tree (its own uid when root)
    fsize_mb: int = 16                 # largest file the worker may write
    tmp_mb: int = 64                   # size of its private /tmp
    nofile: int = 256
    max_output_mb: int = 64            # bytes a worker may send back for one function
    max_failures: int = 2              # timeouts/crashes per function before its remaining cases are skipped
    landlock: bool = True
    landlock_abi_max: int | None = None   # use at most this Landlock ABI (to reproduce an older kernel)
    seccomp: bool = True               # the system-call filter (no sockets, SysV IPC, memfd, tracing, namespaces)
    cuda: bool | None = None           # CUDA cases (None: when the grader sees a GPU), in their own worker
    cuda_memory_mb: int = 4096         # that worker has no RLIMIT_AS; its control group caps host memory here
    hide: tuple[str, ...] = ()         # extra paths to hide from the worker

    def __post_init__(self):
        if self.mode != "auto" and self.mode not in MODES:
            raise ValueError(f"sandbox mode must be auto or one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("case_timeout_s", "setup_timeout_s", "cpu_s_per_case"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.memory_mb < 64:
            raise ValueError(f"memory_mb must be >= 64, got {self.memory_mb}")


@dataclass
class CaseOutcome:
    reply: dict | None = None          # the runner's reply (status ok / raised / ...)
    failure: str | None = None         # why there is no reply: timeout, crash, exit, bad output, not run
    kind: str = "reply"                # reply | timeout | crash | not-run | bad-output


@dataclass
class FunctionRun:
    setup: dict | None = None
    setup_failure: str | None = None
    outcomes: dict[str, CaseOutcome] = field(default_factory=dict)
    maxrss_kb: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 0


_SIGNALS = {
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV)",
    signal.SIGBUS: "crashed with a bus error (SIGBUS)",
    signal.SIGABRT: "aborted (SIGABRT)",
    signal.SIGFPE: "crashed with a floating-point exception (SIGFPE)",
    signal.SIGILL: "crashed with an illegal instruction (SIGILL)",
    signal.SIGXCPU: "used up its CPU-time limit (SIGXCPU)",
    signal.SIGXFSZ: "wrote a file larger than the limit (SIGXFSZ)",
}


class Sandbox:
    """A zygote process plus the logic to run graded functions in isolated workers."""

    def __init__(self, config: SandboxConfig | None = None, hide: tuple[str, ...] = ()):
        self.config = config or SandboxConfig()
        self.hidden = default_hidden_paths(tuple(self.config.hide) + tuple(hide))
        self.expose = python_paths(self.hidden)
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.info: dict | None = None
        self._job = 0
        self._lock = threading.Lock()                  # jobs may be sent from several threads
        self._ready_lock = threading.Lock()
        self._serial = threading.Lock()                # one worker at a time where workers are not isolated

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> "Sandbox":
        """Launch the zygote (returns at once; :meth:`ready` waits for it)."""
        if self.proc is not None:
            return self
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        boot = (
            "import sys; sys.path[:0] = sys.argv[3:]; import autograder.worker.zygote as w; "
            "del sys.path[0]; w.zygote_main(int(sys.argv[1]), sys.argv[2])"
        )
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "HOME": "/nonexistent", "MALLOC_ARENA_MAX": "2"}
        for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME"):
            if key in os.environ:
                env[key] = os.environ[key]
        argv = [sys.executable, "-I", "-S", "-c", boot, str(child.fileno()), self.config.mode, str(PKG_DIR.parent)]
        argv += [p for p in self.expose if p != str(PKG_DIR.parent)]
        self.proc = subprocess.Popen(argv, pass_fds=(child.fileno(),), env=env, cwd="/", stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        child.close()
        self.sock = parent
        return self

    def ready(self, timeout: float = 180.0) -> dict:
        """Wait for the zygote's hello; raises SandboxError when it cannot start or no mode works."""
        with self._ready_lock:                         # grading threads may ask at the same time
            return self._ready(timeout)

    def _ready(self, timeout: float) -> dict:
        if self.info is not None:
            return self.info
        self.start()
        from .worker.wire import recv_msg

        ready, _, _ = select.select([self.sock], [], [], timeout)
        got = recv_msg(self.sock) if ready else None
        if got is None:
            err = b""
            if self.proc.poll() is not None and self.proc.stderr:
                err = self.proc.stderr.read()[-2000:]
            self.close()
            raise SandboxError(f"the worker process did not start: {err.decode(errors='replace').strip() or 'no reply'}")
        self.info = got[0]
        if not self.info.get("mode"):
            self.close()
            why = (": the grader runs as root, and a user namespace would run its workers as uid 0 outside it; "
                   "use --sandbox root (or auto)" if self.config.mode == "userns" and self.info.get("euid") == 0 else "")
            raise SandboxError(f"sandbox mode {self.config.mode!r} is not available here{why} "
                               f"(available: {', '.join(m for m, ok in self.info.get('available', {}).items() if ok)})")
        if self.info["mode"] == "plain" and os.geteuid() != 0:
            from .worker.isolation import set_dumpable

            set_dumpable(False)                        # same-uid workers cannot ptrace or read this process's memory
        return self.info

    @property
    def cuda(self) -> bool:
        """Whether CUDA cases run: the config's choice, else whether the grader's torch sees a GPU (decided here,
        in the grader: the zygote must never initialise CUDA before it forks)."""
        if self.config.cuda is not None:
            return bool(self.config.cuda)
        import torch

        return bool(torch.cuda.is_available())

    @property
    def mode(self) -> str:
        return self.ready()["mode"]

    @property
    def landlock_abi(self) -> int:
        """The Landlock ABI the workers use (the kernel's, capped by the config)."""
        abi = int(self.ready().get("landlock_abi") or 0)
        cap = self.config.landlock_abi_max
        return 0 if not self.config.landlock else min(abi, cap) if cap is not None else abi

    @property
    def isolates_workers(self) -> bool:
        """Whether two workers running at once cannot signal, trace or share files with each other: always in
        the namespace modes (own PID namespaces), with a uid per job (grader is root), or with Landlock ABI >= 6
        (signals scoped to the sandbox). Otherwise this sandbox runs one worker at a time and ``batch`` refuses
        ``--jobs`` above 1."""
        info = self.ready()
        return (info["mode"] in ("root", "userns") or bool(info.get("job_uids"))
                or (info["mode"] == "landlock" and self.landlock_abi >= 6))

    @property
    def protection_info(self) -> dict | None:
        """:meth:`protection`, or None when the zygote never started (nothing to report)."""
        try:
            return self.protection() if self.info is not None else None
        except Exception:
            return None

    def protection(self) -> dict:
        """What the mode in use protects and what it does not (printed by grade and batch, stored in
        results.json): ``{"mode", "features", "unprotected", "concurrency", "summary"}``."""
        info = self.ready()
        mode, abi, root = info["mode"], self.landlock_abi, bool(info.get("job_uids"))
        features = ["uid per job" if root else "no capabilities" if mode == "userns" else "grader's uid"]
        features.append(f"control groups {info['cgroup']}" if info.get("cgroup") else "no control group")
        features.append("seccomp" if self.config.seccomp and info.get("seccomp") else "no seccomp")
        features.append(f"Landlock ABI {abi}" if abi and mode != "plain" else "no Landlock")
        gaps = ["the graded function's own inputs and its time and CPU budget",
                "the one failing example the feedback shows"]
        if mode == "plain":
            gaps.append("files: the worker reads every file its uid may read (reference solutions and other "
                        "submissions if they are readable by others) and writes where its uid may")
        if mode in ("landlock", "plain"):
            gaps.append("/proc shows the machine's processes (command lines), no PID namespace")
            gaps.append("the private folder's byte budget is checked every 50 ms, not enforced by the kernel")
        if not info.get("cgroup"):
            gaps.append(f"memory outside the address space (tmpfs files up to the {self.config.tmp_mb} MB budget) "
                        "and CPU beyond one core within the time limit: no control group "
                        f"({info.get('cgroup_problem') or 'unavailable'})")
        if not (self.config.seccomp and info.get("seccomp")):
            gaps.append("sockets, SysV shared memory and memfd are not refused (no seccomp filter)")
            if mode in ("landlock", "plain") and (mode == "plain" or abi < 4):
                gaps.append("network access")
        if self.cuda:
            gaps.append("the CUDA cases' worker has no address-space limit (host memory: "
                        + (f"{self.config.cuda_memory_mb} MB control group)" if info.get("cgroup") else "not capped)"))
        if self.isolates_workers:
            concurrency = "workers running at once cannot reach each other"
        else:
            concurrency = ("cannot keep concurrent workers apart (same uid, no PID namespace, no Landlock signal "
                           "scoping): workers run one at a time and can still signal the grader")
            gaps.append("a worker can signal the grader's processes (the run then fails, it cannot change a grade)")
        summary = f"mode {mode} ({', '.join(features)}); not protected: " + "; ".join(gaps)
        return {"mode": mode, "features": features, "unprotected": gaps, "concurrency": concurrency, "summary": summary}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def zygote_rss_kb(self) -> int:
        """Peak resident memory of the zygote (VmHWM), 0 when unknown."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return 0

    # ------------------------------------------------------------------------------------------ running
    def run_function(self, function: str, statements: list[dict], cases: list[dict]) -> FunctionRun:
        """Run the student's ``function`` on every case (dicts with an ``id``); one outcome per case.

        CUDA cases (``device`` starting with ``cuda``) run in a worker of their own, the only one without
        ``RLIMIT_AS``; the CPU cases keep the limit whatever the machine has.
        """
        info = self.ready()
        run = FunctionRun()
        start = time.monotonic()
        on_gpu = [c for c in cases if str(c.get("device", "cpu")).startswith("cuda")]
        on_cpu = [c for c in cases if c not in on_gpu]
        failures = 0
        for group, cuda in ((on_cpu, False), (on_gpu, True)):
            if group and run.setup_failure is None:
                failures = self._run_cases(run, info["mode"], function, statements, group, cuda, failures)
            elif group:
                for case in group:
                    run.outcomes[case["id"]] = CaseOutcome(failure=f"while defining your code, the worker "
                                                                   f"{run.setup_failure}", kind="crash")
        run.wall_s = time.monotonic() - start
        return run

    def _run_cases(self, run: FunctionRun, mode: str, function: str, statements: list[dict], cases: list[dict],
                   cuda: bool, failures: int) -> int:
        """Workers for ``cases`` until each has an outcome; returns the failures counted so far."""
        remaining = list(cases)
        while remaining:
            if failures >= self.config.max_failures:
                for case in remaining:
                    run.outcomes[case["id"]] = CaseOutcome(
                        failure=f"not run: the function already failed {failures} times (timeouts or crashes)", kind="not-run")
                break
            got_setup, replies, failure, kind, exited = self._one_worker(mode, function, statements, remaining, cuda)
            run.workers += 1
            run.maxrss_kb = max(run.maxrss_kb, int(exited.get("maxrss_kb") or 0))
            run.cpu_s += float(exited.get("cpu_s") or 0.0)
            if run.setup is None:
                run.setup = got_setup
            for case_id, reply in replies.items():
                run.outcomes[case_id] = CaseOutcome(reply=reply)
            pending = [c for c in remaining if c["id"] not in run.outcomes]
            if failure is None or not pending:
                remaining = pending
                if failure is not None and got_setup is None:
                    run.setup_failure = failure
                if failure is None and pending:
                    why = _undefined(got_setup)
                    for case in pending:
                        run.outcomes[case["id"]] = CaseOutcome(failure=why, kind="crash")
                    remaining = []
                continue
            if got_setup is None:                        # died while defining the code: no point retrying
                run.setup_failure = failure
                for case in pending:
                    run.outcomes[case["id"]] = CaseOutcome(failure=f"while defining your code, the worker {failure}", kind=kind)
                break
            run.outcomes[pending[0]["id"]] = CaseOutcome(failure=f"the worker {failure}", kind=kind)
            failures += 1
            remaining = pending[1:]
        return failures

    def _one_worker(self, mode: str, function: str, statements: list[dict], cases: list[dict], cuda: bool = False):
        if self.isolates_workers:
            return self._one_worker_unlocked(mode, function, statements, cases, cuda)
        with self._serial:                             # workers that could reach each other run one at a time
            return self._one_worker_unlocked(mode, function, statements, cases, cuda)

    def _one_worker_unlocked(self, mode: str, function: str, statements: list[dict], cases: list[dict], cuda: bool):
        cfg = self.config
        with self._lock:
            self._job += 1
            job_id = self._job
        workdir = None
        if mode in ("landlock", "plain"):
            import tempfile

            workdir = tempfile.mkdtemp(prefix="ag-work-")
        job = {
            "job": job_id, "function": function, "statements": statements, "cases": cases,
            "hide": self.hidden, "expose": self.expose, "workdir": workdir, "landlock": cfg.landlock, "cuda": cuda,
            "landlock_abi_max": cfg.landlock_abi_max, "seccomp": cfg.seccomp,
            "hard_timeout": cfg.setup_timeout_s + cfg.case_timeout_s * (len(cases) + 1),
            "limits": {"as_mb": cfg.memory_mb, "cpu_s": int(cfg.setup_timeout_s + cfg.cpu_s_per_case * len(cases)) + 1,
                       "nproc": cfg.nproc, "fsize_mb": cfg.fsize_mb, "tmp_mb": cfg.tmp_mb, "nofile": cfg.nofile,
                       "cuda_memory_mb": cfg.cuda_memory_mb},
        }
        res_r, res_w = os.pipe()
        st_r, st_w = os.pipe()
        kill_r, kill_w = os.pipe()
        from .worker.wire import send_msg

        try:
            with self._lock:
                send_msg(self.sock, job, [res_w, st_w, kill_r])
        except OSError as exc:
            for fd in (res_r, res_w, st_r, st_w, kill_r, kill_w):
                os.close(fd)
            raise SandboxError(f"cannot reach the worker process: {exc}") from None
        for fd in (res_w, st_w, kill_r):
            os.close(fd)
        try:
            return self._watch(res_r, st_r, kill_w, cases)
        finally:
            for fd in (res_r, st_r):
                os.close(fd)
            try:
                os.close(kill_w)
            except OSError:
                pass
            if workdir:
                import shutil

                shutil.rmtree(workdir, ignore_errors=True)

    def _watch(self, res_r: int, st_r: int, kill_w: int, cases: list[dict]):
        from .worker import wire
        from .replies import clean_reply

        cfg = self.config
        limit = wire.Limits(max_body=cfg.max_output_mb << 20)
        results, status = wire.Reassembler(limit), wire.Reassembler(wire.Limits())
        setup, replies, exited, started = None, {}, {}, {}
        failure, kind, killed = None, "crash", False
        received, done = 0, False
        expected = [c["id"] for c in cases]            # replies must come in this order, one each
        deadline = time.monotonic() + cfg.setup_timeout_s + cfg.case_timeout_s
        open_fds = {res_r, st_r}

        def kill(reason: str, k: str) -> None:
            nonlocal failure, kind, killed
            if not killed:
                failure, kind, killed = reason, k, True
                try:
                    os.close(kill_w)
                except OSError:
                    pass

        while st_r in open_fds:
            timeout = max(0.0, deadline - time.monotonic()) if not killed else 30.0
            ready, _, _ = select.select(list(open_fds), [], [], timeout)
            if not ready:
                if killed:                              # the supervisor itself is gone: kill the runner directly
                    if started.get("pid"):
                        try:
                            os.kill(int(started["pid"]), signal.SIGKILL)
                        except OSError:
                            pass
                    break
                kill(f"timed out (limit {cfg.case_timeout_s:g} s per check; an infinite loop, or far too slow)", "timeout")
                continue
            for fd in ready:
                data = os.read(fd, 1 << 20)
                if not data:
                    open_fds.discard(fd)
                    continue
                if fd == res_r:
                    received += len(data)
                    if received > (cfg.max_output_mb << 20):
                        kill(f"sent more than {cfg.max_output_mb} MB of results", "bad-output")
                        continue
                    try:
                        msgs = [clean_reply(raw) for raw in results.feed(data)]
                    except Exception as exc:              # WireError, or anything a forged message provokes
                        kill(f"sent malformed data to the grader ({type(exc).__name__})", "bad-output")
                        continue
                    for msg in msgs:
                        if killed:
                            break
                        # Only the next expected message is accepted, once: the setup, then each case in order,
                        # then done. Each accepted message opens the next case's window; nothing else moves
                        # the deadline, so a worker cannot buy time by repeating or reordering messages.
                        what = msg.get("kind") if msg else None
                        if what == "setup" and setup is None and not done:
                            setup = msg
                        elif (what == "case" and setup is not None and not done and len(replies) < len(expected)
                              and msg["id"] == expected[len(replies)]):
                            replies[msg["id"]] = msg
                        elif what == "done" and setup is not None and not done:
                            done = True
                            continue
                        else:
                            kill("sent malformed data to the grader (a message that is not the next expected one)",
                                 "bad-output")
                            break
                        deadline = time.monotonic() + cfg.case_timeout_s
                else:
                    for msg in status.feed(data):
                        if msg.get("event") == "started":
                            started = msg
                        elif msg.get("event") == "exited":
                            exited = msg
                        elif msg.get("event") == "error":
                            raise SandboxError(msg.get("message", "sandbox error"))
        if not exited and not killed:
            raise SandboxError("the supervisor process vanished without a report")
        if failure is None and not done:
            failure, kind = _describe_exit(exited, cfg), "crash"
        return setup, replies, failure, kind, exited


def _undefined(setup: dict | None) -> str:
    """Why a worker answered no case although it did not crash: the function could not be defined."""
    if setup and not setup.get("defined"):
        errors = setup.get("errors") or []
        if errors:
            e = errors[-1]
            return (f"the function could not be defined: cell {e['cell']}, line {e['line']} raised {e['type']}: "
                    f"{e['message'][:200]}")
        return f"the function could not be defined (the name is bound to a {setup.get('type') or 'non-function'})"
    return "the worker stopped without answering"


def _describe_exit(exited: dict, cfg: SandboxConfig) -> str:
    sig, code = exited.get("signal"), exited.get("code")
    killed = exited.get("killed")
    if killed == "deadline":
        return "ran past the overall time limit and was stopped"
    if killed == "cpu":
        return "used more CPU time than its budget (all its processes together) and was stopped"
    if killed == "disk":
        return (f"wrote more than {cfg.tmp_mb} MB (or too many files) into its folder and was stopped")
    if killed == "memory":
        return f"went over the {cfg.memory_mb} MB memory limit (all kinds of memory counted) and was killed"
    if sig is not None:
        if sig in _SIGNALS:
            return _SIGNALS[sig]
        if sig == signal.SIGKILL:
            return f"was killed (SIGKILL; most likely it went over the {cfg.memory_mb} MB memory limit)"
        return f"was killed by signal {signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig}"
    return (f"exited (exit status {code}) instead of returning: graded code must not call sys.exit(), "
            "os._exit(), quit() or exit()")
