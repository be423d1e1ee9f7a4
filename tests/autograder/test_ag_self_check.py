"""Does the students' self-check, which judges against stored answers, pass the references, give the same verdicts
as judging against the live reference on every known mistake, fail wrong code with readable lines, and treat an
untouched scaffold kindly?"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

import course_lib
from autograder.registry import SPECS
from course_lib.checks import _compare, _outputs, check, checked_functions, run_cases

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import selfcheck_data  # noqa: E402

NAMES = sorted(SPECS)


def test_there_is_a_self_check_for_every_graded_function_and_its_stored_answers_are_current():
    assert set(checked_functions()) == {n for names in course_lib.GRADED_FUNCTIONS.values() for n in names}
    assert selfcheck_data.main(["check"]) == 0, "run `make notebooks` (scripts/selfcheck_data.py build)"


def _live_verdicts(spec, fn) -> list[bool]:
    """PASS/FAIL per public case, judged against the reference called now (no stored data)."""
    names = selfcheck_data.output_names(spec.reference)
    verdicts = []
    for case in spec.public:
        args = case.args()
        if case.expect == "raises":
            try:
                fn(*copy.deepcopy(args))
            except ValueError:
                verdicts.append(True)
            except Exception:                                   # noqa: BLE001
                verdicts.append(False)
            else:
                verdicts.append(False)
            continue
        mine, ref_args = copy.deepcopy(args), copy.deepcopy(args)
        try:
            out = fn(*mine)
        except Exception:                                       # noqa: BLE001
            verdicts.append(False)
            continue
        if case.expect == "value":
            got = out.item() if isinstance(out, torch.Tensor) and out.numel() == 1 else out
            verdicts.append(isinstance(got, float) and abs(got - case.value) <= 1e-6 + 1e-5 * abs(case.value))
            continue
        want = spec.reference(*ref_args)
        ok = all(_compare(g, w, where) is None for g, w, where in _outputs(out, want, names))
        for i, (a, b, orig) in enumerate(zip(mine, ref_args, args)):
            if i in spec.mutated:
                ok = ok and _compare(a, b, "after") is None
            elif isinstance(orig, torch.Tensor):
                ok = ok and torch.equal(a, orig)
        verdicts.append(ok)
    return verdicts


@pytest.mark.parametrize("name", NAMES)
def test_stored_answers_give_the_live_verdicts_for_the_reference_and_every_known_mistake(name):
    spec = SPECS[name]
    for label, fn in [("reference", spec.reference)] + [(m.name, m.fn) for m in spec.mistakes]:
        stored = [why is None for _, why in run_cases(name, fn)]
        assert stored == _live_verdicts(spec, fn), f"{name}, {label}"
        if label == "reference":
            assert all(stored)


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_passes_its_self_check_quietly(name, capsys):
    assert check(name, getattr(course_lib, name), strict=True) is None     # nothing echoed after the lines
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS") >= 2


def test_an_untouched_scaffold_stops_the_notebook_with_a_friendly_message():
    def nt_xent_loss(z_a, z_b, temperature=0.5):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="nt_xent_loss is not implemented yet") as info:
        check("nt_xent_loss", nt_xent_loss)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_wrong_code_fails_with_a_named_output_and_expected_vs_got(capsys):
    def rotate_batch(images):                                  # clockwise, and no check of H == W
        n = images.shape[0]
        rot = torch.stack([torch.rot90(images, -k, dims=(-2, -1)) for k in range(4)], 1)
        return rot.reshape(4 * n, *images.shape[1:]), torch.arange(4).repeat(n)

    with pytest.raises(AssertionError, match="rotate_batch fails 3 of 3"):
        check("rotate_batch", rotate_batch, strict=True)
    lines = capsys.readouterr().out.splitlines()
    assert any(line.strip().startswith("FAIL") and "a 2x2 image" in line
               and "rotated: expected [[[[1.0, 2.0], [3.0, 4.0]]], [[[2.0, 4.0]" in line for line in lines)
    assert any("H != W raises ValueError" in line and "FAIL" in line for line in lines)


def test_a_mutating_function_is_compared_on_what_it_mutates(capsys):
    def enqueue(queue, ptr, keys):                              # forgets to wrap around
        n = keys.shape[0]
        queue[ptr : ptr + n] = keys[: queue.shape[0] - ptr]
        return (ptr + n) % queue.shape[0]

    check("enqueue", enqueue)
    out = capsys.readouterr().out
    assert "FAIL  wrap-around" in out and "queue after the call" in out


def test_an_input_modified_in_place_is_named(capsys):
    def volume_render(sigmas, colors, t_vals, white_background=False):
        out = course_lib.volume_render(sigmas.clone(), colors, t_vals, white_background)
        sigmas.zero_()                                          # right answer, but the input is overwritten
        return out

    check("volume_render", volume_render)
    assert "sigmas was modified in place" in capsys.readouterr().out


def test_an_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="no self-check"):
        check("not_a_function", lambda: None)


def test_the_self_check_leaves_the_global_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check("momentum_update", course_lib.momentum_update)
    assert torch.equal(torch.rand(3), expected)
