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

from . import specials, wire

__all__ = ["BLOCKED_PACKAGES", "ImportBlocker", "define", "run_cases", "describe", "surrogate"]

BLOCKED_PACKAGES = ("course_lib", "autograder")
_MAX_ITEMS = 16
_MAX_MESSAGE = 2000


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


def describe(value: Any, depth: int = 0) -> Any:
    """A student return value as JSON + plain CPU tensors (tensor subclasses are flagged, not trusted).

    Containers are described only when their type is exactly ``tuple`` or ``list`` (a subclass can lie about its
    length and items), with ``n`` the number of items actually iterated; a longer or deeper one, a subclass or
    anything else is ``{"t": "other"}`` with its class name. Numbers are read through the built-in types' own
    conversions, so an ``int`` / ``float`` subclass cannot report another value than it holds.
    """
    if isinstance(value, torch.Tensor):
        try:
            with torch._C.DisableTorchFunctionSubclass():
                plain = torch.Tensor._make_subclass(torch.Tensor, value.detach(), False).cpu()
            return {
                "t": "tensor",
                "data": plain,
                "exact": type(value) is torch.Tensor,
                "cls": type(value).__name__,
                "device": str(value.device),
                "requires_grad": bool(value.requires_grad),
            }
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
        return {"t": kind.__name__, "n": len(items), "items": [describe(v, depth + 1) for v in items]}
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
    for i in case.get("grad_wrt", []):
        args[i] = args[i].detach().requires_grad_(True)
    return args, kwargs


def _snapshot(value: Any, before_ids: list[int] | None = None) -> Any:
    if isinstance(value, torch.Tensor):
        return describe(value)
    if isinstance(value, nn.Module):
        same = before_ids == [id(p) for p in value.parameters()] if before_ids is not None else True
        return {"t": "module", "same_objects": same, **specials.module_state(value)}
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
    start = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
        reply["status"] = "ok"
    except BaseException as exc:
        reply.update(status="raised", exc=_exception(exc), elapsed=time.perf_counter() - start)
        if case.get("return_inputs"):
            reply["inputs_after"] = [_snapshot(a, i) for a, i in zip(args, ids)]
        return reply
    reply["elapsed"] = time.perf_counter() - start
    reply["out"] = describe(out)
    grad_outputs = case.get("grad_outputs")
    if grad_outputs is not None:
        reply["grads"] = _gradients(out, args, case.get("grad_wrt", []), grad_outputs, device)
    if case.get("return_inputs"):
        reply["inputs_after"] = [_snapshot(a, i) for a, i in zip(args, ids)]
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
