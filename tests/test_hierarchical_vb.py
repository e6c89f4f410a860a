"""Hierarchical Dawid-Skene by VB-EM: the population step solved by Newton's method, and little work on small
tables (a fit on a couple of thousand judgments once took longer than one on a hundred thousand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
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
    from accord.models._vb import fit_population_prior

    alpha = concentrated_confusions(40, k, seed=k)
    start = 1.0 + torch.eye(k, dtype=torch.float64)
    prior = fit_population_prior(alpha, start, max_iter=20).numpy()
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


def polya_log_evidence(counts: torch.Tensor, alpha: torch.Tensor) -> float:
    """The Dirichlet-multinomial log evidence of per-rater count rows ``[W, K, L]`` under a ``[K, L]`` prior."""
    s, rows = alpha.sum(-1), counts.sum(-1)
    return float((torch.lgamma(s) - torch.lgamma(s + rows)).sum()
                 + (torch.lgamma(alpha + counts) - torch.lgamma(alpha)).sum())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 4), n_workers=st.integers(1, 30))
def test_the_evidence_step_climbs_where_the_step_given_q_theta_would_creep(seed, k, n_workers):
    """The population step on the evidence of the counts never lowers that evidence, and ends where the step given
    q(theta) = Dirichlet(prior + counts) cannot raise it any further: the two steps share their fixed points (the
    envelope theorem), and the evidence step gets there in one call where alternating the other creeps. A row whose
    evidence optimum is not diagonal-dominant keeps the step given q(theta) instead (Dawid-Skene's identifiability)."""
    from accord.models._vb import fit_polya_prior, fit_population_prior, fit_population_prior_evidence

    generator = torch.Generator().manual_seed(seed)
    eye = torch.eye(k, dtype=torch.float64)
    counts = torch.poisson(3.0 * torch.rand(n_workers, k, k, generator=generator, dtype=torch.float64)
                           + 6.0 * eye, generator=generator)
    start = 1.0 + eye
    prior = fit_population_prior_evidence(counts + start, start)
    optimum = fit_polya_prior(counts, start, None, steps=200)
    dominant = (optimum.diagonal()[:, None] >= optimum).all(-1)
    assert torch.equal(prior[dominant], optimum[dominant])
    assert torch.equal(prior[~dominant], fit_population_prior(counts + start, start)[~dominant])
    assume(bool(dominant.all()))
    reached = polya_log_evidence(counts, prior)
    assert reached >= polya_log_evidence(counts, start) - 1e-9
    for _ in range(3):  # the creeping alternative, a few rounds on from where the evidence step ended
        again = fit_population_prior(counts + prior, prior)
        assert polya_log_evidence(counts, again) <= reached + 1e-3  # nats: flat where the raters look alike
        prior = again


def test_the_full_empirical_prior_settles_where_the_raters_look_alike():
    """DawidSkene(empirical_prior="full") on a small table of random votes (the raters look alike, so the evidence
    pools them ever more): the step given q(theta) raised the concentration a little per iteration and the fit ran
    all 2,000 iterations unconverged (28 s); the evidence step settles it in a few dozen, as the two-valued prior
    does, and the hierarchical model's VB-EM (the same population) with it."""
    from accord.models import DawidSkene

    rng = np.random.default_rng(1)
    table = pd.DataFrame({"pair_id": rng.integers(0, 8, 24).astype(str),
                          "annotator": rng.integers(0, 5, 24).astype(str),
                          "label": rng.choice(["A", "B"], 24)}).drop_duplicates(["pair_id", "annotator"])
    for model in (DawidSkene(empirical_prior="full", seed=0), HierarchicalDawidSkene(inference="vb", seed=0)):
        model.fit(table)
        assert model.converged_ and model.n_iter_ <= 200, (type(model).__name__, model.n_iter_)


def test_one_judgment_per_pair_keeps_the_start_prior_and_warns():
    # no pair judged twice: the population is not identified, and its fit ran to the bounds ((1000, 0.01) rows),
    # every lone vote then read as near-certain (mean top probability 0.96 against a vote accuracy of 0.63)
    from accord.datasets.synthetic import make_synthetic

    data = make_synthetic(300, 20, 2, tie_rate=0.0, with_text=False, seed=3)
    judgments = data.judgments.groupby("pair_id", sort=False).head(1).reset_index(drop=True)
    with pytest.warns(UserWarning, match="no pair has two judgments"):
        model = HierarchicalDawidSkene(inference="vb", seed=0).fit(judgments)
    k = model.encoded_.n_classes
    assert np.allclose(model.population_["alpha"], 1.0 + np.eye(k))  # the start, mildly diagonal
    # the prior's 2 / (k + 1) for a lone vote, a little less over the draws of a flat class prior
    assert 2 / (k + 1) - 0.06 < model.soft_labels_.probs.max(axis=1).mean() < 2 / (k + 1) + 0.02
