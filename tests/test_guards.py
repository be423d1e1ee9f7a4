"""Does a NaN or an infinity stop a training run where it first appears, with a message that names the quantity,
the step and the cause, before it reaches an optimiser step, a metric or a linear-algebra routine?"""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import discriminator_loss, generator_loss
from course_lib.dcgan import DCGANConfig, train_dcgan
from course_lib.experiments import gan
from course_lib.guards import NonFiniteError, backward_and_step, require_finite, require_finite_grads
from course_lib.train.knn import knn_accuracy

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------- the helper
@pytest.mark.parametrize("value", [torch.tensor(1.5), torch.ones(3, 4), 2.0, torch.arange(5), torch.empty(0)])
def test_finite_values_pass_through_unchanged(value):
    assert require_finite("x", value) is value


@pytest.mark.parametrize("value,what", [(float("nan"), "NaN"), (float("inf"), r"\+inf"), (-math.inf, "-inf"),
                                        (torch.tensor(float("nan")), "NaN")])
def test_a_non_finite_scalar_is_named_with_its_kind_and_context(value, what):
    with pytest.raises(NonFiniteError, match=rf"^loss of X became {what} at step 7$"):
        require_finite("loss of X", value, "at step 7")


def test_a_tensor_message_counts_each_kind_of_bad_value():
    x = torch.zeros(10)
    x[1], x[2], x[3] = float("nan"), float("nan"), -float("inf")
    with pytest.raises(NonFiniteError, match=r"features became non-finite \(2 NaN, 1 -inf of 10 values\)"):
        require_finite("features", x)


def test_the_error_is_a_value_error_and_a_floating_point_error():
    with pytest.raises(ValueError):
        require_finite("x", float("nan"))
    with pytest.raises(FloatingPointError):
        require_finite("x", float("nan"))


def test_the_cause_is_traced_to_a_non_finite_input():
    logits = torch.tensor([0.5, float("nan")])
    with pytest.raises(NonFiniteError, match=r"its input logits was already non-finite \(1 NaN of 2 values\), "
                                             r"so the cause lies upstream"):
        require_finite("loss", logits.sum(), "at step 3", inputs={"logits": logits})


def test_with_finite_inputs_the_computation_itself_is_blamed_and_the_ranges_are_given():
    logits = torch.tensor([-200.0, 3.0])
    naive = -torch.log(torch.sigmoid(logits)).mean()                     # log(0) = -inf: the unstable form
    assert torch.isinf(naive)
    with pytest.raises(NonFiniteError, match=r"inputs were finite \(logits in \[-200, 3\]\).*softplus"):
        require_finite("loss", naive, inputs={"logits": logits})


def test_a_finite_loss_with_an_infinite_derivative_is_stopped_before_the_step():
    w = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    loss = w.sqrt().sum()                                                # 0 at 0, derivative 1 / (2 sqrt(0)) = inf
    with pytest.raises(NonFiniteError, match=r"gradient of sqrt became non-finite at step 4 in 1 of 1 .*"
                                             r"although the loss was finite"):
        backward_and_step(loss, opt, "sqrt", 4)
    assert torch.equal(w.detach(), torch.zeros(3))                       # not updated


def test_a_checked_step_updates_like_the_three_plain_calls():
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 3)
    opt_a, opt_b = torch.optim.Adam(a.parameters(), lr=0.1), torch.optim.Adam(b.parameters(), lr=0.1)
    backward_and_step(a(x).pow(2).mean(), opt_a, "loss", 0)
    loss = b(x).pow(2).mean()
    opt_b.zero_grad()
    loss.backward()
    opt_b.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_grad_check_ignores_parameters_without_gradients():
    p = torch.nn.Parameter(torch.ones(2))
    require_finite_grads("loss", [p])                                   # .grad is None: nothing to check


# ------------------------------------------------------------------------------ where the experiments use it
def _nan_after(steps):
    """The reference discriminator loss, with a NaN injected from call number ``steps`` on."""
    calls = {"n": 0}

    def loss(real, fake):
        calls["n"] += 1
        out = discriminator_loss(real, fake)
        return out * float("nan") if calls["n"] > steps else out
    return loss


def test_a_nan_injected_into_the_discriminator_loss_stops_training_with_the_named_message():
    cfg = DCGANConfig(channels=1, g_width=4, d_width=4, batch_size=8)
    with pytest.raises(NonFiniteError, match=r"^loss of the discriminator became NaN at step 2: its inputs were "
                                             r"finite \(logits_real in \[.*\], logits_fake in \["):
        train_dcgan(torch.rand(16, 1, 32, 32), 5, _nan_after(2), generator_loss, cfg, progress=False)


def test_a_nan_in_the_data_is_traced_to_the_discriminator_logits():
    cfg = DCGANConfig(channels=1, g_width=4, d_width=4, batch_size=8)
    images = torch.rand(8, 1, 32, 32)
    images[3, 0, 5, 5] = float("nan")
    with pytest.raises(NonFiniteError, match=r"loss of the discriminator became NaN at step 0: its input "
                                             r"logits_real was already non-finite"):
        train_dcgan(images, 2, discriminator_loss, generator_loss, cfg, progress=False)


def test_frechet_distance_refuses_what_cannot_define_a_covariance():
    good = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"a must be features \[N, D\] with N >= 2 rows.*got \[1, 3\]"):
        gan.frechet_distance(good[:1], good)
    with pytest.raises(ValueError, match=r"b must be features.*got \[0, 3\]"):
        gan.frechet_distance(good, good[:0])
    with pytest.raises(ValueError, match=r"same feature width D, got a \[5, 3\] and b \[5, 2\]"):
        gan.frechet_distance(good, good[:, :2])
    bad = good.clone()
    bad[2, 1] = float("inf")
    with pytest.raises(NonFiniteError, match=r"features b of the Fréchet distance became non-finite \(1 \+inf"):
        gan.frechet_distance(good, bad)
    assert gan.frechet_distance(good[:2], good[2:4]) >= 0.0            # two rows are enough


def test_knn_evaluation_refuses_nan_features():
    feats, labels = torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 0, 1])
    nan = feats.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="test features of the kNN evaluation"):
        knn_accuracy(nan, labels, feats, labels, 2, k=3)
    with pytest.raises(NonFiniteError, match="bank features of the kNN evaluation"):
        knn_accuracy(feats, labels, nan, labels, 2, k=3)


def test_the_gan_command_line_prints_a_non_finite_loss_as_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    monkeypatch.setattr(gan, "resolve", lambda name, fn: _nan_after(0) if name == "discriminator_loss" else fn
                        or generator_loss)
    assert gan.main(["--steps", "3", "--n-train", "128", "--n-test", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: loss of the discriminator became NaN at step 0") and "\n" not in err


def test_a_nan_loss_in_the_classifier_names_the_classifier(monkeypatch):
    real = F.cross_entropy
    monkeypatch.setattr(gan.F, "cross_entropy", lambda logits, y: real(logits, y) * float("nan"))
    with pytest.raises(NonFiniteError, match="^loss of the feature classifier became NaN at step 0"):
        gan.train_classifier(torch.rand(16, 1, 32, 32), torch.randint(0, 3, (16,)), 3, epochs=1)
