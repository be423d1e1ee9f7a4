"""How many labels does a pretext task save? Fine-tune a RotNet-initialised and a random-initialised network
with 2, 10 and 50 labelled images per class.

    python -m course_lib.experiments.label_efficiency [--images DIR_OR_TAR] [--n-per-class N] [--steps N]

The lecture's label-efficiency slide: pretraining on a pretext task matters most when labels are few. Blocks 1-3
of a network (a RotNet trained by :mod:`.rotation`, or the same architecture at its random initialisation) get a
new linear classifier on their average-pooled 4 x 4 block-3 features (the layer the notebook's probe reads), and
*all* the layers are trained on ``k`` labelled images per class (Adam, random crops of 70-100% of the image,
BatchNorm in training mode), then tested on the held-out images of :func:`.rotation.split_indices`. Both
initialisations get the same labelled images, augmentations, steps and learning rate; only the starting weights
differ. With many labels the two meet (Gidaris et al. 2018, semi-supervised CIFAR-10: the gain shrinks as the
labelled set grows).

It prints, last, ``finetune_rotnet_<k>=... finetune_random_<k>=...`` for every ``k``.

References:
    Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations", ICLR 2018
    (section 3.2.2: semi-supervised CIFAR-10, a classifier on RotNet features trained on few labels).
    Hénaff et al., "Data-Efficient Image Recognition with Contrastive Predictive Coding", ICML 2020 (accuracy
    against the number of labels for pretrained and randomly initialised networks).
"""
from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import random_resized_crop
from ..guards import backward_and_step
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented
from .rotation import RotationExperiment, RotNet, load_images, split_indices, train_rotnet

__all__ = ["LabelEfficiencyExperiment", "FineTuneNet", "labelled_subset", "finetune", "run", "main"]


@dataclass(frozen=True)
class LabelEfficiencyExperiment:
    """Default settings: under a minute on one CPU core after the RotNet; ``smoke()`` seconds.

    The data, split and RotNet settings are those of :class:`.rotation.RotationExperiment` (``rotation``).
    """

    rotation: RotationExperiment = RotationExperiment()
    labels_per_class: tuple[int, ...] = (2, 10, 50)
    steps: int = 100                # fine-tuning steps for every (k, initialisation)
    batch_size: int = 64            # labelled images per step (all of them when fewer)
    lr: float = 2e-3                # Adam, cosine decay to 0
    crop_min: float = 0.7           # random crops of 70-100% of the image area
    block: int = 3                  # the classifier reads this block (pooled to 4 x 4)

    @staticmethod
    def smoke() -> "LabelEfficiencyExperiment":
        return LabelEfficiencyExperiment(rotation=RotationExperiment.smoke(), labels_per_class=(2, 4), steps=3)

    def validate(self) -> "LabelEfficiencyExperiment":
        self.rotation.validate()
        if not self.labels_per_class or min(self.labels_per_class) < 1:
            raise ValueError(f"labels_per_class must be counts >= 1, got {self.labels_per_class}")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.crop_min <= 1:
            raise ValueError(f"lr must be > 0 and crop_min in (0, 1], got {self.lr} and {self.crop_min}")
        if self.block not in (1, 2, 3, 4):
            raise ValueError(f"block must be in 1..4, got {self.block}")
        return self


class FineTuneNet(nn.Module):
    """Blocks 1..``block`` of a RotNet (copied, trainable) and a linear classifier on their pooled output.

    ::

        x [N, C, 32, 32] -> blocks 1..b (with the RotNet's max-pools) -> adaptive avg pool 4x4 -> flatten
          -> Linear(C_b * 16, n_classes)
    """

    def __init__(self, trunk: RotNet, n_classes: int, block: int = 3):
        super().__init__()
        self.trunk, self.block = copy.deepcopy(trunk), block
        self.trunk.blocks = self.trunk.blocks[:block]                       # the later blocks are not used
        self.trunk.head = nn.Identity()
        width = self.trunk.blocks[-1][0].out_channels
        self.classifier = nn.Linear(width * 16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk.block_output(x, self.block)                          # [N, C_b, H_b, W_b]
        return self.classifier(F.adaptive_avg_pool2d(h, 4).flatten(1))      # [N, C_b * 16] -> [N, n_classes]


def labelled_subset(labels: torch.Tensor, pool: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of the first ``k`` images of every class in a seeded shuffle of ``pool`` (fewer if a class has
    fewer); the subsets for growing ``k`` are nested."""
    order = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))]
    picked = [order[labels[order] == c][:k] for c in labels.unique()]
    return torch.cat(picked).sort().values


def finetune(init: RotNet, images: torch.Tensor, labels: torch.Tensor, n_classes: int,
             exp: LabelEfficiencyExperiment, device: torch.device, seed: int = 0) -> FineTuneNet:
    """Train every layer of a :class:`FineTuneNet` made from ``init`` on ``images [n, C, H, W]``; eval mode."""
    torch.manual_seed(seed)
    net = FineTuneNet(init, n_classes, exp.block).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=exp.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, exp.steps)
    gen = torch.Generator().manual_seed(seed)
    batch = min(exp.batch_size, len(images))
    for step in range(exp.steps):
        idx = torch.randperm(len(images), generator=gen)[:batch]
        x = random_resized_crop(images[idx].to(device), (exp.crop_min, 1.0), (0.9, 1.1), gen)   # [B, C, H, W]
        logits = net(x)
        loss = F.cross_entropy(logits, labels[idx].to(device))
        backward_and_step(loss, opt, "fine-tuning loss", step, inputs={"logits": logits})
        sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    """Top-1 accuracy of ``net`` on ``images [N, C, H, W]``, in chunks of 500."""
    correct = sum(int((net(x.to(device)).argmax(1).cpu() == y).sum()) for x, y in zip(images.split(500),
                                                                                       labels.split(500)))
    return correct / len(labels)


def run(
    rotate_batch: Callable | None = None,
    exp: LabelEfficiencyExperiment | None = None,
    *,
    rotnet: RotNet | None = None,
    images_dir: str | Path | None = None,
    n_per_class: int | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune RotNet-initialised and random-initialised networks on ``k`` labels per class, for every ``k``.

    ``rotnet``: a RotNet trained on the same images and split (the notebook passes its section 3 network); when
    None one is trained here with ``rotate_batch``. Returns ``labels_per_class`` (the ``k`` used), ``rotnet`` and
    ``random`` (held-out accuracies, one per ``k``), ``metrics`` (``finetune_rotnet_<k>``,
    ``finetune_random_<k>``, ``chance``).
    """
    exp = (exp or (LabelEfficiencyExperiment.smoke() if smoke_mode() else LabelEfficiencyExperiment())).validate()
    device = device or pick_device()
    images, labels, classes = load_images(exp.rotation, images_dir, n_per_class)
    rot_exp, test_idx, train_idx, _ = split_indices(exp.rotation, len(images))
    if rotnet is None:
        rotate_batch = resolve("rotate_batch", rotate_batch)
        require_implemented("rotate_batch", rotate_batch, torch.zeros(1, 1, 2, 2))
        rotnet, _ = train_rotnet(images[train_idx], rotate_batch, rot_exp, device, progress)
    torch.manual_seed(rot_exp.seed + 1)
    random_net = RotNet(images.shape[1], rot_exp.width)
    out = {"labels_per_class": list(exp.labels_per_class), "rotnet": [], "random": []}
    for k in exp.labels_per_class:
        subset = labelled_subset(labels, train_idx, k, rot_exp.seed)
        for name, init in (("rotnet", rotnet), ("random", random_net)):
            net = finetune(init, images[subset], labels[subset], len(classes), exp, device, seed=rot_exp.seed)
            out[name].append(accuracy(net, images[test_idx], labels[test_idx], device))
    metrics = {}
    for i, k in enumerate(exp.labels_per_class):
        metrics[f"finetune_rotnet_{k}"], metrics[f"finetune_random_{k}"] = out["rotnet"][i], out["random"][i]
    metrics["chance"] = 1.0 / len(classes)
    out["metrics"] = metrics
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.label_efficiency",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", metavar="DIR", help="<class>/<image> folder or .tar[.gz] of one (default: glyphs)")
    parser.add_argument("--n-per-class", type=int, help="with --images: read at most N images per class")
    parser.add_argument("--steps", type=int, help="RotNet training steps (default 600; 15 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = LabelEfficiencyExperiment.smoke() if smoke_mode() else LabelEfficiencyExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, rotation=replace(exp.rotation, steps=args.steps))
    if args.images is not None and not Path(args.images).exists():
        parser.error(f"--images {args.images}: no such folder or archive")
    if args.n_per_class is not None and args.n_per_class < 1:
        parser.error(f"--n-per-class must be >= 1, got {args.n_per_class}")
    try:
        out = run(exp=exp, images_dir=args.images, n_per_class=args.n_per_class, progress=sys.stderr.isatty())
    except ValueError as exc:                    # bad data or settings: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for k, a, b in zip(out["labels_per_class"], out["rotnet"], out["random"]):
        print(f"{k:3d} labels per class: fine-tuned from RotNet {a:.3f}, from random init {b:.3f}")
    print(format_metrics({k: v for k, v in out["metrics"].items() if k != "chance"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
