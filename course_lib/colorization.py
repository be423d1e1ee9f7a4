"""Colour propagation by attention (assignment a2_pretext); the Lab colour space is in :mod:`course_lib.color`.

Colourisation as a pretext task predicts the colour channels (a, b) of an image from its lightness L. For
video, Vondrick et al. predict the colours of a target frame by *copying* them from a reference frame through an
attention map computed from learned features; to copy the right colours the features must match the same
object across frames, so tracking emerges without labels.

References:
    Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016 (colourisation in Lab).
    Vondrick, Shrivastava, Fathi, Guadarrama, Murphy, "Tracking Emerges by Colorizing Videos", ECCV 2018.
"""
from __future__ import annotations

import torch

from ._validate import check_positive, check_tensor

__all__ = ["attention_color_propagation", "attention_weights"]


def attention_weights(ref_feats: torch.Tensor, tgt_feats: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Attention of every target position over the reference positions.

    Math::

        A[b, i, j] = softmax_i( <f_ref[b, :, i], f_tgt[b, :, j]> / temperature )

    with positions flattened row-major (``i = y * Wr + x``). Each column ``A[b, :, j]`` sums to 1.

    Args:
        ref_feats: ``[B, D, Hr, Wr]``; tgt_feats: ``[B, D, Ht, Wt]``; temperature > 0.

    Returns:
        ``[B, Hr*Wr, Ht*Wt]`` with the dtype and device of the features.
    """
    t = check_positive("temperature", temperature)
    check_tensor("ref_feats", ref_feats, ndim=4)
    check_tensor("tgt_feats", tgt_feats, ndim=4)
    if ref_feats.shape[:2] != tgt_feats.shape[:2]:
        raise ValueError(
            "ref_feats and tgt_feats must agree in batch size and feature width [B, D, ...], got "
            f"{list(ref_feats.shape)} and {list(tgt_feats.shape)}"
        )
    b, d = ref_feats.shape[:2]
    f_ref = ref_feats.reshape(b, d, -1)                      # [B, D, Nr]
    f_tgt = tgt_feats.reshape(b, d, -1)                      # [B, D, Nt]
    logits = torch.bmm(f_ref.transpose(1, 2), f_tgt) / t     # [B, Nr, Nt]
    return torch.softmax(logits, dim=1)                      # normalised over the reference axis


def attention_color_propagation(
    ref_feats: torch.Tensor,
    tgt_feats: torch.Tensor,
    ref_colors: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Colour the target frame by copying reference colours through feature attention.

    Math::

        A[b, i, j]  = softmax_i( <f_ref[b, :, i], f_tgt[b, :, j]> / temperature )   (over the Hr*Wr
                                                                                       reference positions)
        out[b, :, j] = sum_i A[b, i, j] * ref_colors[b, :, i]

    Positions are flattened row-major. Because each target position takes a convex combination of reference
    colours, any "colour" works: Lab channels, one-hot colour bins, or one-hot object masks (label
    propagation).

    Args:
        ref_feats: ``[B, D, Hr, Wr]`` features of the reference frame.
        tgt_feats: ``[B, D, Ht, Wt]`` features of the target frame.
        ref_colors: ``[B, C, Hr, Wr]`` colours (or labels) of the reference frame.
        temperature: softmax temperature, > 0; stable down to 1e-3 with feature norms up to 1e3.

    Returns:
        ``[B, C, Ht, Wt]`` with the dtype and device of the inputs.

    Raises:
        ValueError: on a wrong rank, mismatched batch / feature / spatial sizes, or ``temperature <= 0``.
    """
    check_tensor("ref_colors", ref_colors, ndim=4)
    attn = attention_weights(ref_feats, tgt_feats, temperature)          # [B, Nr, Nt]
    if ref_colors.shape[0] != ref_feats.shape[0] or ref_colors.shape[2:] != ref_feats.shape[2:]:
        raise ValueError(
            "ref_colors must be [B, C, Hr, Wr] with the B, Hr, Wr of ref_feats "
            f"{list(ref_feats.shape)}, got {list(ref_colors.shape)}"
        )
    b, c = ref_colors.shape[:2]
    ht, wt = tgt_feats.shape[2:]
    out = torch.bmm(ref_colors.reshape(b, c, -1), attn)                  # [B, C, Nr] @ [B, Nr, Nt] -> [B, C, Nt]
    return out.reshape(b, c, ht, wt)                                     # [B, C, Ht, Wt]
