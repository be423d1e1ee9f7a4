"""Hidden checks for course_lib.rendering.sampling (assignment a4_rendering): sample_stratified, sample_pdf.

Known mistakes: stratified samples at the left or right bin edges or at linspace(near, far, S); sample_pdf with
searchsorted(right=False) or without the 1e-5 padding, or a random mode that ignores the generator.

Reference: Mildenhall et al., "NeRF", ECCV 2020 (eq. 2 and section 5.2, hierarchical volume sampling).
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import dtype_check, errors_check, function_spec, mutation_check, rand, randn
from ..core import Cases, CheckSpec, mistake
from ..public import PublicCase, gen, rnd

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ sample_stratified
def _ss_case(c: Cases, dt: str, *, lead=None, s=None, near=None, far=None, perturb=False, note="", **opt) -> None:
    lead = lead or c.choice([[c.randint(1, 6)], [2, c.randint(1, 3)]])
    s = s or c.randint(1, 12)
    near = near if near is not None else round(c.rng.uniform(0.0, 2.0), 3)
    far = far if far is not None else round(near + c.rng.uniform(0.5, 4.0), 3)
    gen = f"\ngen = GEN({c.randint(0, 2**31 - 1)})" if perturb else ""
    c.add(f"rays_o = {randn(lead + [3], dt)}\nrays_d = {randn(lead + [3], dt)}{gen}",
          ["rays_o", "rays_d", repr(near), repr(far), str(s), str(perturb), "gen" if perturb else "None"],
          note=note or f"{dt}, rays {lead}, S={s}, near={near}, far={far}, perturb={perturb}", **opt)


def _ss_variant(o, d, near, far, s, perturb=True, generator=None, *, where="mid"):
    edges = torch.linspace(near, far, s + 1, dtype=o.dtype, device=o.device)
    t = {"mid": (edges[:-1] + edges[1:]) / 2, "left": edges[:-1], "right": edges[1:],
         "linspace": torch.linspace(near, far, s, dtype=o.dtype, device=o.device)}[where]
    t = t.expand(*o.shape[:-1], s)
    return o[..., None, :] + t[..., :, None] * d[..., None, :], t


def _perturbed(ctx: judges.Context) -> judges.Verdict:
    """perturb=True: one sample inside each bin, points on the rays, reproducible from the generator."""
    bad = judges.describe_failure(ctx)
    if bad:
        return judges.Verdict(0.0, bad)
    out = ctx.reply.get("out") or {}
    ref_points, ref_t = ctx.m.ref_out
    items = out.get("items") if out.get("t") in ("tuple", "list") else None
    if not items or len(items) != 2 or any(i.get("t") != "tensor" for i in items):
        return judges.Verdict(0.0, "expected a tuple (points, t_vals) of tensors")
    points, t = items[0]["data"].to(torch.float64), items[1]["data"].to(torch.float64)
    if list(t.shape) != list(ref_t.shape) or list(points.shape) != list(ref_points.shape):
        return judges.Verdict(0.0, f"expected shapes {list(ref_points.shape)} and {list(ref_t.shape)}, got "
                                   f"{list(points.shape)} and {list(t.shape)}")
    o, d, near, far, s = ctx.m.args[:5]
    edges = torch.linspace(near, far, s + 1, dtype=torch.float64)
    slack = 1e-5 * max(1.0, abs(far))
    if not bool(((t >= edges[:-1] - slack) & (t <= edges[1:] + slack)).all()):
        return judges.Verdict(0.0, "with perturb=True every t must lie inside its own bin [edge_i, edge_(i+1)]")
    if bool(torch.allclose(t, ((edges[:-1] + edges[1:]) / 2).expand_as(t), rtol=0, atol=1e-9)):
        return judges.Verdict(0.0, "perturb=True returned the bin midpoints: draw one uniform sample per bin",
                              "perturb_ignored")
    expect = o.to(torch.float64)[..., None, :] + t[..., :, None] * d.to(torch.float64)[..., None, :]
    if not torch.allclose(points, expect, rtol=1e-4, atol=1e-4):
        return judges.Verdict(0.0, "points must equal rays_o + t_vals * rays_d for the returned t_vals")
    again = ctx.reply.get("out2") or {}
    t2 = again.get("items", [{}, {}])[1].get("data") if again.get("t") in ("tuple", "list") else None
    if t2 is None or not torch.equal(t2.to(torch.float64), t):
        return judges.Verdict(0.0, "two calls with generators seeded alike gave different samples: draw the uniform "
                                   "numbers with torch.rand(..., generator=generator)", "generator_ignored")
    return judges.Verdict(1.0)


SAMPLE_STRATIFIED = function_spec(
    "sample_stratified",
    public=[
        PublicCase("4 rays, S=5, perturb=False", lambda: (rnd(4, 3, seed=34), rnd(4, 3, seed=35), 2.0, 6.0, 5, False)),
        PublicCase("near >= far raises ValueError", lambda: (torch.zeros(1, 3), torch.ones(1, 3), 2.0, 1.0, 4, False), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "perturb=False: t at the bin midpoints of linspace(near, far, S + 1), points = o + t d", 3.5,
                  lambda c: [_ss_case(c, c.dtype(k)) for k in range(4)]),
        CheckSpec("perturbed", "perturb=True: one uniform sample per bin, drawn from the generator", 2.0,
                  lambda c: [_ss_case(c, c.dtype(k), perturb=True, repeat=True) for k in range(2)], _perturbed),
        CheckSpec("edge", "one sample per ray; a single ray", 1.0,
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
        ], 1.5),
    ],
    mistakes=[
        mistake("left_edges", "t at the left bin edges: with perturb=False t is the bin midpoint (lower + upper) / 2",
                _ss_variant, where="left"),
        mistake("right_edges", "t at the right bin edges instead of the midpoints", _ss_variant, where="right"),
        mistake("linspace_s", "t = linspace(near, far, S): the bins are linspace(near, far, S + 1), t their midpoints",
                _ss_variant, where="linspace"),
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

SAMPLE_PDF = function_spec(
    "sample_pdf",
    public=[
        PublicCase("deterministic, 2 rays, S=4, 6 samples", lambda: (torch.cumsum(torch.rand(2, 5, generator=gen(43), dtype=torch.float64) + 0.1, -1),
                                                               torch.rand(2, 4, generator=gen(44), dtype=torch.float64), 6, True)),
        PublicCase("all-zero weights (uniform pdf)", lambda: (torch.linspace(0, 1, 5)[None], torch.zeros(1, 4), 5, True)),
        PublicCase("mismatched bins raise ValueError", lambda: (torch.ones(2, 4), torch.ones(2, 4), 3, True), expect="raises"),
    ],
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
        mistake("right_false", "sample_pdf with searchsorted(..., right=False): the contract uses right=True",
                _sp_variant, right=False),
        mistake("no_padding", "weights used without the 1e-5 padding: pdf = (w + 1e-5) / sum(w + 1e-5)",
                _sp_variant, pad=0.0),
    ],
)

SPECS = [SAMPLE_STRATIFIED, SAMPLE_PDF]
