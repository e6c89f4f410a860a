"""The synthetic generator: determinism, schema, workload, and that every latent truth it reports is recoverable."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.errors import AccordError
from accord.datasets.schema import validate
from accord.datasets.synthetic_attributes import make_synthetic_attributes
from accord.datasets.synthetic import (
    ANNOTATOR_TYPES,
    DEFAULT_ANNOTATOR_MIX,
    TOPICS,
    UTILITY_WEIGHTS,
    SyntheticData,
    make_synthetic,
)
from accord.metrics import calibration_error

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def big() -> SyntheticData:
    """200k judgments, two groups with unequal shares, ties on: enough to test rates to about a percent."""
    return make_synthetic(
        n_pairs=40_000, n_annotators=200, judgments_per_pair=5, n_groups=2, group_shares=(0.6, 0.4),
        tie_rate=0.1, with_text=False, seed=11,
    )


@pytest.fixture(scope="module")
def texty() -> SyntheticData:
    return make_synthetic(n_pairs=3_000, n_annotators=30, judgments_per_pair=2, seed=5)


def judgment_truth(data: SyntheticData) -> np.ndarray:
    """The true label each judgment is scored against: its pair's label for the rater's group."""
    j = data.judgments
    by_group = data.true_label_by_group
    rows = by_group.index.get_indexer(j["pair_id"])
    cols = by_group.columns.get_indexer(j["annotator_group"].astype(str))
    return by_group.to_numpy()[rows, cols]


def assert_same(a: SyntheticData, b: SyntheticData) -> None:
    pd.testing.assert_frame_equal(a.judgments, b.judgments)
    pd.testing.assert_frame_equal(a.annotators, b.annotators)
    pd.testing.assert_frame_equal(a.responses, b.responses)
    pd.testing.assert_frame_equal(a.true_p_a_by_group, b.true_p_a_by_group)
    pd.testing.assert_frame_equal(a.true_label_by_group, b.true_label_by_group)
    pd.testing.assert_series_equal(a.true_label, b.true_label)
    pd.testing.assert_series_equal(a.true_p_a, b.true_p_a)
    np.testing.assert_array_equal(a.confusion, b.confusion)


# -- determinism ------------------------------------------------------------------------------------------


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    n_groups=st.integers(1, 3),
    per_pair=st.one_of(st.integers(1, 4), st.just((1, 4))),
    with_text=st.booleans(),
)
def test_same_seed_same_data(seed: int, n_groups: int, per_pair: int | tuple[int, int], with_text: bool) -> None:
    kwargs = dict(n_pairs=60, n_annotators=12, judgments_per_pair=per_pair, n_groups=n_groups,
                  with_text=with_text, seed=seed)
    assert_same(make_synthetic(**kwargs), make_synthetic(**kwargs))


@FAST
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2, unique=True))
def test_different_seeds_differ(seeds: list[int]) -> None:
    a, b = (make_synthetic(n_pairs=200, n_annotators=20, judgments_per_pair=3, with_text=False, seed=s)
            for s in seeds)
    # 600 labels and 200 gold labels agreeing by chance has probability ~0.
    assert not a.judgments["label"].equals(b.judgments["label"])
    assert not a.true_label.equals(b.true_label)


def test_text_changes_no_label() -> None:
    """Text has its own random stream: switching it off must leave every label and id as it was."""
    with_text = make_synthetic(n_pairs=300, n_annotators=25, n_groups=2, seed=3)
    without = make_synthetic(n_pairs=300, n_annotators=25, n_groups=2, seed=3, with_text=False)
    text_columns = ["prompt", "response_a", "response_b"]
    assert set(text_columns) <= set(with_text.judgments.columns)
    assert not set(text_columns) & set(without.judgments.columns)
    pd.testing.assert_frame_equal(with_text.judgments.drop(columns=text_columns), without.judgments)
    pd.testing.assert_series_equal(with_text.true_label, without.true_label)
    pd.testing.assert_frame_equal(with_text.responses.drop(columns="text"), without.responses)


# -- schema, shapes and indexes ---------------------------------------------------------------------------


@st.composite
def generator_kwargs(draw: st.DrawFn) -> dict:
    n_annotators = draw(st.integers(1, 30))
    low = draw(st.integers(1, n_annotators))
    high = draw(st.integers(low, n_annotators))
    per_pair = draw(st.sampled_from([low, (low, high)]))
    weights = draw(st.lists(st.floats(0, 1), min_size=len(ANNOTATOR_TYPES), max_size=len(ANNOTATOR_TYPES))
                   .filter(lambda w: sum(w) > 0.01))
    return dict(
        n_pairs=draw(st.integers(1, 250)),
        n_annotators=n_annotators,
        judgments_per_pair=per_pair,
        annotator_mix=dict(zip(ANNOTATOR_TYPES, weights)),
        n_groups=draw(st.integers(1, min(3, n_annotators))),  # every group has a rater (else refused)
        contested_topics=draw(st.one_of(st.integers(0, len(TOPICS)),
                                        st.lists(st.sampled_from(list(TOPICS)), max_size=3))),
        tie_rate=draw(st.sampled_from([0.0, 0.05, 0.3, 0.8])),
        n_responses_per_prompt=draw(st.integers(2, 6)),
        utility_scale=draw(st.sampled_from([0.0, 1.0, 3.0])),
        activity_skew=draw(st.sampled_from([0.0, 1.0, 3.0])),
        with_text=draw(st.booleans()),
        seed=draw(st.integers(0, 1000)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kwargs=generator_kwargs())
def test_tables_are_valid_and_consistent(kwargs: dict) -> None:
    data = make_synthetic(**kwargs)
    j = data.judgments
    n_pairs, n_annotators, n_groups = kwargs["n_pairs"], kwargs["n_annotators"], kwargs["n_groups"]

    # validate() passes (with duplicates="error") and the table is in preference form.
    assert validate(j).attrs["accord"]["form"] == "preference"
    assert j.attrs["accord"]["form"] == "preference"
    assert not j.duplicated(["pair_id", "annotator"]).any()

    # Judgments per pair inside the requested range; every pair judged.
    per_pair = kwargs["judgments_per_pair"]
    low, high = per_pair if isinstance(per_pair, tuple) else (per_pair, per_pair)
    counts = j.groupby("pair_id").size()
    assert len(counts) == n_pairs and counts.between(low, high).all()

    # One index of pair ids shared by every per-pair object, and it matches the table.
    pairs = data.true_label.index
    assert pairs.is_unique and len(pairs) == n_pairs and set(pairs) == set(j["pair_id"])
    for obj in (data.true_p_a, data.true_p_tie, data.true_p_a_by_group, data.true_label_by_group):
        assert obj.index.equals(pairs)
    assert list(data.true_p_a_by_group.columns) == [f"g{g}" for g in range(n_groups)]
    assert data.true_label.isin(["A", "B", "tie"]).all()
    assert data.true_p_a.between(0, 1).all() and data.true_p_tie.between(0, 1).all()
    assert (data.true_p_tie > 0).any() == (kwargs["tie_rate"] > 0)
    # The gold column repeats the pair's true label.
    assert (j["gold"].to_numpy() == data.true_label.loc[j["pair_id"]].to_numpy()).all()
    # The population's label is one of its groups' labels.
    assert data.true_label_by_group.eq(data.true_label, axis=0).any(axis=1).all()

    # Annotators: one row each, covariates in the table match, counts add up.
    ann = data.annotators
    assert len(ann) == n_annotators and ann.index.is_unique
    assert ann["n_judgments"].sum() == len(j)
    observed = j["annotator"].value_counts()
    assert (ann.loc[observed.index, "n_judgments"] == observed).all()
    assert (j["annotator_type"].astype(str).to_numpy() == ann.loc[j["annotator"], "type"].astype(str).to_numpy()).all()
    assert (j["annotator_group"].astype(str).to_numpy()
            == ann.loc[j["annotator"], "group"].astype(str).to_numpy()).all()
    assert ann["accuracy"].between(0, 1).all() and ann["tie_rate"].between(0, 1).all()
    assert data.confusion.shape == (n_annotators, 3, 3)
    np.testing.assert_allclose(data.confusion.sum(axis=2), 1.0)
    assert (data.confusion >= 0).all()

    # Responses: both sides exist, differ, and answer the same prompt, whose topic is the item's topic.
    resp = data.responses
    assert resp.index.is_unique
    a = resp.loc[j["response_a_id"]]
    b = resp.loc[j["response_b_id"]]
    assert (j["response_a_id"] != j["response_b_id"]).all()
    assert (a["prompt_id"].to_numpy() == b["prompt_id"].to_numpy()).all()
    assert (a["topic"].astype(str).to_numpy() == j["item_topic"].astype(str).to_numpy()).all()
    if kwargs["with_text"]:
        assert (j["response_a"].to_numpy() == a["text"].to_numpy()).all()
        assert (j["response_b"].to_numpy() == b["text"].to_numpy()).all()
        assert (j["prompt"].to_numpy() == a["prompt"].to_numpy()).all()
        assert resp["text"].str.len().gt(0).all()
    else:
        assert "text" not in resp.columns and "response_a" not in j.columns

    # Group 0's P(A > B) is Bradley-Terry on the two responses' utility gap.
    sides = j.drop_duplicates("pair_id").set_index("pair_id").loc[pairs]
    gap = (resp.loc[sides["response_a_id"], "utility"].to_numpy()
           - resp.loc[sides["response_b_id"], "utility"].to_numpy())
    np.testing.assert_allclose(data.true_p_a_by_group["g0"], sigmoid(gap), atol=1e-12)


def test_groups_and_types_follow_the_requested_shares() -> None:
    mix = {"reliable": 0.5, "spammer": 0.3, "tie_prone": 0.2}
    data = make_synthetic(n_pairs=50, n_annotators=40, annotator_mix=mix, n_groups=2, group_shares=(3, 1),
                          with_text=False)
    types = data.annotators["type"].astype(str).value_counts()
    assert types.to_dict() == {"reliable": 20, "spammer": 12, "tie_prone": 8}
    assert data.annotators["group"].astype(str).value_counts().to_dict() == {"g0": 30, "g1": 10}
    # The population's preference is the share-weighted mix of the groups'.
    expected = 0.75 * data.true_p_a_by_group["g0"] + 0.25 * data.true_p_a_by_group["g1"]
    np.testing.assert_allclose(data.true_p_a, expected)


# -- annotator behaviour ----------------------------------------------------------------------------------


def _per_annotator(data: SyntheticData) -> pd.DataFrame:
    j = data.judgments
    frame = pd.DataFrame({
        "annotator": j["annotator"].to_numpy(),
        "correct": j["label"].to_numpy() == judgment_truth(data),
        "is_a": j["label"].to_numpy() == "A",
        "is_b": j["label"].to_numpy() == "B",
        "is_tie": j["label"].to_numpy() == "tie",
    })
    return frame.groupby("annotator").sum().join(data.annotators)


def test_reported_rates_are_recoverable(big: SyntheticData) -> None:
    """accuracy, position_bias and tie_rate are real answer probabilities: binomial z-tests for busy raters."""
    stats = _per_annotator(big)
    busy = stats[stats["n_judgments"] >= 300]
    assert len(busy) > 100 and set(busy["type"].astype(str)) == set(DEFAULT_ANNOTATOR_MIX)
    n = busy["n_judgments"]

    def z(successes: pd.Series, trials: pd.Series, p: pd.Series) -> pd.Series:
        return (successes / trials - p) / np.sqrt(p.clip(1e-3, 1 - 1e-3) * (1 - p.clip(1e-3, 1 - 1e-3)) / trials)

    # ~130 raters x 3 tests: under the model |z| > 4.5 has probability ~1e-3 in total.
    assert z(busy["correct"], n, busy["accuracy"]).abs().max() < 4.5
    assert z(busy["is_tie"], n, busy["tie_rate"]).abs().max() < 4.5
    sided = busy["is_a"] + busy["is_b"]
    assert z(busy["is_a"], sided, busy["position_bias"]).abs().max() < 4.5
    # The pooled accuracy of reliable raters matches the mean of their stated accuracies.
    reliable = stats[stats["type"] == "reliable"]
    pooled = reliable["correct"].sum() / reliable["n_judgments"].sum()
    stated = np.average(reliable["accuracy"], weights=reliable["n_judgments"])
    assert abs(pooled - stated) < 0.01
    assert reliable["accuracy"].between(0.65, 0.95).all()


def test_spammers_answer_uniformly(big: SyntheticData) -> None:
    j = big.judgments
    truth = judgment_truth(big)
    spam = (j["annotator_type"] == "spammer").to_numpy()
    labels = j["label"].to_numpy()[spam]
    sided = labels != "tie"
    n = sided.sum()
    assert n > 10_000
    assert abs((labels[sided] == "A").mean() - 0.5) < 4 * np.sqrt(0.25 / n)
    # Uninformative: the answer does not depend on the truth.
    assert abs((labels[truth[spam] == "A"] == "A").mean() - (labels[truth[spam] == "B"] == "A").mean()) < 0.03
    assert abs((labels == "tie").mean() - 0.1) < 0.02


def test_position_biased_tie_prone_and_adversarial_raters(big: SyntheticData) -> None:
    j = big.judgments
    labels = j["label"].to_numpy()
    kind = j["annotator_type"].astype(str).to_numpy()
    truth = judgment_truth(big)
    biased = labels[kind == "position_biased"]
    assert (biased[biased != "tie"] == "A").mean() > 0.75
    assert (labels[kind == "tie_prone"] == "tie").mean() > 0.3
    assert (labels[kind == "reliable"] == "tie").mean() < 0.2
    # Adversaries mostly report the opposite side.
    adversarial = (kind == "adversarial") & (truth == "A")
    assert (labels[adversarial] == "B").mean() > 0.6
    assert (labels[(kind == "reliable") & (truth == "A")] == "A").mean() > 0.7


# -- groups, calibration, ties ----------------------------------------------------------------------------


def test_groups_disagree_on_contested_topics_only(big: SyntheticData) -> None:
    contested = {"politics", "parenting"}  # the default contested_topics=2 takes the first two topics
    topic = big.judgments.drop_duplicates("pair_id").set_index("pair_id").loc[big.true_label.index, "item_topic"]
    on_contested = topic.astype(str).isin(contested).to_numpy()
    assert 0.15 < on_contested.mean() < 0.35

    p = big.true_p_a_by_group
    np.testing.assert_allclose(p["g1"][on_contested], 1 - p["g0"][on_contested])
    np.testing.assert_allclose(p["g1"][~on_contested], p["g0"][~on_contested])
    labels = big.true_label_by_group
    swapped = labels["g0"].map({"A": "B", "B": "A", "tie": "tie"})
    assert (labels["g1"][on_contested] == swapped[on_contested]).all()
    assert (labels["g1"][~on_contested] == labels["g0"][~on_contested]).all()
    assert (labels["g0"][on_contested] != labels["g1"][on_contested]).mean() > 0.8

    # The observed judgments show it: reliable raters of group 1 contradict group 0's label on contested topics.
    j = big.judgments
    g0_label = labels["g0"].loc[j["pair_id"]].to_numpy()
    reliable = (j["annotator_type"] == "reliable").to_numpy() & (g0_label != "tie")
    item_contested = j["item_topic"].astype(str).isin(contested).to_numpy()
    agree = j["label"].to_numpy() == g0_label
    for group in ("g0", "g1"):
        in_group = reliable & (j["annotator_group"] == group).to_numpy()
        assert agree[in_group & ~item_contested].mean() > 0.75
    assert agree[reliable & (j["annotator_group"] == "g0").to_numpy() & item_contested].mean() > 0.75
    assert agree[reliable & (j["annotator_group"] == "g1").to_numpy() & item_contested].mean() < 0.25

    # With one group nothing is contested, whatever contested_topics says.
    single = make_synthetic(n_pairs=500, n_annotators=10, contested_topics=8, with_text=False)
    assert single.true_label_by_group.shape[1] == 1
    assert single.judgments["annotator_group"].astype(str).eq("g0").all()


def test_true_probabilities_are_calibrated_against_gold(big: SyntheticData) -> None:
    gold = big.true_label
    sided = (gold != "tie").to_numpy()
    p_a = big.true_p_a.to_numpy()[sided]
    won = (gold.to_numpy()[sided] == "A").astype(float)
    assert calibration_error(p_a, won) < 0.02
    # The check has power: the same probabilities, shuffled across pairs, are badly calibrated.
    assert calibration_error(np.random.default_rng(0).permutation(p_a), won) > 0.1

    is_tie = (gold == "tie").to_numpy().astype(float)
    assert abs(is_tie.mean() - 0.1) < 0.01
    assert abs(big.true_p_tie.mean() - 0.1) < 1e-6  # nu is solved so the expected tie share is tie_rate
    assert calibration_error(big.true_p_tie.to_numpy(), is_tie) < 0.02
    # Ties happen where the groups are near-indifferent (Davidson: P(tie) peaks at d = 0).
    spread = (big.true_p_a_by_group["g0"] - 0.5).abs()
    assert spread[gold == "tie"].mean() < spread[gold != "tie"].mean() - 0.03


@FAST
@given(tie_rate=st.floats(0.0, 0.9), seed=st.integers(0, 100))
def test_tie_rate_sets_the_expected_share_of_ties(tie_rate: float, seed: int) -> None:
    data = make_synthetic(n_pairs=300, n_annotators=5, judgments_per_pair=1, tie_rate=tie_rate,
                          annotator_mix={"reliable": 1.0}, with_text=False, seed=seed)
    assert data.true_p_tie.mean() == pytest.approx(tie_rate, abs=1e-6)
    if tie_rate == 0.0:
        assert (data.true_label != "tie").all()
        assert (data.judgments["label"] != "tie").all()  # reliable raters only tie on errors, at tie_rate


@FAST
@given(utility_scale=st.floats(300.0, 1e9), tie_rate=st.floats(0.01, 0.9), seed=st.integers(0, 100))
def test_a_large_utility_scale_keeps_the_tie_rate_and_a_consistent_gold(utility_scale: float, tie_rate: float,
                                                                         seed: int) -> None:
    """Near-deterministic preferences: P(tie) still averages tie_rate and gold follows the one-sided true_p_a.
    Was: once cosh(d / 2) overflowed, every true_p_tie NaN and every gold label "B"."""
    data = make_synthetic(n_pairs=300, n_annotators=5, judgments_per_pair=1, tie_rate=tie_rate,
                          utility_scale=utility_scale, annotator_mix={"reliable": 1.0}, with_text=False, seed=seed)
    assert np.isfinite(data.true_p_tie).all() and data.true_p_tie.between(0.0, 1.0).all()
    assert data.true_p_tie.mean() == pytest.approx(tie_rate, abs=1e-6)
    sure_a, sure_b = data.true_p_a > 1 - 1e-9, data.true_p_a < 1e-9
    assert (data.true_label[sure_a] != "B").all() and (data.true_label[sure_b] != "A").all()


def test_a_large_activity_skew_gives_finite_activities() -> None:
    """The activity column reads "times the average workload" however skewed. Was: exp overflowed, the column
    held inf / NaN and the busiest rater's weight was lost."""
    data = make_synthetic(n_pairs=300, n_annotators=40, judgments_per_pair=2, activity_skew=2000.0,
                          with_text=False, seed=1)
    activity = data.annotators["activity"]
    assert np.isfinite(activity).all() and activity.mean() == pytest.approx(1.0)
    busiest = activity.idxmax()
    assert data.annotators.loc[busiest, "n_judgments"] == 300  # a weight of about n: on every pair


def test_a_large_activity_skew_draws_attribute_raters_without_overflow() -> None:
    """The attribute generator's workloads under a large skew: the busiest rater rates every response, and no
    exp overflows on the way. Was: exp(activity_skew * z) overflowed (RuntimeWarning; inf weights)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = make_synthetic_attributes(n_responses=60, n_raters=30, raters_per_response=2, activity_skew=800.0,
                                         with_text=False, seed=1)
    per_rater = data.judgments.groupby("annotator")["response_id"].nunique()
    assert per_rater.max() == 60


# -- text -------------------------------------------------------------------------------------------------


def test_utility_is_a_function_of_the_text(texty: SyntheticData) -> None:
    resp = texty.responses
    expected = (
        UTILITY_WEIGHTS["n_facts"] * (resp["n_facts"] - 2)
        + UTILITY_WEIGHTS["n_filler"] * (resp["n_filler"] - 1)
        + UTILITY_WEIGHTS["tone"] * resp["tone"]
    )
    np.testing.assert_allclose(resp["utility"], expected)
    # The facts in a text are its topic's facts, n_facts of them.
    for topic, facts in ((name, spec["facts"]) for name, spec in TOPICS.items()):
        rows = resp[resp["topic"] == topic]
        counted = sum(rows["text"].str.count(re.escape(fact)) for fact in facts)
        assert (counted == rows["n_facts"]).all()
    assert texty.judgments["prompt"].str.endswith("?").all()


def test_a_bag_of_words_model_learns_utility_from_text(texty: SyntheticData) -> None:
    """A reward model could learn u from text alone: ridge regression on word counts, held-out R^2."""
    resp = texty.responses
    words = resp["text"].str.lower().str.findall(r"[a-z\-']+")
    vocab = {w: i for i, w in enumerate(sorted({w for ws in words for w in ws}))}
    x = np.zeros((len(resp), len(vocab)))
    for row, ws in enumerate(words):
        for w in ws:
            x[row, vocab[w]] += 1
    x = np.hstack([x, np.ones((len(resp), 1))])
    y = resp["utility"].to_numpy()
    split = len(resp) * 3 // 4
    coef = np.linalg.solve(x[:split].T @ x[:split] + 1e-2 * np.eye(x.shape[1]), x[:split].T @ y[:split])
    residual = y[split:] - x[split:] @ coef
    r2 = 1 - residual.var() / y[split:].var()
    assert r2 > 0.95
    # Length alone is a poor proxy: filler sentences add words but lower the utility.
    length = words.str.len().to_numpy()
    assert abs(np.corrcoef(length, y)[0, 1]) < 0.8


# -- workload ---------------------------------------------------------------------------------------------


def test_workload_is_long_tailed_and_controllable() -> None:
    def top_decile_share(skew: float) -> float:
        data = make_synthetic(n_pairs=10_000, n_annotators=500, judgments_per_pair=5, activity_skew=skew,
                              with_text=False, seed=2)
        n = np.sort(data.annotators["n_judgments"].to_numpy())[::-1]
        return n[: len(n) // 10].sum() / n.sum()

    flat, default, steep = top_decile_share(0.0), top_decile_share(1.0), top_decile_share(2.0)
    assert flat < 0.13  # equal workloads: the top tenth does about a tenth of the work
    assert 0.25 < default < steep
    assert steep > 0.5


@FAST
@given(n=st.integers(1, 6), skew=st.sampled_from([0.0, 2.0, 5.0]), seed=st.integers(0, 100))
def test_saturated_assignment_still_distinct(n: int, skew: float, seed: int) -> None:
    """Every rater on every pair (per_pair == n_annotators), even with extreme activity skew."""
    data = make_synthetic(n_pairs=40, n_annotators=n, judgments_per_pair=n, activity_skew=skew,
                          with_text=False, seed=seed)
    assert len(data.judgments) == 40 * n
    assert (data.annotators["n_judgments"] == 40).all()


# -- arguments --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_pairs": 0},
        {"n_annotators": 3, "judgments_per_pair": 4},
        {"judgments_per_pair": (3, 2)},
        {"judgments_per_pair": 0},
        {"annotator_mix": {"robot": 1.0}},
        {"annotator_mix": {"reliable": -1.0, "spammer": 2.0}},
        {"annotator_mix": {"reliable": 0.0}},
        {"n_groups": 2, "contested_topics": ["astrology"]},
        {"n_groups": 2, "group_shares": (1.0,)},
        {"tie_rate": 1.0},
        {"n_responses_per_prompt": 1},
        {"activity_skew": -1.0},
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict) -> None:
    with pytest.raises(AccordError):
        make_synthetic(**{"n_pairs": 10, "n_annotators": 10, "judgments_per_pair": 2, **kwargs})


@pytest.mark.parametrize("kwargs", [{"n_annotators": 3, "n_groups": 5}, {"n_groups": 2, "group_shares": (0.99, 0.01)}])
def test_a_group_without_annotators_is_refused(kwargs: dict) -> None:
    # the group's view went into the gold labels while no judgment showed it: five groups among three raters, or
    # a 1% group among ten, gave a table whose ground truth no method could recover
    with pytest.raises(AccordError, match="gets none of the"):
        make_synthetic(**{"n_pairs": 10, "n_annotators": 10, "judgments_per_pair": 2, **kwargs})


# -- scale ------------------------------------------------------------------------------------------------


def test_a_million_judgments(capsys: pytest.CaptureFixture[str]) -> None:
    """Time and peak memory of 1M judgments, measured in a fresh interpreter so the numbers are the generator's own
    (tracemalloc would slow pandas' Python-level work several-fold; ru_maxrss is per process). Printed, not asserted.
    """
    script = textwrap.dedent(
        """
        import json, resource, time
        from accord.datasets.synthetic import make_synthetic
        make_synthetic(n_pairs=50, with_text=False)  # warm imports and caches
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        data = make_synthetic(n_pairs=200_000, n_annotators=2_000, judgments_per_pair=5, with_text=False, seed=1)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"n": len(data.judgments), "seconds": elapsed, "rss_growth_mib": (after - before) / 1024,
                          "peak_rss_mib": after / 1024,
                          "table_mib": data.judgments.memory_usage(deep=True).sum() / 2**20}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["n"] == 1_000_000
    with capsys.disabled():
        print(f"\nmake_synthetic: 1,000,000 judgments in {result['seconds']:.2f} s; peak RSS grew "
              f"{result['rss_growth_mib']:.0f} MiB (process peak {result['peak_rss_mib']:.0f} MiB); "
              f"table {result['table_mib']:.0f} MiB")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 0.6))
def test_held_out_prompts_keep_every_response_on_one_side(seed: int, share: float) -> None:
    data = make_synthetic(n_pairs=240, n_annotators=20, judgments_per_pair=2, seed=seed % 7, with_text=False)
    held_out = data.held_out_prompts(share, seed)
    assert held_out.index.equals(data.true_label.index) and held_out.dtype == bool
    pairs = data.judgments.drop_duplicates("pair_id").set_index("pair_id").reindex(held_out.index)
    prompt = data.responses["prompt_id"].reindex(pairs["response_a_id"]).to_numpy()
    test_prompts, train_prompts = set(prompt[held_out.to_numpy()]), set(prompt[~held_out.to_numpy()])
    assert not test_prompts & train_prompts  # whole prompts on one side
    test_responses = set(pairs.loc[held_out, "response_a_id"]) | set(pairs.loc[held_out, "response_b_id"])
    train_responses = set(pairs.loc[~held_out, "response_a_id"]) | set(pairs.loc[~held_out, "response_b_id"])
    assert not test_responses & train_responses  # no held-out response is ever trained on
    n_prompts = len(test_prompts | train_prompts)
    assert len(test_prompts) == max(1, round(share * n_prompts))
    assert held_out.equals(data.held_out_prompts(share, seed))  # seeded


def test_held_out_prompts_rejects_a_share_outside_zero_one() -> None:
    data = make_synthetic(n_pairs=30, n_annotators=5, judgments_per_pair=2, with_text=False)
    for share in (0.0, 1.0, -0.2):
        with pytest.raises(AccordError, match="share must be in"):
            data.held_out_prompts(share)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_pairs=st.integers(1, 24), share=st.floats(0.01, 0.99))
def test_held_out_prompts_leave_a_prompt_to_train_on(n_pairs: int, share: float) -> None:
    """A split whose held-out side would take every prompt (one prompt, or share 0.9 of two) is refused naming the
    share: it returned an all-True mask without a word, and nothing was left to train on."""
    data = make_synthetic(n_pairs=n_pairs, n_annotators=5, judgments_per_pair=2, n_responses_per_prompt=3,
                          with_text=False)
    n_prompts = data.responses["prompt_id"].nunique()
    if max(1, round(share * n_prompts)) >= n_prompts:
        with pytest.raises(AccordError, match=rf"share={share!r} of the data's {n_prompts} prompt"):
            data.held_out_prompts(share)
    else:
        held_out = data.held_out_prompts(share)
        assert held_out.any() and not held_out.all()
