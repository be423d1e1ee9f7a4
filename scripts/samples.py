"""Sample submissions for the demo and the tests: what a student hands in, made from the student release.

For each assignment, ``assignments/<name>/<name>.ipynb`` (the release) has every scaffold's
``raise NotImplementedError()`` stub replaced by

* the solution body (from ``solutions/<name>/<name>.ipynb``)  -> ``<name>_complete.ipynb``, or
* the solution body for most functions, but a known mistake (``TYPICAL``, from the registry's catalogue)
                                                              -> ``<name>_typical_mistakes.ipynb``.

The untouched release is the third sample. ``python scripts/samples.py OUT_DIR`` writes the two made-up
submissions per assignment into ``OUT_DIR``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from course_lib.manifest import assignment_names
from course_lib.sourcegen import indent

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignment_names()
STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"

# Which known mistakes (names from each function's registry catalogue) the "typical mistakes" submission makes.
TYPICAL: dict[str, list[tuple[str, str]]] = {
    "a1_gans": [("generator_loss", "forms_swapped")],
    "a2_pretext": [("rotate_batch", "clockwise")],
    "a3_contrastive": [("nt_xent_loss", "no_self_mask"), ("enqueue", "drops")],
    "a4_rendering": [("volume_render", "inclusive_transmittance"), ("positional_encoding", "no_pi")],
    "a5_priors": [("project_points", "y_not_flipped"), ("batched_mlp", "relu_after_last")],
}


def typical_mistakes(name: str) -> list[tuple[str, str, str, str]]:
    """``(function, mistake, what it is, body)`` for the planted mistakes of assignment ``name`` (from the registry's
    catalogue of known mistakes; the body is the function's code at indent 0)."""
    from autograder.registry import SPECS

    out = []
    for fn, mistake in TYPICAL[name]:
        spec = SPECS[fn]
        found = next(m for m in spec.mistakes if m.name == mistake)
        out.append((fn, mistake, found.message, found.body(spec.params)))
    return out


def solution_bodies(name: str) -> dict[str, str]:
    """grade_id -> the code between ### BEGIN SOLUTION and ### END SOLUTION in the source notebook."""
    nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    bodies = {}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        m = re.search(r"\n([ \t]*)### BEGIN SOLUTION\n(.*?)\n[ \t]*### END SOLUTION", cell.source, re.S)
        if gid and m and cell.cell_type == "code":
            bodies[gid] = m.group(2)
    return bodies


def make_submission(name: str, mistakes: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The release with every scaffold filled in: the solution, or the given buggy body (indent 0) per function."""
    release = nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    bodies = solution_bodies(name)
    for cell in release.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or gid not in bodies or STUB not in cell.source:
            continue
        body = indent(mistakes[gid]) if mistakes and gid in mistakes else bodies[gid].strip("\n")
        cell.source = cell.source.replace("    " + STUB, body, 1)
    release.metadata.pop("course", None)
    return release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for <name>_complete.ipynb and <name>_typical_mistakes.ipynb")
    parser.add_argument("names", nargs="*", help="assignments (default: all released ones)")
    args = parser.parse_args(argv)
    names = args.names or [n for n in ASSIGNMENTS if (ROOT / "assignments" / n / f"{n}.ipynb").is_file()]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name not in ASSIGNMENTS:
            parser.error(f"unknown assignment {name!r}")
        nbformat.write(make_submission(name), args.out / f"{name}_complete.ipynb")
        buggy = {fn: body for fn, _, _, body in typical_mistakes(name)}
        nbformat.write(make_submission(name, buggy), args.out / f"{name}_typical_mistakes.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
