"""Camera rays for a pinhole camera in the NeRF / OpenGL convention (assignment a4_rendering).

Camera space looks down -z with +y up and +x to the right. A camera-to-world matrix ``c2w`` ([3, 4] or
[4, 4]) maps camera space to the world: its 3x3 block rotates directions, its last column is the camera
centre. Pixel (column i, row j) is taken at its corner (no +0.5), as in the original NeRF code:

    dir_cam = ( (i - W/2) / focal,  -(j - H/2) / focal,  -1 )

References:
    Mildenhall et al., "NeRF: Representing Scenes as Neural Radiance Fields for View Synthesis", ECCV 2020.
"""
from __future__ import annotations

import torch

from .._validate import check_int, check_positive, check_tensor

__all__ = ["get_rays"]


def get_rays(height: int, width: int, focal: float, c2w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One ray per pixel of an ``height x width`` pinhole camera.

    Math::

        d_cam[j, i] = ( (i - W/2) / focal, -(j - H/2) / focal, -1 )      i = column, j = row
        rays_d[j, i] = c2w[:3, :3] @ d_cam[j, i]                          (not normalised)
        rays_o[j, i] = c2w[:3, 3]

    Args:
        height, width: image size in pixels (positive ints).
        focal: focal length in pixels (> 0).
        c2w: ``[4, 4]`` or ``[3, 4]`` camera-to-world matrix (floating point).

    Returns:
        ``(rays_o, rays_d)``, each ``[H, W, 3]`` with the dtype and device of ``c2w``; both are new tensors
        (not views of ``c2w``) and differentiable with respect to ``c2w``.

    Raises:
        ValueError: if ``height``/``width`` are not positive ints, ``focal <= 0``, or ``c2w`` is not
        ``[4, 4]`` / ``[3, 4]``.
    """
    h = check_int("height", height, minimum=1)
    w = check_int("width", width, minimum=1)
    f = check_positive("focal", focal)
    check_tensor("c2w", c2w, ndim=2)
    if tuple(c2w.shape) not in ((4, 4), (3, 4)):
        raise ValueError(f"c2w must be [4, 4] or [3, 4], got shape {list(c2w.shape)}")
    kw = dict(dtype=c2w.dtype, device=c2w.device)
    x = (torch.arange(w, **kw) - w / 2) / f                   # [W]  column i -> +x
    y = -(torch.arange(h, **kw) - h / 2) / f                  # [H]  row j -> -y (image rows go down)
    dirs = torch.stack(
        [x.expand(h, w), y[:, None].expand(h, w), torch.full((h, w), -1.0, **kw)], dim=-1
    )                                                          # [H, W, 3] camera space
    rays_d = dirs @ c2w[:3, :3].T                              # [H, W, 3] world space: R @ d per pixel
    rays_o = c2w[:3, 3].expand(h, w, 3).clone()                # [H, W, 3]
    return rays_o, rays_d
