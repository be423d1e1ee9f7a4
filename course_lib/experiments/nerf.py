"""TinyNeRF built from the a4_rendering stages: rays -> samples -> encoding -> field -> volume rendering.

    python -m course_lib.experiments.nerf [--data FILE.npz] [--holdout K] [--minutes M] [--trainer fast|tiny]

The notebook's NeRF is small enough to train on a laptop CPU in a couple of minutes, and every stage is a
function passed in (the student's own ``get_rays``, ``sample_stratified``, ``positional_encoding``,
``volume_render`` and ``sample_pdf``):

1. rays of every training pixel (``get_rays``), random batches of them per step;
2. ``sample_stratified`` in ``[near, far]`` (perturbed while training, bin midpoints for evaluation);
3. a radiance field: ``positional_encoding`` of the points (or the raw points, for the ablation), an MLP, a
   shifted softplus for the density and a sigmoid for the colour (view-independent);
4. ``volume_render`` and a mean squared error on the pixel colours.

For the first ``precrop_steps`` steps the rays come from the central half of every image (the NeRF authors'
"precrop" for object scenes on a plain background): with mostly background rays a fresh network otherwise
tends to switch the density off everywhere and stay there. Hierarchical sampling is shown at render time:
the same network evaluations per ray are spent either on stratified samples only, or on ``n_coarse``
stratified samples plus ``n_fine`` samples drawn by ``sample_pdf`` from the coarse rendering weights. One
network serves both passes (as in mip-NeRF), so the coarse evaluations are reused by the fine composite.

The experiment (``run``) trains the same network with and without the positional encoding and reports the
held-out PSNR of both. The command line trains one model on a tiny-NeRF ``.npz`` (or the synthetic scene of
:func:`course_lib.data.nerf_scene`) and prints ``heldout_psnr_db=...`` last; ``--trainer fast`` (default)
delegates to the voxel-grid trainer of :mod:`course_lib.nerf`, ``--trainer tiny`` runs the notebook's MLP.

References:
    Mildenhall et al., "NeRF: Representing Scenes as Neural Radiance Fields for View Synthesis", ECCV 2020
    (and the authors' tiny_nerf notebook; precrop: their lego config, precrop_frac 0.5).
    Barron et al., "Mip-NeRF", ICCV 2021 (one network for coarse and fine, shifted softplus density).
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions", NeurIPS 2020.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["NerfExperiment", "Stages", "RadianceField", "training_rays", "query_field", "render_rays", "render_view",
           "heldout_psnr", "train_field", "orbit_poses", "run", "main"]


@dataclass(frozen=True)
class NerfExperiment:
    """Default settings: two trainings of about a minute each on one CPU core; ``smoke()`` seconds."""

    size: int = 64                  # views of nerf_scene(size=size): 100 training + 6 held-out
    steps: int = 1000
    rays_per_step: int = 1024
    n_samples: int = 32             # stratified samples per ray (training and evaluation)
    num_freqs: int = 6              # L of the positional encoding of (x, y, z)
    coord_scale: float = 0.5        # points are multiplied by this before the encoding (scene within ~1.3)
    width: int = 64
    depth: int = 3                  # hidden layers
    lr: float = 5e-3                # Adam; decays to lr / 10 over the run
    precrop_steps: int = 150
    n_fine: int = 32                # hierarchical rendering: n_samples coarse + n_fine importance samples
    eval_chunk: int = 4096          # rays per forward pass when rendering images
    seed: int = 0

    @staticmethod
    def smoke() -> "NerfExperiment":
        return NerfExperiment(size=16, steps=12, rays_per_step=128, n_samples=8, width=16, precrop_steps=4,
                              n_fine=8)


@dataclass(frozen=True)
class Stages:
    """The five stage functions; each one left as None is the course_lib reference (where this edition has it,
    see :func:`course_lib.manifest.resolve`)."""

    get_rays: Callable | None = None
    sample_stratified: Callable | None = None
    positional_encoding: Callable | None = None
    volume_render: Callable | None = None
    sample_pdf: Callable | None = None

    def __post_init__(self) -> None:
        for name in ("get_rays", "sample_stratified", "positional_encoding", "volume_render", "sample_pdf"):
            object.__setattr__(self, name, resolve(name, getattr(self, name)))     # frozen: set once, here

    def check_implemented(self) -> None:
        """Raise a clear NotImplementedError naming the first stage whose scaffold is still empty."""
        o, d = torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -1.0]])
        require_implemented("get_rays", self.get_rays, 2, 2, 1.0, torch.eye(4))
        require_implemented("sample_stratified", self.sample_stratified, o, d, 2.0, 6.0, 2, False)
        require_implemented("positional_encoding", self.positional_encoding, o, 1)
        require_implemented("volume_render", self.volume_render, torch.ones(1, 2), torch.ones(1, 2, 3),
                            torch.tensor([[2.0, 3.0]]))
        require_implemented("sample_pdf", self.sample_pdf, torch.tensor([[0.0, 1.0, 2.0]]), torch.ones(1, 2), 2,
                            True)


class RadianceField(nn.Module):
    """``forward(points [P, 3]) -> (sigma [P], rgb [P, 3])``; ``encode`` maps ``[P, 3] -> [P, in_dim]``.

    ``sigma = softplus(raw - 1)`` (mip-NeRF's shifted softplus: never exactly dead, unlike ReLU) and
    ``rgb = sigmoid(...)``; the colour does not depend on the view direction (the scene is diffuse).
    """

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], in_dim: int, width: int, depth: int):
        super().__init__()
        self.encode = encode
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, 4))

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(self.encode(points))                                   # [P, 4]
        return F.softplus(out[..., 0] - 1.0), torch.sigmoid(out[..., 1:])


def make_field(exp: NerfExperiment, stages: Stages, use_encoding: bool = True) -> RadianceField:
    """The experiment's field, with the positional encoding of ``stages`` or with the raw (scaled) points."""
    s, L = exp.coord_scale, exp.num_freqs
    if use_encoding:
        return RadianceField(lambda p: stages.positional_encoding(p * s, L), 3 * (1 + 2 * L), exp.width, exp.depth)
    return RadianceField(lambda p: p * s, 3, exp.width, exp.depth)


def training_rays(images: torch.Tensor, poses: torch.Tensor, focal: float, stages: Stages,
                  precrop: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rays of every pixel of ``images [N, H, W, 3]``: ``(rays_o [R, 3], rays_d [R, 3], rgb [R, 3], centre [C])``
    with ``R = N H W`` (image-major, then row-major) and ``centre`` the indices of the rays in the central
    ``precrop`` fraction of each image."""
    n, h, w, _ = images.shape
    pairs = [stages.get_rays(h, w, focal, pose) for pose in poses]
    rays_o = torch.stack([o for o, _ in pairs]).reshape(-1, 3)               # [N, H, W, 3] -> [N H W, 3]
    rays_d = torch.stack([d for _, d in pairs]).reshape(-1, 3)
    rows = ((torch.arange(h) - h / 2).abs() < precrop * h / 2)                # [H]
    cols = ((torch.arange(w) - w / 2).abs() < precrop * w / 2)                # [W]
    inside = (rows[:, None] & cols[None, :]).reshape(-1).nonzero().squeeze(-1)   # [C0] pixel indices
    centre = (torch.arange(n)[:, None] * (h * w) + inside[None, :]).reshape(-1)  # [N, C0] -> [N C0]
    return rays_o, rays_d, images.reshape(-1, 3), centre


def query_field(field: nn.Module, points: torch.Tensor, rays_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``field`` at ``points [R, S, 3]`` -> ``(sigma [R S], rgb [R S, 3])``; a field whose ``uses_directions`` is
    True is also given the unit direction of each point's ray (``rays_d [R, 3]``), NeRF's 5-D input."""
    flat = points.reshape(-1, 3)                                              # [R, S, 3] -> [R S, 3]
    if not getattr(field, "uses_directions", False):
        return field(flat)
    dirs = F.normalize(rays_d, dim=-1)[:, None, :].expand_as(points)          # [R, S, 3]
    return field(flat, dirs.reshape(-1, 3))


def render_rays(field: RadianceField, rays_o: torch.Tensor, rays_d: torch.Tensor, near: float, far: float,
                n_samples: int, stages: Stages, perturb: bool = False, generator: torch.Generator | None = None,
                n_fine: int = 0) -> dict[str, torch.Tensor]:
    """Sample -> field -> composite for rays ``[R, 3]``.

    Returns a dict with ``rgb [R, 3]``, ``depth [R]`` (expected ``t`` under the weights), ``weights [R, S]``
    and ``t [R, S]``. With ``n_fine > 0`` (hierarchical), ``n_fine`` more samples are drawn with
    ``sample_pdf`` from the coarse weights between the coarse samples' midpoints, the field is evaluated at
    the new points only, and everything is composited over all ``n_samples + n_fine`` sorted samples; the
    dict then also holds ``rgb_coarse`` and ``t_fine``.
    """
    points, t = stages.sample_stratified(rays_o, rays_d, near, far, n_samples, perturb, generator)   # [R, S, 3], [R, S]
    r, s = t.shape
    sigma, rgb = query_field(field, points, rays_d)                           # [R S], [R S, 3]
    sigma, rgb = sigma.reshape(r, s), rgb.reshape(r, s, 3)
    color, weights = stages.volume_render(sigma, rgb, t)
    out = {"rgb": color, "weights": weights, "t": t, "depth": (weights * t).sum(-1)}
    if n_fine <= 0 or s < 2:
        return out
    mids = 0.5 * (t[:, 1:] + t[:, :-1])                                       # [R, S - 1] bin edges
    t_new = stages.sample_pdf(mids, weights[:, 1:-1].detach(), n_fine, not perturb, generator)   # [R, n_fine]
    t_new = t_new.detach()
    sigma_new, rgb_new = query_field(field, rays_o[:, None, :] + t_new[..., None] * rays_d[:, None, :], rays_d)
    t_all, order = torch.sort(torch.cat([t, t_new], -1), dim=-1)              # [R, S + n_fine]
    sigma_all = torch.cat([sigma, sigma_new.reshape(r, n_fine)], -1).gather(-1, order)
    rgb_all = torch.cat([rgb, rgb_new.reshape(r, n_fine, 3)], 1).gather(1, order[..., None].expand(-1, -1, 3))
    color_f, weights_f = stages.volume_render(sigma_all, rgb_all, t_all)
    return {"rgb": color_f, "weights": weights_f, "t": t_all, "depth": (weights_f * t_all).sum(-1),
            "rgb_coarse": color, "t_fine": t_new}


@torch.no_grad()
def render_view(field: RadianceField, pose: torch.Tensor, height: int, width: int, focal: float, near: float,
                far: float, n_samples: int, stages: Stages, n_fine: int = 0, chunk: int = 4096) -> dict:
    """Render one view (deterministic samples): ``rgb [H, W, 3]`` and ``depth [H, W]`` on the CPU."""
    dev = next(field.parameters()).device
    rays_o, rays_d = stages.get_rays(height, width, focal, pose.to(dev, torch.float32))   # [H, W, 3] each
    rays_o, rays_d = rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)            # [H W, 3]
    parts = [render_rays(field, rays_o[i : i + chunk], rays_d[i : i + chunk], near, far, n_samples, stages,
                         n_fine=n_fine) for i in range(0, rays_o.shape[0], chunk)]
    rgb = torch.cat([p["rgb"] for p in parts]).reshape(height, width, 3)     # [H W, 3] -> [H, W, 3]
    depth = torch.cat([p["depth"] for p in parts]).reshape(height, width)
    return {"rgb": rgb.clamp(0, 1).cpu(), "depth": depth.cpu()}


def psnr(mse: float) -> float:
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def heldout_psnr(field: RadianceField, images: torch.Tensor, poses: torch.Tensor, focal: float, near: float,
                 far: float, n_samples: int, stages: Stages, n_fine: int = 0, chunk: int = 4096) -> float:
    """PSNR over every pixel of the views ``images [N, H, W, 3]`` seen from ``poses [N, 4, 4]``."""
    n, h, w, _ = images.shape
    se = 0.0
    for img, pose in zip(images, poses):
        pred = render_view(field, pose, h, w, focal, near, far, n_samples, stages, n_fine, chunk)["rgb"]
        se += float(((pred - img.cpu()) ** 2).sum())
    require_finite("squared error of the held-out views", se, hint="the field renders NaN: its parameters or a "
                   "rendering stage (sample_stratified, positional_encoding, volume_render) are not finite")
    return psnr(se / max(images.numel(), 1))


def train_field(field: RadianceField, rays: tuple[torch.Tensor, ...], near: float, far: float, exp: NerfExperiment,
                stages: Stages, progress: bool = True, desc: str = "TinyNeRF",
                max_seconds: float | None = None) -> list[tuple[int, float]]:
    """Adam on the pixel MSE of random ray batches (``rays`` from :func:`training_rays`, on the field's device).

    The learning rate decays exponentially to ``lr / 10`` over ``exp.steps`` steps, or over ``max_seconds``
    when that comes first. Returns the training PSNR every 25 steps (and at the last step) as
    ``(step, psnr_db)``.
    """
    from tqdm.auto import tqdm

    rays_o, rays_d, rgb, centre = rays
    dev = rays_o.device
    gen = torch.Generator(device=dev).manual_seed(exp.seed)
    opt = torch.optim.Adam(field.parameters(), lr=exp.lr)
    history = []
    start = time.perf_counter()
    bar = tqdm(range(exp.steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        pool = centre.numel() if step < exp.precrop_steps else rays_o.shape[0]
        idx = torch.randint(0, pool, (exp.rays_per_step,), generator=gen, device=dev)
        if step < exp.precrop_steps:
            idx = centre[idx]
        pred = render_rays(field, rays_o[idx], rays_d[idx], near, far, exp.n_samples, stages, True, gen)["rgb"]
        loss = F.mse_loss(pred, rgb[idx])
        backward_and_step(loss, opt, f"pixel MSE of {desc}", step, inputs={"rendered colours": pred})
        elapsed = time.perf_counter() - start
        progress_frac = max(step / exp.steps, elapsed / max_seconds if max_seconds else 0.0)
        for group in opt.param_groups:
            group["lr"] = exp.lr * 0.1 ** min(progress_frac, 1.0)
        out_of_time = max_seconds is not None and elapsed > max_seconds
        if step % 25 == 0 or step == exp.steps - 1 or out_of_time:
            history.append((step, psnr(float(loss.detach()))))
            bar.set_postfix(psnr=f"{history[-1][1]:.1f} dB")
        if out_of_time:
            break
    return history


def orbit_poses(n: int, radius: float = 4.0, elevation_deg: float = 30.0) -> torch.Tensor:
    """``[n, 4, 4]`` cameras on a circle around the world z axis, looking at the origin."""
    from ..data import look_at

    az = torch.arange(n) * (2 * math.pi / n)
    el = math.radians(elevation_deg)
    pos = radius * torch.stack([math.cos(el) * az.cos(), math.cos(el) * az.sin(), torch.full((n,), math.sin(el))], -1)
    return torch.stack([look_at(p) for p in pos])                            # [n, 4, 4]


def _split(data) -> tuple:
    train, test = data.train_split(), data.holdout_split()
    return train, test


def run(
    get_rays: Callable | None = None,
    sample_stratified: Callable | None = None,
    positional_encoding: Callable | None = None,
    volume_render: Callable | None = None,
    sample_pdf: Callable | None = None,
    exp: NerfExperiment | None = None,
    *,
    data=None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train the TinyNeRF with and without the positional encoding (same steps, rays and network) on the
    synthetic scene (or ``data``, a NerfData with a ``holdout`` split) and evaluate on the held-out views.

    Returns ``metrics`` (``heldout_psnr_db`` with the encoding, ``heldout_psnr_noenc_db`` without,
    ``pe_gain_db``, and, for the encoded model at equal network evaluations per ray, ``heldout_psnr_strat_db``
    with ``n_samples + n_fine`` stratified samples and ``heldout_psnr_hier_db`` with ``n_samples`` coarse +
    ``n_fine`` importance samples), the two fields, their training histories, the data, the stages and ``exp``.
    """
    exp = exp or (NerfExperiment.smoke() if smoke_mode() else NerfExperiment())
    device = device or pick_device()
    stages = Stages(get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf)
    stages.check_implemented()
    if data is None:
        from ..data import nerf_scene

        data = nerf_scene(size=exp.size)
    train, test = _split(data)
    rays = tuple(x.to(device) for x in training_rays(train.images, train.poses, train.focal, stages))
    fields, history = {}, {}
    for key, use_enc in (("enc", True), ("noenc", False)):
        torch.manual_seed(exp.seed)
        fields[key] = make_field(exp, stages, use_enc).to(device)
        history[key] = train_field(fields[key], rays, data.near, data.far, exp, stages, progress,
                                   "TinyNeRF, " + ("encoded" if use_enc else "raw xyz"))
        fields[key].eval()
    args = (test.images, test.poses, data.focal, data.near, data.far)
    metrics = {
        "heldout_psnr_db": heldout_psnr(fields["enc"], *args, exp.n_samples, stages, chunk=exp.eval_chunk),
        "heldout_psnr_noenc_db": heldout_psnr(fields["noenc"], *args, exp.n_samples, stages, chunk=exp.eval_chunk),
    }
    metrics["pe_gain_db"] = metrics["heldout_psnr_db"] - metrics["heldout_psnr_noenc_db"]
    metrics["heldout_psnr_strat_db"] = heldout_psnr(fields["enc"], *args, exp.n_samples + exp.n_fine, stages,
                                                    chunk=exp.eval_chunk)
    metrics["heldout_psnr_hier_db"] = heldout_psnr(fields["enc"], *args, exp.n_samples, stages, n_fine=exp.n_fine,
                                                   chunk=exp.eval_chunk)
    return {"metrics": metrics, "fields": fields, "history": history, "data": data, "stages": stages, "exp": exp}


def _load(path: str | None, holdout: int, size: int):
    from ..data import load_tiny_nerf, nerf_scene

    data = nerf_scene(size=size) if path is None else load_tiny_nerf(path)
    n = len(data)
    if not 1 <= holdout < n:
        raise ValueError(f"--holdout must be in [1, {n - 1}] for {n} views, got {holdout}")
    data.holdout = torch.arange(n) >= n - holdout
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.nerf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="FILE.npz", help="tiny-NeRF .npz (images, poses, focal); default: the "
                        "synthetic scene")
    parser.add_argument("--holdout", type=int, default=6, help="hold out the last K views (default 6)")
    parser.add_argument("--minutes", type=float, help="training budget (default 1; 0.05 with COURSE_SMOKE=1)")
    parser.add_argument("--trainer", choices=("fast", "tiny"), default="fast",
                        help="fast: course_lib.nerf voxel grid (default); tiny: the notebook's MLP")
    args = parser.parse_args(argv)
    smoke = smoke_mode()
    minutes = args.minutes if args.minutes is not None else (0.05 if smoke else 1.0)
    if not (math.isfinite(minutes) and minutes > 0):
        parser.error(f"--minutes must be > 0, got {minutes}")
    exp = NerfExperiment.smoke() if smoke else NerfExperiment()
    try:
        data = _load(args.data, args.holdout, exp.size)
    except ValueError as exc:                                                  # DatasetError is a ValueError
        parser.error(str(exc))
    if args.trainer == "fast":
        from ..nerf import train_tinynerf

        _, hist = train_tinynerf(data, "fast", minutes=minutes, holdout=args.holdout, eval_minutes=(minutes,),
                                 max_steps=30 if smoke else None, log=None)
        value = hist.evals[-1]["psnr"]
        print(f"fast voxel-grid trainer: {hist.steps} steps in {hist.train_seconds:.0f} s")
    else:
        device = pick_device()
        stages = Stages()
        train, test = _split(data)
        rays = tuple(x.to(device) for x in training_rays(train.images, train.poses, train.focal, stages))
        torch.manual_seed(exp.seed)
        field = make_field(exp, stages).to(device)
        exp = replace(exp, steps=10**9) if not smoke else exp                # the time budget decides
        hist = train_field(field, rays, data.near, data.far, exp, stages, sys.stderr.isatty(),
                           max_seconds=60.0 * minutes)
        field.eval()
        value = heldout_psnr(field, test.images, test.poses, data.focal, data.near, data.far, exp.n_samples, stages)
        print(f"TinyNeRF (MLP with positional encoding): {hist[-1][0] + 1} steps")
    print(f"held-out views: {int(data.holdout.sum())} of {len(data)}")
    print(format_metrics({"heldout_psnr_db": value}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
