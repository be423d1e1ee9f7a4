"""Few views do not constrain a scene: TinyNeRF fitted to 3 views against the same network fitted to all views.

    python -m course_lib.experiments.priors_fewviews [--data FILE.npz | DIR] [--views K] [--holdout K] [--steps N]

One radiance field is fitted to one scene by minimising the photometric error of its training views, and nothing
else. With a hundred views spread over the hemisphere that error pins the geometry down; with three, many scenes
render the same three images -- colour painted on a flat card near each camera, floaters that only one camera
sees (the shape-radiance ambiguity of Zhang et al. 2020) -- and gradient descent finds one of them. The training
images then come out as well as with all the views, but a held-out camera sees the wrong scene and the depth is
wrong. That is the gap a *prior* has to fill (the rest of assignment a5).

The experiment trains the TinyNeRF of :mod:`course_lib.experiments.nerf` (the five a4 stage functions passed in)
twice with the same network, steps and rays per step: on ``n_few`` training views picked far apart (farthest
point sampling of the camera centres, from view 0) and on every training view. It reports, for both,

* the training PSNR, measured on the ``n_few`` views that both models were trained on;
* the held-out PSNR, on the scene's held-out views;
* the depth error on the held-out views: the mean absolute difference between the rendered depth
  ``sum_k w_k t_k`` and the true depth of the first surface, found by ``sphere_trace`` on the analytic SDF of the
  synthetic scene (:class:`course_lib.data.AnalyticScene`), over the pixels whose ray hits a surface; not
  available for real data (``--data``), which has no true depth.

The command line prints, last, ``train_psnr_few_db=... train_psnr_all_db=... heldout_psnr_few_db=...
heldout_psnr_all_db=...`` (and the two depth errors on the synthetic scene).

References:
    Mildenhall et al., "NeRF", ECCV 2020. Zhang, Riegler, Snavely, Koltun, "NeRF++: Analyzing and Improving
    Neural Radiance Fields", 2020 (the shape-radiance ambiguity). Yu et al., "pixelNeRF", CVPR 2021, and
    Niemeyer et al., "RegNeRF", CVPR 2022 (NeRF from three views fails without a prior or a regulariser).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from ..guards import require_finite
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented
from .nerf import NerfExperiment, Stages, make_field, psnr, render_view, train_field, training_rays

__all__ = ["FewViewsExperiment", "pick_views", "true_depth", "render_metrics", "run", "load_data", "main"]


@dataclass(frozen=True)
class FewViewsExperiment:
    """Default settings: two TinyNeRF trainings of about 45 s each on one CPU core; ``smoke()`` seconds."""

    nerf: NerfExperiment = field(default_factory=lambda: NerfExperiment(steps=800))
    n_few: int = 3                  # training views of the few-view model
    scene_seed: int = 0             # nerf_scene(seed=...) and its AnalyticScene (the true depth)

    @staticmethod
    def smoke() -> "FewViewsExperiment":
        return FewViewsExperiment(nerf=NerfExperiment.smoke())


def pick_views(poses: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` view indices far apart: farthest point sampling of the camera centres ``poses[:, :3, 3]`` from view 0.

    Raises:
        ValueError: when ``k`` is not in ``[1, len(poses)]``.
    """
    n = poses.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"k (views) must be an int in [1, {n}], got {k!r}")
    centres = poses[:, :3, 3].double()                                        # [N, 3]
    chosen = [0]
    dist = (centres - centres[0]).norm(dim=-1)                                # [N] distance to the chosen set
    for _ in range(k - 1):
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = torch.minimum(dist, (centres - centres[nxt]).norm(dim=-1))
    return torch.tensor(chosen)


def true_depth(sdf: Callable, poses: torch.Tensor, height: int, width: int, focal: float, near: float, far: float,
               get_rays: Callable, sphere_trace: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth of the first surface of ``sdf`` seen by every pixel: ``(depth [N, H, W], hit [N, H, W] bool)``.

    Math::

        t* = sphere_trace(sdf, o, d / ||d||)          metric distance to the surface along the unit direction
        depth = t* / ||d||                            in the units of get_rays' t (depth in front of the camera)
    """
    depths, hits = [], []
    for pose in poses:
        o, d = get_rays(height, width, focal, pose.float())                   # [H, W, 3] each
        o, d = o.reshape(-1, 3), d.reshape(-1, 3)                             # [H W, 3]
        length = d.norm(dim=-1)                                               # [H W]
        t, hit = sphere_trace(sdf, o, d / length[:, None], near * length.min().item(), far * length.max().item(),
                              256, 1e-4)
        depths.append((t / length).reshape(height, width))
        hits.append(hit.reshape(height, width))
    return torch.stack(depths), torch.stack(hits)


def render_metrics(model, views, exp: NerfExperiment, stages: Stages, depth=None, hit=None) -> dict:
    """Render ``views`` (a NerfData) with ``model``: ``psnr_db``, ``rgb [N, H, W, 3]``, ``depth [N, H, W]`` and,
    when the true ``depth`` / ``hit`` are given, ``depth_err`` (mean |rendered - true| over the hit pixels)."""
    out = [render_view(model, pose, views.height, views.width, views.focal, views.near, views.far, exp.n_samples,
                       stages, chunk=exp.eval_chunk) for pose in views.poses]
    rgb = torch.stack([o["rgb"] for o in out])                                 # [N, H, W, 3]
    rendered_depth = torch.stack([o["depth"] for o in out])                    # [N, H, W]
    mse = float(((rgb - views.images.cpu()) ** 2).mean())
    require_finite("rendered images", rgb, hint="the field or a rendering stage returns NaN")
    result = {"psnr_db": psnr(mse), "rgb": rgb, "depth": rendered_depth}
    if depth is not None:
        result["depth_err"] = float((rendered_depth - depth).abs()[hit].mean()) if bool(hit.any()) else math.nan
    return result


def run(
    get_rays: Callable | None = None,
    sample_stratified: Callable | None = None,
    positional_encoding: Callable | None = None,
    volume_render: Callable | None = None,
    sample_pdf: Callable | None = None,
    sphere_trace: Callable | None = None,
    exp: FewViewsExperiment | None = None,
    *,
    data=None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Fit TinyNeRF to ``exp.n_few`` views and to all training views; compare on the training and held-out views.

    Args:
        get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf: the a4 stages (None: the
            reference, where this edition has it).
        sphere_trace: finds the true depth on the synthetic scene (unused with ``data``).
        data: a NerfData with a ``holdout`` split (real views: no depth error); default the synthetic scene.

    Returns:
        ``metrics`` (``train_psnr_{few,all}_db``, ``heldout_psnr_{few,all}_db``, ``depth_err_{few,all}`` --
        nan without a true depth), ``few`` (the view indices), per model ``train`` / ``heldout`` renders
        (:func:`render_metrics`), ``true_depth`` / ``true_hit`` of the held-out views, ``fields``, ``history``,
        ``data``, ``stages`` and ``exp``.
    """
    exp = exp or (FewViewsExperiment.smoke() if smoke_mode() else FewViewsExperiment())
    device = device or pick_device()
    stages = Stages(get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf)
    stages.check_implemented()
    synthetic = data is None
    if synthetic:
        from ..data import AnalyticScene, nerf_scene

        sphere_trace = resolve("sphere_trace", sphere_trace)
        require_implemented("sphere_trace", sphere_trace, lambda p: p.norm(dim=-1) - 1.0,
                            torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]), 0.0, 5.0)
        data = nerf_scene(size=exp.nerf.size, seed=exp.scene_seed)
    train, test = data.train_split(), data.holdout_split()
    if len(test) == 0:
        raise ValueError("data must hold out at least one view (its holdout mask is all False)")
    few = pick_views(train.poses, exp.n_few)
    depth = hit = None
    if synthetic:
        scene = AnalyticScene.from_seed(exp.scene_seed)
        depth, hit = true_depth(scene.sdf, test.poses, test.height, test.width, test.focal, test.near, test.far,
                                stages.get_rays, sphere_trace)
    nx = exp.nerf
    fields, history, renders = {}, {}, {}
    for key, views in (("few", train.views(few)), ("all", train)):
        rays = tuple(x.to(device) for x in training_rays(views.images, views.poses, views.focal, stages))
        torch.manual_seed(nx.seed)
        fields[key] = make_field(nx, stages).to(device)
        history[key] = train_field(fields[key], rays, data.near, data.far, nx, stages, progress,
                                   f"TinyNeRF, {len(views)} views")
        fields[key].eval()
        renders[key] = {"train": render_metrics(fields[key], train.views(few), nx, stages),
                        "heldout": render_metrics(fields[key], test, nx, stages, depth, hit)}
    metrics = {}
    for key in ("few", "all"):
        metrics[f"train_psnr_{key}_db"] = renders[key]["train"]["psnr_db"]
        metrics[f"heldout_psnr_{key}_db"] = renders[key]["heldout"]["psnr_db"]
    for key in ("few", "all"):
        metrics[f"depth_err_{key}"] = renders[key]["heldout"].get("depth_err", math.nan)
    return {"metrics": metrics, "few": few, "renders": renders, "true_depth": depth, "true_hit": hit,
            "fields": fields, "history": history, "data": data, "stages": stages, "exp": exp}


def load_data(path: str, holdout: int):
    """A tiny-NeRF ``.npz`` or a Blender scene folder (``transforms_train.json``, downscaled to about 100 px), with
    its last ``holdout`` views held out.

    Raises:
        ValueError: (or DatasetError) when the path cannot be read or ``holdout`` does not fit.
    """
    from ..data import load_blender, load_tiny_nerf

    p = Path(path)
    if p.is_dir() or p.suffix == ".json":
        data = load_blender(p if p.is_dir() else p.parent, "train", downscale=8)   # 800 px -> 100 px
    else:
        data = load_tiny_nerf(p)
    n = len(data)
    if isinstance(holdout, bool) or not isinstance(holdout, int) or not 1 <= holdout < n:
        raise ValueError(f"--holdout must be in [1, {n - 1}] for {n} views, got {holdout}")
    data.holdout = torch.arange(n) >= n - holdout
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.priors_fewviews",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="FILE.npz|DIR", help="tiny-NeRF .npz or Blender scene folder (default: the "
                        "synthetic scene, which also gives the depth error)")
    parser.add_argument("--holdout", type=int, default=6, help="with --data: hold out the last K views (default 6)")
    parser.add_argument("--views", type=int, help="training views of the few-view model (default 3)")
    parser.add_argument("--steps", type=int, help="training steps per model (default 800; 12 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = FewViewsExperiment.smoke() if smoke_mode() else FewViewsExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, nerf=replace(exp.nerf, steps=args.steps))
    if args.views is not None:
        exp = replace(exp, n_few=args.views)
    try:
        data = None if args.data is None else load_data(args.data, args.holdout)
        out = run(exp=exp, data=data, progress=sys.stderr.isatty())
    except ValueError as exc:                                                 # DatasetError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = out["metrics"]
    print(f"few-view model: views {out['few'].tolist()} of {int((~out['data'].holdout).sum())}; held-out views: "
          f"{int(out['data'].holdout.sum())}")
    keys = [k for k in m if not (k.startswith("depth_err") and math.isnan(m[k]))]
    print(format_metrics({k: m[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
