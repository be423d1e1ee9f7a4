"""Builders for the fixture notebooks the autograder tests grade (generated on the fly, never checked in)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

from autograder.fixtures import mistake_source, perfect_notebook, release_notebook, write_notebook

__all__ = ["with_functions", "write", "write_raw", "perfect", "release", "solution_cell_ids", "NT_XENT_NO_MASK",
           "ENQUEUE_DROPS"]


def solution_cell_ids(nb) -> dict[str, int]:
    """graded function name -> index of its solution cell."""
    out = {}
    for i, cell in enumerate(nb.cells):
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.endswith("_solution"):
            out[gid[: -len("_solution")]] = i
    return out


def with_functions(assignment: str, overrides: dict[str, str], extra_cells: list[str] = (), base: str = "perfect"):
    """The perfect (or release) notebook with some solution cells replaced and code cells appended."""
    nb = perfect_notebook(assignment) if base == "perfect" else release_notebook(assignment)
    ids = solution_cell_ids(nb)
    for name, source in overrides.items():
        nb.cells[ids[name]].source = source
    for source in extra_cells:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):                      # stable ids: the same notebook has the same bytes
        cell["id"] = f"cell-{i}"
    return nb


def write(nb, path: Path) -> Path:
    return write_notebook(nb, path)


def write_raw(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def perfect(assignment: str, path: Path) -> Path:
    return write_notebook(perfect_notebook(assignment), path)


def release(assignment: str, path: Path) -> Path:
    return write_notebook(release_notebook(assignment), path)


def notebook_json(cells: list[dict]) -> bytes:
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


# Known mistakes from the registry's catalogue, written out as a student would hand them in.
NT_XENT_NO_MASK = mistake_source("nt_xent_loss", "no_self_mask")
ENQUEUE_DROPS = mistake_source("enqueue", "drops")
