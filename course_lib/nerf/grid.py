"""Dense voxel grids: trilinear interpolation, ray-box intersection and occupancy (empty-space skipping).

A grid ``[C, X, Y, Z]`` stores values at the vertices of a regular lattice spanning the box ``[lo, hi]``:
vertex ``(i, j, k)`` sits at ``lo + (hi - lo) * (i / (X - 1), j / (Y - 1), k / (Z - 1))``. Between vertices the
value is trilinear::

    p = (x - lo) / (hi - lo) * (res - 1)             continuous vertex coordinates
    i = floor(p),  f = p - i                          (per axis)
    v(x) = sum_{a, b, c in {0, 1}} w_a(f_x) w_b(f_y) w_c(f_z) G[i_x + a, i_y + b, i_z + c],
           w_0(f) = 1 - f,  w_1(f) = f

Points outside the box take the value of the nearest face (clamping). We evaluate it with ``grid_sample``
(``align_corners=True`` puts -1 and +1 exactly on the first and last vertices), whose backward pass scatters
the gradient onto the eight vertices.

References:
    Sun, Sun, Chen, "Direct Voxel Grid Optimization", CVPR 2022.
    Fridovich-Keil, Yu et al., "Plenoxels", CVPR 2022.
    Mueller et al., "Instant Neural Graphics Primitives", SIGGRAPH 2022 (occupancy grid).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["trilinear", "vertex_positions", "ray_box", "dilate", "lookup"]


def trilinear(grid: torch.Tensor, points: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Interpolate ``grid [C, X, Y, Z]`` (vertices spanning ``[lo, hi]``) at ``points [..., 3]`` -> ``[..., C]``."""
    if grid.dim() != 4:
        raise ValueError(f"grid must be [C, X, Y, Z], got shape {list(grid.shape)}")
    if points.shape[-1] != 3:
        raise ValueError(f"points must be [..., 3], got shape {list(points.shape)}")
    c = grid.shape[0]
    lead = points.shape[:-1]
    u = (points.reshape(-1, 3) - lo) / (hi - lo) * 2 - 1                # [P, 3] in [-1, 1] inside the box
    # grid_sample reads a 5-D input [1, C, D, H, W] with coordinates (w, h, d): our (X, Y, Z) = (D, H, W),
    # so the coordinate order is reversed
    g = u.flip(-1).reshape(1, -1, 1, 1, 3)                               # [1, P, 1, 1, 3]
    out = F.grid_sample(grid.unsqueeze(0), g.to(grid.dtype), mode="bilinear", padding_mode="border",
                        align_corners=True)                              # [1, C, P, 1, 1]
    return out.reshape(c, -1).T.reshape(*lead, c)                        # [..., C]


def vertex_positions(lo: torch.Tensor, hi: torch.Tensor, res: tuple[int, int, int]) -> torch.Tensor:
    """``[X, Y, Z, 3]`` world positions of the vertices."""
    axes = [torch.linspace(float(lo[i]), float(hi[i]), res[i], dtype=lo.dtype, device=lo.device) for i in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def ray_box(rays_o: torch.Tensor, rays_d: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, near: float,
            far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab test: ``(t_enter, t_exit)`` ``[R]`` of each ray inside the box, clipped to ``[near, far]``; rays
    that miss get ``t_exit == t_enter``.

    Math: ``t_0 = (lo - o) / d``, ``t_1 = (hi - o) / d`` per axis; enter = max over axes of min(t_0, t_1),
    exit = min over axes of max(t_0, t_1).
    """
    safe = torch.where(rays_d.abs() < 1e-12, torch.full_like(rays_d, 1e-12), rays_d)
    t0 = (lo - rays_o) / safe                                            # [R, 3]
    t1 = (hi - rays_o) / safe
    t_enter = torch.minimum(t0, t1).amax(-1).clamp(min=near)             # [R]
    t_exit = torch.maximum(t0, t1).amin(-1).clamp(max=far)
    return t_enter, torch.maximum(t_exit, t_enter)


def dilate(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Grow a boolean ``[X, Y, Z]`` mask by ``radius`` voxels (a (2r+1)^3 max filter)."""
    if radius <= 0:
        return mask
    m = mask.float()[None, None]                                         # [1, 1, X, Y, Z]
    return F.max_pool3d(m, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


def lookup(mask: torch.Tensor, points: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Nearest-vertex value of a boolean ``[X, Y, Z]`` mask at ``points [P, 3]`` -> ``[P]`` bool (points
    outside the box take the nearest face's value)."""
    res = torch.tensor(mask.shape, device=points.device)
    idx = ((points - lo) / (hi - lo) * (res - 1)).round().long()         # [P, 3]
    idx = torch.minimum(idx.clamp(min=0), res - 1)
    return mask[idx[:, 0], idx[:, 1], idx[:, 2]]
