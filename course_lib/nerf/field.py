"""Radiance fields: points (and view directions) -> density sigma >= 0 and colour in [0, 1].

* :class:`MLPField` -- the original tiny NeRF network::

      gamma(x) [3 (1 + 2 L) = 39 wide at L = 6] -> 8 x (Linear 256 + ReLU), with gamma(x) concatenated
      to the output of layer 4 (0-based) -> Linear(256 -> 4): sigma = ReLU(out[0]), rgb = sigmoid(out[1:4])

* :class:`GridField` -- explicit voxel grids (DVGO / Plenoxels style) over a box ``[lo, hi]``::

      sigma(x) = softplus(G_density(x) + shift)          "post-activation": interpolate, then activate
      rgb(x)   = sigmoid(G_color(x))                      (color_mlp = 0: view-independent RGB per vertex)
               = sigmoid(MLP([G_color(x), gamma(d)]))      (color_mlp > 0: features + view direction)

  ``shift = log(exp(-log(1 - alpha_init) / voxel) - 1)`` makes an all-zero density grid absorb ``alpha_init``
  per voxel-length step (DVGO's initialisation). Interpolating the raw value before the softplus lets one
  voxel represent a surface sharper than the voxel itself (DVGO, section 4.1).

The positional encoding is the caller's function (``positional_encoding``, the student's in the notebook),
resolved with :func:`course_lib.manifest.resolve` when left as None; ``encoding_width`` only counts columns.

References:
    Mildenhall et al., "NeRF", ECCV 2020; the authors' tiny_nerf notebook.
    Sun, Sun, Chen, "Direct Voxel Grid Optimization", CVPR 2022.
    Fridovich-Keil, Yu et al., "Plenoxels", CVPR 2022.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..manifest import resolve
from ..rendering import encoding_width
from .config import FieldConfig
from .grid import dilate, trilinear, vertex_positions

__all__ = ["MLPField", "GridField"]


class MLPField(nn.Module):
    """``forward(points [P, 3]) -> (sigma [P], rgb [P, 3])`` with positional encoding and one skip.

    ``positional_encoding(x [..., D], L) -> [..., D (1 + 2 L)]`` encodes the points (None: the reference)."""

    def __init__(self, cfg: FieldConfig, positional_encoding: Callable | None = None):
        super().__init__()
        self.cfg = cfg
        self.positional_encoding = resolve("positional_encoding", positional_encoding)
        in_dim = encoding_width(3, cfg.num_freqs)                           # 3 (1 + 2 L)
        layers = []
        for i in range(cfg.depth):
            fan_in = in_dim if i == 0 else cfg.width + (in_dim if i == cfg.skip + 1 else 0)
            layers.append(nn.Linear(fan_in, cfg.width))
        self.layers = nn.ModuleList(layers)
        self.out = nn.Linear(cfg.width, 4)

    def forward(self, points: torch.Tensor, dirs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.positional_encoding(points * self.cfg.pe_scale, self.cfg.num_freqs)   # [P, 3 (1 + 2 L)]
        h = x
        for i, layer in enumerate(self.layers):
            h = F.relu(layer(h))                                            # [P, W]
            if i == self.cfg.skip:
                h = torch.cat([h, x], dim=-1)                               # [P, W + in]
        out = self.out(h)                                                   # [P, 4]
        return F.relu(out[:, 0]), torch.sigmoid(out[:, 1:])


def _shift(alpha_init: float, voxel: float) -> float:
    return math.log(math.expm1(-math.log1p(-alpha_init) / voxel))


class GridField(nn.Module):
    """Density and colour grids over the box ``[lo, hi]`` with ``res = (X, Y, Z)`` vertices; with a colour MLP
    (``cfg.color_mlp > 0``) the view direction is encoded by ``positional_encoding`` (None: the reference)."""

    def __init__(self, cfg: FieldConfig, lo: torch.Tensor, hi: torch.Tensor, res: tuple[int, int, int],
                 positional_encoding: Callable | None = None):
        super().__init__()
        self.cfg = cfg
        self.positional_encoding = (resolve("positional_encoding", positional_encoding) if cfg.color_mlp > 0
                                    else positional_encoding)
        self.register_buffer("lo", lo.float().clone())
        self.register_buffer("hi", hi.float().clone())
        self.res = tuple(int(r) for r in res)
        self.voxel = float(((self.hi - self.lo) / (torch.tensor(self.res) - 1)).max())
        self.shift = _shift(cfg.alpha_init, self.voxel)
        self.density = nn.Parameter(torch.zeros(1, *self.res))               # [1, X, Y, Z] raw density
        self.color = nn.Parameter(torch.zeros(cfg.color_channels, *self.res))   # [C, X, Y, Z]
        self.color_net = None
        if cfg.color_mlp > 0:
            in_dim = cfg.color_channels + encoding_width(3, cfg.view_freqs)
            self.color_net = nn.Sequential(nn.Linear(in_dim, cfg.color_mlp), nn.ReLU(inplace=True),
                                           nn.Linear(cfg.color_mlp, 3))

    def extra_repr(self) -> str:
        return f"res={self.res}, box=({self.lo.tolist()}, {self.hi.tolist()})"

    def sigma(self, points: torch.Tensor) -> torch.Tensor:
        """``[P, 3] -> [P]`` density."""
        raw = trilinear(self.density, points, self.lo, self.hi)[:, 0]      # [P]
        return F.softplus(raw + self.shift)

    def rgb(self, points: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """``[P, 3], [P, 3] (unit view directions) -> [P, 3]`` colour."""
        feat = trilinear(self.color, points, self.lo, self.hi)             # [P, C]
        if self.color_net is None:
            return torch.sigmoid(feat)
        view = self.positional_encoding(dirs, self.cfg.view_freqs)             # [P, 3 (1 + 2 L)]
        return torch.sigmoid(self.color_net(torch.cat([feat, view], -1)))

    @torch.no_grad()
    def alpha_grid(self) -> torch.Tensor:
        """``[X, Y, Z]`` opacity of one voxel-length step at each vertex."""
        return -torch.expm1(-F.softplus(self.density[0] + self.shift) * self.voxel)

    @torch.no_grad()
    def occupancy(self, threshold: float) -> torch.Tensor:
        """``[X, Y, Z]`` bool: vertices whose alpha (or a neighbour's) exceeds ``threshold``."""
        return dilate(self.alpha_grid() > threshold, 1)

    @torch.no_grad()
    def resampled(self, lo: torch.Tensor, hi: torch.Tensor, max_res: int) -> "GridField":
        """A new field over ``[lo, hi]`` whose longest side has ``max_res`` vertices (the others at the same spacing),
        initialised from this one: same density (converted to the new shift) and colour features. The colour
        MLP, if any, is shared (the same module)."""
        ext = (hi - lo).cpu()
        voxel = float(ext.max()) / (max_res - 1)                              # the same spacing on every axis
        res = tuple(max(2, int(math.floor(float(e) / voxel + 0.5)) + 1) for e in ext)
        new = GridField(self.cfg, lo.cpu(), hi.cpu(), res, self.positional_encoding).to(self.density.device)
        pts = vertex_positions(new.lo, new.hi, res).reshape(-1, 3)           # [X' Y' Z', 3]
        sigma = self.sigma(pts).clamp(min=1e-10)
        raw = torch.where(sigma > 20, sigma, torch.log(torch.expm1(sigma))) - new.shift   # softplus^-1
        new.density.copy_(raw.reshape(1, *res))
        new.color.copy_(trilinear(self.color, pts, self.lo, self.hi).T.reshape(-1, *res))
        new.color_net = self.color_net
        return new
