"""The registry of hidden checks: one :class:`FunctionSpec` per graded function, grouped by assignment.

``REGISTRY[assignment]`` lists the specs in the order of ``course_lib.GRADED_FUNCTIONS[assignment]``; a test
keeps the two in step. Each topic lives in its own module (gans, pretext, contrastive, moco, rays, volume).
"""
from __future__ import annotations

import course_lib

from .core import Case, CheckSpec, FunctionSpec, Mistake
from . import contrastive, gans, moco, pretext, rays, volume

__all__ = ["REGISTRY", "ASSIGNMENTS", "get_spec", "FunctionSpec", "CheckSpec", "Case", "Mistake"]

_ALL = {s.name: s for module in (gans, pretext, contrastive, moco, rays, volume) for s in module.SPECS}

REGISTRY: dict[str, list[FunctionSpec]] = {
    assignment: [_ALL[name] for name in names if name in _ALL] for assignment, names in course_lib.GRADED_FUNCTIONS.items()
}
ASSIGNMENTS = tuple(REGISTRY)


def get_spec(name: str) -> FunctionSpec:
    return _ALL[name]
