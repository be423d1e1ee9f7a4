"""Validate what a worker sends before any grader code looks at it.

The wire format already guarantees that a reply is only JSON values and plain tensors. This module checks the
*shape* of the reply: every field the judges read has the expected type, sizes are bounded, a container's
``n`` equals the number of items it carries, a module's names, flags and tensors agree in number, and anything
else is replaced by an ``{"t": "other", "cls": "invalid"}`` description (or dropped), so a forged or damaged
reply can only ever fail its own case, never crash or steer the grader. Lists whose length the judges compare
with the reference's (gradients, inputs after the call) are kept at the length the worker sent; the judges
reject a length that differs from the reference's. Every text is sanitised (control characters and terminal
escapes removed, see quoting.py) before it can reach feedback.
"""
from __future__ import annotations

from typing import Any

import torch

from .quoting import clean_text

__all__ = ["clean_reply", "clean_desc"]

_INVALID = {"t": "other", "cls": "invalid"}
_MAX_ITEMS = 64
_MAX_TEXT = 4000


def _text(x: Any, limit: int = _MAX_TEXT, lines: bool = True) -> str:
    return clean_text(x[: limit * 2], keep_newlines=lines)[:limit] if isinstance(x, str) else ""


def _name(x: Any) -> str:
    """A class or exception name: one line."""
    return _text(x, 200, lines=False)


def _bool(x: Any) -> bool:
    return x if isinstance(x, bool) else False


def _tensors(x: Any) -> list[torch.Tensor] | None:
    if isinstance(x, list) and len(x) <= 10_000 and all(type(t) is torch.Tensor for t in x):
        return x
    return None


def clean_desc(d: Any, depth: int = 0) -> Any:
    """A value description from the runner (see runner.describe), validated."""
    if not isinstance(d, dict) or depth > 6:
        return dict(_INVALID)
    t = d.get("t")
    if t == "tensor":
        if type(d.get("data")) is not torch.Tensor:
            return dict(_INVALID)
        out = {"t": "tensor", "data": d["data"], "exact": _bool(d.get("exact")), "cls": _name(d.get("cls")),
               "device": _name(d.get("device"))[:50] or "cpu", "requires_grad": _bool(d.get("requires_grad")),
               "grad_fn": _bool(d.get("grad_fn"))}
        aliases = d.get("aliases")
        if isinstance(aliases, list) and len(aliases) <= _MAX_ITEMS and all(type(i) is int for i in aliases):
            out["aliases"] = aliases
        if "same_storage" in d:
            out["same_storage"] = _bool(d.get("same_storage"))
        return out
    if t in ("tuple", "list"):
        items = d.get("items")
        n = d.get("n")
        if not isinstance(items, list) or type(n) is not int or len(items) > _MAX_ITEMS or n != len(items):
            return dict(_INVALID)
        return {"t": t, "n": n, "items": [clean_desc(i, depth + 1) for i in items]}
    if t == "int" and type(d.get("v")) is int:
        return {"t": "int", "v": d["v"]}
    if t == "float" and type(d.get("v")) in (float, int):
        return {"t": "float", "v": float(d["v"])}
    if t == "bool" and isinstance(d.get("v"), bool):
        return {"t": "bool", "v": d["v"]}
    if t == "none":
        return {"t": "none"}
    if t == "module":
        params, buffers = _tensors(d.get("params")), _tensors(d.get("buffers"))
        names, bnames, flags = d.get("names"), d.get("buffer_names"), d.get("requires_grad")
        ok = (params is not None and buffers is not None and isinstance(names, list) and isinstance(bnames, list)
              and isinstance(flags, list) and all(isinstance(f, bool) for f in flags)
              and all(isinstance(s, str) for s in names + bnames)
              and len(names) == len(params) == len(flags) and len(bnames) == len(buffers))
        if not ok:
            return dict(_INVALID)
        return {"t": "module", "names": names, "params": params, "requires_grad": flags, "buffer_names": bnames,
                "buffers": buffers, "same_objects": _bool(d.get("same_objects")),
                "same_storage": _bool(d.get("same_storage"))}
    return {"t": "other", "cls": _name(d.get("cls")) or "unknown"}


def _clean_exc(e: Any) -> dict:
    if not isinstance(e, dict):
        return {"type": "unknown", "mro": [], "message": "", "where": ""}
    mro = e.get("mro") if isinstance(e.get("mro"), list) else []
    return {"type": _name(e.get("type")) or "unknown", "mro": [_name(m) for m in mro[:32]],
            "message": _text(e.get("message")), "where": _text(e.get("where"))}


def clean_reply(msg: Any) -> dict | None:
    """A validated setup / case / done message, or None when it is not one."""
    if not isinstance(msg, dict):
        return None
    kind = msg.get("kind")
    if kind == "done":
        return {"kind": "done"}
    if kind == "setup":
        errors = msg.get("errors") if isinstance(msg.get("errors"), list) else []
        return {"kind": "setup", "defined": _bool(msg.get("defined")), "type": _name(msg.get("type")),
                "errors": [{"cell": e.get("cell") if type(e.get("cell")) is int else 0,
                            "line": e.get("line") if type(e.get("line")) is int else 0, **_clean_exc(e)}
                           for e in errors[:50] if isinstance(e, dict)]}
    if kind != "case" or not isinstance(msg.get("id"), str):
        return None
    out: dict[str, Any] = {"kind": "case", "id": msg["id"][:200], "status": _name(msg.get("status"))[:50]}
    if "exc" in msg:
        out["exc"] = _clean_exc(msg["exc"])
    if "out" in msg:
        out["out"] = clean_desc(msg["out"])
    if "out2" in msg:
        out["out2"] = clean_desc(msg["out2"])
    if isinstance(msg.get("mixed_devices"), str):
        out["mixed_devices"] = _text(msg["mixed_devices"], 200, lines=False)
    if type(msg.get("elapsed")) in (int, float):
        out["elapsed"] = float(msg["elapsed"])
    if isinstance(msg.get("inputs_after"), list) and len(msg["inputs_after"]) <= _MAX_ITEMS:
        out["inputs_after"] = [clean_desc(a) for a in msg["inputs_after"]]
    g = msg.get("grads")
    if isinstance(g, dict):
        grads = g.get("grads") if isinstance(g.get("grads"), list) and len(g["grads"]) <= _MAX_ITEMS else None
        out["grads"] = {"status": _name(g.get("status"))[:50] if grads is not None else "invalid",
                        "grads": [None if x is None else clean_desc(x) for x in grads or []]}
        if "exc" in g:
            out["grads"]["exc"] = _clean_exc(g["exc"])
    return out
