"""Fixtures shared by the test_data_* modules (import them into a test module to activate them)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own COURSE_DATA_DIR, so nothing is read from or written to the user's cache."""
    root = tmp_path / "course_data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    return root


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one torch thread: these tests work on small tensors, where a second thread on a busy
    2-core machine made a 1.4 s logistic-regression probe take 20 s."""
    from course_lib.utils import single_threaded

    with single_threaded():
        yield
