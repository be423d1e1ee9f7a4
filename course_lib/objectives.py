"""SimCLR's and MoCo's training objectives, shared by the single-process experiments (course_lib.experiments
.contrastive, which the notebook runs with the student's functions) and the distributed trainer
(course_lib.train.contrastive).

Both take the graded functions as arguments (``nt_xent_loss``; ``momentum_update``, ``enqueue``, ``moco_loss``)
and follow one training step: ``loss(x_a, x_b)`` on the two augmented views, the caller's backward and optimiser
step, then ``after_step()``. What the distributed trainer adds is passed in: ``gather`` (all-gather of this rank's
embeddings or keys, in rank order), ``key_forward`` (shuffled BatchNorm across ranks). A single process uses the
defaults, which are identities.

MoCo follows Algorithm 1 of He et al. (2020): the key encoder is a momentum copy of the query encoder, updated
*after* the optimiser step (``theta_k <- m theta_k + (1 - m) theta_q``), and the step's keys join the queue after
the loss was computed, so the current positives are never among the negatives. ``symmetric=True`` (the
experiments; MoCo's CIFAR-10 demo and MoCo v3) makes each view a query once, with the other view's key as its
positive; ``symmetric=False`` (the trainer; MoCo v1/v2) uses the first view as queries and the second as keys.

References:
    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020 (SimCLR).
    He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020 (MoCo).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SimCLRObjective", "MoCoObjective"]


def _full(z: torch.Tensor) -> torch.Tensor:
    """Losses run in at least float32 (autocast gives float16 / bfloat16 projections)."""
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


class SimCLRObjective:
    """NT-Xent of the batch's two views, from one forward pass over both (BatchNorm statistics shared).

    ``gather`` maps this rank's ``[n, D]`` embeddings to the global batch's ``[W n, D]`` (with gradients), so every
    image sees the other images of every rank as negatives.
    """

    name = "NT-Xent loss (SimCLR)"

    def __init__(self, forward: Callable, nt_xent_loss: Callable, temperature: float,
                 gather: Callable[[torch.Tensor], torch.Tensor] = _same):
        self.forward, self.nt_xent_loss, self.t, self.gather = forward, nt_xent_loss, temperature, gather
        self.inputs: dict[str, torch.Tensor] = {}            # what the last loss was computed from

    def loss(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        n = x_a.shape[0]
        z = _full(self.forward(torch.cat([x_a, x_b])))                          # [2n, D]
        self.inputs = {"projections z": z}
        return self.nt_xent_loss(self.gather(z[:n]), self.gather(z[n:]), self.t)

    def after_step(self) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class MoCoObjective:
    """Query encoder (``query_model``, trained), its momentum copy as key encoder, a queue ``[K, D]`` of
    L2-normalised keys (random unit vectors at the start, as in MoCo's code).

    Args:
        forward: the query encoder's forward (default ``query_model``; the trainer passes its DDP wrapper).
        key_forward: ``(key_model, x) -> keys`` in ``x``'s order (default ``key_model(x)``; the trainer shuffles
            BatchNorm across ranks).
        gather: this rank's keys -> every rank's keys, in rank order (what enters the shared queue).
    """

    name = "MoCo loss"

    def __init__(self, query_model: nn.Module, momentum_update: Callable, enqueue: Callable, moco_loss: Callable,
                 *, temperature: float, queue_size: int, momentum: float, dim: int, device: torch.device, seed: int = 0,
                 symmetric: bool = True, forward: Callable | None = None, key_forward: Callable | None = None,
                 gather: Callable[[torch.Tensor], torch.Tensor] = _same):
        self.query_model, self.forward = query_model, forward or query_model
        self.momentum_update, self.enqueue, self.moco_loss = momentum_update, enqueue, moco_loss
        self.t, self.m, self.symmetric, self.gather = temperature, momentum, symmetric, gather
        self.key_forward = key_forward or (lambda model, x: model(x))
        self.key_model = copy.deepcopy(query_model)
        for p in self.key_model.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(seed + 7919)
        self.queue = F.normalize(torch.randn(queue_size, dim, generator=gen), dim=1).to(device)    # [K, D]
        self.ptr = 0
        self._keys: torch.Tensor | None = None
        self.inputs: dict[str, torch.Tensor] = {}            # what the last loss was computed from

    def _encode_keys(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(_full(self.key_forward(self.key_model, x)), dim=1)              # [n, D]

    def loss(self, x_1: torch.Tensor, x_2: torch.Tensor) -> torch.Tensor:
        q_1 = F.normalize(_full(self.forward(x_1)), dim=1)                                     # [n, D]
        if self.symmetric:
            q_2 = F.normalize(_full(self.forward(x_2)), dim=1)
            k_1 = self._encode_keys(x_1)
        k_2 = self._encode_keys(x_2)
        queue = self.queue.to(q_1.dtype)
        if not self.symmetric:
            self._keys = k_2
            self.inputs = {"queries": q_1, "keys": k_2, "queue": self.queue}
            return self.moco_loss(q_1, k_2.to(q_1.dtype), queue, self.t)
        self._keys = torch.cat([k_1, k_2])                                                    # [2n, D]
        self.inputs = {"queries": torch.cat([q_1, q_2]), "keys": self._keys, "queue": self.queue}
        return 0.5 * (self.moco_loss(q_1, k_2, queue, self.t) + self.moco_loss(q_2, k_1, queue, self.t))

    def after_step(self) -> None:
        """After the optimiser step: theta_k <- m theta_k + (1 - m) theta_q, then this step's keys join the queue."""
        self.momentum_update(self.key_model, self.query_model, self.m)
        self.ptr = self.enqueue(self.queue, self.ptr, self.gather(self._keys))

    def state(self) -> dict:
        out = {"key_model": self.key_model.state_dict(), "queue": self.queue.cpu(), "queue_ptr": self.ptr}
        if hasattr(self.key_forward, "state"):                # e.g. the trainer's shuffling generator
            out["key_forward"] = self.key_forward.state()
        return out

    def load_state(self, state: dict) -> None:
        self.key_model.load_state_dict(state["key_model"])
        if hasattr(self.key_forward, "load_state") and "key_forward" in state:
            self.key_forward.load_state(state["key_forward"])
        if state["queue"].shape != self.queue.shape:
            raise ValueError(f"checkpoint queue {list(state['queue'].shape)} does not match the queue size "
                             f"{list(self.queue.shape)}")
        self.queue.copy_(state["queue"])
        self.ptr = int(state["queue_ptr"])
