"""A small DCGAN for 32x32 images and its training loop (assignment a1_gans).

The architecture follows the DCGAN guidelines (Radford et al., section 3): strided convolutions instead of
pooling in the discriminator and fractionally-strided (transposed) convolutions in the generator, BatchNorm in
both networks except the generator's output and the discriminator's input, ReLU in the generator with Tanh at
the output, LeakyReLU(0.2) in the discriminator, weights from N(0, 0.02), Adam with lr 2e-4 and beta1 0.5.
The discriminator outputs a *logit*, so the losses are computed with softplus (see :mod:`course_lib.gan`).

The training loop takes the two loss functions as arguments, so the notebook trains with the student's own
``discriminator_loss`` / ``generator_loss``.

References:
    Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional Generative
    Adversarial Networks", ICLR 2016.
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn

from .guards import backward_and_step
from .utils import progress_bar

__all__ = ["DCGANConfig", "Generator", "Discriminator", "init_weights", "train_dcgan", "GANHistory", "sample"]


@dataclass(frozen=True)
class DCGANConfig:
    """Sizes and optimiser settings. Images are ``[channels, 32, 32]`` in [-1, 1] (Tanh output)."""

    z_dim: int = 64
    channels: int = 1
    g_width: int = 32          # generator feature maps at 16x16 (x2 at 8x8, x4 at 4x4)
    d_width: int = 32          # discriminator feature maps at 16x16 (x2 at 8x8, x4 at 4x4)
    lr: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 64


class Generator(nn.Module):
    """z ``[N, z_dim]`` -> images ``[N, C, 32, 32]`` in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        w = cfg.g_width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(cfg.z_dim, 4 * w, 4, 1, 0, bias=False),   # [N, 4w, 4, 4]
            nn.BatchNorm2d(4 * w), nn.ReLU(True),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False),       # [N, 2w, 8, 8]
            nn.BatchNorm2d(2 * w), nn.ReLU(True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),           # [N, w, 16, 16]
            nn.BatchNorm2d(w), nn.ReLU(True),
            nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1),                # [N, C, 32, 32]
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])                             # [N, z] -> [N, z, 1, 1]


class Discriminator(nn.Module):
    """images ``[N, C, 32, 32]`` -> logits ``[N]`` (D(x) = sigmoid(logit))."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        w = cfg.d_width
        self.net = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 4, 2, 1), nn.LeakyReLU(0.2, True),                           # [N, w, 16, 16]
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True),     # [N, 2w, 8, 8]
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),  # [N, 4w, 4, 4]
            nn.Conv2d(4 * w, 1, 4, 1, 0),                                                           # [N, 1, 1, 1]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()                                     # [N, 1, 1, 1] -> [N]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02); BatchNorm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass
class GANHistory:
    """Per-step losses and the fixed-noise samples saved along the way (``[N, C, 32, 32]`` in [0, 1])."""

    d_loss: list[float]
    g_loss: list[float]
    snapshots: list[tuple[int, torch.Tensor]]


def _batches(images: torch.Tensor, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    while True:
        perm = torch.randperm(images.shape[0], generator=gen)
        for start in range(0, images.shape[0] - batch_size + 1, batch_size):
            yield images[perm[start : start + batch_size]]


def train_dcgan(
    images: torch.Tensor,
    steps: int,
    discriminator_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    generator_loss: Callable[..., torch.Tensor],
    cfg: DCGANConfig = DCGANConfig(),
    *,
    saturating: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    snapshot_every: int = 0,
    progress: bool = True,
) -> tuple[Generator, Discriminator, GANHistory]:
    """Train a DCGAN on ``images`` ``[N, C, 32, 32]`` in [0, 1] for ``steps`` alternating D/G updates.

    One step: a D update on a real batch and a detached fake batch with ``discriminator_loss``, then a G update
    on a fresh fake batch with ``generator_loss(logits, saturating=saturating)``.

    Raises:
        ValueError: if ``images`` is not ``[N, cfg.channels, 32, 32]`` with N >= batch size, or steps < 1.
        course_lib.guards.NonFiniteError: when a loss or a gradient becomes NaN / infinite (the message names
            the loss and the step, and whether its logits were already non-finite).
    """
    if images.dim() != 4 or tuple(images.shape[1:]) != (cfg.channels, 32, 32):
        raise ValueError(f"images must be [N, {cfg.channels}, 32, 32], got {list(images.shape)}")
    if images.shape[0] < cfg.batch_size:
        raise ValueError(f"need at least batch_size={cfg.batch_size} images, got {images.shape[0]}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    g_net, d_net = Generator(cfg).to(device), Discriminator(cfg).to(device)
    g_net.apply(init_weights)
    d_net.apply(init_weights)
    opt_g = torch.optim.Adam(g_net.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(d_net.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    fixed_z = torch.randn(64, cfg.z_dim, generator=gen).to(device)
    data = _batches(images * 2 - 1, cfg.batch_size, gen)                # [0, 1] -> [-1, 1] (Tanh range)
    history = GANHistory([], [], [])

    for step in progress_bar(range(steps), desc="DCGAN", enabled=progress):
        real = next(data).to(device)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen).to(device)
        fake = g_net(z)
        logits_real, logits_fake = d_net(real), d_net(fake.detach())      # no gradient into G on the D step
        d_loss = discriminator_loss(logits_real, logits_fake)
        backward_and_step(d_loss, opt_d, "loss of the discriminator", step,
                          inputs={"logits_real": logits_real, "logits_fake": logits_fake})

        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen).to(device)
        logits_fake = d_net(g_net(z))
        g_loss = generator_loss(logits_fake, saturating=saturating)
        backward_and_step(g_loss, opt_g, "loss of the generator", step, inputs={"logits_fake": logits_fake})

        history.d_loss.append(d_loss.item())
        history.g_loss.append(g_loss.item())
        if snapshot_every and (step % snapshot_every == 0 or step == steps - 1):
            history.snapshots.append((step, sample(g_net, fixed_z)))
    return g_net, d_net, history


@torch.no_grad()
def sample(g_net: Generator, z: torch.Tensor) -> torch.Tensor:
    """Generator samples for the noise ``z`` as images in [0, 1], on the CPU (eval mode, then restored)."""
    was_training = g_net.training
    g_net.eval()
    out = (g_net(z).cpu() + 1) / 2
    g_net.train(was_training)
    return out.clamp(0, 1)
