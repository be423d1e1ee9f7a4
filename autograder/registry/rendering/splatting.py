"""Hidden checks for course_lib.rendering.splatting (assignment a4_rendering): splat_gaussians_2d.

Known mistakes: Gaussians composited back to front or in input order (depth ignored), pixel centres at (i, j)
without the +0.5, the angle's sign flipped (Sigma = R^T diag(s^2) R), scales used as variances, no 0.99 cap (or
the cap applied before the opacity), the alpha map as a sum of alphas, x and y swapped, inclusive or missing
transmittance, and the exponent without its 1/2.

References: Kerbl, Kopanas, Leimkuehler, Drettakis, "3D Gaussian Splatting for Real-Time Radiance Field
Rendering", ACM TOG (SIGGRAPH) 2023 (alpha = opacity x Gaussian capped at 0.99, front-to-back blending sorted
by depth); Zwicker, Pfister, van Baar, Gross, "EWA Volume Splatting", IEEE Visualization 2001.
"""
from __future__ import annotations

import torch

from .. import judges
from ..build import check, dtype_check, errors_check, function_spec, mutation_check
from ..core import Cases, CheckSpec, PublicCase, mistake
from ..properties import part

__all__ = ["SPECS"]

ARGS = ["means", "scales", "angles", "colors", "opacities", "depths"]


# ------------------------------------------------------------------------------------------------ recipes
def _u(shape, dt: str) -> str:
    return f"torch.rand({', '.join(str(int(s)) for s in shape)}, generator=g, dtype=torch.{dt})"


def _scene(g: int, h: int, w: int, ch: int, dt: str, **over: str) -> dict[str, str]:
    """Recipe lines of G random Gaussians around an h x w image (about one in five opacities exactly 1, so the
    0.99 cap is active near their means); ``over`` replaces lines by name."""
    lines = {
        "means": f"{_u([g, 2], dt)} * torch.tensor([{w + 2}.0, {h + 2}.0], dtype=torch.{dt}) - 1.0",
        "scales": f"{_u([g, 2], dt)} * 3.7 + 0.3",
        "angles": f"{_u([g], dt)} * 6.2832 - 3.1416",
        "colors": _u([g, ch], dt),
        "opacities": f"({_u([g], dt)} * 1.25).clamp(max=1.0)",
        "depths": f"{_u([g], dt)} * 10",
    }
    lines.update(over)
    return lines


def _add(c: Cases, lines: dict[str, str], h: int, w: int, note: str, **opt) -> None:
    c.add("\n".join(f"{k} = {v}" for k, v in lines.items()), ARGS + [str(h), str(w)], note=note, **opt)


def _s_case(c: Cases, dt: str, *, g=None, h=None, w=None, ch=None, note="", over=None, **opt) -> None:
    g, h, w, ch = g or c.randint(1, 8), h or c.randint(1, 7), w or c.randint(1, 7), ch or c.randint(1, 4)
    _add(c, _scene(g, h, w, ch, dt, **(over or {})), h, w, note or f"{dt}, G={g}, H={h}, W={w}, C={ch}", **opt)


def _s_values(c: Cases) -> None:
    for k in range(4):
        _s_case(c, c.dtype(k), h=c.randint(3, 7), w=c.randint(3, 7), grad_wrt=(0, 1, 2, 3, 4))


def _s_alpha(c: Cases) -> None:
    for k in range(2):
        _s_case(c, c.dtype(k), h=c.randint(3, 7), w=c.randint(3, 7))


def _s_layout(c: Cases) -> None:
    _s_case(c, "float64", g=5, h=1, w=6, ch=3, layout={0: "transposed", 1: "transposed", 3: "transposed"},
            note="float64, one row of pixels (H = 1); means, scales and colors stored transposed (non-contiguous)")
    _s_case(c, "float32", g=4, h=5, w=1, ch=2, layout={0: "strided", 2: "strided", 4: "strided", 5: "strided"},
            note="float32, one column of pixels (W = 1); means, angles, opacities and depths non-contiguous")


def _pile(g: int) -> dict[str, str]:
    """G opaque, wide Gaussians around the centre of a 5x5 image: every pixel sees all of them."""
    return dict(means=f"{_u([g, 2], 'float64')} * 2 + 1.5", scales=f"{_u([g, 2], 'float64')} * 2 + 2",
                opacities=f"torch.ones({g}, dtype=torch.float64)")


def _s_order(c: Cases) -> None:
    _add(c, _scene(5, 5, 5, 3, "float64", **_pile(5)), 5, 5,
         "five opaque Gaussians piled on a 5x5 image, random depths: the nearest one must be in front")
    _add(c, _scene(6, 4, 5, 3, "float32", depths="torch.randint(0, 3, (6,), generator=g).to(torch.float32)"), 4, 5,
         "float32, equal depths (0, 1 or 2): ties keep their input order (a stable sort)")
    _add(c, _scene(5, 5, 4, 2, "float64", depths="torch.randint(0, 10, (5,), generator=g)"), 5, 4,
         "int64 depths: only their order matters")
    _add(c, _scene(4, 5, 5, 3, "float64", depths=f"torch.sort({_u([4], 'float64')} * 10, descending=True).values",
                   **_pile(4)), 5, 5,
         "four opaque Gaussians handed over farthest first")


def _s_analytic(c: Cases) -> None:
    one = lambda mean, scale, angle, op, color="[[0.2, 1.0]]": dict(  # noqa: E731
        means=f"torch.tensor([{mean}], dtype=torch.float64)", scales=f"torch.tensor([{scale}], dtype=torch.float64)",
        angles=f"torch.tensor([{angle}], dtype=torch.float64)", colors=f"torch.tensor({color}, dtype=torch.float64)",
        opacities=f"torch.tensor([{op}], dtype=torch.float64)", depths="torch.tensor([1.0], dtype=torch.float64)")
    _add(c, one("[2.5, 1.5]", "[1.5, 0.8]", 0.6, 0.7), 3, 4,
         "one Gaussian centred on the pixel in row 1, column 2 (its centre is (2.5, 1.5)): alpha there is the opacity 0.7")
    _add(c, one("[2.5, 1.5]", "[1.5, 0.8]", 0.6, 1.0), 3, 4, "the same with opacity 1: alpha at its mean is capped at 0.99")
    _add(c, one("[4.5, 4.5]", "[2.8284271247461903, 1.0]", 0.7853981633974483, 0.8, "[[1.0]]"), 9, 9,
         "angle pi/4 turns the first axis (std 2 sqrt 2) from +x towards +y (down-right on screen): "
         "alpha(6.5, 6.5) = 0.8 exp(-1/2), alpha(6.5, 2.5) = 0.8 exp(-4)")
    _add(c, one("[1.5, 3.5]", "[0.7, 2.0]", 0.0, 0.9, "[[1.0]]"), 6, 3,
         "angle 0: the first axis (std 0.7) along x, the second (std 2) along y, on a 6x3 image")


def _s_edge(c: Cases) -> None:
    empty = {k: f"torch.zeros({s}, dtype=torch.float32)" for k, s in
             dict(means="0, 2", scales="0, 2", angles="0", colors="0, 3", opacities="0", depths="0").items()}
    _add(c, empty, 3, 2, "no Gaussians (G = 0): a black, transparent 3x2 image")
    _s_case(c, "float64", g=1, h=1, w=1, ch=1, note="one Gaussian, one pixel, one channel")


def _s_stability(c: Cases) -> None:
    for dt in ("float32", "float64"):
        over = dict(scales=f"0.3 + 999.7 * ({_u([40, 2], dt)} < 0.5).to(torch.{dt})", opacities=f"torch.ones(40, dtype=torch.{dt})")
        _s_case(c, dt, g=40, h=10, w=12, ch=3, over=over,
                note=f"{dt}, 40 opaque Gaussians with axes of 0.3 and 1e3 pixels: T falls to 0.01^40")
    over = dict(means="torch.randn(6, 2, generator=g, dtype=torch.float32) * 300",
                scales=f"0.3 + 999.7 * ({_u([6, 2], 'float32')} < 0.5).to(torch.float32)")
    _s_case(c, "float32", g=6, h=5, w=6, ch=3, over=over, note="float32, means hundreds of pixels outside the image")


def _s_grads(c: Cases) -> None:
    below = dict(opacities=f"{_u([5], 'float64')} * 0.8 + 0.1")
    _s_case(c, "float64", g=5, h=4, w=5, ch=3, over=below, note="float64, G=5, 4x5 image, opacities below the cap",
            grad_wrt=(0, 1, 2, 3, 4), grad=True)
    _s_case(c, "float32", g=4, h=3, w=4, ch=2, note="float32, G=4, 3x4 image", grad_wrt=(0, 1, 2, 3, 4), grad=True)
    over = dict(scales=f"0.3 + 999.7 * ({_u([12, 2], 'float64')} < 0.5).to(torch.float64)",
                opacities=f"{_u([12], 'float64')} * 0.5 + 0.5")
    _s_case(c, "float64", g=12, h=5, w=6, ch=3, over=over,
            note="float64, axes of 0.3 and 1e3 pixels; depths that require grad must get none",
            grad_wrt=(0, 1, 2, 3, 4, 5), grad=True)


def _s_errors(c: Cases) -> None:
    f64 = "torch.float64"
    bad = [
        ("scales", f"torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]], dtype={f64})", 4, 4, "a scale of 0"),
        ("scales", f"-torch.ones(3, 2, dtype={f64})", 4, 4, "negative scales"),
        ("opacities", f"torch.tensor([0.5, 1.5, 0.5], dtype={f64})", 4, 4, "an opacity of 1.5"),
        ("opacities", f"torch.tensor([0.5, -0.1, 0.5], dtype={f64})", 4, 4, "an opacity of -0.1"),
        ("colors", f"torch.rand(4, 3, generator=g, dtype={f64})", 4, 4, "colors with 4 rows for G = 3"),
        ("depths", f"torch.rand(2, generator=g, dtype={f64})", 4, 4, "depths with 2 entries for G = 3"),
        ("means", f"torch.rand(3, 3, generator=g, dtype={f64})", 4, 4, "means of shape [3, 3]"),
        ("colors", "torch.rand(3, 3, generator=g, dtype=torch.float32)", 4, 4, "float32 colors with float64 means"),
        ("height", None, 0, 4, "height=0"),
        ("width", None, 4, 0, "width=0"),
    ]
    for arg, expr, h, w, note in bad:
        lines = _scene(3, 4, 4, 3, "float64")
        if expr is not None:
            lines[arg] = expr
        _add(c, lines, h, w, note, meta={"arg": arg})


# ------------------------------------------------------------------------------------------------ mistakes
def _splat_variant(means, scales, angles, colors, opacities, depths, height, width, *, order="depth", half=0.5,
                   angle_sign=1.0, variances=False, cap=0.99, cap_first=False, coverage="product", xy=(0, 1),
                   transmittance="exclusive", exponent=0.5):
    """Wrong splatting: another compositing order, pixel grid, covariance, cap, transmittance or alpha map (arguments
    checked as the contract says, so only the mistake differs)."""
    g = means.shape[0]
    if (means.dim() != 2 or means.shape[-1] != 2 or scales.shape != (g, 2) or angles.shape != (g,)
            or colors.dim() != 2 or colors.shape[0] != g or opacities.shape != (g,) or depths.shape != (g,)
            or any(t.dtype != means.dtype for t in (scales, angles, colors, opacities)) or height < 1 or width < 1
            or (g > 0 and not bool((scales > 0).all() and ((opacities >= 0) & (opacities <= 1)).all()))):
        raise ValueError(f"means {list(means.shape)}, scales {list(scales.shape)}, angles {list(angles.shape)}, colors "
                         f"{list(colors.shape)}, opacities {list(opacities.shape)}, depths {list(depths.shape)}, height "
                         f"{height} and width {width} break the contract (positive scales, opacities in [0, 1])")
    if order == "depth":
        idx = torch.sort(depths, stable=True).indices
    elif order == "reverse":
        idx = torch.sort(depths, descending=True, stable=True).indices
    else:
        idx = torch.arange(means.shape[0], device=means.device)
    mu, s, a, col, op = means[idx], scales[idx], angles[idx] * angle_sign, colors[idx], opacities[idx]
    s = s.sqrt() if variances else s
    ys = torch.arange(height, dtype=means.dtype, device=means.device) + half
    xs = torch.arange(width, dtype=means.dtype, device=means.device) + half
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    px, py = px.reshape(-1, 1), py.reshape(-1, 1)                          # [P, 1]
    dx, dy = px - mu[:, xy[0]], py - mu[:, xy[1]]                          # [P, G]
    cos, sin = torch.cos(a), torch.sin(a)
    u1 = (cos * dx + sin * dy) / s[:, 0]
    u2 = (cos * dy - sin * dx) / s[:, 1]
    gauss = torch.exp(-exponent * (u1 * u1 + u2 * u2))
    if cap is None:
        alpha = op * gauss
    elif cap_first:
        alpha = op * torch.clamp(gauss, max=cap)
    else:
        alpha = torch.clamp(op * gauss, max=cap)
    keep = 1 - alpha                                                       # [P, G]
    excl = torch.cumprod(torch.cat([torch.ones_like(keep[:, :1]), keep[:, :-1]], 1), 1)
    if transmittance == "inclusive":
        weights = excl * keep * alpha
    elif transmittance == "none":
        weights = alpha
    else:
        weights = excl * alpha
    image = (weights @ col).reshape(height, width, col.shape[1])
    cov = alpha.sum(1) if coverage == "sum" else 1 - torch.prod(keep, 1)
    return image, cov.reshape(height, width)


def _public_scene(g, h, w, seed, dtype=torch.float64, opaque=False, wide=False):
    gen = torch.Generator().manual_seed(seed)
    u = lambda *shape: torch.rand(*shape, generator=gen, dtype=dtype)  # noqa: E731
    means = u(g, 2) * torch.tensor([w, h], dtype=dtype)
    scales = torch.where(u(g, 2) < 0.5, 0.3, 1000.0).to(dtype) if wide else u(g, 2) * 2 + 0.5
    opacities = torch.ones(g, dtype=dtype) if opaque else u(g) * 0.9 + 0.05
    return means, scales, u(g) * 6.2832 - 3.1416, u(g, 3), opacities, u(g) * 10, h, w


def _public_pile():
    means, scales, angles, colors, _, _, h, w = _public_scene(2, 5, 5, 503)
    return (torch.full((2, 2), 2.5, dtype=torch.float64), scales + 1, angles, colors, torch.ones(2, dtype=torch.float64),
            torch.tensor([3.0, 1.0], dtype=torch.float64), h, w)


def _public_zero_scale():
    means, _, *rest = _public_scene(2, 3, 3, 504)
    return (means, torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64), *rest)


SPLAT = function_spec(
    "splat_gaussians_2d",
    # float32: 1e-3 relative, so the conic form a dx^2 + 2 b dx dy + c dy^2 (3DGS's) passes with thin axes and far
    # means, where its terms cancel; every catalogued mistake changes the image by a percent or more
    tolerances={torch.float32: (1e-3, 1e-5)},
    checks=[
        CheckSpec("values", "image: alpha_g = min(o_g exp(-1/2 d^T Sigma^-1 d), 0.99) at pixel centres, composited "
                  "front to back (and keeps the autograd graph)", 2.0, _s_values, part(0, "image")),
        check("alpha", "the alpha map 1 - prod_g (1 - alpha_g)", 0.5, _s_alpha, part(1, "alpha")),
        check("layout", "one row or one column of pixels; non-contiguous inputs", 0.5, _s_layout),
        check("depth_order", "the nearest Gaussian in front whatever the input order; ties keep the input order", 1.5,
              _s_order),
        CheckSpec("analytic", "one Gaussian: alpha at its mean is min(opacity, 0.99); the axes turn with the angle", 1.0,
                  _s_analytic),
        CheckSpec("stability", "finite and correct for scales of 0.3 and 1e3 pixels and 40 opaque layers", 1.0,
                  _s_stability),
        CheckSpec("gradients", "gradients wrt means, scales, angles, colors and opacities; none into depths", 1.0,
                  _s_grads, judges.gradients),
        check("edge", "no Gaussians render a black, transparent image; a single pixel", 0.5, _s_edge, auxiliary=True),
        dtype_check(lambda c, dt, dev: _s_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _s_case(c, "float64", return_inputs=True)),
        errors_check(_s_errors, 1.0),
    ],
    mistakes=[
        mistake("back_to_front", "Gaussians composited back to front: sort by increasing depth (nearest first) and "
                "let T_g be the product over the Gaussians in front of g", _splat_variant, order="reverse"),
        mistake("input_order", "Gaussians composited in their input order: sort them by increasing depth first "
                "(torch.sort(depths, stable=True))", _splat_variant, order="input"),
        mistake("no_half_pixel", "pixel centres at (i, j): the pixel in row j, column i is centred at "
                "(i + 0.5, j + 0.5)", _splat_variant, half=0.0),
        mistake("angle_flipped", "the rotation turned the wrong way (Sigma = R^T diag(s^2) R): Sigma = R diag(s^2) R^T, "
                "so the offset in the Gaussian's frame is R^T (p - mu)", _splat_variant, angle_sign=-1.0),
        mistake("scales_as_variances", "scales used as variances: they are standard deviations, Sigma = "
                "R diag(s^2) R^T", _splat_variant, variances=True),
        mistake("no_cap", "alpha without the 0.99 cap: alpha_g = min(o_g G_g(p), 0.99)", _splat_variant, cap=None),
        mistake("cap_before_opacity", "the cap applied to the Gaussian before the opacity: alpha_g = "
                "min(o_g G_g(p), 0.99)", _splat_variant, cap_first=True),
        mistake("alpha_sum", "the alpha map as a sum of alphas: alpha(p) = 1 - prod_g (1 - alpha_g(p))",
                _splat_variant, coverage="sum"),
        mistake("xy_swapped", "x and y swapped: means[:, 0] is x (columns, i) and means[:, 1] is y (rows, j)",
                _splat_variant, xy=(1, 0)),
        mistake("inclusive_transmittance", "inclusive transmittance (T_g counts Gaussian g itself): T_g is the "
                "product over the Gaussians in front of g only", _splat_variant, transmittance="inclusive"),
        mistake("no_transmittance", "image = sum_g alpha_g c_g without the transmittance T_g of the Gaussians in "
                "front", _splat_variant, transmittance="none"),
        mistake("exponent_without_half", "exp(-d^T Sigma^-1 d) without the 1/2: alpha_g = o_g exp(-1/2 d^T "
                "Sigma^-1 d)", _splat_variant, exponent=1.0),
    ],
    public=[
        PublicCase("G=4 Gaussians on a 5x6 image, C=3 (float64)", lambda: _public_scene(4, 5, 6, 501)),
        PublicCase("two opaque Gaussians on one pixel, the far one first in the input", _public_pile),
        PublicCase("scales of 0.3 and 1e3 pixels, 30 opaque Gaussians stay finite (float32)",
                   lambda: _public_scene(30, 6, 7, 502, torch.float32, opaque=True, wide=True)),
        PublicCase("a zero scale raises ValueError", _public_zero_scale, "raises"),
    ],
)

SPECS = [SPLAT]
