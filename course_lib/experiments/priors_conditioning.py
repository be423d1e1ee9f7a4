"""Global or local conditioning: canvases of several glyphs, auto-decoded from one code or from a grid of codes.

    python -m course_lib.experiments.priors_conditioning [--steps N]

A canvas (48 x 48) holds glyphs (16 x 16) in some of the 9 cells of a 3 x 3 layout: 1 per canvas for training.
Two auto-decoders (DeepSDF-style: a code per canvas, optimised with the network; codes with a Gaussian prior) learn
a prior over such canvases, with the same number of latent floats per canvas:

* **global**: one code ``z`` of ``C G^2`` floats, concatenated to ``gamma(x, y)`` (as in
  :mod:`.autodecoder`): every float may influence every pixel, and where a glyph sits is part of what the
  network must learn;
* **local**: a grid ``[C, G, G]`` of codes spanning the canvas (vertex-aligned, ``G = 25``: one vertex every
  2 pixels), read at each query point by ``bilinear_sample_2d``; the decoder sees that feature and the point's
  offset from its nearest vertex, never the absolute position. A pixel depends only on the 4 codes around it
  (**locality**), and moving the codes by whole cells moves the drawing by the same amount (**shift
  equivariance**, exact for shifts by whole cells): a glyph is drawn the same way in any of the 9 cells.

Test canvases are completed from a random half of their pixels (the network frozen, only the codes fitted),
for new canvases with 1 glyph (in distribution) and with 6 glyphs (more than any training canvas). Busier canvases have
more ink to miss, so the errors are also reported relative to the error of drawing nothing (``rel_hidden_*``): the
local model's relative error on 6 glyphs stays close to its value on 1, because to it a busy canvas is the same
local problem repeated; the global model has never seen a canvas with more than one glyph, has no way to compose
one from parts, and its relative error grows. The command line prints, last, ``mse_hidden_global_1=...
mse_hidden_local_1=... mse_hidden_global_6=... mse_hidden_local_6=...``.

References:
    Park et al., "DeepSDF", CVPR 2019 (auto-decoding). Jiang et al., "Local Implicit Grid Representations for 3D
    Scenes", CVPR 2020, Peng et al., "Convolutional Occupancy Networks", ECCV 2020, and Chabra et al.,
    "Deep Local Shapes", ECCV 2020 (latent grids decoded locally: generalisation to scenes far larger and busier
    than the training shapes). Sitzmann et al., "Scene Representation Networks", NeurIPS 2019.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn

from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented
from .autodecoder import ConditionedField, PriorExperiment, fit_codes, hidden_mse, train_autodecoder

__all__ = ["ConditioningExperiment", "glyph_tiles", "make_canvases", "LocalField", "run", "main"]


@dataclass(frozen=True)
class ConditioningExperiment:
    """Default settings: two auto-decoders of about 35 s each on one CPU core; ``smoke()`` seconds."""

    tile: int = 16                # glyph side (pixels)
    slots: int = 3                # the canvas is slots x slots cells of one glyph: 48 x 48 pixels
    train_glyphs: int = 1         # glyphs per training canvas
    test_glyphs: tuple[int, ...] = (1, 6)   # glyphs per test canvas: in and out of distribution
    n_train: int = 1000
    n_test: int = 16              # test canvases per number of glyphs
    channels: int = 1             # C: code channels per grid vertex
    grid: int = 25                # G: vertices per side; (G - 1) / slots must be an integer (whole-cell shifts)
    num_freqs: int = 5            # global decoder: gamma(x, y)
    local_freqs: int = 2          # local decoder: gamma(offset from the nearest vertex)
    width: int = 64
    depth: int = 3
    steps: int = 800
    batch: int = 32
    pixels: int = 256
    lr: float = 1e-3
    code_lr: float = 1e-2
    code_reg: float = 1e-3
    fit_steps: int = 100
    fit_lr: float = 5e-2
    observed: float = 0.5         # fraction of the pixels observed at test time
    data_seed: int = 5
    seed: int = 0

    @staticmethod
    def smoke() -> "ConditioningExperiment":
        return ConditioningExperiment(n_train=64, n_test=4, steps=20, batch=8, pixels=64, fit_steps=5, width=16,
                                      grid=13)

    @property
    def size(self) -> int:
        return self.tile * self.slots

    @property
    def latent(self) -> int:
        """Latent floats per canvas, the same for both: ``C G^2``."""
        return self.channels * self.grid * self.grid

    def autodecoder(self) -> PriorExperiment:
        """The training / fitting settings of :mod:`.autodecoder` for canvases."""
        return PriorExperiment(size=self.size, latent=self.latent, num_freqs=self.num_freqs, width=self.width,
                               depth=self.depth, steps=self.steps, batch=self.batch, pixels=self.pixels, lr=self.lr,
                               code_lr=self.code_lr, code_reg=self.code_reg, fit_steps=self.fit_steps,
                               fit_lr=self.fit_lr, snapshots=2, seed=self.seed)


def glyph_tiles(n: int, exp: ConditioningExperiment, seed: int) -> torch.Tensor:
    """``[n, tile, tile]`` nearly upright glyph masks (the shape family of :mod:`.autodecoder`)."""
    from ..data import GlyphConfig, glyphs

    cfg = GlyphConfig(max_rotation=5.0, max_shift=0.03, scale=(0.95, 1.05), max_shear=0.05)
    return glyphs(n=n, size=exp.tile, seed=seed, config=cfg).masks


def make_canvases(n: int, k: int, exp: ConditioningExperiment, seed: int) -> torch.Tensor:
    """``[n, S, S]`` canvases (``S = tile * slots``), each with ``k`` glyphs in ``k`` distinct random cells.

    Raises:
        ValueError: when ``k`` is not in ``[1, slots^2]``.
    """
    cells = exp.slots * exp.slots
    if not 1 <= k <= cells:
        raise ValueError(f"k (glyphs per canvas) must be in [1, {cells}], got {k}")
    gen = torch.Generator().manual_seed(seed)
    tiles = glyph_tiles(n * k, exp, seed)                                      # [n k, t, t]
    where = torch.stack([torch.randperm(cells, generator=gen)[:k] for _ in range(n)])   # [n, k] cell indices
    canvas = torch.zeros(n, exp.slots, exp.slots, exp.tile, exp.tile)          # [n, rows, cols, t, t]
    rows, cols = where // exp.slots, where % exp.slots
    canvas[torch.arange(n)[:, None], rows, cols] = tiles.reshape(n, k, exp.tile, exp.tile)
    # [n, rows, cols, t, t] -> [n, rows, t, cols, t] -> [n, S, S]
    return canvas.permute(0, 1, 3, 2, 4).reshape(n, exp.size, exp.size)


class LocalField(nn.Module):
    """``forward(codes [B, C G^2], coords [B, P, 2]) -> logits [B, P]`` from a grid of local codes.

    Math::

        g = codes.view(C, G, G)                          vertex (0, 0) at (-1, -1), (G-1, G-1) at (1, 1)
        f(x) = bilinear_sample_2d(g, x)                  the 4 codes around x, blended
        u = (x + 1) / 2 (G - 1),  delta = u - round(u)   offset from the nearest vertex, in [-1/2, 1/2]^2
        logit(x) = MLP([f(x), gamma(2 delta)])           no absolute position anywhere
    """

    def __init__(self, bilinear_sample_2d: Callable, encode: Callable[[torch.Tensor], torch.Tensor], enc_dim: int,
                 channels: int, grid: int, width: int, depth: int):
        super().__init__()
        self.sample, self.encode, self.channels, self.grid = bilinear_sample_2d, encode, channels, grid
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(channels + enc_dim if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, codes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        b = codes.shape[0]
        grid = codes.reshape(b, self.channels, self.grid, self.grid)          # [B, C G^2] -> [B, C, G, G]
        feat = self.sample(grid, coords)                                       # [B, P, C]
        u = (coords + 1) / 2 * (self.grid - 1)                                 # [B, P, 2] in vertex units
        delta = u - torch.round(u)                                             # [B, P, 2] in [-1/2, 1/2]
        return self.net(torch.cat([feat, self.encode(2 * delta)], dim=-1)).squeeze(-1)   # [B, P]


def _random_visible(exp: ConditioningExperiment) -> torch.Tensor:
    """``[S, S]`` bool: a fixed random ``observed`` fraction of the pixels."""
    gen = torch.Generator().manual_seed(exp.seed + 11)
    s = exp.size
    return (torch.randperm(s * s, generator=gen) < round(exp.observed * s * s)).reshape(s, s)


def run(
    bilinear_sample_2d: Callable | None = None,
    positional_encoding: Callable | None = None,
    exp: ConditioningExperiment | None = None,
    *,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train the global and the local auto-decoder on 1-glyph canvases; complete new canvases of 1 and 6 glyphs.

    Returns:
        ``metrics`` (``mse_hidden_{global,local}_{k}`` on the hidden pixels, ``rel_hidden_{global,local}_{k}``
        the same divided by the error of an empty canvas, and ``mse_visible_{global,local}_{k}`` on the observed
        pixels, for every ``k`` of ``exp.test_glyphs``, and ``latent_floats``), ``test``
        (``{k: [N, S, S]}``), ``pred`` (``{"global" / "local": {k: [N, S, S]}}``), ``visible``, ``fields``,
        ``codes`` (fitted test codes) and ``exp``.
    """
    bilinear_sample_2d = resolve("bilinear_sample_2d", bilinear_sample_2d)
    positional_encoding = resolve("positional_encoding", positional_encoding)
    exp = exp or (ConditioningExperiment.smoke() if smoke_mode() else ConditioningExperiment())
    if (exp.grid - 1) % exp.slots:
        raise ValueError(f"grid - 1 must be a multiple of slots ({exp.slots}) for whole-cell shifts, got {exp.grid}")
    device = device or pick_device()
    require_implemented("positional_encoding", positional_encoding, torch.zeros(1, 2), 1)
    require_implemented("bilinear_sample_2d", bilinear_sample_2d, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2))
    settings = exp.autodecoder()
    train = make_canvases(exp.n_train, exp.train_glyphs, exp, exp.data_seed)
    test = {k: make_canvases(exp.n_test, k, exp, exp.data_seed + 1000 * k) for k in exp.test_glyphs}
    visible = _random_visible(exp)
    torch.manual_seed(exp.seed)
    fields = {
        "global": ConditionedField(lambda c: positional_encoding(c, exp.num_freqs), 2 * (1 + 2 * exp.num_freqs),
                                   exp.latent, exp.width, exp.depth),
        "local": LocalField(bilinear_sample_2d, lambda c: positional_encoding(c, exp.local_freqs),
                            2 * (1 + 2 * exp.local_freqs), exp.channels, exp.grid, exp.width, exp.depth),
    }
    metrics: dict[str, float] = {"latent_floats": exp.latent}
    pred: dict[str, dict[int, torch.Tensor]] = {}
    codes: dict[str, dict[int, torch.Tensor]] = {}
    history = {}
    for name, fld in fields.items():
        torch.manual_seed(exp.seed)
        fld.to(device)
        _, history[name] = train_autodecoder(fld, train, settings, device, progress)
        fld.eval()
        pred[name], codes[name] = {}, {}
        for k, canvases in test.items():
            codes[name][k], snaps = fit_codes(fld, canvases, visible, settings, device, progress)
            pred[name][k] = snaps[-1]
            metrics[f"mse_hidden_{name}_{k}"] = hidden_mse(snaps[-1], canvases, visible)
            metrics[f"mse_visible_{name}_{k}"] = hidden_mse(snaps[-1], canvases, ~visible)
            blank = torch.zeros_like(canvases)                                 # drawing nothing
            metrics[f"rel_hidden_{name}_{k}"] = metrics[f"mse_hidden_{name}_{k}"] / hidden_mse(blank, canvases, visible)
    return {"metrics": metrics, "test": test, "pred": pred, "visible": visible, "fields": fields, "codes": codes,
            "history": history, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.priors_conditioning",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="auto-decoder training steps (default 800; 20 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = ConditioningExperiment.smoke() if smoke_mode() else ConditioningExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    m = run(exp=exp, progress=sys.stderr.isatty())["metrics"]
    print(f"{exp.latent} latent floats per canvas; trained on {exp.train_glyphs} glyphs per canvas; "
          f"{exp.observed:.0%} of the pixels observed at test time")
    print(format_metrics({f"mse_hidden_{name}_{k}": m[f"mse_hidden_{name}_{k}"]
                          for k in exp.test_glyphs for name in ("global", "local")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
