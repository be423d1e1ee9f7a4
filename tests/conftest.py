"""Shared fixtures: devices (CUDA cases run when CUDA is available and are skipped otherwise), dtypes and
seeded generators."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")],
    ),
]
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=DTYPES)
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def gen() -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(1234)
    return g


@pytest.fixture(scope="module")
def one_thread():
    """One CPU thread for a module of small-network training tests (faster than two on a busy 2-core machine);
    the caller's setting is restored afterwards. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    from course_lib.utils import single_threaded

    with single_threaded():
        yield
