"""Sprite videos: short clips of textured shapes that move, bounce off the borders and occlude each other,
with exact per-object masks -- the offline default for colourisation by attention (tracking emerges from
copying colours between frames) and for mask propagation scored with the DAVIS J measure.

Each clip has a static two-tone textured background and ``n_objects`` sprites. Sprite k (k = 1..K) has a
shape (disc, square, triangle, diamond, hexagon; all inside its circumscribed circle of radius r), a
two-tone texture fixed to the sprite (it moves and turns with it), a constant velocity with elastic bounces
off the image borders, a constant spin, and a depth rank (0 = front) that fixes who occludes whom::

    c_k(t) = reflect(c_k(0) + v_k t)  into [-1 + r_k, 1 - r_k]^2          (triangle wave = elastic bounce)
    local coordinates:  u = R(-omega_k t) (x - c_k(t)) / r_k
    inside_k(x, t) = shape_k(u) <= 1                                      (hard edges, no anti-aliasing)
    mask(x, t) = the k with inside_k and the smallest depth rank, else 0
    frame(x, t) = texture_k(u) where mask = k, else background(x)

Because edges are hard, masks and frames agree exactly: every pixel with ``mask == k`` has a colour on the
segment between sprite k's two colours (``attributes["palettes"]``; up to the 8-bit rounding of the stored
frames), and every background pixel one on the background's segment. Hues are spread around the colour
wheel within a clip so the palettes are distinct.

References:
    Vondrick et al., "Tracking Emerges by Colorizing Videos", ECCV 2018.
    Perazzi et al., "A Benchmark Dataset and Evaluation Methodology for Video Object Segmentation"
    (DAVIS, J = region similarity / IoU), CVPR 2016.
"""
from __future__ import annotations

import math
import os

import torch

from .cache import cached, from_uint8, to_uint8
from .containers import VideoDataset
from .textures import PatternParams, grid, hsv_to_rgb, pattern, random_pattern_params, two_tone

__all__ = ["sprite_videos", "SHAPES"]

VERSION = 1
SHAPES = ("disc", "square", "triangle", "diamond", "hexagon")


def _shape_value(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A value <= 1 inside the shape, for local coordinates in units of the circumradius. ``shape`` is a
    ``[...]`` index into SHAPES broadcast against ``u, v``. Every shape lies inside the unit circle."""
    disc = torch.sqrt(u * u + v * v)
    square = torch.maximum(u.abs(), v.abs()) * math.sqrt(2)                # corners on the unit circle
    # equilateral triangle with vertices on the unit circle (one pointing up: -v is up on screen)
    tri = torch.stack([-v, 0.5 * v + (math.sqrt(3) / 2) * u, 0.5 * v - (math.sqrt(3) / 2) * u]).amax(0) * 2
    diamond = u.abs() + v.abs()
    hexagon = torch.maximum(u.abs() * (math.sqrt(3) / 2) + v.abs() * 0.5, v.abs()) / (math.sqrt(3) / 2)
    stacked = torch.stack([disc, square, tri, diamond, hexagon])              # [5, ...]
    return stacked.gather(0, shape.expand(u.shape).unsqueeze(0)).squeeze(0)


def _bounce(x0: torch.Tensor, v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Positions ``[..., T]`` of points moving at constant velocity between walls lo and hi (elastic)."""
    span = (hi - lo).clamp(min=1e-6).unsqueeze(-1)
    s = (x0 - lo).unsqueeze(-1) + v.unsqueeze(-1) * t                        # unfolded distance from lo
    s = torch.remainder(s, 2 * span)
    return lo.unsqueeze(-1) + torch.where(s > span, 2 * span - s, s)


def _take(params: PatternParams, idx: torch.Tensor) -> PatternParams:
    return PatternParams(params.kind[idx], params.freq[idx], params.angle[idx], params.phase[idx], params.lattice[idx])


def _generate(n_videos: int, n_frames: int, size: int, n_objects: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    V, T, K, S = n_videos, n_frames, n_objects, size
    # ---- per-sprite parameters [V, K]
    shape = torch.randint(0, len(SHAPES), (V, K), generator=gen)
    radius = 0.22 + 0.2 * torch.rand(V, K, generator=gen)                  # circumradius, [-1, 1] units
    lo, hi = -1 + radius, 1 - radius
    start = lo.unsqueeze(-1) + (hi - lo).unsqueeze(-1) * torch.rand(V, K, 2, generator=gen)   # [V, K, 2]
    speed = 0.04 + 0.08 * torch.rand(V, K, generator=gen)                  # per frame
    heading = 2 * math.pi * torch.rand(V, K, generator=gen)
    vel = torch.stack([heading.cos(), heading.sin()], -1) * speed.unsqueeze(-1)                # [V, K, 2]
    spin = (torch.rand(V, K, generator=gen) * 2 - 1) * 0.12                 # radians per frame
    spin0 = 2 * math.pi * torch.rand(V, K, generator=gen)
    depth = torch.argsort(torch.rand(V, K, generator=gen), dim=1).argsort(dim=1)   # rank, 0 = front
    # ---- colours: K + 1 hues spread around the wheel (index 0 = background)
    hue0 = torch.rand(V, 1, generator=gen)
    hue = (hue0 + torch.arange(K + 1) / (K + 1) + 0.3 / (K + 1) * torch.rand(V, K + 1, generator=gen)) % 1.0
    sat = 0.55 + 0.45 * torch.rand(V, K + 1, 2, generator=gen)
    val = torch.stack([0.25 + 0.3 * torch.rand(V, K + 1, generator=gen),
                       0.65 + 0.35 * torch.rand(V, K + 1, generator=gen)], -1)
    sat[:, 0] *= 0.6                                                        # a calmer background
    palettes = hsv_to_rgb(hue.unsqueeze(-1).expand(V, K + 1, 2), sat, val)  # [V, K+1, 2, 3]
    tex = random_pattern_params(V * (K + 1), gen, (0.6, 2.5))               # row v*(K+1)+k

    t = torch.arange(T, dtype=torch.float32)
    cx = _bounce(start[..., 0], vel[..., 0], lo, hi, t)                     # [V, K, T]
    cy = _bounce(start[..., 1], vel[..., 1], lo, hi, t)
    ang = spin0.unsqueeze(-1) + spin.unsqueeze(-1) * t                       # [V, K, T]
    xs, ys = grid(S)                                                        # [1, S, S] each

    # background: one static texture per clip
    bg_rows = torch.arange(V) * (K + 1)
    bg = two_tone(pattern(_take(tex, bg_rows), xs.expand(V, S, S), ys.expand(V, S, S)),
                  palettes[:, 0, 0], palettes[:, 0, 1])                      # [V, 3, S, S]
    frames = bg.unsqueeze(1).expand(V, T, 3, S, S).clone()                  # [V, T, 3, S, S]
    masks = torch.zeros(V, T, S, S, dtype=torch.int64)
    amodal = torch.zeros(V, T, K, S, S, dtype=torch.bool)
    for k in range(K):                                                      # loop over the few sprites only
        dx = xs - cx[:, k, :, None, None]                                   # [V, T, S, S]
        dy = ys - cy[:, k, :, None, None]
        ca, sa = ang[:, k, :, None, None].cos(), ang[:, k, :, None, None].sin()
        r = radius[:, k, None, None, None]
        u, w = (ca * dx + sa * dy) / r, (-sa * dx + ca * dy) / r            # local coordinates [V, T, S, S]
        amodal[:, :, k] = _shape_value(shape[:, k, None, None, None], u, w) <= 1.0
        rows = torch.arange(V) * (K + 1) + k + 1
        # one pattern per clip: [V, T, S, S] -> [V, T*S, S] -> pattern -> [V, T, S, S]
        p = pattern(_take(tex, rows), u.reshape(V, T * S, S), w.reshape(V, T * S, S)).reshape(V, T, S, S)
        colour = palettes[:, k + 1, 0, None, :, None, None] + p.unsqueeze(2) * (
            palettes[:, k + 1, 1] - palettes[:, k + 1, 0])[:, None, :, None, None]      # [V, T, 3, S, S]
        # paint k where it is present and nothing nearer is: compare with the depth of what is there so far
        # depth rank of the sprite painted at each pixel: gather from depth [V, K] with ids [V, T*S*S]
        depth_here = torch.where(masks > 0, depth.gather(1, (masks - 1).clamp(min=0).flatten(1)).view_as(masks),
                                 torch.full_like(masks, K))                  # K = behind every sprite
        wins = amodal[:, :, k] & (depth[:, k, None, None, None] < depth_here)
        masks = torch.where(wins, torch.full_like(masks, k + 1), masks)
        frames = torch.where(wins.unsqueeze(2), colour, frames)
    attrs = {"palettes": palettes.float(), "depth": depth, "shape": shape, "radius": radius,
             "centers": torch.stack([cx, cy], -1).permute(0, 2, 1, 3).contiguous(),     # [V, T, K, 2]
             "velocity": vel, "amodal": amodal}
    arrays = {"frames": to_uint8(frames), "masks": masks.to(torch.uint8)}
    arrays.update({f"attr_{k}": v for k, v in attrs.items()})
    return arrays, {"shapes": list(SHAPES)}


def sprite_videos(
    n_videos: int = 32,
    n_frames: int = 16,
    size: int = 64,
    n_objects: int = 3,
    seed: int = 0,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> VideoDataset:
    """Clips of textured sprites moving over a textured background (see the module docstring).

    Args:
        n_videos: number of clips V.
        n_frames: frames per clip T (>= 1).
        size: frame side in pixels (>= 16).
        n_objects: sprites per clip K (1..8); object ids are 1..K.
        seed: the same seed (and arguments) always gives the same clips.
        cache, cache_dir: see :func:`course_lib.data.glyphs`.

    Returns:
        :class:`VideoDataset` with ``frames [V, T, 3, size, size]`` float32 in [0, 1] (8-bit levels k / 255),
        ``masks [V, T, size, size]`` int64 (0 = background, k = sprite k, occlusion resolved), names
        ``"sprites-<i>"``, and
        ``attributes``: ``palettes [V, K+1, 2, 3]`` (row 0 = background), ``depth [V, K]`` int64 rank
        (0 = front), ``shape [V, K]`` index into SHAPES, ``radius [V, K]``, ``centers [V, T, K, 2]`` and
        ``velocity [V, K, 2]`` in [-1, 1] image units (x right, y down), ``amodal [V, T, K, size, size]``
        bool (each sprite's full silhouette, ignoring occlusion).
    """
    for name, value, low in (("n_videos", n_videos, 1), ("n_frames", n_frames, 1), ("size", size, 16),
                             ("n_objects", n_objects, 1), ("seed", seed, None)):
        if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
            raise ValueError(f"{name} must be an int{f' >= {low}' if low is not None else ''}, got {value!r}")
    if n_objects > 8:
        raise ValueError(f"n_objects must be <= 8 (the palettes need distinct hues), got {n_objects}")
    params = {"n_videos": n_videos, "n_frames": n_frames, "size": size, "n_objects": n_objects, "seed": seed}
    arrays, _ = cached("sprite_videos", VERSION, params,
                       lambda: _generate(n_videos, n_frames, size, n_objects, seed), cache, cache_dir)
    attrs = {k[len("attr_"):]: v for k, v in arrays.items() if k.startswith("attr_")}
    return VideoDataset(frames=from_uint8(arrays["frames"]), masks=arrays["masks"].long(),
                        names=[f"sprites-{i}" for i in range(n_videos)], attributes=attrs)
