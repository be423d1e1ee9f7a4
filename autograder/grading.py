"""Grade one notebook: extract, generate cases, run the student code in the sandbox, judge, collect results.

Seeds: the run seed is derived from the code the graded functions need (not the file's bytes),
the assignment and an optional secret salt (``AUTOGRADER_SALT``), so regrading the same code gives the same
inputs and the same scores, even after nbgrader or Jupyter rewrote outputs, metadata or markdown around it
(``nbgrader autograde`` and ``python -m autograder grade`` therefore agree); ``seed`` overrides it to replay
a run. Case seeds derive from the run seed, the function, the check and the case index.
"""
from __future__ import annotations

import ast
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import __version__, astnorm, sources_digest
from .notebook import Extraction, NotebookError, extract_notebook, loops_in, signature_of
from .registry import REGISTRY
from .registry.core import Case, Cases, FunctionSpec, Materialized, derive_seed, materialize
from .registry.judges import Context, Verdict, value as judge_value
from .sandbox import CaseOutcome, Sandbox, SandboxConfig

__all__ = ["GradeResult", "FunctionResult", "CheckResult", "grade_notebook", "grade_extraction", "run_seed", "grader_version"]


@dataclass
class CaseResult:
    case: Case
    m: Materialized
    verdict: Verdict
    outcome: CaseOutcome | None = None


@dataclass
class CheckResult:
    name: str
    title: str
    weight: float
    score: float
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.verdict.score >= 1.0)


@dataclass
class FunctionResult:
    name: str
    points: float
    score: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None                    # why nothing could be graded (missing function, bad notebook)
    mistakes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    maxrss_kb: int = 0


@dataclass
class GradeResult:
    assignment: str
    submission: str
    sha256: str
    seed: int
    functions: list[FunctionResult] = field(default_factory=list)
    notebook_error: str | None = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    worker_maxrss_kb: int = 0
    zygote_rss_kb: int = 0
    mode: str = ""
    version: str = ""

    @property
    def score(self) -> float:
        return round(sum(f.score for f in self.functions), 4)

    @property
    def max_score(self) -> float:
        return round(sum(f.points for f in self.functions), 4)


def grader_version() -> str:
    """The package version plus a hash of the grading code and the references (cache key for batch runs)."""
    return f"{__version__}+{sources_digest()[:12]}"


def run_seed(digest: str, assignment: str, salt: str | None = None) -> int:
    """The run seed for a submission whose code has ``digest`` (:func:`code_digest`)."""
    salt = os.environ.get("AUTOGRADER_SALT", "") if salt is None else salt
    return derive_seed(digest, assignment, salt)


def code_digest(ex: Extraction, names: list[str]) -> str:
    """sha256 of the normalised statements that the graded functions ``names`` need, in notebook order (what the
    seed depends on: other code, such as the import in nbgrader's hidden test cells, and comments, formatting or
    renamed locals in that code, do not change it)."""
    needed = {id(st): st for name in names for st in ex.program_for(name)}
    h = hashlib.sha256()
    for st in sorted(needed.values(), key=lambda st: st.order):
        try:                                  # normalised: a comment or a renamed local keeps the seed
            h.update(astnorm.digest(ast.parse(st.source)).encode())
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            h.update(st.source.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _worker_case(case: Case, m: Materialized) -> dict:
    """What the worker gets for one case: the arguments and the options that change how it rebuilds them
    (device, argument layouts, which require grad) and what it reports (gradients, arguments after the call, a
    second call, tensors made without the inputs' device). The worker seeds torch's global generator with ``seed``
    before every case."""
    return {"id": case.id, "args": m.wire_args, "kwargs": {}, "device": case.device, "seed": case.seed,
            "grad_wrt": list(case.grad_wrt), "grad_outputs": m.grad_outputs if case.grad else None,
            "return_inputs": case.return_inputs, "repeat": case.repeat,
            "layout": {str(i): kind for i, kind in case.layout.items()}, "watch_devices": case.watch_devices}


def build_cases(spec: FunctionSpec, seed: int, cuda: bool) -> list[tuple[str, Case, Materialized]]:
    out = []
    for check in spec.checks:
        factory = Cases(spec.name, check.name, seed, cuda)
        check.make(factory)
        for case in factory.items:
            out.append((check.name, case, materialize(spec, case)))
    return out


def grade_function(spec: FunctionSpec, ex: Extraction, sandbox: Sandbox, seed: int, cuda: bool) -> FunctionResult:
    fr = FunctionResult(name=spec.name, points=spec.points)
    st = ex.function(spec.name)
    if st is None:
        similar = ex.similar_names(spec.name)
        fr.problem = (f"the notebook defines no function named {spec.name}"
                      + (f" (found {', '.join(similar)}: renamed?)" if similar else "")
                      + ": keep the scaffold's name and signature")
        fr.checks = [CheckResult(c.name, c.title, c.weight, 0.0) for c in spec.checks]
        return fr
    params = [p.lstrip("*") for p in signature_of(st)]
    if params[: len(spec.params)] != list(spec.params):
        fr.notes.append(f"signature: the contract is {spec.name}({', '.join(spec.params)}), the notebook has "
                        f"{spec.name}({', '.join(signature_of(st))}); the grader passes arguments by position")
    loops = loops_in(st)
    if len(loops) > spec.loops_allowed:
        fr.notes.append(f"found Python loops/comprehensions in {spec.name} (cell {st.cell}, lines "
                        f"{', '.join(str(line) for line in loops[:5])}): the contract asks for vectorised code "
                        "(no loop over batch elements, pixels, rays or samples); not penalised by this grader")
    built = build_cases(spec, seed, cuda)
    program = [s.as_job() for s in ex.program_for(spec.name)]
    run = sandbox.run_function(spec.name, program, [_worker_case(c, m) for _, c, m in built])
    fr.wall_s, fr.maxrss_kb = run.wall_s, run.maxrss_kb
    if run.setup:
        provided = {(s.cell, s.line) for s in ex.statements if s.provided}
        for err in run.setup.get("errors", []):
            if (err.get("cell"), err.get("line")) in provided:
                continue                                        # only the student's own cells produce notes
            fr.notes.append(f"cell {err['cell']}, line {err['line']}: defining this raised {err['type']}: "
                            f"{err['message'][:200]}")
    by_check: dict[str, CheckResult] = {c.name: CheckResult(c.name, c.title, c.weight, 0.0) for c in spec.checks}
    for check_name, case, m in built:
        outcome = run.outcomes.get(case.id) or CaseOutcome(failure="no answer from the worker", kind="crash")
        judge = spec.check(check_name).judge or judge_value
        try:
            verdict = judge(Context(spec, case, m, outcome))
        except Exception as exc:                                  # a reply the judge could not read
            verdict = Verdict(0.0, f"the grader could not interpret the result ({type(exc).__name__}: {exc})")
        by_check[check_name].cases.append(CaseResult(case, m, verdict, outcome))
    values = by_check.get("values")
    computes = values is None or any(c.verdict.score > 0 for c in values.cases)
    for cr in by_check.values():
        if not cr.cases:
            continue
        if spec.check(cr.name).auxiliary and not computes:
            # dtype and no-mutation points only count for a function that computes something right
            for c in cr.cases:
                if c.verdict.score > 0:
                    c.verdict = Verdict(0.0, "not credited: the function fails every random value case")
        cr.score = round(cr.weight * sum(c.verdict.score for c in cr.cases) / len(cr.cases), 4)
    fr.checks = list(by_check.values())
    fr.score = round(min(spec.points, sum(c.score for c in fr.checks)), 2)
    fr.mistakes = sorted({c.verdict.mistake for cr in fr.checks for c in cr.cases if c.verdict.mistake})
    try:
        note = _constant_output_note(fr)
    except Exception:                                             # an odd reply: no note rather than a crash
        note = None
    if note:
        fr.notes.append(note)
    return fr


def _first_tensor(desc) -> torch.Tensor | None:
    if isinstance(desc, dict) and desc.get("t") == "tensor":
        return desc["data"]
    if isinstance(desc, dict) and desc.get("t") in ("tuple", "list") and desc["items"]:
        return _first_tensor(desc["items"][0])
    return None


def _constant_output_note(fr: FunctionResult) -> str | None:
    """Flag a function whose output does not change across the random value cases (a hard-coded answer)."""
    values = next((cr for cr in fr.checks if cr.name == "values"), None)
    if values is None or len(values.cases) < 3:
        return None
    got, want = [], []
    for c in values.cases:
        reply = c.outcome.reply if c.outcome else None
        t = _first_tensor(reply.get("out")) if reply and reply.get("status") == "ok" else None
        if t is None:
            return None
        got.append(t.reshape(-1).to(torch.float64))
        ref = c.m.ref_out[0] if isinstance(c.m.ref_out, (tuple, list)) else c.m.ref_out
        want.append(ref.reshape(-1).to(torch.float64) if isinstance(ref, torch.Tensor) else None)
    same = all(g.shape == got[0].shape and torch.equal(g, got[0]) for g in got[1:])
    ref_same = all(w is not None and w.shape == want[0].shape and torch.equal(w, want[0]) for w in want[1:])
    if same and not ref_same:
        return "the function returned the same output for every random input (a hard-coded answer?)"
    return None


def grade_extraction(ex: Extraction, assignment: str, seed: int, sandbox: Sandbox,
                     functions: tuple[str, ...] | None = None) -> list[FunctionResult]:
    cuda = sandbox.cuda
    specs = [s for s in REGISTRY[assignment] if not functions or s.name in functions]
    # Three functions at a time: while workers run, the grader computes the next function's references.
    with ThreadPoolExecutor(max_workers=min(3, len(specs) or 1)) as pool:
        return list(pool.map(lambda spec: grade_function(spec, ex, sandbox, seed, cuda), specs))


def grade_notebook(path: str | Path, assignment: str, *, seed: int | None = None, salt: str | None = None,
                   config: SandboxConfig | None = None, sandbox: Sandbox | None = None,
                   functions: tuple[str, ...] | None = None) -> GradeResult:
    """Grade ``path`` for ``assignment``. A notebook that cannot be read scores 0 with the reason.

    Raises:
        ValueError: for an unknown assignment or function name.
        FileNotFoundError: when ``path`` does not exist.
        SandboxError: when the sandbox itself cannot run (a grader failure, not the student's).
    """
    if assignment not in REGISTRY:
        raise ValueError(f"unknown assignment {assignment!r}; choose one of {', '.join(REGISTRY)}")
    names = [s.name for s in REGISTRY[assignment]]
    if functions:
        unknown = [f for f in functions if f not in names]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not graded in {assignment} (its functions: {', '.join(names)})")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such notebook: {path}")
    start = time.monotonic()
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    result = GradeResult(assignment=assignment, submission=str(path), sha256=sha,
                         seed=run_seed(sha, assignment, salt) if seed is None else int(seed), version=__version__)
    own = sandbox is None
    try:
        try:
            ex = extract_notebook(path)
        except NotebookError as exc:                   # scores 0 whatever the seed; the file's hash seeds it
            result.notebook_error = str(exc)
            result.functions = [FunctionResult(s.name, s.points, problem=f"the notebook could not be read: {exc}")
                                for s in REGISTRY[assignment] if not functions or s.name in functions]
            return result
        result.notes += ex.notes
        if seed is None:
            result.seed = run_seed(code_digest(ex, names), assignment, salt)
        if own:
            sandbox = Sandbox(config or SandboxConfig(hide=(str(path.resolve().parent),))).start()
        result.functions = grade_extraction(ex, assignment, result.seed, sandbox, functions)
        result.mode = sandbox.mode
        result.worker_maxrss_kb = max([f.maxrss_kb for f in result.functions] + [0])
        result.zygote_rss_kb = sandbox.zygote_rss_kb()
    finally:
        if own and sandbox is not None:
            sandbox.close()
        result.elapsed_s = time.monotonic() - start
    return result
