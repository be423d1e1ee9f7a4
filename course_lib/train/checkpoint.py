"""Atomic checkpoints with every random number generator's state, so that ``--resume`` continues a run.

A checkpoint is written to a temporary file in the target's folder, flushed to disk and moved over the
target with ``os.replace`` (atomic on POSIX and Windows): a crash leaves either the old checkpoint or the new
one, never half a file. Loading checks that the file is a dict with the expected keys and raises a
``ValueError`` naming the file otherwise.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's generators (CPU and every CUDA device)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (anything ``torch.save`` takes) to ``path`` atomically; returns the path."""
    if not isinstance(state, dict):
        raise ValueError(f"state must be a dict, got {type(state).__name__}")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = (), map_location="cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ValueError: if the file is missing, unreadable, not a dict, or lacks one of ``required``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        # weights_only=False: the RNG states hold NumPy and Python objects; only load files you wrote
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:                                     # pickle, zip and EOF errors alike
        raise ValueError(f"checkpoint {path} is not readable ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} must hold a dict, got {type(state).__name__}")
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing} (has {sorted(state)})")
    return state
