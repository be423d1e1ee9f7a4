"""Does the grader grade every behaviour the contract states: detached queue writes and perturbed samples, the
defaults, the inputs the contract allows (no leading dims, size-1 dims, non-contiguous, a shared t_vals), the
pinned random draws, the white background, computing before earning, devices without a GPU, views and storage,
separable parts, NaN on purpose?

Each plausible bug in contract_impls.py breaks one such statement and nothing else; the grader before these checks
gave each full marks (or nearly: a detached loss kept 8.5, a momentum update that skips frozen parameters 9.25, a
sphere trace with wrong misses 2). Each must now lose the points of the check that grades the statement; correct
implementations in other styles (contract_correct.py) must keep full marks at several seeds. Every implementation
stands in for the student's function through the worker's own case runner (simulate.py).
"""
from __future__ import annotations

import pytest
import torch

import contract_correct
import contract_impls as impl
from autograder.registry import SPECS
from simulate import failures, score, simulate

SEEDS = (0, 7, 1234)


def _points(name: str, fn, seed: int = 1234):
    verdicts = simulate(SPECS[name], fn, seed)
    return score(SPECS[name], verdicts), verdicts


def _lost(verdicts, check: str) -> bool:
    return any(v.score < 1 for v in verdicts[check])


# ------------------------------------------------------------------------------------------------ 1
def test_a_queue_write_that_keeps_the_keys_graph_fails_the_detached_check():
    total, verdicts = _points("enqueue", impl.enqueue_keeps_graph)
    assert _lost(verdicts, "detached") and "requires grad" in verdicts["detached"][0].message
    assert total == pytest.approx(9.0)


def test_perturbed_samples_at_the_midpoints_fail_in_float32_too():
    total, verdicts = _points("sample_stratified", impl.stratified_ignores_perturb)
    assert all(v.score == 0 for v in verdicts["perturbed"])            # float32 and float64 cases alike
    assert {v.mistake for v in verdicts["perturbed"]} == {"perturb_ignored"}
    assert all(v.score == 0 for v in verdicts["defaults"])
    assert total <= 7.5


# ------------------------------------------------------------------------------------------------ 2
@pytest.mark.parametrize("name,fn", impl.WRONG_DEFAULTS, ids=lambda x: getattr(x, "__name__", x))
def test_a_wrong_default_loses_the_defaults_check(name, fn):
    total, verdicts = _points(name, fn)
    assert all(v.score == 0 for v in verdicts["defaults"]), failures(verdicts)
    assert total == pytest.approx(SPECS[name].points - SPECS[name].check("defaults").weight)


# ------------------------------------------------------------------------------------------------ 3
@pytest.mark.parametrize("name,fn,check", [
    ("attention_color_propagation", impl.attention_view, "layout"),
    ("volume_render", impl.volume_render_2d_deltas, "layout"),
    ("sample_stratified", impl.stratified_batch_from_origins, "layout"),
    ("get_rays", impl.get_rays_squeezed, "layout"),
    ("rotate_batch", impl.rotate_batch_view, "layout"),
    ("bilinear_sample_2d", impl.bilinear_flat_view, "size_one"),
], ids=lambda x: getattr(x, "__name__", x))
def test_an_implementation_that_assumes_a_layout_or_leading_dims_loses_points(name, fn, check):
    for seed in SEEDS:
        total, verdicts = _points(name, fn, seed)
        assert _lost(verdicts, check) and total < SPECS[name].points, (seed, failures(verdicts))


def test_the_worker_rebuilds_non_contiguous_arguments_with_the_same_values():
    from autograder.worker.runner import _build_args

    x = torch.randn(3, 4, 5, dtype=torch.float64)
    args, _ = _build_args({"args": [x, x, x, 2], "layout": {"0": "transposed", "1": "strided", "3": "strided"},
                           "grad_wrt": [1]}, "cpu")
    assert not args[0].is_contiguous() and not args[1].is_contiguous() and args[2].is_contiguous()
    assert torch.equal(args[0], x) and torch.equal(args[1].detach(), x) and args[1].requires_grad and args[3] == 2


# ------------------------------------------------------------------------------------------------ 4
@pytest.mark.parametrize("name,fn,check", [
    ("sample_pdf", impl.pdf_sorted_draws, "random"),
    ("sample_pdf", impl.pdf_shared_draws, "random"),
    ("sample_pdf", impl.pdf_linspace_without_generator, "random"),
    ("sample_stratified", impl.stratified_shared_draws, "perturbed"),
], ids=lambda x: getattr(x, "__name__", x))
def test_random_modes_are_compared_draw_for_draw_with_the_reference(name, fn, check):
    for seed in SEEDS:
        total, verdicts = _points(name, fn, seed)
        assert _lost(verdicts, check) and total <= SPECS[name].points - 0.5, (seed, failures(verdicts))


# ------------------------------------------------------------------------------------------------ 5
def test_a_white_background_only_on_empty_rays_loses_the_rgb_check():
    for seed in SEEDS:
        total, verdicts = _points("volume_render", impl.volume_white_only_empty, seed)
        assert _lost(verdicts, "rgb") and not _lost(verdicts, "values"), failures(verdicts)
        assert total <= 9.0


# ------------------------------------------------------------------------------------------------ 6
@pytest.mark.parametrize("name,fn,most", [
    ("discriminator_loss", impl.discriminator_detached, 5.0),
    ("info_nce_loss", impl.info_nce_as_float, 5.0),
    ("momentum_update", impl.momentum_skips_frozen, 8.0),
], ids=lambda x: getattr(x, "__name__", x))
def test_a_result_without_its_graph_or_a_partial_update_fails_the_value_cases(name, fn, most):
    total, verdicts = _points(name, fn)
    assert _lost(verdicts, "values") and total <= most, (total, failures(verdicts))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_function_that_only_raises_value_error_earns_nothing(name):
    spec = SPECS[name]

    def refuses(*args):
        raise ValueError(f"bad argument among {', '.join(spec.params)}")

    verdicts = simulate(spec, refuses, 5)
    assert all(v.score == 1 for v in verdicts["errors"])              # it names every argument ...
    assert score(spec, verdicts) == 0                                 # ... and still earns nothing


def test_zeros_of_the_right_shape_earn_nothing_for_being_detached():
    total, verdicts = _points("sample_pdf", impl.pdf_zeros)
    assert all(v.score == 1 for v in verdicts["detached"]) and total == 0


def test_every_errors_check_and_every_gradient_stop_check_is_gated():
    for spec in SPECS.values():
        for check in spec.checks:
            if check.name in ("errors", "dtype_device", "no_mutation", "detached", "stop_gradient") \
                    and not (spec.name == "enqueue" and check.name == "detached"):
                assert check.auxiliary, (spec.name, check.name)


# ------------------------------------------------------------------------------------------------ 7
@pytest.mark.parametrize("name,fn", [("get_rays", impl.get_rays_cpu_grid),
                                     ("volume_render", impl.volume_render_cpu_delta),
                                     ("sample_stratified", impl.stratified_cpu_draws),
                                     ("sphere_trace", impl.sphere_trace_cpu_state)],
                         ids=lambda x: getattr(x, "__name__", x))
def test_tensors_made_on_the_cpu_lose_the_device_cases_without_a_gpu(name, fn):
    total, verdicts = _points(name, fn)
    watched = [v for v in verdicts["dtype_device"] if "would fail with inputs on a GPU" in v.message]
    assert len(watched) == 2 and all(v.score == 0 for v in watched), failures(verdicts)
    assert total == pytest.approx(SPECS[name].points - SPECS[name].check("dtype_device").weight)


def test_every_reference_runs_clean_under_the_device_watch_in_every_case():
    from autograder.registry.core import Cases, materialize

    for name, spec in SPECS.items():
        for check in spec.checks:
            factory = Cases(name, check.name, 3)
            check.make(factory)
            for case in factory.items:
                if case.device == "cpu" and not case.meta.get("arg"):
                    case.watch_devices = True
                    assert not materialize(spec, case).ref_mixed, (name, case.id)
        if any(c.name == "dtype_device" for c in spec.checks):
            factory = Cases(name, "dtype_device", 3)
            spec.check("dtype_device").make(factory)
            assert [c.watch_devices for c in factory.items] == [True, True], name


def test_the_device_watch_lets_devices_taken_from_the_inputs_through():
    from autograder.worker.runner import DeviceWatch

    x = torch.randn(4, 3)
    with DeviceWatch() as watch:
        kw = dict(dtype=x.dtype, device=x.device)
        y = x + torch.arange(3, **kw) + torch.zeros_like(x) + x.new_ones(3) + torch.ones(3).to(x.device)
        y = y * torch.tensor(2.0) + x[torch.tensor([0, 1])].sum()        # 0-d CPU tensors and CPU indices are fine
    assert watch.mixed is None
    with DeviceWatch() as watch:
        torch.stack([x[:, 0], (torch.arange(4) * 2.0).to(x.dtype)])
    assert watch.mixed and watch.mixed.startswith("stack")


# ------------------------------------------------------------------------------------------------ 8
@pytest.mark.parametrize("name,fn,check", [
    ("get_rays", impl.get_rays_origin_view, "new_tensors"),
    ("relative_patch_pairs", impl.patches_center_view, "new_tensors"),
    ("positional_encoding", impl.encoding_returns_input, "new_tensors"),
    ("momentum_update", impl.momentum_replaces_data, "in_place"),
    ("enqueue", impl.enqueue_replaces_data, "in_place"),
], ids=lambda x: getattr(x, "__name__", x))
def test_views_of_inputs_and_replaced_storage_lose_their_check(name, fn, check):
    total, verdicts = _points(name, fn)
    assert _lost(verdicts, check), failures(verdicts)
    assert total == pytest.approx(SPECS[name].points - SPECS[name].check(check).weight * (
        sum(v.score < 1 for v in verdicts[check]) / len(verdicts[check])))


# ------------------------------------------------------------------------------------------------ 9
def test_exact_hits_with_wrong_misses_keep_the_hit_points():
    total, verdicts = _points("sphere_trace", impl.sphere_trace_last_t)
    assert not _lost(verdicts, "values") and all(v.score == 0 for v in verdicts["misses"])
    assert {v.mistake for v in verdicts["misses"]} == {"miss_t_not_far"}
    assert total >= 5.0                                               # the hits (values) and what needs no miss


def test_right_weights_with_a_wrong_rgb_keep_the_weight_points():
    total, verdicts = _points("volume_render", impl.volume_rgb_mean)
    assert not _lost(verdicts, "values") and all(v.score == 0 for v in verdicts["rgb"])
    assert total >= 4.0


# ------------------------------------------------------------------------------------------------ 10
def test_nan_on_purpose_is_graded_nan_equal():
    from autograder.registry.core import Cases, materialize

    spec = SPECS["bilinear_sample_2d"]
    factory = Cases(spec.name, "border", 3)
    spec.check("border").make(factory)
    nan_cases = [c for c in factory.items if c.equal_nan]
    assert nan_cases and all(bool(materialize(spec, c).ref_out.isnan().any()) for c in nan_cases)
    verdicts = simulate(spec, spec.reference, 3)["border"]
    assert all(v.score == 1 for v in verdicts)                      # the reference's own nan passes
    total, verdicts = _points("bilinear_sample_2d", impl.bilinear_nan_to_num)
    assert [v.score for v in verdicts["border"]] == [1.0] * (len(verdicts["border"]) - 1) + [0.0]
    assert total < spec.points


# ------------------------------------------------------------------------------------------------ correct code
@pytest.mark.parametrize("name,fn", contract_correct.CORRECT, ids=lambda x: getattr(x, "__name__", x))
def test_correct_implementations_in_other_styles_keep_full_marks(name, fn):
    for seed in SEEDS:
        verdicts = simulate(SPECS[name], fn, seed)
        assert score(SPECS[name], verdicts) == SPECS[name].points, (seed, failures(verdicts))
