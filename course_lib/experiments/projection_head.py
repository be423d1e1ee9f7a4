"""Is more information kept in h than in z? Linear probes on both sides of a contrastive projection head.

    python -m course_lib.experiments.projection_head [--method simclr|moco] [--head mlp|linear] [--images DIR_OR_TAR]
                                                     [--steps S]

The lecture (after SimCLR, section 4.2): the contrastive loss makes ``z = g(h)`` invariant to the augmentations,
so the head ``g`` learns to throw away what they change, and the representation ``h`` one layer earlier keeps
more. This experiment trains an encoder and head with :mod:`.contrastive` (or takes one), then trains the same
linear probe as the a2 notebook (:func:`.rotation.linear_probe`: multinomial logistic regression on standardised
features, solved to convergence) on ``h`` and on ``z`` of the training images and tests it on the held-out ones,
for three labels:

* the **character** (what the augmentations leave unchanged: the label contrastive learning is meant for);
* the **hue** of the glyph (six 60-degree sectors of the mean colour of its pixels), which colour jitter and
  grayscale destroy;
* the **position** of the glyph (left / centre / right third of its horizontal shift), which random crops
  destroy.

With ``--images`` (a folder) the labels are the class, the dominant hue of the whole image and its brightness
(mean luma, three equally filled bins), which colour jitter also destroys.

It prints, last, ``<label>_h=... <label>_z=...`` for each label.

References:
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (section 4.2 and Table 3: h predicts the applied transformation far better than z).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from ..augment import rgb_to_gray
from ..train.data import ImageSplit, split_holdout
from ..train.knn import extract_features
from ..utils import pick_device, smoke_mode
from . import format_metrics
from .clip import dominant_hue
from .contrastive import HEADS, METHODS, ContrastiveExperiment, load_split
from .rotation import linear_probe

__all__ = ["probe_labels", "probe_h_and_z", "run", "main"]


def _terciles(values: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``[N]`` bin 0, 1 or 2 of each value by the terciles of ``reference`` (equally filled bins)."""
    edges = torch.quantile(reference.float(), torch.tensor([1 / 3, 2 / 3]))
    return torch.bucketize(values.float().contiguous(), edges)


def probe_labels(exp: ContrastiveExperiment, split: ImageSplit | None = None
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Labels of the training and held-out images of :func:`.contrastive.load_split` (same order).

    Glyphs: ``character``, ``hue`` (sector of the mean colour of the glyph's pixels, mask > 0.5) and ``position``
    (tercile of the horizontal shift). A folder: ``class``, ``hue`` (of the whole image) and ``brightness``.
    ``split``: ``load_split(exp)`` when already loaded.
    """
    split = split or load_split(exp)
    if exp.data != "glyphs":
        luma = lambda x: rgb_to_gray(x).mean((1, 2, 3))                                   # noqa: E731
        ref = luma(split.train_images)
        return ({"class": split.train_labels, "hue": dominant_hue(split.train_images),
                 "brightness": _terciles(ref, ref)},
                {"class": split.test_labels, "hue": dominant_hue(split.test_images),
                 "brightness": _terciles(luma(split.test_images), ref)})
    from ..data import glyphs

    ds = glyphs(n=exp.n_images, size=exp.image_size, seed=exp.seed)
    order = split_holdout(torch.arange(len(ds)), ds.labels, len(ds.classes), exp.holdout, exp.seed)
    train_idx, test_idx = order.train_images, order.test_images                        # the images' positions
    if not torch.equal(ds.images[test_idx], split.test_images):
        raise RuntimeError("the glyph attributes are not aligned with contrastive.load_split's images")
    mask = (ds.masks > 0.5).float()[:, None]                                              # [N, 1, H, W]
    colour = (ds.images * mask).sum((2, 3)) / mask.sum((2, 3)).clamp(min=1.0)             # [N, 3]
    hue = dominant_hue(colour[:, :, None, None])
    shift_x = ds.attributes["shift"][:, 0]
    position = _terciles(shift_x, shift_x[train_idx])
    return tuple({"character": ds.labels[i], "hue": hue[i], "position": position[i]} for i in (train_idx, test_idx))


def probe_h_and_z(model, exp: ContrastiveExperiment, device: torch.device | None = None,
                  iters: int = 100) -> dict[str, tuple[float, float]]:
    """``{label: (held-out accuracy of the probe on h, on z)}`` for the labels of :func:`probe_labels`."""
    device = device or torch.device("cpu")
    split = load_split(exp)
    train_y, test_y = probe_labels(exp, split)
    model = model.eval()
    feats = {}
    for layer, fn in (("h", model.features), ("z", model)):
        feats[layer] = (extract_features(fn, split.train_images, device), extract_features(fn, split.test_images,
                                                                                            device))
    out = {}
    for name in train_y:
        n_classes = int(max(train_y[name].max(), test_y[name].max())) + 1
        out[name] = tuple(linear_probe(feats[layer][0], train_y[name], feats[layer][1], test_y[name], n_classes,
                                       iters, device=device)[0] for layer in ("h", "z"))
    return out


def run(model=None, exp: ContrastiveExperiment | None = None, *, method: str = "simclr",
        device: torch.device | None = None, progress: bool = True) -> dict:
    """Probe ``model`` (an encoder + head trained by :mod:`.contrastive` on ``exp``'s data; trained here with the
    reference functions when None). Returns ``{"probes": {label: (acc_h, acc_z)}, "metrics", "model"}``; when the
    model is trained here, ``metrics`` also holds its ``knn_acc`` on h (see :func:`.contrastive.run`)."""
    from . import contrastive

    exp = (exp or (ContrastiveExperiment.smoke() if smoke_mode() else ContrastiveExperiment())).validate()
    device = device or pick_device()
    knn = {}
    if model is None:
        trained = contrastive.run(exp=exp, method=method, device=device, progress=progress)
        model, knn = trained["model"], {"knn_acc": trained["metrics"]["knn_acc"]}
    probes = probe_h_and_z(model, exp, device)
    metrics = {f"{name}_{layer}": acc for name, accs in probes.items() for layer, acc in zip("hz", accs)}
    metrics.update(knn)
    return {"probes": probes, "metrics": metrics, "model": model}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.projection_head",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=METHODS, default="simclr")
    parser.add_argument("--images", metavar="DIR", help="folder or tar of <class>/<image> files (default: glyphs)")
    parser.add_argument("--steps", type=int, help="training steps (default 1600; 4 with COURSE_SMOKE=1)")
    parser.add_argument("--head", choices=HEADS, default="mlp", help="projection head (linear: MoCo v1's)")
    args = parser.parse_args(argv)
    exp = ContrastiveExperiment.smoke() if smoke_mode() else ContrastiveExperiment()
    exp = replace(exp, head=args.head)
    if args.images is not None:
        if not Path(args.images).exists():
            parser.error(f"--images {args.images}: no such folder or archive")
        exp = replace(exp, data=args.images)
    try:
        if args.steps is not None:
            exp = replace(exp, steps=args.steps).validate()
        out = run(exp=exp, method=args.method, progress=sys.stderr.isatty())
    except ValueError as exc:                    # bad data or settings: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.method}, {exp.head} head, data {exp.data}: kNN accuracy on h {out['metrics']['knn_acc']:.3f}")
    for name, (acc_h, acc_z) in out["probes"].items():
        print(f"{name:10s} linear probe on h {acc_h:.3f}   on z {acc_z:.3f}")
    print(format_metrics(out["metrics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
