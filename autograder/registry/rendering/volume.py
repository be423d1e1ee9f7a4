"""Hidden checks for course_lib.rendering.volume (assignment a4_rendering): volume_render.

Known mistakes: inclusive transmittance, a zero last delta, the white background ignored or added unweighted.

References: Max, "Optical Models for Direct Volume Rendering", IEEE TVCG 1995; Mildenhall et al., "NeRF",
ECCV 2020 (eq. 3).
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import check, dtype_check, errors_check, function_spec, mutation_check, rand
from ..core import Cases, CheckSpec, mistake
from ..properties import part
from ..public import PublicCase, gen, sorted_t

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ volume_render
def _vr_case(c: Cases, dt: str, *, lead=None, s=None, sigma_scale=5.0, white=None, empty_tail=False, lead_t=None,
             ch=3, note="", **opt) -> None:
    """Random rays; ``empty_tail``: about a third of the densities, the last one included, are 0, so the weights
    of a ray sum to less than one (the background shows through); ``lead_t``: t_vals' own leading dims (a shared
    ``[S]`` broadcast against sigmas); ``white="default"`` leaves white_background out."""
    lead = lead if lead is not None else c.choice([[c.randint(1, 6)], [2, c.randint(1, 3)]])
    lead_t = lead if lead_t is None else lead_t
    s = s or c.randint(1, 12)
    white = white if white is not None else c.choice([False, True])
    sigmas = rand(lead + [s], dt, sigma_scale)
    if empty_tail:
        keep = f"(torch.rand({', '.join(map(str, lead + [s]))}, generator=g) > 0.35).to(torch.{dt})"
        sigmas = f"{sigmas} * {keep} * torch.cat([torch.ones({s - 1}), torch.zeros(1)]).to(torch.{dt})"
    call = ["sigmas", "colors", "t_vals"] + ([] if white == "default" else [str(white)])
    c.add(f"sigmas = {sigmas}\ncolors = {rand(lead + [s, ch], dt)}\n"
          f"t_vals = torch.sort({rand(lead_t + [s], dt, 4.0, 2.0)}, dim=-1).values", call,
          note=note or f"{dt}, rays {lead}, S={s}, sigmas up to {sigma_scale:g}"
          + (", some sigmas and the last one 0 (weights sum to less than 1)" if empty_tail else "")
          + f", white_background={'left out (False)' if white == 'default' else white}", **opt)


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
        PublicCase("sigmas up to 1e6, white background (float32)", lambda: (
            torch.rand(2, 5, generator=gen(40)) * 1e6, torch.rand(2, 5, 3, generator=gen(41)),
            sorted_t(2, 5, seed=42, dtype=torch.float32), True)),
        PublicCase("mismatched colors raise ValueError", lambda: (
            torch.ones(2, 4), torch.ones(2, 3, 3), torch.ones(2, 4)), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "weights: w_i = T_i (1 - exp(-sigma_i d_i)), T exclusive, last delta 1e10 (and keeps the "
                  "autograd graph)", 2.0,
                  lambda c: [_vr_case(c, c.dtype(k), white=bool(k % 2), empty_tail=k >= 2, grad_wrt=(0, 1))
                             for k in range(4)], part(1, "weights")),
        check("rgb", "rgb = sum_i w_i c_i, plus (1 - sum_i w_i) with white_background (rays whose weights sum to "
              "less than one)", 1.5, lambda c: [
            _vr_case(c, c.dtype(k), white=k < 3, empty_tail=k > 0, grad_wrt=(0, 1)) for k in range(4)],
              part(0, "rgb")),
        check("defaults", "white_background left out: black", 0.5,
              lambda c: [_vr_case(c, c.dtype(k), white="default", empty_tail=True) for k in range(2)]),
        check("layout", "one ray ([S]); a shared t_vals [S]; non-contiguous inputs; C = 1", 0.5, lambda c: [
            _vr_case(c, "float64", lead=[], white=True, empty_tail=True, note="float64, one ray: sigmas [S], colors "
                     "[S, 3], t_vals [S], white background"),
            _vr_case(c, "float32", lead=[4], lead_t=[], white=False, note="float32, sigmas [4, S] with a shared "
                     "t_vals [S]"),
            _vr_case(c, "float64", lead=[2, 3], white=True, empty_tail=True, layout={0: "transposed", 1: "transposed",
                     2: "strided"}, note="float64, non-contiguous inputs (stored transposed, a slice with a step)"),
            _vr_case(c, "float32", lead=[3], ch=1, white=True, note="float32, one colour channel (C = 1)"),
        ]),
        CheckSpec("stability", "finite and correct for sigmas up to 1e6 and for empty rays", 1.0, lambda c: [
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
        ], 1.0),
    ],
    mistakes=[
        mistake("inclusive_transmittance", "volume rendering with inclusive transmittance: T_i = exp(-sum_(j<=i) "
                "sigma_j d_j) counts sample i itself; it must be exclusive, sum over j < i", _vr_variant, inclusive=True),
        mistake("zero_last_delta", "a zero last delta: the last sample's delta must be 1e10 (it absorbs what light is left)",
                _vr_variant, last=0.0),
        mistake("white_ignored", "white_background ignored: add (1 - sum_i w_i) to every channel",
                _vr_variant, white_mode="none"),
        mistake("white_unweighted", "white added without the (1 - sum_i w_i) weight", _vr_variant, white_mode="plain"),
        mistake("cumsum_minus_tau", "the exclusive sum computed as cumsum(tau) - tau: next to the last sample's "
                "sigma * 1e10 the earlier terms are lost to rounding (and the last weight is wrong); shift the cumulative "
                "sum instead, cat([0, cumsum(tau)[..., :-1]])", _vr_variant, exclusive="subtracted"),
    ],
)

SPECS = [VOLUME]
