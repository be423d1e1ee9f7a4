"""Sampling stage: which rays a step trains on, and where along each ray the field is evaluated.

* :class:`RayBatcher` draws ``rays_per_step`` random pixels from *all* training images at every step (not one
  whole image per step): consecutive steps then see every view, which makes each gradient step less biased.
* :func:`sample_along` -- ``"stratified"``: the caller's ``sample_stratified`` (the student's in the notebook;
  the reference when None) in ``[near, far]`` (NeRF's coarse sampling); ``"box"``: the same stratified scheme
  restricted to the part of the ray inside the grid's box (slab test), with as many samples as the box's
  diagonal holds voxel steps. The stratified sampler is reused
  by sampling ``t' in [0, 1]`` on the re-parameterised ray ``o' = o + t_enter d``, ``d' = (t_exit - t_enter) d``,
  so ``o' + t' d' = o + (t_enter + t' (t_exit - t_enter)) d``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..manifest import resolve
from .grid import ray_box

__all__ = ["RayBatcher", "RaySamples", "sample_along"]


class RayBatcher:
    """Random training rays: ``next() -> (rays_o [B, 3], rays_d [B, 3], rgb [B, 3])``."""

    def __init__(self, rays_o: torch.Tensor, rays_d: torch.Tensor, rgb: torch.Tensor, batch: int,
                 generator: torch.Generator):
        if not rays_o.shape == rays_d.shape == rgb.shape or rays_o.dim() != 2 or rays_o.shape[0] == 0:
            raise ValueError(f"rays_o, rays_d, rgb must all be [R, 3] with R >= 1, got {list(rays_o.shape)}, "
                             f"{list(rays_d.shape)}, {list(rgb.shape)}")
        self.rays_o, self.rays_d, self.rgb, self.batch, self.gen = rays_o, rays_d, rgb, batch, generator

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.rays_o.shape[0], (self.batch,), generator=self.gen,
                            device=self.gen.device).to(self.rays_o.device)
        return self.rays_o[idx], self.rays_d[idx], self.rgb[idx]


@dataclass
class RaySamples:
    """Points along R rays: ``points [R, S, 3]``; ``t [R, S]`` metric distances from the origin (the
    renderer's quadrature); ``t_end [R]`` where the sampled interval ends; ``valid [R, S]`` False for samples
    of rays that miss the box."""

    points: torch.Tensor
    t: torch.Tensor
    t_end: torch.Tensor
    valid: torch.Tensor


def sample_along(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    mode: str,
    near: float,
    far: float,
    n_samples: int,
    perturb: bool,
    generator: torch.Generator | None = None,
    box: tuple[torch.Tensor, torch.Tensor] | None = None,
    spacing: float | None = None,
    sample_stratified: Callable | None = None,
) -> RaySamples:
    """Samples along rays ``[R, 3]``.

    ``"stratified"``: S = ``n_samples`` in [near, far]; ``t`` is in units of ``|d|`` as in the tiny-NeRF code
    (its directions are not normalised), ``t_end = far``.

    ``"box"``: S = ceil(box diagonal / ``spacing``) in [t_enter, t_exit] of ``box = (lo, hi)``; ``t`` is
    metric (multiplied by ``|d|``) so that densities are per world unit whatever the ray's length.

    ``sample_stratified`` draws the samples in both modes (None: :func:`course_lib.manifest.resolve`'s choice).
    """
    sample_stratified = resolve("sample_stratified", sample_stratified)
    if mode == "stratified":
        points, t = sample_stratified(rays_o, rays_d, near, far, n_samples, perturb, generator)   # [R, S, 3], [R, S]
        t_end = torch.full_like(t[:, 0], far)
        return RaySamples(points, t, t_end, torch.ones_like(t, dtype=torch.bool))
    if mode != "box" or box is None or spacing is None:
        raise ValueError(f"mode must be 'stratified' or 'box' (with box and spacing), got {mode!r}")
    lo, hi = box
    s = max(2, math.ceil(float((hi - lo).norm()) / spacing))
    t_in, t_out = ray_box(rays_o, rays_d, lo, hi, near, far)                                   # [R], [R]
    length = (t_out - t_in)[:, None]                                                           # [R, 1]
    points, u = sample_stratified(rays_o + t_in[:, None] * rays_d, length * rays_d, 0.0, 1.0, s, perturb,
                                  generator)                                                   # [R, S, 3], [R, S]
    norm = rays_d.norm(dim=-1, keepdim=True)                                                   # [R, 1]
    t = (t_in[:, None] + u * length) * norm                                                    # [R, S] metric
    valid = (length > 0).expand_as(t)
    return RaySamples(points, t, t_out * norm[:, 0], valid)
