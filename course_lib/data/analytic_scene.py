"""An analytic radiance field and its ground-truth renderer: the offline default for the NeRF experiments
(a tiny-NeRF-style data set: posed 100x100 views of a small scene on a black background, near/far 2/6).

The scene holds four textured, shaded objects -- a sphere, a rounded box, a torus and a capsule -- placed
around the origin from the seed. Geometry is the union of their signed distance functions (SDFs); density
follows VolSDF, a Laplace CDF of the signed distance, truncated to exactly zero far from every surface::

    sigma(x) = (1 / beta) Psi_beta(-d(x))   if d(x) < band,  else 0           d = min_k d_k, band = 8 beta
    Psi_beta(s) = 1/2 exp(s / beta)  (s <= 0),   1 - 1/2 exp(-s / beta)  (s > 0)

Colour is view-independent: the nearest object's two-tone 3D texture times a Lambert shading term
``0.35 + 0.65 max(0, <n, l>)`` with the SDF's normal n and a fixed light direction l.

Rendering (exact up to quadrature error): rays from ``course_lib.get_rays``; a ray is sphere-traced
(``course_lib.sphere_trace``) on ``d - band`` to where the density starts, integrated with
``course_lib.volume_render`` over a window of 32 samples (spacing 0.56 beta) that reaches 10 beta past
the surface, and traced on to the next window while more than 1e-4 of its light is left (grazing rays).
A ray that never comes within ``band`` of a surface sees no density at all and renders exactly black.

Cameras sit on the upper hemisphere (world z up) at distance 4 from the origin and look at it, with the
lego scene's field of view (camera_angle_x = 0.6911 rad), in the NeRF / OpenGL convention of get_rays.

References:
    Mildenhall et al., "NeRF", ECCV 2020 (tiny_nerf_data: 100x100 lego views, near 2, far 6).
    Yariv et al., "Volume Rendering of Neural Implicit Surfaces" (VolSDF), NeurIPS 2021.
    Hart, "Sphere Tracing", The Visual Computer 1996; Quilez, distance functions of primitives.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..rendering import get_rays, sphere_trace, volume_render
from ..manifest import is_withheld, reference
from .cache import PACKAGED_DIR, cached, from_uint8, to_uint8
from .containers import NerfData
from .textures import hsv_to_rgb

__all__ = ["AnalyticScene", "nerf_scene", "look_at", "sphere_poses", "LEGO_CAMERA_ANGLE_X"]

VERSION = 1
LEGO_CAMERA_ANGLE_X = 0.6911112070083618      # transforms_*.json of the NeRF synthetic lego scene
_WINDOW_SAMPLES, _MAX_WINDOWS = 32, 4
_VIEWS_PER_BATCH = 8
_KINDS = ("sphere", "rounded_box", "torus", "capsule")


def _rot(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: a ``[3]`` axis-angle vector -> ``[3, 3]`` rotation."""
    theta = axis_angle.norm().clamp(min=1e-12)
    k = axis_angle / theta
    kx = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return torch.eye(3) + torch.sin(theta) * kx + (1 - torch.cos(theta)) * kx @ kx


@dataclass
class AnalyticScene:
    """Four objects; row k of every tensor describes object k (kind ``_KINDS[k]``).

    Attributes:
        centers: ``[4, 3]``; rotations: ``[4, 3, 3]`` world-from-local; sizes: ``[4, 3]`` kind-specific
            (sphere: r; box: half-extents; torus: R, r; capsule: half-length, r); colors: ``[4, 2, 3]``
            the two tones; tex_axis: ``[4, 3]`` unit axis of the stripe texture; tex_freq: ``[4]`` cycles
            per unit; beta: the density's length scale; light: ``[3]`` unit direction towards the light.
    """

    centers: torch.Tensor
    rotations: torch.Tensor
    sizes: torch.Tensor
    colors: torch.Tensor
    tex_axis: torch.Tensor
    tex_freq: torch.Tensor
    beta: float = 0.01
    light: torch.Tensor | None = None

    @classmethod
    def from_seed(cls, seed: int = 0, beta: float = 0.01) -> "AnalyticScene":
        """The seed's scene: objects on a ring of radius ~0.6 around the z axis, all within 1.2 of the origin."""
        g = torch.Generator().manual_seed(seed)
        u = lambda *shape: torch.rand(*shape, generator=g)                       # noqa: E731
        ang = torch.arange(4) * (math.pi / 2) + 2 * math.pi * u(1) + 0.3 * (u(4) - 0.5)
        ring = 0.55 + 0.15 * u(4)
        centers = torch.stack([ring * ang.cos(), ring * ang.sin(), 0.5 * (u(4) - 0.5)], -1)
        sizes = torch.stack([
            torch.stack([0.32 + 0.1 * u(1)[0], torch.tensor(0.0), torch.tensor(0.0)]),     # sphere r
            0.2 + 0.12 * u(3),                                                              # box half-extents
            torch.stack([0.3 + 0.06 * u(1)[0], 0.09 + 0.04 * u(1)[0], torch.tensor(0.0)]),  # torus R, r
            torch.stack([0.2 + 0.1 * u(1)[0], 0.12 + 0.05 * u(1)[0], torch.tensor(0.0)]),   # capsule h, r
        ])
        rotations = torch.stack([_rot((u(3) - 0.5) * 2.0) for _ in range(4)])
        hue = (u(1) + torch.arange(4) / 4 + 0.1 * u(4)) % 1.0
        sat = 0.5 + 0.5 * u(4, 2)
        val = torch.stack([0.45 + 0.2 * u(4), 0.8 + 0.2 * u(4)], -1)
        colors = hsv_to_rgb(hue[:, None].expand(4, 2), sat, val)                        # [4, 2, 3]
        tex_axis = F.normalize(torch.randn(4, 3, generator=g), dim=-1)
        tex_freq = 2.0 + 2.0 * u(4)
        return cls(centers, rotations, sizes, colors, tex_axis, tex_freq, beta)

    def __post_init__(self) -> None:
        if self.light is None:
            self.light = F.normalize(torch.tensor([0.4, -0.5, 1.0]), dim=0)

    @property
    def band(self) -> float:
        return 8.0 * self.beta

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere around the origin outside which the density is exactly zero."""
        s = self.sizes
        reach = torch.stack([s[0, 0], s[1].norm() + 0.04, s[2, 0] + s[2, 1], s[3, 0] + s[3, 1]])
        return float((self.centers.norm(dim=-1) + reach).max()) + self.band + 1e-3

    def _local_k(self, p: torch.Tensor, k: int) -> torch.Tensor:
        """``[..., 3]`` world points -> ``[..., 3]`` in object k's frame: ``R_k^T (p - c_k)``."""
        return (p - self.centers[k].to(p)) @ self.rotations[k].to(p)

    def _primitive(self, k: int, q: torch.Tensor) -> torch.Tensor:
        """Exact SDF of object k at local coordinates ``q [..., 3]`` -> ``[...]``."""
        s = self.sizes[k].to(q)
        if k == 0:                                                                # sphere
            return q.norm(dim=-1) - s[0]
        if k == 1:                                                                # box rounded by 0.04
            b = q.abs() - s
            return b.clamp(min=0).norm(dim=-1) + b.amax(-1).clamp(max=0) - 0.04
        if k == 2:                                                                # torus around local z
            return torch.stack([q[..., :2].norm(dim=-1) - s[0], q[..., 2]], -1).norm(dim=-1) - s[1]
        along = q[..., 2].clamp(-s[0], s[0])                                      # capsule along local z
        return torch.stack([q[..., 0], q[..., 1], q[..., 2] - along], -1).norm(dim=-1) - s[1]

    def object_sdfs(self, p: torch.Tensor) -> torch.Tensor:
        """Signed distance to each object: ``[..., 3]`` -> ``[..., 4]`` (exact SDFs of the primitives)."""
        return torch.stack([self._primitive(k, self._local_k(p, k)) for k in range(len(_KINDS))], -1)

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        """Signed distance of the union: ``[..., 3]`` -> ``[...]``."""
        return self.object_sdfs(p).amin(-1)

    def object_id(self, p: torch.Tensor) -> torch.Tensor:
        """Index (0..3) of the nearest object: ``[..., 3]`` -> ``[...]`` int64."""
        return self.object_sdfs(p).argmin(-1)

    def sigma(self, p: torch.Tensor) -> torch.Tensor:
        """VolSDF density, truncated to 0 beyond ``band``: ``[..., 3]`` -> ``[...]``."""
        return self._sigma_of(self.sdf(p))

    def _sigma_of(self, d: torch.Tensor) -> torch.Tensor:
        b = self.beta
        e = torch.exp(-d.abs() / b)
        psi = torch.where(d > 0, 0.5 * e, 1 - 0.5 * e)
        return torch.where(d < self.band, psi / b, torch.zeros_like(d))

    def color(self, p: torch.Tensor) -> torch.Tensor:
        """Shaded colour of the nearest object: ``[..., 3]`` -> ``[..., 3]`` in [0, 1].

        The normal is the nearest object's SDF gradient by central differences on a tetrahedron
        (4 evaluations of one primitive), turned back to world space."""
        flat = p.reshape(-1, 3)                                                      # [..., 3] -> [P, 3]
        k_of = self.object_id(flat)                                                  # [P]
        out = torch.zeros_like(flat)
        h = 1e-3
        tet = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]]).to(p)
        for k in range(len(_KINDS)):
            sel = (k_of == k).nonzero().flatten()
            if sel.numel() == 0:
                continue
            q = self._local_k(flat[sel], k)                                          # [P_k, 3]
            vals = self._primitive(k, q[:, None, :] + h * tet)                       # [P_k, 4]
            normal = F.normalize(vals @ tet, dim=-1) @ self.rotations[k].to(p).T     # world space [P_k, 3]
            phase = 2 * math.pi * self.tex_freq[k] * (q @ self.tex_axis[k].to(p))        # [P_k]
            stripe = 0.5 + 0.5 * torch.tanh(3 * torch.sin(phase))
            c0, c1 = self.colors[k].to(p)
            albedo = c0 + stripe[:, None] * (c1 - c0)
            shade = 0.35 + 0.65 * (normal @ self.light.to(p)).clamp(min=0)
            out[sel] = albedo * shade[:, None]
        return out.clamp(0, 1).reshape(p.shape)                                      # [P, 3] -> [..., 3]

    def render(self, height: int, width: int, focal: float, c2w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground-truth views on black: ``(rgb [..., H, W, 3], alpha [..., H, W])`` for camera-to-world
        matrices ``c2w [..., 4, 4]`` (``alpha`` is the accumulated opacity; ``rgb`` is premultiplied)."""
        poses = c2w.float().reshape(-1, 4, 4)                                            # [..., 4, 4] -> [V, 4, 4]
        rays = [get_rays(height, width, focal, pose) for pose in poses]
        rays_o = torch.stack([r[0] for r in rays])                                       # [V, H, W, 3]
        rays_d = torch.stack([r[1] for r in rays])
        rgb, alpha = self.render_rays(rays_o, rays_d)
        # [V, H, W, 3] / [V, H, W] -> [..., H, W, 3] / [..., H, W]
        return rgb.reshape(*c2w.shape[:-2], height, width, 3), alpha.reshape(*c2w.shape[:-2], height, width)

    def render_rays(self, rays_o: torch.Tensor, rays_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Render rays ``[..., 3]`` (origins, directions of any length) -> ``(rgb [..., 3], alpha [...])``."""
        shape = rays_o.shape[:-1]
        o, d = rays_o.reshape(-1, 3).float(), F.normalize(rays_d.reshape(-1, 3).float(), dim=-1)   # [R, 3]
        n = o.shape[0]
        rgb, trans = torch.zeros(n, 3), torch.ones(n)
        # start at the bounding sphere (rays that miss it see no density at all): |o + t d| = R
        b = (o * d).sum(-1)
        disc = b * b - ((o * o).sum(-1) - self.bounding_radius ** 2)
        t_cur = (-b - disc.clamp(min=0).sqrt()).clamp(min=0)   # metric distance where the next trace starts
        active = (disc > 0).nonzero().flatten()
        length = self.band + 10.0 * self.beta
        offsets = torch.linspace(0, length, _WINDOW_SAMPLES + 1)                         # [S+1]
        shifted = lambda p: self.sdf(p) - self.band                                      # noqa: E731
        for _ in range(_MAX_WINDOWS):
            if active.numel() == 0:
                break
            start = o[active] + t_cur[active, None] * d[active]
            # a ray still marching after 64 steps only grazes the band, where the density is ~e^-8 / beta: dropped
            t_rel, hit = sphere_trace(shifted, start, d[active], near=0.0, far=8.0, max_steps=64, eps=1e-3)
            active, t0 = active[hit], t_cur[active][hit] + t_rel[hit]
            if active.numel() == 0:
                break
            edges = t0[:, None] + offsets                                                # [A, S+1]
            mids = 0.5 * (edges[:, 1:] + edges[:, :-1])                                  # [A, S]
            pts = o[active, None] + mids[..., None] * d[active, None]                    # [A, S, 3]
            zero = torch.zeros(active.numel(), 1)
            sig = torch.cat([self._sigma_of(self.sdf(pts)), zero], -1)                   # [A, S+1]; the last
            col = torch.zeros(active.numel(), _WINDOW_SAMPLES + 1, 3)                    # sample is a zero pad
            _, w = volume_render(sig, col, edges)                                        # so no 1e10 delta counts
            # colour only where it is seen: the same sum as volume_render's, without the invisible samples
            seen = w[:, :-1] > 1e-5                                                      # [A, S]
            col[:, :-1][seen] = self.color(pts[seen])
            c = (w.unsqueeze(-1) * col).sum(1)                                           # [A, 3]
            rgb[active] += trans[active, None] * c
            trans[active] = trans[active] * (1 - w.sum(-1)).clamp(min=0)
            t_cur[active] = edges[:, -1]
            active = active[trans[active] > 1e-4]
        return rgb.clamp(0, 1).reshape(*shape, 3), (1 - trans).reshape(shape)           # [R, 3] -> [..., 3]


def look_at(position: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """``[4, 4]`` camera-to-world matrix (NeRF / OpenGL: the camera looks down its -z axis, +y up) for a
    camera at ``position [3]`` looking at ``target`` (default the origin), with world +z as up."""
    target = torch.zeros(3) if target is None else target
    back = F.normalize(position - target, dim=0)                                         # camera +z
    if back[:2].norm() < 1e-6:
        raise ValueError(f"look_at needs a camera not straight above or below its target, got {position.tolist()}")
    right = F.normalize(torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back), dim=0)  # camera +x
    up = torch.linalg.cross(back, right)                                                 # camera +y
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, position
    return c2w


def sphere_poses(n: int, radius: float = 4.0, elevation: tuple[float, float] = (10.0, 75.0),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n, 4, 4]`` cameras at ``radius`` from the origin, looking at it, with azimuth uniform in [0, 360)
    and elevation (degrees above the xy plane) uniform in ``elevation``."""
    az = 2 * math.pi * torch.rand(n, generator=generator)
    el = torch.deg2rad(elevation[0] + (elevation[1] - elevation[0]) * torch.rand(n, generator=generator))
    pos = radius * torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], -1)   # [n, 3]
    return torch.stack([look_at(p) for p in pos])


def _generate(n_views: int, n_holdout: int, size: int, seed: int, beta: float):
    scene = AnalyticScene.from_seed(seed, beta)
    poses = sphere_poses(n_views + n_holdout, generator=torch.Generator().manual_seed(seed + 1))
    focal = 0.5 * size / math.tan(0.5 * LEGO_CAMERA_ANGLE_X)
    views = [scene.render(size, size, focal, chunk) for chunk in poses.split(_VIEWS_PER_BATCH)]
    images = torch.cat([v[0] for v in views])                                            # [N, H, W, 3]
    alphas = torch.cat([v[1] for v in views])                                            # [N, H, W]
    holdout = torch.arange(n_views + n_holdout) >= n_views
    arrays = {"images": to_uint8(images), "poses": poses.float(), "alphas": alphas.float(), "holdout": holdout}
    return arrays, {"focal": focal, "near": 2.0, "far": 6.0}


def _packaged_scenes() -> list[dict]:
    """The scene parameters shipped inside the package (the student edition's; none in the instructor edition)."""
    index = PACKAGED_DIR / "index.json"
    return [entry["params"] for entry in json.loads(index.read_text())] if index.is_file() else []


def nerf_scene(
    n_views: int = 100,
    size: int = 100,
    seed: int = 0,
    n_holdout: int = 6,
    beta: float = 0.01,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> NerfData:
    """Views of the seed's analytic scene (see the module docstring), in the tiny-NeRF format.

    Args:
        n_views: training views.
        size: image side in pixels (focal scales with it: the field of view is the lego scene's).
        seed: picks the scene layout (``AnalyticScene.from_seed(seed)``) and the camera poses.
        n_holdout: extra views, from the same pose distribution, marked ``holdout`` (they come last).
        beta: the density's length scale (sharper surfaces when smaller; at 100 px a pixel is ~0.03 wide).
        cache, cache_dir: see :func:`course_lib.data.glyphs`.

    Returns:
        :class:`NerfData` with ``images [N, size, size, 3]`` float32 in [0, 1] on black (8-bit levels k / 255,
        like the PNG-derived tiny_nerf_data), ``poses [N, 4, 4]``,
        ``focal`` (138.9 at size 100), ``near = 2.0``, ``far = 6.0``, ``holdout [N]`` and ``alphas [N, H, W]``,
        ``N = n_views + n_holdout``.
    """
    for name, value, low in (("n_views", n_views, 1), ("size", size, 8), ("n_holdout", n_holdout, 0),
                             ("seed", seed, None)):
        if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
            raise ValueError(f"{name} must be an int{f' >= {low}' if low is not None else ''}, got {value!r}")
    if not (isinstance(beta, (int, float)) and 1e-4 <= beta <= 0.1):
        raise ValueError(f"beta must be a number in [1e-4, 0.1], got {beta!r}")
    params = {"n_views": n_views, "size": size, "seed": seed, "n_holdout": n_holdout, "beta": float(beta)}

    def build():
        if any(is_withheld(reference(name)) for name in ("get_rays", "sphere_trace", "volume_render")):
            raise ValueError(f"nerf_scene({params}) is not shipped with this edition of course_lib, whose scene renderer "
                             f"needs references it withholds; shipped: {_packaged_scenes() or 'none'}")
        return _generate(n_views, n_holdout, size, seed, float(beta))

    arrays, meta = cached("nerf_scene", VERSION, params, build, cache, cache_dir)
    return NerfData(images=from_uint8(arrays["images"]), poses=arrays["poses"], focal=float(meta["focal"]),
                    near=float(meta["near"]), far=float(meta["far"]), holdout=arrays["holdout"].bool(),
                    alphas=arrays["alphas"])
