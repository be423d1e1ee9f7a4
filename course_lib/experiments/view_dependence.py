"""View dependence: NeRF's 5-D input (position and viewing direction) on a scene with highlights.

    python -m course_lib.experiments.view_dependence [--data FILE.npz] [--holdout K]

The original NeRF reads a 5-D input: the point x (through the encoding with L = 10) decides the density and a
feature vector; only then the viewing direction d (encoded with L = 4) joins, in one more layer that outputs
the colour. Density cannot depend on the direction -- geometry is the same from every side -- while colour
can, which is what specular reflections need (Mildenhall et al., 2020, section 3 and figure 3).

The scene: the analytic scene of the notebook (:func:`course_lib.data.nerf_scene`, the same views as
section 5) plus a white Blinn-Phong highlight on every object,

    c(x, d) = c_diffuse(x) + k_s max(0, <n(x), h>)^p,      h = normalise(l - d),

with the surface normal n, the light direction l and the viewing direction d (from the camera), added where
the camera ray hits a surface (found with the caller's ``sphere_trace`` on the scene's SDF). The same TinyNeRF
as section 5 (the caller's five stages) is trained twice, the colour head fed ``[feature, gamma(d)]`` or only
``[feature]``; everything else is equal. The experiment prints the held-out PSNR of both and their difference,
``view_gain_db``. On the lego views (``--data``) it compares the same two networks on the NeRF authors' renders
of a mostly matte model.

References:
    Mildenhall et al., "NeRF", ECCV 2020 (section 3: the 5-D input; the ablation "No View Dependence").
    Blinn, "Models of Light Reflection for Computer Synthesized Pictures", SIGGRAPH 1977.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..manifest import resolve
from ..models import count_parameters
from ..utils import pick_device, smoke_mode
from . import format_metrics
from . import nerf as tinynerf

__all__ = ["ViewExperiment", "ViewField", "highlights", "specular_scene", "run", "main"]


@dataclass(frozen=True)
class ViewExperiment:
    """Default settings: two trainings of section 5's TinyNeRF (about 3 minutes on one CPU core); ``smoke()``
    seconds."""

    nerf: tinynerf.NerfExperiment = tinynerf.NerfExperiment()
    dir_freqs: int = 4              # L of the encoding of the viewing direction (NeRF's)
    head_width: int = 32            # hidden units of the colour head
    specular: float = 0.8           # k_s, the highlight's strength
    shininess: float = 20.0         # p, the highlight's sharpness

    @staticmethod
    def smoke() -> "ViewExperiment":
        return ViewExperiment(nerf=tinynerf.NerfExperiment.smoke(), dir_freqs=2)


class ViewField(nn.Module):
    """``forward(points [P, 3], dirs [P, 3] or None) -> (sigma [P], rgb [P, 3])``, NeRF's layout at small scale::

        h = MLP(encode(x)) [P, W];  sigma = softplus(Linear(h) - 1)           the density sees x only
        rgb = sigmoid(Linear(ReLU(Linear([h, encode_dir(d)]))))               [h] alone without directions
    """

    def __init__(self, encode: Callable, in_dim: int, encode_dir: Callable | None, dir_dim: int, width: int,
                 depth: int, head_width: int):
        super().__init__()
        self.encode, self.encode_dir = encode, encode_dir
        self.uses_directions = encode_dir is not None                # read by experiments.nerf.query_field
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.density = nn.Linear(width, 1)
        self.color = nn.Sequential(nn.Linear(width + (dir_dim if self.uses_directions else 0), head_width),
                                   nn.ReLU(), nn.Linear(head_width, 3))

    def forward(self, points: torch.Tensor, dirs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(self.encode(points))                                      # [P, W]
        sigma = F.softplus(self.density(h)[:, 0] - 1.0)                          # [P]
        if self.uses_directions:
            h = torch.cat([h, self.encode_dir(dirs)], dim=-1)                    # [P, W + dir_dim]
        return sigma, torch.sigmoid(self.color(h))


def make_view_field(exp: ViewExperiment, stages: tinynerf.Stages, use_directions: bool) -> ViewField:
    """The field of section 5 (encoded, scaled points) with a colour head, with or without gamma(d)."""
    e, L, Ld = exp.nerf, exp.nerf.num_freqs, exp.dir_freqs
    encode_dir = (lambda d: stages.positional_encoding(d, Ld)) if use_directions else None
    return ViewField(lambda p: stages.positional_encoding(p * e.coord_scale, L), 3 * (1 + 2 * L), encode_dir,
                     3 * (1 + 2 * Ld), e.width, e.depth, exp.head_width)


@torch.no_grad()
def highlights(scene, rays_o: torch.Tensor, rays_d: torch.Tensor, sphere_trace: Callable, specular: float,
               shininess: float) -> torch.Tensor:
    """Blinn-Phong highlight ``k_s max(0, <n, h>)^p`` (``[R]``) where rays ``[R, 3]`` first hit the scene's
    surface (0 for misses), with ``h = normalise(l - d)``, ``d`` the unit ray direction."""
    d = F.normalize(rays_d, dim=-1)                                              # [R, 3]
    t, hit = sphere_trace(scene.sdf, rays_o, d, 0.0, 10.0, 128, 1e-4)            # [R], [R]
    out = torch.zeros_like(t)
    if bool(hit.any()):
        with torch.enable_grad():
            p = (rays_o + t[:, None] * d)[hit].requires_grad_(True)              # [K, 3]
            normal = F.normalize(torch.autograd.grad(scene.sdf(p).sum(), p)[0], dim=-1)   # grad of the SDF
        half = F.normalize(scene.light.to(d) - d[hit], dim=-1)                   # [K, 3]
        out[hit] = specular * (normal * half).sum(-1).clamp(min=0) ** shininess
    return out


def specular_scene(exp: ViewExperiment, get_rays: Callable, sphere_trace: Callable):
    """The notebook's ``nerf_scene(size)`` views with the highlights added (``[N, H, W, 3]`` in [0, 1])."""
    from ..data import AnalyticScene, nerf_scene

    data = nerf_scene(size=exp.nerf.size)
    scene = AnalyticScene.from_seed(0)                                           # nerf_scene(seed=0) renders it
    n, h, w, _ = data.images.shape
    images = data.images.clone()
    for k in range(n):
        o, d = get_rays(h, w, data.focal, data.poses[k])                         # [H, W, 3] each
        spec = highlights(scene, o.reshape(-1, 3), d.reshape(-1, 3), sphere_trace, exp.specular, exp.shininess)
        images[k] = (images[k] + spec.reshape(h, w, 1)).clamp(0, 1)            # white, on the visible surface
    return replace(data, images=images)


def run(
    get_rays: Callable | None = None,
    sample_stratified: Callable | None = None,
    positional_encoding: Callable | None = None,
    volume_render: Callable | None = None,
    sample_pdf: Callable | None = None,
    sphere_trace: Callable | None = None,
    exp: ViewExperiment | None = None,
    *,
    data=None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train the TinyNeRF with and without the viewing direction on the specular scene (or ``data``, a NerfData
    with a ``holdout`` split) and render the held-out views.

    Returns:
        ``metrics`` (``heldout_psnr_view_db``, ``heldout_psnr_noview_db``, ``view_gain_db``, ``floats_view``,
        ``floats_noview``), the two ``fields``, their training ``history``, the ``data``, ``stages`` and ``exp``.
    """
    exp = exp or (ViewExperiment.smoke() if smoke_mode() else ViewExperiment())
    device = device or pick_device()
    stages = tinynerf.Stages(get_rays, sample_stratified, positional_encoding, volume_render, sample_pdf)
    stages.check_implemented()
    if data is None:
        data = specular_scene(exp, stages.get_rays, resolve("sphere_trace", sphere_trace))
    train, test = data.train_split(), data.holdout_split()
    rays = tuple(x.to(device) for x in tinynerf.training_rays(train.images, train.poses, train.focal, stages))
    fields, history = {}, {}
    for key, use_dirs in (("view", True), ("noview", False)):
        torch.manual_seed(exp.nerf.seed)
        fields[key] = make_view_field(exp, stages, use_dirs).to(device)
        history[key] = tinynerf.train_field(fields[key], rays, data.near, data.far, exp.nerf, stages, progress,
                                            "TinyNeRF, " + ("x and d" if use_dirs else "x only"))
        fields[key].eval()
    args = (test.images, test.poses, data.focal, data.near, data.far, exp.nerf.n_samples, stages)
    metrics = {f"heldout_psnr_{k}_db": tinynerf.heldout_psnr(fields[k], *args, chunk=exp.nerf.eval_chunk)
               for k in ("view", "noview")}
    metrics["view_gain_db"] = metrics["heldout_psnr_view_db"] - metrics["heldout_psnr_noview_db"]
    for k in ("view", "noview"):
        metrics[f"floats_{k}"] = count_parameters(fields[k])
    return {"metrics": metrics, "fields": fields, "history": history, "data": data, "stages": stages, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.view_dependence",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="FILE.npz", help="tiny-NeRF .npz (images, poses, focal); default: the "
                        "synthetic scene with highlights")
    parser.add_argument("--holdout", type=int, default=6, help="with --data: hold out the last K views (default 6)")
    args = parser.parse_args(argv)
    exp = ViewExperiment.smoke() if smoke_mode() else ViewExperiment()
    data = None
    if args.data is not None:
        try:
            data = tinynerf._load(args.data, args.holdout, exp.nerf.size)
        except ValueError as exc:                                                # DatasetError is a ValueError
            parser.error(str(exc))
    m = run(exp=exp, data=data, progress=sys.stderr.isatty())["metrics"]
    print(f"held-out PSNR: with the viewing direction {m['heldout_psnr_view_db']:.2f} dB, without "
          f"{m['heldout_psnr_noview_db']:.2f} dB")
    print(format_metrics(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
