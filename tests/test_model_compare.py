"""accord.models.comparison: ArviZ LOO comparison plus k-fold held-out judgment log-likelihood."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accord.datasets import AccordError, validate
from accord.datasets.synthetic import make_synthetic
from accord.models.comparison import COLUMNS, compare, heldout_loglik
from accord.models.dawid_skene import DawidSkene
from accord.models.base import RaterModel
from accord.models.hierarchical_dawid_skene import HierarchicalDawidSkene


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def judgments() -> pd.DataFrame:
    data = make_synthetic(150, 30, 4, annotator_mix={"reliable": 0.6, "spammer": 0.4}, tie_rate=0.0,
                          with_text=False, activity_skew=1.5, seed=5)
    return data.judgments


def test_compare_ranks_models(judgments):
    fitted_vb = DawidSkene().fit(judgments)
    models = [fitted_vb, DawidSkene(inference="gibbs", num_samples=100, num_warmup=50),
              DawidSkene(inference="map", max_steps=200)]
    table = compare(models, judgments, k=3, seed=0)
    assert list(table.columns) == list(COLUMNS)
    assert set(table.index) == {"dawid-skene:vb", "dawid-skene:gibbs", "dawid-skene:map"}
    assert (table.n_judgments == len(judgments)).all()
    # LOO needs posterior draws: the MAP row has none, the others are ranked 0 and 1
    assert np.isnan(table.loc["dawid-skene:map", "elpd_loo"])
    assert sorted(table.loo_rank.dropna().tolist()) == [0.0, 1.0]
    assert np.isclose(table.weight.dropna().sum(), 1.0)
    # held-out: every model scored, per judgment, with a standard error; the best has a zero difference
    assert table.heldout_loglik.notna().all() and (table.heldout_loglik < 0).all()
    assert (table.heldout_se > 0).all()
    assert np.isclose(table.heldout_diff.max(), 0.0) and (table.heldout_diff <= 1e-12).all()
    # the fitted model was used as it is, not refitted
    assert fitted_vb.soft_labels_ is not None
    # every model predicts a held-out A/B vote better than a coin does (VB and MAP themselves differ by ~1e-4 nats
    # per judgment on these data, in either direction with the fold seed, so their order is not a behaviour)
    assert (table.heldout_loglik > np.log(0.5) + 0.01).all()


def test_compare_with_hierarchical_model_and_names(judgments):
    table = compare(
        [DawidSkene(), HierarchicalDawidSkene(max_steps=200, num_samples=50)], judgments, k=2,
        names=["ds", "hds"],
    )
    assert set(table.index) == {"ds", "hds"}
    assert table[["elpd_loo", "heldout_loglik", "heldout_se"]].notna().all().all()


def test_compare_reproducible_folds(judgments):
    first = compare([DawidSkene()], judgments, k=3, seed=1)
    second = compare([DawidSkene()], judgments, k=3, seed=1)
    assert np.isclose(first.heldout_loglik.iloc[0], second.heldout_loglik.iloc[0])
    assert first.loo_rank.iloc[0] == 0


def test_compare_errors(judgments):
    with pytest.raises(AccordError, match="at least one model"):
        compare([], judgments)
    with pytest.raises(AccordError, match="names"):
        compare([DawidSkene(), DawidSkene()], judgments, names=["same", "same"])


@pytest.mark.parametrize("folds", [0, -1, 1, True, 2.5])
def test_heldout_loglik_refuses_fewer_than_two_folds(judgments, folds):
    """``folds=0`` (or negative) ran no fold and returned ``np.empty``'s leftover memory as log-likelihoods (tiny
    positive numbers); ``folds=1`` fitted on no judgment and failed with an IndexError; 2.5 with a TypeError."""
    from accord.models.comparison import heldout_loglik

    with pytest.raises(AccordError, match="folds must be a whole number >= 2"):
        heldout_loglik(DawidSkene(), judgments, folds=folds)


def test_compare_refuses_a_fold_count_that_is_not_a_whole_number(judgments):
    with pytest.raises(AccordError, match="k must be a whole number"):
        compare([DawidSkene()], judgments, k=2.5)


def test_what_is_not_a_rater_model_is_one_clear_error(judgments):
    """A baseline (which a notebook compares against first), a step model, a method name or the class itself
    failed deep inside with AttributeError ('VoteFraction' object has no attribute 'inference') or TypeError."""
    from accord.aggregate import VoteFraction
    from accord.models import FirstErrorModel
    from accord.models.comparison import heldout_loglik

    for bad, said in [(VoteFraction(), "VoteFraction"), (FirstErrorModel(), "FirstErrorModel"),
                      ("dawid-skene", "str"), (DawidSkene, "DawidSkene()")]:
        with pytest.raises(AccordError, match=f"model 1 .*{said}"):
            compare([DawidSkene(), bad], judgments, k=2)
    with pytest.raises(AccordError, match="VoteFraction"):
        heldout_loglik(VoteFraction(), judgments, folds=2)
    with pytest.raises(AccordError, match="VoteFraction"):
        heldout_loglik(VoteFraction, judgments, folds=2)
    assert heldout_loglik(DawidSkene, judgments, folds=2).shape == (len(judgments),)  # a factory is fine


def test_a_model_fitted_on_another_table_of_the_same_size_is_not_taken_as_fitted_on_this_one(judgments):
    """A fitted model was used as it was whenever it had as many judgments as the table: one fitted on another
    table of the same size gave that table's PSIS-LOO in this table's row (and its pointwise terms were paired with
    this table's in az.compare). It is refitted on the table now, as one fitted on a table of another size was."""
    other = make_synthetic(150, 30, 4, annotator_mix={"reliable": 0.6, "spammer": 0.4}, tie_rate=0.0,
                           with_text=False, activity_skew=1.5, seed=6).judgments
    assert len(other) == len(judgments)
    stale = compare([DawidSkene().fit(other)], judgments, k=0)
    fresh = compare([DawidSkene()], judgments, k=0)
    assert stale["elpd_loo"].iloc[0] == pytest.approx(fresh["elpd_loo"].iloc[0])


def _plain_labels(form: str) -> pd.DataFrame:
    """A plain (not validated) table of categorical or graded labels, accord's column names."""
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 40)
    rows = [(f"p{i}", f"r{r}", truth[i] if rng.random() < 0.8 else rng.integers(0, 3))
            for i in range(40) for r in rng.choice(6, 3, replace=False)]
    plain = pd.DataFrame(rows, columns=["pair_id", "annotator", "label"])
    if form == "graded":
        return plain.assign(label=plain["label"] - 1)
    return plain.assign(label=plain["label"].map({0: "x", 1: "y", 2: "z"}))


@pytest.mark.parametrize("form", ["categorical", "graded"])
def test_compare_reads_a_plain_table_in_the_fitted_form(form):
    """compare and heldout_loglik validated a plain table as preferences, so a model fitted on categorical or graded
    labels refused its own judgments ('label outside the declared set {A, B, tie}'). Now they read it in the form
    and scale of the fitted model, as its predictive_loglik does, and give what the validated table gives."""
    plain = _plain_labels(form)
    table = validate(plain, form="categorical") if form == "categorical" else validate(plain, scale=1)
    model = DawidSkene().fit(table)
    np.testing.assert_allclose(heldout_loglik(model, plain, folds=2), heldout_loglik(model, table, folds=2))
    from_plain, from_table = compare([model], plain, k=2), compare([model], table, k=2)
    assert from_plain.n_judgments.iloc[0] == len(plain)
    np.testing.assert_allclose(from_plain.heldout_loglik, from_table.heldout_loglik)


def test_compare_refuses_fitted_models_of_different_forms():
    """Models fitted on labels of different forms cannot say how to read one plain table: the error names both."""
    plain = _plain_labels("graded")
    graded = DawidSkene().fit(validate(plain, scale=1))
    categorical = DawidSkene().fit(validate(plain, form="categorical"))
    with pytest.raises(AccordError, match=r"different forms \(categorical.*graded"):
        compare([graded, categorical], plain, k=0)



@pytest.mark.parametrize("k", [3, 5])
def test_more_folds_than_judgments_is_one_error_naming_the_setting_before_any_fit(k, monkeypatch):
    """compare(k=5) on a table of fewer judgments fitted and scored every model by PSIS-LOO first, then failed with
    heldout_loglik's '3 judgments cannot be split into 5 folds', which names no setting (compare's is k, not
    folds). It is refused at once, naming k; heldout_loglik names folds."""
    from accord.models import comparison

    table = validate(pd.DataFrame({"pair_id": [f"p{i}" for i in range(k - 1)], "annotator": "a", "label": "A"}))
    monkeypatch.setattr(comparison, "_loo_part", lambda *args: pytest.fail("the models were scored before the check"))
    with pytest.raises(AccordError, match=rf"k={k}: {k - 1} judgments cannot be split into {k} folds"):
        compare([DawidSkene()], table, k=k)
    with pytest.raises(AccordError, match=rf"folds={k}: {k - 1} judgments"):
        heldout_loglik(DawidSkene(), table, folds=k)


@pytest.mark.parametrize("seed", [None, 2.5, -1, True, 2**32])
def test_a_fold_seed_that_is_not_a_whole_number_is_one_clear_error_before_any_fit(judgments, seed, monkeypatch):
    """compare(seed=-1) or seed=2.5 fitted and scored every model by PSIS-LOO, then failed in numpy's words
    ('expected non-negative integer', 'SeedSequence expects int ...'); None gave folds that no run repeats and True
    was seed 1. The seed is checked first, naming it, by compare and by heldout_loglik."""
    from accord.models import comparison

    monkeypatch.setattr(comparison, "_loo_part", lambda *args: pytest.fail("the models were scored before the check"))
    with pytest.raises(AccordError, match="seed must be a whole number"):
        compare([DawidSkene()], judgments, k=2, seed=seed)
    with pytest.raises(AccordError, match="seed must be a whole number"):
        heldout_loglik(DawidSkene(), judgments, folds=2, seed=seed)


def test_a_model_whose_settings_changed_since_its_fit_is_refitted(judgments, monkeypatch):
    """A model fitted on the table and then given other settings (set_params, sklearn's in-place way) was used as
    it was: its PSIS-LOO came from the earlier fit while its held-out column refitted with the new settings, so
    one row described two models. It is refitted now, as one fitted on another table is, and left as it was."""
    model = DawidSkene(num_samples=30).fit(judgments)
    before = model.soft_labels_.probs.copy()
    model.set_params(empirical_prior=False, num_samples=60)
    changed = compare([model], judgments, k=0)
    fresh = compare([DawidSkene(num_samples=60, empirical_prior=False)], judgments, k=0)
    assert changed["elpd_loo"].iloc[0] == pytest.approx(fresh["elpd_loo"].iloc[0])
    pd.testing.assert_frame_equal(model.soft_labels_.probs, before)
    # a model fitted under its present settings is still used as it is (not refitted)
    same = DawidSkene(num_samples=30).fit(judgments)
    monkeypatch.setattr(same, "clone", lambda: pytest.fail("a model fitted on the table under its settings was "
                                                           "refitted"))
    compare([same], judgments, k=0)


def test_heldout_loglik_of_each_judgment_does_not_depend_on_row_order(judgments):
    """The folds were dealt by row position: shuffled rows put judgments in other folds, and the mean held-out
    log-likelihood of Dawid-Skene moved by 0.020 on the invariance sweep's table (a change of seed by 0.026)."""
    table = judgments.drop(columns=["gold"])
    shuffled = table.sample(frac=1.0, random_state=11).reset_index(drop=True)
    values = [pd.Series(heldout_loglik(DawidSkene, validate(t), folds=3),
                        index=pd.MultiIndex.from_arrays([t["pair_id"], t["annotator"]])) for t in (table, shuffled)]
    np.testing.assert_allclose(values[1].loc[values[0].index].to_numpy(), values[0].to_numpy(), rtol=1e-9)


class _NoPointwise(DawidSkene):
    """A rater model of one's own that says it has no per-judgment log-likelihood."""

    method = "no-pointwise"

    def _loglik_draws(self) -> np.ndarray:
        raise NotImplementedError


class _Forgot(DawidSkene):
    """A rater model of one's own that leaves no ``_loglik`` (the base's default export)."""

    method = "forgot"

    def _loglik_draws(self) -> np.ndarray:
        return RaterModel._loglik_draws(self)


class _PerDrawOnly(DawidSkene):
    """A rater model of one's own whose log-likelihood has no chain axis ([draws, judgments])."""

    method = "per-draw-only"

    def _loglik_draws(self) -> np.ndarray:
        return super()._loglik_draws()[0]


class _PerPair(DawidSkene):
    """A rater model of one's own with a log-likelihood per pair, not per judgment."""

    method = "per-pair"

    def _loglik_draws(self) -> np.ndarray:
        return super()._loglik_draws()[..., :self.encoded_.n_items]


@pytest.mark.parametrize("model, said", [(_NoPointwise, "no per-judgment log-likelihood"),
                                         (_Forgot, "no per-judgment log-likelihood"),
                                         (_PerDrawOnly, r"has shape \(20, 600\), expected \(1, 20, 600\)"),
                                         (_PerPair, r"has shape \(1, 20, 150\), expected \(1, 20, 600\)")])
def test_a_model_without_a_pointwise_loglik_is_one_error_naming_it(judgments, model, said):
    # compare (and to_arviz) failed with a bare NotImplementedError, "'_Forgot' object has no attribute '_loglik'",
    # or az.compare's "The number of observations should be the same across all models", naming no model
    with pytest.raises(AccordError, match=f"^{model.__name__}: .*{said}") as caught:
        compare([DawidSkene(num_samples=20), model(num_samples=20)], judgments, k=0)
    assert "\n" not in str(caught.value)
    with pytest.raises(AccordError, match=f"^{model.__name__}: .*{said}"):
        model(num_samples=20).fit(judgments).to_arviz()


class _Impossible(DawidSkene):
    """A rater model of one's own that gives one judgment (row 7) probability 0, or NaN, under some draws."""

    method = "impossible"
    value = -np.inf

    def _loglik_draws(self) -> np.ndarray:
        out = np.array(super()._loglik_draws())
        out[:, ::2, 7] = self.value
        return out


@pytest.mark.parametrize("value", [-np.inf, np.nan])
def test_a_pointwise_loglik_that_is_not_finite_is_one_error_naming_the_model_and_judgment(judgments, value):
    # az.compare gave such a model a NaN elpd_loo and still a rank and half the stacking weight (0.5 / 0.5 beside
    # a model with a finite elpd_loo); alone it was ranked 0 with weight 1
    model = type("_Impossible", (_Impossible,), {"value": value})
    pair, annotator = judgments.iloc[7][["pair_id", "annotator"]]
    for models in ([DawidSkene(num_samples=20), model(num_samples=20)], [model(num_samples=20)]):
        with pytest.raises(AccordError, match=f"^impossible:vb: .*not finite in 10 of 20 draws .*judgment 7 "
                                              f"\\(pair '?{pair}'?, annotator '?{annotator}'?\\)") as caught:
            compare(models, judgments, k=0)
        assert "\n" not in str(caught.value)


def test_loo_columns_are_az_compare_on_the_same_exports(judgments):
    import warnings

    import arviz as az

    from accord.models.one_coin import OneCoinDawidSkene

    names = ["ds", "one-coin", "gibbs", "map"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short MAP fit; Pareto k is read from the warning column here
        fitted = [DawidSkene(num_samples=60).fit(judgments), OneCoinDawidSkene(num_samples=60).fit(judgments),
                  DawidSkene(inference="gibbs", num_samples=30, num_warmup=20).fit(judgments),
                  DawidSkene(inference="map", max_steps=100).fit(judgments)]
        reference = az.compare({n: m.to_arviz() for n, m in zip(names[:3], fitted[:3])}, ic="loo")
        alone = az.loo(fitted[0].to_arviz())
    table = compare(fitted, judgments, k=0, names=names)
    # the rows in az.compare's order, the MAP fit (one draw) last with no LOO columns
    assert list(table.index) == [*reference.index, "map"]
    for ours, theirs in [("loo_rank", "rank"), ("elpd_loo", "elpd_loo"), ("p_loo", "p_loo"),
                         ("elpd_diff", "elpd_diff"), ("loo_se", "se"), ("loo_dse", "dse"), ("weight", "weight")]:
        np.testing.assert_allclose(table.loc[reference.index, ours].astype(float), reference[theirs].astype(float),
                                   err_msg=ours)
    assert table.loc[reference.index, "loo_warning"].tolist() == reference["warning"].tolist()
    assert table.loc["map", ["loo_rank", "elpd_loo", "weight"]].isna().all()
    # one model alone: az.loo's numbers, rank 0 and all the weight
    single = compare([fitted[0]], judgments, k=0).iloc[0]
    assert single["elpd_loo"] == pytest.approx(alone.elpd_loo) and single["loo_se"] == pytest.approx(alone.se)
    assert (single["loo_rank"], single["weight"], single["elpd_diff"]) == (0, 1, 0)

