"""Loader for DAVIS video object segmentation sequences (DAVIS-2016 and DAVIS-2017 layouts).

Layout::

    <root>/JPEGImages/<resolution>/<sequence>/00000.jpg, 00001.jpg, ...
    <root>/Annotations/<resolution>/<sequence>/00000.png, 00001.png, ...

Annotations come in two flavours, both handled:

* DAVIS-2017 (multi-object): palette PNGs (PIL mode ``"P"``) whose palette *index* is the object id
  (0 = background, 1..K = objects);
* DAVIS-2016 (single object): 8-bit grey PNGs with values {0, 255}, mapped to {0, 1}.

Frames are resized with bilinear filtering with anti-aliasing (an area-like average when shrinking); masks
with nearest neighbour, so ids are never blended. A frame without its mask, a size mismatch, an unexpected
mask encoding or an unreadable file raises :class:`DatasetError` naming the file.

References:
    Perazzi et al., "A Benchmark Dataset and Evaluation Methodology for Video Object Segmentation",
    CVPR 2016 (DAVIS-2016). Pont-Tuset et al., "The 2017 DAVIS Challenge on Video Object Segmentation",
    arXiv:1704.00675 (DAVIS-2017).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .containers import DatasetError, VideoDataset

__all__ = ["davis_sequences", "load_davis", "read_davis_mask"]


def davis_sequences(root: str | os.PathLike, resolution: str = "480p") -> list[str]:
    """Sorted names of the sequences under ``<root>/JPEGImages/<resolution>``."""
    folder = Path(root) / "JPEGImages" / resolution
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found (expected the DAVIS layout JPEGImages/{resolution}/<seq>)")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def read_davis_mask(path: str | os.PathLike) -> np.ndarray:
    """One annotation PNG -> ``[H, W]`` int64 object ids (see the module docstring for the encodings)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except FileNotFoundError:
        raise DatasetError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable PNG ({exc})") from None
    if mode == "P":
        return arr.astype(np.int64)
    if mode == "1":
        return arr.astype(np.int64)
    if mode in ("L", "I;16", "I"):
        values = np.unique(arr)
        if set(values.tolist()) <= {0, 255}:
            return (arr == 255).astype(np.int64)
        if values.max() < 255 and values.max() <= 32:
            return arr.astype(np.int64)                          # grey PNG storing object ids directly
        raise DatasetError(f"{path}: grey mask with values {values[:8].tolist()}...: expected {{0, 255}} or small ids")
    raise DatasetError(f"{path}: unexpected mask mode {mode!r} (DAVIS masks are palette 'P' or grey 'L' PNGs)")


def _read_frame(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None


def _target_size(size, h: int, w: int) -> tuple[int, int]:
    if size is None:
        return h, w
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        return size, max(1, round(w * size / h))                  # height given, width keeps the aspect ratio
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be None, an int height or a (height, width) pair of positive ints, got {size!r}")


def load_davis(
    root: str | os.PathLike,
    sequence: str,
    size: int | tuple[int, int] | None = None,
    max_frames: int | None = None,
    resolution: str = "480p",
    frame_step: int = 1,
) -> VideoDataset:
    """Load one DAVIS sequence with its masks.

    Args:
        root: the DAVIS folder (holding ``JPEGImages`` and ``Annotations``).
        sequence: the sequence name (see :func:`davis_sequences`).
        size: output ``(height, width)``; an int sets the height and keeps the aspect ratio; None keeps
            the native size.
        max_frames: read at most this many frames (after ``frame_step``).
        resolution: the resolution folder (``"480p"`` or ``"Full-Resolution"``).
        frame_step: keep every ``frame_step``-th frame.

    Returns:
        :class:`VideoDataset` with one clip: ``frames [1, T, 3, H, W]`` float32 in [0, 1], ``masks
        [1, T, H, W]`` int64 object ids (0 = background), ``names = [sequence]``.

    Raises:
        ValueError: on a bad argument; DatasetError: naming the file and the problem.
    """
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise ValueError(f"max_frames must be a positive int or None, got {max_frames!r}")
    if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
        raise ValueError(f"frame_step must be an int >= 1, got {frame_step!r}")
    root = Path(root)
    frame_dir = root / "JPEGImages" / resolution / sequence
    mask_dir = root / "Annotations" / resolution / sequence
    for folder in (frame_dir, mask_dir):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: folder not found")
    frame_files = sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not frame_files:
        raise DatasetError(f"{frame_dir}: no frames (.jpg) in the sequence folder")
    mask_stems = {p.stem for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
    missing = [p.name for p in frame_files if p.stem not in mask_stems]
    if missing:
        raise DatasetError(f"{mask_dir}: no mask for frame(s) {', '.join(missing[:5])}"
                           f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of {len(frame_files)})")
    frame_files = frame_files[::frame_step][:max_frames]
    frames, masks, native = [], [], None
    for file in frame_files:
        rgb = _read_frame(file)                                                 # [h, w, 3] uint8
        ids = read_davis_mask(mask_dir / f"{file.stem}.png")                   # [h, w] int64
        if native is None:
            native = rgb.shape[:2]
        elif rgb.shape[:2] != native:
            raise DatasetError(f"{file}: frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the first frame's "
                               f"{native[1]}x{native[0]}")
        if ids.shape != rgb.shape[:2]:
            raise DatasetError(f"{mask_dir / (file.stem + '.png')}: mask size {ids.shape[1]}x{ids.shape[0]} differs "
                               f"from its frame's {rgb.shape[1]}x{rgb.shape[0]}")
        frames.append(rgb)
        masks.append(ids)
    h, w = _target_size(size, *native)
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0   # [T, 3, h0, w0]
    ids = torch.from_numpy(np.stack(masks))                                          # [T, h0, w0]
    if (h, w) != tuple(native):
        video = F.interpolate(video, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        ids = F.interpolate(ids[:, None].float(), size=(h, w), mode="nearest-exact")[:, 0].long()
    return VideoDataset(frames=video.clamp(0, 1)[None], masks=ids[None], names=[sequence])
