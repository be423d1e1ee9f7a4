"""Loop versions for a1_gans: the GAN losses (see :mod:`course_lib.naive`)."""
from __future__ import annotations

import torch

from ._workload import Workload, randn

__all__ = ["discriminator_loss_naive", "generator_loss_naive", "WORKLOADS"]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), finite for any x
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))


def discriminator_loss_naive(logits_real, logits_fake):
    """``discriminator_loss`` summed one logit at a time."""
    total_real = logits_real.new_zeros(())
    for logit in logits_real:                                    # -log D(x) = softplus(-logit)
        total_real = total_real + _softplus(-logit)
    total_fake = logits_fake.new_zeros(())
    for logit in logits_fake:                                    # -log(1 - D(G(z))) = softplus(l)
        total_fake = total_fake + _softplus(logit)
    return total_real / len(logits_real) + total_fake / len(logits_fake)


def generator_loss_naive(logits_fake, saturating=False):
    """``generator_loss`` summed one logit at a time."""
    total = logits_fake.new_zeros(())
    for logit in logits_fake:
        total = total + (-_softplus(logit) if saturating else _softplus(-logit))
    return total / len(logits_fake)


# ------------------------------------------------------------------------------------------------ benchmark
WORKLOADS = {
    "discriminator_loss": Workload("N=M={n512}", lambda s, d, g: (randn(g, d, s(512)), randn(g, d, s(512)))),
    "generator_loss": Workload("M={n512}", lambda s, d, g: (randn(g, d, s(512)),)),
}
