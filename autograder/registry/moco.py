"""Hidden checks for course_lib.moco (assignment a3_contrastive): momentum_update, enqueue, moco_loss.

Known mistakes: a momentum update with m and 1 - m swapped, applied to the query encoder or to the buffers, or
not in place; an enqueue that drops the keys past the end instead of wrapping, returns ptr + N without the
modulo, or does not advance the pointer; a moco_loss that lets gradient into the keys or the queue, puts the
positive at the wrong index or multiplies by the temperature.

Reference: He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020,
Algorithm 1 (the dictionary as a queue; no gradient to the keys).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import judges
from .build import check, dtype_check, errors_check, function_spec, mutation_check, randn
from .core import Cases, CheckSpec, mistake
from .properties import part, same_storage
from .public import PublicCase, nets, rnd

__all__ = ["SPECS"]


# ------------------------------------------------------------------------------------------------ momentum_update
ARCHS = [
    [["linear", 4, 3]],
    [["linear", 3, 5], ["relu"], ["linear", 5, 2]],
    [["linear", 4, 3], ["bn1d", 3], ["relu"], ["linear", 3, 2]],
]


# parameter names per architecture: the values cases freeze some of the key encoder's (frozen layers are
# averaged too: the update covers every parameter, requires_grad or not)
FROZEN = [("0.bias",), ("2.weight",), ("1.weight", "1.bias")]


def _m_case(c: Cases, *, arch=None, m=None, dt="float64", frozen=(), note="", **opt) -> None:
    arch = arch or c.choice(ARCHS)
    m = m if m is not None else c.choice([0.9, 0.99, 0.5, 0.999])
    fz = f", frozen={tuple(frozen)!r}" if frozen else ""
    bs = 2.0 if any(a[0] == "bn1d" for a in arch) else 0.0
    call = ["key", "query"] + ([] if m == "default" else [repr(m)])
    frozen_note = f", key parameters {', '.join(frozen)} frozen (requires_grad=False)" if frozen else ""
    c.add(f"key = MODULE({arch!r}, g, torch.{dt}{fz}, buffers_scale={bs})\n"
          f"query = MODULE({arch!r}, g, torch.{dt}, buffers_scale={bs})",
          call, note=note or f"{dt}, layers {[a[0] for a in arch]}, m={'left out (0.999)' if m == 'default' else m}"
          + frozen_note, return_inputs=True, **opt)


def _momentum_variant(key, query, m=0.999, *, swap=False, target="key", buffers=False, noop=False):
    with torch.no_grad():
        if noop:
            return None
        a, b = (key, query) if target == "key" else (query, key)
        w = (1 - m) if swap else m
        for pa, pb in zip(a.parameters(), b.parameters()):
            pa.mul_(w).add_(pb, alpha=1 - w)
        if buffers:
            for ba, bb in zip(a.buffers(), b.buffers()):
                if ba.is_floating_point():
                    ba.mul_(w).add_(bb, alpha=1 - w)
    return None


def _same_objects(ctx: judges.Context) -> judges.Verdict:
    """The key encoder's parameter objects are kept (not replaced), values as the reference."""
    v = judges.value(ctx)
    if v.score < 1:
        return v
    after = ctx.reply.get("inputs_after") or []
    if not after or not after[0].get("same_objects", False):
        return judges.Verdict(0.0, "the key encoder's parameters were replaced by new objects: update them in place "
                                   "(p_k.mul_(m).add_(p_q, alpha=1 - m) under torch.no_grad())")
    return v


# the parameters keep their objects and their memory (p.data = ... replaces the memory of the same object)
_in_place = same_storage(0, _same_objects)


MOMENTUM = function_spec(
    "momentum_update", mutated=(0,), observe=lambda out, after: [after[0], after[1]],
    public=[
        PublicCase("m = 0.9 on a Linear(4, 3)", lambda: (*nets(22), 0.9)),
        PublicCase("m = 0 copies the query encoder", lambda: (*nets(23, ((3, 2), (2, 2))), 0.0)),
        PublicCase("m = 1.5 raises ValueError", lambda: (*nets(24), 1.5), expect="raises"),
    ],
    loops_allowed=99,                                  # looping over parameter tensors is the normal way
    checks=[
        CheckSpec("values", "theta_k <- m theta_k + (1 - m) theta_q for every parameter (frozen ones too); the query "
                  "encoder unchanged", 3.5,
                  lambda c: [_m_case(c, arch=ARCHS[k % 3], frozen=FROZEN[k % 3] if k % 2 == 0 else ()) for k in range(4)]),
        check("defaults", "m left out: 0.999", 0.5, lambda c: [_m_case(c, arch=ARCHS[1], m="default")]),
        CheckSpec("edge", "m = 0 copies the query encoder, m = 1 changes nothing", 1.0,
                  lambda c: [_m_case(c, m=0.0), _m_case(c, m=1.0)]),
        CheckSpec("buffers_and_flags", "buffers untouched, requires_grad flags unchanged (frozen key encoder)", 1.5,
                  lambda c: [_m_case(c, arch=ARCHS[2], frozen=("0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"),
                                     note="a frozen key encoder with BatchNorm statistics"),
                             _m_case(c, arch=ARCHS[2], dt="float32")]),
        CheckSpec("in_place", "parameters are updated in place (same objects, same memory), without autograd", 1.5,
                  lambda c: [_m_case(c, arch=ARCHS[1], note="parameters that require grad: needs torch.no_grad()"),
                             _m_case(c, arch=ARCHS[2], dt="float32")], _in_place),
        errors_check(lambda c: [
            _m_case(c, arch=ARCHS[0], m=1.5, note="m=1.5", meta={"arg": "m"}),
            _m_case(c, arch=ARCHS[0], m=-0.1, note="m=-0.1", meta={"arg": "m"}),
        ], 2.0),
    ],
    mistakes=[
        mistake("m_swapped", "m and 1 - m swapped: the key encoder keeps the fraction m of itself",
                _momentum_variant, swap=True),
        mistake("query_updated", "the update applied to the query encoder instead of the key encoder",
                _momentum_variant, target="query"),
        mistake("buffers_updated", "buffers (BatchNorm statistics) averaged too: only parameters are updated",
                _momentum_variant, buffers=True),
        mistake("no_update", "nothing updated in place (assigning to a loop variable does not change the module)",
                _momentum_variant, noop=True),
    ],
)

# ------------------------------------------------------------------------------------------------ enqueue
def _e_case(c: Cases, *, k=None, n=None, ptr=None, ch=None, dt="float32", wrap=None, note="", **opt) -> None:
    k = k or c.randint(4, 12)
    ch = ch or c.randint(2, 5)
    n = n or c.randint(1, k)
    if ptr is None:
        if wrap is None:
            ptr = c.randint(0, k - 1)
        elif wrap:
            ptr = c.randint(max(0, k - n + 1), k - 1) if n > 1 else k - 1
        else:
            ptr = c.randint(0, k - n)
    c.add(f"queue = {randn([k, ch], dt)}\nkeys = {randn([n, ch], dt)}", ["queue", str(ptr), "keys"],
          note=note or f"{dt}, K={k}, N={n}, C={ch}, ptr={ptr}", return_inputs=True, **opt)


def _enqueue_variant(queue, ptr, keys, *, mode):
    """Wrong ring-buffer writes (arguments checked as the contract says, so only the mistake differs)."""
    if queue.dim() != 2 or keys.dim() != 2 or keys.shape[1] != queue.shape[1] or not 1 <= keys.shape[0] <= queue.shape[0] \
            or not 0 <= ptr < queue.shape[0]:
        raise ValueError(f"queue {list(queue.shape)}, keys {list(keys.shape)} and ptr {ptr} do not fit together")
    k, n = queue.shape[0], keys.shape[0]
    with torch.no_grad():
        if mode == "drop":
            end = min(k, ptr + n)
            queue[ptr:end] = keys[: end - ptr].to(queue.dtype)
            return (ptr + n) % k
        idx = (ptr + torch.arange(n)) % k
        queue[idx] = keys.detach().to(queue.dtype)
    return ptr + n if mode == "no_modulo" else ptr


def _detached_queue(ctx: judges.Context) -> judges.Verdict:
    """The queue as the reference leaves it, and still a constant: it neither requires grad nor has a grad_fn."""
    v = _queue(ctx)
    if v.score < 1:
        return v
    after = ctx.reply.get("inputs_after") or []
    q = after[0] if after and isinstance(after[0], dict) else {}
    if q.get("t") != "tensor" or q.get("requires_grad") or q.get("grad_fn"):
        return judges.Verdict(0.0, "the queue requires grad after the call: it joined the keys' autograd graph; write "
                                   "keys.detach() into it (the queue holds constants)")
    return v


_queue = part(1, "queue")                     # the observed value is [returned pointer, queue after the call]
_pointer = part(0, "returned pointer")


ENQUEUE = function_spec(
    "enqueue", mutated=(0,), observe=lambda out, after: [out, after[0]],
    public=[
        PublicCase("K=6, N=2 from ptr=1", lambda: (rnd(6, 3, seed=25), 1, rnd(2, 3, seed=26))),
        PublicCase("wrap-around: K=5, N=3 from ptr=4", lambda: (rnd(5, 2, seed=27), 4, rnd(3, 2, seed=28))),
        PublicCase("N > K raises ValueError", lambda: (torch.zeros(2, 3), 0, torch.zeros(3, 3)), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "rows ptr .. ptr + N - 1 of the queue become keys", 2.0,
                  lambda c: [_e_case(c, wrap=False, dt=("float32", "float64")[i % 2]) for i in range(3)], _queue),
        check("pointer", "returns the new pointer (ptr + N) mod K", 1.0, lambda c: [
            _e_case(c, k=8, n=3, ptr=2), _e_case(c, k=5, n=3, ptr=4, note="float32, K=5, N=3 from ptr=4: wraps to 2"),
            _e_case(c, k=4, n=2, ptr=3, note="float32, K=4, N=2 from ptr=3: wraps to 1"),
        ], _pointer, auxiliary=True),                      # distinct answers, and only with some right queue writes
        CheckSpec("wrap_around", "keys past the end wrap around to row 0 (N = K included; a queue stored transposed)",
                  2.5, lambda c: [
            _e_case(c, wrap=True, n=3, k=5),
            _e_case(c, wrap=True, dt="float64", layout={0: "transposed", 2: "strided"},
                    note="float64, a queue stored transposed (non-contiguous) and non-contiguous keys"),
            _e_case(c, k=6, n=6, ptr=4, note="N = K = 6 from ptr=4: every row is overwritten"),
            _e_case(c, k=4, n=1, ptr=3, note="the last row: the pointer wraps to 0"),
        ], _queue),
        CheckSpec("detached", "keys are written detached: the queue never joins the autograd graph", 1.0,
                  lambda c: [_e_case(c, wrap=True, grad_wrt=(2,), note="keys that require grad")], _detached_queue),
        check("in_place", "the queue is written in its own memory (not given new memory with .data = ...)", 0.5,
              lambda c: [_e_case(c, wrap=True, n=2, k=5)], same_storage(0, _queue)),
        mutation_check(lambda c: _e_case(c, wrap=True)),
        errors_check(lambda c: [
            _e_case(c, k=3, n=4, ptr=0, note="N=4 keys into a queue of K=3", meta={"arg": "keys"}),
            c.add(f"queue = {randn([4, 3], 'float32')}\nkeys = {randn([2, 5], 'float32')}", ["queue", "0", "keys"],
                  note="keys with C=5 for a queue with C=3", meta={"arg": "keys"}),
        ], 2.5),
    ],
    mistakes=[
        mistake("drops", "an enqueue that drops the keys past the end instead of wrapping them to row 0",
                _enqueue_variant, mode="drop"),
        mistake("no_modulo", "the new pointer returned without the modulo: (ptr + N) % K",
                _enqueue_variant, mode="no_modulo"),
        mistake("ptr_not_advanced", "the pointer returned unchanged: return (ptr + N) % K",
                _enqueue_variant, mode="same"),
    ],
)


# ------------------------------------------------------------------------------------------------ moco_loss
def _q_case(c: Cases, dt: str, *, n=None, ch=None, k=None, t=None, note="", **opt) -> None:
    n, ch, k = n or c.randint(1, 6), ch or c.randint(2, 6), k if k is not None else c.randint(1, 12)
    t = t if t is not None else c.choice([0.07, 0.2, 0.5])
    norm = lambda shape: f"F.normalize({randn(shape, dt)}, dim=1)"  # noqa: E731
    call = ["q", "k", "queue"] + ([] if t == "default" else [repr(t)])
    c.add(f"q = {norm([n, ch])}\nk = {norm([n, ch])}\nqueue = {norm([k, ch])}", call,
          note=note or f"{dt}, N={n}, C={ch}, K={k}, temperature={'left out (0.07)' if t == 'default' else t}", **opt)


def _q_layout(c: Cases) -> None:
    _q_case(c, "float64", n=3, ch=4, k=5, layout={0: "transposed", 1: "transposed", 2: "transposed"},
            note="float64, q, k and queue stored transposed (non-contiguous: x.mT.contiguous().mT)")
    _q_case(c, "float32", n=1, ch=3, k=0, note="float32, N = 1 and an empty queue (K = 0): the loss is 0")


def _moco_variant(q, k, queue, t=0.07, *, detach_k=True, detach_queue=True, pos_last=False, scale=False):
    kk = k.detach() if detach_k else k
    qq = queue.detach() if detach_queue else queue
    l_pos = (q * kk).sum(-1, keepdim=True)
    l_neg = q @ qq.T
    logits = torch.cat([l_neg, l_pos] if pos_last else [l_pos, l_neg], 1)
    logits = logits * t if scale else logits / t
    return (torch.logsumexp(logits, 1) - logits[:, 0]).mean()


MOCO = function_spec(
    "moco_loss",
    public=[
        PublicCase("N=3, C=4, K=5 (float64)", lambda: (F.normalize(rnd(3, 4, seed=29), dim=1), F.normalize(rnd(3, 4, seed=30), dim=1),
                                                  F.normalize(rnd(5, 4, seed=31), dim=1), 0.07)),
        PublicCase("temperature 0 raises ValueError", lambda: (torch.ones(2, 2), torch.ones(2, 2), torch.ones(3, 2), 0.0), expect="raises"),
    ],
    checks=[
        CheckSpec("values", "cross-entropy of [q.k, q @ queue.T] / temperature with target 0 (and keeps the autograd "
                  "graph)", 2.5, lambda c: [_q_case(c, c.dtype(i), grad_wrt=(0,)) for i in range(4)]),
        check("defaults", "temperature left out: 0.07", 0.5,
              lambda c: [_q_case(c, c.dtype(i), t="default") for i in range(2)]),
        check("layout", "non-contiguous inputs; one query and an empty queue", 0.5, _q_layout),
        CheckSpec("stability", "finite and correct at temperature 1e-3", 1.0,
                  lambda c: [_q_case(c, dt, t=1e-3, note=f"{dt}, temperature 1e-3") for dt in ("float32", "float64")]),
        CheckSpec("analytic", "k = q and a queue orthogonal to q: log(1 + K exp(-1/t))", 0.5, lambda c: c.add(
            "q = torch.eye(4, dtype=torch.float64)[:2]\nqueue = torch.eye(4, dtype=torch.float64)[2:]",
            ["q", "q", "queue", "0.5"], note="k = q, queue orthogonal to every query")),
        CheckSpec("gradients", "the gradient wrt q matches the reference", 1.5,
                  lambda c: [_q_case(c, c.dtype(i), grad_wrt=(0,), grad=True) for i in range(2)], judges.gradients),
        CheckSpec("stop_gradient", "no gradient flows into k or the queue", 1.5,
                  lambda c: [_q_case(c, c.dtype(i), grad_wrt=(0, 1, 2), grad=True, meta={"stop": [1, 2]}) for i in range(2)],
                  judges.stop_gradient, auxiliary=True),
        dtype_check(lambda c, dt, dev: _q_case(c, dt, note=f"{dt} on {dev}", device=dev)),
        mutation_check(lambda c: _q_case(c, "float64", return_inputs=True)),
        errors_check(lambda c: [
            _q_case(c, "float32", n=2, ch=3, k=4, t=0.0, note="temperature=0", meta={"arg": "temperature"}),
            c.add(f"q = {randn([2, 3], 'float32')}\nqueue = {randn([4, 5], 'float32')}", ["q", "q", "queue", "0.07"],
                  note="queue with C=5 for queries with C=3", meta={"arg": "queue"}),
        ], 1.0),
    ],
    mistakes=[
        mistake("grad_into_k", "moco_loss with gradient into k: the keys come from the momentum encoder, use k.detach()",
                _moco_variant, grads=True, detach_k=False),
        mistake("grad_into_queue", "gradient into the queue: use queue.detach()",
                _moco_variant, grads=True, detach_queue=False),
        mistake("positive_index", "the positive at the wrong index: logits = [q.k, q @ queue.T] with target 0",
                _moco_variant, pos_last=True),
        mistake("temperature_multiplied", "logits multiplied by the temperature instead of divided by it",
                _moco_variant, scale=True),
    ],
)

SPECS = [MOMENTUM, ENQUEUE, MOCO]
