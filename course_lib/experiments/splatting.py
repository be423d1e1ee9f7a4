"""Gaussian splatting against a coordinate MLP: fit one image with 128, 512 and 2,048 Gaussians.

    python -m course_lib.experiments.splatting [--data FILE.npz] [--steps N]

3-D Gaussian splatting (Kerbl et al., 2023) stores a scene *explicitly*, as millions of Gaussians, and renders
it by sorting and blending their footprints -- fast to render, but it costs memory (734 MB for a Mip-NeRF 360
scene against 8.6 MB of Mip-NeRF 360's MLP, their Table 1). This experiment makes the comparison on the image
of the Fourier-feature experiment (:mod:`.fourier_features`, a glyph over a checkerboard): G 2-D Gaussians,
each with a mean, two scales, an angle, an RGB colour, an opacity and a fixed depth (10 floats), are fitted
by Adam to the image through the caller's ``splat_gaussians_2d``; the positional-encoding MLP of that
experiment is the implicit counterpart. It reports, per representation, the PSNR of the fit, the floats
stored and the time one render takes.

Rendering goes by **tiles**, as 3DGS's rasteriser does: the image is cut into 16 x 16 tiles and each tile is
splatted with only the Gaussians whose opacity can reach 1/255 inside it (the bound
``o exp(-d^2 / (2 s_max^2))`` with ``d`` the distance from the mean to the tile and ``s_max`` the larger
scale); the others change a pixel by less than 1/255 each. The PSNR is measured on the exact, dense render
(every Gaussian at every pixel), which is also timed: the dense cost grows as H W G, the tiled one as the
number of (pixel, covering Gaussian) pairs.

:func:`splats_as_volume_rendering` shows that compositing is the same computation as NeRF's volume rendering:
one Gaussian per ray sample, centred on the pixel, with opacity ``alpha_i = 1 - exp(-sigma_i delta_i)``
(equivalently ``sigma_i delta_i = -log(1 - alpha_i)``), gives ``volume_render``'s weights and colour.

References:
    Kerbl, Kopanas, Leimkuehler, Drettakis, "3D Gaussian Splatting for Real-Time Radiance Field Rendering",
    SIGGRAPH 2023 (tile-based rasteriser, alpha < 1/255 skipped; Table 1: memory).
    Zwicker, Pfister, van Baar, Gross, "EWA Volume Splatting", IEEE Visualization 2001.
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
import torch.nn.functional as F

from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..models import count_parameters
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented
from . import fourier_features as ff

__all__ = ["SplatExperiment", "init_gaussians", "activate", "tile_visibility", "render_tiled", "fit_gaussians",
           "splats_as_volume_rendering", "timed", "run", "main"]

FLOATS_PER_GAUSSIAN = 10          # mean 2, scales 2, angle 1, colour 3, opacity 1, depth 1


@dataclass(frozen=True)
class SplatExperiment:
    """Default settings: three fits of 150 Adam steps (~20 s on one CPU core); ``smoke()`` a second."""

    counts: tuple[int, ...] = (128, 512, 2048)
    steps: int = 150
    lr: float = 0.05                # colours, log-scales, angles and opacities (Adam)
    mean_lr: float = 0.5            # means, in pixels per step (Adam)
    tile: int = 16                  # tile side in pixels
    image: ff.FourierExperiment = ff.FourierExperiment()     # the image (and the MLP) of the Fourier experiment
    timing_repeats: int = 5
    seed: int = 0

    @staticmethod
    def smoke() -> "SplatExperiment":
        return SplatExperiment(counts=(16, 64), steps=5, image=ff.FourierExperiment.smoke(), timing_repeats=1)


def init_gaussians(target: torch.Tensor, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Raw parameters of ``n`` Gaussians for ``target [H, W, 3]``: means uniform over the image, scales 0.6 of the
    spacing of ``n`` points on a grid, random angles, the target's colour under each mean, opacity 0.73, and a
    random depth order (fixed)."""
    h, w, _ = target.shape
    means = torch.rand(n, 2, generator=generator) * torch.tensor([float(w), float(h)])      # [G, 2]
    spacing = math.sqrt(h * w / n)
    pix = means.long()
    under = target[pix[:, 1].clamp(max=h - 1), pix[:, 0].clamp(max=w - 1)]                  # [G, 3]
    return {"means": means, "log_scales": torch.full((n, 2), math.log(0.6 * spacing)),
            "angles": torch.rand(n, generator=generator) * math.pi,
            "color_logits": torch.logit(under.float().clamp(0.02, 0.98)),
            "opacity_logits": torch.ones(n), "depths": torch.randperm(n, generator=generator).float()}


def activate(raw: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Raw parameters -> ``(means, scales, angles, colors, opacities, depths)``, splat_gaussians_2d's arguments."""
    return (raw["means"], raw["log_scales"].exp(), raw["angles"], torch.sigmoid(raw["color_logits"]),
            torch.sigmoid(raw["opacity_logits"]), raw["depths"])


@torch.no_grad()
def tile_visibility(means: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor, height: int, width: int,
                    tile: int) -> torch.Tensor:
    """``[Ty, Tx, G]`` bool: Gaussian g may reach opacity 1/255 inside tile (ty, tx).

    Math: over the tile ``[x0, x0 + t] x [y0, y0 + t]`` the Mahalanobis distance is at least ``d^2 / s_max^2``,
    ``d`` the Euclidean distance from the mean to the tile, so ``alpha <= o exp(-d^2 / (2 s_max^2))``.
    """
    y0 = torch.arange(0, height, tile, dtype=means.dtype, device=means.device)                 # [Ty]
    x0 = torch.arange(0, width, tile, dtype=means.dtype, device=means.device)                  # [Tx]
    y1, x1 = (y0 + tile).clamp(max=height), (x0 + tile).clamp(max=width)
    dx = (x0[:, None] - means[:, 0]).clamp(min=0) + (means[:, 0] - x1[:, None]).clamp(min=0)  # [Tx, G]
    dy = (y0[:, None] - means[:, 1]).clamp(min=0) + (means[:, 1] - y1[:, None]).clamp(min=0)  # [Ty, G]
    d2 = dy[:, None, :] ** 2 + dx[None, :, :] ** 2                                             # [Ty, Tx, G]
    return opacities * torch.exp(-0.5 * d2 / scales.amax(-1) ** 2) >= 1 / 255


def render_tiled(splat_gaussians_2d: Callable, params: tuple[torch.Tensor, ...], height: int, width: int,
                 tile: int = 16) -> torch.Tensor:
    """``[H, W, C]`` image: each tile splatted with the Gaussians :func:`tile_visibility` keeps (a tile that none
    reaches is black); differentiable like ``splat_gaussians_2d``."""
    means, scales, angles, colors, opacities, depths = params
    visible = tile_visibility(means, scales, opacities, height, width, tile)                  # [Ty, Tx, G]
    rows = []
    for ty, y0 in enumerate(range(0, height, tile)):
        row = []
        for tx, x0 in enumerate(range(0, width, tile)):
            th, tw = min(tile, height - y0), min(tile, width - x0)
            keep = visible[ty, tx].nonzero().squeeze(-1)                                       # [G_tile]
            if keep.numel() == 0:
                row.append(colors.new_zeros(th, tw, colors.shape[1]))
                continue
            shift = means.new_tensor([float(x0), float(y0)])                                   # tile origin
            image, _ = splat_gaussians_2d(means[keep] - shift, scales[keep], angles[keep], colors[keep],
                                          opacities[keep], depths[keep], th, tw)
            row.append(image)
        rows.append(torch.cat(row, dim=1))                                                     # [th, W, C]
    return torch.cat(rows, dim=0)                                                              # [H, W, C]


def fit_gaussians(splat_gaussians_2d: Callable, target: torch.Tensor, n: int, exp: SplatExperiment,
                  device: torch.device) -> tuple[tuple[torch.Tensor, ...], list[tuple[int, float]]]:
    """Adam on the pixel MSE of the tiled render of ``n`` Gaussians; returns the activated parameters and the
    training PSNR every 25 steps as ``(step, psnr_db)``."""
    gen = torch.Generator().manual_seed(exp.seed)
    raw = {k: v.to(device).requires_grad_(k != "depths") for k, v in init_gaussians(target, n, gen).items()}
    target = target.to(device)
    h, w, _ = target.shape
    opt = torch.optim.Adam([{"params": [raw["means"]], "lr": exp.mean_lr},
                            {"params": [raw[k] for k in ("log_scales", "angles", "color_logits", "opacity_logits")],
                             "lr": exp.lr}])
    history = []
    for step in range(exp.steps):
        image = render_tiled(splat_gaussians_2d, activate(raw), h, w, exp.tile)
        loss = F.mse_loss(image, target)
        backward_and_step(loss, opt, f"pixel MSE of {n} Gaussians", step, inputs={"rendered image": image})
        if step % 25 == 0 or step == exp.steps - 1:
            history.append((step, ff.psnr(image, target)))
    return tuple(t.detach() for t in activate(raw)), history


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls: CPU time of this process on a CPU (robust to other
    load), wall-clock time (synchronised) on a GPU."""
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    times = []
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = clock()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(clock() - start)
    return sorted(times)[len(times) // 2]


def splats_as_volume_rendering(splat_gaussians_2d: Callable, volume_render: Callable, sigmas: torch.Tensor,
                               colors: torch.Tensor, t_vals: torch.Tensor) -> dict[str, torch.Tensor]:
    """Composite rays ``[R, S]`` twice: with ``volume_render``, and as S Gaussians per ray on a 1 x 1 image.

    Gaussian i of a ray sits on the pixel centre (its exponent is 0 there, so its alpha is its opacity),
    with opacity ``alpha_i = 1 - exp(-sigma_i delta_i)`` and depth ``t_i``; with one-hot colours (C = S) the
    rendered pixel is the vector of weights ``T_i alpha_i``. Needs every ``alpha_i <= 0.99`` (the splatting cap),
    so the last sample's density should be 0 (its delta is 1e10).

    Returns:
        ``weights_volume``, ``weights_splat`` ``[R, S]``, ``rgb_volume``, ``rgb_splat`` ``[R, C]`` and ``alphas``.
    """
    rgb_v, w_v = volume_render(sigmas, colors, t_vals)
    deltas = F.pad(t_vals[:, 1:] - t_vals[:, :-1], (0, 1), value=1e10)                          # [R, S]
    alphas = -torch.expm1(-sigmas * deltas)                                                   # 1 - exp(-sigma delta)
    r, s = sigmas.shape
    centre = sigmas.new_full((s, 2), 0.5)
    weights, rgbs = [], []
    for k in range(r):                                                                         # one ray per image
        args = (centre, sigmas.new_ones(s, 2), sigmas.new_zeros(s))
        onehot, _ = splat_gaussians_2d(*args, torch.eye(s, dtype=sigmas.dtype, device=sigmas.device), alphas[k],
                                       t_vals[k], 1, 1)
        weights.append(onehot[0, 0])
        rgbs.append(splat_gaussians_2d(*args, colors[k], alphas[k], t_vals[k], 1, 1)[0][0, 0])
    return {"weights_volume": w_v, "weights_splat": torch.stack(weights), "rgb_volume": rgb_v,
            "rgb_splat": torch.stack(rgbs), "alphas": alphas}


def run(
    splat_gaussians_2d: Callable | None = None,
    positional_encoding: Callable | None = None,
    exp: SplatExperiment | None = None,
    *,
    target: torch.Tensor | None = None,
    mlp_prediction: torch.Tensor | None = None,
    device: torch.device | None = None,
    progress: bool = False,
) -> dict:
    """Fit the target with each count of Gaussians; compare with the positional-encoding MLP.

    Args:
        splat_gaussians_2d, positional_encoding: the caller's functions (None: ``manifest.resolve``'s choice).
        target: ``[H, W, 3]`` image in [0, 1] (default: the Fourier experiment's image ``exp.image``).
        mlp_prediction: the MLP's fit of ``target`` when already computed (the notebook's section 3); else the
            MLP of :func:`course_lib.experiments.fourier_features.fit_image` is fitted here.

    Returns:
        ``metrics`` (per count n: ``psnr_g<n>_db``, ``floats_g<n>``, ``render_ms_g<n>`` tiled and
        ``render_dense_ms_g<n>``; ``psnr_mlp_db``, ``floats_mlp``, ``render_ms_mlp``; ``floats_image``), the
        ``fits`` (images), the Gaussians' ``params``, their ``history``, the ``target`` and ``exp``.
    """
    splat_gaussians_2d = resolve("splat_gaussians_2d", splat_gaussians_2d)
    positional_encoding = resolve("positional_encoding", positional_encoding)
    exp = exp or (SplatExperiment.smoke() if smoke_mode() else SplatExperiment())
    device = device or pick_device()
    one = torch.ones(1, 2)
    require_implemented("splat_gaussians_2d", splat_gaussians_2d, one * 0.5, one, torch.zeros(1), one[:, :1],
                        torch.ones(1), torch.zeros(1), 1, 1)
    require_implemented("positional_encoding", positional_encoding, torch.zeros(1, 2), 1)
    target = ff.target_image(exp.image) if target is None else target
    h, w, _ = target.shape
    metrics, fits, params, history = {}, {}, {}, {}
    for n in exp.counts:
        params[n], history[n] = fit_gaussians(splat_gaussians_2d, target, n, exp, device)
        with torch.no_grad():
            dense, _ = splat_gaussians_2d(*params[n], h, w)
            fits[n] = require_finite(f"render of {n} Gaussians", dense).cpu()
            metrics[f"psnr_g{n}_db"] = ff.psnr(fits[n], target)
            metrics[f"floats_g{n}"] = FLOATS_PER_GAUSSIAN * n
            metrics[f"render_ms_g{n}"] = 1e3 * timed(
                lambda p=params[n]: render_tiled(splat_gaussians_2d, p, h, w, exp.tile), exp.timing_repeats, device)
            metrics[f"render_dense_ms_g{n}"] = 1e3 * timed(lambda p=params[n]: splat_gaussians_2d(*p, h, w),
                                                           exp.timing_repeats, device)
        if progress:
            print(f"{n} Gaussians: {metrics[f'psnr_g{n}_db']:.2f} dB", file=sys.stderr)
    im, width = exp.image, 2 * (1 + 2 * exp.image.num_freqs)                  # D (1 + 2 L) with D = 2
    encode = lambda c: positional_encoding(c, im.num_freqs)                   # noqa: E731
    if mlp_prediction is None:
        mlp_prediction, _ = ff.fit_image(encode, width, target, im, device, progress, f"encoded, L={im.num_freqs}")
    mlp = ff.CoordinateMLP(encode, width, im.width, im.depth).to(device)     # same architecture, for size and time
    coords = ff.pixel_coordinates(h, w, device).reshape(-1, 2)                # [H W, 2]
    fits["mlp"] = mlp_prediction.detach().cpu()
    metrics["psnr_mlp_db"] = ff.psnr(fits["mlp"], target)
    metrics["floats_mlp"] = count_parameters(mlp)
    with torch.no_grad():
        metrics["render_ms_mlp"] = 1e3 * timed(lambda: mlp(coords), exp.timing_repeats, device)
    metrics["floats_image"] = target.numel()
    return {"metrics": metrics, "fits": fits, "params": params, "history": history, "target": target, "exp": exp}


def _lego_image(path: str) -> torch.Tensor:
    from ..nerf import load_views

    return load_views(path)[0].images[0]                                      # [H, W, 3], the first view


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.splatting",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="FILE.npz", help="fit the first view of a tiny-NeRF .npz instead of the "
                        "Fourier experiment's image")
    parser.add_argument("--steps", type=int, help="Adam steps per fit (default 150; 5 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = SplatExperiment.smoke() if smoke_mode() else SplatExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    target = None
    if args.data is not None:
        try:
            target = _lego_image(args.data)
        except ValueError as exc:
            parser.error(f"--data: {exc}")
    out = run(exp=exp, target=target, progress=sys.stderr.isatty())
    m = out["metrics"]
    for n in exp.counts:
        print(f"{n:5d} Gaussians: {m[f'psnr_g{n}_db']:6.2f} dB, {m[f'floats_g{n}']:7,} floats, render "
              f"{m[f'render_ms_g{n}']:.1f} ms by tiles ({m[f'render_dense_ms_g{n}']:.1f} ms dense)")
    print(f"  MLP (PE):  {m['psnr_mlp_db']:6.2f} dB, {m['floats_mlp']:7,} floats, render {m['render_ms_mlp']:.1f} ms "
          f"(the image itself: {m['floats_image']:,} values)")
    print(format_metrics(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
