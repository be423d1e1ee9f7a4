"""Judges of what a contract says beyond "the values match": one part of a tuple output, outputs that must be new
tensors, arguments updated in their own storage.

* :func:`part` judges one item of a tuple output (or of the observed value of a mutating function) as a check of
  its own, so partial credit follows the part that is right (``rgb`` and ``weights`` of a volume render, the
  points and ``t_vals`` of stratified sampling, ``rays_o`` and ``rays_d``).
* :func:`fresh` adds to a value judge that no output shares its storage with an input (the worker reports the
  inputs each output tensor aliases): "a new tensor, never a view".
* :func:`same_storage` adds that a mutated argument (a tensor, or every parameter of a module) still uses the
  storage it had: ``p.data = ...`` or ``queue.data = ...`` gives the caller's object new memory, which a
  training loop holding views of it (an optimizer's state, a queue shared with a data loader) never sees.

Like every judge, these read the worker's reply as if forged (judges.py): a missing or malformed field fails.
"""
from __future__ import annotations

from typing import Any, Callable

from . import judges
from .judges import Context, Verdict

__all__ = ["part", "fresh", "same_storage"]


def _pick(value: Any, index: int) -> Any:
    if isinstance(value, (tuple, list)) and len(value) > index:
        return value[index]
    return None


def part(index: int, label: str) -> Callable[[Context], Verdict]:
    """A judge of output ``index`` (named ``label`` in messages) of a tuple output against the reference's, with
    the known mistakes compared on that part only; the output must still be a tuple of the reference's length."""
    def judge(ctx: Context) -> Verdict:
        bad = judges._returned(ctx)
        if bad:
            return bad
        unreadable = judges._inputs_after_problem(ctx) if ctx.spec.observe else None
        if unreadable:
            return Verdict(0.0, unreadable)
        got_all = judges._student_obs(ctx)
        want_all = judges._observe(ctx.spec, ctx.m.ref_out, ctx.m.ref_after)
        items = got_all.get("items") if isinstance(got_all, dict) and got_all.get("t") in ("tuple", "list") else None
        if not isinstance(items, list) or got_all.get("n") != len(want_all) or len(items) != len(want_all):
            return Verdict(0.0, f"expected a tuple of {len(want_all)} values, got {judges._kind(got_all)}")
        truth = None if ctx.spec.observe else _pick(ctx.m.truth_out, index)
        problems = judges.compare(items[index], want_all[index], ctx.spec, label, equal_nan=ctx.case.equal_nan,
                                  truth=truth)
        if not problems:
            first = len(judges._flat(list(want_all[:index])))
            cut = judges.grad_flag_problem(ctx, first, len(judges._flat(want_all[index])))
            return Verdict(0.0, cut) if cut else Verdict(1.0)
        found = judges._find_mistake(ctx, items[index], project=lambda obs: obs[index])
        if found:
            return Verdict(0.0, f"{problems[0]}; this {found.message}", found.mistake)
        return Verdict(0.0, problems[0])

    judge.__doc__ = f"Output {index} ({label}) of the tuple matches the reference's."
    return judge


def fresh(judge: Callable[[Context], Verdict] | None = None) -> Callable[[Context], Verdict]:
    """``judge`` (default: the value), then: no output tensor shares its storage with an input."""
    base = judge or judges.value

    def check(ctx: Context) -> Verdict:
        verdict = base(ctx)
        if verdict.score < 1:
            return verdict
        outs = judges._tensors(ctx.reply.get("out"))
        for i, t in enumerate(outs):
            aliases = t.get("aliases")
            if not isinstance(aliases, list):
                return Verdict(0.0, "the grader could not tell whether the output shares memory with an input")
            names = [ctx.spec.params[a] for a in aliases if isinstance(a, int) and 0 <= a < len(ctx.spec.params)]
            if names:
                where = "the output" if len(outs) == 1 else f"output[{i}]"
                return Verdict(0.0, f"{where} is a view of the input {names[0]} (it shares its memory): the contract "
                                    "asks for a new tensor, so writing into one of them cannot change the other; "
                                    "copy it (.clone(), or an operation that allocates, such as expand(...).clone())")
        return verdict

    check.__doc__ = (base.__doc__ or "").strip() + " No output is a view of an input."
    return check


def same_storage(position: int, judge: Callable[[Context], Verdict] | None = None) -> Callable[[Context], Verdict]:
    """``judge`` (default: the value), then: argument ``position`` kept its storage (a module: every parameter)."""
    base = judge or judges.value

    def check(ctx: Context) -> Verdict:
        verdict = base(ctx)
        if verdict.score < 1:
            return verdict
        after = ctx.reply.get("inputs_after")
        desc = after[position] if isinstance(after, list) and len(after) > position else None
        if not isinstance(desc, dict) or desc.get("same_storage") is not True:
            name = ctx.spec.params[position]
            what = "its parameters' memory" if isinstance(desc, dict) and desc.get("t") == "module" else "its memory"
            return Verdict(0.0, f"{name} was given new memory instead of being updated in place ({what} changed: "
                                f"assigning .data = ... or rebinding replaces it; write into it with in-place "
                                "operations such as mul_, add_, copy_ or index assignment under torch.no_grad())")
        return verdict

    check.__doc__ = (base.__doc__ or "").strip() + " The mutated argument keeps its storage."
    return check
