"""course_lib: reference implementations and notebook helpers for a lecture block on GANs, self-supervised
pretext tasks, contrastive learning and neural rendering.

The graded functions (listed once, in :mod:`course_lib.manifest`; the contract is in docs/graded-api.md) are
importable from the package root, e.g. ``course_lib.nt_xent_loss``; ``GRADED_FUNCTIONS`` maps each assignment
to its functions. Names are imported on first use, so ``import course_lib.manifest`` stays light (no torch).
"""
from __future__ import annotations

import importlib

from .manifest import GRADED, assignment_names, functions

__version__ = "0.1.0"

GRADED_FUNCTIONS: dict[str, tuple[str, ...]] = {a: functions(a) for a in assignment_names()}

# name -> module (relative to this package) for every name exported lazily
_LAZY: dict[str, str] = {g.name: g.module for g in GRADED}
_LAZY.update({"pick_device": "utils", "seed_everything": "utils", "rgb_to_lab": "color", "lab_to_rgb": "color"})

__all__ = [g.name for g in GRADED] + ["GRADED_FUNCTIONS", "pick_device", "seed_everything", "rgb_to_lab",
                                      "lab_to_rgb"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value                 # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
