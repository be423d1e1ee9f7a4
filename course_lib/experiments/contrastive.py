"""SimCLR and MoCo on glyphs (or an image folder): do contrastive features beat an untrained encoder?

    python -m course_lib.experiments.contrastive [--method simclr|moco] [--images DIR] [--batch-size N]
                                                 [--steps S] [--seed K] [--head mlp|linear]

Trains the small conv encoder + projection head of :mod:`course_lib.models` without labels, on two
:mod:`course_lib.augment` views of every image, with the loss functions passed in (the student's in the
notebook, the course_lib references from the command line):

* **SimCLR**: ``nt_xent_loss`` over the 2N views of the batch (2N - 2 negatives per anchor).
* **MoCo**: ``moco_loss`` of each view's query against the momentum encoder's key of the other view
  (symmetrised, as in MoCo's CIFAR-10 demo and MoCo v3), with a queue of earlier keys as negatives
  (``enqueue``) -- K negatives whatever the batch size. The order of one step follows MoCo's Algorithm 1:
  loss, backward, optimiser step, momentum update (``momentum_update``), enqueue.

MoCo v2 (Chen, Fan, Girshick, He 2020) changed three things of MoCo v1: a two-layer MLP projection head in
place of v1's single linear layer, SimCLR's stronger augmentation (blur added, stronger colour jitter) and a
cosine learning-rate schedule. This loop always uses the last two; ``--head linear`` swaps the MLP head for
v1's linear one (the head ablation).

The representation is judged by weighted kNN (k = 200, tau = 0.1; :mod:`course_lib.train.knn`) on the frozen
encoder features ``h = f(x)`` (not the projection ``g(h)``) of a held-out 20% of the images, against the
training 80% as the labelled bank. The same encoder at its random initialisation, and raw pixels, are the
baselines. It prints, last, ``knn_acc=... knn_acc_random_init=...``.

The loop here is a thin single-process version of :mod:`course_lib.train.contrastive` (which has the
multi-process trainer, checkpoints and the CLI for long runs) so that the loss functions can be passed in;
it reuses that module's data loading and split, its kNN monitor, the models and the augmentations.

Defaults, chosen for a 2-core CPU (a few minutes per method): the glyphs of :func:`course_lib.data.glyphs`
(6000 images, 20 classes), encoder width 16, batches of 32 for 1600 steps (about 10 epochs; at this scale
many small steps beat few large ones), Adam with a cosine schedule, temperature 0.1, MoCo queue 4096 and
momentum 0.995 (the best of 0.95 / 0.99 / 0.995 / 0.999 here: 0.16 / 0.32 / 0.36 / 0.30 kNN accuracy, seed 0),
crops of 30-100% of the image without flips (a mirrored "E" is a "3"), colour jitter of strength 1.0 and
grayscale with probability 0.5 (crop + colour is the pair SimCLR's ablation, Fig. 5, found essential).

References:
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (SimCLR; augmentations, section 3 and Fig. 5; projection head, section 4.2).
    He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020
    (MoCo; Algorithm 1, momentum, queue).
    Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive Learning", 2020 (MoCo v2: MLP head,
    augmentation, cosine schedule; Table 1).
    Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021 (MoCo v3;
    the symmetrised loss).
    Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018
    (weighted kNN evaluation).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import AugmentConfig, augment
from ..guards import backward_and_step
from ..manifest import resolve
from ..models import ContrastiveNet, EncoderConfig, HeadConfig
from ..objectives import MoCoObjective, SimCLRObjective
from ..train.data import ImageSplit, load_image_source, split_holdout
from ..train.knn import extract_features, knn_accuracy
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["ContrastiveExperiment", "History", "load_split", "augment_config", "build_net", "knn_eval",
           "SimCLRObjective", "MoCoObjective", "train", "run", "main"]

METHODS = ("simclr", "moco")
HEADS = ("mlp", "linear")


@dataclass(frozen=True)
class ContrastiveExperiment:
    """Default settings: a few minutes per method on a 2-core CPU; ``smoke()`` in seconds."""

    data: str = "glyphs"                 # "glyphs" or a folder / tar of <class>/<image> files
    n_images: int = 6000                 # glyphs made; an image folder is subsampled to this many
    image_size: int = 32
    holdout: float = 0.2                 # labelled images kept out of training for the kNN evaluation
    width: int = 16                      # encoder widths 16, 32, 64, 128 -> h of size 128
    out_dim: int = 128                   # projection z
    head: str = "mlp"                    # "mlp" (SimCLR, MoCo v2) or "linear" (MoCo v1: one linear layer)
    batch_size: int = 32
    steps: int = 1600                    # about 10 epochs of the 4800 training images
    lr: float = 1e-3                     # Adam, cosine decay to 0
    weight_decay: float = 1e-4
    temperature: float = 0.1
    queue_size: int = 4096               # MoCo
    moco_momentum: float = 0.995         # MoCo
    crop_min: float = 0.3                # random resized crops of 30-100% of the area
    color_strength: float = 1.0
    grayscale_prob: float = 0.5
    flip_prob: float = 0.0
    knn_k: int = 200
    knn_t: float = 0.1
    eval_every: int = 200                # kNN accuracy during training (0: only at the end)
    seed: int = 0

    @staticmethod
    def smoke() -> "ContrastiveExperiment":
        return ContrastiveExperiment(n_images=400, width=4, out_dim=16, batch_size=32, steps=4, queue_size=128,
                                     knn_k=20, eval_every=2)

    def validate(self) -> "ContrastiveExperiment":
        for name in ("n_images", "image_size", "width", "out_dim", "batch_size", "steps", "queue_size", "knn_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8 (three 2x poolings), got {self.image_size}")
        if self.queue_size < 2 * self.batch_size:
            raise ValueError(f"queue_size must hold the keys of one step (>= 2 x batch_size = {2 * self.batch_size}), "
                             f"got {self.queue_size}")
        if self.lr <= 0 or self.temperature <= 0 or self.knn_t <= 0:
            raise ValueError(f"lr, temperature and knn_t must be > 0, got {self.lr}, {self.temperature}, {self.knn_t}")
        if not 0.0 <= self.moco_momentum <= 1.0:
            raise ValueError(f"moco_momentum must be in [0, 1], got {self.moco_momentum}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
        augment_config(self)                                   # crop_min / strength / probabilities
        return self


@dataclass
class History:
    """Per-step losses and the kNN accuracy at every evaluation (step 0 is the random initialisation)."""

    loss: list[float] = field(default_factory=list)
    knn_steps: list[int] = field(default_factory=list)
    knn_acc: list[float] = field(default_factory=list)


def augment_config(exp: ContrastiveExperiment) -> AugmentConfig:
    """The SimCLR pipeline with the experiment's crop range, colour strength and grayscale / flip rates."""
    if not 0.0 < exp.crop_min <= 1.0:
        raise ValueError(f"crop_min must be in (0, 1], got {exp.crop_min}")
    return AugmentConfig.strength(exp.color_strength, crop_scale=(exp.crop_min, 1.0), flip_prob=exp.flip_prob,
                                  grayscale_prob=exp.grayscale_prob).validate()


def load_split(exp: ContrastiveExperiment) -> ImageSplit:
    """Images (glyphs or a folder, at most ``n_images``, a seeded subset) and their train / held-out split."""
    images, labels, n_classes = load_image_source(exp.data, exp.n_images, exp.image_size, exp.seed)
    if images.shape[-2:] != (exp.image_size, exp.image_size):
        raise ValueError(f"{exp.data}: images must be {exp.image_size}x{exp.image_size}, got {list(images.shape)}")
    if images.shape[0] > exp.n_images:
        keep = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(exp.seed))[: exp.n_images]
        images, labels = images[keep.sort().values], labels[keep.sort().values]
    split = split_holdout(images, labels, n_classes, exp.holdout, exp.seed)
    if split.train_images.shape[0] < exp.batch_size:
        raise ValueError(f"{exp.data}: {split.train_images.shape[0]} training images are fewer than one batch "
                         f"({exp.batch_size}); lower the batch size")
    return split


def build_net(exp: ContrastiveExperiment, in_channels: int) -> ContrastiveNet:
    """Encoder f (features h, 8 * width wide) and projection head g: ``8w -> 8w -> out_dim`` (``head="mlp"``) or
    one linear layer ``8w -> out_dim`` (``head="linear"``, MoCo v1's fc output)."""
    hidden = 8 * exp.width if exp.head == "mlp" else 0
    return ContrastiveNet(EncoderConfig(in_channels=in_channels, width=exp.width),
                          HeadConfig(hidden_dim=hidden, out_dim=exp.out_dim))


def knn_eval(fn: Callable[[torch.Tensor], torch.Tensor], split: ImageSplit, exp: ContrastiveExperiment,
             device: torch.device) -> float:
    """Weighted-kNN accuracy of the features ``fn(x) [N, D]`` of the held-out images (training images as bank)."""
    train_f = extract_features(fn, split.train_images, device)                  # [N_train, D]
    test_f = extract_features(fn, split.test_images, device)                    # [N_test, D]
    return knn_accuracy(test_f, split.test_labels, train_f, split.train_labels, split.num_classes,
                        exp.knn_k, exp.knn_t)


def train(objective, net: nn.Module, split: ImageSplit, exp: ContrastiveExperiment, device: torch.device,
          progress: bool = True, desc: str = "training") -> History:
    """Adam + cosine decay over ``exp.steps`` steps of two augmented views per image; kNN every ``eval_every``."""
    aug = augment_config(exp)
    gen = torch.Generator().manual_seed(exp.seed + 1)                          # batches and augmentations
    opt = torch.optim.Adam(net.parameters(), lr=exp.lr, weight_decay=exp.weight_decay)
    cosine = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, exp.steps) / exp.steps))   # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    hist = History()

    def evaluate(step: int) -> None:
        net.eval()
        hist.knn_steps.append(step)
        hist.knn_acc.append(knn_eval(net.features, split, exp, device))
        net.train()

    evaluate(0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=exp.steps, desc=desc)
    n_train, step = split.train_images.shape[0], 0
    net.train()
    while step < exp.steps:
        perm = torch.randperm(n_train, generator=gen)
        for start in range(0, n_train - exp.batch_size + 1, exp.batch_size):  # the last partial batch is dropped
            x = split.train_images[perm[start : start + exp.batch_size]].to(device)   # [B, C, H, W]
            x_a, x_b = augment(x, aug, gen), augment(x, aug, gen)
            loss = objective.loss(x_a, x_b)
            backward_and_step(loss, opt, objective.name, step, inputs=objective.inputs)
            sched.step()
            objective.after_step()
            step += 1
            hist.loss.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{hist.loss[-1]:.3f}", knn=f"{hist.knn_acc[-1]:.3f}")
            if (exp.eval_every and step % exp.eval_every == 0) and step < exp.steps:
                evaluate(step)
            if step >= exp.steps:
                break
    evaluate(step)
    if bar is not None:
        bar.close()
    net.eval()
    return hist


def run(
    nt_xent_loss: Callable | None = None,
    momentum_update: Callable | None = None,
    enqueue: Callable | None = None,
    moco_loss: Callable | None = None,
    exp: ContrastiveExperiment | None = None,
    *,
    method: str = "simclr",
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train with ``method`` and evaluate; returns ``{"metrics", "history", "model"}``.

    ``metrics``: ``knn_acc`` (trained encoder), ``knn_acc_random_init`` (the same encoder before training),
    ``knn_acc_pixels`` (raw pixels), ``gain`` (= knn_acc - knn_acc_random_init), ``negatives`` (per anchor).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    exp = (exp or (ContrastiveExperiment.smoke() if smoke_mode() else ContrastiveExperiment())).validate()
    device = device or pick_device()
    if method == "simclr":                      # only the functions the method calls are needed
        nt_xent_loss = resolve("nt_xent_loss", nt_xent_loss)
        require_implemented("nt_xent_loss", nt_xent_loss, torch.randn(2, 3), torch.randn(2, 3))
    else:
        momentum_update = resolve("momentum_update", momentum_update)
        enqueue, moco_loss = resolve("enqueue", enqueue), resolve("moco_loss", moco_loss)
        require_implemented("momentum_update", momentum_update, nn.Linear(2, 2), nn.Linear(2, 2), 0.5)
        require_implemented("enqueue", enqueue, torch.zeros(4, 3), 0, torch.ones(2, 3))
        unit = F.normalize(torch.ones(2, 3), dim=1)
        require_implemented("moco_loss", moco_loss, unit, unit, unit)
    torch.manual_seed(exp.seed)
    split = load_split(exp)
    net = build_net(exp, split.train_images.shape[1]).to(device)
    if method == "simclr":
        objective = SimCLRObjective(net, nt_xent_loss, exp.temperature)
        negatives = 2 * exp.batch_size - 2
    else:
        objective = MoCoObjective(net, momentum_update, enqueue, moco_loss, temperature=exp.temperature,
                                  queue_size=exp.queue_size, momentum=exp.moco_momentum, dim=exp.out_dim, device=device,
                                  seed=exp.seed, symmetric=True)
        negatives = exp.queue_size
    hist = train(objective, net, split, exp, device, progress, desc=f"{method}, batch {exp.batch_size}")
    pixels = knn_accuracy(split.test_images.flatten(1), split.test_labels, split.train_images.flatten(1),
                          split.train_labels, split.num_classes, exp.knn_k, exp.knn_t)
    metrics = {
        "knn_acc": hist.knn_acc[-1],
        "knn_acc_random_init": hist.knn_acc[0],
        "knn_acc_pixels": pixels,
        "gain": hist.knn_acc[-1] - hist.knn_acc[0],
        "negatives": negatives,
        "chance": 1.0 / split.num_classes,
    }
    return {"metrics": metrics, "history": hist, "model": net}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.contrastive",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=METHODS, default="simclr")
    parser.add_argument("--images", metavar="DIR", help="folder or tar of <class>/<image> files (default: glyphs)")
    parser.add_argument("--batch-size", type=int, help="images per step (default 32)")
    parser.add_argument("--steps", type=int, help="training steps (default 1600; 4 with COURSE_SMOKE=1)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--head", choices=HEADS, help="projection head (default mlp; linear: MoCo v1's)")
    args = parser.parse_args(argv)
    exp = ContrastiveExperiment.smoke() if smoke_mode() else ContrastiveExperiment()
    if args.images is not None:
        if not Path(args.images).exists():
            parser.error(f"--images {args.images}: no such folder or archive")
        exp = replace(exp, data=args.images)
    overrides = {"batch_size": args.batch_size, "steps": args.steps, "seed": args.seed, "head": args.head}
    try:
        exp = replace(exp, **{k: v for k, v in overrides.items() if v is not None}).validate()
        out = run(exp=exp, method=args.method, progress=sys.stderr.isatty())
    except ValueError as exc:                    # bad data or settings: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = out["metrics"]
    print(f"{args.method}: batch {exp.batch_size}, {exp.steps} steps, {m['negatives']} negatives per anchor, "
          f"{exp.head} head, data {exp.data}")
    print(f"kNN accuracy (k={exp.knn_k}) on held-out images: trained encoder {m['knn_acc']:.3f}, same encoder at "
          f"random init {m['knn_acc_random_init']:.3f}, raw pixels {m['knn_acc_pixels']:.3f}, chance {m['chance']:.3f}")
    print(format_metrics({"knn_acc": m["knn_acc"], "knn_acc_random_init": m["knn_acc_random_init"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
