"""Hidden checks for course_lib.rendering.sampling (assignment a4_rendering): sample_stratified, sample_pdf.

Known mistakes: stratified samples at the left or right bin edges or at linspace(near, far, S); sample_pdf with
searchsorted(right=False) or without the 1e-5 padding, or a random mode that ignores the generator.

Reference: Mildenhall et al., "NeRF", ECCV 2020 (eq. 2 and section 5.2, hierarchical volume sampling).
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import check, dtype_check, errors_check, function_spec, mutation_check, rand, randn
from ..core import Cases, CheckSpec, mistake
from ..properties import part
from ..public import PublicCase, gen, rnd

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ sample_stratified
def _ss_case(c: Cases, dt: str, *, lead=None, lead_d=None, s=None, near=None, far=None, perturb=False, note="",
             **opt) -> None:
    """``perturb``: False, True (with a seeded generator) or "default" (perturb and generator left out: the draws
    come from torch's global generator, seeded alike in the worker and for the reference)."""
    lead = lead if lead is not None else c.choice([[c.randint(1, 6)], [2, c.randint(1, 3)]])
    lead_d = lead if lead_d is None else lead_d
    s = s or c.randint(1, 12)
    near = near if near is not None else round(c.rng.uniform(0.0, 2.0), 3)
    far = far if far is not None else round(near + c.rng.uniform(0.5, 4.0), 3)
    gen = f"\ngen = GEN({c.randint(0, 2**31 - 1)})" if perturb is True else ""
    call = ["rays_o", "rays_d", repr(near), repr(far), str(s)]
    call += [] if perturb == "default" else [str(perturb), "gen" if perturb else "None"]
    if perturb == "default":
        opt["global_rng"] = True
    shapes = f"rays {lead}" if lead_d == lead else f"rays_o {lead + [3]}, rays_d {lead_d + [3]}"
    c.add(f"rays_o = {randn(lead + [3], dt)}\nrays_d = {randn(lead_d + [3], dt)}{gen}", call,
          note=note or f"{dt}, {shapes}, S={s}, near={near}, far={far}, "
                       + ("perturb and generator left out (the global generator)" if perturb == "default"
                          else f"perturb={perturb}"), **opt)


def _ss_variant(o, d, near, far, s, perturb=True, generator=None, *, where="mid"):
    edges = torch.linspace(near, far, s + 1, dtype=o.dtype, device=o.device)
    t = {"mid": (edges[:-1] + edges[1:]) / 2, "left": edges[:-1], "right": edges[1:],
         "linspace": torch.linspace(near, far, s, dtype=o.dtype, device=o.device)}[where]
    t = t.expand(*o.shape[:-1], s)
    return o[..., None, :] + t[..., :, None] * d[..., None, :], t


def _perturbed(ctx: judges.Context) -> judges.Verdict:
    """perturb=True: exactly the reference's samples for the same generator (the contract pins the draw:
    lower + (upper - lower) * torch.rand(..., S, generator=generator)); when they differ, why."""
    verdict = _t_vals(ctx)
    if verdict.score >= 1 or verdict.mistake:
        return verdict
    out = ctx.reply.get("out") or {}
    items = out.get("items") if out.get("t") in ("tuple", "list") else None
    if not items or len(items) != 2 or any(i.get("t") != "tensor" for i in items):
        return verdict
    t = items[1]["data"].to(torch.float64)
    near, far, s = ctx.m.args[2:5]
    edges = torch.linspace(near, far, s + 1, dtype=torch.float64)
    if list(t.shape[-1:]) != [s]:
        return verdict
    slack = 1e-5 * max(1.0, abs(far))
    if not bool(((t >= edges[:-1] - slack) & (t <= edges[1:] + slack)).all()):
        return judges.Verdict(0.0, verdict.message + "; with perturb=True every t must lie inside its own bin")
    again = ctx.reply.get("out2") or {}
    t2 = again.get("items", [{}, {}])[1].get("data") if again.get("t") in ("tuple", "list") else None
    if t2 is None or not torch.equal(t2.to(torch.float64), t):
        return judges.Verdict(0.0, verdict.message + "; two calls with generators seeded alike gave different "
                              "samples: draw the uniform numbers with torch.rand(..., generator=generator)",
                              "generator_ignored")
    return judges.Verdict(0.0, verdict.message + "; the samples lie in their bins but are not the contract's draw: "
                          "u = torch.rand(*batch, S, generator=generator, dtype=rays_o.dtype), one call, then "
                          "t = lower + (upper - lower) * u")


_points = part(0, "points")
_t_vals = part(1, "t_vals")


SAMPLE_STRATIFIED = function_spec(
    "sample_stratified",
    public=[
        PublicCase("4 rays, S=5, perturb=False", lambda: (rnd(4, 3, seed=34), rnd(4, 3, seed=35), 2.0, 6.0, 5, False)),
        PublicCase("near >= far raises ValueError", lambda: (torch.zeros(1, 3), torch.ones(1, 3), 2.0, 1.0, 4, False), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "perturb=False: points = o + t d at the bin midpoints t (and keeps the autograd graph)",
                  2.5, lambda c: [_ss_case(c, c.dtype(k), grad_wrt=(0, 1)) for k in range(4)], _points),
        check("t_vals", "perturb=False: t_vals at the bin midpoints of linspace(near, far, S + 1)", 1.0,
              lambda c: [_ss_case(c, c.dtype(k)) for k in range(2)], _t_vals),
        CheckSpec("perturbed", "perturb=True: the contract's draw from the generator, lower + (upper - lower) * "
                  "torch.rand(..., S, generator=generator)", 2.0,
                  lambda c: [_ss_case(c, c.dtype(k), perturb=True, repeat=True) for k in range(2)], _perturbed),
        check("defaults", "perturb and generator left out: perturbed samples from torch's global generator", 0.5,
              lambda c: [_ss_case(c, c.dtype(k), perturb="default") for k in range(2)]),
        check("layout", "rays without leading dims ([3]); one origin for many directions; non-contiguous rays", 0.5,
              lambda c: [
            _ss_case(c, "float64", lead=[], note="float64, one ray: rays_o and rays_d of shape [3]"),
            _ss_case(c, "float32", lead=[], lead_d=[4], note="float32, one origin [3] for rays_d [4, 3]"),
            _ss_case(c, "float64", lead=[5], layout={0: "transposed", 1: "strided"},
                     note="float64, non-contiguous rays_o (stored transposed) and rays_d (a slice with a step)"),
        ]),
        CheckSpec("edge", "one sample per ray; a single ray", 0.5,
                  lambda c: [_ss_case(c, "float64", s=1), _ss_case(c, "float32", lead=[1], s=5)]),
        CheckSpec("gradients", "gradients wrt rays_o and rays_d match the reference", 1.0,
                  lambda c: _ss_case(c, "float64", grad_wrt=(0, 1), grad=True), judges.gradients),
        dtype_check(lambda c, dt, dev: _ss_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _ss_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add(f"rays_o = {randn([4, 2], 'float32')}", ["rays_o", "rays_o", "1.0", "2.0", "4", "False", "None"],
                  note="rays of shape [4, 2]", meta={"arg": "rays_o"}),
            c.add(f"rays_o = {randn([4, 3], 'float32')}", ["rays_o", "rays_o", "3.0", "2.0", "4", "False", "None"],
                  note="near=3 > far=2", meta={"arg": "near"}),
            c.add(f"rays_o = {randn([4, 3], 'float32')}", ["rays_o", "rays_o", "1.0", "2.0", "0", "False", "None"],
                  note="n_samples=0", meta={"arg": "n_samples"}),
        ], 1.0),
    ],
    mistakes=[
        mistake("perturb_ignored", "perturb=True returning the bin midpoints: draw one uniform sample per bin, "
                "lower + (upper - lower) * torch.rand(..., S, generator=generator)", _ss_variant, where="mid"),
        mistake("left_edges", "t at the left bin edges: with perturb=False t is the bin midpoint (lower + upper) / 2",
                _ss_variant, where="left"),
        mistake("right_edges", "t at the right bin edges instead of the midpoints", _ss_variant, where="right"),
        mistake("linspace_s", "t = linspace(near, far, S): the bins are linspace(near, far, S + 1), t their midpoints",
                _ss_variant, where="linspace"),
    ],
)


# ------------------------------------------------------------------------------------------------ sample_pdf
def _sp_case(c: Cases, dt: str, *, lead=None, s=None, n=None, weights=None, det=True, note="", **opt) -> None:
    """``det``: True, False (with a seeded generator), "global" (deterministic=False, generator=None) or "default"
    (both left out); the last two draw from torch's global generator, seeded alike in the worker and for the
    reference."""
    lead = lead if lead is not None else c.choice([[c.randint(1, 5)], [2, c.randint(1, 3)]])
    s, n = s or c.randint(1, 8), n or c.randint(1, 12)
    w = weights or rand(lead + [s], dt)
    gen = f"\ngen = GEN({c.randint(0, 2**31 - 1)})" if det is False else ""
    call = ["bins", "weights", str(n)]
    if det in (True, False):
        call += [str(det), "None" if det else "gen"]
    elif det == "global":
        call += ["False", "None"]
    if det in ("global", "default"):
        opt["global_rng"] = True
    mode = {True: "deterministic=True", False: "deterministic=False with a generator",
            "global": "deterministic=False, generator=None (the global generator)",
            "default": "deterministic and generator left out (random, the global generator)"}[det]
    c.add(f"bins = torch.cumsum({rand(lead + [s + 1], dt, 1.0, 0.1)}, dim=-1)\nweights = {w}{gen}", call,
          note=note or f"{dt}, rays {lead}, S={s}, n_samples={n}, {mode}", **opt)


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
    """deterministic=False: exactly the reference's samples for the same draws (the contract pins them:
    u = torch.rand(..., n_samples, generator=generator)); when they differ, why."""
    verdict = judges.value(ctx)
    if verdict.score >= 1 or verdict.mistake:
        return verdict
    out = ctx.reply.get("out") or {}
    if out.get("t") != "tensor" or list(out["data"].shape) != list(ctx.m.ref_out.shape):
        return verdict
    x = out["data"].to(torch.float64)
    bins = ctx.m.args[0].to(torch.float64)
    if not bool(((x >= bins[..., :1] - 1e-6) & (x <= bins[..., -1:] + 1e-6)).all()):
        return judges.Verdict(0.0, verdict.message + "; samples must lie inside [bins[..., 0], bins[..., -1]]")
    again = ctx.reply.get("out2")
    if again is not None and (again.get("t") != "tensor" or not torch.equal(again["data"].to(torch.float64), x)):
        return judges.Verdict(0.0, verdict.message + "; two calls with generators seeded alike gave different "
                              "samples: draw u with torch.rand(..., generator=generator)", "generator_ignored")
    return judges.Verdict(0.0, verdict.message + "; the samples are not the contract's draw: u = torch.rand(*batch, "
                          "n_samples, generator=generator, dtype=bins.dtype) (one call; without a generator, from "
                          "torch's global generator), then the inverse CDF")


ZERO_BINS = "torch.rand({shape}, generator=g, dtype=torch.{dt}) * torch.tensor({mask}, dtype=torch.{dt})"

SAMPLE_PDF = function_spec(
    "sample_pdf",
    public=[
        PublicCase("deterministic, 2 rays, S=4, 6 samples", lambda: (
            torch.cumsum(torch.rand(2, 5, generator=gen(43), dtype=torch.float64) + 0.1, -1),
                                                               torch.rand(2, 4, generator=gen(44), dtype=torch.float64), 6, True)),
        PublicCase("all-zero weights (uniform pdf)", lambda: (torch.linspace(0, 1, 5)[None], torch.zeros(1, 4), 5, True)),
        PublicCase("mismatched bins raise ValueError", lambda: (torch.ones(2, 4), torch.ones(2, 4), 3, True), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "deterministic=True: the inverse CDF at u = linspace(0, 1, n)", 2.5,
                  lambda c: [_sp_case(c, c.dtype(k)) for k in range(4)]),
        CheckSpec("zero_weights", "all-zero weights sample uniformly; zero-weight bins (searchsorted right=True)", 1.5, lambda c: [
            _sp_case(c, "float32", weights="torch.zeros(2, 4, dtype=torch.float32)", lead=[2], s=4, note="all-zero weights"),
            _sp_case(c, "float64", lead=[2], s=4, n=5, weights=ZERO_BINS.format(shape="2, 4", dt="float64", mask=[1.0, 1.0, 0.0, 0.0]),
                     note="the last two bins have zero weight"),
            _sp_case(c, "float64", lead=[2], s=4, n=5, weights="torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]], "
                     "dtype=torch.float64)", note="u lands exactly on a CDF step (searchsorted must use right=True)"),
            _sp_case(c, "float32", lead=[1], s=4, n=3, weights="torch.tensor([[2.0, 0.0, 2.0, 0.0]])",
                     note="alternate bins have zero weight"),
        ]),
        CheckSpec("random", "deterministic=False: the inverse CDF at u = torch.rand(..., n, generator=generator) (with "
                  "a generator, and with torch's global generator)", 2.0, lambda c: [
            _sp_case(c, "float64", lead=[2], s=4, n=12, det=False, repeat=True,
                     weights="torch.tensor([[4.0, 1.0, 0.0, 3.0], [0.5, 0.5, 2.0, 1.0]], dtype=torch.float64)"),
            _sp_case(c, "float32", det=False, repeat=True),
            _sp_case(c, "float64", det="global"),
        ], _sp_random),
        check("defaults", "deterministic and generator left out: random samples from torch's global generator", 0.5,
              lambda c: [_sp_case(c, c.dtype(k), det="default") for k in range(2)], _sp_random),
        check("layout", "bins and weights without leading dims ([S + 1], [S]); non-contiguous inputs; S = 1", 0.5,
              lambda c: [
            _sp_case(c, "float64", lead=[], note="float64, one ray: bins [S + 1] and weights [S]"),
            _sp_case(c, "float32", lead=[3], layout={0: "strided", 1: "strided"},
                     note="float32, non-contiguous bins and weights (slices with a step)"),
            _sp_case(c, "float64", lead=[2], s=1, layout={1: "strided"}, note="float64, S = 1 (one bin), non-contiguous "
                     "weights"),
        ]),
        CheckSpec("detached", "the samples are detached from bins and weights", 1.0, lambda c: [
            _sp_case(c, "float64", grad_wrt=(0, 1), meta={"detached": True}, note="bins and weights that require grad"),
        ], judges.stop_gradient, auxiliary=True),
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
        mistake("right_false", "sample_pdf with searchsorted(..., right=False): the contract uses right=True",
                _sp_variant, right=False),
        mistake("no_padding", "weights used without the 1e-5 padding: pdf = (w + 1e-5) / sum(w + 1e-5)",
                _sp_variant, pad=0.0),
    ],
)

SPECS = [SAMPLE_STRATIFIED, SAMPLE_PDF]
