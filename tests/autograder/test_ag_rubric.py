"""Is the rubric in autograder/README.md the one the grader applies (rendered from the registry), and does it
list every graded function with checks whose points add up to the function's?"""
from __future__ import annotations

from pathlib import Path

from autograder.registry import REGISTRY
from autograder.registry.rubric import BEGIN, END, readme_with_rubric, rubric_markdown

README = Path(__file__).resolve().parents[2] / "autograder" / "README.md"


def test_the_readme_rubric_is_the_registry_rendered():
    text = README.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert readme_with_rubric(text) == text, "run: python -m autograder.registry.rubric --write"


def test_the_rubric_lists_every_check_of_every_function_with_its_points():
    rows = [line.split("|")[1:-1] for line in rubric_markdown().splitlines() if line.startswith("| ")
            and not line.startswith("| function")]
    function, points = None, {}
    for cells in rows:
        name, check, weight = (c.strip() for c in cells[:3])
        function = name.strip("`") or function
        points.setdefault(function, []).append((check.strip("`"), float(weight)))
    for specs in REGISTRY.values():
        for spec in specs:
            assert points[spec.name] == [(c.name, c.weight) for c in spec.checks]
            assert abs(sum(w for _, w in points[spec.name]) - spec.points) < 1e-9
