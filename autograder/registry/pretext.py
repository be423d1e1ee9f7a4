"""Hidden checks for course_lib.pretext (assignment a2_pretext): rotate_batch.

Known mistakes: rotations turning clockwise, rotation-major instead of image-major order, a transpose instead
of a quarter turn.

Reference: Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations",
ICLR 2018 (RotNet).
"""
from __future__ import annotations

import torch

from .build import analytic, dtype_check, errors_check, function_spec, gradients, mutation_check, randn, values
from .core import Cases, mistake

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ rotate_batch
def _r_values(c: Cases) -> None:
    for k in range(4):
        n, ch, h, dt = c.randint(1, 4), c.randint(1, 3), c.randint(2, 7), c.dtype(k)
        c.add(f"images = {randn([n, ch, h, h], dt)}", "images", note=f"{dt}, N={n}, C={ch}, H=W={h}")


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
    checks=[
        values("rotated[4i + k] = rot90(images[i], k) counter-clockwise, labels[4i + k] = k", _r_values, 4.0),
        analytic("known rotations of small images", _r_analytic, 1.5),
        gradients("gradients flow back to the images", _r_grads, 1.0),
        dtype_check(_r_dtype, 1.0),
        mutation_check(_r_mutation),
        errors_check(_r_errors, 2.0),
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

SPECS = [ROTATE]
