"""Loop versions of the graded functions, transcribed from the lecture formulas (instructor edition only).

Each ``<name>_naive`` has the contract of its vectorised reference (same arguments, same result) but loops over
batch elements, rays, samples or pixels with scalar arithmetic. They exist for three reasons: the tests check
every reference against its loop in float64, the benchmark reports how much vectorising buys (on the module's
``WORKLOADS``), and the notebooks' loop cells ("write it with loops first") are generated from them. They are
what a first, correct attempt looks like. No argument checking: feed them valid inputs only.

One module per reference module: ``gan``, ``pretext``, ``colorization``, ``contrastive``, ``rendering``,
``priors``.
"""
from __future__ import annotations

from . import colorization, contrastive, gan, moco, pretext, priors, rendering
from ._workload import Workload

_MODULES = (gan, pretext, colorization, contrastive, moco, rendering, priors)

WORKLOADS: dict[str, Workload] = {name: w for m in _MODULES for name, w in m.WORKLOADS.items()}

__all__ = ["WORKLOADS", "Workload"]
for _m in _MODULES:
    for _name in _m.__all__:
        if _name != "WORKLOADS":
            globals()[_name] = getattr(_m, _name)
            __all__.append(_name)
del _m, _name
