"""CIE L*a*b* colour space: ``rgb_to_lab`` and its inverse ``lab_to_rgb`` (used by the a2 colourisation
experiments and notebook; not graded).

Colourisation as a pretext task predicts the colour channels (a, b) of an image from its lightness L.

References:
    Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016 (colourisation in Lab).
    CIE 15:2004 Colorimetry (sRGB -> XYZ -> L*a*b*, D65 white point, 2 degree observer).
"""
from __future__ import annotations

import math

import torch

from ._validate import check_tensor

__all__ = ["rgb_to_lab", "lab_to_rgb"]

# sRGB (linear) -> XYZ for the D65 white point (IEC 61966-2-1), and the D65 reference white.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# The white point is the row sums of the matrix, so sRGB white (1, 1, 1) maps exactly to L=100, a=b=0
# (skimage and kornia use the rounded (0.95047, 1, 1.08883) and give a, b of about 1e-3 on white).
_D65_WHITE = (0.950456, 1.0, 1.088754)


def _inverse3(m):
    """Inverse of a 3x3 matrix given as nested tuples (computed once, in float64 Python arithmetic)."""
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )


_XYZ_TO_RGB = _inverse3(_RGB_TO_XYZ)
_DELTA = 6.0 / 29.0


# ---------------------------------------------------------------------------------------------- Lab colour space
# Every linear step is folded into one 3x3 matrix (+ offset), applied along the channel axis with one matmul:
#   rgb->lab:  t = diag(1/white) M lin;             [L, a, b] = F t_f + (-16, 0, 0)   with t_f = f(t)
#   lab->rgb:  f = G [L, a, b] + 16/116;            lin = M^-1 diag(white) f^-1(f)
_XYZ_TO_T = tuple(tuple(v / w for v in row) for row, w in zip(_RGB_TO_XYZ, _D65_WHITE))
_F_TO_LAB = ((0.0, 116.0, 0.0), (500.0, -500.0, 0.0), (0.0, 200.0, -200.0))
_LAB_TO_F = ((1 / 116, 1 / 500, 0.0), (1 / 116, 0.0, 0.0), (1 / 116, 0.0, -1 / 200))
_T_TO_RGB = tuple(tuple(v * w for v, w in zip(row, _D65_WHITE)) for row in _XYZ_TO_RGB)


def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _check_image(name: str, x: torch.Tensor, channel_dim: int) -> int:
    check_tensor(name, x, min_ndim=1, floating=False)
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be floating point (RGB in [0, 1]); got dtype {x.dtype}. Convert uint8 images with "
            "x.float() / 255 first."
        )
    dim = channel_dim % x.dim() if -x.dim() <= channel_dim < x.dim() else None
    if dim is None or x.shape[dim] != 3:
        raise ValueError(f"{name} must have 3 channels along dim {channel_dim}, got shape {list(x.shape)}")
    return dim


def _apply_matrix(rows, x: torch.Tensor, dim: int, offset=None) -> torch.Tensor:
    """y_c = sum_k m[c, k] x_k (+ offset_c) along the channel dimension ``dim``, as one batched matmul."""
    shape = x.shape
    x3 = x.reshape(math.prod(shape[:dim]), 3, math.prod(shape[dim + 1 :]))   # [B, 3, P] (a view)
    y = torch.matmul(_matrix(rows, x), x3)                                 # [3, 3] @ [B, 3, P] -> [B, 3, P]
    if offset is not None:
        y = y + _matrix(offset, x)[:, None]
    return y.reshape(shape)


def rgb_to_lab(rgb: torch.Tensor, channel_dim: int = -3) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE L*a*b* (D65 white, 2 degree observer).

    Math::

        linear = rgb / 12.92                      if rgb <= 0.04045
                 ((rgb + 0.055) / 1.055) ** 2.4   otherwise
        XYZ    = M_sRGB->XYZ @ linear,  divided by the D65 white (0.950456, 1, 1.088754)
        f(t)   = t ** (1/3)                       if t > (6/29)^3
                 t / (3 (6/29)^2) + 4/29          otherwise
        L = 116 f(Y) - 16,   a = 500 (f(X) - f(Y)),   b = 200 (f(Y) - f(Z))

    The power branches are evaluated on clamped inputs, so gradients are finite everywhere, including at
    black (0, 0, 0).

    Args:
        rgb: float tensor with 3 channels along ``channel_dim`` (default -3: ``[..., 3, H, W]``), values in
            [0, 1]. Integer images are rejected (divide by 255 first).

    Returns:
        Lab with the same shape, dtype and device: L in [0, 100], a and b roughly in [-128, 128].
    """
    dim = _check_image("rgb", rgb, channel_dim)
    lin = torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    t = _apply_matrix(_XYZ_TO_T, lin, dim)                                  # XYZ / white
    eps = _DELTA**3
    f = torch.where(t > eps, t.clamp(min=eps) ** (1.0 / 3.0), t / (3 * _DELTA**2) + 4.0 / 29.0)
    return _apply_matrix(_F_TO_LAB, f, dim, offset=(-16.0, 0.0, 0.0))


def lab_to_rgb(lab: torch.Tensor, channel_dim: int = -3, clip: bool = True) -> torch.Tensor:
    """CIE L*a*b* (D65) -> sRGB, the inverse of :func:`rgb_to_lab`.

    Args:
        lab: float tensor with (L, a, b) along ``channel_dim`` (default -3).
        clip: clamp the result to [0, 1] (Lab values predicted by a network can fall outside the sRGB gamut).

    Returns:
        sRGB with the same shape, dtype and device.
    """
    dim = _check_image("lab", lab, channel_dim)
    f = _apply_matrix(_LAB_TO_F, lab, dim, offset=(16 / 116,) * 3)        # (f(X/Xn), f(Y/Yn), f(Z/Zn))
    t = torch.where(f > _DELTA, f.clamp(min=_DELTA) ** 3, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    lin = _apply_matrix(_T_TO_RGB, t, dim)
    rgb = torch.where(
        lin > 0.0031308, 1.055 * lin.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * lin
    )
    return rgb.clamp(0.0, 1.0) if clip else rgb
