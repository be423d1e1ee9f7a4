"""Does splat_gaussians_2d composite 2-D Gaussians front to back by depth, exactly as volume rendering does?"""
import math

import pytest
import torch

from course_lib.naive import splat_gaussians_2d_naive
from course_lib.rendering.splatting import splat_gaussians_2d
from course_lib.rendering.volume import volume_render
from helpers import assert_unchanged, snapshot


def _scene(g, h, w, gen, c=3, dtype=torch.float64, device="cpu", scale_range=(0.3, 4.0), ties=False):
    """G random Gaussians around an h x w image (some of them opaque enough to hit the 0.99 cap)."""
    u = lambda *s: torch.rand(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    means = u(g, 2) * torch.tensor([w + 2.0, h + 2.0], dtype=torch.float64) - 1.0
    lo, hi = scale_range
    scales = lo + (hi - lo) * u(g, 2)
    angles = (2 * u(g) - 1) * math.pi
    colors = u(g, c)
    opacities = torch.where(u(g) < 0.2, torch.ones(g, dtype=torch.float64), u(g))
    depths = torch.randint(0, 3, (g,), generator=gen).double() if ties else u(g) * 10
    out = [t.to(dtype=dtype, device=device) for t in (means, scales, angles, colors, opacities, depths)]
    return (*out, h, w)


# --------------------------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("g,h,w,c,ties", [(1, 1, 1, 1, False), (3, 5, 7, 3, False), (10, 8, 6, 2, True),
                                          (6, 4, 9, 4, True), (0, 3, 2, 3, False)])
def test_matches_the_pixel_loop(g, h, w, c, ties, gen):
    args = _scene(g, h, w, gen, c=c, ties=ties)
    image, alpha = splat_gaussians_2d(*args)
    image_n, alpha_n = splat_gaussians_2d_naive(*args)
    assert image.shape == (h, w, c) and alpha.shape == (h, w)
    torch.testing.assert_close(image, image_n)
    torch.testing.assert_close(alpha, alpha_n)


def test_no_gaussians_render_black_and_transparent():
    empty = torch.zeros(0, dtype=torch.float64)
    image, alpha = splat_gaussians_2d(empty.reshape(0, 2), empty.reshape(0, 2), empty, empty.reshape(0, 3),
                                      empty, empty, 2, 3)
    assert torch.equal(image, torch.zeros(2, 3, 3, dtype=torch.float64)) and torch.equal(alpha, torch.zeros(2, 3))


# ------------------------------------------------------------------------------------------ closed forms
def _one(mean, scale, angle, opacity, color=(1.0,), h=21, w=21):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return splat_gaussians_2d(t([mean]), t([scale]), t([angle]), t([color]), t([opacity]), t([1.0]), h, w)


@pytest.mark.parametrize("opacity", [0.0, 0.3, 0.75, 0.99, 1.0])
def test_one_gaussian_at_its_mean_has_alpha_min_opacity_099(opacity):
    image, alpha = _one((10.5, 4.5), (1.5, 3.0), 0.7, opacity, color=(0.2, 1.0))   # mean on pixel (row 4, col 10)
    expected = min(opacity, 0.99)
    assert alpha[4, 10].item() == pytest.approx(expected, abs=1e-15)
    assert image[4, 10].tolist() == pytest.approx([0.2 * expected, expected], abs=1e-15)
    assert torch.all(alpha <= expected + 1e-15)                        # the mean is the brightest pixel


def test_one_standard_deviation_along_the_rotated_axes():
    # angle pi/2 turns the first axis (std 2) from +x onto +y, and the second (std 5) onto -x
    _, alpha = _one((10.5, 10.5), (2.0, 5.0), math.pi / 2, 0.8)
    one_sigma = 0.8 * math.exp(-0.5)
    assert alpha[12, 10].item() == pytest.approx(one_sigma, rel=1e-12)        # p - mu = (0, 2)
    assert alpha[10, 15].item() == pytest.approx(one_sigma, rel=1e-12)        # p - mu = (5, 0)
    assert alpha[10, 12].item() == pytest.approx(0.8 * math.exp(-0.5 * (2 / 5) ** 2), rel=1e-12)
    _, unrotated = _one((10.5, 10.5), (2.0, 5.0), 0.0, 0.8)
    assert unrotated[10, 12].item() == pytest.approx(one_sigma, rel=1e-12)    # angle 0: first axis along x


def test_a_positive_angle_turns_the_first_axis_from_x_towards_y():
    # angle pi/4: the first axis (std 2*sqrt(2)) points along (1, 1), down-right on screen, the second (std 1)
    # along (-1, 1); the offset (2, 2) is one std along the first, (2, -2) is 2*sqrt(2) stds along the second
    _, alpha = _one((10.5, 10.5), (2 * math.sqrt(2), 1.0), math.pi / 4, 0.8)
    assert alpha[12, 12].item() == pytest.approx(0.8 * math.exp(-0.5), rel=1e-12)    # p - mu = (2, 2)
    assert alpha[8, 8].item() == pytest.approx(0.8 * math.exp(-0.5), rel=1e-12)      # p - mu = (-2, -2)
    assert alpha[8, 12].item() == pytest.approx(0.8 * math.exp(-4.0), rel=1e-12)     # p - mu = (2, -2)


def _red_and_blue(depth_red, depth_blue, red_first=True):
    means = torch.full((2, 2), 2.5, dtype=torch.float64)
    scales = torch.full((2, 2), 1.0, dtype=torch.float64)
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    args = [means, scales, torch.zeros(2, dtype=torch.float64), colors, torch.ones(2, dtype=torch.float64),
            torch.tensor([depth_red, depth_blue], dtype=torch.float64)]
    if not red_first:
        args = [a.flip(0) for a in args]
    return splat_gaussians_2d(*args, 5, 5)[0][2, 2]                    # the pixel under both means


def test_the_nearer_gaussian_is_in_front_whatever_the_input_order():
    front, behind = 0.99, 0.01 * 0.99
    for red_first in (True, False):
        torch.testing.assert_close(_red_and_blue(2.0, 1.0, red_first), torch.tensor([behind, 0, front]).double())
        torch.testing.assert_close(_red_and_blue(1.0, 2.0, red_first), torch.tensor([front, 0, behind]).double())


def test_equal_depths_keep_the_input_order():
    front, behind = 0.99, 0.01 * 0.99
    torch.testing.assert_close(_red_and_blue(1.0, 1.0, red_first=True), torch.tensor([front, 0, behind]).double())
    torch.testing.assert_close(_red_and_blue(1.0, 1.0, red_first=False), torch.tensor([behind, 0, front]).double())


def test_alpha_is_one_minus_the_product_and_the_sum_of_the_weights(gen):
    means, scales, angles, _, opacities, depths, h, w = _scene(7, 6, 5, gen)
    ones = torch.ones(7, 1, dtype=torch.float64)
    image, alpha = splat_gaussians_2d(means, scales, angles, ones, opacities, depths, h, w)
    torch.testing.assert_close(image[..., 0], alpha)                   # white Gaussians: sum_g T_g alpha_g
    single = [splat_gaussians_2d(means[k:k + 1], scales[k:k + 1], angles[k:k + 1], ones[k:k + 1],
                                 opacities[k:k + 1], depths[k:k + 1], h, w)[1] for k in range(7)]
    torch.testing.assert_close(alpha, 1 - torch.prod(1 - torch.stack(single), dim=0))


def test_splatting_one_gaussian_per_sample_is_volume_rendering(gen):
    """The lecture's point: the same front-to-back compositing, with sigma_i delta_i = -log(1 - alpha_i)."""
    g, h, w = 6, 5, 4
    means, scales, angles, colors, opacities, _, _, _ = _scene(g, h, w, gen)
    t_vals = torch.sort(2 + 4 * torch.rand(g, generator=gen, dtype=torch.float64)).values   # distinct, increasing
    perm = torch.randperm(g, generator=gen)                            # hand them over in a shuffled order
    args = [a[perm] for a in (means, scales, angles, colors, opacities, t_vals)]
    image, alpha = splat_gaussians_2d(*args, h, w)
    # colours = one-hot rows make each output channel one Gaussian's compositing weight T_g alpha_g
    weights_splat, _ = splat_gaussians_2d(*args[:3], torch.eye(g, dtype=torch.float64)[perm], *args[4:], h, w)

    # per-pixel alpha of every Gaussian on its own, in depth order: [H*W, G]
    alphas = torch.stack([splat_gaussians_2d(means[k:k + 1], scales[k:k + 1], angles[k:k + 1], colors[k:k + 1],
                                             opacities[k:k + 1], t_vals[k:k + 1], h, w)[1].reshape(-1)
                          for k in range(g)], dim=-1)
    deltas = torch.cat([t_vals[1:] - t_vals[:-1], torch.tensor([1e10], dtype=torch.float64)])
    sigmas = -torch.log1p(-alphas) / deltas                            # [H*W, G]: sigma delta = -log(1 - alpha)
    rgb, weights = volume_render(sigmas, colors.expand(h * w, g, 3), t_vals)
    torch.testing.assert_close(image.reshape(-1, 3), rgb)
    torch.testing.assert_close(weights_splat.reshape(-1, g), weights)
    torch.testing.assert_close(alpha.reshape(-1), weights.sum(-1))


# ------------------------------------------------------------------------------------- gradients, stability
def test_gradcheck_on_a_tiny_image(gen):
    means, scales, angles, colors, _, depths, h, w = _scene(3, 4, 5, gen, scale_range=(1.0, 3.0))
    opacities = 0.1 + 0.7 * torch.rand(3, generator=gen, dtype=torch.float64)     # below the 0.99 cap
    inputs = tuple(t.clone().requires_grad_(True) for t in (means, scales, angles, colors, opacities))
    assert torch.autograd.gradcheck(lambda m, s, a, c, o: splat_gaussians_2d(m, s, a, c, o, depths, h, w), inputs)


def test_no_gradient_flows_into_the_depths(gen):
    means, scales, angles, colors, opacities, depths, h, w = _scene(4, 3, 3, gen)
    means.requires_grad_(True)
    depths.requires_grad_(True)
    splat_gaussians_2d(means, scales, angles, colors, opacities, depths, h, w)[0].sum().backward()
    assert means.grad is not None and torch.any(means.grad != 0) and depths.grad is None


@pytest.mark.parametrize("scale", [0.3, 1e3])
@pytest.mark.parametrize("g", [5, 300])
def test_finite_values_and_gradients_at_the_stated_scales(scale, g, dtype, gen):
    h, w = 12, 10
    means, _, angles, colors, opacities, depths, _, _ = _scene(g, h, w, gen, dtype=dtype)
    scales = torch.full((g, 2), scale, dtype=dtype)
    scales[::2, 1] = 0.3 if scale > 1 else 1e3                         # mix very thin and very wide axes
    opacities = torch.ones(g, dtype=dtype)                             # every alpha capped: T falls to ~0.01^G
    inputs = [t.clone().requires_grad_(True) for t in (means, scales, angles, colors, opacities)]
    image, alpha = splat_gaussians_2d(*inputs, depths, h, w)
    (image.sum() + alpha.sum()).backward()
    assert image.dtype == alpha.dtype == dtype
    assert torch.isfinite(image).all() and torch.isfinite(alpha).all()
    assert torch.all((alpha >= 0) & (alpha <= 1))
    assert all(torch.isfinite(t.grad).all() for t in inputs)


def test_follows_dtype_and_device_and_does_not_mutate(device, dtype, gen):
    args = _scene(5, 4, 6, gen, dtype=dtype, device=device)
    tensors = args[:6]
    before = snapshot(*tensors)
    image, alpha = splat_gaussians_2d(*args)
    for out in (image, alpha):
        assert out.dtype == dtype and out.device.type == device.type
    assert_unchanged(before, tensors)
    image_64, _ = splat_gaussians_2d(*(t.cpu().double() for t in tensors), 4, 6)
    torch.testing.assert_close(image.cpu().double(), image_64, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- errors
def _bad(gen, **change):
    names = ["means", "scales", "angles", "colors", "opacities", "depths", "height", "width"]
    args = dict(zip(names, _scene(3, 4, 4, gen)))
    args.update(change)
    return args


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(scales=torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)), "scales must be > 0"),
        (dict(scales=-torch.ones(3, 2, dtype=torch.float64)), "scales must be > 0"),
        (dict(scales=torch.full((3, 2), float("nan"), dtype=torch.float64)), "scales must be > 0"),
        (dict(opacities=torch.tensor([0.5, 1.5, 0.5], dtype=torch.float64)), r"opacities must be in \[0, 1\]"),
        (dict(opacities=torch.tensor([0.5, -0.1, 0.5], dtype=torch.float64)), r"opacities must be in \[0, 1\]"),
        (dict(scales=torch.ones(4, 2, dtype=torch.float64)), r"scales must hold G = 3 rows .* got shape \[4, 2\]"),
        (dict(angles=torch.zeros(2, dtype=torch.float64)), r"angles must hold G = 3 rows .* got shape \[2\]"),
        (dict(colors=torch.zeros(4, 3, dtype=torch.float64)), r"colors must hold G = 3 rows"),
        (dict(opacities=torch.ones(2, dtype=torch.float64)), r"opacities must hold G = 3 rows"),
        (dict(depths=torch.zeros(5)), r"depths must hold G = 3 rows"),
        (dict(means=torch.zeros(3, 3, dtype=torch.float64)), r"means must have a last dimension of size 2"),
        (dict(scales=torch.ones(3, dtype=torch.float64)), r"scales must be 2-D, got shape \[3\]"),
        (dict(angles=torch.zeros(3, 1, dtype=torch.float64)), r"angles must be 1-D, got shape \[3, 1\]"),
        (dict(colors=torch.zeros(3, dtype=torch.float64)), r"colors must be 2-D"),
        (dict(colors=torch.zeros(3, 3, dtype=torch.float32)), r"colors must have the dtype and device of means"),
        (dict(height=0), "height must be >= 1"),
        (dict(width=2.5), "width must be an int"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(change, match, gen):
    with pytest.raises(ValueError, match=match):
        splat_gaussians_2d(**_bad(gen, **change))


def test_integer_depths_are_accepted(gen):
    args = _bad(gen, depths=torch.tensor([2, 0, 1]))
    image, _ = splat_gaussians_2d(**args)
    torch.testing.assert_close(image, splat_gaussians_2d(**{**args, "depths": torch.tensor([2.0, 0.0, 1.0])})[0])
