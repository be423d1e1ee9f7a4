"""The rotation pretext task (assignment a2_pretext).

A network that can tell by how many quarter turns an image was rotated has to recognise the objects in it
(where is the top of a "7"?), so its features transfer to classification. Every image appears in all four
orientations in the same batch, which makes the four classes exactly balanced.

References:
    Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations",
    ICLR 2018 (RotNet).
"""
from __future__ import annotations

import torch

from ._validate import check_tensor

__all__ = ["rotate_batch"]


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
