"""Does the students' self-check pass the references, fail wrong code with readable lines, and treat an untouched
scaffold kindly?"""
from __future__ import annotations

import pytest
import torch

import course_lib
from course_lib.checks import CHECKED_FUNCTIONS, check


def test_there_is_a_self_check_for_every_graded_function():
    assert set(CHECKED_FUNCTIONS) == {n for names in course_lib.GRADED_FUNCTIONS.values() for n in names}


@pytest.mark.parametrize("name", sorted(CHECKED_FUNCTIONS))
def test_every_reference_passes_its_self_check(name, capsys):
    assert check(name, getattr(course_lib, name)) is True
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS") >= 2


def test_an_untouched_scaffold_stops_the_notebook_with_a_friendly_message():
    def nt_xent_loss(z_a, z_b, temperature=0.5):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="nt_xent_loss is not implemented yet") as info:
        check("nt_xent_loss", nt_xent_loss)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_wrong_code_fails_with_a_reason_per_case(capsys):
    def rotate_batch(images):                                  # clockwise, and no check of H == W
        n = images.shape[0]
        rot = torch.stack([torch.rot90(images, -k, dims=(-2, -1)) for k in range(4)], 1)
        return rot.reshape(4 * n, *images.shape[1:]), torch.arange(4).repeat(n)

    assert check("rotate_batch", rotate_batch) is False
    lines = capsys.readouterr().out.splitlines()
    assert any(line.strip().startswith("FAIL") and "values differ" in line for line in lines)
    assert any("H != W raises ValueError" in line and "FAIL" in line for line in lines)


def test_a_mutating_function_is_compared_on_what_it_mutates_and_inputs_stay_untouched(capsys):
    def enqueue(queue, ptr, keys):                              # forgets to wrap around
        n = keys.shape[0]
        queue[ptr : ptr + n] = keys[: queue.shape[0] - ptr]
        return (ptr + n) % queue.shape[0]

    assert check("enqueue", enqueue) is False
    assert "wrap-around" in capsys.readouterr().out


def test_an_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="no self-check"):
        check("not_a_function", lambda: None)


def test_the_self_check_leaves_the_global_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check("momentum_update", course_lib.momentum_update)
    assert torch.equal(torch.rand(3), expected)
