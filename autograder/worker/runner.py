"""Inside the sandbox: define the student's code, call the graded function on each case, send back numbers.

This is the only code that shares a process with student code, so it trusts nothing it gets back from it:
outputs are flattened to plain tensors and JSON values (:func:`describe`; only exact ``tuple`` / ``list``
containers, counted by iterating them, never by asking the object) and sent through the wire format; the grader
decides what they are worth. Before any student code runs, the worker modules leave ``sys.modules`` and
:func:`run_cases` switches to private copies of its functions, so the obvious ways of patching the runner from
a definition are gone; whatever the student code still patches (torch, the pipe) can only change the numbers it
reports about itself, and the grader validates every reply as if it were forged (replies.py, judges.py).

Messages on the results pipe, in order: ``{"kind": "setup"}``, one ``{"kind": "case"}`` per case, then
``{"kind": "done"}``.

Besides values, a reply reports what the contract says about them: per output tensor its device, whether it
requires grad or has a ``grad_fn`` and which inputs' storage it shares (``aliases``: an output that is a view of
an input); per input after the call whether its storage (a module's parameters' storages) is the one it had
(``same_storage``: ``.data = ...`` replaces it); and, for a case run with ``watch_devices``, the first torch
function in which a tensor made without the inputs' device met the inputs (``mixed_devices``: what fails on a
GPU, seen on a CPU-only grader; :class:`DeviceWatch`). Arguments can be rebuilt with another memory layout
(``layout``: same values, other strides), so an implementation that assumes contiguous inputs shows.
"""
from __future__ import annotations

import ast
import builtins
import importlib.abc
import os
import sys
import time
import traceback
import types
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from . import specials, wire

__all__ = ["BLOCKED_PACKAGES", "ImportBlocker", "define", "run_cases", "describe", "surrogate", "apply_layout",
           "LAYOUTS", "DeviceWatch"]

BLOCKED_PACKAGES = ("course_lib", "autograder")
_MAX_ITEMS = 16
_MAX_MESSAGE = 2000
LAYOUTS = ("transposed", "strided")
# torch functions that legitimately take tensors of two devices (CPU index tensors, copies between devices)
_MIX_ALLOWED = {"__getitem__", "__setitem__", "to", "copy_", "type_as", "index_put_", "index_put", "cpu", "cuda",
                "__get__", "__set__"}


class ImportBlocker(importlib.abc.MetaPathFinder):
    """Refuses to import the reference package and the grader inside the sandbox."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError(f"{fullname} cannot be imported by graded code: the graded functions must be self-contained")
        return None


def install_import_blocker() -> None:
    """Refuse imports of the blocked packages and forget the loaded ones, the worker's own modules included (the
    functions already running keep their references; graded code cannot look them up by name)."""
    sys.meta_path.insert(0, ImportBlocker())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED_PACKAGES:
            del sys.modules[name]


def _short(text: str) -> str:
    text = str(text)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + " ..."


def _student_frames(exc: BaseException) -> str:
    """The traceback lines that point into the notebook's cells (never the runner's own frames)."""
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<cell"):
            lines.append(f"{frame.filename[1:-1]}, line {frame.lineno}, in {frame.name}")
    return "\n".join(lines[-5:])


def _exception(exc: BaseException) -> dict:
    try:
        mro = [c.__name__ for c in type(exc).__mro__]
        message = _short(exc)
    except BaseException:                               # a hostile __str__
        mro, message = ["BaseException"], "<unprintable exception>"
    return {"type": mro[0], "mro": mro, "message": message, "where": _student_frames(exc)}


def define(statements: list[dict], function: str) -> tuple[dict, Any]:
    """Execute the extracted statements one by one (each failure is recorded, the rest still run).

    Each statement is ``{"cell": n, "line": l, "source": text}``; it is compiled with the file name
    ``<cell n>`` and its original line numbers so tracebacks point at the notebook.
    """
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    errors = []
    for stmt in statements:
        try:
            tree = ast.parse(stmt["source"], mode="exec")
            ast.increment_lineno(tree, int(stmt["line"]) - 1)
            code = compile(tree, f"<cell {stmt['cell']}>", "exec")
            exec(code, namespace)
        except BaseException as exc:                    # SystemExit at definition time included
            errors.append({"cell": stmt["cell"], "line": stmt["line"], **_exception(exc)})
    fn = namespace.get(function)
    return {"kind": "setup", "defined": callable(fn), "errors": errors, "type": type(fn).__name__}, fn


def _storage_ptr(t: torch.Tensor) -> int:
    """The address of a tensor's storage (0 when it has none: empty or meta tensors)."""
    try:
        with torch._C.DisableTorchFunctionSubclass():
            if t.device.type == "meta" or t.numel() == 0:
                return 0
            return int(torch.Tensor.untyped_storage(t).data_ptr())
    except BaseException:
        return 0


def describe(value: Any, depth: int = 0, inputs: dict | None = None) -> Any:
    """A student return value as JSON + plain CPU tensors (tensor subclasses are flagged, not trusted).

    Containers are described only when their type is exactly ``tuple`` or ``list`` (a subclass can lie about its
    length and items), with ``n`` the number of items actually iterated; a longer or deeper one, a subclass or
    anything else is ``{"t": "other"}`` with its class name. Numbers are read through the built-in types' own
    conversions, so an ``int`` / ``float`` subclass cannot report another value than it holds.

    ``inputs`` (argument index -> storage address) adds ``aliases`` to every tensor: the arguments whose storage
    it shares (a view of an input).
    """
    if isinstance(value, torch.Tensor):
        try:
            with torch._C.DisableTorchFunctionSubclass():
                data = torch.Tensor._make_subclass(torch.Tensor, value.detach(), False).cpu()
            desc = {
                "t": "tensor",
                "data": data,
                "exact": type(value) is torch.Tensor,
                "cls": type(value).__name__,
                "device": str(value.device),
                "requires_grad": bool(value.requires_grad),
                "grad_fn": value.grad_fn is not None,
            }
            if inputs is not None:
                ptr = _storage_ptr(value)
                desc["aliases"] = [i for i, p in inputs.items() if ptr and p == ptr]
            return desc
        except BaseException as exc:
            return {"t": "other", "cls": type(value).__name__, "error": _short(exc)}
    kind = type(value)
    if value is None:
        return {"t": "none"}
    if kind is bool:
        return {"t": "bool", "v": value is True}
    if isinstance(value, int) and kind is not bool:
        v = int.__index__(value)
        return {"t": "int", "v": v} if abs(v) < 2**62 else {"t": "other", "cls": "int (huge)"}
    if isinstance(value, float):
        return {"t": "float", "v": float.__float__(value)}
    if kind in (tuple, list):
        items = [v for _, v in zip(range(_MAX_ITEMS + 1), value)]
        if len(items) > _MAX_ITEMS or depth >= 3:
            return {"t": "other", "cls": f"{kind.__name__} of {len(value)} values" if depth < 3 else f"nested {kind.__name__}"}
        return {"t": kind.__name__, "n": len(items), "items": [describe(v, depth + 1, inputs) for v in items]}
    try:
        cls = str(kind.__name__)
    except BaseException:
        cls = "object"
    return {"t": "other", "cls": cls}


def _flat_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (tuple, list):
        return [t for v in list(value)[:_MAX_ITEMS] for t in _flat_tensors(v)]
    return []


def apply_layout(t: torch.Tensor, kind: str) -> torch.Tensor:
    """The same values with other strides: ``transposed`` stores the last two dims swapped (``x.mT.contiguous().mT``),
    ``strided`` every other element of a buffer twice as long in the last dim (a slice with a step: what
    ``torch.stack([x, x], -1)[..., 0]`` gives). A tensor with too few dims for the layout (0-d; 1-d for
    ``transposed``) is left as it is, as is anything that is not a tensor."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0 or kind not in LAYOUTS:
        return t
    if kind == "transposed":
        return t.mT.contiguous().mT if t.dim() >= 2 else t
    buffer = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
    buffer[..., ::2] = t
    return buffer[..., ::2]


def _build_args(case: dict, device: str) -> tuple[list, dict]:
    def build(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.to(device)
        if specials.is_special(v):
            obj = specials.build_special(v)
            return obj.to(device) if isinstance(obj, nn.Module) else obj
        return v

    args = [build(v) for v in case["args"]]
    kwargs = {k: build(v) for k, v in case.get("kwargs", {}).items()}
    for key, kind in (case.get("layout") or {}).items():
        i = int(key)
        if 0 <= i < len(args):
            args[i] = apply_layout(args[i], kind)
    for i in case.get("grad_wrt", []):
        args[i] = args[i].detach().requires_grad_(True)
    return args, kwargs


def _flat_leaves(value: Any, depth: int = 0) -> list:
    if isinstance(value, (list, tuple)) and depth < 3:
        return [x for v in value for x in _flat_leaves(v, depth + 1)]
    if isinstance(value, dict) and depth < 3:
        return [x for v in value.values() for x in _flat_leaves(v, depth + 1)]
    return [value]


class DeviceWatch(TorchFunctionMode):
    """Where the tensors of a call come from, to find on a CPU what fails on a GPU.

    The inputs, everything computed from them and every tensor made on their device (``device=x.device`` with the
    device object read from an input, ``*_like``, ``x.new_*``, ``.to(x.device)``) are *bound*; a tensor made by a
    factory without it (``torch.arange(n)``, ``torch.full(...)``, ``torch.tensor([...])``, a draw from a CPU
    generator, ``torch.from_numpy``) is *host*, and so is what is computed from host tensors only. A host tensor
    with dims (torch moves 0-d ones freely) meeting a bound one in an op other than indexing or a copy is code that
    only runs when the inputs are on the CPU: the first such op is recorded in ``mixed``.
    """

    def __init__(self):
        super().__init__()
        self.mixed: str | None = None
        self._host: dict[int, torch.Tensor] = {}          # id -> tensor (kept alive, so an id is not reused)
        self._bound_devices: dict[int, torch.device] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = _flat_leaves((args, kwargs))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        host = [t for t in tensors if id(t) in self._host]
        bound = len(host) < len(tensors) or any(isinstance(d, torch.device) and id(d) in self._bound_devices
                                                for d in leaves)
        name = getattr(func, "__name__", "") or "a torch function"
        if self.mixed is None and bound and name not in _MIX_ALLOWED and any(t.dim() > 0 for t in host):
            self.mixed = f"{name} on a tensor made without the inputs' device"
        out = func(*args, **kwargs)
        for r in _flat_leaves(out):
            if isinstance(r, torch.device) and bound:
                self._bound_devices[id(r)] = r
            elif isinstance(r, torch.Tensor) and not bound:
                self._host[id(r)] = r
            elif isinstance(r, torch.Tensor):               # .to(x.device) of a tensor already there returns itself
                self._host.pop(id(r), None)
        return out


def _param_ptrs(module: nn.Module) -> list[int]:
    return [_storage_ptr(p) for p in module.parameters()]


def _snapshot(value: Any, before_ids: list[int] | None = None, before_ptr: Any = None) -> Any:
    """An argument after the call; ``same_storage``: it (a module: each parameter) still uses the storage it had."""
    if isinstance(value, torch.Tensor):
        desc = describe(value)
        if desc.get("t") == "tensor" and before_ptr is not None:
            desc["same_storage"] = _storage_ptr(value) == before_ptr
        return desc
    if isinstance(value, nn.Module):
        same = before_ids == [id(p) for p in value.parameters()] if before_ids is not None else True
        storage = before_ptr == _param_ptrs(value) if before_ptr is not None else True
        return {"t": "module", "same_objects": same, "same_storage": storage, **specials.module_state(value)}
    if isinstance(value, (int, float, bool)) or value is None:
        return describe(value)
    return {"t": "other", "cls": type(value).__name__}


def run_case(fn: Any, case: dict) -> dict:
    """One call of the student's function, plus the gradients and the inputs after the call on request."""
    device = case.get("device", "cpu")
    reply: dict[str, Any] = {"kind": "case", "id": case["id"]}
    torch.manual_seed(int(case.get("seed", 0)))
    torch.set_grad_enabled(True)
    try:
        args, kwargs = _build_args(case, device)
    except BaseException as exc:                        # the runner's own failure: reported as such
        reply.update(status="setup-error", exc=_exception(exc))
        return reply
    ids = [[id(p) for p in a.parameters()] if isinstance(a, nn.Module) else None for a in args]
    ptrs = [_param_ptrs(a) if isinstance(a, nn.Module) else _storage_ptr(a) if isinstance(a, torch.Tensor) else None
            for a in args]
    tensor_ptrs = {i: p for i, p in enumerate(ptrs) if isinstance(p, int) and p}
    recorder = DeviceWatch() if case.get("watch_devices") else None
    start = time.perf_counter()
    try:
        if recorder is not None:
            with recorder:
                out = fn(*args, **kwargs)
        else:
            out = fn(*args, **kwargs)
        reply["status"] = "ok"
    except BaseException as exc:
        reply.update(status="raised", exc=_exception(exc), elapsed=time.perf_counter() - start)
        if recorder is not None and recorder.mixed:
            reply["mixed_devices"] = recorder.mixed
        if case.get("return_inputs"):
            reply["inputs_after"] = [_snapshot(a, i, p) for a, i, p in zip(args, ids, ptrs)]
        return reply
    reply["elapsed"] = time.perf_counter() - start
    if recorder is not None and recorder.mixed:
        reply["mixed_devices"] = recorder.mixed
    reply["out"] = describe(out, 0, tensor_ptrs)
    grad_outputs = case.get("grad_outputs")
    if grad_outputs is not None:
        reply["grads"] = _gradients(out, args, case.get("grad_wrt", []), grad_outputs, device)
    if case.get("return_inputs"):
        reply["inputs_after"] = [_snapshot(a, i, p) for a, i, p in zip(args, ids, ptrs)]
    if case.get("repeat"):                              # a second call on fresh inputs (same generator seeds)
        try:
            args2, kwargs2 = _build_args(case, device)
            reply["out2"] = describe(fn(*args2, **kwargs2))
        except BaseException as exc:
            reply["out2"] = {"t": "other", "cls": "error", "error": _exception(exc)}
    return reply


def surrogate(pairs: list) -> torch.Tensor:
    """sum_k <out_k, grad_out_k>: its gradient is the vector-Jacobian product with grad_outputs (exactly), and
    autograd.grad on a scalar skips torch's lazy shape-checking imports (~0.7 s on first use)."""
    return sum((o * g).sum() for o, g in pairs)


def _gradients(out: Any, args: list, wrt: list[int], grad_outputs: list, device: str) -> dict:
    try:
        outs = _flat_tensors(out)
        pairs = [(o, g.to(device=device, dtype=o.dtype)) for o, g in zip(outs, grad_outputs) if g is not None]
        pairs = [(o, g) for o, g in pairs if isinstance(o, torch.Tensor) and o.requires_grad and o.shape == g.shape]
        if not pairs:
            return {"status": "no-graph", "grads": [None] * len(wrt)}
        inputs = [args[i] for i in wrt]
        grads = torch.autograd.grad(surrogate(pairs), inputs, allow_unused=True)
        return {"status": "ok", "grads": [None if g is None else describe(g) for g in grads]}
    except BaseException as exc:
        return {"status": "raised", "exc": _exception(exc), "grads": [None] * len(wrt)}


def _private_functions() -> dict[str, Any]:
    """Copies of this module's functions bound to a snapshot of its globals: rebinding a name in the module
    (``runner.run_case = ...``) from a definition no longer changes what the runner calls."""
    snapshot = dict(globals())
    for name, value in list(snapshot.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == __name__:
            snapshot[name] = types.FunctionType(value.__code__, snapshot, name, value.__defaults__, value.__closure__)
    snapshot["_encode"] = wire.encode
    return snapshot


def run_cases(statements: list[dict], function: str, cases: list[dict], out_fd: int) -> None:
    """Define the code, then run every case, streaming one message per case to ``out_fd``."""
    own = _private_functions()
    encode, exception, write = own["_encode"], own["_exception"], os.write

    def send(tree: Any) -> None:
        try:
            data = encode(tree)
        except Exception as exc:                        # e.g. an output of a dtype that cannot be sent
            data = encode({"kind": tree.get("kind"), "id": tree.get("id"), "status": "unsendable", "exc": exception(exc)})
        view = memoryview(data)
        while view:
            n = write(out_fd, view)
            view = view[n:]

    setup, fn = own["define"](statements, function)
    send(setup)
    if not setup["defined"]:
        send({"kind": "done"})
        return
    run_one = own["run_case"]
    for case in cases:
        send(run_one(fn, case))
    send({"kind": "done"})
