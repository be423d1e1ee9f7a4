"""Loop versions for a2_pretext: rotation and relative patch position pretext tasks (see :mod:`course_lib.naive`)."""
from __future__ import annotations

import torch

from ._workload import Workload, randn

__all__ = ["rotate_batch_naive", "relative_patch_pairs_naive", "WORKLOADS"]


def rotate_batch_naive(images):
    """Loop version of rotate_batch: one image, one quarter turn and one pixel column at a time."""
    n, c, h, w = images.shape
    out = images.new_empty((4 * n, c, h, w))
    labels = torch.empty(4 * n, dtype=torch.long, device=images.device)
    for i in range(n):
        for k in range(4):
            # k quarter turns counter-clockwise: pixel (y, x) of the result comes from the source pixel
            # reached by turning back k times: (y, x) <- (x, W-1-y) once, applied k times.
            rot = images[i]
            for _ in range(k):
                rot = torch.stack([rot[:, :, w - 1 - y] for y in range(h)], dim=1)
            out[4 * i + k] = rot
            labels[4 * i + k] = k
    return out, labels


def relative_patch_pairs_naive(images, positions, patch, gap):
    """relative_patch_pairs one image and one pixel at a time: look the label up in the table of grid cells, copy."""
    n, c, h, w = images.shape
    # the eight neighbours of the centre cell (1, 1) of the 3x3 grid, row-major: label k -> (row, column)
    neighbours = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    y0 = (h - 3 * patch - 2 * gap) // 2
    x0 = (w - 3 * patch - 2 * gap) // 2
    center = images.new_empty((n, c, patch, patch))
    neighbor = images.new_empty((n, c, patch, patch))
    for i in range(n):
        r, col = neighbours[int(positions[i])]
        for ch in range(c):
            for y in range(patch):
                for x in range(patch):
                    center[i, ch, y, x] = images[i, ch, y0 + (patch + gap) + y, x0 + (patch + gap) + x]
                    neighbor[i, ch, y, x] = images[i, ch, y0 + r * (patch + gap) + y, x0 + col * (patch + gap) + x]
    return center, neighbor


# ------------------------------------------------------------------------------------------------ benchmark
WORKLOADS = {
    "rotate_batch": Workload("{n128}x3x32x32", lambda s, d, g: (randn(g, d, s(128), 3, 32, 32),)),
    "relative_patch_pairs": Workload("{n64}x3x64x64, patch 16, gap 4", lambda s, d, g: (
        randn(g, d, s(64), 3, 64, 64), torch.randint(0, 8, (s(64),), generator=g).to(d), 16, 4)),
}
