"""Tracking emerges from colourisation: propagate the first frame's object masks with features learned by
copying colours, and score them with the DAVIS region similarity J.

    python -m course_lib.experiments.propagation [--davis DIR --sequence SEQ [--finetune-steps N]] [--steps N]

1. Train the colourisation model of :mod:`course_lib.experiments.colorization` on sprite videos
   (:func:`course_lib.data.sprite_videos`): grey frames in, colours copied from another frame of the clip.
2. Propagate labels on held-out clips (a different generator seed) or on one DAVIS sequence: the first
   frame's mask is given as one-hot "colours" ``[n_objects + 1, h, w]``; every later frame t copies them with
   ``attention_color_propagation`` from two references placed side by side (the same trick that lets one call
   attend over several frames): frame 0 with its true mask and frame t - 1 with its predicted soft mask::

       ref_feats  = [f(frame_0) | f(frame_t-1)]     [1, D, h, 2w]
       ref_colors = [mask_0     | p_(t-1)]          [1, K+1, h, 2w]
       p_t        = attention_color_propagation(ref_feats, f(frame_t), ref_colors, T)
       mask_t     = argmax over labels of p_t upsampled (bilinear) to the frame size

3. Score J (mean IoU with the true masks, per object over frames 1..T-1, then the mean over objects and
   clips; an object absent from both masks of a frame scores 1) for three ways of choosing features:
   ``j_mean`` the learned features; ``j_pixels`` the raw grey pixels (L, the very input the net sees, average
   pooled to the feature grid); ``j_pixels_lab`` the raw colour pixels (Lab) -- information the colouriser is
   never shown; and ``j_copy`` the first mask copied unchanged. Raw pixels are compared by distance, written
   as a dot product: with ``ref = [x, -|x|^2 / 2]`` and ``tgt = [y, 1]``, ``<ref, tgt> = -|x - y|^2 / 2 + |y|^2 / 2``,
   and the last term, constant over the reference positions, cancels in the softmax over them.

It prints, last, ``j_mean=... j_pixels=... j_pixels_lab=... j_copy=...``.

References:
    Vondrick et al., "Tracking Emerges by Colorizing Videos", ECCV 2018 (label propagation, section 3.3).
    Perazzi et al., "A Benchmark Dataset and Evaluation Methodology for Video Object Segmentation",
    CVPR 2016 (DAVIS, region similarity J = IoU, first frame given).
"""
from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..color import rgb_to_lab
from ..guards import require_finite
from ..manifest import resolve
from ..utils import pick_device, progress_bar, smoke_mode
from . import format_metrics, require_implemented
from .colorization import ColorizationConfig, FeatureNet, grey_input, pooled_onehot, train_colorizer

__all__ = ["PropagationExperiment", "j_score", "propagate_masks", "pixel_features", "learned_features",
           "evaluate", "paint_masks", "overlay", "run", "main"]

PALETTE = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.2, 0.2], [0.2, 0.9, 0.2], [0.25, 0.45, 1.0], [1.0, 0.85, 0.1],
                        [1.0, 0.3, 1.0], [0.1, 0.9, 0.9], [1.0, 0.6, 0.2], [0.7, 0.5, 1.0]])


@dataclass(frozen=True)
class PropagationExperiment:
    """Default settings take a few minutes on a 2-core CPU; ``smoke()`` seconds."""

    n_train_videos: int = 256
    n_test_videos: int = 32
    n_frames: int = 16
    size: int = 64
    n_objects: int = 3
    colorizer: ColorizationConfig = field(default_factory=ColorizationConfig)
    eval_temperature: float = 0.02        # label propagation with the learned (unit-length) features
    pixel_temperature: float = 0.001      # raw pixels: softmax of -|x - y|^2 / (2 T), x in Lab / 100
    train_seed: int = 0
    test_seed: int = 1                    # held-out clips: another seed of the same generator
    davis_size: int = 96                  # DAVIS frames are resized to this height
    davis_max_frames: int | None = None
    finetune_steps: int = 0               # self-supervised fine-tuning on the DAVIS sequence's own frames
    finetune_batch_size: int = 4          # frame pairs per fine-tuning step (DAVIS frames are large)

    @staticmethod
    def smoke() -> "PropagationExperiment":
        return PropagationExperiment(n_train_videos=8, n_test_videos=2, n_frames=6, davis_size=48, davis_max_frames=6,
                                     colorizer=ColorizationConfig(width=8, feat_dim=8, steps=5, batch_size=4))


def j_score(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """DAVIS region similarity J of ``pred [T, H, W]`` against ``gt [T, H, W]`` (int object ids, 0 = background).

    For each object k > 0 present in ``gt[0]``: the mean over frames t = 1..T-1 of
    ``|pred_t = k  and  gt_t = k| / |pred_t = k  or  gt_t = k|`` (1 when the union is empty); then the mean over
    the objects. The first frame is the given one and is left out.
    """
    if pred.shape != gt.shape or pred.dim() != 3:
        raise ValueError(f"pred and gt must both be [T, H, W], got {list(pred.shape)} and {list(gt.shape)}")
    if gt.shape[0] < 2:
        raise ValueError(f"J needs at least two frames, got gt of shape {list(gt.shape)}")
    objects = [k for k in gt[0].unique().tolist() if k > 0]
    if not objects:
        raise ValueError("the first frame of gt has no object (all ids are 0)")
    per_object = []
    for k in objects:
        p, g = pred[1:] == k, gt[1:] == k                                   # [T-1, H, W]
        inter = (p & g).flatten(1).sum(1).double()
        union = (p | g).flatten(1).sum(1).double()
        per_object.append(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean())
    return float(torch.stack(per_object).mean())


@torch.no_grad()
def propagate_masks(feats: torch.Tensor, first_mask: torch.Tensor, attention_color_propagation: Callable,
                    temperature: float, ref_feats: torch.Tensor | None = None, n_labels: int | None = None
                    ) -> torch.Tensor:
    """Propagate ``first_mask [H, W]`` through a clip with features ``feats [T, D, h, w]``; returns ``[T, H, W]``.

    Frame t copies labels from frame 0 (true mask) and frame t - 1 (its predicted soft mask) through one call of
    ``attention_color_propagation`` on the two references side by side (see the module docstring).
    ``ref_feats [T, D, h, w]`` (default: ``feats``) are the features the references use, for baselines whose
    reference and target features differ. ``H`` and ``W`` must be ``h`` and ``w`` times the same stride.
    """
    t_len, _, h, w = feats.shape
    big_h, big_w = first_mask.shape
    if big_h % h or big_w % w or big_h // h != big_w // w:
        raise ValueError(f"first_mask {list(first_mask.shape)} must be a whole multiple of the feature grid {[h, w]}")
    ref_feats = feats if ref_feats is None else ref_feats
    n_labels = n_labels or int(first_mask.max()) + 1
    mask0 = pooled_onehot(first_mask[None].to(feats.device), n_labels, big_h // h)          # [1, K+1, h, w]
    prev, out = mask0, [first_mask.cpu()]
    for t in range(1, t_len):
        refs = torch.cat([ref_feats[:1], ref_feats[t - 1 : t]], dim=-1)                     # [1, D, h, 2w]
        colors = torch.cat([mask0, prev], dim=-1)                                           # [1, K+1, h, 2w]
        prev = attention_color_propagation(refs, feats[t : t + 1], colors, temperature)      # [1, K+1, h, w]
        require_finite("labels copied by attention_color_propagation", prev, f"at frame {t}",
                       inputs={"reference features": refs, "target features": feats[t : t + 1]})
        up = F.interpolate(prev, size=(big_h, big_w), mode="bilinear", align_corners=False)  # [1, K+1, H, W]
        out.append(up[0].argmax(0).cpu())
    return torch.stack(out)


def pixel_features(frames: torch.Tensor, stride: int, colour: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-pixel features of ``frames [T, 3, H, W]``: ``(ref [T, C+1, h, w], tgt [T, C+1, h, w])`` with
    x = Lab / 100 (C = 3) or L / 100 (C = 1) average pooled by ``stride``; ``ref = [x, -|x|^2/2]``, ``tgt = [x, 1]``
    so that attention ranks reference positions by -|x_ref - x_tgt|^2 / 2."""
    lab = rgb_to_lab(frames) / 100.0
    x = lab if colour else lab[:, :1]
    x = F.avg_pool2d(x, stride) if stride > 1 else x                                         # [T, C, h, w]
    sq = x.pow(2).sum(1, keepdim=True)
    return torch.cat([x, -0.5 * sq], 1), torch.cat([x, torch.ones_like(sq)], 1)


@torch.no_grad()
def learned_features(net: FeatureNet, frames: torch.Tensor) -> torch.Tensor:
    """``frames [T, 3, H, W]`` -> the feature net's ``[T, D, H/s, W/s]`` (on the net's device)."""
    device = next(net.parameters()).device
    return torch.cat([net(grey_input(c.to(device))) for c in frames.split(32)])


def evaluate(frames: torch.Tensor, masks: torch.Tensor, net: FeatureNet, attention_color_propagation: Callable,
             exp: PropagationExperiment, keep: int = 1, progress: bool = False) -> dict:
    """J of every method on clips ``frames [V, T, 3, H, W]`` with ``masks [V, T, H, W]``.

    Returns ``{"metrics": {j_mean, j_pixels, j_pixels_lab, j_copy}, "predictions": {method: [T, H, W] for the
    first ``keep`` clips}}``.
    """
    device = next(net.parameters()).device
    stride = net.stride
    scores = {"j_mean": [], "j_pixels": [], "j_pixels_lab": [], "j_copy": []}
    kept = {k: [] for k in scores}
    for v in progress_bar(range(frames.shape[0]), desc="propagate", enabled=progress):
        clip, gt = frames[v], masks[v]
        n_labels = int(gt.max()) + 1
        preds = {"j_mean": propagate_masks(learned_features(net, clip), gt[0], attention_color_propagation,
                                           exp.eval_temperature, n_labels=n_labels)}
        for name, colour in (("j_pixels", False), ("j_pixels_lab", True)):
            ref, tgt = pixel_features(clip.to(device), stride, colour)
            preds[name] = propagate_masks(tgt, gt[0], attention_color_propagation, exp.pixel_temperature,
                                          ref_feats=ref, n_labels=n_labels)
        preds["j_copy"] = gt[:1].expand_as(gt).clone()
        for name, pred in preds.items():
            scores[name].append(j_score(pred, gt))
            if v < keep:
                kept[name].append(pred)
    return {"metrics": {k: sum(s) / len(s) for k, s in scores.items()}, "predictions": kept}


def paint_masks(masks: torch.Tensor) -> torch.Tensor:
    """Object ids ``[T, H, W]`` -> an RGB picture ``[T, 3, H, W]`` with one flat colour per id (0 = black)."""
    return PALETTE[masks.clamp(min=0, max=len(PALETTE) - 1)].permute(0, 3, 1, 2)          # [T, H, W, 3] -> [T, 3, H, W]


def overlay(frames: torch.Tensor, masks: torch.Tensor, alpha: float = 0.55) -> torch.Tensor:
    """Frames ``[T, 3, H, W]`` with object ids ``[T, H, W]`` painted over them (ids > 0 only): ``[T, 3, H, W]``."""
    paint = (masks > 0)[:, None].float() * alpha                                             # [T, 1, H, W]
    return frames * (1 - paint) + paint_masks(masks) * paint


def _load_davis(root, sequence: str, exp: PropagationExperiment, stride: int):
    from .. import data

    ds = data.load_davis(root, sequence, size=exp.davis_size, max_frames=exp.davis_max_frames)
    w = ds.frames.shape[-1] - ds.frames.shape[-1] % stride                  # crop the width to a multiple of stride
    h = ds.frames.shape[-2] - ds.frames.shape[-2] % stride
    frames, masks = ds.frames[..., :h, :w], ds.masks[..., :h, :w]
    if frames.shape[1] < 2 or not (masks[0, 0] > 0).any():
        raise ValueError(f"{sequence}: need at least 2 frames and an object in the first mask")
    return frames, masks


def run(
    attention_color_propagation: Callable | None = None,
    exp: PropagationExperiment | None = None,
    *,
    davis_dir: str | Path | None = None,
    sequence: str | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    keep: int = 1,
) -> dict:
    """Train the colouriser on sprite clips, then propagate masks on held-out clips or a DAVIS sequence.

    Returns ``metrics`` (``j_mean``, ``j_pixels``, ``j_pixels_lab``, ``j_copy``), the trained ``net`` and
    ``quantizer``, the training ``losses``, the evaluated ``frames`` / ``masks`` and the ``predictions`` of each
    method for the first ``keep`` clips.
    """
    attention_color_propagation = resolve("attention_color_propagation", attention_color_propagation)
    exp = exp or (PropagationExperiment.smoke() if smoke_mode() else PropagationExperiment())
    device = device or pick_device()
    one = torch.zeros(1, 1, 1, 1)
    require_implemented("attention_color_propagation", attention_color_propagation, one, one, one, 1.0)
    if (davis_dir is None) != (sequence is None):
        raise ValueError("davis_dir and sequence must be given together")
    from .. import data

    train = data.sprite_videos(exp.n_train_videos, exp.n_frames, exp.size, exp.n_objects, seed=exp.train_seed)
    net, quantizer, losses = train_colorizer(train.frames, attention_color_propagation, exp.colorizer, device,
                                             progress)
    if davis_dir is None:
        test = data.sprite_videos(exp.n_test_videos, exp.n_frames, exp.size, exp.n_objects, seed=exp.test_seed)
        frames, masks = test.frames, test.masks
    else:
        frames, masks = _load_davis(davis_dir, sequence, exp, net.stride)
        if exp.finetune_steps > 0:                                           # self-supervised: colours only
            cfg = replace(exp.colorizer, steps=exp.finetune_steps, lr=exp.colorizer.lr / 4,
                          batch_size=exp.finetune_batch_size)
            net, _, _ = train_colorizer(frames, attention_color_propagation, cfg, device, progress,
                                        net=copy.deepcopy(net), desc="fine-tune")
    out = evaluate(frames, masks, net, attention_color_propagation, exp, keep=keep, progress=progress)
    return {"metrics": out["metrics"], "predictions": out["predictions"], "net": net, "quantizer": quantizer,
            "losses": losses, "frames": frames[:keep], "masks": masks[:keep]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.propagation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", metavar="DIR", help="DAVIS folder (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("--sequence", help="DAVIS sequence name (with --davis)")
    parser.add_argument("--size", type=int, help="DAVIS frame height after resizing (default 96)")
    parser.add_argument("--max-frames", type=int, help="use at most N frames of the DAVIS sequence")
    parser.add_argument("--finetune-steps", type=int, default=0,
                        help="fine-tune the colouriser on the sequence's own frames (no labels) first")
    parser.add_argument("--steps", type=int, help="colourisation training steps on sprites (default 400)")
    parser.add_argument("--gif", metavar="PATH", help="write the first clip with true | propagated masks as a GIF")
    args = parser.parse_args(argv)
    if (args.davis is None) != (args.sequence is None):
        parser.error("--davis and --sequence go together")
    if args.davis is not None and not Path(args.davis).is_dir():
        parser.error(f"--davis {args.davis}: not a directory")
    for name in ("size", "max_frames", "steps"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "max_frames" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= {2 if name == 'max_frames' else 1}, got {value}")
    if args.finetune_steps < 0:
        parser.error(f"--finetune-steps must be >= 0, got {args.finetune_steps}")
    exp = PropagationExperiment.smoke() if smoke_mode() else PropagationExperiment()
    exp = replace(exp, finetune_steps=args.finetune_steps,
                  davis_size=args.size or exp.davis_size, davis_max_frames=args.max_frames or exp.davis_max_frames)
    if args.steps is not None:
        exp = replace(exp, colorizer=replace(exp.colorizer, steps=args.steps))
    out = run(exp=exp, davis_dir=args.davis, sequence=args.sequence, progress=sys.stderr.isatty())
    m = out["metrics"]
    where = f"DAVIS {args.sequence}" if args.davis else f"{exp.n_test_videos} held-out sprite clips"
    print(f"J on {where}: learned {m['j_mean']:.3f}, grey pixels {m['j_pixels']:.3f}, "
          f"Lab pixels {m['j_pixels_lab']:.3f}, copy first mask {m['j_copy']:.3f}")
    if args.gif:
        from ..viz import save_gif

        clip, truth = out["frames"][0], out["masks"][0]
        movie = torch.cat([overlay(clip, truth), overlay(clip, out["predictions"]["j_mean"][0])], dim=-1)
        print(f"true | propagated masks written to {save_gif(list(movie), args.gif, fps=6)}")
    print(format_metrics({k: m[k] for k in ("j_mean", "j_pixels", "j_pixels_lab", "j_copy")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
