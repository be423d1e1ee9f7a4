"""Command line: ``python -m autograder grade | batch | gradescope | verify | bench`` (``--help`` on each).

Exit status: 0 when the command did its job (for ``grade``: grading completed, whatever the score), 2 on a
usage error (unknown assignment, missing file, bad option; one line on stderr), 1 when the grader itself
failed (``grade`` then still writes a results.json that says so) or, for ``verify``, when a check failed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.manifest import assignment_names

from .worker.modes import MODES as _MODES

__all__ = ["main"]

ASSIGNMENTS = assignment_names()
MODES = ("auto",) + _MODES


class UsageError(Exception):
    """A bad command line: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:            # one line instead of argparse's usage block
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _assignment(text: str) -> str:
    if text not in ASSIGNMENTS:
        raise argparse.ArgumentTypeError(f"unknown assignment {text!r} (choose from {', '.join(ASSIGNMENTS)})")
    return text


def _sandbox_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sandbox")
    g.add_argument("--sandbox", choices=MODES, default="auto", help="isolation mode (default: the strongest that works)")
    g.add_argument("--timeout", type=_positive_float, default=5.0, metavar="S", help="wall-clock seconds per check (5)")
    g.add_argument("--memory-mb", type=_positive_int, default=768, metavar="MB", help="worker address-space limit (768)")
    g.add_argument("--no-landlock", action="store_true", help="do not add Landlock rules on top of the mode")
    g.add_argument("--no-cuda", action="store_true", help="skip the CUDA cases even when a GPU is available")


def _config(args):
    from .sandbox import SandboxConfig

    return SandboxConfig(mode=args.sandbox, case_timeout_s=args.timeout, cpu_s_per_case=args.timeout,
                         memory_mb=args.memory_mb, landlock=not args.no_landlock, cuda=False if args.no_cuda else None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m autograder", description="Out-of-process, sandboxed notebook grader.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("grade", help="grade one notebook into a Gradescope results.json")
    p.add_argument("submission", type=Path, help="the submitted .ipynb")
    p.add_argument("--assignment", required=True, type=_assignment, help=", ".join(ASSIGNMENTS))
    p.add_argument("--out", required=True, type=Path, help="where to write results.json")
    p.add_argument("--seed", type=int, default=None, help="replay a run with this seed (default: from the hash of the extracted code)")
    p.add_argument("--functions", default=None, help="comma-separated subset of the graded functions")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    _sandbox_options(p)

    p = sub.add_parser("batch", help="grade every notebook under a folder into a CSV gradebook")
    p.add_argument("folder", type=Path)
    p.add_argument("--assignment", required=True, type=_assignment)
    p.add_argument("--out", required=True, type=Path, help="gradebook CSV")
    p.add_argument("--jobs", type=_positive_int, default=1, help="submissions graded in parallel (1)")
    p.add_argument("--cache-dir", type=Path, default=None, help="result cache (default: OUT.cache next to the CSV)")
    p.add_argument("--no-progress", action="store_true")
    _sandbox_options(p)

    p = sub.add_parser("gradescope", help="build a Gradescope autograder zip (setup.sh, run_autograder, sources)")
    p.add_argument("--assignment", required=True, type=_assignment)
    p.add_argument("--out", required=True, type=Path, help="the zip to write")
    p.add_argument("--salt-file", type=Path, default=None, metavar="PATH",
                   help="secret salt for the run seeds (first line of PATH), stored in the zip as "
                        "source/autograder_salt.txt; the AUTOGRADER_SALT variable, when set on Gradescope, wins")

    p = sub.add_parser("verify", help="solutions score full marks, untouched releases score zero")
    p.add_argument("--solutions", type=Path, default=None, help="folder of <name>/<name>.ipynb (default: solutions/)")
    p.add_argument("--assignments", type=Path, default=None, help="folder of released notebooks (default: assignments/)")
    _sandbox_options(p)

    p = sub.add_parser("bench", help="time the grader against nbgrader autograde on full notebooks")
    p.add_argument("--assignment", action="append", type=_assignment, help="repeatable (default: all four)")
    p.add_argument("--solutions", type=Path, default=None, help="folder of solution notebooks (default: solutions/)")
    p.add_argument("--no-nbgrader", action="store_true", help="skip the nbgrader autograde comparison")
    p.add_argument("--repeat", type=_positive_int, default=1, help="timed runs per notebook (1)")
    _sandbox_options(p)
    return parser


def _cmd_grade(args) -> int:
    if not args.submission.is_file():
        raise UsageError(f"no such notebook: {args.submission}")
    from .sandbox import Sandbox, SandboxConfig

    cfg = _config(args)
    cfg = SandboxConfig(**{**cfg.__dict__, "hide": (str(args.submission.resolve().parent), str(args.out.resolve().parent))})
    sandbox = Sandbox(cfg).start()                    # the zygote imports torch while this process does too
    try:
        from .feedback import summary_table
        from .grading import grade_notebook, grader_version
        from .results import error_results, results_json, write_json_atomic

        functions = tuple(f.strip() for f in args.functions.split(",") if f.strip()) if args.functions else None
        try:
            result = grade_notebook(args.submission, args.assignment, seed=args.seed, sandbox=sandbox, functions=functions)
        except ValueError as exc:                     # a bad --functions list
            raise UsageError(str(exc)) from None
        except Exception as exc:                      # the grader failed, not the student
            write_json_atomic(args.out, error_results(f"{type(exc).__name__}: {exc}", args.assignment))
            print(f"autograder: grader failure: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    finally:
        sandbox.close()                               # every worker is gone before the results are written
    protection = sandbox.protection_info
    results = results_json(result, grader_version())
    if protection:
        results["extra_data"]["sandbox"] = {k: v for k, v in protection.items() if k != "summary"}
    write_json_atomic(args.out, results)
    if not args.quiet:
        print(summary_table(result))
        if protection:
            print(f"sandbox: {protection['summary']}")
    return 0


def _cmd_batch(args) -> int:
    if not args.folder.is_dir():
        raise UsageError(f"no such folder: {args.folder}")
    from .batch import grade_batch
    from .sandbox import SandboxError

    try:
        summary = grade_batch(args.folder, args.assignment, args.out, jobs=args.jobs, cache_dir=args.cache_dir,
                              config=_config(args), progress=not args.no_progress)
    except ValueError as exc:                         # e.g. --jobs 2 in a mode that cannot isolate workers
        raise UsageError(str(exc)) from None
    except (SandboxError, OSError) as exc:
        print(f"autograder: batch failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"sandbox: {summary.sandbox}")
    print(f"{len(summary.rows)} submissions: {summary.graded} graded, {summary.cached} from the cache, "
          f"{summary.failed} with grader errors -> {args.out}")
    return 0


def _cmd_gradescope(args) -> int:
    from .gradescope import build_zip

    salt = None
    if args.salt_file is not None:
        try:
            lines = args.salt_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the salt file {args.salt_file}: {exc}") from None
        salt = lines[0].strip() if lines else ""
        if not salt:
            raise UsageError(f"the salt file {args.salt_file} is empty")
    path = build_zip(args.assignment, args.out, salt=salt)
    print(f"wrote {path}" + (" (with the salt from --salt-file)" if salt else ""))
    return 0


def _cmd_verify(args) -> int:
    from .verify import verify

    return verify(args.solutions, args.assignments, _config(args))


def _cmd_bench(args) -> int:
    from .bench import bench

    return bench(args.assignment or list(ASSIGNMENTS), args.solutions, not args.no_nbgrader, args.repeat, _config(args))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return {"grade": _cmd_grade, "batch": _cmd_batch, "gradescope": _cmd_gradescope, "verify": _cmd_verify,
                "bench": _cmd_bench}[args.command](args)
    except UsageError as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autograder: interrupted", file=sys.stderr)
        return 130
