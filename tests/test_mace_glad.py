"""MACE and GLAD: recovery on synthetic data, agreement of the closed-form VB with SVI, label switching, accuracy
and calibration on real gold sets against crowd-kit's figures, ArviZ export, NUTS, held-out prediction, errors."""

from __future__ import annotations

import doctest
import math
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

import accord.models.glad as glad_module
import accord.models.mace as mace_module
from accord import metrics
from accord.datasets import AccordError, FitError, gold_labels, validate
from accord.models._data import PaddedJudgments, pad_judgments, vote_fractions
from accord.models.glad import GLAD
from accord.models.mace import MACE, MaceVBResult, mace_vb
from accord.models.pyro_fit import run_svi

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "datasets"

# crowd-kit 1.4.2 on the same tables (scratch run, this machine): accuracy and gold NLL of fit_predict_proba.
# MACE on Duck varies with its random restarts (.806 with random_state=0); .852 is the published re-measurement.
CROWDKIT = {
    ("mace", "rte"): {"accuracy": 0.925, "nll": 0.4267},
    ("mace", "duck"): {"accuracy": 0.852, "nll": 2.6061},
    ("glad", "rte"): {"accuracy": 0.925, "nll": 0.3349},
    ("glad", "duck"): {"accuracy": 0.722, "nll": 3.2725},
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These fits move small tensors: one intra-op thread is fastest, and on a shared 2-core machine two threads
    per op made this file 8x slower (12 min instead of 1.5). Restored afterwards for other test modules."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# -- synthetic data ---------------------------------------------------------------------------------------------


def _table(items: np.ndarray, workers: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "pair_id": [f"i{i:04d}" for i in items],
            "annotator": [f"w{w:03d}" for w in workers],
            "label": [f"c{y}" for y in labels],
            "gold": [f"c{t}" for t in truth[items]],
        }
    )
    return validate(frame, form="categorical")


def _assignments(rng: np.random.Generator, n_items: int, n_workers: int, per_item: int) -> tuple[np.ndarray, ...]:
    """Each item judged by ``per_item`` distinct annotators, vectorised (random keys, top per_item per row)."""
    chosen = np.argsort(rng.random((n_items, n_workers)), axis=1)[:, :per_item]
    items = np.repeat(np.arange(n_items), per_item)
    return items, chosen.reshape(-1)


def mace_data(seed: int = 0, n_workers: int = 40, n_items: int = 300, per_item: int = 5, k: int = 3,
              spam_share: float = 0.3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """MACE's own generative story: spammers (s in [0.7, 1]) and trying annotators (s in [0, 0.3])."""
    rng = np.random.default_rng(seed)
    is_spammer = rng.random(n_workers) < spam_share
    spam = np.where(is_spammer, rng.uniform(0.7, 1.0, n_workers), rng.uniform(0.0, 0.3, n_workers))
    spam_labels = rng.dirichlet(np.full(k, 0.7), n_workers)  # skewed: a spammer favours some labels
    truth = rng.choice(k, n_items, p=np.linspace(2, 1, k) / np.linspace(2, 1, k).sum())
    items, workers = _assignments(rng, n_items, n_workers, per_item)
    spams = rng.random(len(items)) < spam[workers]
    noise = (rng.random(len(items))[:, None] > np.cumsum(spam_labels[workers], axis=1)).sum(axis=1)
    labels = np.where(spams, np.minimum(noise, k - 1), truth[items])
    return _table(items, workers, labels, truth), spam, is_spammer


def glad_data(seed: int = 0, n_workers: int = 30, n_items: int = 400, per_item: int = 10, k: int = 2,
              ability_mean: float = 1.5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """GLAD's generative story: ability alpha ~ N(mean, 1), inverse difficulty beta ~ LogNormal(0, 0.8)."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(ability_mean, 1.0, n_workers)
    beta = rng.lognormal(0.0, 0.8, n_items)
    truth = rng.integers(0, k, n_items)
    items, workers = _assignments(rng, n_items, n_workers, per_item)
    right = rng.random(len(items)) < 1.0 / (1.0 + np.exp(-ability[workers] * beta[items]))
    wrong = (truth[items] + rng.integers(1, max(k, 2), len(items))) % k
    labels = np.where(right, truth[items], wrong)
    return _table(items, workers, labels, truth), ability, 1.0 / beta


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = score[positive][:, None], score[~positive][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def codes(frame: pd.DataFrame, prefix: str) -> np.ndarray:
    return np.array([int(str(v)[len(prefix):]) for v in frame.index])


# -- MACE ---------------------------------------------------------------------------------------------------------


def mace_conjugate_guide(model: MACE, init: MaceVBResult | None = None):  # noqa: ANN201
    """A Pyro guide for ``model._model`` in the closed-form VB's family: Beta per spam probability, Dirichlet per
    spam-label distribution and for the class prior, and a categorical ``q(t_i)`` per item (enumerated in the
    guide), each with free parameters: the oracle that ``inference="vb"`` is checked against.

    One difference remains: the Pyro model sums the spam indicator out inside the likelihood, where VB keeps a factor
    ``q(S | t)``; by Jensen's inequality VB's bound is the looser one, and the test states the tolerance. ``init``
    sets the starting parameters (default: the prior's, and uniform item posteriors).
    """

    def guide(data: PaddedJudgments, batch_size: int | None = None) -> None:
        w, k = data.n_workers, data.n_classes
        a, b = (float(v) for v in model.spam_prior)
        positive = dist.constraints.positive
        dtype = torch.get_default_dtype()
        if model.class_prior is not None:
            start_class = init.class_count.to(dtype) if init is not None else torch.ones(k)
            pyro.sample("class_prior", dist.Dirichlet(pyro.param("q_class_count", start_class, constraint=positive)))
        spam_count = pyro.param(
            "q_spam_count", init.spam_count.to(dtype) if init is not None else torch.full((w,), a), constraint=positive)
        trust_count = pyro.param(
            "q_trust_count", init.trust_count.to(dtype) if init is not None else torch.full((w,), b),
            constraint=positive)
        label_count = pyro.param(
            "q_spam_label_count", init.spam_label_count.to(dtype) if init is not None else torch.ones(w, k),
            constraint=positive)
        with pyro.plate("annotator", w, dim=-1):
            pyro.sample("spam", dist.Beta(spam_count, trust_count))
            pyro.sample("spam_labels", dist.Dirichlet(label_count))
        start_items = init.item_probs.to(dtype) if init is not None else torch.full((data.n_items, k), 1.0 / k)
        item_probs = pyro.param("q_item_probs", start_items, constraint=dist.constraints.simplex)
        subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
        with pyro.plate("item", data.n_items, dim=-2, subsample_size=subsample) as idx:
            pyro.sample("true_class", dist.Categorical(item_probs[idx].unsqueeze(-2)),
                        infer={"enumerate": "parallel"})

    return guide



@pytest.mark.parametrize("inference", ["meanfield", "vb"])
def test_mace_detects_spammers_on_synthetic_data(inference: str) -> None:
    judgments, spam, is_spammer = mace_data(seed=1, n_workers=30, n_items=240)
    model = MACE(inference=inference, seed=0).fit(judgments)
    table = model.annotators_
    order = codes(table, "w")
    assert auc(table["spam"].to_numpy(), is_spammer[order]) >= 0.9
    assert (table["competence"] - (1 - table["spam"])).abs().max() < 1e-6
    assert (table["spam_lower"] <= table["spam"]).all() and (table["spam"] <= table["spam_upper"]).all()
    assert np.corrcoef(table["spam"], spam[order])[0, 1] > 0.8
    # soft labels beat the majority vote on accuracy
    gold = gold_labels(judgments)
    counts = judgments.groupby(["pair_id", "label"]).size().unstack(fill_value=0)
    assert metrics.accuracy(model.soft_labels_.probs, gold) >= metrics.accuracy(counts, gold)
    assert {f"spam_label_c{k}" for k in range(3)} <= set(table.columns)
    assert table["position_bias"].isna().all()  # position bias is defined for preference data only


def test_mace_vb_matches_svi_in_the_same_family() -> None:
    """Closed-form VB against SVI with the Beta/Dirichlet/categorical guide, started one VB step in.

    Stated tolerance: posterior means of the spam probabilities within 0.04, spam-label distributions within 0.05,
    item posteriors within 0.03 and class-prior concentrations within 5%. Posterior sds are *not* equal: the Pyro
    model sums each judgment's spam indicator out, VB keeps a factor for it, and VB's intervals come out narrower
    (the sd ratio SVI / VB is checked to lie in [1, 2]; NUTS agrees with SVI, see MACE's docstring).
    """
    judgments, _, _ = mace_data(seed=2, n_workers=15, n_items=120, per_item=4)
    fitted = MACE(inference="vb", tol=1e-8, max_steps=5000).fit(judgments)
    vb, encoded = fitted.vb_, fitted.encoded_
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model = MACE()
    model.encoded_ = encoded
    guide = mace_conjugate_guide(model, init=mace_vb(encoded, vote_fractions(encoded, 0.5), max_iter=1))
    loss = TraceEnum_ELBO(max_plate_nesting=2, num_particles=16, vectorize_particles=True)
    run_svi(model._model, guide, loss, pad_judgments(encoded), None, max_steps=300, learning_rate=0.1, tol=0.0,
            patience=10**9, final_lr_fraction=0.01)
    store = pyro.get_param_store()
    a, b = store["q_spam_count"].detach().double(), store["q_trust_count"].detach().double()
    svi_mean, svi_sd = a / (a + b), dist.Beta(a, b).stddev
    vb_mean, vb_sd = vb.spam_count / (vb.spam_count + vb.trust_count), dist.Beta(vb.spam_count, vb.trust_count).stddev
    assert float((svi_mean - vb_mean).abs().max()) < 0.04
    ratio = svi_sd / vb_sd
    assert 1.0 <= float(ratio.median()) <= 2.0
    labels = store["q_spam_label_count"].detach().double()
    vb_labels = vb.spam_label_count / vb.spam_label_count.sum(-1, keepdim=True)
    assert float((labels / labels.sum(-1, keepdim=True) - vb_labels).abs().max()) < 0.05
    assert float((store["q_item_probs"].detach().double() - vb.item_probs).abs().max()) < 0.03
    class_counts = store["q_class_count"].detach().double()
    assert float(((class_counts - vb.class_count) / vb.class_count).abs().max()) < 0.05


@pytest.mark.parametrize("model_class", [MACE, GLAD])
def test_post_fit_posteriors_match_pyro_enumeration(model_class: type) -> None:
    """The block-wise item posteriors (from ``_log_emission``) equal what Pyro's enumeration gives from the model
    itself at the same parameters, so the likelihood is specified once."""
    judgments = mace_data(seed=3, n_workers=12, n_items=60, per_item=4)[0]
    model = model_class(inference="map", max_steps=60).fit(judgments)
    point = {name: value[0] for name, value in model._draws.items()}
    if "beta" in point:
        point["beta"] = point["beta"][:, None]  # back to the item plate's shape

    def fixed(data, batch_size=None):  # noqa: ANN001, ANN202 - a guide: the fitted point as Delta sites
        if "class_prior" in point:
            pyro.sample("class_prior", dist.Delta(point["class_prior"]).to_event(1))
        with pyro.plate("annotator", data.n_workers, dim=-1):
            for name in ("spam", "spam_labels", "ability", "class_ability"):
                if name in point:
                    pyro.sample(name, dist.Delta(point[name]).to_event(point[name].dim() - 1))
        if "beta" in point:
            with pyro.plate("item", data.n_items, dim=-2):
                pyro.sample("beta", dist.Delta(point["beta"]))

    data = pad_judgments(model.encoded_)
    marginals = TraceEnum_ELBO(max_plate_nesting=2).compute_marginals(model._model, fixed, data)
    pyro_probs = marginals["true_class"].probs.reshape(data.n_items, -1).detach().numpy()
    assert np.allclose(pyro_probs, model.soft_labels_.probs.to_numpy(), atol=1e-4)


# -- GLAD ---------------------------------------------------------------------------------------------------------


def test_glad_recovers_ability_and_difficulty() -> None:
    judgments, ability, difficulty = glad_data(seed=4)
    model = GLAD(seed=0).fit(judgments)
    table = model.annotators_
    true_ability = ability[codes(table, "w")]
    estimated = pd.Series(table["ability"].to_numpy())
    assert estimated.corr(pd.Series(true_ability), method="spearman") >= 0.9
    assert ((table["ability_lower"] <= table["ability"]) & (table["ability"] <= table["ability_upper"])).all()
    adversarial = true_ability < 0
    if adversarial.any():
        assert (table["ability"].to_numpy()[adversarial] < 0.3).all()
    items = model.item_difficulty_
    true_difficulty = difficulty[codes(items, "i")]
    assert pd.Series(items["difficulty"].to_numpy()).corr(pd.Series(true_difficulty), method="spearman") >= 0.4
    hard = true_difficulty > np.quantile(true_difficulty, 0.8)
    assert auc(items["difficulty"].to_numpy(), hard) >= 0.75
    assert (items["difficulty_lower"] <= items["difficulty_upper"]).all()
    gold = gold_labels(judgments)
    assert metrics.accuracy(model.soft_labels_.probs, gold) >= 0.9


def test_glad_class_offsets_fit_annotators_who_say_no_when_unsure() -> None:
    """Annotators right far more often on class 0 than on class 1 (a crowd that answers 0 when unsure): GLAD with
    symmetric errors weighs them wrongly and falls below majority vote, the class offsets (two-coin abilities)
    recover the per-class abilities and beat it."""
    rng = np.random.default_rng(7)
    n_workers, n_items = 15, 120
    truth = rng.integers(0, 2, n_items)
    right_on = np.stack([rng.uniform(0.85, 0.98, n_workers), rng.uniform(0.35, 0.75, n_workers)], axis=1)
    items, workers = np.repeat(np.arange(n_items), n_workers), np.tile(np.arange(n_workers), n_items)
    right = rng.random(len(items)) < right_on[workers, truth[items]]
    judgments = _table(items, workers, np.where(right, truth[items], 1 - truth[items]), truth)
    gold = gold_labels(judgments)
    majority = float((judgments.groupby("pair_id")["label"].agg(lambda v: v.value_counts().idxmax()) == gold).mean())
    symmetric = GLAD(class_ability_scale=0.0, class_prior=None, max_steps=300, seed=0).fit(judgments)
    model = GLAD(max_steps=300, seed=0).fit(judgments)
    accuracy = metrics.accuracy(model.soft_labels_.probs, gold)
    assert accuracy >= majority and accuracy > metrics.accuracy(symmetric.soft_labels_.probs, gold)
    table = model.annotators_
    assert "ability_c1" not in symmetric.annotators_.columns
    assert (table["ability_c0"] > table["ability_c1"]).mean() >= 0.9


def test_glad_vote_start_guards_against_label_switching() -> None:
    """With a symmetric ability prior, (alpha, labels) and (-alpha, flipped labels) fit equally well: a random start
    lands on the flipped mode for some seeds (and the mirror guard moves it back, saying so); the vote-fraction
    start never does."""
    judgments, _, _ = glad_data(seed=5, n_workers=12, n_items=150, per_item=6, ability_mean=2.0)
    gold = gold_labels(judgments)
    settings = dict(inference="map", ability_prior=(0.0, 2.0), max_steps=300)
    naive, mirrored = [], []
    for s in (0, 1):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            naive.append(metrics.accuracy(GLAD(init="random", seed=s, **settings).fit(judgments).soft_labels_.probs,
                                          gold))
        mirrored.append(any("mirror" in str(w.message) for w in caught))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vote = [metrics.accuracy(GLAD(init="vote", seed=s, **settings).fit(judgments).soft_labels_.probs, gold)
                for s in (0, 1)]
    assert any(mirrored)  # the random start flipped every label, and the guard moved it back
    assert min(naive) > 0.85 and min(vote) > 0.85
    assert not any("mirror" in str(w.message) for w in caught)


# -- real gold sets -----------------------------------------------------------------------------------------------


def _real(name: str) -> pd.DataFrame:
    if name == "rte":
        folder = DATA / "snow2008"
        if not (folder / "rte.standardized.tsv").exists():
            pytest.skip(f"real data not found at {folder} (the shared datasets folder is absent)")
        try:
            from accord.datasets.loaders.snow import load_snow2008
        except ImportError:  # the loader is written in parallel; read the columns minimally
            raw = pd.read_csv(folder / "rte.standardized.tsv", sep="\t", dtype={"orig_id": str})
            table = raw.rename(columns={"orig_id": "pair_id", "!amt_worker_ids": "annotator", "response": "label"})
            return validate(table[["pair_id", "annotator", "label", "gold"]], form="categorical")
        return load_snow2008("rte", path=folder)
    folder = DATA / "vldb17"
    if not (folder / "d_Duck Identification" / "answer.csv").exists():
        pytest.skip(f"real data not found at {folder} (the shared datasets folder is absent)")
    try:
        from accord.datasets.loaders.vldb import load_vldb17
    except ImportError:
        answers = pd.read_csv(folder / "d_Duck Identification" / "answer.csv", dtype=str)
        truth = pd.read_csv(folder / "d_Duck Identification" / "truth.csv", dtype=str)
        table = answers.set_axis(["pair_id", "annotator", "label"], axis=1).merge(
            truth.set_axis(["pair_id", "gold"], axis=1), on="pair_id")
        return validate(table.astype({"label": int, "gold": int}), form="categorical")
    return load_vldb17("duck", path=folder)


@pytest.mark.parametrize("method", ["mace", "glad"])
@pytest.mark.parametrize("name", ["rte", "duck"])
def test_real_sets_match_crowdkit_accuracy_and_beat_its_nll(method: str, name: str) -> None:
    judgments = _real(name)
    model = (MACE if method == "mace" else GLAD)(seed=0).fit(judgments)
    scores = metrics.score(model.soft_labels_.probs, gold_labels(judgments))
    reference = CROWDKIT[(method, name)]
    assert scores["accuracy"] >= reference["accuracy"] - 0.005, scores
    assert scores["nll"] < reference["nll"], scores


# -- ArviZ, NUTS, held-out prediction -----------------------------------------------------------------------------


def test_to_arviz_and_loo_for_both_models() -> None:
    judgments, _, _ = mace_data(seed=6, n_workers=15, n_items=100, per_item=4)
    fits = {
        "mace": MACE(num_samples=100, seed=0).fit(judgments),
        "glad": GLAD(num_samples=100, max_steps=400, seed=0).fit(judgments),
    }
    datasets = {}
    for name, model in fits.items():
        idata = model.to_arviz()
        loglik = idata.log_likelihood["y"]
        assert loglik.dims == ("chain", "draw", "judgment")
        assert loglik.shape == (1, 100, len(judgments))
        assert np.isfinite(loglik.values).all() and (loglik.values <= 0).all()
        assert "annotator" in idata.posterior.dims and "theta_dim_0" not in idata.posterior.dims
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(idata)
        assert math.isfinite(float(loo.elpd_loo))
        datasets[name] = idata
    assert set(fits["mace"].to_arviz().posterior.data_vars) == {"spam", "spam_labels", "class_prior"}
    assert {"ability", "beta", "difficulty"} <= set(fits["glad"].to_arviz().posterior.data_vars)
    assert fits["glad"].to_arviz().posterior["beta"].dims == ("chain", "draw", "pair_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison = az.compare(datasets)
    assert list(comparison.index) and set(comparison.index) == {"mace", "glad"}


@pytest.mark.parametrize("model_class", [MACE, GLAD])
def test_nuts_on_small_data(model_class: type) -> None:
    judgments, _, _ = mace_data(seed=7, n_workers=5, n_items=20, per_item=3, k=2)
    # what this asserts (the chains' shape, the divergences kept, a finite R-hat, every label's spread) holds for any
    # chain of more than a few draws: 15 + 15 asserts it as 30 + 30 did, at half the leapfrog steps
    model = model_class(inference="nuts", num_samples=15, num_warmup=15, num_chains=2, seed=0).fit(judgments)
    idata = model.to_arviz()
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 15
    assert "diverging" in idata.sample_stats
    site = "spam" if model_class is MACE else "ability"
    assert np.isfinite(az.rhat(idata, var_names=[site])[site].values).all()
    assert model.soft_labels_.uncertainty.notna().all()


@pytest.mark.parametrize("model_class", [MACE, GLAD])
def test_heldout_loglik_scores_every_test_judgment(model_class: type) -> None:
    judgments, _, _ = mace_data(seed=8, n_workers=15, n_items=120, per_item=4, k=3)
    rng = np.random.default_rng(0)
    test_rows = rng.random(len(judgments)) < 0.2
    train, test = judgments[~test_rows], judgments[test_rows].copy()
    # an unseen annotator and an unseen item: both must still be scored
    extra = pd.DataFrame({"pair_id": ["new-item", "i0000"], "annotator": ["w000", "new-rater"],
                          "label": ["c0", "c1"], "gold": ["c0", judgments["gold"].iloc[0]]})
    test = validate(pd.concat([test, extra], ignore_index=True), form="categorical")
    model = model_class(inference="map", max_steps=200, seed=0)
    loglik = model._heldout_loglik(train, test)
    assert loglik.shape == (len(test),) and np.isfinite(loglik).all() and (loglik <= 0).all()
    assert loglik.mean() > math.log(1 / 3)  # better than guessing among three classes


# -- settings and failure modes -----------------------------------------------------------------------------------


def test_fit_error_when_the_fit_goes_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    judgments, _, _ = mace_data(seed=9, n_workers=6, n_items=20, per_item=3)

    def poisoned(ability, beta, true, n_classes):  # noqa: ANN001, ANN202
        return torch.full((*torch.broadcast_shapes(true.shape, (ability * beta).shape), n_classes), float("nan"))

    monkeypatch.setattr(glad_module, "glad_label_logits", poisoned)
    with pytest.raises(FitError):
        GLAD(inference="map", max_steps=20).fit(judgments)
    encoded = MACE(inference="vb").fit(judgments).encoded_
    start = vote_fractions(encoded, 0.5)
    start[0, 0] = np.nan
    with pytest.raises(FitError):
        mace_vb(encoded, start)


def test_settings_are_checked() -> None:
    judgments, _, _ = mace_data(seed=10, n_workers=5, n_items=10, per_item=3)
    with pytest.raises(AccordError):
        GLAD(inference="vb").fit(judgments)
    with pytest.raises(AccordError):
        MACE(class_prior="flat").fit(judgments)
    with pytest.raises(AccordError):
        MACE(init="random").fit(judgments)
    with pytest.raises(AccordError):
        GLAD(inference="lowrank", batch_size=4).fit(judgments)
    bad = judgments.copy()
    bad.attrs = {}  # not validated yet: fit validates it
    bad.loc[0, "label"] = np.nan
    with pytest.raises(AccordError, match="missing label"):
        MACE(inference="vb").fit(bad)


def test_minibatch_lowrank_and_settings_round_trip() -> None:
    judgments, _, is_spammer = mace_data(seed=11, n_workers=20, n_items=150, per_item=4)
    gold = gold_labels(judgments)
    glad = GLAD(batch_size=50, max_steps=200, seed=0).fit(judgments)
    assert metrics.accuracy(glad.soft_labels_.probs, gold) > 0.8
    mace = MACE(inference="lowrank", max_steps=200, seed=0).fit(judgments)
    assert auc(mace.annotators_["spam"].to_numpy(), is_spammer[codes(mace.annotators_, "w")]) >= 0.85
    clone = mace.clone()
    assert clone.get_params() == mace.get_params() and not hasattr(clone, "soft_labels_")


def test_docstring_examples_run() -> None:
    for module in (mace_module, glad_module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("model_class", [MACE, GLAD])
def test_unseen_annotator_predictive_is_deterministic_and_normalised(model_class: type) -> None:
    judgments, _, _ = mace_data(seed=12, n_workers=12, n_items=60, per_item=4, k=3)
    model = model_class(inference="map" if model_class is GLAD else "vb", max_steps=200, num_samples=50,
                        seed=0).fit(judgments)
    # an unseen annotator on a seen item, and on an unseen item: each label asked in its own call
    cases = [("i0001", "new-rater"), ("new-item", "new-rater"), ("new-item", "w000")]
    for item, annotator in cases:
        tables = [pd.DataFrame({"pair_id": [item], "annotator": [annotator], "label": [f"c{k}"]}) for k in range(3)]
        first = np.array([model.predictive_loglik(t)[0] for t in tables])
        second = np.array([model.predictive_loglik(t)[0] for t in tables])
        np.testing.assert_array_equal(first, second)
        assert np.exp(first).sum() == pytest.approx(1.0, abs=1e-6), (item, annotator)


def test_glad_mirror_mode_is_moved_back_and_unconverged_fits_warn() -> None:
    """An ability prior centred on adversarial raters pulls a binary fit into the mirror mode (every label
    switched); the guard moves it back, with a warning. A fit cut short by max_steps says so."""
    judgments, ability, _ = glad_data(seed=13, n_workers=20, n_items=150, per_item=6, k=2)
    gold = gold_labels(judgments)
    with pytest.warns(glad_module.ConvergenceWarning, match="mirror"):
        model = GLAD(inference="map", ability_prior=(-1.0, 0.5), init="uniform", max_steps=300,
                     seed=0).fit(judgments)
    assert metrics.accuracy(model.soft_labels_.probs, gold) >= 0.9
    assert (model.annotators_["ability"] > 0).mean() >= 0.8
    with pytest.warns(glad_module.ConvergenceWarning, match="max_steps"):
        GLAD(inference="meanfield", max_steps=5, seed=0).fit(judgments)


@pytest.mark.parametrize("model_class, settings, message", [
    (MACE, {"spam_prior": 2.0}, r"spam_prior must be the two shapes \(a, b\) of a Beta prior, not 2.0"),
    (MACE, {"spam_prior": (1.0, 2.0, 3.0)}, r"spam_prior must be the two shapes"),
    (GLAD, {"ability_prior": 1.0}, r"ability_prior must be \(a finite location, a finite scale > 0\), not 1.0"),
    (GLAD, {"log_beta_prior": ("0", "1")}, r"log_beta_prior must be \(a finite location"),
    (GLAD, {"ability_prior": (0.0, 1.0, 2.0)}, r"ability_prior must be \(a finite location"),
    (GLAD, {"ability_prior": (True, 1.0)}, r"^ability_prior must be \(a finite location, a finite scale > 0\), not "
                                           r"\(True, 1.0\)$"),
    (GLAD, {"log_beta_prior": (float("nan"), 1.0)}, r"^log_beta_prior must be \(a finite location"),
    (GLAD, {"log_beta_prior": (0.0, 0.0)}, r"^log_beta_prior must be \(a finite location"),
])
def test_a_prior_that_is_not_a_pair_of_numbers_is_one_clear_error(model_class, settings, message) -> None:
    """A bare number where a prior takes a pair ended in Python's raw TypeError (MACE: "object of type 'float' has
    no len()", GLAD: "cannot unpack non-iterable float object"), and GLAD compared strings with numbers; now one
    error naming the setting."""
    judgments, _, _ = mace_data(seed=10, n_workers=5, n_items=10, per_item=3)
    with pytest.raises(AccordError, match=message):
        model_class(max_steps=5, **settings).fit(judgments)


@pytest.mark.parametrize("model, setting, value", [
    (lambda **s: MACE(inference="vb", **s), "spam_prior", (2.0, 3.0)),
    (lambda **s: GLAD(inference="map", max_steps=10, seed=0, **s), "ability_prior", (1.0, 2.0)),
    (lambda **s: GLAD(inference="map", max_steps=10, seed=0, **s), "log_beta_prior", (0.5, 1.5)),
])
def test_a_prior_given_as_a_numpy_array_fits_as_its_tuple(model, setting, value):
    """A prior's numbers as a numpy array (computed, or read off another fit) were refused, where the list or tuple
    of the same numbers was taken: MACE said 'spam_prior must be the two shapes (a, b) of a Beta prior' and GLAD
    'must be (a finite location, a finite scale > 0)', both wrong about the value. The array now fits as its tuple;
    a bad number in it is named as in the tuple."""
    from accord.datasets import make_synthetic

    judgments = make_synthetic(n_pairs=30, n_annotators=6, judgments_per_pair=3, seed=0).judgments
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        given = model(**{setting: np.array(value)}).fit(judgments).soft_labels_.probs
        as_tuple = model(**{setting: value}).fit(judgments).soft_labels_.probs
    pd.testing.assert_frame_equal(given, as_tuple)
    with pytest.raises(AccordError, match=setting):
        model(**{setting: np.array([value[0], -1.0])}).fit(judgments)


@pytest.mark.parametrize("side", ["lower", "upper"])
def test_a_class_named_like_an_end_of_the_ability_interval_is_refused_before_the_fit(side) -> None:
    # annotators_ holds each class's ability as ability_<class>: a class 'lower' replaced ability_lower (the
    # interval's lower end then lay above the ability), silently
    rows = [{"pair_id": f"t{i}", "annotator": f"w{w}", "label": (side, "other")[(i + w) % 3 == 0]}
            for i in range(12) for w in range(3)]
    table = validate(pd.DataFrame(rows), form="categorical")
    with pytest.raises(AccordError, match=f"class '{side}' gives the annotator column 'ability_{side}'"):
        GLAD(inference="map", max_steps=5).fit(table)
    model = GLAD(inference="map", max_steps=5, class_ability_scale=0.0).fit(table)  # one ability: no class column
    assert (model.annotators_["ability_lower"] <= model.annotators_["ability"]).all()


def test_glad_nuts_chain_in_the_mirror_mode_is_moved_back_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """NUTS chains run apart, and a chain started away from the vote fractions (``init="uniform"``, a symmetric
    ability prior) can settle in the mirror mode while the other stays honest. The guard looked at the draws of all
    chains pooled, where the two modes cancel out: nothing was moved back, and the soft labels averaged both modes
    to about 0.5. Each chain is now checked on its own. Here chain 1's draws are replaced by their exact mirror."""
    from accord.models import pyro_fit

    judgments, _, _ = mace_data(seed=7, n_workers=5, n_items=20, per_item=3, k=2)
    real = pyro_fit.run_nuts

    def second_chain_mirrored(*args, **kwargs):
        draws, diverging = real(*args, **kwargs)
        draws = {name: value.clone() for name, value in draws.items()}
        draws["ability"][1] = -draws["ability"][1]
        draws["class_ability"][1] = -draws["class_ability"][1].flip(-1)
        draws["class_prior"][1] = draws["class_prior"][1].flip(-1)
        return draws, diverging

    settings = dict(inference="nuts", num_samples=6, num_warmup=10, num_chains=2, seed=0)
    honest = GLAD(**settings).fit(judgments)
    monkeypatch.setattr(pyro_fit, "run_nuts", second_chain_mirrored)
    with pytest.warns(glad_module.ConvergenceWarning, match="mirror"):
        mixed = GLAD(**settings).fit(judgments)
    pd.testing.assert_frame_equal(mixed.soft_labels_.probs, honest.soft_labels_.probs, atol=1e-5)
    posterior = mixed.to_arviz().posterior
    np.testing.assert_allclose(posterior["ability"].values, honest.to_arviz().posterior["ability"].values, atol=1e-6)


def test_nuts_without_a_start_begins_at_the_prior_median(monkeypatch: pytest.MonkeyPatch) -> None:
    """``warm_start=False`` or ``init="uniform"`` start SVI and NUTS at Pyro's prior median (as the settings say);
    NUTS began instead at Pyro's ``init_to_uniform``, a random point in (-2, 2) of each site's unconstrained space,
    a different one per chain (with GLAD's default ability prior, N(1, 1), a chain could begin among adversarial
    abilities). The start NUTS is given is checked on a site whose prior median is far from that box."""
    from pyro import poutine

    from accord.models import pyro_fit

    strategies = []

    class Recording(pyro_fit.NUTS):
        def __init__(self, *args, **kwargs):
            strategies.append(kwargs["init_strategy"])
            super().__init__(*args, **kwargs)

    def model() -> None:
        pyro.sample("x", dist.Normal(torch.tensor(8.0), 0.01))

    monkeypatch.setattr(pyro_fit, "NUTS", Recording)
    pyro_fit.run_nuts(model, num_samples=4, num_warmup=0, num_chains=2)
    site = poutine.trace(model).get_trace().nodes["x"]
    assert len(strategies) == 2
    for strategy in strategies:
        assert float(strategy(site)) == pytest.approx(8.0, abs=0.05)
