"""Hidden checks for course_lib.rendering.encoding (assignment a4_rendering): positional_encoding.

Known mistakes: frequencies without pi or starting at 2^1, all sines before all cosines, cos before sin,
coordinate-major order.

References: Mildenhall et al., "NeRF", ECCV 2020 (eq. 4); Tancik et al., "Fourier Features", NeurIPS 2020.
"""
from __future__ import annotations

import math

import torch

from .. import judges
from ..build import check, dtype_check, errors_check, function_spec, mutation_check, randn
from ..core import Cases, CheckSpec, mistake
from ..properties import fresh
from ..public import PublicCase, rnd

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ positional_encoding
def _pe_case(c: Cases, dt: str, *, lead=None, d=None, freqs=None, inc=None, note="", **opt) -> None:
    lead = lead if lead is not None else c.choice([[c.randint(1, 5)], [2, c.randint(1, 3)]])
    d, freqs = d or c.randint(1, 4), freqs if freqs is not None else c.randint(1, 6)
    inc = inc if inc is not None else c.choice([True, False])
    call = ["x", str(freqs)] + ([] if inc == "default" else [str(inc)])
    c.add(f"x = {randn(lead + [d], dt)}", call, note=note or f"{dt}, x {lead + [d]}, num_freqs={freqs}, include_input="
          + ("left out (True)" if inc == "default" else str(inc)), **opt)


def _pe_variant(x, num_freqs, include_input=True, *, pi=True, order="pairs", start=0):
    """Wrong encodings (arguments checked as the contract says, so only the mistake differs)."""
    if x.dim() < 1 or num_freqs < 0:
        raise ValueError(f"x {list(x.shape)} must be [..., D] and num_freqs {num_freqs} >= 0")
    freqs = [(2.0 ** (k + start)) * (math.pi if pi else 1.0) for k in range(num_freqs)]
    xf = x[..., None, :] * torch.tensor(freqs, dtype=x.dtype, device=x.device)[:, None]   # [..., L, D]
    sin, cos = torch.sin(xf), torch.cos(xf)
    if order == "pairs":
        feats = torch.stack([sin, cos], -2).flatten(-3)            # [..., L, 2, D]
    elif order == "cos_first":
        feats = torch.stack([cos, sin], -2).flatten(-3)
    elif order == "sins_first":
        feats = torch.cat([sin.flatten(-2), cos.flatten(-2)], -1)  # all sines, then all cosines
    else:                                                          # coordinate-major: [..., D, L, 2]
        feats = torch.stack([sin, cos], -1).transpose(-3, -2).flatten(-3)
    return torch.cat([x, feats], -1) if include_input else feats


POSITIONAL = function_spec(
    "positional_encoding",
    public=[
        PublicCase("x [5, 3], 4 frequencies", lambda: (rnd(5, 3, seed=36), 4)),
        PublicCase("x = [0, 0.5], 2 frequencies, without x", lambda: (torch.tensor([[0.0, 0.5]]), 2, False)),
        PublicCase("num_freqs = -1 raises ValueError", lambda: (torch.zeros(2, 3), -1), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "[x, sin(2^0 pi x), cos(2^0 pi x), ..., sin(2^(L-1) pi x), cos(2^(L-1) pi x)] (and keeps "
                  "the autograd graph)", 3.0,
                  lambda c: [_pe_case(c, c.dtype(k), inc=bool(k % 3), grad_wrt=(0,)) for k in range(4)]),
        check("defaults", "include_input left out: x is included", 0.5,
              lambda c: [_pe_case(c, c.dtype(k), inc="default") for k in range(2)]),
        check("layout", "x without leading dims ([D]); D = 1; non-contiguous x", 0.5, lambda c: [
            _pe_case(c, "float64", lead=[], d=3, note="float64, one point: x of shape [3]"),
            _pe_case(c, "float32", lead=[4], d=1, note="float32, D = 1: x of shape [4, 1]"),
            _pe_case(c, "float64", lead=[2, 3], d=3, layout={0: "transposed"},
                     note="float64, x [2, 3, 3] stored transposed (non-contiguous: x.mT.contiguous().mT)"),
            _pe_case(c, "float32", lead=[5], d=2, inc=False, layout={0: "strided"},
                     note="float32, non-contiguous x (a slice with a step), without x"),
        ]),
        check("new_tensors", "L = 0 with include_input gives a copy of x, not x itself", 0.5, lambda c: [
            _pe_case(c, "float64", freqs=0, inc=True, note="float64, num_freqs=0, include_input=True: a copy of x"),
            _pe_case(c, "float32", lead=[], freqs=0, inc=True, note="float32, one point, num_freqs=0: a copy of x"),
        ], fresh()),
        CheckSpec("analytic", "x = 0.5 with L = 2: sin(pi/2) = 1, cos(pi/2) = 0, sin(pi) = 0, cos(pi) = -1", 1.5, lambda c: [
            c.add("x = torch.tensor([[0.0, 0.5]], dtype=torch.float64)", ["x", "2", "True"], note="x = [0, 0.5], L = 2"),
            c.add("x = torch.tensor([[0.25]], dtype=torch.float64)", ["x", "3", "False"], note="x = 0.25, L = 3, without x"),
            c.add(f"x = {randn([3, 2], 'float32')}", ["x", "0", "True"], note="L = 0: just x"),
        ]),
        CheckSpec("gradients", "gradients wrt x match the reference", 1.0,
                  lambda c: _pe_case(c, "float64", grad_wrt=(0,), grad=True), judges.gradients),
        dtype_check(lambda c, dt, dev: _pe_case(c, dt, note=f"{dt} on {dev}", device=dev), 1.0),
        mutation_check(lambda c: _pe_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add("x = torch.tensor(0.5)", ["x", "2", "True"], note="a 0-D x", meta={"arg": "x"}),
            c.add(f"x = {randn([2, 3], 'float32')}", ["x", "-1", "True"], note="num_freqs=-1", meta={"arg": "num_freqs"}),
        ], 1.5),
    ],
    mistakes=[
        mistake("no_pi", "frequencies 2^k without pi: the lecture's encoding uses sin(2^k pi x)",
                _pe_variant, pi=False),
        mistake("sins_first", "all sine blocks before all cosine blocks: the order is sin, cos per frequency",
                _pe_variant, order="sins_first"),
        mistake("cos_first", "cos before sin within each frequency", _pe_variant, order="cos_first"),
        mistake("freqs_from_2", "frequencies starting at 2^1: they start at 2^0", _pe_variant, start=1),
        mistake("coordinate_major", "coordinate-major order: each term is a block of all D coordinates",
                _pe_variant, order="coord"),
    ],
)

SPECS = [POSITIONAL]
