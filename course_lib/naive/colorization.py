"""Loop versions for a2_pretext: colour propagation by attention (see :mod:`course_lib.naive`)."""
from __future__ import annotations

import torch

from ._workload import Workload, rand, randn

__all__ = ["attention_color_propagation_naive", "WORKLOADS"]


def attention_color_propagation_naive(ref_feats, tgt_feats, ref_colors, temperature=1.0):
    """Loop version of attention_color_propagation: one target position at a time."""
    b, d, hr, wr = ref_feats.shape
    _, _, ht, wt = tgt_feats.shape
    c = ref_colors.shape[1]
    out = ref_colors.new_zeros((b, c, ht, wt))
    for bi in range(b):
        ref = ref_feats[bi].reshape(d, hr * wr)
        refc = ref_colors[bi].reshape(c, hr * wr)
        for j in range(ht * wt):
            f_t = tgt_feats[bi, :, j // wt, j % wt]
            scores = [torch.dot(ref[:, i], f_t) / temperature for i in range(hr * wr)]
            m = max(scores)
            exps = [torch.exp(s - m) for s in scores]
            z = sum(exps)
            acc = ref_colors.new_zeros(c)
            for i in range(hr * wr):
                acc = acc + exps[i] / z * refc[:, i]
            out[bi, :, j // wt, j % wt] = acc
    return out


# ------------------------------------------------------------------------------------------------ benchmark
WORKLOADS = {
    "attention_color_propagation": Workload(
        "B=1 D=64 16x16->16x16",
        lambda s, d, g: (randn(g, d, 1, 64, 16, 16), randn(g, d, 1, 64, 16, 16), rand(g, d, 1, 3, 16, 16))),
}
