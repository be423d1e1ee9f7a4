"""The benchmark workload of a loop version: the inputs both it and the reference are timed on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["Workload", "randn", "rand"]


@dataclass(frozen=True)
class Workload:
    """``size`` labels the row (``{n512}`` is 512 scaled by ``--quick``); ``make(scale, device, generator)``
    returns the arguments, ``scale(n)`` shrinks a size for a quick run."""

    size: str
    make: Callable[[Callable[[int], int], torch.device, torch.Generator], tuple]

    def label(self, scale: Callable[[int], int]) -> str:
        out, rest = "", self.size
        while "{n" in rest:
            pre, tail = rest.split("{n", 1)
            num, rest = tail.split("}", 1)
            out += pre + str(scale(int(num)))
        return out + rest


def randn(g: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g).to(device)


def rand(g: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g).to(device)
