"""Is correct float32 code graded as correct whatever way it rounds: results judged against the float64 truth,
allowing the reference's own float32 error, at every seed -- while a wrong formula still fails, and the message
shows the tolerance?"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.registry import SPECS
from simulate import simulate


def attention_exp_minus_logsumexp(ref_feats, tgt_feats, ref_colors, temperature=1.0):
    if not temperature > 0 or ref_feats.dim() != 4 or tgt_feats.dim() != 4 or ref_colors.dim() != 4 \
            or ref_feats.shape[:2] != tgt_feats.shape[:2] or ref_colors.shape[0] != ref_feats.shape[0] \
            or ref_colors.shape[2:] != ref_feats.shape[2:]:
        raise ValueError(f"bad ref_feats {list(ref_feats.shape)} / tgt_feats / ref_colors / temperature {temperature}")
    b, d = ref_feats.shape[:2]
    s = torch.einsum("bdi,bdj->bij", ref_feats.reshape(b, d, -1), tgt_feats.reshape(b, d, -1)) / temperature
    a = torch.exp(s - torch.logsumexp(s, dim=1, keepdim=True))        # a softmax written out
    out = torch.einsum("bci,bij->bcj", ref_colors.reshape(b, ref_colors.shape[1], -1), a)
    return out.reshape(b, ref_colors.shape[1], *tgt_feats.shape[2:])


def info_nce_manual(query, positive, negatives, temperature=0.1):
    if not temperature > 0 or query.dim() != 2 or positive.shape != query.shape or negatives.dim() != 3 \
            or negatives.shape[0] != query.shape[0] or negatives.shape[2] != query.shape[1] or query.shape[0] == 0:
        raise ValueError(f"bad query {list(query.shape)}, positive, negatives or temperature {temperature}")
    q, p, n = F.normalize(query, dim=-1), F.normalize(positive, dim=-1), F.normalize(negatives, dim=-1)
    logits = torch.cat([(q * p).sum(-1, keepdim=True), torch.einsum("nd,nmd->nm", q, n)], 1) / temperature
    m = logits.max(dim=1, keepdim=True).values
    return (m.squeeze(1) + torch.log(torch.exp(logits - m).sum(1)) - logits[:, 0]).mean()


@pytest.mark.parametrize("name,fn", [("attention_color_propagation", attention_exp_minus_logsumexp),
                                     ("info_nce_loss", info_nce_manual)])
def test_correct_code_that_rounds_differently_gets_full_marks_at_every_seed(name, fn):
    spec = SPECS[name]
    for seed in range(16):
        lost = [(c, v.message) for c, vs in simulate(spec, fn, seed).items() for v in vs if v.score < 1]
        assert lost == [], (seed, lost[:2])


def test_a_wrong_float32_result_still_fails_and_the_message_shows_the_tolerance():
    def off_by_a_bit(ref_feats, tgt_feats, ref_colors, temperature=1.0):
        out = attention_exp_minus_logsumexp(ref_feats, tgt_feats, ref_colors, temperature)
        return out * (1 + 1e-3) if out.dtype == torch.float32 else out

    verdicts = simulate(SPECS["attention_color_propagation"], off_by_a_bit, 3)
    lost = [v.message for vs in verdicts.values() for v in vs if v.score < 1]
    assert lost and any("tolerance" in m and "float32" in m for m in lost), lost[:3]
