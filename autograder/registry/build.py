"""How a registry module declares a graded function: the builder, the standard checks, recipe helpers.

Every graded function's checks follow one skeleton (each kind with its default weight and judge):

    values (3.5) | stability (1.5) | analytic (1.0) | gradients (1.5) | dtype_device (0.5) | no_mutation (0.5) | errors

plus the function's own checks (``check``). :func:`function_spec` fills in what the manifest and the reference
already say (assignment, points, parameter names, the reference itself) and checks that the weights add up to the
points. Recipes are code (see core.py): :func:`randn` / :func:`rand` only format strings such as
``torch.randn(4, 8, generator=g, dtype=torch.float32)`` so the modules stay readable.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

from course_lib.manifest import entry, reference

from . import judges
from .core import Cases, CheckSpec, FunctionSpec, Mistake, materialize

__all__ = ["function_spec", "check", "values", "stability", "analytic", "gradients", "dtype_check", "mutation_check",
           "errors_check", "randn", "rand", "dims"]


def function_spec(name: str, checks: list[CheckSpec], mistakes: list[Mistake], **options) -> FunctionSpec:
    """The spec of graded function ``name``: assignment, points, parameters and reference from the manifest.

    Raises:
        ValueError: when the check weights do not add up to the function's points, or a check name repeats.
    """
    g = entry(name)
    ref = reference(name)
    params = tuple(inspect.signature(ref).parameters)
    total = sum(c.weight for c in checks)
    if abs(total - g.points) > 1e-9:
        raise ValueError(f"{name}: check weights add up to {total}, not to its {g.points} points")
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: repeated check names {names}")
    spec = FunctionSpec(name=name, assignment=g.assignment, points=g.points, params=params, reference=ref,
                        checks=checks, mistakes=mistakes, **options)
    spec.checks = [dataclasses.replace(c, make=_watched_where_clean(spec, c.make)) if c.name == "dtype_device" else c
                   for c in spec.checks]
    return spec


def _watched_where_clean(spec: FunctionSpec, make: Callable[[Cases], None]) -> Callable[[Cases], None]:
    """The check's cases, its CPU cases watched for tensors made without the inputs' device (runner.DeviceWatch),
    except where the reference itself is flagged (then the grader, not the student, would be wrong)."""
    def watched(c: Cases) -> None:
        make(c)
        for case in c.items:
            if case.device == "cpu":
                case.watch_devices = True
                m = materialize(spec, case)
                case.watch_devices = m.ref_error is None and not m.ref_mixed
    return watched


def check(name: str, title: str, weight: float, make: Callable[[Cases], None], judge: Callable | None = None,
          auxiliary: bool = False) -> CheckSpec:
    """A function's own check (judged by ``judge``, default: the value against the reference)."""
    return CheckSpec(name, title, weight, make, judge, auxiliary)


def values(title: str, make: Callable[[Cases], None], weight: float = 3.5, judge: Callable | None = None) -> CheckSpec:
    """Random inputs against the reference (several shapes, both dtypes)."""
    return CheckSpec("values", title, weight, make, judge)


def stability(title: str, make: Callable[[Cases], None], weight: float = 1.5) -> CheckSpec:
    """The contract's extreme ranges: finite and correct."""
    return CheckSpec("stability", title, weight, make)


def analytic(title: str, make: Callable[[Cases], None], weight: float = 1.0, judge: Callable | None = None) -> CheckSpec:
    """Cases whose answer is known in closed form."""
    return CheckSpec("analytic", title, weight, make, judge)


def gradients(title: str, make: Callable[[Cases], None], weight: float = 1.5,
              judge: Callable | None = None) -> CheckSpec:
    """Input gradients for the same ``grad_outputs`` as the reference's (or gradients that must stop)."""
    return CheckSpec("gradients", title, weight, make, judge or judges.gradients)


def dtype_check(make_one: Callable[[Cases, str, str], None], weight: float = 0.5) -> CheckSpec:
    """float32 and float64 inputs: outputs follow them; CUDA inputs when the grader has CUDA. The CPU cases are
    watched (:func:`_watched_where_clean`): a tensor made without the inputs' device (``torch.arange(n)``) that meets
    them fails, as it would on a GPU, also on a grader without one.

    ``make_one(cases, dtype, device)`` adds one case."""
    def make(c: Cases) -> None:
        for dt in ("float32", "float64"):
            make_one(c, dt, "cpu")
        if c.cuda:
            for dt in ("float32", "float64"):
                make_one(c, dt, "cuda")
    return CheckSpec("dtype_device", "outputs keep the input's dtype and device (float32 and float64; no tensor made "
                     "without the inputs' device meets them; CUDA on a grader with a GPU)", weight, make,
                     judges.dtype_device, auxiliary=True)


def mutation_check(make_one: Callable[[Cases], None], weight: float = 0.5) -> CheckSpec:
    """Inputs (other than those the function exists to mutate) are left as they were."""
    return CheckSpec("no_mutation", "inputs are not modified", weight, make_one, judges.no_mutation, auxiliary=True)


def errors_check(make: Callable[[Cases], None], weight: float = 1.0) -> CheckSpec:
    """The contract's bad arguments raise ValueError naming the argument. Auxiliary: a function that only raises
    earns these points only when it also gets some random value case right."""
    return CheckSpec("errors", "bad arguments raise ValueError naming the argument", weight, make, judges.raises,
                     auxiliary=True)


# ------------------------------------------------------------------------------------------------ recipe text
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
