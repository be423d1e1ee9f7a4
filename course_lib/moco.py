"""MoCo's machinery: the momentum (key) encoder, the queue of negative keys, and MoCo's loss (assignment
a3_contrastive).

MoCo keeps a queue of keys from earlier batches, encoded by a slowly moving (momentum) copy of the encoder, so the
number of negatives no longer depends on the batch size: ``momentum_update`` moves the key encoder towards the
query encoder, ``enqueue`` writes the newest keys over the oldest, and ``moco_loss`` is InfoNCE with the key as
the positive and the queue as the negatives.

Reference:
    He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020
    (MoCo; Algorithm 1).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_int, check_positive, check_range, check_tensor

__all__ = ["momentum_update", "enqueue", "moco_loss"]


@torch.no_grad()
def momentum_update(key_encoder: nn.Module, query_encoder: nn.Module, m: float = 0.999) -> None:
    """Exponential moving average of the query encoder's parameters into the key encoder, in place.

    Math::

        theta_k <- m * theta_k + (1 - m) * theta_q         for every parameter pair

    Runs without autograd. Buffers (e.g. BatchNorm running statistics) are left alone and ``requires_grad``
    flags are unchanged. ``m = 1`` leaves the key encoder as it is, ``m = 0`` copies the query encoder.

    Args:
        key_encoder: the momentum encoder (mutated).
        query_encoder: the encoder trained by back-propagation (read only); same architecture.
        m: momentum in [0, 1].

    Raises:
        ValueError: if ``m`` is outside [0, 1] or the two modules' parameters differ in number or shape.
    """
    m = check_range("m", m, 0.0, 1.0)
    for name, mod in (("key_encoder", key_encoder), ("query_encoder", query_encoder)):
        if not isinstance(mod, nn.Module):
            raise ValueError(f"{name} must be an nn.Module, got {type(mod).__name__}")
    params_k = list(key_encoder.parameters())
    params_q = list(query_encoder.parameters())
    if len(params_k) != len(params_q):
        raise ValueError(
            f"key_encoder and query_encoder must have the same architecture, got {len(params_k)} and "
            f"{len(params_q)} parameter tensors"
        )
    for idx, (pk, pq) in enumerate(zip(params_k, params_q)):
        if pk.shape != pq.shape:
            raise ValueError(
                f"parameter {idx} differs in shape: key_encoder {list(pk.shape)} vs query_encoder {list(pq.shape)}"
            )
    for pk, pq in zip(params_k, params_q):
        pk.mul_(m).add_(pq, alpha=1.0 - m)

def enqueue(queue: torch.Tensor, ptr: int, keys: torch.Tensor) -> int:
    """Write ``keys`` into the ring buffer ``queue`` at ``ptr`` (in place) and return the new pointer.

    Math::

        queue[(ptr + arange(N)) mod K] = keys.detach()          (oldest entries are overwritten first)
        return (ptr + N) mod K

    Keys that run past the end wrap around to row 0 (nothing is dropped), so K need not be a multiple of N.

    Args:
        queue: ``[K, C]`` ring buffer (mutated; keys are cast to its dtype and device).
        ptr: index of the oldest row, ``0 <= ptr < K``.
        keys: ``[N, C]`` with ``1 <= N <= K``.

    Returns:
        The new pointer ``(ptr + N) mod K`` (a Python int).

    Raises:
        ValueError: on a wrong rank, a mismatched C, ``N < 1`` or ``N > K``, or ``ptr`` outside [0, K).
    """
    check_tensor("queue", queue, ndim=2, floating=False)
    check_tensor("keys", keys, ndim=2, floating=False)
    k, c = queue.shape
    n = keys.shape[0]
    if keys.shape[1] != c:
        raise ValueError(f"keys must be [N, C] with C = {c} from queue {list(queue.shape)}, got {list(keys.shape)}")
    if not 1 <= n <= k:
        raise ValueError(f"keys must hold 1 <= N <= K = {k} rows, got shape {list(keys.shape)}")
    ptr = check_int("ptr", ptr, 0, k - 1)
    with torch.no_grad():
        src = keys.detach().to(device=queue.device, dtype=queue.dtype)
        first = min(n, k - ptr)
        queue[ptr : ptr + first] = src[:first]                  # up to the end of the buffer
        if first < n:
            queue[: n - first] = src[first:]                    # the rest wraps around to row 0
    return (ptr + n) % k

def moco_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """MoCo's InfoNCE: one positive key per query, the queue as negatives.

    Math (inputs are already L2-normalised)::

        logits = cat([ sum(q * k, -1, keepdim=True), q @ queue.T ], 1) / temperature      [N, 1 + K]
        L = mean_n( -log softmax(logits[n])[0] )

    No gradient flows into ``k`` or ``queue`` (they come from the momentum encoder).

    Args:
        q: ``[N, C]`` queries; k: ``[N, C]`` positive keys; queue: ``[K, C]`` negative keys (K may be 0).
        temperature: > 0; stable down to 1e-3.

    Returns:
        Scalar ``[]`` with the dtype and device of ``q``.

    Raises:
        ValueError: on a wrong rank, mismatched shapes, N = 0, or ``temperature <= 0``.
    """
    t = check_positive("temperature", temperature)
    check_tensor("q", q, ndim=2)
    check_tensor("k", k, ndim=2)
    check_tensor("queue", queue, ndim=2)
    if k.shape != q.shape:
        raise ValueError(f"k must have the shape of q {list(q.shape)}, got {list(k.shape)}")
    if queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue must be [K, C] with C = {q.shape[1]} from q, got {list(queue.shape)}")
    if q.shape[0] == 0:
        raise ValueError(f"q must hold at least one row, got shape {list(q.shape)}")
    l_pos = (q * k.detach()).sum(-1, keepdim=True)          # [N, 1]
    l_neg = q @ queue.detach().T                             # [N, K]
    logits = torch.cat([l_pos, l_neg], dim=1) / t            # [N, 1 + K]
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)    # the positive key is column 0
    return F.cross_entropy(logits, target)
