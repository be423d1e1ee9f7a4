"""Space against time: an MLP NeRF is small and slow to train, a voxel grid is large and fast.

    python -m course_lib.experiments.space_time [--data FILE.npz] [--holdout K] [--seconds S]

The lecture's comparison: NeRF stores a scene in 5 MB of MLP weights and trains for about 12 hours, LLFF's
multiplane images take 15 GB and about 10 minutes (the memory figures are the NeRF paper's). The two presets
of :mod:`course_lib.nerf` make the same trade at laptop scale, and this experiment trains both for the same short
budget on the same views with the caller's stage functions:

* ``"plain"`` -- the original tiny NeRF: an 8 x 256 MLP on the encoded points (about 0.48 million floats),
  64 samples per ray, every sample through all eight layers;
* ``"fast"`` -- a dense voxel grid of density and RGB (no colour MLP), trilinear interpolation, trained
  coarse-to-fine with empty-space skipping: 40^3 x 4 values, then 64^3, 96^3 and 128^3 (8.4 million) as the
  steps pass.

It prints the held-out PSNR of each next to the number of floats it stores. The budget is CPU time of this
process on a CPU (with one torch thread, what one idle core would take; a shared machine slows both presets
alike instead of favouring one) and wall-clock time on a GPU.

References:
    Mildenhall et al., "NeRF", ECCV 2020 (5 MB of weights against the 15 GB of LLFF's voxel grids).
    Mildenhall et al., "Local Light Field Fusion", SIGGRAPH 2019.
    Sun, Sun, Chen, "Direct Voxel Grid Optimization", CVPR 2022; Fridovich-Keil, Yu et al., "Plenoxels", CVPR 2022.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..models import count_parameters
from ..utils import pick_device, smoke_mode
from . import format_metrics

__all__ = ["SpaceTimeExperiment", "stored_floats", "eval_views", "run", "main"]

PRESETS = ("plain", "fast")


@dataclass(frozen=True)
class SpaceTimeExperiment:
    """Default settings: 25 CPU seconds of training per preset plus the held-out renders (~1 minute in all)."""

    size: int = 64                  # views of nerf_scene(size=size) when no data is given
    seconds: float = 25.0           # training budget per preset
    n_eval: int = 2                 # held-out views rendered for the PSNR (the 8 x 256 MLP renders slowly)

    @staticmethod
    def smoke() -> "SpaceTimeExperiment":
        return SpaceTimeExperiment(size=16, seconds=1.5, n_eval=1)


def stored_floats(model: torch.nn.Module) -> int:
    """Number of learned values a trained model stores: the MLP's weights, or the grid's densities and colours."""
    return count_parameters(model)


def eval_views(data, holdout: int | None, n_eval: int) -> dict:
    """The training views and the first ``n_eval`` held-out views as a tiny-NeRF dict whose last ``n_eval`` views
    are held out (``holdout``: the last K views of ``data``; None: its own ``holdout`` mask)."""
    from ..nerf import load_views, split_views

    views, mask = load_views(data)
    train, held = split_views(views, holdout, mask)
    if len(held) == 0:
        raise ValueError("the data holds out no view: pass holdout (the last K views) or data with a holdout mask")
    held = held.subset(torch.arange(min(n_eval, len(held))))
    return {"images": torch.cat([train.images, held.images]), "poses": torch.cat([train.poses, held.poses]),
            "focal": views.focal, "near": views.near, "far": views.far, "n_eval": len(held)}


def run(
    get_rays: Callable | None = None,
    sample_stratified: Callable | None = None,
    positional_encoding: Callable | None = None,
    volume_render: Callable | None = None,
    exp: SpaceTimeExperiment | None = None,
    *,
    data=None,
    holdout: int | None = None,
    device: torch.device | None = None,
    progress: bool = False,
) -> dict:
    """Train the ``plain`` and the ``fast`` TinyNeRF presets for ``exp.seconds`` each on the same views.

    Args:
        get_rays, sample_stratified, positional_encoding, volume_render: the stage functions (the student's in
            the notebook; None: :func:`course_lib.manifest.resolve`'s choice).
        exp: settings (default :class:`SpaceTimeExperiment`, its ``smoke()`` with ``COURSE_SMOKE=1``).
        data: a tiny-NeRF ``.npz`` path or a ``NerfData`` (default: ``nerf_scene(size=exp.size)``).
        holdout: hold out the last K views of ``data`` (None: its own mask).
        progress: print one line per preset.

    Returns:
        ``metrics`` (``psnr_<preset>_db``, ``floats_<preset>``, ``steps_<preset>``, ``psnr_gain_db`` = fast minus
        plain, ``float_ratio`` = fast over plain), the trained ``models``, their ``histories``, the evaluation
        ``views`` (a dict whose last ``n_eval`` views were held out) and ``exp``.
    """
    from ..nerf import train_tinynerf

    exp = exp or (SpaceTimeExperiment.smoke() if smoke_mode() else SpaceTimeExperiment())
    if not (exp.seconds > 0 and math.isfinite(exp.seconds)) or exp.n_eval < 1:
        raise ValueError(f"exp.seconds must be > 0 and exp.n_eval >= 1, got {exp.seconds}, {exp.n_eval}")
    device = device or pick_device()
    if data is None:
        from ..data import nerf_scene

        data = nerf_scene(size=exp.size)
    views = eval_views(data, holdout, exp.n_eval)
    stages = {"get_rays": get_rays, "sample_stratified": sample_stratified,
              "positional_encoding": positional_encoding, "volume_render": volume_render}
    clock = "process" if device.type == "cpu" else "wall"
    metrics, models, histories = {}, {}, {}
    for name in PRESETS:
        model, hist = train_tinynerf({k: v for k, v in views.items() if k != "n_eval"}, name,
                                     minutes=exp.seconds / 60, holdout=views["n_eval"],
                                     eval_minutes=(exp.seconds / 60,), device=device, log=None, clock=clock,
                                     **stages)
        models[name], histories[name] = model, hist
        metrics[f"psnr_{name}_db"] = hist.evals[-1]["psnr"]
        metrics[f"floats_{name}"] = stored_floats(model)
        metrics[f"steps_{name}"] = hist.steps
        if progress:
            print(f"{name}: {hist.steps} steps in {hist.train_seconds:.0f} s, held-out PSNR "
                  f"{metrics[f'psnr_{name}_db']:.2f} dB, {metrics[f'floats_{name}']:,} floats", file=sys.stderr)
    metrics["psnr_gain_db"] = metrics["psnr_fast_db"] - metrics["psnr_plain_db"]
    metrics["float_ratio"] = metrics["floats_fast"] / metrics["floats_plain"]
    return {"metrics": metrics, "models": models, "histories": histories, "views": views, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.space_time",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="FILE.npz", help="tiny-NeRF .npz (images, poses, focal); default: the "
                        "synthetic scene")
    parser.add_argument("--holdout", type=int, default=10, help="with --data: hold out the last K views (default 10)")
    parser.add_argument("--seconds", type=float, help="training budget per preset (default 25; 1.5 with "
                        "COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = SpaceTimeExperiment.smoke() if smoke_mode() else SpaceTimeExperiment()
    if args.seconds is not None:
        if not (math.isfinite(args.seconds) and args.seconds > 0):
            parser.error(f"--seconds must be > 0, got {args.seconds}")
        exp = replace(exp, seconds=args.seconds)
    data, holdout = None, None
    if args.data is not None:
        data, holdout = args.data, args.holdout
        try:
            from ..nerf import load_views

            n = len(load_views(data)[0])
        except ValueError as exc:
            parser.error(f"--data: {exc}")
        if not 1 <= holdout < n:
            parser.error(f"--holdout must be in [1, {n - 1}] for {n} views, got {holdout}")
    m = run(exp=exp, data=data, holdout=holdout, progress=sys.stderr.isatty())["metrics"]
    for name in PRESETS:
        print(f"{name}: held-out PSNR {m[f'psnr_{name}_db']:.2f} dB after {m[f'steps_{name}']} steps, "
              f"{m[f'floats_{name}']:,} floats stored")
    print(format_metrics(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
