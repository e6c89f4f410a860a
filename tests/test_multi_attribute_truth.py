"""MultiAttributeOrdinal against data drawn exactly as its docstring's model says (a generator written here, not the
synthetic dataset's story): interval coverage, calibration of P(A better), and boundary scales."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from accord.models import MultiAttributeOrdinal


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def draw(n_items: int = 120, n_raters: int = 10, per_item: int = 4, n_attributes: int = 3, levels: int = 5,
         correlation: float = 0.5, shift_sd: float = 0.3, noise_sd: float = 0.2, low: int = 0, item: str = "response",
         seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ratings from the model of MultiAttributeOrdinal's docstring: ``eta_i ~ N_A(0, Sigma)``, a rater's shift
    ``b_ja = beta_j + N(0, tau^2)`` and log-noise ``s_ja = rho_j + N(0, omega^2)`` (centred over the raters, so that
    the typical rater has no shift and noise 1), ``y = #{k : gamma_k < eta + b + e^s xi}``.

    Returns the table (scales declared by columns), the latent truth ``eta`` and the truth on the rating scale
    (what the typical rater gives on average), both indexed by item id.
    """
    rng = np.random.default_rng(seed)
    sigma = 1.5 ** 2 * (np.full((n_attributes, n_attributes), correlation) + (1 - correlation) * np.eye(n_attributes))
    eta = rng.multivariate_normal(np.zeros(n_attributes), sigma, size=n_items)
    shift = rng.normal(0, shift_sd, (n_raters, 1)) + rng.normal(0, shift_sd, (n_raters, n_attributes))
    log_noise = rng.normal(0, noise_sd, (n_raters, 1)) + rng.normal(0, noise_sd, (n_raters, n_attributes))
    shift, log_noise = shift - shift.mean(0), log_noise - log_noise.mean(0)
    cuts = np.linspace(-2.0, 2.0, levels - 1) if levels > 2 else np.zeros(1)
    rows = []
    for i in range(n_items):
        for j in rng.choice(n_raters, per_item, replace=False):
            read = eta[i] + shift[j] + np.exp(log_noise[j]) * rng.normal(size=n_attributes)
            rows += [(f"i{i}", f"w{j}", f"a{a}", low + int((read[a] > cuts).sum())) for a in range(n_attributes)]
    key = "response_id" if item == "response" else "pair_id"
    table = pd.DataFrame(rows, columns=[key, "annotator", "attribute", "label"]).assign(
        scale_min=low, scale_max=low + levels - 1)
    ids = [f"i{i}" for i in range(n_items)]
    names = [f"a{a}" for a in range(n_attributes)]
    rating = low + ndtr(eta[:, :, None] - cuts).sum(-1)
    return table, pd.DataFrame(eta, index=ids, columns=names), pd.DataFrame(rating, index=ids, columns=names)


def test_intervals_cover_the_truth_and_p_a_better_is_calibrated() -> None:
    inside, predicted, happened = [], [], []
    for seed in range(2):
        table, latent, truth = draw(seed=seed)
        scores = MultiAttributeOrdinal().fit(table).scores_
        truth = truth.loc[scores.item_ids]
        inside.append(((scores.lower <= truth) & (truth <= scores.upper)).to_numpy().ravel())
        rng = np.random.default_rng(seed)
        a, b = rng.choice(len(scores), (2, 600))
        keep = a != b
        a_ids, b_ids = scores.item_ids[a[keep]], scores.item_ids[b[keep]]
        predicted.append(scores.compare(a_ids, b_ids).to_numpy().ravel())
        happened.append((latent.loc[a_ids].to_numpy() > latent.loc[b_ids].to_numpy()).ravel())
    coverage = np.concatenate(inside).mean()
    assert 0.85 <= coverage <= 0.96, coverage
    p, y = np.concatenate(predicted), np.concatenate(happened)
    # calibration: in each band of predicted P(A better), A is better about that often
    bands = np.digitize(p, [0.2, 0.4, 0.6, 0.8])
    for band in range(5):
        chosen = bands == band
        assert chosen.sum() > 50
        assert abs(p[chosen].mean() - y[chosen].mean()) < 0.08, band


def test_a_slider_of_a_hundred_levels_is_covered_as_a_short_scale() -> None:
    # the cut-points' log-increments had a prior centred at 0 on every scale: a 0..100 slider's 99 increments held
    # near one noise unit each (a span of 99 against the data's 4), and its intervals covered 0.81 of the truth
    inside = []
    for seed in range(2):
        table, _, truth = draw(levels=101, seed=seed)
        scores = MultiAttributeOrdinal().fit(table).scores_
        truth = truth.loc[scores.item_ids]
        inside.append(((scores.lower <= truth) & (truth <= scores.upper)).to_numpy().ravel())
    coverage = np.concatenate(inside).mean()
    assert 0.85 <= coverage <= 0.96, coverage


def test_per_attribute_leniency_spread_does_not_collapse_into_the_raters_general_term() -> None:
    # the update of each attribute's spread of rater shifts ignored the uncertainty of the rater's general term:
    # where that term took one attribute's shifts whole, the attribute's spread fell to about 0.06 (truth 0.5)
    spreads = []
    for seed in range(3):
        table, _, _ = draw(n_items=400, n_raters=30, shift_sd=0.5, noise_sd=0.3, seed=seed)
        spreads.append(MultiAttributeOrdinal().fit(table).population_["shift_sd"].to_numpy())
    assert np.min(spreads) > 0.2, spreads


def test_the_spreads_of_rater_effects_do_not_fall_to_the_prior_when_the_fit_runs_to_convergence() -> None:
    # the variances of the rater effects had an inverse-gamma(1, 1e-3) prior, whose density spikes near 0: run to
    # convergence, spreads of log-noise (truth 0.3, sample 0.23-0.34) and of shifts fell to 0.02-0.03 on some
    # attributes of these seeds
    spreads = []
    for seed in (4, 6):
        table, _, _ = draw(n_items=400, n_raters=30, shift_sd=0.5, noise_sd=0.3, seed=seed)
        population = MultiAttributeOrdinal(tol=1e-3).fit(table).population_
        spreads.append(population[["noise_sd", "shift_sd"]].to_numpy())
    assert np.min(spreads) > 0.08, spreads


@settings(max_examples=8, deadline=None)
@given(n_attributes=st.integers(1, 3), low=st.integers(-1, 1), seed=st.integers(0, 10 ** 6))
def test_attributes_on_two_level_scales_only_are_fitted_and_turned_round_alike(n_attributes: int, low: int,
                                                                             seed: int) -> None:
    # every attribute on a 2-level scale (0/1 properties, e.g. UKPConvArg2's reasons): there is one cut-point and no
    # increments, and the cut-points were built from an empty column: IndexError "index is out of bounds for
    # dimension with size 0" at the first step
    table, latent, _ = draw(n_items=30, n_raters=5, per_item=3, n_attributes=n_attributes, levels=2, low=low,
                            seed=seed)
    fitted = MultiAttributeOrdinal(max_iter=30).fit(table)
    scores = fitted.scores_
    assert ((low <= scores.lower) & (scores.lower <= scores.mean) & (scores.mean <= scores.upper)
            & (scores.upper <= low + 1)).all().all()
    assert fitted.cutpoints_.shape == (n_attributes, 1)
    # the scale turned round (label -> 1 - label on 0..1) is the same model: the means turn round too
    turned = MultiAttributeOrdinal(max_iter=30).fit(table.assign(label=2 * low + 1 - table["label"])).scores_
    np.testing.assert_allclose((2 * low + 1 - turned.mean).loc[scores.item_ids], scores.mean, atol=1e-6)
