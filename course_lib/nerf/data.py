"""Posed views in the tiny-NeRF format, the train / held-out split, and the rays of every training pixel.

Format: ``images [N, H, W, 3]`` float in [0, 1], ``poses [N, 4, 4]`` camera-to-world (NeRF / OpenGL camera,
as ``get_rays`` expects), ``focal`` in pixels, and the depth interval ``near`` / ``far`` (2 and 6
when the source does not say). Sources: a ``.npz`` file with those keys, a ``course_lib.data.NerfData`` (or
any object with those attributes), or a dict.

The default scene box: a camera at distance r from the origin sees nothing closer than ``near``, so a
scene centred at the origin and seen by every camera lies within ``min_cameras(r) - near`` of it; the box is
the cube of that half-size (2.03 for the lego views, whose object fits in ~[-1.2, 1.2]^3).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..manifest import resolve

__all__ = ["Views", "load_views", "split_views", "all_rays", "default_bound"]


@dataclass
class Views:
    images: torch.Tensor        # [N, H, W, 3] float32 in [0, 1]
    poses: torch.Tensor         # [N, 4, 4] float32 camera-to-world
    focal: float
    near: float = 2.0
    far: float = 6.0

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be [N, H, W, 3], got shape {list(self.images.shape)}")
        n = self.images.shape[0]
        if tuple(self.poses.shape) != (n, 4, 4):
            raise ValueError(f"poses must be [N, 4, 4] with N = {n} from images, got {list(self.poses.shape)}")
        if not (np.isfinite(self.focal) and self.focal > 0):
            raise ValueError(f"focal must be a finite number > 0, got {self.focal}")
        if not 0 <= self.near < self.far:
            raise ValueError(f"need 0 <= near < far, got near={self.near}, far={self.far}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def hw(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def subset(self, index: torch.Tensor) -> "Views":
        return Views(self.images[index], self.poses[index], self.focal, self.near, self.far)


def _from_npz(path: Path) -> Views:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    missing = [k for k in ("images", "poses", "focal") if k not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing} (found {sorted(data)})")
    try:
        return _from_mapping(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _from_mapping(d) -> Views:
    images = torch.as_tensor(np.asarray(d["images"])).float()
    if images.numel() and float(images.max()) > 1.0 + 1e-6:           # uint8-like data
        images = images / 255.0
    poses = torch.as_tensor(np.asarray(d["poses"])).float()
    if poses.dim() == 3 and poses.shape[1:] == (3, 4):                # [N, 3, 4] -> [N, 4, 4]
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(poses.shape[0], 1, 4)
        poses = torch.cat([poses, bottom], 1)
    near = float(np.asarray(d["near"])) if "near" in d else 2.0
    far = float(np.asarray(d["far"])) if "far" in d else 6.0
    return Views(images.contiguous(), poses.contiguous(), float(np.asarray(d["focal"])), near, far)


def load_views(source) -> tuple[Views, torch.Tensor | None]:
    """``(views, holdout_mask or None)`` from a path to an ``.npz``, a ``NerfData``-like object or a dict."""
    if isinstance(source, (str, os.PathLike)):
        return _from_npz(Path(source)), None
    if isinstance(source, dict):
        return _from_mapping(source), None
    if all(hasattr(source, k) for k in ("images", "poses", "focal")):
        views = Views(source.images.float(), source.poses.float(), float(source.focal),
                      float(getattr(source, "near", 2.0)), float(getattr(source, "far", 6.0)))
        holdout = getattr(source, "holdout", None)
        return views, (holdout.bool() if isinstance(holdout, torch.Tensor) and bool(holdout.any()) else None)
    raise ValueError(f"data must be a .npz path, a dict or a NerfData-like object, got {type(source).__name__}")


def split_views(views: Views, holdout: int | None, mask: torch.Tensor | None = None) -> tuple[Views, Views]:
    """``(train, held_out)``: the last ``holdout`` views are held out; ``holdout=None`` uses ``mask`` (the
    source's own split) and otherwise holds out nothing."""
    n = len(views)
    if holdout is not None:
        if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout < n:
            raise ValueError(f"holdout must be an int in [0, {n - 1}] (views kept out of training), got {holdout!r}")
        mask = torch.arange(n) >= n - holdout
    elif mask is None:
        mask = torch.zeros(n, dtype=torch.bool)
    if bool(mask.all()):
        raise ValueError("every view is held out: nothing left to train on")
    return views.subset(~mask), views.subset(mask)


def all_rays(views: Views, get_rays: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rays_o [N*H*W, 3], rays_d [N*H*W, 3], rgb [N*H*W, 3])`` for every pixel of every view, from the
    caller's ``get_rays`` (None: :func:`course_lib.manifest.resolve`'s choice)."""
    get_rays = resolve("get_rays", get_rays)
    h, w = views.hw
    pairs = [get_rays(h, w, views.focal, pose) for pose in views.poses]
    rays_o = torch.stack([o for o, _ in pairs]).reshape(-1, 3)      # [N, H, W, 3] -> [N*H*W, 3]
    rays_d = torch.stack([d for _, d in pairs]).reshape(-1, 3)
    return rays_o, rays_d, views.images.reshape(-1, 3)


def default_bound(views: Views) -> float:
    """Half-size of the default scene box: ``min_i |camera_i| - near``, at least 0.5."""
    dist = views.poses[:, :3, 3].norm(dim=-1)
    return max(float(dist.min()) - views.near, 0.5)
