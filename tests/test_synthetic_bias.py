"""Surface-biased raters (length, flattery) and the candidate sampler of the synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.errors import AccordError
from accord.datasets.synthetic import (
    _FILLERS,
    _FLATTERY,
    FLATTERY_BIAS_RANGE,
    LENGTH_BIAS_RANGE,
    UTILITY_WEIGHTS,
    make_synthetic,
    sample_candidates,
)

MIX = {"reliable": 0.5, "length_biased": 0.3, "flattery_biased": 0.2}


@pytest.fixture(scope="module")
def biased():
    return make_synthetic(n_pairs=6000, n_annotators=60, judgments_per_pair=5, annotator_mix=MIX, tie_rate=0.0,
                          activity_skew=0.0, seed=5)


def _rebuilt_utility(frame: pd.DataFrame) -> np.ndarray:
    return (UTILITY_WEIGHTS["n_facts"] * (frame["n_facts"] - 2) + UTILITY_WEIGHTS["n_filler"] * (frame["n_filler"] - 1)
            + UTILITY_WEIGHTS["tone"] * frame["tone"]).to_numpy()


def test_bias_strengths_are_returned_by_type(biased):
    ann = biased.annotators
    kind = ann["type"].astype(str)
    assert (ann.loc[kind != "length_biased", "length_bias"] == 0).all()
    assert (ann.loc[kind != "flattery_biased", "flattery_bias"] == 0).all()
    lo, hi = LENGTH_BIAS_RANGE
    assert ann.loc[kind == "length_biased", "length_bias"].between(lo, hi).all()
    lo, hi = FLATTERY_BIAS_RANGE
    assert ann.loc[kind == "flattery_biased", "flattery_bias"].between(lo, hi).all()


def test_flattery_and_length_are_in_the_text(biased):
    resp = biased.responses
    assert 0.2 < resp["flattery"].mean() < 0.4  # the default rate when flattery-biased raters are present
    has_phrase = resp["text"].map(lambda t: any(f in t for f in _FLATTERY))
    assert (has_phrase == resp["flattery"].astype(bool)).all()
    assert (resp["length"] == resp["n_facts"] + resp["n_filler"] + resp["flattery"]).all()
    np.testing.assert_allclose(resp["utility"], _rebuilt_utility(resp))  # flattery has no utility


def test_votes_follow_the_stated_surface_pull(biased):
    """The empirical P(A) of each rater type, binned by the predicted P(A) of the documented model, matches it;
    and a biased rater picks the longer (flattering) response more often than a reliable one."""
    j = biased.judgments
    resp, ann = biased.responses, biased.annotators
    a, b = j["response_a_id"].to_numpy(), j["response_b_id"].to_numpy()
    d_len = resp["length"].reindex(a).to_numpy() - resp["length"].reindex(b).to_numpy()
    d_fl = resp["flattery"].reindex(a).to_numpy() - resp["flattery"].reindex(b).to_numpy()
    true_a = (biased.true_label.reindex(j["pair_id"]).to_numpy() == "A")
    c = ann["attentive_accuracy"].reindex(j["annotator"]).to_numpy()
    base = np.where(true_a, c, 1 - c)
    pull = (ann["length_bias"].reindex(j["annotator"]).to_numpy() * d_len
            + ann["flattery_bias"].reindex(j["annotator"]).to_numpy() * d_fl)
    predicted = 1 / (1 + np.exp(-(np.log(base / (1 - base)) + pull)))
    voted_a = (j["label"] == "A").to_numpy()
    bins = np.digitize(predicted, np.linspace(0, 1, 11)[1:-1])
    for k in np.unique(bins):
        sel = bins == k
        if sel.sum() > 300:
            se = np.sqrt(predicted[sel].mean() * (1 - predicted[sel].mean()) / sel.sum())
            assert abs(voted_a[sel].mean() - predicted[sel].mean()) < 4 * se + 0.01
    kind = j["annotator_type"].astype(str).to_numpy()
    longer = d_len != 0
    chose_longer = voted_a == (d_len > 0)
    biased_rate = chose_longer[longer & (kind == "length_biased")].mean()
    assert biased_rate > chose_longer[longer & (kind == "reliable")].mean() + 0.1


def test_unbiased_mix_keeps_every_draw():
    """Adding the bias machinery changed nothing for data without biased raters (the flattery stream is apart)."""
    plain = make_synthetic(n_pairs=300, n_annotators=30, seed=2)
    assert plain.params["flattery_rate"] == 0.0 and plain.responses["flattery"].eq(0).all()
    zero = make_synthetic(n_pairs=300, n_annotators=30, seed=2, flattery_rate=0.0)
    pd.testing.assert_frame_equal(plain.judgments, zero.judgments)


def test_bad_flattery_rate_is_one_error():
    with pytest.raises(AccordError, match="flattery_rate"):
        make_synthetic(n_pairs=20, n_annotators=10, flattery_rate=1.5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 40), rate=st.floats(0, 1), seed=st.integers(0, 10_000))
def test_candidates_have_their_features_utility_and_text(n, rate, seed):
    cands = sample_candidates(["How?", "Why?"], ["diet", "travel"], n, flattery_rate=rate, seed=seed,
                              prompt_ids=["p1", "p2"])
    assert len(cands) == 2 * n and list(cands["candidate"][:n]) == list(range(n))
    assert (cands["prompt_id"][:n] == "p1").all() and (cands["prompt_id"][n:] == "p2").all()
    np.testing.assert_allclose(cands["utility"], _rebuilt_utility(cands))
    has_phrase = cands["text"].map(lambda t: any(f in t for f in _FLATTERY))
    assert (has_phrase == cands["flattery"].astype(bool)).all()
    assert cands["n_facts"].between(0, 4).all() and cands["n_filler"].between(0, 2).all()


def test_candidates_for_held_out_prompts_share_their_topic():
    data = make_synthetic(n_pairs=120, n_annotators=10, seed=1)
    prompts = data.responses["prompt_id"].unique()[:3]
    cands = data.sample_candidates(prompts, 16, seed=4)
    topic = data.responses.drop_duplicates("prompt_id").set_index("prompt_id")["topic"].astype(str)
    from accord.datasets.synthetic import TOPICS
    for pid, group in cands.groupby("prompt_id"):
        facts = TOPICS[topic[pid]]["facts"]
        with_facts = group[group["n_facts"] > 0]
        assert with_facts["text"].map(lambda t: any(f in t for f in facts)).all()
    assert cands["utility"].std() > 0.5  # candidates differ in quality: best-of-n has something to find
    with pytest.raises(AccordError, match="prompt_id"):
        data.sample_candidates(["nope"], 4)
    with pytest.raises(AccordError, match="n must be"):
        data.sample_candidates(prompts, 0)


def test_max_filler_sets_how_much_length_tells_about_utility():
    """With the default two filler sentences at most, length is a strong cue of utility; with five it carries
    almost none (their covariance 0.8 Var f - 0.5 Var v nearly cancels), as the over-optimisation benchmark needs;
    utilities stay the documented function of the features, candidates follow the data's setting."""
    def corr(frame: pd.DataFrame) -> float:
        return float(np.corrcoef(frame["length"], frame["utility"])[0, 1])

    informative = make_synthetic(n_pairs=6000, n_annotators=20, judgments_per_pair=1, seed=3)
    flat = make_synthetic(n_pairs=6000, n_annotators=20, judgments_per_pair=1, max_filler=5, seed=3)
    assert corr(informative.responses) > 0.5
    assert abs(corr(flat.responses)) < 0.1
    assert flat.responses["n_filler"].max() == 5
    rebuilt = (UTILITY_WEIGHTS["n_facts"] * (flat.responses["n_facts"] - 2)
               + UTILITY_WEIGHTS["n_filler"] * (flat.responses["n_filler"] - 2.5)
               + UTILITY_WEIGHTS["tone"] * flat.responses["tone"])
    np.testing.assert_allclose(flat.responses["utility"], rebuilt)
    fillers = flat.responses["text"].map(lambda t: sum(f in t for f in _FILLERS))
    assert (fillers == flat.responses["n_filler"]).all()

    prompts = flat.responses["prompt_id"].unique()[:20]
    cands = flat.sample_candidates(list(prompts), 64, seed=1)
    assert cands["n_filler"].max() == 5 and abs(corr(cands)) < 0.1
    assert informative.sample_candidates(list(prompts), 64, seed=1)["n_filler"].max() == 2


@pytest.mark.parametrize("bad", [-1, 7, 2.5, True])
def test_max_filler_out_of_range_is_refused(bad):
    with pytest.raises(AccordError, match="max_filler"):
        make_synthetic(n_pairs=10, n_annotators=5, max_filler=bad)


def test_each_prompt_id_names_one_prompt_of_candidates():
    """A prompt id given twice drew two sets of candidates under one id, both numbered 0..n-1 (a best-of-n over that
    prompt then picked from 2n); prompt_ids of another length than prompts raised numpy's IndexError, or a longer
    list was cut without a word."""
    data = make_synthetic(n_pairs=60, n_annotators=10, seed=2)
    prompt = str(data.responses["prompt_id"].iloc[0])
    with pytest.raises(AccordError, match=f"prompt_id '{prompt}' is given twice"):
        data.sample_candidates([prompt, prompt], 4)
    with pytest.raises(AccordError, match="prompt_id 'p1' is given twice"):
        sample_candidates(["How?", "Why?"], ["diet", "diet"], 2, prompt_ids=["p1", "p1"])
    for ids in (["p1"], ["p1", "p2", "p3"]):
        with pytest.raises(AccordError, match=f"2 prompts but {len(ids)} prompt_ids"):
            sample_candidates(["How?", "Why?"], ["diet", "diet"], 2, prompt_ids=ids)
    cands = data.sample_candidates([prompt], 4)
    assert not cands.duplicated(["prompt_id", "candidate"]).any() and len(cands) == 4


@pytest.mark.parametrize("bare", ["prompt0", 7])
def test_a_bare_prompt_id_is_one_error_saying_prompt_ids_is_a_sequence(bare):
    # was: a string read as a sequence of one-letter ids, refused as "prompt_id 'p' is not a prompt of this data", and
    # a number Python's "'int' object is not iterable"
    data = make_synthetic(n_pairs=30, n_annotators=5, seed=0)
    with pytest.raises(AccordError, match=rf"prompt_ids must be a sequence of prompt ids.*\[{bare!r}\]"):
        data.sample_candidates(bare, 4)


def test_a_prompt_draws_the_same_candidates_whatever_the_order_of_prompt_ids():
    # was: the candidates were drawn prompt by prompt in the order given, so listing the same held-out prompts in
    # another order gave each prompt other candidates (and another best-of-n curve) under one seed
    data = make_synthetic(n_pairs=120, n_annotators=10, seed=1, with_text=True)
    prompts = list(data.responses["prompt_id"].unique()[:5])
    shuffled = [prompts[i] for i in (3, 0, 4, 2, 1)]
    first, second = data.sample_candidates(prompts, 6, seed=2), data.sample_candidates(shuffled, 6, seed=2)
    assert second["prompt_id"].tolist() == [p for p in shuffled for _ in range(6)]  # rows in the order asked
    assert second["candidate"].tolist() == list(range(6)) * 5
    key = ["prompt_id", "candidate"]
    pd.testing.assert_frame_equal(first.sort_values(key).reset_index(drop=True),
                                  second.sort_values(key).reset_index(drop=True))


def test_flattery_biased_raters_with_no_flattering_response_are_refused():
    # was: accepted; no response flattered, so the raters' flattery_bias (1..3, in the truth's annotators table) never
    # moved a vote, and a recovery study scored a bias that the votes do not carry
    with pytest.raises(AccordError, match=r"flattery_rate=0\.0 .*flattery_biased"):
        make_synthetic(n_pairs=30, n_annotators=6, annotator_mix={"reliable": 0.5, "flattery_biased": 0.5},
                       flattery_rate=0.0)
    assert make_synthetic(n_pairs=30, n_annotators=6, flattery_rate=0.0).responses["flattery"].sum() == 0
