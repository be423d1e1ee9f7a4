"""Judges: turn one case's worker reply into a score in [0, 1] and a message a student can act on.

Everything here runs in the grader. The student's reply is data (plain tensors and JSON from the wire
format); it is compared with the reference answer computed in this process, never by calling anything the
student sent. When a value is wrong, every known-mistake variant of the function is computed on the same
inputs, and a variant that reproduces the student's answer (while differing from the reference) is named.

Every reply is treated as forged: the worker runs the student's code, which can write any well-formed reply.
So a container must have exactly the reference's structure and length, lists the worker reports about the
inputs (gradients, arguments after the call) must have exactly one entry per input, and whatever is missing,
malformed or of another type fails the case. Nothing here ``zip()``s a worker list against a reference list
without checking the lengths first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .core import Case, FunctionSpec, Materialized, run_variant

__all__ = ["Verdict", "Context", "value", "dtype_device", "gradients", "stop_gradient", "no_mutation", "raises",
           "compare", "describe_failure", "grad_flag_problem"]


@dataclass
class Verdict:
    score: float
    message: str = ""
    mistake: str | None = None


@dataclass
class Context:
    spec: FunctionSpec
    case: Case
    m: Materialized
    outcome: Any                                 # sandbox.CaseOutcome

    @property
    def reply(self) -> dict | None:
        return self.outcome.reply


# ------------------------------------------------------------------------------------------------ comparing
def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _show(t: torch.Tensor) -> str:
    if t.numel() <= 12:
        flat = t.reshape(-1).tolist()
        return "[" + ", ".join(_fmt(v) if isinstance(v, float) else str(v) for v in flat) + "]" + (
            f" (shape {list(t.shape)})" if t.dim() != 1 else "")
    return f"a tensor of shape {list(t.shape)}"


def _against_truth(got: torch.Tensor, want: torch.Tensor, truth: torch.Tensor, where: str, spec: FunctionSpec,
                   equal_nan: bool) -> list[str]:
    """A low-precision result judged against the float64 truth, allowing 4x the reference's own error on this case
    on top of the dtype's tolerance (a correct formula that rounds differently passes; a wrong one does not)."""
    t = truth.to(torch.float64)
    a = got.to(torch.float64)
    ref_err = (want.to(torch.float64) - t).abs()
    ref_err = ref_err[torch.isfinite(ref_err)]
    allow = float(ref_err.max()) if ref_err.numel() else 0.0
    rtol, atol = spec.tolerance(want.dtype)
    tol = atol + rtol * t.abs().nan_to_num(posinf=0.0, neginf=0.0) + 4 * allow
    same_special = (a == t) | (torch.isnan(a) & torch.isnan(t) if equal_nan else torch.zeros_like(a, dtype=torch.bool))
    ok = same_special | ((a - t).abs() <= tol)
    if bool(ok.all()):
        return []
    bad_nan = ~torch.isfinite(a) & torch.isfinite(t)
    if bad_nan.any():
        at = tuple(bad_nan.nonzero()[0].tolist())
        return [f"{where}: contains NaN/Inf (first at index {at}) where the expected value is finite "
                f"({_fmt(t[at].item()) if at else _fmt(t.item())}): is the computation numerically stable?"]
    err = torch.where(ok, torch.zeros_like(a), (a - t).abs().nan_to_num(float("inf")))
    idx = tuple(torch.nonzero(err == err.max())[0].tolist()) if err.dim() else ()
    tolerance = f"tolerance {_fmt(tol[idx].item() if tol.dim() else tol.item())} for {str(want.dtype).removeprefix('torch.')}"
    if want.numel() <= 12:
        return [f"{where}: expected {_show(t.to(want.dtype))}, got {_show(got)} ({tolerance})"]
    return [f"{where}: values differ (largest error {_fmt(err.max().item())} at index {idx}: expected "
            f"{_fmt(t[idx].item())}, got {_fmt(a[idx].item())}; {tolerance})"]


def _compare_tensor(got: torch.Tensor, want: torch.Tensor, where: str, spec: FunctionSpec, equal_nan: bool,
                    truth: torch.Tensor | None = None) -> list[str]:
    if list(got.shape) != list(want.shape):
        return [f"{where}: expected shape {list(want.shape)}, got {list(got.shape)}"]
    if truth is not None and want.dtype in (torch.float32, torch.float16, torch.bfloat16) \
            and got.is_floating_point() and list(truth.shape) == list(want.shape):
        return _against_truth(got, want, truth, where, spec, equal_nan)
    if want.dtype == torch.bool or not want.is_floating_point():
        if got.is_floating_point() and not want.dtype == torch.bool:
            ok = torch.equal(got.to(torch.float64), want.to(torch.float64))
        else:
            ok = torch.equal(got.to(want.dtype), want) if got.dtype != torch.bool or want.dtype == torch.bool else False
        if ok:
            return []
        bad = (got.to(torch.float64) != want.to(torch.float64)).nonzero()
        at = tuple(bad[0].tolist()) if len(bad) else ()
        return [f"{where}: expected {_show(want)}, got {_show(got)}" if want.numel() <= 12 else
                f"{where}: {len(bad)} of {want.numel()} entries differ, first at index {at}"]
    if not got.is_floating_point():
        got = got.to(torch.float64)
    rtol, atol = spec.tolerance(want.dtype if got.dtype == want.dtype else torch.float32)
    a, b = got.to(torch.float64), want.to(torch.float64)
    if torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return []
    if not equal_nan:
        bad_nan = ~torch.isfinite(a) & torch.isfinite(b)
        if bad_nan.any():
            at = tuple(bad_nan.nonzero()[0].tolist())
            return [f"{where}: contains NaN/Inf (first at index {at}) where the expected value is finite "
                    f"({_fmt(b[at].item()) if at else _fmt(b.item())}): is the computation numerically stable?"]
    err = (a - b).abs()
    err = torch.where(torch.isnan(err), torch.full_like(err, float("inf")), err)
    idx = tuple(torch.nonzero(err == err.max())[0].tolist()) if err.dim() else ()
    if want.numel() <= 12:
        return [f"{where}: expected {_show(want)}, got {_show(got)}"]
    return [f"{where}: values differ (largest error {_fmt(err.max().item())} at index {idx}: expected "
            f"{_fmt(b[idx].item())}, got {_fmt(a[idx].item())})"]


def compare(got: Any, want: Any, spec: FunctionSpec, where: str = "output", equal_nan: bool = False,
            truth: Any = None) -> list[str]:
    """Problems with a student value (worker description) against a reference value; [] when it matches.

    ``truth`` (same structure as ``want``, float64) is the reference computed in float64 for a low-precision case:
    float32 results are then judged against it (see :func:`_against_truth`)."""
    if isinstance(want, torch.Tensor):
        if not isinstance(got, dict) or got.get("t") != "tensor":
            return [f"{where}: expected a tensor of shape {list(want.shape)}, got {_kind(got)}"]
        return _compare_tensor(got["data"], want, where, spec, equal_nan,
                               truth if isinstance(truth, torch.Tensor) else None)
    if isinstance(want, (tuple, list)):
        items = got.get("items") if isinstance(got, dict) and got.get("t") in ("tuple", "list") else None
        if not isinstance(items, list) or got.get("n") != len(want) or len(items) != len(want):
            return [f"{where}: expected a tuple of {len(want)} values, got {_kind(got)}"]
        truths = list(truth) if isinstance(truth, (tuple, list)) and len(truth) == len(want) else [None] * len(want)
        problems: list[str] = []
        for i, (g, w, tr) in enumerate(zip(items, want, truths)):
            problems += compare(g, w, spec, f"{where}[{i}]", equal_nan, tr)
        return problems
    if isinstance(want, dict) and want.get("t") == "module":
        if not _module_matches(got, want):
            return [f"{where}: the module's parameters could not be compared"]
        problems = []
        for name, g, w in zip(want["names"], got["params"], want["params"]):
            problems += _compare_tensor(g, w, f"{where} parameter {name}", spec, equal_nan)
        for name, g, w in zip(want["buffer_names"], got["buffers"], want["buffers"]):
            problems += _compare_tensor(g, w, f"{where} buffer {name}", spec, equal_nan)
        if list(got["requires_grad"]) != list(want["requires_grad"]):
            problems.append(f"{where}: requires_grad flags changed (expected {want['requires_grad']}, got {got['requires_grad']})")
        return problems
    if isinstance(want, bool):
        ok = isinstance(got, dict) and got.get("t") == "bool" and got["v"] == want
        return [] if ok else [f"{where}: expected {want}, got {_kind(got)}"]
    if isinstance(want, int):
        if isinstance(got, dict) and got.get("t") == "int":
            return [] if got["v"] == want else [f"{where}: expected {want}, got {got['v']}"]
        extra = " (return a Python int, e.g. int(...))" if isinstance(got, dict) and got.get("t") == "tensor" else ""
        return [f"{where}: expected the int {want}, got {_kind(got)}{extra}"]
    if isinstance(want, float):
        ok = isinstance(got, dict) and got.get("t") in ("float", "int") and abs(got["v"] - want) <= 1e-6 * max(1, abs(want))
        return [] if ok else [f"{where}: expected {_fmt(want)}, got {_kind(got)}"]
    if want is None:
        return [] if isinstance(got, dict) and got.get("t") == "none" else [f"{where}: expected None, got {_kind(got)}"]
    return [f"{where}: cannot compare a {type(want).__name__}"]


def _module_matches(got: Any, want: dict) -> bool:
    """A module description with the reference's parameter and buffer names, in order, and one tensor and flag
    per name (so the zips below compare everything the reference has)."""
    if not isinstance(got, dict) or got.get("t") != "module":
        return False
    lists = [got.get(k) for k in ("names", "params", "requires_grad", "buffer_names", "buffers")]
    if not all(isinstance(v, list) for v in lists):
        return False
    names, params, flags, bnames, buffers = lists
    return (names == list(want["names"]) and len(params) == len(want["params"]) == len(flags)
            and bnames == list(want["buffer_names"]) and len(buffers) == len(want["buffers"])
            and all(type(t) is torch.Tensor for t in params + buffers))


def _kind(d: Any) -> str:
    if not isinstance(d, dict):
        return "nothing"
    t = d.get("t")
    if t == "tensor":
        return f"a tensor of shape {list(d['data'].shape)}"
    if t in ("tuple", "list"):
        return f"a {t} of {d.get('n')} values"
    if t in ("int", "float", "bool"):
        return f"the {t} {d['v']}"
    if t == "none":
        return "None"
    return f"a {d.get('cls', 'value')}"


def _observe(spec: FunctionSpec, out: Any, after: list | None) -> Any:
    return spec.observe(out, after or []) if spec.observe else out


def _observe_student(spec: FunctionSpec, out: Any, after: list | None) -> Any:
    """The same projection on the worker's descriptions (a list becomes a described tuple)."""
    obs = _observe(spec, out, after)
    return {"t": "tuple", "n": len(obs), "items": list(obs)} if isinstance(obs, list) else obs


def _tensors(d: Any) -> list[dict]:
    if isinstance(d, dict) and d.get("t") == "tensor":
        return [d]
    if isinstance(d, dict) and d.get("t") in ("tuple", "list"):
        return [t for item in d["items"] for t in _tensors(item)]
    return []


def _same_structure(got: Any, want: Any) -> bool:
    """The description has the reference value's nesting: a tensor where it has a tensor, a tuple/list of the
    same length where it has one (other leaves are not looked at here)."""
    if isinstance(want, torch.Tensor):
        return isinstance(got, dict) and got.get("t") == "tensor"
    if isinstance(want, (tuple, list)):
        items = got.get("items") if isinstance(got, dict) and got.get("t") in ("tuple", "list") else None
        return (isinstance(items, list) and got.get("n") == len(items) == len(want)
                and all(_same_structure(g, w) for g, w in zip(items, want)))
    return True


def _per_input(values: Any, n: int) -> bool:
    """A worker list that must hold exactly one entry per input (gradients, arguments after the call)."""
    return isinstance(values, list) and len(values) == n


def _inputs_after_problem(ctx: "Context") -> str | None:
    """Why the reported arguments after the call cannot be judged (None when they can)."""
    if ctx.case.return_inputs and not _per_input(ctx.reply.get("inputs_after"), len(ctx.m.args)):
        return f"the arguments after the call could not be read (expected {len(ctx.m.args)} of them)"
    return None


# ------------------------------------------------------------------------------------------------ failures
def describe_failure(ctx: Context) -> str | None:
    """The message for a case that did not return normally (None when it did)."""
    o = ctx.outcome
    if o.failure:
        return o.failure
    r = o.reply or {}
    status = r.get("status")
    if status == "ok":
        return None
    exc = r.get("exc") or {}
    if status == "raised":
        where = f" ({exc['where'].splitlines()[-1]})" if exc.get("where") else ""
        if exc.get("type") == "NotImplementedError":
            return "not implemented yet (the function raises NotImplementedError)"
        hint = ""
        if exc.get("type") == "NameError":
            hint = (" -- the grader keeps only imports, function/class definitions and simple constants from the "
                    "notebook: define what the function needs inside it or as a constant")
        if "can't allocate memory" in exc.get("message", "") or exc.get("type") == "MemoryError":
            hint = " -- the worker ran out of memory"
        return f"raised {exc.get('type')}: {exc.get('message', '')}{where}{hint}"
    return f"the grader could not use the result ({status}: {exc.get('message', '')})"


def _returned(ctx: Context) -> Verdict | None:
    msg = describe_failure(ctx)
    if msg:
        return Verdict(0.0, msg)
    subclasses = [t["cls"] for t in _tensors(ctx.reply.get("out")) if not t.get("exact", False)]
    if subclasses:
        return Verdict(0.0, f"returned an instance of {subclasses[0]}, a subclass of torch.Tensor: return a plain torch.Tensor")
    return None


def _find_mistake(ctx: Context, got_obs: Any, grads: bool = False, got_grads: list | None = None,
                  project: Any = None) -> Verdict | None:
    """A known mistake whose answer on this case is the student's (and not the reference's); ``project`` picks the
    part of the observed value that is judged (a check of one output of a tuple)."""
    project = project or (lambda obs: obs)
    ref_obs = project(_observe(ctx.spec, ctx.m.ref_out, ctx.m.ref_after))
    for mistake in ctx.spec.mistakes:
        if mistake.grads and not grads:                 # a gradient-only mistake leaves the values right
            continue
        try:
            with torch.enable_grad():
                out, after, vgrads = run_variant(mistake.fn, ctx.m, ctx.case)
        except Exception:
            continue
        if grads:
            if vgrads is None or not _per_input(got_grads, len(vgrads)) or not _per_input(ctx.m.ref_grads, len(vgrads)):
                continue
            differs = any(_grad_problems(v, r, ctx.spec, "x") for v, r in zip(vgrads, ctx.m.ref_grads))
            same = all(not _grad_problems_desc(s, v, ctx.spec, "x", True) for s, v in zip(got_grads, vgrads))
        else:
            try:
                var_obs = project(_observe(ctx.spec, out, after))
            except (IndexError, KeyError, TypeError):
                continue
            differs = bool(_plain_compare(var_obs, ref_obs, ctx.spec))
            same = not compare(got_obs, var_obs, ctx.spec, equal_nan=True) if differs else False
        if differs and same:
            return Verdict(0.0, f"looks like {mistake.message}", mistake.name)
    return None


def _plain_compare(a: Any, b: Any, spec: FunctionSpec) -> list[str]:
    return compare(_to_desc(a), b, spec, equal_nan=True)


def _to_desc(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return {"t": "tensor", "data": v.detach(), "exact": True}
    if isinstance(v, (tuple, list)):
        return {"t": "tuple", "n": len(v), "items": [_to_desc(x) for x in v]}
    if isinstance(v, dict) and v.get("t") == "module":
        return v
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        return {"t": "int", "v": v}
    if isinstance(v, float):
        return {"t": "float", "v": v}
    if v is None:
        return {"t": "none"}
    return {"t": "other", "cls": type(v).__name__}


def _student_obs(ctx: Context) -> Any:
    return _observe_student(ctx.spec, ctx.reply.get("out"), ctx.reply.get("inputs_after"))


# ------------------------------------------------------------------------------------------------ judges
def value(ctx: Context) -> Verdict:
    """Returns what the reference returns (and leaves the mutated arguments as the reference does)."""
    bad = _returned(ctx)
    if bad:
        return bad
    unreadable = _inputs_after_problem(ctx) if ctx.spec.observe else None
    if unreadable:
        return Verdict(0.0, unreadable)
    got = _student_obs(ctx)
    want = _observe(ctx.spec, ctx.m.ref_out, ctx.m.ref_after)
    truth = ctx.m.truth_out if not ctx.spec.observe else None
    problems = compare(got, want, ctx.spec, "output" if not ctx.spec.observe else "result",
                       equal_nan=ctx.case.equal_nan, truth=truth)
    if not problems:
        cut = grad_flag_problem(ctx)
        return Verdict(0.0, cut) if cut else Verdict(1.0)
    found = _find_mistake(ctx, got)
    if found:
        return Verdict(0.0, f"{problems[0]}; this {found.message}", found.mistake)
    return Verdict(0.0, problems[0])


def grad_flag_problem(ctx: Context, first: int = 0, count: int | None = None) -> str | None:
    """For a case whose inputs require grad: an output the reference connects to the autograd graph (it requires
    grad) that the student's does not (a detached result); ``first`` / ``count`` select flattened outputs."""
    flags = ctx.m.ref_requires_grad
    if not ctx.case.grad_wrt or not flags or ctx.spec.observe or not any(flags):
        return None
    got = _tensors(ctx.reply.get("out"))
    if len(got) != len(flags):
        return None                                   # the structure is judged elsewhere
    end = len(flags) if count is None else first + count
    for i in range(first, end):
        if flags[i] and not got[i].get("requires_grad", False):
            where = "the output" if len(flags) == 1 else f"output[{i}]"
            return (f"{where} has the right values but does not require grad although the inputs do: it is cut off "
                    "from the autograd graph (detach(), .item(), .numpy(), torch.tensor(...) of a result, or "
                    "no_grad break back-propagation)")
    return None


def dtype_device(ctx: Context) -> Verdict:
    """Every tensor output has the dtype of the reference's output and lives on the input's device; in a watched
    case no tensor made without the inputs' device met them (what fails on a GPU, seen on the CPU)."""
    mixed = (ctx.reply or {}).get("mixed_devices") if ctx.case.watch_devices else None
    if mixed:
        return Verdict(0.0, f"{mixed} (it would fail with inputs on a GPU): create tensors on the input's device "
                            "(torch.arange(n, device=x.device), torch.full(..., device=x.device), torch.zeros_like(x), "
                            "x.new_tensor(...)) or move them there with .to(x.device)")
    bad = _returned(ctx)
    if bad:
        return bad
    got, want = _tensors(ctx.reply.get("out")), [t for t in _flat(ctx.m.ref_out)]
    if len(got) != len(want) or not _same_structure(ctx.reply.get("out"), ctx.m.ref_out):
        return Verdict(0.0, f"expected {len(want)} tensor output(s) shaped like the reference's output, got "
                            f"{_kind(ctx.reply.get('out'))}")
    for i, (g, w) in enumerate(zip(got, want)):
        where = "output" if len(want) == 1 else f"output[{i}]"
        if g["data"].dtype != w.dtype:
            return Verdict(0.0, f"{where}: expected dtype {w.dtype} (it must follow the input), got {g['data'].dtype}")
        if g["device"].split(":")[0] != ctx.case.device.split(":")[0]:
            return Verdict(0.0, f"{where}: expected it on device {ctx.case.device} (the input's device), got {g['device']}")
        if list(g["data"].shape) != list(w.shape):
            return Verdict(0.0, f"{where}: expected shape {list(w.shape)}, got {list(g['data'].shape)}")
    return Verdict(1.0)


def _flat(v: Any) -> list[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, (tuple, list)):
        return [t for x in v for t in _flat(x)]
    return []


def _grad_problems(got: torch.Tensor | None, want: torch.Tensor | None, spec: FunctionSpec, where: str) -> list[str]:
    if want is None and got is None:
        return []
    if want is None:
        want = torch.zeros_like(got)
    if got is None:
        return [] if not bool(want.abs().max() > 0) else [f"{where}: no gradient"]
    return _compare_tensor(got, want, where, spec, equal_nan=False)


def _grad_problems_desc(got: dict | None, want: torch.Tensor | None, spec: FunctionSpec, where: str, equal_nan: bool = False,
                        truth: torch.Tensor | None = None) -> list[str]:
    if got is None:
        return _grad_problems(None, want, spec, where)
    if not isinstance(got, dict) or got.get("t") != "tensor":
        return [f"{where}: expected a gradient tensor, got {_kind(got)}"]
    if want is None:
        want = torch.zeros_like(got["data"])
    return _compare_tensor(got["data"], want, where, spec, equal_nan, truth)


def gradients(ctx: Context) -> Verdict:
    """Back-propagating the same grad_outputs gives the reference's input gradients (finite ones)."""
    bad = _returned(ctx)
    if bad:
        return bad
    g = ctx.reply.get("grads") or {}
    if g.get("status") == "no-graph":
        return Verdict(0.0, "the output is not connected to the inputs' autograd graph (detach(), .item(), numpy or "
                            "in-place writes into a new tensor break back-propagation)")
    if g.get("status") != "ok":
        exc = g.get("exc") or {}
        return Verdict(0.0, f"back-propagation failed: {exc.get('type')}: {exc.get('message', '')}")
    names = [ctx.spec.params[i] for i in ctx.case.grad_wrt]
    if not _per_input(g.get("grads"), len(names)) or not _per_input(ctx.m.ref_grads, len(names)):
        return Verdict(0.0, f"the gradients could not be read (expected one per input: {', '.join(names)})")
    if not _same_structure(ctx.reply.get("out"), ctx.m.ref_out):
        return Verdict(0.0, f"the output is not shaped like the reference's output (got {_kind(ctx.reply.get('out'))})")
    truths = ctx.m.truth_grads if _per_input(ctx.m.truth_grads, len(names)) else [None] * len(names)
    for name, got, want, truth in zip(names, g["grads"], ctx.m.ref_grads, truths):
        if got is None and want is not None and bool(want.abs().max() > 0):
            return Verdict(0.0, f"no gradient reaches {name} (is it detached somewhere?)")
        problems = _grad_problems_desc(got, want, ctx.spec, f"gradient wrt {name}", truth=truth)
        if problems:
            found = _find_mistake(ctx, None, grads=True, got_grads=g["grads"])
            return Verdict(0.0, problems[0] + (f"; this {found.message}" if found else ""), found.mistake if found else None)
    return Verdict(1.0)


def stop_gradient(ctx: Context) -> Verdict:
    """No gradient flows into the arguments listed in ``meta['stop']``; ``meta['detached']``: output detached."""
    bad = _returned(ctx)
    if bad:
        return bad
    if not _same_structure(ctx.reply.get("out"), ctx.m.ref_out):
        return Verdict(0.0, f"the output is not shaped like the reference's output (got {_kind(ctx.reply.get('out'))})")
    if ctx.case.meta.get("detached"):
        leaking = [t for t in _tensors(ctx.reply.get("out")) if t.get("requires_grad")]
        if leaking:
            return Verdict(0.0, "the output requires grad: it must be detached from the inputs (the contract says "
                                "the samples carry no gradient)")
        return Verdict(1.0)
    g = ctx.reply.get("grads") or {}
    if g.get("status") not in ("ok", "no-graph"):
        exc = g.get("exc") or {}
        return Verdict(0.0, f"back-propagation failed: {exc.get('type')}: {exc.get('message', '')}")
    if not _per_input(g.get("grads"), len(ctx.case.grad_wrt)):
        return Verdict(0.0, f"the gradients could not be read (expected one per input, {len(ctx.case.grad_wrt)})")
    for pos in ctx.case.meta.get("stop", ()):
        k = list(ctx.case.grad_wrt).index(pos)
        got = g["grads"][k]
        if got is not None and not (isinstance(got, dict) and got.get("t") == "tensor"):
            return Verdict(0.0, f"the gradient wrt {ctx.spec.params[pos]} could not be read (got {_kind(got)})")
        if got is not None and got["data"].numel() and bool(got["data"].abs().max() > 0):
            found = _find_mistake(ctx, None, grads=True, got_grads=g["grads"])
            msg = f"a gradient flows into {ctx.spec.params[pos]}, which must be treated as a constant (detach it)"
            return Verdict(0.0, msg + (f"; this {found.message}" if found else ""), found.mistake if found else None)
    return Verdict(1.0)


def no_mutation(ctx: Context) -> Verdict:
    """Arguments the function does not exist to mutate are bit-for-bit unchanged after the call."""
    bad = _returned(ctx)
    if bad:
        return bad
    after = ctx.reply.get("inputs_after")
    if not _per_input(after, len(ctx.m.args)):
        return Verdict(0.0, f"the arguments after the call could not be read (expected {len(ctx.m.args)} of them)")
    for i, (before, got) in enumerate(zip(ctx.m.args, after)):
        if i in ctx.spec.mutated or not isinstance(before, torch.Tensor):
            continue
        same = (isinstance(got, dict) and got.get("t") == "tensor" and got["data"].shape == before.shape
                and got["data"].dtype == before.dtype
                and (torch.equal(got["data"], before) or _both_nan(got["data"], before)))
        if not same:
            return Verdict(0.0, f"the call modified its input {ctx.spec.params[i]} in place (work on a copy, or use "
                                "out-of-place operations)")
    return Verdict(1.0)


def _both_nan(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or not b.is_floating_point():
        return False
    return bool(torch.equal(torch.nan_to_num(a.to(b.dtype), nan=0.5), torch.nan_to_num(b, nan=0.5)))


def raises(ctx: Context) -> Verdict:
    """A bad argument raises ValueError whose message names the argument (``meta['arg']``)."""
    arg = ctx.case.meta["arg"]
    o = ctx.outcome
    if o.failure:
        return Verdict(0.0, describe_failure(ctx))
    r = o.reply or {}
    if r.get("status") == "ok":
        return Verdict(0.0, f"accepted a bad {arg} ({ctx.case.note}) without raising ValueError")
    exc = r.get("exc") or {}
    if exc.get("type") == "NotImplementedError":
        return Verdict(0.0, "not implemented yet (the function raises NotImplementedError)")
    if "ValueError" not in exc.get("mro", []):
        return Verdict(0.0, f"a bad {arg} ({ctx.case.note}) raised {exc.get('type')} instead of ValueError")
    if arg not in exc.get("message", ""):
        return Verdict(0.5, f"a bad {arg} ({ctx.case.note}) raised ValueError, but the message does not name the "
                            f"argument {arg!r} (got: {exc.get('message', '')[:120]!r})")
    return Verdict(1.0)
