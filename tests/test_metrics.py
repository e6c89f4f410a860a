"""Metrics against values computed by hand."""

from __future__ import annotations

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
