"""The empirical confusion prior of closed-form Dawid-Skene: fitted on the evidence of the expected counts, it reaches
the fixed point of the step given q(theta) without creeping toward it (small tables converge in tens of iterations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import gammaln

from accord.datasets.synthetic import make_synthetic
from accord.models._vb import (build_incidence, fit_confusion_prior, fit_confusion_prior_evidence,
                               vb_dawid_skene)
from accord.datasets import encode, validate
from accord.models._data import vote_fractions
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
