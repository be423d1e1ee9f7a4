"""The registry of hidden checks: one :class:`FunctionSpec` per graded function, grouped by assignment.

The registry mirrors the library: the checks of a graded function whose reference lives in
``course_lib.<module>`` (the manifest's ``module``) are in ``autograder.registry.<module>``, whose ``SPECS`` list
holds one spec per graded function of that module. ``REGISTRY[assignment]`` lists the specs in the manifest's
(contract) order; ``mistakes(name)`` is the catalogue of known mistakes that the judges, the sample
submissions (scripts/samples.py) and the test fixtures all read.
"""
from __future__ import annotations

import importlib

from course_lib.manifest import GRADED, assignment_names

from .core import Case, CheckSpec, FunctionSpec, Mistake

__all__ = ["REGISTRY", "ASSIGNMENTS", "SPECS", "FunctionSpec", "CheckSpec", "Case", "Mistake", "registry_module",
           "mistakes"]

def registry_module(name: str) -> str:
    """``autograder.registry.<module>`` holding the checks of graded function ``name``."""
    g = next(g for g in GRADED if g.name == name)
    return f"{__name__}.{g.module}"


def _load() -> dict[str, FunctionSpec]:
    """Every graded function's spec. A function without one is left out here (and fails the test that holds the
    registry to the manifest), so one unfinished entry cannot stop the rest of the grader."""
    specs: dict[str, FunctionSpec] = {}
    for g in GRADED:
        try:
            module = importlib.import_module(registry_module(g.name))
        except ModuleNotFoundError as exc:
            if exc.name != registry_module(g.name):
                raise
            continue
        found = [s for s in getattr(module, "SPECS", []) if s.name == g.name]
        if len(found) > 1:
            raise RuntimeError(f"{module.__name__}.SPECS holds {len(found)} specs for {g.name}")
        if found:
            specs[g.name] = found[0]
    return specs


SPECS: dict[str, FunctionSpec] = _load()
REGISTRY: dict[str, list[FunctionSpec]] = {
    a: [SPECS[g.name] for g in GRADED if g.assignment == a and g.name in SPECS] for a in assignment_names()
}
ASSIGNMENTS = tuple(REGISTRY)


def mistakes(name: str) -> list[Mistake]:
    """The known mistakes of graded function ``name`` (its registry entry's catalogue)."""
    return SPECS[name].mistakes
