"""Student self-check: a few public cases per graded function, run in the notebook's own kernel.

Call it right after a scaffold::

    from course_lib.checks import check
    check("nt_xent_loss", nt_xent_loss)

It compares the function with the reference in course_lib on a few small fixed inputs, checks the output's
shape and dtype, tries one case with a known answer and one bad argument, prints a PASS/FAIL line per case and
returns True when everything passed. It is a quick sanity check, not the grade: the autograder runs many more
(hidden) cases, in a separate process.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

import course_lib

__all__ = ["check", "CHECKED_FUNCTIONS"]


@dataclass
class _Case:
    label: str
    args: Callable[[], tuple]            # fresh inputs for every call
    expect: str = "reference"            # reference | raises | value
    value: Any = None                    # the known answer for expect == "value"


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _r(*shape, seed=0, dtype=torch.float64, scale=1.0):
    return torch.randn(*shape, generator=_g(seed), dtype=dtype) * scale


def _nets(seed: int, arch=((4, 3),)):
    with torch.random.fork_rng(devices=[]):             # leaves the notebook's own random state alone
        torch.manual_seed(seed)
        make = lambda: nn.Sequential(*[nn.Linear(i, o) for i, o in arch]).double()  # noqa: E731
        return make(), make()


def _sorted(*shape, seed=0, dtype=torch.float64):
    return torch.sort(torch.rand(*shape, generator=_g(seed), dtype=dtype) * 4 + 2, dim=-1).values


_SPHERE = lambda p: p.norm(dim=-1) - 1.0  # noqa: E731

CASES: dict[str, list[_Case]] = {
    "discriminator_loss": [
        _Case("random logits (N=5, M=3, float64)", lambda: (_r(5, seed=1), _r(3, seed=2))),
        _Case("logits of +-1e4 stay finite (float32)", lambda: (torch.tensor([1e4, -1e4]), torch.tensor([-1e4, 1e4]))),
        _Case("all logits 0 give 2 log 2", lambda: (torch.zeros(3), torch.zeros(2)), "value", 2 * math.log(2)),
        _Case("a 2-D logits_real raises ValueError", lambda: (torch.zeros(2, 2), torch.zeros(2)), "raises"),
    ],
    "generator_loss": [
        _Case("random logits, non-saturating (float64)", lambda: (_r(6, seed=3),)),
        _Case("random logits, saturating (float32)", lambda: (_r(4, seed=4, dtype=torch.float32), True)),
        _Case("zero logits give log 2", lambda: (torch.zeros(4),), "value", math.log(2)),
        _Case("a 2-D input raises ValueError", lambda: (torch.zeros(2, 2),), "raises"),
    ],
    "rotate_batch": [
        _Case("N=2, C=3, 4x4 images (float64)", lambda: (_r(2, 3, 4, 4, seed=5),)),
        _Case("a 2x2 image [[1, 2], [3, 4]]", lambda: (torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]),)),
        _Case("H != W raises ValueError", lambda: (torch.zeros(1, 1, 2, 3),), "raises"),
    ],
    "attention_color_propagation": [
        _Case("B=2, D=4, 3x2 reference, 2x2 target, C=3", lambda: (_r(2, 4, 3, 2, seed=6), _r(2, 4, 2, 2, seed=7), _r(2, 3, 3, 2, seed=8), 0.5)),
        _Case("large features, temperature 1e-3 (float32)", lambda: (_r(1, 3, 2, 2, seed=9, dtype=torch.float32, scale=500),
                                                                    _r(1, 3, 2, 2, seed=10, dtype=torch.float32, scale=500),
                                                                    _r(1, 2, 2, 2, seed=11, dtype=torch.float32), 1e-3)),
        _Case("temperature 0 raises ValueError", lambda: (torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2), 0.0), "raises"),
    ],
    "info_nce_loss": [
        _Case("N=4, M=5, D=3 (float64)", lambda: (_r(4, 3, seed=12), _r(4, 3, seed=13), _r(4, 5, 3, seed=14), 0.1)),
        _Case("temperature 1e-3 (float32)", lambda: (_r(3, 4, seed=15, dtype=torch.float32), _r(3, 4, seed=16, dtype=torch.float32),
                                                    _r(3, 2, 4, seed=17, dtype=torch.float32), 1e-3)),
        _Case("negatives of the wrong rank raise ValueError", lambda: (torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3)), "raises"),
    ],
    "nt_xent_loss": [
        _Case("N=4, D=3 (float64)", lambda: (_r(4, 3, seed=18), _r(4, 3, seed=19), 0.5)),
        _Case("identical rows give log(2N - 1)", lambda: (torch.ones(3, 2), torch.ones(3, 2), 0.1), "value", math.log(5)),
        _Case("N=1 gives 0", lambda: (_r(1, 3, seed=20), _r(1, 3, seed=21)), "value", 0.0),
        _Case("temperature 0 raises ValueError", lambda: (torch.ones(2, 2), torch.ones(2, 2), 0.0), "raises"),
    ],
    "momentum_update": [
        _Case("m = 0.9 on a Linear(4, 3)", lambda: (*_nets(22), 0.9)),
        _Case("m = 0 copies the query encoder", lambda: (*_nets(23, ((3, 2), (2, 2))), 0.0)),
        _Case("m = 1.5 raises ValueError", lambda: (*_nets(24), 1.5), "raises"),
    ],
    "enqueue": [
        _Case("K=6, N=2 from ptr=1", lambda: (_r(6, 3, seed=25), 1, _r(2, 3, seed=26))),
        _Case("wrap-around: K=5, N=3 from ptr=4", lambda: (_r(5, 2, seed=27), 4, _r(3, 2, seed=28))),
        _Case("N > K raises ValueError", lambda: (torch.zeros(2, 3), 0, torch.zeros(3, 3)), "raises"),
    ],
    "moco_loss": [
        _Case("N=3, C=4, K=5 (float64)", lambda: (F.normalize(_r(3, 4, seed=29), dim=1), F.normalize(_r(3, 4, seed=30), dim=1),
                                                  F.normalize(_r(5, 4, seed=31), dim=1), 0.07)),
        _Case("temperature 0 raises ValueError", lambda: (torch.ones(2, 2), torch.ones(2, 2), torch.ones(3, 2), 0.0), "raises"),
    ],
    "get_rays": [
        _Case("H=3, W=4, focal 2, identity camera", lambda: (3, 4, 2.0, torch.eye(4, dtype=torch.float64))),
        _Case("H=2, W=2, a rotated and shifted c2w [3, 4] (float32)",
              lambda: (2, 2, 1.5, torch.cat([torch.linalg.qr(_r(3, 3, seed=32))[0], _r(3, 1, seed=33)], 1).float())),
        _Case("c2w of shape [3, 3] raises ValueError", lambda: (2, 2, 1.0, torch.eye(3)), "raises"),
    ],
    "sample_stratified": [
        _Case("4 rays, S=5, perturb=False", lambda: (_r(4, 3, seed=34), _r(4, 3, seed=35), 2.0, 6.0, 5, False)),
        _Case("near >= far raises ValueError", lambda: (torch.zeros(1, 3), torch.ones(1, 3), 2.0, 1.0, 4, False), "raises"),
    ],
    "positional_encoding": [
        _Case("x [5, 3], 4 frequencies", lambda: (_r(5, 3, seed=36), 4)),
        _Case("x = [0, 0.5], 2 frequencies, without x", lambda: (torch.tensor([[0.0, 0.5]]), 2, False)),
        _Case("num_freqs = -1 raises ValueError", lambda: (torch.zeros(2, 3), -1), "raises"),
    ],
    "volume_render": [
        _Case("3 rays, S=6", lambda: (torch.rand(3, 6, generator=_g(37), dtype=torch.float64) * 3,
                                      torch.rand(3, 6, 3, generator=_g(38), dtype=torch.float64), _sorted(3, 6, seed=39))),
        _Case("sigmas up to 1e6, white background (float32)", lambda: (torch.rand(2, 5, generator=_g(40)) * 1e6,
                                                                       torch.rand(2, 5, 3, generator=_g(41)), _sorted(2, 5, seed=42, dtype=torch.float32), True)),
        _Case("mismatched colors raise ValueError", lambda: (torch.ones(2, 4), torch.ones(2, 3, 3), torch.ones(2, 4)), "raises"),
    ],
    "sample_pdf": [
        _Case("deterministic, 2 rays, S=4, 6 samples", lambda: (torch.cumsum(torch.rand(2, 5, generator=_g(43), dtype=torch.float64) + 0.1, -1),
                                                               torch.rand(2, 4, generator=_g(44), dtype=torch.float64), 6, True)),
        _Case("all-zero weights (uniform pdf)", lambda: (torch.linspace(0, 1, 5)[None], torch.zeros(1, 4), 5, True)),
        _Case("mismatched bins raise ValueError", lambda: (torch.ones(2, 4), torch.ones(2, 4), 3, True), "raises"),
    ],
    "sphere_trace": [
        _Case("unit sphere: one head-on ray, one miss", lambda: (_SPHERE, torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.0, -3.0]]),
                                                                torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))),
        _Case("non-unit directions raise ValueError", lambda: (_SPHERE, torch.zeros(1, 3) - 3, torch.ones(1, 3)), "raises"),
    ],
}
CHECKED_FUNCTIONS = tuple(CASES)
_MUTATING = {"momentum_update", "enqueue"}


def _observe(name: str, out: Any, args: tuple) -> Any:
    if name == "momentum_update":
        return [p.detach().clone() for p in args[0].parameters()]
    if name == "enqueue":
        return [out, args[0].detach().clone()]
    return out


def _compare(got: Any, want: Any, where: str = "output") -> str | None:
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{where}: expected a tensor, got {type(got).__name__}"
        if got.shape != want.shape:
            return f"{where}: expected shape {list(want.shape)}, got {list(got.shape)}"
        if got.dtype != want.dtype:
            return f"{where}: expected dtype {want.dtype}, got {got.dtype}"
        if want.dtype == torch.bool or not want.is_floating_point():
            return None if torch.equal(got, want) else f"{where}: values differ"
        tol = (1e-6, 1e-8) if want.dtype == torch.float64 else (1e-4, 1e-5)
        if not torch.allclose(got.detach(), want, rtol=tol[0], atol=tol[1]):
            err = (got.detach() - want).abs().nan_to_num(float("inf")).max().item()
            return f"{where}: values differ from the reference (largest difference {err:.3g})"
        return None
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{where}: expected {len(want)} values, got {type(got).__name__}"
        for i, (g, w) in enumerate(zip(got, want)):
            msg = _compare(g, w, f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(want, int) and not isinstance(want, bool):
        return None if isinstance(got, int) and got == want else f"{where}: expected the int {want}, got {got!r}"
    return None if got == want else f"{where}: expected {want!r}, got {got!r}"


def _run(name: str, fn: Callable, case: _Case) -> tuple[bool, str]:
    args = case.args()
    if case.expect == "raises":
        try:
            fn(*args)
        except ValueError:
            return True, ""
        except NotImplementedError:
            raise
        except Exception as exc:
            return False, f"raised {type(exc).__name__} instead of ValueError"
        return False, "no ValueError was raised"
    ref_args = copy.deepcopy(args) if name in _MUTATING else args
    before = [a.detach().clone() if isinstance(a, torch.Tensor) else None for a in args]
    out = fn(*args)
    if case.expect == "value":
        got = out.item() if isinstance(out, torch.Tensor) and out.numel() == 1 else out
        ok = isinstance(got, float) and math.isclose(got, case.value, rel_tol=1e-5, abs_tol=1e-6)
        return ok, "" if ok else f"expected {case.value:.6g}, got {got!r}"
    ref_out = getattr(course_lib, name)(*ref_args)
    msg = _compare(_observe(name, out, args), _observe(name, ref_out, ref_args))
    if msg:
        return False, msg
    for i, (b, a) in enumerate(zip(before, args)):
        if b is not None and name not in _MUTATING and not torch.equal(b, a.detach()):
            return False, f"argument {i} was modified in place"
    return True, ""


def check(name: str, fn: Callable) -> bool:
    """Run the public cases of graded function ``name`` on ``fn``; print PASS/FAIL lines; True if all pass.

    Raises:
        ValueError: if ``name`` is not one of the graded functions.
    """
    if name not in CASES:
        raise ValueError(f"no self-check for {name!r}; the graded functions are {', '.join(CASES)}")
    print(f"check({name!r}):")
    passed = 0
    for case in CASES[name]:
        try:
            ok, why = _run(name, fn, case)
        except NotImplementedError:
            # stop the notebook here: later cells would only fail less clearly
            raise NotImplementedError(
                f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell with your code"
            ) from None
        except Exception as exc:
            ok, why = False, f"raised {type(exc).__name__}: {exc}"
        passed += ok
        print(f"  {'PASS' if ok else 'FAIL'}  {case.label}" + (f": {why}" if why else ""))
    print(f"  {passed}/{len(CASES[name])} passed" + ("" if passed == len(CASES[name]) else
                                                     " -- the hidden grader runs many more cases"))
    return passed == len(CASES[name])
