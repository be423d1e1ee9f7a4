"""Positional encoding and volume rendering: the pinned conventions, the analytic cases, and stability."""
import math

import pytest
import torch

from course_lib import positional_encoding, volume_render
from course_lib.naive import positional_encoding_naive, volume_render_naive
from helpers import assert_unchanged, randn, snapshot


# ------------------------------------------------------------------------------------- positional_encoding
@pytest.mark.parametrize("batch,d,L,inc", [((5,), 3, 10, True), ((2, 3), 2, 4, False), ((), 1, 0, True), ((4,), 3, 6, True)])
def test_encoding_matches_the_loop(batch, d, L, inc, gen):
    x = randn(*batch, d, gen=gen)
    torch.testing.assert_close(positional_encoding(x, L, inc), positional_encoding_naive(x, L, inc))


@pytest.mark.parametrize("L,width", [(10, 63), (4, 27), (6, 39), (0, 3)])
def test_encoding_width_for_3d_points(L, width):
    assert positional_encoding(torch.zeros(7, 3), L).shape == (7, width)


def test_encoding_layout_has_pi_and_sin_before_cos_per_frequency():
    x = torch.tensor([[0.25, 0.5]], dtype=torch.float64)
    out = positional_encoding(x, 2)
    expected = [0.25, 0.5,
                math.sin(math.pi * 0.25), math.sin(math.pi * 0.5), math.cos(math.pi * 0.25), math.cos(math.pi * 0.5),
                math.sin(2 * math.pi * 0.25), math.sin(2 * math.pi * 0.5), math.cos(2 * math.pi * 0.25), math.cos(2 * math.pi * 0.5)]
    torch.testing.assert_close(out[0], torch.tensor(expected, dtype=torch.float64))
    no_input = positional_encoding(x, 2, include_input=False)
    torch.testing.assert_close(no_input, out[:, 2:])


def test_sin_squared_plus_cos_squared_is_one(gen):
    x = randn(50, 3, gen=gen, scale=5)
    enc = positional_encoding(x, 8, include_input=False).reshape(50, 8, 2, 3)
    torch.testing.assert_close(enc[:, :, 0] ** 2 + enc[:, :, 1] ** 2, torch.ones(50, 8, 3, dtype=torch.float64))


def test_encoding_gradcheck_dtype_device_no_mutation(device, dtype, gen):
    assert torch.autograd.gradcheck(lambda t: positional_encoding(t, 3), (randn(4, 2, gen=gen, requires_grad=True),))
    x = randn(3, 4, 3, gen=gen, dtype=dtype, device=device)
    before = snapshot(x)
    out = positional_encoding(x, 5)
    assert out.shape == (3, 4, 33) and out.dtype == dtype and out.device.type == device.type
    assert_unchanged(before, (x,))


@pytest.mark.parametrize("x,L,match", [(torch.zeros(()), 2, "x"), (torch.zeros(3, 2), -1, "num_freqs"),
                                       (torch.zeros(3, 2), 2.0, "num_freqs"), (torch.zeros(3, 2, dtype=torch.long), 2, "floating")])
def test_encoding_bad_arguments(x, L, match):
    with pytest.raises(ValueError, match=match):
        positional_encoding(x, L)


# ------------------------------------------------------------------------------------------- volume_render
def _ray_batch(gen, batch=(4,), s=8, scale=2.0):
    t = torch.sort(torch.rand((*batch, s), generator=gen, dtype=torch.float64) * 4 + 2, -1).values
    sig = torch.rand((*batch, s), generator=gen, dtype=torch.float64) * scale
    col = torch.rand((*batch, s, 3), generator=gen, dtype=torch.float64)
    return sig, col, t


@pytest.mark.parametrize("batch,s,white", [((), 1, False), ((3,), 5, True), ((2, 3), 8, False), ((4,), 16, True)])
def test_volume_render_matches_the_loop(batch, s, white, gen):
    sig, col, t = _ray_batch(gen, batch, s)
    rgb, w = volume_render(sig, col, t, white)
    rgb_n, w_n = volume_render_naive(sig, col, t, white)
    torch.testing.assert_close(rgb, rgb_n)
    torch.testing.assert_close(w, w_n)


def test_weights_telescope_to_one_minus_transmittance(gen):
    sig, col, t = _ray_batch(gen, (64,), 32, scale=0.5)
    sig[:, -1] = 0.0                                        # so the 1e10 last delta contributes nothing
    _, w = volume_render(sig, col, t)
    finite = (sig[:, :-1] * (t[:, 1:] - t[:, :-1])).sum(-1)
    torch.testing.assert_close(w.sum(-1), 1 - torch.exp(-finite), atol=1e-12, rtol=0)


def test_constant_density_has_known_opacity():
    t = torch.linspace(2.0, 6.0, 65, dtype=torch.float64)[None]
    sig = torch.full((1, 65), 0.3, dtype=torch.float64)
    sig[:, -1] = 0
    _, w = volume_render(sig, torch.ones(1, 65, 3, dtype=torch.float64), t)
    assert w.sum().item() == pytest.approx(1 - math.exp(-0.3 * 4.0), abs=1e-12)


def test_empty_ray_is_black_or_white(dtype):
    sig, col = torch.zeros(2, 6, dtype=dtype), torch.rand(2, 6, 3).to(dtype)
    t = torch.linspace(2, 6, 6, dtype=dtype).expand(2, 6)
    rgb, w = volume_render(sig, col, t)
    assert torch.equal(rgb, torch.zeros(2, 3, dtype=dtype)) and torch.equal(w, torch.zeros(2, 6, dtype=dtype))
    rgb_w, _ = volume_render(sig, col, t, white_background=True)
    assert torch.equal(rgb_w, torch.ones(2, 3, dtype=dtype))


def test_opaque_first_sample_takes_all_weight_with_finite_gradients(dtype):
    sig = torch.zeros(3, 8, dtype=dtype)
    sig[:, 0] = 1e6
    sig[:, 3] = 1e6
    sig.requires_grad_(True)
    col = torch.rand(3, 8, 3).to(dtype).requires_grad_(True)
    t = torch.linspace(2, 6, 8, dtype=dtype).expand(3, 8).clone().requires_grad_(True)
    rgb, w = volume_render(sig, col, t)
    torch.testing.assert_close(w[:, 0], torch.ones(3, dtype=dtype))
    assert torch.all(w[:, 1:] == 0)
    torch.testing.assert_close(rgb, col[:, 0].detach())
    (rgb.sum() + w.sum()).backward()
    assert all(torch.isfinite(g).all() for g in (sig.grad, col.grad, t.grad))


def test_a_shared_t_vector_broadcasts(gen):
    sig, col, t = _ray_batch(gen, (5,), 6)
    t_shared = t[0]
    torch.testing.assert_close(volume_render(sig, col, t_shared)[0], volume_render(sig, col, t_shared.expand(5, 6))[0])


def test_volume_render_gradcheck(gen):
    sig, col, t = _ray_batch(gen, (2,), 4)
    args = (sig.requires_grad_(True), col.requires_grad_(True), t.requires_grad_(True))
    assert torch.autograd.gradcheck(lambda a, b, c: volume_render(a, b, c, True), args)


def test_volume_render_dtype_device_no_mutation(device, dtype, gen):
    sig, col, t = (x.to(dtype=dtype, device=device) for x in _ray_batch(gen, (2, 3), 5))
    before = snapshot(sig, col, t)
    rgb, w = volume_render(sig, col, t)
    assert rgb.shape == (2, 3, 3) and w.shape == (2, 3, 5)
    assert rgb.dtype == w.dtype == dtype and rgb.device.type == device.type
    assert_unchanged(before, (sig, col, t))


@pytest.mark.parametrize(
    "sig,col,t,match",
    [((4, 8), (4, 8), (4, 8), "colors"), ((4, 8), (4, 7, 3), (4, 8), "colors"), ((4, 8), (4, 8, 3), (4, 7), "t_vals"),
     ((4, 8), (4, 8, 3), (3, 8), "t_vals"), ((4, 0), (4, 0, 3), (4, 0), "at least one")],
)
def test_volume_render_bad_shapes(sig, col, t, match):
    with pytest.raises(ValueError, match=match):
        volume_render(torch.zeros(sig), torch.zeros(col), torch.zeros(t))
