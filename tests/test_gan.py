"""Do the GAN losses follow the lecture's formulas, stay finite at extreme logits, and teach saturation?"""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import discriminator_loss, generator_loss
from course_lib.naive import discriminator_loss_naive, generator_loss_naive
from helpers import assert_unchanged, randn, snapshot


@pytest.mark.parametrize("n,m", [(1, 1), (7, 3), (64, 128)])
def test_matches_the_loop_from_the_formula(n, m, gen):
    real, fake = randn(n, gen=gen, scale=3), randn(m, gen=gen, scale=3)
    torch.testing.assert_close(discriminator_loss(real, fake), discriminator_loss_naive(real, fake))
    for sat in (False, True):
        torch.testing.assert_close(generator_loss(fake, sat), generator_loss_naive(fake, sat))


def test_matches_bce_with_logits(gen):
    real, fake = randn(16, gen=gen, scale=4), randn(9, gen=gen, scale=4)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    torch.testing.assert_close(discriminator_loss(real, fake), expected)
    torch.testing.assert_close(generator_loss(fake), bce(fake, torch.ones_like(fake)))
    torch.testing.assert_close(generator_loss(fake, saturating=True), -bce(fake, torch.zeros_like(fake)))


def test_unsure_discriminator_gives_two_log_two():
    loss = discriminator_loss(torch.zeros(5, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    assert loss.item() == pytest.approx(2 * math.log(2), abs=1e-12)


@pytest.mark.parametrize("value", [1e4, -1e4])
def test_finite_values_and_gradients_at_extreme_logits(value, dtype):
    real = torch.full((4,), value, dtype=dtype, requires_grad=True)
    fake = torch.full((4,), -value, dtype=dtype, requires_grad=True)
    losses = [discriminator_loss(real, fake), generator_loss(fake), generator_loss(fake, saturating=True)]
    for loss in losses:
        assert torch.isfinite(loss)
        real.grad = fake.grad = None
        loss.backward()
        for g in (real.grad, fake.grad):
            assert g is None or torch.isfinite(g).all()


def test_saturating_gradient_vanishes_and_non_saturating_does_not():
    fake = torch.tensor([-30.0], dtype=torch.float64, requires_grad=True)   # D(G(z)) ~ 1e-13
    (g_sat,) = torch.autograd.grad(generator_loss(fake, saturating=True), fake)
    (g_ns,) = torch.autograd.grad(generator_loss(fake), fake)
    assert abs(g_sat.item()) < 1e-12
    assert g_ns.item() == pytest.approx(-1.0, abs=1e-9)


def test_gradcheck_in_float64(gen):
    real = randn(5, gen=gen, requires_grad=True)
    fake = randn(4, gen=gen, requires_grad=True)
    assert torch.autograd.gradcheck(discriminator_loss, (real, fake))
    assert torch.autograd.gradcheck(lambda f: generator_loss(f, True), (fake,))
    assert torch.autograd.gradcheck(lambda f: generator_loss(f, False), (fake,))


def test_dtype_and_device_follow_input_and_inputs_unchanged(device, dtype, gen):
    real, fake = randn(6, gen=gen, dtype=dtype, device=device), randn(5, gen=gen, dtype=dtype, device=device)
    before = snapshot(real, fake)
    for out in (discriminator_loss(real, fake), generator_loss(fake), generator_loss(fake, True)):
        assert out.dtype == dtype and out.device.type == device.type and out.shape == ()
    assert_unchanged(before, (real, fake))


@pytest.mark.parametrize(
    "real,fake,match",
    [
        (torch.zeros(2, 1), torch.zeros(2), "logits_real"),
        (torch.zeros(2), torch.zeros(()), "logits_fake"),
        (torch.zeros(0), torch.zeros(2), "logits_real"),
        (torch.zeros(2, dtype=torch.long), torch.zeros(2), "logits_real"),
    ],
)
def test_bad_arguments_raise_value_error(real, fake, match):
    with pytest.raises(ValueError, match=match):
        discriminator_loss(real, fake)


def test_generator_bad_argument_names_it():
    with pytest.raises(ValueError, match=r"logits_fake.*\[3, 2\]"):
        generator_loss(torch.zeros(3, 2))
