"""One label per pair: no pair judged twice tells nothing of how reliable a rater is (only agreement does), and every
rater model says so once, with the same warning."""

from __future__ import annotations

import warnings

import pytest

import accord.models as models
from accord.datasets import make_synthetic

FAST = {"DawidSkene": {}, "OneCoinDawidSkene": {},
        "HierarchicalDawidSkene": {"max_steps": 30, "num_samples": 20},
        "HierarchicalDawidSkene(vb)": {"inference": "vb"},
        "MACE": {}, "GLAD": {"max_steps": 30, "num_samples": 20},
        "CrowdBradleyTerry": {"max_steps": 30, "num_samples": 20},
        "OrdinalPreference": {"max_steps": 30, "num_samples": 20},
        "ContextPreference": {"max_steps": 30, "num_samples": 20},
        "RaterTypes": {"max_steps": 30, "num_samples": 20},
        "DebiasedBradleyTerry": {"max_steps": 30, "num_samples": 20}}


@pytest.fixture(scope="module")
def tables():
    data = make_synthetic(60, 8, 3, tie_rate=0.0, seed=1)  # with the texts the debiasing model reads
    judgments = data.judgments.drop(columns=["response_a_id", "response_b_id"], errors="ignore")
    return judgments.groupby("pair_id", sort=False).head(1).reset_index(drop=True), judgments


def _fit(name, judgments):
    cls = getattr(models, name.split("(")[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls(seed=0, **FAST[name]).fit(judgments)
    return [str(w.message) for w in caught if "no pair has two judgments" in str(w.message)]


@pytest.mark.parametrize("name", list(FAST))
def test_every_rater_model_warns_once_with_no_pair_judged_twice(name, tables):
    single, _ = tables
    said = _fit(name, single)
    assert len(said) == 1, said
    assert said[0].startswith(f"{name.split('(')[0]}: no pair has two judgments, so the judgments cannot tell how "
                              "reliable a rater is: ")
    assert said[0].endswith("(judge some pairs twice to learn them)")


@pytest.mark.parametrize("name", ["DawidSkene", "GLAD", "MACE"])
def test_no_warning_where_pairs_are_judged_twice(name, tables):
    _, full = tables
    assert _fit(name, full) == []


def test_responses_shared_between_pairs_tell_sharpness_without_a_second_judgment():
    # A over B, B over C, ...: the utilities tie the pairs together, so a pairwise model has evidence of each
    # rater's sharpness and stays quiet; a model with a label of its own per pair still warns
    data = make_synthetic(60, 8, 3, tie_rate=0.0, with_text=False, seed=1)
    single = data.judgments.groupby("pair_id", sort=False).head(1).reset_index(drop=True)
    responses = [f"r{i}" for i in range(len(single) + 1)]
    single = single.assign(response_a_id=responses[:-1], response_b_id=responses[1:])
    assert _fit("CrowdBradleyTerry", single) == []
    assert len(_fit("GLAD", single)) == 1
