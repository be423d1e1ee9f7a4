"""``verify``: every solution notebook scores full marks; every untouched release notebook scores zero.

Looks for ``<solutions>/<name>/<name>.ipynb`` and ``<assignments>/<name>/<name>.ipynb`` for each assignment
(defaults: ``solutions/`` and ``assignments/`` of the working folder, else of the project). With no notebook
at all it says so and succeeds. Exit status 1 when any notebook fails its expectation.
"""
from __future__ import annotations

from pathlib import Path

from .grading import grade_notebook
from .registry import REGISTRY
from .sandbox import Sandbox, SandboxConfig

__all__ = ["verify", "find_pairs"]

_PROJECT = Path(__file__).resolve().parent.parent


def _default(folder: Path | None, name: str) -> Path:
    if folder is not None:
        return folder
    local = Path.cwd() / name
    return local if local.is_dir() else _PROJECT / name


def find_pairs(solutions: Path | None, assignments: Path | None) -> list[tuple[str, str, Path]]:
    """(assignment, kind, path) for every notebook present; kind is 'solution' or 'release'."""
    found = []
    for name in REGISTRY:
        for kind, folder in (("solution", _default(solutions, "solutions")), ("release", _default(assignments, "assignments"))):
            path = folder / name / f"{name}.ipynb"
            if path.is_file():
                found.append((name, kind, path))
    return found


def verify(solutions: Path | None = None, assignments: Path | None = None, config: SandboxConfig | None = None) -> int:
    pairs = find_pairs(solutions, assignments)
    if not pairs:
        print(f"verify: no notebooks found (looked for <name>/<name>.ipynb under {_default(solutions, 'solutions')} "
              f"and {_default(assignments, 'assignments')}); nothing to check")
        return 0
    failures = 0
    with Sandbox(config or SandboxConfig()) as sandbox:
        for name, kind, path in pairs:
            try:
                result = grade_notebook(path, name, sandbox=sandbox)
            except Exception as exc:
                print(f"FAIL {kind:8} {name:15} grader error: {type(exc).__name__}: {exc}")
                failures += 1
                continue
            if kind == "solution":
                ok = result.score == result.max_score
                why = "" if ok else "; ".join(f"{f.name} {f.score:g}/{f.points:g}" for f in result.functions if f.score < f.points)
            else:
                ok = result.score == 0 and result.notebook_error is None and all(f.problem is None for f in result.functions)
                why = "" if ok else (result.notebook_error or "; ".join(
                    f"{f.name} {f.problem or f'{f.score:g}'}" for f in result.functions if f.score or f.problem))
            failures += not ok
            expect = "full marks" if kind == "solution" else "zero"
            print(f"{'ok  ' if ok else 'FAIL'} {kind:8} {name:15} {result.score:g}/{result.max_score:g} (expected {expect})"
                  + (f": {why}" if why else ""))
    print(f"verify: {len(pairs) - failures}/{len(pairs)} notebooks as expected")
    return 1 if failures else 0
