"""Hidden checks for course_lib.pretext (assignment a2_pretext): rotate_batch, relative_patch_pairs.

Known mistakes: rotations turning clockwise, rotation-major instead of image-major order, a transpose instead
of a quarter turn; relative patches with the neighbours in column-major order, the centre counted as a label,
the gap ignored (or left out of the step between cells), a grid that is not centred (at the top-left corner, or
with the leftover margin rounded up), the origin taken from the wrong image side, or crops with their rows and
columns swapped.

References: Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations",
ICLR 2018 (RotNet); Doersch, Gupta, Efros, "Unsupervised Visual Representation Learning by Context
Prediction", ICCV 2015 (the 3 x 3 grid of patches with gaps, eight relative positions).
"""
from __future__ import annotations

import torch

from .build import analytic, check, dtype_check, errors_check, function_spec, gradients, mutation_check, randn, values
from .core import Cases, mistake
from .properties import fresh, part
from .public import PublicCase, rnd

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ rotate_batch
def _r_values(c: Cases) -> None:
    for k in range(4):
        n, ch, h, dt = c.randint(1, 4), c.randint(1, 3), c.randint(2, 7), c.dtype(k)
        c.add(f"images = {randn([n, ch, h, h], dt)}", "images", note=f"{dt}, N={n}, C={ch}, H=W={h}, images that "
              "require grad", grad_wrt=(0,))


def _r_labels(c: Cases) -> None:
    for k in range(2):
        n, h = c.randint(1, 5), c.randint(2, 5)
        c.add(f"images = {randn([n, 1, h, h], c.dtype(k))}", "images", note=f"{c.dtype(k)}, N={n}, H=W={h}")


def _r_fresh(c: Cases) -> None:
    c.add(f"images = {randn([1, 2, 3, 3], 'float64')}", "images", note="float64, N = 1: rotated is a new tensor")
    c.add(f"images = {randn([3, 1, 2, 2], 'float32')}", "images", note="float32, N = 3")


def _r_layout(c: Cases) -> None:
    c.add(f"images = {randn([2, 3, 4, 4], 'float64')}", "images", note="float64, images stored transposed "
          "(non-contiguous: x.mT.contiguous().mT)", layout={0: "transposed"})
    c.add(f"images = {randn([3, 2, 3, 3], 'float32')}", "images", note="float32, non-contiguous images (a slice "
          "with a step)", layout={0: "strided"})
    c.add(f"images = {randn([2, 1, 1, 1], 'float64')}", "images", note="float64, 1x1 images, C = 1")


def _r_analytic(c: Cases) -> None:
    c.add("images = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)", "images",
          note="one 2x2 image [[1, 2], [3, 4]]: a counter-clockwise quarter turn gives [[2, 4], [1, 3]]")
    c.add("images = torch.arange(18, dtype=torch.float32).reshape(2, 1, 3, 3)", "images",
          note="two 3x3 images 0..17: order is image-major, labels 0, 1, 2, 3, 0, 1, 2, 3")


def _r_grads(c: Cases) -> None:
    n, h = c.randint(1, 3), c.randint(2, 5)
    c.add(f"images = {randn([n, 2, h, h], 'float64')}", "images", note=f"float64, N={n}, H=W={h}", grad_wrt=(0,), grad=True)


def _r_dtype(c: Cases, dt: str, device: str) -> None:
    c.add(f"images = {randn([2, 1, 3, 3], dt)}", "images", note=f"{dt} on {device} (labels must be int64)", device=device)


def _r_mutation(c: Cases) -> None:
    c.add(f"images = {randn([2, 2, 4, 4], 'float64')}", "images", note="float64", return_inputs=True)


def _r_errors(c: Cases) -> None:
    c.add(f"images = {randn([2, 1, 3, 4], 'float32')}", "images", note="images of shape [2, 1, 3, 4] (H != W)",
          meta={"arg": "images"})
    c.add(f"images = {randn([1, 3, 3], 'float32')}", "images", note="images of shape [1, 3, 3] (3-D)",
          meta={"arg": "images"})


def _rot_variant(images, *, turns=(0, 1, 2, 3), image_major=True, transpose=False):
    """Wrong rotations: clockwise turns, rotation-major order, a transpose (plus flips) instead of a turn."""
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be [N, C, H, H], got {list(images.shape)}")
    n = images.shape[0]
    if transpose:
        rots = [images, images.transpose(-2, -1), images.flip(-2, -1), images.transpose(-2, -1).flip(-2, -1)]
    else:
        rots = [torch.rot90(images, k, dims=(-2, -1)) for k in turns]    # 4 x [N, C, H, W]
    stacked = torch.stack(rots, 1 if image_major else 0)                  # [N, 4, ...] or [4, N, ...]
    labels = torch.arange(4, device=images.device)
    labels = labels.repeat(n) if image_major else labels.repeat_interleave(n)
    return stacked.reshape(4 * n, *images.shape[1:]), labels


ROTATE = function_spec(
    "rotate_batch",
    public=[
        PublicCase("N=2, C=3, 4x4 images (float64)", lambda: (rnd(2, 3, 4, 4, seed=5),)),
        PublicCase("a 2x2 image [[1, 2], [3, 4]]", lambda: (torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]),)),
        PublicCase("H != W raises ValueError", lambda: (torch.zeros(1, 1, 2, 3),), expect="raises"),
    ],
    checks=[
        values("rotated[4i + k] = rot90(images[i], k) counter-clockwise (and keeps the autograd graph)", _r_values, 3.0,
               judge=part(0, "rotated")),
        check("labels", "labels[4i + k] = k (int64)", 0.5, _r_labels, part(1, "labels")),
        check("new_tensors", "rotated is a new tensor, never a view of images", 0.5, _r_fresh, fresh()),
        check("layout", "non-contiguous images; 1x1 images", 0.5, _r_layout),
        analytic("known rotations of small images", _r_analytic, 1.5),
        gradients("gradients flow back to the images", _r_grads, 1.0),
        dtype_check(_r_dtype, 1.0),
        mutation_check(_r_mutation),
        errors_check(_r_errors, 1.5),
    ],
    mistakes=[
        mistake("clockwise", "rotations that turn clockwise: k quarter turns counter-clockwise is "
                "torch.rot90(x, k, dims=(-2, -1)), as np.rot90", _rot_variant, turns=(0, -1, -2, -3)),
        mistake("rotation_major", "rotation-major order (all k=0 images first): the contract is image-major, "
                "rotated[4*i + k]", _rot_variant, image_major=False),
        mistake("transpose", "a transpose instead of a quarter turn (a quarter turn is a transpose plus a flip)",
                _rot_variant, transpose=True),
    ],
)



# ------------------------------------------------------------------------------------------------ relative_patch_pairs
def _p_case(c: Cases, dt: str, *, n=None, ch=None, patch=None, gap=None, hw=None, note="", **opt) -> None:
    """Random images (H and W drawn apart, so y0 != x0 in general) and random labels."""
    n = c.randint(1, 5) if n is None else n
    ch, patch = ch or c.randint(1, 3), patch or c.randint(1, 4)
    gap = c.randint(0, 3) if gap is None else gap
    span = 3 * patch + 2 * gap
    h, w = hw or (span + c.randint(0, 4), span + c.randint(0, 4))
    c.add(f"images = {randn([n, ch, h, w], dt)}\npositions = torch.randint(0, 8, ({n},), generator=g)",
          ["images", "positions", str(patch), str(gap)],
          note=note or f"{dt}, N={n}, C={ch}, H={h}, W={w}, patch={patch}, gap={gap}", **opt)


def _p_values(c: Cases) -> None:
    for k in range(4):
        _p_case(c, c.dtype(k), gap=c.randint(1, 3) if k < 2 else None, grad_wrt=(0,))


def _p_center(c: Cases) -> None:
    for k in range(2):
        _p_case(c, c.dtype(k), gap=c.randint(0, 3))


def _p_fresh(c: Cases) -> None:
    _p_case(c, "float64", n=3, patch=2, gap=1, note="float64, N=3, patch 2, gap 1: center and neighbor are new tensors")
    _p_case(c, "float32", n=1, patch=3, gap=0, hw=(9, 9), note="float32, one 9x9 image filled by the grid")


def _p_layout(c: Cases) -> None:
    _p_case(c, "float64", n=3, patch=2, gap=1, layout={0: "transposed"},
            note="float64, images stored transposed (non-contiguous: x.mT.contiguous().mT)")
    _p_case(c, "float32", n=4, layout={0: "strided", 1: "strided"},
            note="float32, non-contiguous images and positions (slices with a step)")


def _p_analytic(c: Cases) -> None:
    c.add("images = torch.arange(110, dtype=torch.float64).reshape(1, 1, 10, 11).repeat(8, 1, 1, 1)\n"
          "positions = torch.arange(8)", ["images", "positions", "2", "1"],
          note="each label once on a 10x11 image holding 11*y + x: y0 = x0 = 1, cell (r, c) starts at row 1 + 3r, "
               "column 1 + 3c")
    c.add("images = torch.arange(2880, dtype=torch.float32).reshape(8, 2, 12, 15)\n"
          "positions = torch.randperm(8, generator=g)", ["images", "positions", "3", "0"],
          note="12x15 images, patch 3, gap 0: the leftover margins 3 and 6 split with floor division, y0 = 1, x0 = 3")
    c.add(f"images = {randn([2, 3, 8, 8], 'float64')}\npositions = torch.tensor([0, 7])", ["images", "positions", "2", "1"],
          note="a grid that fills 8x8 images exactly (3*2 + 2*1 = 8): cells (0, 0) and (2, 2) are the corners")
    c.add(f"images = {randn([4, 1, 9, 9], 'float64')}\npositions = torch.tensor([4, 4, 3, 3])",
          ["images", "positions", "2", "1"], note="labels 3 and 4 are the cells left and right of the centre")


def _p_edge(c: Cases) -> None:
    c.add(f"images = {randn([0, 3, 9, 9], 'float32')}\npositions = torch.zeros(0, dtype=torch.int64)",
          ["images", "positions", "3", "0"], note="an empty batch (N = 0) gives crops of shape [0, 3, 3, 3]")
    c.add(f"images = {randn([1, 1, 3, 3], 'float64')}\npositions = torch.tensor([5])", ["images", "positions", "1", "0"],
          note="N = C = 1, a 3x3 image, patch 1, gap 0: every cell is one pixel")
    c.add("images = torch.randint(0, 256, (3, 2, 9, 10), generator=g, dtype=torch.uint8)\n"
          "positions = torch.tensor([0, 5, 7], dtype=torch.int32)", ["images", "positions", "2", "1"],
          note="uint8 images and int32 labels: the crops keep the dtype uint8")


def _p_grads(c: Cases) -> None:
    _p_case(c, "float64", gap=1, grad_wrt=(0,), grad=True)
    c.add(f"images = {randn([3, 2, 9, 9], 'float64')}\npositions = torch.tensor([1, 1, 6])", ["images", "positions", "2", "1"],
          note="float64, repeated labels", grad_wrt=(0,), grad=True)


def _p_errors(c: Cases) -> None:
    img = lambda shape: f"images = {randn(shape, 'float32')}"  # noqa: E731
    bad = [
        ([2, 1, 7, 9], "torch.tensor([0, 1])", 2, 1, "patch", "patch=2, gap=1: an 8x8 grid in images 7 high"),
        ([2, 1, 9, 7], "torch.tensor([0, 1])", 2, 1, "patch", "patch=2, gap=1: an 8x8 grid in images 7 wide"),
        ([2, 1, 9, 9], "torch.tensor([0, 1])", 0, 1, "patch", "patch=0"),
        ([2, 1, 9, 9], "torch.tensor([0, 1])", 2, -1, "gap", "gap=-1"),
        ([2, 1, 9, 9], "torch.tensor([0, 8])", 2, 1, "positions", "a label 8 (labels are 0..7)"),
        ([2, 1, 9, 9], "torch.tensor([-1, 0])", 2, 1, "positions", "a label -1"),
        ([2, 1, 9, 9], "torch.tensor([0, 1, 2])", 2, 1, "positions", "positions of shape [3] for N = 2"),
        ([2, 1, 9, 9], "torch.tensor([0.0, 1.0])", 2, 1, "positions", "float positions"),
        ([1, 9, 9], "torch.tensor([0])", 2, 1, "images", "images of shape [1, 9, 9] (3-D)"),
    ]
    for shape, pos, patch, gap, arg, note in bad:
        c.add(f"{img(shape)}\npositions = {pos}", ["images", "positions", str(patch), str(gap)], note=note,
              meta={"arg": arg})


# label k -> grid cell (row, column): the contract's row-major order skipping the centre, and two wrong tables
_ROW_MAJOR = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))
_COL_MAJOR = ((0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2), (2, 2))
_WITH_CENTRE = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2))


def _patch_variant(images, positions, patch, gap, *, cells=_ROW_MAJOR, gap_mode="both", margin="floor",
                   swap_hw=False, transpose=False):
    """Wrong crops: another label table, the gap left out, another grid origin, transposed crops (arguments checked
    as the contract says, so only the mistake differs)."""
    if (images.dim() != 4 or positions.shape != images.shape[:1] or positions.is_floating_point() or patch < 1
            or gap < 0 or 3 * patch + 2 * gap > min(images.shape[-2:])
            or (positions.numel() > 0 and (positions.min() < 0 or positions.max() > 7))):
        raise ValueError(f"images {list(images.shape)}, positions {positions.tolist()}, patch {patch} and gap {gap} "
                         "do not make a 3x3 grid with labels in 0..7")
    n, c, h, w = images.shape
    step = patch + (gap if gap_mode == "both" else 0)
    span = 3 * patch + 2 * (0 if gap_mode == "none" else gap)
    hh, ww = (w, h) if swap_hw else (h, w)
    if margin == "zero":
        y0, x0 = 0, 0
    elif margin == "ceil":
        y0, x0 = (hh - span + 1) // 2, (ww - span + 1) // 2
    else:
        y0, x0 = (hh - span) // 2, (ww - span) // 2
    dev = images.device
    table = torch.tensor(cells, device=dev)                               # [labels, 2]
    rc = table[positions.to(device=dev, dtype=torch.long)]                # [N, 2]
    offsets = torch.arange(patch, device=dev)
    batch, chans = torch.arange(n, device=dev), torch.arange(c, device=dev)

    def crop(r, col):
        rows = y0 + r[:, None] * step + offsets                           # [N, patch]
        cols = x0 + col[:, None] * step + offsets
        out = images[batch[:, None, None, None], chans[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
        return out.transpose(-2, -1) if transpose else out

    centre = torch.ones(n, dtype=torch.long, device=dev)
    return crop(centre, centre), crop(rc[:, 0], rc[:, 1])


def _p_public_random():
    g = torch.Generator().manual_seed(301)
    return torch.randn(3, 2, 11, 13, generator=g, dtype=torch.float64), torch.tensor([0, 4, 7]), 3, 1


def _p_public_labels():
    return torch.arange(110, dtype=torch.float64).reshape(1, 1, 10, 11).repeat(8, 1, 1, 1), torch.arange(8), 2, 1


RELATIVE_PATCHES = function_spec(
    "relative_patch_pairs",
    checks=[
        values("the labelled neighbour of the centred 3x3 grid, cells patch + gap apart (and keeps the autograd "
               "graph)", _p_values, 2.5, judge=part(1, "neighbor")),
        check("center", "the centre cell (1, 1) of the grid", 0.5, _p_center, part(0, "center")),
        check("new_tensors", "center and neighbor are new tensors, never views of images", 0.5, _p_fresh, fresh()),
        check("layout", "non-contiguous images and positions", 0.5, _p_layout),
        analytic("each label's cell (row-major, centre skipped) on images of known values; floor-divided margins",
                 _p_analytic, 1.5),
        check("edge", "an empty batch, one-pixel cells, uint8 images with int32 labels", 0.5, _p_edge, auxiliary=True),
        gradients("gradients flow back to the cropped pixels", _p_grads, 1.5),
        dtype_check(lambda c, dt, dev: _p_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _p_case(c, "float64", return_inputs=True)),
        errors_check(_p_errors, 1.5),
    ],
    mistakes=[
        mistake("column_major", "the neighbours numbered in column-major order: label k is the k-th cell of "
                "(0,0) (0,1) (0,2) (1,0) (1,2) (2,0) (2,1) (2,2), row by row", _patch_variant, cells=_COL_MAJOR),
        mistake("centre_not_skipped", "labels counted over all nine cells (label 4 the centre): the centre (1, 1) is "
                "skipped, so labels 4..7 are cells 5..8 (cell = k + (k >= 4))", _patch_variant, cells=_WITH_CENTRE),
        mistake("gap_ignored", "the gap ignored: the grid is 3*patch + 2*gap wide and its cells start patch + gap "
                "apart", _patch_variant, gap_mode="none"),
        mistake("gap_not_in_step", "cells patch apart instead of patch + gap: cell (r, c) starts at row "
                "y0 + r*(patch + gap)", _patch_variant, gap_mode="origin"),
        mistake("not_centred", "a grid at the top-left corner: centre it with y0 = (H - 3*patch - 2*gap) // 2 and "
                "x0 = (W - 3*patch - 2*gap) // 2", _patch_variant, margin="zero"),
        mistake("margin_rounded_up", "the leftover margin rounded up: y0 = (H - 3*patch - 2*gap) // 2 (floor "
                "division)", _patch_variant, margin="ceil"),
        mistake("origin_swapped", "y0 computed from W and x0 from H: rows go with H (dim -2), columns with W "
                "(dim -1)", _patch_variant, swap_hw=True),
        mistake("rows_cols_swapped", "crops with their rows and columns swapped (a meshgrid with indexing='xy', or "
                "the row and column indices broadcast the wrong way): crop[y, x] = image[top + y, left + x]",
                _patch_variant, transpose=True),
    ],
    public=[
        PublicCase("N=3, C=2, 11x13 images, patch 3, gap 1 (float64)", _p_public_random),
        PublicCase("each label 0..7 on a 10x11 image holding 11*y + x, patch 2, gap 1", _p_public_labels),
        PublicCase("a 9x9 grid in 8x8 images raises ValueError",
                   lambda: (torch.zeros(1, 1, 8, 8), torch.tensor([0]), 3, 0), "raises"),
        PublicCase("a label of 8 raises ValueError", lambda: (torch.zeros(2, 1, 9, 9), torch.tensor([0, 8]), 2, 1),
                   "raises"),
    ],
)

SPECS = [ROTATE, RELATIVE_PATCHES]
