"""The data model of the hidden checks: functions, checks, cases, known mistakes.

A :class:`FunctionSpec` holds, for one graded function, its points, its contract signature, the reference from
course_lib, a list of :class:`CheckSpec` (each a weight, a case generator and a judge) and a list of
:class:`Mistake` variants (wrong implementations computed in the grader, to name the bug when the student's
output matches one).

A :class:`Case` is written as *code*: a recipe of ``name = expression`` lines evaluated in the grader with a
seeded ``torch.Generator`` ``g``, and the call's argument expressions. The same text is shown to the student
as a replay snippet, so the one example a failed check prints can be run locally as it is.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..worker import specials
from ..worker.runner import DeviceWatch, apply_layout, surrogate

__all__ = ["Special", "Case", "CheckSpec", "Mistake", "mistake", "PublicCase", "FunctionSpec", "Cases", "derive_seed", "Materialized",
           "materialize"]


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts (stable across runs and machines)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


@dataclass
class Special:
    """An argument rebuilt from a spec on both sides (sdf, module, generator); ``replay`` is its code."""

    spec: dict
    replay: str

    def build(self) -> Any:
        return specials.build_special(self.spec)


def sdf_code(spec: dict, var: str = "p") -> str:
    """The menu SDF as a Python expression of ``var`` (for replay snippets)."""
    kind = spec["kind"]
    vec = lambda key: f"torch.tensor({list(map(float, spec[key]))})"  # noqa: E731
    if kind == "sphere":
        return f"({var} - {vec('center')}).norm(dim=-1) - {float(spec['radius'])}"
    if kind == "box":
        q = f"(({var} - {vec('center')}).abs() - {vec('half')})"
        return f"({q}.clamp(min=0).norm(dim=-1) + {q}.max(dim=-1).values.clamp(max=0))"
    if kind == "plane":
        return f"({var} * {vec('normal')}).sum(-1) + {float(spec['offset'])}"
    if kind in ("union", "intersection"):
        op = "torch.minimum" if kind == "union" else "torch.maximum"
        expr = sdf_code(spec["parts"][0], var)
        for part in spec["parts"][1:]:
            expr = f"{op}({expr}, {sdf_code(part, var)})"
        return expr
    if kind == "translate":
        return sdf_code(spec["inner"], f"({var} - {vec('shift')})")
    raise ValueError(f"unknown sdf kind {kind!r}")


def _sdf(spec: dict) -> Special:
    return Special({"__special__": "sdf", "spec": spec}, "{name} = lambda p: " + sdf_code(spec))


def _gen(seed: int) -> Special:
    return Special({"__special__": "generator", "seed": int(seed)}, "{name} = torch.Generator().manual_seed(" + str(int(seed)) + ")")


_LAYER_CODE = {"linear": "torch.nn.Linear({})", "bn1d": "torch.nn.BatchNorm1d({})", "conv2d": "torch.nn.Conv2d({})",
               "relu": "torch.nn.ReLU()"}


def _module(arch: list, g: torch.Generator, dtype: torch.dtype = torch.float64, frozen: tuple = (),
            buffers_scale: float = 0.0) -> Special:
    """An ``nn.Sequential`` whose parameters (then, with ``buffers_scale``, BatchNorm statistics) are drawn from
    ``g`` in registration order."""
    spec_arch = [list(a) for a in arch]
    net = specials.build_module({"arch": spec_arch, "state": None, "frozen": []}).to(dtype)
    state = {}
    for name, p in net.named_parameters():
        state[name] = torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype)
    for name, b in net.named_buffers():
        if b.is_floating_point() and buffers_scale:
            state[name] = (torch.rand(b.shape, generator=g, dtype=torch.float64) * buffers_scale).to(dtype)
        else:
            state[name] = b.detach().clone()
    spec = {"__special__": "module", "arch": spec_arch, "state": state, "frozen": list(frozen)}
    layers = ", ".join(_LAYER_CODE[a[0]].format(", ".join(str(x) for x in a[1:])) for a in arch)
    lines = [
        "{name} = torch.nn.Sequential(" + layers + f").to({dtype})",
        "with torch.no_grad():",
        "    for p_ in {name}.parameters(): p_.copy_(torch.randn(p_.shape, generator=g, dtype=torch.float64))",
    ]
    if buffers_scale:
        lines.append("    for b_ in {name}.buffers():")
        lines.append("        if b_.is_floating_point(): "
                     f"b_.copy_(torch.rand(b_.shape, generator=g, dtype=torch.float64) * {buffers_scale})")
    if frozen:
        lines.append("for n_, p_ in {name}.named_parameters(): p_.requires_grad_(n_ not in " + repr(list(frozen)) + ")")
    return Special(spec, "\n".join(lines))


RECIPE_ENV = {"torch": torch, "math": math, "F": F, "SDF": _sdf, "GEN": _gen, "MODULE": _module}


@dataclass
class Case:
    id: str
    recipe: list[tuple[str, str]]           # (name, expression) evaluated in order
    call: list[str]                         # positional argument expressions
    seed: int
    note: str = ""
    device: str = "cpu"
    grad_wrt: tuple[int, ...] = ()          # argument positions that get requires_grad=True
    grad: bool = False                      # send grad_outputs and compare input gradients
    return_inputs: bool = False
    repeat: bool = False                    # call twice on fresh inputs (same generator seed) to test determinism
    meta: dict = field(default_factory=dict)
    layout: dict = field(default_factory=dict)   # argument position -> "transposed" | "strided" (same values)
    global_rng: bool = False                # torch.manual_seed(seed) right before the call, in the worker and for
                                            # the reference (random modes called without a generator)
    equal_nan: bool = False                 # the reference returns NaN on purpose: NaN equals NaN
    watch_devices: bool = False             # report a tensor made without the inputs' device meeting them

    def replay(self, function: str, inputs: dict) -> str:
        """Code that rebuilds this case's inputs and calls the function (with the argument layouts, the inputs
        that require grad and the global seed the worker used)."""
        lines = [f"g = torch.Generator().manual_seed({self.seed})"]
        for name, expr in self.recipe:
            value = inputs.get(name)
            lines.append(value.replay.replace("{name}", name) if isinstance(value, Special) else f"{name} = {expr}")
        call = list(self.call)
        for i, kind in sorted(self.layout.items()):
            call[i] = LAYOUT_CODE[kind].format(f"({call[i]})" if not call[i].isidentifier() else call[i])
        for i in self.grad_wrt:
            if call[i].isidentifier() and not isinstance(inputs.get(call[i]), Special):
                lines.append(f"{call[i]}.requires_grad_(True)")
        if self.global_rng:
            lines.append(f"torch.manual_seed({self.seed})")
        lines.append(f"{function}({', '.join(call)})")
        return "\n".join(lines)


# the replay text of each argument layout (what runner.apply_layout does)
LAYOUT_CODE = {"transposed": "{0}.mT.contiguous().mT", "strided": "torch.stack([{0}, {0}], -1)[..., 0]"}


@dataclass
class Mistake:
    """A known wrong implementation: ``variant(*reference_args, **flags)``.

    ``variant`` is self-contained (torch, F, math and helpers of its own module only), so the same entry serves
    the judges (computed in the grader on the case's inputs), the sample submissions and the test fixtures
    (written out as notebook code with :meth:`body`): one catalogue of mistakes.
    """

    name: str
    message: str                            # what the student probably did, and how to fix it
    variant: Callable                       # wrong implementation: the reference's arguments, then flags
    flags: dict = field(default_factory=dict)
    grads: bool = False                     # compare gradients (a mistake that only shows in backward)

    @property
    def fn(self) -> Callable:
        return functools.partial(self.variant, **self.flags) if self.flags else self.variant

    def body(self, params: tuple[str, ...] | list[str]) -> str:
        """The body of a submitted function with these ``params`` that makes this mistake (indent 0)."""
        from course_lib.sourcegen import call_body

        return call_body(self.variant, list(params), **self.flags)


def mistake(name: str, message: str, variant: Callable, *, grads: bool = False, **flags) -> Mistake:
    """``Mistake(name, message, variant, flags)``: the variant called with keyword ``flags``."""
    return Mistake(name, message, variant, flags, grads)


@dataclass
class CheckSpec:
    name: str
    title: str                              # the property, as a student reads it
    weight: float
    make: Callable[["Cases"], None]         # adds cases to the factory
    judge: Callable | None = None           # default: judges.value
    auxiliary: bool = False                 # worth nothing unless the function gets some value case right


@dataclass
class PublicCase:
    """One case of the students' self-check (``course_lib.checks.check``): small, fixed and public.

    ``args()`` makes fresh inputs: tensors, Python numbers, bools, None, lists of ints, an ``nn.Sequential`` of
    Linear / ReLU / BatchNorm1d layers, or a ``course_lib.checks.Sphere``. The expected answers are computed
    from the reference when the self-check data is built (scripts/selfcheck_data.py) and stored as JSON, so the
    student edition can check without the reference.
    """

    label: str                               # what the student reads on the PASS/FAIL line
    args: Callable[[], tuple]
    expect: str = "reference"                # reference | raises | value
    value: float | None = None               # the closed-form answer for expect == "value"


@dataclass
class FunctionSpec:
    name: str
    assignment: str
    points: float
    params: tuple[str, ...]
    reference: Callable
    checks: list[CheckSpec]
    mistakes: list[Mistake]
    mutated: tuple[int, ...] = ()           # arguments the function exists to mutate
    observe: Callable[[Any, list], Any] | None = None   # (out, args_after) -> what is compared
    loops_allowed: int = 0                  # Python loops that are fine (sphere_trace loops over steps)
    tolerances: dict = field(default_factory=dict)      # dtype -> (rtol, atol) overrides
    public: list[PublicCase] = field(default_factory=list)   # the self-check's cases

    def check(self, name: str) -> CheckSpec:
        return next(c for c in self.checks if c.name == name)

    def tolerance(self, dtype: torch.dtype) -> tuple[float, float]:
        if dtype in self.tolerances:
            return self.tolerances[dtype]
        if dtype == torch.float64:
            return (1e-6, 1e-8)
        if dtype in (torch.float16, torch.bfloat16):
            return (1e-2, 1e-2)
        return (1e-4, 1e-5)


class Cases:
    """Collects the cases of one check; ``rng`` picks sizes and hyper-parameters reproducibly."""

    def __init__(self, function: str, check: str, run_seed: int, cuda: bool = False):
        self.function, self.check, self.run_seed, self.cuda = function, check, run_seed, cuda
        self.rng = random.Random(derive_seed(run_seed, function, check))
        self.items: list[Case] = []

    def add(self, recipe: str, call: list[str] | str, note: str = "", **options) -> Case:
        lines = []
        for raw in recipe.strip().splitlines():
            raw = raw.strip()
            if raw:
                name, expr = raw.split(" = ", 1)
                lines.append((name.strip(), expr.strip()))
        if isinstance(call, str):
            call = [c.strip() for c in call.split(",")]
        k = len(self.items)
        case = Case(id=f"{self.check}/{k}", recipe=lines, call=list(call), note=note,
                    seed=derive_seed(self.run_seed, self.function, self.check, k), **options)
        self.items.append(case)
        return case

    def dtype(self, k: int | None = None) -> str:
        """Alternate float32 / float64 (or pick at random)."""
        if k is None:
            return self.rng.choice(["float32", "float64"])
        return ("float32", "float64")[k % 2]

    def randint(self, a: int, b: int) -> int:
        return self.rng.randint(a, b)

    def choice(self, seq):
        return self.rng.choice(list(seq))


@dataclass
class Materialized:
    """A case's live inputs in the grader and the reference's answers."""

    inputs: dict
    args: list                               # live argument values (specials built)
    wire_args: list                          # what the worker gets
    ref_out: Any = None
    ref_error: BaseException | None = None
    ref_after: list | None = None            # arguments after the reference call
    ref_grads: list | None = None            # gradients wrt grad_wrt args (None entries allowed)
    grad_outputs: list | None = None         # one per flattened tensor output (None for non-float)
    ref_requires_grad: list | None = None    # per flattened tensor output: does the reference's require grad?
    ref_mixed: str | None = None             # watched cases: the reference itself mixed devices (then not watched)
    truth_out: Any = None                    # float32 cases: the reference on the inputs in float64 (the truth)
    truth_grads: list | None = None          # ... and its gradients for the same grad_outputs

    def fresh_args(self) -> list:
        return [_fresh(a) for a in self.args]


def _fresh(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, Special):
        return value
    return copy.deepcopy(value)


def build_arg(value: Any) -> Any:
    return value.build() if isinstance(value, Special) else value


def flat_tensors(value: Any) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flat_tensors(v)]
    return []


def materialize(spec: FunctionSpec, case: Case) -> Materialized:
    """Evaluate the recipe, run the reference (with gradients when asked), pick grad_outputs."""
    g = torch.Generator().manual_seed(case.seed)
    env = dict(RECIPE_ENV, g=g)
    inputs: dict[str, Any] = {}
    for name, expr in case.recipe:
        inputs[name] = env[name] = eval(expr, env)  # noqa: S307 - our own recipe text, never student input
    args = [eval(expr, env) for expr in case.call]  # noqa: S307
    wire_args = [a.spec if isinstance(a, Special) else a for a in args]
    m = Materialized(inputs=inputs, args=args, wire_args=wire_args)
    live = _live(args, case)
    try:
        if case.watch_devices:
            recorder = DeviceWatch()
            with recorder:
                m.ref_out = _call(spec.reference, live, case)
            m.ref_mixed = recorder.mixed
        else:
            m.ref_out = _call(spec.reference, live, case)
    except Exception as exc:                  # an error case: the reference raises ValueError
        m.ref_error = exc
        return m
    m.ref_requires_grad = [bool(o.requires_grad) for o in flat_tensors(m.ref_out)]
    m.ref_after = [_detached(a) for a in live]
    if case.grad:
        outs = flat_tensors(m.ref_out)
        g2 = torch.Generator().manual_seed(case.seed ^ 0x5EED)
        m.grad_outputs = [torch.randn(o.shape, generator=g2, dtype=torch.float64).to(o.dtype)
                          if o.is_floating_point() else None for o in outs]
        pairs = [(o, go) for o, go in zip(outs, m.grad_outputs) if go is not None and o.requires_grad]
        wrt = [live[i] for i in case.grad_wrt]
        if pairs:
            grads = torch.autograd.grad(surrogate(pairs), wrt, allow_unused=True)
            m.ref_grads = [None if gr is None else gr.detach() for gr in grads]
        else:
            m.ref_grads = [None] * len(wrt)
    m.ref_out = _detached(m.ref_out)
    _float64_truth(spec, case, m)
    if case.global_rng:                       # draws of another dtype are other numbers: no float64 truth
        m.truth_out, m.truth_grads = None, None
    return m


_GLOBAL_RNG = threading.Lock()                # the grader judges several functions at once; one global generator


def _live(args: list, case: Case) -> list:
    """Fresh live arguments as the worker builds them (on the CPU: the grader computes CUDA cases there too):
    specials built, the argument layouts applied, requires_grad set."""
    live = [build_arg(_fresh(a)) for a in args]
    for i, kind in case.layout.items():
        live[i] = apply_layout(live[i], kind)
    for i in case.grad_wrt:
        live[i] = live[i].detach().requires_grad_(True)
    return live


def _call(fn: Callable, live: list, case: Case) -> Any:
    """``fn(*live)``; for a ``global_rng`` case with the global generator seeded as the worker seeds it (and
    restored afterwards)."""
    if not case.global_rng:
        return fn(*live)
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(case.seed)
        return fn(*live)


_LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


def _upcast(value: Any) -> Any:
    """A float64 copy of an argument (tensors and modules); None when the argument cannot be upcast faithfully
    (a generator: its draws depend on the dtype)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64) if value.dtype in _LOW_PRECISION else value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value).double()
    if isinstance(value, torch.Generator):
        return None
    return copy.deepcopy(value)


def _float64_truth(spec: FunctionSpec, case: Case, m: Materialized) -> None:
    """For a case with low-precision inputs, the reference's answer computed in float64 (judges compare float32
    results with it, allowing the reference's own float32 error)."""
    live = [build_arg(_fresh(a)) for a in m.args]
    low = any(isinstance(a, torch.Tensor) and a.dtype in _LOW_PRECISION for a in live)
    if not low or case.device != "cpu":
        return
    up = [_upcast(a) for a in live]
    if any(u is None and a is not None for u, a in zip(up, live)):
        return
    for i in case.grad_wrt:
        up[i] = up[i].requires_grad_(True)
    try:
        out = spec.reference(*up)
        if case.grad and m.grad_outputs is not None:
            outs = flat_tensors(out)
            pairs = [(o, go.to(torch.float64)) for o, go in zip(outs, m.grad_outputs)
                     if go is not None and o.requires_grad and o.shape == go.shape]
            wrt = [up[i] for i in case.grad_wrt]
            grads = torch.autograd.grad(surrogate(pairs), wrt, allow_unused=True) if pairs else [None] * len(wrt)
            m.truth_grads = [None if gr is None else gr.detach() for gr in grads]
    except Exception:                          # the float64 path fails (an op without float64): no truth
        m.truth_grads = None
        return
    m.truth_out = _detached(out)


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return {"t": "module", **specials.module_state(value)}
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(v) for v in value)
    return value


def run_variant(fn: Callable, m: Materialized, case: Case) -> tuple[Any, list | None, list | None]:
    """A mistake variant on fresh copies of the inputs: (out, args_after, grads) or raises."""
    live = _live(m.args, case)
    out = _call(fn, live, case)
    grads = None
    if case.grad and m.grad_outputs is not None:
        outs = flat_tensors(out)
        pairs = [(o, go) for o, go in zip(outs, m.grad_outputs)
                 if go is not None and isinstance(o, torch.Tensor) and o.requires_grad and o.shape == go.shape]
        wrt = [live[i] for i in case.grad_wrt]
        grads = list(torch.autograd.grad(surrogate(pairs), wrt, allow_unused=True)) if pairs else [None] * len(wrt)
    return _detached(out), [_detached(a) for a in live], grads
