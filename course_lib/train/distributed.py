"""torch.distributed plumbing for contrastive training: process-group set-up from torchrun's environment, an
all-gather that back-propagates, and MoCo's shuffled BatchNorm across ranks.

**All-gather with gradients.** ``dist.all_gather`` is not differentiable. :class:`GatherWithGrad` gathers
``x_r [n, D]`` from every rank r into ``X = cat_r x_r [W n, D]`` (rank order) and, in backward, *sums* the
incoming gradient over ranks and returns this rank's slice::

    forward:   X = cat(x_0, ..., x_(W-1))
    backward:  dL/dx_r = sum_s (dL_s / dX)[r n : (r + 1) n]           (one all_reduce(SUM), then a slice)

where ``L_s`` is the loss computed on rank s. If every rank computes the same global loss L from X (as the
SimCLR step here does), the sum is ``W dL/dx_r``, and DistributedDataParallel's gradient *average* over ranks
divides the W back out: the parameter gradients equal those of one process on the whole batch. (PyTorch's
``torch.distributed.nn.functional.all_gather`` computes the same sum, but is deprecated and falls back to
all-to-all on gloo.)

**Shuffled BatchNorm** (MoCo, section 3.3). BatchNorm statistics of a batch let the key encoder "cheat": the
query and its key come from the same sub-batch. MoCo shuffles the keys' images across GPUs before the key
encoder and restores the order afterwards::

    X = all_gather(x);  perm = randperm(W n) on rank 0, broadcast;  x' = X[perm[r n : (r + 1) n]]
    k' = key_encoder(x');  K' = all_gather(k');  k = K'[argsort(perm)[r n : (r + 1) n]]

With one process the shuffle is skipped (BatchNorm over the whole batch does not depend on the order).

References:
    He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020
    (shuffling BN, Algorithm 1).
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (negatives from every device, global BN).
    Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020 (DDP).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..utils import pick_device

__all__ = [
    "DistEnv",
    "init_distributed",
    "shutdown_distributed",
    "GatherWithGrad",
    "all_gather_with_grad",
    "all_gather_no_grad",
    "shuffle_across_ranks",
    "unshuffle_across_ranks",
]


@dataclass
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size`` processes, its ``device`` and the ``backend``
    (``None`` for a single process without a process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from None


def init_distributed(device: str | None = None, backend: str | None = None) -> DistEnv:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
    ``MASTER_PORT``), or describe a single process when those are absent.

    Args:
        device: ``"cpu"``, ``"cuda"`` or None (CUDA when available, one GPU per local rank).
        backend: ``"nccl"`` / ``"gloo"`` or None (NCCL for CUDA, gloo otherwise).
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE={world}), got {rank}")
    if device is None and world > 1 and not torch.cuda.is_available():
        dev = torch.device("cpu")
    else:
        dev = pick_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world == 1:
        return DistEnv(0, 1, 0, dev, None)
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError(f"backend 'nccl' needs CUDA devices, got device {dev}")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistEnv(rank, world, local, dev, backend)


def shutdown_distributed(wait: bool = True) -> None:
    """Destroy the process group; with ``wait``, after a barrier (closing a gloo pair that a peer still uses
    aborts the peer). Pass ``wait=False`` on an error path, where the other ranks may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class GatherWithGrad(torch.autograd.Function):
    """``[n, ...]`` on each rank -> ``[W n, ...]`` in rank order; backward sums the gradients of all ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)                                # [W n, ...]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()                              # all_reduce works in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)                   # sum_s dL_s/dX
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]        # this rank's rows


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Differentiable all-gather along dim 0 (identity with one process). Every rank must pass the same
    shape."""
    if _world() == 1:
        return x
    return GatherWithGrad.apply(x)


@torch.no_grad()
def all_gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 in rank order, detached (identity with one process)."""
    if _world() == 1:
        return x.detach()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def shuffle_across_ranks(
    x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle a batch across all ranks (MoCo's shuffled BN): returns this rank's ``[n, ...]`` share of the
    shuffled global batch and the inverse permutation ``[W n]`` that :func:`unshuffle_across_ranks` needs.

    The permutation is drawn on rank 0 (from ``generator`` when given) and broadcast, so every rank uses the
    same one. With one process it is the identity (no shuffle).
    """
    world = _world()
    n = x.shape[0]
    if world == 1:
        return x, torch.arange(n, device=x.device)
    rank = dist.get_rank()
    gathered = all_gather_no_grad(x)                                  # [W n, ...]
    if rank == 0:
        perm = torch.randperm(world * n, generator=generator,
                              device=generator.device if generator is not None else "cpu")
        perm = perm.to(x.device)
    else:
        perm = torch.empty(world * n, dtype=torch.int64, device=x.device)
    dist.broadcast(perm, src=0)                                       # [W n], the same on every rank
    inverse = torch.argsort(perm)                                     # perm[inverse] = arange
    return gathered[perm[rank * n : (rank + 1) * n]], inverse


@torch.no_grad()
def unshuffle_across_ranks(y: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Undo :func:`shuffle_across_ranks` on the outputs ``[n, ...]`` computed from the shuffled share: returns
    the rows that belong to this rank's original inputs, in their original order."""
    world = _world()
    if world == 1:
        return y
    n = y.shape[0]
    rank = dist.get_rank()
    gathered = all_gather_no_grad(y)                                  # [W n, ...] in shuffled order
    return gathered[inverse[rank * n : (rank + 1) * n]]
