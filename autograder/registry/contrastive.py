"""Hidden checks for course_lib.contrastive (assignment a3_contrastive): info_nce_loss, nt_xent_loss.

Known mistakes: InfoNCE with the positive at the wrong index, without normalisation, the temperature multiplied
or a sum over the batch; NT-Xent without masking the self-similarity, averaged over N instead of 2N, without
normalisation, or over one view only.

References: van den Oord et al. 2018 (CPC, InfoNCE); Chen et al., ICML 2020 (SimCLR, Algorithm 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import judges
from .build import dtype_check, errors_check, function_spec, mutation_check, randn
from .core import Cases, CheckSpec, mistake

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ InfoNCE
def _i_case(c: Cases, dt: str, *, n=None, m=None, d=None, t=None, note="", **opt) -> None:
    n, m, d = n or c.randint(1, 6), m or c.randint(1, 6), d or c.randint(2, 6)
    t = t if t is not None else c.choice([0.07, 0.1, 0.5, 1.0])
    c.add(f"query = {randn([n, d], dt)}\npositive = {randn([n, d], dt)}\nnegatives = {randn([n, m, d], dt)}",
          ["query", "positive", "negatives", repr(t)], note=note or f"{dt}, N={n}, M={m}, D={d}, temperature={t}", **opt)


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
    checks=[
        CheckSpec("values", "cross-entropy of cosine scores / temperature with the positive at index 0", 3.5,
                  lambda c: [_i_case(c, c.dtype(k)) for k in range(4)]),
        CheckSpec("stability", "finite and correct at temperature 1e-3", 1.5,
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
    c.add(f"z_a = {randn([n, d], dt)}\nz_b = {randn([n, d], dt)}", ["z_a", "z_b", repr(t)],
          note=note or f"{dt}, N={n}, D={d}, temperature={t}", **opt)


def _nt_variant(za, zb, t=0.5, *, mask=True, normalize=True, denom="2n", rows="all"):
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
    checks=[
        CheckSpec("values", "SimCLR's NT-Xent over the 2N views, mean over all 2N rows", 3.5,
                  lambda c: [_n_case(c, c.dtype(k)) for k in range(4)]),
        CheckSpec("edge", "N = 1 gives 0; stable at temperature 1e-3; duplicate rows", 1.5, lambda c: [
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


SPECS = [INFO_NCE, NT_XENT]
