"""Learned shape priors: complete an unseen glyph from part of it, with an auto-decoder or an encoder.

    python -m course_lib.experiments.autodecoder [--steps N]

A coordinate network ``f([z, gamma(x, y)]) -> ink coverage`` is conditioned on a per-shape latent code ``z``
by concatenation. It is trained as an **auto-decoder** (DeepSDF): there is no encoder; every training glyph
owns a code, a free parameter initialised near zero and optimised jointly with the network, with a small L2
penalty on the codes (a Gaussian prior) so that the code space stays compact. At test time the network is
frozen and only a fresh code is optimised, on the pixels that are observed, and the network then draws the whole
glyph, hidden pixels included.

The comparison is an **encoder**: a small CNN, trained on the same training glyphs, that maps the visible top
half to a code in one forward pass, decoded by the same frozen network and trained on the full glyph (both
halves). Both complete unseen glyphs from three observation patterns:

* ``top``: the top half -- the pattern the encoder was trained on (in distribution);
* ``left``: the left half, and ``random``: a fixed random 25% of the pixels -- patterns the encoder never saw
  (out of distribution); the auto-decoder only changes the pixels in its test-time loss.

It also renders the fitted codes at ``upsample`` times the training resolution (the field is continuous: the
high-resolution image, averaged back to the training grid, fits the glyph as well as the native rendering), and
decodes straight lines between the codes of training glyphs (against a cross-fade of their pixels, the midpoint
of which is a grey double exposure). The command line prints, last, ``mse_hidden_autodecoder=...
mse_hidden_encoder=...`` (top half) and the same for the left half and the random pixels.

References:
    Park et al., "DeepSDF: Learning Continuous Signed Distance Functions for Shape Representation", CVPR 2019
    (auto-decoder, codes with a zero-mean Gaussian prior, test-time code optimisation from partial data).
    Bojanowski et al., "Optimizing the Latent Space of Generative Networks" (GLO), ICML 2018.
    Sitzmann et al., "Scene Representation Networks", NeurIPS 2019 (conditioning coordinate networks).
"""
from __future__ import annotations

import argparse
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
from .fourier_features import pixel_coordinates

__all__ = ["PriorExperiment", "load_glyph_masks", "visible_patterns", "ConditionedField", "HalfEncoder",
           "train_autodecoder", "fit_codes", "predict", "blank_hidden", "train_encoder", "hidden_mse",
           "grey_fraction", "interpolate_codes", "run", "main"]

PATTERNS = ("top", "left", "random")


@dataclass(frozen=True)
class PriorExperiment:
    """Default settings take about a minute on one CPU core; ``smoke()`` a few seconds."""

    size: int = 32
    n_train: int = 2000
    n_test: int = 100
    data_seed: int = 3           # glyphs(n_train + n_test, size, seed=data_seed); the last n_test are unseen
    max_rotation: float = 5.0    # nearly aligned glyphs (degrees, fraction of the side, scale range): a shape
    max_shift: float = 0.03      # space, like DeepSDF's canonically posed objects
    scale: tuple[float, float] = (0.95, 1.05)
    latent: int = 16
    num_freqs: int = 4           # encoding of (x, y) for the decoder
    width: int = 64
    depth: int = 3
    steps: int = 1500            # auto-decoder training steps
    batch: int = 64              # glyphs per step
    pixels: int = 128            # random pixels per glyph per step
    lr: float = 1e-3             # network
    code_lr: float = 1e-2        # training codes
    code_reg: float = 1e-2       # weight of mean_i ||z_i||^2 (the Gaussian prior on codes)
    fit_steps: int = 100         # test time: Adam steps on the codes only
    fit_lr: float = 5e-2
    encoder_steps: int = 600
    encoder_lr: float = 1e-3
    snapshots: int = 8           # code-fitting snapshots kept for a picture / GIF
    random_fraction: float = 0.25   # the "random" pattern observes this fraction of the pixels
    upsample: int = 4            # resolution invariance: codes rendered at upsample * size
    n_pairs: int = 8             # interpolation: pairs of training glyphs ...
    n_interp: int = 9            # ... and points on the line between their codes (odd: the midpoint is one)
    seed: int = 0

    @staticmethod
    def smoke() -> "PriorExperiment":
        return PriorExperiment(n_train=256, n_test=16, steps=40, batch=32, pixels=128, fit_steps=10, encoder_steps=20,
                               width=32, snapshots=4, n_pairs=2, n_interp=5)


def visible_patterns(exp: PriorExperiment) -> dict[str, torch.Tensor]:
    """The observed pixels ``[H, W]`` bool of each pattern: ``top`` / ``left`` half, ``random`` fraction."""
    s = exp.size
    top = torch.zeros(s, s, dtype=torch.bool)
    top[: s // 2] = True
    gen = torch.Generator().manual_seed(exp.seed + 7)
    random = (torch.randperm(s * s, generator=gen) < round(exp.random_fraction * s * s)).reshape(s, s)
    return {"top": top, "left": top.T.contiguous(), "random": random}


def load_glyph_masks(exp: PriorExperiment) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train [n_train, H, W], test [n_test, H, W])`` glyph coverage masks in [0, 1]."""
    from ..data import GlyphConfig, glyphs

    cfg = GlyphConfig(max_rotation=exp.max_rotation, max_shift=exp.max_shift, scale=exp.scale, max_shear=0.05)
    masks = glyphs(n=exp.n_train + exp.n_test, size=exp.size, seed=exp.data_seed, config=cfg).masks   # [N, H, W]
    return masks[: exp.n_train], masks[exp.n_train :]


class ConditionedField(nn.Module):
    """``forward(codes [B, Z], coords [B, P, 2]) -> logits [B, P]``: an MLP on ``[z, gamma(x, y)]``."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], coord_dim: int, latent: int, width: int,
                 depth: int):
        super().__init__()
        self.encode = encode
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(latent + coord_dim if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, codes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        b, p, _ = coords.shape
        z = codes[:, None, :].expand(b, p, codes.shape[-1])                    # [B, Z] -> [B, P, Z]
        return self.net(torch.cat([z, self.encode(coords)], dim=-1)).squeeze(-1)   # [B, P, Z + C] -> [B, P]


class HalfEncoder(nn.Module):
    """``[B, 1, H, W]`` glyph with its bottom half blanked (``H = W = 32``) -> code ``[B, Z]``."""

    def __init__(self, latent: int, size: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),               # [B, 32, H/2, W/2]
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),              # [B, 64, H/4, W/4]
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),              # [B, 64, H/8, W/8]
            nn.Flatten(), nn.Linear(64 * (size // 8) ** 2, 128), nn.ReLU(),    # [B, 128]
            nn.Linear(128, latent),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _coords(exp: PriorExperiment, device, size: int | None = None) -> torch.Tensor:
    size = size or exp.size
    return pixel_coordinates(size, size, device).reshape(-1, 2)                # [H W, 2], row-major


def train_autodecoder(field: ConditionedField, masks: torch.Tensor, exp: PriorExperiment, device,
                      progress: bool = True) -> tuple[torch.Tensor, list[tuple[int, float]]]:
    """Train ``field`` and one code per glyph jointly (auto-decoding); returns ``(codes [N, Z], history)``."""
    from tqdm.auto import tqdm

    n = masks.shape[0]
    gen = torch.Generator().manual_seed(exp.seed)
    codes = nn.Parameter((0.01 * torch.randn(n, exp.latent, generator=gen)).to(device))
    opt = torch.optim.Adam([{"params": field.parameters(), "lr": exp.lr}, {"params": [codes], "lr": exp.code_lr}])
    coords = _coords(exp, device)                                              # [P_all, 2]
    target = masks.reshape(n, -1).to(device)                                   # [N, H, W] -> [N, P_all]
    history = []
    bar = tqdm(range(exp.steps), desc="auto-decoder", disable=not progress, leave=False)
    for step in bar:
        idx = torch.randint(0, n, (exp.batch,), generator=gen).to(device)                       # [B]
        pix = torch.randint(0, coords.shape[0], (exp.batch, exp.pixels), generator=gen).to(device)   # [B, P]
        logits = field(codes[idx], coords[pix])                                # [B, P]
        data = F.binary_cross_entropy_with_logits(logits, target[idx[:, None], pix])
        loss = data + exp.code_reg * codes[idx].pow(2).sum(-1).mean()
        backward_and_step(loss, opt, "auto-decoder loss", step, inputs={"logits": logits, "codes": codes[idx]})
        if step % 50 == 0 or step == exp.steps - 1:
            history.append((step, float(data.detach())))
            bar.set_postfix(bce=f"{float(data.detach()):.3f}")
    return codes.detach(), history


def fit_codes(field: ConditionedField, masks: torch.Tensor, visible: torch.Tensor, exp: PriorExperiment, device,
              progress: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Test time: optimise one code per glyph on the ``visible [H, W]`` bool pixels only (network frozen).

    Returns:
        ``(codes [N, Z], snapshots)``: ``snapshots`` holds the predicted ``[N, H, W]`` masks at
        ``exp.snapshots`` evenly spaced steps (the last one is the final prediction).
    """
    from tqdm.auto import tqdm

    n = masks.shape[0]
    coords = _coords(exp, device)
    vis = visible.reshape(-1).to(device)                                       # [H, W] -> [P_all]
    target = masks.reshape(n, -1).to(device)[:, vis]                           # [N, P_vis]
    vis_coords = coords[vis].expand(n, -1, 2)                                  # [N, P_vis, 2]
    codes = nn.Parameter(torch.zeros(n, exp.latent, device=device))            # start at the prior's mean
    opt = torch.optim.Adam([codes], lr=exp.fit_lr)
    keep = set(torch.linspace(0, exp.fit_steps, max(exp.snapshots, 2)).round().long().tolist())
    snapshots = []
    field.requires_grad_(False)
    try:
        for step in tqdm(range(exp.fit_steps + 1), desc="fit codes", disable=not progress, leave=False):
            if step in keep:
                snapshots.append(predict(field, codes.detach(), exp, device).cpu())
            if step == exp.fit_steps:
                break
            logits = field(codes, vis_coords)                                  # [N, P_vis]
            loss = F.binary_cross_entropy_with_logits(logits, target) + exp.code_reg * codes.pow(2).sum(-1).mean()
            backward_and_step(loss, opt, "code-fitting loss", step, inputs={"logits": logits, "codes": codes})
    finally:
        field.requires_grad_(True)
    return codes.detach(), snapshots


@torch.no_grad()
def predict(field: ConditionedField, codes: torch.Tensor, exp: PriorExperiment, device,
            size: int | None = None) -> torch.Tensor:
    """Masks ``[N, S, S]`` drawn by ``field`` from ``codes [N, Z]`` at ``size`` (default ``exp.size``) pixels a side
    (pixel centres of the same square [-1, 1]^2, whatever the resolution)."""
    size = size or exp.size
    coords = _coords(exp, device, size).expand(codes.shape[0], -1, 2)          # [N, P_all, 2]
    return torch.sigmoid(field(codes.to(device), coords)).reshape(-1, size, size)   # [N, P] -> [N, S, S]


def blank_hidden(masks: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]`` masks -> ``[N, 1, H, W]`` encoder input with the hidden pixels set to 0."""
    return (masks * visible.to(masks))[:, None]


def train_encoder(field: ConditionedField, masks: torch.Tensor, visible: torch.Tensor, exp: PriorExperiment, device,
                  progress: bool = True) -> tuple[HalfEncoder, list[tuple[int, float]]]:
    """Train a :class:`HalfEncoder` (visible part -> code) through the frozen ``field`` on whole glyphs."""
    from tqdm.auto import tqdm

    torch.manual_seed(exp.seed + 1)
    n = masks.shape[0]
    gen = torch.Generator().manual_seed(exp.seed + 1)
    enc = HalfEncoder(exp.latent, exp.size).to(device)
    opt = torch.optim.Adam(enc.parameters(), lr=exp.encoder_lr)
    coords = _coords(exp, device)
    inputs = blank_hidden(masks, visible).to(device)                           # [N, 1, H, W]
    target = masks.reshape(n, -1).to(device)                                   # [N, P_all]
    history = []
    bar = tqdm(range(exp.encoder_steps), desc="encoder", disable=not progress, leave=False)
    field.requires_grad_(False)
    try:
        for step in bar:
            idx = torch.randint(0, n, (exp.batch,), generator=gen).to(device)
            pix = torch.randint(0, coords.shape[0], (exp.batch, exp.pixels), generator=gen).to(device)
            logits = field(enc(inputs[idx]), coords[pix])                      # [B, P]
            loss = F.binary_cross_entropy_with_logits(logits, target[idx[:, None], pix])
            backward_and_step(loss, opt, "encoder loss", step, inputs={"logits": logits})
            if step % 50 == 0 or step == exp.encoder_steps - 1:
                history.append((step, float(loss.detach())))
                bar.set_postfix(bce=f"{float(loss.detach()):.3f}")
    finally:
        field.requires_grad_(True)
    return enc.eval(), history


def hidden_mse(pred: torch.Tensor, masks: torch.Tensor, visible: torch.Tensor) -> float:
    """Mean squared error over the hidden pixels (``~visible``) of ``[N, H, W]`` masks."""
    hidden = ~visible.bool()
    require_finite("predicted masks", pred)
    return float(((pred.cpu() - masks.cpu())[:, hidden] ** 2).mean())


def grey_fraction(masks: torch.Tensor, low: float = 0.25, high: float = 0.75) -> float:
    """Fraction of the pixels of ``masks`` whose coverage lies strictly between ``low`` and ``high``."""
    return float(((masks > low) & (masks < high)).float().mean())


def interpolate_codes(field: ConditionedField, codes: torch.Tensor, masks: torch.Tensor, exp: PriorExperiment,
                      device) -> dict[str, torch.Tensor]:
    """Glyphs on the straight line between the codes of pairs ``(2i, 2i + 1)`` of ``codes``, against a cross-fade.

    Returns:
        ``decoded [n_pairs, n_interp, H, W]`` (``field`` at ``(1 - a) z_2i + a z_2i+1``) and
        ``crossfade [n_pairs, n_interp, H, W]`` (``(1 - a) m_2i + a m_2i+1`` of the true masks), for ``a`` in
        ``linspace(0, 1, n_interp)``.
    """
    a = torch.linspace(0, 1, exp.n_interp)[None, :, None]                      # [1, T, 1]
    za, zb = codes[0 : 2 * exp.n_pairs : 2].cpu(), codes[1 : 2 * exp.n_pairs : 2].cpu()   # [K, Z] each
    line = (1 - a) * za[:, None] + a * zb[:, None]                             # [K, T, Z]
    k = line.shape[0]
    decoded = predict(field, line.reshape(-1, line.shape[-1]), exp, device).cpu()
    ma, mb = masks[0 : 2 * k : 2], masks[1 : 2 * k : 2]                        # [K, H, W]
    fade = (1 - a[..., None]) * ma[:, None] + a[..., None] * mb[:, None]       # [K, T, H, W]
    return {"decoded": decoded.reshape(k, exp.n_interp, exp.size, exp.size), "crossfade": fade}


def run(
    positional_encoding: Callable | None = None,
    exp: PriorExperiment | None = None,
    *,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train the auto-decoder and the encoder (top halves), complete the test glyphs from each observation
    pattern, render at a higher resolution and interpolate codes.

    Returns:
        ``metrics``: ``mse_hidden_mean_glyph`` / ``mse_hidden_autodecoder`` / ``mse_hidden_encoder`` (top half),
        the same with a ``_left`` / ``_random`` suffix, ``mse_visible_autodecoder`` (top half),
        ``mse_native`` / ``mse_upsampled`` (all pixels of the random-pattern fits, at the training resolution and
        rendered ``upsample`` times finer then averaged back) and ``grey_fraction_code`` /
        ``grey_fraction_crossfade`` (midpoints of the interpolations); ``patterns``, ``autodecoder`` /
        ``encoder`` (``{pattern: [N, H, W]}``), ``upsampled`` (``[N, S, S]``), ``interpolation``,
        ``snapshots`` (top half), ``field``, ``encoder_net``, codes, histories, ``test`` and ``exp``.
    """
    positional_encoding = resolve("positional_encoding", positional_encoding)
    exp = exp or (PriorExperiment.smoke() if smoke_mode() else PriorExperiment())
    device = device or pick_device()
    require_implemented("positional_encoding", positional_encoding, torch.zeros(1, 2), 1)
    torch.manual_seed(exp.seed)
    train, test = load_glyph_masks(exp)
    patterns = visible_patterns(exp)
    field = ConditionedField(lambda c: positional_encoding(c, exp.num_freqs), 2 * (1 + 2 * exp.num_freqs),
                             exp.latent, exp.width, exp.depth).to(device)
    train_codes, ad_hist = train_autodecoder(field, train, exp, device, progress)
    field.eval()
    enc, enc_hist = train_encoder(field, train, patterns["top"], exp, device, progress)
    mean_glyph = train.mean(0, keepdim=True).expand_as(test)                   # [1, H, W] -> [N, H, W]
    metrics, pred_ad, pred_enc, test_codes, snapshots = {}, {}, {}, {}, []
    for name, visible in patterns.items():
        test_codes[name], snaps = fit_codes(field, test, visible, exp, device, progress)
        snapshots = snaps if name == "top" else snapshots
        pred_ad[name] = snaps[-1]
        with torch.no_grad():
            pred_enc[name] = predict(field, enc(blank_hidden(test, visible).to(device)), exp, device).cpu()
        suffix = "" if name == "top" else f"_{name}"
        metrics[f"mse_hidden_mean_glyph{suffix}"] = hidden_mse(mean_glyph, test, visible)
        metrics[f"mse_hidden_autodecoder{suffix}"] = hidden_mse(pred_ad[name], test, visible)
        metrics[f"mse_hidden_encoder{suffix}"] = hidden_mse(pred_enc[name], test, visible)
    metrics["mse_visible_autodecoder"] = hidden_mse(pred_ad["top"], test, ~patterns["top"])
    nothing = torch.zeros(exp.size, exp.size, dtype=torch.bool)                # every pixel counts as hidden
    fine = predict(field, test_codes["random"], exp, device, exp.size * exp.upsample).cpu()   # [N, S, S]
    metrics["mse_native"] = hidden_mse(pred_ad["random"], test, nothing)
    metrics["mse_upsampled"] = hidden_mse(F.avg_pool2d(fine[:, None], exp.upsample)[:, 0], test, nothing)
    interp = interpolate_codes(field, train_codes, train, exp, device)
    mid = exp.n_interp // 2
    metrics["grey_fraction_code"] = grey_fraction(interp["decoded"][:, mid])
    metrics["grey_fraction_crossfade"] = grey_fraction(interp["crossfade"][:, mid])
    return {"metrics": metrics, "test": test, "patterns": patterns, "visible": patterns["top"],
            "autodecoder": pred_ad, "encoder": pred_enc, "upsampled": fine, "interpolation": interp,
            "snapshots": snapshots, "field": field, "encoder_net": enc, "train_codes": train_codes,
            "test_codes": test_codes, "history": {"autodecoder": ad_hist, "encoder": enc_hist}, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.autodecoder",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="auto-decoder training steps (default 1500; 40 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = PriorExperiment.smoke() if smoke_mode() else PriorExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, steps=args.steps)
    m = run(exp=exp, progress=sys.stderr.isatty())["metrics"]
    print(f"hidden-half MSE of the mean training glyph: {m['mse_hidden_mean_glyph']:.4f}; "
          f"auto-decoder fit on the visible half: {m['mse_visible_autodecoder']:.4f}")
    print(f"resolution: MSE {m['mse_native']:.4f} at {exp.size} px, {m['mse_upsampled']:.4f} rendered at "
          f"{exp.size * exp.upsample} px and averaged back; interpolation midpoints: grey pixels "
          f"{m['grey_fraction_code']:.3f} (codes) vs {m['grey_fraction_crossfade']:.3f} (cross-fade)")
    print(format_metrics({f"mse_hidden_{who}{suffix}": m[f"mse_hidden_{who}{suffix}"]
                          for suffix in ("", "_left", "_random") for who in ("autodecoder", "encoder")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
