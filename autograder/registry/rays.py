"""Hidden checks for assignment a4_rendering, part 1: get_rays, sample_stratified, positional_encoding.

Known mistakes: rays through pixel centres (+0.5) or with y not flipped, the rotation applied transposed, rows
and columns swapped, a camera looking down +z; stratified samples at the left or right bin edges or on
linspace(near, far, S), perturbation ignored or not drawn from the generator; positional encodings without pi,
with all sines before all cosines, cos before sin, frequencies from 2^1, or coordinate-major order.

Reference: Mildenhall et al., "NeRF", ECCV 2020 (rays, stratified sampling, eq. 4 positional encoding).
"""
from __future__ import annotations

import math

import torch

import course_lib

from . import judges
from .build import dtype_check, errors_check, mutation_check, randn
from .core import Cases, CheckSpec, FunctionSpec, Mistake

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ get_rays
def _c2w(dt: str, rows: int) -> str:
    rot = f"torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0].to(torch.{dt})"
    base = f"torch.cat([{rot}, {randn([3, 1], dt)}], 1)"
    return base if rows == 3 else f"torch.cat([{base}, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.{dt})], 0)"


def _gr_case(c: Cases, dt: str, *, h=None, w=None, f=None, rows=None, note="", **opt) -> None:
    h, w = h or c.randint(2, 7), w or c.randint(2, 7)
    f = f if f is not None else round(c.rng.uniform(1.0, 20.0), 3)
    rows = rows or c.choice([3, 4])
    c.add(f"c2w = {_c2w(dt, rows)}", [str(h), str(w), repr(f), "c2w"],
          note=note or f"{dt}, H={h}, W={w}, focal={f}, c2w {rows}x4", **opt)


def _rays_variant(h, w, f, c2w, *, half=0.0, flip_y=True, transpose_rot=False, z=-1.0, swap_ij=False):
    kw = dict(dtype=c2w.dtype, device=c2w.device)
    x = (torch.arange(w, **kw) + half - w / 2) / f
    y = (torch.arange(h, **kw) + half - h / 2) / f
    y = -y if flip_y else y
    dirs = torch.stack([x.expand(h, w), y[:, None].expand(h, w), torch.full((h, w), z, **kw)], -1)   # [H, W, 3]
    rot = c2w[:3, :3]
    rays_d = dirs @ (rot if transpose_rot else rot.T)
    rays_o = c2w[:3, 3].expand(h, w, 3)
    if swap_ij:
        return rays_o.transpose(0, 1), rays_d.transpose(0, 1)
    return rays_o, rays_d


GET_RAYS = FunctionSpec(
    name="get_rays", assignment="a4_rendering", points=10.0, params=("height", "width", "focal", "c2w"),
    reference=course_lib.get_rays,
    checks=[
        CheckSpec("values", "dir = ((i - W/2)/f, -(j - H/2)/f, -1) rotated by c2w, origin c2w[:3, 3]", 4.0,
                  lambda c: [_gr_case(c, c.dtype(k), rows=(3, 4)[k // 2]) for k in range(4)]),
        CheckSpec("analytic", "identity camera, 2x2 image, focal 1: directions (-1, 1, -1), (0, 1, -1), ...", 1.5, lambda c: [
            c.add("c2w = torch.eye(4, dtype=torch.float64)", ["2", "2", "1.0", "c2w"], note="identity c2w, H=W=2, focal=1"),
            c.add("c2w = torch.eye(4, dtype=torch.float64)[:3]", ["3", "2", "2.0", "c2w"], note="identity c2w [3, 4], H=3, W=2"),
        ]),
        CheckSpec("gradients", "gradients wrt c2w match the reference", 1.0,
                  lambda c: _gr_case(c, "float64", grad_wrt=(3,), grad=True), judges.gradients),
        dtype_check(lambda c, dt, dev: _gr_case(c, dt, note=f"{dt} on {dev}", device=dev), 1.0),
        mutation_check(lambda c: _gr_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add(f"c2w = {randn([3, 3], 'float32')}", ["4", "4", "2.0", "c2w"], note="c2w of shape [3, 3]", meta={"arg": "c2w"}),
            c.add(f"c2w = {randn([12], 'float32')}", ["4", "4", "2.0", "c2w"], note="c2w of shape [12]", meta={"arg": "c2w"}),
        ], 2.0),
    ],
    mistakes=[
        Mistake("pixel_centres", "rays through pixel centres (+0.5): the contract uses pixel corners, i - W/2",
                lambda *a: _rays_variant(*a, half=0.5)),
        Mistake("y_not_flipped", "y not flipped: image rows go down, camera y goes up: -(j - H/2) / focal",
                lambda *a: _rays_variant(*a, flip_y=False)),
        Mistake("rotation_transposed", "the rotation applied transposed: rays_d = c2w[:3, :3] @ d (i.e. d @ R.T)",
                lambda *a: _rays_variant(*a, transpose_rot=True)),
        Mistake("rows_columns_swapped", "rows and columns swapped (meshgrid indexing): outputs are [H, W, 3] with "
                "column i giving x", lambda *a: _rays_variant(*a, swap_ij=True)),
        Mistake("looks_down_plus_z", "a camera looking down +z: the NeRF/OpenGL camera looks down -z",
                lambda *a: _rays_variant(*a, z=1.0)),
    ],
)


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


SAMPLE_STRATIFIED = FunctionSpec(
    name="sample_stratified", assignment="a4_rendering", points=10.0,
    params=("rays_o", "rays_d", "near", "far", "n_samples", "perturb", "generator"), reference=course_lib.sample_stratified,
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
        Mistake("left_edges", "t at the left bin edges: with perturb=False t is the bin midpoint (lower + upper) / 2",
                lambda *a: _ss_variant(*a, where="left")),
        Mistake("right_edges", "t at the right bin edges instead of the midpoints", lambda *a: _ss_variant(*a, where="right")),
        Mistake("linspace_s", "t = linspace(near, far, S): the bins are linspace(near, far, S + 1), t their midpoints",
                lambda *a: _ss_variant(*a, where="linspace")),
    ],
)


# ------------------------------------------------------------------------------------------------ positional_encoding
def _pe_case(c: Cases, dt: str, *, lead=None, d=None, freqs=None, inc=None, note="", **opt) -> None:
    lead = lead or c.choice([[c.randint(1, 5)], [2, c.randint(1, 3)]])
    d, freqs = d or c.randint(1, 4), freqs if freqs is not None else c.randint(1, 6)
    inc = inc if inc is not None else c.choice([True, False])
    c.add(f"x = {randn(lead + [d], dt)}", ["x", str(freqs), str(inc)],
          note=note or f"{dt}, x {lead + [d]}, num_freqs={freqs}, include_input={inc}", **opt)


def _pe_variant(x, num_freqs, include_input=True, *, pi=True, order="pairs", start=0):
    freqs = [(2.0 ** (k + start)) * (math.pi if pi else 1.0) for k in range(num_freqs)]
    xf = x[..., None, :] * torch.tensor(freqs, dtype=x.dtype, device=x.device)[:, None]   # [..., L, D]
    sin, cos = torch.sin(xf), torch.cos(xf)
    if order == "pairs":
        feats = torch.stack([sin, cos], -2).flatten(-3)            # [..., L, 2, D]
    elif order == "cos_first":
        feats = torch.stack([cos, sin], -2).flatten(-3)
    elif order == "sins_first":
        feats = torch.cat([sin.flatten(-2), cos.flatten(-2)], -1)  # all sines, then all cosines
    else:                                                          # coordinate-major: [..., D, L, 2]
        feats = torch.stack([sin, cos], -1).transpose(-3, -2).flatten(-3)
    return torch.cat([x, feats], -1) if include_input else feats


POSITIONAL = FunctionSpec(
    name="positional_encoding", assignment="a4_rendering", points=10.0, params=("x", "num_freqs", "include_input"),
    reference=course_lib.positional_encoding,
    checks=[
        CheckSpec("values", "[x, sin(2^0 pi x), cos(2^0 pi x), ..., sin(2^(L-1) pi x), cos(2^(L-1) pi x)]", 4.0,
                  lambda c: [_pe_case(c, c.dtype(k), inc=bool(k % 3)) for k in range(4)]),
        CheckSpec("analytic", "x = 0.5 with L = 2: sin(pi/2) = 1, cos(pi/2) = 0, sin(pi) = 0, cos(pi) = -1", 1.5, lambda c: [
            c.add("x = torch.tensor([[0.0, 0.5]], dtype=torch.float64)", ["x", "2", "True"], note="x = [0, 0.5], L = 2"),
            c.add("x = torch.tensor([[0.25]], dtype=torch.float64)", ["x", "3", "False"], note="x = 0.25, L = 3, without x"),
            c.add(f"x = {randn([3, 2], 'float32')}", ["x", "0", "True"], note="L = 0: just x"),
        ]),
        CheckSpec("gradients", "gradients wrt x match the reference", 1.0,
                  lambda c: _pe_case(c, "float64", grad_wrt=(0,), grad=True), judges.gradients),
        dtype_check(lambda c, dt, dev: _pe_case(c, dt, note=f"{dt} on {dev}", device=dev), 1.0),
        mutation_check(lambda c: _pe_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add("x = torch.tensor(0.5)", ["x", "2", "True"], note="a 0-D x", meta={"arg": "x"}),
            c.add(f"x = {randn([2, 3], 'float32')}", ["x", "-1", "True"], note="num_freqs=-1", meta={"arg": "num_freqs"}),
        ], 2.0),
    ],
    mistakes=[
        Mistake("no_pi", "frequencies 2^k without pi: the lecture's encoding uses sin(2^k pi x)",
                lambda *a: _pe_variant(*a, pi=False)),
        Mistake("sins_first", "all sine blocks before all cosine blocks: the order is sin, cos per frequency",
                lambda *a: _pe_variant(*a, order="sins_first")),
        Mistake("cos_first", "cos before sin within each frequency", lambda *a: _pe_variant(*a, order="cos_first")),
        Mistake("freqs_from_2", "frequencies starting at 2^1: they start at 2^0", lambda *a: _pe_variant(*a, start=1)),
        Mistake("coordinate_major", "coordinate-major order: each term is a block of all D coordinates",
                lambda *a: _pe_variant(*a, order="coord")),
    ],
)

SPECS = [GET_RAYS, SAMPLE_STRATIFIED, POSITIONAL]
