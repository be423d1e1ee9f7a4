"""Fourier features on a 2-D image: can an MLP from pixel coordinates to colour reproduce fine detail?

    python -m course_lib.experiments.fourier_features [--steps N] [--num-freqs L]

A coordinate network ``(x, y) -> RGB`` is fitted to one 64 x 64 glyph image (a character over a fine,
periodic background texture, from :func:`course_lib.data.glyphs`), twice, with everything equal except the
input: the raw coordinates, or their positional encoding ``gamma(x, y)`` with L frequencies. ReLU MLPs learn
low frequencies first and high ones very slowly ("spectral bias"), so the raw network returns a blurred
image, while the encoded one -- whose first layer already sees ``sin(2^k pi x)`` up to the pixel grid's
Nyquist frequency -- fits the texture. The experiment prints, last, the PSNR of both fits over all pixels
and their difference, ``psnr_gain_db``.

References:
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional Domains",
    NeurIPS 2020 (the 2-D image regression task).
    Rahaman et al., "On the Spectral Bias of Neural Networks", ICML 2019.
    Mildenhall et al., "NeRF", ECCV 2020 (the positional encoding, eq. 4).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["FourierExperiment", "target_image", "pixel_coordinates", "CoordinateMLP", "psnr", "fit_image", "run",
           "main"]


@dataclass(frozen=True)
class FourierExperiment:
    """Default settings take a few seconds per fit on one CPU core; ``smoke()`` a second."""

    size: int = 64              # image side (pixels)
    image_index: int = 1        # which image of glyphs(n=16, size, seed=image_seed): a 7 on a checkerboard
    image_seed: int = 0
    num_freqs: int = 6          # L: the highest frequency 2^(L-1) pi is the Nyquist frequency of 64 pixels
    width: int = 64
    depth: int = 3              # hidden layers
    steps: int = 1000
    lr: float = 2e-3
    seed: int = 0

    @staticmethod
    def smoke() -> "FourierExperiment":
        return FourierExperiment(size=32, num_freqs=5, width=32, steps=40)


def target_image(exp: FourierExperiment) -> torch.Tensor:
    """The image to fit: ``[H, W, 3]`` float32 in [0, 1]."""
    from ..data import glyphs

    ds = glyphs(n=16, size=exp.size, seed=exp.image_seed)
    return ds.images[exp.image_index].permute(1, 2, 0).contiguous()      # [3, H, W] -> [H, W, 3]


def pixel_coordinates(height: int, width: int, device=None) -> torch.Tensor:
    """Pixel centres in [-1, 1]: ``[H, W, 2]`` with ``[..., 0] = x`` (column) and ``[..., 1] = y`` (row)."""
    x = (torch.arange(width, device=device) + 0.5) / width * 2 - 1          # [W]
    y = (torch.arange(height, device=device) + 0.5) / height * 2 - 1        # [H]
    return torch.stack([x.expand(height, width), y[:, None].expand(height, width)], dim=-1)


class CoordinateMLP(nn.Module):
    """``encode(coords [P, 2]) [P, in_dim] -> depth x (Linear(width) + ReLU) -> Linear(3) -> sigmoid``."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], in_dim: int, width: int, depth: int,
                 out_dim: int = 3):
        super().__init__()
        self.encode = encode
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, out_dim))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.encode(coords)))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """``-10 log10(mean squared error)`` for images in [0, 1] (in dB)."""
    mse = float(F.mse_loss(pred.detach().float(), target.detach().float()))
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def fit_image(encode: Callable[[torch.Tensor], torch.Tensor], in_dim: int, target: torch.Tensor,
              exp: FourierExperiment, device: torch.device, progress: bool = True,
              desc: str = "fit") -> tuple[torch.Tensor, list[tuple[int, float]]]:
    """Fit a :class:`CoordinateMLP` to ``target [H, W, 3]`` on all pixels (full batch, Adam).

    Returns:
        ``(prediction [H, W, 3], history)`` with ``history`` a list of ``(step, psnr_db)``.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(exp.seed)
    h, w, _ = target.shape
    coords = pixel_coordinates(h, w, device).reshape(-1, 2)                # [H, W, 2] -> [H W, 2]
    colors = target.to(device).reshape(-1, 3)                              # [H, W, 3] -> [H W, 3]
    model = CoordinateMLP(encode, in_dim, exp.width, exp.depth).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=exp.lr)
    history = []
    bar = tqdm(range(exp.steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        pred = model(coords)
        loss = F.mse_loss(pred, colors)
        backward_and_step(loss, opt, f"pixel MSE of the {desc} fit", step, inputs={"predicted colours": pred})
        if step % 25 == 0 or step == exp.steps - 1:
            history.append((step, -10.0 * math.log10(max(float(loss.detach()), 1e-12))))
            bar.set_postfix(psnr=f"{history[-1][1]:.1f} dB")
    with torch.no_grad():
        pred = model(coords).reshape(h, w, 3).cpu()                       # [H W, 3] -> [H, W, 3]
    return require_finite(f"prediction of the {desc} fit", pred), history


def run(
    positional_encoding: Callable | None = None,
    exp: FourierExperiment | None = None,
    *,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Fit the image with raw coordinates and with ``positional_encoding``; returns metrics, the target, both
    fits and both PSNR curves."""
    positional_encoding = resolve("positional_encoding", positional_encoding)
    exp = exp or (FourierExperiment.smoke() if smoke_mode() else FourierExperiment())
    device = device or pick_device()
    require_implemented("positional_encoding", positional_encoding, torch.zeros(1, 2), 1)
    target = target_image(exp)
    width = 2 * (1 + 2 * exp.num_freqs)                                    # D (1 + 2 L) with D = 2
    raw, raw_hist = fit_image(lambda c: c, 2, target, exp, device, progress, "raw (x, y)")
    pe, pe_hist = fit_image(lambda c: positional_encoding(c, exp.num_freqs), width, target, exp, device, progress,
                            f"encoded, L={exp.num_freqs}")
    metrics = {"psnr_raw_db": psnr(raw, target), "psnr_pe_db": psnr(pe, target)}
    metrics["psnr_gain_db"] = metrics["psnr_pe_db"] - metrics["psnr_raw_db"]
    return {"metrics": metrics, "target": target, "fits": {"raw": raw, "pe": pe},
            "history": {"raw": raw_hist, "pe": pe_hist}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.fourier_features",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="Adam steps per fit (default 1000; 40 with COURSE_SMOKE=1)")
    parser.add_argument("--num-freqs", type=int, help="L, frequencies of the encoding (default 6)")
    args = parser.parse_args(argv)
    exp = FourierExperiment.smoke() if smoke_mode() else FourierExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    if args.num_freqs is not None:
        if not 0 <= args.num_freqs <= 16:
            parser.error(f"--num-freqs must be in [0, 16], got {args.num_freqs}")
        exp = replace(exp, num_freqs=args.num_freqs)
    m = run(exp=exp, progress=sys.stderr.isatty())["metrics"]
    print(f"PSNR of the fit: raw coordinates {m['psnr_raw_db']:.2f} dB, encoded (L={exp.num_freqs}) "
          f"{m['psnr_pe_db']:.2f} dB")
    print(format_metrics(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
