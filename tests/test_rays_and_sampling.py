"""Do get_rays, sample_stratified and sample_pdf follow the NeRF conventions exactly?"""
import pytest
import torch

from course_lib import get_rays, sample_pdf, sample_stratified
from course_lib.naive import get_rays_naive, sample_pdf_naive, sample_stratified_naive
from helpers import assert_unchanged, randn, snapshot


def _pose(gen, dtype=torch.float64):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = q
    c2w[:3, 3] = torch.randn(3, generator=gen, dtype=torch.float64)
    return c2w.to(dtype)


# ------------------------------------------------------------------------------------------------- get_rays
@pytest.mark.parametrize("h,w,focal", [(1, 1, 1.0), (3, 5, 2.5), (6, 4, 10.0)])
def test_get_rays_matches_the_pixel_loop(h, w, focal, gen):
    c2w = _pose(gen)
    for pose in (c2w, c2w[:3]):
        o, d = get_rays(h, w, focal, pose)
        o_n, d_n = get_rays_naive(h, w, focal, pose)
        torch.testing.assert_close(o, o_n)
        torch.testing.assert_close(d, d_n)


def test_identity_pose_looks_down_minus_z_with_y_up():
    o, d = get_rays(4, 6, 2.0, torch.eye(4))
    assert torch.equal(o, torch.zeros(4, 6, 3))
    assert torch.equal(d[2, 3], torch.tensor([0.0, 0.0, -1.0]))          # pixel (i=W/2, j=H/2): optical axis
    assert d[0, 3, 1] > 0 and d[3, 3, 1] < 0                              # top row points up, bottom down
    assert d[2, 0, 0] < 0 and d[2, 5, 0] > 0                              # left column points left
    torch.testing.assert_close(d[0, 0], torch.tensor([-3 / 2.0, 2 / 2.0, -1.0]))   # corner, no +0.5


def test_rays_follow_the_pose(gen):
    c2w = _pose(gen)
    o, d = get_rays(4, 4, 3.0, c2w)
    torch.testing.assert_close(o, c2w[:3, 3].expand(4, 4, 3))
    torch.testing.assert_close(d[2, 2], -c2w[:3, 2])                     # pixel (W/2, H/2) = camera's -z axis


def test_get_rays_output_is_not_a_view_and_is_differentiable(gen):
    c2w = _pose(gen).requires_grad_(True)
    before = snapshot(c2w)
    o, d = get_rays(3, 4, 2.0, c2w)
    with torch.no_grad():
        o.add_(1.0)
    assert_unchanged(before, (c2w,))
    assert torch.autograd.gradcheck(lambda p: get_rays(2, 3, 1.5, p), (_pose(gen).requires_grad_(True),))


def test_get_rays_dtype_device(device, dtype, gen):
    o, d = get_rays(2, 3, 1.0, _pose(gen, dtype).to(device))
    assert o.shape == d.shape == (2, 3, 3)
    assert o.dtype == d.dtype == dtype and o.device.type == d.device.type == device.type


@pytest.mark.parametrize(
    "h,w,f,shape,match",
    [(0, 3, 1.0, (4, 4), "height"), (3, 2.5, 1.0, (4, 4), "width"), (3, 3, 0.0, (4, 4), "focal"),
     (3, 3, -2.0, (4, 4), "focal"), (3, 3, 1.0, (3, 3), "c2w"), (3, 3, 1.0, (4, 4, 1), "c2w")],
)
def test_get_rays_bad_arguments(h, w, f, shape, match):
    with pytest.raises(ValueError, match=match):
        get_rays(h, w, f, torch.zeros(shape))


# ----------------------------------------------------------------------------------------- sample_stratified
@pytest.mark.parametrize("batch,s", [((), 1), ((4,), 8), ((2, 3), 5)])
def test_stratified_matches_the_loop_with_the_same_draws(batch, s, gen):
    o, d = randn(*batch, 3, gen=gen), randn(*batch, 3, gen=gen)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    pts, t = sample_stratified(o, d, 2.0, 6.0, s, True, g1)
    u = torch.rand((*batch, s), generator=g2, dtype=torch.float64)
    pts_n, t_n = sample_stratified_naive(o, d, 2.0, 6.0, s, True, u=u)
    torch.testing.assert_close(t, t_n)
    torch.testing.assert_close(pts, pts_n)
    pts_m, t_m = sample_stratified(o, d, 2.0, 6.0, s, perturb=False)
    torch.testing.assert_close(t_m, sample_stratified_naive(o, d, 2.0, 6.0, s, perturb=False)[1])


def test_one_sample_per_stratum_sorted_within_bounds(gen):
    o, d = randn(100, 3, gen=gen), randn(100, 3, gen=gen)
    _, t = sample_stratified(o, d, 1.0, 3.0, 10, generator=gen)
    edges = torch.linspace(1.0, 3.0, 11, dtype=torch.float64)
    assert torch.all((t >= edges[:-1]) & (t <= edges[1:]))
    assert torch.all(t[:, 1:] >= t[:, :-1])
    _, mid = sample_stratified(o, d, 1.0, 3.0, 10, perturb=False)
    torch.testing.assert_close(mid, ((edges[:-1] + edges[1:]) / 2).expand(100, 10))


def test_stratified_generator_reproduces_and_cpu_generator_works_for_any_device(device):
    o = torch.zeros(3, 3, device=device)
    d = torch.ones(3, 3, device=device)
    a = sample_stratified(o, d, 0.0, 1.0, 4, generator=torch.Generator().manual_seed(3))[1]
    b = sample_stratified(o.cpu(), d.cpu(), 0.0, 1.0, 4, generator=torch.Generator().manual_seed(3))[1]
    assert a.device.type == device.type
    torch.testing.assert_close(a.cpu(), b)


def test_stratified_broadcasts_origins_and_keeps_dtype(dtype, gen):
    o = randn(1, 3, gen=gen, dtype=dtype)
    d = randn(5, 3, gen=gen, dtype=dtype)
    before = snapshot(o, d)
    pts, t = sample_stratified(o, d, 0.5, 2.0, 3, generator=gen)
    assert pts.shape == (5, 3, 3) and t.shape == (5, 3) and pts.dtype == t.dtype == dtype
    assert_unchanged(before, (o, d))


@pytest.mark.parametrize(
    "o,d,near,far,s,match",
    [((4, 3), (4, 3), 2.0, 2.0, 4, "near"), ((4, 3), (4, 3), 3.0, 2.0, 4, "near"), ((4, 3), (4, 3), 0.0, 1.0, 0, "n_samples"),
     ((4, 2), (4, 3), 0.0, 1.0, 4, "rays_o"), ((4, 3), (5, 3), 0.0, 1.0, 4, "leading"), ((4, 3), (4, 3), 0.0, 1.0, 2.0, "n_samples")],
)
def test_stratified_bad_arguments(o, d, near, far, s, match):
    with pytest.raises(ValueError, match=match):
        sample_stratified(torch.zeros(o), torch.zeros(d), near, far, s)


# ----------------------------------------------------------------------------------------------- sample_pdf
@pytest.mark.parametrize("batch,s,n,det", [((), 1, 3, True), ((3,), 4, 7, True), ((2, 2), 6, 5, False), ((5,), 3, 1, True)])
def test_sample_pdf_matches_the_loop(batch, s, n, det, gen):
    bins = torch.sort(torch.rand((*batch, s + 1), generator=gen, dtype=torch.float64) * 4 + 2, -1).values
    weights = torch.rand((*batch, s), generator=gen, dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    out = sample_pdf(bins, weights, n, det, g1)
    u = None if det else torch.rand((*batch, n), generator=g2, dtype=torch.float64)
    torch.testing.assert_close(out, sample_pdf_naive(bins, weights, n, det, u=u))


def test_one_hot_weights_put_the_samples_in_that_bin(gen):
    bins = torch.linspace(0.0, 1.0, 5, dtype=torch.float64).expand(3, 5)
    weights = torch.zeros(3, 4, dtype=torch.float64)
    weights[:, 2] = 1.0                                   # all mass in [0.5, 0.75]
    out = sample_pdf(bins, weights, 200, generator=gen)
    assert torch.all((out >= 0.5) & (out <= 0.75))
    det = sample_pdf(bins, weights, 50, deterministic=True)
    # u = 0 and u = 1 land on the outer edges (the 1e-5 padding); every interior u lands inside the bin
    assert torch.all((det[:, 1:-1] >= 0.5) & (det[:, 1:-1] <= 0.75))


def test_all_zero_weights_give_uniform_samples():
    bins = torch.linspace(2.0, 6.0, 9, dtype=torch.float64)[None]
    out = sample_pdf(bins, torch.zeros(1, 8, dtype=torch.float64), 11, deterministic=True)
    torch.testing.assert_close(out, torch.linspace(2.0, 6.0, 11, dtype=torch.float64)[None])
    rnd = sample_pdf(bins.expand(2000, 9), torch.zeros(2000, 8, dtype=torch.float64), 8, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(rnd).all()
    hist = torch.histc(rnd, bins=8, min=2.0, max=6.0) / rnd.numel()
    assert torch.all((hist - 1 / 8).abs() < 0.01)


def test_samples_follow_the_pdf():
    bins = torch.tensor([[0.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 3.0, 0.0]], dtype=torch.float64)
    out = sample_pdf(bins, w, 40000, generator=torch.Generator().manual_seed(0))
    frac = torch.histc(out, bins=3, min=0.0, max=3.0) / out.numel()
    torch.testing.assert_close(frac, torch.tensor([0.25, 0.75, 0.0], dtype=torch.float64), atol=0.01, rtol=0)


def test_sample_pdf_output_is_detached_sorted_when_deterministic(dtype, device, gen):
    bins = torch.sort(torch.rand(4, 9, generator=gen, dtype=torch.float64), -1).values.to(dtype=dtype, device=device)
    w = torch.rand(4, 8, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device).requires_grad_(True)
    bins.requires_grad_(True)
    before = snapshot(bins, w)
    out = sample_pdf(bins, w, 16, deterministic=True)
    assert not out.requires_grad and out.dtype == dtype and out.device.type == device.type
    assert torch.all(out[:, 1:] >= out[:, :-1])
    assert torch.all((out >= bins[:, :1]) & (out <= bins[:, -1:]))
    assert_unchanged(before, (bins, w))


@pytest.mark.parametrize(
    "bins,w,n,match",
    [((4, 5), (4, 5), 3, "bins"), ((4, 5), (3, 4), 3, "bins"), ((4, 5), (4, 4), 0, "n_samples")],
)
def test_sample_pdf_bad_shapes(bins, w, n, match):
    with pytest.raises(ValueError, match=match):
        sample_pdf(torch.zeros(bins), torch.ones(w), n)


def test_sample_pdf_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        sample_pdf(torch.linspace(0, 1, 4)[None], torch.tensor([[0.5, -0.1, 0.2]]), 3)
