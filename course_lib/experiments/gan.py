"""DCGAN on glyphs (or MNIST): does adversarial training produce samples that look like the data?

    python -m course_lib.experiments.gan [--mnist DIR] [--steps N] [--saturating]

Trains the DCGAN of :mod:`course_lib.dcgan` on 32x32 grey glyph masks (white characters on black, from
:func:`course_lib.data.glyphs`) or on MNIST digits padded to 32x32, then measures how close the samples are to
held-out real images with a Fréchet distance (FD) in the feature space of a small classifier trained on the
real labels (the idea of FID, Heusel et al. 2017, with a task-specific network instead of Inception, so the
numbers are only comparable within this experiment). It prints, last, ``fd_ratio=FD(untrained G) /
FD(trained G)`` (how much training closed the gap) and the class coverage of the samples.

References:
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
    NeurIPS 2017 (FID; the trace term via eigenvalues avoids a complex matrix square root).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import discriminator_loss as ref_discriminator_loss
from .. import generator_loss as ref_generator_loss
from ..dcgan import DCGANConfig, Generator, init_weights, sample, train_dcgan
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["GANExperiment", "load_images", "GlyphClassifier", "train_classifier", "frechet_distance", "run", "main"]


@dataclass(frozen=True)
class GANExperiment:
    """Default settings finish in a few minutes on a 2-core CPU; ``smoke()`` in seconds."""

    n_train: int = 12000
    n_test: int = 2000
    steps: int = 2500
    classifier_epochs: int = 3
    n_eval: int = 1000
    seed: int = 0

    @staticmethod
    def smoke() -> "GANExperiment":
        return GANExperiment(n_train=1024, n_test=256, steps=30, classifier_epochs=1, n_eval=256)


def load_images(n: int, seed: int, mnist_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(images [n, 1, 32, 32] in [0, 1], labels [n], n_classes)`` from glyph masks or MNIST (padded 28->32)."""
    from .. import data

    if mnist_dir is not None:
        ds = data.load_mnist(mnist_dir, split="test")
        images = F.pad(ds.images, (2, 2, 2, 2))[:n]                 # [N, 1, 28, 28] -> [N, 1, 32, 32]
        return images, ds.labels[:n], len(ds.classes)
    ds = data.glyphs(n=n, size=32, seed=seed)
    return ds.masks[:, None], ds.labels, len(ds.classes)            # [N, 32, 32] -> [N, 1, 32, 32]


class GlyphClassifier(nn.Module):
    """A small CNN for ``[N, 1, 32, 32]`` images; ``features`` gives the 128-d layer the FD is measured in."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # [N, 32, 16, 16]
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # [N, 64, 8, 8]
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # [N, 64, 4, 4]
            nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(),               # [N, 128]
        )
        self.head = nn.Linear(128, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_classifier(images, labels, n_classes, epochs, seed=0, device="cpu") -> GlyphClassifier:
    torch.manual_seed(seed)
    net = GlyphClassifier(n_classes).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), 128):
            idx = perm[start : start + 128]
            loss = F.cross_entropy(net(images[idx].to(device)), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def _features(net: GlyphClassifier, images: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    feats, probs = [], []
    for chunk in images.split(256):
        f = net.features(chunk.to(device))
        feats.append(f.double().cpu())
        probs.append(net.head(f).softmax(-1).cpu())
    return torch.cat(feats), torch.cat(probs)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a [N, D]`` and ``b [M, D]`` (float64).

    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``; the trace of the square root is the sum of the
    square roots of the (real, non-negative) eigenvalues of ``S_a S_b``.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eig = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0)
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * eig.sqrt().sum())


def run(
    discriminator_loss: Callable = ref_discriminator_loss,
    generator_loss: Callable = ref_generator_loss,
    exp: GANExperiment | None = None,
    *,
    saturating: bool = False,
    mnist_dir: str | Path | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train and evaluate; returns metrics plus the generator and the training history for plotting."""
    exp = exp or (GANExperiment.smoke() if smoke_mode() else GANExperiment())
    device = device or pick_device()
    require_implemented("discriminator_loss", discriminator_loss, torch.zeros(2), torch.zeros(2))
    require_implemented("generator_loss", generator_loss, torch.zeros(2))
    images, labels, n_classes = load_images(exp.n_train + exp.n_test, exp.seed, mnist_dir)
    train, test, test_labels = images[: exp.n_train], images[exp.n_train :], labels[exp.n_train :]
    clf = train_classifier(images[: exp.n_train], labels[: exp.n_train], n_classes, exp.classifier_epochs,
                           exp.seed, device)
    cfg = DCGANConfig(channels=1)
    g_net, d_net, history = train_dcgan(train, exp.steps, discriminator_loss, generator_loss, cfg,
                                        saturating=saturating, seed=exp.seed, device=device,
                                        snapshot_every=max(1, exp.steps // 20), progress=progress)
    z = torch.randn(exp.n_eval, cfg.z_dim, generator=torch.Generator().manual_seed(exp.seed + 1)).to(device)
    untrained = Generator(cfg).to(device)
    untrained.apply(init_weights)
    f_test, p_test = _features(clf, test[: exp.n_eval], device)
    f_fake, p_fake = _features(clf, sample(g_net, z), device)
    f_init, _ = _features(clf, sample(untrained, z), device)
    fd_trained, fd_untrained = frechet_distance(f_test, f_fake), frechet_distance(f_test, f_init)
    half = len(f_test) // 2
    predicted = p_fake.argmax(-1)
    metrics = {
        "classifier_acc": float((p_test.argmax(-1) == test_labels[: exp.n_eval]).float().mean()),
        "fd_real_vs_real": frechet_distance(f_test[:half], f_test[half:]),
        "fd_untrained": fd_untrained,
        "fd_trained": fd_trained,
        "class_coverage": int(torch.bincount(predicted, minlength=n_classes).gt(exp.n_eval / n_classes / 4).sum()),
        "n_classes": n_classes,
        "fd_ratio": fd_untrained / max(fd_trained, 1e-12),
    }
    return {"metrics": metrics, "generator": g_net, "history": history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.gan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", metavar="DIR", help="folder with MNIST idx files (t10k-*); default: glyphs")
    parser.add_argument("--steps", type=int, help="training steps (default 2500; 30 with COURSE_SMOKE=1)")
    parser.add_argument("--saturating", action="store_true", help="train G with the saturating (minimax) loss")
    args = parser.parse_args(argv)
    exp = GANExperiment.smoke() if smoke_mode() else GANExperiment()
    if args.steps is not None:
        if args.steps < 1:
            parser.error("--steps must be >= 1")
        exp = GANExperiment(**{**exp.__dict__, "steps": args.steps})
    if args.mnist is not None and not Path(args.mnist).is_dir():
        parser.error(f"--mnist {args.mnist}: not a directory")
    out = run(exp=exp, saturating=args.saturating, mnist_dir=args.mnist, progress=sys.stderr.isatty())
    m = out["metrics"]
    print(f"classifier accuracy on real test images: {m['classifier_acc']:.3f}")
    print(f"FD real vs real {m['fd_real_vs_real']:.2f}, untrained G {m['fd_untrained']:.2f}, trained G {m['fd_trained']:.2f}")
    print(format_metrics({"fd_ratio": m["fd_ratio"], "class_coverage": m["class_coverage"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
