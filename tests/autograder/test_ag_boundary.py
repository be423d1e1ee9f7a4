"""Does the trust boundary hold in the code itself: the worker side imports neither the grader side nor
course_lib, and the two sides import each other in one direction only?"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "autograder"
WORKER = sorted((PKG / "worker").glob("*.py"))


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", WORKER, ids=lambda p: p.name)
def test_worker_side_imports_only_itself_torch_and_the_standard_library(path):
    bad = sorted(m for m in _imports(path)
                 if m.split(".")[0] == "course_lib" or (m.startswith("autograder") and not m.startswith("autograder.worker")))
    assert bad == [], f"{path.name} crosses the trust boundary: {bad}"


def test_grader_side_reaches_the_worker_side_only_through_its_shared_modules():
    shared = {"autograder.worker.wire", "autograder.worker.modes", "autograder.worker.specials",
              "autograder.worker.runner", "autograder.worker.isolation"}
    for path in sorted(PKG.rglob("*.py")):
        if "worker" in path.relative_to(PKG).parts:
            continue
        for m in _imports(path):
            if m.startswith("autograder.worker."):
                top = ".".join(m.split(".")[:3])
                assert top in shared, f"{path.relative_to(PKG)} imports {m}"
