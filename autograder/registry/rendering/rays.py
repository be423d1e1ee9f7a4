"""Hidden checks for course_lib.rendering.rays (assignment a4_rendering): get_rays.

Known mistakes: rays through pixel centres (+0.5), y not flipped, the rotation transposed, rows and columns
swapped, a camera looking down +z.

Reference: Mildenhall et al., "NeRF", ECCV 2020 (and the authors' get_rays: NeRF / OpenGL camera, pixel corners).
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import check, dtype_check, errors_check, function_spec, mutation_check, randn
from ..core import Cases, CheckSpec, mistake
from ..properties import fresh, part
from ..public import PublicCase, rnd

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


GET_RAYS = function_spec(
    "get_rays",
    public=[
        PublicCase("H=3, W=4, focal 2, identity camera", lambda: (3, 4, 2.0, torch.eye(4, dtype=torch.float64))),
        PublicCase("H=2, W=2, a rotated and shifted c2w [3, 4] (float32)",
              lambda: (2, 2, 1.5, torch.cat([torch.linalg.qr(rnd(3, 3, seed=32))[0], rnd(3, 1, seed=33)], 1).float())),
        PublicCase("c2w of shape [3, 3] raises ValueError", lambda: (2, 2, 1.0, torch.eye(3)), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "rays_d: dir = ((i - W/2)/f, -(j - H/2)/f, -1) rotated by c2w (and keeps the autograd "
                  "graph)", 3.0, lambda c: [_gr_case(c, c.dtype(k), rows=(3, 4)[k // 2], grad_wrt=(3,)) for k in range(4)],
                  part(1, "rays_d")),
        check("origins", "rays_o = c2w[:3, 3] at every pixel", 0.5,
              lambda c: [_gr_case(c, c.dtype(k), rows=(3, 4)[k]) for k in range(2)], part(0, "rays_o")),
        check("new_tensors", "rays_o and rays_d are new tensors, not views of c2w", 0.5,
              lambda c: [_gr_case(c, c.dtype(k)) for k in range(2)], fresh()),
        check("layout", "one row or one column of pixels; a non-contiguous c2w", 0.5, lambda c: [
            _gr_case(c, "float64", h=1, note="float64, H = 1 (one row of pixels)"),
            _gr_case(c, "float32", w=1, rows=3, note="float32, W = 1 (one column of pixels), c2w 3x4"),
            _gr_case(c, "float64", h=1, w=1, rows=4, layout={3: "transposed"},
                     note="float64, a single pixel, c2w stored transposed (non-contiguous: x.mT.contiguous().mT)"),
            _gr_case(c, "float32", rows=3, layout={3: "strided"}, note="float32, a non-contiguous c2w 3x4"),
        ]),
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
        ], 1.5),
    ],
    mistakes=[
        mistake("pixel_centres", "rays through pixel centres (+0.5): the contract uses pixel corners, i - W/2",
                _rays_variant, half=0.5),
        mistake("y_not_flipped", "y not flipped: image rows go down, camera y goes up: -(j - H/2) / focal",
                _rays_variant, flip_y=False),
        mistake("rotation_transposed", "the rotation applied transposed: rays_d = c2w[:3, :3] @ d (i.e. d @ R.T)",
                _rays_variant, transpose_rot=True),
        mistake("rows_columns_swapped", "rows and columns swapped (meshgrid indexing): outputs are [H, W, 3] with "
                "column i giving x", _rays_variant, swap_ij=True),
        mistake("looks_down_plus_z", "a camera looking down +z: the NeRF/OpenGL camera looks down -z",
                _rays_variant, z=1.0),
    ],
)

SPECS = [GET_RAYS]
