"""Helpers shared by the test modules."""
from __future__ import annotations

import torch


def randn(*shape, gen, dtype=torch.float64, device="cpu", requires_grad=False, scale=1.0):
    x = (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype=dtype, device=device)
    return x.requires_grad_(requires_grad)


def snapshot(*tensors):
    """Clones to compare against after a call, to prove the inputs were not mutated."""
    return [t.detach().clone() for t in tensors]


def assert_unchanged(before, after):
    for b, a in zip(before, after):
        assert torch.equal(b, a.detach()), "an input was mutated"
