"""Contrastive losses and the MoCo machinery (assignment a3_contrastive).

InfoNCE scores one positive against M negatives with a softmax cross-entropy; minimising it maximises a lower
bound on the mutual information between the two views, ``I >= log(M + 1) - L``. SimCLR's NT-Xent uses the other
2N - 2 images of the batch as negatives; MoCo keeps a queue of keys from earlier batches, encoded by a slowly
moving (momentum) copy of the encoder, so the number of negatives no longer depends on the batch size. CLIP
applies the same idea across two modalities: each image of a batch must pick its own caption among the N
captions and each caption its own image, a symmetric N-way cross-entropy.

References:
    van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018 (InfoNCE).
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (SimCLR, NT-Xent; Algorithm 1).
    He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020
    (MoCo; Algorithm 1).
    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021
    (CLIP; figure 3's symmetric cross-entropy, the learned logit scale clipped at 100).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_int, check_positive, check_range, check_tensor

__all__ = ["info_nce_loss", "nt_xent_loss", "momentum_update", "enqueue", "moco_loss", "clip_loss"]


def _cross_entropy_target0(logits: torch.Tensor) -> torch.Tensor:
    """mean_n( -log softmax(logits[n])[0] ), computed with log-sum-exp (finite for any finite logits)."""
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def info_nce_loss(
    query: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """InfoNCE with cosine-similarity scores; the positive is at index 0.

    Math::

        s(a, b) = <a, b> / (||a|| ||b|| temperature)
        logits[n] = [ s(q_n, p_n), s(q_n, n_{n,1}), ..., s(q_n, n_{n,M}) ]           (1 + M entries)
        L = mean_n( -log softmax(logits[n])[0] )
          = mean_n( logsumexp(logits[n]) - s(q_n, p_n) )

    Args:
        query: ``[N, D]``; positive: ``[N, D]``; negatives: ``[N, M, D]`` (row n holds the M negatives of
            query n; M may be 0, which gives a loss of 0).
        temperature: > 0; stable down to 1e-3 (log-sum-exp, no explicit exp).

    Returns:
        Scalar ``[]`` with the dtype and device of ``query``. Zero vectors are treated as having cosine
        similarity 0 with everything (the norm is clamped at 1e-12).

    Raises:
        ValueError: on a wrong rank, mismatched N or D, N = 0, or ``temperature <= 0``.
    """
    t = check_positive("temperature", temperature)
    check_tensor("query", query, ndim=2)
    check_tensor("positive", positive, ndim=2)
    check_tensor("negatives", negatives, ndim=3)
    if positive.shape != query.shape:
        raise ValueError(f"positive must have the shape of query {list(query.shape)}, got {list(positive.shape)}")
    if negatives.shape[0] != query.shape[0] or negatives.shape[2] != query.shape[1]:
        raise ValueError(
            f"negatives must be [N, M, D] with N, D = {list(query.shape)} from query, got {list(negatives.shape)}"
        )
    if query.shape[0] == 0:
        raise ValueError(f"query must hold at least one row, got shape {list(query.shape)}")
    q = F.normalize(query, dim=-1)
    p = F.normalize(positive, dim=-1)
    neg = F.normalize(negatives, dim=-1)
    l_pos = (q * p).sum(-1, keepdim=True)                        # [N, 1]
    l_neg = torch.bmm(neg, q.unsqueeze(-1)).squeeze(-1)          # [N, M, D] @ [N, D, 1] -> [N, M]
    logits = torch.cat([l_pos, l_neg], dim=1) / t                # [N, 1 + M]
    return _cross_entropy_target0(logits)


def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy over the 2N views of a batch.

    Math::

        z = cat([z_a, z_b])                       (2N rows; row i and row p(i) = (i + N) mod 2N are views of
                                                   the same image)
        s_ij = <z_i, z_j> / (||z_i|| ||z_j||)
        l(i) = -log( exp(s_i,p(i) / t) / sum_{k != i} exp(s_ik / t) )
        L = (1 / 2N) sum_i l(i)

    The self-similarity ``s_ii`` is removed by masking its logit to -inf (not by subtracting ``exp(1/t)``),
    so it gets exactly zero gradient. With N = 1 there are no negatives and the loss is 0; with all rows
    identical it is ``log(2N - 1)`` for every temperature.

    Args:
        z_a: ``[N, D]`` embeddings of the first views; z_b: ``[N, D]`` of the second views.
        temperature: > 0; stable down to 1e-3 in float32 (log-sum-exp, no explicit exp).

    Returns:
        Scalar ``[]`` with the dtype and device of the inputs; symmetric in ``(z_a, z_b)`` and invariant to
        permuting the batch (the same permutation on both views).

    Raises:
        ValueError: on a wrong rank, different shapes of ``z_a`` and ``z_b``, N = 0, or ``temperature <= 0``.
    """
    t = check_positive("temperature", temperature)
    check_tensor("z_a", z_a, ndim=2)
    check_tensor("z_b", z_b, ndim=2)
    if z_a.shape != z_b.shape:
        raise ValueError(f"z_a and z_b must have the same shape [N, D], got {list(z_a.shape)} and {list(z_b.shape)}")
    n = z_a.shape[0]
    if n == 0:
        raise ValueError(f"z_a must hold at least one row, got shape {list(z_a.shape)}")
    z = F.normalize(torch.cat([z_a, z_b], dim=0), dim=-1)          # [2N, D]
    logits = (z @ z.T) / t                                          # [2N, 2N]
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))           # drop k == i from the denominator
    target = torch.arange(2 * n, device=z.device).add_(n).remainder_(2 * n)   # p(i) = (i + N) mod 2N
    return F.cross_entropy(logits, target)


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
    return _cross_entropy_target0(logits)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float = 10.0) -> torch.Tensor:
    """CLIP's symmetric contrastive loss between N matching (image, text) pairs.

    Row i of ``image_emb`` and row i of ``text_emb`` describe the same thing; the other N - 1 rows of the
    batch are the negatives. The loss classifies the right caption for every image (rows of ``logits``) and
    the right image for every caption (columns), and averages the two directions.

    Math::

        img = image_emb / ||image_emb||,   txt = text_emb / ||text_emb||          (row-wise)
        logits = logit_scale * img @ txt.T                                        [N, N]
        L_img = mean_i( logsumexp_j(logits[i, :]) - logits[i, i] )                 image -> text
        L_txt = mean_j( logsumexp_i(logits[:, j]) - logits[j, j] )                 text -> image
        L = (L_img + L_txt) / 2

    Closed forms: N = 1 gives 0 (nothing to tell apart); orthonormal pairs (``img = txt``, rows orthonormal)
    give ``log(1 + (N - 1) exp(-logit_scale))``; identical rows give ``log N`` for every ``logit_scale``.
    The loss is symmetric under swapping ``image_emb`` and ``text_emb``.

    Args:
        image_emb: ``[N, D]`` image embeddings (not necessarily normalised), N >= 1.
        text_emb: ``[N, D]`` text embeddings of the same N pairs.
        logit_scale: the inverse temperature, > 0; stable up to 100 (CLIP clips its learned scale at 100).
            A Python float, or a one-element tensor (CLIP learns ``logit_scale = exp(log_scale)``), in which
            case gradients flow into it too.

    Returns:
        Scalar ``[]`` with the dtype and device of ``image_emb``. A zero vector has cosine similarity 0 with
        everything (the norm is clamped at 1e-12).

    Raises:
        ValueError: on a wrong rank, different shapes of ``image_emb`` and ``text_emb``, N = 0, or
            ``logit_scale <= 0``.
    """
    check_positive("logit_scale", logit_scale)
    scale = logit_scale.reshape(()) if isinstance(logit_scale, torch.Tensor) else float(logit_scale)
    check_tensor("image_emb", image_emb, ndim=2)
    check_tensor("text_emb", text_emb, ndim=2)
    if image_emb.shape != text_emb.shape:
        raise ValueError(
            f"image_emb and text_emb must have the same shape [N, D], got {list(image_emb.shape)} and "
            f"{list(text_emb.shape)}"
        )
    n = image_emb.shape[0]
    if n == 0:
        raise ValueError(f"image_emb must hold at least one row, got shape {list(image_emb.shape)}")
    img = F.normalize(image_emb, dim=-1)                         # [N, D]
    txt = F.normalize(text_emb, dim=-1)                          # [N, D]
    logits = scale * (img @ txt.T)                               # [N, N]; logits[i, j] = image i vs text j
    target = torch.arange(n, device=logits.device)              # the matching pair sits on the diagonal
    loss_img = F.cross_entropy(logits, target)                   # each image picks its caption
    loss_txt = F.cross_entropy(logits.T, target)                 # each caption picks its image
    return (loss_img + loss_txt) / 2
