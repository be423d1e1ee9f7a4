"""Does one student's file ever cost the class its gradebook? A name that is not UTF-8, a full disk, a grader
exception on one submission and an oversized file each become that submission's row, and the CSV is written."""
from __future__ import annotations

import csv
import errno
import os

import pytest

import autograder.batch as batch
from autograder.notebook import MAX_NOTEBOOK_BYTES
from nbfactory import perfect, write_raw


def _rows(path) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


@pytest.fixture
def folder(tmp_path):
    subs = tmp_path / "subs"
    perfect("a1_gans", subs / "alice.ipynb")
    raw = os.fsencode(str(subs)) + b"/caf\xe9-\xff.ipynb"               # Latin-1 bytes: not UTF-8
    with open(raw, "wb") as f:
        f.write((subs / "alice.ipynb").read_bytes())
    return subs


def test_a_file_name_that_is_not_utf8_gets_its_own_row(folder, tmp_path):
    out = tmp_path / "book.csv"
    summary = batch.grade_batch(folder, "a1_gans", out, progress=False)
    rows = _rows(out)
    assert set(rows) == {"alice.ipynb", "caf\\xe9-\\xff.ipynb"}
    assert rows["caf\\xe9-\\xff.ipynb"]["total"] == "20.0" and summary.graded + summary.cached == 2
    assert {r["sandbox_mode"] for r in rows.values()} == {summary.sandbox.split()[1]}


def test_a_full_disk_leaves_the_grades_uncached_but_written(folder, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch, "write_json_atomic", full)
    out = tmp_path / "book.csv"
    batch.grade_batch(folder, "a1_gans", out, progress=False)
    rows = _rows(out)
    assert all(r["total"] == "20.0" and "not cached" in r["error"] for r in rows.values()), rows


def test_a_grader_exception_and_an_oversized_file_are_rows_not_a_crash(folder, tmp_path, monkeypatch):
    real = batch.grade_notebook

    def flaky(path, *args, **kwargs):
        if "alice" in str(path):
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "grade_notebook", flaky)
    with open(folder / "huge.ipynb", "wb") as f:                       # sparse: costs no disk
        f.truncate(MAX_NOTEBOOK_BYTES + 1)
    out = tmp_path / "book.csv"
    summary = batch.grade_batch(folder, "a1_gans", out, progress=False)
    rows = _rows(out)
    assert "RecursionError" in rows["alice.ipynb"]["error"] and rows["alice.ipynb"]["total"] == ""
    assert "over the 64 MB" in rows["huge.ipynb"]["error"] and rows["huge.ipynb"]["sha256"] == ""
    assert rows["caf\\xe9-\\xff.ipynb"]["total"] == "20.0"
    assert summary.failed == 1


def test_the_gradebook_is_written_when_a_notebook_crashes_the_extraction(tmp_path):
    subs = tmp_path / "subs"
    write_raw(subs / "deep.ipynb", ('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}").encode())
    perfect("a1_gans", subs / "ok.ipynb")
    out = tmp_path / "book.csv"
    batch.grade_batch(subs, "a1_gans", out, progress=False)
    rows = _rows(out)
    assert "nested too deeply" in rows["deep.ipynb"]["error"] and rows["ok.ipynb"]["total"] == "20.0"
