"""Emission-absorption volume rendering (the quadrature of NeRF's rendering integral).

Along a ray with samples t_1 < ... < t_S, densities sigma_i >= 0 and colours c_i::

    delta_i = t_(i+1) - t_i            (the last delta is 1e10: whatever is left is absorbed there)
    alpha_i = 1 - exp(-sigma_i delta_i)                 probability that the ray stops in bin i
    T_i     = exp(-sum_(j<i) sigma_j delta_j)           probability that it reaches bin i (T_1 = 1)
    w_i     = T_i alpha_i,        C = sum_i w_i c_i

The weights telescope: ``sum_i w_i = 1 - exp(-sum_i sigma_i delta_i)``. We compute ``T`` as the exponential of
an exclusive cumulative sum, not as a cumulative product of ``1 - alpha`` (+ 1e-10, as the original NeRF
code does): the sum is exact where the product needs an epsilon, and its gradient has no division by zero.

References:
    Max, "Optical Models for Direct Volume Rendering", IEEE TVCG 1995.
    Mildenhall et al., "NeRF", ECCV 2020, eq. 3.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_tensor

__all__ = ["volume_render", "LAST_DELTA"]

LAST_DELTA = 1e10


def volume_render(
    sigmas: torch.Tensor,
    colors: torch.Tensor,
    t_vals: torch.Tensor,
    white_background: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render rays from per-sample densities and colours.

    Math::

        d_i   = t_(i+1) - t_i,  d_S = 1e10
        alpha_i = 1 - exp(-sigma_i d_i)
        T_i   = exp(-sum_(j<i) sigma_j d_j)          (exclusive, T_1 = 1)
        w_i   = T_i alpha_i
        rgb   = sum_i w_i c_i  (+ (1 - sum_i w_i) in every channel when white_background)

    Args:
        sigmas: ``[..., S]`` densities, >= 0 (the caller applies ReLU / softplus); stable up to 1e6.
        colors: ``[..., S, C]`` per-sample colours (C = 3 for RGB; any C works, e.g. features).
        t_vals: ``[..., S]`` sample positions, non-decreasing along the last axis; a shared ``[S]`` also
            works (it is broadcast against ``sigmas``).
        white_background: composite the result over white instead of black.

    Returns:
        ``(rgb [..., C], weights [..., S])`` with the dtype and device of ``sigmas``. Values and gradients
        are finite for sigmas in [0, 1e6]. An empty ray (all sigmas 0) renders black (white with
        ``white_background``).

    Raises:
        ValueError: on a shape mismatch between the three inputs or S = 0.
    """
    check_tensor("sigmas", sigmas, min_ndim=1)
    check_tensor("colors", colors, min_ndim=2)
    check_tensor("t_vals", t_vals, min_ndim=1)
    s = sigmas.shape[-1]
    if s == 0:
        raise ValueError(f"sigmas must hold at least one sample, got shape {list(sigmas.shape)}")
    if colors.shape[:-1] != sigmas.shape:
        raise ValueError(
            f"colors must be [..., S, C] with [..., S] = {list(sigmas.shape)} from sigmas, got {list(colors.shape)}"
        )
    if t_vals.shape[-1] != s:
        raise ValueError(f"t_vals must be [..., S] with S = {s}, got shape {list(t_vals.shape)}")
    try:
        ok = torch.broadcast_shapes(t_vals.shape, sigmas.shape) == sigmas.shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"t_vals {list(t_vals.shape)} must match (or broadcast to) sigmas {list(sigmas.shape)}")

    deltas = F.pad(t_vals[..., 1:] - t_vals[..., :-1], (0, 1), value=LAST_DELTA)   # [..., S]
    tau = sigmas * deltas                                       # [..., S] optical thickness of each bin
    alpha = -torch.expm1(-tau)                                  # 1 - exp(-tau), accurate for small tau
    # exclusive cumulative sum [0, tau_1, tau_1 + tau_2, ...], built without subtracting (no cancellation)
    excl = F.pad(tau[..., :-1], (1, 0)).cumsum(-1)              # [..., S]
    weights = torch.exp(-excl) * alpha                          # [..., S]
    rgb = (weights.unsqueeze(-2) @ colors).squeeze(-2)          # [..., 1, S] @ [..., S, C] -> [..., C]
    if white_background:
        rgb = rgb + (1.0 - weights.sum(-1, keepdim=True))
    return rgb, weights
