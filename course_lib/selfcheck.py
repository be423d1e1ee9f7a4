"""Self-check of the reference implementations on this machine: ``python -m course_lib.selfcheck``.

Runs one analytic case per graded function (answers known in closed form, independent of the code under
test) and, when CUDA is available, checks that the CUDA result matches the CPU one. Prints a table and exits
non-zero if anything fails. It is a quick installation check; the full test suite is ``make test``.
"""
from __future__ import annotations

import math
import sys
from typing import Callable

import torch
import torch.nn as nn

import course_lib as C

Check = Callable[[torch.device], tuple[bool, str]]


def _close(value: float, expected: float, tol: float = 1e-6) -> tuple[bool, str]:
    return abs(value - expected) <= tol, f"{value:.10g} (expected {expected:.10g})"


def _gan(dev):
    d = C.discriminator_loss(torch.zeros(4, device=dev), torch.zeros(3, device=dev)).item()
    return _close(d, 2 * math.log(2))


def _gen(dev):
    x = torch.tensor([-30.0], device=dev, requires_grad=True)
    (g_ns,) = torch.autograd.grad(C.generator_loss(x), x)
    (g_sat,) = torch.autograd.grad(C.generator_loss(x, saturating=True), x)
    ok = abs(g_ns.item() + 1) < 1e-6 and abs(g_sat.item()) < 1e-9
    return ok, f"dL/dl at l=-30: non-saturating {g_ns.item():.3g}, saturating {g_sat.item():.3g}"


def _rot(dev):
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32, device=dev).reshape(2, 3, 4, 4)
    y = x
    for _ in range(4):
        y = C.rotate_batch(y)[0][1::4]
    return torch.equal(x, y), "four quarter turns = identity"


def _attn(dev):
    f = nn.functional.normalize(torch.randn(1, 8, 5, 5, device=dev), dim=1) * 10
    col = torch.rand(1, 3, 5, 5, device=dev)
    err = (C.attention_color_propagation(f, f, col, 1e-3) - col).abs().max().item()
    return err < 1e-5, f"identical frames copy colours (max err {err:.2g})"


def _infonce(dev):
    q = torch.eye(3, device=dev)
    loss = C.info_nce_loss(q, q, torch.zeros(3, 0, 3, device=dev)).item()
    return _close(loss, 0.0)


def _ntxent(dev):
    z = torch.eye(2, device=dev)
    return _close(C.nt_xent_loss(z, z, 0.5).item(), math.log(1 + 2 * math.exp(-2)))


def _momentum(dev):
    k, q = nn.Linear(2, 2).to(dev), nn.Linear(2, 2).to(dev)
    expected = 0.9 * k.weight.detach() + 0.1 * q.weight.detach()
    C.momentum_update(k, q, 0.9)
    err = (k.weight.detach() - expected).abs().max().item()
    return err < 1e-6, f"EMA max err {err:.2g}"


def _enqueue(dev):
    queue = torch.zeros(4, 1, device=dev)
    ptr = 0
    for step in range(1, 6):
        ptr = C.enqueue(queue, ptr, torch.full((1, 1), float(step), device=dev))
    ok = queue.flatten().tolist() == [5.0, 2.0, 3.0, 4.0] and ptr == 1
    return ok, f"ring buffer after 5 pushes: {queue.flatten().tolist()}, ptr {ptr}"


def _moco(dev):
    e = torch.eye(3, device=dev)                     # queries = keys = e0, e1; the queue holds e2
    loss = C.moco_loss(e[:2], e[:2], e[2:], 1.0).item()
    return _close(loss, math.log(1 + math.exp(-1)), 1e-5)


def _rays(dev):
    _, d = C.get_rays(4, 4, 2.0, torch.eye(4, device=dev))
    return d[2, 2].tolist() == [0.0, 0.0, -1.0], f"optical axis ray {d[2, 2].tolist()}"


def _strat(dev):
    _, t = C.sample_stratified(torch.zeros(1, 3, device=dev), torch.ones(1, 3, device=dev), 2.0, 6.0, 4, perturb=False)
    return t.flatten().tolist() == [2.5, 3.5, 4.5, 5.5], f"midpoints {t.flatten().tolist()}"


def _pe(dev):
    out = C.positional_encoding(torch.rand(5, 3, device=dev), 10)
    return out.shape == (5, 63), f"width {out.shape[-1]} for 3-D input, L=10"


def _volume(dev):
    t = torch.linspace(2.0, 6.0, 65, device=dev)
    sig = torch.full((65,), 0.3, device=dev)
    sig[-1] = 0
    _, w = C.volume_render(sig, torch.ones(65, 3, device=dev), t)
    return _close(w.sum().item(), 1 - math.exp(-1.2), 1e-5)


def _pdf(dev):
    out = C.sample_pdf(torch.linspace(2, 6, 9, device=dev), torch.zeros(8, device=dev), 5, deterministic=True)
    expected = torch.linspace(2, 6, 5, device=dev)
    return bool(torch.allclose(out, expected, atol=1e-5)), "all-zero weights sample uniformly"


def _sphere(dev):
    t, hit = C.sphere_trace(lambda p: p.norm(dim=-1) - 1, torch.tensor([[0.0, 0, -3]], device=dev),
                            torch.tensor([[0.0, 0, 1]], device=dev))
    return bool(hit.item()) and abs(t.item() - 2) < 1e-4, f"unit sphere from z=-3: t={t.item():.6f}"


CHECKS: dict[str, Check] = {
    "discriminator_loss": _gan, "generator_loss": _gen, "rotate_batch": _rot, "attention_color_propagation": _attn,
    "info_nce_loss": _infonce, "nt_xent_loss": _ntxent, "momentum_update": _momentum, "enqueue": _enqueue,
    "moco_loss": _moco, "get_rays": _rays, "sample_stratified": _strat, "positional_encoding": _pe,
    "volume_render": _volume, "sample_pdf": _pdf, "sphere_trace": _sphere,
}


def main() -> int:
    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"course_lib {C.__version__} self-check on {', '.join(d.type for d in devices)} (torch {torch.__version__})")
    failed = 0
    for assignment, names in C.GRADED_FUNCTIONS.items():
        for name in names:
            for dev in devices:
                try:
                    ok, detail = CHECKS[name](dev)
                except Exception as exc:  # report, keep going
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                failed += not ok
                print(f"  {'PASS' if ok else 'FAIL'}  {assignment:<15} {name:<28} {dev.type:<5} {detail}")
    print("all checks passed" if not failed else f"{failed} check(s) FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
