"""The TinyNeRF training loop: a wall-clock budget, held-out PSNR at fixed training times, checkpoints.

    model, history = train_tinynerf("scene.npz", "fast", minutes=10, holdout=10)
    image = render_image(model, pose, H, W, focal)

One loop trains both presets. Each step draws random rays from all training images, renders them and takes
an Adam step on the mean squared error, with the learning rate decaying exponentially,
``lr * lr_decay^(step / decay_steps)``. For the grid field, the schedule of :class:`FieldConfig` runs by
step: after ``coarse_steps`` on the coarse grid, the grid is resampled at each resolution of ``schedule`` (a
fresh optimizer each time, as the parameters are new) and empty-space skipping starts.

The graded stages it runs (``get_rays``, ``sample_stratified``, ``positional_encoding``, ``volume_render``) are
the caller's, passed by keyword (the notebook passes the student's); any left out is the course_lib reference
(:class:`~course_lib.nerf.stages.NerfStages`).

Time budget: only training counts. At each evaluation time (e.g. 1, 2, 5, 10 minutes of training) the clock
stops, the held-out views are rendered and ``PSNR = -10 log10(mean squared error over all their pixels)`` is
recorded; then the clock restarts. An evaluation happens at the first step that ends past its time. The clock
is the wall clock, or (``clock="process"``, CPU only) this process's CPU time: with one torch thread that is the
time one idle core would take, whatever else runs on the machine, so budgets on a shared machine stay equal.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..guards import require_finite, require_finite_grads
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..utils import pick_device
from .config import NerfConfig, preset
from .data import Views, all_rays, default_bound, load_views, split_views
from .renderer import NerfModel, render_image
from .sampler import RayBatcher
from .stages import NerfStages

__all__ = ["History", "train_tinynerf", "evaluate_psnr", "save_nerf", "load_nerf", "psnr"]


@dataclass
class History:
    """What a run did: ``evals`` (one dict per evaluation: minutes, time_s, step, psnr), the training
    ``loss`` every ``log_every`` steps as ``(step, time_s, mse)``, and the totals."""

    config: str
    evals: list[dict] = field(default_factory=list)
    loss: list[tuple[int, float, float]] = field(default_factory=list)
    steps: int = 0
    train_seconds: float = 0.0

    def psnr_at(self, minutes: float) -> float:
        """Held-out PSNR of the evaluation at ``minutes`` (NaN when the run had none there)."""
        for e in self.evals:
            if math.isclose(e["minutes"], minutes):
                return e["psnr"]
        return float("nan")


def psnr(mse: float) -> float:
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@torch.no_grad()
def evaluate_psnr(model: NerfModel, views: Views) -> float:
    """PSNR over every pixel of ``views`` (NaN when there are none)."""
    if len(views) == 0:
        return float("nan")
    h, w = views.hw
    dev = next(model.parameters()).device
    se = 0.0
    for img, pose in zip(views.images, views.poses):
        pred = render_image(model, pose, h, w, views.focal)
        se += float(((pred - img.to(dev)) ** 2).sum())
    require_finite("squared error of the held-out views", se, hint="the model renders NaN")
    return psnr(se / views.images.numel())


def _optimizer(model: NerfModel) -> torch.optim.Optimizer:
    o = model.config.optim
    if model.is_grid:
        fld = model.field
        groups = [{"params": [fld.density, fld.color], "lr": o.lr, "base_lr": o.lr}]
        if fld.color_net is not None:
            groups.append({"params": list(fld.color_net.parameters()), "lr": o.lr_mlp, "base_lr": o.lr_mlp})
    else:
        groups = [{"params": list(model.parameters()), "lr": o.lr, "base_lr": o.lr}]
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    return torch.optim.Adam(groups, betas=o.betas, fused=fused or None)


def _grow(model: NerfModel, step: int) -> bool:
    """Apply the grid schedule at ``step``; True when the field (and so the optimizer) changed."""
    f = model.config.field
    if not model.is_grid:
        return False
    after = step - f.coarse_steps
    for at, res in f.schedule:
        if after == at:
            model.field = model.field.resampled(model.field.lo, model.field.hi, res)
            model.refresh_occupancy()
            return True
    return False


def train_tinynerf(
    data,
    config: NerfConfig | str = "fast",
    minutes: float = 10.0,
    holdout: int | None = None,
    eval_minutes: tuple[float, ...] | None = None,
    device: str | torch.device | None = None,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = print,
    log_every: int = 100,
    *,
    get_rays: Callable | None = None,
    sample_stratified: Callable | None = None,
    positional_encoding: Callable | None = None,
    volume_render: Callable | None = None,
    stages: object | None = None,
    clock: str = "wall",
) -> tuple[NerfModel, History]:
    """Train a TinyNeRF for a wall-clock budget and evaluate held-out PSNR along the way.

    Args:
        data: a tiny-NeRF ``.npz`` path, a ``course_lib.data.NerfData`` (or any object with images, poses,
            focal, near, far, holdout) or a dict with those keys.
        config: a :class:`NerfConfig` or a preset name (``"fast"``, ``"plain"``).
        minutes: training budget (evaluation time excluded).
        holdout: hold out the last ``holdout`` views; None keeps the source's own split (NerfData.holdout).
        eval_minutes: training times at which to evaluate; default 1, 2, 5, 10 minutes up to the budget, and
            the end of the budget.
        device: default ``course_lib.pick_device()``.
        max_steps: also stop after this many steps (tests).
        log: called with progress lines (None: silent).
        get_rays, sample_stratified, positional_encoding, volume_render: the stage functions (the student's in
            the notebook); each one left as None comes from ``stages`` or else is the course_lib reference.
        stages: an object with those four attributes (a :class:`NerfStages`, or the notebook experiment's
            ``course_lib.experiments.nerf.Stages``).
        clock: ``"wall"`` (``time.perf_counter``) or ``"process"`` (``time.process_time``: the CPU time of this
            process, for CPU training on a shared machine; not on a GPU, whose work it does not count).

    Returns:
        ``(model, history)``; ``model`` renders with :func:`render_image` using the same stage functions.

    Raises:
        ValueError: for bad data, a bad budget or hold-out count, or an invalid config.
        course_lib.manifest.WithheldError: for a stage not passed in an edition that withholds its reference.
    """
    cfg = preset(config) if isinstance(config, str) else config.validate()
    fns = NerfStages.of(stages, get_rays=get_rays, sample_stratified=sample_stratified,
                        positional_encoding=positional_encoding, volume_render=volume_render)
    if not (isinstance(minutes, (int, float)) and minutes > 0):
        raise ValueError(f"minutes must be a number > 0, got {minutes!r}")
    views, mask = load_views(data)
    train_v, test_v = split_views(views, holdout, mask)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    if clock not in ("wall", "process") or (clock == "process" and dev.type != "cpu"):
        raise ValueError(f"clock must be 'wall', or 'process' on the CPU, got {clock!r} on device {dev}")
    now = time.perf_counter if clock == "wall" else time.process_time
    budget = 60.0 * minutes
    if eval_minutes is None:
        eval_minutes = tuple(m for m in (1, 2, 5, 10) if m < minutes) + (minutes,)
    evals = sorted({float(m) for m in eval_minutes if 0 < m <= minutes})
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    model = NerfModel(cfg, train_v.near, train_v.far, default_bound(train_v), fns).to(dev)
    rays_o, rays_d, rgb = (t.to(dev) for t in all_rays(train_v, fns.get_rays))
    batcher = RayBatcher(rays_o, rays_d, rgb, cfg.sampler.rays_per_step, gen)
    opt = _optimizer(model)
    hist = History(config=cfg.name)
    say = log or (lambda _msg: None)
    say(f"[{cfg.name}] {len(train_v)} training views, {len(test_v)} held out, {rays_o.shape[0]} rays, "
        f"device {dev}, budget {minutes:g} min")
    step, spent, next_eval = 0, 0.0, 0
    while spent < budget and (max_steps is None or step < max_steps):
        t0 = now()
        if _grow(model, step):
            opt = _optimizer(model)
        elif model.is_grid and step > cfg.field.coarse_steps and step % cfg.field.occupancy_every == 0:
            model.refresh_occupancy()
        o, d, target = batcher.next()
        pred = model.render_rays(o, d, perturb=cfg.sampler.perturb, generator=gen)
        loss = F.mse_loss(pred, target)
        require_finite(f"pixel MSE of the {cfg.name} TinyNeRF", loss, f"at step {step}",
                       inputs={"rendered colours": pred})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        require_finite_grads(f"the pixel MSE of the {cfg.name} TinyNeRF",
                             (p for g in opt.param_groups for p in g["params"]), f"at step {step}")
        decay = cfg.optim.lr_decay ** (step / cfg.optim.decay_steps)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * decay
        opt.step()
        step += 1
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        spent += now() - t0
        if step % log_every == 0:
            mse = float(loss.detach())
            hist.loss.append((step, spent, mse))
            say(f"[{cfg.name}] step {step} {spent:.0f}s train psnr {psnr(mse):.2f}")
        while next_eval < len(evals) and (spent >= 60 * evals[next_eval] or spent >= budget):
            p = evaluate_psnr(model, test_v)
            hist.evals.append({"minutes": evals[next_eval], "time_s": spent, "step": step, "psnr": p})
            say(f"[{cfg.name}] {evals[next_eval]:g} min ({spent:.0f}s, step {step}): held-out psnr {p:.2f}")
            next_eval += 1
    if next_eval < len(evals):                                    # stopped by max_steps: evaluate once more
        p = evaluate_psnr(model, test_v)
        hist.evals.append({"minutes": spent / 60, "time_s": spent, "step": step, "psnr": p})
    hist.steps, hist.train_seconds = step, spent
    return model, hist


def save_nerf(path, model: NerfModel) -> None:
    """Atomically save a trained model (config, grid box and resolution, weights, occupancy)."""
    meta = {"near": model.near, "far": model.far}
    if model.is_grid:
        meta.update(res=list(model.field.res), lo=model.field.lo.tolist(), hi=model.field.hi.tolist())
    save_checkpoint(path, {"config": model.config.to_dict(), "meta": meta,
                           "state": {k: v.cpu() for k, v in model.state_dict().items()},
                           "occupancy": None if model.occupancy is None else model.occupancy.cpu()})


def load_nerf(path, device: str | torch.device | None = None, **stage_functions: Callable | None) -> NerfModel:
    """Load a model written by :func:`save_nerf`; it renders with ``stage_functions`` (``get_rays=...`` etc.,
    see :func:`train_tinynerf`; the references where left out)."""
    state = load_checkpoint(path, ("config", "meta", "state"))
    try:
        cfg = NerfConfig.from_dict(state["config"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint {path} has a malformed config ({exc})") from None
    meta = state["meta"]
    model = NerfModel(cfg, meta["near"], meta["far"], stages=NerfStages.of(**stage_functions))
    if model.is_grid:
        from .field import GridField

        model.field = GridField(cfg.field, torch.tensor(meta["lo"]), torch.tensor(meta["hi"]), tuple(meta["res"]),
                                model.stages.positional_encoding)
    model.load_state_dict(state["state"])
    model.occupancy = state.get("occupancy")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model.to(dev)
    if model.occupancy is not None:
        model.occupancy = model.occupancy.to(dev)
    return model
