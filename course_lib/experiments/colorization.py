"""Self-supervised video colourisation by copying colours: the model whose features the mask-propagation
experiment (:mod:`course_lib.experiments.propagation`) evaluates.

A conv net ``f`` sees only the lightness L of two frames of a clip (a *reference* and a *target*) and maps
each to L2-normalised features at 1/``stride`` resolution. The target's colours are predicted by copying the
reference's colours through attention (``attention_color_propagation``)::

    p[b, :, j] = sum_i softmax_i(<f(ref)_i, f(tgt)_j> / T) * onehot(c_ref)[b, :, i]      [B, K, h, w]
    loss       = mean_j  -log(p[b, c_tgt(j), j] + eps)

where ``c`` are quantised colours: the ab channels of CIE Lab assigned to the nearest of K k-means centres
(Vondrick et al. use 16 clusters), so the prediction is a distribution over K colours (the copied one-hot
distributions) rather than a regression to the mean colour. The only way to copy the right colour is to find
the same point of the same object in the reference, so the features learn to match objects across frames:
tracking emerges without a single label.

References:
    Vondrick, Shrivastava, Fathi, Guadarrama, Murphy, "Tracking Emerges by Colorizing Videos", ECCV 2018
    (copying colours by attention, quantised colours, -log p loss, label propagation at test time).
    Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016 (predicting ab from L, quantised colours).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..color import rgb_to_lab
from ..guards import backward_and_step

__all__ = ["ColorizationConfig", "ColorQuantizer", "FeatureNet", "grey_input", "colorization_loss",
           "colorize_step", "train_colorizer", "predict_colors"]


@dataclass(frozen=True)
class ColorizationConfig:
    """The feature net and its colourisation training (defaults: about two minutes on a 2-core CPU)."""

    width: int = 32                 # channels of the conv layers
    feat_dim: int = 32              # D, the feature width attention compares
    stride: int = 2                 # features at 1/stride of the frame size
    n_colors: int = 16              # K k-means colour clusters of ab
    steps: int = 400
    batch_size: int = 16            # (reference, target) frame pairs per step
    max_gap: int = 3                # target = reference + 1..max_gap frames
    temperature: float = 0.05       # attention temperature during training (features are unit vectors)
    lr: float = 2e-3
    eps: float = 1e-6               # in -log(p + eps)
    seed: int = 0

    def validate(self) -> "ColorizationConfig":
        for name in ("width", "feat_dim", "n_colors", "steps", "batch_size", "max_gap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stride not in (1, 2, 4):
            raise ValueError(f"stride must be 1, 2 or 4, got {self.stride}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        return self


def grey_input(frames: torch.Tensor) -> torch.Tensor:
    """RGB ``[N, 3, H, W]`` in [0, 1] -> the net's input: lightness ``L / 50 - 1`` in [-1, 1], ``[N, 1, H, W]``."""
    return rgb_to_lab(frames)[:, :1] / 50.0 - 1.0


class ColorQuantizer:
    """K colour clusters in the ab plane of CIE Lab (k-means); ``centers [K, 2]``."""

    def __init__(self, centers: torch.Tensor):
        if centers.dim() != 2 or centers.shape[1] != 2:
            raise ValueError(f"centers must be [K, 2] ab values, got {list(centers.shape)}")
        self.centers = centers.float()

    @classmethod
    def fit(cls, frames: torch.Tensor, n_colors: int = 16, n_samples: int = 20000, iters: int = 20,
            seed: int = 0) -> "ColorQuantizer":
        """k-means (k-means++ seeding, then Lloyd) on the ab values of ``n_samples`` random pixels of
        ``frames [..., 3, H, W]``."""
        gen = torch.Generator().manual_seed(seed)
        ab = rgb_to_lab(frames.reshape(-1, *frames.shape[-3:]))[:, 1:]       # [N, 2, H, W]
        ab = ab.permute(0, 2, 3, 1).reshape(-1, 2)                           # [N*H*W, 2]
        ab = ab[torch.randperm(len(ab), generator=gen)[:n_samples]]
        if len(ab) < n_colors:
            raise ValueError(f"n_colors={n_colors} clusters need at least as many pixels, got {len(ab)}")
        # k-means++ seeding: each new centre is drawn with probability proportional to the squared distance
        # to the nearest centre so far, so distinct colours get their own centres
        centers = ab[torch.randint(0, len(ab), (1,), generator=gen)]
        for _ in range(1, n_colors):
            d2 = torch.cdist(ab, centers).min(1).values.pow(2)              # [P]
            pick = (torch.multinomial(d2, 1, generator=gen) if d2.sum() > 0
                    else torch.randint(0, len(ab), (1,), generator=gen))
            centers = torch.cat([centers, ab[pick]])
        for _ in range(iters):
            assign = torch.cdist(ab, centers).argmin(1)                      # [P]
            sums = torch.zeros_like(centers).index_add_(0, assign, ab)
            counts = torch.bincount(assign, minlength=n_colors).float()
            centers = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centers)
        return cls(centers)

    @property
    def n_colors(self) -> int:
        return self.centers.shape[0]

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """RGB ``[N, 3, H, W]`` -> nearest cluster id per pixel ``[N, H, W]`` (int64)."""
        ab = rgb_to_lab(frames)[:, 1:]                                       # [N, 2, H, W]
        n, _, h, w = ab.shape
        flat = ab.permute(0, 2, 3, 1).reshape(n, h * w, 2)                   # [N, H*W, 2]
        d = torch.cdist(flat, self.centers.to(flat)[None].expand(n, -1, -1))  # [N, H*W, K]
        return d.argmin(-1).reshape(n, h, w)

    def decode(self, probs: torch.Tensor) -> torch.Tensor:
        """Colour distributions ``[N, K, h, w]`` -> expected ab ``[N, 2, h, w]``."""
        return torch.einsum("nkhw,kc->nchw", probs, self.centers.to(probs))


def pooled_onehot(ids: torch.Tensor, n_classes: int, stride: int) -> torch.Tensor:
    """ids ``[N, H, W]`` -> one-hot ``[N, K, H, W]`` averaged over ``stride x stride`` cells: ``[N, K, H/s, W/s]``
    (each cell holds the fraction of its pixels in each class, so it still sums to 1)."""
    onehot = F.one_hot(ids, n_classes).permute(0, 3, 1, 2).float()          # [N, H, W, K] -> [N, K, H, W]
    return F.avg_pool2d(onehot, stride) if stride > 1 else onehot


def _block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class FeatureNet(nn.Module):
    """Grey frames ``[N, 1, H, W]`` -> unit-length features ``[N, D, H/stride, W/stride]``.

    ::

        conv3x3 (1 -> w/2) - [conv3x3 stride 2 (-> w)]*log2(stride) - conv3x3 (w) - conv3x3 dilation 2
          - conv3x3 dilation 4 - conv3x3 dilation 8 - conv1x1 (-> D) - L2 normalise over D

    Each conv is followed by BatchNorm and ReLU. The dilated convolutions give a receptive field of about
    60 pixels at stride 2, so a feature can describe an object's shape and texture, not just one pixel.
    H and W must be divisible by ``stride``.
    """

    def __init__(self, cfg: ColorizationConfig | None = None):
        super().__init__()
        cfg = (cfg or ColorizationConfig()).validate()
        w = cfg.width
        layers, c = [_block(1, w // 2)], w // 2
        for _ in range({1: 0, 2: 1, 4: 2}[cfg.stride]):
            layers.append(_block(c, w, stride=2))
            c = w
        layers += [_block(c, w), _block(w, w, dilation=2), _block(w, w, dilation=4), _block(w, w, dilation=8),
                   nn.Conv2d(w, cfg.feat_dim, 1)]
        self.net = nn.Sequential(*layers)
        self.stride = cfg.stride

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        if grey.dim() != 4 or grey.shape[1] != 1 or grey.shape[2] % self.stride or grey.shape[3] % self.stride:
            raise ValueError(f"grey must be [N, 1, H, W] with H, W divisible by {self.stride}, got {list(grey.shape)}")
        return F.normalize(self.net(grey), dim=1)


def colorization_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``mean(-log(probs[n, target[n, y, x], y, x] + eps))`` for copied distributions ``probs [N, K, h, w]`` and
    colour ids ``target [N, h, w]``. (Not ``cross_entropy``: ``probs`` are already probabilities.)"""
    return -torch.log(probs.gather(1, target[:, None]) + eps).mean()


def colorize_step(net: FeatureNet, ref_grey, tgt_grey, ref_ids, tgt_ids, n_colors: int,
                  attention_color_propagation: Callable, temperature: float, eps: float = 1e-6):
    """One forward pass: ``(loss, copied distributions [B, K, h, w])`` for a batch of frame pairs."""
    feats = net(torch.cat([ref_grey, tgt_grey]))                            # [2B, D, h, w]
    f_ref, f_tgt = feats.chunk(2)
    ref_colors = pooled_onehot(ref_ids, n_colors, net.stride)               # [B, K, h, w]
    target = pooled_onehot(tgt_ids, n_colors, net.stride).argmax(1)         # majority colour per cell [B, h, w]
    probs = attention_color_propagation(f_ref, f_tgt, ref_colors, temperature)
    return colorization_loss(probs, target, eps), probs


def train_colorizer(frames: torch.Tensor, attention_color_propagation: Callable, cfg: ColorizationConfig | None = None,
                    device: torch.device | None = None, progress: bool = True, net: FeatureNet | None = None,
                    quantizer: ColorQuantizer | None = None, desc: str = "colourisation"):
    """Train (or fine-tune, when ``net`` is given) the feature net on clips ``frames [V, T, 3, H, W]``.

    Returns ``(net in eval mode, quantizer, losses)``. The quantizer is fitted on ``frames`` unless given.
    """
    from tqdm.auto import tqdm

    cfg = (cfg or ColorizationConfig()).validate()
    device = device or torch.device("cpu")
    if frames.dim() != 5 or frames.shape[2] != 3 or frames.shape[1] < 2:
        raise ValueError(f"frames must be [V, T >= 2, 3, H, W], got {list(frames.shape)}")
    v, t, _, h, w = frames.shape
    quantizer = quantizer or ColorQuantizer.fit(frames, cfg.n_colors, seed=cfg.seed)
    flat = frames.reshape(v * t, 3, h, w)
    grey = torch.cat([grey_input(c) for c in flat.split(256)]).reshape(v, t, 1, h, w)
    ids = torch.cat([quantizer.encode(c) for c in flat.split(256)]).reshape(v, t, h, w)
    torch.manual_seed(cfg.seed)
    net = (net or FeatureNet(cfg)).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    max_gap = min(cfg.max_gap, t - 1)
    losses = []
    for step in tqdm(range(cfg.steps), desc=desc, leave=False, disable=not progress):
        vid = torch.randint(0, v, (cfg.batch_size,), generator=gen)
        gap = torch.randint(1, max_gap + 1, (cfg.batch_size,), generator=gen)
        t0 = (torch.rand(cfg.batch_size, generator=gen) * (t - gap)).long()  # t0 + gap <= T - 1
        loss, probs = colorize_step(net, grey[vid, t0].to(device), grey[vid, t0 + gap].to(device),
                                    ids[vid, t0].to(device), ids[vid, t0 + gap].to(device), quantizer.n_colors,
                                    attention_color_propagation, cfg.temperature, cfg.eps)
        backward_and_step(loss, opt, f"{desc} loss", step,
                          inputs={"copied colours (attention_color_propagation)": probs})
        sched.step()
        losses.append(loss.item())
    return net.eval(), quantizer, losses


@torch.no_grad()
def predict_colors(net: FeatureNet, quantizer: ColorQuantizer, ref: torch.Tensor, tgt: torch.Tensor,
                   attention_color_propagation: Callable, temperature: float = 0.05) -> torch.Tensor:
    """Colourise grey targets from colour references: RGB ``[N, 3, H, W]`` pairs -> predicted RGB ``[N, 3, H, W]``
    (the target's own L with the expected ab of the copied colour distribution, upsampled to full size)."""
    from ..color import lab_to_rgb

    device = next(net.parameters()).device
    feats = net(grey_input(torch.cat([ref, tgt]).to(device)))               # [2N, D, h, w]
    f_ref, f_tgt = feats.chunk(2)
    ref_colors = pooled_onehot(quantizer.encode(ref.to(device)), quantizer.n_colors, net.stride)
    probs = attention_color_propagation(f_ref, f_tgt, ref_colors, temperature)        # [N, K, h, w]
    ab = F.interpolate(quantizer.decode(probs), size=tgt.shape[-2:], mode="bilinear", align_corners=False)
    lab = torch.cat([rgb_to_lab(tgt.to(device))[:, :1], ab], 1)                        # [N, 3, H, W]
    return lab_to_rgb(lab).cpu()
