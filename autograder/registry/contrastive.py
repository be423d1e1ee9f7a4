"""Hidden checks for course_lib.contrastive (assignment a3_contrastive): info_nce_loss, nt_xent_loss, clip_loss.

Known mistakes: InfoNCE with the positive at the wrong index, without normalisation, the temperature multiplied
or a sum over the batch; NT-Xent without masking the self-similarity, averaged over N instead of 2N, without
normalisation, or over one view only; CLIP over one direction only, without normalisation (or normalised over
the batch), with the logit scale dividing, exponentiated or left out, the two directions summed, a sum over the
batch, or exponentials that overflow.

References: van den Oord et al. 2018 (CPC, InfoNCE); Chen et al., ICML 2020 (SimCLR, Algorithm 1); Radford et
al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021 (CLIP, Figure 3).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import judges
from .build import check, dtype_check, errors_check, function_spec, mutation_check, randn
from .core import Cases, CheckSpec, mistake
from .public import PublicCase, rnd

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ InfoNCE
def _i_case(c: Cases, dt: str, *, n=None, m=None, d=None, t=None, note="", **opt) -> None:
    n, m, d = n or c.randint(1, 6), m or c.randint(1, 6), d or c.randint(2, 6)
    t = t if t is not None else c.choice([0.07, 0.1, 0.5, 1.0])
    call = ["query", "positive", "negatives"] + ([] if t == "default" else [repr(t)])
    c.add(f"query = {randn([n, d], dt)}\npositive = {randn([n, d], dt)}\nnegatives = {randn([n, m, d], dt)}",
          call, note=note or f"{dt}, N={n}, M={m}, D={d}, temperature={'left out (0.1)' if t == 'default' else t}",
          **opt)


def _i_layout(c: Cases) -> None:
    _i_case(c, "float64", n=3, m=4, d=3, layout={0: "transposed", 1: "transposed", 2: "transposed"},
            note="float64, inputs stored transposed (non-contiguous: x.mT.contiguous().mT)")
    _i_case(c, "float32", n=1, m=1, note="float32, N = M = 1", layout={2: "strided"})


def _info_variant(q, p, neg, t=0.1, *, normalize=True, pos_last=False, scale=None, reduce="mean"):
    if normalize:
        q, p, neg = F.normalize(q, dim=-1), F.normalize(p, dim=-1), F.normalize(neg, dim=-1)
    l_pos = (q * p).sum(-1, keepdim=True)
    l_neg = torch.bmm(neg, q.unsqueeze(-1)).squeeze(-1)
    logits = torch.cat([l_neg, l_pos] if pos_last else [l_pos, l_neg], 1)
    logits = logits / t if scale is None else logits * t
    per_row = torch.logsumexp(logits, 1) - logits[:, 0]
    return per_row.mean() if reduce == "mean" else per_row.sum()


INFO_NCE = function_spec(
    "info_nce_loss",
    public=[
        PublicCase("N=4, M=5, D=3 (float64)", lambda: (rnd(4, 3, seed=12), rnd(4, 3, seed=13), rnd(4, 5, 3, seed=14), 0.1)),
        PublicCase("temperature 1e-3 (float32)", lambda: (rnd(3, 4, seed=15, dtype=torch.float32), rnd(3, 4, seed=16, dtype=torch.float32),
                                                    rnd(3, 2, 4, seed=17, dtype=torch.float32), 1e-3)),
        PublicCase("negatives of the wrong rank raise ValueError", lambda: (
            torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3)), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "cross-entropy of cosine scores / temperature with the positive at index 0 (and keeps the "
                  "autograd graph)", 3.0, lambda c: [_i_case(c, c.dtype(k), grad_wrt=(0, 1, 2)) for k in range(4)]),
        check("defaults", "temperature left out: 0.1", 0.5,
              lambda c: [_i_case(c, c.dtype(k), t="default") for k in range(2)]),
        check("layout", "non-contiguous inputs; one query with one negative", 0.5, _i_layout),
        CheckSpec("stability", "finite and correct at temperature 1e-3", 1.0,
                  lambda c: [_i_case(c, dt, t=1e-3, note=f"{dt}, temperature 1e-3") for dt in ("float32", "float64")]),
        CheckSpec("analytic", "positive = query, orthogonal negatives: log(1 + M exp(-1/t))", 1.0, lambda c: c.add(
            "query = torch.eye(4, dtype=torch.float64)[:2]\npositive = 3 * torch.eye(4, dtype=torch.float64)[:2]\n"
            "negatives = torch.eye(4, dtype=torch.float64)[2:].expand(2, 2, 4)",
            ["query", "positive", "negatives", "0.5"], note="positive parallel to the query, negatives orthogonal")),
        CheckSpec("gradients", "gradients wrt query, positive and negatives match the reference", 1.5,
                  lambda c: [_i_case(c, c.dtype(k), grad_wrt=(0, 1, 2), grad=True) for k in range(2)], judges.gradients),
        dtype_check(lambda c, dt, dev: _i_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _i_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add(f"query = {randn([3, 4], 'float32')}\nnegatives = {randn([3, 2, 4], 'float32')}",
                  ["query", "query", "negatives", "0.0"], note="temperature=0", meta={"arg": "temperature"}),
            c.add(f"query = {randn([3, 4], 'float32')}\nnegatives = {randn([3, 4], 'float32')}",
                  ["query", "query", "negatives", "0.1"], note="negatives of shape [3, 4] (2-D)", meta={"arg": "negatives"}),
            c.add(f"query = {randn([3, 4], 'float32')}\npositive = {randn([2, 4], 'float32')}\nnegatives = {randn([3, 2, 4], 'float32')}",
                  ["query", "positive", "negatives", "0.1"], note="positive of shape [2, 4] vs query [3, 4]", meta={"arg": "positive"}),
        ], 1.5),
    ],
    mistakes=[
        mistake("positive_index", "the positive at the wrong index: put score(q, p) first ([pos, neg_1..neg_M]) and use "
                "target 0", _info_variant, pos_last=True),
        mistake("no_normalisation", "dot products instead of cosine similarities (L2-normalise the vectors first)",
                _info_variant, normalize=False),
        mistake("temperature_multiplied", "scores multiplied by the temperature instead of divided by it",
                _info_variant, scale=True),
        mistake("sum_over_batch", "a sum over the batch instead of the mean", _info_variant, reduce="sum"),
    ],
)


# ------------------------------------------------------------------------------------------------ NT-Xent
def _n_case(c: Cases, dt: str, *, n=None, d=None, t=None, note="", **opt) -> None:
    n, d = n or c.randint(2, 8), d or c.randint(2, 6)
    t = t if t is not None else c.choice([0.1, 0.2, 0.5, 1.0])
    call = ["z_a", "z_b"] + ([] if t == "default" else [repr(t)])
    c.add(f"z_a = {randn([n, d], dt)}\nz_b = {randn([n, d], dt)}", call,
          note=note or f"{dt}, N={n}, D={d}, temperature={'left out (0.5)' if t == 'default' else t}", **opt)


def _n_layout(c: Cases) -> None:
    _n_case(c, "float64", n=4, d=3, layout={0: "transposed", 1: "transposed"},
            note="float64, views stored transposed (non-contiguous: x.mT.contiguous().mT)")
    _n_case(c, "float32", n=3, d=1, layout={0: "strided", 1: "strided"}, note="float32, D = 1, non-contiguous views")


def _nt_variant(za, zb, t=0.5, *, mask=True, normalize=True, denom="2n", rows="all"):
    """Wrong NT-Xent losses (arguments checked as the contract says, so only the mistake differs)."""
    if not t > 0 or za.dim() != 2 or za.shape != zb.shape:
        raise ValueError(f"z_a {list(za.shape)} and z_b {list(zb.shape)} must be [N, D] alike, temperature {t} > 0")
    n = za.shape[0]
    z = torch.cat([za, zb])
    z = F.normalize(z, dim=-1) if normalize else z
    logits = z @ z.mT / t                                                    # [2N, 2N]
    if mask:
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    per_row = torch.logsumexp(logits, 1) - logits[torch.arange(2 * n), target]
    if rows == "first":
        return per_row[:n].mean()
    return per_row.sum() / (n if denom == "n" else 2 * n)


NT_XENT = function_spec(
    "nt_xent_loss",
    public=[
        PublicCase("N=4, D=3 (float64)", lambda: (rnd(4, 3, seed=18), rnd(4, 3, seed=19), 0.5)),
        PublicCase("identical rows give log(2N - 1)", lambda: (torch.ones(3, 2), torch.ones(3, 2), 0.1), expect="value", value=math.log(5)),
        PublicCase("N=1 gives 0", lambda: (rnd(1, 3, seed=20), rnd(1, 3, seed=21)), expect="value", value=0.0),
        PublicCase("temperature 0 raises ValueError", lambda: (torch.ones(2, 2), torch.ones(2, 2), 0.0), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "SimCLR's NT-Xent over the 2N views, mean over all 2N rows (and keeps the autograd graph)",
                  3.0, lambda c: [_n_case(c, c.dtype(k), grad_wrt=(0, 1)) for k in range(4)]),
        check("defaults", "temperature left out: 0.5", 0.5,
              lambda c: [_n_case(c, c.dtype(k), t="default") for k in range(2)]),
        check("layout", "non-contiguous views; D = 1", 0.5, _n_layout),
        CheckSpec("edge", "N = 1 gives 0; stable at temperature 1e-3; duplicate rows", 1.0, lambda c: [
            _n_case(c, "float32", n=1, note="N=1 (no negatives): the loss is 0"),
            _n_case(c, "float32", t=1e-3, note="float32, temperature 1e-3"),
            c.add("z_a = torch.ones(3, 4, dtype=torch.float64)", ["z_a", "z_a", "1e-3"],
                  note="all rows identical: log(2N - 1) for every temperature"),
        ]),
        CheckSpec("analytic", "orthogonal pairs: log(1 + 2 exp(-2)) at t = 0.5", 1.0, lambda c: c.add(
            "z_a = torch.eye(2, dtype=torch.float64)", ["z_a", "z_a", "0.5"], note="z_a = z_b = I_2")),
        CheckSpec("gradients", "gradients wrt both views match the reference", 1.5,
                  lambda c: [_n_case(c, c.dtype(k), grad_wrt=(0, 1), grad=True) for k in range(2)], judges.gradients),
        dtype_check(lambda c, dt, dev: _n_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _n_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            c.add(f"z_a = {randn([3, 4], 'float32')}", ["z_a", "z_a", "0.0"], note="temperature=0", meta={"arg": "temperature"}),
            c.add(f"z_a = {randn([3, 4], 'float32')}\nz_b = {randn([2, 4], 'float32')}", ["z_a", "z_b", "0.5"],
                  note="z_a [3, 4] and z_b [2, 4]", meta={"arg": "z_b"}),
            c.add(f"z_a = {randn([6], 'float32')}", ["z_a", "z_a", "0.5"], note="z_a of shape [6] (1-D)", meta={"arg": "z_a"}),
        ], 1.5),
    ],
    mistakes=[
        mistake("no_self_mask", "NT-Xent without masking the self-similarity: k = i must be left out of the "
                "denominator (mask its logit to -inf)", _nt_variant, mask=False),
        mistake("mean_over_n", "the sum averaged over N instead of over all 2N rows", _nt_variant, denom="n"),
        mistake("no_normalisation", "dot products instead of cosine similarities", _nt_variant, normalize=False),
        mistake("one_view_only", "the loss of the first N rows only: both views are anchors (2N rows)",
                _nt_variant, rows="first"),
    ],
)


# ------------------------------------------------------------------------------------------------ CLIP
def _c_case(c: Cases, dt: str, *, n=None, d=None, s=None, note="", **opt) -> None:
    n, d = n or c.randint(2, 8), d or c.randint(2, 6)
    s = s if s is not None else c.choice([2.5, 5.0, 10.0, 14.3, 30.0])
    call = ["image_emb", "text_emb"] + ([] if s == "default" else [repr(s)])
    c.add(f"image_emb = {randn([n, d], dt)}\ntext_emb = {randn([n, d], dt, 2.0)}", call,
          note=note or f"{dt}, N={n}, D={d}, logit_scale={'left at its default' if s == 'default' else s}", **opt)


def _c_stability(c: Cases) -> None:
    _c_case(c, "float32", n=8, d=6, s=100.0, note="float32, N=8, D=6, logit_scale=100")
    c.add(f"image_emb = {randn([6, 4], 'float32')}\ntext_emb = image_emb + {randn([6, 4], 'float32', 0.001)}",
          ["image_emb", "text_emb", "100.0"], note="float32, matching rows nearly equal (cosine ~1), logit_scale=100")
    _c_case(c, "float64", n=24, d=5, s=100.0, note="float64, N=24, D=5, logit_scale=100")


def _c_analytic(c: Cases) -> None:
    norms = "(torch.rand(3, 1, generator=g, dtype=torch.float64) * 3 + 0.5)"
    c.add(f"image_emb = torch.eye(5, dtype=torch.float64)[:3] * {norms}\n"
          f"text_emb = torch.eye(5, dtype=torch.float64)[:3] * {norms}", ["image_emb", "text_emb", "2.0"],
          note="orthonormal pairs of random lengths at logit_scale 2: log(1 + 2 exp(-2))")
    c.add("image_emb = torch.ones(4, 3, dtype=torch.float64)\ntext_emb = image_emb * 2",
          ["image_emb", "text_emb", "50.0"], note="all rows identical: log N = log 4 for every logit_scale")
    c.add(f"image_emb = {randn([3, 4], 'float64')} * torch.tensor([[0.0], [1.0], [1.0]], dtype=torch.float64)\n"
          f"text_emb = {randn([3, 4], 'float64')}", ["image_emb", "text_emb", "5.0"],
          note="a zero image embedding: its cosines are 0 (clamp the norm at 1e-12)")


def _c_layout(c: Cases) -> None:
    _c_case(c, "float64", n=4, d=3, layout={0: "transposed", 1: "transposed"},
            note="float64, embeddings stored transposed (non-contiguous: x.mT.contiguous().mT)")
    _c_case(c, "float32", n=3, d=1, layout={0: "strided", 1: "strided"}, note="float32, D = 1, non-contiguous")


def _c_edge(c: Cases) -> None:
    _c_case(c, "float64", n=1, d=5, s=10.0, note="N = 1 (nothing to tell apart): the loss is 0")
    _c_case(c, "float32", n=1, d=1, s="default", note="N = D = 1, logit_scale left at its default: 0")


def _c_grads(c: Cases) -> None:
    _c_case(c, "float64", grad_wrt=(0, 1), grad=True)
    _c_case(c, "float32", grad_wrt=(0, 1), grad=True)
    c.add(f"image_emb = {randn([5, 3], 'float64')}\ntext_emb = {randn([5, 3], 'float64')}\n"
          "logit_scale = torch.tensor(7.5, dtype=torch.float64)", ["image_emb", "text_emb", "logit_scale"],
          note="a learned logit_scale (a 0-d tensor): the gradient reaches it too", grad_wrt=(0, 1, 2), grad=True)


def _c_errors(c: Cases) -> None:
    bad = [
        ([3, 4], [3, 4], "0.0", "logit_scale", "logit_scale=0"),
        ([3, 4], [3, 4], "-1.0", "logit_scale", "logit_scale=-1"),
        ([3, 4], [3, 5], "10.0", "text_emb", "text_emb [3, 5] for image_emb [3, 4]"),
        ([3, 4], [2, 4], "10.0", "text_emb", "text_emb [2, 4] for image_emb [3, 4]"),
        ([4], [4], "10.0", "image_emb", "1-D embeddings of shape [4]"),
        ([0, 4], [0, 4], "10.0", "image_emb", "N = 0 pairs"),
    ]
    for si, st, s, arg, note in bad:
        c.add(f"image_emb = {randn(si, 'float32')}\ntext_emb = {randn(st, 'float32')}", ["image_emb", "text_emb", s],
              note=note, meta={"arg": arg})


def _clip_variant(image_emb, text_emb, logit_scale=10.0, *, directions="both", normalize=True, norm_dim=-1,
                  scale_op="mul", combine="mean", reduce="mean", stable=True):
    """Wrong CLIP losses (arguments checked as the contract says, so only the mistake differs)."""
    scale = logit_scale.item() if isinstance(logit_scale, torch.Tensor) else float(logit_scale)
    if not scale > 0 or image_emb.dim() != 2 or image_emb.shape != text_emb.shape or image_emb.shape[0] == 0:
        raise ValueError(f"image_emb {list(image_emb.shape)} and text_emb {list(text_emb.shape)} must be [N, D] alike "
                         f"with N >= 1, logit_scale {scale} > 0")
    img, txt = image_emb, text_emb
    if normalize:
        img, txt = F.normalize(img, dim=norm_dim), F.normalize(txt, dim=norm_dim)
    sim = img @ txt.mT                                                       # [N, N]
    if scale_op == "mul":
        logits = logit_scale * sim
    elif scale_op == "div":
        logits = sim / logit_scale
    elif scale_op == "exp":
        logits = torch.exp(torch.as_tensor(logit_scale, dtype=sim.dtype, device=sim.device)) * sim
    else:
        logits = sim
    if stable:
        per_img = torch.logsumexp(logits, 1) - logits.diagonal()
        per_txt = torch.logsumexp(logits, 0) - logits.diagonal()
    else:
        e = torch.exp(logits)
        per_img = -torch.log(e.diagonal() / e.sum(1))
        per_txt = -torch.log(e.diagonal() / e.sum(0))
    l_img = per_img.mean() if reduce == "mean" else per_img.sum()
    l_txt = per_txt.mean() if reduce == "mean" else per_txt.sum()
    if directions == "image":
        return l_img
    return (l_img + l_txt) / 2 if combine == "mean" else l_img + l_txt


def _c_public(n, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


CLIP = function_spec(
    "clip_loss",
    checks=[
        CheckSpec("values", "(CE(logits, arange N) + CE(logits.T, arange N)) / 2, logits = logit_scale * cosines "
                  "(and keeps the autograd graph)", 3.0,
                  lambda c: [_c_case(c, c.dtype(k), grad_wrt=(0, 1)) for k in range(4)]),
        check("default", "logit_scale left out: the default is 10", 0.5,
              lambda c: [_c_case(c, c.dtype(k), s="default") for k in range(2)]),
        check("layout", "non-contiguous embeddings; D = 1", 0.5, _c_layout),
        CheckSpec("stability", "finite and correct at logit_scale 100, matching rows nearly equal included", 1.0,
                  _c_stability),
        CheckSpec("analytic", "orthonormal pairs: log(1 + (N - 1) exp(-s)); identical rows: log N; a zero vector", 1.0,
                  _c_analytic),
        check("edge", "one pair (N = 1) gives 0", 0.5, _c_edge, auxiliary=True),
        CheckSpec("gradients", "gradients wrt both embeddings and a learned (tensor) logit_scale", 1.5, _c_grads,
                  judges.gradients),
        dtype_check(lambda c, dt, dev: _c_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _c_case(c, "float64", return_inputs=True)),
        errors_check(_c_errors, 1.0),
    ],
    mistakes=[
        mistake("unstable_exp", "exp(logits) divided by its sum, which overflows at large logit_scale: use "
                "F.cross_entropy or logsumexp(logits) - logits[i, i]", _clip_variant, stable=False),
        mistake("one_direction", "the image -> text direction only (or the text -> image term computed on logits "
                "instead of logits.T, which repeats it): average CE(logits, arange N) and CE(logits.T, arange N)",
                _clip_variant, directions="image"),
        mistake("no_normalisation", "dot products instead of cosine similarities: L2-normalise every row of both "
                "embeddings first (F.normalize(x, dim=-1))", _clip_variant, normalize=False),
        mistake("normalised_over_batch", "embeddings normalised over the batch (dim 0): normalise every row, "
                "F.normalize(x, dim=-1)", _clip_variant, norm_dim=0),
        mistake("scale_divided", "cosines divided by logit_scale: it is an inverse temperature, logits = "
                "logit_scale * cosines", _clip_variant, scale_op="div"),
        mistake("scale_exponentiated", "exp(logit_scale) as the scale: the argument is the scale itself (CLIP "
                "stores its logarithm, the caller exponentiates)", _clip_variant, scale_op="exp"),
        mistake("scale_ignored", "logit_scale left out: logits = logit_scale * cosines", _clip_variant,
                scale_op="none"),
        mistake("sum_of_directions", "the two directions summed: the loss is their mean, (L_img + L_txt) / 2",
                _clip_variant, combine="sum"),
        mistake("sum_over_batch", "a sum over the N pairs instead of the mean", _clip_variant, reduce="sum"),
    ],
    public=[
        PublicCase("N=4, D=3, logit_scale left at its default (float64)", lambda: _c_public(4, 3, 401)),
        PublicCase("logit_scale 100 stays finite (float32)", lambda: (*_c_public(5, 4, 402, torch.float32), 100.0)),
        PublicCase("orthonormal pairs at logit_scale 2 give log(1 + 2 exp(-2))",
                   lambda: (torch.eye(3, dtype=torch.float64), 3 * torch.eye(3, dtype=torch.float64), 2.0), "value",
                   math.log1p(2 * math.exp(-2.0))),
        PublicCase("logit_scale 0 raises ValueError", lambda: (torch.ones(2, 3), torch.ones(2, 3), 0.0), "raises"),
    ],
)


SPECS = [INFO_NCE, NT_XENT, CLIP]
