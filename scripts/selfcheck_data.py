"""Build the students' self-check data: course_lib/checks_data/<function>.json from the registry's public cases.

For every graded function, each public case of its registry entry (``FunctionSpec.public``) is evaluated once:
its inputs, and for cases judged against the reference, the reference's output and the arguments it mutates, are
stored as JSON (``course_lib.checks.encode``). The self-check (``course_lib.checks.check``) reads only these files,
so the student edition needs no reference code; the instructor edition uses the same files.

    python scripts/selfcheck_data.py build      # (re)write the files that changed
    python scripts/selfcheck_data.py check      # exit 1 if a file is missing or out of date (values to 1e-9)
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys

import torch

from course_lib.atomic import write_text_atomic
from course_lib.checks import DATA_DIR, decode, encode
from course_lib.manifest import GRADED, reference

__all__ = ["function_data", "output_names", "main"]


def output_names(fn) -> list[str]:
    """The names of a tuple output, read from the docstring's ``Returns: ``(name1 ..., name2 ...)```` line."""
    doc = fn.__doc__ or ""
    m = re.search(r"Returns:\s*``\(([^`]*)\)``", doc)
    if not m:
        return []
    parts, depth, current = [], 0, ""
    for ch in m.group(1):                                  # split on the commas outside [...] shapes
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [part.strip().split()[0] for part in parts if part.strip()]


def function_data(spec) -> dict:
    """The stored self-check of one registry entry."""
    ref = reference(spec.name)
    cases = []
    for pc in spec.public:
        args = pc.args()
        case = {"label": pc.label, "expect": pc.expect, "args": [encode(a) for a in args]}
        if pc.expect == "value":
            case["value"] = float(pc.value)
        elif pc.expect == "reference":
            live = copy.deepcopy(list(args))
            with torch.random.fork_rng(devices=[]):
                out = ref(*live)
            case["out"] = encode(out)
            if spec.mutated:
                case["after"] = {str(i): encode(live[i]) for i in spec.mutated}
        elif pc.expect != "raises":
            raise ValueError(f"{spec.name}: unknown expectation {pc.expect!r} in case {pc.label!r}")
        cases.append(case)
    return {"function": spec.name, "params": list(spec.params), "outputs": output_names(ref), "cases": cases}


def _dumps(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _same(a, b) -> bool:
    """Equal structure and labels; tensors equal to 1e-9 (a rebuild on another machine may differ in the last bit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return False
        if "tensor" in a:
            x, y = decode(a), decode(b)
            return (x.dtype == y.dtype and x.shape == y.shape and
                    (torch.equal(x, y) if not x.is_floating_point() else
                     torch.allclose(x.double(), y.double(), rtol=1e-9, atol=1e-12, equal_nan=True)))
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    from autograder.registry import SPECS

    missing = [g.name for g in GRADED if g.name not in SPECS or not SPECS[g.name].public]
    stale = []
    for g in GRADED:
        if g.name in missing:
            continue
        data = function_data(SPECS[g.name])
        path = DATA_DIR / f"{g.name}.json"
        current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if current is not None and _same(current, data):
            continue
        if args.command == "build":
            write_text_atomic(path, _dumps(data))
            print(f"wrote {path.relative_to(DATA_DIR.parent.parent)}")
        else:
            stale.append(path.name)
    known = {f"{g.name}.json" for g in GRADED}
    extra = sorted(p.name for p in DATA_DIR.glob("*.json") if p.name not in known)
    if extra:
        print(f"self-check data for functions that are not graded: {', '.join(extra)}", file=sys.stderr)
        return 1
    if stale:
        print("out of date (run `make notebooks`): " + ", ".join(stale), file=sys.stderr)
    if missing:
        print(f"no public self-check cases for {', '.join(missing)}", file=sys.stderr)
    return 1 if stale or missing else 0


if __name__ == "__main__":
    sys.exit(main())
