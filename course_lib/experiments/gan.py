"""DCGAN on glyphs (or MNIST): does adversarial training produce samples that look like the data?

    python -m course_lib.experiments.gan [--mnist DIR] [--steps N] [--n-train N] [--n-test N] [--saturating]

Trains the DCGAN of :mod:`course_lib.dcgan` on 32x32 grey glyph masks (white characters on black, from
:func:`course_lib.data.glyphs`) or on MNIST digits padded to 32x32, then measures how close the samples are to
held-out real images with a Fréchet distance (FD) in the feature space of a small classifier trained on the
real labels (the idea of FID, Heusel et al. 2017, with a task-specific network instead of Inception, so the
numbers are only comparable within this experiment). It prints, last, ``fd_ratio=FD(untrained G) /
FD(trained G)`` (how much training closed the gap) and the class coverage of the samples.

With ``--mnist DIR`` the GAN and the classifier train on the train split (``train-*-idx*-ubyte[.gz]``) when
both its files are in DIR, and the FD is measured on the t10k images. When the train images are absent, the
10,000 t10k images hold both parts: the last ``n_test`` are held out and training uses at most the rest
(8,000 at the default ``n_test=2000``). Sizes that do not fit the files stop with a ``ValueError`` before any
training.

References:
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
    NeurIPS 2017 (FID; the trace term via eigenvalues avoids a complex matrix square root).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..dcgan import DCGANConfig, Generator, init_weights, sample, train_dcgan
from ..guards import backward_and_step, require_finite
from ..manifest import resolve
from ..utils import pick_device, smoke_mode
from . import format_metrics, require_implemented

__all__ = ["GANExperiment", "GANData", "default_experiment", "load_images", "load_data", "GlyphClassifier",
           "train_classifier", "frechet_distance", "run", "main"]


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

    def validate(self) -> "GANExperiment":
        for name in ("n_train", "n_test", "steps", "classifier_epochs", "n_eval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_train < DCGANConfig.batch_size:
            raise ValueError(f"n_train must be >= {DCGANConfig.batch_size} (one DCGAN batch), got {self.n_train}")
        if not 4 <= self.n_eval <= self.n_test:
            raise ValueError(f"n_eval must be in [4, n_test={self.n_test}] (the FD of real vs real splits the "
                             f"n_eval held-out images in two halves of >= 2), got {self.n_eval}")
        return self


@dataclass(frozen=True)
class GANData:
    """Training images ``[n_train, 1, 32, 32]`` and held-out images ``[n_test, 1, 32, 32]`` in [0, 1], labels."""

    train: torch.Tensor
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    n_classes: int
    source: str                     # where the two parts came from, in words


def _mnist_train_files(mnist_dir: str | Path) -> list[str]:
    """The train-split files of MNIST missing from ``mnist_dir`` (either name, with or without ``.gz``)."""
    root = Path(mnist_dir)
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    return [stem for stem in stems if not any((root / (stem + ext)).is_file() for ext in ("", ".gz"))]


def _mnist_count(mnist_dir: str | Path) -> int:
    """Number of t10k images, read from the small label file (its IDX header)."""
    from .. import data

    for ext in ("", ".gz"):
        path = Path(mnist_dir) / ("t10k-labels-idx1-ubyte" + ext)
        if path.is_file():
            return int(data.read_idx(path).shape[0])
    return 0


def default_experiment(mnist_dir: str | Path | None = None, **overrides) -> GANExperiment:
    """The default (or, with ``COURSE_SMOKE=1``, the smoke) settings with ``overrides``, fitted to the data.

    Sizes not given are fitted: with an MNIST folder that lacks the train images, ``n_train`` is capped at the
    t10k images left after the ``n_test`` held out (8000 by default), and ``n_eval`` at ``n_test``. Sizes given
    are kept as they are (:func:`load_data` refuses them when they do not fit).
    """
    exp = replace(GANExperiment.smoke() if smoke_mode() else GANExperiment(), **overrides)
    if "n_eval" not in overrides:
        exp = replace(exp, n_eval=min(exp.n_eval, exp.n_test))
    if mnist_dir is not None and "n_train" not in overrides and _mnist_train_files(mnist_dir):
        available = _mnist_count(mnist_dir) - exp.n_test
        if available >= 1:
            exp = replace(exp, n_train=min(exp.n_train, available))
    return exp


def _pad(images: torch.Tensor) -> torch.Tensor:
    return F.pad(images, (2, 2, 2, 2))                                  # [N, 1, 28, 28] -> [N, 1, 32, 32]


def load_data(exp: GANExperiment, mnist_dir: str | Path | None = None) -> GANData:
    """The training and held-out images of the experiment: glyphs, or MNIST padded to 32x32 (see the module
    docstring for which MNIST files are used).

    Raises:
        ValueError: when the data holds fewer images than ``exp.n_train`` + ``exp.n_test`` (the message names
            the sizes and the files); :class:`course_lib.data.DatasetError` for missing or malformed files.
    """
    from .. import data

    if mnist_dir is None:
        ds = data.glyphs(n=exp.n_train + exp.n_test, size=32, seed=exp.seed)
        images = ds.masks[:, None]                                      # [N, 32, 32] -> [N, 1, 32, 32]
        return GANData(images[: exp.n_train], ds.labels[: exp.n_train], images[exp.n_train :],
                       ds.labels[exp.n_train :], len(ds.classes), f"{len(ds)} generated glyphs")
    test = data.load_mnist(mnist_dir, split="test")
    missing = _mnist_train_files(mnist_dir)
    if not missing:
        train = data.load_mnist(mnist_dir, split="train")
        if len(train) < exp.n_train or len(test) < exp.n_test:
            raise ValueError(f"MNIST folder {mnist_dir}: n_train={exp.n_train} and n_test={exp.n_test} requested, but "
                             f"the train split holds {len(train)} images and the t10k split {len(test)}")
        return GANData(_pad(train.images[: exp.n_train]), train.labels[: exp.n_train], _pad(test.images[: exp.n_test]),
                       test.labels[: exp.n_test], len(test.classes),
                       f"MNIST: {exp.n_train} train-split images, {exp.n_test} t10k images held out")
    if exp.n_train + exp.n_test > len(test):
        raise ValueError(f"MNIST folder {mnist_dir}: n_train={exp.n_train} + n_test={exp.n_test} = "
                         f"{exp.n_train + exp.n_test} images requested, but without {' and '.join(missing)}[.gz] "
                         f"only the {len(test)} t10k images are there; lower n_train to at most "
                         f"{len(test) - exp.n_test} or add the train split")
    cut = len(test) - exp.n_test                                         # the last n_test images are held out
    return GANData(_pad(test.images[cut - exp.n_train : cut]), test.labels[cut - exp.n_train : cut],
                   _pad(test.images[cut:]), test.labels[cut:], len(test.classes),
                   f"MNIST t10k only ({' and '.join(missing)} absent): {exp.n_train} images for training, "
                   f"the last {exp.n_test} held out")


def load_images(n: int, seed: int, mnist_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(images [n, 1, 32, 32] in [0, 1], labels [n], n_classes)`` from glyph masks or the MNIST t10k split
    (padded 28->32), for previews.

    Raises:
        ValueError: when the MNIST t10k split holds fewer than ``n`` images.
    """
    from .. import data

    if mnist_dir is not None:
        ds = data.load_mnist(mnist_dir, split="test")
        if n > len(ds):
            raise ValueError(f"n={n} images requested, but {mnist_dir} holds {len(ds)} t10k images")
        return _pad(ds.images[:n]), ds.labels[:n], len(ds.classes)
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
    """A :class:`GlyphClassifier` trained with Adam on ``images [N, 1, 32, 32]`` and ``labels [N]`` (eval mode)."""
    torch.manual_seed(seed)
    net = GlyphClassifier(n_classes).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), 128):
            idx = perm[start : start + 128]
            logits = net(images[idx].to(device))
            loss = F.cross_entropy(logits, labels[idx].to(device))
            backward_and_step(loss, opt, "loss of the feature classifier", step, inputs={"logits": logits})
            step += 1
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

    Math::

        FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))
        tr((S_a S_b)^(1/2)) = sum_i sqrt(lambda_i(S_a S_b))        (real, non-negative eigenvalues)

    with ``S`` the unbiased sample covariances (``N - 1`` in the denominator).

    Raises:
        ValueError: when ``a`` or ``b`` is not 2-D with at least 2 rows (a covariance needs two samples), the
            widths D differ, or a value is NaN / infinite (:class:`course_lib.guards.NonFiniteError`); nothing
            non-finite ever reaches the eigenvalue routine.
    """
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] < 2 or x.shape[1] < 1:
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be features [N, D] with N >= 2 rows (a covariance needs two samples) "
                             f"and D >= 1, got {got}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same feature width D, got a {list(a.shape)} and b {list(b.shape)}")
    a, b = a.detach().double(), b.detach().double()
    require_finite("features a of the Fréchet distance", a)
    require_finite("features b of the Fréchet distance", b)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eig = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0)
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * eig.sqrt().sum())


def run(
    discriminator_loss: Callable | None = None,
    generator_loss: Callable | None = None,
    exp: GANExperiment | None = None,
    *,
    saturating: bool = False,
    mnist_dir: str | Path | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Train and evaluate; returns metrics plus the generator and the training history for plotting.

    Args:
        discriminator_loss, generator_loss: the losses to train with (default: the course_lib references,
            where this edition has them).
        exp: sizes and steps (default: :func:`default_experiment`, fitted to ``mnist_dir``).
        mnist_dir: a folder of MNIST IDX files instead of glyphs.

    Raises:
        ValueError: for settings or data that do not fit (before any training).
        course_lib.guards.NonFiniteError: when a loss, gradient or feature set goes NaN / infinite.
    """
    discriminator_loss = resolve("discriminator_loss", discriminator_loss)
    generator_loss = resolve("generator_loss", generator_loss)
    exp = (exp or default_experiment(mnist_dir)).validate()
    device = device or pick_device()
    require_implemented("discriminator_loss", discriminator_loss, torch.zeros(2), torch.zeros(2))
    require_implemented("generator_loss", generator_loss, torch.zeros(2))
    ds = load_data(exp, mnist_dir)
    clf = train_classifier(ds.train, ds.train_labels, ds.n_classes, exp.classifier_epochs, exp.seed, device)
    cfg = DCGANConfig(channels=1)
    g_net, d_net, history = train_dcgan(ds.train, exp.steps, discriminator_loss, generator_loss, cfg,
                                        saturating=saturating, seed=exp.seed, device=device,
                                        snapshot_every=max(1, exp.steps // 20), progress=progress)
    z = torch.randn(exp.n_eval, cfg.z_dim, generator=torch.Generator().manual_seed(exp.seed + 1)).to(device)
    untrained = Generator(cfg).to(device)
    untrained.apply(init_weights)
    f_test, p_test = _features(clf, ds.test[: exp.n_eval], device)
    f_fake, p_fake = _features(clf, sample(g_net, z), device)
    f_init, _ = _features(clf, sample(untrained, z), device)
    require_finite("classifier features of the held-out images", f_test)
    require_finite("classifier features of the trained generator's samples", f_fake,
                   hint="the generator's parameters are not finite after training")
    fd_trained, fd_untrained = frechet_distance(f_test, f_fake), frechet_distance(f_test, f_init)
    half = len(f_test) // 2
    counts = torch.bincount(p_fake.argmax(-1), minlength=ds.n_classes)                  # [n_classes]
    metrics = {
        "classifier_acc": float((p_test.argmax(-1) == ds.test_labels[: exp.n_eval]).float().mean()),
        "fd_real_vs_real": frechet_distance(f_test[:half], f_test[half:]),
        "fd_untrained": fd_untrained,
        "fd_trained": fd_trained,
        "class_coverage": int(counts.gt(exp.n_eval / ds.n_classes / 4).sum()),
        "n_classes": ds.n_classes,
        "fd_ratio": fd_untrained / max(fd_trained, 1e-12),
    }
    return {"metrics": metrics, "generator": g_net, "history": history, "source": ds.source}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.experiments.gan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", metavar="DIR", help="folder with MNIST IDX files (t10k-*, and train-* when "
                        "present); default: glyphs")
    parser.add_argument("--steps", type=int, help="training steps (default 2500; 30 with COURSE_SMOKE=1)")
    parser.add_argument("--n-train", type=int, help="training images (default 12000, capped at 8000 for an MNIST "
                        "folder without the train images; 1024 with COURSE_SMOKE=1)")
    parser.add_argument("--n-test", type=int, help="held-out images (default 2000; 256 with COURSE_SMOKE=1)")
    parser.add_argument("--saturating", action="store_true", help="train G with the saturating (minimax) loss")
    args = parser.parse_args(argv)
    if args.mnist is not None and not Path(args.mnist).is_dir():
        parser.error(f"--mnist {args.mnist}: not a directory")
    for name in ("steps", "n_train", "n_test"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    overrides = {k: getattr(args, k) for k in ("steps", "n_train", "n_test") if getattr(args, k) is not None}
    try:
        exp = default_experiment(args.mnist, **overrides)
        out = run(exp=exp, saturating=args.saturating, mnist_dir=args.mnist, progress=sys.stderr.isatty())
    except ValueError as exc:                    # data or settings that do not fit, a value gone NaN: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = out["metrics"]
    print(f"data: {out['source']}")
    print(f"classifier accuracy on real test images: {m['classifier_acc']:.3f}")
    print(f"FD real vs real {m['fd_real_vs_real']:.2f}, untrained G {m['fd_untrained']:.2f}, "
          f"trained G {m['fd_trained']:.2f}")
    print(format_metrics({"fd_ratio": m["fd_ratio"], "class_coverage": m["class_coverage"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
