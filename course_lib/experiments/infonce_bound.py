"""InfoNCE as a mutual-information bound, on a toy whose mutual information is known exactly.

    python -m course_lib.experiments.infonce_bound [--dim D] [--rho R] [--steps S]

X and Y are standard Gaussians in R^d whose coordinates are pairwise correlated, ``y = rho x + sqrt(1 - rho^2)
e`` with ``e ~ N(0, I)``, so the mutual information is known in closed form::

    I(X; Y) = -(d / 2) log(1 - rho^2)                          (nats)

For a batch of N pairs, query x_i, positive y_i and the other N - 1 y_j as negatives, any critic f gives

    I(X; Y) >= log N - E[L_InfoNCE(f)]                          (van den Oord et al. 2018; Poole et al. 2019)

and the right side can never exceed log N (the loss is a cross-entropy, so L >= 0). The experiment trains a
small critic -- two MLPs g(x), h(y), scored by cosine similarity / temperature, i.e. exactly the student's
``info_nce_loss`` -- once for every N, and compares the estimate ``log N - L`` on fresh batches with the
true MI, with log N, and with the bound that the *optimal* critic ``log p(y | x) / p(y)`` attains (computed
exactly for Gaussians, by Monte Carlo over batches). The point of the picture: with few negatives the bound
is stuck below log N however good the critic is; only large N lets it approach the true MI.

It prints, last, ``mi_true=... infonce_max_n=...`` (the trained critic's estimate at the largest N).

References:
    van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018 (InfoNCE and
    the bound I >= log N - L).
    Poole, Ozair, van den Oord, Alemi, Tucker, "On Variational Bounds of Mutual Information", ICML 2019
    (the bound's log N ceiling and its bias; correlated Gaussians as the benchmark).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn

from ..data.cache import single_threaded
from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..utils import pick_device, progress_bar, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["InfoNCEToy", "gaussian_mi", "sample_pairs", "in_batch_negatives", "optimal_critic_scores",
           "optimal_bound", "Critic", "run", "plot", "main"]


@dataclass(frozen=True)
class InfoNCEToy:
    """Default settings: about half a minute on a 2-core CPU; ``smoke()`` in a few seconds."""

    dim: int = 5
    rho: float = 0.8                     # I = -(5/2) log(0.36) = 2.55 nats
    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128)
    steps: int = 300                     # critic training steps for every N
    lr: float = 2e-3
    temperature: float = 0.1
    hidden: int = 64
    embed: int = 16
    eval_batches: int = 20               # fresh batches the estimate is averaged over
    seed: int = 0

    @staticmethod
    def smoke() -> "InfoNCEToy":
        return InfoNCEToy(batch_sizes=(2, 8, 32), steps=30, eval_batches=4)

    def validate(self) -> "InfoNCEToy":
        if self.dim < 1 or self.steps < 1 or self.eval_batches < 1:
            raise ValueError(f"dim, steps and eval_batches must be >= 1, got {self.dim}, {self.steps}, "
                             f"{self.eval_batches}")
        if not 0.0 <= self.rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {self.rho}")
        if not self.batch_sizes or min(self.batch_sizes) < 2:
            raise ValueError(f"batch_sizes must be batch sizes >= 2 (one positive and >= 1 negative), got "
                             f"{self.batch_sizes}")
        if self.temperature <= 0 or self.lr <= 0:
            raise ValueError(f"temperature and lr must be > 0, got {self.temperature}, {self.lr}")
        return self


def gaussian_mi(rho: float, dim: int) -> float:
    """``-(dim / 2) log(1 - rho^2)``: the MI of ``dim`` independent coordinate pairs with correlation ``rho``."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return -0.5 * dim * math.log1p(-rho * rho)


def sample_pairs(n: int, dim: int, rho: float, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs ``(x [n, dim], y [n, dim])`` with ``y = rho x + sqrt(1 - rho^2) e``, x and e standard normal."""
    x = torch.randn(n, dim, generator=generator, dtype=dtype)
    e = torch.randn(n, dim, generator=generator, dtype=dtype)
    return x, rho * x + math.sqrt(1.0 - rho * rho) * e


def in_batch_negatives(y: torch.Tensor) -> torch.Tensor:
    """``[N, D] -> [N, N - 1, D]``: row i holds every ``y_j`` with ``j != i``, in the order i+1, i+2, ... (mod N).

    One ``index_select`` (its backward is an ``index_add``), so gradients reach every row of ``y``.
    """
    if y.dim() != 2 or y.shape[0] < 2:
        raise ValueError(f"y must be [N, D] with N >= 2, got shape {list(y.shape)}")
    n = y.shape[0]
    idx = (torch.arange(n, device=y.device)[:, None] + torch.arange(1, n, device=y.device)[None, :]) % n   # [N, N-1]
    return torch.index_select(y, 0, idx.flatten()).view(n, n - 1, y.shape[1])                            # [N, N-1, D]


def optimal_critic_scores(x: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    """``[N, N]`` scores ``s_ij = log p(y_j | x_i) - log p(y_j)`` for the Gaussian pairs (exact).

    ``p(y | x) = N(rho x, (1 - rho^2) I)`` and ``p(y) = N(0, I)``, so
    ``s_ij = -|y_j - rho x_i|^2 / (2 (1 - rho^2)) + |y_j|^2 / 2 - (d / 2) log(1 - rho^2)``.
    """
    var = 1.0 - rho * rho
    diff = y[None, :, :] - rho * x[:, None, :]                                       # [N, N, D]
    return (-(diff ** 2).sum(-1) / (2 * var) + (y ** 2).sum(-1)[None, :] / 2
            - 0.5 * x.shape[1] * math.log(var))                                       # [N, N]


def optimal_bound(n: int, dim: int, rho: float, batches: int, generator: torch.Generator) -> float:
    """Monte Carlo mean of ``log N - L`` with the optimal critic (the best any critic can do at this N)."""
    vals = []
    for _ in range(batches):
        x, y = sample_pairs(n, dim, rho, generator, torch.float64)
        s = optimal_critic_scores(x, y, rho)                                  # [N, N], positives on the diagonal
        loss = (torch.logsumexp(s, dim=1) - s.diagonal()).mean()
        vals.append(math.log(n) - float(loss))
    return sum(vals) / len(vals)


class Critic(nn.Module):
    """Separable critic: ``score(x, y) = cos(g(x), h(y)) / temperature``, g and h two-hidden-layer MLPs."""

    def __init__(self, dim: int, hidden: int = 64, embed: int = 16):
        super().__init__()

        def mlp() -> nn.Sequential:
            return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, embed))

        self.g, self.h = mlp(), mlp()

    def loss(self, info_nce_loss: Callable, x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
        """InfoNCE of a batch of pairs, the other pairs' y as negatives."""
        hy = self.h(y)                                                                # [N, E]
        return info_nce_loss(self.g(x), hy, in_batch_negatives(hy), temperature)


def run(
    info_nce_loss: Callable | None = None,
    exp: InfoNCEToy | None = None,
    *,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train one critic per batch size; returns ``{"mi_true", "batch_sizes", "log_n", "learned", "optimal",
    "metrics"}`` (lists aligned with ``batch_sizes``; estimates in nats)."""
    info_nce_loss = resolve("info_nce_loss", info_nce_loss)
    exp = (exp or (InfoNCEToy.smoke() if smoke_mode() else InfoNCEToy())).validate()
    device = device or pick_device()
    require_implemented("info_nce_loss", info_nce_loss, torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 1, 3))
    mi = gaussian_mi(exp.rho, exp.dim)
    # matrices of a few hundred numbers: on a CPU, threads cost more than they save
    with single_threaded() if device.type == "cpu" else contextlib.nullcontext():
        learned, optimal = _train_critics(info_nce_loss, exp, device, progress)
    metrics = {"mi_true": mi, "infonce_max_n": learned[-1], "optimal_max_n": optimal[-1]}
    return {"mi_true": mi, "batch_sizes": list(exp.batch_sizes), "log_n": [math.log(n) for n in exp.batch_sizes],
            "learned": learned, "optimal": optimal, "metrics": metrics}


def _train_critics(info_nce_loss: Callable, exp: InfoNCEToy, device: torch.device,
                   progress: bool) -> tuple[list[float], list[float]]:
    learned, optimal = [], []
    bar = progress_bar(total=len(exp.batch_sizes) * exp.steps, desc="InfoNCE critics", enabled=progress)
    for n in exp.batch_sizes:
        torch.manual_seed(exp.seed + n)
        gen = torch.Generator().manual_seed(exp.seed * 7919 + n)
        critic = Critic(exp.dim, exp.hidden, exp.embed).to(device)
        opt = torch.optim.Adam(critic.parameters(), lr=exp.lr)
        for step in range(exp.steps):
            x, y = sample_pairs(n, exp.dim, exp.rho, gen)
            loss = critic.loss(info_nce_loss, x.to(device), y.to(device), exp.temperature)
            backward_and_step(loss, opt, f"InfoNCE loss of the critic for N={n}", step)
            if bar is not None:
                bar.update(1)
        with torch.no_grad():                                                         # fresh batches: an honest bound
            est = [math.log(n) - float(critic.loss(info_nce_loss, *(t.to(device) for t in sample_pairs(
                n, exp.dim, exp.rho, gen)), exp.temperature)) for _ in range(exp.eval_batches)]
        learned.append(require_finite(f"InfoNCE estimate for N={n}", sum(est) / len(est), "after training"))
        optimal.append(optimal_bound(n, exp.dim, exp.rho, exp.eval_batches, gen))
    if bar is not None:
        bar.close()
    return learned, optimal


def plot(result: dict, ax=None):
    """log N - L against N (log axis) for the trained and the optimal critic, with log N and the true MI."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    ns = result["batch_sizes"]
    ax.plot(ns, result["log_n"], "k:", label="log N (the ceiling)")
    ax.axhline(result["mi_true"], color="tab:red", ls="--", label=f"true MI = {result['mi_true']:.2f} nats")
    ax.plot(ns, result["optimal"], "o-", color="tab:green", label="bound with the optimal critic")
    ax.plot(ns, result["learned"], "s-", color="tab:blue", label="bound with the trained critic")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="batch size N (1 positive + N - 1 negatives)", ylabel="log N - L_InfoNCE  (nats)",
           ylim=(0, max(result["mi_true"], max(result["log_n"][:3])) * 1.25),
           title="InfoNCE lower-bounds the mutual information")
    ax.legend(fontsize=8)
    return ax


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.infonce_bound",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, help="dimensions d (default 5)")
    parser.add_argument("--rho", type=float, help="correlation per dimension, in [0, 1) (default 0.8)")
    parser.add_argument("--steps", type=int, help="critic training steps per batch size (default 300)")
    args = parser.parse_args(argv)
    exp = InfoNCEToy.smoke() if smoke_mode() else InfoNCEToy()
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        exp = replace(exp, **overrides).validate()
    except ValueError as exc:
        parser.error(str(exc))
    out = run(exp=exp, progress=sys.stderr.isatty())
    print(f"true MI {out['mi_true']:.3f} nats")
    print(" N     log N   trained   optimal")
    for n, ln, a, b in zip(out["batch_sizes"], out["log_n"], out["learned"], out["optimal"]):
        print(f"{n:4d}  {ln:6.3f}  {a:7.3f}  {b:8.3f}")
    print(format_metrics({"mi_true": out["mi_true"], "infonce_max_n": out["learned"][-1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
