"""Student self-check: a few public cases per graded function, judged against answers stored with the package.

Call it right after a scaffold::

    from course_lib.checks import check
    check("nt_xent_loss", nt_xent_loss)

For each public case it calls your function on small fixed inputs and compares the result with the reference's
answer, which was computed when the package was built and is stored as JSON in ``course_lib/checks_data/`` (no
reference code is needed or run here, and nothing stored can execute code when read). It checks shapes, dtypes,
values (the output is named, expected and got are shown on small cases), closed-form values, that the inputs are
not modified (except those the function exists to modify) and the ``ValueError`` cases of the docstring, and
prints one PASS/FAIL line per case. It is a quick sanity check, not the grade: the autograder runs many more
(hidden) cases, in a separate process.

``check(..., strict=True)`` also raises ``AssertionError`` when a case fails: the notebooks' test cells use it so
that nbgrader's Validate names every unfinished or failing function.
"""
from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

__all__ = ["check", "run_cases", "checked_functions", "Sphere", "encode", "decode", "DATA_DIR"]

DATA_DIR = Path(__file__).with_name("checks_data")
_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                                      torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                                      torch.bool)}
_LAYERS = {"Linear": nn.Linear, "ReLU": nn.ReLU, "BatchNorm1d": nn.BatchNorm1d}


class Sphere:
    """The signed distance to a sphere, ``sdf(p) = ||p - center|| - radius`` for points ``[..., 3]``."""

    def __init__(self, center=(0.0, 0.0, 0.0), radius: float = 1.0):
        self.center, self.radius = [float(c) for c in center], float(radius)

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        return (p - torch.tensor(self.center, dtype=p.dtype, device=p.device)).norm(dim=-1) - self.radius

    def __repr__(self) -> str:
        return f"Sphere(center={self.center}, radius={self.radius})"


# ------------------------------------------------------------------------------------------------ stored format
def encode(value: Any) -> Any:
    """A JSON value describing ``value`` (tensors as dtype, shape and a flat list; modules as layers + state)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return {"tensor": {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                           "data": t.reshape(-1).tolist()}}
    if isinstance(value, nn.Sequential):
        layers = []
        for layer in value:
            kind = type(layer).__name__
            if kind not in _LAYERS:
                raise ValueError(f"cannot store a {kind} layer (only {', '.join(_LAYERS)})")
            args = {"Linear": lambda m: [m.in_features, m.out_features], "BatchNorm1d": lambda m: [m.num_features],
                    "ReLU": lambda m: []}[kind](layer)
            layers.append([kind, *args])
        return {"module": {"layers": layers, "state": {k: encode(v) for k, v in value.state_dict().items()},
                           "frozen": [k for k, p in value.named_parameters() if not p.requires_grad]}}
    if isinstance(value, Sphere):
        return {"sphere": {"center": value.center, "radius": value.radius}}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [encode(v) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"py": value}
    raise ValueError(f"cannot store a {type(value).__name__}")


def decode(obj: Any) -> Any:
    """The inverse of :func:`encode` (builds fresh tensors and modules)."""
    (kind, v), = obj.items()
    if kind == "tensor":
        return torch.tensor(v["data"], dtype=_DTYPES[v["dtype"]]).reshape(v["shape"])
    if kind == "module":
        net = nn.Sequential(*[_LAYERS[name](*args) for name, *args in v["layers"]])
        state = {k: decode(t) for k, t in v["state"].items()}
        net.to(next(iter(state.values())).dtype if state else torch.float32)
        net.load_state_dict(state)
        for k, p in net.named_parameters():
            p.requires_grad_(k not in v["frozen"])
        return net
    if kind == "sphere":
        return Sphere(v["center"], v["radius"])
    if kind in ("tuple", "list"):
        return (tuple if kind == "tuple" else list)(decode(x) for x in v)
    if kind == "py":
        return v
    raise ValueError(f"unknown stored value {kind!r}")


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    path = DATA_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no self-check for {name!r}; the checked functions are {', '.join(checked_functions())}")
    return json.loads(path.read_text(encoding="utf-8"))


def checked_functions() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in DATA_DIR.glob("*.json")))


# ------------------------------------------------------------------------------------------------ judging
def _show(t: torch.Tensor) -> str:
    """Nested lists, floats rounded to 4 decimals (small tensors only)."""
    def rounded(v):
        return [rounded(x) for x in v] if isinstance(v, list) else (round(v, 4) if isinstance(v, float) else v)
    return str(rounded(t.tolist()))


def _compare(got: Any, want: Any, where: str) -> str | None:
    """None when ``got`` matches ``want``; else one line that names the output and says how it differs."""
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{where}: expected a tensor, got {type(got).__name__}"
        if list(got.shape) != list(want.shape):
            return f"{where}: expected shape {list(want.shape)}, got {list(got.shape)}"
        if got.dtype != want.dtype:
            return f"{where}: expected dtype {want.dtype}, got {got.dtype}"
        g = got.detach().cpu()
        if want.dtype == torch.bool or not want.is_floating_point():
            ok = torch.equal(g, want)
        else:
            rtol, atol = (1e-6, 1e-8) if want.dtype == torch.float64 else (1e-4, 1e-5)
            ok = torch.allclose(g, want, rtol=rtol, atol=atol)
        if ok:
            return None
        if want.numel() <= 16:
            return f"{where}: expected {_show(want)}, got {_show(g)}"
        err = (g.double() - want.double()).abs().nan_to_num(float("inf"))
        at = tuple(_index(int(err.argmax()), want.shape))
        return (f"{where}: values differ, largest difference {err.max().item():.3g} at index {list(at)} "
                f"(expected {want[at].item():.6g}, got {g[at].item():.6g})")
    if isinstance(want, nn.Module):
        if not isinstance(got, nn.Module):
            return f"{where}: expected a module"
        for (k, a), b in zip(want.state_dict().items(), got.state_dict().values()):
            msg = _compare(b, a, f"{where}.{k}")
            if msg:
                return msg
        return None
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            n = len(got) if isinstance(got, (tuple, list)) else type(got).__name__
            return f"{where}: expected {len(want)} values, got {n}"
        return None
    if isinstance(want, int) and not isinstance(want, bool):
        ok = isinstance(got, int) and not isinstance(got, bool) and got == want
        return None if ok else f"{where}: expected the int {want}, got {got!r}"
    return None if got == want else f"{where}: expected {want!r}, got {got!r}"


def _index(flat: int, shape) -> list[int]:
    out = []
    for size in reversed(list(shape)):
        flat, r = divmod(flat, size)
        out.append(r)
    return out[::-1]


def _outputs(got: Any, want: Any, names: list[str]) -> list[tuple[Any, Any, str]]:
    """Pairs of (got, expected, name) for a tuple output named by the docstring, else the whole output."""
    if isinstance(want, (tuple, list)) and isinstance(got, (tuple, list)) and len(got) == len(want):
        return [(g, w, names[i] if i < len(names) else f"output[{i}]") for i, (g, w) in enumerate(zip(got, want))]
    return [(got, want, "output")]


def _run(case: dict, fn: Callable, params: list[str], names: list[str]) -> str | None:
    args = [decode(a) for a in case["args"]]
    if case["expect"] == "raises":
        try:
            fn(*args)
        except ValueError:
            return None
        except NotImplementedError:
            raise
        except Exception as exc:                         # noqa: BLE001 - reported to the student
            return f"raised {type(exc).__name__} instead of ValueError"
        return "no ValueError was raised"
    before = [copy.deepcopy(a) if isinstance(a, (torch.Tensor, nn.Module)) else None for a in args]
    out = fn(*args)
    if case["expect"] == "value":
        got = out.item() if isinstance(out, torch.Tensor) and out.numel() == 1 else out
        ok = isinstance(got, float) and math.isclose(got, case["value"], rel_tol=1e-5, abs_tol=1e-6)
        return None if ok else f"expected {case['value']:.6g}, got {got!r}"
    for got, want, where in _outputs(out, decode(case["out"]), names):
        msg = _compare(got, want, where)
        if msg:
            return msg
    mutated = {int(k): decode(v) for k, v in case.get("after", {}).items()}
    for i, (a, b) in enumerate(zip(args, before)):
        if i in mutated:
            msg = _compare(a, mutated[i], f"{params[i]} after the call")
        elif isinstance(b, torch.Tensor):
            msg = None if torch.equal(a.detach(), b) else f"{params[i]} was modified in place"
        else:
            msg = None
        if msg:
            return msg
    return None


def run_cases(name: str, fn: Callable) -> list[tuple[str, str | None]]:
    """``(label, None)`` for every public case of ``name`` that ``fn`` passes, ``(label, why)`` for the others.

    Raises:
        ValueError: if ``name`` is not one of the graded functions.
        NotImplementedError: when ``fn`` is still the scaffold.
    """
    data = _load(name)
    results = []
    with torch.random.fork_rng(devices=[]):               # leaves the notebook's random state alone
        for case in data["cases"]:
            try:
                why = _run(case, fn, data["params"], data["outputs"])
            except NotImplementedError:
                raise
            except Exception as exc:                      # noqa: BLE001 - reported to the student
                why = f"raised {type(exc).__name__}: {exc}"
            results.append((case["label"], why))
    return results


def check(name: str, fn: Callable, *, strict: bool = False) -> None:
    """Run the public cases of graded function ``name`` on ``fn`` and print one PASS/FAIL line per case.

    Args:
        strict: raise ``AssertionError`` (naming the function) when any case fails.

    Raises:
        ValueError: if ``name`` is not one of the graded functions.
        NotImplementedError: when ``fn`` is still the scaffold (so the notebook stops there, with this message).
    """
    __tracebackhide__ = True                              # IPython and pytest hide this frame in tracebacks
    try:
        results = run_cases(name, fn)
    except NotImplementedError:
        raise NotImplementedError(f"{name} is not implemented yet: replace `raise NotImplementedError()` in its "
                                  "cell with your code, run that cell, then this one") from None
    print(f"check({name!r}):")
    for label, why in results:
        print(f"  {'FAIL' if why else 'PASS'}  {label}" + (f": {why}" if why else ""))
    failed = [label for label, why in results if why]
    total = len(results)
    print(f"  {total - len(failed)}/{total} passed" + ("" if not failed else " -- the hidden grader runs many more cases"))
    if strict and failed:
        raise AssertionError(f"{name} fails {len(failed)} of {total} public cases: {'; '.join(failed)}")
