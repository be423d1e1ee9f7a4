"""Benchmark: the reference implementations against their naive loops and against peer implementations.

    python -m course_lib.bench [--quick] [--repeats 5] [--markdown]

Everything in one table is measured in one run, side by side, on the same inputs; each time is the minimum
over several repeats (after a warm-up), in float32. Two tables:

* reference vs naive loop (``course_lib.naive``: the formula transcribed with Python loops), at sizes where
  the loop still finishes in about a second;
* reference vs peers at realistic sizes: NT-Xent vs pytorch-metric-learning's ``NTXentLoss``, RGB->Lab vs
  kornia's ``rgb_to_lab``, volume rendering vs the cumprod-with-epsilon form of the original NeRF code. Peers
  that are not installed are reported as such. With CUDA available, a CUDA column is added to this table.
  Reference and peer are timed alternately (a, b, a, b, ...), so a slow spell of the machine hits both.

A ratio > 1 means the reference is faster.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import naive
from .color import rgb_to_lab
from .manifest import GRADED, loop_version, reference

__all__ = ["time_call", "time_pair", "volume_render_cumprod", "main"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, repeats: int = 5, budget_s: float = 2.0) -> float:
    """Minimum wall time of ``fn()`` in seconds over up to ``repeats`` runs (after one warm-up), stopping early
    once ``budget_s`` is spent (at least one timed run)."""
    fn()
    _sync(device)
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best


def time_pair(fn_a: Callable[[], object], fn_b: Callable[[], object], device: torch.device, repeats: int = 5,
              budget_s: float = 4.0) -> tuple[float, float]:
    """Minimum wall times of ``fn_a()`` and ``fn_b()``, timed alternately (a, b, a, b, ...) after one warm-up
    each, so that a slow spell of the machine affects both sides alike; stops early once ``budget_s`` is spent."""
    fn_a(), fn_b()
    _sync(device)
    best, spent = [float("inf"), float("inf")], 0.0
    for _ in range(repeats):
        for i, fn in enumerate((fn_a, fn_b)):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            dt = time.perf_counter() - t0
            best[i], spent = min(best[i], dt), spent + dt
        if spent > budget_s:
            break
    return best[0], best[1]


# ------------------------------------------------------------------------------------------------ peers
def volume_render_cumprod(sigmas, colors, t_vals, white_background=False):
    """The form used by the original NeRF code: transmittance as an exclusive cumulative *product* of
    ``1 - alpha + 1e-10`` (the epsilon keeps the product's gradient from dividing by zero)."""
    deltas = torch.cat([t_vals[..., 1:] - t_vals[..., :-1], torch.full_like(t_vals[..., :1], 1e10)], -1)
    alpha = 1.0 - torch.exp(-sigmas * deltas)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha + 1e-10], -1), -1)[..., :-1]
    weights = alpha * trans
    rgb = (weights[..., None] * colors).sum(-2)
    if white_background:
        rgb = rgb + (1.0 - weights.sum(-1, keepdim=True))
    return rgb, weights


def _pml_ntxent(temperature: float):
    try:
        from pytorch_metric_learning.losses import NTXentLoss
    except ImportError:
        return None
    loss = NTXentLoss(temperature=temperature)

    def run(z_a, z_b):
        labels = torch.arange(z_a.shape[0], device=z_a.device).repeat(2)
        return loss(torch.cat([z_a, z_b]), labels)

    return run


def _kornia_lab():
    try:
        import kornia
    except ImportError:
        return None
    return kornia.color.rgb_to_lab


# ------------------------------------------------------------------------------------------------ cases
@dataclass
class Row:
    name: str
    size: str
    make: Callable[[torch.device, torch.Generator], tuple]   # -> args
    ref: Callable
    other: Callable | None                                     # naive loop or peer
    other_label: str = "naive loop"
    backward: bool = False                                     # time forward + backward


def _rn(gen, *shape, device):
    return torch.randn(*shape, generator=gen).to(device)


def _naive_rows(quick: bool) -> list[Row]:
    """One row per graded function, in manifest order, on the workload declared beside its loop version."""
    s = 0.25 if quick else 1.0
    scale = lambda v: max(2, int(v * s))  # noqa: E731
    rows = []
    for g in GRADED:
        work = naive.WORKLOADS[g.name]
        rows.append(Row(g.name, work.label(scale), lambda d, gen, w=work: w.make(scale, d, gen), reference(g.name),
                        loop_version(g.name)))
    return rows


def _peer_rows(quick: bool) -> list[Row]:
    rays = 1024 if quick else 4096

    def ntx(d, g):
        return _rn(g, 256, 128, device=d), _rn(g, 256, 128, device=d)

    def ntx_grad(d, g):
        return tuple(x.requires_grad_(True) for x in ntx(d, g))

    def vol(d, g, grad=False):
        sig = torch.rand(rays, 64, generator=g).to(d) * 2
        col = torch.rand(rays, 64, 3, generator=g).to(d)
        t = torch.sort(2 + 4 * torch.rand(rays, 64, generator=g), -1).values.to(d)
        if grad:
            sig.requires_grad_(True)
            col.requires_grad_(True)
        return sig, col, t

    def grid_points(d, g, grad=False):
        grid = torch.randn(8, 32, 64, 64, generator=g).to(d)            # [B, C, Hg, Wg]: pixel-aligned features
        coords = (2 * torch.rand(8, 4096, 2, generator=g) - 1).to(d)     # [B, P, 2]
        return (grid.requires_grad_(True), coords.requires_grad_(True)) if grad else (grid, coords)

    pml, kor = _pml_ntxent(0.5), _kornia_lab()
    return [
        Row("nt_xent_loss", "N=256 D=128", ntx, reference("nt_xent_loss"), pml, "pytorch-metric-learning NTXentLoss"),
        Row("nt_xent_loss (fwd+bwd)", "N=256 D=128", ntx_grad, reference("nt_xent_loss"), pml, "pytorch-metric-learning NTXentLoss", True),
        Row("rgb_to_lab", "16x3x128x128", lambda d, g: (torch.rand(16, 3, 128, 128, generator=g).to(d),), rgb_to_lab, kor,
            "kornia rgb_to_lab"),
        Row("volume_render", f"{rays} rays x 64", vol, reference("volume_render"), volume_render_cumprod,
            "cumprod + 1e-10 (original NeRF)"),
        Row("volume_render (fwd+bwd)", f"{rays} rays x 64", lambda d, g: vol(d, g, True), reference("volume_render"), volume_render_cumprod,
            "cumprod + 1e-10 (original NeRF)", True),
        Row("bilinear_sample_2d", "8x32x64x64 grid, 4096 points", grid_points, reference("bilinear_sample_2d"),
            _grid_sample, "F.grid_sample (align_corners, border)"),
        Row("bilinear_sample_2d (fwd+bwd)", "8x32x64x64 grid, 4096 points", lambda d, g: grid_points(d, g, True),
            reference("bilinear_sample_2d"), _grid_sample, "F.grid_sample (align_corners, border)", True),
    ]


def _grid_sample(grid: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """PyTorch's bilinear sampler with the contract's conventions: [B, P, 2] -> [B, P, C]."""
    import torch.nn.functional as F

    out = F.grid_sample(grid, coords[:, None], mode="bilinear", align_corners=True, padding_mode="border")
    return out[:, :, 0].transpose(1, 2)                                  # [B, C, 1, P] -> [B, P, C]


def _runner(fn: Callable, args: tuple, backward: bool) -> Callable[[], object]:
    if not backward:
        return lambda: fn(*args)
    leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]

    def run():
        out = fn(*args)
        first = out[0] if isinstance(out, tuple) else out
        first.sum().backward()
        for a in leaves:
            a.grad = None

    return run


def _fmt_ms(sec: float) -> str:
    return f"{sec * 1e3:.3f}" if sec < 0.01 else f"{sec * 1e3:.1f}"


def _table(rows: list[Row], devices: list[torch.device], repeats: int, naive_table: bool) -> list[list[str]]:
    out = []
    for row in rows:
        cells = [row.name, row.size]
        for dev in devices:
            gen = torch.Generator().manual_seed(0)
            args = row.make(dev, gen)
            ref = _runner(row.ref, args, row.backward)
            if row.other is None or (naive_table and dev.type != "cpu"):
                cells += [_fmt_ms(time_call(ref, dev, repeats)), "-", "-"]
                continue
            gen = torch.Generator().manual_seed(0)
            other = _runner(row.other, row.make(dev, gen), row.backward)   # fresh inputs (some functions mutate)
            if naive_table:                            # a loop costs seconds: time it once
                t_ref, t_other = time_call(ref, dev, repeats), time_call(other, dev, 1, budget_s=3.0)
            else:
                t_ref, t_other = time_pair(ref, other, dev, repeats)
            cells += [_fmt_ms(t_ref), _fmt_ms(t_other), f"{t_other / t_ref:.1f}x"]
        if not naive_table:
            cells.append(row.other_label if row.other is not None else f"{row.other_label} (not installed)")
        out.append(cells)
        print("  done:", row.name, row.size, flush=True)
    return out


def _print(headers: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join("---" for _ in headers) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not for the README)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement (default 7)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, float32; min of up to {args.repeats} repeats")

    naive_rows = _table(_naive_rows(args.quick), devices[:1], args.repeats, naive_table=True)
    peer_rows = _table(_peer_rows(args.quick), devices, args.repeats, naive_table=False)

    print("\nReference vs naive loop (CPU, ms; speed-up = naive / reference)")
    _print(["function", "size", "reference ms", "naive ms", "speed-up"], naive_rows, args.markdown)
    print("\nReference vs peers (ms; speed-up = peer / reference)")
    headers = ["function", "size"]
    for dev in devices:
        tag = dev.type.upper()
        headers += [f"{tag} reference ms", f"{tag} peer ms", f"{tag} speed-up"]
    _print(headers + ["peer"], peer_rows, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
