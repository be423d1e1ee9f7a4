"""Grade every notebook under a folder into a CSV gradebook, in parallel, resumable after an interruption.

Each submission's result is cached as one JSON file keyed by (submission sha256, assignment, grader version,
salt), written atomically, so a run killed with ``kill -9`` and started again grades only what is missing.
One submission's failure (even a grader failure) becomes a row with an ``error`` column; it never stops the
batch: a file name that is not UTF-8 is written with backslash escapes, a file over the notebook size limit is
not read, a cache entry that cannot be written (a full disk) leaves the row graded but uncached, and any other
exception while grading one submission is that submission's error. The CSV is written last, atomically; its
``sandbox_mode`` column says which sandbox mode graded each row (README, threat model).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .grading import grade_notebook, grader_version
from .notebook import MAX_NOTEBOOK_BYTES
from .registry import REGISTRY
from .results import results_json, write_json_atomic
from .sandbox import Sandbox, SandboxConfig

__all__ = ["BatchSummary", "find_notebooks", "grade_batch", "cache_key"]


@dataclass
class BatchSummary:
    rows: list[dict] = field(default_factory=list)
    graded: int = 0                 # graded in this run
    cached: int = 0                 # taken from the cache
    failed: int = 0                 # grader failures (rows with an error, not cached)
    sandbox: str = ""               # the sandbox mode used and what it does not protect


def find_notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())


def cache_key(sha256: str, assignment: str, version: str) -> str:
    salt = hashlib.sha256(os.environ.get("AUTOGRADER_SALT", "").encode()).hexdigest()[:8]
    return hashlib.sha256(f"{sha256}|{assignment}|{version}|{salt}".encode()).hexdigest()[:32]


def display_name(path: str) -> str:
    """A file name as text that can always be written (bytes that are not UTF-8 become ``\\xNN``)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _row(rel: str, sha: str, res: dict | None, error: str, functions: list[str]) -> dict:
    row = {"submission": display_name(rel), "sha256": sha}
    tests = {t["extra_data"]["function"]: t["score"] for t in (res or {}).get("tests", [])}
    for name in functions:
        row[name] = tests.get(name, "")
    row["total"] = res.get("score", "") if res else ""
    row["max_total"] = res.get("max_score", "") if res else ""
    row["error"] = display_name(error)
    row["sandbox_mode"] = ((res or {}).get("extra_data") or {}).get("sandbox_mode") or ""
    return row


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def grade_batch(folder: str | Path, assignment: str, out_csv: str | Path, *, jobs: int = 1,
                cache_dir: str | Path | None = None, config: SandboxConfig | None = None,
                progress: bool = True) -> BatchSummary:
    """Grade every ``*.ipynb`` under ``folder``; write ``out_csv``; return the rows and counters.

    Raises:
        ValueError: for an unknown assignment, a bad ``jobs``, or ``jobs > 1`` in a sandbox mode that cannot keep
            concurrent workers apart (see :attr:`Sandbox.isolates_workers`).
        SandboxError: when no sandbox can start.
        OSError: when the gradebook itself cannot be written (every graded result stays in the cache).
    """
    if assignment not in REGISTRY:
        raise ValueError(f"unknown assignment {assignment!r}; choose one of {', '.join(REGISTRY)}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    folder, out_csv = Path(folder).resolve(), Path(out_csv).resolve()
    cache = Path(cache_dir).resolve() if cache_dir else out_csv.with_name(out_csv.name + ".cache")
    cache.mkdir(parents=True, exist_ok=True)
    functions = [s.name for s in REGISTRY[assignment]]
    version = grader_version()
    notebooks = find_notebooks(folder)
    base = config or SandboxConfig()
    hide = tuple(base.hide) + (str(folder), str(out_csv.parent), str(cache))
    cfg = SandboxConfig(**{**base.__dict__, "hide": hide})
    local = threading.local()
    sandboxes: list[Sandbox] = []
    lock = threading.Lock()
    summary = BatchSummary()

    spare: list[Sandbox] = []

    def sandbox() -> Sandbox:
        sb = getattr(local, "sb", None)
        if sb is None or sb.proc is None or sb.proc.poll() is not None:
            with lock:
                sb = spare.pop() if spare else None
            if sb is None:
                sb = Sandbox(cfg).start()
                with lock:
                    sandboxes.append(sb)
            local.sb = sb
        return sb

    first = Sandbox(cfg).start()                          # the mode decides whether jobs may run side by side
    sandboxes.append(first)
    try:
        first.ready()
        if jobs > 1 and not first.isolates_workers:
            raise ValueError(f"--jobs {jobs}: sandbox mode {first.mode} {first.protection()['concurrency']}; "
                             "use --jobs 1, or a mode that isolates workers (run as root, or allow user namespaces)")
    except BaseException:
        first.close()
        raise
    spare.append(first)
    protection = first.protection()
    summary.sandbox = protection["summary"]

    def one(path: Path) -> tuple[dict, str]:
        rel = str(path.relative_to(folder))
        try:
            size = path.stat().st_size
            if size > MAX_NOTEBOOK_BYTES:
                return _row(rel, "", None, f"the file is {size >> 20} MB, over the {MAX_NOTEBOOK_BYTES >> 20} MB "
                                           "notebook limit", functions), "graded"
            sha = _sha256(path)
        except OSError as exc:
            return _row(rel, "", None, f"cannot read the file: {exc.strerror}", functions), "failed"
        entry = cache / f"{cache_key(sha, assignment, version)}.json"
        if entry.is_file():
            try:
                res = json.loads(entry.read_text())
                return _row(rel, sha, res, res.get("extra_data", {}).get("notebook_error") or "", functions), "cached"
            except (OSError, ValueError):
                pass                                      # a damaged entry: grade again
        try:
            result = grade_notebook(path, assignment, sandbox=sandbox())
            res = results_json(result, version)
            res["extra_data"]["sandbox"] = {k: v for k, v in protection.items() if k != "summary"}
        except Exception as exc:                           # a grader failure: report it, do not cache it
            local.sb = None
            return _row(rel, sha, None, f"grader error: {type(exc).__name__}: {exc}", functions), "failed"
        error = result.notebook_error or ""
        try:
            write_json_atomic(entry, res)
        except OSError as exc:                             # a full disk: keep the grade, say it is not cached
            error = "; ".join(e for e in (error, f"result not cached ({exc.strerror or exc})") if e)
        return _row(rel, sha, res, error, functions), "graded"

    def safe(path: Path) -> tuple[dict, str]:
        try:
            return one(path)
        except Exception as exc:                           # never lose the gradebook to one submission
            return _row(str(path.relative_to(folder)), "", None, f"grader error: {type(exc).__name__}: {exc}",
                        functions), "failed"

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(notebooks), file=sys.stderr, desc=f"grading {assignment}", unit="nb")
    rows: dict[Path, dict] = {}
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(safe, p): p for p in notebooks}
            for fut in as_completed(futures):
                row, how = fut.result()
                rows[futures[fut]] = row
                setattr(summary, how, getattr(summary, how) + 1)
                if bar:
                    bar.update(1)
    finally:
        if bar:
            bar.close()
        for sb in sandboxes:
            sb.close()
    summary.rows = [rows[p] for p in notebooks]
    _write_csv_atomic(out_csv, summary.rows,
                      ["submission", "sha256", *functions, "total", "max_total", "error", "sandbox_mode"])
    return summary


def _write_csv_atomic(path: Path, rows: list[dict], fields: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
