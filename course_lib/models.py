"""Small networks for 32x32 images that train on a laptop CPU: a conv encoder, a projection head, and the
encoder + head pair that SimCLR and MoCo train.

Encoder (``width = w``, four blocks, ~0.39M parameters at w = 32)::

    x [N, C, 32, 32]
      -> conv3x3(C -> w)   - norm - ReLU - maxpool2   [N,  w, 16, 16]
      -> conv3x3(w -> 2w)  - norm - ReLU - maxpool2   [N, 2w,  8,  8]
      -> conv3x3(2w -> 4w) - norm - ReLU - maxpool2   [N, 4w,  4,  4]
      -> conv3x3(4w -> 8w) - norm - ReLU              [N, 8w,  4,  4]
      -> global average pool                          [N, 8w]          the representation h

The four-block conv net is the "Conv-4" backbone of few-shot learning (Vinyals et al. 2016; Snell et al.
2017) with doubling widths; it costs about 15M multiply-adds per 32x32 image at w = 32 (a ResNet-18 costs
~0.56G on CIFAR). ``norm="none"`` drops BatchNorm (then the network treats every image on its own, which the
distributed-equivalence tests rely on); ``norm="group"`` uses GroupNorm.

Projection head (SimCLR section 2.1; MoCo v2): ``Linear(8w -> hidden) - BN - ReLU - Linear(hidden -> out)``;
the contrastive loss sees ``z = g(h)``, downstream tasks use ``h``.

References:
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (projection head).
    Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive Learning", 2020 (MoCo v2 MLP head).
    Snell, Swersky, Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017 (Conv-4).
    Ioffe, Szegedy, "Batch Normalization", ICML 2015.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["EncoderConfig", "HeadConfig", "ConvEncoder", "ProjectionHead", "ContrastiveNet", "count_parameters"]

_NORMS = ("batch", "group", "none")


@dataclass
class EncoderConfig:
    """Conv encoder: ``in_channels`` -> widths ``width * (1, 2, 4, 8)`` -> feature of size ``8 * width``."""

    in_channels: int = 3
    width: int = 32
    norm: str = "batch"            # "batch" | "group" | "none"

    def validate(self) -> "EncoderConfig":
        if not (isinstance(self.in_channels, int) and self.in_channels >= 1):
            raise ValueError(f"in_channels must be an int >= 1, got {self.in_channels!r}")
        if not (isinstance(self.width, int) and self.width >= 1):
            raise ValueError(f"width must be an int >= 1, got {self.width!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {self.norm!r}")
        if self.norm == "group" and self.width % 4:
            raise ValueError(f"norm='group' needs a width divisible by 4 (4 groups), got {self.width}")
        return self

    @property
    def feature_dim(self) -> int:
        return 8 * self.width


@dataclass
class HeadConfig:
    """Projection MLP ``in -> hidden -> out`` (``hidden = 0``: a single linear layer)."""

    hidden_dim: int = 256
    out_dim: int = 128
    norm: str = "batch"            # "batch" | "none"

    def validate(self) -> "HeadConfig":
        if not (isinstance(self.hidden_dim, int) and self.hidden_dim >= 0):
            raise ValueError(f"hidden_dim must be an int >= 0, got {self.hidden_dim!r}")
        if not (isinstance(self.out_dim, int) and self.out_dim >= 1):
            raise ValueError(f"out_dim must be an int >= 1, got {self.out_dim!r}")
        if self.norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {self.norm!r}")
        return self


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(4, channels)
    return nn.Identity()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class ConvEncoder(nn.Module):
    """Four conv blocks and global average pooling: ``[N, C, H, W] -> [N, 8 * width]`` (any H, W >= 8)."""

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__()
        self.config = cfg = (config or EncoderConfig()).validate()
        widths = [cfg.in_channels] + [cfg.width * m for m in (1, 2, 4, 8)]
        bias = cfg.norm == "none"                              # a norm layer has its own shift
        blocks = []
        for i in range(4):
            layers = [nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=bias),
                      _norm2d(cfg.norm, widths[i + 1]), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = cfg.feature_dim
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"x must be [N, {self.config.in_channels}, H, W], got shape {list(x.shape)}"
            )
        if min(x.shape[-2:]) < 8:
            raise ValueError(f"x must be at least 8x8 (three 2x poolings), got shape {list(x.shape)}")
        y = self.blocks(x)                                     # [N, 8w, H/8, W/8]
        return y.mean(dim=(-2, -1))                            # [N, 8w]


class ProjectionHead(nn.Module):
    """SimCLR / MoCo v2 projection MLP: ``[N, in_dim] -> [N, out_dim]``."""

    def __init__(self, in_dim: int, config: HeadConfig | None = None):
        super().__init__()
        self.config = cfg = (config or HeadConfig()).validate()
        if cfg.hidden_dim == 0:
            self.net = nn.Linear(in_dim, cfg.out_dim)
        else:
            norm = nn.BatchNorm1d(cfg.hidden_dim) if cfg.norm == "batch" else nn.Identity()
            self.net = nn.Sequential(
                nn.Linear(in_dim, cfg.hidden_dim, bias=cfg.norm == "none"), norm, nn.ReLU(inplace=True),
                nn.Linear(cfg.hidden_dim, cfg.out_dim),
            )
        self.out_dim = cfg.out_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ContrastiveNet(nn.Module):
    """Encoder f and projection head g: ``forward(x) = g(f(x))`` (the embedding the loss sees),
    ``features(x) = f(x)`` (the representation evaluated downstream)."""

    def __init__(self, encoder: EncoderConfig | None = None, head: HeadConfig | None = None):
        super().__init__()
        self.encoder = ConvEncoder(encoder)
        self.head = ProjectionHead(self.encoder.feature_dim, head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)                                 # [N, 8w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))                      # [N, out_dim]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised projection, as MoCo's q and k."""
        return F.normalize(self.forward(x), dim=-1)            # [N, out_dim]
