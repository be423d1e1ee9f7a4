"""Pretext tasks on single images (assignment a2_pretext): rotation prediction and relative patch position.

A network that can tell by how many quarter turns an image was rotated has to recognise the objects in it
(where is the top of a "7"?), so its features transfer to classification. Every image appears in all four
orientations in the same batch, which makes the four classes exactly balanced.

Context prediction asks a related question of two patches of the same image: given the centre cell of a
3 x 3 grid and one of its eight neighbours, where does the neighbour sit? Answering needs an understanding of
object parts (an ear sits above an eye), and the gap between the cells rules out the shortcut of continuing
edges across their border.

References:
    Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations",
    ICLR 2018 (RotNet).
    Doersch, Gupta, Efros, "Unsupervised Visual Representation Learning by Context Prediction", ICCV 2015
    (the 3 x 3 grid of patches with gaps between them, the eight relative positions as classes).
"""
from __future__ import annotations

import torch

from ._validate import check_int, check_tensor

__all__ = ["rotate_batch", "relative_patch_pairs"]


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four quarter-turn rotations of every image, image-major, with their labels.

    Math::

        rotated[4*i + k] = rot90(images[i], k)    (k quarter turns counter-clockwise, as np.rot90,
                                                   in the (H, W) plane)
        labels[4*i + k]  = k                      for k = 0, 1, 2, 3

    Args:
        images: ``[N, C, H, W]`` with ``H == W`` (a quarter turn of a non-square image changes its shape).
            Any dtype (uint8 images work too) and any device.

    Returns:
        ``(rotated, labels)``: ``rotated`` is ``[4N, C, H, W]`` with the dtype and device of ``images``
        (a new tensor, never a view of the input); ``labels`` is int64 ``[4N]`` on the same device.

    Raises:
        ValueError: if ``images`` is not 4-D or ``H != W``.
    """
    check_tensor("images", images, ndim=4, floating=False)
    n, c, h, w = images.shape
    if h != w:
        raise ValueError(f"images must be square (H == W) to rotate by quarter turns, got shape {list(images.shape)}")
    out = images.new_empty((n, 4, c, h, w))                      # [N, 4, C, H, W]
    out[:, 0] = images
    out[:, 1] = images.transpose(-2, -1).flip(-2)                # 90 deg counter-clockwise
    out[:, 2] = images.flip(-2, -1)                              # 180 deg
    out[:, 3] = images.transpose(-2, -1).flip(-1)                # 270 deg counter-clockwise
    rotated = out.reshape(4 * n, c, h, w)                        # image-major: [4N, C, H, W]
    labels = torch.arange(4, device=images.device).repeat(n)     # [0,1,2,3, 0,1,2,3, ...]
    return rotated, labels


def relative_patch_pairs(
    images: torch.Tensor,
    positions: torch.Tensor,
    patch: int,
    gap: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre patch and one of its eight neighbours, for Doersch et al.'s context prediction task.

    A 3 x 3 grid of ``patch x patch`` cells, ``gap`` pixels apart, is centred in every image. The network sees
    the centre cell and one neighbour and must predict which of the eight neighbours it is (the label). The
    gap keeps it from solving the task by matching edges or textures across the border between the cells.

    Math::

        y0 = (H - 3*patch - 2*gap) // 2,      x0 = (W - 3*patch - 2*gap) // 2
        cell (r, c) = images[:, :, y0 + r*(patch+gap) : ... + patch,  x0 + c*(patch+gap) : ... + patch]
        label k -> cell:   0 (0,0)   1 (0,1)   2 (0,2)
                           3 (1,0)   centre    4 (1,2)
                           5 (2,0)   6 (2,1)   7 (2,2)       (row-major order, skipping the centre (1, 1))
        center[n]   = cell (1, 1) of images[n]
        neighbor[n] = cell (r_k, c_k) of images[n]   with k = positions[n]

    Args:
        images: ``[N, C, H, W]``, any dtype and device (N may be 0).
        positions: ``[N]`` labels in 0..7, one per image (int64, or any integer dtype; on any device: it is
            moved to the device of ``images``).
        patch: side of a cell in pixels, >= 1.
        gap: pixels between neighbouring cells, >= 0. The grid needs ``3*patch + 2*gap <= min(H, W)``.

    Returns:
        ``(center, neighbor)``, each ``[N, C, patch, patch]`` with the dtype and device of ``images``. Both are
        new tensors (never views of ``images``), and gradients flow back to ``images``.

    Raises:
        ValueError: if ``images`` is not 4-D, ``positions`` is not an integer ``[N]`` tensor, a label is
            outside 0..7, ``patch < 1``, ``gap < 0``, or the grid does not fit in the image.
    """
    check_tensor("images", images, ndim=4, floating=False)
    n, c, h, w = images.shape
    if not isinstance(positions, torch.Tensor) or positions.shape != (n,):
        got = list(positions.shape) if isinstance(positions, torch.Tensor) else type(positions).__name__
        raise ValueError(f"positions must be a [N] tensor with N = {n} from images, got {got}")
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        raise ValueError(f"positions must hold integer labels (int64), got dtype {positions.dtype}")
    patch = check_int("patch", patch, minimum=1)
    gap = check_int("gap", gap, minimum=0)
    span = 3 * patch + 2 * gap
    if span > h or span > w:
        raise ValueError(
            f"patch={patch} and gap={gap} need a {span}x{span} grid (3*patch + 2*gap), which does not fit in "
            f"images of shape {list(images.shape)}"
        )
    if n > 0 and (positions.min() < 0 or positions.max() > 7):
        raise ValueError(
            f"positions must be labels in 0..7, got values from {int(positions.min())} to {int(positions.max())}"
        )
    step = patch + gap
    y0, x0 = (h - span) // 2, (w - span) // 2
    center = images[:, :, y0 + step : y0 + step + patch, x0 + step : x0 + step + patch].clone()

    k = positions.to(device=images.device, dtype=torch.long)
    cell = k + (k >= 4).long()                               # [N] grid cell 0..8, skipping the centre (4)
    row, col = cell // 3, cell % 3                           # [N] grid row and column of each neighbour
    offsets = torch.arange(patch, device=images.device)      # [patch]
    rows = y0 + row[:, None] * step + offsets                # [N, patch] image rows of each crop
    cols = x0 + col[:, None] * step + offsets                # [N, patch] image columns of each crop
    batch = torch.arange(n, device=images.device)
    channels = torch.arange(c, device=images.device)
    # advanced indexing broadcasts the four index tensors to [N, C, patch, patch] and gathers (a copy)
    neighbor = images[
        batch[:, None, None, None], channels[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
    ]
    return center, neighbor
