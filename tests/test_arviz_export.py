"""The ArviZ side of every rater model: ``to_arviz()`` groups, dims and coordinates, the per-judgment
log-likelihood behind ``az.loo`` / ``az.compare``, divergences of NUTS fits, and that exporting is a read."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.special import logsumexp

from accord.datasets import encode
from accord.datasets.synthetic import make_synthetic
from accord.models import (MACE, ContextPreference, CrowdBradleyTerry, DawidSkene, DebiasedBradleyTerry, GLAD,
                           HierarchicalDawidSkene, OneCoinDawidSkene, OrdinalPreference, RaterTypes)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: one short setting of every model family with an ArviZ export
FAMILIES = {
    "dawid-skene-vb": lambda: DawidSkene(num_samples=20),
    "dawid-skene-gibbs": lambda: DawidSkene(inference="gibbs", num_samples=10, num_warmup=10),
    "one-coin": lambda: OneCoinDawidSkene(num_samples=20),
    "hierarchical": lambda: HierarchicalDawidSkene(max_steps=60, num_samples=20),
    "mace": lambda: MACE(max_steps=60, num_samples=20),
    "glad": lambda: GLAD(max_steps=60, num_samples=20),
    "crowd-bt": lambda: CrowdBradleyTerry(max_steps=60, num_samples=20),
    "debiased-bt": lambda: DebiasedBradleyTerry(max_steps=60, num_samples=20),
    "ordinal": lambda: OrdinalPreference(max_steps=60, num_samples=20),
    "context": lambda: ContextPreference(max_steps=60, num_samples=20),
    "rater-types": lambda: RaterTypes(n_types=2, inference="meanfield", max_steps=60, num_samples=20),
}


@pytest.fixture(scope="module")
def judgments() -> pd.DataFrame:
    return make_synthetic(30, 7, 4, tie_rate=0.1, seed=3).judgments


def raw(table: pd.DataFrame) -> pd.DataFrame:
    """The three required columns, as a user's table (not marked validated)."""
    out = table[["pair_id", "annotator", "label"]].copy()
    out.attrs = {}
    return out


def fit(make, table: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits stop unconverged; what is tested here is the export
        return make().fit(table)


@pytest.mark.parametrize("family", FAMILIES)
def test_groups_dims_and_coordinates_follow_the_table(family, judgments):
    model = fit(FAMILIES[family], judgments)
    idata = model.to_arviz()
    assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
    chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    loglik = idata.log_likelihood["y"]
    assert loglik.dims == ("chain", "draw", "judgment") and loglik.shape == (chains, draws, len(judgments))
    assert np.isfinite(loglik.values).all() and (loglik.values <= 0).all()
    assert idata.observed_data["y"].shape == (len(judgments),)
    # every variable over raters is laid out on the raters of the annotator table, in its order
    ids = {"annotator": [str(a) for a in model.annotators_.index],
           "pair_id": [str(p) for p in model.soft_labels_.probs.index],
           "class": [str(c) for c in model.soft_labels_.probs.columns]}
    ids["true_class"] = ids["class"]
    assert any("annotator" in da.dims for da in idata.posterior.data_vars.values())
    for name, values in idata.posterior.data_vars.items():
        for dim in set(values.dims) & set(ids):
            assert list(values.coords[dim].values) == ids[dim], (name, dim)


@pytest.mark.parametrize("family", FAMILIES)
def test_editing_the_export_leaves_the_model_as_it_was(family, judgments):
    """Several models handed ArviZ their own draws (views of torch tensors, the cached log-likelihood, the label
    codes), which ArviZ keeps: an in-place edit of the export (``idata.posterior["utility"] -= ...``) rewrote the
    fitted posterior, so the next export, the annotator table or the held-out predictions changed with it."""
    model = fit(FAMILIES[family], judgments)
    before = model.to_arviz()
    predictive = model.predictive_loglik(judgments.iloc[:12])
    edited = model.to_arviz()
    for group in ("posterior", "log_likelihood", "observed_data", "sample_stats"):
        if group in edited.groups():
            for name in getattr(edited, group).data_vars:
                getattr(edited, group)[name].values[...] = 0
    after = model.to_arviz()
    for group in before.groups():
        for name, values in getattr(before, group).data_vars.items():
            np.testing.assert_array_equal(getattr(after, group)[name].values, values.values, err_msg=f"{group}.{name}")
    np.testing.assert_allclose(model.predictive_loglik(judgments.iloc[:12]), predictive)
    assert (model.encoded_.labels == encode(judgments).labels).all()


def test_rater_types_export_each_draws_type_probabilities(judgments):
    """``type_probability`` went out as the responsibilities averaged over the draws, copied into every draw: a
    posterior of sd 0 whatever the data (and ArviZ's r_hat / ESS of a constant). Each draw now carries its own."""
    model = fit(lambda: RaterTypes(n_types=2, inference="meanfield", max_steps=60, num_samples=20), judgments)
    draws = model.to_arviz().posterior["type_probability"]
    assert draws.dims == ("chain", "draw", "annotator", "type")
    assert float(draws.std(("chain", "draw")).max()) > 1e-3
    # their mean is the fitted responsibilities, rater by rater (the coordinates name them)
    mean = draws.mean(("chain", "draw")).to_pandas()
    expected = model.responsibilities_.set_axis(mean.index.astype(object), axis=0)
    np.testing.assert_allclose(mean.to_numpy(), expected.loc[mean.index].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(draws.sum("type").values, 1.0, atol=1e-6)


def test_debiased_export_names_the_shared_pull_instead_of_a_constant(judgments):
    """The shared component ``alpha_k`` went out as 'effect_mean_0': the zero at which stage 2 holds it, a variable
    of no spread under an internal name. It goes out as ``<covariate>_effect_shared``, stage 1's draws, as
    ``population_`` reports it."""
    model = fit(lambda: DebiasedBradleyTerry(max_steps=60, num_samples=20), judgments)
    posterior = model.to_arviz().posterior
    assert not [name for name in posterior.data_vars if name.startswith("effect_")]
    shared = posterior["length_effect_shared"]
    assert shared.dims == ("chain", "draw") and float(shared.std()) > 0
    assert float(shared.mean()) == pytest.approx(model.population_.loc["length_effect_shared", "mean"], rel=1e-5)
    for name, values in posterior.data_vars.items():  # a meanfield fit: every variable has a spread
        assert float(values.std(("chain", "draw")).max()) > 0, name


def test_a_divergence_in_either_stage_of_a_two_stage_nuts_fit_is_reported(judgments, monkeypatch):
    """The debiasing model runs NUTS twice and exports stage 1's pulls beside stage 2's draws; only stage 2's
    divergence flags were kept, so a chain that diverged in stage 1 (where the pulls come from) reported none."""
    from accord.models import pyro_fit

    real, calls = pyro_fit.run_nuts, []

    def first_stage_diverges(*args, **kwargs):
        draws, diverging = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            diverging = diverging.copy()
            diverging[0, 1] = True
        return draws, diverging

    monkeypatch.setattr(pyro_fit, "run_nuts", first_stage_diverges)
    model = fit(lambda: DebiasedBradleyTerry(inference="nuts", num_samples=4, num_warmup=4),
                judgments[judgments["pair_id"].isin(judgments["pair_id"].unique()[:10])])
    assert len(calls) == 2
    stats = model.to_arviz().sample_stats
    assert stats["diverging"].dims == ("chain", "draw") and bool(stats["diverging"].values[0, 1])
    assert model.n_divergences_ == int(stats["diverging"].sum()) >= 1


def test_nuts_fit_carries_its_divergences_and_chains(judgments):
    model = fit(lambda: DawidSkene(inference="nuts", num_samples=6, num_warmup=6, num_chains=2),
                judgments[judgments["pair_id"].isin(judgments["pair_id"].unique()[:10])])
    idata = model.to_arviz()
    diverging = idata.sample_stats["diverging"]
    assert diverging.dims == ("chain", "draw") and diverging.shape == (2, 6) and diverging.dtype == bool
    assert int(diverging.sum()) == model.n_divergences_
    assert np.isfinite(az.rhat(idata, var_names=["pi"])["pi"].values).all()


@pytest.mark.parametrize("make", [lambda: DawidSkene(inference="map", max_steps=50),
                                  lambda: DawidSkene(num_samples=20)])
def test_point_and_variational_fits_export_one_chain_and_say_so(make, judgments):
    """A MAP or VB export has one chain and no sampler statistics, and its posterior group names the inference
    (the name went to the InferenceData and, by ArviZ's way with ``attrs``, to observed_data only: the group a
    reader of r_hat looks at did not say that its draws are not a Markov chain)."""
    model = fit(make, judgments)
    idata = model.to_arviz()
    assert idata.posterior.sizes["chain"] == 1
    assert "sample_stats" not in idata.groups()
    for group in ("posterior", "log_likelihood"):
        assert getattr(idata, group).attrs["inference"] == model.inference
        assert getattr(idata, group).attrs["method"] == "dawid-skene"


def test_dawid_skene_loglik_is_each_judgment_given_the_rest_of_its_pair(judgments):
    """``log p(y_n | y_{i,-n}, theta, pi)`` under each exported draw, computed here from the exported draws, and the
    LOO of ``az.loo`` on it is PSIS over those terms."""
    model = fit(lambda: DawidSkene(num_samples=15), judgments)
    idata, codes = model.to_arviz(), encode(judgments)
    theta = np.log(idata.posterior["theta"].values.reshape(-1, *idata.posterior["theta"].shape[2:]))
    log_pi = np.log(idata.posterior["pi"].values.reshape(-1, codes.n_classes))
    own = np.stack([t[codes.workers, :, codes.labels] for t in theta])  # [S, N, K]: log theta[w_n, k, y_n]
    pair = np.zeros((len(theta), codes.n_items, codes.n_classes))
    for s in range(len(theta)):
        np.add.at(pair[s], codes.items, own[s])
    full = (pair + log_pi[:, None, :])[:, codes.items]
    expected = logsumexp(full, -1) - logsumexp(full - own, -1)
    got = idata.log_likelihood["y"].values.reshape(len(theta), -1)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(idata, pointwise=True)
    log_weights, _ = az.psislw(-idata.log_likelihood["y"].stack(__sample__=("chain", "draw")))
    by_hand = logsumexp(log_weights.values + got.T, axis=1)
    assert loo.elpd_loo == pytest.approx(by_hand.sum(), rel=1e-9)


def test_factorised_model_loglik_is_its_own_predictive_on_the_fitted_table(judgments):
    model = fit(lambda: CrowdBradleyTerry(max_steps=60, num_samples=20), judgments)
    loglik = model.to_arviz().log_likelihood["y"].values.reshape(20, -1)
    np.testing.assert_allclose(logsumexp(loglik, 0) - np.log(20), model.predictive_loglik(judgments), atol=1e-5)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order_seed=st.integers(0, 2**32 - 1), prefix=st.sampled_from(["z", "a", "rater "]))
def test_annotator_coordinate_follows_its_rater_through_shuffles_and_renames(judgments, order_seed, prefix):
    """The exported confusion of a rater, looked up by the rater's id, is the same whatever the order of the rows
    and the names of the raters (the closed-form posterior does not depend on either; its draws do, so the means of
    2,000 draws agree within their Monte Carlo error, and a rater's confusion under another's name would not)."""
    base = raw(judgments)
    reference = fit(lambda: DawidSkene(num_samples=2000, item_correlation=0, vote_shrinkage=0), base)
    names = {a: f"{prefix}{i}" for i, a in enumerate(sorted(base["annotator"].unique(), reverse=True))}
    moved = base.sample(frac=1.0, random_state=order_seed).assign(annotator=lambda t: t["annotator"].map(names))
    model = fit(lambda: DawidSkene(num_samples=2000, item_correlation=0, vote_shrinkage=0), moved)
    mean = model.to_arviz().posterior["theta"].mean(("chain", "draw"))
    ref = reference.to_arviz().posterior["theta"].mean(("chain", "draw"))
    for old, new in names.items():
        np.testing.assert_allclose(mean.sel(annotator=new).values, ref.sel(annotator=str(old)).values, atol=0.06)


def test_export_after_partial_fit_clone_and_crowdkit_names(judgments):
    first, rest = judgments.iloc[:80], judgments.iloc[80:]
    grown = fit(lambda: DawidSkene(num_samples=20), first).partial_fit(rest.reset_index(drop=True))
    idata = grown.to_arviz()
    assert idata.log_likelihood["y"].shape[-1] == len(judgments)
    assert set(idata.posterior.coords["annotator"].values) == set(judgments["annotator"].astype(str))
    model = fit(lambda: DawidSkene(num_samples=20), judgments)
    same = fit(model.clone, judgments).to_arviz()
    crowdkit = raw(judgments).rename(columns={"pair_id": "task", "annotator": "worker"})
    renamed = fit(lambda: DawidSkene(num_samples=20), crowdkit).to_arviz()
    for other in (same, renamed):
        for group in ("posterior", "log_likelihood"):
            for name, values in getattr(model.to_arviz(), group).data_vars.items():
                np.testing.assert_array_equal(getattr(other, group)[name].values, values.values)


def test_partial_fit_after_switching_a_nuts_fit_to_vb_exports_no_stale_sampler_stats(judgments):
    """A NUTS fit keeps a VB-EM solution as its start; after ``set_params(inference="vb")`` partial_fit took it for a
    VB fit and warm-refitted from it, leaving the NUTS fit's divergences (two chains, beside one chain of VB draws
    in the export), guide and SVI record on the model. It is fitted afresh now, as a cold VB fit on all the rows."""
    table = raw(judgments[judgments["pair_id"].isin(judgments["pair_id"].unique()[:12])])
    first, rest = table.iloc[:30], table.iloc[30:].reset_index(drop=True)
    model = fit(lambda: DawidSkene(inference="nuts", num_samples=4, num_warmup=4, num_chains=2), first)
    assert "sample_stats" in model.to_arviz().groups()
    model.set_params(inference="vb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.partial_fit(rest)
    idata = model.to_arviz()
    assert "sample_stats" not in idata.groups() and idata.posterior.sizes["chain"] == 1
    assert not hasattr(model, "n_divergences_") and not hasattr(model, "guide_")
    cold = fit(lambda: DawidSkene(inference="vb", num_samples=4, num_warmup=4, num_chains=2), table)
    pd.testing.assert_frame_equal(model.soft_labels_.probs, cold.soft_labels_.probs)


def test_glad_class_ability_is_laid_out_on_the_true_class(judgments):
    """GLAD's ``class_ability`` (delta_jk) is rater j's ability offset on pairs whose *true* class is k (the reported
    label plays no part in it), but went out on the ``class`` dimension, the one of the reported label
    (``theta[annotator, true_class, class]``, MACE's ``spam_labels[annotator, class]``): selected by true class, as
    ``theta`` is, it was not there. The offset of true class k is read back through the model's own likelihood: a
    draw's P(right | true class k) is sigmoid((alpha_j + delta_jk) beta_i)."""
    import torch

    model = fit(FAMILIES["glad"], judgments)
    posterior = model.to_arviz().posterior
    offset = posterior["class_ability"]
    assert offset.dims == ("chain", "draw", "annotator", "true_class")
    classes = [str(c) for c in model.encoded_.classes]
    assert list(offset.coords["true_class"].values) == classes
    # the emission of each judgment under its true class k, rebuilt from the export selected by true class
    draws = {name: torch.as_tensor(posterior[name].values.reshape(-1, *posterior[name].shape[2:]))
             for name in ("ability", "class_ability", "beta")}
    codes = model.encoded_
    workers, items, labels = (torch.as_tensor(a) for a in (codes.workers, codes.items, codes.labels))
    emission = model._log_emission(draws, workers, items, labels)  # [D, K, N]
    for k, name in enumerate(classes):
        ability = draws["ability"][:, workers] + torch.as_tensor(offset.sel(true_class=name).values.reshape(
            -1, codes.n_workers))[:, workers]
        x = ability * draws["beta"][:, items]
        expected = torch.where(labels == k, torch.nn.functional.logsigmoid(x),
                               torch.nn.functional.logsigmoid(-x) - np.log(max(len(classes) - 1, 1)))
        np.testing.assert_allclose(emission[:, k].numpy(), expected.numpy(), atol=1e-5)
