"""GAN losses on discriminator logits (assignment a1_gans).

The discriminator outputs a logit ``l``; ``D = sigmoid(l)`` is its belief that the input is real. Every loss is
written with ``softplus`` so it stays finite for any logit:

    -log(sigmoid(l))     = softplus(-l)
    -log(1 - sigmoid(l)) = softplus(l)

References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (the minimax game and the non-saturating
    generator loss, section 3).
    Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs", ICLR 2016 (DCGAN).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validate import check_tensor

__all__ = ["discriminator_loss", "generator_loss"]


def _check_logits(name: str, logits: torch.Tensor) -> None:
    check_tensor(name, logits, ndim=1)
    if logits.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one logit, got shape {list(logits.shape)}")


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Minimax discriminator loss on logits.

    Math::

        L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
            = mean(softplus(-logits_real)) + mean(softplus(logits_fake)),      D = sigmoid(logit)

    Args:
        logits_real: ``[N]`` discriminator logits on real images.
        logits_fake: ``[M]`` discriminator logits on generated images (N and M may differ).

    Returns:
        A scalar tensor ``[]`` with the dtype and device of the inputs. It equals ``2 log 2`` when every logit
        is 0 (the discriminator is unsure) and is finite, with finite gradients, for logits in [-1e4, 1e4].

    Raises:
        ValueError: if an input is not a 1-D floating-point tensor with at least one element.
    """
    _check_logits("logits_real", logits_real)
    _check_logits("logits_fake", logits_fake)
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(logits_fake: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """Generator loss on the discriminator's logits for generated images.

    Math::

        non-saturating (default):  L_G = -E_z[log D(G(z))]     = mean(softplus(-logits_fake))
        saturating (minimax form): L_G =  E_z[log(1 - D(G(z)))] = -mean(softplus(logits_fake))

    Both have the same fixed point, but when the discriminator confidently rejects the samples
    (``logits_fake -> -inf``) the saturating form's gradient vanishes while the non-saturating form's
    gradient tends to -1 per sample (divided by M), which is why the latter is used in practice.

    Args:
        logits_fake: ``[M]`` discriminator logits on generated images.
        saturating: use the minimax form instead of the non-saturating one.

    Returns:
        A scalar tensor ``[]`` with the dtype and device of ``logits_fake``; finite, with finite gradients,
        for logits in [-1e4, 1e4].

    Raises:
        ValueError: if ``logits_fake`` is not a 1-D floating-point tensor with at least one element.
    """
    _check_logits("logits_fake", logits_fake)
    if saturating:
        return -F.softplus(logits_fake).mean()
    return F.softplus(-logits_fake).mean()
