"""Pixel-aligned features: a 3-D point looks itself up in every view; on the surface the views agree.

    python -m course_lib.experiments.priors_pixel_aligned [--sources K]

pixelNeRF conditions a radiance field on input images: a query point ``x`` is projected into each input view
(``project_points``) and the view's feature map is read at that pixel (``bilinear_sample_2d``); the network
sees these pixel-aligned features of every view. Why is that a good input? Here the "features" are the colours
themselves, of a reference view of the synthetic scene and its ``n_sources`` nearest training views (no
network, no training), and three measurements show the signal a network can learn from:

1. **photo-consistency along a ray**: for every pixel of the reference view whose ray hits a surface (true
   depth by ``sphere_trace`` on the analytic SDF), the point at the true depth plus an offset ``delta`` is looked
   up in all views, and the variance of its colours across the views is averaged over the pixels: it is
   smallest at ``delta = 0``, on the surface, where every view sees the same point; off the surface the views
   see different things;
2. **depth from photo-consistency** (a plane sweep): the depth of least variance along each ray, against the
   true depth (median absolute error), and against the best constant depth as a baseline;
3. **lifting**: the reference image back-projected into a 3-D grid (each voxel takes the colour of the pixel it
   projects to) is constant along every camera ray -- one view says nothing about depth -- while the variance
   over all views is low near the surfaces: of the voxels inside every view's silhouette, the photo-consistent
   ones lie near a surface far more often than the others.

The command line prints, last, ``photo_var_surface=... photo_var_off=... sweep_depth_err=...
const_depth_err=...``.

References:
    Yu, Ye, Tancik, Kanazawa, "pixelNeRF: Neural Radiance Fields from One or Few Images", CVPR 2021 (eq. 1-2).
    Collins, "A Space-Sweep Approach to True Multi-Image Matching", CVPR 1996; Seitz and Dyer, "Photorealistic
    Scene Reconstruction by Voxel Coloring", CVPR 1997 (photo-consistency). Kutulakos and Seitz, "A Theory of
    Shape by Space Carving", IJCV 2000. Saito et al., "PIFu", ICCV 2019 (pixel-aligned implicit functions).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..guards import require_finite
from ..manifest import resolve
from ..utils import smoke_mode
from . import format_metrics, require_implemented
from .priors_fewviews import true_depth

__all__ = ["PixelAlignedExperiment", "nearest_views", "look_up", "view_variance", "lift", "run", "main"]


@dataclass(frozen=True)
class PixelAlignedExperiment:
    """Default settings: a few seconds on one CPU core (no training)."""

    size: int = 64                  # nerf_scene(size=size)
    scene_seed: int = 0
    reference: int = 0              # reference view (index among the training views)
    n_sources: int = 8              # nearest training views that also look
    max_offset: float = 0.6         # photo-consistency curve: offsets delta in [-max_offset, max_offset] ...
    n_offsets: int = 25             # ... (odd: delta = 0 is one of them)
    off_surface: float = 0.3        # "off the surface": delta = +-off_surface
    n_depths: int = 256             # plane sweep: candidate depths in [near, far]
    grid_res: int = 48              # lifting: voxels per side of the cube [-extent, extent]^3
    extent: float = 1.3
    consistent: float = 0.001       # a voxel is photo-consistent when its colour variance is below this
    near_surface: float = 0.1       # ... and "near a surface" when |sdf| is below this

    @staticmethod
    def smoke() -> "PixelAlignedExperiment":
        return PixelAlignedExperiment(size=16, n_sources=2, n_offsets=5, n_depths=8, grid_res=8)


def nearest_views(poses: torch.Tensor, reference: int, k: int) -> torch.Tensor:
    """Indices of the ``k`` views whose camera centres are nearest to view ``reference``'s (itself excluded)."""
    n = poses.shape[0]
    if not 0 <= reference < n or not 1 <= k < n:
        raise ValueError(f"need 0 <= reference < {n} and 1 <= k < {n} views, got reference={reference}, k={k}")
    dist = (poses[:, :3, 3] - poses[reference, :3, 3]).norm(dim=-1)           # [N]
    dist[reference] = float("inf")
    return dist.argsort()[:k]


def look_up(points: torch.Tensor, images: torch.Tensor, poses: torch.Tensor, focal: float,
            project_points: Callable, bilinear_sample_2d: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel-aligned features of ``points [P, 3]`` in every view: ``(feats [V, P, C], valid [V, P] bool)``.

    Math::

        (u, v), depth = project_points(x, c2w_k, focal, H, W)           pixel i sits at u = i (pixel corners)
        feats[k] = bilinear_sample_2d(image_k, (2u / (W-1) - 1, 2v / (H-1) - 1))   vertex-aligned look-up
        valid[k] = depth > 0 and (u, v) inside [-1/2, W - 1/2] x [-1/2, H - 1/2]   (the border pixels' extent;
                                                                                   the look-up clamps there)

    ``images`` are ``[V, H, W, C]``, ``poses`` ``[V, 4, 4]``.
    """
    v, h, w, _ = images.shape
    grids = images.permute(0, 3, 1, 2)                                         # [V, H, W, C] -> [V, C, H, W]
    coords, valid = [], []
    for pose in poses:
        uv, depth = project_points(points, pose.to(points), focal, h, w)      # [P, 2], [P]
        ok = (depth > 1e-3) & (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
        xy = torch.stack([2 * uv[:, 0] / max(w - 1, 1) - 1, 2 * uv[:, 1] / max(h - 1, 1) - 1], -1)   # [P, 2]
        coords.append(torch.where(ok[:, None], xy, torch.zeros_like(xy)))      # no nan / inf into the look-up
        valid.append(ok)
    feats = bilinear_sample_2d(grids.to(points), torch.stack(coords))          # [V, P, C]
    return feats, torch.stack(valid)


def view_variance(feats: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Variance over the valid views of ``feats [V, P, C]`` (averaged over C): ``[P]``, nan where < 2 views."""
    wgt = valid.to(feats.dtype)[..., None]                                     # [V, P, 1]
    n = wgt.sum(0)                                                             # [P, 1]
    mean = (feats * wgt).sum(0) / n.clamp(min=1)                               # [P, C]
    var = (((feats - mean) ** 2) * wgt).sum(0) / n.clamp(min=1)                # [P, C]
    return torch.where(n[:, 0] >= 2, var.mean(-1), torch.full_like(n[:, 0], float("nan")))


def lift(image: torch.Tensor, pose: torch.Tensor, focal: float, points: torch.Tensor, project_points: Callable,
         bilinear_sample_2d: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-project one ``image [H, W, C]`` onto ``points [P, 3]``: ``(colour [P, C], valid [P])``."""
    feats, valid = look_up(points, image[None], pose[None], focal, project_points, bilinear_sample_2d)
    return feats[0], valid[0]


def run(
    project_points: Callable | None = None,
    bilinear_sample_2d: Callable | None = None,
    get_rays: Callable | None = None,
    sphere_trace: Callable | None = None,
    exp: PixelAlignedExperiment | None = None,
    *,
    progress: bool = False,
) -> dict:
    """Photo-consistency along the reference rays, a plane sweep, and lifting (see the module docstring).

    Returns:
        ``metrics`` (``photo_var_surface``, ``photo_var_off``, ``sweep_depth_err``, ``const_depth_err``,
        ``hull_near_surface`` -- fraction of the voxels inside every silhouette that lie near a surface -- and
        ``consistent_near_surface`` -- the same among the photo-consistent ones), ``offsets`` / ``curve`` (mean
        variance per offset), ``sweep`` (``depth``, ``true``, ``hit`` maps), ``lifting`` (``axis``, ``colour``,
        ``valid``, ``variance``, ``sdf``, ``hull`` on the grid), the view indices, ``images`` / ``alphas`` /
        ``poses`` / ``focal`` of the views (reference first) and ``exp``.
    """
    from ..data import AnalyticScene, nerf_scene

    project_points = resolve("project_points", project_points)
    bilinear_sample_2d = resolve("bilinear_sample_2d", bilinear_sample_2d)
    get_rays = resolve("get_rays", get_rays)
    sphere_trace = resolve("sphere_trace", sphere_trace)
    exp = exp or (PixelAlignedExperiment.smoke() if smoke_mode() else PixelAlignedExperiment())
    require_implemented("project_points", project_points, torch.zeros(1, 3), torch.eye(4), 1.0, 2, 2)
    require_implemented("bilinear_sample_2d", bilinear_sample_2d, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2))
    require_implemented("get_rays", get_rays, 2, 2, 1.0, torch.eye(4))
    data = nerf_scene(size=exp.size, seed=exp.scene_seed).train_split()
    scene = AnalyticScene.from_seed(exp.scene_seed)
    views = torch.cat([torch.tensor([exp.reference]), nearest_views(data.poses, exp.reference, exp.n_sources)])
    images, poses = data.images[views], data.poses[views]                      # [V, H, W, 3], [V, 4, 4]
    h, w, focal = data.height, data.width, data.focal
    rgba = torch.cat([images, data.alphas[views][..., None]], -1)              # [V, H, W, 4]

    # 1. photo-consistency along the reference rays that hit a surface
    depth, hit = true_depth(scene.sdf, poses[:1], h, w, focal, data.near, data.far, get_rays, sphere_trace)
    depth, hit = depth[0], hit[0]                                              # [H, W]
    o, d = get_rays(h, w, focal, poses[0])                                     # [H, W, 3] each
    o_hit, d_hit, t_hit = o[hit], d[hit], depth[hit]                           # [R, 3], [R, 3], [R]
    offsets = torch.linspace(-exp.max_offset, exp.max_offset, exp.n_offsets)
    curve = []
    for delta in offsets:
        feats, valid = look_up(o_hit + (t_hit + delta)[:, None] * d_hit, images, poses, focal, project_points,
                               bilinear_sample_2d)
        curve.append(view_variance(feats, valid).nanmean())
    curve = require_finite("photo-consistency curve", torch.stack(curve))
    at = {k: view_variance(*look_up(o_hit + (t_hit + k)[:, None] * d_hit, images, poses, focal, project_points,
                                    bilinear_sample_2d)).nanmean() for k in (0.0, -exp.off_surface, exp.off_surface)}

    # 2. plane sweep: the depth of least variance along each ray
    cand = torch.linspace(data.near, data.far, exp.n_depths)                   # [D]
    pts = o_hit[:, None] + cand[None, :, None] * d_hit[:, None]                # [R, D, 3]
    feats, valid = look_up(pts.reshape(-1, 3), images, poses, focal, project_points, bilinear_sample_2d)
    var = view_variance(feats, valid).reshape(-1, exp.n_depths).nan_to_num(float("inf"))   # [R, D]
    swept = cand[var.argmin(-1)]                                               # [R]
    sweep_map = torch.zeros(h, w)
    sweep_map[hit] = swept

    # 3. lifting: the reference image on a voxel grid, and the variance over all views
    axis = torch.linspace(-exp.extent, exp.extent, exp.grid_res)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)   # [G^3, 3] (x, y, z)
    lifted, lifted_ok = lift(images[0], poses[0], focal, grid, project_points, bilinear_sample_2d)
    feats, valid = look_up(grid, rgba, poses, focal, project_points, bilinear_sample_2d)     # [V, G^3, 4]
    hull = valid.all(0) & (feats[..., 3] > 0.5).all(0)                         # inside every silhouette
    grid_var = view_variance(feats[..., :3], valid)                            # [G^3]
    sdf = scene.sdf(grid)
    near_surface = sdf.abs() < exp.near_surface
    consistent = hull & (grid_var < exp.consistent)
    metrics = {
        "photo_var_surface": float(at[0.0]),
        "photo_var_off": float(0.5 * (at[-exp.off_surface] + at[exp.off_surface])),
        "sweep_depth_err": float((swept - t_hit).abs().median()),
        "const_depth_err": float((t_hit - t_hit.median()).abs().median()),
        "hull_near_surface": float(near_surface[hull].float().mean()) if bool(hull.any()) else float("nan"),
        "consistent_near_surface": (float(near_surface[consistent].float().mean()) if bool(consistent.any())
                                    else float("nan")),
    }
    r = exp.grid_res
    lifting = {"axis": axis, "colour": lifted.reshape(r, r, r, 3), "valid": lifted_ok.reshape(r, r, r),
               "variance": grid_var.reshape(r, r, r), "sdf": sdf.reshape(r, r, r), "hull": hull.reshape(r, r, r)}
    return {"metrics": metrics, "offsets": offsets, "curve": curve,
            "sweep": {"depth": sweep_map, "true": depth, "hit": hit}, "lifting": lifting, "views": views,
            "images": images, "alphas": rgba[..., 3], "poses": poses, "focal": focal, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.priors_pixel_aligned",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, help="nearest training views besides the reference (default 8)")
    args = parser.parse_args(argv)
    exp = PixelAlignedExperiment.smoke() if smoke_mode() else PixelAlignedExperiment()
    if args.sources is not None:
        exp = replace(exp, n_sources=args.sources)
    try:
        out = run(exp=exp)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = out["metrics"]
    print(f"reference view {exp.reference}, source views {out['views'][1:].tolist()}; voxels inside every "
          f"silhouette near a surface: {m['hull_near_surface']:.3f}, of the photo-consistent ones: "
          f"{m['consistent_near_surface']:.3f}")
    print(format_metrics({k: m[k] for k in ("photo_var_surface", "photo_var_off", "sweep_depth_err",
                                            "const_depth_err")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
