"""Positional (Fourier feature) encoding of coordinates.

An MLP fed raw (x, y, z) is biased towards smooth, low-frequency functions ("spectral bias"); mapping each
coordinate through sines and cosines of geometrically increasing frequency first lets it fit fine detail.
We use the lecture's convention: frequencies ``2^k * pi`` and the blocks ordered
``[x, sin(2^0 pi x), cos(2^0 pi x), sin(2^1 pi x), ...]``. (The original NeRF code leaves out the pi;
nerfstudio uses 2 pi; pytorch3d orders all sines before all cosines. The convention is pinned here because the
autograder compares numbers.)

References:
    Mildenhall et al., "NeRF", ECCV 2020, eq. 4.
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional Domains",
    NeurIPS 2020.
    Rahaman et al., "On the Spectral Bias of Neural Networks", ICML 2019.
"""
from __future__ import annotations

import math

import torch

from .._validate import check_int, check_tensor

__all__ = ["positional_encoding"]


def positional_encoding(x: torch.Tensor, num_freqs: int, include_input: bool = True) -> torch.Tensor:
    """Sin/cos encoding with frequencies ``2^k pi``, k = 0 .. L-1.

    Math::

        gamma(x) = [ x, sin(2^0 pi x), cos(2^0 pi x), sin(2^1 pi x), cos(2^1 pi x), ...,
                        sin(2^(L-1) pi x), cos(2^(L-1) pi x) ]

    each block is D wide (the function is applied to every coordinate); ``x`` is left out when
    ``include_input=False``. For 3-D points and L = 10 the width is 3 + 3*2*10 = 63.

    Args:
        x: ``[..., D]`` floating-point coordinates (any leading dims).
        num_freqs: L >= 0 (L = 0 with ``include_input`` returns a copy of ``x``).
        include_input: prepend ``x`` itself.

    Returns:
        ``[..., D * (include_input + 2 L)]`` with the dtype and device of ``x``.

    Raises:
        ValueError: if ``x`` is 0-D or not floating point, or ``num_freqs`` is not an int >= 0.
    """
    check_tensor("x", x, min_ndim=1)
    num_freqs = check_int("num_freqs", num_freqs, minimum=0)
    freqs = torch.tensor([(2.0**k) * math.pi for k in range(num_freqs)], dtype=x.dtype, device=x.device)
    xf = x[..., None, :] * freqs[:, None]                         # [..., L, D]
    feats = torch.stack([torch.sin(xf), torch.cos(xf)], dim=-2)   # [..., L, 2, D]: sin block, then cos block
    feats = feats.flatten(-3)                                     # [..., L * 2 * D], frequency-major
    if include_input:
        feats = torch.cat([x, feats], dim=-1)                     # [..., D + 2 L D]
    return feats
