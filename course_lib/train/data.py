"""Images for contrastive training and how they are split across ranks.

Sources: ``"glyphs"`` (the course's synthetic character images, ``course_lib.data.glyphs``) or a folder / tar
archive with one sub-folder per class (``course_lib.data.load_image_folder``). Both give images
``[N, C, H, W]`` in [0, 1] and labels (used only by the kNN monitor, never by training).

:class:`RankBatches` deals out an epoch: one seeded permutation of the training images (the same on every
rank), cut into global batches of ``world_size * batch_size`` images; rank r takes the r-th slice of each
global batch. The global batch of step s is therefore the same whatever the number of ranks, so a run on W
processes sees the batches a single process with W times the batch size would see.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch

__all__ = ["ImageSplit", "load_image_source", "split_holdout", "RankBatches"]


@dataclass
class ImageSplit:
    """Training images (no labels needed) and a labelled held-out part for the kNN monitor."""

    train_images: torch.Tensor          # [N, C, H, W] float32 in [0, 1]
    train_labels: torch.Tensor          # [N] int64 (kNN bank only)
    test_images: torch.Tensor           # [M, C, H, W]
    test_labels: torch.Tensor           # [M]
    num_classes: int


def _data_function(name: str):
    """``course_lib.data.<name>``, imported on first use (the training code does not need it otherwise)."""
    try:
        mod = importlib.import_module("course_lib.data")
    except ImportError as exc:
        raise ValueError(f"course_lib.data is not available ({exc}); pass --images DIR instead") from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise ValueError(f"course_lib.data has no {name}(); pass --images DIR instead")
    return fn


def load_image_source(source: str, n_images: int = 6000, size: int = 32, seed: int = 0):
    """``(images [N, C, H, W], labels [N], num_classes)`` from ``"glyphs"`` or an image folder / archive.

    Raises:
        ValueError: for an unknown source, a missing folder, or a folder without images (the loaders'
            ``DatasetError`` is a ``ValueError`` that names the file).
    """
    if source == "glyphs":
        ds = _data_function("glyphs")(n=n_images, size=size, seed=seed)
    else:
        ds = _data_function("load_image_folder")(source, size=size)
    images, labels = ds.images.float(), ds.labels.long()
    if images.dim() != 4 or images.shape[0] != labels.shape[0] or images.shape[0] < 2:
        raise ValueError(f"{source}: need at least two images [N, C, H, W] with N labels, got images "
                         f"{list(images.shape)} and labels {list(labels.shape)}")
    return images, labels, len(ds.classes)


def split_holdout(images: torch.Tensor, labels: torch.Tensor, num_classes: int, fraction: float = 0.2,
                  seed: int = 0) -> ImageSplit:
    """A seeded random split: ``fraction`` of the images (at least one) go to the held-out part."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    n = images.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = min(max(1, int(round(n * fraction))), n - 1)
    test, train = perm[:k].sort().values, perm[k:].sort().values
    return ImageSplit(images[train], labels[train], images[test], labels[test], num_classes)


class RankBatches:
    """This rank's batches of one epoch (see the module docstring); the last incomplete global batch is
    dropped. ``steps_per_epoch`` is the same on every rank."""

    def __init__(self, n: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = 0):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size, got batch_size={batch_size}, "
                             f"rank={rank}, world_size={world_size}")
        self.n, self.batch_size, self.world, self.rank, self.seed = n, batch_size, world_size, rank, seed
        self.global_batch = batch_size * world_size
        self.steps_per_epoch = n // self.global_batch
        if self.steps_per_epoch == 0:
            raise ValueError(f"{n} training images are fewer than one global batch ({batch_size} per rank x "
                             f"{world_size} ranks = {self.global_batch}); lower --batch-size")

    def epoch(self, epoch: int, start_step: int = 0):
        """Yield index tensors ``[batch_size]`` for steps ``start_step .. steps_per_epoch - 1`` of ``epoch``."""
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        for s in range(start_step, self.steps_per_epoch):
            lo = s * self.global_batch + self.rank * self.batch_size
            yield perm[lo : lo + self.batch_size]
