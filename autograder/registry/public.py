"""Building blocks of the public self-check cases (``FunctionSpec.public``): fixed, seeded, small inputs.

The cases are evaluated once, when the self-check data is built (scripts/selfcheck_data.py); the student's
self-check only sees the stored inputs and the reference's stored answers.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from course_lib.checks import Sphere

from .core import PublicCase

__all__ = ["PublicCase", "Sphere", "rnd", "sorted_t", "nets", "gen"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rnd(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> torch.Tensor:
    """Standard normal entries (times ``scale``) from a generator seeded with ``seed``."""
    return torch.randn(*shape, generator=gen(seed), dtype=dtype) * scale


def sorted_t(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Sorted sample distances in [2, 6) along the last axis."""
    return torch.sort(torch.rand(*shape, generator=gen(seed), dtype=dtype) * 4 + 2, dim=-1).values


def nets(seed: int, arch=((4, 3),)) -> tuple[nn.Sequential, nn.Sequential]:
    """Two float64 MLPs of Linear layers ``(in, out)`` with different seeded weights (key, query)."""
    g = gen(seed)

    def make() -> nn.Sequential:
        net = nn.Sequential(*[nn.Linear(i, o) for i, o in arch]).double()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
        return net

    return make(), make()
