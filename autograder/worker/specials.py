"""Objects that cannot cross the wire as tensors and are rebuilt on each side from a plain spec.

* ``sdf`` specs for ``sphere_trace``: a fixed menu of analytic signed distance functions (sphere, box, plane,
  union, intersection, translation), built identically in the grader (for the reference) and in the worker
  (for the student's call). Exact SDFs after Quilez, "Distance functions"
  (https://iquilezles.org/articles/distfunctions/) and Hart 1996.
* ``module`` specs for ``momentum_update``: a small ``nn.Sequential`` (linear / batch-norm / relu / conv)
  with its parameters, buffers and frozen flags given as tensors.
* ``generator`` specs: a CPU ``torch.Generator`` seeded with a given integer.

Only the standard library and torch are imported: the worker loads this module too.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

__all__ = ["build_sdf", "build_module", "module_state", "build_generator", "build_special", "is_special"]

_MAX_SDF_DEPTH = 8


def _vec(v: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor([float(x) for x in v], dtype=like.dtype, device=like.device)


def build_sdf(spec: dict, depth: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable ``points [..., 3] -> distances [...]`` from a menu spec, e.g.
    ``{"kind": "union", "parts": [{"kind": "sphere", "center": [0, 0, 0], "radius": 1.0}, ...]}``."""
    if depth > _MAX_SDF_DEPTH or not isinstance(spec, dict):
        raise ValueError("bad sdf spec")
    kind = spec.get("kind")
    if kind == "sphere":
        center, radius = spec["center"], float(spec["radius"])
        return lambda p: (p - _vec(center, p)).norm(dim=-1) - radius
    if kind == "box":                                   # axis-aligned box, exact outside and inside
        center, half = spec["center"], spec["half"]

        def box(p: torch.Tensor) -> torch.Tensor:
            q = (p - _vec(center, p)).abs() - _vec(half, p)
            outside = q.clamp(min=0).norm(dim=-1)
            inside = q.max(dim=-1).values.clamp(max=0)
            return outside + inside

        return box
    if kind == "plane":                                 # <p, n> + offset with unit normal n
        normal, offset = spec["normal"], float(spec["offset"])
        return lambda p: (p * _vec(normal, p)).sum(-1) + offset
    if kind in ("union", "intersection"):
        parts = [build_sdf(s, depth + 1) for s in spec["parts"]]
        if not parts:
            raise ValueError("empty sdf combination")
        reduce = torch.minimum if kind == "union" else torch.maximum

        def combined(p: torch.Tensor) -> torch.Tensor:
            out = parts[0](p)
            for part in parts[1:]:
                out = reduce(out, part(p))
            return out

        return combined
    if kind == "translate":
        inner, shift = build_sdf(spec["inner"], depth + 1), spec["shift"]
        return lambda p: inner(p - _vec(shift, p))
    raise ValueError(f"unknown sdf kind {kind!r}")


def build_module(spec: dict) -> nn.Module:
    """``nn.Sequential`` from ``{"arch": [["linear", in, out], ["bn1d", C], ["relu"], ["conv2d", cin, cout, k]],
    "state": {name: tensor}, "frozen": [param names]}``; parameters and buffers are copied from ``state``."""
    layers: list[nn.Module] = []
    for item in spec["arch"]:
        kind, dims = item[0], [int(x) for x in item[1:]]
        if kind == "linear":
            layers.append(nn.Linear(dims[0], dims[1]))
        elif kind == "bn1d":
            layers.append(nn.BatchNorm1d(dims[0]))
        elif kind == "conv2d":
            layers.append(nn.Conv2d(dims[0], dims[1], dims[2]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        else:
            raise ValueError(f"unknown layer {kind!r}")
    module = nn.Sequential(*layers)
    state = spec.get("state")
    if state is not None:
        dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
        module = module.to(dtype)
        module.load_state_dict(state, strict=True)
    frozen = set(spec.get("frozen") or ())
    for name, p in module.named_parameters():
        p.requires_grad_(name not in frozen)
    return module


def module_state(module: nn.Module) -> dict:
    """Plain-tensor snapshot: parameters, buffers and ``requires_grad`` flags, in registration order."""
    params = [(n, p) for n, p in module.named_parameters()]
    return {
        "names": [n for n, _ in params],
        "params": [p.detach().clone() for _, p in params],
        "requires_grad": [bool(p.requires_grad) for _, p in params],
        "buffer_names": [n for n, _ in module.named_buffers()],
        "buffers": [b.detach().clone() for _, b in module.named_buffers()],
    }


def build_generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def is_special(value: Any) -> bool:
    return isinstance(value, dict) and "__special__" in value


def build_special(value: dict) -> Any:
    """Rebuild one special argument: ``{"__special__": "sdf" | "module" | "generator", ...}``."""
    kind = value["__special__"]
    if kind == "sdf":
        return build_sdf(value["spec"])
    if kind == "module":
        return build_module(value)
    if kind == "generator":
        return build_generator(value["seed"])
    raise ValueError(f"unknown special argument {kind!r}")
