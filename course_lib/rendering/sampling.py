"""Samplers along rays: stratified (coarse) and inverse-transform (hierarchical / fine) sampling.

Stratified sampling splits [near, far] into S equal bins and draws one point per bin, so every part of the
ray is covered while the sample positions still vary from iteration to iteration (the network sees a
continuous set of positions). Hierarchical sampling then treats the coarse rendering weights as a
piecewise-constant pdf along the ray and draws more samples where the weights are large.

::

    near                                                       far
     |-----x-----|---x-------|--------x--|------x----|  ...  |
      bin 0       bin 1       bin 2       bin 3               bin S-1

References:
    Mildenhall et al., "NeRF", ECCV 2020, section 5.2 (hierarchical volume sampling).
"""
from __future__ import annotations

import torch

from .._validate import check_finite_real, check_int, check_tensor

__all__ = ["sample_stratified", "sample_pdf"]


def _uniform(shape, generator, dtype, device) -> torch.Tensor:
    """torch.rand drawn on the generator's device (so a CPU generator reproduces the same numbers for CUDA
    inputs), then moved to ``device``."""
    if generator is None:
        return torch.rand(shape, dtype=dtype, device=device)
    return torch.rand(shape, generator=generator, dtype=dtype, device=generator.device).to(device)


def sample_stratified(
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    near: float,
    far: float,
    n_samples: int,
    perturb: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified samples along rays.

    Math::

        edges  = linspace(near, far, S + 1);   lower = edges[:-1],  upper = edges[1:]
        t      = (lower + upper) / 2                                    if not perturb
                 lower + (upper - lower) * torch.rand(..., S)           if perturb
        points = rays_o[..., None, :] + t[..., :, None] * rays_d[..., None, :]

    Args:
        rays_o: ``[..., 3]`` ray origins; rays_d: ``[..., 3]`` directions (their leading dims must match or
            broadcast).
        near, far: the interval along each ray, ``near < far``.
        n_samples: S >= 1.
        perturb: draw one uniform sample per bin instead of taking the bin midpoints.
        generator: optional ``torch.Generator`` for the uniform draws (shape ``[..., S]``, drawn on the
            generator's device and moved to the rays' device).

    Returns:
        ``(points [..., S, 3], t_vals [..., S])`` with the dtype and device of ``rays_o``; ``t_vals`` are
        sorted along the last axis and lie in [near, far].

    Raises:
        ValueError: on wrong trailing dims, leading dims that do not broadcast, ``near >= far`` or
        ``n_samples < 1``.
    """
    check_tensor("rays_o", rays_o, min_ndim=1, last=3)
    check_tensor("rays_d", rays_d, min_ndim=1, last=3)
    near = check_finite_real("near", near)
    far = check_finite_real("far", far)
    if not near < far:
        raise ValueError(f"near must be < far, got near={near}, far={far}")
    s = check_int("n_samples", n_samples, minimum=1)
    try:
        batch = torch.broadcast_shapes(rays_o.shape[:-1], rays_d.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"rays_o and rays_d must have matching leading dims, got {list(rays_o.shape)} and {list(rays_d.shape)}"
        ) from None
    kw = dict(dtype=rays_o.dtype, device=rays_o.device)
    edges = torch.linspace(near, far, s + 1, **kw)                     # [S + 1]
    lower, upper = edges[:-1], edges[1:]                               # [S], [S]
    if perturb:
        u = _uniform((*batch, s), generator, rays_o.dtype, rays_o.device)   # [..., S]
        t_vals = lower + (upper - lower) * u                           # [..., S]
    else:
        t_vals = ((lower + upper) / 2).expand(*batch, s).clone()      # [..., S]
    points = rays_o[..., None, :] + t_vals[..., :, None] * rays_d[..., None, :]   # [..., S, 3]
    return points, t_vals


@torch.no_grad()
def sample_pdf(
    bins: torch.Tensor,
    weights: torch.Tensor,
    n_samples: int,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverse-transform sampling of a piecewise-constant pdf (NeRF's hierarchical sampling).

    Math::

        pdf  = (w + 1e-5) / sum(w + 1e-5)                          [..., S]
        cdf  = cat([0, cumsum(pdf)])                               [..., S + 1]
        u    = linspace(0, 1, n)  if deterministic  else  torch.rand(..., n)
        idx  = searchsorted(cdf, u, right=True)
        below = clamp(idx - 1, min=0),  above = clamp(idx, max=S)
        denom = cdf[above] - cdf[below]   (set to 1 where < 1e-5)
        t     = (u - cdf[below]) / denom
        sample = bins[below] + t * (bins[above] - bins[below])

    The 1e-5 padding makes all-zero weights give a uniform pdf. The samples are detached: the fine
    network's loss must not push the coarse weights through the sample positions.

    Args:
        bins: ``[..., S + 1]`` bin edges, sorted along the last axis.
        weights: ``[..., S]`` non-negative weights (e.g. coarse rendering weights), same leading dims.
        n_samples: number of samples per ray (>= 1).
        deterministic: use evenly spaced ``u`` instead of random ones.
        generator: optional ``torch.Generator`` for the uniform draws (shape ``[..., n_samples]``, drawn on
            the generator's device and moved to the inputs' device).

    Returns:
        ``[..., n_samples]`` with the dtype and device of ``bins``, detached, each sample inside
        ``[bins[..., 0], bins[..., -1]]``; sorted when ``deterministic``.

    Raises:
        ValueError: on mismatched shapes, ``n_samples < 1`` or negative weights.
    """
    check_tensor("bins", bins, min_ndim=1)
    check_tensor("weights", weights, min_ndim=1)
    n = check_int("n_samples", n_samples, minimum=1)
    s = weights.shape[-1]
    if bins.shape[:-1] != weights.shape[:-1] or bins.shape[-1] != s + 1 or s < 1:
        raise ValueError(
            f"bins must be [..., S + 1] and weights [..., S] with the same leading dims, got bins "
            f"{list(bins.shape)} and weights {list(weights.shape)}"
        )
    if bool((weights < 0).any()):
        raise ValueError(f"weights must be non-negative, got a minimum of {weights.min().item():.3g}")
    batch = weights.shape[:-1]
    w = weights.detach().to(bins.dtype) + 1e-5
    pdf = w / w.sum(-1, keepdim=True)                                        # [..., S]
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, -1)], -1)   # [..., S + 1]
    if deterministic:
        u = torch.linspace(0.0, 1.0, n, dtype=bins.dtype, device=bins.device).expand(*batch, n).contiguous()
    else:
        u = _uniform((*batch, n), generator, bins.dtype, bins.device)      # [..., n]
    idx = torch.searchsorted(cdf, u, right=True)                             # [..., n] in [0, S + 1]
    below = (idx - 1).clamp(min=0)
    above = idx.clamp(max=s)
    cdf_below, cdf_above = cdf.gather(-1, below), cdf.gather(-1, above)
    bins = bins.detach()
    bins_below, bins_above = bins.gather(-1, below), bins.gather(-1, above)
    denom = cdf_above - cdf_below
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_below) / denom
    return bins_below + t * (bins_above - bins_below)
