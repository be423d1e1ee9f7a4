"""Paths and the subprocess environment shared by the autograder tests (a uniquely named module, so it never
collides with another folder's conftest or helpers)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from course_lib.manifest import assignment_names

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = assignment_names()


def cli_env(**extra) -> dict:
    """Environment for subprocesses: this checkout first on the path, the venv's bin on PATH (nbgrader)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env
