"""Contrastive losses: InfoNCE, SimCLR's NT-Xent and CLIP's symmetric loss (assignment a3_contrastive).

InfoNCE scores one positive against M negatives with a softmax cross-entropy; minimising it maximises a lower
bound on the mutual information between the two views, ``I >= log(M + 1) - L``. SimCLR's NT-Xent uses the other
2N - 2 images of the batch as negatives; MoCo keeps a queue of keys from earlier batches, encoded by a slowly
moving (momentum) copy of the encoder (:mod:`course_lib.moco`). CLIP
applies the same idea across two modalities: each image of a batch must pick its own caption among the N
captions and each caption its own image, a symmetric N-way cross-entropy.

References:
    van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018 (InfoNCE).
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (SimCLR, NT-Xent; Algorithm 1).
    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021
    (CLIP; figure 3's symmetric cross-entropy, the learned logit scale clipped at 100).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validate import check_positive, check_tensor

__all__ = ["info_nce_loss", "nt_xent_loss", "clip_loss"]


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
