"""Do the documents say what the code does: docs/graded-api.md's signatures against the references, and the
README's generated tables against the manifest?"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

from course_lib.manifest import GRADED, reference

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import readme_tables  # noqa: E402


def _split_top(text: str) -> list[str]:
    """Split on the commas that are not inside brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [p.strip() for p in parts + [current] if p.strip()]


def _contract_signatures() -> dict[str, list[tuple[str, str | None]]]:
    """function -> [(parameter, default text or None)] from every table row of docs/graded-api.md."""
    out = {}
    for line in (ROOT / "docs" / "graded-api.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(?:a\d_\w+\s*\|\s*)?`(\w+)\((.*?)\)\s*->", line)
        if not m:
            continue
        params = []
        for part in _split_top(m.group(2)):
            name = re.match(r"\w+", part).group(0)
            default = part.split("=", 1)[1].strip() if "=" in part else None
            params.append((name, default))
        out[m.group(1)] = params
    return out


@pytest.mark.parametrize("name", [g.name for g in GRADED])
def test_the_contract_documents_the_references_signature(name):
    documented = _contract_signatures()
    assert name in documented, f"docs/graded-api.md has no row for {name}"
    actual = [(p.name, None if p.default is inspect.Parameter.empty else repr(p.default))
              for p in inspect.signature(reference(name)).parameters.values()]
    assert [n for n, _ in documented[name]] == [n for n, _ in actual]
    for (n, doc_default), (_, ref_default) in zip(documented[name], actual):
        if doc_default is not None or ref_default is not None:
            assert doc_default is not None and ref_default is not None, f"{name}({n}): default documented?"
            assert eval(doc_default) == eval(ref_default), f"{name}({n}): {doc_default} vs {ref_default}"


def test_readme_tables_are_generated_from_the_manifest():
    assert readme_tables.main(["check"]) == 0, "run `python scripts/readme_tables.py build`"


def test_every_planted_sample_mistake_is_in_its_functions_catalogue():
    import samples
    from autograder.registry import SPECS

    for assignment, planted in samples.TYPICAL.items():
        for fn, mistake in planted:
            assert SPECS[fn].assignment == assignment
            assert mistake in [m.name for m in SPECS[fn].mistakes], (fn, mistake)
