"""Latent rater types: the number of types is found by held-out likelihood and annotators are typed correctly."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from accord.aggregate.pluralistic import pluralistic_soft_labels
from accord.datasets import AccordError, validate
from accord.models.rater_types import RaterTypes, holdout_split

torch.set_num_threads(1)


def typed_judgments(n_types: int, *, n_pairs: int = 400, n_annotators: int = 90, per_pair: int = 10, seed: int = 0):
    """Judgments from ``n_types`` rater types: type 1 holds the population's preference, every further type
    reverses it on its own random 40% of the pairs; each judgment is the rater's own draw from their type's
    preference, reported honestly with probability ~0.95 and otherwise at random."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 3.0, n_pairs)
    eta = np.repeat(mu[:, None], n_types, axis=1)
    for t in range(1, n_types):
        reversed_ = rng.random(n_pairs) < 0.4
        eta[reversed_, t] = -mu[reversed_]
    kind = np.arange(n_annotators) % n_types
    honest = 1.0 / (1.0 + np.exp(-rng.normal(3.0, 0.7, n_annotators)))
    pairs = np.repeat(np.arange(n_pairs), per_pair)
    raters = np.concatenate([rng.choice(n_annotators, per_pair, replace=False) for _ in range(n_pairs)])
    own = rng.random(len(pairs)) < 1.0 / (1.0 + np.exp(-eta[pairs, kind[raters]]))
    said_a = np.where(rng.random(len(pairs)) < honest[raters], own, rng.random(len(pairs)) < 0.5)
    table = pd.DataFrame(
        {
            "pair_id": [f"p{i}" for i in pairs],
            "annotator": [f"w{j}" for j in raters],
            "label": np.where(said_a, "A", "B"),
        }
    )
    truth = pd.Series(kind, index=[f"w{j}" for j in range(n_annotators)])
    return table, truth


def assignment_accuracy(model: RaterTypes, truth: pd.Series, minimum: int = 20) -> float:
    table = model.annotators_[model.annotators_["n_judgments"] >= minimum]
    counts = pd.crosstab(table["type"], truth.loc[table.index])
    rows, cols = linear_sum_assignment(-counts.to_numpy())  # types are exchangeable: best matching
    return counts.to_numpy()[rows, cols].sum() / counts.to_numpy().sum()


@pytest.mark.parametrize("n_types", [2, 3])
def test_number_of_types_and_assignments_are_recovered(n_types):
    table, truth = typed_judgments(n_types, seed=n_types)
    model = RaterTypes(n_types="auto", candidates=(1, 2, 3, 4), seed=0).fit(table)
    chosen = model.selection_.loc[model.selection_["chosen"], "n_types"].item()
    assert chosen == n_types == model.n_types_
    assert assignment_accuracy(model, truth) >= 0.9
    assert len(model.types_) == n_types and model.types_["share"].is_monotonic_decreasing
    labels = pluralistic_soft_labels(model, "equal")
    assert {f"p_a_type{t + 1}" for t in range(n_types)} <= set(labels.extra.columns)
    assert labels.extra["disagreement"].between(0, 1).all()
    idata = model.to_arviz()
    assert idata.log_likelihood["y"].shape[-1] == len(table)


def test_holdout_split_keeps_every_annotator_in_training():
    table, _ = typed_judgments(2, n_pairs=60, n_annotators=20, per_pair=4, seed=5)
    held = holdout_split(table, 0.2, seed=0)
    assert 0.1 < held.mean() < 0.25
    assert set(table.loc[~held, "annotator"]) == set(table["annotator"])


def test_the_held_out_judgments_and_the_choice_of_types_do_not_depend_on_row_order():
    """The held-out judgments were drawn by row position: shuffled rows held out others, and n_types="auto" chose
    another number of types under a row shuffle on 4 of 6 make_synthetic tables (80 pairs, 16 raters)."""
    table, _ = typed_judgments(2, n_pairs=60, n_annotators=20, per_pair=4, seed=5)
    shuffled = table.sample(frac=1.0, random_state=11).reset_index(drop=True)
    held = [t[holdout_split(t, 0.2, seed=0)] for t in (table, shuffled)]
    assert set(zip(held[0]["pair_id"], held[0]["annotator"])) == set(zip(held[1]["pair_id"], held[1]["annotator"]))
    fits = [RaterTypes(n_types="auto", candidates=(1, 2), max_steps=60, seed=0).fit(t) for t in (table, shuffled)]
    np.testing.assert_allclose(fits[1].selection_["heldout_loglik"], fits[0].selection_["heldout_loglik"], atol=1e-5)


def categorical_judgments(n_classes: int, *, n_items: int = 300, n_annotators: int = 40, per_item: int = 8,
                          seed: int = 0):
    """A categorical table with labels 0..K-1 from two rater types: type 2 answers ``(t + 1) mod K`` instead of
    the true class ``t`` on its own 40% of the items; each judgment honest with probability ~0.9."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    shifted = np.where(rng.random(n_items) < 0.4, (truth + 1) % n_classes, truth)
    kind = np.arange(n_annotators) % 2
    items = np.repeat(np.arange(n_items), per_item)
    raters = np.concatenate([rng.choice(n_annotators, per_item, replace=False) for _ in range(n_items)])
    own = np.where(kind[raters] == 0, truth[items], shifted[items])
    labels = np.where(rng.random(len(items)) < 0.9, own, rng.integers(0, n_classes, len(items)))
    table = pd.DataFrame({"pair_id": [f"i{i}" for i in items], "annotator": [f"w{j}" for j in raters],
                          "label": labels})
    return validate(table, form="categorical"), pd.Series(kind, index=[f"w{j}" for j in range(n_annotators)]), truth


@pytest.mark.parametrize("n_classes", [2, 3])
def test_categorical_labels_are_accepted_and_types_recovered(n_classes):
    table, kinds, truth = categorical_judgments(n_classes, seed=n_classes)
    model = RaterTypes(n_types=2, seed=0).fit(table)
    assert list(model.soft_labels_.probs.columns) == list(range(n_classes))
    assert assignment_accuracy(model, kinds) >= 0.9
    clean = model.group_probabilities().clean.mean(0)  # [items, types, classes]
    assert np.allclose(clean.sum(-1), 1.0, atol=1e-5)
    # the type that gives the true class everywhere is found: its most likely label is the truth on most items
    majority_type = pd.crosstab(model.annotators_["type"], kinds.loc[model.annotators_.index]).idxmax()[0]
    t = model.type_names_.index(majority_type)
    assert (clean[:, t].argmax(-1) == truth[codes_of(model)]).mean() >= 0.9
    heldout = model.predictive_loglik(table.iloc[:50])
    assert np.isfinite(heldout).all() and heldout.mean() > np.log(1 / n_classes)


def codes_of(model: RaterTypes) -> np.ndarray:
    return np.array([int(str(v)[1:]) for v in model.encoded_.item_index])


@pytest.mark.parametrize("form", ["categorical", "graded"])
def test_the_number_of_types_is_chosen_on_categorical_and_graded_labels(form):
    """``n_types="auto"`` (the default) re-validated its training part without the table's form, so every
    categorical or graded table failed with 'label outside the declared set {'A', 'B', 'tie'}'."""
    table, _, _ = categorical_judgments(3, n_items=60, n_annotators=10, per_item=5, seed=3)
    if form == "graded":
        table = validate(table.assign(label=table["label"] - 1), scale=1)
    model = RaterTypes(candidates=(1, 2), max_steps=50, seed=0).fit(table)
    assert model.n_types_ in (1, 2) and model.selection_["chosen"].sum() == 1
    assert list(model.soft_labels_.probs.columns) == list(model.encoded_.classes)


def test_batch_size_is_refused_not_ignored():
    """RaterTypes fits on every judgment; ``batch_size`` (a PyroRaterModel setting) was silently ignored."""
    table, _, _ = categorical_judgments(2, n_items=20, n_annotators=6, per_item=3, seed=1)
    with pytest.raises(AccordError, match="batch_size"):
        RaterTypes(n_types=1, batch_size=5, max_steps=5).fit(table)


@pytest.mark.parametrize("settings, message", [
    ({"candidates": ()}, "candidates"),           # was ValueError: max() arg is an empty sequence
    ({"n_types": "bogus"}, "n_types"),            # was ValueError: invalid literal for int()
    ({"holdout": 1.5}, "holdout"),                # was "label 'tie' is not one of the fitted classes"
    ({"holdout": 0.0}, "holdout"),
    # posterior_steps was never checked: 2.5 ended in a raw TypeError from range(), 0 and -3 ran no posterior
    # stage at all (the draws were the guide's start around the MAP point) and True ran one step
    ({"posterior_steps": 2.5, "inference": "meanfield"}, "posterior_steps must be a whole number >= 1, not 2.5"),
    ({"posterior_steps": 0, "inference": "meanfield"}, "posterior_steps must be a whole number >= 1, not 0"),
    ({"posterior_steps": -3, "inference": "meanfield"}, "posterior_steps must be a whole number >= 1, not -3"),
    ({"posterior_steps": True, "inference": "meanfield"}, "posterior_steps must be a whole number >= 1, not True"),
])
def test_bad_type_settings_are_one_clear_error(settings, message):
    table, _, _ = categorical_judgments(2, n_items=20, n_annotators=6, per_item=3, seed=1)
    with pytest.raises(AccordError, match=message):
        RaterTypes(max_steps=5, **settings).fit(table)


@pytest.mark.parametrize("case", ["one annotator", "unanimous crowd"])
def test_tables_with_nothing_to_cluster_fit(case):
    """The spectral warm start ran ARPACK on the annotators' residual votes: with one annotator it asked for k=1
    singular vectors of a 1-row matrix (scipy's raw ValueError), and when every annotator votes as its pairs' crowd
    the matrix is zero (raw ArpackError 'Starting vector is zero')."""
    pairs = [f"p{i}" for i in range(12)]
    if case == "one annotator":
        table = pd.DataFrame({"pair_id": pairs, "annotator": "solo", "label": ["A", "B", "A"] * 4})
    else:
        table = pd.DataFrame({"pair_id": np.repeat(pairs, 3), "annotator": ["a", "b", "c"] * 12,
                              "label": np.repeat(["A", "B", "A"] * 4, 3)})
    model = RaterTypes(max_steps=60, seed=0).fit(table)
    probs = model.soft_labels_.probs
    assert np.isfinite(probs.to_numpy()).all() and np.allclose(probs.sum(axis=1), 1.0)
    votes = table.drop_duplicates("pair_id").set_index("pair_id")["label"]
    assert (probs.idxmax(axis=1) == votes.reindex(probs.index)).all()


def test_one_held_out_judgment_chooses_without_a_numpy_warning():
    """One annotator with 8 judgments holds out one: the standard error of one difference was numpy's std with
    ddof=1 of one number, a 'Degrees of freedom <= 0' RuntimeWarning that reached the command line's output."""
    import warnings

    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(8)], "annotator": "solo",
                          "label": ["A", "B", "A", "A", "B", "B", "A", "B"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = RaterTypes(max_steps=40, seed=0).fit(table)
    selection = model.selection_
    assert selection["chosen"].sum() == 1
    assert (selection.loc[selection["difference_to_best"] == 0, "se_difference"] == 0).all()
    assert selection.loc[selection["difference_to_best"] != 0, "se_difference"].isna().all()


@pytest.mark.parametrize("inference, setting", [("map", "max_steps"), ("meanfield", "max_steps"),
                                                ("meanfield", "posterior_steps")])
def test_an_svi_stage_stopped_at_its_step_limit_warns_naming_the_limit(inference, setting):
    """RaterTypes' MAP stage stopped at max_steps, or its posterior stage at posterior_steps, before the loss settled
    said nothing (svi_map_ / svi_ not converged); now one ConvergenceWarning naming the limit that stopped it."""
    import warnings

    from accord.models import ConvergenceWarning

    table = validate(pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(30)], 3),
                                   "annotator": [f"w{(i * 3 + j) % 6}" for i in range(30) for j in range(3)],
                                   "label": np.random.default_rng(0).choice(["A", "B"], 90)}))
    with pytest.warns(ConvergenceWarning, match=f"{setting}=3 before its loss settled") as caught:
        RaterTypes(n_types=2, inference=inference, num_samples=5, seed=0, **{setting: 3}).fit(table)
    assert [w.filename for w in caught if issubclass(w.category, ConvergenceWarning)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = RaterTypes(n_types=2, inference=inference, num_samples=5, seed=0).fit(table)
    assert model.svi_.converged and model.svi_map_.converged


def test_auto_types_stopped_at_the_step_limit_warns_once_naming_the_fits():
    """n_types='auto' with max_steps=2 warned one ConvergenceWarning per candidate number of types (pointing inside
    select_n_types) and one more for the final fit; now one warning, at the caller, naming the fits that stopped."""
    from accord.models import ConvergenceWarning

    table = validate(pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(30)], 3),
                                   "annotator": [f"w{(i * 3 + j) % 6}" for i in range(30) for j in range(3)],
                                   "label": np.random.default_rng(0).choice(["A", "B"], 90)}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = RaterTypes(max_steps=2, candidates=(1, 2), seed=0).fit(table)
    converged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(converged) == 1 and converged[0].filename == __file__
    message = str(converged[0].message)
    assert "max_steps=2" in message and "n_types=1, 2" in message and f"n_types={model.n_types_}" in message


@pytest.mark.parametrize("table", [
    pd.DataFrame({"pair_id": "p0", "annotator": [f"w{i}" for i in range(6)], "label": ["A", "A", "B", "A", "tie", "A"]}),
    pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(4)], 2), "annotator": ["a", "b"] * 4, "label": "tie"}),
])
def test_auto_types_on_a_table_too_small_to_hold_out_names_the_setting_to_change(table):
    """Every annotator with fewer than 5 judgments: n_types='auto' has nothing to score the candidates on. The error
    said only that no annotator had enough judgments; now it names n_types and holdout, and the fit with a number
    of types it points to works."""
    with pytest.raises(AccordError, match=r"n_types='auto' holds out .*holdout=0.2.*set n_types to a number"):
        RaterTypes(max_steps=50, seed=0).fit(table)
    probs = RaterTypes(n_types=1, max_steps=50, seed=0).fit(table).soft_labels_.probs
    assert np.isfinite(probs.to_numpy()).all() and np.allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize("form", ["categorical", "graded"])
def test_held_out_scoring_reads_a_plain_table_in_the_fitted_form(form):
    """predictive_loglik validated a plain (not yet validated) table as preferences, so a model fitted on
    categorical or graded labels refused its own judgments ('label outside the declared set {A, B, tie}'). Now it
    reads the table in the form and scale of the fit, and scores it as the validated table."""
    table, _, _ = categorical_judgments(3, n_items=30, n_annotators=6, per_item=3, seed=3)
    plain = pd.DataFrame({c: table[c].to_numpy() for c in ["pair_id", "annotator", "label"]})
    if form == "graded":
        plain = plain.assign(label=plain["label"] - 1)
        table = validate(plain, scale=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RaterTypes(n_types=2, max_steps=30, seed=0).fit(table)
    np.testing.assert_allclose(model.predictive_loglik(plain), model.predictive_loglik(table), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed, inference", [(5, "meanfield"), (0, "map"), (1, "meanfield")])
def test_types_are_reported_in_order_of_their_share(seed, inference):
    """Types were ordered by the mixture weights omega while ``types_`` reports the annotators' mean type
    probability as their share, so a posterior fit with near-equal types listed them out of share order (0.332,
    0.344, 0.324 on the first case). Now they are ordered by the share that is reported, largest first."""
    table, _ = typed_judgments(2, n_pairs=40, n_annotators=12, per_pair=5, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RaterTypes(n_types=3, seed=seed, inference=inference, max_steps=100, posterior_steps=50,
                           num_samples=20).fit(table)
    share = model.types_["share"].to_numpy()
    assert (np.diff(share) <= 0).all()
    np.testing.assert_allclose(share, model.responsibilities_.mean(0).to_numpy())
    np.testing.assert_allclose(model.responsibilities_.sum(1), 1.0, atol=1e-5)


class _ScoredTypes:
    """Stands in for a fitted candidate in :func:`select_n_types`: a fixed held-out log-likelihood per judgment
    (a base level for its number of types plus the same per-judgment noise for every candidate)."""

    def __init__(self, level: dict[int, float], n_types: int | None = None) -> None:
        self.level, self.n_types, self.holdout, self.seed = level, n_types, 0.2, 0
        self.candidates = tuple(level)

    def clone(self, n_types: int) -> "_ScoredTypes":
        return _ScoredTypes(self.level, n_types)

    def fit(self, table: pd.DataFrame) -> "_ScoredTypes":
        return self

    def predictive_loglik(self, table: pd.DataFrame) -> np.ndarray:
        noise = np.random.default_rng(0).normal(0.0, 0.05, len(table))
        return self.level[self.n_types] + noise


def test_the_number_of_types_is_chosen_among_every_candidate_not_the_first_dip():
    """The held-out score of rater types need not fall once it has fallen: on make_synthetic's default mix (1000
    pairs, 5 judgments each, seed 0) 2 types score -0.998, below 1 type's -0.991, and 3 types -0.976, the best by
    three standard errors. The search stopped at the first candidate scoring below a smaller one and kept 1 type,
    never scoring 3. Now every candidate is scored and the smallest within one standard error of the best is kept."""
    from accord.models.rater_types import select_n_types

    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(200)],
                          "annotator": np.repeat([f"w{j}" for j in range(20)], 10), "label": "A"})
    stub = _ScoredTypes({1: -1.00, 2: -1.10, 3: -0.80, 4: -0.81})
    selection = select_n_types(stub, table)  # type: ignore[arg-type]
    assert selection["n_types"].tolist() == [1, 2, 3, 4]
    assert selection.loc[selection["chosen"], "n_types"].item() == 3


def _three_raters() -> pd.DataFrame:
    labels = list("AABABBAAABBBABAABA")
    return validate(pd.DataFrame({"pair_id": [f"p{i}" for i in range(6) for _ in range(3)],
                                  "annotator": ["a", "b", "c"] * 6, "label": labels}))


def test_more_types_than_annotators_is_refused_naming_both_numbers():
    """RaterTypes(n_types=5) on three annotators fitted five types, two of them with no annotator (their clean
    label and share from the prior alone), without a word. Now it is refused, as scikit-learn's KMeans refuses more
    clusters than samples, naming the setting and both numbers."""
    with pytest.raises(AccordError, match=r"n_types=5 is more than the 3 annotator"):
        RaterTypes(n_types=5, max_steps=5, seed=0).fit(_three_raters())


def test_auto_leaves_out_candidates_above_the_number_of_annotators():
    table = _three_raters()
    model = RaterTypes(n_types="auto", candidates=(1, 2, 5), holdout=0.4, max_steps=5, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(table)
    assert model.selection_["n_types"].tolist() == [1, 2]
    with pytest.raises(AccordError, match=r"candidates=\(4, 5\) is more than the 3 annotator"):
        RaterTypes(n_types="auto", candidates=(4, 5), holdout=0.4, max_steps=5, seed=0).fit(table)
