"""Typed configuration of the TinyNeRF trainer and its two presets.

* ``"plain"`` -- the original tiny NeRF (the NeRF authors' ``tiny_nerf`` notebook): an 8 x 256 ReLU MLP with
  the encoded input concatenated again to the fifth layer's output, positional encoding with L = 6 of (x, y, z) only (no
  view directions), 64 stratified samples in [near, far], Adam at 5e-4. The notebook's encoding is
  ``sin(2^k x)`` without the pi of the lecture's convention, so the coordinates are scaled by 1 / pi before
  ``course_lib.positional_encoding``. The notebook trains on one 100 x 100 image (10,000 rays) per step;
  the activations of 640,000 samples through eight 256-wide layers need ~10 GB for backpropagation, so
  here every step draws 1,024 random rays from all training images instead.
* ``"fast"`` -- our best per CPU second: an explicit dense voxel grid (density + RGB) with trilinear
  interpolation, trained coarse-to-fine (40^3, then 64^3, 96^3 and 128^3 vertices over the scene box),
  samples only inside the box (one per voxel length), empty-space skipping with an occupancy grid, colours
  evaluated only where the rendering weight exceeds 1e-4, 2,048 random rays per step, Adam at 0.1. This
  trades memory (8.4M grid values, 128^3 vertices x 4, instead of ~0.48M MLP weights) for time.

  Tried and left out (lego, 100 x 100, one CPU core): view-dependent colour (12 grid features + a 64-wide
  MLP on the view direction) cost ~6x more per step and reached 17.9 dB after 30 s where RGB reached 22.9;
  shrinking the box to the coarse grid's occupied voxels (DVGO) fails on black backgrounds, where dark
  floaters with alpha > 0.3 remain near the box faces after the coarse stage.

References:
    Mildenhall et al., "NeRF", ECCV 2020, and the authors' ``tiny_nerf.ipynb`` (github.com/bmild/nerf).
    Sun, Sun, Chen, "Direct Voxel Grid Optimization" (DVGO), CVPR 2022 -- dense grids, coarse-to-fine,
    post-activated density, fast colour thresholding.
    Fridovich-Keil, Yu et al., "Plenoxels: Radiance Fields without Neural Networks", CVPR 2022.
    Mueller, Evans, Schied, Keller, "Instant Neural Graphics Primitives" (Instant-NGP), SIGGRAPH 2022 --
    occupancy grids for empty-space skipping.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

__all__ = ["SamplerConfig", "FieldConfig", "OptimConfig", "NerfConfig", "preset", "PRESETS"]


@dataclass
class SamplerConfig:
    """Which rays a step trains on and where along them the field is evaluated."""

    rays_per_step: int = 2048
    n_samples: int = 64                 # "stratified": samples per ray in [near, far]
    mode: str = "box"                   # "stratified" (in [near, far]) | "box" (inside the grid's box)
    step_ratio: float = 1.0             # "box": sample spacing in voxels of the current grid
    perturb: bool = True                # jitter samples inside their bins while training


@dataclass
class FieldConfig:
    """The radiance field: an MLP with positional encoding, or a dense voxel grid."""

    kind: str = "grid"                  # "mlp" | "grid"
    # mlp
    depth: int = 8
    width: int = 256
    skip: int = 4                       # the encoded input is concatenated to layer `skip`'s output (0-based)
    num_freqs: int = 6
    pe_scale: float = 1.0               # coordinates are multiplied by this before the encoding
    # grid
    color_channels: int = 3             # 3: RGB per voxel (view-independent); more: features for `color_mlp`
    color_mlp: int = 0                  # hidden width of a small colour MLP on (features, view dir); 0: none
    view_freqs: int = 2                 # positional encoding of the view direction for the colour MLP
    scene_bound: float | None = None    # the initial box is [-b, b]^3; None: from the cameras (see data.py)
    coarse_res: int = 40
    coarse_steps: int = 300             # steps on the coarse grid over the whole box
    schedule: tuple[tuple[int, int], ...] = ((0, 64), (500, 96), (1500, 128))   # (steps after coarse, res)
    alpha_init: float = 1e-4            # initial opacity of one voxel step (sets the density's shift)
    occupancy_threshold: float = 1e-3   # a voxel is occupied when its alpha exceeds this
    occupancy_every: int = 50           # refresh the occupancy grid every that many steps
    weight_threshold: float = 1e-4      # colours are evaluated only where the rendering weight exceeds this


@dataclass
class OptimConfig:
    lr: float = 0.1
    lr_mlp: float = 1e-3                # the grid's colour MLP
    betas: tuple[float, float] = (0.9, 0.99)
    lr_decay: float = 0.1               # the learning rate decays by this factor over `decay_steps`
    decay_steps: int = 20000


@dataclass
class NerfConfig:
    """A complete trainer configuration (see :func:`preset`)."""

    name: str = "custom"
    sampler: SamplerConfig = dataclasses.field(default_factory=SamplerConfig)
    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    white_background: bool = False
    seed: int = 0
    eval_chunk: int = 8192              # rays per forward pass when rendering whole images

    def validate(self) -> "NerfConfig":
        s, f, o = self.sampler, self.field, self.optim
        if s.mode not in ("stratified", "box"):
            raise ValueError(f"sampler.mode must be 'stratified' or 'box', got {s.mode!r}")
        if f.kind not in ("mlp", "grid"):
            raise ValueError(f"field.kind must be 'mlp' or 'grid', got {f.kind!r}")
        if f.kind == "mlp" and s.mode != "stratified":
            raise ValueError("field.kind='mlp' needs sampler.mode='stratified' (the box belongs to the grid)")
        for name, value in (("sampler.rays_per_step", s.rays_per_step), ("sampler.n_samples", s.n_samples),
                            ("field.depth", f.depth), ("field.width", f.width), ("field.coarse_res", f.coarse_res),
                            ("field.color_channels", f.color_channels), ("field.occupancy_every", f.occupancy_every),
                            ("eval_chunk", self.eval_chunk)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if f.coarse_res < 2 or any(r < 2 for _, r in f.schedule):
            raise ValueError(f"grid resolutions must be >= 2, got coarse_res={f.coarse_res}, schedule={f.schedule}")
        if list(f.schedule) != sorted(f.schedule):
            raise ValueError(f"field.schedule must be sorted by step, got {f.schedule}")
        if f.color_mlp == 0 and f.color_channels != 3:
            raise ValueError(f"without a colour MLP the grid stores RGB: color_channels must be 3, "
                             f"got {f.color_channels}")
        if not (0 < f.alpha_init < 1 and 0 <= f.occupancy_threshold < 1 and 0 <= f.weight_threshold < 1):
            raise ValueError("alpha_init must be in (0, 1), occupancy_threshold and weight_threshold in [0, 1)")
        if f.scene_bound is not None and not f.scene_bound > 0:
            raise ValueError(f"field.scene_bound must be > 0 or None, got {f.scene_bound}")
        if not (s.step_ratio > 0 and o.lr > 0 and o.lr_mlp > 0 and 0 < o.lr_decay <= 1 and o.decay_steps >= 1):
            raise ValueError("step_ratio, lr, lr_mlp must be > 0, lr_decay in (0, 1], decay_steps >= 1")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NerfConfig":
        f = dict(d["field"])
        f["schedule"] = tuple(tuple(x) for x in f["schedule"])
        o = dict(d["optim"])
        o["betas"] = tuple(o["betas"])
        return cls(name=d["name"], sampler=SamplerConfig(**d["sampler"]), field=FieldConfig(**f),
                   optim=OptimConfig(**o), white_background=d["white_background"], seed=d["seed"],
                   eval_chunk=d["eval_chunk"]).validate()


def _plain() -> NerfConfig:
    return NerfConfig(
        name="plain",
        sampler=SamplerConfig(rays_per_step=1024, n_samples=64, mode="stratified"),
        field=FieldConfig(kind="mlp", depth=8, width=256, skip=4, num_freqs=6, pe_scale=1 / math.pi),
        optim=OptimConfig(lr=5e-4, betas=(0.9, 0.999), lr_decay=1.0),
        eval_chunk=2048,
    )


def _fast() -> NerfConfig:
    return NerfConfig(name="fast", sampler=SamplerConfig(rays_per_step=2048, mode="box"),
                      field=FieldConfig(kind="grid"))


PRESETS = {"plain": _plain, "fast": _fast}


def preset(name: str, **overrides) -> NerfConfig:
    """A fresh copy of preset ``name`` ("plain" or "fast"); keyword overrides replace top-level fields."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[name]()
    return dataclasses.replace(cfg, **overrides).validate() if overrides else cfg.validate()
