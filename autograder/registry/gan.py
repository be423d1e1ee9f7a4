"""Hidden checks for course_lib.gan (assignment a1_gans): discriminator_loss, generator_loss.

Contract (docs/graded-api.md): losses on logits through softplus, stable for logits in [-1e4, 1e4].
Known mistakes: the fake term's sign flipped, real/fake swapped, sums instead of means, log(sigmoid(x))
computed directly (overflows), BCE on sigmoid probabilities (clamped at 100), the saturating and
non-saturating generator losses swapped, the generator loss's sign flipped.

Reference: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, section 3.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .build import (analytic, check, dtype_check, errors_check, function_spec, gradients, mutation_check, randn,
                    stability, values)
from .core import Cases, mistake
from .public import PublicCase, rnd

__all__ = ["SPECS"]

EXTREME = "torch.tensor([1e4, -1e4, 0.0, 5e3, -37.5], dtype=torch.{dt})"


# ------------------------------------------------------------------------------------------------ discriminator
def _d_values(c: Cases) -> None:
    for k in range(4):
        n, m, dt = c.randint(1, 12), c.randint(1, 12), c.dtype(k)
        c.add(f"logits_real = {randn([n], dt, 3.0)}\nlogits_fake = {randn([m], dt, 3.0)}", "logits_real, logits_fake",
              note=f"{dt}, N={n}, M={m}, logits that require grad", grad_wrt=(0, 1))


def _d_layout(c: Cases) -> None:
    c.add(f"logits_real = {randn([5], 'float64', 3.0)}\nlogits_fake = {randn([4], 'float64', 3.0)}",
          "logits_real, logits_fake", note="float64, non-contiguous logits (every other element of a buffer)",
          layout={0: "strided", 1: "strided"})
    c.add(f"logits_real = {randn([1], 'float32', 3.0)}\nlogits_fake = {randn([1], 'float32', 3.0)}",
          "logits_real, logits_fake", note="float32, N = M = 1")


def _d_stability(c: Cases) -> None:
    for dt in ("float32", "float64"):
        c.add(f"logits_real = {EXTREME.format(dt=dt)}\nlogits_fake = -{EXTREME.format(dt=dt)}", "logits_real, logits_fake",
              note=f"{dt}, logits of +-1e4")
    c.add(f"logits_real = {randn([6], 'float32', 1e4)}\nlogits_fake = {randn([5], 'float32', 1e4)}", "logits_real, logits_fake",
          note="float32, logits scaled by 1e4")


def _d_analytic(c: Cases) -> None:
    c.add("logits_real = torch.zeros(3, dtype=torch.float64)\nlogits_fake = torch.zeros(5, dtype=torch.float64)",
          "logits_real, logits_fake", note="all logits 0: the loss is 2 log 2")
    c.add("logits_real = torch.full((2,), 40.0, dtype=torch.float64)\nlogits_fake = torch.full((3,), -40.0, dtype=torch.float64)",
          "logits_real, logits_fake", note="a confident, correct discriminator: the loss is about 8.5e-18")


def _d_grads(c: Cases) -> None:
    for k in range(2):
        n, m, dt = c.randint(2, 9), c.randint(2, 9), c.dtype(k)
        c.add(f"logits_real = {randn([n], dt, 2.0)}\nlogits_fake = {randn([m], dt, 2.0)}", "logits_real, logits_fake",
              note=f"{dt}, N={n}, M={m}", grad_wrt=(0, 1), grad=True)
    c.add(f"logits_real = {EXTREME.format(dt='float32')}\nlogits_fake = -{EXTREME.format(dt='float32')}",
          "logits_real, logits_fake", note="float32, logits of +-1e4", grad_wrt=(0, 1), grad=True)


def _d_dtype(c: Cases, dt: str, device: str) -> None:
    c.add(f"logits_real = {randn([4], dt)}\nlogits_fake = {randn([3], dt)}", "logits_real, logits_fake",
          note=f"{dt} on {device}", device=device)


def _d_mutation(c: Cases) -> None:
    c.add(f"logits_real = {randn([5], 'float64')}\nlogits_fake = {randn([4], 'float64')}", "logits_real, logits_fake",
          note="float64", return_inputs=True)


def _d_errors(c: Cases) -> None:
    c.add(f"logits_real = {randn([3, 2], 'float32')}\nlogits_fake = {randn([4], 'float32')}", "logits_real, logits_fake",
          note="logits_real of shape [3, 2]", meta={"arg": "logits_real"})
    c.add(f"logits_real = {randn([4], 'float32')}\nlogits_fake = {randn([2, 2], 'float32')}", "logits_real, logits_fake",
          note="logits_fake of shape [2, 2]", meta={"arg": "logits_fake"})


def _d_variant(logits_real, logits_fake, *, fake_sign=1.0, swapped=False, reduce="mean", form="softplus"):
    """Wrong discriminator losses: the fake term's sign, real/fake swapped, sums, log(sigmoid), BCE on probabilities."""
    lr, lf = (logits_fake, logits_real) if swapped else (logits_real, logits_fake)
    if form == "log_sigmoid":                                   # overflows: log(0) for large logits
        real, fake = -torch.log(torch.sigmoid(lr)), -torch.log(1 - torch.sigmoid(lf))
    elif form == "bce":                                         # BCE clamps its log at -100
        real = F.binary_cross_entropy(torch.sigmoid(lr), torch.ones_like(lr), reduction="none")
        fake = F.binary_cross_entropy(torch.sigmoid(lf), torch.zeros_like(lf), reduction="none")
    else:
        real, fake = F.softplus(-lr), F.softplus(fake_sign * lf)
    if reduce == "sum":
        return real.sum() + fake.sum()
    return real.mean() + fake.mean()


DISCRIMINATOR = function_spec(
    "discriminator_loss",
    public=[
        PublicCase("random logits (N=5, M=3, float64)", lambda: (rnd(5, seed=1), rnd(3, seed=2))),
        PublicCase("logits of +-1e4 stay finite (float32)", lambda: (torch.tensor([1e4, -1e4]), torch.tensor([-1e4, 1e4]))),
        PublicCase("all logits 0 give 2 log 2", lambda: (torch.zeros(3), torch.zeros(2)), expect="value", value=2 * math.log(2)),
        PublicCase("a 2-D logits_real raises ValueError", lambda: (torch.zeros(2, 2), torch.zeros(2)), expect="raises"),
    ],
    checks=[
        values("matches mean(softplus(-logits_real)) + mean(softplus(logits_fake)) on random logits (and keeps "
               "the autograd graph)", _d_values, 3.0),
        check("layout", "non-contiguous logits; one logit each", 0.5, _d_layout),
        stability("finite and correct for logits of +-1e4", _d_stability),
        analytic("known values (2 log 2 at zero logits)", _d_analytic),
        gradients("gradients match the reference (and stay finite at +-1e4)", _d_grads),
        dtype_check(_d_dtype),
        mutation_check(_d_mutation),
        errors_check(_d_errors, 1.5),
    ],
    mistakes=[
        mistake("fake_sign", "the fake term with its sign flipped: use softplus(+logits_fake), i.e. -log(1 - D(G(z)))",
                _d_variant, fake_sign=-1.0),
        mistake("swapped", "the real and fake terms swapped: real logits go into softplus(-x), fake ones into softplus(+x)",
                _d_variant, swapped=True),
        mistake("sum", "sums instead of means over the batch", _d_variant, reduce="sum"),
        mistake("naive_log_sigmoid", "log(sigmoid(x)) computed directly, which overflows for large logits: use "
                "softplus (-log sigmoid(x) = softplus(-x))", _d_variant, form="log_sigmoid"),
        mistake("bce_probabilities", "binary cross-entropy on sigmoid probabilities, which clamps the log at -100: "
                "work on logits with softplus", _d_variant, form="bce"),
    ],
)


# ------------------------------------------------------------------------------------------------ generator
def _g_values(c: Cases) -> None:
    for k in range(4):
        m, dt, sat = c.randint(1, 12), c.dtype(k), bool(k // 2)
        c.add(f"logits_fake = {randn([m], dt, 3.0)}", ["logits_fake", str(sat)],
              note=f"{dt}, M={m}, saturating={sat}, logits that require grad", grad_wrt=(0,))


def _g_defaults(c: Cases) -> None:
    for k in range(2):
        m, dt = c.randint(2, 12), c.dtype(k)
        c.add(f"logits_fake = {randn([m], dt, 3.0)}", ["logits_fake"], note=f"{dt}, M={m}, saturating left out "
              "(the default is the non-saturating loss)")


def _g_layout(c: Cases) -> None:
    c.add(f"logits_fake = {randn([6], 'float64', 3.0)}", ["logits_fake", "True"],
          note="float64, non-contiguous logits, saturating=True", layout={0: "strided"})
    c.add(f"logits_fake = {randn([1], 'float32', 3.0)}", ["logits_fake", "False"], note="float32, M = 1")


def _g_stability(c: Cases) -> None:
    for sat in (False, True):
        for dt in ("float32", "float64"):
            c.add(f"logits_fake = {EXTREME.format(dt=dt)}", ["logits_fake", str(sat)], note=f"{dt}, logits of +-1e4, saturating={sat}")


def _g_analytic(c: Cases) -> None:
    c.add("logits_fake = torch.zeros(4, dtype=torch.float64)", ["logits_fake", "False"], note="zero logits: log 2")
    c.add("logits_fake = torch.zeros(4, dtype=torch.float64)", ["logits_fake", "True"], note="zero logits, saturating: -log 2")


def _g_grads(c: Cases) -> None:
    for k, sat in enumerate((False, True)):
        m, dt = c.randint(2, 9), c.dtype(k)
        c.add(f"logits_fake = {randn([m], dt, 2.0)}", ["logits_fake", str(sat)], note=f"{dt}, M={m}, saturating={sat}",
              grad_wrt=(0,), grad=True)
    c.add(f"logits_fake = {EXTREME.format(dt='float32')}", ["logits_fake", "False"], note="float32, logits of +-1e4",
          grad_wrt=(0,), grad=True)


def _g_dtype(c: Cases, dt: str, device: str) -> None:
    c.add(f"logits_fake = {randn([4], dt)}", ["logits_fake", "False"], note=f"{dt} on {device}", device=device)


def _g_mutation(c: Cases) -> None:
    c.add(f"logits_fake = {randn([5], 'float64')}", ["logits_fake", "True"], note="float64", return_inputs=True)


def _g_errors(c: Cases) -> None:
    c.add(f"logits_fake = {randn([3, 2], 'float32')}", ["logits_fake", "False"], note="logits_fake of shape [3, 2]",
          meta={"arg": "logits_fake"})


def _g_variant(logits_fake, saturating=False, *, swap_forms=False, sign=1.0, form="softplus"):
    """Wrong generator losses: the two forms swapped, the wrong sign, log(sigmoid) computed directly."""
    if logits_fake.dim() != 1:
        raise ValueError(f"logits_fake must be 1-D [M], got {list(logits_fake.shape)}")
    sat = (not saturating) if swap_forms else saturating
    if form == "log_sigmoid":
        loss = torch.log(1 - torch.sigmoid(logits_fake)).mean() if sat else -torch.log(torch.sigmoid(logits_fake)).mean()
    else:
        loss = -F.softplus(logits_fake).mean() if sat else F.softplus(-logits_fake).mean()
    return sign * loss


GENERATOR = function_spec(
    "generator_loss",
    public=[
        PublicCase("random logits, non-saturating (float64)", lambda: (rnd(6, seed=3),)),
        PublicCase("random logits, saturating (float32)", lambda: (rnd(4, seed=4, dtype=torch.float32), True)),
        PublicCase("zero logits give log 2", lambda: (torch.zeros(4),), expect="value", value=math.log(2)),
        PublicCase("a 2-D input raises ValueError", lambda: (torch.zeros(2, 2),), expect="raises"),
    ],
    checks=[
        values("matches the non-saturating and saturating losses on random logits (and keeps the autograd graph)",
               _g_values, 3.0),
        check("defaults", "saturating left out: the non-saturating loss", 0.5, _g_defaults),
        check("layout", "non-contiguous logits; one logit", 0.5, _g_layout),
        stability("finite and correct for logits of +-1e4 (both forms)", _g_stability),
        analytic("known values (log 2 and -log 2 at zero logits)", _g_analytic),
        gradients("gradients match the reference", _g_grads),
        dtype_check(_g_dtype),
        mutation_check(_g_mutation),
        errors_check(_g_errors, 1.0),
    ],
    mistakes=[
        mistake("forms_swapped", "the saturating and non-saturating forms swapped: non-saturating (default) is "
                "mean(softplus(-logits)), saturating is -mean(softplus(logits))", _g_variant, swap_forms=True),
        mistake("sign", "the loss with the wrong sign", _g_variant, sign=-1.0),
        mistake("naive_log_sigmoid", "log(sigmoid(x)) computed directly, which overflows for large logits: use softplus",
                _g_variant, form="log_sigmoid"),
    ],
)

SPECS = [DISCRIMINATOR, GENERATOR]
