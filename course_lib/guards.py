"""Stop a training run where a quantity first goes NaN or infinite, and say which quantity and why.

A NaN does not announce itself: one backward pass through a NaN loss fills every parameter with NaN, the
metrics turn NaN, and the first routine that cannot cope (an eigenvalue solver, a Cholesky factor, an L-BFGS
line search) fails far from the cause -- LAPACK even with a segmentation fault. The experiments and trainers of
``course_lib`` therefore check

* every loss before its backward pass (:func:`require_finite`, with the loss's inputs, so the message can say
  whether the inputs were already broken or the loss function itself overflowed),
* the gradients before every optimiser step (:func:`require_finite_grads`; :func:`backward_and_step` does the
  three calls of one step with both checks), and
* every feature set or value before a metric or a linear-algebra call.

The error is a :class:`NonFiniteError`, a ``FloatingPointError`` that is also a ``ValueError`` (so the command
lines print it as a one-line error, like any other bad input).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch

__all__ = ["NonFiniteError", "require_finite", "require_finite_grads", "backward_and_step"]

_STABLE_HINT = ("a log of 0, an exp that overflows or a division by 0 inside it; use the stable forms "
                "(softplus / logsumexp instead of log(sigmoid) / log(softmax), clamp before log and sqrt)")


class NonFiniteError(FloatingPointError, ValueError):
    """A loss, gradient, feature set or metric input became NaN or infinite; the message names it."""


def _as_tensor(value) -> torch.Tensor:
    return value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)


def _describe(x: torch.Tensor) -> str:
    """What is wrong with a non-finite tensor: ``"NaN"`` for a scalar, ``"NaN in 3 of 4096 values"`` else."""
    nan, pos, neg = int(torch.isnan(x).sum()), int(torch.isposinf(x).sum()), int(torch.isneginf(x).sum())
    if x.numel() == 1:
        return "NaN" if nan else ("+inf" if pos else "-inf")
    parts = [f"{k} {what}" for k, what in ((nan, "NaN"), (pos, "+inf"), (neg, "-inf")) if k]
    return f"non-finite ({', '.join(parts)} of {x.numel()} values)"


def _is_finite(x: torch.Tensor) -> bool:
    return not (x.is_floating_point() or x.is_complex()) or bool(torch.isfinite(x).all())


def require_finite(name: str, value, context: str = "", *, inputs: Mapping[str, torch.Tensor] | None = None,
                   hint: str | None = None):
    """Return ``value`` unchanged when all its entries are finite; raise :class:`NonFiniteError` otherwise.

    The message reads ``"<name> became <what> <context>: <why>"``. ``why`` comes from ``inputs`` when given
    (the tensors ``value`` was computed from): the first non-finite input is named (the cause lies upstream, e.g.
    parameters that went NaN in an earlier step), or, when all inputs are finite, their ranges are stated and the
    computation of ``value`` itself is blamed; ``hint`` replaces the generic advice.

    Args:
        name: what the value is, in words (``"loss of the discriminator"``).
        value: a tensor of any shape (integer tensors are always finite) or a Python number.
        context: where it happened (``"at step 812"``).
        inputs: ``{name: tensor}`` the value was computed from.
        hint: what to check, appended to the message.

    Returns:
        ``value``.

    Raises:
        NonFiniteError: when ``value`` holds a NaN or an infinity.
    """
    x = _as_tensor(value)
    if _is_finite(x):
        return value
    where = f" {context}" if context else ""
    why = ""
    if inputs:
        bad = [(k, _as_tensor(v)) for k, v in inputs.items() if not _is_finite(_as_tensor(v))]
        if bad:
            k, v = bad[0]
            why = (f"its input {k} was already {_describe(v)}, so the cause lies upstream (parameters or data that "
                   "went non-finite earlier)")
        else:
            ranges = ", ".join(f"{k} in [{float(v.min()):.4g}, {float(v.max()):.4g}]"
                               for k, v in ((k, _as_tensor(v)) for k, v in inputs.items()) if v.numel())
            why = f"its inputs were finite ({ranges}), so computing it produced the non-finite value: " + \
                (hint or _STABLE_HINT)
            hint = None
    message = f"{name} became {_describe(x)}{where}"
    details = "; ".join(p for p in (why, hint) if p)
    raise NonFiniteError(f"{message}: {details}" if details else message)


def require_finite_grads(name: str, params: Iterable[torch.Tensor], context: str = "") -> None:
    """Raise :class:`NonFiniteError` when the ``.grad`` of any of ``params`` holds a NaN or an infinity.

    Called after ``backward`` and before the optimiser step, with a finite loss: a non-finite gradient then
    comes from a derivative that is infinite where the function is finite (``sqrt`` or a norm at 0,
    ``acos`` at +-1, ``log`` of a clamped 0). One synchronisation for all parameters.
    """
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
        return
    n_bad = sum(not bool(torch.isfinite(g).all()) for g in grads)
    where = f" {context}" if context else ""
    raise NonFiniteError(f"gradient of {name} became non-finite{where} in {n_bad} of {len(grads)} parameter "
                         "tensors although the loss was finite: a function on the path has an infinite derivative "
                         "where its value is finite (sqrt or a norm at 0, log of a value clamped to 0)")


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str, step: int, *,
                      inputs: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """One checked optimiser step: check ``loss``, ``zero_grad``, ``backward``, check the gradients, ``step``.

    Args:
        loss: the scalar to minimise.
        optimizer: updates the parameters whose gradients are checked (its param groups).
        name: the loss in words (``"loss of the discriminator"``).
        step: the training step, for the message.
        inputs: the tensors ``loss`` was computed from, to say why it went non-finite.

    Returns:
        ``loss`` (for logging).

    Raises:
        NonFiniteError: when the loss or a gradient is NaN or infinite; nothing is updated then.
    """
    require_finite(name, loss, f"at step {step}", inputs=inputs)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    require_finite_grads(name, (p for group in optimizer.param_groups for p in group["params"]), f"at step {step}")
    optimizer.step()
    return loss
