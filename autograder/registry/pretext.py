"""Hidden checks for assignment a2_pretext: rotate_batch, attention_color_propagation.

Known mistakes: rotations turning clockwise, rotation-major instead of image-major order, a transpose instead
of a quarter turn; attention normalised over the target axis, the temperature multiplied or left out,
colours flattened in a different order than the features.

References: Gidaris et al., ICLR 2018 (RotNet); Vondrick et al., ECCV 2018 (colour propagation by attention).
"""
from __future__ import annotations

import torch

import course_lib

from . import judges
from .build import dtype_check, errors_check, mutation_check, rand, randn
from .core import Cases, CheckSpec, FunctionSpec, Mistake

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


def _rot_variant(images, ks, image_major=True):
    n = images.shape[0]
    rots = [torch.rot90(images, k, dims=(-2, -1)) for k in ks]           # 4 x [N, C, H, W]
    stacked = torch.stack(rots, 1 if image_major else 0)                  # [N, 4, ...] or [4, N, ...]
    labels = torch.arange(4, device=images.device)
    labels = labels.repeat(n) if image_major else labels.repeat_interleave(n)
    return stacked.reshape(4 * n, *images.shape[1:]), labels


def _transposed(x):
    turns = [x, x.transpose(-2, -1), x.flip(-2, -1), x.transpose(-2, -1).flip(-2, -1)]
    return (torch.stack(turns, 1).reshape(4 * x.shape[0], *x.shape[1:]),        # [N, 4, ...] -> [4N, ...]
            torch.arange(4, device=x.device).repeat(x.shape[0]))


ROTATE = FunctionSpec(
    name="rotate_batch", assignment="a2_pretext", points=10.0, params=("images",), reference=course_lib.rotate_batch,
    checks=[
        CheckSpec("values", "rotated[4i + k] = rot90(images[i], k) counter-clockwise, labels[4i + k] = k", 4.0, _r_values),
        CheckSpec("analytic", "known rotations of small images", 1.5, _r_analytic),
        CheckSpec("gradients", "gradients flow back to the images", 1.0, _r_grads, judges.gradients),
        dtype_check(_r_dtype, 1.0),
        mutation_check(_r_mutation),
        errors_check(_r_errors, 2.0),
    ],
    mistakes=[
        Mistake("clockwise", "rotations that turn clockwise: k quarter turns counter-clockwise is "
                "torch.rot90(x, k, dims=(-2, -1)), as np.rot90", lambda x: _rot_variant(x, [0, -1, -2, -3])),
        Mistake("rotation_major", "rotation-major order (all k=0 images first): the contract is image-major, "
                "rotated[4*i + k]", lambda x: _rot_variant(x, [0, 1, 2, 3], image_major=False)),
        Mistake("transpose", "a transpose instead of a quarter turn (a quarter turn is a transpose plus a flip)",
                _transposed),
    ],
)


# ------------------------------------------------------------------------------------------------ attention
def _a_case(c: Cases, dt: str, *, b=None, d=None, hr=None, wr=None, ht=None, wt=None, ch=None, t=None, scale=1.0,
            note="", **options) -> None:
    b = b or c.randint(1, 3)
    d = d or c.randint(2, 6)
    hr, wr, ht, wt = (v or c.randint(1, 4) for v in (hr, wr, ht, wt))
    ch = ch or c.randint(1, 3)
    t = t if t is not None else c.choice([0.5, 1.0, 2.0, 0.1])
    recipe = (f"ref_feats = {randn([b, d, hr, wr], dt, scale)}\ntgt_feats = {randn([b, d, ht, wt], dt, scale)}\n"
              f"ref_colors = {rand([b, ch, hr, wr], dt)}")
    c.add(recipe, ["ref_feats", "tgt_feats", "ref_colors", repr(t)],
          note=note or f"{dt}, B={b}, D={d}, ref {hr}x{wr}, target {ht}x{wt}, C={ch}, temperature={t}", **options)


def _a_values(c: Cases) -> None:
    for k in range(4):
        _a_case(c, c.dtype(k), hr=c.randint(2, 4), wr=c.randint(2, 4))


def _a_stability(c: Cases) -> None:
    _a_case(c, "float32", scale=577.0, t=1e-3, note="float32, feature norms near 1e3, temperature 1e-3")
    _a_case(c, "float64", scale=577.0, t=1e-3, note="float64, feature norms near 1e3, temperature 1e-3")


def _a_analytic(c: Cases) -> None:
    c.add("feats = torch.eye(6, dtype=torch.float64).reshape(1, 6, 2, 3) * 10\n"
          f"ref_colors = {rand([1, 3, 2, 3], 'float64')}", ["feats", "feats", "ref_colors", "0.01"],
          note="target = reference with one-hot features and temperature 0.01: the output copies ref_colors")


def _a_grads(c: Cases) -> None:
    for k in range(2):
        _a_case(c, c.dtype(k), grad_wrt=(0, 1, 2), grad=True)


def _a_dtype(c: Cases, dt: str, device: str) -> None:
    _a_case(c, dt, note=f"{dt} on {device}", device=device)


def _a_mutation(c: Cases) -> None:
    _a_case(c, "float64", return_inputs=True)


def _a_errors(c: Cases) -> None:
    base = f"{randn([1, 2, 2, 2], 'float32')}"
    c.add(f"ref_feats = {base}\ntgt_feats = {base}\nref_colors = {rand([1, 3, 2, 2], 'float32')}",
          ["ref_feats", "tgt_feats", "ref_colors", "0.0"], note="temperature=0", meta={"arg": "temperature"})
    c.add(f"ref_feats = {randn([2, 2, 2], 'float32')}\ntgt_feats = {base}\nref_colors = {rand([1, 3, 2, 2], 'float32')}",
          ["ref_feats", "tgt_feats", "ref_colors", "1.0"], note="ref_feats of shape [2, 2, 2] (3-D)", meta={"arg": "ref_feats"})
    c.add(f"ref_feats = {base}\ntgt_feats = {base}\nref_colors = {rand([1, 3, 3, 2], 'float32')}",
          ["ref_feats", "tgt_feats", "ref_colors", "1.0"], note="ref_colors of shape [1, 3, 3, 2] (spatial size differs)",
          meta={"arg": "ref_colors"})


def _attention(ref_feats, tgt_feats, ref_colors, temperature=1.0, *, axis=1, scale=None, colors_colmajor=False):
    b, d = ref_feats.shape[:2]
    logits = torch.bmm(ref_feats.reshape(b, d, -1).transpose(1, 2), tgt_feats.reshape(b, d, -1))   # [B, Nr, Nt]
    logits = logits / temperature if scale is None else logits * scale
    attn = torch.softmax(logits, dim=axis)
    colors = ref_colors.transpose(-2, -1) if colors_colmajor else ref_colors
    out = torch.bmm(colors.reshape(b, ref_colors.shape[1], -1), attn)                                # [B, C, Nt]
    return out.reshape(b, ref_colors.shape[1], *tgt_feats.shape[2:])


ATTENTION = FunctionSpec(
    name="attention_color_propagation", assignment="a2_pretext", points=10.0,
    params=("ref_feats", "tgt_feats", "ref_colors", "temperature"), reference=course_lib.attention_color_propagation,
    checks=[
        CheckSpec("values", "out[b,:,j] = sum_i softmax_i(<f_ref_i, f_tgt_j> / t) ref_colors[b,:,i] on random inputs", 3.5, _a_values),
        CheckSpec("stability", "stable for feature norms up to 1e3 and temperature 1e-3", 1.5, _a_stability),
        CheckSpec("analytic", "identical frames with one-hot features copy the colours", 1.0, _a_analytic),
        CheckSpec("gradients", "gradients wrt features and colours match the reference", 1.5, _a_grads, judges.gradients),
        dtype_check(_a_dtype),
        mutation_check(_a_mutation),
        errors_check(_a_errors, 1.5),
    ],
    mistakes=[
        Mistake("target_axis", "attention normalised over the target positions: the softmax runs over the Hr*Wr "
                "reference positions i (dim 1 of [B, Nr, Nt])", lambda *a: _attention(*a, axis=2)),
        Mistake("temperature_multiplied", "logits multiplied by the temperature instead of divided by it",
                lambda r, t, c, temp=1.0: _attention(r, t, c, temp, scale=temp)),
        Mistake("no_temperature", "the temperature left out", lambda r, t, c, temp=1.0: _attention(r, t, c, temp, scale=1.0)),
        Mistake("colors_order", "colours flattened in a different order than the features (flatten both row-major)",
                lambda *a: _attention(*a, colors_colmajor=True)),
    ],
)

SPECS = [ROTATE, ATTENTION]
