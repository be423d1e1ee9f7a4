"""Loop versions for a3_contrastive: InfoNCE, NT-Xent and CLIP (see :mod:`course_lib.naive`)."""
from __future__ import annotations

import torch

from ._workload import Workload, randn

__all__ = ["info_nce_loss_naive", "nt_xent_loss_naive", "clip_loss_naive", "WORKLOADS"]


def _cos(a, b):
    return torch.dot(a, b) / (torch.clamp(a.norm(), min=1e-12) * torch.clamp(b.norm(), min=1e-12))


def _neg_log_softmax_first(scores):
    m = max(scores)
    return -(scores[0] - m - torch.log(sum(torch.exp(s - m) for s in scores)))


def info_nce_loss_naive(query, positive, negatives, temperature=0.1):
    """InfoNCE one query at a time, scores as written (cosine / temperature)."""
    n, m, _ = negatives.shape
    total = query.new_zeros(())
    for i in range(n):
        scores = [_cos(query[i], positive[i]) / temperature]
        scores += [_cos(query[i], negatives[i, j]) / temperature for j in range(m)]
        total = total + _neg_log_softmax_first(scores)
    return total / n


def nt_xent_loss_naive(z_a, z_b, temperature=0.5):
    """NT-Xent with Python loops over queries and candidates (SimCLR's Algorithm 1 as written)."""
    # SimCLR, Algorithm 1: l(i, j) = -log exp(s_ij / t) / sum_{k != i} exp(s_ik / t), averaged over 2N anchors
    n = z_a.shape[0]
    z = torch.cat([z_a, z_b])
    total = z.new_zeros(())
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        scores = [_cos(z[i], z[p]) / temperature] + [
            _cos(z[i], z[k]) / temperature for k in range(2 * n) if k != i and k != p
        ]
        total = total + _neg_log_softmax_first(scores)
    return total / (2 * n)


def clip_loss_naive(image_emb, text_emb, logit_scale=10.0):
    """clip_loss one pair at a time: every cosine by hand, then a softmax per row (image -> text) and per column."""
    n = image_emb.shape[0]
    # logits[i][j] = logit_scale * cos(image i, text j): image i and text i are a pair
    logits = [[logit_scale * _cos(image_emb[i], text_emb[j]) for j in range(n)] for i in range(n)]
    image_to_text = image_emb.new_zeros(())
    text_to_image = image_emb.new_zeros(())
    for i in range(n):
        row = [logits[i][i]] + [logits[i][j] for j in range(n) if j != i]        # caption i first
        col = [logits[i][i]] + [logits[j][i] for j in range(n) if j != i]        # image i first
        image_to_text = image_to_text + _neg_log_softmax_first(row)
        text_to_image = text_to_image + _neg_log_softmax_first(col)
    return (image_to_text / n + text_to_image / n) / 2


# ------------------------------------------------------------------------------------------------ benchmark


WORKLOADS = {
    "info_nce_loss": Workload("N={n256} M=16 D=128", lambda s, d, g: (randn(g, d, s(256), 128), randn(g, d, s(256), 128),
                                                                      randn(g, d, s(256), 16, 128))),
    "nt_xent_loss": Workload("N={n256} D=128", lambda s, d, g: (randn(g, d, s(256), 128), randn(g, d, s(256), 128))),
    "clip_loss": Workload("N={n128} D=512", lambda s, d, g: (randn(g, d, s(128), 512), randn(g, d, s(128), 512), 100.0)),
}
