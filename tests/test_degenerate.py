"""Degenerate data through every rater model: one annotator, unanimous labels, all ties, one judgment per pair.

Each gives finite soft labels that sum to one and point the way the (few) votes point, never a traceback or a NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import QUICK_RATER_MODELS, fit_quick

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METHODS = [name for name in QUICK_RATER_MODELS if name != "bradley-terry"]  # the tables have no response ids


def _check_probabilities(model) -> pd.DataFrame:
    probs = model.soft_labels_.probs
    assert np.isfinite(probs.to_numpy()).all()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.isfinite(model.soft_labels_.uncertainty.to_numpy()).all()
    return probs


ONE_ANNOTATOR = pd.DataFrame({"pair_id": [f"p{i}" for i in range(10)], "annotator": "solo",
                              "label": ["A", "B"] * 5})
UNANIMOUS = pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(6)], 3), "annotator": ["a", "b", "c"] * 6,
                          "label": ["A"] * 9 + ["B"] * 9})
SINGLE_JUDGMENTS = pd.DataFrame({"pair_id": [f"p{i}" for i in range(12)], "annotator": [f"w{i % 4}" for i in range(12)],
                                 "label": ["A", "B", "A"] * 4})
ALL_TIES = pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(4)], 2), "annotator": ["a", "b"] * 4,
                         "label": "tie"})


@pytest.mark.parametrize("name", METHODS)
def test_one_annotator_follows_its_votes(name):
    probs = _check_probabilities(fit_quick(name, ONE_ANNOTATOR))
    assert (probs.idxmax(axis=1).to_numpy() == ONE_ANNOTATOR["label"].to_numpy()).all()


@pytest.mark.parametrize("name", METHODS)
def test_unanimous_pairs_are_confident(name):
    probs = _check_probabilities(fit_quick(name, UNANIMOUS))
    truth = UNANIMOUS.drop_duplicates("pair_id").set_index("pair_id")["label"]
    picked = probs.to_numpy()[np.arange(len(probs)), probs.columns.get_indexer(truth.reindex(probs.index))]
    assert (picked > 0.75).all()


@pytest.mark.parametrize("name", METHODS)
def test_one_judgment_per_pair(name):
    probs = _check_probabilities(fit_quick(name, SINGLE_JUDGMENTS))
    votes = SINGLE_JUDGMENTS.set_index("pair_id")["label"].reindex(probs.index)
    assert (probs.idxmax(axis=1) == votes).mean() >= 0.75


@pytest.mark.parametrize("name", METHODS)
def test_all_ties(name):
    probs = _check_probabilities(fit_quick(name, ALL_TIES))
    assert (probs.idxmax(axis=1) == "tie").all()


ONE_CLASS = pd.DataFrame({"pair_id": np.repeat([f"i{i}" for i in range(6)], 3), "annotator": ["a", "b", "c"] * 6,
                          "label": "x"})


@pytest.mark.parametrize("name", ["dawid-skene", "one-coin-dawid-skene", "hierarchical-dawid-skene", "mace", "glad",
                                  "rater-types"])
def test_one_class_is_one_clear_error_before_the_fit(name):
    """A categorical table whose judgments all carry one label, no other class declared: the Dawid-Skene family
    said so; MACE and GLAD fitted and then failed building the soft labels ('SoftLabels.probs needs one column per
    class'), rater types with numpy's raw broadcast ValueError."""
    from accord.aggregate import make_method
    from accord.datasets import AccordError, validate

    table = validate(ONE_CLASS, form="categorical")
    with pytest.raises(AccordError, match="every judgment has the label 'x' and no other class is known"):
        make_method(name, max_steps=20, num_samples=5).fit(table)
