"""Loop versions for a3_contrastive: MoCo's momentum update, queue and loss (see :mod:`course_lib.naive`)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._workload import Workload, randn
from .contrastive import _neg_log_softmax_first

__all__ = ["momentum_update_naive", "enqueue_naive", "moco_loss_naive", "WORKLOADS"]


@torch.no_grad()
def momentum_update_naive(key_encoder, query_encoder, m=0.999):
    """The momentum update one parameter entry at a time."""
    for pk, pq in zip(key_encoder.parameters(), query_encoder.parameters()):
        flat_k, flat_q = pk.view(-1), pq.reshape(-1)
        for e in range(flat_k.numel()):
            flat_k[e] = m * flat_k[e] + (1 - m) * flat_q[e]

def enqueue_naive(queue, ptr, keys):
    """The ring-buffer write one key at a time."""
    k = queue.shape[0]
    with torch.no_grad():
        for r in range(keys.shape[0]):
            queue[(ptr + r) % k] = keys[r].detach()
    return (ptr + keys.shape[0]) % k

def moco_loss_naive(q, k, queue, temperature=0.07):
    """MoCo's loss one query at a time, against its key and every queue entry."""
    n = q.shape[0]
    kd, qd = k.detach(), queue.detach()
    total = q.new_zeros(())
    for i in range(n):
        scores = [torch.dot(q[i], kd[i]) / temperature] + [
            torch.dot(q[i], qd[j]) / temperature for j in range(qd.shape[0])
        ]
        total = total + _neg_log_softmax_first(scores)
    return total / n


# ------------------------------------------------------------------------------------------------ benchmark
def _two_mlps(s, device, g):
    make = lambda: nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 64))  # noqa: E731
    k, q = make().to(device), make().to(device)
    with torch.no_grad():
        for p in list(k.parameters()) + list(q.parameters()):
            p.copy_(randn(g, device, *p.shape) * 0.05)
    return k, q, 0.99


WORKLOADS = {
    "momentum_update": Workload("MLP 128-256-64 (49k params)", _two_mlps),
    "enqueue": Workload("K=4096 C=128 N=256", lambda s, d, g: (torch.zeros(4096, 128, device=d), 4000, randn(g, d, 256, 128))),
    "moco_loss": Workload("N={n256} K=512 C=128", lambda s, d, g: tuple(
        F.normalize(x, dim=1) for x in (randn(g, d, s(256), 128), randn(g, d, s(256), 128), randn(g, d, 512, 128)))),
}
