"""Does training on two processes (gloo, CPU) compute what one process computes on the whole batch?

* SimCLR: loss and every parameter gradient of two ranks on halves of a batch equal one process on the whole
  batch (float64). The model has no BatchNorm here: BatchNorm statistics of a half batch differ from those of
  the whole batch by design, which would make the comparison meaningless.
* MoCo: after one step the queue holds the keys of rank 0 then rank 1, the same on both ranks.
* Shuffled BN: shuffling a batch across ranks and unshuffling the result restores it exactly.

Workers run under ``torch.multiprocessing.spawn`` with a free TCP port on 127.0.0.1 and write their results
to files that the test compares.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from course_lib.models import ContrastiveNet, EncoderConfig, HeadConfig
from course_lib import enqueue, moco_loss, momentum_update, nt_xent_loss
from course_lib.objectives import MoCoObjective, SimCLRObjective
from course_lib.train.contrastive import ShuffledKeys
from course_lib.train.distributed import all_gather_no_grad, all_gather_with_grad, shuffle_across_ranks, unshuffle_across_ranks

WORLD = 2
N = 8                                   # whole batch; each rank gets N / WORLD


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)


def _model(norm: str) -> ContrastiveNet:
    torch.manual_seed(0)
    return ContrastiveNet(EncoderConfig(width=4, norm=norm), HeadConfig(hidden_dim=16, out_dim=8, norm=norm))


def _views(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return torch.rand(N, 3, 16, 16, generator=g).to(dtype), torch.rand(N, 3, 16, 16, generator=g).to(dtype)


def _finish() -> None:
    """Wait for every rank before tearing the group down: a gloo pair closed while its peer still talks aborts."""
    dist.barrier()
    dist.destroy_process_group()


def _spawn(fn, tmp_path) -> list[dict]:
    """Run ``fn`` on WORLD ranks and load what each wrote.

    A worker killed by a signal (a gloo transport abort at start-up or teardown, seen once on a loaded CI
    machine) is retried once on a fresh port; a Python exception in a worker is never retried.
    """
    for attempt in (1, 2):
        try:
            mp.spawn(fn, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
            break
        except mp.ProcessExitedException:
            if attempt == 2:
                raise
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


# ----------------------------------------------------------------------------------------------- workers
def _simclr_worker(rank, port, out):
    _init(rank, port)
    model = _model("none").double()
    ddp = DistributedDataParallel(model)
    x_a, x_b = _views()
    n = N // WORLD
    part = slice(rank * n, (rank + 1) * n)
    loss = SimCLRObjective(ddp, nt_xent_loss, 0.5, gather=all_gather_with_grad).loss(x_a[part], x_b[part])
    loss.backward()
    with torch.no_grad():
        local = nt_xent_loss(model(x_a[part]), model(x_b[part]), 0.5)      # this rank's negatives only
    torch.save({"loss": loss.detach(), "local_loss": local, "grads": [p.grad for p in model.parameters()]},
               os.path.join(out, f"rank{rank}.pt"))
    _finish()


def _gather_grad_worker(rank, port, out):
    _init(rank, port)
    x = torch.full((2, 3), float(rank + 1), dtype=torch.float64, requires_grad=True)
    g = all_gather_with_grad(x)                                                 # [4, 3]
    weights = torch.arange(12, dtype=torch.float64).view(4, 3) * (rank + 1)     # a different loss per rank
    (g * weights).sum().backward()
    torch.save({"gathered": g.detach(), "grad": x.grad}, os.path.join(out, f"rank{rank}.pt"))
    _finish()


def _moco_worker(rank, port, out):
    _init(rank, port)
    model = _model("batch").double()
    ddp = DistributedDataParallel(model)
    obj = MoCoObjective(model, momentum_update, enqueue, moco_loss, temperature=0.2, queue_size=16, momentum=0.9,
                        dim=8, device=torch.device("cpu"), seed=0, symmetric=False, forward=ddp,
                        key_forward=ShuffledKeys(0), gather=all_gather_no_grad)
    obj.queue = obj.queue.double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x_q, x_k = _views()
    n = N // WORLD
    part = slice(rank * n, (rank + 1) * n)
    loss = obj.loss(x_q[part], x_k[part])
    opt.zero_grad()
    loss.backward()
    opt.step()
    obj.after_step()
    torch.save({"queue": obj.queue.clone(), "ptr": obj.ptr, "keys": obj._keys.clone(), "loss": loss.detach()},
               os.path.join(out, f"rank{rank}.pt"))
    _finish()


def _shuffle_worker(rank, port, out):
    _init(rank, port)
    x = torch.arange(N // WORLD * 3, dtype=torch.float64).view(-1, 3) + 100 * rank      # distinct rows
    gen = torch.Generator().manual_seed(5)
    shuffled, inverse = shuffle_across_ranks(x, gen)
    back = unshuffle_across_ranks(shuffled * 2, inverse)                                 # any row-wise map
    torch.save({"x": x, "shuffled": shuffled, "back": back}, os.path.join(out, f"rank{rank}.pt"))
    _finish()


# ------------------------------------------------------------------------------------------------- tests
def test_simclr_on_two_ranks_matches_one_process_on_the_whole_batch(tmp_path):
    results = _spawn(_simclr_worker, tmp_path)
    model = _model("none").double()
    x_a, x_b = _views()
    loss = SimCLRObjective(model, nt_xent_loss, 0.5).loss(x_a, x_b)
    loss.backward()
    for res in results:
        torch.testing.assert_close(res["loss"], loss.detach(), rtol=0, atol=1e-10)
        for got, want in zip(res["grads"], (p.grad for p in model.parameters())):
            torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-10)
    # the negatives of the other rank matter: a loss over local negatives only is a different number
    assert abs(results[0]["local_loss"].item() - loss.item()) > 1e-3


def test_gather_backward_sums_the_gradients_of_every_rank(tmp_path):
    results = _spawn(_gather_grad_worker, tmp_path)
    expected_rows = torch.tensor([1.0, 1.0, 2.0, 2.0], dtype=torch.float64)[:, None].expand(4, 3)
    weights = torch.arange(12, dtype=torch.float64).view(4, 3)
    total = weights * 1 + weights * 2                                  # d(sum_s L_s)/dX
    for rank, res in enumerate(results):
        torch.testing.assert_close(res["gathered"], expected_rows)
        torch.testing.assert_close(res["grad"], total[2 * rank : 2 * rank + 2])


def test_moco_queue_holds_both_ranks_keys_in_rank_order(tmp_path):
    results = _spawn(_moco_worker, tmp_path)
    keys = torch.cat([r["keys"] for r in results])                     # [N, 8]: rank 0's, then rank 1's
    for res in results:
        assert res["ptr"] == N
        torch.testing.assert_close(res["queue"][:N], keys, rtol=0, atol=0)
        torch.testing.assert_close(res["keys"].norm(dim=1), torch.ones(N // WORLD, dtype=torch.float64))
    torch.testing.assert_close(results[0]["queue"], results[1]["queue"], rtol=0, atol=0)
    assert not torch.allclose(results[0]["keys"], results[1]["keys"])


def test_shuffled_bn_permutation_round_trip_is_exact(tmp_path):
    results = _spawn(_shuffle_worker, tmp_path)
    whole = torch.cat([r["x"] for r in results])
    shuffled = torch.cat([r["shuffled"] for r in results])
    # the shuffled global batch is a permutation of the original rows, and not the identity
    assert sorted(map(tuple, shuffled.tolist())) == sorted(map(tuple, whole.tolist()))
    assert not torch.equal(shuffled, whole)
    assert not all(torch.equal(r["shuffled"], r["x"]) for r in results)
    for res in results:
        torch.testing.assert_close(res["back"], 2 * res["x"], rtol=0, atol=0)


def test_single_process_gather_and_shuffle_are_identities():
    x = torch.rand(4, 3, requires_grad=True)
    assert all_gather_with_grad(x) is x
    shuffled, inverse = shuffle_across_ranks(x.detach())
    assert torch.equal(shuffled, x.detach()) and torch.equal(inverse, torch.arange(4))
    assert torch.equal(unshuffle_across_ranks(shuffled, inverse), x.detach())


@pytest.mark.parametrize("method", ["simclr", "moco"])
def test_objectives_give_finite_losses_with_batchnorm_on_one_process(method):
    model = _model("batch")
    x_a, x_b = _views(torch.float32)
    if method == "simclr":
        obj = SimCLRObjective(model, nt_xent_loss, 0.5)
    else:
        obj = MoCoObjective(model, momentum_update, enqueue, moco_loss, temperature=0.1, queue_size=16, momentum=0.99,
                            dim=8, device=torch.device("cpu"), symmetric=False, key_forward=ShuffledKeys(0))
    loss = obj.loss(x_a, x_b)
    loss.backward()
    obj.after_step()
    assert torch.isfinite(loss) and loss.item() > 0
    if method == "moco":
        assert obj.ptr == N and torch.equal(obj.queue[:N], obj._keys)
