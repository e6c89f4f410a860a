"""The empirical confusion prior of closed-form Dawid-Skene: fitted on the evidence of the expected counts, it reaches
the fixed point of the step given q(theta) without creeping toward it (small tables converge in tens of iterations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import gammaln

from accord.datasets.synthetic import make_synthetic
from accord.models._vb import (build_incidence, concentration_draws, fit_confusion_prior,
                               fit_confusion_prior_evidence, vb_dawid_skene)
from accord.datasets import encode, validate
from accord.models._data import vote_fractions
from accord.models.base import ConvergenceWarning
from accord.models.dawid_skene import DawidSkene

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_table(seed: int):
    """100 judgments: 34 pairs, 9-10 raters, three classes (A, B, tie)."""
    data = make_synthetic(34, 10, 3, with_text=False, seed=seed)
    return data.judgments[["pair_id", "annotator", "label"]].iloc[:100].reset_index(drop=True)


@pytest.mark.parametrize("seed", range(6))
def test_small_tables_converge_in_few_iterations(seed):
    # seed 1: the raters look alike, the evidence keeps asking for a more concentrated prior; the step given
    # q(theta) raised it by ~0.3 per iteration and the fit ran to max_steps (2,000) unconverged
    model = DawidSkene(seed=0, num_samples=10).fit(small_table(seed))
    assert model.converged_ and model.n_iter_ < 200


def evidence(a: float, b: float, counts: np.ndarray) -> float:
    k = counts.shape[-1]
    beta = b + (a - b) * np.eye(k)
    return float((gammaln(beta.sum(-1)) - gammaln(beta.sum(-1) + counts.sum(-1))
                  + (gammaln(beta + counts) - gammaln(beta)).sum(-1)).sum())


@pytest.mark.parametrize("k, a, b", [(2, 4.0, 1.0), (3, 1.5, 0.4), (3, 30.0, 8.0)])
def test_evidence_step_maximises_the_dirichlet_multinomial_evidence(k, a, b):
    # counts of 60 raters drawn from the model itself (rows of Dirichlet(b + (a - b) e_k)), made fractional as
    # q(z) makes them: the evidence has its maximum inside the bounds, found as well by a derivative-free search
    rng = np.random.default_rng(k)
    beta = b + (a - b) * np.eye(k)
    theta = np.stack([rng.dirichlet(row, size=60) for row in beta], axis=1)  # [W, K, L]
    counts = np.stack([[rng.multinomial(rng.integers(5, 30), row) for row in rows] for rows in theta]).astype(float)
    counts *= rng.uniform(0.8, 1.0, counts.shape)
    counts[:5, 0] = 0.0  # rows of classes an annotator never saw add nothing
    start = torch.tensor(1.0 + np.eye(k))
    prior = fit_confusion_prior_evidence(torch.tensor(counts) + start, start).numpy()
    a_hat, b_hat = prior[0, 0], prior[0, 1]
    assert np.allclose(prior, b_hat + (a_hat - b_hat) * np.eye(k)) and a_hat >= b_hat
    best = minimize(lambda x: -evidence(np.exp(x[0]) + np.exp(x[1]), np.exp(x[1]), counts), np.zeros(2),
                    method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    assert evidence(a_hat, b_hat, counts) >= -best.fun - 1e-7
    assert a_hat == pytest.approx(np.exp(best.x[0]) + np.exp(best.x[1]), rel=1e-3)
    assert b_hat == pytest.approx(np.exp(best.x[1]), rel=1e-3)


@pytest.mark.parametrize("start", [(2.0, 1.0), (1000.0, 150.0), (1000.0, 80.0)])
def test_evidence_step_held_at_a_bound_still_maximises_over_the_other_value(start):
    # raters whose counts are all alike: the evidence grows with the concentration, so a stops at its bound (1000);
    # the joint Newton step, clipped there, did not climb, and b stayed near where it started (117.5, 112.5, 112.2
    # from these starts, not 111.6): a warm refit, started at the previous fit's prior, kept it
    from scipy.optimize import minimize_scalar

    counts = np.tile(np.array([[180.0, 20.0], [20.0, 180.0]]), (50, 1, 1))
    a0, b0 = start
    prior = b0 + (a0 - b0) * torch.eye(2, dtype=torch.float64)
    fitted = fit_confusion_prior_evidence(torch.tensor(counts) + prior, prior).numpy()
    best = minimize_scalar(lambda b: -evidence(1000.0, b, counts), bounds=(50.0, 200.0), method="bounded",
                           options={"xatol": 1e-8})
    assert fitted[0, 0] == 1000.0
    assert fitted[0, 1] == pytest.approx(best.x, rel=1e-5)


def test_evidence_step_reaches_the_fixed_point_of_the_step_given_q_theta():
    # the same VB-EM fixed point by either type-II step (envelope theorem), the evidence step in far fewer iterations
    table = validate(make_synthetic(600, 30, 4, with_text=False, seed=3).judgments)
    encoded = encode(table)
    incidence = build_incidence(encoded)
    eye = torch.eye(encoded.n_classes, dtype=torch.float64)
    start = torch.as_tensor(vote_fractions(encoded, 1e-3))
    fits = {name: vb_dawid_skene(incidence, 1.0 + eye, torch.ones(encoded.n_classes, dtype=torch.float64), start,
                                 max_iter=100_000, tol=1e-10, empirical_prior=True, prior_fit=step, stop="distance")
            for name, step in (("given q(theta)", fit_confusion_prior), ("evidence", fit_confusion_prior_evidence))}
    old, new = fits["given q(theta)"], fits["evidence"]
    assert old.converged and new.converged and new.n_iter < old.n_iter
    assert torch.allclose(new.confusion_prior, old.confusion_prior, rtol=1e-4)
    assert float((new.item_probs - old.item_probs).abs().max()) < 1e-6


# -- the concentration integrated out in the annotator table's draws ----------------------------------------


def _drawn_concentration(priors: torch.Tensor) -> np.ndarray:
    return priors.sum(-1)[:, 0].numpy()


@settings(max_examples=20, deadline=None)
@given(k=st.integers(2, 4), raters=st.integers(2, 40), seed=st.integers(0, 2**16), a=st.floats(1.0, 50.0))
def test_rows_of_one_judgment_leave_the_concentration_at_its_hyperprior(k, raters, seed, a):
    # a row of one judgment has the same evidence under every concentration (its vote is correct with probability
    # m, whatever s), so two tables of one-judgment rows give the same draws of s, spread over the hyperprior
    rng = np.random.default_rng(seed)
    prior = torch.tensor(1.0 + (a - 1.0) * np.eye(k))
    tables = []
    for _ in range(2):
        counts = np.zeros((raters, k, k))
        counts[np.arange(raters)[:, None], np.arange(k)[None, :], rng.integers(0, k, (raters, k))] = 1.0
        torch.manual_seed(0)
        tables.append(_drawn_concentration(concentration_draws(torch.tensor(counts) + prior, prior, 400)))
    assert np.array_equal(tables[0], tables[1])
    assert np.quantile(tables[0], 0.05) < 2.0 < 10.0 < np.quantile(tables[0], 0.95) < 1000.0


@pytest.mark.parametrize("k, a, b", [(2, 8.0, 2.0), (3, 6.0, 1.0)])
def test_counts_that_determine_the_concentration_keep_the_draws_near_it(k, a, b):
    # 300 raters with 40 judgments per row drawn from the model: the evidence pins s down, the draws stay near the
    # fitted value (so a large table's annotator table is the plug-in one)
    rng = np.random.default_rng(k)
    beta = b + (a - b) * np.eye(k)
    theta = np.stack([rng.dirichlet(row, size=300) for row in beta], axis=1)
    counts = np.stack([[rng.multinomial(40, row) for row in rows] for rows in theta]).astype(float)
    start = torch.tensor(1.0 + np.eye(k))
    fitted = fit_confusion_prior_evidence(torch.tensor(counts) + start, start)
    torch.manual_seed(0)
    drawn = _drawn_concentration(concentration_draws(torch.tensor(counts) + fitted, fitted, 400))
    s_hat = float(fitted[0].sum())
    assert np.all(np.abs(np.log(drawn / s_hat)) < 0.35)
    assert abs(np.log(s_hat / beta[0].sum())) < 0.35


@settings(max_examples=25, deadline=None)
@given(labels=st.lists(st.sampled_from(["A", "B", "tie"]), min_size=2, max_size=30), prior=st.sampled_from([True, "full"]))
def test_a_table_of_one_annotator_keeps_the_fixed_prior_and_converges(labels, prior):
    """Was: with one annotator the empirical prior's evidence grows without bound toward a prior that makes the rater
    a coin (one rater's counts say nothing about a population), and VB-EM crept toward it until max_steps: a table of
    two judgments ('A', 'B') ran 2,000 iterations unconverged, with a ConvergenceWarning, its soft labels wherever the
    creep stopped (0.65). Now one annotator keeps the fixed prior: the fit equals empirical_prior=False's."""
    import warnings

    import pandas as pd

    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(len(labels))], "annotator": "r1", "label": labels})
    if table["label"].nunique() < 2:
        return  # one class: refused by every model (check_two_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # (one judgment a pair also warns that it is the prior)
        fitted = DawidSkene(empirical_prior=prior).fit(table)
    fixed = DawidSkene(empirical_prior=False).fit(table)
    assert fitted.converged_ and (fitted.prior_correct_, fitted.prior_error_) == (2.0, 1.0)
    np.testing.assert_allclose(fitted.soft_labels_.probs.to_numpy(), fixed.soft_labels_.probs.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(fitted.annotators_["reliability"], fixed.annotators_["reliability"], atol=1e-12)
