"""Hidden checks for course_lib.colorization (assignment a2_pretext): attention_color_propagation.

Known mistakes: attention normalised over the target axis, the temperature multiplied or left out, colours
flattened in a different order than the features.

Reference: Vondrick, Shrivastava, Fathi, Guadarrama, Murphy, "Tracking Emerges by Colorizing Videos", ECCV 2018.
"""
from __future__ import annotations

import torch

from .build import (analytic, check, dtype_check, errors_check, function_spec, gradients, mutation_check, rand, randn,
                    stability, values)
from .core import Cases, mistake
from .public import PublicCase, rnd

__all__ = ["SPECS"]


def _a_case(c: Cases, dt: str, *, b=None, d=None, hr=None, wr=None, ht=None, wt=None, ch=None, t=None, scale=1.0,
            note="", **options) -> None:
    b = b or c.randint(1, 3)
    d = d or c.randint(2, 6)
    hr, wr, ht, wt = (v or c.randint(1, 4) for v in (hr, wr, ht, wt))
    ch = ch or c.randint(1, 3)
    t = t if t is not None else c.choice([0.5, 1.0, 2.0, 0.1])
    recipe = (f"ref_feats = {randn([b, d, hr, wr], dt, scale)}\ntgt_feats = {randn([b, d, ht, wt], dt, scale)}\n"
              f"ref_colors = {rand([b, ch, hr, wr], dt)}")
    call = ["ref_feats", "tgt_feats", "ref_colors"] + ([] if t == "default" else [repr(t)])
    c.add(recipe, call, note=note or f"{dt}, B={b}, D={d}, ref {hr}x{wr}, target {ht}x{wt}, C={ch}, "
          f"temperature={'left out (1.0)' if t == 'default' else t}", **options)


def _a_values(c: Cases) -> None:
    for k in range(4):
        _a_case(c, c.dtype(k), hr=c.randint(2, 4), wr=c.randint(2, 4), grad_wrt=(0, 1, 2))


def _a_defaults(c: Cases) -> None:
    for k in range(2):
        _a_case(c, c.dtype(k), t="default")


def _a_layout(c: Cases) -> None:
    _a_case(c, "float64", hr=3, wr=2, ht=2, wt=3, layout={0: "transposed", 1: "transposed", 2: "transposed"},
            note="float64, features and colours stored transposed (non-contiguous: x.mT.contiguous().mT)")
    _a_case(c, "float32", layout={0: "strided", 1: "strided", 2: "strided"},
            note="float32, non-contiguous inputs (slices with a step)")
    _a_case(c, "float64", b=1, d=1, hr=1, wr=3, ht=2, wt=1, ch=1, note="float64, B = D = C = 1, a 1x3 reference, "
            "a 2x1 target")


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


def _attention(ref_feats, tgt_feats, ref_colors, temperature=1.0, *, axis=1, temperature_as="divisor",
               colors_colmajor=False):
    """Wrong propagations: softmax over the target axis, temperature multiplied or ignored, colours transposed."""
    b, d = ref_feats.shape[:2]
    logits = torch.bmm(ref_feats.reshape(b, d, -1).transpose(1, 2), tgt_feats.reshape(b, d, -1))   # [B, Nr, Nt]
    if temperature_as == "divisor":
        logits = logits / temperature
    elif temperature_as == "factor":
        logits = logits * temperature
    attn = torch.softmax(logits, dim=axis)
    colors = ref_colors.transpose(-2, -1) if colors_colmajor else ref_colors
    out = torch.bmm(colors.reshape(b, ref_colors.shape[1], -1), attn)                                # [B, C, Nt]
    return out.reshape(b, ref_colors.shape[1], *tgt_feats.shape[2:])


ATTENTION = function_spec(
    "attention_color_propagation",
    public=[
        PublicCase("B=2, D=4, 3x2 reference, 2x2 target, C=3", lambda: (
            rnd(2, 4, 3, 2, seed=6), rnd(2, 4, 2, 2, seed=7), rnd(2, 3, 3, 2, seed=8), 0.5)),
        PublicCase("large features, temperature 1e-3 (float32)", lambda: (rnd(1, 3, 2, 2, seed=9, dtype=torch.float32, scale=500),
                                                                    rnd(1, 3, 2, 2, seed=10, dtype=torch.float32, scale=500),
                                                                    rnd(1, 2, 2, 2, seed=11, dtype=torch.float32), 1e-3)),
        PublicCase("temperature 0 raises ValueError", lambda: (
            torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2), 0.0), expect="raises"),
    ],
    checks=[
        values("out[b,:,j] = sum_i softmax_i(<f_ref_i, f_tgt_j> / t) ref_colors[b,:,i] on random inputs (and keeps "
               "the autograd graph)", _a_values, 3.0),
        check("defaults", "temperature left out: 1.0", 0.5, _a_defaults),
        check("layout", "non-contiguous inputs; size-1 batch, features, channels and spatial dims", 1.0, _a_layout),
        stability("stable for feature norms up to 1e3 and temperature 1e-3", _a_stability, 1.0),
        analytic("identical frames with one-hot features copy the colours", _a_analytic),
        gradients("gradients wrt features and colours match the reference", _a_grads),
        dtype_check(_a_dtype),
        mutation_check(_a_mutation),
        errors_check(_a_errors, 1.0),
    ],
    mistakes=[
        mistake("target_axis", "attention normalised over the target positions: the softmax runs over the Hr*Wr "
                "reference positions i (dim 1 of [B, Nr, Nt])", _attention, axis=2),
        mistake("temperature_multiplied", "logits multiplied by the temperature instead of divided by it", _attention,
                temperature_as="factor"),
        mistake("no_temperature", "the temperature left out", _attention, temperature_as="ignored"),
        mistake("colors_order", "colours flattened in a different order than the features (flatten both row-major)",
                _attention, colors_colmajor=True),
    ],
)

SPECS = [ATTENTION]
