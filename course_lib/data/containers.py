"""The three dataset containers every generator and loader in ``course_lib.data`` returns, and the error
they raise on bad input.

* :class:`ImageDataset` -- labelled images ``[N, C, H, W]`` (glyphs, CIFAR-10, MNIST, image folders);
* :class:`VideoDataset` -- clips ``[V, T, 3, H, W]`` with per-pixel object ids ``[V, T, H, W]`` (sprites, DAVIS);
* :class:`NerfData` -- posed views ``[N, H, W, 3]`` of one scene (analytic scene, tiny NeRF, Blender scenes).

All tensors live on the CPU; ``.to(device)`` moves every tensor field at once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

__all__ = ["DatasetError", "ImageDataset", "VideoDataset", "NerfData"]


class DatasetError(ValueError):
    """A dataset file or folder is missing or malformed; the message names the file and the problem."""


def _moved(obj, fn):
    """A copy of the dataclass ``obj`` with ``fn`` applied to every tensor field and every tensor in dicts."""
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, torch.Tensor):
            changes[f.name] = fn(value)
        elif isinstance(value, dict):
            changes[f.name] = {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in value.items()}
    return dataclasses.replace(obj, **changes)


def _check_index(n: int, index) -> torch.Tensor:
    idx = torch.as_tensor(index)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"a boolean index must have shape [{n}], got {list(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.dtype not in (torch.int64, torch.int32) or idx.dim() != 1:
        raise ValueError(f"index must be a 1-D integer or boolean tensor, got {idx.dtype} {list(idx.shape)}")
    return idx.long()


@dataclass
class ImageDataset:
    """Labelled images.

    Attributes:
        images: ``[N, C, H, W]`` float32 in [0, 1] (C = 3 for colour, 1 for MNIST).
        labels: ``[N]`` int64 in ``[0, len(classes))``.
        classes: class names; ``labels[i]`` names ``classes[labels[i]]``.
        masks: optional ``[N, H, W]`` float32 coverage in [0, 1] of the labelled object (synthetic sets only).
        attributes: optional per-image ``[N, ...]`` tensors describing how each image was made (synthetic).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    masks: torch.Tensor | None = None
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got {list(self.images.shape)}")
        n = self.images.shape[0]
        if self.labels.shape != (n,):
            raise ValueError(f"labels must be [{n}] to match images, got {list(self.labels.shape)}")
        if self.masks is not None and self.masks.shape != (n, *self.images.shape[2:]):
            raise ValueError(f"masks must be [N, H, W] = {[n, *self.images.shape[2:]]}, got {list(self.masks.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index) -> "ImageDataset":
        """The images selected by an integer or boolean index (a copy)."""
        idx = _check_index(len(self), index)
        return ImageDataset(
            images=self.images[idx], labels=self.labels[idx], classes=list(self.classes),
            masks=None if self.masks is None else self.masks[idx],
            attributes={k: v[idx] for k, v in self.attributes.items()},
        )

    def split(self, holdout_fraction: float = 0.2, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """A seeded random ``(train, holdout)`` split; ``holdout_fraction`` of the images go to holdout."""
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        k = int(round(len(self) * holdout_fraction))
        return self.subset(perm[k:].sort().values), self.subset(perm[:k].sort().values)

    def to(self, device) -> "ImageDataset":
        return _moved(self, lambda t: t.to(device))


@dataclass
class VideoDataset:
    """Video clips with per-pixel object ids.

    Attributes:
        frames: ``[V, T, 3, H, W]`` float32 in [0, 1].
        masks: ``[V, T, H, W]`` int64; 0 = background, k = object k (occlusion already resolved).
        names: one name per clip (DAVIS sequence names; ``"sprites-<i>"`` for synthetic clips).
        attributes: optional per-clip tensors describing how each clip was made (synthetic).
    """

    frames: torch.Tensor
    masks: torch.Tensor
    names: list[str] = field(default_factory=list)
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.dim() != 5 or self.frames.shape[2] != 3:
            raise ValueError(f"frames must be [V, T, 3, H, W], got {list(self.frames.shape)}")
        v, t, _, h, w = self.frames.shape
        if self.masks.shape != (v, t, h, w):
            raise ValueError(f"masks must be [V, T, H, W] = {[v, t, h, w]}, got {list(self.masks.shape)}")
        if not self.names:
            self.names = [f"clip-{i}" for i in range(v)]
        if len(self.names) != v:
            raise ValueError(f"names must hold one name per clip ({v}), got {len(self.names)}")

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def num_objects(self) -> torch.Tensor:
        """``[V]`` int64: the largest object id in each clip."""
        return self.masks.flatten(1).max(1).values                  # [V, T*H*W] -> [V]

    def to(self, device) -> "VideoDataset":
        return _moved(self, lambda t: t.to(device))


@dataclass
class NerfData:
    """Posed views of one scene in the tiny-NeRF format.

    Attributes:
        images: ``[N, H, W, 3]`` float32 in [0, 1] (composited on the background the loader was asked for).
        poses: ``[N, 4, 4]`` float32 camera-to-world matrices, NeRF / OpenGL camera (looks down -z, y up),
            as ``course_lib.get_rays`` expects.
        focal: focal length in pixels for the stored resolution.
        near, far: the depth interval that holds the scene.
        holdout: ``[N]`` bool, True for views kept out of training (novel-view evaluation).
        alphas: optional ``[N, H, W]`` float32 coverage (Blender scenes and the analytic scene).
    """

    images: torch.Tensor
    poses: torch.Tensor
    focal: float
    near: float = 2.0
    far: float = 6.0
    holdout: torch.Tensor | None = None
    alphas: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be [N, H, W, 3], got {list(self.images.shape)}")
        n = self.images.shape[0]
        if self.poses.shape != (n, 4, 4):
            raise ValueError(f"poses must be [N, 4, 4] = {[n, 4, 4]}, got {list(self.poses.shape)}")
        if not (math.isfinite(self.focal) and self.focal > 0):
            raise ValueError(f"focal must be a finite number > 0, got {self.focal}")
        if not (0 <= self.near < self.far):
            raise ValueError(f"need 0 <= near < far, got near={self.near}, far={self.far}")
        if self.holdout is None:
            self.holdout = torch.zeros(n, dtype=torch.bool)
        if self.holdout.shape != (n,) or self.holdout.dtype != torch.bool:
            got = f"{self.holdout.dtype} {list(self.holdout.shape)}"
            raise ValueError(f"holdout must be a [{n}] bool tensor, got {got}")
        if self.alphas is not None and self.alphas.shape != self.images.shape[:3]:
            raise ValueError(f"alphas must be [N, H, W] = {list(self.images.shape[:3])}, got {list(self.alphas.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    def views(self, index) -> "NerfData":
        """The views selected by an integer or boolean index (a copy)."""
        idx = _check_index(len(self), index)
        return dataclasses.replace(
            self, images=self.images[idx], poses=self.poses[idx], holdout=self.holdout[idx],
            alphas=None if self.alphas is None else self.alphas[idx],
        )

    def train_split(self) -> "NerfData":
        """The training views (``holdout`` is False)."""
        return self.views(~self.holdout)

    def holdout_split(self) -> "NerfData":
        """The held-out views (``holdout`` is True)."""
        return self.views(self.holdout)

    def to(self, device) -> "NerfData":
        return _moved(self, lambda t: t.to(device))
