"""Grade every notebook under a folder into a CSV gradebook, in parallel, resumable after an interruption.

Each submission's result is cached as one JSON file keyed by (submission sha256, assignment, grader version,
salt), written atomically, so a run killed with ``kill -9`` and started again grades only what is missing.
One submission's failure (even a grader failure) becomes a row with an ``error`` column; it never stops the
batch. The CSV is written last, atomically, from the cache entries.
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


def find_notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())


def cache_key(sha256: str, assignment: str, version: str) -> str:
    salt = hashlib.sha256(os.environ.get("AUTOGRADER_SALT", "").encode()).hexdigest()[:8]
    return hashlib.sha256(f"{sha256}|{assignment}|{version}|{salt}".encode()).hexdigest()[:32]


def _row(rel: str, sha: str, res: dict | None, error: str, functions: list[str]) -> dict:
    row = {"submission": rel, "sha256": sha}
    tests = {t["extra_data"]["function"]: t["score"] for t in (res or {}).get("tests", [])}
    for name in functions:
        row[name] = tests.get(name, "")
    row["total"] = res.get("score", "") if res else ""
    row["max_total"] = res.get("max_score", "") if res else ""
    row["error"] = error
    return row


def grade_batch(folder: str | Path, assignment: str, out_csv: str | Path, *, jobs: int = 1,
                cache_dir: str | Path | None = None, config: SandboxConfig | None = None,
                progress: bool = True) -> BatchSummary:
    """Grade every ``*.ipynb`` under ``folder``; write ``out_csv``; return the rows and counters."""
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

    def sandbox() -> Sandbox:
        sb = getattr(local, "sb", None)
        if sb is None or sb.proc is None or sb.proc.poll() is not None:
            sb = Sandbox(cfg).start()
            local.sb = sb
            with lock:
                sandboxes.append(sb)
        return sb

    def one(path: Path) -> tuple[dict, str]:
        rel = str(path.relative_to(folder))
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
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
        except Exception as exc:                           # a grader failure: report it, do not cache it
            local.sb = None
            return _row(rel, sha, None, f"grader error: {type(exc).__name__}: {exc}", functions), "failed"
        write_json_atomic(entry, res)
        return _row(rel, sha, res, result.notebook_error or "", functions), "graded"

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(notebooks), file=sys.stderr, desc=f"grading {assignment}", unit="nb")
    rows: dict[Path, dict] = {}
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(one, p): p for p in notebooks}
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
    _write_csv_atomic(out_csv, summary.rows, ["submission", "sha256", *functions, "total", "max_total", "error"])
    return summary


def _write_csv_atomic(path: Path, rows: list[dict], fields: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
