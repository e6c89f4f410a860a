"""Metrics against values computed by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord import metrics

PROBS = pd.DataFrame({"A": [0.9, 0.4, 0.5, 0.2], "B": [0.1, 0.6, 0.3, 0.2], "tie": [0.0, 0.0, 0.2, 0.6]},
                     index=["p1", "p2", "p3", "p4"])
GOLD = pd.Series({"p1": "A", "p2": "A", "p3": "B", "p4": "tie"})


def test_accuracy_excludes_gold_ties_by_default():
    # p1 right, p2 wrong, p3 wrong; p4 (gold tie) left out
    assert metrics.accuracy(PROBS, GOLD) == pytest.approx(1 / 3)
    # counted: p4 is predicted tie and right
    assert metrics.accuracy(PROBS, GOLD, ties="count") == pytest.approx(2 / 4)


def test_nll_by_hand():
    expected = -(math.log(0.9) + math.log(0.4) + math.log(0.3) + math.log(0.6)) / 4
    assert metrics.nll(PROBS, GOLD) == pytest.approx(expected)


def test_brier_by_hand():
    expected = ((0.1**2 + 0.1**2) + (0.6**2 + 0.6**2) + (0.5**2 + 0.7**2 + 0.2**2) + (0.2**2 + 0.2**2 + 0.4**2)) / 4
    assert metrics.brier(PROBS, GOLD) == pytest.approx(expected)


def test_ece_by_hand():
    # confidences 0.9 (right), 0.6 (wrong), 0.5 (wrong), 0.6 (right); 10 bins: {0.9}, {0.6, 0.6}, {0.5}
    expected = (abs(0.9 - 1) + abs(1.2 - 1) + abs(0.5 - 0)) / 4
    assert metrics.ece(PROBS, GOLD) == pytest.approx(expected)


def test_calibration_error_against_true_probabilities_is_zero_when_equal():
    p = np.linspace(0.01, 0.99, 50)
    assert metrics.calibration_error(p, p) == pytest.approx(0.0)


def test_alignment_uses_common_ids_only():
    gold = pd.Series({"p1": "A", "zz": "B"})
    assert metrics.score(PROBS, gold)["n"] == 1


def test_unknown_gold_class_is_an_error():
    with pytest.raises(ValueError, match="not one of the classes"):
        metrics.nll(PROBS, pd.Series({"p1": "C"}))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.integers(1, 20))
def test_ece_is_between_zero_and_one(values, n_bins):
    p = np.array(values)
    outcome = (p > 0.5).astype(float)
    value = metrics.calibration_error(p, outcome, n_bins)
    assert 0.0 <= value <= 1.0


def _reference_calibration_error(p: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    """ECE written out bin by bin: bin k holds edges[k] <= p < edges[k + 1] (the last bin also p == 1)."""
    edges = [k / n_bins for k in range(n_bins + 1)]
    total = 0.0
    for k in range(n_bins):
        upper = p <= edges[k + 1] if k == n_bins - 1 else p < edges[k + 1]
        inside = (p >= edges[k]) & upper
        total += abs(p[inside].sum() - outcome[inside].sum())
    return total / len(p)


def test_calibration_error_puts_one_forty_ninth_in_the_bin_it_opens():
    # floor(p * n) put 1/49 in bin 0 ((1/49) * 49 rounds below 1), apart from 1.5/49 in bin 1
    p, outcome = np.array([1 / 49, 1.5 / 49]), np.array([1.0, 0.0])
    assert metrics.calibration_error(p, outcome, 49) == pytest.approx(abs(p.sum() - 1.0) / 2)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.data())
def test_calibration_error_puts_a_probability_on_an_edge_in_the_bin_it_opens(n_bins, data):
    # probabilities exactly on the edges k / n_bins and inside the bins they open
    size = data.draw(st.integers(1, 30))
    ks = data.draw(st.lists(st.integers(0, n_bins), min_size=size, max_size=size))
    halves = data.draw(st.lists(st.booleans(), min_size=size, max_size=size))
    outcome = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=size, max_size=size)))
    p = np.array([min(k + 0.5 * half, n_bins) / n_bins for k, half in zip(ks, halves)])
    assert metrics.calibration_error(p, outcome, n_bins) == pytest.approx(
        _reference_calibration_error(p, outcome, n_bins), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.integers(1, 20), st.data())
def test_calibration_error_matches_a_bin_by_bin_reference(values, n_bins, data):
    p = np.array(values)
    outcome = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(p), max_size=len(p))))
    assert metrics.calibration_error(p, outcome, n_bins) == pytest.approx(
        _reference_calibration_error(p, outcome, n_bins), abs=1e-12)


def test_calibration_error_with_one_bin_is_the_gap_of_the_means():
    p = np.array([0.1, 0.7, 1.0, 0.0])
    outcome = np.array([0.0, 1.0, 1.0, 1.0])
    assert metrics.calibration_error(p, outcome, 1) == pytest.approx(abs(p.mean() - outcome.mean()))


@pytest.mark.parametrize("argument", ["predicted", "outcome"])
@pytest.mark.parametrize("bad", [float("nan"), 1.5, -0.1, float("inf")])
def test_calibration_error_names_the_argument_with_a_value_that_is_no_probability(argument, bad):
    # NaN gave a NaN ECE (outcome) or numpy's "'list' argument must have no negative elements" (predicted)
    arrays = {"predicted": np.array([0.2, 0.6, 0.9]), "outcome": np.array([0.0, 1.0, 1.0])}
    arrays[argument][1] = bad
    with pytest.raises(ValueError, match=f"{argument}: 1 values are not probabilities .*position 1"):
        metrics.calibration_error(arrays["predicted"], arrays["outcome"])


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True])
def test_calibration_error_refuses_a_bin_count_that_is_no_positive_whole_number(n_bins):
    with pytest.raises(ValueError, match="n_bins must be a whole number >= 1"):
        metrics.calibration_error(np.array([0.2, 0.6]), np.array([0.0, 1.0]), n_bins)


@pytest.mark.parametrize("scorer", [metrics.nll, metrics.brier, metrics.ece, metrics.score])
@pytest.mark.parametrize("bad", [float("nan"), -0.2, 1.2])
def test_a_value_that_is_no_probability_is_one_error_naming_its_id_and_column(scorer, bad):
    # was: nll ignored a NaN of a class that is not gold, brier returned NaN
    probs = PROBS.copy()
    probs.loc["p2", "B"] = bad
    with pytest.raises(ValueError, match="probabilities: 1 values are not in \\[0, 1\\] \\(id 'p2', column 'B'"):
        scorer(probs, GOLD)


def test_accuracy_takes_any_scores_but_names_a_nan():
    # only the argmax is read: vote counts or log-odds are fine; a NaN was skipped by idxmax
    counts = PROBS * 7 - 1
    assert metrics.accuracy(counts, GOLD) == metrics.accuracy(PROBS, GOLD)
    counts.loc["p2", "B"] = float("nan")
    with pytest.raises(ValueError, match="scores: 1 values are NaN \\(id 'p2', column 'B'"):
        metrics.accuracy(counts, GOLD)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 30), st.integers(2, 3), st.integers(0, 2**32 - 1))
def test_scores_match_sklearn(n, n_classes, seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    classes = ["A", "B", "tie"][:n_classes]
    raw = rng.dirichlet(np.ones(n_classes), size=n)
    # exact 0 and 1 and exact ties between classes as well as interior values
    raw[rng.random(n) < 0.2] = np.eye(n_classes)[0]
    raw[rng.random(n) < 0.2] = np.full(n_classes, 1 / n_classes)
    probs = pd.DataFrame(raw, columns=classes)
    gold = pd.Series(rng.choice(classes, size=n))
    codes = pd.Index(classes).get_indexer(gold)
    onehot = np.eye(n_classes)[codes]
    clipped = np.clip(raw[np.arange(n), codes], metrics.EPS, 1.0)
    assert metrics.nll(probs, gold) == pytest.approx(-np.log(clipped).mean())
    assert metrics.brier(probs, gold) == pytest.approx(((raw - onehot) ** 2).sum(axis=1).mean())
    predicted = np.array(classes)[raw.argmax(axis=1)]  # first column on exact ties, as the docstring says
    assert metrics.accuracy(probs, gold, ties="count") == pytest.approx(
        sklearn_metrics.accuracy_score(gold, predicted))
    confidence, correct = raw.max(axis=1), (raw.argmax(axis=1) == codes).astype(float)
    assert metrics.ece(probs, gold) == pytest.approx(_reference_calibration_error(confidence, correct, 10))
    interior = (raw > 1e-6).all(axis=1)
    if interior.all() and len(set(gold)) == n_classes:
        assert metrics.nll(probs, gold) == pytest.approx(sklearn_metrics.log_loss(gold, raw, labels=classes))
    if n_classes == 2:  # sklearn's binary Brier score is one class's squared error: half the two-column sum
        assert metrics.brier(probs, gold) == pytest.approx(
            2 * sklearn_metrics.brier_score_loss(gold == "A", raw[:, 0]))


def test_gold_labels_that_are_all_ties_give_a_nan_accuracy_and_the_other_scores():
    # was: "no ids in common between the predictions and the gold labels", so metrics.score (accord aggregate's
    # summary) failed on gold that is all ties
    gold = pd.Series({"p3": "tie", "p4": "tie"})
    scores = metrics.score(PROBS, gold)
    assert np.isnan(scores["accuracy"]) and scores["n"] == 2
    assert scores["nll"] == pytest.approx(-(math.log(0.2) + math.log(0.6)) / 2)
    assert metrics.accuracy(PROBS, gold, ties="count") == 0.5
    with pytest.raises(ValueError, match="no ids in common"):
        metrics.accuracy(PROBS, pd.Series({"zz": "A"}))


def test_score_counts_its_items_as_a_whole_number():
    # "n" was float(len(...)): 4.0 items in JSON and printed metrics, where the reward layer writes counts as ints
    scores = metrics.score(PROBS, GOLD)
    assert type(scores["n"]) is int and scores["n"] == 4, scores


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(2, 4), st.data())
def test_split_prediction_ties_is_the_mean_over_every_tie_break(n, n_classes, data):
    # scores from a few levels so that exact ties are common; gold may be "tie" (a class here) to check ties=
    classes = ["A", "B", "tie", "C"][:n_classes]
    values = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5]), min_size=n * n_classes,
                                          max_size=n * n_classes))).reshape(n, n_classes)
    probs = pd.DataFrame(values, index=[f"p{i}" for i in range(n)], columns=classes)
    gold = pd.Series(data.draw(st.lists(st.sampled_from(classes), min_size=n, max_size=n)), index=probs.index)
    for ties in ("exclude", "count"):
        if ties == "exclude" and (gold == "tie").all():
            continue
        # "first" on the columns in every order: each order is one deterministic tie-break
        expected = np.mean([metrics.accuracy(probs[list(order)], gold, ties=ties)
                            for order in itertools.permutations(classes)])
        assert metrics.accuracy(probs, gold, ties=ties, predicted_ties="split") == pytest.approx(expected)
        # and by hand: a tied item is worth 1/k if gold is among its k top classes
        scored = gold.index if ties == "count" else gold.index[gold != "tie"]
        top = values == values.max(axis=1, keepdims=True)
        credit = [top[i, classes.index(gold.iloc[i])] / top[i].sum() for i in range(n) if probs.index[i] in scored]
        assert metrics.accuracy(probs, gold, ties=ties, predicted_ties="split") == pytest.approx(np.mean(credit))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_split_prediction_ties_equals_first_without_ties(n, n_classes, seed):
    rng = np.random.default_rng(seed)
    classes = ["A", "B", "C", "D"][:n_classes]
    probs = pd.DataFrame(rng.dirichlet(np.ones(n_classes), size=n), columns=classes)  # continuous: no exact ties
    gold = pd.Series(rng.choice(classes, size=n))
    assert metrics.accuracy(probs, gold, predicted_ties="split") == metrics.accuracy(probs, gold)
    # a Series of labels has no ties to split
    labels = probs.idxmax(axis=1)
    assert metrics.accuracy(labels, gold, predicted_ties="split") == metrics.accuracy(labels, gold)


def test_split_prediction_ties_by_hand_and_default_unchanged():
    probs = pd.DataFrame({"A": [0.5, 0.4, 1 / 3, 0.0], "B": [0.5, 0.4, 1 / 3, 1.0], "C": [0.0, 0.2, 1 / 3, 0.0]},
                         index=["p1", "p2", "p3", "p4"])
    gold = pd.Series({"p1": "B", "p2": "A", "p3": "C", "p4": "B"})
    # first column wins a tie: p1 wrong, p2 right, p3 wrong, p4 right
    assert metrics.accuracy(probs, gold) == pytest.approx(2 / 4)
    assert metrics.accuracy(probs, gold, predicted_ties="first") == pytest.approx(2 / 4)
    # split: 1/2 + 1/2 + 1/3 + 1
    assert metrics.accuracy(probs, gold, predicted_ties="split") == pytest.approx((0.5 + 0.5 + 1 / 3 + 1) / 4)
    # a gold class that is no column scores 0 under either rule (as a wrong label), never another column's credit
    odd = pd.Series({"p1": "Z", "p4": "B"})
    assert metrics.accuracy(probs, odd, predicted_ties="split") == metrics.accuracy(probs, odd) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="predicted_ties"):
        metrics.accuracy(probs, gold, predicted_ties="random")


@pytest.mark.parametrize("scorer", [metrics.accuracy, metrics.nll, metrics.brier, metrics.ece, metrics.score])
def test_a_models_soft_labels_are_scored_as_their_probabilities(scorer):
    # was: scorer(model.soft_labels_, gold), what a new user writes first, raised AttributeError: 'SoftLabels' object
    # has no attribute 'index'; soft_labels_.to_frame() a ValueError from inside pandas ("could not convert string
    # to float: 'dawid-skene'")
    from accord.datasets.softlabels import SoftLabels

    labels = SoftLabels(probs=PROBS, uncertainty=pd.Series(0.1, index=PROBS.index), method="dawid-skene",
                        n_judgments=pd.Series(3, index=PROBS.index))
    assert scorer(labels, GOLD) == scorer(PROBS, GOLD)
    with pytest.raises(ValueError, match="column 'method' holds no numbers: .*soft_labels_"):
        scorer(labels.to_frame(), GOLD)


@pytest.mark.parametrize("ties", ["excluded", "Exclude", "counted", None])
def test_accuracy_refuses_a_gold_ties_rule_it_does_not_know(ties):
    # any value but "exclude" counted the gold ties as ordinary classes: a typo ("excluded") changed the figure
    # without a word (1/3 -> 2/4 here), where predicted_ties= was already checked
    with pytest.raises(ValueError, match="ties must be 'exclude' or 'count'"):
        metrics.accuracy(PROBS, GOLD, ties=ties)


@pytest.mark.parametrize("scorer", [metrics.accuracy, metrics.nll, metrics.brier, metrics.ece, metrics.score])
@pytest.mark.parametrize("side", ["gold", "probs"])
def test_an_id_given_twice_is_one_error_naming_it(scorer, side):
    # gold taken per judgment (judgments.set_index("pair_id").gold) holds a pair once per judgment: nll and brier
    # failed with numpy's IndexError, ece with "predicted and outcome must be 1-d arrays of equal length" and
    # accuracy weighted the pair by its judgments; a repeated id in the probabilities scored the wrong rows
    gold, probs = GOLD, PROBS
    if side == "gold":
        gold = pd.concat([GOLD, GOLD.loc[["p2"]]])
    else:
        probs = pd.concat([PROBS, PROBS.loc[["p2"]].assign(A=0.0, B=1.0)])
    with pytest.raises(ValueError, match=f"{'gold labels' if side == 'gold' else 'probabilities'}: id 'p2' "
                                         "appears 2 times"):
        scorer(probs, gold)


def _by_hand(rows: list[list[float]], classes: list[str], gold: list[str], n_bins: int) -> dict[str, float]:
    """Every score written out item by item, without numpy: the reference for the property test below."""
    nll_terms, brier_terms, hits, scored_hits, bins = [], [], [], [], {}
    for row, label in zip(rows, gold):
        g = classes.index(label)
        nll_terms.append(-math.log(min(max(row[g], metrics.EPS), 1.0)))
        brier_terms.append(sum((p - (1.0 if k == g else 0.0)) ** 2 for k, p in enumerate(row)))
        top = max(range(len(row)), key=lambda k: (row[k], -k))  # the first column among exact ties
        hits.append(float(top == g))
        if label != "tie":
            scored_hits.append(float(top == g))
        confidence = row[top]
        b = max(k for k in range(n_bins) if confidence >= k / n_bins)  # bins [k/n, (k+1)/n), the last closed
        bins.setdefault(b, []).append((confidence, hits[-1]))
    ece = sum(abs(sum(c for c, _ in members) - sum(h for _, h in members)) for members in bins.values()) / len(rows)
    return {"accuracy": sum(scored_hits) / len(scored_hits) if scored_hits else float("nan"),
            "nll": sum(nll_terms) / len(rows), "brier": sum(brier_terms) / len(rows), "ece": ece, "n": len(rows)}


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 15), st.sampled_from([["A", "B"], ["A", "B", "tie"], ["x", "y", "z"]]), st.integers(1, 12),
       st.data())
def test_score_matches_a_by_hand_reference_on_edge_values(n, classes, n_bins, data):
    # values that sit on bin edges, at 0 and 1 exactly, all equal (1/K), below the clipping floor, and anywhere
    k = len(classes)
    special = st.sampled_from([0.0, 1.0, 1.0 / k, 0.5, 1e-15, 0.3, 0.7, 1.0 / 3.0])
    rows = []
    for _ in range(n):
        raw = data.draw(st.lists(st.one_of(special, st.floats(0.0, 1.0)), min_size=k, max_size=k))
        total = sum(raw)
        kind = data.draw(st.sampled_from(["normalised", "uniform", "one-hot", "as drawn"]))
        if kind == "uniform":
            raw = [1.0 / k] * k
        elif kind == "one-hot":
            raw = [float(i == data.draw(st.integers(0, k - 1))) for i in range(k)]
        elif kind == "normalised" and total > 0:
            raw = [min(v / total, 1.0) for v in raw]
        rows.append(raw)
    gold = data.draw(st.lists(st.sampled_from(classes), min_size=n, max_size=n))
    ids = [f"p{i}" for i in range(n)]
    probs = pd.DataFrame(rows, index=ids, columns=classes)
    expected = _by_hand(rows, classes, gold, n_bins)
    got = metrics.score(probs, pd.Series(gold, index=ids), n_bins=n_bins)
    assert got["n"] == expected["n"]
    for name in ("nll", "brier", "ece"):
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    if math.isnan(expected["accuracy"]):
        assert math.isnan(got["accuracy"])
    else:
        assert got["accuracy"] == pytest.approx(expected["accuracy"])
    # the order of the rows changes nothing
    order = data.draw(st.permutations(range(n)))
    shuffled = metrics.score(probs.iloc[list(order)], pd.Series(gold, index=ids).iloc[list(order)], n_bins=n_bins)
    for name in ("nll", "brier", "ece", "accuracy"):
        assert shuffled[name] == pytest.approx(got[name], rel=1e-9, abs=1e-12, nan_ok=True), name


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10), st.integers(0, 2**32 - 1), st.sampled_from(["tie", "C"]))
def test_a_gold_class_the_model_lacks_is_scored_as_never_predicted(n, seed, missing):
    # with_gold_classes: accuracy counts it wrong, nll reads -log(1e-12), brier adds the one-hot's 1, ece counts the
    # top class wrong; the known classes keep their columns, order and values
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    probs = pd.DataFrame(rng.dirichlet(np.ones(2), size=n), index=ids, columns=["A", "B"])
    gold = pd.Series(rng.choice(["A", "B", missing], size=n), index=ids)
    scored = metrics.with_gold_classes(probs, gold)
    assert list(scored.columns[:2]) == ["A", "B"] and scored[["A", "B"]].equals(probs)
    assert list(scored.columns[2:]) == ([missing] if (gold == missing).any() else [])
    assert (scored.iloc[:, 2:] == 0.0).all().all()
    rows = scored.to_numpy().tolist()
    expected = _by_hand(rows, list(scored.columns), gold.tolist(), 10)
    got = metrics.score(scored, gold)
    for name in ("nll", "brier", "ece"):
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    wrong = (gold == missing).to_numpy()
    nll_each = -np.log(np.clip(scored.to_numpy()[np.arange(n), scored.columns.get_indexer(gold)], metrics.EPS, 1))
    assert np.allclose(nll_each[wrong], -math.log(metrics.EPS))
    assert metrics.accuracy(scored, gold, ties="count") == pytest.approx(
        float(np.mean((scored.idxmax(axis=1) == gold).to_numpy())))
    assert metrics.with_gold_classes(probs, gold[gold != missing]) is probs


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_a_float_gold_label_keeps_int_class_columns_their_own_values(dtype):
    # int classes 1, 2 and gold read as floats (3.0, as a column with a gap reads): pandas' concat turned every
    # column into a float (1.0, 2.0, 3.0); 2.0 is the class 2, and the new class 3.0 comes as the columns' 3
    ids = ["p1", "p2", "p3"]
    probs = pd.DataFrame([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]], index=ids, columns=pd.Index([1, 2], dtype=dtype))
    gold = pd.Series([3.0, 2.0, 1.0], index=ids)
    scored = metrics.with_gold_classes(probs, gold)
    assert scored.columns.dtype == probs.columns.dtype and scored.columns.tolist() == [1, 2, 3]
    assert scored[[1, 2]].equals(probs) and (scored[3] == 0.0).all()
    assert metrics.score(scored, gold)["nll"] == pytest.approx(-(math.log(metrics.EPS) + math.log(0.7)
                                                                 + math.log(0.5)) / 3)
    assert metrics.with_gold_classes(probs, gold[gold != 3.0]) is probs  # 2.0 and 1.0 are classes it has
    # a gold class that is not whole cannot be an int column: the int columns keep their values beside it
    half = metrics.with_gold_classes(probs, pd.Series([2.5, 2.0, 1.0], index=ids))
    assert half.columns.tolist() == [1, 2, 2.5] and [type(c) for c in half.columns[:2]] == [int, int]


def test_a_single_item_and_all_equal_probabilities():
    one = pd.DataFrame({"A": [0.5], "B": [0.5]}, index=["p"])
    # a single item: the first column wins the exact tie, so gold B is wrong at confidence 1/2
    assert metrics.score(one, pd.Series({"p": "B"})) == {"accuracy": 0.0, "nll": pytest.approx(math.log(2)),
                                                           "brier": pytest.approx(0.5), "ece": pytest.approx(0.5),
                                                           "n": 1}
    assert metrics.accuracy(one, pd.Series({"p": "B"}), predicted_ties="split") == 0.5
    # every item at 1/3: one bin holds them all, the ECE is |1/3 - share of gold A|; nine bins of ten stay empty
    flat = pd.DataFrame(1 / 3, index=[f"p{i}" for i in range(6)], columns=["A", "B", "tie"])
    gold = pd.Series(["A", "A", "B", "tie", "tie", "B"], index=flat.index)
    assert metrics.ece(flat, gold) == pytest.approx(abs(1 / 3 - 2 / 6))
    assert metrics.nll(flat, gold) == pytest.approx(math.log(3))
    assert metrics.brier(flat, gold) == pytest.approx((2 / 3) ** 2 + 2 * (1 / 3) ** 2)
    assert metrics.accuracy(flat, gold) == pytest.approx(2 / 4)  # gold ties out; the first column, A, predicted


@pytest.mark.parametrize("scorer", [metrics.accuracy, metrics.nll, metrics.brier, metrics.ece, metrics.score])
def test_a_class_given_twice_is_one_error_naming_it(scorer):
    # two columns of one class (frames joined by hand): nll, brier, ece and score failed with pandas'
    # "Reindexing only valid with uniquely valued Index objects", accuracy scored the columns as two classes
    probs = pd.concat([PROBS, PROBS[["A"]] * 0.0], axis=1)
    with pytest.raises(ValueError, match="(probabilities|scores): column 'A' appears 2 times"):
        scorer(probs, GOLD)
