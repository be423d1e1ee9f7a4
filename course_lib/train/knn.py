"""Weighted k-nearest-neighbour evaluation of frozen features (the standard monitor of self-supervised runs).

For a test feature f (L2-normalised) and the k most similar training features f_i with labels y_i::

    s_i = <f, f_i>                       cosine similarity
    w_i = exp(s_i / tau)
    score(c) = sum_{i in top-k} w_i [y_i = c],        prediction = argmax_c score(c)

with k = 200 and tau = 0.1 as in Wu et al. (instance discrimination) and the MoCo CIFAR-10 demo.

References:
    Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018,
    section 3.4 (weighted kNN).
    He et al., MoCo, CVPR 2020; the official CIFAR-10 demo notebook (kNN monitor, k = 200, t = 0.1).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .._validate import check_int, check_positive, check_tensor
from ..guards import require_finite

__all__ = ["knn_predict", "knn_accuracy", "extract_features"]


@torch.no_grad()
def knn_predict(
    test_feats: torch.Tensor,
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk: int = 1024,
) -> torch.Tensor:
    """Weighted kNN predictions ``[M]`` (int64) for ``test_feats [M, D]`` given ``train_feats [N, D]`` and
    ``train_labels [N]``; features need not be normalised (they are here). ``k`` is clipped to N."""
    check_tensor("test_feats", test_feats, ndim=2)
    check_tensor("train_feats", train_feats, ndim=2)
    check_tensor("train_labels", train_labels, ndim=1, floating=False)
    if train_feats.shape[0] != train_labels.shape[0] or train_feats.shape[0] == 0:
        raise ValueError(f"train_feats [N, D] and train_labels [N] must match with N >= 1, got "
                         f"{list(train_feats.shape)} and {list(train_labels.shape)}")
    if test_feats.shape[1] != train_feats.shape[1]:
        raise ValueError(f"test_feats and train_feats must have the same D, got {list(test_feats.shape)} "
                         f"and {list(train_feats.shape)}")
    require_finite("test features of the kNN evaluation", test_feats)
    require_finite("bank features of the kNN evaluation", train_feats)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    k = min(check_int("k", k, minimum=1), train_feats.shape[0])
    t = check_positive("temperature", temperature)
    bank = F.normalize(train_feats, dim=-1)
    labels = train_labels.to(bank.device)
    preds = []
    for start in range(0, test_feats.shape[0], chunk):
        q = F.normalize(test_feats[start : start + chunk].to(bank), dim=-1)      # [m, D]
        sim, idx = (q @ bank.T).topk(k, dim=-1)                                  # [m, k]
        w = (sim / t).exp()                                                      # [m, k]
        scores = torch.zeros(q.shape[0], num_classes, dtype=w.dtype, device=w.device)
        scores.scatter_add_(1, labels[idx], w)                                   # [m, C]
        preds.append(scores.argmax(-1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=bank.device)


@torch.no_grad()
def extract_features(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, device: torch.device,
                     batch_size: int = 512) -> torch.Tensor:
    """``fn`` applied to ``images`` in batches on ``device``; the result ``[N, D]`` is on the CPU."""
    out = [fn(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out)


def knn_accuracy(
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> float:
    """Fraction of ``test_labels`` that :func:`knn_predict` gets right."""
    pred = knn_predict(test_feats, train_feats, train_labels, num_classes, k, temperature)
    return float((pred.cpu() == test_labels.cpu()).float().mean()) if pred.numel() else float("nan")
