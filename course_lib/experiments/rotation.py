"""RotNet on glyphs (or any image folder): does predicting rotations teach features that transfer?

    python -m course_lib.experiments.rotation [--images DIR_OR_TAR] [--n-per-class N] [--steps N]

A small conv net (four blocks) is trained to tell by how many quarter turns an image was rotated, with the
labels made by ``rotate_batch`` -- no class labels are used. Its frozen features are then judged the standard
way for self-supervised learning: a linear classifier (*probe*) is trained on a labelled split and tested on
held-out images. The same probe on a randomly initialised copy of the network is the baseline; the
difference is what the pretext task taught.

Which layer to probe: Gidaris et al. found classifiers on frozen RotNet features most accurate on an
intermediate conv block (the second of three to five on CIFAR-10) and less accurate towards the last one, whose
features specialise in the pretext task itself (which way is up) rather than in what the object is. The
experiment probes every block and reports block 3 of 4.

It prints, last, ``probe_acc_rotnet=... probe_acc_random=...`` (held-out accuracy of the probe on block-3
features of the trained RotNet and of the random-init network).

References:
    Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations",
    ICLR 2018 (RotNet; classifiers on the frozen features of each conv block).
    Zhang, Isola, Efros, "Split-Brain Autoencoders: Unsupervised Learning by Cross-Channel Prediction",
    CVPR 2017 (linear classifiers on frozen features of each layer).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["RotationExperiment", "RotNet", "load_images", "split_indices", "train_rotnet", "block_features",
           "linear_probe", "run", "main"]


@dataclass(frozen=True)
class RotationExperiment:
    """Default settings take a few minutes on a 2-core CPU; ``smoke()`` seconds."""

    n_images: int = 12000           # glyphs generated (an image folder supplies its own)
    n_test: int = 2000              # held-out labelled images the probe is scored on
    n_probe_train: int = 2000       # labelled images the probe is trained on (a subset of the rest)
    width: int = 32                 # block widths: w, 2w, 4w, 4w
    steps: int = 600                # RotNet steps
    batch_size: int = 32            # images per step (x4 rotations)
    lr: float = 4e-3                # peak of the one-cycle schedule
    probe_block: int = 3            # the block whose probe accuracy is the headline number
    probe_blocks: tuple[int, ...] = (1, 2, 3, 4)
    probe_iters: int = 100            # L-BFGS iterations of the linear probe
    seed: int = 0

    @staticmethod
    def smoke() -> "RotationExperiment":
        return RotationExperiment(n_images=640, n_test=160, n_probe_train=160, width=8, steps=15,
                                  probe_blocks=(3,), probe_iters=5)

    def validate(self) -> "RotationExperiment":
        for name in ("n_images", "n_test", "n_probe_train", "width", "steps", "batch_size", "probe_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_test >= self.n_images:
            raise ValueError(f"n_test must be smaller than n_images, got {self.n_test} >= {self.n_images}")
        if not set(self.probe_blocks) | {self.probe_block} <= {1, 2, 3, 4}:
            raise ValueError(f"probe blocks must be in 1..4, got {self.probe_block} and {self.probe_blocks}")
        return self


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class RotNet(nn.Module):
    """Four conv blocks and a linear head over the four quarter turns.

    ::

        x [N, C, 32, 32] -> block1 [N,  w, 32, 32] -> maxpool -> block2 [N, 2w, 16, 16] -> maxpool
          -> block3 [N, 4w, 8, 8] -> maxpool -> block4 [N, 4w, 4, 4] -> global average -> linear -> [N, 4]

    Each block is conv3x3 - BatchNorm - ReLU; any square input size divisible by 8 works.
    """

    def __init__(self, in_channels: int = 3, width: int = 32):
        super().__init__()
        w = width
        self.blocks = nn.ModuleList([_block(in_channels, w), _block(w, 2 * w), _block(2 * w, 4 * w),
                                     _block(4 * w, 4 * w)])
        self.head = nn.Linear(4 * w, 4)

    def block_output(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """The output of block ``block`` (1..4), before its max-pool."""
        for k, layer in enumerate(self.blocks, 1):
            x = layer(x)
            if k == block:
                return x
            x = F.max_pool2d(x, 2) if k < 4 else x
        raise ValueError(f"block must be in 1..4, got {block}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block_output(x, 4).mean((2, 3)))        # [N, 4w, 4, 4] -> [N, 4w] -> [N, 4]


def load_images(exp: RotationExperiment, images_dir: str | Path | None = None, n_per_class: int | None = None):
    """``(images [N, C, 32, 32], labels [N], class names)`` from glyphs or a ``<class>/<image>`` folder / tar."""
    from .. import data

    if images_dir is None:
        ds = data.glyphs(n=exp.n_images, size=32, seed=exp.seed)
    else:
        ds = data.load_image_folder(images_dir, n_per_class=n_per_class, size=32)
    if len(ds) < 8 or len(ds.classes) < 2:
        raise ValueError(f"{images_dir or 'glyphs'}: {len(ds)} images in {len(ds.classes)} classes; the probe needs "
                         "at least 8 images and 2 classes")
    return ds.images, ds.labels, list(ds.classes)


def split_indices(exp: RotationExperiment, n_images: int) -> tuple[RotationExperiment, torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]:
    """A seeded split of ``n_images`` images: ``(exp, test [n_test], train [n_images - n_test], probe [n_probe])``.

    ``test`` holds the images the probe is scored on, ``train`` the rest (RotNet trains on all of them, without
    labels), ``probe`` the first ``n_probe_train`` of ``train`` (the probe's labelled set). Data with fewer
    images than the settings ask for (a small image folder) gets smaller splits: ``n_test <= n_images // 4`` and
    ``n_probe_train <= n_images - n_test``; the returned ``exp`` holds the sizes used.

    Raises:
        ValueError: for fewer than 8 images.
    """
    if n_images < 8:
        raise ValueError(f"the probe needs at least 8 images, got {n_images}")
    n_test = min(exp.n_test, n_images // 4)
    exp = replace(exp, n_test=n_test, n_probe_train=min(exp.n_probe_train, n_images - n_test))
    perm = torch.randperm(n_images, generator=torch.Generator().manual_seed(exp.seed))
    test_idx, train_idx = perm[: exp.n_test], perm[exp.n_test :]
    return exp, test_idx, train_idx, train_idx[: exp.n_probe_train]


def train_rotnet(images: torch.Tensor, rotate_batch: Callable, exp: RotationExperiment, device: torch.device,
                 progress: bool = True) -> tuple[RotNet, list[float]]:
    """Train a RotNet on ``images [N, C, H, W]`` (labels unused); returns the net (eval mode) and the losses."""
    from tqdm.auto import tqdm

    torch.manual_seed(exp.seed)
    net = RotNet(images.shape[1], exp.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=exp.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=exp.lr, total_steps=exp.steps)
    gen = torch.Generator().manual_seed(exp.seed)
    losses = []
    for step in tqdm(range(exp.steps), desc="RotNet", leave=False, disable=not progress):
        idx = torch.randint(0, len(images), (exp.batch_size,), generator=gen)
        x, y = rotate_batch(images[idx].to(device))                  # [4B, C, H, W], [4B]
        require_finite("images returned by rotate_batch", x, f"at step {step}", inputs={"images": images[idx]},
                       hint="rotate_batch only moves pixels, it never computes new values")
        logits = net(x)
        loss = F.cross_entropy(logits, y.to(device))
        backward_and_step(loss, opt, "rotation loss of the RotNet", step, inputs={"logits": logits})
        sched.step()
        losses.append(loss.item())
    return net.eval(), losses


@torch.no_grad()
def block_features(net: RotNet, images: torch.Tensor, block: int, device: torch.device, pool: int = 4) -> torch.Tensor:
    """Frozen features of ``block``, average-pooled to ``pool x pool`` and flattened: ``[N, C_block * pool^2]``."""
    net.eval()
    out = []
    for chunk in images.split(500):
        h = net.block_output(chunk.to(device), block)                  # [n, C, H', W']
        out.append(F.adaptive_avg_pool2d(h, pool).flatten(1).float().cpu())   # [n, C * pool * pool]
    return torch.cat(out)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 n_classes: int, iters: int = 100, weight_decay: float = 1e-3,
                 device: torch.device | None = None) -> tuple[float, float]:
    """Multinomial logistic regression on standardised features; returns ``(test_acc, train_acc)``.

    Math::

        x' = (x - mean_train) / std_train
        minimise  mean_n CE(W x'_n + b, y_n) + weight_decay * ||W||^2      (full batch, L-BFGS)

    Standardising puts every network's features on the same scale; the problem is convex, so the result
    depends only on the features (not on a learning rate or the initialisation) once L-BFGS has converged.
    """
    device = device or torch.device("cpu")
    require_finite("probe training features", train_x, hint="the network's parameters are not finite")
    require_finite("probe test features", test_x, hint="the network's parameters are not finite")
    mean, std = train_x.mean(0), train_x.std(0) + 1e-5
    tr, te = ((train_x - mean) / std).to(device), ((test_x - mean) / std).to(device)
    ytr, yte = train_y.to(device), test_y.to(device)
    weight = torch.zeros(tr.shape[1], n_classes, device=device, requires_grad=True)
    bias = torch.zeros(n_classes, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(tr @ weight + bias, ytr) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        acc = lambda x, y: float(((x @ weight + bias).argmax(1) == y).float().mean())   # noqa: E731
        return acc(te, yte), acc(tr, ytr)


def run(
    rotate_batch: Callable | None = None,
    exp: RotationExperiment | None = None,
    *,
    images_dir: str | Path | None = None,
    n_per_class: int | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Pretrain a RotNet with ``rotate_batch``, then probe its frozen blocks and those of a random-init twin.

    Returns a dict with ``metrics`` (``probe_acc_rotnet``, ``probe_acc_random`` at ``exp.probe_block``,
    ``rotation_acc`` on held-out images, ``gap``), ``per_block`` (``{block: (acc_rotnet, acc_random)}``),
    the two networks, the loss history and the held-out images.
    """
    rotate_batch = resolve("rotate_batch", rotate_batch)
    exp = (exp or (RotationExperiment.smoke() if smoke_mode() else RotationExperiment())).validate()
    device = device or pick_device()
    require_implemented("rotate_batch", rotate_batch, torch.zeros(1, 1, 2, 2))
    images, labels, classes = load_images(exp, images_dir, n_per_class)
    exp, test_idx, train_idx, probe_idx = split_indices(exp, len(images))
    rotnet, losses = train_rotnet(images[train_idx], rotate_batch, exp, device, progress)   # labels unused
    with torch.no_grad():
        x, y = rotate_batch(images[test_idx[:500]].to(device))
        rotation_acc = float((rotnet(x).argmax(1) == y.to(device)).float().mean())
    torch.manual_seed(exp.seed + 1)
    random_net = RotNet(images.shape[1], exp.width).to(device).eval()
    per_block = {}
    for block in sorted(set(exp.probe_blocks) | {exp.probe_block}):
        accs = []
        for net in (rotnet, random_net):
            f_train = block_features(net, images[probe_idx], block, device)
            f_test = block_features(net, images[test_idx], block, device)
            accs.append(linear_probe(f_train, labels[probe_idx], f_test, labels[test_idx], len(classes),
                                     exp.probe_iters, device=device)[0])
        per_block[block] = tuple(accs)
    acc_rot, acc_rand = per_block[exp.probe_block]
    metrics = {"rotation_acc": rotation_acc, "probe_acc_rotnet": acc_rot, "probe_acc_random": acc_rand,
               "gap": acc_rot - acc_rand, "chance": 1.0 / len(classes)}
    return {"metrics": metrics, "per_block": per_block, "rotnet": rotnet, "random_net": random_net,
            "losses": losses, "test_images": images[test_idx], "classes": classes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.rotation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", metavar="DIR", help="<class>/<image> folder or .tar[.gz] of one (default: glyphs)")
    parser.add_argument("--n-per-class", type=int, help="with --images: read at most N images per class")
    parser.add_argument("--steps", type=int, help="RotNet training steps (default 600; 15 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = RotationExperiment.smoke() if smoke_mode() else RotationExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    if args.images is not None and not Path(args.images).exists():
        parser.error(f"--images {args.images}: no such folder or archive")
    if args.n_per_class is not None and args.n_per_class < 1:
        parser.error(f"--n-per-class must be >= 1, got {args.n_per_class}")
    out = run(exp=exp, images_dir=args.images, n_per_class=args.n_per_class, progress=sys.stderr.isatty())
    m = out["metrics"]
    print(f"rotation accuracy on held-out images: {m['rotation_acc']:.3f} (chance 0.25)")
    for block, (a, b) in out["per_block"].items():
        print(f"block {block}: probe accuracy RotNet {a:.3f}, random init {b:.3f} (chance {m['chance']:.3f})")
    print(format_metrics({"probe_acc_rotnet": m["probe_acc_rotnet"], "probe_acc_random": m["probe_acc_random"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
