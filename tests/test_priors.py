"""Do project_points, plucker_coordinates, bilinear_sample_2d and batched_mlp follow their contracts: the loop
versions, the closed forms (get_rays inverted, ray invariance, grid_sample, nn.Linear stacks), gradients,
dtype/device, stability at the stated limits and argument checks?"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from course_lib import get_rays
from course_lib.naive.priors import (
    batched_mlp_naive,
    bilinear_sample_2d_naive,
    plucker_coordinates_naive,
    project_points_naive,
)
from course_lib.priors import batched_mlp, bilinear_sample_2d, plucker_coordinates, project_points
from helpers import assert_unchanged, randn, snapshot


def _pose(gen, dtype=torch.float64, centre_scale=1.0):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = q
    c2w[:3, 3] = centre_scale * torch.randn(3, generator=gen, dtype=torch.float64)
    return c2w.to(dtype)


def _in_front(c2w, n, gen, near=0.5, far=5.0):
    """n world points with camera-space depth in [near, far] (inside a wide frustum)."""
    z = near + (far - near) * torch.rand(n, generator=gen, dtype=torch.float64)
    xy = (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * z[:, None]
    cam = torch.cat([xy, -z[:, None]], -1).to(c2w.dtype)              # [n, 3] camera space
    return cam @ c2w[:3, :3].T + c2w[:3, 3]                           # [n, 3] world space


class _CallCounter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _calls(fn, *args):
    with _CallCounter() as counter:
        fn(*args)
    return counter.calls


def _mlp_params(sizes, b, gen, dtype=torch.float64):
    n = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    return randn(b, n, gen=gen, dtype=dtype, scale=0.5)


# -------------------------------------------------------------------------------------------- project_points
@pytest.mark.parametrize("batch", [(), (5,), (2, 3, 4)])
@pytest.mark.parametrize("rows", [4, 3])
def test_project_points_matches_the_loop(batch, rows, gen):
    c2w = _pose(gen)[:rows]
    pts = randn(*batch, 3, gen=gen, scale=3.0)
    uv, depth = project_points(pts, c2w, 2.5, 6, 8)
    uv_n, depth_n = project_points_naive(pts, c2w, 2.5, 6, 8)
    assert uv.shape == (*batch, 2) and depth.shape == batch
    torch.testing.assert_close(uv, uv_n)
    torch.testing.assert_close(depth, depth_n)


@pytest.mark.parametrize("h,w,focal", [(1, 1, 1.0), (4, 6, 3.0), (7, 5, 12.5)])
def test_project_points_inverts_get_rays(h, w, focal, gen):
    c2w = _pose(gen, centre_scale=10.0)
    rays_o, rays_d = get_rays(h, w, focal, c2w)
    cols, rows = torch.meshgrid(torch.arange(w), torch.arange(h), indexing="xy")     # [H, W] each
    expected_uv = torch.stack([cols, rows], -1).to(torch.float64)                     # uv = (i, j)
    for t in (1e-3, 0.7, 25.0):
        uv, depth = project_points(rays_o + t * rays_d, c2w[:3], focal, h, w)
        torch.testing.assert_close(uv, expected_uv, rtol=0, atol=1e-7)
        torch.testing.assert_close(depth, torch.full((h, w), t, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_project_points_identity_camera_closed_form():
    pts = torch.tensor([[0.0, 0.0, -2.0], [1.0, 0.5, -2.0], [1.0, 0.5, 2.0]], dtype=torch.float64)
    uv, depth = project_points(pts, torch.eye(4, dtype=torch.float64), 4.0, 10, 20)
    torch.testing.assert_close(depth, torch.tensor([2.0, 2.0, -2.0], dtype=torch.float64))
    torch.testing.assert_close(uv[0], torch.tensor([10.0, 5.0], dtype=torch.float64))   # optical axis -> (W/2, H/2)
    torch.testing.assert_close(uv[1], torch.tensor([10.0 + 2.0, 5.0 - 1.0], dtype=torch.float64))   # x right, y up
    torch.testing.assert_close(uv[2], torch.tensor([10.0 - 2.0, 5.0 + 1.0], dtype=torch.float64))   # behind: mirrored


def test_project_points_gradcheck(gen):
    c2w = _pose(gen).requires_grad_(True)
    pts = _in_front(c2w.detach(), 4, gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, m: project_points(p, m, 3.0, 5, 7), (pts, c2w))


def test_project_points_dtype_device_and_no_mutation(device, dtype, gen):
    c2w = _pose(gen, dtype).to(device)
    pts = _in_front(c2w, 6, gen).reshape(2, 3, 3)
    before = snapshot(pts, c2w)
    uv, depth = project_points(pts, c2w, 2.0, 4, 4)
    assert uv.dtype == depth.dtype == dtype and uv.device.type == depth.device.type == device.type
    assert uv.shape == (2, 3, 2) and depth.shape == (2, 3)
    assert_unchanged(before, (pts, c2w))


def test_project_points_stable_at_depth_1e_3_far_from_the_origin(dtype, gen):
    c2w = _pose(gen, torch.float64)
    c2w[:3, 3] = torch.tensor([1e3, -1e3, 5e2], dtype=torch.float64)
    pts = _in_front(c2w, 16, gen, near=1e-3, far=2e-3).to(dtype).requires_grad_(True)
    c2w = c2w.to(dtype).requires_grad_(True)
    uv, depth = project_points(pts, c2w, 500.0, 64, 64)
    (uv.sum() + depth.sum()).backward()
    assert torch.all(depth > 0)
    assert torch.isfinite(uv).all() and torch.isfinite(pts.grad).all() and torch.isfinite(c2w.grad).all()


@pytest.mark.parametrize(
    "pts,c2w,focal,h,w,match",
    [((4, 2), (4, 4), 1.0, 3, 3, "points"), ((), (4, 4), 1.0, 3, 3, "points"), ((4, 3), (3, 3), 1.0, 3, 3, "c2w"),
     ((4, 3), (2, 4, 4), 1.0, 3, 3, "c2w"), ((4, 3), (4, 4), 0.0, 3, 3, "focal"), ((4, 3), (4, 4), -1.0, 3, 3, "focal"),
     ((4, 3), (4, 4), 1.0, 0, 3, "height"), ((4, 3), (4, 4), 1.0, 3, 2.5, "width")],
)
def test_project_points_bad_arguments(pts, c2w, focal, h, w, match):
    with pytest.raises(ValueError, match=match):
        project_points(torch.zeros(pts), torch.eye(4)[: c2w[-2], : c2w[-1]].expand(c2w), focal, h, w)


def test_project_points_rejects_mixed_dtypes_and_integer_points():
    with pytest.raises(ValueError, match="c2w"):
        project_points(torch.zeros(2, 3, dtype=torch.float64), torch.eye(4), 1.0, 2, 2)
    with pytest.raises(ValueError, match="points"):
        project_points(torch.zeros(2, 3, dtype=torch.int64), torch.eye(4), 1.0, 2, 2)


# --------------------------------------------------------------------------------------- plucker_coordinates
@pytest.mark.parametrize("o_shape,d_shape", [((3,), (3,)), ((7, 3), (7, 3)), ((2, 3, 3), (2, 3, 3)), ((3,), (4, 5, 3)),
                                             ((4, 1, 3), (1, 5, 3))])
def test_plucker_matches_the_loop(o_shape, d_shape, gen):
    o, d = randn(*o_shape, gen=gen, scale=5.0), randn(*d_shape, gen=gen)
    out = plucker_coordinates(o, d)
    assert out.shape == (*torch.broadcast_shapes(o_shape[:-1], d_shape[:-1]), 6)
    torch.testing.assert_close(out, plucker_coordinates_naive(o, d))


def test_plucker_is_a_property_of_the_ray_not_of_its_parameterisation(gen):
    o, d = randn(50, 3, gen=gen, scale=4.0), randn(50, 3, gen=gen)
    s = randn(50, 1, gen=gen, scale=10.0)                             # slide the origin along the ray
    c = torch.rand(50, 1, generator=gen, dtype=torch.float64) * 100 + 1e-2
    ref = plucker_coordinates(o, d)
    torch.testing.assert_close(plucker_coordinates(o + s * d, d), ref)
    torch.testing.assert_close(plucker_coordinates(o, c * d), ref)
    torch.testing.assert_close(plucker_coordinates(o, -c * d), -ref)   # the opposite orientation flips both parts


def test_plucker_direction_is_unit_and_moment_gives_the_distance_to_the_line(gen):
    o, d = randn(20, 3, gen=gen, scale=3.0), randn(20, 3, gen=gen)
    out = plucker_coordinates(o, d)
    unit, m = out[..., :3], out[..., 3:]
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(20, dtype=torch.float64))
    torch.testing.assert_close((unit * m).sum(-1), torch.zeros(20, dtype=torch.float64))
    closest = o - (o * unit).sum(-1, keepdim=True) * unit            # foot of the perpendicular from 0
    torch.testing.assert_close(m.norm(dim=-1), closest.norm(dim=-1))
    axis = plucker_coordinates(torch.tensor([0.0, 2.0, 0.0]), torch.tensor([3.0, 0.0, 0.0]))
    assert torch.equal(axis, torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, -2.0]))


def test_plucker_gradcheck(gen):
    args = (randn(4, 3, gen=gen, requires_grad=True), randn(4, 3, gen=gen, requires_grad=True))
    assert torch.autograd.gradcheck(plucker_coordinates, args)


def test_plucker_dtype_device_and_no_mutation(device, dtype, gen):
    o, d = randn(2, 4, 3, gen=gen, dtype=dtype, device=device), randn(2, 4, 3, gen=gen, dtype=dtype, device=device)
    before = snapshot(o, d)
    out = plucker_coordinates(o, d)
    assert out.shape == (2, 4, 6) and out.dtype == dtype and out.device.type == device.type
    assert_unchanged(before, (o, d))


def test_plucker_stable_for_origins_up_to_1e3(dtype, gen):
    o = (randn(64, 3, gen=gen) * 1e3 / 3).clamp(-1e3, 1e3).to(dtype).requires_grad_(True)
    d = randn(64, 3, gen=gen, dtype=dtype, scale=1e-3).requires_grad_(True)
    out = plucker_coordinates(o, d)
    (out * randn(64, 6, gen=gen, dtype=dtype)).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(o.grad).all() and torch.isfinite(d.grad).all()
    moved = plucker_coordinates(o.detach() + 500 * d.detach() / d.detach().norm(dim=-1, keepdim=True), d.detach())
    tol = 1e-9 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(moved, out.detach(), rtol=tol, atol=tol * 1e3)


@pytest.mark.parametrize(
    "o,d,match",
    [((4, 2), (4, 3), "rays_o"), ((4, 3), (4, 4), "rays_d"), ((4, 3), (5, 3), "rays_o"), ((), (3,), "rays_o")],
)
def test_plucker_bad_shapes(o, d, match):
    with pytest.raises(ValueError, match=match):
        plucker_coordinates(torch.ones(o), torch.ones(d))


def test_plucker_rejects_zero_directions_and_mixed_dtypes():
    d = torch.ones(3, 3)
    d[1] = 0.0
    with pytest.raises(ValueError, match=r"rays_d.*zero.*\[3, 3\]"):
        plucker_coordinates(torch.ones(3, 3), d)
    with pytest.raises(ValueError, match="rays_d"):
        plucker_coordinates(torch.ones(3), torch.ones(3, dtype=torch.float64))


# ---------------------------------------------------------------------------------------- bilinear_sample_2d
def _grid_sample(grid, coords):
    return F.grid_sample(grid, coords[:, None], align_corners=True, padding_mode="border")[:, :, 0].transpose(1, 2)


@pytest.mark.parametrize("b,c,hg,wg,p", [(1, 1, 1, 1, 3), (2, 3, 4, 5, 7), (3, 2, 1, 6, 5), (1, 4, 5, 1, 4),
                                         (2, 1, 2, 2, 0)])
def test_bilinear_matches_the_loop(b, c, hg, wg, p, gen):
    grid = randn(b, c, hg, wg, gen=gen)
    coords = (torch.rand(b, p, 2, generator=gen, dtype=torch.float64) - 0.5) * 3     # some outside [-1, 1]
    out = bilinear_sample_2d(grid, coords)
    assert out.shape == (b, p, c)
    torch.testing.assert_close(out, bilinear_sample_2d_naive(grid, coords))


@pytest.mark.parametrize("hg,wg", [(1, 1), (3, 4), (6, 2), (9, 9)])
def test_bilinear_equals_grid_sample_with_border_and_vertex_hits(hg, wg, gen):
    grid = randn(2, 3, hg, wg, gen=gen)
    inside = torch.rand(2, 20, 2, generator=gen, dtype=torch.float64) * 2 - 1
    outside = (torch.rand(2, 10, 2, generator=gen, dtype=torch.float64) - 0.5) * 20
    anywhere = torch.tensor([-1.0, 0.3, 1.0], dtype=torch.float64)     # a size-1 axis has one vertex for all
    vx = torch.linspace(-1, 1, wg, dtype=torch.float64) if wg > 1 else anywhere
    vy = torch.linspace(-1, 1, hg, dtype=torch.float64) if hg > 1 else anywhere
    vertices = torch.stack(torch.meshgrid(vx, vy, indexing="xy"), -1).reshape(1, -1, 2).expand(2, -1, 2)
    extremes = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1e30, -1e30], [float("inf"), float("-inf")]],
                            dtype=torch.float64).expand(2, 5, 2)
    coords = torch.cat([inside, outside, vertices, extremes], 1)
    torch.testing.assert_close(bilinear_sample_2d(grid, coords), _grid_sample(grid, coords))
    if hg > 1 and wg > 1:                                   # a vertex returns that vertex's value
        torch.testing.assert_close(bilinear_sample_2d(grid, vertices), grid.flatten(2).transpose(1, 2))


def test_bilinear_reproduces_affine_functions_and_grid_sample_gradients(gen):
    hg, wg = 5, 8
    rows, cols = torch.meshgrid(torch.arange(hg), torch.arange(wg), indexing="ij")
    grid = (2.0 * cols - 3.0 * rows + 0.5).to(torch.float64)[None, None]               # [1, 1, Hg, Wg]
    coords = torch.rand(1, 30, 2, generator=gen, dtype=torch.float64) * 2 - 1
    fx, fy = (coords[..., 0] + 1) / 2 * (wg - 1), (coords[..., 1] + 1) / 2 * (hg - 1)
    torch.testing.assert_close(bilinear_sample_2d(grid, coords)[..., 0], 2.0 * fx - 3.0 * fy + 0.5)
    # gradients agree with grid_sample's at generic interior points
    g = randn(2, 3, 4, 6, gen=gen, requires_grad=True)
    xy = (torch.rand(2, 9, 2, generator=gen, dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)
    w = randn(2, 9, 3, gen=gen)
    ours = torch.autograd.grad((bilinear_sample_2d(g, xy) * w).sum(), (g, xy))
    theirs = torch.autograd.grad((_grid_sample(g, xy) * w).sum(), (g, xy))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_bilinear_gradcheck(gen):
    grid = randn(2, 2, 3, 4, gen=gen, requires_grad=True)
    coords = (torch.rand(2, 5, 2, generator=gen, dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)
    assert torch.autograd.gradcheck(bilinear_sample_2d, (grid, coords))


def test_bilinear_dtype_device_no_mutation_and_stable_far_outside(device, dtype, gen):
    grid = randn(2, 3, 4, 5, gen=gen, dtype=dtype, device=device).requires_grad_(True)
    coords = (randn(2, 6, 2, gen=gen, dtype=dtype, device=device) * 1e6).requires_grad_(True)
    before = snapshot(grid, coords)
    out = bilinear_sample_2d(grid, coords)
    assert out.shape == (2, 6, 3) and out.dtype == dtype and out.device.type == device.type
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(grid.grad).all() and torch.isfinite(coords.grad).all()
    assert_unchanged(before, (grid, coords))


@pytest.mark.parametrize(
    "grid,coords,match",
    [((3, 4, 5), (1, 2, 2), "grid"), ((1, 3, 4, 5), (1, 2, 3), "coords"), ((1, 3, 4, 5), (2, 2), "coords"),
     ((2, 3, 4, 5), (3, 2, 2), "coords"), ((1, 3, 0, 5), (1, 2, 2), "grid")],
)
def test_bilinear_bad_shapes(grid, coords, match):
    with pytest.raises(ValueError, match=match):
        bilinear_sample_2d(torch.zeros(grid), torch.zeros(coords))


def test_bilinear_rejects_mixed_dtypes():
    with pytest.raises(ValueError, match="coords"):
        bilinear_sample_2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 2, dtype=torch.float64))


# ----------------------------------------------------------------------------------------------- batched_mlp
@pytest.mark.parametrize("sizes,b,p", [([2, 3], 1, 4), ([3, 5, 4, 2], 3, 6), ([1, 1, 1], 2, 1), ([4, 6, 2], 2, 0)])
def test_batched_mlp_matches_the_loop(sizes, b, p, gen):
    x, params = randn(b, p, sizes[0], gen=gen), _mlp_params(sizes, b, gen)
    out = batched_mlp(x, params, sizes)
    assert out.shape == (b, p, sizes[-1])
    torch.testing.assert_close(out, batched_mlp_naive(x, params, sizes))


def test_batched_mlp_rows_are_flattened_linear_stacks(gen):
    sizes = [3, 7, 5, 2]
    nets = [nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 2)).double()
            for _ in range(4)]
    params = torch.stack([torch.cat([t.detach().flatten() for t in net.parameters()]) for net in nets])  # [4, n]
    x = randn(4, 9, 3, gen=gen)
    expected = torch.stack([net(x[k]) for k, net in enumerate(nets)])
    torch.testing.assert_close(batched_mlp(x, params, sizes), expected)
    torch.testing.assert_close(batched_mlp(x, params, tuple(sizes)), expected)      # a tuple works too


def test_batched_mlp_gradcheck(gen):
    sizes = [2, 4, 3]
    x = randn(2, 3, 2, gen=gen, requires_grad=True)
    params = _mlp_params(sizes, 2, gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, w: batched_mlp(a, w, sizes), (x, params))


def test_batched_mlp_dtype_device_and_no_mutation(device, dtype, gen):
    sizes = [3, 8, 4]
    x = randn(2, 5, 3, gen=gen, dtype=dtype, device=device)
    params = _mlp_params(sizes, 2, gen, dtype).to(device)
    before = snapshot(x, params)
    out = batched_mlp(x, params, sizes)
    assert out.shape == (2, 5, 4) and out.dtype == dtype and out.device.type == device.type
    assert_unchanged(before, (x, params))


@pytest.mark.parametrize(
    "x,n,sizes,match",
    [((2, 4, 3), 4, [3], "sizes"), ((2, 4, 3), 0, [3, 0], r"sizes\[1\]"), ((2, 4, 3), 8, [3, 2.0], r"sizes\[1\]"),
     ((2, 4, 2), 8, [3, 2], "x"), ((4, 3), 8, [3, 2], "x"), ((2, 4, 3), 9, [3, 2], r"params.*n = .* = 8"),
     ((2, 4, 3), 30, [3, 4, 2], r"params.*= 26.*\[2, 30\]")],
)
def test_batched_mlp_bad_arguments(x, n, sizes, match):
    with pytest.raises(ValueError, match=match):
        batched_mlp(torch.zeros(x), torch.zeros(2, n), sizes)


def test_batched_mlp_rejects_a_batch_mismatch_and_mixed_dtypes():
    with pytest.raises(ValueError, match=r"params.*B = 2"):
        batched_mlp(torch.zeros(2, 4, 3), torch.zeros(3, 8), [3, 2])
    with pytest.raises(ValueError, match="params"):
        batched_mlp(torch.zeros(2, 4, 3), torch.zeros(2, 8, dtype=torch.float64), [3, 2])


# ----------------------------------------------------------------------------------------------- vectorised
def test_no_function_loops_over_the_batch(gen):
    """The number of torch calls does not grow with the batch (only with the number of layers)."""
    c2w = _pose(gen)
    small = [
        (project_points, randn(2, 3, gen=gen), c2w, 2.0, 4, 4),
        (plucker_coordinates, randn(2, 3, gen=gen), randn(2, 3, gen=gen)),
        (bilinear_sample_2d, randn(2, 3, 4, 4, gen=gen), randn(2, 3, 2, gen=gen)),
        (batched_mlp, randn(2, 3, 2, gen=gen), _mlp_params([2, 4, 3], 2, gen), [2, 4, 3]),
    ]
    large = [
        (project_points, randn(40, 3, gen=gen), c2w, 2.0, 4, 4),
        (plucker_coordinates, randn(40, 3, gen=gen), randn(40, 3, gen=gen)),
        (bilinear_sample_2d, randn(20, 3, 4, 4, gen=gen), randn(20, 30, 2, gen=gen)),
        (batched_mlp, randn(20, 30, 2, gen=gen), _mlp_params([2, 4, 3], 20, gen), [2, 4, 3]),
    ]
    for (fn, *a), (_, *b) in zip(small, large):
        assert _calls(fn, *a) == _calls(fn, *b), fn.__name__
