"""Feedback text: what each graded function scored, which property broke, and one example to replay.

For every failed check the student sees the property (the check's title), how many cases passed, the first
problem found on the smallest failing case (expected vs got, or the exception), the known mistake it matches
when one does, and that case as a replay snippet (seeded generator + the call). Hidden inputs are never
printed beyond that one small example, and solution code is never printed.

Text that came from the submission (exception messages, names, parser messages) is sanitised and quoted
(quoting.py): no control characters or terminal escapes, and every line of it after the first starts with
``|``, so it cannot pass for a ``PASS``/``FAIL`` line, a note or a score.
"""
from __future__ import annotations

from .grading import CheckResult, FunctionResult, GradeResult
from .quoting import one_line, quote_block

__all__ = ["function_feedback", "summary_table", "notebook_feedback"]

_MAX_EXAMPLE_NUMEL = 4096


def _size(cr) -> int:
    total = 0
    for v in cr.m.inputs.values():
        if hasattr(v, "numel"):
            total += v.numel()
    return total


def _example(check: CheckResult, function: str) -> str | None:
    failed = [c for c in check.cases if c.verdict.score < 1.0]
    if not failed:
        return None
    ran = [c for c in failed if not c.verdict.message.startswith(("not run", "not credited"))]
    case = min(ran or failed, key=_size)
    lines = [f"    - {quote_block(case.verdict.message, '      ')}"]
    if case.case.note:
        lines.append(f"      case: {case.case.note}")
    if _size(case) <= _MAX_EXAMPLE_NUMEL and not case.verdict.message.startswith("not credited"):
        lines.append("      to replay it, run in your notebook (the message above gives the expected values):")
        lines += ["        " + ln for ln in case.case.replay(function, case.m.inputs).splitlines()]
    return "\n".join(lines)


def function_feedback(fr: FunctionResult) -> str:
    """The text shown for one graded function (Gradescope test output)."""
    lines = [f"{fr.name}: {fr.score:g} / {fr.points:g}"]
    if fr.problem:
        lines.append(f"  {quote_block(fr.problem, '    ')}")
        return "\n".join(lines)
    failed = [c for check in fr.checks for c in check.cases if c.verdict.score < 1.0]
    reasons = {c.verdict.message for c in failed if not c.verdict.message.startswith("not run")}
    if failed and len(reasons) == 1 and not any(check.passed for check in fr.checks):
        lines.append(f"  every check failed: {quote_block(reasons.pop(), '    ')}")
        smallest = min((c for c in failed if not c.verdict.message.startswith("not run")), key=_size)
        if _size(smallest) <= _MAX_EXAMPLE_NUMEL:
            lines.append("  to replay the first case, run in your notebook (the message above gives the expected values):")
            lines += ["    " + ln for ln in smallest.case.replay(fr.name, smallest.m.inputs).splitlines()]
        lines += [f"  note: {quote_block(note, '    ')}" for note in fr.notes]
        return "\n".join(lines)
    for check in fr.checks:
        n = len(check.cases)
        status = "PASS" if check.passed == n and n else "FAIL"
        lines.append(f"  {status} {check.name} ({check.passed}/{n} cases, {check.score:g}/{check.weight:g} pts): {check.title}")
        if status == "FAIL":
            example = _example(check, fr.name)
            if example:
                lines.append(example)
    if fr.mistakes:
        lines.append("  known mistakes detected: " + ", ".join(fr.mistakes))
    for note in fr.notes:
        lines.append(f"  note: {quote_block(note, '    ')}")
    return "\n".join(lines)


def notebook_feedback(result: GradeResult) -> str:
    lines = []
    if result.notebook_error:
        lines.append(f"The notebook could not be read: {one_line(result.notebook_error)}. Every function scores 0.")
    for note in result.notes:
        lines.append(f"note: {quote_block(note, '  ')}")
    return "\n".join(lines)


def summary_table(result: GradeResult) -> str:
    """A few lines for the terminal: one per function and the total."""
    width = max([len(f.name) for f in result.functions] + [8])
    lines = [f"{result.assignment}: {result.submission}"]
    if result.notebook_error:
        lines.append(f"  notebook unreadable: {one_line(result.notebook_error)}")
    for f in result.functions:
        failed = [c.name for c in f.checks if c.passed < len(c.cases) or not c.cases]
        detail = one_line(f.problem or (("failed: " + ", ".join(failed)) if failed and f.score < f.points else "all checks passed"))
        lines.append(f"  {f.name:<{width}}  {f.score:6.2f} / {f.points:<5g} {detail}")
    lines.append(f"  {'total':<{width}}  {result.score:6.2f} / {result.max_score:<5g} ({result.elapsed_s:.1f} s)")
    return "\n".join(lines)
