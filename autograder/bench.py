"""``bench``: seconds per notebook for this grader and for ``nbgrader autograde`` on the same notebooks.

For each assignment the notebook is ``solutions/<name>/<name>.ipynb`` when present, else the generated perfect
fixture (autograder.fixtures). Measured:

* cold: ``python -m autograder grade`` as a fresh process (interpreter start, imports, zygote, grading);
* warm: grading again with a zygote already running, as ``batch`` does for every notebook after the first;
* nbgrader: ``nbgrader autograde`` in a temporary course folder (``source/``, ``submitted/``, a
  ``nbgrader_config.py`` with a course id; ``generate_assignment`` first, untimed);
* memory: peak RSS of the workers (ru_maxrss of each runner, the largest) and of the zygote (VmHWM).
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .fixtures import perfect_notebook, write_notebook
from .grading import grade_notebook
from .sandbox import Sandbox, SandboxConfig

__all__ = ["bench", "time_nbgrader", "time_cli"]

_PROJECT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")          # nbgrader shells out to alembic
    env["PYTHONPATH"] = str(_PROJECT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def time_cli(notebook: Path, assignment: str, workdir: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--assignment", assignment,
                           "--out", str(workdir / "results.json"), "--quiet"], env=_env(), cwd=_PROJECT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"autograder grade failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def time_nbgrader(notebook: Path, assignment: str, workdir: Path, timeout: float = 1800) -> float:
    """Seconds taken by ``nbgrader autograde`` for one submission of ``notebook``."""
    course = workdir / "course"
    (course / "source" / assignment).mkdir(parents=True)
    shutil.copy(notebook, course / "source" / assignment / f"{assignment}.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = 'bench'\nc.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 1200\n")
    env = _env()
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbgrader + ["generate_assignment", assignment, "--force"], cwd=course, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    sub = course / "submitted" / "bench_student" / assignment
    sub.mkdir(parents=True)
    shutil.copy(notebook, sub / f"{assignment}.ipynb")
    start = time.perf_counter()
    proc = subprocess.run(nbgrader + ["autograde", assignment, "--force", "--create"], cwd=course, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader autograde failed: {proc.stderr.decode(errors='replace')[-800:]}")
    return elapsed


def _notebook_for(assignment: str, solutions: Path | None, tmp: Path) -> tuple[Path, str]:
    folder = solutions or (Path.cwd() / "solutions" if (Path.cwd() / "solutions").is_dir() else _PROJECT / "solutions")
    path = folder / assignment / f"{assignment}.ipynb"
    if path.is_file():
        return path, "solution"
    return write_notebook(perfect_notebook(assignment), tmp / "fixtures" / f"{assignment}.ipynb"), "fixture"


def bench(assignments: list[str], solutions: Path | None = None, nbgrader: bool = True, repeat: int = 1,
          config: SandboxConfig | None = None) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as tmpdir:
        tmp = Path(tmpdir)
        cfg = config or SandboxConfig()
        with Sandbox(SandboxConfig(**{**cfg.__dict__, "hide": (str(tmp),)})) as sandbox:
            for assignment in assignments:
                notebook, kind = _notebook_for(assignment, solutions, tmp)
                work = tmp / assignment
                work.mkdir()
                cold = [time_cli(notebook, assignment, work) for _ in range(repeat)]
                grade_notebook(notebook, assignment, sandbox=sandbox)                       # warm the zygote
                warm, result = [], None
                for _ in range(repeat):
                    start = time.perf_counter()
                    result = grade_notebook(notebook, assignment, sandbox=sandbox)
                    warm.append(time.perf_counter() - start)
                nbg = None
                if nbgrader:
                    try:
                        nbg = statistics.median(time_nbgrader(notebook, assignment, tmp / f"nbg-{assignment}-{i}")
                                                for i in range(repeat))
                    except Exception as exc:
                        print(f"bench: nbgrader autograde failed for {assignment}: {exc}", file=sys.stderr)
                rows.append((assignment, kind, statistics.median(cold), statistics.median(warm), nbg,
                             result.score, result.max_score, result.worker_maxrss_kb / 1024, sandbox.zygote_rss_kb() / 1024))
    print(f"{'assignment':15} {'notebook':8} {'cold s':>7} {'warm s':>7} {'nbgrader s':>10} {'x cold':>7} {'x warm':>7} "
          f"{'score':>9} {'worker MB':>9} {'zygote MB':>9}")
    for a, kind, cold, warm, nbg, score, max_score, wrss, zrss in rows:
        ratio = lambda t: f"{nbg / t:7.1f}" if nbg else f"{'-':>7}"  # noqa: E731
        print(f"{a:15} {kind:8} {cold:7.2f} {warm:7.2f} {nbg if nbg is not None else float('nan'):10.2f} {ratio(cold)} "
              f"{ratio(warm)} {score:5g}/{max_score:<3g} {wrss:9.0f} {zrss:9.0f}")
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; cold = a fresh `python -m autograder grade`, "
          "warm = with the zygote already running (batch)")
    return 0
