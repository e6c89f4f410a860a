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
