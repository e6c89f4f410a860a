"""Majority vote and vote fractions, and the SoftLabels they return."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accord.aggregate import MajorityVote, VoteFraction, make_method
from accord.datasets import AccordError, SoftLabels


def test_vote_fraction_probabilities(small_preferences):
    soft = VoteFraction().fit(small_preferences).soft_labels_
    assert soft.classes == ["A", "B", "tie"]
    assert soft.probs.loc["p1"].tolist() == pytest.approx([2 / 3, 1 / 3, 0])
    assert soft.probs.loc["p3"].tolist() == pytest.approx([1 / 3, 0, 2 / 3])
    assert soft.n_judgments.to_dict() == {"p1": 3, "p2": 2, "p3": 3}


def test_vote_fraction_uncertainty_shrinks_with_more_votes():
    few = pd.DataFrame({"pair_id": 1, "annotator": ["a"], "label": ["A"]})
    many = pd.DataFrame({"pair_id": 1, "annotator": list("abcdefghij"), "label": ["A"] * 10})
    sd_few = VoteFraction().fit(few).soft_labels_.uncertainty.iloc[0]
    sd_many = VoteFraction().fit(many).soft_labels_.uncertainty.iloc[0]
    assert sd_many < sd_few
    # Jeffreys posterior Beta(10.5, 0.5): sd = sqrt(a b / ((a+b)^2 (a+b+1)))
    assert sd_many == pytest.approx(np.sqrt(10.5 * 0.5 / (11**2 * 12)))


def test_majority_splits_exact_ties_and_has_no_uncertainty():
    table = pd.DataFrame({"pair_id": [1, 1, 2], "annotator": ["a", "b", "a"], "label": ["A", "B", "B"]})
    soft = MajorityVote().fit(table).soft_labels_
    assert soft.probs.loc[1].tolist() == [0.5, 0.5]
    assert soft.probs.loc[2].tolist() == [0.0, 1.0]
    assert soft.uncertainty.isna().all()
    assert soft.method == "majority"


def test_soft_labels_reject_bad_probabilities():
    index = pd.Index(["p"])
    with pytest.raises(AccordError, match="do not sum to 1"):
        SoftLabels(pd.DataFrame({"A": [0.5], "B": [0.6]}, index=index), pd.Series([0.1], index=index),
                   pd.Series([1], index=index), "x")


def test_unknown_method_names_the_choices():
    with pytest.raises(AccordError, match="unknown method 'em'.*majority"):
        make_method("em")


@pytest.mark.parametrize("prior", [-1.0, float("nan"), float("inf")])
def test_vote_fraction_refuses_a_prior_that_is_not_a_count(small_preferences, prior):
    # a negative or NaN prior made every uncertainty NaN, which the cleaned dataset turns into weight 1
    with pytest.raises(AccordError, match="prior"):
        VoteFraction(prior=prior).fit(small_preferences)


def test_p_a_and_p_tie_of_graded_soft_labels_read_the_grades():
    """Graded soft labels (grades -S..S, negative = A better, 0 = a tie) gave P(tie) = 0 for every pair, also for a
    pair every rater called a tie, and ``p_a`` failed with KeyError: 'A'; the cleaned dataset reads the grades
    (P(A better) = P(y < 0), P(tie) = P(y = 0)), and so do they now. Unordered classes have neither: one error."""
    from accord.datasets import validate

    graded = validate(pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2"], "annotator": ["a", "b", "a", "b"],
                                    "label": [0, 0, -2, 1]}), scale=2)
    soft = VoteFraction(prior=0).fit(graded).soft_labels_
    assert soft.p_tie.tolist() == pytest.approx([1.0, 0.0])
    assert soft.p_a.tolist() == pytest.approx([0.0, 0.5])
    categorical = validate(pd.DataFrame({"pair_id": ["p1", "p1"], "annotator": ["a", "b"], "label": ["cat", "dog"]}),
                           form="categorical")
    soft = VoteFraction().fit(categorical).soft_labels_
    for name in ("p_a", "p_tie"):
        with pytest.raises(AccordError, match=f"{name}.*preference"):
            getattr(soft, name)


@pytest.mark.parametrize("baseline", [MajorityVote, VoteFraction])
def test_one_class_names_the_label_column(baseline):
    """A categorical table whose judgments all carry one label: the baselines failed inside SoftLabels
    ('SoftLabels.probs needs one column per class'), a message about accord's internals; they now say what the rater
    models say."""
    from accord.datasets import validate

    table = validate(pd.DataFrame({"pair_id": ["i1", "i1", "i2"], "annotator": ["a", "b", "a"], "label": "cat"}),
                     form="categorical")
    with pytest.raises(AccordError, match="column 'label': every judgment has the label 'cat' and no other class"):
        baseline().fit(table)
