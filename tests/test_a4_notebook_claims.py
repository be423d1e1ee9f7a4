"""Do the a4 notebook's statements about its contracts hold: the width of the positional encoding with and without
x (NeRF's 60 columns against our 63 for L = 10), and how far the softplus's argument must fall before the 1e10
last interval lets the background through (Question 2)?"""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import positional_encoding, volume_render


def test_nerfs_gamma_has_60_columns_for_a_point_at_l_10_and_ours_appends_x():
    x = torch.rand(5, 3)
    ours = positional_encoding(x, 10)
    paper = positional_encoding(x, 10, include_input=False)
    assert ours.shape[-1] == 63 and paper.shape[-1] == 60
    torch.testing.assert_close(ours, torch.cat([x, paper], -1))


def _background(argument: float, dtype) -> float:
    """1 - sum of the weights of a ray whose 32 samples in [2, 6] all have density softplus(argument)."""
    t = torch.linspace(2.0, 6.0, 32, dtype=dtype)[None]
    sigma = F.softplus(torch.full((1, 32), argument, dtype=dtype))
    _, w = volume_render(sigma, torch.zeros(1, 32, 3, dtype=dtype), t)
    return float(1 - w.sum())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_softplus_background_term_is_near_0_only_above_about_minus_21(dtype):
    assert _background(-21.0, dtype) < 1e-3
    assert _background(-23.0, dtype) == pytest.approx(math.exp(-1.03), abs=0.02)
    assert _background(-27.0, dtype) > 0.97
