"""Hidden checks for course_lib.priors (assignment a5_priors): project_points, plucker_coordinates,
bilinear_sample_2d, batched_mlp.

Known mistakes: a projection without the y flip, with half-pixel offsets, with the depth sign or the rotation the
wrong way round, u and v swapped, the translation subtracted in camera space, the principal point swapped, the
Euclidean distance as depth; Pluecker coordinates with the moment reversed, the direction (or the moment)
unnormalised, the halves swapped, F.normalize's default dim; bilinear sampling with align_corners=False, x and y
swapped, nearest or top-left look-ups, the weights swapped, coordinates scaled by Wg, zero padding; a batched MLP
that reads W column-major or the bias first, puts all weights first, adds a ReLU after the last layer or none
between layers, or runs the first network for every row.

The errors checks (and anything else zeros of the right shape pass) count only for a function that gets some
random value case right (build.errors_check is auxiliary). Gradients wrt c2w are compared along rotations only, where R^T, R^-1 and
a linear solve
agree (:func:`_as_rotation`).

References: Yu et al., "pixelNeRF", CVPR 2021 (projection and bilinear look-up of pixel-aligned features);
Sitzmann et al., "Light Field Networks", NeurIPS 2021 (Pluecker coordinates, section 3.1); Ha, Dai, Le,
"HyperNetworks", 2016 (per-example MLP weights).
"""
from __future__ import annotations

import dataclasses

import torch

from . import judges
from .build import check, dtype_check, errors_check, function_spec, mutation_check, randn
from .core import Cases, CheckSpec, PublicCase, mistake
from .properties import part

__all__ = ["SPECS"]


def _uniform(shape, dt: str, low: float, high: float) -> str:
    """Recipe text for a uniform draw in [low, high)."""
    dims = ", ".join(str(int(s)) for s in shape)
    shift = f" + {low!r}" if low >= 0 else f" - {-low!r}"
    return f"torch.rand({dims}, generator=g, dtype=torch.{dt}) * {high - low!r}{shift}"


def _tuple_items(ctx: judges.Context, n: int):
    out = ctx.reply.get("out")
    items = out.get("items") if isinstance(out, dict) and out.get("t") in ("tuple", "list") else None
    if not isinstance(items, list) or out.get("n") != n or len(items) != n:
        return None
    return items


# ------------------------------------------------------------------------------------------------ project_points
def _pose(dt: str, rows: int, centre: float) -> str:
    """Recipe lines: a proper rotation ``rot`` (float64), a camera centre and ``c2w`` ([3, 4] or [4, 4], dt)."""
    top = "torch.cat([rot, centre[:, None]], 1)"
    full = top if rows == 3 else f"torch.cat([{top}, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)], 0)"
    return (f"q = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0]\n"
            f"rot = q * torch.linalg.det(q).sign()\n"
            f"centre = {randn([3], 'float64', centre) if centre else 'torch.zeros(3, dtype=torch.float64)'}\n"
            f"c2w = {full}.to(torch.{dt})")


def _pp_case(c: Cases, dt: str, *, lead=None, rows=None, near=0.5, far=4.5, centre=1.0, f=None, h=None, w=None,
             behind=False, note="", **opt) -> None:
    lead = lead if lead is not None else c.choice([[c.randint(1, 8)], [2, c.randint(1, 4)]])
    rows = rows or c.choice([3, 4])
    f = f if f is not None else round(c.rng.uniform(1.0, 40.0), 3)
    h, w = h or c.randint(1, 48), w or c.randint(1, 48)
    z = _uniform(lead + [1], "float64", near, far)
    if behind:                                                   # depth of either sign
        z = f"({z}) * (torch.randint(0, 2, {(*lead, 1)!r}, generator=g) * 2 - 1)"
    c.add(f"{_pose(dt, rows, centre)}\nz = {z}\nxy = ({_uniform(lead + [2], 'float64', -0.6, 0.6)}) * z.abs()\n"
          f"points = (torch.cat([xy, -z], -1) @ rot.T + centre).to(torch.{dt})",
          ["points", "c2w", repr(f), str(h), str(w)],
          note=note or f"{dt}, points {lead + [3]}, c2w {rows}x4, focal={f}, H={h}, W={w}, depth in [{near}, {far}]"
          + (" (either sign)" if behind else ""), **opt)


def _pp_round_trip(c: Cases, dt: str, h: int, w: int, f: float, t: float) -> None:
    """Points on get_rays' rays (built inline) at distance t: they must land on their own pixel (i, j)."""
    dirs = (f"torch.stack(torch.meshgrid((torch.arange({w}, dtype=torch.float64) - {w / 2!r}) / {f!r}, "
            f"-(torch.arange({h}, dtype=torch.float64) - {h / 2!r}) / {f!r}, indexing='xy') "
            f"+ (torch.full(({h}, {w}), -1.0, dtype=torch.float64),), -1)")
    c.add(f"{_pose(dt, 3, 1.0)}\ndirs = {dirs}\npoints = (centre + {t!r} * dirs @ rot.T).to(torch.{dt})",
          ["points", "c2w", repr(f), str(h), str(w)],
          note=f"{dt}: rays_o + {t} * rays_d[j, i] of get_rays({h}, {w}, {f}, c2w) projects to uv = (i, j), "
               f"depth = {t}")


def _pp_variant(points, c2w, focal, height, width, *, flip_y=True, half=0.0, depth_sign=1.0, transpose=False,
                swap_uv=False, translate_first=True, principal="wh", euclid=False):
    rot, origin = c2w[:3, :3], c2w[:3, 3]
    r = rot.T if transpose else rot                              # (p - o) @ R = R^T (p - o)
    cam = (points - origin) @ r if translate_first else points @ r - origin
    depth = -cam[..., 2] * depth_sign
    cx, cy = (width / 2, height / 2) if principal == "wh" else (height / 2, width / 2)
    u = focal * cam[..., 0] / depth + cx + half
    v = (-1.0 if flip_y else 1.0) * focal * cam[..., 1] / depth + cy + half
    uv = torch.stack([v, u] if swap_uv else [u, v], -1)
    return uv, (cam.norm(dim=-1) if euclid else depth)


def _front_only(ctx: judges.Context) -> judges.Verdict:
    """depth (= -z_c, of either sign) everywhere; uv only where the point is in front of the camera."""
    bad = judges.describe_failure(ctx)
    if bad:
        return judges.Verdict(0.0, bad)
    items = _tuple_items(ctx, 2)
    if items is None or any(not isinstance(i, dict) or i.get("t") != "tensor" or not i.get("exact", False)
                            for i in items):
        return judges.Verdict(0.0, "expected a tuple (uv, depth) of two plain tensors")
    ref_uv, ref_depth = ctx.m.ref_out
    problems = judges.compare(items[1], ref_depth, ctx.spec, "depth")
    if problems:
        return judges.Verdict(0.0, problems[0] + ": depth is -z_c for every point, negative behind the camera "
                                                 "(no abs, no clamping, no masking)")
    uv = items[0]["data"]
    if list(uv.shape) != list(ref_uv.shape):
        return judges.Verdict(0.0, f"uv: expected shape {list(ref_uv.shape)}, got {list(uv.shape)}")
    front = ref_depth > 0
    problems = judges.compare({"t": "tensor", "data": uv[front]}, ref_uv[front], ctx.spec, "uv (points in front)")
    return judges.Verdict(0.0, problems[0]) if problems else judges.Verdict(1.0)


def _as_rotation(grad: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """A c2w gradient as [9 + 3]: the skew part of R^T dL/dR (the derivative along rotations R exp(W)) and dL/do.

    R^T, R^-1 and torch.linalg.solve agree on rotations but not off them, so their gradients differ only in the
    directions that leave the rotations; the contract's c2w holds a rotation, so only these parts are graded."""
    r, g = c2w[:3, :3].to(torch.float64), grad.to(torch.float64)
    a = r.T @ g[:3, :3]
    return torch.cat([((a - a.T) / 2).reshape(-1), g[:3, 3]]).to(grad.dtype)


def _pose_gradients(ctx: judges.Context) -> judges.Verdict:
    """judges.gradients, with the gradients wrt c2w (both sides) compared through :func:`_as_rotation`."""
    reply, wrt = ctx.reply, list(ctx.case.grad_wrt)
    grads = reply.get("grads") if isinstance(reply, dict) else None
    if 1 not in wrt or not isinstance(grads, dict) or not isinstance(grads.get("grads"), list) \
            or len(grads["grads"]) != len(wrt) or ctx.m.ref_grads is None or len(ctx.m.ref_grads) != len(wrt):
        return judges.gradients(ctx)
    k, c2w = wrt.index(1), ctx.m.args[1]
    got, want = list(grads["grads"]), list(ctx.m.ref_grads)
    g = got[k]
    if isinstance(g, dict) and isinstance(g.get("data"), torch.Tensor) and list(g["data"].shape) == list(c2w.shape):
        got[k] = dict(g, data=_as_rotation(g["data"], c2w))
    if want[k] is not None:
        want[k] = _as_rotation(want[k], c2w)
    outcome = dataclasses.replace(ctx.outcome, reply=dict(reply, grads=dict(grads, grads=got)))
    return judges.gradients(judges.Context(ctx.spec, ctx.case, dataclasses.replace(ctx.m, ref_grads=want), outcome))


def _pp_errors(c: Cases) -> None:
    pts, eye = randn([4, 3], "float32"), "torch.eye(4, dtype=torch.float32)"
    for points, c2w, focal, h, w, note, arg in [
        (randn([4, 2], "float32"), eye, "2.0", "4", "4", "points of shape [4, 2]", "points"),
        (pts, "torch.eye(3, dtype=torch.float32)", "2.0", "4", "4", "c2w of shape [3, 3]", "c2w"),
        (pts, "torch.eye(4, dtype=torch.float64)", "2.0", "4", "4", "float32 points with a float64 c2w", "c2w"),
        (pts, eye, "0.0", "4", "4", "focal=0", "focal"),
        (pts, eye, "-2.0", "4", "4", "focal=-2", "focal"),
        (pts, eye, "2.0", "0", "4", "height=0", "height"),
        (pts, eye, "2.0", "4", "2.5", "width=2.5", "width"),
    ]:
        c.add(f"points = {points}\nc2w = {c2w}", ["points", "c2w", focal, h, w], note=note, meta={"arg": arg})


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _public_pose(seed: int, dtype=torch.float64, rows: int = 4) -> torch.Tensor:
    q = torch.linalg.qr(torch.randn(3, 3, generator=_g(seed), dtype=torch.float64))[0]
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = q * torch.linalg.det(q).sign()
    c2w[:3, 3] = 5.0 * c2w[:3, 2]                                # 5 units back along the camera's +z: looks at 0
    return c2w[:rows].to(dtype)


PROJECT_POINTS = function_spec(
    "project_points",
    checks=[
        CheckSpec("values", "uv: x_c = R^T (p - o), u = f x_c / depth + W/2, v = -f y_c / depth + H/2 (and keeps the "
                  "autograd graph)", 2.5,
                  lambda c: [_pp_case(c, c.dtype(k), rows=(3, 4)[k // 2], grad_wrt=(0, 1)) for k in range(4)],
                  part(0, "uv")),
        check("depth", "depth = -z_c", 0.5, lambda c: [_pp_case(c, c.dtype(k)) for k in range(2)], part(1, "depth")),
        CheckSpec("shapes", "no leading dims ([3] -> [2] and []), size-1 dims, a 1x1 image, non-contiguous inputs", 1.0,
                  lambda c: [
            _pp_case(c, "float64", lead=[], note="points of shape [3]: uv [2], depth [] (a 0-d tensor)"),
            _pp_case(c, "float32", lead=[1, 1], rows=3, note="points of shape [1, 1, 3]"),
            _pp_case(c, "float64", lead=[2, 1, 3], h=1, w=1, note="points [2, 1, 3, 3], H = W = 1"),
            _pp_case(c, "float64", lead=[4, 2], rows=4, layout={0: "transposed", 1: "transposed"},
                     note="float64, points [4, 2, 3] and c2w stored transposed (non-contiguous)"),
            _pp_case(c, "float32", lead=[5], rows=3, layout={0: "strided", 1: "strided"},
                     note="float32, non-contiguous points and c2w (slices with a step)"),
        ]),
        CheckSpec("analytic", "get_rays inverted: rays_o + t rays_d[j, i] lands on (i, j) at depth t", 1.0, lambda c: [
            _pp_round_trip(c, "float64", 3, 5, 2.5, 0.7),
            _pp_round_trip(c, "float32", 4, 2, 7.0, 3.0),
        ]),
        CheckSpec("stability", "finite and correct at depth 1e-3", 1.0, lambda c: [
            _pp_case(c, "float64", near=1e-3, far=2e-3, f=500.0, note="float64, depth in [1e-3, 2e-3], focal 500"),
            _pp_case(c, "float32", near=1e-3, far=2e-3, centre=0.0,
                     note="float32, camera at the origin, depth in [1e-3, 2e-3]"),
        ]),
        CheckSpec("behind", "no masking: depth = -z_c is negative behind the camera", 0.5, lambda c: [
            _pp_case(c, "float64", lead=[8], behind=True)], _front_only),
        CheckSpec("gradients", "gradients wrt points and c2w match (c2w's rotation block as a rotation; finite at depth "
                  "1e-3)", 1.5, lambda c: [
            _pp_case(c, "float64", rows=4, grad_wrt=(0, 1), grad=True),
            _pp_case(c, "float64", rows=3, near=1e-3, far=2e-3, grad_wrt=(0, 1), grad=True,
                     note="float64, depth in [1e-3, 2e-3]"),
        ], _pose_gradients),
        dtype_check(lambda c, dt, dev: _pp_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _pp_case(c, "float64", return_inputs=True)),
        errors_check(_pp_errors, 1.0),
    ],
    mistakes=[
        mistake("y_not_flipped", "a projection without the y flip: image rows go down while camera y goes up, "
                "v = -focal * y_c / depth + H/2", _pp_variant, flip_y=False),
        mistake("pixel_centres", "the inverse of rays through pixel centres (0.5 subtracted from u and v): the "
                "contract's pixels are corners, as in get_rays: u = focal * x_c / depth + W/2", _pp_variant, half=-0.5),
        mistake("half_pixel_added", "a half pixel added: u = focal * x_c / depth + W/2, no + 0.5 (pixel corners)",
                _pp_variant, half=0.5),
        mistake("depth_sign", "depth with the wrong sign: the camera looks down -z, so depth = -z_c (positive in "
                "front of the camera)", _pp_variant, depth_sign=-1.0),
        mistake("rotation_transposed", "the rotation applied the wrong way: world to camera is R^T (p - o), i.e. "
                "(p - o) @ R for row vectors, not (p - o) @ R.T", _pp_variant, transpose=True),
        mistake("uv_swapped", "u and v swapped: uv[..., 0] is the column u (from x), uv[..., 1] the row v",
                _pp_variant, swap_uv=True),
        mistake("translation_after_rotation", "the camera centre subtracted after the rotation: x_c = R^T (p - o) "
                "subtracts o first (R^T p - o is wrong)", _pp_variant, translate_first=False),
        mistake("principal_point_swapped", "the principal point swapped: it is (W/2, H/2), u gets W/2",
                _pp_variant, principal="hw"),
        mistake("euclidean_depth", "the distance ||p - o|| returned as depth: depth is -z_c, the distance along "
                "the optical axis", _pp_variant, euclid=True),
    ],
    public=[
        PublicCase("8 points in front of a rotated camera, c2w [4, 4] (float64)",
                   lambda: (torch.randn(8, 3, generator=_g(501), dtype=torch.float64), _public_pose(502), 20.0, 32, 48)),
        PublicCase("a point on the optical axis lands on (W/2, H/2) at depth 2",
                   lambda: (torch.tensor([0.0, 0.0, -2.0], dtype=torch.float64), torch.eye(4, dtype=torch.float64),
                            3.0, 4, 6)),
        PublicCase("points [2, 3, 3] (non-contiguous), c2w [3, 4] (float32)",
                   lambda: (torch.randn(3, 2, 3, generator=_g(503)).transpose(0, 1), _public_pose(504, torch.float32, 3),
                            8.0, 10, 7)),
        PublicCase("focal = 0 raises ValueError", lambda: (torch.zeros(2, 3), torch.eye(4), 0.0, 4, 4), "raises"),
    ],
)


# ------------------------------------------------------------------------------------------------ plucker
def _pl_case(c: Cases, dt: str, *, lead_o=None, lead_d=None, scale=None, note="", **opt) -> None:
    if lead_o is None:
        lead_o = c.choice([[c.randint(1, 8)], [2, c.randint(1, 4)]])
    lead_d = lead_o if lead_d is None else lead_d
    scale = scale if scale is not None else c.choice([1.0, 3.0, 10.0])
    c.add(f"rays_o = {randn(lead_o + [3], dt, scale)}\n"
          f"rays_d = {randn(lead_d + [3], dt)} * torch.exp({randn(lead_d + [1], dt, 1.5)})",
          ["rays_o", "rays_d"],
          note=note or f"{dt}, rays_o {lead_o + [3]} (scale {scale}), rays_d {lead_d + [3]} of lengths ~e^(+-3)",
          **opt)


def _pl_variant(rays_o, rays_d, *, normalise="yes", moment="od", order="dm"):
    if normalise == "yes":
        d = rays_d / torch.linalg.vector_norm(rays_d, dim=-1, keepdim=True)
    elif normalise == "default_dim":                             # F.normalize's default dim=1
        d = rays_d / torch.linalg.vector_norm(rays_d, dim=1, keepdim=True)
    else:
        d = rays_d
    shape = torch.broadcast_shapes(rays_o.shape, rays_d.shape)
    o, d = rays_o.expand(shape), d.expand(shape)
    src = rays_d.expand(shape) if moment == "o_raw" else d
    m = torch.linalg.cross(src, o, dim=-1) if moment == "do" else torch.linalg.cross(o, src, dim=-1)
    return torch.cat([m, d] if order == "md" else [d, m], -1)


def _pl_analytic(c: Cases) -> None:
    c.add("rays_o = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)\n"
          "rays_d = torch.tensor([[0.0, 0.0, 2.0], [3.0, 0.0, 0.0]], dtype=torch.float64)", ["rays_o", "rays_d"],
          note="a ray along +z through (1, 0, 0): d = (0, 0, 1), m = (0, -1, 0); along +x through (0, 2, 0): "
               "m = (0, 0, -2)")
    c.add(f"rays_o = {randn([5, 3], 'float64', 3.0)}\nrays_d = {randn([5, 3], 'float64')}\n"
          f"s = {randn([5, 1], 'float64', 10.0)}", ["rays_o + s * rays_d", "rays_d * 7.5"],
          note="the origin slid along its ray and the direction scaled by 7.5: the same code as (rays_o, rays_d)")
    c.add(f"rays_o = {randn([4, 3], 'float64', 2.0)}\nrays_d = {randn([4, 3], 'float64')}", ["rays_o", "-0.5 * rays_d"],
          note="a direction scaled by -0.5: the opposite orientation flips d and m")


def _pl_errors(c: Cases) -> None:
    for o, d, note, arg in [
        (randn([4, 2], "float32"), randn([4, 3], "float32"), "rays_o of shape [4, 2]", "rays_o"),
        (randn([4, 3], "float32"), randn([4, 4], "float32"), "rays_d of shape [4, 4]", "rays_d"),
        (randn([4, 3], "float32"), randn([4, 3], "float32") + " * torch.tensor([[1.0], [1.0], [0.0], [1.0]])",
         "a zero-length direction (row 2)", "rays_d"),
        (randn([4, 3], "float32"), randn([5, 3], "float32"), "leading dims [4] and [5] do not broadcast", "rays_d"),
        (randn([4, 3], "float32"), randn([4, 3], "float64"), "float32 rays_o with float64 rays_d", "rays_d"),
    ]:
        c.add(f"rays_o = {o}\nrays_d = {d}", ["rays_o", "rays_d"], note=note, meta={"arg": arg})


PLUCKER = function_spec(
    "plucker_coordinates",
    checks=[
        CheckSpec("values", "d = rays_d / ||rays_d||, m = rays_o x d, output cat([d, m], -1) (and keeps the autograd "
                  "graph)", 3.0, lambda c: [_pl_case(c, c.dtype(k), lead_o=[2, c.randint(1, 4)] if k == 3 else None,
                                                     grad_wrt=(0, 1)) for k in range(4)]),
        CheckSpec("broadcast", "leading dims broadcast (one origin for many rays); no leading dims; size-1 dims; "
                  "non-contiguous rays", 1.0, lambda c: [
            _pl_case(c, "float32", lead_o=[], lead_d=[2, 3], note="one origin [3] for rays_d [2, 3, 3]"),
            _pl_case(c, "float64", lead_o=[4, 1], lead_d=[3], note="rays_o [4, 1, 3] with rays_d [3, 3]: [4, 3, 6]"),
            _pl_case(c, "float64", lead_o=[3], lead_d=[], note="rays_o [3, 3] with one direction [3]"),
            _pl_case(c, "float32", lead_o=[], note="one ray: rays_o [3] and rays_d [3] give [6]"),
            _pl_case(c, "float64", lead_o=[2, 4], layout={0: "transposed", 1: "strided"},
                     note="float64, rays_o stored transposed and rays_d a slice with a step (non-contiguous)"),
        ]),
        CheckSpec("analytic", "axis-aligned rays; invariant to sliding the origin and to scaling d by c > 0", 1.0,
                  _pl_analytic),
        CheckSpec("stability", "finite and correct for origins up to 1e3", 1.5, lambda c: [
            _pl_case(c, "float64", scale=1e3 / 3, note="float64, origins ~ 1e3"),
            _pl_case(c, "float32", scale=1e3 / 3, note="float32, origins ~ 1e3"),
        ]),
        CheckSpec("gradients", "gradients wrt rays_o and rays_d match (broadcast origin included)", 1.5, lambda c: [
            _pl_case(c, "float64", grad_wrt=(0, 1), grad=True),
            _pl_case(c, "float64", lead_o=[], lead_d=[5], grad_wrt=(0, 1), grad=True, note="one origin for 5 rays"),
        ], judges.gradients),
        dtype_check(lambda c, dt, dev: _pl_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _pl_case(c, "float64", return_inputs=True)),
        errors_check(_pl_errors, 1.0),
    ],
    mistakes=[
        mistake("moment_reversed", "the moment reversed: m = rays_o x d (torch.linalg.cross(o, d)), not d x o",
                _pl_variant, moment="do"),
        mistake("direction_unnormalised", "the direction not normalised: d = rays_d / ||rays_d||",
                _pl_variant, normalise="no"),
        mistake("moment_unnormalised", "the moment taken with the raw direction: m = rays_o x d with the unit d",
                _pl_variant, moment="o_raw"),
        mistake("halves_swapped", "the halves swapped: the output is cat([d, m], -1), direction first",
                _pl_variant, order="md"),
        mistake("normalize_default_dim", "the direction normalised over dim 1 (F.normalize's default): "
                "normalise over the last dim (dim=-1)", _pl_variant, normalise="default_dim"),
    ],
    public=[
        PublicCase("5 rays (float64)", lambda: (torch.randn(5, 3, generator=_g(511), dtype=torch.float64) * 3,
                                                torch.randn(5, 3, generator=_g(512), dtype=torch.float64))),
        PublicCase("a ray along +z through (1, 0, 0): [0, 0, 1, 0, -1, 0]",
                   lambda: (torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 2.0]))),
        PublicCase("one origin [3] for rays [2, 4, 3] (broadcast, float32)",
                   lambda: (torch.randn(3, generator=_g(513)), torch.randn(2, 4, 3, generator=_g(514)))),
        PublicCase("a zero-length direction raises ValueError",
                   lambda: (torch.zeros(2, 3), torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])), "raises"),
    ],
)


# ------------------------------------------------------------------------------------------------ bilinear_sample_2d
def _bs_case(c: Cases, dt: str, *, b=None, ch=None, hg=None, wg=None, p=None, low=-1.0, high=1.0, coords=None,
             note="", **opt) -> None:
    b, ch, p = b or c.randint(1, 3), ch or c.randint(1, 4), p or c.randint(1, 10)
    hg, wg = hg or c.randint(2, 7), wg or c.randint(2, 7)
    c.add(f"grid = {randn([b, ch, hg, wg], dt)}\ncoords = {coords or _uniform([b, p, 2], dt, low, high)}",
          ["grid", "coords"], note=note or f"{dt}, grid [{b}, {ch}, {hg}, {wg}], {p} points in [{low}, {high}]^2", **opt)


def _bs_variant(grid, coords, *, corners="aligned", swap_xy=False, mode="bilinear", padding="border",
                flip_weights=False):
    b, _, hg, wg = grid.shape
    xy = coords.flip(-1) if swap_xy else coords
    x, y = xy[..., 0], xy[..., 1]
    if corners == "aligned":                                     # align_corners=True: -1 and 1 are vertices
        fx, fy = (x + 1) / 2 * (wg - 1), (y + 1) / 2 * (hg - 1)
    elif corners == "half":                                      # align_corners=False: pixel-area convention
        fx, fy = ((x + 1) * wg - 1) / 2, ((y + 1) * hg - 1) / 2
    else:                                                        # scaled by the size instead of size - 1
        fx, fy = (x + 1) / 2 * wg, (y + 1) / 2 * hg
    if padding == "border":
        fx, fy = fx.clamp(0, wg - 1), fy.clamp(0, hg - 1)
    feats = grid.permute(0, 2, 3, 1)                             # [B, Hg, Wg, C]
    bidx = torch.arange(b, device=grid.device)[:, None]

    def tap(yi, xi):                                             # [B, P, C]; zero outside the grid for "zeros"
        val = feats[bidx, yi.clamp(0, hg - 1).long(), xi.clamp(0, wg - 1).long()]
        if padding == "zeros":
            inside = (xi >= 0) & (xi <= wg - 1) & (yi >= 0) & (yi <= hg - 1)
            val = val * inside.unsqueeze(-1).to(val.dtype)
        return val

    if mode == "nearest":
        return tap(torch.round(fy), torch.round(fx))
    x0, y0 = fx.floor(), fy.floor()
    if mode == "floor":
        return tap(y0, x0)
    ax, ay = (fx - x0).unsqueeze(-1), (fy - y0).unsqueeze(-1)
    if flip_weights:
        ax, ay = 1 - ax, 1 - ay
    top = (1 - ax) * tap(y0, x0) + ax * tap(y0, x0 + 1)
    bottom = (1 - ax) * tap(y0 + 1, x0) + ax * tap(y0 + 1, x0 + 1)
    return (1 - ay) * top + ay * bottom


NAN = ("torch.tensor([[[0.25, -0.5], [float('nan'), 0.5], [1.0, -1.0]], [[-0.75, 0.0], [0.5, 0.5], "
       "[0.1, float('nan')]]], dtype=torch.{dt})")
BORDER = ("torch.tensor([[[-float('inf'), 0.3], [float('inf'), -float('inf')], [1.0, 1.0], [-1.0, -1.0], "
          "[1e30, -1e30], [1.0, -0.25], [-0.5, 1.0]]], dtype=torch.{dt})")
LINEAR = ("(0.5 * torch.arange({w}, dtype=torch.float64) - 1.5 * torch.arange({h}, dtype=torch.float64)[:, None] "
          "+ 0.25).repeat(2, 3, 1, 1)")
VERTEX = ("torch.cat([torch.randint(0, {w}, (2, 6, 1), generator=g).double() * (2 / {w1}) - 1, "
          "torch.randint(0, {h}, (2, 6, 1), generator=g).double() * (2 / {h1}) - 1], -1)")


def _bs_analytic(c: Cases) -> None:
    c.add(f"grid = {LINEAR.format(w=5, h=3)}\ncoords = {_uniform([2, 7, 2], 'float64', -1.0, 1.0)}", ["grid", "coords"],
          note="a grid linear in (column, row), 3x5: bilinear interpolation reproduces it exactly, "
               "out = 0.5 fx - 1.5 fy + 0.25")
    c.add(f"grid = {randn([2, 3, 4, 6], 'float64')}\ncoords = {VERTEX.format(w=6, w1=5, h=4, h1=3)}", ["grid", "coords"],
          note="coordinates on vertices (x = -1 + 2 i / (Wg - 1)): the grid values themselves")


def _bs_errors(c: Cases) -> None:
    g4, co = randn([2, 1, 4, 4], "float32"), randn([2, 5, 2], "float32")
    for grid, coords, note, arg in [
        (randn([2, 4, 4], "float32"), co, "grid of shape [2, 4, 4] (3-D)", "grid"),
        ("torch.zeros(2, 1, 0, 4)", co, "grid of shape [2, 1, 0, 4] (Hg = 0)", "grid"),
        (g4, randn([2, 5, 3], "float32"), "coords of shape [2, 5, 3]", "coords"),
        (g4, randn([5, 2], "float32"), "coords of shape [5, 2] (2-D)", "coords"),
        (randn([3, 1, 4, 4], "float32"), co, "grid with B=3, coords with B=2", "coords"),
        (g4, randn([2, 5, 2], "float64"), "float32 grid with float64 coords", "coords"),
    ]:
        c.add(f"grid = {grid}\ncoords = {coords}", ["grid", "coords"], note=note, meta={"arg": arg})


BILINEAR = function_spec(
    "bilinear_sample_2d",
    checks=[
        CheckSpec("values", "vertex-aligned bilinear interpolation: x = -1 is column 0, x = 1 column Wg - 1, y rows "
                  "(and keeps the autograd graph)", 3.0,
                  lambda c: [_bs_case(c, c.dtype(k), hg=c.randint(2, 4) + 3 * (k % 2), wg=c.randint(2, 4) + 3 * (k // 2),
                                      grad_wrt=(0, 1)) for k in range(4)]),
        CheckSpec("border", "coordinates outside [-1, 1] (and +-inf) are clamped: the border value repeats; a nan "
                  "coordinate gives nan in its point only", 1.5, lambda c: [
            _bs_case(c, "float32", low=-3.0, high=3.0),
            _bs_case(c, "float64", low=-3.0, high=3.0),
            _bs_case(c, "float64", b=1, coords=BORDER.format(dt="float64"), note="x, y = +-inf, +-1 exactly, +-1e30"),
            _bs_case(c, "float64", b=2, coords=NAN.format(dt="float64"), equal_nan=True,
                     note="a nan x in point 1 of element 0 and a nan y in point 2 of element 1: nan there only"),
        ]),
        CheckSpec("analytic", "a grid linear in (column, row) is reproduced exactly; vertices return grid values", 1.0,
                  _bs_analytic),
        CheckSpec("size_one", "grids with one row or one column (or 1x1), one point, one channel; non-contiguous "
                  "inputs", 1.0, lambda c: [
            _bs_case(c, "float64", b=1, hg=1, wg=5, p=4, low=-1.5, high=1.5, note="grid [1, C, 1, 5]"),
            _bs_case(c, "float32", b=2, ch=1, hg=4, wg=1, low=-1.5, high=1.5, note="grid [2, 1, 4, 1]"),
            _bs_case(c, "float64", b=1, ch=1, hg=1, wg=1, p=1, low=-1.5, high=1.5, note="grid [1, 1, 1, 1], P = 1"),
            _bs_case(c, "float64", b=2, ch=3, hg=4, wg=5, p=6, layout={0: "transposed", 1: "transposed"},
                     note="float64, grid and coords stored transposed (non-contiguous: x.mT.contiguous().mT)"),
            _bs_case(c, "float32", layout={0: "strided", 1: "strided"},
                     note="float32, non-contiguous grid and coords (slices with a step)"),
        ]),
        CheckSpec("gradients", "gradients wrt grid and coords match (zero where a coordinate is clamped)", 1.5,
                  lambda c: [
            _bs_case(c, "float64", grad_wrt=(0, 1), grad=True),
            _bs_case(c, "float64", low=-1.4, high=1.4, grad_wrt=(0, 1), grad=True, note="float64, some points outside"),
        ], judges.gradients),
        dtype_check(lambda c, dt, dev: _bs_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _bs_case(c, "float64", low=-1.5, high=1.5, return_inputs=True)),
        errors_check(_bs_errors, 1.0),
    ],
    mistakes=[
        mistake("align_corners_false", "align_corners=False semantics (pixel areas, fx = ((x + 1) Wg - 1) / 2): the "
                "contract is vertex-aligned, fx = (x + 1) / 2 * (Wg - 1)", _bs_variant, corners="half"),
        mistake("xy_swapped", "x and y swapped: coords[..., 0] = x selects columns (Wg), coords[..., 1] = y rows (Hg)",
                _bs_variant, swap_xy=True),
        mistake("nearest", "nearest-vertex look-up instead of bilinear interpolation of the four surrounding "
                "vertices", _bs_variant, mode="nearest"),
        mistake("zero_padding", "zero padding outside [-1, 1]: the contract clamps coordinates to [-1, 1] (border)",
                _bs_variant, padding="zeros"),
        mistake("weights_swapped", "the interpolation weights swapped: vertex x0 gets 1 - ax and x1 gets ax, with "
                "ax = fx - x0", _bs_variant, flip_weights=True),
        mistake("top_left_only", "only the top-left vertex g[y0, x0] read: blend all four with the bilinear weights",
                _bs_variant, mode="floor"),
        mistake("scaled_by_size", "coordinates scaled by Wg instead of Wg - 1: fx = (x + 1) / 2 * (Wg - 1)",
                _bs_variant, corners="size"),
    ],
    public=[
        PublicCase("B=2, C=3, a 4x5 grid, 6 points inside [-1, 1] (float64)",
                   lambda: (torch.randn(2, 3, 4, 5, generator=_g(521), dtype=torch.float64),
                            torch.rand(2, 6, 2, generator=_g(522), dtype=torch.float64) * 2 - 1)),
        PublicCase("the corners and the centre of a 2x2 grid [[1, 2], [3, 4]] give 1, 2, 3, 4 and 2.5",
                   lambda: (torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]),
                            torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]]))),
        PublicCase("points outside [-1, 1] repeat the border (non-contiguous coords, float32)",
                   lambda: (torch.randn(2, 2, 3, 4, generator=_g(523)),
                            (torch.randn(2, 2, 8, generator=_g(524)) * 2).transpose(1, 2))),
        PublicCase("coords with B=1 for a grid with B=2 raise ValueError",
                   lambda: (torch.zeros(2, 1, 3, 3), torch.zeros(1, 4, 2)), "raises"),
    ],
)


# ------------------------------------------------------------------------------------------------ batched_mlp
def _n_params(sizes) -> int:
    return sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))


def _bm_case(c: Cases, dt: str, *, sizes=None, b=None, p=None, note="", **opt) -> None:
    sizes = sizes or [c.randint(2, 5) for _ in range(c.randint(3, 4))]
    b, p = b or c.randint(1, 4), p if p is not None else c.randint(1, 6)
    c.add(f"x = {randn([b, p, sizes[0]], dt)}\nparams = {randn([b, _n_params(sizes)], dt, 0.5)}",
          ["x", "params", repr(sizes)], note=note or f"{dt}, B={b}, P={p}, sizes={sizes}", **opt)


def _bm_variant(x, params, sizes, *, layout="row", bias_first=False, weights_first=False, relu="between",
                shared=False):
    b, pairs = x.shape[0], list(zip(sizes[:-1], sizes[1:]))
    if shared:                                                   # the first row's network for every element
        params = params[:1].expand(b, -1)
    n_w, n_b = [i * o for i, o in pairs], [o for _, o in pairs]
    if weights_first:                                            # [W_1, ..., W_L, b_1, ..., b_L]
        chunks = params.split(n_w + n_b, 1)
        ws, bs = chunks[: len(pairs)], chunks[len(pairs) :]
    else:                                                        # [W_1, b_1, ...] or [b_1, W_1, ...]
        chunks = params.split([n for w, bb in zip(n_w, n_b) for n in ((bb, w) if bias_first else (w, bb))], 1)
        ws, bs = (chunks[1::2], chunks[::2]) if bias_first else (chunks[::2], chunks[1::2])
    y = x
    for layer, (d_in, d_out) in enumerate(pairs):
        w = ws[layer].reshape(b, d_in, d_out) if layout == "col" else ws[layer].reshape(b, d_out, d_in).transpose(1, 2)
        y = y @ w + bs[layer].unsqueeze(1)
        if relu == "all" or (relu == "between" and layer < len(pairs) - 1):
            y = torch.relu(y)
    return y


HAND = ("torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, -1.0, 0.0, 0.0, -0.5, 1.0, -2.0, 3.0, 0.25], "
        "[-1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 2.0, 1.0, -1.0, 0.0]], dtype=torch.float64)")


def _bm_errors(c: Cases) -> None:
    def add(x_shape, n, sizes, note, arg, b=None, pdt="float32"):
        c.add(f"x = {randn(x_shape, 'float32')}\nparams = {randn([b or x_shape[0], n], pdt)}",
              ["x", "params", sizes], note=note, meta={"arg": arg})
    add([2, 3, 3], 17, "[3]", "sizes=[3] (fewer than two widths)", "sizes")
    add([2, 3, 3], 17, "[3, 0, 2]", "sizes=[3, 0, 2] (a width of 0)", "sizes")
    add([2, 3, 3], 17, "[3, 2.5]", "sizes=[3, 2.5] (not an int)", "sizes")
    add([2, 3, 4], 17, "[3, 4, 1]", "x with Din=4 for sizes [3, 4, 1]", "x")
    add([2, 3, 3], 16, "[3, 4, 1]", "params with n=16, sizes [3, 4, 1] need 21", "params")
    add([2, 3, 3], 21, "[3, 4, 1]", "params with B=3 for x with B=2", "params", b=3)
    add([2, 3, 3], 21, "[3, 4, 1]", "float64 params for float32 x", "params", pdt="float64")
    add([3, 3], 21, "[3, 4, 1]", "x of shape [3, 3] (2-D)", "x", b=3)


BATCHED_MLP = function_spec(
    "batched_mlp",
    loops_allowed=1,                                             # the loop over layers
    checks=[
        CheckSpec("values", "row b read as [W_1 (row-major [out, in]), b_1, W_2, b_2, ...], ReLU between layers (and "
                  "keeps the autograd graph)", 3.5, lambda c: [_bm_case(c, c.dtype(k), grad_wrt=(0, 1)) for k in range(4)]),
        CheckSpec("layers", "one layer (no ReLU at all), four layers, widths of 1, B = 1, non-contiguous inputs", 1.25,
                  lambda c: [
            _bm_case(c, "float32", sizes=[3, 2], note="sizes [3, 2]: one linear layer"),
            _bm_case(c, "float64", sizes=[2, 4, 3, 4, 2], note="sizes [2, 4, 3, 4, 2]: four layers"),
            _bm_case(c, "float64", sizes=[1, 3, 1], b=1, note="sizes [1, 3, 1], B = 1"),
            _bm_case(c, "float64", sizes=[3, 4, 2], b=3, p=4, layout={0: "transposed", 1: "transposed"},
                     note="float64, x and params stored transposed (non-contiguous: x.mT.contiguous().mT)"),
            _bm_case(c, "float32", sizes=[2, 3, 2], layout={0: "strided", 1: "strided"},
                     note="float32, non-contiguous x and params (slices with a step)"),
        ]),
        CheckSpec("empty", "P = 0 points give an empty [B, 0, Dout] output", 0.25, lambda c: [
            _bm_case(c, "float32", sizes=[3, 4, 2], p=0, note="P = 0 points: output [B, 0, 2]"),
        ], auxiliary=True),                                      # zeros of the right shape pass it
        CheckSpec("analytic", "a hand-made 2-3-1 network: relu(x1) - 2 relu(x2) + 3 relu(x1 - x2 - 0.5) + 0.25", 1.0,
                  lambda c: c.add(f"x = {randn([2, 5, 2], 'float64')}\nparams = {HAND}", ["x", "params", "[2, 3, 1]"],
                                  note="row 0: W_1 = [[1, 0], [0, 1], [1, -1]], b_1 = [0, 0, -0.5], W_2 = [[1, -2, 3]], "
                                       "b_2 = [0.25]; row 1 another network")),
        CheckSpec("gradients", "gradients wrt x and params match the reference", 1.5, lambda c: [
            _bm_case(c, "float64", grad_wrt=(0, 1), grad=True),
            _bm_case(c, "float64", sizes=[2, 3], grad_wrt=(0, 1), grad=True, note="float64, sizes [2, 3]"),
        ], judges.gradients),
        dtype_check(lambda c, dt, dev: _bm_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _bm_case(c, "float64", return_inputs=True)),
        errors_check(_bm_errors, 1.5),
    ],
    mistakes=[
        mistake("column_major", "W read column-major ([in, out]): each W_l is row-major [out, in], "
                "W_l = row[k : k + out*in].reshape(out, in), then y @ W_l.T", _bm_variant, layout="col"),
        mistake("relu_after_last", "a ReLU after the last layer: there is no activation after the output layer",
                _bm_variant, relu="all"),
        mistake("bias_first", "each bias read before its weights: the layout is W_1, b_1, W_2, b_2, ...",
                _bm_variant, bias_first=True),
        mistake("no_relu", "no ReLU between layers: apply ReLU after every layer but the last", _bm_variant,
                relu="none"),
        mistake("weights_then_biases", "all weights first, then all biases: the layout alternates W_1, b_1, W_2, "
                "b_2, ...", _bm_variant, weights_first=True),
        mistake("first_network_for_all", "the first row's network used for every batch element: row b of params "
                "is the network of x[b]", _bm_variant, shared=True),
    ],
    public=[
        PublicCase("B=2 networks 3-5-2, P=4 points (float64)",
                   lambda: (torch.randn(2, 4, 3, generator=_g(531), dtype=torch.float64),
                            torch.randn(2, _n_params([3, 5, 2]), generator=_g(532), dtype=torch.float64) * 0.5, [3, 5, 2])),
        PublicCase("one linear layer, sizes [2, 3] (float32)",
                   lambda: (torch.randn(3, 2, 2, generator=_g(533)), torch.randn(3, 9, generator=_g(534)), [2, 3])),
        PublicCase("a hand-made 2-3-1 network: relu(x1) - 2 relu(x2) + 3 relu(x1 - x2 - 0.5) + 0.25",
                   lambda: (torch.tensor([[[1.0, 0.0], [2.0, 1.0], [-1.0, 0.5]]], dtype=torch.float64),
                            torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, -1.0, 0.0, 0.0, -0.5, 1.0, -2.0, 3.0, 0.25]],
                                         dtype=torch.float64), [2, 3, 1])),
        PublicCase("params of the wrong length raise ValueError",
                   lambda: (torch.zeros(2, 3, 3), torch.zeros(2, 20), [3, 4, 1]), "raises"),
    ],
)

SPECS = [PROJECT_POINTS, PLUCKER, BILINEAR, BATCHED_MLP]
