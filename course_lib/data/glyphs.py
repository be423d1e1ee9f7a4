"""Glyphs: labelled colour images of letters and digits, the offline default for the pretext-task and
contrastive experiments (a small, CIFAR-like classification problem that a notebook makes in seconds).

Each image shows one character drawn in one of the fonts that ship with matplotlib (DejaVu Sans / Serif /
Mono and STIX, regular / bold / italic), two-tone coloured, scaled, sheared, shifted and turned by a small
angle, over a procedural two-tone background of the opposite brightness. The label is the character.

How it is made (fast: >= 2000 images/s at 32x32 on one core):

1. a *mask bank* ``[F, C, 64, 64]``: every character rasterised once per font with FreeType (matplotlib's
   ``ft2font``), cropped to its ink and scaled to a fixed height, centred;
2. per image an affine map ``x_bank = A^-1 (x_out - t)`` with ``A = s R(theta) Sh(k)``, applied to the bank
   entry in one batched ``F.affine_grid`` / ``F.grid_sample`` call at twice the output size, then 2x2
   average pooled (anti-aliasing): the coverage mask ``m`` in [0, 1];
3. ``image = background * (1 - m) + foreground * m`` with textures from :mod:`course_lib.data.textures`.

The rotation stays within ``+-max_rotation`` (25 degrees by default), never near a quarter turn, so the
rotation pretext task (predict k * 90 degrees) is well posed; the 20 default characters are chosen so that no
character turned by a quarter turn looks like another (no 6/9, N/Z, M/W, C/U, A/V, b/q, d/p pairs, no
O/0/8/X/H/I/S that look the same upside down): the best mask IoU between any of them turned by k quarter
turns and another upright one is 0.75, where 6 and 9 score 0.92. Glyphs are never cut off by the frame.

Raw pixels leave plenty of headroom for learned features: random colours of both polarities, textures,
fonts and poses make a linear probe on raw pixels reach about 8% held-out accuracy over the 20 classes
(chance 5%) while it fits its training set, and even class means of the true glyph masks only reach ~30%.

References:
    Gidaris et al., "Unsupervised Representation Learning by Predicting Image Rotations", ICLR 2018.
    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cached, from_uint8, to_uint8
from .containers import ImageDataset
from .textures import pattern, random_colors, random_pattern_params, two_tone, grid

__all__ = ["GlyphConfig", "glyphs", "glyph_bank", "DEFAULT_CLASSES", "DEFAULT_FONTS"]

VERSION = 1
DEFAULT_CLASSES = "ABCDEFGJKLPQRTY23457"
DEFAULT_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)
BANK = 64               # bank resolution (pixels)
_INK_HEIGHT = 0.62      # glyph height in the bank, as a fraction of BANK
_CHUNK = 2048
LUMA_DARK, LUMA_LIGHT = 0.3, 0.55   # glyph / background brightness classes (Rec. 601 luma)


@dataclass(frozen=True)
class GlyphConfig:
    """How the glyph images vary. Angles in degrees, lengths as fractions of the image side.

    Attributes:
        classes: one character per class (label i = ``classes[i]``).
        fonts: font file names from matplotlib's ``fonts/ttf`` folder.
        max_rotation: rotations are uniform in ``[-max_rotation, max_rotation]``; must be < 45.
        scale: range of the glyph size relative to the bank's (1.0 = 62% of the image height); a glyph
            whose turned box would not fit in the frame is shrunk until it does.
        max_shift: the glyph centre moves by up to this fraction of the image side in x and y (less where
            the turned glyph would otherwise leave the frame: glyphs are never cut off).
        max_shear: horizontal shear factor range ``[-max_shear, max_shear]``.
    """

    classes: str = DEFAULT_CLASSES
    fonts: tuple[str, ...] = DEFAULT_FONTS
    max_rotation: float = 25.0
    scale: tuple[float, float] = (0.75, 1.15)
    max_shift: float = 0.12
    max_shear: float = 0.15

    def validate(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be at least two distinct characters, got {self.classes!r}")
        if not self.fonts:
            raise ValueError("fonts must name at least one font file")
        if not 0.0 <= self.max_rotation < 45.0:
            raise ValueError(f"max_rotation must be in [0, 45) degrees, got {self.max_rotation}")
        lo, hi = self.scale
        if not 0.1 <= lo <= hi <= 1.5:
            raise ValueError(f"scale must be a range within [0.1, 1.5], got {self.scale}")
        if not 0.0 <= self.max_shift <= 0.3:
            raise ValueError(f"max_shift must be in [0, 0.3], got {self.max_shift}")
        if not 0.0 <= self.max_shear <= 0.5:
            raise ValueError(f"max_shear must be in [0, 0.5], got {self.max_shear}")


def _font_path(name: str) -> str:
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)
    if not os.path.isfile(path):
        raise ValueError(f"font {name!r} is not among matplotlib's bundled fonts ({os.path.dirname(path)})")
    return path


def _font_source() -> str:
    """matplotlib and FreeType versions: the rasterised glyphs (and so the cache) depend on both."""
    import matplotlib
    from matplotlib import ft2font

    return f"matplotlib {matplotlib.__version__}, freetype {getattr(ft2font, '__freetype_version__', '?')}"


def _rasterise(font_file: str, char: str) -> np.ndarray:
    """One character as a ``[BANK, BANK]`` float32 coverage mask: ink cropped, scaled to a fixed height,
    centred on its bounding box."""
    from matplotlib.ft2font import FT2Font
    from PIL import Image

    font = FT2Font(_font_path(font_file))
    if font.get_char_index(ord(char)) == 0:
        raise ValueError(f"font {font_file!r} has no glyph for {char!r}")
    font.set_size(96, 72)                                     # 96 px em: plenty of detail before downscaling
    font.set_text(char, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    ink = np.asarray(font.get_image(), dtype=np.float32) / 255.0        # [h, w]
    rows, cols = np.nonzero(ink > 0.02)
    if rows.size == 0:
        raise ValueError(f"font {font_file!r} draws {char!r} without ink")
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = ink.shape
    target_h = _INK_HEIGHT * BANK
    k = min(target_h / h, 0.9 * BANK / w)
    new_h, new_w = max(1, round(h * k)), max(1, round(w * k))
    small = np.asarray(Image.fromarray(ink).resize((new_w, new_h), Image.Resampling.BOX), dtype=np.float32)
    out = np.zeros((BANK, BANK), dtype=np.float32)
    top, left = (BANK - new_h) // 2, (BANK - new_w) // 2
    out[top:top + new_h, left:left + new_w] = small
    return np.clip(out, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _bank(fonts: tuple[str, ...], classes: str) -> torch.Tensor:
    bank = np.stack([np.stack([_rasterise(f, c) for c in classes]) for f in fonts])   # [F, C, BANK, BANK]
    return torch.from_numpy(bank)


def glyph_bank(config: GlyphConfig | None = None) -> torch.Tensor:
    """The upright, centred masks ``[F, C, 64, 64]`` float32 in [0, 1] (font-major) the images are made from."""
    config = config or GlyphConfig()
    config.validate()
    return _bank(tuple(config.fonts), config.classes).clone()


def _forward(scale, angle_deg, shear) -> torch.Tensor:
    """``[N, 2, 2]`` linear part of the forward map ``x_out = s R(theta) Sh(k) x_bank + t`` in image
    coordinates (x right, y down), where a positive theta turns the glyph counter-clockwise on screen."""
    th = torch.deg2rad(angle_deg)
    c, s = torch.cos(th), torch.sin(th)
    n = scale.shape[0]
    rot = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)          # [N, 2, 2] (y down)
    sh = torch.eye(2).repeat(n, 1, 1)
    sh[:, 0, 1] = shear                                                                  # [N, 2, 2]
    return scale[:, None, None] * rot @ sh


def _affine(scale, angle_deg, shear, shift) -> torch.Tensor:
    """``[N, 2, 3]`` matrices mapping output coordinates to bank coordinates (affine_grid's convention):
    ``x_bank = A^-1 (x_out - t)`` with ``A`` from :func:`_forward`."""
    inv = torch.linalg.inv(_forward(scale, angle_deg, shear))                            # [N, 2, 2]
    offset = -(inv @ shift.unsqueeze(-1))                                                # [N, 2, 1]
    return torch.cat([inv, offset], dim=-1)                                              # [N, 2, 3]


def _sampling_grid(theta: torch.Tensor, side: int) -> torch.Tensor:
    """``F.affine_grid(theta, [N, 1, side, side], align_corners=False)`` as one batched matmul (several
    times faster on the CPU): pixel centres ``[side * side, 3]`` in homogeneous [-1, 1] coordinates."""
    c = (torch.arange(side, dtype=theta.dtype) * 2 + 1) / side - 1                       # [side]
    y, x = torch.meshgrid(c, c, indexing="ij")
    base = torch.stack([x.flatten(), y.flatten(), torch.ones(side * side, dtype=theta.dtype)], -1)   # [P, 3]
    return (base @ theta.transpose(1, 2)).view(-1, side, side, 2)                        # [N, P, 2] -> grid


def _luma(c: torch.Tensor) -> torch.Tensor:
    return c @ torch.tensor([0.299, 0.587, 0.114])                                       # [N, 3] -> [N]


def _with_luma(c: torch.Tensor, high: bool) -> torch.Tensor:
    """Pull colours ``[N, 3]`` to luma >= LUMA_LIGHT (towards white) or <= LUMA_DARK (towards black), so
    glyph and background always differ in brightness by at least LUMA_LIGHT - LUMA_DARK."""
    c = c.clamp(0, 1)
    y = _luma(c)
    if high:
        k = ((1 - LUMA_LIGHT) / (1 - y).clamp(min=1e-6)).clamp(max=1.0)
        return 1 - (1 - c) * k[:, None]
    k = (LUMA_DARK / y.clamp(min=1e-6)).clamp(max=1.0)
    return c * k[:, None]


def _ink_extent(bank: torch.Tensor) -> torch.Tensor:
    """``[F, C, 2]`` half width and half height of each glyph's ink box, in [-1, 1] bank units."""
    ink = bank > 0.02                                                                    # [F, C, B, B]
    coord = (torch.arange(BANK, dtype=torch.float32) + 0.5) / BANK * 2 - 1               # pixel centres
    cols, rows = ink.any(-2), ink.any(-1)                                                # [F, C, B] each
    half_w = torch.where(cols, coord.abs() + 1.0 / BANK, torch.zeros(())).amax(-1)
    half_h = torch.where(rows, coord.abs() + 1.0 / BANK, torch.zeros(())).amax(-1)
    return torch.stack([half_w, half_h], -1)


def _turned_extent(half: torch.Tensor, scale, angle_deg, shear) -> torch.Tensor:
    """Half extents ``[N, 2]`` of the box ``[-hw, hw] x [-hh, hh]`` after ``x -> s R(theta) Sh(k) x``."""
    corners = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) * half[:, None, :]   # [N, 4, 2]
    fwd = _forward(scale, angle_deg, shear)                                                           # [N, 2, 2]
    return (corners @ fwd.transpose(1, 2)).abs().amax(1)                                              # [N, 2]


def _render_chunk(bank: torch.Tensor, size: int, cfg: GlyphConfig, n: int, gen: torch.Generator):
    n_fonts, n_classes = bank.shape[:2]
    labels = torch.randint(0, n_classes, (n,), generator=gen)
    font = torch.randint(0, n_fonts, (n,), generator=gen)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * cfg.max_rotation
    scale = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * torch.rand(n, generator=gen)
    shear = (torch.rand(n, generator=gen) * 2 - 1) * cfg.max_shear
    # keep the turned glyph's box inside the frame (one pixel margin): shrink wide glyphs that would not fit,
    # then shift by up to max_shift but never out of the frame
    ext = _turned_extent(_ink_extent(bank)[font, labels], scale, angle, shear)          # [N, 2]
    fit = ((1.0 - 2.0 / size) / ext.amax(-1)).clamp(max=1.0)                             # [N]
    scale, ext = scale * fit, ext * fit[:, None]
    room = (1.0 - ext - 2.0 / size).clamp(min=0.0).clamp(max=cfg.max_shift * 2)        # [-1, 1] spans 2 units
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * room
    light_glyph = torch.rand(n, generator=gen) < 0.5
    fg_pat, bg_pat = random_pattern_params(n, gen, (0.5, 2.0)), random_pattern_params(n, gen, (1.0, 5.0))
    dark = _with_luma(random_colors(2 * n, gen, value=(0.05, 0.5)), high=False)
    light = _with_luma(random_colors(2 * n, gen, value=(0.6, 1.0)), high=True)
    fg0 = torch.where(light_glyph[:, None], light[:n], dark[:n])                        # [N, 3]
    bg0 = torch.where(light_glyph[:, None], dark[:n], light[:n])
    bg1 = torch.where(light_glyph[:, None], dark[n:], light[n:])
    jitter = 0.25 * (torch.rand(n, 3, generator=gen) - 0.5)
    fg1 = torch.where(light_glyph[:, None], _with_luma(fg0 + jitter, True), _with_luma(fg0 + jitter, False))

    src = bank[font, labels].unsqueeze(1)                                                # [N, 1, BANK, BANK]
    theta = _affine(scale, angle, shear, shift)
    sample = _sampling_grid(theta, 2 * size)                                             # [N, 2s, 2s, 2]
    mask = F.grid_sample(src, sample, mode="bilinear", padding_mode="zeros", align_corners=False)
    mask = F.avg_pool2d(mask, 2).squeeze(1).clamp(0, 1)                                   # [N, s, s]
    x, y = grid(size, n)
    fg = two_tone(pattern(fg_pat, x, y), fg0, fg1)                                        # [N, 3, s, s]
    bg = two_tone(pattern(bg_pat, x, y), bg0, bg1)
    images = bg + mask.unsqueeze(1) * (fg - bg)
    attrs = {"font": font, "angle": angle, "scale": scale, "shear": shear, "shift": shift,
             "light_glyph": light_glyph}
    return images.clamp(0, 1), labels, mask, attrs


def _generate(n: int, size: int, seed: int, cfg: GlyphConfig):
    bank = _bank(tuple(cfg.fonts), cfg.classes)
    gen = torch.Generator().manual_seed(seed)
    parts = [_render_chunk(bank, size, cfg, min(_CHUNK, n - i), gen) for i in range(0, n, _CHUNK)]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    masks = torch.cat([p[2] for p in parts])
    attrs = {k: torch.cat([p[3][k] for p in parts]) for k in parts[0][3]}
    arrays = {"images": to_uint8(images), "labels": labels.long(), "masks": to_uint8(masks)}
    arrays.update({f"attr_{k}": v for k, v in attrs.items()})
    return arrays, {"classes": list(cfg.classes), "fonts": list(cfg.fonts)}


def glyphs(
    n: int = 6000,
    size: int = 32,
    seed: int = 0,
    config: GlyphConfig | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> ImageDataset:
    """Labelled colour images of characters (see the module docstring).

    Args:
        n: number of images (labels are drawn uniformly at random from the classes).
        size: image side in pixels (>= 8).
        seed: the same seed (and config) always gives the same images.
        config: how the images vary (:class:`GlyphConfig`; default 20 classes, 16 fonts, +-25 degrees).
        cache: keep the result in the data cache (see :mod:`course_lib.data.cache`).
        cache_dir: the data root instead of ``$COURSE_DATA_DIR`` / ``~/.cache/course_lib``.

    Returns:
        :class:`ImageDataset` with ``images [n, 3, size, size]`` float32 in [0, 1] (8-bit levels k / 255,
        like decoded image files), ``labels [n]`` int64, ``classes`` (one character each), ``masks [n, size,
        size]`` float32 coverage of the glyph in [0, 1] (also 8-bit levels),
        and ``attributes``: ``font [n]`` int64, ``angle [n]`` degrees (counter-clockwise), ``scale [n]``,
        ``shear [n]``, ``shift [n, 2]`` (in [-1, 1] image units), ``light_glyph [n]`` bool.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    cfg = config or GlyphConfig()
    cfg.validate()
    params = {"n": n, "size": size, "seed": seed, "config": dataclasses.asdict(cfg), "fonts_from": _font_source()}
    arrays, meta = cached("glyphs", VERSION, params, lambda: _generate(n, size, seed, cfg), cache, cache_dir)
    attrs = {k[len("attr_"):]: v for k, v in arrays.items() if k.startswith("attr_")}
    return ImageDataset(images=from_uint8(arrays["images"]), labels=arrays["labels"], classes=meta["classes"],
                        masks=from_uint8(arrays["masks"]), attributes=attrs)


def _rotation_confusion(config: GlyphConfig | None = None) -> torch.Tensor:
    """``[C, 4, C]`` best IoU over fonts between class a turned by k quarter turns and class b upright
    (used to choose classes for which the rotation task is well posed: off-diagonal values stay low)."""
    bank = glyph_bank(config)                                                 # [F, C, B, B]
    out = torch.zeros(bank.shape[1], 4, bank.shape[1])
    for k in range(4):
        rot = torch.rot90(bank, k, dims=(-2, -1)).flatten(2)                  # [F, C, B*B]
        up = bank.flatten(2)                                                  # [F, C, B*B]
        inter = torch.einsum("fap,fbp->fab", rot, up)
        union = rot.sum(-1)[:, :, None] + up.sum(-1)[:, None, :] - inter
        out[:, k, :] = (inter / union).amax(0)
    return out
