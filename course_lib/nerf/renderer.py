"""Rendering stage: a field plus its render settings, and ``render_rays`` = sample -> field -> composite.

For the grid field (``"box"`` sampling) two kinds of samples are skipped before the field is evaluated:

1. samples in empty space -- where the occupancy grid (alpha of the current density > threshold, dilated by
   one voxel, refreshed every few steps) is False, or outside the box: their density is exactly 0;
2. colours of samples that cannot be seen -- the rendering weights ``w_i`` are first computed from the
   densities alone (no gradient), and colours are evaluated only where ``w_i > weight_threshold`` (DVGO's
   "fast colour thresholding"); elsewhere the colour is 0, which changes the pixel by at most
   ``sum of the skipped w_i``.

A sample with zero density and colour is appended at the end of each box segment, so the 1e10 "last delta"
of ``volume_render`` never turns a real sample into an opaque wall.

Every graded stage (``get_rays``, ``sample_stratified``, ``positional_encoding``, ``volume_render``) is the
model's :class:`~course_lib.nerf.stages.NerfStages`: the caller's functions, the references where none is given.

References:
    Max, "Optical Models for Direct Volume Rendering", 1995; Mildenhall et al., "NeRF", ECCV 2020.
    Sun, Sun, Chen, "Direct Voxel Grid Optimization", CVPR 2022 (fast colour thresholding).
    Mueller et al., "Instant Neural Graphics Primitives", SIGGRAPH 2022 (occupancy-grid skipping).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import NerfConfig
from .field import GridField, MLPField
from .grid import lookup
from .sampler import sample_along
from .stages import NerfStages

__all__ = ["NerfModel", "render_image"]


class NerfModel(nn.Module):
    """A radiance field with everything needed to render it: the config, ``near`` / ``far``, the stage functions
    (``stages``; None: the references) and (grid only) the current occupancy grid."""

    def __init__(self, config: NerfConfig, near: float = 2.0, far: float = 6.0, bound: float = 1.5,
                 stages: NerfStages | None = None):
        super().__init__()
        self.config = config.validate()
        self.near, self.far = float(near), float(far)
        self.stages = stages if stages is not None else NerfStages()
        f = config.field
        if f.kind == "mlp":
            self.field: nn.Module = MLPField(f, self.stages.positional_encoding)
        else:
            b = torch.full((3,), float(f.scene_bound or bound))
            self.field = GridField(f, -b, b, (f.coarse_res,) * 3, self.stages.positional_encoding)
        self.occupancy: torch.Tensor | None = None                 # [X, Y, Z] bool, grid only
        self.stats = {"kept": 1.0, "colored": 1.0}

    @property
    def is_grid(self) -> bool:
        return isinstance(self.field, GridField)

    def refresh_occupancy(self) -> None:
        if self.is_grid:
            self.occupancy = self.field.occupancy(self.config.field.occupancy_threshold)

    def render_rays(self, rays_o: torch.Tensor, rays_d: torch.Tensor, perturb: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """``rays_o, rays_d [R, 3] -> rgb [R, 3]`` (differentiable with respect to the field)."""
        cfg, st = self.config, self.stages
        white = cfg.white_background
        if not self.is_grid:
            rs = sample_along(rays_o, rays_d, "stratified", self.near, self.far, cfg.sampler.n_samples, perturb,
                              generator, sample_stratified=st.sample_stratified)
            r, s = rs.t.shape
            sigma, rgb = self.field(rs.points.reshape(-1, 3))                 # [R S], [R S, 3]
            out, _ = st.volume_render(sigma.view(r, s), rgb.view(r, s, 3), rs.t, white)
            return out
        fld: GridField = self.field
        rs = sample_along(rays_o, rays_d, "box", self.near, self.far, 0, perturb, generator,
                          box=(fld.lo, fld.hi), spacing=fld.voxel * cfg.sampler.step_ratio,
                          sample_stratified=st.sample_stratified)
        r, s = rs.t.shape
        pts = rs.points.reshape(-1, 3)                                         # [R S, 3]
        keep = rs.valid.reshape(-1)
        if self.occupancy is not None:
            keep = keep & lookup(self.occupancy, pts, fld.lo, fld.hi)
        ki = keep.nonzero().squeeze(-1)                                        # [K]
        sigma = pts.new_zeros(r * s).index_put((ki,), fld.sigma(pts[ki]))      # [R S], 0 in empty space
        sigma = F.pad(sigma.view(r, s), (0, 1))                                # [R, S + 1]: empty end sample
        t = torch.cat([rs.t, rs.t_end[:, None]], dim=1)                        # [R, S + 1]
        with torch.no_grad():
            _, w = st.volume_render(sigma.detach(), sigma.new_zeros(r, s + 1, 1), t)
        # before the first occupancy grid (the coarse stage) every colour is evaluated: the initial weights
        # (~alpha_init) are too small for the threshold, and skipping them would stall learning
        thr = cfg.field.weight_threshold if self.occupancy is not None else -1.0
        ci = (w[:, :s].reshape(-1) > thr).nonzero().squeeze(-1)                 # [M]
        dirs = F.normalize(rays_d, dim=-1)[:, None, :].expand(r, s, 3).reshape(-1, 3)    # [R S, 3]
        col = pts.new_zeros(r * s, 3).index_put((ci,), fld.rgb(pts[ci], dirs[ci]))      # [R S, 3]
        col = F.pad(col.view(r, s, 3), (0, 0, 0, 1))                           # [R, S + 1, 3]
        out, _ = st.volume_render(sigma, col, t, white)
        self.stats = {"kept": ki.numel() / max(r * s, 1), "colored": ci.numel() / max(r * s, 1)}
        return out


@torch.no_grad()
def render_image(model: NerfModel, pose: torch.Tensor, height: int, width: int, focal: float,
                 chunk: int | None = None) -> torch.Tensor:
    """Render a ``[height, width, 3]`` image from camera-to-world ``pose [4, 4]`` (deterministic samples), with
    the model's stage functions (``model.stages``)."""
    dev = next(model.parameters()).device
    pose = pose.to(device=dev, dtype=torch.float32)
    rays_o, rays_d = model.stages.get_rays(height, width, focal, pose)                 # [H, W, 3] each
    rays_o, rays_d = rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)
    chunk = chunk or model.config.eval_chunk
    was_training = model.training
    model.eval()
    out = torch.cat([model.render_rays(rays_o[i : i + chunk], rays_d[i : i + chunk])
                     for i in range(0, rays_o.shape[0], chunk)])
    model.train(was_training)
    return out.reshape(height, width, 3)
