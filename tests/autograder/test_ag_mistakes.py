"""Is every known mistake named when a submission makes it, and does the reference pass every check?

Each registry entry lists wrong implementations (Mistake.fn). Standing in for the student's function (through
the worker's own case runner, see simulate.py), each must lose points and be named by at least one verdict,
and the reference must score every case. Two mistakes are also written out as notebook code and graded
end to end, to show the names reach the results.json.
"""
from __future__ import annotations

import pytest

import course_lib
from autograder.registry import REGISTRY
from autograder.results import results_json
from autograder.grading import grade_notebook
from nbfactory import ENQUEUE_DROPS, NT_XENT_NO_MASK, with_functions, write
from simulate import simulate

SPECS = [spec for specs in REGISTRY.values() for spec in specs]


def test_the_registry_covers_every_graded_function_in_contract_order_with_two_mistakes_each():
    assert {a: [s.name for s in specs] for a, specs in REGISTRY.items()} == {
        a: list(names) for a, names in course_lib.GRADED_FUNCTIONS.items()}
    for spec in SPECS:
        assert len(spec.mistakes) >= 2, spec.name
        assert abs(sum(c.weight for c in spec.checks) - spec.points) < 1e-9, spec.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_reference_passes_every_case_of_every_check(spec):
    verdicts = simulate(spec, spec.reference)
    failed = {name: v.message for name, vs in verdicts.items() for v in vs if v.score < 1}
    assert not failed


@pytest.mark.parametrize("spec,mistake", [(s, m) for s in SPECS for m in s.mistakes],
                         ids=lambda x: getattr(x, "name", None))
def test_each_known_mistake_loses_points_and_is_named(spec, mistake):
    verdicts = simulate(spec, mistake.fn)
    named = [v for vs in verdicts.values() for v in vs if v.mistake == mistake.name]
    lost = [v for vs in verdicts.values() for v in vs if v.score < 1]
    assert lost, f"{mistake.name} passes every check"
    assert named, f"{mistake.name} is never named; first failures: {[v.message for v in lost[:3]]}"
    assert mistake.message in named[0].message


def test_mistakes_in_real_notebook_code_are_named_in_results_json(sandbox, tmp_path):
    nb = write(with_functions("a3_contrastive", {"nt_xent_loss": NT_XENT_NO_MASK, "enqueue": ENQUEUE_DROPS}),
               tmp_path / "mistakes.ipynb")
    res = results_json(grade_notebook(nb, "a3_contrastive", sandbox=sandbox))
    tests = {t["extra_data"]["function"]: t for t in res["tests"]}
    assert "no_self_mask" in tests["nt_xent_loss"]["extra_data"]["mistakes"]
    assert "without masking the self-similarity" in tests["nt_xent_loss"]["output"]
    assert "drops" in tests["enqueue"]["extra_data"]["mistakes"]
    assert 0 < tests["enqueue"]["score"] < 10                          # right where nothing wraps around
    assert tests["nt_xent_loss"]["score"] == 0                        # wrong on every value case: nothing gated counts
    assert tests["info_nce_loss"]["score"] == 10


def _same(a, b) -> bool:
    import torch

    from autograder.registry.core import Special

    if isinstance(b, Special):
        built = b.build()
        if isinstance(built, torch.nn.Module):
            return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), built.state_dict().values())) and \
                [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in built.parameters()]
        if isinstance(built, torch.Generator):
            return torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=built))
        pts = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
        return torch.allclose(a(pts), built(pts))
    if isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        if b.is_floating_point():                                       # NaN inputs on purpose: NaN equals NaN
            return bool(torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
        return torch.equal(a, b)
    return a == b


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_replay_snippets_rebuild_exactly_the_inputs_the_worker_got(spec):
    import torch
    import torch.nn.functional as F

    from autograder.registry.core import Cases, materialize

    for check in spec.checks:
        factory = Cases(spec.name, check.name, 99)
        check.make(factory)
        for case in factory.items:
            m = materialize(spec, case)
            code = case.replay(spec.name, m.inputs).splitlines()
            assert code[-1].startswith(f"{spec.name}(")
            namespace = {"torch": torch, "F": F, spec.name: lambda *a: a}     # the call returns its arguments
            exec("\n".join(code[:-1]), namespace)                       # the snippet, minus the call
            args = eval(code[-1], namespace)                           # noqa: S307 - our own replay text
            assert len(args) == len(m.args) and all(_same(a, b) for a, b in zip(args, m.args)), (spec.name, case.id)
            for i, kind in case.layout.items():                        # the replay lays the argument out as the worker
                assert not args[i].is_contiguous() or args[i].dim() == 0, (spec.name, case.id, kind)
            for i in case.grad_wrt:
                assert isinstance(args[i], torch.nn.Module) or args[i].requires_grad, (spec.name, case.id, i)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_mistake_variant_with_its_default_flags_is_the_reference(spec):
    """A variant differs from the reference only by its flag: otherwise a numerical slip in the variant would make
    the judges name a mistake the student did not make."""
    import inspect

    import torch

    from autograder.registry.core import Cases, materialize, run_variant
    from autograder.registry.judges import _plain_compare

    variants = {m.variant for m in spec.mistakes if m.flags}
    variants = [v for v in variants if all(p.default is not inspect.Parameter.empty
                                           for p in inspect.signature(v).parameters.values()
                                           if p.kind is inspect.Parameter.KEYWORD_ONLY)]
    factory = Cases(spec.name, "values", 5)
    spec.check("values").make(factory)
    for case in factory.items:
        m = materialize(spec, case)
        for variant in variants:
            with torch.enable_grad():
                out, after, _ = run_variant(variant, m, case)
            got = spec.observe(out, after) if spec.observe else out
            want = spec.observe(m.ref_out, m.ref_after) if spec.observe else m.ref_out
            assert not _plain_compare(got, want, spec), (variant.__name__, case.note)
