"""One-coin Dawid-Skene, the worked example of the rater-model contract: it recovers synthetic truth, agrees with
crowd-kit's OneCoinDawidSkene on a real set with gold, and gets the annotator table, ArviZ and compare for free."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from conftest import shared_data_or_skip
from scipy.stats import spearmanr

from accord.aggregate import make_method
from accord.datasets import AccordError, gold_labels, validate
from accord.metrics import accuracy
from accord.models import OneCoinDawidSkene, compare

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def one_coin_data(seed: int = 0, n_items: int = 400, n_workers: int = 25, per_item: int = 5, k: int = 3):
    """The model's own story: rater ``w`` right with probability ``p_w``, else uniform over the other classes."""
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.35, 0.95, n_workers)
    truth = rng.integers(0, k, n_items)
    workers = np.argsort(rng.random((n_items, n_workers)), axis=1)[:, :per_item].ravel()
    items = np.repeat(np.arange(n_items), per_item)
    right = rng.random(len(items)) < skill[workers]
    labels = np.where(right, truth[items], (truth[items] + rng.integers(1, k, len(items))) % k)
    table = pd.DataFrame({"pair_id": [f"i{i}" for i in items], "annotator": [f"w{w:02d}" for w in workers],
                          "label": [f"c{y}" for y in labels], "gold": [f"c{t}" for t in truth[items]]})
    return validate(table, form="categorical"), pd.Series(skill, index=[f"w{w:02d}" for w in range(n_workers)])


@pytest.fixture(scope="module")
def synthetic():
    judgments, skill = one_coin_data()
    return judgments, skill, OneCoinDawidSkene().fit(judgments)


def test_recovers_labels_and_each_raters_accuracy(synthetic):
    judgments, skill, model = synthetic
    gold = gold_labels(judgments)
    votes = judgments.groupby(["pair_id", "label"]).size().unstack(fill_value=0)
    # the oracle: each pair's posterior under the true accuracies (and a uniform class prior)
    weight = np.log(skill / (1 - skill) * 2)[judgments["annotator"]].to_numpy()
    oracle = (pd.get_dummies(judgments["label"]).mul(weight, axis=0).groupby(judgments["pair_id"]).sum())
    assert accuracy(model.soft_labels_.probs, gold) >= accuracy(votes, gold) + 0.03
    assert accuracy(model.soft_labels_.probs, gold) >= accuracy(oracle, gold) - 0.02
    table = model.annotators_.join(skill.rename("truth"))
    # reliability is P(vote = true label): for a one-coin rater, their accuracy p_w
    assert spearmanr(table["reliability"], table["truth"]).statistic >= 0.9
    assert (table["reliability"] - table["truth"]).abs().mean() < 0.05
    covered = (table["reliability_lower"] <= table["truth"]) & (table["truth"] <= table["reliability_upper"])
    assert covered.mean() >= 0.75
    np.testing.assert_allclose(table["reliability"], model.accuracy_, atol=0.02)
    assert model.converged_ and table["position_bias"].isna().all()


def test_annotator_table_arviz_and_compare_come_from_the_contract(synthetic):
    judgments, _, model = synthetic
    assert list(model.annotators_.columns) == [
        "n_judgments", "reliability", "reliability_lower", "reliability_upper", "spam", "spam_lower", "spam_upper",
        "position_bias", "position_bias_lower", "position_bias_upper"]
    idata = model.to_arviz()
    assert idata.posterior["theta"].dims == ("chain", "draw", "annotator", "true_class", "class")
    assert idata.log_likelihood["y"].shape == (1, model.num_samples, len(judgments))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(az.loo(idata).elpd_loo)
        table = compare([model, make_method("dawid-skene")], judgments, k=2)
    assert set(table.index) == {"one-coin-dawid-skene:vb", "dawid-skene:vb"}
    assert table["heldout_loglik"].notna().all() and table["elpd_loo"].notna().all()
    # the data are one-coin: the model with one parameter per rater predicts held-out votes at least as well
    assert table.loc["one-coin-dawid-skene:vb", "heldout_loglik"] >= table.loc["dawid-skene:vb", "heldout_loglik"]


def test_registered_and_checked():
    judgments, _ = one_coin_data(n_items=40, n_workers=6)
    assert make_method("one-coin-dawid-skene").fit(judgments).soft_labels_.method == "one-coin-dawid-skene"
    with pytest.raises(AccordError, match="supports inference"):
        OneCoinDawidSkene(inference="meanfield").fit(judgments)
    with pytest.raises(AccordError, match="prior_error must be a finite number > 0"):
        OneCoinDawidSkene(prior_error=0).fit(judgments)
    assert OneCoinDawidSkene(prior_correct=3.0).clone().prior_correct == 3.0


@pytest.mark.parametrize("name", ["rte", "temp"])
def test_agrees_with_crowdkit_on_a_gold_set(name):
    crowdkit = pytest.importorskip("crowdkit.aggregation")
    from accord.datasets import to_crowdkit
    from accord.datasets.loaders import load_snow2008

    judgments = load_snow2008(name, shared_data_or_skip("snow2008"))
    gold = gold_labels(judgments)
    model = OneCoinDawidSkene().fit(judgments)
    peer = crowdkit.OneCoinDawidSkene(n_iter=100).fit(to_crowdkit(judgments))
    probs = peer.probas_.reindex(model.soft_labels_.probs.index)[list(model.soft_labels_.probs.columns)]
    assert abs(accuracy(model.soft_labels_.probs, gold) - accuracy(probs, gold)) <= 0.01
    # the same labels on almost every pair; the busy raters' accuracies ranked alike and close (the Beta(2, 1)
    # prior, which maximum likelihood lacks, pulls the posterior means a little towards 2/3)
    assert (model.soft_labels_.hard() == probs.idxmax(axis=1)).mean() >= 0.98
    busy = model.annotators_["n_judgments"] >= 20
    skills = peer.skills_.reindex(model.annotators_.index[busy])
    assert spearmanr(model.annotators_.loc[busy, "reliability"], skills).statistic >= 0.9
    assert (model.annotators_.loc[busy, "reliability"] - skills).abs().max() < 0.1


def test_a_fit_stopped_at_max_steps_warns_as_dawid_skene_does():
    """OneCoinDawidSkene's own VB-EM loop stopped at max_steps unconverged said nothing (converged_ False, soft labels
    unfinished) where DawidSkene and HierarchicalDawidSkene warn: now the same ConvergenceWarning, pointing at the
    caller's line; a converged fit warns nothing."""
    from accord.models import ConvergenceWarning

    judgments, _ = one_coin_data(n_items=60, n_workers=8, per_item=3)
    model = OneCoinDawidSkene(max_steps=1, seed=0)
    with pytest.warns(ConvergenceWarning, match="max_steps=1") as caught:
        model.fit(judgments)
    assert not model.converged_ and model.n_iter_ == 1
    assert all(w.filename == __file__ for w in caught if issubclass(w.category, ConvergenceWarning))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = OneCoinDawidSkene(seed=0).fit(judgments)
    assert model.converged_ and 1 < model.n_iter_ < model.max_steps


def test_one_judgment_per_pair_gives_the_priors_labels_and_warns():
    # no pair judged twice: nothing tells how often a rater is right, so each vote counts as a rater of the prior's
    # accuracy (Beta(2, 1): 2/3) would, less the spread of the flat class prior's draws; the fit once held every
    # rater near the vote-fraction start (mean top probability 0.94)
    from accord.datasets.synthetic import make_synthetic

    data = make_synthetic(300, 20, 2, tie_rate=0.0, with_text=False, seed=3)
    judgments = data.judgments.groupby("pair_id", sort=False).head(1).reset_index(drop=True)
    with pytest.warns(UserWarning, match="no pair has two judgments"):
        model = OneCoinDawidSkene(seed=0).fit(judgments)
    assert 0.55 < model.soft_labels_.probs.max(axis=1).mean() < 0.7
    assert model.accuracy_.max() == pytest.approx(2 / 3)
