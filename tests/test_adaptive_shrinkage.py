"""Adaptive shrinkage of per-rater effects: the spike-and-slab posterior recovers which effects are zero, is
symmetric in the sign of the effect, and gives a rater without information the prior."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.models.adaptive_shrinkage import adaptive_shrinkage, effect_grid


def _gaussian_rows(estimates: np.ndarray, se: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return -0.5 * ((grid[None] - estimates[:, None]) / se[:, None]) ** 2


def test_recovers_which_effects_are_zero():
    rng = np.random.default_rng(0)
    n = 400
    true = np.where(rng.random(n) < 0.75, 0.0, rng.choice([-1, 1], n) * rng.uniform(1.0, 3.0, n))
    se = rng.uniform(0.15, 0.35, n)
    grid = effect_grid(6.0)
    estimates = true + se * rng.standard_normal(n)
    fit = adaptive_shrinkage(_gaussian_rows(estimates, se, grid), grid)
    null = true == 0
    assert 0.55 <= fit.null_share <= 0.85  # normals narrower than the data resolve take some of the null share
    assert (fit.median[null] == 0).mean() >= 0.9
    assert (fit.p_nonzero[~null] > 0.5).mean() >= 0.9
    # the local false sign rate means what it says: among effects called at lfsr < 0.05, few have the wrong sign
    called = fit.lfsr < 0.05
    assert called.sum() >= 0.8 * (~null).sum()
    assert (np.sign(fit.mean[called]) != np.sign(true[called])).mean() <= 0.05
    # a symmetric unimodal prior shrinks each estimate towards zero, never past it
    assert (np.abs(fit.mean) <= np.abs(estimates) + 1e-6).all() and (fit.mean * estimates >= -1e-12).all()


def test_no_effects_anywhere_means_a_null_prior_and_zero_medians():
    grid = effect_grid(3.0)
    rng = np.random.default_rng(1)
    se = np.full(200, 0.2)
    fit = adaptive_shrinkage(_gaussian_rows(se * rng.standard_normal(200), se, grid), grid)
    assert fit.null_share > 0.95
    assert (fit.median == 0).mean() >= 0.97


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-4, 4), st.floats(0.05, 3.0)), min_size=2, max_size=30))
def test_mirrored_likelihoods_mirror_the_posterior(rows):
    estimates, se = (np.array(v, dtype=float) for v in zip(*rows))
    grid = effect_grid(6.0, 201)
    loglik = _gaussian_rows(estimates, se, grid)
    fit, mirrored = adaptive_shrinkage(loglik, grid), adaptive_shrinkage(loglik[:, ::-1], grid)
    assert fit.null_share == pytest.approx(mirrored.null_share, abs=1e-6)
    np.testing.assert_allclose(mirrored.p_nonzero, fit.p_nonzero, atol=1e-6)
    np.testing.assert_allclose(mirrored.mean, -fit.mean, atol=1e-6)
    np.testing.assert_allclose(mirrored.lfsr, fit.lfsr, atol=1e-6)
    assert ((fit.p_nonzero >= 0) & (fit.p_nonzero <= 1) & (fit.lfsr >= 0) & (fit.lfsr <= 1 + 1e-9)).all()
    # the median is zero exactly when the point mass at zero carries it
    step = grid[1] - grid[0]
    assert np.all(np.abs(mirrored.median + fit.median) <= step + 1e-12)


def test_a_rater_without_information_gets_the_prior():
    grid = effect_grid(4.0)
    rng = np.random.default_rng(2)
    se = np.full(100, 0.2)
    informative = _gaussian_rows(np.where(rng.random(100) < 0.5, 0.0, 2.0), se, grid)
    fit = adaptive_shrinkage(np.vstack([informative, np.zeros((1, len(grid)))]), grid)
    assert fit.p_nonzero[-1] == pytest.approx(1 - fit.null_share, abs=1e-9)
    assert fit.mean[-1] == pytest.approx(0.0, abs=1e-9) and fit.median[-1] == 0.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="loglik must be"):
        adaptive_shrinkage(np.zeros((3, 5)), effect_grid(1.0, 7))


def test_a_bulk_away_from_zero_is_the_centre_and_not_a_crowd_of_effects():
    # plug-in profiles of raters without an effect can all peak a little off zero (the bulk's reference moved):
    # with the centre fixed at zero they would all look like effects
    rng = np.random.default_rng(3)
    n = 300
    true = np.where(rng.random(n) < 0.75, 0.0, rng.uniform(1.0, 2.5, n))
    se = np.full(n, 0.05)
    grid = effect_grid(4.0)
    loglik = _gaussian_rows(-0.2 + true + se * rng.standard_normal(n), se, grid)
    fixed = adaptive_shrinkage(loglik, grid, estimate_centre=False)
    fit = adaptive_shrinkage(loglik, grid)
    null = true == 0
    assert (fixed.p_nonzero[null] > 0.5).mean() > 0.9  # the failure the centre is there for
    assert fit.centre == pytest.approx(-0.2, abs=2 * (grid[1] - grid[0]))
    assert (fit.p_nonzero[null] < 0.5).mean() >= 0.95 and (fit.p_nonzero[~null] > 0.5).mean() >= 0.95
    assert 0.65 <= fit.null_share <= 0.85
