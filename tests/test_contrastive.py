"""Do InfoNCE, NT-Xent and the MoCo pieces follow the papers' pseudocode, stay stable, and stop gradients?"""
import copy
import math

import pytest
import torch
import torch.nn as nn

from course_lib import enqueue, info_nce_loss, moco_loss, momentum_update, nt_xent_loss
from course_lib.naive import (
    enqueue_naive,
    info_nce_loss_naive,
    moco_loss_naive,
    momentum_update_naive,
    nt_xent_loss_naive,
)
from helpers import assert_unchanged, randn, snapshot

F = nn.functional


# ------------------------------------------------------------------------------------------------- InfoNCE
@pytest.mark.parametrize("n,m,d,t", [(1, 1, 2, 0.1), (4, 0, 3, 0.5), (5, 7, 8, 0.07), (16, 3, 4, 1.0)])
def test_info_nce_matches_the_loop(n, m, d, t, gen):
    q, p, neg = randn(n, d, gen=gen), randn(n, d, gen=gen), randn(n, m, d, gen=gen)
    torch.testing.assert_close(info_nce_loss(q, p, neg, t), info_nce_loss_naive(q, p, neg, t))


def test_info_nce_is_cross_entropy_with_target_zero(gen):
    q, p, neg = randn(6, 5, gen=gen), randn(6, 5, gen=gen), randn(6, 4, 5, gen=gen)
    logits = torch.cat([F.cosine_similarity(q, p)[:, None], F.cosine_similarity(q[:, None], neg, dim=-1)], 1) / 0.2
    torch.testing.assert_close(info_nce_loss(q, p, neg, 0.2), F.cross_entropy(logits, torch.zeros(6, dtype=torch.long)))


def test_info_nce_no_negatives_gives_zero_and_is_scale_invariant(gen):
    q, p = randn(3, 4, gen=gen), randn(3, 4, gen=gen)
    assert info_nce_loss(q, p, torch.zeros(3, 0, 4, dtype=torch.float64)).item() == 0.0
    neg = randn(3, 5, 4, gen=gen)
    torch.testing.assert_close(info_nce_loss(q, p, neg), info_nce_loss(7 * q, 0.1 * p, 3 * neg))


def test_info_nce_gradcheck_and_stability(gen, dtype):
    args = tuple(randn(*s, gen=gen, requires_grad=True) for s in [(3, 4), (3, 4), (3, 2, 4)])
    assert torch.autograd.gradcheck(lambda a, b, c: info_nce_loss(a, b, c, 0.3), args)
    q, p, neg = (randn(*s, gen=gen, dtype=dtype, requires_grad=True) for s in [(8, 4), (8, 4), (8, 16, 4)])
    loss = info_nce_loss(q, p, neg, temperature=1e-3)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == dtype
    assert all(torch.isfinite(t.grad).all() for t in (q, p, neg))


# ------------------------------------------------------------------------------------------------- NT-Xent
@pytest.mark.parametrize("n,d,t", [(1, 3, 0.5), (2, 2, 0.5), (5, 4, 0.1), (12, 8, 1.0)])
def test_nt_xent_matches_simclr_algorithm_1(n, d, t, gen):
    za, zb = randn(n, d, gen=gen), randn(n, d, gen=gen)
    torch.testing.assert_close(nt_xent_loss(za, zb, t), nt_xent_loss_naive(za, zb, t))


def test_nt_xent_orthogonal_pairs_known_value():
    z = torch.eye(2, dtype=torch.float64)
    assert nt_xent_loss(z, z, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-12)
    assert nt_xent_loss(z, z, 0.5).item() == pytest.approx(0.2395447662, abs=1e-10)


@pytest.mark.parametrize("n,t", [(2, 0.5), (4, 0.1), (7, 1e-3)])
def test_nt_xent_identical_rows_give_log_2n_minus_1(n, t):
    z = torch.ones(n, 3, dtype=torch.float64)
    assert nt_xent_loss(z, z, t).item() == pytest.approx(math.log(2 * n - 1), abs=1e-9)


def test_nt_xent_single_pair_gives_zero(gen):
    assert nt_xent_loss(randn(1, 5, gen=gen), randn(1, 5, gen=gen)).item() == 0.0


def test_nt_xent_symmetric_and_permutation_equivariant(gen):
    za, zb = randn(9, 6, gen=gen), randn(9, 6, gen=gen)
    perm = torch.randperm(9, generator=gen)
    torch.testing.assert_close(nt_xent_loss(za, zb), nt_xent_loss(zb, za))
    torch.testing.assert_close(nt_xent_loss(za, zb), nt_xent_loss(za[perm], zb[perm]))


def test_nt_xent_gradients_match_the_loop_that_skips_k_equal_i(gen):
    za, zb = randn(5, 3, gen=gen, requires_grad=True), randn(5, 3, gen=gen, requires_grad=True)
    g_ref = torch.autograd.grad(nt_xent_loss(za, zb, 0.2), (za, zb))
    g_loop = torch.autograd.grad(nt_xent_loss_naive(za, zb, 0.2), (za, zb))
    for a, b in zip(g_ref, g_loop):
        torch.testing.assert_close(a, b)


def test_nt_xent_stable_at_small_temperature_and_duplicates(dtype, gen):
    za = randn(6, 4, gen=gen, dtype=dtype, requires_grad=True)
    zb = za.detach().clone().requires_grad_(True)
    loss = nt_xent_loss(za, zb, temperature=1e-3)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == dtype
    assert torch.isfinite(za.grad).all() and torch.isfinite(zb.grad).all()


def test_nt_xent_gradcheck(gen):
    args = (randn(3, 4, gen=gen, requires_grad=True), randn(3, 4, gen=gen, requires_grad=True))
    assert torch.autograd.gradcheck(lambda a, b: nt_xent_loss(a, b, 0.4), args)


def test_nt_xent_matches_pytorch_metric_learning_when_installed(gen):
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    za, zb = randn(8, 5, gen=gen), randn(8, 5, gen=gen)
    peer = losses.NTXentLoss(temperature=0.3)(torch.cat([za, zb]), torch.arange(8).repeat(2))
    torch.testing.assert_close(nt_xent_loss(za, zb, 0.3), peer)


# ------------------------------------------------------------------------------------------------- MoCo
def _encoders(gen):
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    q = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).double()
    k = copy.deepcopy(q)
    for p in k.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        for p in q.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    q(torch.randn(5, 4, dtype=torch.float64))               # move q's BatchNorm statistics
    return k, q


@pytest.mark.parametrize("m", [0.0, 0.5, 0.9, 0.999, 1.0])
def test_momentum_update_is_the_ema_and_leaves_buffers_and_flags(m, gen):
    k, q = _encoders(gen)
    k_loop, _ = copy.deepcopy(k), None
    before_k = [p.clone() for p in k.parameters()]
    before_q = [p.clone() for p in q.parameters()]
    buffers = [b.clone() for b in k.buffers()]
    momentum_update(k, q, m)
    momentum_update_naive(k_loop, q, m)
    for pk, bk, bq, pl in zip(k.parameters(), before_k, before_q, k_loop.parameters()):
        torch.testing.assert_close(pk, m * bk + (1 - m) * bq)
        torch.testing.assert_close(pk, pl)
        assert not pk.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(buffers, k.buffers()))
    assert all(torch.equal(a, b) for a, b in zip(before_q, q.parameters()))
    if m == 1.0:
        assert all(torch.equal(a, b) for a, b in zip(before_k, k.parameters()))
    if m == 0.0:
        assert all(torch.equal(a, b) for a, b in zip(before_q, k.parameters()))


def test_momentum_update_builds_no_graph(gen):
    k, q = _encoders(gen)
    for p in k.parameters():
        p.requires_grad_(True)
    momentum_update(k, q, 0.9)
    assert all(p.grad_fn is None and p.requires_grad for p in k.parameters())


@pytest.mark.parametrize("m", [-0.1, 1.5, float("nan")])
def test_momentum_update_rejects_m_outside_unit_interval(m, gen):
    k, q = _encoders(gen)
    with pytest.raises(ValueError, match="m must be in"):
        momentum_update(k, q, m)


def test_momentum_update_rejects_different_architectures():
    with pytest.raises(ValueError, match="shape"):
        momentum_update(nn.Linear(3, 4), nn.Linear(4, 3))
    with pytest.raises(ValueError, match="architecture"):
        momentum_update(nn.Linear(3, 4), nn.Linear(3, 4, bias=False))


@pytest.mark.parametrize("k_size,ptr,n", [(8, 0, 3), (8, 6, 3), (8, 7, 8), (5, 2, 5), (6, 0, 6), (7, 4, 1)])
def test_enqueue_is_a_fifo_ring_buffer_that_wraps(k_size, ptr, n, gen):
    queue = randn(k_size, 3, gen=gen)
    keys = randn(n, 3, gen=gen, requires_grad=True)
    q_loop = queue.clone()
    new_ptr = enqueue(queue, ptr, keys)
    assert new_ptr == enqueue_naive(q_loop, ptr, keys) == (ptr + n) % k_size
    assert torch.equal(queue, q_loop)
    assert not queue.requires_grad
    rows = [(ptr + r) % k_size for r in range(n)]
    assert torch.equal(queue[rows], keys.detach())


def test_enqueue_oldest_keys_are_overwritten_first(gen):
    queue = torch.zeros(4, 1)
    ptr = 0
    for step in range(1, 6):                                  # push 1..5 one at a time into 4 slots
        ptr = enqueue(queue, ptr, torch.full((1, 1), float(step)))
    assert queue.flatten().tolist() == [5.0, 2.0, 3.0, 4.0] and ptr == 1


@pytest.mark.parametrize(
    "queue,ptr,keys,match",
    [
        ((4, 3), 0, (5, 3), "N <= K"),
        ((4, 3), 0, (0, 3), "1 <= N"),
        ((4, 3), 0, (2, 2), "C = 3"),
        ((4, 3), 4, (2, 3), "ptr"),
        ((4, 3), -1, (2, 3), "ptr"),
        ((4, 3), 1.0, (2, 3), "ptr"),
        ((4,), 0, (2, 3), "queue"),
        ((4, 3), 0, (2, 3, 1), "keys"),
    ],
)
def test_enqueue_bad_arguments_raise_value_error(queue, ptr, keys, match):
    q = torch.zeros(queue)
    with pytest.raises(ValueError, match=match):
        enqueue(q, ptr, torch.ones(keys))
    assert torch.equal(q, torch.zeros(queue)), "a rejected call must not touch the queue"


@pytest.mark.parametrize("n,k,c,t", [(1, 1, 2, 0.07), (4, 0, 3, 0.2), (6, 10, 5, 0.07)])
def test_moco_loss_matches_the_loop(n, k, c, t, gen):
    q = F.normalize(randn(n, c, gen=gen), dim=1)
    key = F.normalize(randn(n, c, gen=gen), dim=1)
    queue = F.normalize(randn(k, c, gen=gen), dim=1)
    torch.testing.assert_close(moco_loss(q, key, queue, t), moco_loss_naive(q, key, queue, t))


def test_moco_loss_stops_gradients_into_keys_and_queue(gen):
    q = F.normalize(randn(4, 3, gen=gen), dim=1).requires_grad_(True)
    key = F.normalize(randn(4, 3, gen=gen), dim=1).requires_grad_(True)
    queue = F.normalize(randn(6, 3, gen=gen), dim=1).requires_grad_(True)
    moco_loss(q, key, queue).backward()
    assert q.grad is not None and torch.any(q.grad != 0)
    assert key.grad is None and queue.grad is None


def test_moco_loss_gradcheck_stability_and_dtype(gen, dtype):
    q = F.normalize(randn(3, 4, gen=gen), dim=1).requires_grad_(True)
    k, queue = F.normalize(randn(3, 4, gen=gen), dim=1), F.normalize(randn(5, 4, gen=gen), dim=1)
    assert torch.autograd.gradcheck(lambda a: moco_loss(a, k, queue, 0.5), (q,))
    q2 = F.normalize(randn(8, 16, gen=gen, dtype=dtype), dim=1).requires_grad_(True)
    loss = moco_loss(q2, q2.detach(), F.normalize(randn(64, 16, gen=gen, dtype=dtype), dim=1), temperature=1e-3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(q2.grad).all() and loss.dtype == dtype


@pytest.mark.parametrize(
    "shapes,t,match",
    [
        (((3, 4), (3, 4), (5, 4)), 0.0, "temperature"),
        (((3, 4), (2, 4), (5, 4)), 0.1, "k must"),
        (((3, 4), (3, 4), (5, 3)), 0.1, "queue"),
        (((3, 4, 1), (3, 4), (5, 4)), 0.1, "q must"),
    ],
)
def test_moco_loss_bad_arguments(shapes, t, match):
    with pytest.raises(ValueError, match=match):
        moco_loss(*(torch.zeros(s) for s in shapes), temperature=t)


@pytest.mark.parametrize(
    "fn,args,match",
    [
        (info_nce_loss, ((3, 4), (3, 4), (3, 2, 4), -0.1), "temperature"),
        (info_nce_loss, ((3, 4), (2, 4), (3, 2, 4), 0.1), "positive"),
        (info_nce_loss, ((3, 4), (3, 4), (2, 2, 4), 0.1), "negatives"),
        (info_nce_loss, ((3, 4), (3, 4), (3, 4), 0.1), "negatives"),
        (nt_xent_loss, ((3, 4), (3, 5), 0.5), "same shape"),
        (nt_xent_loss, ((3,), (3,), 0.5), "z_a"),
        (nt_xent_loss, ((3, 4), (3, 4), 0), "temperature"),
        (nt_xent_loss, ((0, 4), (0, 4), 0.5), "at least one"),
    ],
)
def test_loss_bad_arguments_raise_value_error(fn, args, match):
    *shapes, t = args
    with pytest.raises(ValueError, match=match):
        fn(*(torch.zeros(s) for s in shapes), t)


def test_losses_follow_device_dtype_and_do_not_mutate(device, dtype, gen):
    za, zb = randn(4, 3, gen=gen, dtype=dtype, device=device), randn(4, 3, gen=gen, dtype=dtype, device=device)
    neg, queue = randn(4, 2, 3, gen=gen, dtype=dtype, device=device), randn(6, 3, gen=gen, dtype=dtype, device=device)
    before = snapshot(za, zb, neg, queue)
    for out in (nt_xent_loss(za, zb), info_nce_loss(za, zb, neg), moco_loss(za, zb, queue)):
        assert out.shape == () and out.dtype == dtype and out.device.type == device.type
    assert_unchanged(before, (za, zb, neg, queue))
    ptr = enqueue(queue, 5, za)
    assert ptr == 3 and torch.equal(queue[[5, 0, 1, 2]], za)
