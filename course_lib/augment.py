"""SimCLR data augmentations, batched in torch (no torchvision, no Python loop over images).

Every image of a batch ``[N, C, H, W]`` (float, values in [0, 1]) gets its own random parameters, drawn in one
call per parameter from an optional ``torch.Generator``; the images never leave their device. The pipeline
follows SimCLR's appendix A, in this order::

    random resized crop  ->  horizontal flip  ->  colour jitter (p)  ->  random grayscale (p)  ->  blur (p)

* **Random resized crop**: area fraction ``s ~ U(scale)``, aspect ratio ``r ~ exp(U(log ratio))``; the crop
  is ``w = sqrt(s r)`` by ``h = sqrt(s / r)`` of the image (clamped to 1, where torchvision instead retries
  and falls back to a centre crop), placed uniformly inside the image and resampled to ``H x W`` with
  bilinear interpolation -- one ``affine_grid`` / ``grid_sample`` call for the whole batch.
* **Colour jitter**, in the fixed order brightness, contrast, saturation, hue (torchvision draws a random
  order per call): ``x * b``; ``(x - mean(gray(x))) c + mean(gray(x))``; ``(x - gray(x)) s + gray(x)``; and a
  hue rotation by ``2 pi h`` of the chroma plane (I, Q) of the YIQ colour space, with
  ``b, c, s ~ U(1 - strength, 1 + strength)`` and ``h ~ U(-hue, hue)``. Each step clamps to [0, 1].
* **Grayscale**: ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B`` copied to the three channels.
* **Gaussian blur**: a separable kernel of odd size ``~ kernel_frac * H`` with ``sigma ~ U(blur_sigma)`` per
  image, as two grouped 1-D convolutions with reflect padding (a constant image stays constant).

Images that a probability test leaves out are returned bit-for-bit unchanged by that step (``torch.where``).
Colour steps that need RGB (saturation, hue, grayscale) are skipped for one-channel images.

Defaults (:class:`AugmentConfig`) are SimCLR's CIFAR-10 setting for 32x32 images: crop scale (0.08, 1) and
ratio (3/4, 4/3), flip 0.5, colour distortion of strength 0.5 (jitter 0.8 s, 0.8 s, 0.8 s, 0.2 s with
probability 0.8), grayscale 0.2 -- and no blur, which SimCLR uses on ImageNet (p = 0.5, kernel 10% of the
image, sigma in [0.1, 2]) but leaves out for CIFAR-10; set ``blur_prob`` to turn it on.

References:
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020, appendix A (augmentation details) and B.9 (CIFAR-10).
    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (random resized crops).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._validate import check_range, check_tensor

__all__ = [
    "AugmentConfig",
    "SimCLRAugment",
    "augment",
    "random_resized_crop",
    "random_flip",
    "color_jitter",
    "random_grayscale",
    "gaussian_blur",
    "rgb_to_gray",
]

# RGB -> YIQ (NTSC); the inverse is computed once so the hue rotation is exact up to rounding.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class AugmentConfig:
    """SimCLR augmentation parameters (defaults: the CIFAR-10 setting, colour strength 0.5, for 32x32)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)     # area fraction of the crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio w / h of the crop
    flip_prob: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.4                           # 0.8 * strength
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1                                  # 0.2 * strength, in turns (1 = 360 degrees)
    grayscale_prob: float = 0.2
    blur_prob: float = 0.0                            # SimCLR: 0.5 on ImageNet, none on CIFAR-10
    blur_sigma: tuple[float, float] = (0.1, 2.0)      # pixels
    blur_kernel_frac: float = 0.1                     # kernel size ~ 10% of the image side (odd, >= 3)

    @classmethod
    def strength(cls, s: float, **overrides) -> "AugmentConfig":
        """SimCLR's colour-distortion strength ``s``: jitter (0.8 s, 0.8 s, 0.8 s, 0.2 s)."""
        s = check_range("s", s, 0.0, 10.0)
        return cls(**{"brightness": 0.8 * s, "contrast": 0.8 * s, "saturation": 0.8 * s, "hue": 0.2 * s,
                      **overrides})

    @classmethod
    def identity(cls) -> "AugmentConfig":
        """Every step off: the pipeline returns its input (the crop is the whole image)."""
        return cls(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0, jitter_prob=0.0,
                   grayscale_prob=0.0, blur_prob=0.0)

    def validate(self) -> "AugmentConfig":
        for name in ("crop_scale", "crop_ratio", "blur_sigma"):
            lo, hi = getattr(self, name)
            if not (0 < lo <= hi) or not math.isfinite(hi):
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {getattr(self, name)}")
        if self.crop_scale[1] > 1:
            raise ValueError(f"crop_scale must lie in (0, 1], got {self.crop_scale}")
        for name in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("brightness", "contrast", "saturation"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("hue", self.hue, 0.0, 0.5)
        check_range("blur_kernel_frac", self.blur_kernel_frac, 0.0, 1.0)
        return self


# ------------------------------------------------------------------------------------------------ helpers
def _rand(n: int, x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """U[0, 1) of shape ``[n, *shape]`` in x's dtype on x's device, drawn on the generator's device."""
    dev = x.device if generator is None else generator.device
    u = torch.rand((n, *shape), generator=generator, device=dev, dtype=torch.float32)
    return u.to(device=x.device, dtype=x.dtype)


def _uniform(n, x, generator, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * _rand(n, x, generator)          # [N]


def _coin(n, x, generator, p: float) -> torch.Tensor:
    """[N] bool, True with probability p (one uniform draw per image even when p is 0 or 1)."""
    return _rand(n, x, generator) < p


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), a, b)


def _check_images(x: torch.Tensor) -> torch.Tensor:
    check_tensor("images", x, ndim=4)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, C, H, W] with C = 1 or 3, got shape {list(x.shape)}")
    return x


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``[N, 3, H, W]`` images -> ``[N, 1, H, W]`` (a one-channel input is returned as is)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


# ------------------------------------------------------------------------------------------------- steps
def random_resized_crop(
    x: torch.Tensor,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop a random box of area ``s ~ U(scale)`` and aspect ``r ~ logU(ratio)`` per image, resize to H x W.

    In normalised coordinates ([-1, 1] across the image) the crop is the affine map
    ``x_in = w * x_out + c_x``, ``y_in = h * y_out + c_y`` with ``w = min(1, sqrt(s r))``,
    ``h = min(1, sqrt(s / r))`` and centres ``c ~ U(-(1 - w), 1 - w)`` (so the box stays inside the image).
    """
    _check_images(x)
    n = x.shape[0]
    area = _uniform(n, x, generator, *scale)                                           # [N]
    log_r = _uniform(n, x, generator, math.log(ratio[0]), math.log(ratio[1]))          # [N]
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)                             # [N] width fraction
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)                             # [N] height fraction
    cx = (2 * _rand(n, x, generator) - 1) * (1 - w)                                    # [N]
    cy = (2 * _rand(n, x, generator) - 1) * (1 - h)                                    # [N]
    zero = torch.zeros_like(w)
    theta = torch.stack([torch.stack([w, zero, cx], -1), torch.stack([zero, h, cy], -1)], 1)   # [N, 2, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)                    # [N, H, W, 2]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability p (an exact copy of the columns in reverse order)."""
    _check_images(x)
    return _where(_coin(x.shape[0], x, generator, p), x.flip(-1), x)


def _hue_matrices(angle: torch.Tensor) -> torch.Tensor:
    """[N] angles (radians) -> [N, 3, 3] RGB matrices that rotate the (I, Q) chroma plane of YIQ."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    rot = torch.stack([torch.stack([one, zero, zero], -1),
                       torch.stack([zero, c, -s], -1),
                       torch.stack([zero, s, c], -1)], -2)                             # [N, 3, 3]
    fwd = _RGB_TO_YIQ.to(angle)
    inv = _YIQ_TO_RGB.to(angle)
    return inv @ rot @ fwd                                                              # [N, 3, 3]


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter (in that order), each clamped to [0, 1].

    Math (per image, factors ``b, c, s ~ U(1 - strength, 1 + strength)``, ``h ~ U(-hue, hue)`` turns)::

        x <- clamp(b x)
        x <- clamp(c (x - mean(gray(x))) + mean(gray(x)))
        x <- clamp(s (x - gray(x)) + gray(x))                       (RGB only)
        x <- clamp(YIQ^-1 R(2 pi h) YIQ x)                          (RGB only; R rotates the I, Q plane)

    Applied to each image with probability p; the others are returned unchanged.
    """
    _check_images(x)
    n = x.shape[0]
    apply = _coin(n, x, generator, p)
    b = _uniform(n, x, generator, 1 - brightness, 1 + brightness).view(-1, 1, 1, 1)      # [N, 1, 1, 1]
    c = _uniform(n, x, generator, 1 - contrast, 1 + contrast).view(-1, 1, 1, 1)
    s = _uniform(n, x, generator, 1 - saturation, 1 + saturation).view(-1, 1, 1, 1)
    h = _uniform(n, x, generator, -hue, hue)                                               # [N]
    y = (x * b).clamp(0, 1)
    mean = rgb_to_gray(y).mean(dim=(1, 2, 3), keepdim=True)                                # [N, 1, 1, 1]
    y = ((y - mean) * c + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = rgb_to_gray(y)                                                              # [N, 1, H, W]
        y = ((y - gray) * s + gray).clamp(0, 1)
        m = _hue_matrices(2 * math.pi * h)                                                 # [N, 3, 3]
        y = torch.einsum("nij,njhw->nihw", m, y).clamp(0, 1)
    return _where(apply, y, x)


def random_grayscale(x: torch.Tensor, p: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each RGB image by its luma in all three channels with probability p (one-channel: no-op)."""
    _check_images(x)
    coin = _coin(x.shape[0], x, generator, p)
    if x.shape[1] == 1:
        return x
    return _where(coin, rgb_to_gray(x).expand_as(x), x)


def _blur_kernel_size(side: int, frac: float) -> int:
    k = max(3, int(round(frac * side)))
    k += 1 - k % 2                                                                         # odd
    return min(k, 2 * ((side - 1) // 2) + 1) if side >= 3 else 1


def gaussian_blur(
    x: torch.Tensor,
    sigma: tuple[float, float] = (0.1, 2.0),
    p: float = 0.5,
    kernel_frac: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Separable Gaussian blur with ``sigma ~ U(sigma)`` (pixels) per image, applied with probability p.

    Math: ``k[i] = exp(-i^2 / (2 sigma^2)) / sum_j exp(-j^2 / (2 sigma^2))`` for ``i = -r .. r``; the image is
    convolved with k along rows, then along columns (reflect padding), one grouped convolution per axis.
    """
    _check_images(x)
    n, ch, hgt, wid = x.shape
    apply = _coin(n, x, generator, p)
    sig = _uniform(n, x, generator, *sigma)                                                # [N]
    k = _blur_kernel_size(min(hgt, wid), kernel_frac)
    if k < 3:
        return x
    r = k // 2
    offs = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)                        # [K]
    kern = torch.exp(-(offs[None] ** 2) / (2 * sig[:, None] ** 2))                         # [N, K]
    kern = kern / kern.sum(-1, keepdim=True)
    kern = kern.repeat_interleave(ch, dim=0)                                               # [N*C, K]
    y = x.reshape(1, n * ch, hgt, wid)                                                     # [1, N*C, H, W]
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), kern.view(n * ch, 1, 1, k), groups=n * ch)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), kern.view(n * ch, 1, k, 1), groups=n * ch)
    return _where(apply, y.reshape(n, ch, hgt, wid), x)


# ----------------------------------------------------------------------------------------------- pipeline
def augment(x: torch.Tensor, config: AugmentConfig | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One SimCLR view of every image: crop -> flip -> jitter -> grayscale -> blur.

    Args:
        x: ``[N, C, H, W]`` float images in [0, 1], C = 1 or 3, any device.
        config: the parameters (default :class:`AugmentConfig`).
        generator: optional ``torch.Generator`` (CPU or on x's device) for every random draw; the same
            generator state gives the same output.

    Returns:
        ``[N, C, H, W]`` with x's dtype and device, values in [0, 1]; x is not modified.
    """
    cfg = (config or AugmentConfig()).validate()
    _check_images(x)
    if x.shape[0] == 0:
        return x.clone()
    y = random_resized_crop(x, cfg.crop_scale, cfg.crop_ratio, generator)
    y = random_flip(y, cfg.flip_prob, generator)
    y = color_jitter(y, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, cfg.jitter_prob, generator)
    y = random_grayscale(y, cfg.grayscale_prob, generator)
    y = gaussian_blur(y, cfg.blur_sigma, cfg.blur_prob, cfg.blur_kernel_frac, generator)
    return y


class SimCLRAugment:
    """Callable wrapper: ``aug(x)`` is one view, ``aug.pair(x)`` two independent views."""

    def __init__(self, config: AugmentConfig | None = None):
        self.config = (config or AugmentConfig()).validate()

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return augment(x, self.config, generator)

    def pair(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return augment(x, self.config, generator), augment(x, self.config, generator)

    def __repr__(self) -> str:
        return f"SimCLRAugment({self.config})"
