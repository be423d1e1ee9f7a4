"""Context prediction on glyphs (or any image folder): do relative patch positions teach transferable features?

    python -m course_lib.experiments.context_prediction [--images DIR_OR_TAR] [--n-per-class N] [--steps N]

Doersch et al. (2015) cut a 3 x 3 grid of patches, with gaps between them, out of an unlabelled image, show a
network the centre patch and one of its eight neighbours, and ask where the neighbour sat (eight classes). To
answer "the ear is above the eye" the network has to recognise parts of objects. The labels come from
``relative_patch_pairs``; no class label is used for training.

The network is the RotNet trunk of :mod:`.rotation` (four conv blocks, the same widths), applied to each
patch separately (a siamese pair with shared weights, *late fusion* as in Doersch et al.); the two block-4
feature vectors are concatenated and an MLP predicts the position. Every training image gives all eight
pairs (the eight classes are exactly balanced), and the grid is shifted by up to ``jitter`` pixels per batch so
that its position in the frame is not always the same.

The features are judged exactly like RotNet's in the notebook's section 3: the trunk, trained on patches, is
applied to whole images, and a linear probe is trained on the block-3 features (average-pooled to 4 x 4,
standardised) of a labelled split and tested on held-out images -- the same split, probe and block as
:mod:`.rotation`. The baselines are the same probe on a random-init trunk and on a RotNet trained by
:func:`.rotation.train_rotnet` on the same images (or one passed in).

Jigsaw puzzles (Noroozi & Favaro 2016: shuffle the nine cells, predict the permutation) and inpainting
(Pathak et al. 2016: predict the missing centre from its context) are the same idea with other labels.

It prints, last, ``probe_acc_context=... probe_acc_rotnet=... probe_acc_random=...``.

References:
    Doersch, Gupta, Efros, "Unsupervised Visual Representation Learning by Context Prediction", ICCV 2015.
    Noroozi, Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles", ECCV 2016.
    Pathak, Kraehenbuehl, Donahue, Darrell, Efros, "Context Encoders: Feature Learning by Inpainting", CVPR 2016.
    Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations", ICLR 2018.
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
from .rotation import RotationExperiment, RotNet, block_features, linear_probe, load_images, split_indices, train_rotnet

__all__ = ["ContextExperiment", "ContextNet", "jittered_pairs", "train_context", "probe", "run", "main"]


@dataclass(frozen=True)
class ContextExperiment:
    """Default settings: about a minute on one CPU core (without the RotNet baseline); ``smoke()`` seconds.

    The data, split, probe and RotNet settings are those of :class:`.rotation.RotationExperiment` (``rotation``).
    """

    rotation: RotationExperiment = RotationExperiment()
    patch: int = 8                  # cells of 8 x 8 pixels ...
    gap: int = 2                    # ... 2 pixels apart: a 28 x 28 grid in a 32 x 32 image
    jitter: int = 2                 # the grid moves by 0..jitter pixels (one shift per batch)
    steps: int = 600
    batch_size: int = 48            # images per step, x 8 pairs
    lr: float = 4e-3                # peak of the one-cycle schedule

    @staticmethod
    def smoke() -> "ContextExperiment":
        return ContextExperiment(rotation=RotationExperiment.smoke(), steps=10, batch_size=8)

    def validate(self) -> "ContextExperiment":
        self.rotation.validate()
        for name in ("patch", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gap < 0 or self.jitter < 0:
            raise ValueError(f"gap and jitter must be >= 0, got {self.gap} and {self.jitter}")
        if self.patch % 8:
            raise ValueError(f"patch must be a multiple of 8 (three 2x poolings in the trunk), got {self.patch}")
        if 3 * self.patch + 2 * self.gap + self.jitter > 32:
            raise ValueError(f"the grid (3 * patch + 2 * gap = {3 * self.patch + 2 * self.gap}) plus jitter "
                             f"{self.jitter} must fit in 32 x 32 images")
        return self


class ContextNet(RotNet):
    """The RotNet trunk applied to two patches, and an MLP over the eight relative positions.

    ::

        centre, neighbour [N, C, p, p] -> trunk (blocks 1..4, shared) -> global average -> [N, 4w] each
          -> concat [N, 8w] -> Linear(8w, 8w) - ReLU - Linear(8w, 8) -> [N, 8]

    ``block_output`` is the trunk's, so :func:`.rotation.block_features` probes it like a RotNet.
    """

    def __init__(self, in_channels: int = 3, width: int = 32):
        super().__init__(in_channels, width)
        self.head = nn.Sequential(nn.Linear(8 * width, 8 * width), nn.ReLU(), nn.Linear(8 * width, 8))

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        return self.block_output(patches, 4).mean((2, 3))                    # [N, 4w]

    def forward(self, center: torch.Tensor, neighbor: torch.Tensor) -> torch.Tensor:
        n = center.shape[0]
        h = self.embed(torch.cat([center, neighbor]))                        # one pass: [2N, 4w]
        return self.head(torch.cat([h[:n], h[n:]], 1))                       # [N, 8w] -> [N, 8]


def jittered_pairs(images: torch.Tensor, relative_patch_pairs: Callable, exp: ContextExperiment,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All eight pairs of every image ``[B, C, H, W]``, the grid shifted by one random offset in ``0..jitter``.

    Returns ``(center [8B, C, p, p], neighbor [8B, C, p, p], labels [8B])``, image-major (labels 0..7 per image).
    """
    b, _, h, w = images.shape
    dy, dx = (int(v) for v in torch.randint(0, exp.jitter + 1, (2,), generator=gen))
    window = images[:, :, dy : h - exp.jitter + dy, dx : w - exp.jitter + dx]   # [B, C, H - j, W - j]
    labels = torch.arange(8, device=images.device).repeat(b)                     # [8B]: 0..7 per image
    center, neighbor = relative_patch_pairs(window.repeat_interleave(8, 0), labels, exp.patch, exp.gap)
    return center, neighbor, labels


def train_context(images: torch.Tensor, relative_patch_pairs: Callable, exp: ContextExperiment,
                  device: torch.device, progress: bool = True) -> tuple[ContextNet, list[float]]:
    """Train a :class:`ContextNet` on ``images [N, C, H, W]`` (labels unused); returns the net (eval) and losses."""
    from tqdm.auto import tqdm

    torch.manual_seed(exp.rotation.seed)
    net = ContextNet(images.shape[1], exp.rotation.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=exp.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=exp.lr, total_steps=exp.steps)
    gen = torch.Generator().manual_seed(exp.rotation.seed)
    losses = []
    for step in tqdm(range(exp.steps), desc="context", leave=False, disable=not progress):
        idx = torch.randint(0, len(images), (exp.batch_size,), generator=gen)
        center, neighbor, y = jittered_pairs(images[idx].to(device), relative_patch_pairs, exp, gen)
        require_finite("patches returned by relative_patch_pairs", neighbor, f"at step {step}",
                       hint="relative_patch_pairs only copies pixels, it never computes new values")
        logits = net(center, neighbor)
        loss = F.cross_entropy(logits, y)
        backward_and_step(loss, opt, "context prediction loss", step, inputs={"logits": logits})
        sched.step()
        losses.append(loss.item())
    return net.eval(), losses


def probe(net: RotNet, images: torch.Tensor, labels: torch.Tensor, probe_idx: torch.Tensor, test_idx: torch.Tensor,
          n_classes: int, exp: RotationExperiment, device: torch.device, block: int | None = None) -> float:
    """Held-out accuracy of the linear probe on ``block`` (default ``exp.probe_block``) of a frozen net."""
    block = block or exp.probe_block
    f_train = block_features(net, images[probe_idx], block, device)
    f_test = block_features(net, images[test_idx], block, device)
    return linear_probe(f_train, labels[probe_idx], f_test, labels[test_idx], n_classes, exp.probe_iters,
                        device=device)[0]


def run(
    relative_patch_pairs: Callable | None = None,
    exp: ContextExperiment | None = None,
    *,
    rotnet: RotNet | None = None,
    rotation_result: dict | None = None,
    rotate_batch: Callable | None = None,
    images_dir: str | Path | None = None,
    n_per_class: int | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train the context-prediction net, then probe it, a random-init trunk and a RotNet on the same split.

    ``rotnet``: a RotNet already trained on the same images and split; when None one is trained here with
    ``rotate_batch`` (the reference from the command line). ``rotation_result``: instead, the dict that
    :func:`.rotation.run` returned for the same data and settings (the notebook's section 3): its RotNet and its
    block-``probe_block`` probe accuracies (RotNet and random init) are reused, not trained and measured again.

    Returns ``metrics`` (``context_acc``: the eight-way accuracy on held-out images; ``probe_acc_context``,
    ``probe_acc_rotnet``, ``probe_acc_random``; ``chance``), the nets, the losses and a few held-out images.
    """
    relative_patch_pairs = resolve("relative_patch_pairs", relative_patch_pairs)
    exp = (exp or (ContextExperiment.smoke() if smoke_mode() else ContextExperiment())).validate()
    device = device or pick_device()
    require_implemented("relative_patch_pairs", relative_patch_pairs, torch.zeros(1, 1, 3, 3),
                        torch.zeros(1, dtype=torch.long), 1, 0)
    known = {}
    if rotation_result is not None:
        rotnet = rotation_result["rotnet"]
        if exp.rotation.probe_block in rotation_result["per_block"]:
            known = dict(zip(("rotnet", "random"), rotation_result["per_block"][exp.rotation.probe_block]))
    if rotnet is None:
        rotate_batch = resolve("rotate_batch", rotate_batch)
        require_implemented("rotate_batch", rotate_batch, torch.zeros(1, 1, 2, 2))
    images, labels, classes = load_images(exp.rotation, images_dir, n_per_class)
    rot_exp, test_idx, train_idx, probe_idx = split_indices(exp.rotation, len(images))
    net, losses = train_context(images[train_idx], relative_patch_pairs, exp, device, progress)   # labels unused
    with torch.no_grad():
        center, neighbor, y = jittered_pairs(images[test_idx[:250]].to(device), relative_patch_pairs, exp,
                                             torch.Generator().manual_seed(1))
        context_acc = float((net(center, neighbor).argmax(1) == y).float().mean())
    if rotnet is None:
        rotnet, _ = train_rotnet(images[train_idx], rotate_batch, rot_exp, device, progress)
    torch.manual_seed(rot_exp.seed + 1)
    random_net = RotNet(images.shape[1], rot_exp.width).to(device).eval()
    accs = {name: known[name] if name in known else probe(m, images, labels, probe_idx, test_idx, len(classes),
                                                          rot_exp, device)
            for name, m in (("context", net), ("rotnet", rotnet), ("random", random_net))}
    metrics = {"context_acc": context_acc, "probe_acc_context": accs["context"], "probe_acc_rotnet": accs["rotnet"],
               "probe_acc_random": accs["random"], "chance": 1.0 / len(classes)}
    return {"metrics": metrics, "net": net, "rotnet": rotnet, "random_net": random_net, "losses": losses,
            "test_images": images[test_idx[:16]], "classes": classes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.context_prediction",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", metavar="DIR", help="<class>/<image> folder or .tar[.gz] of one (default: glyphs)")
    parser.add_argument("--n-per-class", type=int, help="with --images: read at most N images per class")
    parser.add_argument("--steps", type=int, help="training steps of both nets (default 600; 10 and 15 with "
                        "COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = ContextExperiment.smoke() if smoke_mode() else ContextExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps, rotation=replace(exp.rotation, steps=args.steps))
    if args.images is not None and not Path(args.images).exists():
        parser.error(f"--images {args.images}: no such folder or archive")
    if args.n_per_class is not None and args.n_per_class < 1:
        parser.error(f"--n-per-class must be >= 1, got {args.n_per_class}")
    try:
        out = run(exp=exp, images_dir=args.images, n_per_class=args.n_per_class, progress=sys.stderr.isatty())
    except ValueError as exc:                    # bad data or settings: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = out["metrics"]
    print(f"relative position accuracy on held-out images: {m['context_acc']:.3f} (chance 0.125)")
    print(f"block {exp.rotation.probe_block} probe accuracy: context prediction {m['probe_acc_context']:.3f}, "
          f"RotNet {m['probe_acc_rotnet']:.3f}, random init {m['probe_acc_random']:.3f} (chance {m['chance']:.3f})")
    print(format_metrics({k: m[k] for k in ("probe_acc_context", "probe_acc_rotnet", "probe_acc_random")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
