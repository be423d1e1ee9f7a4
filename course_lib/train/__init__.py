"""Training beyond one process: contrastive learning (SimCLR, MoCo) with torch.distributed, launched by
torchrun or as a single process. Entry point: ``python -m course_lib.train.contrastive --help``."""
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import (DistEnv, all_gather_no_grad, all_gather_with_grad, init_distributed,
                          shuffle_across_ranks, unshuffle_across_ranks)
from .knn import knn_accuracy, knn_predict

__all__ = [
    "DistEnv",
    "init_distributed",
    "all_gather_with_grad",
    "all_gather_no_grad",
    "shuffle_across_ranks",
    "unshuffle_across_ranks",
    "save_checkpoint",
    "load_checkpoint",
    "knn_predict",
    "knn_accuracy",
]
