"""Sample submissions for the demo and the tests: what a student hands in, made from the student release.

For each assignment, ``assignments/<name>/<name>.ipynb`` (the release) has every scaffold's
``raise NotImplementedError()`` stub replaced by

* the solution body (from ``solutions/<name>/<name>.ipynb``)  -> ``<name>_complete.ipynb``, or
* the solution body for most functions, but a typical mistake for the functions listed in ``MISTAKES``
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

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("a1_gans", "a2_pretext", "a3_contrastive", "a4_rendering")
STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"

# (function, one-line description, buggy body). Each body is a complete, plausible student answer with the
# mistake the autograder should name.
MISTAKES: dict[str, list[tuple[str, str, str]]] = {
    "a1_gans": [
        ("generator_loss", "saturating and non-saturating forms swapped", """
    if saturating:
        return F.softplus(-logits_fake).mean()
    return -F.softplus(logits_fake).mean()"""),
    ],
    "a2_pretext": [
        ("rotate_batch", "turns clockwise", """
    n, c, h, w = images.shape
    if images.dim() != 4 or h != w:
        raise ValueError(f"images must be [N, C, H, W] with H == W, got {list(images.shape)}")
    rotated = torch.stack([torch.rot90(images, -k, dims=(-2, -1)) for k in range(4)], dim=1)
    return rotated.reshape(4 * n, c, h, w), torch.arange(4, device=images.device).repeat(n)"""),
    ],
    "a3_contrastive": [
        ("nt_xent_loss", "self-similarity not masked", """
    z = torch.nn.functional.normalize(torch.cat([z_a, z_b]), dim=-1)
    n = z_a.shape[0]
    logits = z @ z.T / temperature
    target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return torch.nn.functional.cross_entropy(logits, target)"""),
        ("enqueue", "drops the keys that run past the end instead of wrapping", """
    k = queue.shape[0]
    n = keys.shape[0]
    end = min(ptr + n, k)
    with torch.no_grad():
        queue[ptr:end] = keys[: end - ptr].detach()
    return (ptr + n) % k"""),
    ],
    "a4_rendering": [
        ("volume_render", "inclusive transmittance", """
    deltas = torch.cat([t_vals[..., 1:] - t_vals[..., :-1], torch.full_like(t_vals[..., :1], 1e10)], -1)
    tau = sigmas * deltas
    alpha = 1 - torch.exp(-tau)
    weights = torch.exp(-torch.cumsum(tau, -1)) * alpha
    rgb = (weights[..., None] * colors).sum(-2)
    if white_background:
        rgb = rgb + (1 - weights.sum(-1, keepdim=True))
    return rgb, weights"""),
        ("positional_encoding", "frequencies without pi", """
    freqs = 2.0 ** torch.arange(num_freqs, dtype=x.dtype, device=x.device)
    xf = x[..., None, :] * freqs[:, None]
    feats = torch.stack([torch.sin(xf), torch.cos(xf)], dim=-2).flatten(-3)
    return torch.cat([x, feats], -1) if include_input else feats"""),
    ],
}


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
    """The release with every scaffold filled in: the solution, or the given buggy body per function."""
    release = nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    bodies = solution_bodies(name)
    for cell in release.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or gid not in bodies or STUB not in cell.source:
            continue
        body = (mistakes or {}).get(gid, bodies[gid]).strip("\n")      # indented by 4, like the stub
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
        buggy = {fn: body for fn, _, body in MISTAKES[name]}
        nbformat.write(make_submission(name, buggy), args.out / f"{name}_typical_mistakes.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
