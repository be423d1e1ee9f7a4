"""Self-check of the reference implementations on this machine: ``python -m course_lib.selfcheck``.

Runs every graded function's reference through the students' self-check (the public cases stored in
``course_lib/checks_data``, whose answers were computed when the package was built): on the CPU, and, when CUDA is
available, with every input moved to the GPU and the results moved back, so a broken installation, a torch whose
numerics changed, or a device path that disagrees with the CPU shows up as a FAIL. Prints a table and exits
non-zero if anything fails. It is a quick installation check; the full test suite is ``make test``.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import torch
import torch.nn as nn

from .checks import run_cases
from .manifest import GRADED, is_withheld, reference

__all__ = ["on_device", "main"]


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, (torch.Tensor, nn.Module)):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    return value


def on_device(fn: Callable, device: torch.device) -> Callable:
    """``fn`` run on ``device``: inputs moved there, outputs (and mutated inputs) moved back to the CPU."""
    if device.type == "cpu":
        return fn

    def run(*args):
        moved = [_to(a, device) for a in args]
        out = fn(*moved)
        with torch.no_grad():
            for a, m in zip(args, moved):
                if isinstance(a, torch.Tensor):
                    a.copy_(m.cpu())
                elif isinstance(a, nn.Module):
                    a.load_state_dict({k: v.cpu() for k, v in m.state_dict().items()})
        return _to(out, torch.device("cpu"))

    return run


def main() -> int:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"course_lib self-check on {', '.join(d.type for d in devices)} (torch {torch.__version__})")
    failed = 0
    for g in GRADED:
        ref = reference(g.name)
        if is_withheld(ref):
            print(f"  skip  {g.assignment:<15} {g.name:<28} (withheld in this edition)")
            continue
        for dev in devices:
            try:
                results = run_cases(g.name, on_device(ref, dev))
                bad = [f"{label}: {why}" for label, why in results if why]
                detail = f"{len(results) - len(bad)}/{len(results)} public cases" + (f"; {bad[0]}" if bad else "")
            except Exception as exc:                         # noqa: BLE001 - report, keep going
                bad, detail = [exc], f"{type(exc).__name__}: {exc}"
            failed += bool(bad)
            print(f"  {'FAIL' if bad else 'PASS'}  {g.assignment:<15} {g.name:<28} {dev.type:<5} {detail}")
    print("all checks passed" if not failed else f"{failed} check(s) FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
