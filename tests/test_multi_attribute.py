"""Multi-attribute ratings: the synthetic generator, the ordinal-probit kernels, the rater model against the truth,
per-attribute averaging, and the cleaned multi-attribute dataset (including bad input, which writes nothing)."""

from __future__ import annotations

import math
import warnings

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from accord.aggregate import AttributeMean, build_attribute_pairs, clean_attributes
from accord.aggregate.cleaned_attributes import ATTRIBUTE_METHODS
from accord.datasets import (
    AccordError,
    ValidationError,
    load_multipref_aspects,
    make_synthetic,
    make_synthetic_attributes,
    read_attribute_cleaned,
    read_cleaned,
    validate_attributes,
    write_attribute_cleaned,
)
from accord.models import MultiAttributeOrdinal
from accord.models.ordinal_probit import log_ndtr, ordinal_probit_derivatives, ordinal_probit_loglik

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic_attributes(n_responses=240, n_raters=18, seed=3, with_text=True)


@pytest.fixture(scope="module")
def fitted(synthetic):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return MultiAttributeOrdinal().fit(synthetic.judgments)
    finally:
        torch.set_num_threads(threads)


class TestSyntheticAttributes:
    @settings(max_examples=20, deadline=None)
    @given(names=st.lists(st.sampled_from(["helpfulness", "verbosity", "correctness"]), min_size=1, max_size=3),
           as_mapping=st.booleans())
    def test_attributes_named_twice_or_as_one_text_are_one_clear_error(self, names, as_mapping) -> None:
        # a name given twice was one attribute, silently (2 and '2' in a mapping too); one text was read letter by
        # letter ("must be a subset ..., got ['h', 'e', ...]")
        given = [(name, {"n_facts": 1.0}) for name in names] + ([(2, {"tone": 1.0}), ("2", {"tone": 0.5})]
                                                                 if as_mapping else [])
        attributes = dict(given) if as_mapping else names
        if len(set(map(str, (name for name, _ in given)))) == len(given):
            made = make_synthetic_attributes(n_responses=6, n_raters=3, raters_per_response=2, attributes=attributes)
            assert made.attributes == tuple(map(str, attributes))
            return
        with pytest.raises(AccordError, match="is named twice"):
            make_synthetic_attributes(n_responses=6, n_raters=3, raters_per_response=2, attributes=attributes)
        with pytest.raises(AccordError, match=r"attributes must be a list of names, e.g. attributes=\['verbosity'\]"):
            make_synthetic_attributes(n_responses=6, n_raters=3, attributes="verbosity")

    def test_shapes_truth_and_rater_mix(self, synthetic) -> None:
        data = synthetic
        assert data.attributes == ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
        assert data.truth.shape == (240, 5) and data.latent.shape == (240, 5)
        assert ((data.truth >= 0) & (data.truth <= 4)).all().all()
        assert data.judgments.attrs["accord"]["scales"] == {a: [0, 4] for a in data.attributes}
        per_event = data.judgments.groupby(["response_id", "annotator"]).size()
        assert (per_event == 5).all()  # every rater rates every attribute of a response (no missing_rate)
        raters = data.judgments.groupby("response_id")["annotator"].nunique()
        assert raters.between(3, 5).all()
        biased = data.raters["type"].str.contains("biased")
        assert biased.sum() == round(18 / 3)
        assert (data.raters.loc[biased, "biased_on"] != "").all()
        assert (data.raters.loc[~biased, "biased_on"] == "").all()

    def test_reuses_the_base_generator_and_its_texts(self, synthetic) -> None:
        base = make_synthetic(n_pairs=120, n_annotators=1, judgments_per_pair=1, annotator_mix={"reliable": 1.0},
                              tie_rate=0.0, n_responses_per_prompt=2, activity_skew=0.0, seed=3)
        assert synthetic.responses["text"].equals(base.responses["text"])
        texts = synthetic.judgments.drop_duplicates("response_id").set_index("response_id")["response"]
        assert (texts == base.responses["text"].reindex(texts.index)).all()
        # helpfulness is the base generator's utility plus the response-specific residual (sd 0.4 by default)
        residual = synthetic.latent["helpfulness"] - base.responses["utility"]
        assert 0.3 < residual.std() < 0.5

    def test_truth_is_a_known_function_of_the_features(self) -> None:
        data = make_synthetic_attributes(n_responses=60, n_raters=8, residual_sd=0.0, with_text=False, seed=1)
        features = data.responses[["n_facts", "n_filler", "tone"]] - [2.0, 1.0, 0.0]
        expected = 0.5 * features["n_facts"] + 0.8 * features["n_filler"]
        assert np.allclose(data.latent["verbosity"], expected)

    def test_deterministic_and_missing_ratings(self) -> None:
        one = make_synthetic_attributes(n_responses=40, n_raters=10, missing_rate=0.5, with_text=False, seed=2)
        two = make_synthetic_attributes(n_responses=40, n_raters=10, missing_rate=0.5, with_text=False, seed=2)
        pd.testing.assert_frame_equal(one.judgments, two.judgments)
        assert len(one.judgments) < 40 * 5 * 3
        assert (one.judgments.groupby(["response_id", "annotator"]).size() >= 1).all()
        assert one.judgments.attrs["accord"]["attributes"] == list(one.attributes)  # the declared order

    @pytest.mark.parametrize("kwargs", [{"n_raters": 2, "raters_per_response": 3}, {"scale": (4, 0)},
                                        {"attributes": ["honesty"]}, {"noise": 0.0}, {"biased_share": 1.5}])
    def test_bad_settings(self, kwargs: dict) -> None:
        with pytest.raises(AccordError):
            make_synthetic_attributes(n_responses=10, **{"n_raters": 5, **kwargs})

    @pytest.mark.parametrize("kwargs", [{"noisy_factor": float("nan")}, {"noisy_factor": -1.0},
                                        {"bias_range": (1.2, 0.6)}, {"bias_range": (float("nan"), 1.0)}])
    def test_bad_noise_factor_or_bias_range_is_named(self, kwargs: dict) -> None:
        # a NaN noisy_factor gave NaN noise sds and every rating of a noisy rater the lowest grade, silently; a
        # reversed or NaN bias_range failed deep in numpy ("high - low < 0")
        with pytest.raises(AccordError, match=next(iter(kwargs))):
            make_synthetic_attributes(n_responses=10, n_raters=5, noisy_share=1.0, **kwargs)


class TestOrdinalProbitKernels:
    @staticmethod
    def naive_loglik(mu: torch.Tensor, s: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, which: str
                     ) -> torch.Tensor:
        """The textbook formula, differentiable twice by autograd, with Phi(z) = erfc(-z / sqrt 2) / 2 (torch's
        ``ndtr`` loses its relative accuracy in the lower tail); an interval above the location is reflected,
        P(l < Z < u) = Phi(-l) - Phi(-u), so that the difference is never of two numbers near 1."""
        noise = s.exp()
        z_low = (lower - mu) / noise if which != "bottom" else torch.full_like(mu, -math.inf)
        z_high = (upper - mu) / noise if which != "top" else torch.full_like(mu, math.inf)
        phi = lambda z: 0.5 * torch.special.erfc(-z / math.sqrt(2.0))  # noqa: E731
        if bool((z_low > 0).all()):
            return torch.log(phi(-z_low) - phi(-z_high))
        return torch.log(phi(z_high) - phi(z_low))

    @settings(max_examples=60, deadline=None)
    @given(location=st.floats(-3, 3), log_noise=st.floats(-0.7, 0.7), low=st.floats(-2.5, 2),
           width=st.floats(0.2, 3), which=st.sampled_from(["bottom", "middle", "top"]))
    def test_closed_forms_match_autograd_of_the_textbook_formula(self, location: float, log_noise: float,
                                                                 low: float, width: float, which: str) -> None:
        t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        has_lower, has_upper = torch.tensor([which != "bottom"]), torch.tensor([which != "top"])
        mu, s = t(location).requires_grad_(), t(log_noise).requires_grad_()
        lower, upper = t(low).requires_grad_(), t(low + width).requires_grad_()
        reference = self.naive_loglik(mu, s, lower, upper, which)
        g_mu, g_s = torch.autograd.grad(reference.sum(), (mu, s), create_graph=True)
        h_mu = -torch.autograd.grad(g_mu.sum(), mu, retain_graph=True)[0]
        h_s = -torch.autograd.grad(g_s.sum(), s, retain_graph=True)[0]
        g_bounds = torch.autograd.grad(reference.sum(), (lower, upper), allow_unused=True)
        closed = ordinal_probit_derivatives(mu.detach(), s.detach(), lower.detach(), upper.detach(), has_lower,
                                            has_upper)
        assert torch.allclose(closed["loglik"], reference.detach(), rtol=1e-8, atol=1e-10)
        assert torch.allclose(closed["grad_location"], g_mu, rtol=1e-6, atol=1e-9)
        assert torch.allclose(closed["grad_log_noise"], g_s, rtol=1e-6, atol=1e-9)
        assert torch.allclose(closed["info_location"], h_mu, rtol=1e-5, atol=1e-8)
        assert torch.allclose(closed["info_log_noise"], h_s, rtol=1e-5, atol=1e-8)
        assert float(closed["info_location"]) >= 0.0
        # the differentiable version's backward is the same closed form, bounds included
        parts = [v.detach().clone().requires_grad_() for v in (mu, s, lower, upper)]
        value = ordinal_probit_loglik(*parts, has_lower, has_upper)
        grads = torch.autograd.grad(value.sum(), parts)
        assert torch.allclose(grads[0], g_mu.detach()) and torch.allclose(grads[1], g_s.detach())
        for mine, theirs in zip(grads[2:], g_bounds):
            expected = torch.zeros_like(mine) if theirs is None else theirs
            assert torch.allclose(mine, expected, rtol=1e-6, atol=1e-9)

    def test_levels_sum_to_one_and_log_ndtr_is_accurate(self) -> None:
        cuts = torch.tensor([-1.0, 0.2, 1.5], dtype=torch.float64)
        location = torch.linspace(-8, 8, 33, dtype=torch.float64)
        total = torch.zeros_like(location)
        for level in range(4):
            lower = cuts[max(level - 1, 0)].expand_as(location)
            upper = cuts[min(level, 2)].expand_as(location)
            total += ordinal_probit_loglik(location, torch.full_like(location, 0.3), lower, upper,
                                           torch.tensor(level > 0), torch.tensor(level < 3)).exp()
        assert torch.allclose(total, torch.ones_like(total), atol=1e-12)
        x = torch.linspace(-30, 10, 401, dtype=torch.float64)
        assert torch.allclose(log_ndtr(x), torch.special.log_ndtr(x), rtol=1e-10, atol=1e-14)


class TestRaterModel:
    def test_recovers_the_synthetic_truth(self, synthetic, fitted) -> None:
        truth = synthetic.truth.reindex(fitted.scores_.mean.index)
        scores = fitted.scores_
        for attribute in synthetic.attributes:
            assert spearmanr(scores.mean[attribute], truth[attribute])[0] >= 0.9, attribute
        inside = (scores.lower <= truth) & (truth <= scores.upper)
        assert 0.8 <= inside.to_numpy().mean() <= 0.97
        averaged = AttributeMean().fit(synthetic.judgments).scores_.mean.reindex(truth.index)
        rmse_model = np.sqrt(((scores.mean - truth) ** 2).to_numpy().mean())
        rmse_mean = np.sqrt(((averaged - truth) ** 2).to_numpy().mean())
        assert rmse_model <= 0.9 * rmse_mean
        assert fitted.converged_

    def test_recovers_rater_leniency_and_attribute_correlation(self, synthetic, fitted) -> None:
        raters = synthetic.raters.loc[fitted.annotators_.index]
        for attribute in synthetic.attributes:
            r = np.corrcoef(fitted.annotators_[f"shift_{attribute}"], raters[f"leniency_{attribute}"])[0, 1]
            assert r > 0.8, attribute
        error = (fitted.attribute_correlation_ - synthetic.latent.corr()).abs().to_numpy().max()
        assert error < 0.15
        assert (fitted.population_["typical_noise"] == 1.0).all()
        assert fitted.annotators_["n_judgments"].sum() == len(synthetic.judgments)

    def test_comparisons_of_responses(self, synthetic, fitted) -> None:
        pairs = synthetic.pairs
        forward = fitted.compare(pairs["response_a_id"], pairs["response_b_id"])
        backward = fitted.compare(pairs["response_b_id"], pairs["response_a_id"])
        assert np.allclose(forward.to_numpy() + backward.to_numpy(), 1.0)
        agree = (forward["correctness"] > 0.5) == (pairs["gap_correctness"] > 0)
        assert agree.mean() > 0.85
        with pytest.raises(AccordError, match="no scores for item"):
            fitted.compare(["nope"], [pairs["response_a_id"].iloc[0]])

    def test_an_unrated_attribute_is_imputed_with_a_wider_interval(self, synthetic) -> None:
        table = synthetic.judgments
        lone = table["response_id"] == table["response_id"].iloc[0]
        keep = ~lone | (table["attribute"] == "helpfulness")
        model = MultiAttributeOrdinal(max_iter=30).fit(table[keep].reset_index(drop=True))
        scores = model.scores_
        first = table["response_id"].iloc[0]
        assert scores.n.loc[first, "helpfulness"] > 0 and scores.n.loc[first, "correctness"] == 0
        assert np.isfinite(scores.mean.loc[first]).all()
        assert scores.sd.loc[first, "correctness"] > scores.sd["correctness"].drop(first).max()

    def test_pair_items_give_p_a_better(self) -> None:
        table = load_multipref_aspects(FIXTURES / "hub" / "multipref.jsonl")
        model = MultiAttributeOrdinal(max_iter=30).fit(table)
        p = model.scores_.p_a_better()
        assert p.loc["c0a1", "overall"] > 0.5 > p.loc["c0a2", "overall"]
        assert ((p >= 0) & (p <= 1)).all().all()
        assert model.scores_.item_kind == "pair"

    @staticmethod
    def _ratings(n_items: int, n_attributes: int, latent_sd: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        """8 ratings a response on 0..4 from 20 raters of noise 1 (cut-points -1.5..1.5): a cumulative-probit
        reading of latent attributes of sd ``latent_sd`` (0: the ratings are noise, each level about as likely)."""
        rng = np.random.default_rng(seed)
        items = np.repeat(np.arange(n_items), 8)
        raters = np.concatenate([rng.choice(20, 8, replace=False) for _ in range(n_items)])
        latent = rng.normal(0.0, latent_sd, (n_items, n_attributes))
        frames = []
        for a in range(n_attributes):
            if latent_sd == 0:
                label = rng.integers(0, 5, len(items))
            else:
                reading = latent[items, a] + rng.normal(0.0, 1.0, len(items))
                label = np.searchsorted([-1.5, -0.5, 0.5, 1.5], reading)
            frames.append(pd.DataFrame({"response_id": [f"r{i}" for i in items],
                                        "annotator": [f"w{j}" for j in raters], "attribute": f"a{a}",
                                        "label": label, "scale_min": 0, "scale_max": 4}))
        return pd.concat(frames, ignore_index=True), latent

    @staticmethod
    def _fit_on_one_thread(table: pd.DataFrame) -> MultiAttributeOrdinal:
        # one thread: the figures below were measured so, and several threads sum in another order
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return MultiAttributeOrdinal().fit(table)
        finally:
            torch.set_num_threads(threads)

    @pytest.mark.parametrize("n_attributes", [1, 2])
    def test_pure_noise_ratings_give_no_signal(self, n_attributes: int) -> None:
        # uniform ratings: the likelihood of the responses' variance is largest at 0, but a prior of A + 2
        # pseudo-items at the identity kept it near (A / I^2)^(1/3) (0.08 here, 0.04 at 2,000 responses), so pairs
        # of noise got weight 0.4 and P(chosen) up to 0.98 in the cleaned pairs
        n_items = 300
        table, _ = self._ratings(n_items, n_attributes, 0.0, seed=n_attributes)
        model = self._fit_on_one_thread(table)
        assert model.converged_ and model.n_iter_ < 40
        # the ML estimate's own sd is about s sqrt(2 / I), with s ~ 0.2 the sampling variance of one response's
        # 8 ratings on the latent scale: 0.5 / sqrt(I) is 2.5 of those
        assert (np.diag(model.scores_.prior_cov) < 0.5 / math.sqrt(n_items)).all()
        ids = model.scores_.mean.index.to_numpy()
        a, b = ids[:-1:2], ids[1::2]
        p_chosen = np.maximum(model.scores_.compare(a, b), 1.0 - model.scores_.compare(a, b)).to_numpy()
        weight = model.scores_.reliability(a, b).to_numpy()
        assert np.median(p_chosen) < 0.6 and p_chosen.max() < 0.9
        assert weight.max() < 0.2

    def test_one_rating_an_item_keeps_the_prior_variance_and_converges(self) -> None:
        # single ratings tell only the cut-points over sqrt(1 + variance): under the prior flat above a floor the
        # variance drifted along that ridge to max_iter (UKPConvArg2: 100 rounds, variances 0.05-0.29)
        table, _ = self._ratings(300, 2, 1.0, seed=8)
        table = table.drop_duplicates(["response_id", "attribute"]).reset_index(drop=True)
        table = table.assign(label=(table["label"] >= 2).astype(int), scale_max=1)  # 0/1, as UKPConvArg2's reasons
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the warning that no item is rated twice
            model = MultiAttributeOrdinal().fit(table)
        assert model.converged_ and model.n_iter_ < 60
        assert (np.diag(model.scores_.prior_cov) > 0.3).all()

    def test_a_weak_and_a_strong_signal_are_still_recovered(self) -> None:
        # the fix for pure noise must not push a real spread between responses to 0
        for latent_sd, seed in ((0.5, 5), (1.0, 6)):
            table, latent = self._ratings(300, 2, latent_sd, seed=seed)
            model = self._fit_on_one_thread(table)
            variance = np.diag(model.scores_.prior_cov)
            assert ((0.6 * latent_sd ** 2 < variance) & (variance < 1.5 * latent_sd ** 2)).all(), variance
            truth = pd.DataFrame(latent, index=[f"r{i}" for i in range(300)], columns=["a0", "a1"])
            for name in truth.columns:
                rho = spearmanr(model.scores_.mean[name], truth[name].reindex(model.scores_.mean.index))[0]
                assert rho > (0.65 if latent_sd < 1 else 0.85), (latent_sd, name, rho)
            assert model.converged_

    @pytest.mark.parametrize("settings", [{"shift": False}, {"noise": False}, {"correlated": False}])
    def test_simpler_variants_and_determinism(self, settings: dict) -> None:
        data = make_synthetic_attributes(n_responses=60, n_raters=8, attributes=["helpfulness", "verbosity"],
                                         with_text=False, seed=4)
        first = MultiAttributeOrdinal(max_iter=25, **settings).fit(data.judgments)
        again = MultiAttributeOrdinal(max_iter=25, **settings).fit(data.judgments)
        pd.testing.assert_frame_equal(first.scores_.mean, again.scores_.mean)
        columns = set(first.annotators_.columns)
        assert ("shift_helpfulness" in columns) == settings.get("shift", True)
        if settings.get("noise", True):
            assert not np.allclose(first.annotators_["noise_verbosity"], 1.0)
        else:
            assert np.allclose(first.annotators_["noise_verbosity"], 1.0)
        off_diagonal = first.attribute_correlation_.loc["helpfulness", "verbosity"]
        assert (off_diagonal == 0.0) == (not settings.get("correlated", True))

    def test_settings_are_checked(self, synthetic) -> None:
        with pytest.raises(AccordError, match="interval"):
            MultiAttributeOrdinal(interval=1.5).fit(synthetic.judgments)
        with pytest.raises(AccordError, match="max_iter"):
            MultiAttributeOrdinal(max_iter=0).fit(synthetic.judgments)
        for tol in (float("nan"), -0.1):  # no change is below NaN: the fit ran to max_iter without a word
            with pytest.raises(AccordError, match="tol must be a finite number >= 0"):
                MultiAttributeOrdinal(tol=tol).fit(synthetic.judgments)
        with pytest.raises(AccordError, match="not fitted"):
            MultiAttributeOrdinal().compare(["a"], ["b"])


class TestAttributeMean:
    def test_means_and_pooled_standard_errors(self) -> None:
        table = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2", "r3"], "annotator": ["a", "b", "a", "b", "a"],
                              "attribute": "help", "label": [1, 3, 4, 4, 0]})
        scores = AttributeMean().fit(table.assign(scale_min=0, scale_max=4)).scores_
        assert scores.mean["help"].tolist() == [2.0, 4.0, 0.0]
        pooled = np.sqrt((2.0 + 0.0) / 2)  # within-item sums of squares over their degrees of freedom
        assert np.allclose(scores.sd["help"], [pooled / np.sqrt(2), pooled / np.sqrt(2), pooled])
        assert scores.n["help"].tolist() == [2, 2, 1]
        assert (scores.upper["help"] <= 4).all() and (scores.lower["help"] >= 0).all()

    @settings(max_examples=25, deadline=None)
    @given(offset=st.integers(-10 ** 12, 10 ** 12), seed=st.integers(0, 1000))
    def test_a_constant_added_to_every_rating_and_its_scale_moves_only_the_means(self, offset: int,
                                                                                 seed: int) -> None:
        # the sd came from the labels' sum of squares less n mean^2, which rounding loses far from 0: at an offset
        # of 1e7 the sd moved by 1e-3, from 1e8 on it was NaN
        rng = np.random.default_rng(seed)
        table = pd.DataFrame({"response_id": np.repeat([f"r{i}" for i in range(12)], 3),
                              "annotator": np.tile(["a", "b", "c"], 12), "attribute": "help",
                              "label": rng.integers(0, 5, 36), "scale_min": 0, "scale_max": 4})
        base = AttributeMean().fit(table).scores_
        moved = AttributeMean().fit(table.assign(label=table["label"] + offset, scale_min=offset,
                                                 scale_max=4 + offset)).scores_
        np.testing.assert_allclose(moved.sd.to_numpy(), base.sd.to_numpy(), rtol=1e-12, atol=1e-12)
        for name in ("mean", "lower", "upper"):
            np.testing.assert_allclose(getattr(moved, name).to_numpy(), getattr(base, name).to_numpy() + offset,
                                       rtol=1e-15, atol=1e-9)

    @settings(max_examples=25, deadline=None)
    @given(n_a=st.integers(0, 4), n_b=st.integers(0, 4), seed=st.integers(0, 1000))
    def test_comparisons_pair_lists_of_one_length_and_refuse_others(self, n_a: int, n_b: int, seed: int) -> None:
        # lists of other lengths were broadcast without a word (one id against none: an empty frame; two against
        # one: both compared with it), and a lone id failed in pandas ("Index(...) must be called with a collection")
        table = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r3", "r4"], "annotator": ["a", "b", "a", "a", "b"],
                              "attribute": "help", "label": [1, 3, 4, 0, 2], "scale_min": 0, "scale_max": 4})
        scores = AttributeMean().fit(table).scores_
        rng = np.random.default_rng(seed)
        a, b = (list(rng.choice(scores.item_ids, n)) for n in (n_a, n_b))
        for compare in (scores.compare, scores.reliability):
            if n_a == n_b:
                assert len(compare(a, b)) == n_a
            else:
                with pytest.raises(AccordError, match=f"must be as long, got {n_a} and {n_b} ids"):
                    compare(a, b)
        with pytest.raises(AccordError, match=r"a must be a list of item ids, e.g. a=\['r1'\]"):
            scores.compare("r1", "r2")

    @pytest.mark.parametrize("items", ["response", "pair"])
    def test_an_attribute_every_item_has_alike_gets_weight_0_not_nan(self, items: str, tmp_path: Path) -> None:
        # every item's mean the same and no spread within items: the reliability was 1 - 0 / 0 = NaN, and writing
        # the pairs failed on "column 'weight': must be a probability" (after the responses file was written)
        key = "response_id" if items == "response" else "pair_id"
        table = pd.DataFrame({key: ["r1", "r1", "r2", "r2"], "annotator": ["a", "b"] * 2, "attribute": "help",
                              "label": 0, "prompt_id": "p1"})
        if items == "response":
            table = table.assign(response=["w", "w", "x", "x"])
        else:
            table = table.assign(response_a=["w", "w", "x", "x"], response_b=["y", "y", "z", "z"])
        table = validate_attributes(table, scales=(-1, 1))
        scores = AttributeMean().fit(table).scores_
        assert scores.reliability()["help"].tolist() == [0.0, 0.0]
        result = clean_attributes(table, method="attribute-mean", pairs_path=tmp_path / "pairs.parquet")
        assert result.pairs["weight_help"].tolist() == [0.0] * len(result.pairs) and len(result.pairs) > 0

    @pytest.mark.parametrize("scale", [(0, 1), (0, 4), (0, 100), (-3, 3)])
    def test_items_unrated_on_an_attribute_only_one_item_has_are_as_uncertain_as_the_scale(self, scale) -> None:
        # with one item rated on "score" nothing shows the spread between items: the others got sd 1.0 whatever
        # the scale, an interval of +-1.6 points on a 0-100 scale
        low, high = scale
        table = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2", "r3", "r1"],
                              "annotator": ["a", "b", "a", "b", "a", "a"], "attribute": ["help"] * 5 + ["score"],
                              "label": [1, 3, 4, 4, 0, high], "scale_min": [0] * 5 + [low],
                              "scale_max": [4] * 5 + [high]})
        scores = AttributeMean().fit(table).scores_
        uniform = np.arange(low, high + 1).std()  # the sd of a rating drawn uniformly from the scale's levels
        assert scores.n["score"].tolist() == [1, 0, 0]
        np.testing.assert_allclose(scores.sd["score"].iloc[1:], uniform, rtol=1e-12)
        assert scores.reliability()["score"].iloc[1:].tolist() == [0.0, 0.0]  # the ratings say nothing of them
        assert (scores.lower["score"] >= low).all() and (scores.upper["score"] <= high).all()

    @pytest.mark.parametrize(("scale", "labels"), [((0, 4), [3, 3, 3, 3]), ((0, 100), [2, 2, 3, 3]),
                                                   ((0, 4), [1, 3, 4, 4])])
    def test_items_unrated_on_an_attribute_few_items_have_are_not_pinned_by_their_agreement(self, scale,
                                                                                             labels) -> None:
        # two rated items that agree (3,3 and 3,3 on 0-4) gave the unrated one sd 0 and an interval [3, 3] with n = 0;
        # two means 2 and 3 on 0-100 gave it sd 0.5: the spread of two means says little about a third item's
        low, high = scale
        table = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2", "r3"], "annotator": ["a", "b", "a", "b", "a"],
                              "attribute": ["score"] * 4 + ["help"], "label": labels + [2],
                              "scale_min": [low] * 4 + [0], "scale_max": [high] * 4 + [4]})
        scores = AttributeMean().fit(table).scores_
        means = np.array([np.mean(labels[:2]), np.mean(labels[2:])])
        uniform = np.arange(low, high + 1).std()
        # the documented rule: the scale's uniform variance counted as one more item's squared deviation
        honest = np.sqrt((((means - means.mean()) ** 2).sum() + uniform ** 2) / 2)
        assert scores.n["score"].tolist() == [2, 2, 0]
        assert scores.sd["score"]["r3"] == pytest.approx(honest, rel=1e-12)
        assert scores.sd["score"]["r3"] > means.std() and scores.upper["score"]["r3"] > scores.lower["score"]["r3"]
        assert scores.reliability()["score"]["r3"] == 0.0  # the ratings still say nothing of it
        # the rated items' outputs are the within-item ones, untouched by the rule
        within = np.array(labels, dtype=float).reshape(2, 2)
        pooled = np.sqrt(((within - within.mean(1, keepdims=True)) ** 2).sum() / 2)
        np.testing.assert_allclose(scores.sd["score"].iloc[:2], pooled / np.sqrt(2), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(scores.mean["score"].iloc[:2], means, rtol=1e-15)


class TestCleanedDataset:
    def test_round_trip_both_layouts(self, synthetic, tmp_path: Path) -> None:
        result = clean_attributes(synthetic.judgments, method="attribute-mean",
                                  responses_path=tmp_path / "responses.parquet", pairs_path=tmp_path / "pairs.jsonl",
                                  provenance={"source": "synthetic"})
        responses = read_attribute_cleaned(tmp_path / "responses.parquet")
        meta = responses.attrs["provenance"]
        assert meta["layout"] == "attribute-responses" and meta["source"] == "synthetic"
        assert meta["attributes"] == list(synthetic.attributes) and meta["method"] == "attribute-mean"
        for attribute in synthetic.attributes:
            for suffix in ("mean", "sd", "lower", "upper", "n"):
                assert f"{attribute}_{suffix}" in responses.columns
        assert len(responses) == 240 and responses["n"].sum() == len(synthetic.judgments)
        pairs = read_attribute_cleaned(tmp_path / "pairs.jsonl")
        assert pairs.attrs["provenance"]["chosen_by"] == "helpfulness"
        assert len(pairs) == 120 and (pairs["p_chosen_helpfulness"] >= 0.5).all()
        assert ((pairs["weight_verbosity"] >= 0) & (pairs["weight_verbosity"] <= 1)).all()
        single = read_cleaned(tmp_path / "pairs.jsonl")  # also a cleaned preference dataset
        assert np.allclose(single["p_chosen"], single["p_chosen_helpfulness"])
        assert result.pairs is not None and len(result.pairs) == 120

    def test_jsonl_round_trip_keeps_ids_as_text_and_floats_as_floats(self, tmp_path: Path) -> None:
        # JSON Lines read the ids "001" back as 1 and every all-integral float column (sd 0.0, p_tie 0.0) as int64
        table = pd.DataFrame({"response_id": ["001", "001", "002", "002", "003", "003"],
                              "annotator": ["a", "b"] * 3, "attribute": "help", "label": [1, 1, 3, 3, 2, 2],
                              "prompt": "p", "response": ["x", "x", "y", "y", "z", "z"]})
        result = clean_attributes(validate_attributes(table, scales=(0, 4)), method="attribute-mean",
                                  responses_path=tmp_path / "r.jsonl", pairs_path=tmp_path / "p.jsonl")
        for written, path in ((result.responses, "r.jsonl"), (result.pairs, "p.jsonl")):
            back = read_attribute_cleaned(tmp_path / path)
            pd.testing.assert_frame_equal(back, written, check_like=False)

    def test_responses_without_a_prompt_are_not_paired_with_each_other(self) -> None:
        # pandas' merge matched the missing prompt ids with each other: responses to no known prompt (here to two
        # different prompts whose ids were lost) were compared as if they answered one
        table = pd.DataFrame({"response_id": ["r1", "r2", "r3", "r4"], "annotator": "a", "attribute": "help",
                              "label": [1, 3, 2, 4], "prompt_id": ["p1", "p1", None, None],
                              "response": ["w", "x", "y", "z"]})
        result = clean_attributes(validate_attributes(table, scales=(0, 4)), method="attribute-mean")
        assert result.pairs is not None
        assert sorted(result.pairs[["chosen_id", "rejected_id"]].iloc[0]) == ["r1", "r2"] and len(result.pairs) == 1

    @settings(max_examples=30, deadline=None)
    @given(data=st.data())
    def test_bad_pairs_given_are_one_error_naming_their_row(self, data) -> None:
        # a side that is no scored response was "no scores for item 'x'" (no row, no column); a response compared
        # with itself became a pair whose chosen and rejected are one text, at P = 0.5, and a pair (or pair_id) given
        # twice was written twice, silently
        table = pd.DataFrame({"response_id": ["r1", "r2", "r3", "r4"], "annotator": "a", "attribute": "help",
                              "label": [1, 3, 2, 0], "prompt": "q", "response": ["w", "x", "y", "z"]})
        scores = AttributeMean().fit(validate_attributes(table, scales=(0, 4))).scores_
        known = st.sampled_from(["r1", "r2", "r3", "r4"])
        rows = data.draw(st.lists(st.tuples(known, known).filter(lambda p: p[0] != p[1]), min_size=1, max_size=6,
                                  unique_by=frozenset))
        pairs = pd.DataFrame(rows, columns=["response_a_id", "response_b_id"]).assign(
            pair_id=[f"pair {i}" for i in range(len(rows))])
        assert len(build_attribute_pairs(scores, table, pairs=pairs)) == len(pairs)
        row = data.draw(st.integers(0, len(pairs) - 1))
        column = data.draw(st.sampled_from(["response_a_id", "response_b_id"]))
        bad = data.draw(st.sampled_from(["r9", None, "self"] + (["repeat", "pair_id"] if row else [])))
        other = "response_b_id" if column == "response_a_id" else "response_a_id"
        broken = pairs.copy()
        if bad == "self":
            broken.loc[row, column] = broken.loc[row, other]
        elif bad == "repeat":  # an earlier pair again, in either order
            broken.loc[row, [column, other]] = broken.loc[0, ["response_a_id", "response_b_id"]].to_list()
        elif bad == "pair_id":
            broken.loc[row, "pair_id"] = "pair 0"
        else:
            broken.loc[row, column] = bad
        with pytest.raises(ValidationError, match="pairs: ") as caught:
            build_attribute_pairs(scores, table, pairs=broken)
        assert caught.value.row == row
        assert caught.value.column == {"self": "response_b_id", "repeat": "response_b_id",
                                       "pair_id": "pair_id"}.get(bad, column)

    def test_chosen_by_orients_every_attribute(self, synthetic, fitted) -> None:
        pairs = build_attribute_pairs(fitted.scores_, synthetic.judgments, chosen_by="verbosity")
        assert (pairs["p_chosen_verbosity"] >= 0.5).all()
        flipped = pairs["chosen_side"] == "B"
        assert flipped.any() and (~flipped).any()
        with pytest.raises(AccordError, match="chosen_by"):
            build_attribute_pairs(fitted.scores_, synthetic.judgments, chosen_by="honesty")

    def test_pair_items_write_properties_and_preferences(self, tmp_path: Path) -> None:
        from accord.datasets import load_ukpconvarg2

        result = clean_attributes(load_ukpconvarg2(FIXTURES / "ukp2"), method="attribute-mean",
                                  pairs_path=tmp_path / "ukp.parquet")
        pairs = read_attribute_cleaned(tmp_path / "ukp.parquet")
        meta = pairs.attrs["provenance"]
        assert meta["preference_attributes"] == ["convincing"]
        assert meta["property_attributes"] == ["o5", "o6", "o7", "o8", "o9"]
        assert (pairs["chosen"].str.len() > 0).all() and (pairs["p_chosen_convincing"] == 1.0).all()
        assert pairs.set_index("pair_id").loc["x1_x3", ["o5_mean", "o7_mean", "o8_mean"]].tolist() == [1, 1, 0]
        assert result.responses is None

    BAD = {
        "attribute missing from some rows": (lambda t: t.assign(attribute=t["attribute"].where(t.index != 7)),
                                             "column 'attribute', row 7: attribute missing"),
        "rating outside the declared scale": (lambda t: t.assign(label=t["label"].where(t.index != 3, 9)),
                                              "column 'label', row 3: rating outside the declared scale 0..4"),
        "two scales in one attribute": (lambda t: t.assign(scale_max=t["scale_max"].where(t.index != 11, 5)),
                                        "row 11: two scales in one attribute"),
    }

    @pytest.mark.parametrize("case", list(BAD))
    def test_bad_input_is_one_error_and_nothing_is_written(self, synthetic, tmp_path: Path, case: str) -> None:
        change, expected = self.BAD[case]
        table = change(pd.DataFrame(synthetic.judgments).copy())
        table.attrs = {}
        targets = [tmp_path / "responses.parquet", tmp_path / "pairs.jsonl"]
        with pytest.raises(ValidationError) as excinfo:
            clean_attributes(table, responses_path=targets[0], pairs_path=targets[1])
        assert expected in str(excinfo.value) and "\n" not in str(excinfo.value)
        assert list(tmp_path.iterdir()) == []

    def test_pairs_that_fail_their_check_leave_no_responses_file(self, tmp_path: Path) -> None:
        # the responses were written first and the pairs' check failed after: one file of the two was left behind
        table = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2"], "annotator": ["a", "b"] * 2,
                              "attribute": "help", "label": [1, 2, 3, 3], "prompt_id": "p1",
                              "response": ["w", "w", None, None]})
        responses, pairs = tmp_path / "responses.parquet", tmp_path / "pairs.parquet"
        with pytest.raises(ValidationError, match="missing response text"):
            clean_attributes(validate_attributes(table, scales=(0, 4)), method="attribute-mean",
                             responses_path=responses, pairs_path=pairs)
        assert not responses.exists() and not pairs.exists()

    def test_a_bad_frame_leaves_the_old_file(self, synthetic, tmp_path: Path) -> None:
        result = clean_attributes(synthetic.judgments, method="attribute-mean")
        target = tmp_path / "responses.parquet"
        write_attribute_cleaned(result.responses, target)
        before = target.read_bytes()
        broken = result.responses.copy()
        broken.attrs = result.responses.attrs
        broken.loc[5, "coherence_mean"] = 7.0
        with pytest.raises(ValidationError, match="column 'coherence_mean', row 5: must lie on the attribute's"):
            write_attribute_cleaned(broken, target)
        assert target.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["responses.parquet"]


def _rated_pairs() -> pd.DataFrame:
    """Three pairs rated by three raters on two preference attributes (-2..2), with their texts."""
    rows = [{"pair_id": f"p{p}", "annotator": f"w{w}", "attribute": attribute, "label": (1 + w % 2) * (1 if p else -1),
             "prompt": f"q{p}", "response_a": f"a{p}", "response_b": f"b{p}"}
            for p in range(3) for w in range(3) for attribute in ("overall", "helpful")]
    return pd.DataFrame(rows)


def _rated_responses() -> pd.DataFrame:
    """Four responses to two prompts rated by three raters on one attribute (0..4), with their texts."""
    rows = [{"response_id": f"r{r}", "annotator": f"w{w}", "attribute": "helpfulness", "label": (r + w) % 5,
             "prompt": f"q{r // 2}", "response": f"text {r}"} for r in range(4) for w in range(3)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("kind", "column", "item"), [("pairs", "response_a", "pair 'p0'"),
                                                      ("pairs", "prompt", "pair 'p0'"),
                                                      ("responses", "response", "response 'r0'"),
                                                      ("responses", "prompt", "response 'r0'")])
def test_an_item_rated_with_two_different_texts_is_refused_naming_them_and_nothing_is_written(kind, column, item,
                                                                                               tmp_path):
    """The pairwise cleaned dataset refused a pair shown with two texts; the multi-attribute ones took the item's
    first row's text without a word (the other rows' ratings were of another text)."""
    table = _rated_pairs() if kind == "pairs" else _rated_responses()
    row = 3 if kind == "pairs" else 1  # a later rating of the first item
    table.loc[row, column] = "another text"
    scales = (-2, 2) if kind == "pairs" else (0, 4)
    paths = {"pairs_path": tmp_path / "pairs.parquet"} if kind == "pairs" else {
        "responses_path": tmp_path / "responses.parquet", "pairs_path": tmp_path / "pairs.parquet"}
    with pytest.raises(AccordError, match=f"column '{column}': {item} .*'another text' in row {row}"):
        clean_attributes(validate_attributes(table, scales=scales), method="attribute-mean", **paths)
    assert list(tmp_path.iterdir()) == []


def test_multi_attribute_texts_that_are_numbers_are_written_as_text(tmp_path):
    # a response that is a number (JSON's 4) was an int64 column in Parquet and text in JSON Lines
    table = _rated_responses().assign(response=lambda t: t["response_id"].str[1:].astype(int) * 10)
    cleaned = clean_attributes(validate_attributes(table, scales=(0, 4)), method="attribute-mean",
                               responses_path=tmp_path / "responses.parquet", pairs_path=tmp_path / "pairs.parquet")
    assert read_attribute_cleaned(tmp_path / "responses.parquet")["response"].tolist() == ["0", "10", "20", "30"]
    pairs = read_cleaned(tmp_path / "pairs.parquet")
    assert sorted(pairs["chosen"].tolist() + pairs["rejected"].tolist()) == ["0", "10", "20", "30"]
    assert all(isinstance(v, str) for v in cleaned.pairs["chosen"])


def test_a_pairs_path_under_a_file_is_refused_before_the_fit_and_no_responses_are_written(tmp_path):
    # the responses were written, then writing the pairs failed: one of the two files left behind
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError, match="notes.txt is a file, not a folder"):
        clean_attributes(validate_attributes(_rated_responses(), scales=(0, 4)), method="attribute-mean",
                         responses_path=tmp_path / "responses.parquet", pairs_path=tmp_path / "notes.txt" / "p.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@settings(max_examples=25, deadline=None)
@given(labels=st.lists(st.integers(0, 4), min_size=6, max_size=6), order=st.randoms(use_true_random=False))
def test_pairs_of_rated_responses_do_not_depend_on_the_row_order(labels, order) -> None:
    # the pairs within a prompt put on side A the response rated first in the table: the same ratings shuffled gave
    # a pair another pair_id ('r2~r1' for 'r1~r2'), and two responses rated alike (P = 1/2) another chosen side
    table = pd.DataFrame({"response_id": ["r1", "r2", "r3", "r1", "r2", "r3"], "annotator": ["a"] * 3 + ["b"] * 3,
                          "attribute": "help", "label": labels, "prompt": "q",
                          "response": ["x", "y", "z", "x", "y", "z"]})
    rows = list(range(len(table)))
    order.shuffle(rows)
    built = []
    for judgments in (table, table.iloc[rows].reset_index(drop=True)):
        checked = validate_attributes(judgments, scales=(0, 4))
        pairs = build_attribute_pairs(AttributeMean().fit(checked).scores_, checked)
        built.append(pairs.sort_values("pair_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(built[0], built[1])
    assert set(built[0]["pair_id"]) == {"r1~r2", "r1~r3", "r2~r3"}
    # p_chosen follows the orientation: the chosen side is never the worse one
    assert (built[0]["p_chosen_help"] >= 0.5).all()


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_a_cleaned_multi_attribute_file_read_filtered_and_written_again_keeps_its_layout(tmp_path, suffix):
    """write_attribute_cleaned took the layout only from what the builders set: a file read back (its layout in
    attrs["provenance"]), filtered and written again was refused ('unknown or missing layout None')."""
    paths = {"responses_path": tmp_path / f"responses.{suffix}", "pairs_path": tmp_path / f"pairs.{suffix}"}
    clean_attributes(validate_attributes(_rated_responses(), scales=(0, 4)), method="attribute-mean", **paths)
    for path in paths.values():
        frame = read_attribute_cleaned(path)
        again = read_attribute_cleaned(write_attribute_cleaned(frame.iloc[:1], tmp_path / f"again.{suffix}"))
        assert again.attrs["provenance"]["layout"] == frame.attrs["provenance"]["layout"]
        assert again.attrs["provenance"]["attributes"] == ["helpfulness"] and len(again) == 1


def _rated(attributes: list[str], items: str, scales: list[tuple[int, int]]) -> pd.DataFrame:
    """Two raters rating two items (responses to one prompt, or pairs) on each attribute, validated."""
    rows = []
    for attribute, (low, high) in zip(attributes, scales):
        for k, (item, rater) in enumerate([("i1", "a"), ("i1", "b"), ("i2", "a"), ("i2", "b")]):
            rows.append({"item": item, "annotator": rater, "attribute": attribute, "label": (low, high)[k % 2],
                         "scale_min": low, "scale_max": high})
    table = pd.DataFrame(rows).assign(prompt_id="p1")
    if items == "response":
        table = table.rename(columns={"item": "response_id"}).assign(response=lambda t: "text " + t["response_id"])
    else:
        table = table.rename(columns={"item": "pair_id"}).assign(response_a=lambda t: "a " + t["pair_id"],
                                                                 response_b=lambda t: "b " + t["pair_id"])
    return validate_attributes(table)


@settings(max_examples=10, deadline=None)
@given(others=st.lists(st.sampled_from(["helpfulness", "tone", "n"]), unique=True, max_size=2),
       items=st.sampled_from(["response", "pair"]), method=st.sampled_from(ATTRIBUTE_METHODS))
def test_an_attribute_named_judgments_is_refused_before_the_fit_not_overwritten_by_the_total(others, items,
                                                                                            method) -> None:
    # the per-attribute n_<a> of an attribute 'judgments' is n_judgments: in annotators_ the total replaced it, and in
    # the pairs the chosen_by attribute's count replaced it, silently (one column left, holding the other number)
    attributes = ["judgments", *others]
    table = _rated(attributes, items, [(-2, 2)] * len(attributes))
    expected = "attribute 'judgments'.* both give the column 'n_judgments' of {}: rename the attribute"
    with pytest.raises(AccordError, match=expected.format("annotators_")):
        MultiAttributeOrdinal(max_iter=1).fit(table)
    with pytest.raises(AccordError, match=expected.format("the pairs")):
        clean_attributes(table, method=method, **({"max_iter": 1} if method == "multi-attribute-ordinal" else {}))
    scores = AttributeMean().fit(table).scores_
    with pytest.raises(AccordError, match=expected.format("the pairs")):
        build_attribute_pairs(scores, table)
    # renamed, nothing is refused and the total stays the total
    renamed = _rated(["judged", *others], items, [(-2, 2)] * len(attributes))
    result = clean_attributes(renamed, method="attribute-mean")
    assert result.pairs is not None and "n_judged" in result.pairs.columns
    # a table filtered to the other attributes no longer rates 'judgments': nothing to refuse
    if others:
        kept = table[table["attribute"] != "judgments"]
        assert "n_judgments" in clean_attributes(kept, method="attribute-mean").pairs.columns


def test_a_preference_and_a_property_attribute_giving_one_pairs_column_are_refused() -> None:
    # the preference 'mean' gives weight_mean, the property 'weight' its weight_mean too: one replaced the other
    table = _rated(["mean", "weight"], "pair", [(-2, 2), (0, 4)])
    with pytest.raises(AccordError, match="attribute 'mean' and attribute 'weight' both give the column "
                                          "'weight_mean' of the pairs"):
        clean_attributes(table, method="attribute-mean")


@settings(max_examples=15, deadline=None)
@given(change=st.sampled_from(["attribute", "label", "fraction"]), row=st.integers(0, 7),
       model=st.sampled_from([AttributeMean, MultiAttributeOrdinal]))
def test_a_table_changed_since_it_was_validated_is_refused_naming_the_cell(change, row, model) -> None:
    # pandas carries the validated attrs through assign: an attribute renamed (or a rating moved off its scale)
    # afterwards failed in the fit on numpy's "'list' argument must have no negative elements"
    table = _rated(["helpfulness", "tone"], "response", [(0, 4), (0, 4)])
    value = {"attribute": "renamed", "label": 9, "fraction": 2.5}[change]
    column = "attribute" if change == "attribute" else "label"
    if change == "fraction":
        table = table.assign(label=table["label"].astype(float))
    changed = table.assign(**{column: table[column].where(table.index != row, value)})
    with pytest.raises(ValidationError, match=f"column '{column}', row {row}: .*the table changed since it was "
                                              "validated: validate it again"):
        model().fit(changed)


@pytest.mark.parametrize(("kind", "column", "paths"), [("responses", "response", ("responses_path",)),
                                                      ("responses", "response", ("responses_path", "pairs_path")),
                                                      ("pairs", "response_b", ("pairs_path",))])
def test_an_item_none_of_whose_ratings_holds_its_text_is_refused_naming_the_input_row(kind, column, paths, tmp_path):
    """The responses file was written with a missing response text (which accord train then read as an empty
    response), and the pairs failed after the fit on "column 'chosen', row 1", a column and row of the output; an item
    whose text only some ratings hold keeps it (as the pairwise cleaned dataset does)."""
    table = _rated_pairs() if kind == "pairs" else _rated_responses()
    first = table.index[table.iloc[:, 0] == table.iloc[3, 0]]  # every rating of the item rated in row 3
    partial = table.copy()
    partial.loc[first[1:], column] = None  # a rating without the text beside one with it: kept
    scales = (-2, 2) if kind == "pairs" else (0, 4)
    kept = clean_attributes(validate_attributes(partial, scales=scales), method="attribute-mean")
    assert kept.pairs["chosen"].notna().all() and kept.pairs["rejected"].notna().all()
    table.loc[first, column] = None
    with pytest.raises(ValidationError, match=f"column '{column}', row {first[0]}: missing response text"):
        clean_attributes(validate_attributes(table, scales=scales), method="attribute-mean",
                         **{name: tmp_path / f"{name}.parquet" for name in paths})
    assert list(tmp_path.iterdir()) == []


def test_ratings_never_repeated_on_an_item_warn_that_the_labels_are_shrunk_and_name_attribute_mean() -> None:
    """Gold labels (one rating an item and attribute, as UKPConvArg2's) cannot tell a rater's noise: the ordinal
    model reads each as one typical rater's and shrinks it toward the attribute's mean, which the user must be told;
    a table with an item rated twice fits quietly."""
    rated = _rated_responses().assign(scale_min=0, scale_max=4)
    once = rated.drop_duplicates("response_id")
    with pytest.warns(UserWarning, match="no item is rated twice.*attribute-mean"):
        MultiAttributeOrdinal().fit(once)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*rated twice.*")
        MultiAttributeOrdinal().fit(rated)


def test_an_attribute_whose_items_are_never_rated_twice_is_named_in_the_warning_beside_others_rated_twice() -> None:
    """The warning that gold labels are shrunk toward their attribute's mean came only when no item was rated twice on
    any attribute: gold labels of one attribute (one rating an item, as UKPConvArg2's reasons) beside crowd ratings of
    another were shrunk as much (a gold 0 or 4 read as about 1 or 3) without a word. Now the warning names each
    attribute whose items are never rated twice; attributes rated twice on some item fit quietly."""
    rated = _rated_responses()
    gold = rated.drop_duplicates("response_id").assign(attribute="gold verdict", annotator="gold",
                                                       label=[0, 4, 0, 4])
    table = pd.concat([rated, gold], ignore_index=True).assign(scale_min=0, scale_max=4)
    shrunk = "no item is rated twice on the attribute 'gold verdict'.*attribute-mean"
    with pytest.warns(UserWarning, match=shrunk) as caught:
        MultiAttributeOrdinal().fit(table)
    assert "'helpfulness'" not in str(caught[0].message)


#: attribute names as users write them: spaces, accents, other scripts, digits (no name of a reserved column)
ATTRIBUTE_NAMES = st.text(st.sampled_from("ab Zé语ß9_-"), min_size=1, max_size=6).filter(
    lambda name: name.strip() != "" and name != "judgments")


@settings(max_examples=25, deadline=None)
@given(attributes=st.lists(ATTRIBUTE_NAMES, min_size=1, max_size=3, unique=True),
       labels=st.lists(st.integers(0, 4), min_size=24, max_size=24), ids=st.sampled_from(["int", "text"]),
       suffix=st.sampled_from(["parquet", "jsonl"]))
def test_a_cleaned_attribute_dataset_reads_back_as_the_table_written(attributes, labels, ids, suffix,
                                                                    tmp_path_factory) -> None:
    """Both layouts read back as written, in Parquet and JSON Lines alike (floats to the 15 decimals JSON Lines
    keeps), whatever the attribute names; and the pairs' chosen_id/rejected_id name responses of the responses file.
    JSON Lines read integer response ids back as text ('0' for 0) while the pairs' chosen_id kept them as numbers, so
    the two files of one run no longer joined (Parquet kept both numbers)."""
    folder = tmp_path_factory.mktemp("round_trip")
    rows = [{"response_id": r if ids == "int" else f"r{r}", "annotator": f"w{w}", "attribute": attribute,
             "label": labels[(4 * r + 2 * w + k) % 24], "prompt": f"q{r // 2}", "response": f"text {r}"}
            for r in range(4) for w in range(2) for k, attribute in enumerate(attributes)]
    paths = {"responses_path": folder / f"responses.{suffix}", "pairs_path": folder / f"pairs.{suffix}"}
    result = clean_attributes(validate_attributes(pd.DataFrame(rows), scales=(0, 4)), method="attribute-mean",
                              **paths)
    for written, path in ((result.responses, paths["responses_path"]), (result.pairs, paths["pairs_path"])):
        back = read_attribute_cleaned(path)
        pd.testing.assert_frame_equal(back, written, check_exact=False, rtol=1e-14, atol=1e-15)
        assert back.attrs["provenance"]["attributes"] == attributes
    responses, pairs = read_attribute_cleaned(paths["responses_path"]), read_attribute_cleaned(paths["pairs_path"])
    assert set(pairs["chosen_id"]) | set(pairs["rejected_id"]) <= set(responses["response_id"])


@pytest.mark.parametrize("method", ATTRIBUTE_METHODS)
@pytest.mark.parametrize("items", ["response", "pair"])
def test_an_attribute_rated_on_one_level_only_is_named_in_a_warning_when_its_pairs_are_built(method, items) -> None:
    """Every rating of 'harmless' the same (4 of 0..4 on responses, a tie on pairs): its ratings tell no item from
    another, so every pair came out a tie on it (p_chosen_harmless 1/2, weight about 0) without a word; accord train
    then refused the attribute-mean dataset ('every training pair rated on 'harmless' has weight 0 ... give it weights
    > 0') and trained the rater model's on ties. Now clean_attributes warns, naming the attribute and the level; an
    attribute rated on two levels does not warn."""
    rated = _rated(["helpfulness", "harmless"], items, [(0, 4), (0, 4) if items == "response" else (-2, 2)])
    one = {"response": 4, "pair": 0}[items]
    rated.loc[rated["attribute"] == "harmless", "label"] = one
    table = validate_attributes(rated.drop(columns=["scale_min", "scale_max"]),
                                scales={"helpfulness": (0, 4), "harmless": (0, 4) if items == "response" else (-2, 2)})
    if items == "pair":  # a preference to orient the pairs by, rated on two levels
        extra = table[table["attribute"] == "harmless"].assign(attribute="overall", label=[-1, 1, -2, 2])
        table = validate_attributes(pd.concat([table, extra], ignore_index=True),
                                    scales={"overall": (-2, 2), "helpfulness": (0, 4), "harmless": (-2, 2)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = clean_attributes(table, method=method)
    said = [str(w.message) for w in caught if "one level" in str(w.message)]
    assert len(said) == 1 and f"'harmless': every rating is {one}" in said[0], [str(w.message) for w in caught]
    assert "helpfulness" not in said[0]
    np.testing.assert_allclose(result.pairs["p_chosen_harmless"], 0.5, atol=1e-3)
