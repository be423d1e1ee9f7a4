"""Image grids and GIFs for the notebooks (matplotlib and imageio; no torchvision needed).

Images are torch tensors ``[N, C, H, W]`` (C = 1 or 3) with float values in [0, 1] or uint8 values.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .atomic import atomic_path

__all__ = ["to_uint8", "make_grid", "show_images", "save_gif"]


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (clipped) or uint8 images -> a uint8 NumPy array of the same shape."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"images must be float in [0, 1] or uint8, got dtype {arr.dtype}")
    return (np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``[N, C, H, W]`` images into one ``[C, rows*(H+p)+p, nrow*(W+p)+p]`` image (row-major order).

    Raises:
        ValueError: if ``images`` is not 4-D, or ``nrow < 1`` / ``padding < 0``.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a [N, C, H, W] tensor, got {shape}")
    if nrow < 1 or padding < 0:
        raise ValueError(f"need nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    n, c, h, w = images.shape
    ncol = min(nrow, max(n, 1))
    nrows = max(1, -(-n // ncol))
    fill = pad_value if images.is_floating_point() else int(round(pad_value * 255))
    grid = images.new_full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), fill)
    for k in range(n):                                    # a loop over tiles is fine for display code
        r, col = divmod(k, ncol)
        y0, x0 = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y0 : y0 + h, x0 : x0 + w] = images[k]
    return grid


def show_images(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    ax=None,
    figsize: tuple[float, float] | None = None,
):
    """Show ``[N, C, H, W]`` images as one grid with matplotlib; returns the Axes."""
    import matplotlib.pyplot as plt

    grid = make_grid(images.detach().cpu(), nrow=nrow)
    arr = to_uint8(grid.permute(1, 2, 0))                # [H', W', C]
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or (min(12, 1.2 * min(nrow, len(images))) + 1, 3))
    if arr.shape[-1] == 1:
        ax.imshow(arr[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(arr)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def save_gif(frames: Sequence | Iterable, path: str | os.PathLike, fps: float = 10.0, loop: int = 0,
             min_side: int = 256) -> Path:
    """Write frames (each ``[H, W, 3]`` / ``[H, W]`` or ``[3, H, W]``, float in [0, 1] or uint8) to a GIF.

    Small frames are enlarged by an integer factor (nearest neighbour, so pixels stay sharp) until the shorter
    side is at least ``min_side`` pixels: a 32 x 32 rendering shows at 256 x 256, not as a thumbnail. The file is
    written to a temporary name and renamed, so an interrupted call never leaves a truncated GIF behind. Note that
    GIF merges identical consecutive frames.

    Raises:
        ValueError: if there are no frames or they differ in shape.
    """
    import imageio.v2 as imageio

    arrays = []
    for f in frames:
        a = to_uint8(f)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = np.moveaxis(a, 0, -1)                    # [C, H, W] -> [H, W, C]
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        arrays.append(a)
    if not arrays:
        raise ValueError("save_gif needs at least one frame")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"all frames must have the same shape, got {sorted({a.shape for a in arrays})}")
    factor = max(1, -(-int(min_side) // min(arrays[0].shape[:2])))          # ceil(min_side / shorter side)
    if factor > 1:
        arrays = [a.repeat(factor, axis=0).repeat(factor, axis=1) for a in arrays]
    path = Path(path)
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, arrays, format="GIF", duration=1000.0 / fps, loop=loop)
    return path
