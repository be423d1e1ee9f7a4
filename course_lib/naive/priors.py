"""Loop versions for a5_priors: projection, Pluecker coordinates, bilinear sampling, batched MLPs
(see :mod:`course_lib.naive`)."""
from __future__ import annotations

import math

import torch

from ._workload import Workload, rand, randn

__all__ = ["project_points_naive", "plucker_coordinates_naive", "bilinear_sample_2d_naive", "batched_mlp_naive",
           "WORKLOADS"]


def project_points_naive(points, c2w, focal, height, width):
    """project_points one point at a time: R^T (p - o) written out as dot products with the columns of R."""
    batch = points.shape[:-1]
    flat = points.reshape(-1, 3)
    uv = points.new_zeros((flat.shape[0], 2))
    depth = points.new_zeros((flat.shape[0],))
    for k in range(flat.shape[0]):
        rel = [flat[k, a] - c2w[a, 3] for a in range(3)]                       # p - o
        cam = [sum(c2w[a, b] * rel[a] for a in range(3)) for b in range(3)]    # R^T (p - o)
        z = -cam[2]
        depth[k] = z
        uv[k, 0] = focal * cam[0] / z + width / 2
        uv[k, 1] = -focal * cam[1] / z + height / 2
    return uv.reshape(*batch, 2), depth.reshape(batch)


def plucker_coordinates_naive(rays_o, rays_d):
    """plucker_coordinates one ray at a time: the length, the unit direction and the cross product by hand."""
    batch = torch.broadcast_shapes(rays_o.shape[:-1], rays_d.shape[:-1])
    flat_o = rays_o.expand(*batch, 3).reshape(-1, 3)
    flat_d = rays_d.expand(*batch, 3).reshape(-1, 3)
    out = rays_o.new_zeros((flat_o.shape[0], 6))
    for r in range(flat_o.shape[0]):
        length = torch.sqrt(sum(flat_d[r, a] ** 2 for a in range(3)))
        d = [flat_d[r, a] / length for a in range(3)]
        o = flat_o[r]
        m = [o[1] * d[2] - o[2] * d[1], o[2] * d[0] - o[0] * d[2], o[0] * d[1] - o[1] * d[0]]
        for a in range(3):
            out[r, a] = d[a]
            out[r, 3 + a] = m[a]
    return out.reshape(*batch, 6)


def bilinear_sample_2d_naive(grid, coords):
    """bilinear_sample_2d one point at a time: clamp, find the four surrounding vertices, blend them."""
    b, c, hg, wg = grid.shape
    p = coords.shape[1]
    out = grid.new_zeros((b, p, c))
    for n in range(b):
        for k in range(p):
            x = min(max(float(coords[n, k, 0]), -1.0), 1.0)
            y = min(max(float(coords[n, k, 1]), -1.0), 1.0)
            fx = (x + 1) / 2 * (wg - 1)
            fy = (y + 1) / 2 * (hg - 1)
            x0, y0 = min(int(math.floor(fx)), wg - 1), min(int(math.floor(fy)), hg - 1)
            x1, y1 = min(x0 + 1, wg - 1), min(y0 + 1, hg - 1)
            ax, ay = fx - x0, fy - y0
            for ch in range(c):
                out[n, k, ch] = ((1 - ay) * ((1 - ax) * grid[n, ch, y0, x0] + ax * grid[n, ch, y0, x1])
                                 + ay * ((1 - ax) * grid[n, ch, y1, x0] + ax * grid[n, ch, y1, x1]))
    return out


def batched_mlp_naive(x, params, sizes):
    """batched_mlp one network and one point at a time: unpack the row of params, then each neuron as a sum."""
    b, p, _ = x.shape
    out = x.new_zeros((b, p, sizes[-1]))
    for n in range(b):
        offset = 0
        layers = []                                      # (W [out, in], b [out]) read from the flat row
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            w = params[n, offset : offset + d_out * d_in].reshape(d_out, d_in)
            offset += d_out * d_in
            layers.append((w, params[n, offset : offset + d_out]))
            offset += d_out
        for k in range(p):
            y = [x[n, k, i] for i in range(sizes[0])]
            for idx, (w, bias) in enumerate(layers):
                y = [bias[o] + sum(w[o, i] * y[i] for i in range(len(y))) for o in range(w.shape[0])]
                if idx < len(layers) - 1:
                    y = [v if v > 0 else v * 0 for v in y]   # ReLU
            for o in range(sizes[-1]):
                out[n, k, o] = y[o]
    return out


# ------------------------------------------------------------------------------------------------ benchmark
def _pose(g, device):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
    c2w = torch.eye(4)
    c2w[:3, :3] = q
    c2w[:3, 3] = 4 * q[:, 2]                              # 4 units back along the camera's +z: looks at 0
    return c2w.to(device)


def _mlp(s, device, g):
    sizes = [3, 16, 16, 4]
    n = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    return randn(g, device, s(8), s(32), 3), 0.3 * randn(g, device, s(8), n), sizes


WORKLOADS = {
    "project_points": Workload("{n4096} points",
                               lambda s, d, g: (randn(g, d, s(4096), 3), _pose(g, d), 50.0, 64, 64)),
    "plucker_coordinates": Workload("{n2048} rays",
                                    lambda s, d, g: (100 * randn(g, d, s(2048), 3), randn(g, d, s(2048), 3))),
    "bilinear_sample_2d": Workload("{n4}x16x32x32 grid, {n256} points",
                                   lambda s, d, g: (randn(g, d, s(4), 16, 32, 32),
                                                    2 * rand(g, d, s(4), s(256), 2) - 1)),
    "batched_mlp": Workload("{n8} nets 3-16-16-4, {n32} points", _mlp),
}
