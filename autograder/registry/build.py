"""Small helpers that write recipe expressions and the checks every graded function shares.

Recipes are code (see core.py): these functions only format strings such as
``torch.randn(4, 8, generator=g, dtype=torch.float32)`` so the assignment modules stay readable.
"""
from __future__ import annotations

from typing import Callable

from . import judges
from .core import Cases, CheckSpec

__all__ = ["randn", "rand", "dims", "dtype_check", "mutation_check", "errors_check"]


def dims(shape) -> str:
    return ", ".join(str(int(s)) for s in shape)


def randn(shape, dtype: str, scale: float | None = None) -> str:
    expr = f"torch.randn({dims(shape)}, generator=g, dtype=torch.{dtype})"
    return f"{expr} * {scale}" if scale not in (None, 1, 1.0) else expr


def rand(shape, dtype: str, scale: float | None = None, offset: float | None = None) -> str:
    expr = f"torch.rand({dims(shape)}, generator=g, dtype=torch.{dtype})"
    if scale not in (None, 1, 1.0):
        expr = f"{expr} * {scale}"
    if offset:
        expr = f"{expr} + {offset}"
    return expr


def dtype_check(make_one: Callable[[Cases, str, str], None], weight: float = 0.5) -> CheckSpec:
    """float32 and float64 inputs (and CUDA inputs when the grader has CUDA): outputs follow them.

    ``make_one(cases, dtype, device)`` adds one case."""
    def make(c: Cases) -> None:
        for dt in ("float32", "float64"):
            make_one(c, dt, "cpu")
        if c.cuda:
            for dt in ("float32", "float64"):
                make_one(c, dt, "cuda")
    return CheckSpec("dtype_device", "outputs keep the input's dtype and device", weight, make, judges.dtype_device,
                     auxiliary=True)


def mutation_check(make_one: Callable[[Cases], None], weight: float = 0.5) -> CheckSpec:
    def make(c: Cases) -> None:
        make_one(c)
    return CheckSpec("no_mutation", "inputs are not modified", weight, make, judges.no_mutation, auxiliary=True)


def errors_check(make: Callable[[Cases], None], weight: float = 1.0) -> CheckSpec:
    return CheckSpec("errors", "bad arguments raise ValueError naming the argument", weight, make, judges.raises)
