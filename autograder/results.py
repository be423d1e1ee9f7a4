"""Gradescope results.json: build it from a GradeResult and write it atomically.

Format (https://gradescope-autograders.readthedocs.io/en/latest/specs/): top-level ``score``, ``max_score``,
``execution_time``, ``output``, ``output_format``, ``visibility``, ``stdout_visibility``, ``tests`` and
``extra_data``; one test per graded function with ``name``, ``score``, ``max_score``, ``status``
(passed / failed), ``output``, ``output_format``, ``visibility``, ``number`` and
``extra_data.function`` (plus per-check scores and the mistakes detected).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .feedback import function_feedback, notebook_feedback
from .grading import GradeResult

__all__ = ["results_json", "write_json_atomic", "error_results"]


def results_json(result: GradeResult, version: str = "") -> dict[str, Any]:
    tests = []
    for i, f in enumerate(result.functions, start=1):
        tests.append({
            "name": f"{f.name} ({result.assignment})",
            "number": str(i),
            "score": f.score,
            "max_score": f.points,
            "status": "passed" if f.score >= f.points else "failed",
            "output": function_feedback(f),
            "output_format": "text",
            "visibility": "visible",
            "extra_data": {
                "function": f.name,
                "checks": {c.name: {"score": c.score, "max_score": c.weight, "passed": c.passed, "cases": len(c.cases)}
                           for c in f.checks},
                "mistakes": f.mistakes,
                "problem": f.problem,
            },
        })
    return {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": round(result.elapsed_s, 3),
        "output": notebook_feedback(result) or f"Graded {len(tests)} functions of {result.assignment}.",
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "assignment": result.assignment,
            "sha256": result.sha256,
            "seed": result.seed,
            "grader_version": version or result.version,
            "sandbox_mode": result.mode,
            "notebook_error": result.notebook_error,
            "worker_maxrss_kb": result.worker_maxrss_kb,
        },
    }


def error_results(message: str, assignment: str = "") -> dict[str, Any]:
    """results.json for a run where the grader itself failed (score 0, the reason visible to staff)."""
    return {"score": 0.0, "output": f"The autograder failed: {message}. Please contact the course staff.",
            "output_format": "text", "visibility": "visible", "tests": [],
            "extra_data": {"assignment": assignment, "grader_error": message}}


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over ``path`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, allow_nan=False, default=float)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
