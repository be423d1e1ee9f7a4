"""Hypernetwork or concatenation: two ways to condition a coordinate network on a code, on the same glyph prior.

    python -m course_lib.experiments.hypernetwork [--steps N]

The auto-decoder of :mod:`.autodecoder` conditions its network by **concatenation**: ``f([z, gamma(x)])``. A
**hypernetwork** instead maps the code to the *weights* of a small network, ``theta = h(z)``, and evaluates that
network at the points: ``f_theta(gamma(x))`` (``batched_mlp``: one MLP per glyph, all at once). Concatenation is
the special case in which the code changes only the first layer's bias: ``W [z, gamma] + b = W_x gamma +
(W_z z + b)`` -- a hypernetwork that is linear in ``z`` and outputs one bias vector (:func:`concat_as_hypernetwork`
writes it out). A full hypernetwork lets the code change every weight, at the price of a large output layer.

Both are trained as auto-decoders on the same 2,000 glyphs with the same codes (16 floats), the same encoding and
the same optimiser settings, and complete the same unseen glyphs from their top half and from 25% of their
pixels. The experiment reports the errors, the parameters of each model and the multiply-adds per query point.
The concatenation model trained by :mod:`.autodecoder` with the same settings can be passed in instead of
training it again. The command line prints, last, ``mse_hidden_concat=... mse_hidden_hyper=...
mse_hidden_concat_random=... mse_hidden_hyper_random=...``.

References:
    Ha, Dai, Le, "HyperNetworks", ICLR 2017. Sitzmann, Zollhoefer, Wetzstein, "Scene Representation Networks",
    NeurIPS 2019 (a hypernetwork from the latent code to the scene network). Sitzmann et al., "Implicit Neural
    Representations with Periodic Activation Functions" (SIREN), NeurIPS 2020 (hypernetwork priors over shapes).
    Dupont et al., "From data to functa", ICML 2022 (modulations: codes that shift biases only).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn as nn

from ..manifest import resolve
from ..models import count_parameters
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented
from .autodecoder import (ConditionedField, PriorExperiment, fit_codes, hidden_mse, load_glyph_masks, predict,
                          train_autodecoder, visible_patterns)

__all__ = ["HyperExperiment", "HyperField", "concat_as_hypernetwork", "count_parameters", "macs_per_point", "run",
           "main"]


@dataclass(frozen=True)
class HyperExperiment:
    """Default settings: about 40 s on one CPU core for the hypernetwork (and as much again for the concatenation
    model, unless passed in); ``smoke()`` seconds."""

    prior: PriorExperiment = field(default_factory=PriorExperiment)   # glyphs, codes, training: as autodecoder
    hidden: tuple[int, ...] = (32, 32)     # the per-glyph network: gamma(x, y) -> 32 -> 32 -> 1
    hyper_width: int = 64                  # the hypernetwork: z -> 64 -> all weights of the per-glyph network
    n_recon: int = 200                     # training glyphs redrawn from their codes (reconstruction error)

    @staticmethod
    def smoke() -> "HyperExperiment":
        return HyperExperiment(prior=PriorExperiment.smoke(), hidden=(8,), hyper_width=16, n_recon=16)


class HyperField(nn.Module):
    """``forward(codes [B, Z], coords [B, P, 2]) -> logits [B, P]`` through a per-code MLP.

    Math::

        theta_b = h(z_b) = W_2 relu(W_1 z_b + c_1) + c_2        all weights of the per-glyph MLP, [n]
        logit(x) = batched_mlp(gamma(x), theta, sizes)          sizes = [2 (1 + 2L), *hidden, 1]

    At initialisation ``c_2`` holds the weights of a freshly initialised ``nn.Linear`` stack and ``W_2`` is small,
    so every code starts from a well-scaled network.
    """

    def __init__(self, batched_mlp: Callable, encode: Callable[[torch.Tensor], torch.Tensor], coord_dim: int,
                 latent: int, hidden: tuple[int, ...], hyper_width: int):
        super().__init__()
        self.mlp, self.encode = batched_mlp, encode
        self.sizes = [coord_dim, *hidden, 1]
        target = [nn.Linear(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        flat = torch.cat([t for lin in target for t in (lin.weight.reshape(-1), lin.bias)])   # [n]
        self.hyper = nn.Sequential(nn.Linear(latent, hyper_width), nn.ReLU(), nn.Linear(hyper_width, flat.numel()))
        with torch.no_grad():
            self.hyper[-1].bias.copy_(flat)
            self.hyper[-1].weight.mul_(0.1)

    def forward(self, codes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        params = self.hyper(codes)                                             # [B, n]
        return self.mlp(self.encode(coords), params, self.sizes).squeeze(-1)   # [B, P, 1] -> [B, P]


def concat_as_hypernetwork(fld: ConditionedField, codes: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """The concatenation network written as a hypernetwork: ``(params [N, n], sizes)`` such that
    ``batched_mlp(encode(coords), params, sizes)[..., 0] == fld(codes, coords)``.

    Math::

        W_1 [z, g] + b_1 = W_x g + (W_z z + b_1)       only the first bias depends on the code
    """
    linears = [m for m in fld.net if isinstance(m, nn.Linear)]
    latent = codes.shape[-1]
    first = linears[0]
    w_z, w_x = first.weight[:, :latent], first.weight[:, latent:]             # [H, Z], [H, C]
    n = codes.shape[0]
    parts = [w_x.reshape(1, -1).expand(n, -1), codes @ w_z.T + first.bias]    # [N, H C], [N, H]
    for lin in linears[1:]:
        parts += [lin.weight.reshape(1, -1).expand(n, -1), lin.bias.expand(n, -1)]
    sizes = [w_x.shape[1]] + [lin.out_features for lin in linears]
    return torch.cat(parts, -1), sizes


def macs_per_point(sizes: list[int]) -> int:
    """Multiply-adds of one MLP evaluation with layer widths ``sizes``."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def run(
    batched_mlp: Callable | None = None,
    positional_encoding: Callable | None = None,
    exp: HyperExperiment | None = None,
    *,
    concat: dict | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train the hypernetwork auto-decoder (and the concatenation one, unless ``concat`` is given); compare.

    Args:
        concat: the result of ``autodecoder.run(positional_encoding, exp.prior)`` (the concatenation model trained
            with the same settings: its ``field`` and ``train_codes`` are used).

    Returns:
        ``metrics`` (``mse_hidden_{concat,hyper}`` from the top half, ``..._random`` from 25% of the pixels,
        ``mse_recon_{concat,hyper}`` on training glyphs, ``params_{concat,hyper}``, ``macs_per_point_{...}``),
        ``pred`` (``{model: {pattern: [N, H, W]}}``), ``fields``, ``test`` and ``exp``.
    """
    batched_mlp = resolve("batched_mlp", batched_mlp)
    positional_encoding = resolve("positional_encoding", positional_encoding)
    exp = exp or (HyperExperiment.smoke() if smoke_mode() else HyperExperiment())
    device = device or pick_device()
    require_implemented("positional_encoding", positional_encoding, torch.zeros(1, 2), 1)
    require_implemented("batched_mlp", batched_mlp, torch.zeros(1, 1, 1), torch.zeros(1, 2), [1, 1])
    pr = exp.prior
    train, test = load_glyph_masks(pr)
    patterns = visible_patterns(pr)
    encode = lambda c: positional_encoding(c, pr.num_freqs)                    # noqa: E731
    coord_dim = 2 * (1 + 2 * pr.num_freqs)
    if concat is None:
        torch.manual_seed(pr.seed)
        concat_field = ConditionedField(encode, coord_dim, pr.latent, pr.width, pr.depth).to(device)
        codes = {"concat": train_autodecoder(concat_field, train, pr, device, progress)[0]}
    else:
        concat_field, codes = concat["field"], {"concat": concat["train_codes"]}
    torch.manual_seed(pr.seed)
    hyper = HyperField(batched_mlp, encode, coord_dim, pr.latent, exp.hidden, exp.hyper_width).to(device)
    codes["hyper"], _ = train_autodecoder(hyper, train, pr, device, progress)
    fields = {"concat": concat_field.eval(), "hyper": hyper.eval()}
    metrics, pred = {}, {}
    everything = torch.zeros(pr.size, pr.size, dtype=torch.bool)               # all pixels count as "hidden"
    for name, fld in fields.items():
        pred[name] = {}
        for pattern in ("top", "random"):
            _, snaps = fit_codes(fld, test, patterns[pattern], pr, device, progress)
            pred[name][pattern] = snaps[-1]
            suffix = "" if pattern == "top" else f"_{pattern}"
            metrics[f"mse_hidden_{name}{suffix}"] = hidden_mse(snaps[-1], test, patterns[pattern])
        k = min(exp.n_recon, len(train))
        metrics[f"mse_recon_{name}"] = hidden_mse(predict(fld, codes[name][:k], pr, device), train[:k], everything)
    metrics["params_concat"] = count_parameters(concat_field)
    metrics["params_hyper"] = count_parameters(hyper)
    metrics["macs_per_point_concat"] = macs_per_point([pr.latent + coord_dim] + [pr.width] * pr.depth + [1])
    metrics["macs_per_point_hyper"] = macs_per_point(hyper.sizes)
    return {"metrics": metrics, "pred": pred, "fields": fields, "test": test, "patterns": patterns, "exp": exp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.hypernetwork",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="auto-decoder training steps (default 1500; 40 with COURSE_SMOKE=1)")
    args = parser.parse_args(argv)
    exp = HyperExperiment.smoke() if smoke_mode() else HyperExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        exp = replace(exp, prior=replace(exp.prior, steps=args.steps))
    m = run(exp=exp, progress=sys.stderr.isatty())["metrics"]
    print(f"parameters: concatenation {m['params_concat']}, hypernetwork {m['params_hyper']}; multiply-adds per "
          f"point: {m['macs_per_point_concat']} and {m['macs_per_point_hyper']}")
    print(format_metrics({k: m[k] for k in ("mse_hidden_concat", "mse_hidden_hyper", "mse_hidden_concat_random",
                                            "mse_hidden_hyper_random")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
