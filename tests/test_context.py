"""Context-dependent preferences: group effects, calibrated per-group soft labels, noise versus genuine disagreement.

Synthetic data from :func:`accord.datasets.synthetic.make_synthetic`: with two groups, group g1 prefers the other
side on the contested topic ("politics") and agrees with g0 elsewhere, i.e. its preference scale there is
``lambda = -1`` (effect ``lambda - 1 = -2``) and 1 (effect 0) on every other topic. Six responses per prompt (15
pairs each) give the response utilities enough transitivity to pin their scale: with four, the variational
posterior underestimates the utility scale by ~20% on some seeds and the soft labels come out slightly
underconfident (ECE 0.03-0.06 measured on seeds 2-3).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.aggregate import build_cleaned
from accord.aggregate.pluralistic import decompose_disagreement, pluralistic_soft_labels, population_weights
from accord.datasets import AccordError
from accord.datasets.synthetic import make_synthetic
from accord.metrics import calibration_error
from accord.models import heldout_loglik
from accord.models.context import ContextPreference, GroupProbabilities

torch.set_num_threads(1)
MIX = {"reliable": 0.8, "spammer": 0.1, "adversarial": 0.05, "position_biased": 0.05}


@pytest.fixture(scope="module")
def contested():
    syn = make_synthetic(
        n_pairs=1000, n_annotators=120, judgments_per_pair=10, n_groups=2, contested_topics=1, tie_rate=0.0,
        annotator_mix=MIX, n_responses_per_prompt=6, with_text=True, seed=0,
    )
    model = ContextPreference(group="annotator_group", topic="item_topic", covariates=None, seed=0).fit(syn.judgments)
    return syn, model


def contested_pairs(syn) -> pd.Index:
    topics = syn.judgments.drop_duplicates("pair_id").set_index("pair_id")["item_topic"].astype(str)
    return topics.index[topics == "politics"]


def test_group_effect_has_the_right_sign_and_its_interval_covers_the_truth(contested):
    _, model = contested
    effects = model.group_effects_.set_index(["effect", "term"])
    politics = effects.loc[("preference_scale", "politics")]
    assert politics["mean"] < -1.0 and politics["p_positive"] < 0.01
    assert politics["lower"] <= -2.0 <= politics["upper"]
    others = effects.loc["preference_scale"].drop(index="politics")
    # elsewhere the groups agree: no other topic looks reversed
    assert (others["mean"] > -0.6).all()


def test_per_group_soft_labels_are_calibrated_and_context_free_is_a_coin_on_contested_pairs(contested):
    syn, model = contested
    truth = syn.true_p_a_by_group
    per_group = model.group_probabilities().p_a()[["g0", "g1"]].loc[truth.index]
    assert calibration_error(per_group.to_numpy().ravel(), truth.to_numpy().ravel()) <= 0.03
    contested_ids = contested_pairs(syn)
    gap = (per_group.loc[contested_ids, "g0"] - per_group.loc[contested_ids, "g1"]).abs().mean()
    assert gap > 0.25  # the two groups' soft labels really differ where they should
    # the context-free view of the same votes: one preference per pair for everybody (individual labels, so the
    # soft label is the share of raters preferring A, not a Dawid-Skene verdict for one side)
    plain = ContextPreference(
        group=None, topic=None, covariates=None, labels="individual", utilities=False, inference="map"
    ).fit(syn.judgments)
    pooled = plain.soft_labels_.p_a.loc[contested_ids]
    assert abs(pooled.mean() - 0.5) < 0.1
    assert (pooled - 0.5).abs().median() < 0.2  # most contested pairs near a coin flip without context


def test_decomposition_calls_contested_pairs_genuine_and_exports_per_group_columns(contested):
    syn, model = contested
    labels = pluralistic_soft_labels(model, "share")
    extra = labels.extra
    contested_ids = contested_pairs(syn)
    agreed = extra.index.difference(contested_ids)
    assert extra.loc[contested_ids, "disagreement"].mean() > 0.5
    assert extra.loc[contested_ids, "disagreement"].mean() > extra.loc[contested_ids, "noise"].mean()
    assert extra.loc[agreed, "noise"].mean() > extra.loc[agreed, "disagreement"].mean()
    assert {"p_a_g0", "p_b_g0", "p_a_g1", "p_b_g1", "noise", "disagreement"} <= set(extra.columns)
    cleaned = build_cleaned(labels, syn.judgments)
    assert {"p_chosen_g0", "p_chosen_g1", "disagreement", "noise"} <= set(cleaned.columns)
    assert cleaned["p_chosen"].between(0.5, 1.0).all()
    # population aggregate: explicit weights
    equal = pluralistic_soft_labels(model, "equal")
    only_g1 = pluralistic_soft_labels(model, {"g1": 1.0})
    np.testing.assert_allclose(only_g1.p_a.to_numpy(), extra["p_a_g1"].to_numpy(), atol=1e-6)
    assert not np.allclose(equal.p_a.to_numpy(), only_g1.p_a.to_numpy())
    with pytest.raises(AccordError):
        population_weights(model.group_probabilities(), {"nobody": 1.0})


def test_noisy_raters_without_groups_are_called_noise():
    syn = make_synthetic(
        n_pairs=300, n_annotators=40, judgments_per_pair=7, n_groups=2, contested_topics=0, tie_rate=0.0,
        annotator_mix={"reliable": 0.6, "spammer": 0.3, "position_biased": 0.1}, with_text=False, seed=1,
    )
    model = ContextPreference(group="annotator_group", covariates=None, inference="map", seed=1).fit(syn.judgments)
    split = decompose_disagreement(model)
    disagreeing = split["total"] > 0.2
    assert disagreeing.sum() > 50
    assert split.loc[disagreeing, "noise_share"].mean() > 0.8
    assert split.loc[disagreeing, "disagreement"].mean() < 0.15


def test_arviz_export_and_heldout_scoring(contested):
    syn, model = contested
    idata = model.to_arviz()
    assert "honest_share" in idata.posterior and "scale_effect" in idata.posterior
    assert list(idata.posterior["scale_effect"].coords["topic"].values)[:2] == ["cooking", "diet"]
    assert idata.log_likelihood["y"].shape[-1] == len(syn.judgments)
    small = syn.judgments[syn.judgments["pair_id"].isin(syn.judgments["pair_id"].unique()[:120])]
    scores = heldout_loglik(
        lambda: ContextPreference(group="annotator_group", covariates=None, inference="map", max_steps=300),
        small, folds=2,
    )
    assert np.isfinite(scores).all() and scores.mean() > np.log(0.45)


def test_individual_labels_and_reliability_columns(contested):
    syn, model = contested
    table = model.annotators_.join(syn.annotators["type"])
    by_type = table.groupby("type")[["honest_share", "spam_share", "adversarial_share"]].mean()
    assert by_type.loc["reliable", "honest_share"] > by_type.loc["spammer", "honest_share"] + 0.2
    assert by_type.loc["adversarial", "adversarial_share"] > 0.4
    with pytest.raises(AccordError):
        ContextPreference(labels="nonsense")
    with pytest.raises(AccordError):
        ContextPreference(group="annotator_nowhere").fit(syn.judgments)


def test_a_refit_on_another_table_reads_that_table_not_the_first_ones_constants():
    """The priors, plates and index tensors the model reads on every step are built once per table: a second
    ``fit`` of the same estimator on a table of another size gives what a fresh estimator gives on it."""
    small = make_synthetic(n_pairs=30, n_annotators=8, judgments_per_pair=3, n_groups=2, seed=1).judgments
    other = make_synthetic(n_pairs=45, n_annotators=11, judgments_per_pair=3, n_groups=2, seed=2).judgments
    settings = dict(seed=0, max_steps=30, posterior_steps=20, num_samples=10)
    reused = ContextPreference(**settings).fit(small).fit(other)
    fresh = ContextPreference(**settings).fit(other)
    assert reused.soft_labels_.probs.shape == (45, 3)
    np.testing.assert_allclose(reused.soft_labels_.probs.to_numpy(), fresh.soft_labels_.probs.to_numpy(), atol=1e-6)


def test_a_batch_of_more_pairs_than_the_table_has_fits_on_every_judgment():
    """``batch_size`` counts pairs and becomes judgments per step; where that exceeds the table (a small table, or
    the first batches of an annotation round) Pyro refused the subsample ('subsample_size does not match')."""
    table = make_synthetic(n_pairs=30, n_annotators=8, judgments_per_pair=3, seed=0).judgments
    settings = dict(labels="individual", inference="map", max_steps=20, num_samples=5, seed=0)
    batched = ContextPreference(batch_size=40, **settings).fit(table)
    whole = ContextPreference(**settings).fit(table)
    np.testing.assert_allclose(batched.soft_labels_.probs.to_numpy(), whole.soft_labels_.probs.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("utilities", ["bogus", "yes", 2])
def test_utilities_other_than_true_false_auto_are_refused(utilities):
    """Any truthy value was taken as ``utilities=True`` (a typo like 'Auto' silently changed the model)."""
    with pytest.raises(AccordError, match="utilities"):
        ContextPreference(utilities=utilities)


def test_groups_whose_column_names_coincide_are_refused_by_name():
    # "18-25" and "18 25" both became p_a_18_25: the second group's column silently replaced the first's
    clean = np.random.default_rng(0).dirichlet([1.0, 1.0], size=(4, 3, 2))
    probs = GroupProbabilities(clean=clean, observed=clean.mean(0), groups=["18-25", "18 25"],
                               share=np.array([0.5, 0.5]), counts=np.ones((3, 2)),
                               item_index=pd.Index(["p1", "p2", "p3"]), classes=("A", "B"))
    with pytest.raises(AccordError, match="'18-25' and '18 25'.*'18_25'"):
        pluralistic_soft_labels(probs)



@given(st.one_of(st.integers(0, 99).map(lambda v: (v, str(v))),
                 st.from_regex(r"[a-z]{1,4}", fullmatch=True).map(lambda s: (s.upper(), s))))
@settings(max_examples=15, deadline=None)
def test_classes_whose_column_names_coincide_are_refused_by_name(classes):
    """Classes 'A' and 'a' (or 1 and '1') both gave the columns p_a_<group>: the later class's probabilities
    silently replaced the earlier's. Now it is one error naming both classes."""
    clean = np.random.default_rng(0).dirichlet([1.0, 1.0], size=(4, 3, 2))
    probs = GroupProbabilities(clean=clean, observed=clean.mean(0), groups=["g1", "g2"],
                               share=np.array([0.5, 0.5]), counts=np.ones((3, 2)),
                               item_index=pd.Index(["p1", "p2", "p3"]), classes=classes)
    first, second = classes
    with pytest.raises(AccordError, match=f"classes {re.escape(repr(first))} and {re.escape(repr(second))} both "
                                          f"give the column name 'p_{str(second).lower()}_g1'"):
        pluralistic_soft_labels(probs)


# --- ties of the shared-label marginal's cut points -----------------------------------------------------------------


def _segment_gradient(cuts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    from accord.models.context import segment_lengths

    cuts = cuts.clone().requires_grad_(True)
    _, lengths = segment_lengths(cuts)
    (lengths * weights).sum().backward()
    return cuts.grad


@given(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3), st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_the_gradient_at_tied_cut_points_does_not_follow_which_way_rounding_went(weights, ulps):
    """Two groups with one label distribution give cut points a few ulps apart in either direction, as vectorised
    maths rounds; the gradient at the tie (a kink) followed that direction: a segment an ulp long carried a full
    gradient. Now it follows the points' given order whichever way they are rounded."""
    weights = torch.tensor(weights)
    tie = torch.tensor(0.3932388, dtype=torch.float32)
    low, high = tie.clone(), tie.clone()
    for _ in range(ulps):
        low, high = torch.nextafter(low, torch.tensor(0.0)), torch.nextafter(high, torch.tensor(1.0))
    below = torch.stack([torch.tensor(0.0), tie, low, torch.tensor(1.0)])[None]  # group 2's cut ulps below group 1's
    above = torch.stack([torch.tensor(0.0), tie, high, torch.tensor(1.0)])[None]  # ... ulps above
    assert float(low) < float(tie) < float(high)
    torch.testing.assert_close(_segment_gradient(below, weights), _segment_gradient(above, weights))


@given(st.lists(st.integers(0, 1000), min_size=2, max_size=8), st.lists(st.integers(-2, 2), min_size=8, max_size=8))
@settings(max_examples=60, deadline=None)
def test_segment_lengths_are_non_negative_and_mirror_with_the_cut_points(grid, nudges):
    """Lengths of tied points are 0, the others the gaps between tie groups, and reflecting the cut points about 1/2
    (a side swap) reverses the lengths."""
    from accord.models.context import segment_lengths

    eps = float(torch.finfo(torch.float32).eps)
    values = [g / 1000 + n * eps for g, n in zip(grid, nudges)]
    cuts = torch.tensor([[0.0, *values, 1.0]], dtype=torch.float64).clamp(0, 1)
    _, lengths = segment_lengths(cuts)
    _, mirrored = segment_lengths(1.0 - cuts.flip(-1))
    assert (lengths >= 0).all()
    assert abs(float(lengths.sum()) - 1.0) < 1e-5
    torch.testing.assert_close(mirrored, lengths.flip(-1), atol=1e-5, rtol=0)


def test_a_side_swap_mirrors_the_fit_of_two_rater_groups():
    """With two rater groups and shared labels the fit left the warm start's tie (every group one distribution)
    towards one of two modes by the sort order of tied cut points, which a side swap reverses: the swapped table's
    soft labels moved by 0.78. The MAP stage now runs with both orders and keeps the lower loss. The table's two
    contested topics now start reversed (their scale effects end at -2, the truth; they stayed at +1.2 and +1.8
    with the correlation start, 20 nats higher): lambda = -1 ties the groups' cut points as well, and the kept
    runs end up to 0.001 apart there at equal loss (a two-group swap moved MAP soft labels by up to 0.003 on six
    seeds, benchmarks/invariance.py)."""
    table = make_synthetic(n_pairs=150, n_annotators=20, n_groups=2, seed=0).judgments.drop(columns=["gold"])
    swapped = table.assign(label=table["label"].map({"A": "B", "B": "A", "tie": "tie"}))
    for a, b in (("response_a", "response_b"), ("response_a_id", "response_b_id")):
        swapped[a], swapped[b] = table[b].to_numpy(), table[a].to_numpy()
    fits = [ContextPreference(inference="map", seed=0).fit(t) for t in (table, swapped)]
    probs = fits[1].soft_labels_.probs.rename(columns={"A": "B", "B": "A"})[fits[0].soft_labels_.probs.columns]
    np.testing.assert_allclose(probs.to_numpy(), fits[0].soft_labels_.probs.to_numpy(), atol=2e-3)
    assert fits[0].svi_map_.losses[-1] == pytest.approx(fits[1].svi_map_.losses[-1], rel=1e-5)


def _stance_table(majority: int, votes: int, n_pairs: int = 40, seed: int = 0) -> pd.DataFrame:
    """Two stances of ``votes`` raters each judge every pair: "con" gives B ``majority`` of its votes and A the rest,
    "pro" the mirror image (which rater casts which vote shuffled per pair). Exchanging the stances' names together
    with the sides gives the same table."""
    rng = np.random.default_rng(seed)
    rows = []
    for pair in range(n_pairs):
        for stance, side, other in (("con", "B", "A"), ("pro", "A", "B")):
            labels = rng.permutation([side] * majority + [other] * (votes - majority))
            rows += [{"pair_id": f"p{pair}", "annotator": f"{stance}{j}", "label": label, "annotator_group": stance}
                     for j, label in enumerate(labels)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("majority", "votes"), [(5, 8), (4, 6)])
def test_two_stances_that_mirror_each_other_give_even_soft_labels_under_either_name_or_side(majority, votes):
    """The sign of a group's preference scale was started from the correlation of its vote fractions with the
    reference group's over the pairs (r < -0.2): two stances that split every pair alike their own way correlate at
    r = 0/0 (undefined), so the fit started with the groups agreeing and called the other stance's raters spammers
    leaning to their side (reliability effect -3.7): pooled P(A) from 0.001 to 1.000 on pairs with the very same
    votes, on average 0.45, 0.36 with the stances' names exchanged and 0.55 with the sides swapped (the same table up
    to the raters' names). A constant lean is what such a spammer gives too, and that reading has the lower MAP loss
    here (532 against 556 at 5 of 8): without pairs that differ, the votes cannot tell the two apart. The start now
    takes the sign under which the votes are more likely (reversed), and the fit reads the table the same way under
    either name or side: each stance holds its own side, and with equal shares the pooled label is even."""
    from accord.datasets import swap_sides

    table = _stance_table(majority, votes)
    renamed = table.assign(annotator_group=table["annotator_group"].map({"con": "pro", "pro": "con"}))
    fits = [ContextPreference(inference="map", seed=0).fit(t) for t in (table, renamed, swap_sides(table))]
    for fit in fits:
        np.testing.assert_allclose(fit.soft_labels_.p_a.to_numpy(), 0.5, atol=1e-3)
        scale = fit.group_effects_.set_index("effect").loc["preference_scale", "mean"]
        assert scale < -1.0  # the second stance reverses the reference's preference
    # each stance's own label is its majority side, whichever is the reference and whichever side A is
    consensus = [pd.DataFrame(f.group_probabilities().consensus[:, :, 0], columns=f.design_.group_names) for f in fits]
    assert (consensus[0]["con"] < 0.5).all() and (consensus[0]["pro"] > 0.5).all()
    for mirrored in consensus[1:]:
        assert (mirrored["con"] > 0.5).all() and (mirrored["pro"] < 0.5).all()


@pytest.mark.parametrize("labels", ["shared", "individual"])
def test_every_topic_contested_by_equal_groups_is_read_as_reversed_and_pools_to_even(labels):
    """make_synthetic with two equal groups and every topic contested: the second group prefers the other side on
    every pair, so the population's P(A) is 0.5 throughout. Two topics (24 and 11 pairs, about three votes a group
    on each) correlate at r = -0.18 and -0.13, above the old start's threshold of -0.2: they started agreeing and
    ended so (scale effects +3.6 and +1.2, the truth -2) at a higher MAP loss than the reversed start reaches (1175
    against 1158), the pooled soft labels off 0.5 by 0.105 on average (0.036 now); under individual labels
    parenting stayed at +0.7. Every topic now starts reversed."""
    syn = make_synthetic(n_pairs=200, n_annotators=40, judgments_per_pair=6, n_groups=2, contested_topics=8,
                         tie_rate=0.0, seed=0)
    model = ContextPreference(inference="map", covariates=None, labels=labels, seed=0).fit(syn.judgments)
    scale = model.group_effects_.query("effect == 'preference_scale'").set_index("term")["mean"]
    assert len(scale) == 8 and (scale < -0.5).all(), scale.to_dict()
    if labels == "shared":  # with lambda = -1 the groups hold exactly the swapped label, and equal shares pool to 0.5
        pooled = model.soft_labels_.p_a
        assert (pooled - syn.true_p_a.loc[pooled.index]).abs().mean() < 0.06


def test_a_scale_sign_the_votes_leave_open_is_settled_by_the_loss_so_a_side_swap_and_row_order_mirror_the_fit():
    """The likelihood start read a topic nobody contests (fitness, 44 pairs, r = -0.02) as reversed: its summed gain
    (+23 nats) was within twice its standard error over the pairs, as large as a contested topic of few votes gets.
    From that start the MAP path crossed scale 0 and stopped at the kink of another topic's scale there (cooking,
    0.02 or -0.23) as rounding had it: a side swap and another row order moved the soft labels by 0.34. Where the
    votes leave the sign open, the fit now also runs from the correlation's reading and keeps the lower loss (here
    the one that does not reverse fitness), and the swapped or shuffled table gives the mirrored fit."""
    from accord.datasets import swap_sides

    table = make_synthetic(n_pairs=150, n_annotators=24, n_groups=2, seed=1).judgments.drop(columns=["gold"])
    moved = swap_sides(table).sample(frac=1.0, random_state=11).reset_index(drop=True)
    fits = [ContextPreference(inference="map", seed=0).fit(t) for t in (table, moved)]
    want = fits[0].soft_labels_.probs
    got = fits[1].soft_labels_.probs.rename(columns={"A": "B", "B": "A"}).loc[want.index, want.columns]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=3e-3)
    scales = [f.group_effects_.query("effect == 'preference_scale'").set_index("term")["mean"] for f in fits]
    np.testing.assert_allclose(scales[1].loc[scales[0].index], scales[0], atol=1e-2)


def test_plateau_cuts_go_on_at_a_tenth_of_the_rate_where_the_rule_would_stop():
    """Adam at a fixed rate hovers about a kinked optimum (the shared-label marginal has kinks); ``plateau_cuts``
    lets a MAP run go on at a tenth of its rate where its stopping rule settles, so it ends closer to the optimum."""
    import pyro
    import pyro.distributions as dist
    from pyro.infer import Trace_ELBO
    from pyro.infer.autoguide import AutoDelta
    from pyro.infer.autoguide.initialization import init_to_value

    from accord.models.pyro_fit import run_svi

    def model():
        x = pyro.sample("x", dist.Normal(torch.tensor(0.0), torch.tensor(10.0)))
        pyro.factor("kink", -50.0 * (x - 1.0).abs())

    # AutoDelta's default start is a draw from the prior, which made the end points (and this test) differ between
    # machines; fixed starts make it the same run everywhere, and several of them keep it from resting on one path.
    for start in (0.0, -2.0, 3.0, 5.5):
        ends = {}
        for cuts in (0, 2):
            pyro.clear_param_store()
            guide = AutoDelta(model, init_loc_fn=init_to_value(values={"x": torch.tensor(start)}))
            result = run_svi(model, guide, Trace_ELBO(), max_steps=3000, learning_rate=0.1, tol=1e-4, patience=20,
                             plateau_cuts=cuts)
            ends[cuts] = (result.n_steps, abs(float(guide.median()["x"]) - 1.0), result.converged)
        assert ends[0][2] and ends[2][2], (start, ends)
        assert ends[2][0] >= ends[0][0] + 2 * 2 * 20, (start, ends)  # each cut runs at least two more windows
        assert ends[2][1] < ends[0][1] / 5, (start, ends)


def test_predictive_loglik_does_not_depend_on_the_order_of_the_rows():
    """Unseen pairs and raters drew their parameters from the population in the order they first appeared in the
    table, so a judgment by a new rater was scored against another draw when the rows came in another order (the
    pairwise models number unseen ids in sorted order): the same judgment moved by up to 0.15 nats."""
    table = make_synthetic(40, 10, 3, tie_rate=0.1, with_text=True, seed=1).judgments
    table = pd.DataFrame({name: table[name] for name in table.columns})  # not marked as validated
    pairs = table["pair_id"].unique()
    test = table[~table["pair_id"].isin(pairs[:30])].copy()
    test.loc[test.index[:6], "annotator"] = ["n1", "n2", "n3", "n1", "n2", "n4"]
    model = ContextPreference(max_steps=50, num_samples=30).fit(table[table["pair_id"].isin(pairs[:30])])
    order = np.random.default_rng(0).permutation(len(test))
    np.testing.assert_allclose(model.predictive_loglik(test)[order], model.predictive_loglik(test.iloc[order]),
                               rtol=0, atol=1e-6)


# --- context columns: one value per pair, numbers that are numbers, no label as context ------------------------------


def _small_table(seed: int = 1) -> pd.DataFrame:
    from accord.datasets import validate

    table = validate(make_synthetic(n_pairs=12, n_annotators=5, judgments_per_pair=3, n_groups=2, seed=seed).judgments)
    codes = pd.factorize(table["pair_id"])[0]
    return table.assign(item_length=np.random.default_rng(seed).normal(size=codes.max() + 1)[codes])


@given(st.integers(0, 35), st.sampled_from(["item_topic", "item_length"]))
@settings(max_examples=25, deadline=None)
def test_an_item_column_with_two_values_in_one_pair_is_an_error_naming_the_row(row, column):
    """The first judgment's value stood for the pair, so the order of the rows decided the pair's topic or covariate
    (a row-order dependent fit); now one error names the column, the pair and both rows."""
    from accord.models.context import build_design

    table = _small_table()
    pair_rows = np.flatnonzero((table["pair_id"] == table["pair_id"].iloc[row]).to_numpy())
    changed = table.copy()
    changed[column] = changed[column].astype(object)
    changed.loc[pair_rows[-1], column] = "other" if column == "item_topic" else 1e3
    with pytest.raises(AccordError, match=rf"column '{column}', row {pair_rows[-1]}: .*row {pair_rows[0]}"):
        build_design(changed, group="annotator_group", topic="item_topic", covariates=["item_length"])


@given(st.sampled_from([np.inf, -np.inf]), st.integers(0, 35))
@settings(max_examples=15, deadline=None)
def test_an_infinite_numeric_covariate_is_an_error_naming_the_row(value, row):
    """An infinite cell made the column's mean and sd inf and NaN, and every pair's value 0: the covariate was
    silently gone. Now it is one error naming the column and the row."""
    from accord.models.context import build_design

    table = _small_table()
    table.loc[table["pair_id"] == table["pair_id"].iloc[row], "item_length"] = value
    first = int(np.flatnonzero((table["pair_id"] == table["pair_id"].iloc[row]).to_numpy())[0])
    with pytest.raises(AccordError, match=rf"column 'item_length', row {first}: .*finite"):
        build_design(table, group=None, topic=None, covariates=["item_length"])


@pytest.mark.parametrize("role", ["group", "topic", "covariates"])
@pytest.mark.parametrize("column", ["label", "gold", "pair_id"])
def test_the_label_the_gold_or_the_pair_cannot_be_context(role, column):
    """``covariates=["label"]`` or ``["gold"]`` let the model read the answer off the table (a one-hot of the label
    as the preference shift), and ``topic="pair_id"`` was a KeyError; now one error names the column."""
    from accord.models.context import build_design

    settings_ = {"group": None, "topic": None, "covariates": None}
    settings_[role] = [column] if role == "covariates" else column
    with pytest.raises(AccordError, match=rf"column '{column}' cannot be a"):
        build_design(_small_table(), **settings_)


@given(st.sampled_from([0.0, -3.5, 1e9, 7e12]), st.floats(-1e3, 1e3))
@settings(max_examples=8, deadline=None)
def test_a_constant_numeric_covariate_is_left_out_and_a_new_value_of_it_changes_nothing(value, offset):
    """A constant column standardised to 0 on every pair (sd 0 became 1), so its effect rested on the prior alone,
    and a new pair's other value entered unscaled: a column constant at 1e9 gave a pair at 1e9 + 1000 the value
    1000 times a prior draw. Now a numeric column with fewer than two values is left out of the design."""
    from accord.models.context import build_design

    table = _small_table().assign(item_constant=value)
    table.loc[table.index[:3], "item_constant"] = np.nan  # missing cells do not make a second value
    design = build_design(table, group="annotator_group", topic=None, covariates=["item_length", "item_constant"])
    assert design.covariate_names == ("item_length",)
    new = table.assign(item_constant=value + offset)
    np.testing.assert_array_equal(design.covariates_of(design.item_frame(new, pd.Index(new["pair_id"].unique()))),
                                  design.covariates_of(design.item_frame(table, pd.Index(table["pair_id"].unique()))))


def test_text_in_a_covariate_that_was_numeric_at_fit_is_an_error_naming_the_row():
    """A new table whose numeric covariate came as text (another file's reading) had every such cell turned into
    the mean without a word; now predictive_loglik names the column and the row."""
    table = _small_table()
    pairs = table["pair_id"].unique()
    model = ContextPreference(covariates=["item_length"], inference="map", max_steps=20, num_samples=5,
                              seed=0).fit(table[table["pair_id"].isin(pairs[:8])])
    new = table[~table["pair_id"].isin(pairs[:8])].reset_index(drop=True)
    assert np.isfinite(model.predictive_loglik(new)).all()
    new["item_length"] = new["item_length"].astype(object)
    new.loc[new["pair_id"] == new["pair_id"].iloc[0], "item_length"] = "long"
    with pytest.raises(AccordError, match="column 'item_length', row 0: .*number"):
        model.predictive_loglik(new)


def test_a_topic_not_seen_in_training_is_scored_the_same_whatever_the_training_topics_are_called():
    """A new pair's unseen topic took code 0, so it was scored with the scale effects of whichever training topic
    sorts first by name: renaming the training topics moved its held-out log-likelihood by 0.6 nats. Now an unseen
    topic's scale effects are drawn from their population in every draw, as a new pair's or rater's parameters."""
    from accord.datasets import validate

    table = validate(make_synthetic(n_pairs=90, n_annotators=14, judgments_per_pair=5, n_groups=2,
                                    contested_topics=1, tie_rate=0.0, seed=0).judgments)
    pairs = table["pair_id"].unique()
    train = table[table["pair_id"].isin(pairs[:75])]
    test = table[~table["pair_id"].isin(pairs[:75])].assign(item_topic="unseen")
    names = sorted(train["item_topic"].astype(str).unique())
    renamed = train.assign(item_topic=train["item_topic"].astype(str).map(dict(zip(names, names[::-1]))))
    scores = [ContextPreference(covariates=None, inference="map", max_steps=200, num_samples=10, seed=0).fit(t)
              .predictive_loglik(test) for t in (train, renamed)]
    assert np.isfinite(scores[0]).all()
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-4)


@given(st.sampled_from(["item_topic", "item_length"]), st.integers(0, 11))
@settings(max_examples=10, deadline=None)
def test_a_fitted_pair_scored_with_another_topic_or_covariate_is_an_error_naming_the_row(column, pair):
    """A new judgment of a fitted pair was scored with the pair's fitted topic and covariates whatever its own row
    said; now a different value is one error naming the column and the row (the same values still score)."""
    model, table = _fitted_small()
    pair_id = table["pair_id"].unique()[pair]
    new = table[table["pair_id"] == pair_id].assign(annotator="newcomer").head(1).reset_index(drop=True)
    assert np.isfinite(model.predictive_loglik(new)).all()
    new[column] = new[column].astype(object)
    new.loc[0, column] = "elsewhere" if column == "item_topic" else float(new.loc[0, column]) + 0.5
    with pytest.raises(AccordError, match=rf"column '{column}', row 0: pair .* when fitting"):
        model.predictive_loglik(new)


@functools.lru_cache(maxsize=1)
def _fitted_small():
    table = _small_table()
    model = ContextPreference(covariates=["item_topic", "item_length"], inference="map", max_steps=20, num_samples=3,
                              seed=0).fit(table)
    return model, table


@given(st.integers(0, 11), st.sampled_from(["response_a_id", "response_b_id"]))
@settings(max_examples=10, deadline=None)
def test_new_pairs_without_response_ids_are_an_error_naming_the_row_under_utilities(row, column):
    """With response utilities a new pair's preference is ``u_A - u_B``: a missing id became a response of its own
    (one utility shared by every pair without an id) and a table without the id columns was a KeyError; now both
    are one error naming the column (and the row)."""
    model, table = _fitted_small()
    assert model.data_.response_a is not None
    new = table.assign(pair_id="new-" + table["pair_id"].astype(str), annotator="newcomer")
    new = new.drop_duplicates("pair_id").reset_index(drop=True)
    assert np.isfinite(model.predictive_loglik(new)).all()
    with pytest.raises(AccordError, match=f"column '{column}', row {row}: missing response id"):
        model.predictive_loglik(new.assign(**{column: new[column].where(new.index != row)}))
    with pytest.raises(AccordError, match="column 'response_a_id': .*no response ids"):
        model.predictive_loglik(new.drop(columns=["response_a_id", "response_b_id"]))


@given(st.lists(st.sampled_from(["item_topic", "item_length"]), min_size=2, max_size=4).filter(
    lambda names: len(set(names)) < len(names)))
@settings(max_examples=10, deadline=None)
def test_a_covariate_named_twice_is_refused(names):
    """A covariate named twice entered the design twice: two identical columns whose effects only their sum
    identifies, and duplicated ``covariate`` coordinates in the ArviZ export. Now one error names the list."""
    from accord.models.context import build_design

    with pytest.raises(AccordError, match="covariates: a name is given twice"):
        build_design(_small_table(), group="annotator_group", topic=None, covariates=names)


@given(st.integers(0, 35))
@settings(max_examples=8, deadline=None)
def test_auto_covariates_leave_out_an_item_column_that_differs_within_a_pair_with_a_warning(row):
    """covariates='auto' took the pair's first row of every item_* column, one that differs between a pair's
    judgments too; now such a column is left out with a warning naming it (named explicitly it is an error), so a
    table with one still fits from the command line, which has no covariate flag."""
    from accord.models.context import _resolve_covariates

    table = _small_table().assign(item_rater_note=lambda t: np.arange(len(t)) % 3)
    table.loc[row, "item_length"] = 99.0
    with pytest.warns(UserWarning, match=r"covariates='auto': .*\['item_length', 'item_rater_note'\] differ"):
        assert _resolve_covariates("auto", table) == ["item_topic"]


def test_auto_topic_leaves_out_an_item_topic_that_differs_within_a_pair_with_a_warning():
    """topic='auto' took item_topic whatever it held; with the per-pair check a table whose item_topic differs
    between a pair's judgments would stop fitting from the command line, so 'auto' leaves it out with a warning."""
    table = _small_table()
    table["item_topic"] = table["item_topic"].astype(str)
    table.loc[1, "item_topic"] = "elsewhere"
    settings_ = dict(covariates=None, inference="map", max_steps=5, num_samples=2, seed=0)
    with pytest.warns(UserWarning, match=r"topic='auto': .*\['item_topic'\] differ"):
        model = ContextPreference(**settings_).fit(table)
    assert model.design_.topic_column is None
    with pytest.raises(AccordError, match="column 'item_topic', row 1: .*one value per pair"):
        ContextPreference(topic="item_topic", **settings_).fit(table)


@pytest.mark.filterwarnings("ignore::accord.models.base.ConvergenceWarning")
@given(st.integers(0, 35), st.sampled_from(["two values", "infinite", "refit value"]))
@settings(max_examples=12, deadline=None)
def test_errors_name_the_position_of_the_row_in_a_reordered_validated_table(row, problem):
    """A validated table, reordered or filtered, keeps its index labels (and its validation): the context checks
    named the row by its index label, another row of the table given (row 34 for its second row). Now they name
    the row's position, as validate does."""
    model, table = _fitted_small()
    shuffled = table.iloc[np.random.default_rng(row).permutation(len(table))]
    assert not (shuffled.index == np.arange(len(shuffled))).all()
    changed = shuffled.copy()
    changed["item_length"] = changed["item_length"].astype(object)
    at = changed.columns.get_loc("item_length")
    same_pair = np.flatnonzero((changed["pair_id"] == changed["pair_id"].iloc[row]).to_numpy())
    if problem == "two values":
        changed.iloc[same_pair[-1], at] = 1e3
        with pytest.raises(AccordError, match=rf"column 'item_length', row {same_pair[-1]}: .*row {same_pair[0]}:"):
            ContextPreference(covariates=["item_length"], inference="map", max_steps=2, num_samples=2).fit(changed)
    elif problem == "infinite":
        changed.iloc[same_pair, at] = np.inf
        with pytest.raises(AccordError, match=rf"column 'item_length', row {same_pair[0]}: .*finite"):
            model.predictive_loglik(changed)
    else:
        changed.iloc[same_pair, at] = float(changed.iloc[same_pair[0], at]) + 0.5
        with pytest.raises(AccordError, match=rf"column 'item_length', row {same_pair[0]}: pair .* when fitting"):
            model.predictive_loglik(changed)


@given(st.lists(st.integers(-3, 1000), min_size=2, max_size=4, unique=True), st.integers(0, 3))
@settings(max_examples=15, deadline=None)
def test_number_groups_and_topics_are_the_same_levels_as_integers_or_floats(values, pick):
    """A level was the text of the cell: 1 in an integer column, "1.0" in a float one (one missing cell makes an
    integer column float), so a new table's groups were all unknown and scored as the reference group, and
    ``reference_group=1.0`` was not found. Now a whole number is the same level either way."""
    from accord.models.context import build_design

    table = _small_table()
    codes = pd.factorize(table["annotator"])[0]
    pair_codes = pd.factorize(table["pair_id"])[0]
    numbered = table.assign(annotator_group=np.asarray(values)[codes % len(values)],
                            item_topic=np.asarray(values)[pair_codes % len(values)])
    floats = numbered.assign(annotator_group=numbered["annotator_group"].astype(float),
                             item_topic=numbered["item_topic"].astype(float))
    reference = float(values[pick % len(values)])
    design = build_design(numbered, group="annotator_group", topic="item_topic", covariates=None,
                          reference_group=reference)
    assert design.group_names[0] == str(values[pick % len(values)])
    assert design == build_design(floats, group="annotator_group", topic="item_topic", covariates=None,
                                  reference_group=reference)
    np.testing.assert_array_equal(design.groups_of(floats), design.groups_of(numbered))
    frame = design.item_frame(floats, pd.Index(floats["pair_id"].unique()))
    assert design.unseen_topics(frame).empty


@pytest.mark.filterwarnings("ignore::accord.models.base.ConvergenceWarning")
def test_held_out_judgments_of_number_groups_score_alike_as_integers_or_floats():
    table = _small_table()
    table = table.assign(annotator_group=table["annotator_group"].astype(str).str[-1].astype(int))
    pairs = table["pair_id"].unique()
    model = ContextPreference(covariates=None, topic=None, inference="map", max_steps=20, num_samples=3,
                              seed=0).fit(table[table["pair_id"].isin(pairs[:9])])
    new = table[~table["pair_id"].isin(pairs[:9])].reset_index(drop=True)
    as_float = new.assign(annotator_group=new["annotator_group"].astype(float))
    np.testing.assert_allclose(model.predictive_loglik(as_float), model.predictive_loglik(new), rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore::accord.models.base.ConvergenceWarning")
@given(st.sampled_from(["hh-rlhf", True, False, "NA"]), st.sampled_from(["other", True, None]))
@settings(max_examples=6, deadline=None)
def test_a_categorical_covariate_with_one_level_is_left_out_and_another_level_later_changes_nothing(value, later):
    """A categorical (or boolean) column with one level was one-hot 1 on every pair: a group intercept that the
    group effects already hold, and a new pair with another level (0 in every column) lost it, so a column that told
    the fitted pairs nothing apart moved the held-out scores. Now it is left out, as a constant numeric column."""
    from accord.models.context import build_design

    table = _small_table().assign(item_source=value)
    design = build_design(table, group="annotator_group", topic=None, covariates=["item_length", "item_source"])
    assert design.covariate_names == ("item_length",)
    pairs = table["pair_id"].unique()
    model = ContextPreference(topic=None, covariates=["item_length", "item_source"], inference="map", max_steps=20,
                              num_samples=2, seed=0).fit(table[table["pair_id"].isin(pairs[:9])])
    new = table[~table["pair_id"].isin(pairs[:9])].reset_index(drop=True)
    np.testing.assert_allclose(model.predictive_loglik(new.assign(item_source=later)), model.predictive_loglik(new),
                               rtol=0, atol=1e-9)


@given(st.lists(st.integers(-5, 50), min_size=2, max_size=3, unique=True), st.booleans())
@settings(max_examples=15, deadline=None)
def test_population_weights_name_number_groups_as_the_model_does(values, as_float):
    """The model knows a group 1 as '1' (an integer or a float column alike); weights keyed 1.0 named an unknown
    group '1.0', and keys 1 and '1' both named group '1', the later weight silently replacing the other. Now a key
    names the group as the model does, and one group named twice is an error."""
    groups = [str(v) for v in values]
    probs = GroupProbabilities(clean=np.full((1, 2, len(groups), 2), 0.5), observed=np.full((2, len(groups), 2), 0.5),
                               groups=groups, share=np.full(len(groups), 1 / len(groups)),
                               counts=np.ones((2, len(groups))), item_index=pd.Index(["p0", "p1"]), classes=("A", "B"))
    keys = [float(v) if as_float else v for v in values]
    expected = np.arange(1.0, len(values) + 1)
    np.testing.assert_allclose(population_weights(probs, dict(zip(keys, expected))), expected / expected.sum())
    with pytest.raises(AccordError, match=f"weights name the group '{values[0]}' twice"):
        population_weights(probs, {values[0]: 1.0, str(values[0]): 2.0})


@pytest.mark.parametrize("group", [None, "auto"])
def test_a_reference_group_without_groups_is_refused_not_ignored(group):
    """reference_group names the group every effect is a contrast against; without a group column (group=None, or
    'auto' on a table without annotator_group) it was silently ignored. Now it is one error naming the setting."""
    table = _small_table().drop(columns=["annotator_group"])
    with pytest.raises(AccordError, match="reference_group='g1' needs a group column"):
        ContextPreference(group=group, reference_group="g1", covariates=None, inference="map", max_steps=2).fit(table)


@given(st.sampled_from([1.0, -1.0, 2.5, 1e-3, 1e4]), st.floats(-1e3, 1e3))
@settings(max_examples=8, deadline=None)
def test_a_numeric_covariate_that_is_a_linear_function_of_another_is_left_out_with_a_warning(scale, offset):
    """A covariate told twice under two names (a column copied, in other units) entered the design twice: two
    columns whose effects only their sum identifies, each group shift reported at a share of it (a name given
    twice is refused for that reason). Now the later one is left out with a warning naming both, and the design
    is the one of the first alone."""
    from accord.models.context import build_design

    table = _small_table().assign(item_copy=lambda t: scale * t["item_length"] + offset,
                                  item_other=lambda t: t["item_length"] ** 2)
    alone = build_design(table, group="annotator_group", topic=None, covariates=["item_length", "item_other"])
    with pytest.warns(UserWarning, match=r"column 'item_copy' is a linear function of \['item_length'\]"):
        design = build_design(table, group="annotator_group", topic=None,
                              covariates=["item_length", "item_copy", "item_other"])
    assert design == alone


NAME_SEQUENCES = {"list": list, "tuple": tuple, "numpy": np.array, "index": pd.Index}


@pytest.mark.parametrize("kind", sorted(NAME_SEQUENCES))
def test_covariates_as_any_sequence_of_names_fit_as_the_list_does(kind):
    """``covariates=np.array([...])`` failed in the fit with numpy's 'truth value of an array is ambiguous' (the
    setting was compared with 'auto'); any sequence of names is now the tuple of them, the fit the list's, and
    get_params / clone / sklearn's clone give the setting back unchanged."""
    sklearn_base = pytest.importorskip("sklearn.base")
    table = _small_table().assign(item_other=lambda t: t["item_length"] ** 2)
    names = ["item_length", "item_other"]
    settings = dict(inference="map", max_steps=20, num_samples=3, seed=0)
    model = ContextPreference(covariates=NAME_SEQUENCES[kind](names), **settings)
    assert model.covariates == tuple(names) and all(type(name) is str for name in model.covariates)
    for copy in (model.clone(), sklearn_base.clone(model), eval(repr(model), {"ContextPreference": ContextPreference})):
        assert copy.get_params() == model.get_params()
    given = model.fit(table).soft_labels_.probs
    as_list = ContextPreference(covariates=names, **settings).fit(table).soft_labels_.probs
    pd.testing.assert_frame_equal(given, as_list)


@pytest.mark.parametrize("covariates", [{"item_length"}, np.array([["item_length"]]), 3])
def test_covariates_that_are_no_sequence_of_names_are_one_error_naming_the_setting(covariates):
    with pytest.raises(AccordError, match="covariates must be a sequence of names"):
        ContextPreference(covariates=covariates)


@pytest.mark.filterwarnings("ignore::accord.models.base.ConvergenceWarning")
@given(st.integers(0, 35), st.sampled_from([np.nan, None, pd.NA]), st.booleans())
@settings(max_examples=12, deadline=None)
def test_a_missing_group_is_an_error_naming_the_column_and_row(row, missing, numbers):
    """A missing cell of the group column became a rater group of its own, "NA", fitted with effects of its own
    (and, when predicting, a missing cell was scored as that group or the reference group): raters of no group
    pooled as a made-up one. Now fitting and scoring are one error naming the column and the row's position."""
    table = _small_table()
    if numbers:  # a number column: a missing cell makes it float
        table = table.assign(annotator_group=table["annotator_group"].astype(str).str[-1].astype(int))
    shuffled = table.iloc[np.random.default_rng(row).permutation(len(table))]  # positions, not index labels
    holed = shuffled.astype({"annotator_group": object})
    holed.iloc[row, holed.columns.get_loc("annotator_group")] = missing
    settings_ = dict(topic=None, covariates=None, inference="map", max_steps=5, num_samples=2, seed=0)
    with pytest.raises(AccordError, match=rf"column 'annotator_group', row {row}: .*missing"):
        ContextPreference(group="annotator_group", **settings_).fit(holed)
    with pytest.raises(AccordError, match=rf"column 'annotator_group', row {row}: .*missing"):
        ContextPreference(**settings_).fit(holed)  # group='auto' reads annotator_group
    model = ContextPreference(group="annotator_group", **settings_).fit(shuffled)
    with pytest.raises(AccordError, match=rf"column 'annotator_group', row {row}: .*missing"):
        model.predictive_loglik(holed)


@pytest.mark.filterwarnings("ignore::accord.models.base.ConvergenceWarning")
@pytest.mark.parametrize("labels", ["shared", "individual"])
def test_a_group_not_seen_in_training_draws_its_effects_from_their_population(labels):
    """A group the fit did not see took the reference group's code, so its judgments were scored as if the group were
    certainly the reference (every effect exactly 0), where a new topic, pair or rater draws its effects from their
    fitted population: k-fold scores of a small group missing from a training fold came out over-confident. Now
    its group effects are drawn from their population in every draw (its own: two unseen groups are not one), and
    the other judgments of the table are scored as without it."""
    table = _small_table(2).assign(item_topic="all")
    pairs = table["pair_id"].unique()
    model = ContextPreference(labels=labels, topic=None, covariates=["item_length"], inference="meanfield",
                              max_steps=40, posterior_steps=20, num_samples=20,
                              seed=0).fit(table[table["pair_id"].isin(pairs[:9])])
    reference = model.design_.group_names[0]
    known = table[~table["pair_id"].isin(pairs[:9])].reset_index(drop=True)
    as_reference = model.predictive_loglik(known.assign(annotator_group=reference))
    new = known.assign(annotator_group="unseen")
    scores = model.predictive_loglik(new)
    assert np.isfinite(scores).all()
    assert np.abs(scores - as_reference).max() > 1e-3  # not the reference group's scores
    # the name and the row order of the unseen group do not change its draws; other rows are scored as without it
    renamed = model.predictive_loglik(known.assign(annotator_group="another name"))
    np.testing.assert_allclose(renamed, scores, rtol=0, atol=1e-9)
    order = np.random.default_rng(0).permutation(len(new))
    np.testing.assert_allclose(model.predictive_loglik(new.iloc[order]), scores[order], rtol=0, atol=1e-6)
    some = np.arange(len(known)) % 3 == 0
    mixed = known.astype({"annotator_group": object})
    mixed.loc[some, "annotator_group"] = "unseen"
    mixed_scores = model.predictive_loglik(mixed)
    np.testing.assert_allclose(mixed_scores[~some], model.predictive_loglik(known)[~some], rtol=0, atol=1e-6)
    np.testing.assert_allclose(mixed_scores[some], scores[some], rtol=0, atol=1e-6)


@pytest.mark.parametrize("weights", [["g1"], ("g0", "g1"), np.array([0.25, 0.75]), 0.5, None])
def test_population_weights_that_are_no_mapping_are_one_error_naming_the_setting(weights):
    """weights takes 'share', 'equal' or {group: weight}: a list of group names failed with Python's "'list' object
    has no attribute 'items'", and an array of weights in the groups' order was read as group names ('weights name
    unknown groups [0.25, 0.75]'). Now anything but a mapping is one error naming the setting, and a pandas Series
    keyed by group is read as the dict of it."""
    probs = GroupProbabilities(clean=np.full((1, 2, 2, 2), 0.5), observed=np.full((2, 2, 2), 0.5), groups=["g0", "g1"],
                               share=np.full(2, 0.5), counts=np.ones((2, 2)), item_index=pd.Index(["p0", "p1"]),
                               classes=("A", "B"))
    with pytest.raises(AccordError, match=r"weights must be 'share', 'equal' or a dict of group weights, not"):
        population_weights(probs, weights)
    series = pd.Series({"g1": 3.0, "g0": 1.0})
    np.testing.assert_allclose(population_weights(probs, series), [0.25, 0.75])


@pytest.mark.filterwarnings("ignore::accord.models.base.ConvergenceWarning")
@pytest.mark.parametrize("labels,target", [("shared", "label"), ("individual", "preference")])
def test_the_population_soft_labels_are_the_share_weighted_mix_of_the_group_soft_labels(labels, target):
    """soft_labels_ is the rater-share mix of the groups' label posteriors (shared labels) or clean preferences
    (individual labels): the probabilities of pluralistic_soft_labels with that target, each group's summing to 1."""
    model = ContextPreference(labels=labels, topic=None, covariates=None, inference="meanfield", max_steps=30,
                              posterior_steps=10, num_samples=8, seed=0).fit(_small_table())
    plural = pluralistic_soft_labels(model, "share", target=target)
    np.testing.assert_allclose(plural.probs.to_numpy(), model.soft_labels_.probs.to_numpy(), rtol=0, atol=1e-6)
    probs = model.group_probabilities()
    per_group = np.stack([plural.extra[[f"p_{c.lower()}_{g}" for c in ("A", "B", "tie")]].to_numpy()
                          for g in probs.groups], axis=1)
    np.testing.assert_allclose(per_group.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.einsum("igk,g->ik", per_group, probs.share), model.soft_labels_.probs.to_numpy(),
                               atol=1e-6)
