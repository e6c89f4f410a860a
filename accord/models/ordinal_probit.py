r"""The ordinal-probit likelihood of one rating, stable in both tails, with its derivatives in closed form.

A rating at a level between the cut-points ``lower < upper`` of a rater who reads the item at ``location`` with
Gaussian noise of sd ``sigma = exp(log_noise)`` has probability

.. math:: P = \Phi(u) - \Phi(l), \qquad l = (\mathrm{lower} - \mu) / \sigma,\ u = (\mathrm{upper} - \mu) / \sigma

(``l = -inf`` at the bottom level, ``u = +inf`` at the top). With ``r_l = \phi(l) / P`` and ``r_u = \phi(u) / P``
(0 for a missing bound):

.. math::

    \partial_\mu \log P = (r_l - r_u) / \sigma, \qquad
    -\partial^2_\mu \log P = \big(u r_u - l r_l + (r_u - r_l)^2\big) / \sigma^2,

    \partial_s \log P = -(u r_u - l r_l), \qquad
    -\partial^2_s \log P = (\partial_s \log P)^2 - \big(u r_u (1 - u^2) - l r_l (1 - l^2)\big)

for ``s = log sigma``; ``-\partial^2_\mu \log P \ge 0`` (the likelihood is log-concave in the location).
:func:`ordinal_probit_loglik` is differentiable (the gradient is the closed form above, not autograd through the
special functions); :func:`ordinal_probit_derivatives` returns the values and the derivatives directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_BOUND = 38.0  # |standardised bound| beyond which Phi is 0 or 1 in float64
_MISSING = 40.0  # a missing bound, beyond every real one


def log_ndtr(x: torch.Tensor) -> torch.Tensor:
    """``log Phi(x)``: ``log(erfc(-x / sqrt 2) / 2)``, and through ``erfcx`` in the far lower tail (``x < -5``).

    About three times faster than ``torch.special.log_ndtr`` on CPU in float64, to the same accuracy.
    """
    z = -x * _SQRT_HALF
    out = torch.log(0.5 * torch.special.erfc(z))
    tail = x < -5.0
    if bool(tail.any()):
        far = z[tail]
        out[tail] = torch.log(0.5 * torch.special.erfcx(far)) - far * far
    return out


def _standardise(location: torch.Tensor, log_noise: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                 has_lower: torch.Tensor, has_upper: torch.Tensor) -> tuple[torch.Tensor, ...]:
    noise = log_noise.exp()
    low = ((lower - location) / noise).clamp(-_BOUND, _BOUND)
    high = ((upper - location) / noise).clamp(-_BOUND, _BOUND)
    low = torch.where(has_lower, low, torch.full_like(low, -_MISSING))
    high = torch.where(has_upper, high, torch.full_like(high, _MISSING))
    # a difference of two normal tails, taken on the side where both are small so that it does not cancel
    right = low > 0
    big = log_ndtr(torch.where(right, -low, high))
    small = log_ndtr(torch.where(right, -high, low))
    loglik = big + torch.log1p(-torch.exp((small - big).clamp(max=-1e-15)))
    ratio_low = torch.where(has_lower, torch.exp(-0.5 * low * low - _LOG_SQRT_2PI - loglik), torch.zeros_like(low))
    ratio_high = torch.where(has_upper, torch.exp(-0.5 * high * high - _LOG_SQRT_2PI - loglik),
                             torch.zeros_like(high))
    return noise, low, high, loglik, ratio_low, ratio_high


class _OrdinalProbit(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, location: torch.Tensor, log_noise: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                has_lower: torch.Tensor, has_upper: torch.Tensor) -> torch.Tensor:
        noise, low, high, loglik, ratio_low, ratio_high = _standardise(location, log_noise, lower, upper,
                                                                       has_lower, has_upper)
        ctx.save_for_backward(noise, low, high, ratio_low, ratio_high)
        ctx.shapes = (location.shape, log_noise.shape, lower.shape, upper.shape)
        return loglik

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        noise, low, high, ratio_low, ratio_high = ctx.saved_tensors
        d_upper = grad * ratio_high / noise
        d_lower = -grad * ratio_low / noise
        d_location = -(d_upper + d_lower)
        d_log_noise = -grad * (high * ratio_high - low * ratio_low)
        reduced = [g if g.shape == shape else g.sum_to_size(shape)
                   for g, shape in zip((d_location, d_log_noise, d_lower, d_upper), ctx.shapes)]
        return (*reduced, None, None)


def ordinal_probit_loglik(location: torch.Tensor, log_noise: torch.Tensor, lower: torch.Tensor,
                          upper: torch.Tensor, has_lower: torch.Tensor, has_upper: torch.Tensor) -> torch.Tensor:
    """``log P(lower < location + exp(log_noise) * N(0, 1) <= upper)``, elementwise (inputs broadcast).

    Where ``has_lower`` (``has_upper``) is False the bound is -inf (+inf) and ``lower`` (``upper``) is ignored.
    Differentiable in ``location``, ``log_noise``, ``lower`` and ``upper``.
    """
    # numpy's broadcast_shapes: torch's goes through its reference implementation, slow for a hot path
    shape = np.broadcast_shapes(location.shape, log_noise.shape, lower.shape, upper.shape, has_lower.shape,
                                has_upper.shape)
    return _OrdinalProbit.apply(location, log_noise, lower, upper, has_lower.expand(shape),
                                has_upper.expand(shape))


def ordinal_probit_derivatives(location: torch.Tensor, log_noise: torch.Tensor, lower: torch.Tensor,
                               upper: torch.Tensor, has_lower: torch.Tensor, has_upper: torch.Tensor
                               ) -> dict[str, torch.Tensor]:
    """The log-likelihood and its derivatives (see the module docstring), elementwise.

    Returns ``loglik``, ``grad_location``, ``info_location`` (minus the second derivative), ``grad_log_noise`` and
    ``info_log_noise``.
    """
    noise, low, high, loglik, ratio_low, ratio_high = _standardise(location, log_noise, lower, upper, has_lower,
                                                                   has_upper)
    moment = high * ratio_high - low * ratio_low
    curvature = high * ratio_high * (1 - high * high) - low * ratio_low * (1 - low * low)
    grad_log_noise = -moment
    return {
        "loglik": loglik,
        "grad_location": (ratio_low - ratio_high) / noise,
        "info_location": (moment + (ratio_high - ratio_low) ** 2) / noise ** 2,
        "grad_log_noise": grad_log_noise,
        "info_log_noise": grad_log_noise ** 2 - curvature,
    }
