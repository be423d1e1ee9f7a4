"""Hidden checks for assignment a4_rendering, part 2: volume_render, sample_pdf, sphere_trace.

Known mistakes: volume rendering with inclusive transmittance, a zero last delta, the white background ignored
or added unweighted; sample_pdf with searchsorted(right=False), without the 1e-5 padding, or a random mode that
ignores the generator; sphere tracing that ignores far, leaves misses at their last t, or starts at 0.

References: Max, IEEE TVCG 1995; Mildenhall et al., ECCV 2020 (eq. 3, section 5.2); Hart, The Visual
Computer 1996 (sphere tracing).
"""
from __future__ import annotations

import torch

import course_lib

from . import judges
from .build import dtype_check, errors_check, mutation_check, rand
from .core import Cases, CheckSpec, FunctionSpec, Mistake

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


def _vr_variant(sigmas, colors, t_vals, white=False, *, inclusive=False, last=1e10, white_mode="weighted"):
    deltas = torch.cat([t_vals[..., 1:] - t_vals[..., :-1], torch.full_like(t_vals[..., :1], last)], -1)
    tau = sigmas * deltas
    alpha = 1 - torch.exp(-tau)
    cum = torch.cumsum(tau, -1)
    excl = cum - tau
    weights = torch.exp(-(cum if inclusive else excl)) * alpha
    rgb = (weights[..., None] * colors).sum(-2)
    if white and white_mode == "weighted":
        rgb = rgb + (1 - weights.sum(-1, keepdim=True))
    elif white and white_mode == "plain":
        rgb = rgb + 1
    return rgb, weights


VOLUME = FunctionSpec(
    name="volume_render", assignment="a4_rendering", points=10.0, params=("sigmas", "colors", "t_vals", "white_background"),
    reference=course_lib.volume_render,
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
        Mistake("inclusive_transmittance", "volume rendering with inclusive transmittance: T_i = exp(-sum_(j<=i) "
                "sigma_j d_j) counts sample i itself; it must be exclusive, sum over j < i", lambda *a: _vr_variant(*a, inclusive=True)),
        Mistake("zero_last_delta", "a zero last delta: the last sample's delta must be 1e10 (it absorbs what light is left)", lambda *a: _vr_variant(*a, last=0.0)),
        Mistake("white_ignored", "white_background ignored: add (1 - sum_i w_i) to every channel",
                lambda *a: _vr_variant(*a, white_mode="none")),
        Mistake("white_unweighted", "white added without the (1 - sum_i w_i) weight", lambda *a: _vr_variant(*a, white_mode="plain")),
    ],
)


# ------------------------------------------------------------------------------------------------ sample_pdf
def _sp_case(c: Cases, dt: str, *, lead=None, s=None, n=None, weights=None, det=True, note="", **opt) -> None:
    lead = lead or c.choice([[c.randint(1, 5)], [2, c.randint(1, 3)]])
    s, n = s or c.randint(1, 8), n or c.randint(1, 12)
    w = weights or rand(lead + [s], dt)
    gen = "" if det else f"\ngen = GEN({c.randint(0, 2**31 - 1)})"
    c.add(f"bins = torch.cumsum({rand(lead + [s + 1], dt, 1.0, 0.1)}, dim=-1)\nweights = {w}{gen}",
          ["bins", "weights", str(n), str(det), "None" if det else "gen"],
          note=note or f"{dt}, rays {lead}, S={s}, n_samples={n}, deterministic={det}", **opt)


def _sp_variant(bins, weights, n, det=False, generator=None, *, right=True, pad=1e-5):
    w = weights + pad
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, -1)], -1)
    u = torch.linspace(0, 1, n, dtype=bins.dtype, device=bins.device).expand(*weights.shape[:-1], n).contiguous()
    idx = torch.searchsorted(cdf, u, right=right)
    below, above = (idx - 1).clamp(min=0), idx.clamp(max=weights.shape[-1])
    cb, ca = cdf.gather(-1, below), cdf.gather(-1, above)
    bb, ba = bins.gather(-1, below), bins.gather(-1, above)
    denom = torch.where(ca - cb < 1e-5, torch.ones_like(ca), ca - cb)
    return (bb + (u - cb) / denom * (ba - bb)).detach()


def _sp_random(ctx: judges.Context) -> judges.Verdict:
    """deterministic=False: samples inside [bins_0, bins_S], distributed as the pdf, reproducible from generator."""
    bad = judges.describe_failure(ctx)
    if bad:
        return judges.Verdict(0.0, bad)
    out = ctx.reply.get("out") or {}
    ref = ctx.m.ref_out
    if out.get("t") != "tensor" or list(out["data"].shape) != list(ref.shape):
        return judges.Verdict(0.0, f"expected a tensor of shape {list(ref.shape)}, got {judges._kind(out)}")
    x = out["data"].to(torch.float64)
    bins, weights = ctx.m.args[0].to(torch.float64), ctx.m.args[1].to(torch.float64)
    if not bool(((x >= bins[..., :1] - 1e-6) & (x <= bins[..., -1:] + 1e-6)).all()):
        return judges.Verdict(0.0, "samples must lie inside [bins[..., 0], bins[..., -1]]")
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
    idx = torch.searchsorted(bins.contiguous(), x.contiguous(), right=True).clamp(1, bins.shape[-1] - 1) - 1
    hist = torch.zeros_like(pdf).scatter_add_(-1, idx, torch.ones_like(x)) / x.shape[-1]
    gap = (hist - pdf).abs().max().item()
    if gap > 0.06:
        return judges.Verdict(0.0, f"the fraction of samples per bin differs from the pdf by up to {gap:.2f}: invert the "
                                   "CDF of (w + 1e-5) / sum(w + 1e-5)")
    again = ctx.reply.get("out2") or {}
    if again.get("t") != "tensor" or not torch.equal(again["data"].to(torch.float64), x):
        return judges.Verdict(0.0, "two calls with generators seeded alike gave different samples: draw u with "
                                   "torch.rand(..., generator=generator)", "generator_ignored")
    return judges.Verdict(1.0)


ZERO_BINS = "torch.rand({shape}, generator=g, dtype=torch.{dt}) * torch.tensor({mask}, dtype=torch.{dt})"

SAMPLE_PDF = FunctionSpec(
    name="sample_pdf", assignment="a4_rendering", points=10.0,
    params=("bins", "weights", "n_samples", "deterministic", "generator"), reference=course_lib.sample_pdf,
    checks=[
        CheckSpec("values", "deterministic=True: the inverse CDF at u = linspace(0, 1, n)", 3.0,
                  lambda c: [_sp_case(c, c.dtype(k)) for k in range(4)]),
        CheckSpec("zero_weights", "all-zero weights sample uniformly; zero-weight bins (searchsorted right=True)", 2.0, lambda c: [
            _sp_case(c, "float32", weights="torch.zeros(2, 4, dtype=torch.float32)", lead=[2], s=4, note="all-zero weights"),
            _sp_case(c, "float64", lead=[2], s=4, n=5, weights=ZERO_BINS.format(shape="2, 4", dt="float64", mask=[1.0, 1.0, 0.0, 0.0]),
                     note="the last two bins have zero weight"),
            _sp_case(c, "float64", lead=[2], s=4, n=5, weights="torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]], "
                     "dtype=torch.float64)", note="u lands exactly on a CDF step (searchsorted must use right=True)"),
            _sp_case(c, "float32", lead=[1], s=4, n=3, weights="torch.tensor([[2.0, 0.0, 2.0, 0.0]])",
                     note="alternate bins have zero weight"),
        ]),
        CheckSpec("random", "deterministic=False: samples follow the pdf and come from the generator", 2.0, lambda c: [
            _sp_case(c, "float64", lead=[2], s=4, n=4000, det=False, repeat=True,
                     weights="torch.tensor([[4.0, 1.0, 0.0, 3.0], [0.5, 0.5, 2.0, 1.0]], dtype=torch.float64)",
                     note="2 rays, 4000 samples each"),
        ], _sp_random),
        CheckSpec("detached", "the samples are detached from bins and weights", 1.0, lambda c: [
            _sp_case(c, "float64", grad_wrt=(0, 1), meta={"detached": True}, note="bins and weights that require grad"),
        ], judges.stop_gradient),
        dtype_check(lambda c, dt, dev: _sp_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _sp_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add(f"bins = {rand([2, 4], 'float32')}\nweights = {rand([2, 4], 'float32')}", ["bins", "weights", "3", "True", "None"],
                  note="bins [2, 4] for weights [2, 4] (bins needs S + 1 = 5 edges)", meta={"arg": "bins"}),
            c.add(f"bins = {rand([2, 5], 'float32')}\nweights = {rand([2, 4], 'float32')}", ["bins", "weights", "0", "True", "None"],
                  note="n_samples=0", meta={"arg": "n_samples"}),
        ], 1.0),
    ],
    mistakes=[
        Mistake("right_false", "sample_pdf with searchsorted(..., right=False): the contract uses right=True",
                lambda *a: _sp_variant(*a, right=False)),
        Mistake("no_padding", "weights used without the 1e-5 padding: pdf = (w + 1e-5) / sum(w + 1e-5)",
                lambda *a: _sp_variant(*a, pad=0.0)),
    ],
)

from .tracing import SPHERE_TRACE  # noqa: E402  (kept in its own module for length)

SPECS = [VOLUME, SAMPLE_PDF, SPHERE_TRACE]
