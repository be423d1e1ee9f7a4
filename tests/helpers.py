"""Helpers shared by the test modules."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def randn(*shape, gen, dtype=torch.float64, device="cpu", requires_grad=False, scale=1.0):
    x = (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype=dtype, device=device)
    return x.requires_grad_(requires_grad)


def snapshot(*tensors):
    """Clones to compare against after a call, to prove the inputs were not mutated."""
    return [t.detach().clone() for t in tensors]


def assert_unchanged(before, after):
    for b, a in zip(before, after):
        assert torch.equal(b, a.detach()), "an input was mutated"


def unimplemented(*args, **kwargs):
    """Stands in for a scaffold the student has not filled in yet."""
    raise NotImplementedError()


def run_smoke_cli(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m module args`` in smoke mode (COURSE_SMOKE=1, one thread), from the project root, captured."""
    env = {**os.environ, "COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=timeout)
