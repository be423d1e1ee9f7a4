"""Sphere tracing of signed distance functions (implicit surfaces).

A signed distance function (SDF) tells, at every point, the distance to the nearest surface (negative
inside). A sphere of that radius around the point is empty, so a ray can safely advance by that distance::

    t_0 = near,    t_(k+1) = t_k + sdf(o + t_k d)

and converges to the first surface crossing in few steps when it points at the surface, while rays that
miss move out past ``far``.

References:
    Hart, "Sphere Tracing: A Geometric Method for the Antialiased Ray Tracing of Implicit Surfaces",
    The Visual Computer 1996.
    Yariv et al., "Multiview Neural Surface Reconstruction by Disentangling Geometry and Appearance"
    (IDR), NeurIPS 2020 (sphere tracing a neural SDF).
"""
from __future__ import annotations

from typing import Callable

import torch

from .._validate import check_finite_real, check_int, check_positive, check_tensor

__all__ = ["sphere_trace"]


def sphere_trace(
    sdf: Callable[[torch.Tensor], torch.Tensor],
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: float = 0.0,
    far: float = 10.0,
    max_steps: int = 64,
    eps: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """March every ray by the SDF value until it hits a surface, passes ``far``, or runs out of steps.

    Math::

        t <- near;  repeat max_steps times on the rays still marching:
            s = sdf(o + t d)
            s < eps          -> hit at t (the ray stops)
            otherwise        t <- t + s;   t > far -> miss (the ray stops)

    Only the rays still marching are passed to ``sdf`` (an exact SDF on a batch ``[n, 3]``; a network
    works too). The loop runs over steps only, never over rays, and stops early when every ray is done.
    It runs under ``torch.no_grad``: for gradients with respect to the surface, evaluate the SDF again at
    ``o + t d`` (e.g. normals as the autograd gradient of the SDF there).

    Args:
        sdf: maps points ``[..., 3]`` to signed distances ``[...]``.
        origins: ``[N, 3]`` ray origins, outside the surface.
        directions: ``[N, 3]`` unit-length directions.
        near, far: the marching interval, ``near < far``.
        max_steps: number of SDF evaluations per ray (>= 1).
        eps: convergence threshold on the SDF value (> 0).

    Returns:
        ``(t [N], hit [N] bool)``: for hits, ``t`` is within a few eps of the first surface crossing;
        misses report ``t = far``. ``t`` has the dtype and device of ``origins``.

    Raises:
        ValueError: on shapes other than ``[N, 3]``, non-unit directions, ``near >= far``, ``max_steps < 1``,
        ``eps <= 0``, or an ``sdf`` that does not return one value per point.
    """
    if not callable(sdf):
        raise ValueError(f"sdf must be callable (points [..., 3] -> distances [...]), got {type(sdf).__name__}")
    check_tensor("origins", origins, ndim=2, last=3)
    check_tensor("directions", directions, ndim=2, last=3)
    if origins.shape != directions.shape:
        raise ValueError(
            f"origins and directions must both be [N, 3], got {list(origins.shape)} and {list(directions.shape)}"
        )
    near = check_finite_real("near", near)
    far = check_finite_real("far", far)
    if not near < far:
        raise ValueError(f"near must be < far, got near={near}, far={far}")
    max_steps = check_int("max_steps", max_steps, minimum=1)
    eps = check_positive("eps", eps)
    n = origins.shape[0]
    if n and bool(((directions.norm(dim=-1) - 1).abs() > 1e-3).any()):
        raise ValueError("directions must be unit length (normalise them first)")

    with torch.no_grad():
        t = torch.full((n,), far, dtype=origins.dtype, device=origins.device)   # misses report far
        hit = torch.zeros(n, dtype=torch.bool, device=origins.device)
        # the rays still marching, compacted: their indices, origins, directions and current t
        idx, o_a, d_a = torch.arange(n, device=origins.device), origins, directions
        t_a = torch.full((n,), near, dtype=origins.dtype, device=origins.device)
        for _ in range(max_steps):
            if idx.numel() == 0:
                break
            dist = sdf(o_a + t_a[:, None] * d_a)                                 # [n_active]
            if not isinstance(dist, torch.Tensor) or dist.shape not in ((idx.numel(),), (idx.numel(), 1)):
                got = list(dist.shape) if isinstance(dist, torch.Tensor) else type(dist).__name__
                raise ValueError(f"sdf must return one distance per point: for [{idx.numel()}, 3] got {got}")
            dist = dist.reshape(-1).to(t_a.dtype)
            converged = dist < eps
            t_a = torch.where(converged, t_a, t_a + dist)
            done = converged | (t_a > far)
            if bool(done.any()):                                                 # retire finished rays
                fin = idx[converged]
                hit[fin] = True
                t[fin] = t_a[converged]
                keep = ~done
                idx, o_a, d_a, t_a = idx[keep], o_a[keep], d_a[keep], t_a[keep]
    return t, hit
