"""SimCLR and MoCo training on one or many processes (torchrun), with checkpoints and a kNN monitor.

    python -m course_lib.train.contrastive --method simclr --epochs 20              # one process
    torchrun --nproc_per_node=2 -m course_lib.train.contrastive --method moco ...    # two processes (gloo/NCCL)
    ... --images DIR          train on an image folder (one sub-folder per class) instead of the glyphs
    ... --resume              continue from OUT/last.pt (model, optimizer, queue, epoch, RNG states)

Each rank augments its share of the global batch (:mod:`course_lib.augment`), the encoder is wrapped in
DistributedDataParallel, and (the objectives are course_lib.objectives, shared with the notebook's experiments):

* **SimCLR**: both views' projections are all-gathered with a gradient-carrying all-gather, and every rank
  evaluates ``course_lib.nt_xent_loss`` on the whole global batch -- each image sees the 2 W n - 2 negatives of
  all ranks, and the parameter gradients equal one process's on the whole batch (see
  :mod:`course_lib.train.distributed`). BatchNorm statistics stay per rank (SimCLR uses global BN on TPUs).
* **MoCo**: the key encoder is a momentum copy (``course_lib.momentum_update``), fed images shuffled across
  ranks (shuffled BN); the loss is ``course_lib.moco_loss`` against a queue that every rank keeps identical by
  enqueueing the keys of all ranks in rank order (``course_lib.enqueue``).

The last line printed is ``knn_acc=<fraction>``: weighted kNN (k = 200, tau = 0.1) of the frozen encoder's
features on a held-out 20% of the images (:mod:`course_lib.train.knn`).

The learning rate follows the linear scaling rule, ``lr * global_batch / 256`` (Goyal et al. 2017), with a
cosine decay (SGD, momentum 0.9, weight decay 5e-4; the MoCo CIFAR-10 demo's recipe). Mixed precision
(``torch.autocast``: float16 + GradScaler on CUDA, bfloat16 on CPU) and ``torch.compile`` are on by default on
CUDA and off on the CPU (``--amp`` / ``--compile`` to force).

References:
    Chen et al., SimCLR, ICML 2020; He et al., MoCo, CVPR 2020; Chen et al., MoCo v2, 2020.
    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017 (linear scaling rule).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from ..augment import AugmentConfig, augment
from ..manifest import resolve
from ..objectives import MoCoObjective, SimCLRObjective
from ..guards import require_finite, require_finite_grads
from ..models import ContrastiveNet, EncoderConfig, HeadConfig
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import RankBatches, load_image_source, split_holdout
from .distributed import (DistEnv, all_gather_no_grad, all_gather_with_grad, init_distributed,
                          shuffle_across_ranks, shutdown_distributed, unshuffle_across_ranks)
from .knn import extract_features, knn_accuracy

__all__ = ["TrainConfig", "SimCLRObjective", "MoCoObjective", "train", "parse_args", "main"]

_DEFAULT_T = {"simclr": 0.5, "moco": 0.1}


@dataclass
class TrainConfig:
    """Everything a run needs; the command-line flags mirror these fields."""

    method: str = "simclr"                 # "simclr" | "moco"
    epochs: int = 20
    batch_size: int = 128                  # per rank
    lr: float = 0.06                       # for a global batch of 256 (scaled linearly)
    weight_decay: float = 5e-4
    temperature: float | None = None       # None: 0.5 for SimCLR, 0.1 for MoCo
    queue_size: int = 4096                 # MoCo
    moco_momentum: float = 0.99            # MoCo key-encoder momentum m
    width: int = 32
    out_dim: int = 128
    norm: str = "batch"                    # encoder/head normalisation: "batch" | "none"
    data: str = "glyphs"                   # "glyphs" or a folder / archive of class folders
    n_images: int = 6000                   # glyphs only
    image_size: int = 32
    holdout: float = 0.2                   # fraction kept out for the kNN monitor
    knn_k: int = 200
    knn_t: float = 0.1
    seed: int = 0
    out: str = "out/contrastive"
    resume: str | None = None              # a checkpoint path ("" or "auto": OUT/last.pt)
    max_steps: int | None = None           # stop early (smoke tests); a checkpoint is still written
    amp: bool | None = None                # None: on for CUDA, off for CPU
    compile: bool | None = None            # None: on for CUDA, off for CPU
    device: str | None = None
    log_every: int = 20
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> "TrainConfig":
        if self.method not in _DEFAULT_T:
            raise ValueError(f"method must be 'simclr' or 'moco', got {self.method!r}")
        for name in ("epochs", "batch_size", "queue_size", "width", "out_dim", "image_size", "knn_k", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or (self.temperature is not None and self.temperature <= 0):
            raise ValueError(f"lr and temperature must be > 0, got lr={self.lr}, temperature={self.temperature}")
        if not 0.0 <= self.moco_momentum <= 1.0:
            raise ValueError(f"moco_momentum must be in [0, 1], got {self.moco_momentum}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        self.augment.validate()
        return self

    @property
    def tau(self) -> float:
        return self.temperature if self.temperature is not None else _DEFAULT_T[self.method]


def build_model(cfg: TrainConfig, in_channels: int) -> ContrastiveNet:
    return ContrastiveNet(EncoderConfig(in_channels=in_channels, width=cfg.width, norm=cfg.norm),
                          HeadConfig(hidden_dim=8 * cfg.width, out_dim=cfg.out_dim, norm=cfg.norm))


class ShuffledKeys:
    """The key encoder's forward with BatchNorm shuffled across ranks (MoCo's shuffled BN): the batch is permuted
    over all ranks, encoded, and put back in this rank's order. Its generator is part of the checkpoint."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed + 104729)              # used on rank 0 only

    def __call__(self, key_model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x_sh, inverse = shuffle_across_ranks(x, self.gen)
        return unshuffle_across_ranks(key_model(x_sh), inverse)

    def state(self) -> torch.Tensor:
        return self.gen.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.gen.set_state(state)


def _lr_at(cfg: TrainConfig, step: int, total: int, global_batch: int) -> float:
    base = cfg.lr * global_batch / 256
    return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def _log(env: DistEnv, msg: str) -> None:
    if env.is_main:
        print(msg, flush=True)


def train(cfg: TrainConfig, env: DistEnv | None = None) -> dict:
    """Run training as configured on this process (one rank of ``env``); returns a summary dict with
    ``knn_acc`` (rank 0; NaN on the others), ``loss`` (last logged), ``step`` and ``checkpoint``."""
    cfg.validate()
    env = env or init_distributed(cfg.device)
    dev = env.device
    torch.manual_seed(cfg.seed)
    images, labels, n_classes = load_image_source(cfg.data, cfg.n_images, cfg.image_size, cfg.seed)
    split = split_holdout(images, labels, n_classes, cfg.holdout, cfg.seed)
    batches = RankBatches(split.train_images.shape[0], cfg.batch_size, env.world_size, env.rank, cfg.seed)
    total = cfg.epochs * batches.steps_per_epoch                      # the schedule's length
    stop = total if cfg.max_steps is None else min(total, cfg.max_steps)

    model = build_model(cfg, split.train_images.shape[1]).to(dev)
    ddp = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) \
        if env.distributed else model
    use_amp = cfg.amp if cfg.amp is not None else dev.type == "cuda"
    use_compile = cfg.compile if cfg.compile is not None else dev.type == "cuda"
    forward = torch.compile(ddp) if use_compile else ddp
    if cfg.method == "simclr":
        objective = SimCLRObjective(forward, resolve("nt_xent_loss", None), cfg.tau, gather=all_gather_with_grad)
    else:
        objective = MoCoObjective(model, resolve("momentum_update", None), resolve("enqueue", None),
                                  resolve("moco_loss", None), temperature=cfg.tau, queue_size=cfg.queue_size,
                                  momentum=cfg.moco_momentum, dim=cfg.out_dim, device=dev, seed=cfg.seed,
                                  symmetric=False, forward=forward, key_forward=ShuffledKeys(cfg.seed),
                                  gather=all_gather_no_grad)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(dev.type, enabled=use_amp and dev.type == "cuda")
    aug_gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1000 + env.rank)

    out = Path(cfg.out)
    ckpt_path = out / "last.pt"
    step, epoch, in_epoch = 0, 0, 0
    if cfg.resume is not None:
        path = ckpt_path if cfg.resume in ("", "auto") else Path(cfg.resume)
        state = load_checkpoint(path, ("model", "optimizer", "step", "epoch", "step_in_epoch", "config"), dev)
        if state["config"]["method"] != cfg.method:
            raise ValueError(f"checkpoint {path} was written by --method {state['config']['method']}, "
                             f"not {cfg.method}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        objective.load_state(state.get("objective", {}))
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        step, epoch, in_epoch = int(state["step"]), int(state["epoch"]), int(state["step_in_epoch"])
        set_rng_state(state["rng"])
        gens = state.get("aug_rng", [])
        if len(gens) == env.world_size:
            aug_gen.set_state(gens[env.rank].to("cpu"))
        _log(env, f"resumed from {path} at epoch {epoch}, step {step}")

    def save() -> None:
        gens = [None] * env.world_size
        if env.distributed:
            dist.all_gather_object(gens, aug_gen.get_state())
        else:
            gens = [aug_gen.get_state()]
        if env.is_main:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "objective": objective.state(),
                "scaler": scaler.state_dict(), "step": step, "epoch": epoch, "step_in_epoch": in_epoch,
                "rng": rng_state(), "aug_rng": gens, "world_size": env.world_size,
                "config": {**asdict(cfg), "augment": asdict(cfg.augment)},
            })
        if env.distributed:
            dist.barrier()

    _log(env, f"{cfg.method}: {split.train_images.shape[0]} training images, {env.world_size} rank(s) x "
              f"{cfg.batch_size} = global batch {batches.global_batch}, steps {step}..{stop} of {total}, "
              f"device {dev}, amp={use_amp}, compile={use_compile}")
    model.train()
    last_loss, t0 = float("nan"), time.perf_counter()
    while step < stop:
        for idx in batches.epoch(epoch, in_epoch):
            if step >= stop:
                break
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, step, total, batches.global_batch)
            x = split.train_images[idx].to(dev, non_blocking=True)          # [n, C, H, W]
            x_a, x_b = augment(x, cfg.augment, aug_gen), augment(x, cfg.augment, aug_gen)
            with torch.autocast(dev.type, dtype=amp_dtype) if use_amp else nullcontext():
                loss = objective.loss(x_a, x_b)
            where = f"at step {step}" + (f" on rank {env.rank}" if env.distributed else "")
            require_finite(f"{cfg.method} loss", loss, where, inputs=objective.inputs)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if not scaler.is_enabled():                                       # a GradScaler skips inf steps itself
                require_finite_grads(f"the {cfg.method} loss", model.parameters(), where)
            scaler.step(opt)
            scaler.update()
            objective.after_step()
            step, in_epoch = step + 1, in_epoch + 1
            last_loss = float(loss.detach())
            if step % cfg.log_every == 0 or step == stop:
                _log(env, f"epoch {epoch} step {step}/{total} loss {last_loss:.4f} "
                          f"lr {opt.param_groups[0]['lr']:.4f} ({time.perf_counter() - t0:.0f}s)")
        if in_epoch >= batches.steps_per_epoch:
            epoch, in_epoch = epoch + 1, 0
        save()

    acc = float("nan")
    if env.is_main:
        model.eval()
        feats = lambda x: model.features(x)                                   # noqa: E731
        train_f = extract_features(feats, split.train_images, dev)
        test_f = extract_features(feats, split.test_images, dev)
        acc = knn_accuracy(test_f, split.test_labels, train_f, split.train_labels, split.num_classes,
                           cfg.knn_k, cfg.knn_t)
        print(f"knn_acc={acc:.4f}", flush=True)
    if env.distributed:
        dist.barrier()
    return {"knn_acc": acc, "loss": last_loss, "step": step, "checkpoint": str(ckpt_path)}


def _build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m course_lib.train.contrastive", description=__doc__.split("\n")[0])
    p.add_argument("--method", choices=sorted(_DEFAULT_T), default=d.method)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per rank")
    p.add_argument("--lr", type=float, default=d.lr, help="for a global batch of 256")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--temperature", type=float, default=None, help="default 0.5 (simclr) / 0.1 (moco)")
    p.add_argument("--queue-size", type=int, default=d.queue_size)
    p.add_argument("--moco-momentum", type=float, default=d.moco_momentum)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--out-dim", type=int, default=d.out_dim)
    p.add_argument("--norm", choices=["batch", "none"], default=d.norm)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", choices=["glyphs"], default=None, help="synthetic glyphs (the default)")
    src.add_argument("--images", metavar="DIR", default=None, help="folder or tar of <class>/<image> files")
    p.add_argument("--n-images", type=int, default=d.n_images)
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--crop-min", type=float, default=d.augment.crop_scale[0],
                   help="smallest crop area fraction (SimCLR: 0.08; the MoCo CIFAR demo: 0.2)")
    p.add_argument("--holdout", type=float, default=d.holdout)
    p.add_argument("--knn-k", type=int, default=d.knn_k)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help="checkpoint folder (last.pt)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue from CKPT (default OUT/last.pt)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--log-every", type=int, default=d.log_every)
    return p


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags -> a validated :class:`TrainConfig` (usage errors exit with status 2)."""
    parser = _build_parser()
    a = parser.parse_args(argv)
    if a.images is not None and not Path(a.images).exists():
        parser.error(f"--images {a.images}: no such folder or archive")
    cfg = TrainConfig(
        method=a.method, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
        temperature=a.temperature, queue_size=a.queue_size, moco_momentum=a.moco_momentum, width=a.width,
        out_dim=a.out_dim, norm=a.norm, data=a.images or a.data or "glyphs", n_images=a.n_images, image_size=a.image_size,
        holdout=a.holdout, knn_k=a.knn_k, seed=a.seed, out=a.out, resume=a.resume, max_steps=a.max_steps,
        amp=a.amp, compile=a.compile, device=a.device, log_every=a.log_every,
        augment=AugmentConfig(crop_scale=(a.crop_min, 1.0)),
    )
    try:
        return cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    env = init_distributed(cfg.device)
    finished = False
    try:
        train(cfg, env)
        finished = True
    except ValueError as exc:                    # bad data / checkpoint: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown_distributed(wait=finished)      # a failed rank must not wait for peers that may never come
    return 0


if __name__ == "__main__":
    sys.exit(main())
