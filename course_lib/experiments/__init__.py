"""Experiments that reproduce the lectures' claims at laptop scale.

Each module runs with the course_lib reference functions from the command line and prints its metric as the
last line, ``name=value``; the notebooks call the same ``run`` functions with the student's own functions:

    a1  python -m course_lib.experiments.gan               -> fd_ratio=... class_coverage=...
    a2  python -m course_lib.experiments.rotation          -> probe_acc_rotnet=... probe_acc_random=...
    a2  python -m course_lib.experiments.propagation       -> j_mean=... j_pixels=... j_pixels_lab=... j_copy=...
        (trains the colourisation model of :mod:`.colorization` first)
    a3  python -m course_lib.experiments.infonce_bound     -> mi_true=... infonce_max_n=...
    a3  python -m course_lib.experiments.contrastive       -> knn_acc=... knn_acc_random_init=...
    a4  python -m course_lib.experiments.fourier_features  -> psnr_raw_db=... psnr_pe_db=... psnr_gain_db=...
    a4  python -m course_lib.experiments.nerf              -> heldout_psnr_db=...
    a4  python -m course_lib.experiments.space_time        -> psnr_plain_db=... floats_plain=... psnr_fast_db=...
    a4  python -m course_lib.experiments.view_dependence   -> heldout_psnr_view_db=... view_gain_db=...
    a4  python -m course_lib.experiments.representations   -> chamfer_floor=... chamfer_voxels_16=... ...
    a4  python -m course_lib.experiments.splatting         -> psnr_g128_db=... floats_g128=... psnr_mlp_db=...
    a4  python -m course_lib.experiments.autodecoder       -> mse_hidden_autodecoder=... mse_hidden_encoder=...

Set ``COURSE_SMOKE=1`` for tiny settings (what CI runs); a GPU is used automatically when present.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["require_implemented", "format_metrics"]


def require_implemented(name: str, fn: Callable, *probe_args, **probe_kwargs) -> None:
    """Call ``fn`` once on a small probe input; turn a scaffold's NotImplementedError into a clear message.

    Raises:
        NotImplementedError: naming the function the experiment needs, when its scaffold is not filled in.
    """
    try:
        fn(*probe_args, **probe_kwargs)
    except NotImplementedError:
        raise NotImplementedError(
            f"this experiment calls your `{name}`, which is not implemented yet: complete its scaffold "
            "(and its self-check) above, then run this cell again"
        ) from None


def format_metrics(metrics: dict[str, float]) -> str:
    """``name=value`` pairs on one line (the last line every experiment prints)."""
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
