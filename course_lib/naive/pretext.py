"""Loop versions for a2_pretext: rotation pretext task (see :mod:`course_lib.naive`)."""
from __future__ import annotations

import torch

from ._workload import Workload, randn

__all__ = ["rotate_batch_naive", "WORKLOADS"]


def rotate_batch_naive(images):
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


# ------------------------------------------------------------------------------------------------ benchmark
WORKLOADS = {
    "rotate_batch": Workload("{n128}x3x32x32", lambda s, d, g: (randn(g, d, s(128), 3, 32, 32),)),
}
