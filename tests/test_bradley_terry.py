"""Crowd Bradley-Terry: recovery on synthetic data with known utilities and annotators, the estimator API, ArviZ,
held-out scoring, errors, and the ranking of UKPConvArg1 against the corpus' own per-argument scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import torch
from conftest import shared_data_or_skip

from accord.datasets import AccordError, FitError, ValidationError, gold_labels, make_synthetic, validate
from accord.models.bradley_terry import CrowdBradleyTerry, ordinal_log_probs


@dataclass
class Truth:
    utility: pd.Series
    sharpness: pd.Series
    bias: pd.Series
    kind: pd.Series
    nu: float


def simulate(
    *,
    n_responses: int = 200,
    n_annotators: int = 60,
    n_pairs: int = 2000,
    per_pair: int = 3,
    nu: float = 0.6,
    adversarial: float = 0.1,
    biased: float = 0.15,
    honest_sharpness: tuple[float, float] = (1.2, 0.4),
    seed: int = 0,
    ids: bool = True,
) -> tuple[pd.DataFrame, Truth]:
    """Judgments from the Davidson crowd model: true utilities ``u ~ N(0, 1)``; honest annotators with log-normal
    sharpness (median ``honest_sharpness[0]``), adversarial ones with negative sharpness, position-biased ones with
    ``b = +-1.5``; each pair judged by ``per_pair`` distinct annotators."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 1.0, n_responses)
    s = rng.lognormal(math.log(honest_sharpness[0]), honest_sharpness[1], n_annotators)
    b = rng.normal(0.0, 0.1, n_annotators)
    kind = np.full(n_annotators, "honest", dtype=object)
    order = rng.permutation(n_annotators)
    n_adv, n_bias = int(round(adversarial * n_annotators)), int(round(biased * n_annotators))
    adv, bia = order[:n_adv], order[n_adv:n_adv + n_bias]
    s[adv] = -rng.uniform(0.7, 1.5, n_adv)
    kind[adv] = "adversarial"
    b[bia] = rng.choice([-1.5, 1.5], n_bias)
    kind[bia] = "biased"

    side_a = rng.integers(0, n_responses, n_pairs)
    side_b = (side_a + rng.integers(1, n_responses, n_pairs)) % n_responses
    pair = np.repeat(np.arange(n_pairs), per_pair)
    # distinct annotators per pair: the first `per_pair` of a random permutation per pair
    ann = np.argsort(rng.random((n_pairs, n_annotators)), axis=1)[:, :per_pair].ravel()
    d = s[ann] * (u[side_a[pair]] - u[side_b[pair]]) + b[ann]
    logits = np.stack([d / 2, -d / 2, np.full_like(d, math.log(nu))], axis=1)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(len(d))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    table = pd.DataFrame({
        "pair_id": [f"p{i}" for i in pair],
        "annotator": [f"w{j}" for j in ann],
        "label": np.array(["A", "B", "tie"])[np.minimum(y, 2)],
    })
    if ids:
        table["response_a_id"] = [f"r{i}" for i in side_a[pair]]
        table["response_b_id"] = [f"r{i}" for i in side_b[pair]]
    responses = [f"r{i}" for i in range(n_responses)]
    annotators = [f"w{j}" for j in range(n_annotators)]
    truth = Truth(
        pd.Series(u, index=responses), pd.Series(s, index=annotators), pd.Series(b, index=annotators),
        pd.Series(kind, index=annotators), nu,
    )
    return table, truth


@pytest.fixture(scope="module")
def crowd() -> tuple[pd.DataFrame, Truth]:
    return simulate()


@pytest.fixture(scope="module")
def fitted(crowd: tuple[pd.DataFrame, Truth]) -> CrowdBradleyTerry:
    table, _ = crowd
    return CrowdBradleyTerry(inference="meanfield", seed=0).fit(table)


# -- recovery -------------------------------------------------------------------------------------------------


def test_utilities_recovered(fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    _, truth = crowd
    estimate = fitted.ranking_["utility"].reindex(truth.utility.index)
    assert estimate.notna().all()
    assert spearmanr(estimate, truth.utility)[0] >= 0.9


def test_adversarial_and_honest_signs(fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    _, truth = crowd
    table = fitted.annotators_.reindex(truth.kind.index)
    adversarial = truth.kind == "adversarial"
    assert adversarial.sum() >= 5
    assert (table.loc[adversarial, "sharpness"] < 0).all()
    assert (table.loc[adversarial, "p_adversarial"] > 0.9).all()
    assert (table.loc[~adversarial, "sharpness"] > 0).all()
    # relative sharpness orders the annotators like the truth
    assert spearmanr(table["sharpness"], truth.sharpness)[0] >= 0.85


def test_position_bias_recovered(fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    _, truth = crowd
    table = fitted.annotators_.reindex(truth.bias.index)
    assert np.corrcoef(table["position_bias_logit"], truth.bias)[0, 1] >= 0.8
    biased = truth.kind == "biased"
    assert (np.sign(table.loc[biased, "position_bias_logit"]) == np.sign(truth.bias[biased])).all()


def test_davidson_tie_parameter_recovered(fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    _, truth = crowd
    nu = fitted.population_.loc["nu"]
    assert abs(nu["mean"] - truth.nu) < 0.1
    assert nu["lower"] < nu["mean"] < nu["upper"]


def _davidson_side(d: np.ndarray, log_nu: np.ndarray | float, side: str) -> np.ndarray:
    """Davidson's P(vote = side) at log-odds ``d`` and tie parameter ``nu = exp(log_nu)``."""
    top = np.maximum(np.abs(d) / 2, log_nu)
    norm = np.exp(d / 2 - top) + np.exp(-d / 2 - top) + np.exp(log_nu - top)
    return np.exp((d / 2 if side == "A" else -d / 2) - top) / norm


def _documented_reliability(gap: np.ndarray, sharpness: np.ndarray, bias: np.ndarray,
                            log_nu: np.ndarray | float) -> np.ndarray:
    """A pairwise model's ``reliability`` per judgment (README, annotator table; ``accord/models/pairwise.py``): the
    true label of a pair is its better response, shown first or second with probability 1/2 each (the class prior),
    and the rater's chance of voting for it; a tie vote never equals it."""
    first = _davidson_side(sharpness * np.abs(gap) + bias, log_nu, "A")
    second = _davidson_side(-sharpness * np.abs(gap) + bias, log_nu, "B")
    return 0.5 * (first + second)


def test_reliability_is_the_chance_of_voting_for_the_better_response_by_hand() -> None:
    """The annotator table's reliability, computed by hand from the exported draws: per draw and per judgment of the
    rater, the chance of voting for the response that is better under that draw (its own bias, tie propensity and
    the pair's), averaged over the rater's judgments and the draws. Not the chance of matching a label drawn around
    the utilities, which is ``make_synthetic``'s ``accuracy``: that one is higher wherever labels are noisy."""
    table, _ = simulate(n_responses=40, n_annotators=12, n_pairs=200, seed=5)
    model = CrowdBradleyTerry(inference="meanfield", max_steps=400, seed=0).fit(table)
    posterior = model.to_arviz().posterior

    def draws(name: str) -> np.ndarray:
        return posterior[name].values.reshape(-1, *posterior[name].shape[2:])

    utility = pd.DataFrame(draws("utility"), columns=posterior["utility"].coords["response"].values)
    gap = utility[table["response_a_id"]].to_numpy() - utility[table["response_b_id"]].to_numpy()  # [draws, n]
    worker = model.encoded_.worker_index.get_indexer(table["annotator"])
    pair = model.encoded_.item_index.get_indexer(table["pair_id"])
    log_nu = draws("tie_log_mean")[:, None] + draws("tie_offset")[:, worker] + draws("pair_tie")[:, pair]
    each = _documented_reliability(gap, draws("sharpness")[:, worker], draws("bias")[:, worker], log_nu)
    expected = pd.Series(each.mean(axis=0)).groupby(table["annotator"].to_numpy()).mean()
    reliability = model.annotators_["reliability"].reindex(expected.index)
    np.testing.assert_allclose(reliability, expected, atol=1e-5)


def test_reliability_recovers_the_true_chance_of_voting_for_the_better_response(
        fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    """On the model's own generative story, each rater's reliability recovers the true value of what it is defined
    as (measured over seeds 0-2: mean error +0.001 to +0.011, mean absolute error 0.03, correlation 0.96-0.97)."""
    table, truth = crowd
    worker = table["annotator"].to_numpy()
    gap = truth.utility[table["response_a_id"]].to_numpy() - truth.utility[table["response_b_id"]].to_numpy()
    each = _documented_reliability(gap, truth.sharpness[worker].to_numpy(), truth.bias[worker].to_numpy(),
                                   math.log(truth.nu))
    true = pd.Series(each).groupby(worker).mean()
    error = fitted.annotators_["reliability"].reindex(true.index) - true
    assert abs(error.mean()) < 0.02 and error.abs().mean() < 0.045
    assert np.corrcoef(true + error, true)[0, 1] > 0.93


def test_predict_proba_for_pairs_never_compared(fitted: CrowdBradleyTerry,
                                                crowd: tuple[pd.DataFrame, Truth]) -> None:
    table, truth = crowd
    seen = set(zip(table["response_a_id"], table["response_b_id"]))
    seen |= {(b, a) for a, b in seen}
    rng = np.random.default_rng(1)
    candidates = [(f"r{i}", f"r{j}") for i, j in rng.integers(0, len(truth.utility), (400, 2)) if i != j]
    unseen = [p for p in candidates if p not in seen][:200]
    assert len(unseen) >= 100
    out = fitted.predict_proba(unseen)
    assert list(out.columns) == ["response_a_id", "response_b_id", "A", "B", "tie", "sd"]
    np.testing.assert_allclose(out[["A", "B", "tie"]].sum(axis=1), 1.0, atol=1e-6)
    # consistent with the utilities: P(A > B) orders pairs like the true utility gap ...
    gap = truth.utility[out["response_a_id"]].to_numpy() - truth.utility[out["response_b_id"]].to_numpy()
    assert spearmanr(out["A"] - out["B"], gap)[0] >= 0.9
    # ... and agrees with the fitted ranking's direction
    fitted_gap = (fitted.ranking_["utility"][out["response_a_id"]].to_numpy()
                  - fitted.ranking_["utility"][out["response_b_id"]].to_numpy())
    assert (np.sign(out["A"] - out["B"]) == np.sign(fitted_gap)).mean() >= 0.98
    # swapping the sides swaps A and B
    swapped = fitted.predict_proba(out[["response_b_id", "response_a_id"]].set_axis(
        ["response_a_id", "response_b_id"], axis=1))
    np.testing.assert_allclose(swapped["A"], out["B"], atol=1e-6)
    with pytest.raises(AccordError, match="not seen"):
        fitted.predict_proba([("r0", "no-such-response")])


def test_utility_intervals_cover_truth_at_nominal_rate() -> None:
    # data drawn from the model itself (no adversarial mixture), so that the truth on the reported scale is
    # mu_s * u with mu_s the annotators' mean sharpness. Only differences of utilities are identified (their
    # common location comes from the prior), so truth and estimates are centred.
    table, truth = simulate(n_responses=150, n_annotators=40, n_pairs=1500, adversarial=0.0, biased=0.0,
                            honest_sharpness=(1.5, 0.25), seed=5)
    model = CrowdBradleyTerry(inference="meanfield", seed=0).fit(table)
    target = (truth.utility - truth.utility.mean()) * truth.sharpness.mean()
    ranking = model.ranking_.reindex(target.index)
    shift = ranking["utility"].mean()
    covered = ((ranking["lower"] - shift <= target) & (target <= ranking["upper"] - shift)).mean()
    # measured 0.82 here (0.77-0.89 over seeds 5-7; NUTS 0.87 on the worst seed, so most of the shortfall is
    # the posterior's own attenuation on one data set, not the mean-field approximation)
    assert 0.75 <= covered <= 0.99, covered


# -- API -------------------------------------------------------------------------------------------------------


def test_soft_labels_ranking_annotators(fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    table, _ = crowd
    soft = fitted.soft_labels_
    assert soft.classes == ["A", "B", "tie"]
    assert len(soft) == table["pair_id"].nunique()
    assert soft.uncertainty.notna().all() and (soft.uncertainty > 0).all()
    assert {"lower", "upper"} <= set(soft.to_frame().columns)
    # P(u_A > u_B) agrees in direction with the soft label
    p_better = soft.extra["p_a_better"]
    agree = np.sign(p_better - 0.5) == np.sign(soft.probs["A"] - soft.probs["B"])
    assert agree[(p_better - 0.5).abs() > 0.05].all()
    ranking = fitted.ranking_
    assert list(ranking.columns) == ["utility", "sd", "lower", "upper", "rank", "n_judgments"]
    assert ranking["rank"].is_monotonic_increasing and ranking["rank"].iloc[0] == 1
    assert (ranking["lower"] <= ranking["utility"]).all() and (ranking["utility"] <= ranking["upper"]).all()
    annotators = fitted.annotators_
    for column in ("sharpness", "sharpness_lower", "sharpness_upper", "position_bias_logit",
                   "position_bias_logit_lower", "position_bias_logit_upper", "p_adversarial", "tie_offset",
                   "n_judgments", "reliability", "spam", "position_bias"):
        assert column in annotators.columns
    assert annotators["n_judgments"].sum() == len(table)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto", "ignore:For one or more samples")
def test_to_arviz_supports_loo_and_waic(fitted: CrowdBradleyTerry, crowd: tuple[pd.DataFrame, Truth]) -> None:
    table, _ = crowd
    idata = fitted.to_arviz()
    assert idata.log_likelihood["y"].shape == (1, fitted.num_samples, len(table))
    assert idata.posterior["utility"].dims == ("chain", "draw", "response")
    assert idata.posterior["sharpness"].dims == ("chain", "draw", "annotator")
    assert "r0" in idata.posterior["utility"].coords["response"].values
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.elpd_loo < 0
    assert np.isfinite(az.waic(idata).elpd_waic)


def test_heldout_loglik_beats_uniform() -> None:
    table, _ = simulate(n_responses=80, n_annotators=30, n_pairs=700, seed=8)
    table = validate(table)
    rng = np.random.default_rng(0)
    test_rows = rng.random(len(table)) < 0.2
    train, test = table[~test_rows], table[test_rows]
    model = CrowdBradleyTerry(inference="meanfield", seed=0)
    scores = model._heldout_loglik(train, test)
    assert scores.shape == (int(test_rows.sum()),) and np.isfinite(scores).all()
    assert scores.mean() > math.log(1 / 3) + 0.1


def test_map_without_response_ids_and_new_pairs() -> None:
    table, _ = simulate(n_responses=60, n_annotators=20, n_pairs=300, ids=False, seed=2)
    model = CrowdBradleyTerry(inference="map", max_steps=300).fit(table)
    assert model.layout_.mode == "pair"
    assert np.isnan(model.soft_labels_.uncertainty).all()  # a point estimate has no uncertainty
    assert "p0/A" in model.ranking_.index and "p0/B" in model.ranking_.index
    # the soft label follows the clear majorities
    votes = table.groupby("pair_id")["label"].agg(lambda v: (v == "A").sum() - (v == "B").sum())
    clear = votes[votes.abs() >= 3]
    predicted = model.soft_labels_.probs.loc[clear.index]
    assert (np.sign(predicted["A"] - predicted["B"]) == np.sign(clear)).all()
    same_pair = model.predict_proba([("p0/A", "p0/B")])
    np.testing.assert_allclose(same_pair["A"].iloc[0], model.soft_labels_.probs.loc["p0", "A"], atol=1e-6)


def test_probit_rao_kupper_and_settings() -> None:
    rng = np.random.default_rng(4)
    n_resp, n_pairs = 80, 1200
    u = rng.normal(0, 1, n_resp)
    a = rng.integers(0, n_resp, n_pairs)
    b = (a + rng.integers(1, n_resp, n_pairs)) % n_resp
    pair = np.repeat(np.arange(n_pairs), 3)
    eta = 0.4
    # Glenn-David: P(A) = Phi(d - eta), P(B) = Phi(-d - eta): ordered categories (A, tie, B) with cut-points
    # (-eta, eta) and predictor d
    logp = ordinal_log_probs(torch.tensor([[-eta, eta]]).expand(len(pair), 2),
                             torch.tensor(u[a[pair]] - u[b[pair]], dtype=torch.float32), "probit")
    y = torch.distributions.Categorical(logits=logp).sample().numpy()
    table = pd.DataFrame({
        "pair_id": pair, "annotator": rng.integers(0, 25, len(pair)),
        "label": np.array(["A", "tie", "B"])[y],
        "response_a_id": a[pair], "response_b_id": b[pair],
    }).drop_duplicates(["pair_id", "annotator"])
    model = CrowdBradleyTerry(link="probit", ties="rao-kupper", annotator_ties=False, inference="meanfield").fit(table)
    estimate = model.ranking_["utility"].reindex(range(n_resp))
    assert spearmanr(estimate, u)[0] >= 0.9
    # eta is on the typical annotator's probit scale: it is invariant to the scale split
    assert abs(model.population_.loc["eta", "mean"] - eta) < 0.1
    assert "tie_offset" not in model.annotators_.columns
    with pytest.raises(AccordError, match="probit"):
        CrowdBradleyTerry(link="probit", ties="davidson")
    with pytest.raises(AccordError, match="inference"):
        CrowdBradleyTerry(inference="vb").fit(table)
    assert CrowdBradleyTerry(ties="rao-kupper").clone().ties == "rao-kupper"


def test_default_tie_model_follows_the_link() -> None:
    """Without ``ties``, the logit link takes Davidson's ties and the probit link Rao-Kupper's (Glenn-David): a
    Thurstone model is one setting, not two (``link="probit"`` alone used to be refused even on data without ties)."""
    assert CrowdBradleyTerry().tie_model == "davidson"
    assert CrowdBradleyTerry(link="probit").tie_model == "rao-kupper"
    assert CrowdBradleyTerry(link="probit", ties="rao-kupper").tie_model == "rao-kupper"
    assert CrowdBradleyTerry(ties="rao-kupper").tie_model == "rao-kupper"
    rng = np.random.default_rng(5)
    pair = np.repeat(np.arange(60), 3)
    table = pd.DataFrame({"pair_id": pair, "annotator": np.tile([0, 1, 2], 60),
                          "label": rng.choice(["A", "B", "tie"], len(pair), p=[0.45, 0.35, 0.2])})
    probit = CrowdBradleyTerry(link="probit", max_steps=50, num_samples=20, seed=0).fit(table)
    assert "eta" in probit.population_.index and "nu" not in probit.population_.index
    logit = CrowdBradleyTerry(max_steps=50, num_samples=20, seed=0).fit(table)
    assert "nu" in logit.population_.index and "eta" not in logit.population_.index
    with pytest.raises(AccordError, match="ties"):
        CrowdBradleyTerry(ties="glenn-david")


def test_nuts_small() -> None:
    table, truth = simulate(n_responses=25, n_annotators=8, n_pairs=150, seed=3)
    model = CrowdBradleyTerry(inference="nuts", num_samples=40, num_warmup=40, seed=0).fit(table)
    idata = model.to_arviz()
    assert idata.posterior["utility"].shape == (1, 40, 25)
    assert "diverging" in idata.sample_stats
    assert spearmanr(model.ranking_["utility"].reindex(truth.utility.index), truth.utility)[0] >= 0.7


def test_errors_on_nan_and_divergence(crowd: tuple[pd.DataFrame, Truth]) -> None:
    table, _ = crowd
    broken = table.copy()
    broken.loc[3, "label"] = np.nan
    with pytest.raises(ValidationError, match="label"):
        CrowdBradleyTerry().fit(broken)
    small = table.iloc[:300]
    with pytest.raises(FitError):
        CrowdBradleyTerry(inference="map", learning_rate=1e6, max_steps=50).fit(small)
    with pytest.raises(AccordError, match="categorical"):
        CrowdBradleyTerry().fit(validate(pd.DataFrame(
            {"task": ["t1", "t1"], "worker": ["w1", "w2"], "label": ["cat", "dog"]})))


# -- real data ----------------------------------------------------------------------------------------------------


def test_ukpconvarg1_ranking_matches_corpus_scores() -> None:
    root = shared_data_or_skip("ukp-convarg1")
    from accord.datasets.loaders.ukp import load_ukpconvarg1

    judgments = load_ukpconvarg1(root)
    model = CrowdBradleyTerry(inference="meanfield", seed=0).fit(judgments)
    scores = []
    for file in sorted((root / "UKPConvArg1-Ranking-CSV").glob("*.csv")):
        frame = pd.read_csv(file, sep="\t", usecols=[0, 1], names=["response_id", "score"], skiprows=1,
                            dtype={"response_id": str})
        frame["debate"] = file.stem
        scores.append(frame)
    corpus = pd.concat(scores, ignore_index=True)
    corpus["utility"] = model.ranking_["utility"].reindex(corpus["response_id"]).to_numpy()
    assert corpus["utility"].notna().all() and len(corpus) == 1052
    # the corpus' score is higher for *less* convincing arguments (e.g. "jesus loves plastic water bottles, and
    # you cant argue with that logic" has the top score of its debate), so convincingness is its negation
    per_debate = corpus.groupby("debate").apply(lambda g: spearmanr(-g["score"], g["utility"])[0])
    assert len(per_debate) == 32
    assert per_debate.mean() > 0.85, per_debate.describe()  # measured 0.91 (MAP and mean-field)
    assert per_debate.min() > 0.6


@pytest.mark.parametrize("method", ["crowd", "debiased"])
def test_pairs_whose_votes_are_mostly_ties_get_tie_as_most_likely(method) -> None:
    """Data with genuinely equal pairs (``make_synthetic``: ~30% of pairs truly tied, raters mostly say so): a
    pair's own tie propensity lets "tie" win where the votes say tie, and only there - also in the debiasing model,
    whose likelihood once sampled that propensity without using it (it needs the texts for its length covariate)."""
    from accord.models.debiased_bradley_terry import DebiasedBradleyTerry

    data = make_synthetic(n_pairs=300, n_annotators=40, judgments_per_pair=5, tie_rate=0.3,
                          with_text=method == "debiased", seed=1)
    table = data.judgments.drop(columns=["gold"])
    model = (CrowdBradleyTerry if method == "crowd" else DebiasedBradleyTerry)(seed=0).fit(table)
    predicted = model.soft_labels_.probs.idxmax(axis=1)
    tie_votes = table.groupby("pair_id")["label"].apply(lambda s: (s == "tie").mean())
    assert (predicted.loc[tie_votes[tie_votes > 0.5].index] == "tie").mean() >= 0.9
    assert (predicted.loc[tie_votes[tie_votes < 0.3].index] == "tie").mean() <= 0.1
    gold = gold_labels(data.judgments)
    truly_tied = gold[gold == "tie"].index
    assert 0.2 <= len(truly_tied) / len(gold) <= 0.4
    assert (predicted.loc[truly_tied] == "tie").mean() >= 0.7
    assert (predicted.loc[gold.index] == gold).mean() >= 0.8


@pytest.mark.parametrize("method", ["crowd", "debiased"])
def test_a_refit_on_another_table_reads_that_table_not_the_first_ones_constants(method):
    """The priors and plates the model reads on every step are built once per table: a second ``fit`` of the same
    estimator on a table of another size gives what a fresh estimator gives on it."""
    from accord.models.debiased_bradley_terry import DebiasedBradleyTerry

    model = CrowdBradleyTerry if method == "crowd" else DebiasedBradleyTerry
    small = make_synthetic(n_pairs=30, n_annotators=8, judgments_per_pair=3, seed=1).judgments
    other = make_synthetic(n_pairs=45, n_annotators=11, judgments_per_pair=3, seed=2).judgments
    settings = dict(seed=0, max_steps=40, num_samples=10)
    reused = model(**settings).fit(small).fit(other)
    fresh = model(**settings).fit(other)
    assert len(reused.soft_labels_.probs) == 45
    np.testing.assert_allclose(reused.soft_labels_.probs.to_numpy(), fresh.soft_labels_.probs.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("inference", ["map", "meanfield", "nuts"])
@pytest.mark.parametrize("method", ["crowd", "ordinal"])
def test_a_table_of_one_pair_fits(method, inference):
    """One pair (without response ids: one gap) has no spread of warm-start gaps; torch's std of one number is NaN,
    which passed the clamp and made every start NaN: SVI 'diverged at step 0' and NUTS raised Pyro's raw ValueError."""
    from accord.models.ordinal import OrdinalPreference

    table = pd.DataFrame({"pair_id": "p", "annotator": ["a", "b", "c"], "label": ["A", "A", "B"]})
    model = (CrowdBradleyTerry if method == "crowd" else OrdinalPreference)(
        inference=inference, max_steps=100, num_samples=20, num_warmup=20, num_chains=1, seed=0).fit(table)
    probs = model.soft_labels_.probs
    assert np.isfinite(probs.to_numpy()).all() and np.allclose(probs.sum(axis=1), 1.0)
    assert probs.loc["p", "A"] > probs.loc["p", "B"]


@pytest.mark.parametrize("method", ["bradley-terry", "ordinal", "debiased-bradley-terry"])
@pytest.mark.parametrize("inference", ["map", "meanfield"])
def test_an_svi_fit_stopped_at_max_steps_warns_and_a_settled_one_does_not(method, inference):
    """The pairwise models' SVI stopped at max_steps before its loss settled said nothing (unfinished utilities and
    soft labels), where MACE and GLAD warn and accord.models promises a ConvergenceWarning for every fit stopped
    at its step limit: now the same warning, naming the limit and pointing at the caller's line."""
    import warnings

    from accord.aggregate import make_method
    from accord.models import ConvergenceWarning

    judgments = make_synthetic(n_pairs=40, n_annotators=8, judgments_per_pair=3, seed=0).judgments
    with pytest.warns(ConvergenceWarning, match="max_steps=4 before its loss settled") as caught:
        make_method(method, inference=inference, max_steps=4, num_samples=5, seed=0).fit(judgments)
    assert [w.filename for w in caught if issubclass(w.category, ConvergenceWarning)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="covariate 'length' agrees")  # not identified on a tiny table
        model = make_method(method, inference=inference, num_samples=5, seed=0).fit(judgments)
    assert model.svi_.converged


@pytest.mark.parametrize("patience", [0, -5, 2.5, True])
def test_a_patience_that_is_not_a_whole_number_of_steps_is_one_clear_error(patience):
    """The convergence rule compares the mean loss over windows of ``patience`` steps: with 0, -5 or 2.5 the window
    was never full, so every fit ran all of max_steps without a word, and True was a window of one step. Now one
    error naming the setting, as for max_steps."""
    judgments = make_synthetic(n_pairs=20, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    with pytest.raises(AccordError, match=rf"patience must be a whole number >= 1, not {patience!r}"):
        CrowdBradleyTerry(patience=patience, max_steps=5).fit(judgments)


@pytest.mark.parametrize("method, setting, value", [
    ("bradley-terry", "annotator_bias", "no"), ("bradley-terry", "pair_ties", "false"),
    ("ordinal", "annotator_shift", "off"), ("debiased-bradley-terry", "annotator_ties", 0),
])
def test_a_switch_that_is_not_true_or_false_is_one_clear_error(method, setting, value):
    """A model's on/off settings took any value by its truth: annotator_bias='no' fitted the position biases it was
    meant to leave out. Now anything but True or False is one error naming the setting."""
    from accord.aggregate import make_method

    judgments = make_synthetic(n_pairs=20, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    with pytest.raises(AccordError, match=rf"{setting} must be True or False, not {value!r}"):
        make_method(method, max_steps=5, **{setting: value}).fit(judgments)
    make_method(method, max_steps=5, num_samples=5, **{setting: np.False_}).fit(judgments)  # numpy's bool is a bool
