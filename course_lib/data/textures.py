"""Procedural textures and colours for the synthetic datasets (glyph backgrounds, sprite surfaces).

A texture is a scalar *pattern* ``p(x, y)`` in [0, 1] evaluated at given coordinates, turned into colour by
mixing two colours: ``rgb = c0 + p * (c1 - c0)``. Every pixel of a two-tone texture therefore lies on the
segment between its two colours, which lets tests check which texture a pixel came from. Patterns are
evaluated at arbitrary coordinates, so a sprite's texture can move (and turn) with the sprite.

Pattern kinds (all band-limited, so they do not alias at 32 px):

    stripes  p = 1/2 + 1/2 sin(2 pi f u + phi)                  u, v: coordinates turned by angle a
    checker  p = 1/2 + 1/2 tanh(4 sin(2 pi f u) sin(2 pi f v))
    rings    p = 1/2 + 1/2 sin(2 pi f sqrt(u^2 + v^2) + phi)
    blobs    p = bilinear value noise on a random 6x6 lattice, stretched by f

Everything is vectorised over a batch with one set of parameters per item; randomness comes only from the
``torch.Generator`` passed in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["PatternParams", "random_pattern_params", "pattern", "hsv_to_rgb", "random_colors", "two_tone", "grid"]

KINDS = ("stripes", "checker", "rings", "blobs")
_LATTICE = 6


@dataclass
class PatternParams:
    """One pattern per batch item: ``kind [N]`` int64 index into KINDS, ``freq``/``angle``/``phase`` ``[N]``
    float32, and ``lattice [N, 1, 6, 6]`` float32 values for the blobs kind."""

    kind: torch.Tensor
    freq: torch.Tensor
    angle: torch.Tensor
    phase: torch.Tensor
    lattice: torch.Tensor


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def random_pattern_params(n: int, gen: torch.Generator, freq: tuple[float, float] = (1.0, 4.0)) -> PatternParams:
    """``n`` random patterns; ``freq`` is the range of cycles per unit length (coordinates span [-1, 1])."""
    return PatternParams(
        kind=torch.randint(0, len(KINDS), (n,), generator=gen),
        freq=_uniform(n, *freq, gen),
        angle=_uniform(n, 0.0, math.pi, gen),
        phase=_uniform(n, 0.0, 2 * math.pi, gen),
        lattice=torch.rand(n, 1, _LATTICE, _LATTICE, generator=gen),
    )


def grid(size: int, n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1]: ``(x, y)`` each ``[n, size, size]``, x to the right, y down."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1          # [size]
    y, x = torch.meshgrid(c, c, indexing="ij")                                     # [size, size] each
    return x.expand(n, size, size), y.expand(n, size, size)


def pattern(params: PatternParams, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Evaluate the patterns at coordinates ``x, y`` of shape ``[N, ...]``; returns ``[N, ...]`` in [0, 1].

    Item i uses ``params`` row i. Every kind is computed for every item and the right one is selected
    (cheaper than grouping at the sizes used here).
    """
    n = x.shape[0]
    view = (n,) + (1,) * (x.dim() - 1)
    ca, sa = params.angle.cos().view(view), params.angle.sin().view(view)           # [N] -> [N, 1, ...]
    u, v = x * ca + y * sa, -x * sa + y * ca
    f, ph = params.freq.view(view), params.phase.view(view)
    two_pi = 2 * math.pi
    stripes = 0.5 + 0.5 * torch.sin(two_pi * f * u + ph)
    checker = 0.5 + 0.5 * torch.tanh(4 * torch.sin(two_pi * f * u) * torch.sin(two_pi * f * v))
    rings = 0.5 + 0.5 * torch.sin(two_pi * f * torch.sqrt(u * u + v * v + 1e-12) + ph)
    # blobs: sample the lattice at (u, v) * f / 4, reflected at the borders; grid_sample wants [N, h, w, 2]
    flat_u, flat_v = (u * f / 4).reshape(n, 1, -1), (v * f / 4).reshape(n, 1, -1)   # [N, 1, P]
    coords = torch.stack([flat_u, flat_v], dim=-1)                                  # [N, 1, P, 2]
    blobs = F.grid_sample(params.lattice, coords, mode="bilinear", padding_mode="reflection",
                          align_corners=False).reshape(x.shape)                     # [N, 1, 1, P] -> [N, ...]
    stacked = torch.stack([stripes, checker, rings, blobs], dim=0)                  # [4, N, ...]
    index = params.kind.view(1, *view).expand(1, *x.shape)                          # [1, N, ...]
    return stacked.gather(0, index).squeeze(0).clamp(0.0, 1.0)


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV in [0, 1] (each ``[...]``) to RGB ``[..., 3]`` in [0, 1] (the standard hexcone model)."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device)
    kk = (k + h.unsqueeze(-1) * 6.0) % 6.0                                          # [..., 3]
    ramp = torch.minimum(kk, 4.0 - kk).clamp(0.0, 1.0)
    return v.unsqueeze(-1) - v.unsqueeze(-1) * s.unsqueeze(-1) * ramp


def random_colors(
    n: int,
    gen: torch.Generator,
    value: tuple[float, float] = (0.2, 1.0),
    saturation: tuple[float, float] = (0.3, 1.0),
) -> torch.Tensor:
    """``[n, 3]`` random RGB colours with uniform hue and HSV value / saturation in the given ranges."""
    h = torch.rand(n, generator=gen)
    s = _uniform(n, *saturation, gen)
    v = _uniform(n, *value, gen)
    return hsv_to_rgb(h, s, v)


def two_tone(p: torch.Tensor, c0: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
    """Mix two colours by a pattern: ``p [N, H, W]`` and ``c0, c1 [N, 3]`` -> ``[N, 3, H, W]``."""
    c0 = c0[:, :, None, None]                                                        # [N, 3, 1, 1]
    c1 = c1[:, :, None, None]
    return c0 + p.unsqueeze(1) * (c1 - c0)
