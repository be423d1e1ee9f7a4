"""Hidden checks for course_lib.rendering.volume (assignment a4_rendering): volume_render.

Known mistakes: inclusive transmittance, a zero last delta, the white background ignored or added unweighted.

References: Max, "Optical Models for Direct Volume Rendering", IEEE TVCG 1995; Mildenhall et al., "NeRF",
ECCV 2020 (eq. 3).
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import dtype_check, errors_check, function_spec, mutation_check, rand
from ..core import Cases, CheckSpec, mistake
from ..public import PublicCase, gen, sorted_t

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ volume_render
def _vr_case(c: Cases, dt: str, *, lead=None, s=None, sigma_scale=5.0, white=None, note="", **opt) -> None:
    lead = lead or c.choice([[c.randint(1, 6)], [2, c.randint(1, 3)]])
    s = s or c.randint(1, 12)
    white = white if white is not None else c.choice([False, True])
    c.add(f"sigmas = {rand(lead + [s], dt, sigma_scale)}\ncolors = {rand(lead + [s, 3], dt)}\n"
          f"t_vals = torch.sort({rand(lead + [s], dt, 4.0, 2.0)}, dim=-1).values",
          ["sigmas", "colors", "t_vals", str(white)],
          note=note or f"{dt}, rays {lead}, S={s}, sigmas up to {sigma_scale:g}, white_background={white}", **opt)


def _vr_variant(sigmas, colors, t_vals, white=False, *, inclusive=False, last=1e10, white_mode="weighted",
                exclusive="shifted"):
    """Wrong composites (arguments checked as the contract says, so only the mistake differs). With its default
    flags it is the reference's computation: the exclusive sum as a shifted cumulative sum, which stays exact."""
    if colors.shape[:-1] != sigmas.shape or t_vals.shape[-1] != sigmas.shape[-1]:
        raise ValueError(f"sigmas {list(sigmas.shape)}, colors {list(colors.shape)} and t_vals {list(t_vals.shape)} disagree")
    deltas = torch.cat([t_vals[..., 1:] - t_vals[..., :-1], torch.full_like(t_vals[..., :1], last)], -1)
    tau = sigmas * deltas
    alpha = 1 - torch.exp(-tau)
    cum = torch.cumsum(tau, -1)
    if exclusive == "shifted":
        excl = torch.cat([torch.zeros_like(tau[..., :1]), cum[..., :-1]], -1)
    else:                                          # cumsum(tau) - tau: loses the earlier terms next to 1e10
        excl = cum - tau
    weights = torch.exp(-(cum if inclusive else excl)) * alpha
    rgb = (weights[..., None] * colors).sum(-2)
    if white and white_mode == "weighted":
        rgb = rgb + (1 - weights.sum(-1, keepdim=True))
    elif white and white_mode == "plain":
        rgb = rgb + 1
    return rgb, weights


VOLUME = function_spec(
    "volume_render",
    public=[
        PublicCase("3 rays, S=6", lambda: (torch.rand(3, 6, generator=gen(37), dtype=torch.float64) * 3,
                                      torch.rand(3, 6, 3, generator=gen(38), dtype=torch.float64), sorted_t(3, 6, seed=39))),
        PublicCase("sigmas up to 1e6, white background (float32)", lambda: (torch.rand(2, 5, generator=gen(40)) * 1e6,
                                                                       torch.rand(2, 5, 3, generator=gen(41)), sorted_t(2, 5, seed=42, dtype=torch.float32), True)),
        PublicCase("mismatched colors raise ValueError", lambda: (torch.ones(2, 4), torch.ones(2, 3, 3), torch.ones(2, 4)), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "w_i = T_i (1 - exp(-sigma_i d_i)), T exclusive, last delta 1e10; rgb = sum w_i c_i", 3.5,
                  lambda c: [_vr_case(c, c.dtype(k), white=bool(k % 2)) for k in range(4)]),
        CheckSpec("stability", "finite and correct for sigmas up to 1e6 and for empty rays", 1.5, lambda c: [
            _vr_case(c, "float32", sigma_scale=1e6, white=False),
            _vr_case(c, "float64", sigma_scale=1e6, white=True),
            _vr_case(c, "float32", sigma_scale=0.0, white=True, note="all sigmas 0: white background only"),
        ]),
        CheckSpec("analytic", "one sample: its weight is 1 (the last delta absorbs everything)", 1.0, lambda c: [
            c.add(f"sigmas = torch.ones(2, 1, dtype=torch.float64)\ncolors = {rand([2, 1, 3], 'float64')}\n"
                  "t_vals = torch.ones(2, 1, dtype=torch.float64)", ["sigmas", "colors", "t_vals", "False"],
                  note="S = 1: rgb equals the sample's colour"),
        ]),
        CheckSpec("gradients", "gradients wrt sigmas, colours and t_vals match (and are finite at sigma 1e6)", 1.5, lambda c: [
            _vr_case(c, "float64", grad_wrt=(0, 1, 2), grad=True),
            _vr_case(c, "float32", sigma_scale=1e6, grad_wrt=(0, 1), grad=True, white=False),
        ], judges.gradients),
        dtype_check(lambda c, dt, dev: _vr_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _vr_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add(f"sigmas = {rand([2, 4], 'float32')}\ncolors = {rand([2, 5, 3], 'float32')}",
                  ["sigmas", "colors", "sigmas", "False"], note="colors [2, 5, 3] for sigmas [2, 4]", meta={"arg": "colors"}),
            c.add(f"sigmas = {rand([2, 4], 'float32')}\ncolors = {rand([2, 4, 3], 'float32')}\nt_vals = {rand([2, 3], 'float32')}",
                  ["sigmas", "colors", "t_vals", "False"], note="t_vals [2, 3] for sigmas [2, 4]", meta={"arg": "t_vals"}),
        ], 1.5),
    ],
    mistakes=[
        mistake("inclusive_transmittance", "volume rendering with inclusive transmittance: T_i = exp(-sum_(j<=i) "
                "sigma_j d_j) counts sample i itself; it must be exclusive, sum over j < i", _vr_variant, inclusive=True),
        mistake("zero_last_delta", "a zero last delta: the last sample's delta must be 1e10 (it absorbs what light is left)", _vr_variant, last=0.0),
        mistake("white_ignored", "white_background ignored: add (1 - sum_i w_i) to every channel",
                _vr_variant, white_mode="none"),
        mistake("white_unweighted", "white added without the (1 - sum_i w_i) weight", _vr_variant, white_mode="plain"),
        mistake("cumsum_minus_tau", "the exclusive sum computed as cumsum(tau) - tau: next to the last sample's "
                "sigma * 1e10 the earlier terms are lost to rounding (and the last weight is wrong); shift the cumulative "
                "sum instead, cat([0, cumsum(tau)[..., :-1]])", _vr_variant, exclusive="subtracted"),
    ],
)

SPECS = [VOLUME]
