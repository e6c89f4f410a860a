"""partial_fit where VB-EM has more than one fixed point: past the growth at which the calibration is chosen again,
the warm solve and one from a cold fit's start are both run and the higher evidence bound kept."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from accord.datasets import validate
from accord.datasets.synthetic import make_synthetic
from accord.models import DawidSkene
from accord.models import _vb
from accord.models import incremental

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _split_by_raters(seed: int, n_pairs: int, n_raters: int, per_pair: int,
                     share: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A synthetic table, and its judgments split into those of ``1 - share`` of the raters and the rest's."""
    table = make_synthetic(n_pairs, n_raters, per_pair, with_text=False, seed=seed).judgments
    table = table[["pair_id", "annotator", "label"]].reset_index(drop=True)
    raters = np.sort(table["annotator"].unique())
    rng = np.random.default_rng(seed)
    late = table["annotator"].isin(rng.choice(raters, max(1, int(len(raters) * share)), replace=False)).to_numpy()
    return table, table[~late].reset_index(drop=True), table[late].reset_index(drop=True)


def test_adding_half_the_raters_reaches_the_cold_fit():
    # the warm start stayed at the first fit's fixed point: soft labels 0.999 from a cold fit's (128 pairs of 200)
    table, first, rest = _split_by_raters(2, 200, 10, 4, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DawidSkene().fit(validate(first)).partial_fit(rest)
        cold = DawidSkene().fit(validate(table))
    warm = model.soft_labels_.probs.reindex(cold.soft_labels_.probs.index)[cold.soft_labels_.probs.columns]
    assert np.abs(warm.to_numpy() - cold.soft_labels_.probs.to_numpy()).max() < 1e-3


def _record_solves(monkeypatch: pytest.MonkeyPatch) -> list:
    """The results of every warm_vb_dawid_skene call partial_fit makes, and the one it keeps (``_keep_vb``)."""
    solves: list = []
    solve = incremental.warm_vb_dawid_skene

    def recorded(*args, **kwargs):
        solves.append(solve(*args, **kwargs))
        return solves[-1]

    monkeypatch.setattr(incremental, "warm_vb_dawid_skene", recorded)
    return solves


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 11), share=st.sampled_from([0.3, 0.5]), shape=st.sampled_from([(100, 8, 4), (120, 10, 4)]))
@example(seed=6, share=0.3, shape=(100, 8, 4))  # the cold start's bound is higher (by 6.6)
@example(seed=9, share=0.3, shape=(120, 10, 4))  # the warm solve's is (by 0.14)
def test_the_kept_solution_has_the_higher_evidence_bound(seed, share, shape):
    _, first, rest = _split_by_raters(seed, *shape, share)
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("ignore")
        model = DawidSkene().fit(validate(first))
        solves = _record_solves(patch)
        model.partial_fit(rest)
    if not solves:  # refitted cold (a pair of one judgment, a prior at its bound): no choice was made
        return
    assert len(solves) == 2  # the growth is past a tenth: the warm solve and the one from a cold fit's start
    kept = _vb.evidence_bound(model._vb, model._class_prior_vec)
    assert model._vb is solves[0] or model._vb is solves[1]
    assert all(kept >= _vb.evidence_bound(s, model._class_prior_vec) for s in solves)


@pytest.mark.parametrize("added, solves_run", [(20, 1), (5, 2)])  # 1/20 more judgments: one solve; 1/5: two
def test_the_cold_start_is_solved_only_past_a_tenth_more_judgments(monkeypatch, added, solves_run):
    table = make_synthetic(300, 20, 3, with_text=False, seed=0).judgments[["pair_id", "annotator", "label"]]
    table = table.reset_index(drop=True)
    late = np.random.default_rng(0).choice(len(table), len(table) // added, replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DawidSkene().fit(validate(table.drop(late).reset_index(drop=True)))
        solves = _record_solves(monkeypatch)
        model.partial_fit(table.iloc[late].reset_index(drop=True))
    assert len(solves) == solves_run and any(model._vb is solve for solve in solves)
