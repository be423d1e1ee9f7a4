"""Do the batched SimCLR augmentations keep shapes and ranges, reproduce with a generator, and does each step
do what its formula says (identity when off, exact flips, equal gray channels, mean-preserving blur)?"""
import math

import pytest
import torch

from course_lib.augment import (
    AugmentConfig,
    SimCLRAugment,
    augment,
    color_jitter,
    gaussian_blur,
    random_flip,
    random_grayscale,
    random_resized_crop,
    rgb_to_gray,
)


def _images(n=6, c=3, h=32, w=32, seed=0, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g).to(dtype=dtype, device=device)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_output_keeps_shape_dtype_device_and_stays_in_unit_range(device, dtype):
    x = _images(dtype=dtype, device=device)
    cfg = AugmentConfig(blur_prob=0.5)
    y = augment(x, cfg, _gen())
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.equal(y, x)


def test_the_input_is_not_modified():
    x = _images()
    before = x.clone()
    augment(x, AugmentConfig(blur_prob=1.0), _gen())
    assert torch.equal(x, before)


def test_same_generator_seed_gives_the_same_views_and_a_new_seed_different_ones():
    x = _images()
    a = augment(x, generator=_gen(3))
    b = augment(x, generator=_gen(3))
    c = augment(x, generator=_gen(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_pair_gives_two_different_views_of_each_image():
    va, vb = SimCLRAugment().pair(_images(), _gen())
    assert va.shape == vb.shape and not torch.allclose(va, vb)


def test_everything_off_is_the_identity():
    x = _images(dtype=torch.float64)
    y = augment(x, AugmentConfig.identity(), _gen())
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)


def test_flip_is_an_exact_mirror_of_the_columns():
    x = _images()
    torch.testing.assert_close(random_flip(x, p=1.0, generator=_gen()), x.flip(-1), atol=0, rtol=0)
    assert torch.equal(random_flip(x, p=0.0, generator=_gen()), x)


def test_flip_with_half_probability_flips_some_images_and_keeps_the_rest():
    x = _images(n=64)
    y = random_flip(x, p=0.5, generator=_gen())
    flipped = torch.tensor([torch.equal(y[i], x[i].flip(-1)) for i in range(64)])
    kept = torch.tensor([torch.equal(y[i], x[i]) for i in range(64)])
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54


def test_full_crop_with_square_ratio_is_the_identity_and_small_crops_zoom_in():
    x = _images(dtype=torch.float64)
    torch.testing.assert_close(random_resized_crop(x, (1.0, 1.0), (1.0, 1.0), _gen()), x, atol=1e-12, rtol=0)
    # a linear ramp along the width: a crop of width fraction w has a slope w times the original one
    ramp = torch.linspace(0, 1, 32, dtype=torch.float64).expand(4, 3, 32, 32).contiguous()
    y = random_resized_crop(ramp, (0.25, 0.25), (1.0, 1.0), _gen())       # w = h = 0.5
    slope = (y[..., 1:] - y[..., :-1]).mean()
    assert slope.item() == pytest.approx(0.5 / 31, rel=1e-6)


def test_crop_of_a_constant_image_is_constant():
    x = torch.full((5, 3, 16, 16), 0.3)
    y = random_resized_crop(x, generator=_gen())
    torch.testing.assert_close(y, x)


def test_grayscale_makes_three_equal_channels_with_the_luma():
    x = _images()
    y = random_grayscale(x, p=1.0, generator=_gen())
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    torch.testing.assert_close(y[:, :1], 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:])
    assert torch.equal(random_grayscale(x, p=0.0, generator=_gen()), x)


def test_jitter_with_zero_strength_is_the_identity_up_to_rounding():
    x = _images(dtype=torch.float64)
    y = color_jitter(x, 0.0, 0.0, 0.0, 0.0, p=1.0, generator=_gen())
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)


def test_brightness_scales_and_hue_rotation_keeps_luma():
    x = _images(dtype=torch.float64) * 0.5                         # away from the clamp at 1
    g = _gen(7)
    y = color_jitter(x, 0.3, 0.0, 0.0, 0.0, p=1.0, generator=g)
    ratio = y / x
    per_image = ratio.flatten(1)
    torch.testing.assert_close(per_image, per_image[:, :1].expand_as(per_image))   # one factor per image
    assert bool(((per_image[:, 0] >= 0.7) & (per_image[:, 0] <= 1.3)).all())
    # a hue rotation turns the (I, Q) plane of YIQ and leaves Y alone, so luma is kept where nothing clamps
    mid = torch.full((4, 3, 8, 8), 0.5, dtype=torch.float64) + 0.05 * _images(4, 3, 8, 8, dtype=torch.float64)
    z = color_jitter(mid, 0.0, 0.0, 0.0, 0.25, p=1.0, generator=_gen(1))
    torch.testing.assert_close(rgb_to_gray(z), rgb_to_gray(mid))
    assert not torch.allclose(z, mid)


def test_saturation_zero_would_be_gray_and_keeps_gray_pixels_fixed():
    gray = torch.full((3, 3, 4, 4), 0.4, dtype=torch.float64)
    y = color_jitter(gray, 0.0, 0.0, 0.9, 0.0, p=1.0, generator=_gen())
    torch.testing.assert_close(y, gray)


def test_blur_keeps_a_constant_image_and_its_mean():
    x = torch.full((4, 3, 32, 32), 0.6, dtype=torch.float64)
    y = gaussian_blur(x, (0.5, 3.0), p=1.0, kernel_frac=0.3, generator=_gen())
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)


def test_blur_of_a_point_is_a_normalised_symmetric_gaussian():
    x = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    x[0, 0, 7, 7] = 1.0
    y = gaussian_blur(x, (1.0, 1.0), p=1.0, kernel_frac=0.4, generator=_gen())[0, 0]
    assert y.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(y, y.T)
    torch.testing.assert_close(y, y.flip(0))
    k1 = torch.exp(-torch.arange(-3, 4, dtype=torch.float64) ** 2 / 2)
    k1 = k1 / k1.sum()
    torch.testing.assert_close(y[4:11, 4:11], torch.outer(k1, k1))   # 7-tap kernel (0.4 * 15 -> 7)


def test_blur_uses_its_own_sigma_per_image():
    x = torch.zeros(6, 1, 21, 21, dtype=torch.float64)
    x[:, 0, 10, 10] = 1.0                                              # six identical points
    y = gaussian_blur(x, (0.5, 2.0), p=1.0, kernel_frac=0.5, generator=_gen(5))[:, 0]
    taps = torch.arange(-5, 6, dtype=torch.float64)                    # 11-tap kernel (0.5 * 21 -> 11)
    sigmas = []
    for i in range(6):                                                 # loop reference, one image at a time
        k = y[i].sum(0)[5:16]                                          # the 1-D kernel is the marginal
        sigma = math.sqrt(-1 / (2 * math.log(k[6].item() / k[5].item())))
        g = torch.exp(-taps**2 / (2 * sigma**2))
        g = g / g.sum()
        torch.testing.assert_close(y[i, 5:16, 5:16], torch.outer(g, g))
        sigmas.append(sigma)
    assert all(0.5 - 1e-9 <= s <= 2.0 + 1e-9 for s in sigmas)
    assert max(sigmas) - min(sigmas) > 0.1


def test_one_channel_images_work_and_skip_the_rgb_steps():
    x = _images(c=1)
    y = augment(x, AugmentConfig(grayscale_prob=1.0, blur_prob=1.0), _gen())
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.rand(3, 32, 32), "images"),
        (torch.rand(2, 4, 8, 8), "C = 1 or 3"),
        (torch.randint(0, 255, (2, 3, 8, 8)), "floating"),
    ],
)
def test_bad_images_raise_value_error_naming_the_problem(bad, match):
    with pytest.raises(ValueError, match=match):
        augment(bad)


@pytest.mark.parametrize(
    "kwargs",
    [dict(crop_scale=(0.5, 0.2)), dict(crop_scale=(0.1, 1.5)), dict(flip_prob=1.5), dict(hue=0.7),
     dict(brightness=-0.1)],
)
def test_bad_config_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        augment(_images(), AugmentConfig(**kwargs))


def test_strength_constructor_follows_simclr():
    cfg = AugmentConfig.strength(1.0)
    assert (cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue) == pytest.approx((0.8, 0.8, 0.8, 0.2))
    assert AugmentConfig().hue == pytest.approx(0.2 * 0.5) and math.isclose(AugmentConfig().brightness, 0.4)
