"""The rubric, rendered from the registry: per graded function its checks, their points, which are gated and what
each judges (the check's title), as the Markdown section of autograder/README.md.

    python -m autograder.registry.rubric            # print the section
    python -m autograder.registry.rubric --write    # replace it in autograder/README.md (atomically)

tests/autograder/test_ag_rubric.py holds the README to :func:`rubric_markdown`, so the documented rubric is the one
the grader applies.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from . import REGISTRY
from .core import Cases

__all__ = ["BEGIN", "END", "rubric_markdown", "readme_with_rubric", "write_readme"]

BEGIN = "<!-- rubric: generated from the registry by `python -m autograder.registry.rubric --write`; do not edit -->"
END = "<!-- end of the generated rubric -->"
README = Path(__file__).resolve().parents[1] / "README.md"

_INTRO = """\
Each graded function is worth 10 points, split over its checks; a check's points are its weight times the
fraction of its cases passed. *Gated* checks count only when the function gets at least one random value case
(the `values` check) right, so code that only raises `ValueError`, returns zeros of the right shape or a
detached constant earns nothing for being well-behaved. A check of one part of a tuple output (`rgb` and
`values` = weights of `volume_render`, `misses` and `values` = hits of `sphere_trace`, ...) judges that part
only, so partial credit follows what is right. Value cases whose inputs require grad also fail when the output
the reference connects to the graph does not require grad. `layout` cases rebuild arguments with other strides
in the worker (stored transposed, or a slice with a step); `defaults` cases leave the defaulted arguments out;
`new_tensors` and `in_place` cases also read which inputs an output shares memory with and whether a mutated
argument kept its memory. `dtype_device` runs float32 and float64 cases on the CPU, watched by the worker: a
tensor the function makes without the inputs' device (`torch.arange(n)`, `torch.full(...)`) that meets them
fails there as it would on a GPU; CUDA cases are added when the grader has a GPU. Cases: the number at run
seed 0 on a grader without a GPU."""


def _cases(spec, check) -> int:
    factory = Cases(spec.name, check.name, 0)
    check.make(factory)
    return len(factory.items)


def rubric_markdown() -> str:
    """The rubric section (between :data:`BEGIN` and :data:`END`, markers excluded)."""
    lines = [_INTRO, ""]
    for assignment, specs in REGISTRY.items():
        if not specs:
            continue
        lines += [f"**{assignment}**", "", "| function | check | points | gated | cases | what it judges |",
                  "|---|---|---|---|---|---|"]
        for spec in specs:
            for k, check in enumerate(spec.checks):
                title = check.title.replace("|", "\\|")
                lines.append(f"| {f'`{spec.name}`' if k == 0 else ''} | `{check.name}` | {check.weight:g} | "
                             f"{'yes' if check.auxiliary else ''} | {_cases(spec, check)} | {title} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def readme_with_rubric(text: str) -> str:
    """``text`` (the README) with its rubric section replaced by the current one.

    Raises:
        ValueError: when the README has no (or a broken) rubric section.
    """
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no rubric section between {BEGIN!r} and {END!r}")
    return text[: start + len(BEGIN)] + "\n" + rubric_markdown() + text[end:]


def write_readme(path: Path = README) -> bool:
    """Replace the rubric section of ``path`` (atomically); True when it changed."""
    text = path.read_text(encoding="utf-8")
    new = readme_with_rubric(text)
    if new == text:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".README.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.registry.rubric", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the rubric section of autograder/README.md")
    args = parser.parse_args(argv)
    if args.write:
        print("README rubric updated" if write_readme() else "README rubric already current")
    else:
        print(rubric_markdown(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
