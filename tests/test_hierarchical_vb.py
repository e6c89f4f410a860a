"""Hierarchical Dawid-Skene by VB-EM: the population step solved by Newton's method, and little work on small
tables (a fit on a couple of thousand judgments once took longer than one on a hundred thousand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from accord.models.hierarchical_dawid_skene import HierarchicalDawidSkene


def concentrated_confusions(n_workers: int, k: int, seed: int) -> torch.Tensor:
    """``[W, K, K]`` Dirichlet parameters of near-perfect raters (a concentrated population: the hard case)."""
    generator = torch.Generator().manual_seed(seed)
    eye = torch.eye(k, dtype=torch.float64)
    return 0.05 + 0.3 * torch.rand(n_workers, k, k, generator=generator, dtype=torch.float64) + 60 * eye


def expected_log_prior(alpha: np.ndarray, mean_log: np.ndarray) -> float:
    from scipy.special import gammaln

    return float(gammaln(alpha.sum()) - gammaln(alpha).sum() + ((alpha - 1) * mean_log).sum())


@pytest.mark.parametrize("k", [2, 3, 6])
def test_newton_population_step_reaches_the_maximum_in_few_steps(k):
    """Twenty Newton steps reach the maximiser of the expected log prior (checked by its gradient, and by a generic
    optimiser's value) on a concentrated population, where the fixed point is still far from it."""
    from scipy.optimize import minimize
    from scipy.special import digamma

    from accord.models._vb import dirichlet_expected_log
    from accord.models.hierarchical_dawid_skene import fit_population_prior_newton

    alpha = concentrated_confusions(40, k, seed=k)
    start = 1.0 + torch.eye(k, dtype=torch.float64)
    prior = fit_population_prior_newton(alpha, start, max_iter=20).numpy()
    mean_log = dirichlet_expected_log(alpha).mean(0).numpy()
    for row in range(k):
        gradient = digamma(prior[row].sum()) - digamma(prior[row]) + mean_log[row]
        assert np.abs(gradient * prior[row]).max() < 1e-6
        best = minimize(lambda x, m=mean_log[row]: -expected_log_prior(np.exp(x), m), np.log(prior[row]),
                        method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000})
        assert expected_log_prior(prior[row], mean_log[row]) >= -best.fun - 1e-9
    assert (np.diag(prior) > prior.max(0) - 1e-9).all()


def near_perfect_table(seed: int = 0) -> pd.DataFrame:
    """About 1,800 judgments of three classes by 34 raters who are right 97% of the time (word-sense-like data)."""
    rng = np.random.default_rng(seed)
    n_items, per_item, n_workers, k = 180, 10, 34, 3
    truth = rng.choice(k, size=n_items, p=[0.5, 0.3, 0.2])
    workers = np.stack([rng.choice(n_workers, size=per_item, replace=False) for _ in range(n_items)])
    wrong = rng.random((n_items, per_item)) < 0.03
    labels = np.where(wrong, (truth[:, None] + rng.integers(1, k, size=(n_items, per_item))) % k, truth[:, None])
    return pd.DataFrame({"pair_id": np.repeat([f"i{i}" for i in range(n_items)], per_item),
                         "annotator": [f"w{w}" for w in workers.ravel()],
                         "label": [f"c{c}" for c in labels.ravel()]})


def test_small_concentrated_table_costs_little_work(monkeypatch):
    """On a small table of near-perfect raters the whole VB fit evaluates the digamma function a bounded number of
    times (each population step converges in a few Newton steps, not hundreds of fixed-point ones), and it still
    recovers the truth."""
    from accord.datasets import validate

    judgments = validate(near_perfect_table(), form="categorical")
    calls = {"digamma": 0}
    real = torch.digamma

    def counting(*args, **kwargs):
        calls["digamma"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "digamma", counting)
    model = HierarchicalDawidSkene(inference="vb").fit(judgments)
    monkeypatch.undo()
    assert model.converged_
    assert calls["digamma"] <= 20 * model.n_iter_ + 200
    assert model.n_iter_ <= 1000
    truth = judgments.groupby("pair_id")["label"].agg(lambda s: s.mode().iloc[0])
    agree = (model.soft_labels_.hard().reindex(truth.index) == truth).mean()
    assert agree >= 0.99
