"""Do the lecture's pseudocode conventions give the a3_contrastive contracts' losses when translated as the
notebook says -- SimCLR's Algorithm 1 pairs views (2k-1, 2k), MoCo's Algorithm 1 stores the queue as C x K --
and does copying them literally (the slide's pairs on stacked views, ``queue.view(C, K)``) give a wrong loss?"""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import moco_loss, nt_xent_loss


def _algorithm1_nt_xent(z: torch.Tensor, t: float) -> float:
    """SimCLR's Algorithm 1 literally, 0-based: views 2k and 2k + 1 are the pair; loss = sum of l(2k, 2k+1) and
    l(2k+1, 2k) over k, divided by 2N."""
    n2 = z.shape[0]
    s = F.normalize(z, dim=1) @ F.normalize(z, dim=1).T

    def ell(i, j):
        return -math.log(math.exp(s[i, j] / t) / sum(math.exp(s[i, k] / t) for k in range(n2) if k != i))

    return sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n2 // 2)) / n2


def _interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([a, b], 1).reshape(-1, a.shape[1])                # [a0, b0, a1, b1, ...]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_the_slides_interleaved_pairs_give_the_contracts_loss(n):
    g = torch.Generator().manual_seed(n)
    z_a, z_b = torch.randn(n, 6, generator=g, dtype=torch.float64), torch.randn(n, 6, generator=g, dtype=torch.float64)
    contract = float(nt_xent_loss(z_a, z_b, 0.5))                         # partner of row i: (i + N) mod 2N
    assert _algorithm1_nt_xent(_interleave(z_a, z_b), 0.5) == pytest.approx(contract, abs=1e-12)
    stacked_with_slide_pairs = _algorithm1_nt_xent(torch.cat([z_a, z_b]), 0.5)
    if n == 1:                                                            # the only case where both orders agree
        assert stacked_with_slide_pairs == pytest.approx(contract, abs=1e-12)
    else:
        assert abs(stacked_with_slide_pairs - contract) > 1e-3


def test_a_c_by_k_queue_is_the_transpose_of_the_contracts_k_by_c_queue_not_a_view():
    g = torch.Generator().manual_seed(0)
    n, c, k_size = 4, 3, 10
    q = F.normalize(torch.randn(n, c, generator=g, dtype=torch.float64), dim=1)
    k = F.normalize(torch.randn(n, c, generator=g, dtype=torch.float64), dim=1)
    queue = F.normalize(torch.randn(k_size, c, generator=g, dtype=torch.float64), dim=1)   # the contract: [K, C]
    t = 0.07

    def algorithm1(queue_ck: torch.Tensor) -> float:                       # MoCo's Algorithm 1, queue C x K
        l_pos = torch.bmm(q.view(n, 1, c), k.view(n, c, 1)).view(n, 1)
        l_neg = torch.mm(q.view(n, c), queue_ck)
        logits = torch.cat([l_pos, l_neg], 1) / t
        return float(F.cross_entropy(logits, torch.zeros(n, dtype=torch.long)))

    assert algorithm1(queue.T) == pytest.approx(float(moco_loss(q, k, queue, t)), abs=1e-12)
    assert torch.equal(queue.view(c, k_size).view(k_size, c), queue)       # .view only re-cuts the same memory ...
    assert not torch.equal(queue.view(c, k_size), queue.T)                 # ... it does not transpose,
    assert abs(algorithm1(queue.view(c, k_size)) - float(moco_loss(q, k, queue, t))) > 1e-3   # so the loss is wrong
