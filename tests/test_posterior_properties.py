"""Properties of every rater model's posterior summaries on small synthetic tables (hypothesis, quick settings).

For each model of :mod:`accord.models` that gives soft labels: the class probabilities are probabilities and each row
sums to 1; ``uncertainty`` is non-negative (NaN exactly where the fit gives no interval); the interval of the top
class is ordered and within [0, 1]; ``n_judgments`` counts each pair's judgments; the annotator table's common
columns stay in their documented ranges (``reliability`` and ``spam`` in [0, 1], ``position_bias`` in
[-1/2, 1/2]), with ordered intervals; and ``to_arviz()``'s posterior means are the fitted point estimates the
docstrings call posterior means (``confusion_``, ``class_prior_``, the confusion models' ``reliability``, MACE
``competence`` and ``spam_label_<class>``, GLAD ``ability`` and ``item_difficulty_``, the shares of the context and
rater-type models, the Bradley-Terry family's ``sharpness``, ``ranking_`` utilities and ``population_``), with a
finite, non-positive log-likelihood of every judgment. And the soft labels' ``uncertainty`` agrees with their own
interval (``test_the_sd_agrees_with_the_interval``): the cleaned dataset's weight is ``1 - 2 uncertainty``, so an sd
far below what the interval implies makes an unsure label count as a certain one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.aggregate import make_method
from accord.datasets.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: case -> (method, quick settings): every rater model with soft labels, each inference path that summarises
#: differently (closed-form moments, draws of a closed form, Gibbs, SVI, MAP)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "dawid-skene-vb": ("dawid-skene", {"num_samples": 20}),
    "dawid-skene-gibbs": ("dawid-skene", {"inference": "gibbs", "num_samples": 12, "num_warmup": 8}),
    "dawid-skene-symmetric": ("dawid-skene", {"symmetric": True, "inference": "meanfield", "max_steps": 20,
                                              "num_samples": 12}),
    "one-coin-dawid-skene": ("one-coin-dawid-skene", {"num_samples": 20}),
    "hierarchical-dawid-skene": ("hierarchical-dawid-skene", {"max_steps": 20, "num_samples": 12}),
    "hierarchical-dawid-skene-vb": ("hierarchical-dawid-skene", {"inference": "vb", "num_samples": 20}),
    "mace-vb": ("mace", {"inference": "vb", "num_samples": 20}),
    "mace": ("mace", {"max_steps": 20, "num_samples": 12}),
    "glad": ("glad", {"max_steps": 20, "num_samples": 12}),
    "bradley-terry": ("bradley-terry", {"max_steps": 20, "num_samples": 12}),
    "debiased-bradley-terry": ("debiased-bradley-terry", {"max_steps": 20, "num_samples": 12}),
    "ordinal": ("ordinal", {"max_steps": 20, "num_samples": 12}),
    "context": ("context", {"max_steps": 20, "posterior_steps": 10, "num_samples": 12}),
    "rater-types": ("rater-types", {"n_types": 2, "max_steps": 20}),
}

TOL = 1e-6  # float32 draws summarised in float64


@st.composite
def tables(draw: st.DrawFn, max_annotators: int = 7, max_pairs: int = 20, max_per_pair: int = 4,
           tie_rates: tuple[float, ...] = (0.0, 0.2)) -> pd.DataFrame:
    n_annotators = draw(st.integers(2, max_annotators))
    return make_synthetic(n_pairs=draw(st.integers(3, max_pairs)), n_annotators=n_annotators,
                          judgments_per_pair=draw(st.integers(1, min(n_annotators, max_per_pair))),
                          tie_rate=draw(st.sampled_from(tie_rates)), seed=draw(st.integers(0, 10_000))).judgments


def fit(case: str, judgments: pd.DataFrame, seed: int) -> Any:
    method, quick = MODELS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quick settings stop SVI early, on purpose
        return make_method(method, seed=seed, **quick).fit(judgments)


def assert_between(low: Any, values: Any, high: Any, what: str) -> None:
    low, values, high = (np.asarray(a, dtype=float) for a in (low, values, high))
    bad = ~((low - TOL <= values) & (values <= high + TOL))
    assert not bad.any(), f"{what}: {int(bad.sum())} outside, e.g. {values[bad][:3]} vs [{low}, {high}]"


def check_soft_labels(model: Any, judgments: pd.DataFrame) -> None:
    soft = model.soft_labels_
    probs = soft.probs.to_numpy(dtype=float)
    assert np.isfinite(probs).all()
    assert_between(0.0, probs, 1.0, "class probabilities")
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    sd = soft.uncertainty.to_numpy(dtype=float)
    assert (sd[~np.isnan(sd)] >= 0).all(), "negative uncertainty"
    # NaN exactly where the fit gives no spread (a point estimate), and then no interval
    assert (soft.interval is None) == bool(np.isnan(sd).all())
    if soft.interval is not None:
        lower, upper = soft.interval["lower"].to_numpy(float), soft.interval["upper"].to_numpy(float)
        assert np.isfinite(lower).all() and np.isfinite(upper).all()
        assert_between(0.0, lower, upper, "interval lower")
        assert_between(lower, upper, 1.0, "interval upper")
    counts = judgments["pair_id"].value_counts().reindex(soft.probs.index)
    np.testing.assert_array_equal(soft.n_judgments.to_numpy(), counts.to_numpy())


def check_annotator_table(model: Any, judgments: pd.DataFrame) -> None:
    table = model.annotators_
    assert int(table["n_judgments"].sum()) == len(judgments)
    for name, (low, high) in {"reliability": (0.0, 1.0), "spam": (0.0, 1.0), "position_bias": (-0.5, 0.5)}.items():
        values, lower, upper = (table[f"{name}{s}"].to_numpy(float) for s in ("", "_lower", "_upper"))
        if name == "position_bias" and np.isnan(values).all():
            continue  # a model without one
        assert np.isfinite(values).all(), name
        assert_between(low, values, high, name)
        assert_between(low, lower, upper, f"{name}_lower")
        assert_between(lower, upper, high, f"{name}_upper")


def posterior_mean(idata: Any, name: str) -> np.ndarray:
    return idata.posterior[name].mean(("chain", "draw")).to_numpy()


def close(fitted: Any, exported: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(fitted, dtype=float), np.asarray(exported, dtype=float), rtol=1e-5,
                               atol=1e-6, err_msg=what)


def check_arviz(model: Any) -> None:
    idata = model.to_arviz()
    loglik = idata.log_likelihood["y"].to_numpy()
    assert loglik.shape[-1] == model.encoded_.n_judgments
    assert np.isfinite(loglik).all() and (loglik <= 1e-9).all(), "log-likelihood of a vote above 0 or not finite"
    post = idata.posterior
    table = model.annotators_
    if "theta" in post:
        close(model.confusion_, posterior_mean(idata, "theta"), "confusion_")
        # reliability = sum_k pi_k theta[k, k], averaged over the exported draws
        theta, pi = post["theta"].to_numpy(), post["pi"].to_numpy()
        close(table["reliability"], (np.diagonal(theta, axis1=-2, axis2=-1) * pi[:, :, None, :]).sum(-1).mean((0, 1)),
              "reliability")
    if hasattr(model, "class_prior_"):
        key = "pi" if "pi" in post else "class_prior"
        if key in post:
            close(model.class_prior_, posterior_mean(idata, key), "class_prior_")
    if "competence" in table:  # MACE
        close(table["competence"], 1.0 - posterior_mean(idata, "spam"), "competence")
        close(table[[f"spam_label_{c}" for c in model.encoded_.classes]], posterior_mean(idata, "spam_labels"),
              "spam_label_<class>")
    if "ability" in table:  # GLAD
        close(table["ability"], posterior_mean(idata, "ability"), "ability")
        close(model.item_difficulty_["difficulty"], posterior_mean(idata, "difficulty"), "item_difficulty_")
    for share in ("honest_share", "adversarial_share", "spam_share"):
        if share in table and share in post:
            close(table[share], posterior_mean(idata, share), share)
    if "sharpness_mean" in post:  # the Bradley-Terry family: ratios and products on a typical annotator's scale
        close(table["sharpness"], (post["sharpness"] / post["sharpness_mean"]).mean(("chain", "draw")), "sharpness")
        ranking = model.ranking_
        utility = (post["utility"] * post["sharpness_mean"]).mean(("chain", "draw")).to_pandas()
        close(ranking["utility"], utility.reindex(ranking.index.astype(str)), "ranking_ utility")
        population = model.population_
        for name in population.index:
            if name in post and post[name].ndim == 2:
                close(population.loc[name, "mean"], float(post[name].mean()), f"population_ {name}")
    if isinstance(getattr(model, "population_", None), dict) and "mu" in model.population_:
        close(model.population_["mu"], posterior_mean(idata, "mu"), "population_ mu")


@pytest.mark.parametrize("case", list(MODELS))
@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(judgments=tables(), seed=st.integers(0, 2**16))
def test_posterior_summaries_hold_together(case: str, judgments: pd.DataFrame, seed: int) -> None:
    model = fit(case, judgments, seed)
    check_soft_labels(model, judgments)
    check_annotator_table(model, judgments)
    check_arviz(model)


@pytest.mark.parametrize("case", ["first-error", "step-dawid-skene"])
@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(n_problems=st.integers(2, 8), raters=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_step_models_summaries_hold_together(case: str, n_problems: int, raters: int, seed: int) -> None:
    """The step-level models: P(step correct) and P(first error at t) are probabilities (the latter summing to 1
    over a solution's positions), uncertainties non-negative, the annotator table's reliability and spam in [0, 1]
    with ordered intervals."""
    from accord.datasets.steps import make_synthetic_steps
    from accord.models import DawidSkene, FirstErrorModel, StepDawidSkene

    judgments = make_synthetic_steps(n_problems=n_problems, candidates_per_problem=4, labelled_per_problem=2,
                                     n_annotators=5, raters_per_solution=raters, seed=seed).judgments
    model = FirstErrorModel(num_samples=20, seed=seed) if case == "first-error" else \
        StepDawidSkene(DawidSkene(num_samples=20, seed=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(judgments)
    labels = model.step_labels_
    for frame, column in ((labels.steps, "p_correct"), (labels.first_error, "p_first_error")):
        assert_between(0.0, frame[column], 1.0, column)
        sd = frame["uncertainty"].to_numpy(float)
        assert (sd[~np.isnan(sd)] >= 0).all(), f"negative uncertainty of {column}"
    np.testing.assert_allclose(labels.first_error.groupby(level=0)["p_first_error"].sum(), 1.0, atol=1e-6)
    table = model.annotators_
    for name in ("reliability", "spam"):
        values, lower, upper = (table[f"{name}{s}"].to_numpy(float) for s in ("", "_lower", "_upper"))
        assert_between(0.0, values, 1.0, name)
        assert_between(0.0, lower, upper, f"{name}_lower")
        assert_between(lower, upper, 1.0, f"{name}_upper")


#: beside MODELS: the rater-type model with a spread (its default MAP fit gives none, and no interval)
WITH_SPREAD: dict[str, tuple[str, dict[str, Any]]] = {
    **MODELS,
    "rater-types-meanfield": ("rater-types", {"n_types": 2, "inference": "meanfield", "max_steps": 20,
                                              "num_samples": 12}),
}
#: the population aggregates of the group models (accord.aggregate.pluralistic), over the same quick fits
PLURALISTIC = {"pluralistic-context": "context", "pluralistic-rater-types": "rater-types-meanfield"}


def unsure_tables() -> st.SearchStrategy[pd.DataFrame]:
    """Few pairs with one to three judgments and ties: the tables where intervals are wide."""
    return tables(max_annotators=5, max_pairs=12, max_per_pair=3, tie_rates=(0.0, 0.3))


def check_sd_against_interval(soft: Any, what: str) -> None:
    """A probability in [0, 1] whose 90% interval is ``w`` wide has an sd of at least ``w / 6.6`` (at least 5% of
    its mass lies beyond each end, so ``sd >= sqrt(0.1) w / 2 = w / 6.32``; a normal's is ``w / 3.29``; the sample
    quantiles of 12 or more draws keep it above ``w / 4.4``) and at most 1/2 (the sample sd of ``D`` draws at most
    ``sqrt(D / (D - 1)) / 2``: 0.522 for 12); and an sd of 0 means the interval has zero width. Checked where the
    interval is wider than 1/2, where a delta-method sd (``p (1 - p) sd(log-odds)``, near 0 for a confident mean
    whatever the spread, and above 1/2 for an even one) fails it."""
    if soft.interval is None:
        return
    sd = soft.uncertainty.to_numpy(float)
    width = (soft.interval["upper"] - soft.interval["lower"]).to_numpy(float)
    wide = width > 0.5
    low = wide & ~(sd >= width / 6.6)
    assert not low.any(), f"{what}: {int(low.sum())} sd below width / 6.6, e.g. {sd[low][:3]}, width {width[low][:3]}"
    high = wide & ~(sd <= 0.5 + 0.025)
    assert not high.any(), f"{what}: {int(high.sum())} sd above 1/2, e.g. {sd[high][:3]}, width {width[high][:3]}"
    zero = (sd == 0) & (width > TOL)
    assert not zero.any(), f"{what}: {int(zero.sum())} sd of 0 with an interval, e.g. width {width[zero][:3]}"


@pytest.mark.parametrize("case", [*WITH_SPREAD, *PLURALISTIC])
@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(judgments=unsure_tables(), seed=st.integers(0, 2**16))
def test_the_sd_agrees_with_the_interval(case: str, judgments: pd.DataFrame, seed: int) -> None:
    """Every soft label with both an sd and a 90% interval (the models', and the population aggregate of the group
    models): the sd is the spread the interval shows (see :func:`check_sd_against_interval`)."""
    check_case_sd(case, judgments, seed)


@pytest.mark.parametrize("case", ["dawid-skene-vb", "dawid-skene-gibbs", "dawid-skene-symmetric"])
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(judgments=unsure_tables(), seed=st.integers(0, 2**16))
def test_the_closed_form_sd_agrees_with_the_interval(case: str, judgments: pd.DataFrame, seed: int) -> None:
    """The same on more tables for Dawid-Skene, whose sd and interval come from moments of the log-odds rather than
    from one set of draws (a confident label with a wide interval shows in about one small table in twelve): fast."""
    check_case_sd(case, judgments, seed)


def check_case_sd(case: str, judgments: pd.DataFrame, seed: int) -> None:
    method, quick = WITH_SPREAD[PLURALISTIC.get(case, case)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quick settings stop SVI early, on purpose
        model = make_method(method, seed=seed, **quick).fit(judgments)
    if case in PLURALISTIC:
        from accord.aggregate.pluralistic import pluralistic_soft_labels

        check_sd_against_interval(pluralistic_soft_labels(model), case)
    else:
        check_sd_against_interval(model.soft_labels_, case)
