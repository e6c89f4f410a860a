r"""Adaptive shrinkage of per-rater effects: which raters have an effect at all, and a sparse estimate of it.

A rater model with a per-rater effect (a pull towards the longer response, say) answers "how large is each rater's
effect?" with a continuous posterior; a data team also asks "which raters have one?". Empirical-Bayes adaptive
shrinkage (Stephens 2017) answers both from each rater's likelihood of the effect:

.. math::

    \beta_j \sim g = \pi_0\, \delta_0 + \sum_{m=1}^{M} \pi_m\, \mathcal N(0, \sigma_m^2), \qquad
    p(\text{data}_j \mid \beta_j) = L_j(\beta_j),

a point mass at zero (no effect) and a grid of zero-centred normals of scales :math:`\sigma_m` (a factor
:math:`\sqrt 2` apart, which makes :math:`g` any symmetric unimodal shape). The weights :math:`\pi` maximise the
marginal likelihood :math:`\prod_j \sum_m \pi_m \int L_j(\beta) g_m(\beta)\, d\beta` with Stephens' penalty that
favours the null (a Dirichlet(10, 1, ..., 1) prior on :math:`\pi`: without evidence, no effect), by EM. Each
rater's posterior is then a point mass :math:`P(\beta_j = 0 \mid \text{data})` at zero and a continuous part; from
it the probability of an effect :math:`1 - P(\beta_j = 0 \mid \text{data})`, the posterior mean, the *local false
sign rate* :math:`\mathrm{lfsr}_j = \min\{P(\beta_j \ge 0), P(\beta_j \le 0)\}` (the probability of being wrong about
the sign if one reports it) and the posterior median, which is exactly zero for a rater more likely without an
effect than with one (the sparse point estimate; Barbieri & Berger 2004's median probability model per rater).

:math:`L_j` is given on a symmetric grid of effect values (the integrals are sums over it), so any likelihood works,
not only a normal approximation; the rater models compute it with every other parameter at its posterior mean
(a plug-in, as empirical Bayes does), e.g. :meth:`DebiasedBradleyTerry._effect_profile
<accord.models.debiased_bradley_terry.DebiasedBradleyTerry>`.

References
----------
M. Stephens (2017). False discovery rates: a new deal. *Biostatistics* 18(2).
M. M. Barbieri, J. O. Berger (2004). Optimal predictive model selection. *Ann. Statist.* 32(3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Stephens' (2017) penalty on the null weight: a Dirichlet(NULL_WEIGHT, 1, ..., 1) prior on the mixture weights
NULL_WEIGHT = 10.0
#: scales of the slab's normals are a factor sqrt(2) apart
SCALE_FACTOR = np.sqrt(2.0)


@dataclass(frozen=True)
class SparseEffects:
    """Per rater: ``p_nonzero`` (posterior probability of an effect), ``mean``, ``median`` (zero where no effect is
    the likelier), ``lfsr``, all relative to ``centre`` (the prior's centre: the bulk's effect); ``null_share`` the
    fitted prior weight of "no effect", ``scales`` the slab's normals."""

    p_nonzero: np.ndarray
    mean: np.ndarray
    median: np.ndarray
    lfsr: np.ndarray
    null_share: float
    scales: np.ndarray
    centre: float = 0.0


def effect_grid(bound: float, n_points: int = 401) -> np.ndarray:
    """A symmetric grid on ``[-bound, bound]`` with an odd number of points, its middle point exactly zero."""
    grid = np.linspace(-bound, bound, n_points | 1)
    grid[len(grid) // 2] = 0.0
    return grid


def _mixture_weights(marginal: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, float]:
    """EM over the mixture weights (MAP under the Dirichlet penalty on the null); the weights and the penalised
    log marginal likelihood they reach."""
    extra = np.zeros(marginal.shape[1])
    extra[0] = NULL_WEIGHT - 1.0
    weights = np.full(marginal.shape[1], 1.0 / marginal.shape[1])
    for _ in range(max_iter):
        joint = marginal * weights
        resp = joint / joint.sum(axis=1, keepdims=True)
        updated = resp.sum(axis=0) + extra
        updated /= updated.sum()
        done = np.abs(updated - weights).max() < tol
        weights = updated
        if done:
            break
    objective = np.log(np.maximum(marginal @ weights, np.finfo(float).tiny)).sum() + extra[0] * np.log(weights[0])
    return weights, float(objective)


def _shifted(likelihood: np.ndarray, shift: int) -> np.ndarray:
    """``likelihood`` read ``shift`` grid steps to the right: row ``w`` at ``delta`` is the likelihood at ``centre +
    delta`` (beyond the grid, its value at the nearest end)."""
    if shift == 0:
        return likelihood
    index = np.clip(np.arange(likelihood.shape[1]) + shift, 0, likelihood.shape[1] - 1)
    return likelihood[:, index]


def adaptive_shrinkage(loglik: np.ndarray, grid: np.ndarray, *, estimate_centre: bool = True, max_iter: int = 1000,
                       tol: float = 1e-8) -> SparseEffects:
    """Fit the spike-and-slab prior to raters' log-likelihoods of their effect and return their posteriors.

    ``loglik`` ``[raters, G]``: each rater's log-likelihood at the effect values of ``grid`` (from
    :func:`effect_grid`; additive constants per rater do not matter). A rater without judgments has a flat row and
    gets the prior. With ``estimate_centre`` the prior's centre (the effect of the bulk of the raters) is a grid
    value within a quarter of the grid's reach, chosen by the penalised marginal likelihood (coarse steps, then
    single ones); effects are reported relative to it (``SparseEffects.centre``).
    """
    loglik = np.asarray(loglik, dtype=np.float64)
    if loglik.ndim != 2 or loglik.shape[1] != len(grid):
        raise ValueError(f"loglik must be [raters, {len(grid)}], got {loglik.shape}")
    zero = len(grid) // 2
    step = grid[1] - grid[0]
    likelihood = np.exp(loglik - loglik.max(axis=1, keepdims=True))  # [W, G], each row's maximum 1
    n_scales = int(np.ceil(np.log(grid[-1] / 2 / step) / np.log(SCALE_FACTOR))) + 1
    scales = step * SCALE_FACTOR ** np.arange(max(n_scales, 1))  # from one grid step to half the grid's range
    slab_prior = np.exp(-0.5 * (grid[None] / scales[:, None]) ** 2)
    slab_prior /= slab_prior.sum(axis=1, keepdims=True)  # [M, G]: each normal discretised on the grid

    def fit_at(shift: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        centred = _shifted(likelihood, shift)
        marginal = np.concatenate([centred[:, zero:zero + 1], centred @ slab_prior.T], axis=1)  # [W, 1 + M]
        weights, objective = _mixture_weights(marginal, max_iter, tol)
        return objective, weights, marginal, centred

    fits = {0: fit_at(0)}
    if estimate_centre:
        coarse = max(1, zero // 32)
        reach = zero // 4 // coarse * coarse  # a whole number of coarse steps: the candidates mirror about zero
        for shift in range(-reach, reach + 1, coarse):
            fits.setdefault(shift, fit_at(shift))
        best = max(fits, key=lambda k: fits[k][0])
        for shift in range(max(-reach, best - coarse + 1), min(reach, best + coarse - 1) + 1):
            fits.setdefault(shift, fit_at(shift))
    shift = max(fits, key=lambda k: fits[k][0])
    _, weights, marginal, centred = fits[shift]
    joint = marginal * weights
    resp = joint / joint.sum(axis=1, keepdims=True)  # [W, 1 + M]: posterior of the components
    p_zero = resp[:, 0]
    # the continuous part: per component the likelihood times the normal over its integral (the component's
    # marginal), weighted by the component's posterior; its total mass is 1 - p_zero. One [W, M] x [M, G] product.
    per_component = resp[:, 1:] / np.maximum(marginal[:, 1:], np.finfo(float).tiny)
    slab = centred * (per_component @ slab_prior)
    below = slab[:, :zero].sum(axis=1)
    above = slab[:, zero + 1:].sum(axis=1)
    # the posterior CDF on the grid jumps by p_zero at zero; the median is the first grid value where it reaches 1/2
    cdf = np.cumsum(slab, axis=1)
    cdf[:, zero:] += p_zero[:, None]
    median = grid[np.argmax(cdf >= 0.5 - 1e-12, axis=1)]
    return SparseEffects(p_nonzero=1.0 - p_zero, mean=slab @ grid, median=median,
                         lfsr=np.minimum(below, above) + p_zero + slab[:, zero], null_share=float(weights[0]),
                         scales=scales, centre=float(shift * step))
