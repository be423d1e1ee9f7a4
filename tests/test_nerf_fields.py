"""Do the TinyNeRF stages have the documented shapes, and is the grid interpolation exactly trilinear
(vertex values at vertices, linear along an edge, a linear function reproduced everywhere)?"""
import math

import pytest
import torch

from course_lib import positional_encoding
from course_lib.nerf import FieldConfig, GridField, MLPField, NerfModel, preset, render_image, trilinear
from course_lib.nerf.grid import dilate, lookup, ray_box, vertex_positions
from course_lib.nerf.sampler import sample_along


def _grid(c=2, res=(4, 5, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(c, *res, generator=g, dtype=torch.float64)


LO = torch.tensor([-1.0, -0.5, 0.0], dtype=torch.float64)
HI = torch.tensor([1.0, 1.5, 3.0], dtype=torch.float64)


def test_trilinear_returns_the_vertex_values_at_the_vertices():
    grid = _grid()
    verts = vertex_positions(LO, HI, (4, 5, 6))                           # [4, 5, 6, 3]
    out = trilinear(grid, verts, LO, HI)                                   # [4, 5, 6, 2]
    torch.testing.assert_close(out, grid.permute(1, 2, 3, 0))


def test_trilinear_is_linear_along_an_edge_and_matches_the_formula_inside_a_cell():
    grid = _grid()
    verts = vertex_positions(LO, HI, (4, 5, 6))
    a, b = verts[1, 2, 3], verts[1, 2, 4]                                  # neighbours along z
    s = torch.linspace(0, 1, 7, dtype=torch.float64)[:, None]
    along = trilinear(grid, a + s * (b - a), LO, HI)                       # [7, 2]
    torch.testing.assert_close(along, (1 - s) * grid[:, 1, 2, 3] + s * grid[:, 1, 2, 4])
    # a point inside cell (1, 2, 3) with fractions f: the eight-corner formula
    f = torch.tensor([0.3, 0.6, 0.8], dtype=torch.float64)
    step = (HI - LO) / torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
    p = LO + (torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) + f) * step
    want = torch.zeros(2, dtype=torch.float64)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (f[0] if dx else 1 - f[0]) * (f[1] if dy else 1 - f[1]) * (f[2] if dz else 1 - f[2])
                want += w * grid[:, 1 + dx, 2 + dy, 3 + dz]
    torch.testing.assert_close(trilinear(grid, p[None], LO, HI)[0], want)


def test_trilinear_reproduces_a_linear_function_and_clamps_outside_the_box():
    verts = vertex_positions(LO, HI, (3, 4, 5))
    coef = torch.tensor([0.5, -2.0, 1.5], dtype=torch.float64)
    grid = (verts @ coef + 0.25)[None]                                     # [1, 3, 4, 5]
    pts = LO + (HI - LO) * torch.rand(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(trilinear(grid, pts, LO, HI)[:, 0], pts @ coef + 0.25)
    outside = torch.tensor([[5.0, 0.5, 1.0]], dtype=torch.float64)         # beyond the +x face
    torch.testing.assert_close(trilinear(grid, outside, LO, HI), trilinear(grid, torch.tensor([[1.0, 0.5, 1.0]],
                               dtype=torch.float64), LO, HI))


def test_trilinear_gradient_lands_on_the_eight_corners():
    grid = torch.zeros(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    lo, hi = torch.zeros(3, dtype=torch.float64), torch.full((3,), 2.0, dtype=torch.float64)
    trilinear(grid, torch.tensor([[0.25, 0.5, 0.75]], dtype=torch.float64), lo, hi).sum().backward()
    assert int((grid.grad != 0).sum()) == 8 and grid.grad.sum().item() == pytest.approx(1.0)
    assert grid.grad[0, 0, 0, 0].item() == pytest.approx(0.75 * 0.5 * 0.25)


def test_ray_box_enter_and_exit():
    o = torch.tensor([[0.0, 0.0, 5.0], [3.0, 3.0, 5.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    t_in, t_out = ray_box(o, d, -torch.ones(3), torch.ones(3), near=0.0, far=10.0)
    assert (t_in[0].item(), t_out[0].item()) == (4.0, 6.0)
    assert t_out[1] == t_in[1]                                               # the second ray misses
    t_in, t_out = ray_box(o[:1], d[:1], -torch.ones(3), torch.ones(3), near=4.5, far=5.5)
    assert (t_in.item(), t_out.item()) == (4.5, 5.5)


def test_occupancy_helpers():
    mask = torch.zeros(5, 5, 5, dtype=torch.bool)
    mask[2, 2, 2] = True
    grown = dilate(mask, 1)
    assert int(grown.sum()) == 27 and bool(grown[1:4, 1:4, 1:4].all())
    lo, hi = torch.zeros(3), torch.full((3,), 4.0)
    assert lookup(mask, torch.tensor([[2.1, 1.9, 2.4], [0.0, 0.0, 0.0]]), lo, hi).tolist() == [True, False]


def test_mlp_field_shapes_encoding_width_and_the_skip():
    cfg = preset("plain").field
    f = MLPField(cfg)
    sigma, rgb = f(torch.rand(10, 3))
    assert sigma.shape == (10,) and rgb.shape == (10, 3)
    assert bool((sigma >= 0).all()) and bool(((rgb > 0) & (rgb < 1)).all())
    assert f.layers[0].in_features == 39 == positional_encoding(torch.zeros(1, 3), 6).shape[-1]
    assert f.layers[5].in_features == 256 + 39 and len(f.layers) == 8
    n_params = sum(p.numel() for p in f.parameters())
    assert n_params == (39 * 256 + 256) + 7 * (256 * 256 + 256) + 39 * 256 + (256 * 4 + 4)   # ~0.48M


def test_plain_preset_scales_coordinates_to_the_notebooks_frequencies():
    cfg = preset("plain")
    assert cfg.field.pe_scale == pytest.approx(1 / math.pi)
    x = torch.tensor([[0.3, -0.2, 0.1]])
    enc = positional_encoding(x * cfg.field.pe_scale, 6)
    torch.testing.assert_close(enc[0, 3:6], torch.sin(x[0]))                    # sin(2^0 x), no pi
    assert cfg.sampler.n_samples == 64 and cfg.optim.lr == 5e-4 and cfg.field.depth == 8


def test_grid_field_initial_opacity_and_shapes():
    cfg = FieldConfig(kind="grid", alpha_init=1e-3)
    f = GridField(cfg, -torch.ones(3), torch.ones(3), (9, 9, 9))
    assert f.density.shape == (1, 9, 9, 9) and f.color.shape == (3, 9, 9, 9)
    sigma = f.sigma(torch.zeros(4, 3))
    torch.testing.assert_close(1 - torch.exp(-sigma * f.voxel), torch.full((4,), 1e-3))
    assert f.rgb(torch.zeros(4, 3), torch.zeros(4, 3)).shape == (4, 3)


def test_resampling_keeps_the_field():
    cfg = FieldConfig(kind="grid")
    f = GridField(cfg, -torch.ones(3), torch.ones(3), (9, 9, 9))
    with torch.no_grad():
        f.density.normal_(generator=torch.Generator().manual_seed(0))
        f.color.normal_(generator=torch.Generator().manual_seed(1))
    g = f.resampled(torch.tensor([-0.5, -0.5, -1.0]), torch.tensor([0.5, 0.5, 1.0]), 17)
    assert g.res == (9, 9, 17)
    verts = vertex_positions(g.lo, g.hi, g.res).reshape(-1, 3)
    torch.testing.assert_close(g.sigma(verts), f.sigma(verts), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g.rgb(verts, verts), f.rgb(verts, verts), rtol=1e-5, atol=1e-6)


def test_box_sampling_stays_inside_the_box_and_is_metric():
    o = torch.tensor([[0.0, 0.0, 4.0]])
    d = torch.tensor([[0.0, 0.0, -2.0]])                                         # |d| = 2
    rs = sample_along(o, d, "box", 2.0 / 2, 6.0 / 2, 0, False, box=(-torch.ones(3), torch.ones(3)), spacing=0.25)
    z = rs.points[0, :, 2]
    assert bool((z <= 1).all() and (z >= -1).all())
    torch.testing.assert_close(rs.t[0], 4.0 - z)                                 # metric distance from o
    assert rs.points.shape[1] == math.ceil(math.sqrt(12) / 0.25)


def test_render_image_shape_and_a_model_of_empty_space_renders_the_background():
    cfg = preset("fast")
    model = NerfModel(cfg, 2.0, 6.0, bound=1.0)
    with torch.no_grad():
        model.field.density.fill_(-100.0)                                        # no density anywhere
    pose = torch.eye(4)
    pose[2, 3] = 4.0
    img = render_image(model, pose, 6, 7, 10.0)
    assert img.shape == (6, 7, 3)
    torch.testing.assert_close(img, torch.zeros(6, 7, 3), atol=1e-6, rtol=0)
    model.config.white_background = True
    torch.testing.assert_close(render_image(model, pose, 6, 7, 10.0), torch.ones(6, 7, 3), atol=1e-6, rtol=0)
