"""Splatting: rendering a scene made of Gaussian blobs by alpha-compositing their footprints (2-D version).

Volume rendering marches along every ray and asks a network for the density at each sample. Splatting turns
the loop around: the scene is a set of primitives (here anisotropic Gaussians with a colour and an opacity),
each primitive is "splatted" onto the image as its footprint, a 2-D Gaussian, and the footprints that cover a
pixel are blended front to back. 3-D Gaussian splatting projects each 3-D Gaussian to such a 2-D footprint
(the EWA approximation of the perspective projection) and then composites exactly as below; this module starts
from the 2-D footprints, so the Gaussians already live in the image plane and carry a depth for sorting::

    alpha_g(p) = min(o_g exp(-1/2 (p - mu_g)^T Sigma_g^-1 (p - mu_g)), 0.99)     opacity of Gaussian g at p
    T_g(p)     = prod_(h in front of g) (1 - alpha_h(p))                         light that reaches g
    image(p)   = sum_g T_g(p) alpha_g(p) c_g

This is the compositing of volume rendering (``course_lib.rendering.volume``): there ``alpha_i = 1 -
exp(-sigma_i delta_i)`` and ``T_i = prod_(j<i) (1 - alpha_j)``. Put one Gaussian per ray sample, in the order
of the samples, and the two give the same weights ``w = T alpha`` as soon as ``sigma_i delta_i = -log(1 -
alpha_i)``, the optical thickness of Gaussian i. The difference is where alpha comes from: a closed-form
footprint of a few explicit primitives (fast to rasterise, every pixel sees only the Gaussians that cover
it) instead of a density queried at many samples along every ray.

We compute the transmittance the way ``volume_render`` does, as the exponential of an exclusive cumulative
sum of the optical thicknesses ``-log(1 - alpha)``: with alpha capped at 0.99 every thickness is at most
``log 100``, so values and gradients stay finite however many Gaussians overlap (the cap is what keeps
``log(1 - alpha)`` away from ``log 0``). The implementation is dense, an ``[H*W, G]`` matrix of alphas, which
is fine for the small images of the course; a real rasteriser bins the Gaussians into screen tiles and skips
the ones whose alpha is negligible.

References:
    Kerbl, Kopanas, Leimkuehler, Drettakis, "3D Gaussian Splatting for Real-Time Radiance Field Rendering",
    ACM Transactions on Graphics (SIGGRAPH) 2023 (alpha = opacity x Gaussian, capped at 0.99; front-to-back
    blending sorted by depth).
    Zwicker, Pfister, van Baar, Gross, "EWA Volume Splatting", IEEE Visualization 2001 (Gaussian reconstruction
    kernels and their projected 2-D footprints).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_int, check_tensor

__all__ = ["splat_gaussians_2d"]


def splat_gaussians_2d(
    means: torch.Tensor,
    scales: torch.Tensor,
    angles: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render G coloured 2-D Gaussians into an ``height x width`` image, composited front to back by depth.

    Math::

        p = (i + 0.5, j + 0.5)                          centre of the pixel in row j, column i (x right, y down)
        R(a) = [[cos a, -sin a], [sin a, cos a]],       Sigma_g = R(a_g) diag(s_g^2) R(a_g)^T
        alpha_g(p) = min(o_g exp(-1/2 (p - mu_g)^T Sigma_g^-1 (p - mu_g)), 0.99)
        sort the Gaussians by increasing depth (stable: equal depths keep their input order), then
        T_g(p)   = prod_(h before g) (1 - alpha_h(p))   = exp(-sum_(h before g) -log(1 - alpha_h(p)))
        image(p) = sum_g T_g(p) alpha_g(p) c_g          (black background)
        alpha(p) = 1 - prod_g (1 - alpha_g(p))          (= sum_g T_g(p) alpha_g(p))

    The Mahalanobis distance is computed in the Gaussian's own frame: ``u = R(a)^T (p - mu)``, then
    ``(u_1 / s_1)^2 + (u_2 / s_2)^2``, which needs no matrix inverse.

    Args:
        means: ``[G, 2]`` centres ``(x, y)`` in pixels (x along columns, y along rows; the image spans
            ``[0, width] x [0, height]``; centres outside it are allowed).
        scales: ``[G, 2]`` standard deviations in pixels along the Gaussian's two axes, > 0 (stable in
            [0.3, 1e3]).
        angles: ``[G]`` rotations in radians; a positive angle turns the first axis from +x towards +y, which
            looks clockwise on screen because y points down.
        colors: ``[G, C]`` colours (C = 3 for RGB; any C works, e.g. features).
        opacities: ``[G]`` in [0, 1] (apply a sigmoid first when they are learned).
        depths: ``[G]`` depths (any real dtype); smaller is nearer. Only their order matters: the sort is not
            differentiable and no gradient flows into ``depths``.
        height, width: image size in pixels, >= 1.

    Returns:
        ``(image [H, W, C], alpha [H, W])`` with the dtype and device of ``means``. Differentiable in
        ``means``, ``scales``, ``angles``, ``colors`` and ``opacities`` (values and gradients finite for
        scales in [0.3, 1e3] pixels; where the cap of 0.99 is active the gradient with respect to that
        Gaussian's footprint is 0). G = 0 renders a black, transparent image.

    Raises:
        ValueError: on a wrong rank or a G that differs between the arguments, float arguments that do not
            share the dtype of ``means``, an argument on another device than ``means``, scales <= 0,
            opacities outside [0, 1], or ``height`` / ``width`` < 1.
    """
    check_tensor("means", means, ndim=2, last=2)
    check_tensor("scales", scales, ndim=2, last=2)
    check_tensor("angles", angles, ndim=1)
    check_tensor("colors", colors, ndim=2)
    check_tensor("opacities", opacities, ndim=1)
    check_tensor("depths", depths, ndim=1, floating=False)
    g = means.shape[0]
    for name, x in (("scales", scales), ("angles", angles), ("colors", colors), ("opacities", opacities),
                    ("depths", depths)):
        if x.shape[0] != g:
            raise ValueError(f"{name} must hold G = {g} rows like means {list(means.shape)}, got shape {list(x.shape)}")
        if x.device != means.device or (name != "depths" and x.dtype != means.dtype):
            raise ValueError(
                f"{name} must have the dtype and device of means ({means.dtype}, {means.device}), got "
                f"{x.dtype}, {x.device} (shape {list(x.shape)})"
            )
    height = check_int("height", height, minimum=1)
    width = check_int("width", width, minimum=1)
    if g > 0 and not bool((scales > 0).all()):
        raise ValueError(f"scales must be > 0, got a minimum of {scales.min().item()} (shape {list(scales.shape)})")
    if g > 0 and not bool(((opacities >= 0) & (opacities <= 1)).all()):
        raise ValueError(
            f"opacities must be in [0, 1], got values from {opacities.min().item()} to {opacities.max().item()} "
            f"(shape {list(opacities.shape)})"
        )

    order = torch.sort(depths, stable=True).indices           # [G] nearest first; ties keep input order
    mu, s, a = means[order], scales[order], angles[order]      # [G, 2], [G, 2], [G]
    col, op = colors[order], opacities[order]                  # [G, C], [G]

    ys = torch.arange(height, dtype=means.dtype, device=means.device) + 0.5   # [H] pixel-centre rows
    xs = torch.arange(width, dtype=means.dtype, device=means.device) + 0.5    # [W] pixel-centre columns
    py, px = torch.meshgrid(ys, xs, indexing="ij")             # [H, W] each
    px, py = px.reshape(-1, 1), py.reshape(-1, 1)              # [P, 1], P = H*W pixels, row-major
    dx, dy = px - mu[:, 0], py - mu[:, 1]                      # [P, G] offsets from every mean
    cos, sin = torch.cos(a), torch.sin(a)                      # [G]
    u1 = (cos * dx + sin * dy) / s[:, 0]                       # [P, G] R^T (p - mu), in units of the std
    u2 = (cos * dy - sin * dx) / s[:, 1]
    alpha = torch.clamp(op * torch.exp(-0.5 * (u1 * u1 + u2 * u2)), max=0.99)     # [P, G]

    tau = -torch.log1p(-alpha)                                 # [P, G] optical thickness, <= log(100)
    in_front = F.pad(tau[:, :-1], (1, 0)).cumsum(-1)           # [P, G] exclusive: sum over h before g
    weights = torch.exp(-in_front) * alpha                     # [P, G] T_g alpha_g
    image = (weights @ col).reshape(height, width, col.shape[1])          # [P, G] @ [G, C] -> [H, W, C]
    coverage = -torch.expm1(-tau.sum(-1)).reshape(height, width)           # 1 - prod_g (1 - alpha_g)
    return image, coverage
