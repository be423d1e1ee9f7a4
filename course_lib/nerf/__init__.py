"""A fast TinyNeRF for CPUs (and GPUs): sampler, field and renderer stages, a wall-clock-budget trainer with
held-out PSNR, and two presets -- "plain" (the original tiny NeRF MLP) and "fast" (a dense voxel grid with
empty-space skipping). See :mod:`course_lib.nerf.config` for what each preset does and why.

    from course_lib.nerf import train_tinynerf, render_image
    model, history = train_tinynerf("lego.npz", "fast", minutes=10, holdout=10)
    image = render_image(model, pose, 100, 100, focal)          # [100, 100, 3]

The graded stages it runs are passed in by keyword (``train_tinynerf(..., get_rays=get_rays,
sample_stratified=sample_stratified, positional_encoding=positional_encoding, volume_render=volume_render)``,
the notebook's way); left out, they are the course_lib references (:class:`NerfStages`).

Benchmark both presets side by side: ``python -m course_lib.nerf.bench --data FILE.npz --minutes 10``.
"""
from .config import FieldConfig, NerfConfig, OptimConfig, SamplerConfig, preset
from .data import Views, load_views, split_views
from .field import GridField, MLPField
from .grid import trilinear
from .renderer import NerfModel, render_image
from .stages import NerfStages
from .trainer import History, evaluate_psnr, load_nerf, save_nerf, train_tinynerf

__all__ = [
    "train_tinynerf",
    "render_image",
    "preset",
    "NerfConfig",
    "SamplerConfig",
    "FieldConfig",
    "OptimConfig",
    "NerfModel",
    "NerfStages",
    "MLPField",
    "GridField",
    "trilinear",
    "History",
    "evaluate_psnr",
    "save_nerf",
    "load_nerf",
    "Views",
    "load_views",
    "split_views",
]
