"""Does colour propagation by attention follow the formula, and is the Lab conversion right and stable?"""
import pytest
import torch

from course_lib import attention_color_propagation, lab_to_rgb, rgb_to_lab
from course_lib.colorization import attention_weights
from course_lib.naive import attention_color_propagation_naive
from helpers import assert_unchanged, randn, snapshot


@pytest.mark.parametrize(
    "b,d,ref_hw,tgt_hw,c,temp", [(1, 2, (2, 3), (3, 2), 1, 1.0), (2, 5, (4, 4), (2, 5), 3, 0.3), (3, 8, (3, 3), (3, 3), 2, 2.0)]
)
def test_matches_the_loop_from_the_formula(b, d, ref_hw, tgt_hw, c, temp, gen):
    ref, tgt = randn(b, d, *ref_hw, gen=gen), randn(b, d, *tgt_hw, gen=gen)
    colors = randn(b, c, *ref_hw, gen=gen)
    torch.testing.assert_close(
        attention_color_propagation(ref, tgt, colors, temp), attention_color_propagation_naive(ref, tgt, colors, temp)
    )


def test_attention_sums_to_one_over_reference_positions(gen):
    a = attention_weights(randn(2, 4, 3, 5, gen=gen), randn(2, 4, 2, 2, gen=gen), 0.5)
    assert a.shape == (2, 15, 4)
    torch.testing.assert_close(a.sum(1), torch.ones(2, 4, dtype=torch.float64))


def test_identical_frames_at_low_temperature_copy_colours(gen):
    feats = torch.nn.functional.normalize(randn(2, 16, 5, 5, gen=gen), dim=1) * 10
    colors = torch.rand(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    out = attention_color_propagation(feats, feats, colors, temperature=1e-3)
    torch.testing.assert_close(out, colors)


def test_constant_colours_are_reproduced_whatever_the_features(gen):
    colors = torch.full((1, 2, 3, 3), 0.25, dtype=torch.float64)
    out = attention_color_propagation(randn(1, 4, 3, 3, gen=gen), randn(1, 4, 6, 2, gen=gen), colors)
    torch.testing.assert_close(out, torch.full((1, 2, 6, 2), 0.25, dtype=torch.float64))


def test_stable_for_large_features_and_small_temperature(dtype):
    g = torch.Generator().manual_seed(0)
    ref = (torch.nn.functional.normalize(torch.randn(1, 8, 4, 4, generator=g), dim=1) * 1e3).to(dtype)
    tgt = (torch.nn.functional.normalize(torch.randn(1, 8, 4, 4, generator=g), dim=1) * 1e3).to(dtype)
    ref.requires_grad_(True)
    tgt.requires_grad_(True)
    colors = torch.rand(1, 3, 4, 4, generator=g).to(dtype).requires_grad_(True)
    out = attention_color_propagation(ref, tgt, colors, temperature=1e-3)
    assert torch.isfinite(out).all() and out.dtype == dtype
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (ref, tgt, colors))


def test_gradcheck_in_float64(gen):
    args = (randn(1, 3, 2, 2, gen=gen, requires_grad=True), randn(1, 3, 2, 3, gen=gen, requires_grad=True),
            randn(1, 2, 2, 2, gen=gen, requires_grad=True))
    assert torch.autograd.gradcheck(lambda r, t, c: attention_color_propagation(r, t, c, 0.7), args)


def test_dtype_device_and_no_mutation(device, dtype, gen):
    ref, tgt = randn(2, 4, 3, 3, gen=gen, dtype=dtype, device=device), randn(2, 4, 2, 2, gen=gen, dtype=dtype, device=device)
    colors = randn(2, 3, 3, 3, gen=gen, dtype=dtype, device=device)
    before = snapshot(ref, tgt, colors)
    out = attention_color_propagation(ref, tgt, colors)
    assert out.shape == (2, 3, 2, 2) and out.dtype == dtype and out.device.type == device.type
    assert_unchanged(before, (ref, tgt, colors))


@pytest.mark.parametrize(
    "ref,tgt,col,temp,match",
    [
        ((2, 4, 3, 3), (2, 4, 3, 3), (2, 3, 3, 3), 0.0, "temperature"),
        ((2, 4, 3, 3), (2, 4, 3, 3), (2, 3, 3, 3), -1.0, "temperature"),
        ((2, 4, 3), (2, 4, 3, 3), (2, 3, 3, 3), 1.0, "ref_feats"),
        ((2, 4, 3, 3), (2, 5, 3, 3), (2, 3, 3, 3), 1.0, "tgt_feats"),
        ((2, 4, 3, 3), (1, 4, 3, 3), (2, 3, 3, 3), 1.0, "tgt_feats"),
        ((2, 4, 3, 3), (2, 4, 3, 3), (2, 3, 3, 2), 1.0, "ref_colors"),
        ((2, 4, 3, 3), (2, 4, 3, 3), (1, 3, 3, 3), 1.0, "ref_colors"),
    ],
)
def test_bad_arguments_raise_value_error(ref, tgt, col, temp, match):
    with pytest.raises(ValueError, match=match):
        attention_color_propagation(torch.zeros(ref), torch.zeros(tgt), torch.zeros(col), temp)


# ------------------------------------------------------------------------------------------------------- Lab
def test_white_black_and_primaries_have_known_lab_values():
    rgb = torch.tensor([[1.0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    lab = rgb_to_lab(rgb, channel_dim=-1)
    torch.testing.assert_close(lab[0], torch.tensor([100.0, 0, 0], dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(lab[1], torch.zeros(3, dtype=torch.float64))
    # published sRGB/D65 values (e.g. Lindbloom's calculator): red, green, blue
    expected = torch.tensor([[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]], dtype=torch.float64)
    torch.testing.assert_close(lab[2:], expected, atol=0.05, rtol=0)


def test_round_trip_rgb_lab_rgb(gen):
    rgb = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-8, rtol=0)
    rgb32 = rgb.float()
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb32)), rgb32, atol=1e-4, rtol=0)


def test_matches_kornia_when_installed(gen):
    kornia = pytest.importorskip("kornia")
    rgb = torch.rand(2, 3, 6, 6, generator=gen)
    # kornia rounds the white point to (0.95047, 1, 1.08883): a, b differ by ~1e-2 at most
    torch.testing.assert_close(rgb_to_lab(rgb), kornia.color.rgb_to_lab(rgb), atol=2e-2, rtol=0)


def test_lab_gradients_are_finite_at_black(dtype):
    rgb = torch.zeros(1, 3, 2, 2, dtype=dtype, requires_grad=True)
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = torch.zeros(1, 3, 2, 2, dtype=dtype, requires_grad=True)
    lab_to_rgb(lab, clip=False).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_lab_gradcheck(gen):
    rgb = (torch.rand(1, 3, 2, 2, generator=gen, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))


@pytest.mark.parametrize("bad,match", [(torch.zeros(2, 4, 4, dtype=torch.uint8), "float"), (torch.zeros(1, 4, 2, 2), "3 channels")])
def test_lab_rejects_integer_images_and_wrong_channels(bad, match):
    with pytest.raises(ValueError, match=match):
        rgb_to_lab(bad)
