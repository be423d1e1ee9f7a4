"""Small helpers the notebooks share: picking a device and seeding every random number generator.

Nothing in ``course_lib`` hard-codes a device: functions follow their inputs, and notebooks ask
:func:`pick_device` once.
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
from typing import Iterator

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything", "smoke_mode", "single_threaded", "progress_bar"]

_DEVICE_ENV = "COURSE_DEVICE"


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). Without it the environment
            variable ``COURSE_DEVICE`` is honoured, then the automatic choice.

    Raises:
        ValueError: if the requested device does not exist on this machine.
    """
    choice = prefer or os.environ.get(_DEVICE_ENV)
    if choice:
        try:
            dev = torch.device(choice)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {choice!r}: {exc}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} requested but CUDA is not available on this machine")
        if dev.type == "mps" and not _mps_available():
            raise ValueError(f"device {choice!r} requested but MPS is not available on this machine")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: any int.
        deterministic: also ask torch for deterministic kernels (slower; some ops then raise).

    Returns:
        A fresh CPU ``torch.Generator`` seeded with ``seed``, for code that prefers an explicit generator.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def smoke_mode() -> bool:
    """True when ``COURSE_SMOKE`` is set to a non-empty value other than 0: experiments then use tiny settings
    (CI runs every notebook this way)."""
    return os.environ.get("COURSE_SMOKE", "") not in ("", "0", "false", "False")


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (restored afterwards). Small tensors (data generators,
    small-network training) gain nothing from more threads, only synchronisation: on a busy 2-core machine they
    made such loops several times slower, never faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", enabled: bool = True):
    """A text progress bar on stdout (or ``iterable`` itself when ``enabled`` is False).

    A plain-text bar, not a notebook widget: a saved or re-opened notebook shows its last state ("100% ...")
    instead of a widget frozen at 0%, and nothing goes to stderr (nbgrader scores a cell with stderr output 0).
    """
    if not enabled:
        return iterable if iterable is not None else _NoBar()
    from tqdm.std import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stdout, mininterval=1.0, ascii=True, leave=True)


class _NoBar:
    """Stands in for a bar built with ``total=`` when progress is off: ``update`` and ``close`` do nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
