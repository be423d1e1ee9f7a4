"""Loaders for the two NeRF data formats: the tiny-NeRF ``.npz`` and the NeRF-synthetic Blender scenes.

tiny NeRF (``tiny_nerf_data.npz``): keys ``images [N, H, W, 3]`` (float in [0, 1] or uint8), ``poses
[N, 4, 4]`` camera-to-world, ``focal`` (pixels); optionally ``near``, ``far`` and ``alphas [N, H, W]``.
The official file holds 106 views of the lego scene at 100x100; views 100.. are the customary test views.

Blender (``nerf_synthetic/<scene>/``): ``transforms_<split>.json`` with ``camera_angle_x`` (horizontal field
of view, radians) and ``frames[i].file_path`` (relative, without ``.png``) and ``frames[i].transform_matrix``
(camera-to-world, OpenGL convention); RGBA PNGs, 800x800 for the released scenes. We downscale by an
integer factor f with an area average of *premultiplied* colour, then composite::

    a = mean_{f x f}(alpha),   c = mean_{f x f}(rgb * alpha)
    black background: c          white background: c + (1 - a)
    focal = W_out / 2 / tan(camera_angle_x / 2)

(compositing and averaging commute, so this equals averaging the composited full-size image). Cameras
follow the NeRF / OpenGL convention that ``course_lib.get_rays`` uses, so poses pass through unchanged.

Every problem (missing file or key, wrong shape, inconsistent counts, size mismatch between views) raises
:class:`DatasetError` naming the file; nothing is returned half-built.

References:
    Mildenhall et al., "NeRF", ECCV 2020 (data release: tiny_nerf_data.npz, nerf_synthetic).
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from .containers import DatasetError, NerfData

__all__ = ["load_tiny_nerf", "load_blender", "read_blender_transforms"]

TINY_NERF_TRAIN_VIEWS = 100


def _fail(path, problem: str) -> DatasetError:
    return DatasetError(f"{path}: {problem}")


def _scalar(path, key: str, value: np.ndarray) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise _fail(path, f"key {key!r} must be a single number, got shape {list(arr.shape)} dtype {arr.dtype}")
    out = float(arr.reshape(()))                              # [1] or [] -> []
    if not math.isfinite(out):
        raise _fail(path, f"key {key!r} is not finite ({out})")
    return out


def _poses(path, poses: np.ndarray, n: int, what: str = "poses") -> torch.Tensor:
    if poses.ndim != 3 or poses.shape[1:] not in ((4, 4), (3, 4)) or not np.issubdtype(poses.dtype, np.number):
        raise _fail(path, f"{what} must be [N, 4, 4] or [N, 3, 4] numbers, got shape {list(poses.shape)} {poses.dtype}")
    if poses.shape[0] != n:
        raise _fail(path, f"inconsistent counts: {n} images but {poses.shape[0]} {what}")
    if not np.isfinite(poses).all():
        raise _fail(path, f"{what} contain NaN or Inf")
    full = np.zeros((n, 4, 4), dtype=np.float32)
    full[:, :3, :] = poses[:, :3, :]
    full[:, 3, 3] = 1.0
    return torch.from_numpy(full)


def _images01(path, images: np.ndarray, key: str = "images") -> torch.Tensor:
    if images.dtype == np.uint8:
        return torch.from_numpy(images.astype(np.float32) / 255.0)
    if not np.issubdtype(images.dtype, np.floating):
        raise _fail(path, f"{key} must be float in [0, 1] or uint8, got dtype {images.dtype}")
    if images.size and not (np.isfinite(images).all() and images.min() >= -1e-3 and images.max() <= 1 + 1e-3):
        raise _fail(path, f"{key} must hold values in [0, 1], got [{np.nanmin(images):.3g}, {np.nanmax(images):.3g}]")
    return torch.from_numpy(np.clip(images, 0.0, 1.0).astype(np.float32))


def load_tiny_nerf(path: str | os.PathLike, n_holdout: int | None = None) -> NerfData:
    """Load a tiny-NeRF ``.npz`` (see the module docstring).

    Args:
        path: the ``.npz`` file (read with ``allow_pickle=False``).
        n_holdout: mark the last ``n_holdout`` views as held out; default: every view past the first 100
            (the official file's 6 test views; none for files of <= 100 views).

    Returns:
        :class:`NerfData` (``near``/``far`` from the file when present, else 2.0 / 6.0; ``alphas`` when the
        file has them).

    Raises:
        DatasetError: naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        with open(path, "rb") as f:                                  # our handle: closed even when parsing fails
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise _fail(path, "holds a single array, not an .npz archive with images, poses and focal")
            with loaded as npz:
                data = {k: npz[k] for k in npz.files}
    except DatasetError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise _fail(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    for key in ("images", "poses", "focal"):
        if key not in data:
            raise _fail(path, f"missing key {key!r} (found: {', '.join(sorted(data)) or 'nothing'})")
    images = data["images"]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise _fail(path, f"images must be [N, H, W, 3], got shape {list(images.shape)}")
    n = images.shape[0]
    poses = _poses(path, data["poses"], n)
    focal = _scalar(path, "focal", data["focal"])
    if focal <= 0:
        raise _fail(path, f"focal must be > 0, got {focal}")
    near = _scalar(path, "near", data["near"]) if "near" in data else 2.0
    far = _scalar(path, "far", data["far"]) if "far" in data else 6.0
    if not 0 <= near < far:
        raise _fail(path, f"need 0 <= near < far, got near={near}, far={far}")
    alphas = None
    if "alphas" in data:
        if data["alphas"].shape != images.shape[:3]:
            raise _fail(path, f"alphas must be [N, H, W] = {list(images.shape[:3])}, got {list(data['alphas'].shape)}")
        alphas = _images01(path, data["alphas"], "alphas")
    if n_holdout is None:
        n_holdout = max(n - TINY_NERF_TRAIN_VIEWS, 0)
    if not 0 <= n_holdout <= n:
        raise ValueError(f"n_holdout must be in [0, {n}], got {n_holdout}")
    holdout = torch.arange(n) >= n - n_holdout
    return NerfData(images=_images01(path, images), poses=poses, focal=focal, near=near, far=far,
                    holdout=holdout, alphas=alphas)


def read_blender_transforms(json_path: str | os.PathLike) -> tuple[torch.Tensor, float, list[str]]:
    """Parse a ``transforms_<split>.json``: ``(poses [N, 4, 4] float32, camera_angle_x, file_paths)``."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise _fail(json_path, "file not found")
    try:
        meta = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(json_path, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _fail(json_path, "expected a JSON object at the top level")
    if "camera_angle_x" not in meta:
        raise _fail(json_path, "missing key 'camera_angle_x'")
    angle = _scalar(json_path, "camera_angle_x", np.asarray(meta["camera_angle_x"]))
    if not 0 < angle < math.pi:
        raise _fail(json_path, f"camera_angle_x must be in (0, pi) radians, got {angle}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise _fail(json_path, "missing or empty 'frames' list")
    paths, mats = [], []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
            raise _fail(json_path, f"frames[{i}] needs 'file_path' and 'transform_matrix'")
        try:
            mat = np.asarray(frame["transform_matrix"], dtype=np.float64)
        except (TypeError, ValueError):
            raise _fail(json_path, f"frames[{i}].transform_matrix is not a matrix of numbers") from None
        if mat.shape != (4, 4):
            raise _fail(json_path, f"frames[{i}].transform_matrix must be 4x4, got shape {list(mat.shape)}")
        paths.append(str(frame["file_path"]))
        mats.append(mat)
    return _poses(json_path, np.stack(mats), len(mats), "transform matrices"), angle, paths


def _read_rgba(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise _fail(path, "file not found (listed in the transforms JSON)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _fail(path, f"not a readable image ({exc})") from None
    return rgba


def load_blender(
    root: str | os.PathLike,
    split: str = "train",
    downscale: int = 1,
    background: str = "black",
    max_views: int | None = None,
) -> NerfData:
    """Load one split of a NeRF-synthetic Blender scene (see the module docstring).

    Args:
        root: the scene folder (holding ``transforms_<split>.json``).
        split: ``"train"``, ``"val"`` or ``"test"``; the views of val/test are marked ``holdout``.
        downscale: integer factor (800 px / 8 = 100 px, the tiny-NeRF size); must divide the image size.
        background: ``"black"`` or ``"white"`` (the NeRF paper trains the Blender scenes on white).
        max_views: read only the first ``max_views`` frames.

    Returns:
        :class:`NerfData` with ``alphas``, ``near = 2.0``, ``far = 6.0``.

    Raises:
        ValueError: on a bad argument; DatasetError: naming the file and the problem.
    """
    if background not in ("black", "white"):
        raise ValueError(f"background must be 'black' or 'white', got {background!r}")
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ValueError(f"downscale must be an int >= 1, got {downscale!r}")
    if max_views is not None and (not isinstance(max_views, int) or max_views < 1):
        raise ValueError(f"max_views must be a positive int or None, got {max_views!r}")
    root = Path(root)
    poses, angle, paths = read_blender_transforms(root / f"transforms_{split}.json")
    if max_views is not None:
        poses, paths = poses[:max_views], paths[:max_views]
    images, alphas, first = [], [], None
    for rel in paths:
        file = (root / rel).with_suffix(".png") if not Path(rel).suffix else root / rel
        rgba = _read_rgba(file)
        h, w = rgba.shape[:2]
        if first is None:
            first = (h, w, file)
            if h % downscale or w % downscale:
                raise _fail(file, f"image size {w}x{h} is not divisible by downscale={downscale}")
        elif (h, w) != first[:2]:
            raise _fail(file, f"image size mismatch: {w}x{h}, but {first[2].name} is {first[1]}x{first[0]}")
        f = downscale
        blocks = rgba.reshape(h // f, f, w // f, f, 4)                          # [h/f, f, w/f, f, 4]
        alpha = blocks[..., 3].mean(axis=(1, 3))                                # [h/f, w/f]
        rgb = (blocks[..., :3] * blocks[..., 3:]).mean(axis=(1, 3))             # premultiplied [h/f, w/f, 3]
        if background == "white":
            rgb = rgb + (1.0 - alpha)[..., None]
        images.append(np.clip(rgb, 0.0, 1.0))
        alphas.append(alpha)
    width = first[1] // downscale
    focal = 0.5 * width / math.tan(0.5 * angle)
    n = len(images)
    return NerfData(images=torch.from_numpy(np.stack(images).astype(np.float32)), poses=poses, focal=focal,
                    near=2.0, far=6.0, holdout=torch.full((n,), split != "train"),
                    alphas=torch.from_numpy(np.stack(alphas).astype(np.float32)))
