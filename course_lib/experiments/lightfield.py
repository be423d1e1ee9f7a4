"""A light field network: one network evaluation per ray, against TinyNeRF's samples along the ray.

    python -m course_lib.experiments.lightfield [--steps N]

A radiance field answers "what is at this point?" and a pixel costs ``S`` network evaluations along its ray plus
volume rendering. A **light field network** (LFN) answers "what colour does this ray carry?" directly: the ray,
written in Pluecker coordinates ``(d, o x d)`` (the same 6 numbers wherever its origin sits on the line), is
encoded and mapped to RGB by one MLP evaluation. Rendering is ``S`` times cheaper -- but nothing in the
architecture ties the colours of different rays together: two rays that see the same surface point from two
cameras are two unrelated inputs, so multi-view consistency must be learned from the data (or from a prior over
scenes, as in the LFN paper), while NeRF gets it for free from its 3-D field and the rendering integral.

The experiment fits both, on the same training rays of the synthetic scene (:func:`course_lib.data.nerf_scene`,
100 views), and reports the training PSNR (on 6 training views), the held-out PSNR (the 6 held-out views), the
network evaluations per ray and the time to render one view. Both fit the training views; the LFN generalises far
worse to new cameras. A trained TinyNeRF with the same settings (from :mod:`.priors_fewviews`, all views) can be
passed in instead of training one again. The command line prints, last, ``train_psnr_lfn_db=...
train_psnr_nerf_db=... heldout_psnr_lfn_db=... heldout_psnr_nerf_db=...``.

References:
    Sitzmann, Rezchikov, Freeman, Tenenbaum, Durand, "Light Field Networks: Neural Scene Representations with
    Single-Evaluation Rendering", NeurIPS 2021 (Pluecker coordinates, section 3.1; multi-view consistency, 3.3).
    Levoy and Hanrahan, "Light Field Rendering", SIGGRAPH 1996. Mildenhall et al., "NeRF", ECCV 2020.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented
from .nerf import NerfExperiment, Stages, make_field, psnr, render_view, train_field, training_rays

__all__ = ["LightFieldExperiment", "LightFieldNetwork", "train_lightfield", "render_lightfield", "run", "main"]


@dataclass(frozen=True)
class LightFieldExperiment:
    """Default settings: the LFN trains in about 20 s on one CPU core, the TinyNeRF (unless passed in) in about
    45 s; ``smoke()`` seconds."""

    nerf: NerfExperiment = field(default_factory=lambda: NerfExperiment(steps=800))   # as priors_fewviews
    num_freqs: int = 6              # gamma of the 6 Pluecker coordinates
    moment_scale: float = 0.25      # moments |o x d| reach the camera distance (4): scaled into [-1, 1]
    width: int = 128
    depth: int = 4
    steps: int = 2000
    rays_per_step: int = 1024
    lr: float = 1e-3                # Adam; decays to lr / 10
    n_train_eval: int = 6           # training views rendered for the training PSNR
    seed: int = 0

    @staticmethod
    def smoke() -> "LightFieldExperiment":
        return LightFieldExperiment(nerf=NerfExperiment.smoke(), width=16, depth=2, steps=20, rays_per_step=128,
                                    n_train_eval=2)


class LightFieldNetwork(nn.Module):
    """``forward(rays_o [R, 3], rays_d [R, 3]) -> rgb [R, 3]``: an MLP on the encoded Pluecker coordinates.

    Math::

        p = plucker_coordinates(o, d) * [1, 1, 1, s, s, s]     unit direction, scaled moment
        rgb = sigmoid(MLP(gamma(p)))                           one evaluation per ray
    """

    def __init__(self, plucker_coordinates: Callable, encode: Callable[[torch.Tensor], torch.Tensor], in_dim: int,
                 moment_scale: float, width: int, depth: int):
        super().__init__()
        self.plucker, self.encode = plucker_coordinates, encode
        self.register_buffer("scale", torch.tensor([1.0, 1.0, 1.0] + [moment_scale] * 3))
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, 3))

    def forward(self, rays_o: torch.Tensor, rays_d: torch.Tensor) -> torch.Tensor:
        p = self.plucker(rays_o, rays_d) * self.scale                         # [R, 6]
        return torch.sigmoid(self.net(self.encode(p)))                        # [R, 3]


def train_lightfield(lfn: LightFieldNetwork, rays: tuple[torch.Tensor, ...], exp: LightFieldExperiment,
                     progress: bool = True) -> list[tuple[int, float]]:
    """Adam on the pixel MSE of random ray batches; returns the training PSNR every 50 steps as ``(step, dB)``."""
    from tqdm.auto import tqdm

    rays_o, rays_d, rgb = rays[:3]
    dev = rays_o.device
    gen = torch.Generator(device=dev).manual_seed(exp.seed)
    opt = torch.optim.Adam(lfn.parameters(), lr=exp.lr)
    history = []
    for step in tqdm(range(exp.steps), desc="light field network", disable=not progress, leave=False):
        idx = torch.randint(0, rays_o.shape[0], (exp.rays_per_step,), generator=gen, device=dev)
        pred = lfn(rays_o[idx], rays_d[idx])                                  # [B, 3]
        loss = F.mse_loss(pred, rgb[idx])
        backward_and_step(loss, opt, "pixel MSE of the light field network", step, inputs={"colours": pred})
        for group in opt.param_groups:
            group["lr"] = exp.lr * 0.1 ** ((step + 1) / exp.steps)
        if step % 50 == 0 or step == exp.steps - 1:
            history.append((step, psnr(float(loss.detach()))))
    return history


@torch.no_grad()
def render_lightfield(lfn: LightFieldNetwork, pose: torch.Tensor, height: int, width: int, focal: float,
                      get_rays: Callable) -> torch.Tensor:
    """One view ``[H, W, 3]`` on the CPU: one network evaluation per pixel."""
    dev = next(lfn.parameters()).device
    rays_o, rays_d = get_rays(height, width, focal, pose.to(dev, torch.float32))   # [H, W, 3] each
    return lfn(rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)).reshape(height, width, 3).cpu()


def _evaluate(render: Callable, views) -> tuple[float, float, torch.Tensor]:
    """``(psnr_db, seconds per view, images [N, H, W, 3])`` of ``render(pose) -> [H, W, 3]`` on ``views``."""
    start = time.perf_counter()
    images = torch.stack([render(pose) for pose in views.poses])
    seconds = (time.perf_counter() - start) / max(len(views), 1)
    require_finite("rendered images", images)
    return psnr(float(((images - views.images.cpu()) ** 2).mean())), seconds, images


def run(
    plucker_coordinates: Callable | None = None,
    get_rays: Callable | None = None,
    sample_stratified: Callable | None = None,
    positional_encoding: Callable | None = None,
    volume_render: Callable | None = None,
    sample_pdf: Callable | None = None,
    exp: LightFieldExperiment | None = None,
    *,
    nerf_field: nn.Module | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Fit the LFN (and TinyNeRF, unless ``nerf_field`` is given) to the training rays of the synthetic scene.

    Args:
        nerf_field: a TinyNeRF trained with ``exp.nerf`` on all training views of ``nerf_scene(size=exp.nerf.size)``
            (``priors_fewviews.run(...)["fields"]["all"]``); trained here when None.

    Returns:
        ``metrics`` (``train_psnr_{lfn,nerf}_db``, ``heldout_psnr_{lfn,nerf}_db``, ``evals_per_ray_{lfn,nerf}``,
        ``render_ms_{lfn,nerf}`` per view, ``train_s_lfn``), ``renders`` (held-out images of both), ``lfn``,
        ``nerf_field``, ``history``, ``data`` and ``exp``.
    """
    plucker_coordinates = resolve("plucker_coordinates", plucker_coordinates)
    exp = exp or (LightFieldExperiment.smoke() if smoke_mode() else LightFieldExperiment())
    device = device or pick_device()
    stages = Stages(get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf)
    stages.check_implemented()
    require_implemented("plucker_coordinates", plucker_coordinates, torch.zeros(1, 3), torch.ones(1, 3))
    from ..data import nerf_scene

    data = nerf_scene(size=exp.nerf.size)
    train, test = data.train_split(), data.holdout_split()
    rays = tuple(x.to(device) for x in training_rays(train.images, train.poses, train.focal, stages))
    nx = exp.nerf
    if nerf_field is None:
        torch.manual_seed(nx.seed)
        nerf_field = make_field(nx, stages).to(device)
        train_field(nerf_field, rays, data.near, data.far, nx, stages, progress, "TinyNeRF, all views")
    nerf_field.eval()
    torch.manual_seed(exp.seed)
    pe = stages.positional_encoding
    lfn = LightFieldNetwork(plucker_coordinates, lambda p: pe(p, exp.num_freqs), 6 * (1 + 2 * exp.num_freqs),
                            exp.moment_scale, exp.width, exp.depth).to(device)
    start = time.perf_counter()
    history = train_lightfield(lfn, rays, exp, progress)
    train_s = time.perf_counter() - start
    lfn.eval()
    h, w, focal = data.height, data.width, data.focal
    nerf_render = lambda pose: render_view(nerf_field, pose, h, w, focal, data.near, data.far, nx.n_samples,   # noqa: E731
                                           stages, chunk=nx.eval_chunk)["rgb"]
    lfn_render = lambda pose: render_lightfield(lfn, pose, h, w, focal, stages.get_rays)   # noqa: E731
    seen = train.views(torch.arange(min(exp.n_train_eval, len(train))))
    metrics, renders = {}, {}
    for name, render in (("lfn", lfn_render), ("nerf", nerf_render)):
        metrics[f"train_psnr_{name}_db"], _, _ = _evaluate(render, seen)
        metrics[f"heldout_psnr_{name}_db"], seconds, renders[name] = _evaluate(render, test)
        metrics[f"render_ms_{name}"] = 1e3 * seconds
    metrics.update({"evals_per_ray_lfn": 1, "evals_per_ray_nerf": nx.n_samples, "train_s_lfn": train_s})
    return {"metrics": metrics, "renders": renders, "lfn": lfn, "nerf_field": nerf_field, "history": history,
            "data": data, "stages": stages, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.lightfield",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="LFN training steps (default 2000; 20 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = LightFieldExperiment.smoke() if smoke_mode() else LightFieldExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    m = run(exp=exp, progress=sys.stderr.isatty())["metrics"]
    print(f"network evaluations per ray: LFN {m['evals_per_ray_lfn']}, TinyNeRF {m['evals_per_ray_nerf']}; render "
          f"time per view: LFN {m['render_ms_lfn']:.1f} ms, TinyNeRF {m['render_ms_nerf']:.1f} ms")
    print(format_metrics({k: m[k] for k in ("train_psnr_lfn_db", "train_psnr_nerf_db", "heldout_psnr_lfn_db",
                                            "heldout_psnr_nerf_db")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
