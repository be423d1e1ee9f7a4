"""Side-by-side benchmark of the TinyNeRF presets on one scene.

    python -m course_lib.nerf.bench [--data FILE.npz] --minutes 10 --holdout 10 [--markdown]

Trains "plain" and then "fast" (same data, held-out views and seed, one after the other in this process) and
prints the held-out PSNR of each at 1, 2, 5 and 10 minutes of training (times up to ``--minutes``; evaluation
time is not counted). With CUDA available it then measures, on the GPU, the training time each preset needs
to reach 25 dB (evaluated every 5 s, up to ``--gpu-minutes``).

The data file is in the tiny-NeRF format (``images [N, H, W, 3]``, ``poses [N, 4, 4]``, ``focal``; optional
``near``/``far``); without ``--data`` the benchmark runs offline on the synthetic scene of
:func:`course_lib.data.nerf_scene`.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from .config import PRESETS
from .data import load_views
from .trainer import train_tinynerf

__all__ = ["main", "time_to_psnr", "format_table"]


def time_to_psnr(data, config: str, target: float, max_minutes: float, holdout: int | None, device,
                 every_s: float = 5.0) -> float:
    """Training seconds until held-out PSNR first reaches ``target`` (inf if it does not within the budget)."""
    checks = tuple(k * every_s / 60 for k in range(1, int(max_minutes * 60 / every_s) + 1))
    _, hist = train_tinynerf(data, config, minutes=max_minutes, holdout=holdout, eval_minutes=checks,
                             device=device, log=None)
    for e in hist.evals:
        if e["psnr"] >= target:
            return e["time_s"]
    return math.inf


def format_table(rows: list[list[str]], header: list[str], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(x.rjust(w) for x, w in zip(r, widths))        # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_lib.nerf.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="tiny-NeRF .npz (images, poses, focal); default: the synthetic scene")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per preset")
    p.add_argument("--holdout", type=int, default=10, help="hold out the last K views")
    p.add_argument("--presets", default="plain,fast", help="comma-separated, run in this order")
    p.add_argument("--at", default="1,2,5,10", help="evaluation times in minutes (those <= --minutes)")
    p.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--gpu-minutes", type=float, default=5.0, help="budget for the time-to-25-dB measurement")
    p.add_argument("--target", type=float, default=25.0, help="PSNR for the time-to-target measurement")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    a = parser.parse_args(argv)
    presets = [s.strip() for s in a.presets.split(",") if s.strip()]
    bad = [s for s in presets if s not in PRESETS]
    if bad or not presets:
        parser.error(f"--presets: unknown preset(s) {bad or presets}; choose from {sorted(PRESETS)}")
    if not (a.minutes > 0 and math.isfinite(a.minutes)):
        parser.error(f"--minutes must be > 0, got {a.minutes}")
    try:
        at = sorted({float(x) for x in a.at.split(",") if x.strip()})
    except ValueError:
        parser.error(f"--at must be comma-separated minutes, got {a.at!r}")
    at = [m for m in at if 0 < m <= a.minutes] or [a.minutes]
    if a.threads is not None:
        if a.threads < 1:
            parser.error(f"--threads must be >= 1, got {a.threads}")
        torch.set_num_threads(a.threads)
    if a.data is not None and not Path(a.data).is_file():
        parser.error(f"--data {a.data}: no such file")
    if a.data is None:
        from ..data import nerf_scene

        source, scene_name = nerf_scene(), "the synthetic scene (course_lib.data.nerf_scene)"
    else:
        source, scene_name = a.data, Path(a.data).name
    try:
        views, _ = load_views(source)
        if not 1 <= a.holdout < len(views):
            parser.error(f"--holdout must be in [1, {len(views) - 1}] for {len(views)} views, got {a.holdout}")
    except ValueError as exc:
        parser.error(f"--data: {exc}")
    log = None if a.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = {}
    for name in presets:
        _, hist = train_tinynerf(source, name, minutes=a.minutes, holdout=a.holdout, eval_minutes=tuple(at),
                                 device=a.device, log=log)
        results[name] = hist
    use_gpu = torch.cuda.is_available() and (a.device is None or a.device.startswith("cuda"))
    dev = a.device or ("cuda" if use_gpu else "cpu")
    print(f"Held-out PSNR (dB) on {scene_name}, last {a.holdout} views held out, device {dev}, "
          f"{torch.get_num_threads()} CPU thread(s); in brackets: training steps")
    header = ["training time"] + presets
    rows = []
    for m in at:
        row = [f"{m:g} min"]
        for name in presets:
            e = next((e for e in results[name].evals if math.isclose(e["minutes"], m)), None)
            row.append("-" if e is None else f"{e['psnr']:.2f} ({e['step']})")
        rows.append(row)
    print(format_table(rows, header, a.markdown))
    if use_gpu:
        print(f"\nTraining time to {a.target:g} dB on {torch.cuda.get_device_name()} (evaluated every 5 s):")
        rows = []
        for name in presets:
            secs = time_to_psnr(source, name, a.target, a.gpu_minutes, a.holdout, dev)
            rows.append([name, "not reached" if math.isinf(secs) else f"{secs:.0f} s"])
        print(format_table(rows, ["preset", f"time to {a.target:g} dB"], a.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
