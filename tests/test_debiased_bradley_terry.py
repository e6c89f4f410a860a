"""Debiased crowd Bradley-Terry: per-rater pulls towards pair covariates, recovered on synthetic data with known
bias strengths, reported as not identified when the covariate is quality, and one clear error for bad covariates."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from accord.cli import main
from accord.datasets import AccordError, make_synthetic
from accord.metrics import calibration_error
from accord.models.debiased_bradley_terry import DebiasedBradleyTerry, covariate_values

MIX = {"reliable": 0.6, "spammer": 0.15, "length_biased": 0.25}
CLI_STEPS = 40  # SVI steps of each stage of a command-line fit in these tests (see short_cli_fits)


def _pair_frame(data):
    first = data.judgments.drop_duplicates("pair_id").set_index("pair_id").reindex(data.true_p_a.index)
    resp = data.responses
    return pd.DataFrame({
        "d_length": resp["length"].reindex(first["response_a_id"]).to_numpy()
        - resp["length"].reindex(first["response_b_id"]).to_numpy(),
        "d_utility": resp["utility"].reindex(first["response_a_id"]).to_numpy()
        - resp["utility"].reindex(first["response_b_id"]).to_numpy(),
    }, index=data.true_p_a.index)


@pytest.fixture
def short_cli_fits(monkeypatch):
    """The command line's debiased fits with few SVI steps. It has no step flag, and what these tests check is what it
    prints and refuses, not how well it fits: the method's default settings (which the command line's flags
    override) get a small max_steps."""
    from accord.aggregate import methods

    module, cls, defaults = methods.METHODS["debiased-bradley-terry"]
    monkeypatch.setitem(methods.METHODS, "debiased-bradley-terry", (module, cls, {**defaults, "max_steps": CLI_STEPS}))


@pytest.fixture(scope="module")
def biased_fit():
    data = make_synthetic(n_pairs=2400, n_annotators=40, judgments_per_pair=5, annotator_mix=MIX, tie_rate=0.0,
                          activity_skew=0.3, seed=3)
    return data, DebiasedBradleyTerry(max_steps=600).fit(data.judgments)


def test_length_biased_raters_are_found_and_ranked(biased_fit):
    data, model = biased_fit
    table = model.annotators_.join(data.annotators[["length_bias"]])
    biased = table["length_bias"] > 0
    # a biased rater's pull is almost always above an unbiased one's (AUC), and their strengths come out in order
    above = table.loc[biased, "length_effect"].to_numpy()[:, None] > table.loc[~biased, "length_effect"].to_numpy()
    assert above.mean() >= 0.9
    assert spearmanr(table.loc[biased, "length_effect"], table.loc[biased, "length_bias"]).statistic > 0.6
    covers = (table["length_effect_lower"] <= 0) & (table["length_effect_upper"] >= 0)
    assert covers[~biased].mean() >= 0.85 and covers[biased].mean() <= 0.2
    assert model.identified_ == {"length": True}
    assert {"length_effect_mean", "length_effect_scale"} <= set(model.population_.index)


def test_which_raters_have_a_pull_and_the_sparse_estimate(biased_fit):
    data, model = biased_fit
    table = model.annotators_.join(data.annotators[["length_bias"]])
    biased = table["length_bias"] > 0
    flagged = table["p_length_effect_nonzero"] >= 0.5
    # the flag finds the biased raters and few others; the fitted share without a pull is near the true 75%
    assert flagged[biased].mean() >= 0.8 and flagged[~biased].mean() <= 0.15
    assert 0.6 <= model.population_.loc["length_effect_null_share", "mean"] <= 0.95
    # the sparse estimate is exactly zero where no pull is the likelier, keeps the sign elsewhere, and its ranks
    # agree with the truth better than the Cauchy posterior mean's can (their ties at zero are the truth's)
    median = table["length_effect_median"]
    assert (median[~flagged] == 0).all() and (median[flagged] != 0).all()
    assert (np.sign(median[flagged]) == np.sign(table.loc[flagged, "length_effect"])).all()
    truth = table["length_bias"]
    assert spearmanr(median, truth).statistic > spearmanr(table["length_effect"], truth).statistic
    assert ((table["length_effect_lfsr"] >= 0) & (table["length_effect_lfsr"] <= 1)).all()


def test_debiased_labels_are_calibrated_and_lose_the_pull(biased_fit):
    data, model = biased_fit
    pairs = _pair_frame(data)
    p = model.soft_labels_.probs["A"].reindex(pairs.index).to_numpy()
    true = data.true_p_a.reindex(pairs.index).to_numpy()
    assert calibration_error(p, true) <= 0.04
    # given the true utility gap, the labels' log-odds do not grow with the length difference (a vote share's do)
    votes = (data.judgments.assign(a=data.judgments["label"] == "A").groupby("pair_id")["a"].mean()
             .reindex(pairs.index).to_numpy())
    design = np.column_stack([pairs["d_utility"], pairs["d_length"], np.ones(len(pairs))])

    def length_slope(q: np.ndarray) -> float:
        q = np.clip(q, 0.05, 0.95)
        coef = np.linalg.lstsq(design, np.log(q / (1 - q)), rcond=None)[0]
        return float(coef[1] / coef[0])  # the pull of one sentence, in units of utility

    assert abs(length_slope(p)) < 0.1 < length_slope(votes)


def test_no_biased_raters_means_no_pull():
    data = make_synthetic(n_pairs=1500, n_annotators=30, judgments_per_pair=5,
                          annotator_mix={"reliable": 0.8, "spammer": 0.2}, tie_rate=0.1, activity_skew=0.3, seed=8)
    table = DebiasedBradleyTerry(max_steps=500).fit(data.judgments).annotators_
    covers = (table["length_effect_lower"] <= 0) & (table["length_effect_upper"] >= 0)
    assert covers.mean() >= 0.85
    assert (table["p_length_effect_nonzero"] < 0.5).mean() >= 0.9  # hardly anyone is flagged


def test_a_covariate_that_is_the_quality_is_reported_as_not_identified():
    data = make_synthetic(n_pairs=600, n_annotators=20, judgments_per_pair=5, annotator_mix={"reliable": 1.0},
                          tie_rate=0.0, activity_skew=0.0, with_text=False, seed=4)
    gap = _pair_frame(data)["d_utility"]
    judgments = data.judgments.assign(item_quality=gap.reindex(data.judgments["pair_id"]).to_numpy())
    with pytest.warns(UserWarning, match="not identified"):
        model = DebiasedBradleyTerry(covariates=("item_quality",), max_steps=300).fit(judgments)
    assert model.identified_ == {"item_quality": False}


def test_arviz_export_and_held_out_likelihood_carry_the_pulls():
    data = make_synthetic(n_pairs=120, n_annotators=10, judgments_per_pair=3, annotator_mix=MIX, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DebiasedBradleyTerry(max_steps=30, num_samples=20).fit(data.judgments)
    idata = model.to_arviz()
    assert "length_effect" in idata.posterior and idata.posterior["length_effect"].dims[-1] == "annotator"
    assert idata.log_likelihood["y"].shape[-1] == len(data.judgments)
    held_out = model.predictive_loglik(data.judgments.iloc[:20])
    assert np.isfinite(held_out).all() and (held_out < 0).all()
    assert {"length_effect_mean", "length_effect_scale", "length_effect_shared"} <= set(model.population_.index)


@pytest.mark.parametrize("covariates, judgments_change, message", [
    (("item_missing",), {}, "no such column"),
    (("item_constant",), {"item_constant": 1.0}, "constant"),
    (("item_text",), {"item_text": "x"}, "not numeric"),
    (("item_gap",), {"item_gap": np.nan}, "no finite value"),
    (("loudness",), {}, "use 'length' or an item_"),
])
def test_bad_covariates_are_one_clear_error(covariates, judgments_change, message):
    data = make_synthetic(n_pairs=40, n_annotators=8, judgments_per_pair=3, with_text=False, seed=1)
    with pytest.raises(AccordError, match=message):
        DebiasedBradleyTerry(covariates=covariates, max_steps=5).fit(data.judgments.assign(**judgments_change))
    with pytest.raises(AccordError, match="response texts"):
        covariate_values(data.judgments, "length")
    with pytest.raises(AccordError, match="sequence of names"):
        DebiasedBradleyTerry(covariates="length")


def test_command_line_debias_and_its_bad_input(tmp_path, capsys, short_cli_fits):
    data = make_synthetic(n_pairs=200, n_annotators=12, judgments_per_pair=3, annotator_mix=MIX, seed=2)
    source = tmp_path / "judgments.parquet"
    data.judgments.to_parquet(source)
    out = tmp_path / "labels.parquet"
    code = main(["aggregate", "--input", str(source), "--debias", "length", "--inference", "map", "--output", str(out),
                 "--quiet"])
    assert code == 0 and out.exists()
    printed = capsys.readouterr().out
    assert "debiased length:" in printed and "more likely pulled than not" in printed
    for extra, message in ((["--debias", "item_nope"], "no such column"),
                           (["--debias", "length", "--method", "dawid-skene"], "needs --method")):
        bad = tmp_path / "bad.parquet"
        assert main(["aggregate", "--input", str(source), *extra, "--output", str(bad), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and not bad.exists()
    constant = tmp_path / "constant.parquet"
    data.judgments.assign(item_same=2.0).to_parquet(constant)
    bad = tmp_path / "bad.parquet"
    assert main(["aggregate", "--input", str(constant), "--debias", "item_same", "--output", str(bad), "--quiet"]) == 2
    assert "constant" in capsys.readouterr().err and not bad.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the table still reads as before without --debias
        assert main(["aggregate", "--input", str(source), "--output", str(tmp_path / "plain.parquet"), "--quiet"]) == 0


def test_annotator_table_reads_each_rater_not_the_pair_index(biased_fit):
    """The annotator table's reliability comes from each rater's own votes: reliable raters above random spammers
    and no position bias where the data have none. (It once read every rater as a coin: the pair index went in
    where the pull belongs.)"""
    data, model = biased_fit
    table = model.annotators_.join(data.annotators[["type"]])
    by_type = table.groupby("type")["reliability"].mean()
    assert by_type["reliable"] >= 0.65 and by_type["reliable"] - by_type["spammer"] >= 0.1
    assert table["position_bias"].abs().max() <= 0.15


def test_two_covariates_fit_together_and_a_covariate_nobody_follows_gets_no_pull(tmp_path, capsys,
                                                                                 short_cli_fits):
    # two covariates used to enter the raters' plate twice (Pyro: "Multiple sample sites named 'annotators'")
    data = make_synthetic(n_pairs=600, n_annotators=20, judgments_per_pair=3,
                          annotator_mix={"reliable": 0.75, "length_biased": 0.25}, tie_rate=0.2, seed=0)
    table = data.judgments.copy()
    noise = np.random.default_rng(0).normal(size=table["pair_id"].nunique())
    table["item_noise"] = table["pair_id"].map(dict(zip(table["pair_id"].unique(), noise)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 600 steps, as biased_fit's: this fit's loss has not quite settled
        model = DebiasedBradleyTerry(covariates=("length", "item_noise"), max_steps=600, seed=0).fit(table)
    raters = model.annotators_.join(data.annotators[["length_bias"]])
    assert (raters["item_noise_effect_median"] == 0).all()
    assert (raters["p_item_noise_effect_nonzero"] < 0.5).all()
    biased = raters["length_bias"] > 0
    p_pulled = raters["p_length_effect_nonzero"]
    assert p_pulled[biased].mean() > p_pulled[~biased].mean() + 0.3
    assert {"length_effect", "item_noise_effect"} <= set(model.to_arviz().posterior.data_vars)
    source, out = tmp_path / "judgments.parquet", tmp_path / "labels.parquet"
    table[table["pair_id"].isin(table["pair_id"].unique()[:150])].to_parquet(source)  # the command line: a smaller fit
    assert main(["aggregate", "--input", str(source), "--debias", "length,item_noise", "--inference", "map",
                 "--output", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "debiased length:" in printed and "debiased item_noise:" in printed and out.exists()



@pytest.fixture(scope="module")
def gap_fit():
    data = make_synthetic(n_pairs=40, n_annotators=8, judgments_per_pair=3, with_text=False, seed=1)
    table = data.judgments.reset_index(drop=True)
    codes = pd.factorize(table["pair_id"])[0]
    table["item_gap"] = np.random.default_rng(0).normal(size=codes.max() + 1)[codes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DebiasedBradleyTerry(covariates=("item_gap",), inference="map", max_steps=5, num_samples=2).fit(table)
    return table, codes, model


@given(row=st.integers(0, 119), nudge=st.sampled_from([-20.0, -0.5, 0.25, 3.0]))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_pair_covariate_with_two_values_in_one_pair_is_an_error_naming_both_rows(gap_fit, row, nudge):
    """The likelihood read each row's own value but the soft labels and the covariate's scale the pair's last row:
    a pair covariate that differs between a pair's judgments was used two ways without a word. Now one error names
    the covariate, the pair and both rows, at fit and in predictive_loglik."""
    table, codes, model = gap_fit
    changed = table.copy()
    changed.loc[row, "item_gap"] += nudge
    first = int(np.flatnonzero(codes == codes[row])[0])
    later = row if row != first else int(np.flatnonzero(codes == codes[row])[1])
    pattern = rf"covariate 'item_gap': row {later} .* row {first} of the same pair"
    with pytest.raises(AccordError, match=pattern):
        DebiasedBradleyTerry(covariates=("item_gap",), max_steps=5).fit(changed)
    with pytest.raises(AccordError, match=pattern):
        model.predictive_loglik(changed)


def test_a_map_fit_s_summary_claims_no_intervals(tmp_path, capsys, gap_fit, short_cli_fits):
    """Under --inference map each rater's "90% interval" is the point itself, so the summary said that every
    rater's interval excluded no pull ("8 of 8") next to a mean pull of [+nan, +nan]; now it says that a MAP fit
    has no intervals, and a posterior fit still counts them."""
    table, _, _ = gap_fit
    source = tmp_path / "judgments.parquet"
    table.to_parquet(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["aggregate", "--input", str(source), "--debias", "item_gap", "--inference", "map",
                     "--output", str(tmp_path / "map.csv"), "--quiet"]) == 0
        printed = capsys.readouterr().out
        assert "no intervals (a MAP point estimate)" in printed
        assert "intervals exclude" not in printed and "nan" not in printed
        assert main(["aggregate", "--input", str(source), "--debias", "item_gap", "--inference", "meanfield",
                     "--output", str(tmp_path / "posterior.csv"), "--quiet"]) == 0
    assert re.search(r"\d+ of 8 raters' 90% intervals exclude no pull", capsys.readouterr().out)


def test_adding_a_constant_to_a_covariate_leaves_the_fit_unchanged():
    """A pair covariate signed towards A may carry a constant (a token difference where A is usually the longer
    response). Un-centred, its constant part ``beta_j * m / c`` was a lean towards A that the position-bias and pull
    priors split between them: with 5 sd added the raters' pulls lost their order (rank correlation with the
    unshifted fit's 0.1-0.4) and the debiased labels moved by up to 0.2. Centred at the pairs' mean, the covariate
    the model reads is the same, and so are the pulls, the labels and the held-out likelihood."""
    data = make_synthetic(n_pairs=400, n_annotators=16, judgments_per_pair=5, annotator_mix=MIX, tie_rate=0.0,
                          activity_skew=0.3, seed=3)
    x = covariate_values(data.judgments, "length")
    fits = []
    for shift in (0.0, 5 * x.std()):
        judgments = data.judgments.assign(item_words=x + shift)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DebiasedBradleyTerry(covariates=("item_words",), max_steps=100, seed=0).fit(judgments)
        fits.append((model, model.predictive_loglik(judgments.iloc[:30])))
    (plain, plain_loglik), (shifted, shifted_loglik) = fits
    pulls = [model.annotators_["item_words_effect"] for model in (plain, shifted)]
    assert spearmanr(*pulls).statistic > 0.95 and (pulls[0] - pulls[1]).abs().max() < 0.05
    labels = [model.soft_labels_.probs["A"] for model in (plain, shifted)]
    assert (labels[0] - labels[1]).abs().max() < 0.02
    np.testing.assert_allclose(plain_loglik, shifted_loglik, atol=0.02)
    assert shifted.covariate_scale_ == pytest.approx(plain.covariate_scale_)
    assert shifted.covariate_centre_["item_words"] == pytest.approx(plain.covariate_centre_["item_words"] + 5 * x.std())


# texts that recur (a response is judged many times), with Unicode whitespace, and numbers in an object column
_WORDS = st.sampled_from(["a", "bb", "x\u00a0y", " ", "\u2003", "\t\n", "\x1c", "é", "7", ""])
_TEXTS = st.lists(_WORDS, max_size=5).map("".join) | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.lists(_TEXTS, min_size=1, max_size=6), picks=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)),
                                                                     min_size=1, max_size=40),
       as_string=st.booleans())
def test_length_covariate_counts_each_row_s_words_as_row_by_row(pool, picks, as_string):
    """The length covariate counts each distinct text once; every row still gets its own texts' word counts (the
    words of ``str(text)`` as ``re.findall(r"\\S+")`` finds them), for text and object columns alike."""
    a = [pool[i % len(pool)] for i, _ in picks]
    b = [pool[j % len(pool)] for _, j in picks]
    table = pd.DataFrame({"response_a": pd.Series(a, dtype=object), "response_b": pd.Series(b, dtype=object)})
    if as_string:
        table = table.astype(str)
    expected = np.array([len(re.findall(r"\S+", str(x))) - len(re.findall(r"\S+", str(y))) for x, y in zip(a, b)],
                        dtype=np.float64)
    np.testing.assert_array_equal(covariate_values(table, "length"), expected)


@given(scale=st.sampled_from([1.0, -1.0, 2.5, 1e-3, 1e4]), offset=st.floats(-1e3, 1e3), by_hand_first=st.booleans())
@settings(max_examples=10, deadline=None)
def test_a_covariate_that_is_a_linear_function_of_another_is_refused_naming_both(scale, offset, by_hand_first):
    """The length given twice (``length`` from the texts and an ``item_*`` column of the same word difference, in
    any unit or offset) entered the likelihood only through its sum: each rater's pull was split between the two
    names by the prior, each reported at about half, with ``identified_`` True and no warning. Now the second is
    one error naming both; the same column given alone fits as ``length`` does."""
    data = make_synthetic(n_pairs=30, n_annotators=6, judgments_per_pair=3, tie_rate=0.0, seed=1)
    table = data.judgments.assign(item_words=scale * covariate_values(data.judgments, "length") + offset)
    names = ("item_words", "length") if by_hand_first else ("length", "item_words")
    with pytest.raises(AccordError, match=rf"covariate '{names[1]}' is a linear function of '{names[0]}'"):
        DebiasedBradleyTerry(covariates=names, inference="map", max_steps=5, num_samples=2).fit(table)
    table = table.assign(item_sum=table["item_words"] + 3 * table["item_words"] ** 2,
                         item_square=table["item_words"] ** 2)
    with pytest.raises(AccordError, match=r"covariate 'item_sum' is a linear function of 'item_words', "
                                          r"'item_square'"):
        DebiasedBradleyTerry(covariates=("item_words", "item_square", "item_sum"), max_steps=5).fit(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DebiasedBradleyTerry(covariates=("item_words", "item_square"), inference="map", max_steps=5,
                                     num_samples=2).fit(table)
    assert set(model.identified_) == {"item_words", "item_square"}


@pytest.mark.parametrize("kind", ["list", "numpy", "index"])
def test_covariates_as_any_sequence_of_names_are_the_tuple_of_them(kind):
    """``covariates=np.array(["length"])`` failed in the constructor with numpy's 'truth value of an array is
    ambiguous'; any sequence of names is now the tuple of them, as ContextPreference takes them, and clone and
    sklearn's clone give it back unchanged."""
    sklearn_base = pytest.importorskip("sklearn.base")
    names = ["length", "item_other"]
    model = DebiasedBradleyTerry(covariates={"list": list, "numpy": np.array, "index": pd.Index}[kind](names))
    assert model.covariates == tuple(names) and all(type(name) is str for name in model.covariates)
    for copy in (model.clone(), sklearn_base.clone(model)):
        assert copy.get_params() == model.get_params()
    with pytest.raises(AccordError, match="covariates must be a sequence of names"):
        DebiasedBradleyTerry(covariates={"length"})


@pytest.mark.parametrize("cells, row, comma", [
    (["1.5", "2", "-0.25", "4"], 0, False),  # every cell a number written as text: no row is "not a number"
    (["1.5", "2", "n/a", "4"], 2, False),
    (["1.5", "2", "12,5", "4"], 2, True),
])
def test_a_covariate_of_text_names_the_cell_that_is_no_number_and_a_comma_only_where_there_is_one(cells, row, comma):
    """A text covariate's error names a cell that is not a number, and suggests a decimal comma only for a value
    with a comma in it. (A column of numbers written as text, "1.5", was refused as "row 0 is '1.5' (a decimal
    comma? ...)": a number named as no number, a comma that is not there.)"""
    table = pd.DataFrame({"pair_id": ["p0", "p1", "p2", "p3"], "item_gap": pd.Series(cells, dtype=object)})
    with pytest.raises(AccordError) as error:
        covariate_values(table, "item_gap")
    message = str(error.value)
    assert len(message.splitlines()) == 1 and "item_gap" in message
    assert f"row {row} is {cells[row]!r}" in message
    assert ("decimal comma" in message) == comma
    if row == 0:
        assert "as text" in message


def test_a_length_covariate_without_a_text_is_one_clear_error_naming_its_column_and_row():
    """'length' reads the texts, which validation leaves to the model: a missing text is one line naming the column
    and the row, and a missing column is named before any text is read."""
    table = pd.DataFrame({"pair_id": ["p0", "p1", "p2"], "response_a": ["one two", "three", None],
                          "response_b": ["four", None, "five six"]})
    with pytest.raises(AccordError, match=r"^covariate 'length': column 'response_a' row 2 has no text$"):
        covariate_values(table, "length")
    with pytest.raises(AccordError, match=r"^covariate 'length': column 'response_b' row 1 has no text$"):
        covariate_values(table.fillna({"response_a": "seven"}), "length")
    with pytest.raises(AccordError, match=r"^covariate 'length' needs the response texts: no column 'response_b'$"):
        covariate_values(table.drop(columns="response_b"), "length")
    np.testing.assert_array_equal(covariate_values(table.fillna("x y z"), "length"), [1.0, -2.0, 1.0])


def test_a_covariate_of_numbers_in_an_object_column_is_read_as_numbers():
    """Python numbers in an object column are numbers (they were refused as "not numeric: row 0 is 1.5")."""
    table = pd.DataFrame({"item_gap": pd.Series([1.5, 2, -0.25, 4], dtype=object)})
    np.testing.assert_array_equal(covariate_values(table, "item_gap"), [1.5, 2.0, -0.25, 4.0])
    with pytest.raises(AccordError, match=r"row 1 has no finite value"):
        covariate_values(table.assign(item_gap=pd.Series([1.5, None, 2, 4], dtype=object)), "item_gap")


@pytest.mark.parametrize("value, shown", [(np.nan, "(nan)"), (np.inf, "(inf)"), (-np.inf, "(-inf)")])
def test_a_covariate_that_is_not_finite_is_shown_as_the_user_wrote_it(value, shown):
    """The cell is shown as a number, not as numpy's repr (it read "(np.float64(nan))")."""
    table = pd.DataFrame({"item_gap": [1.5, value, 2.0]})
    with pytest.raises(AccordError, match=r"row 1 has no finite value") as caught:
        covariate_values(table, "item_gap")
    assert shown in str(caught.value) and "np." not in str(caught.value)


@pytest.mark.parametrize("name", [5, None, b"item_gap", ("length",)])
def test_a_covariate_name_that_is_no_text_is_refused_naming_it(name):
    # was: accepted, and the fit failed with Python's "'int' object has no attribute 'startswith'" (or bytes'
    # "startswith first arg must be bytes"), naming no setting
    with pytest.raises(AccordError, match=rf"^covariates: every name is a text \('length' or an item_\* column\), "
                                          rf"not {re.escape(repr(name))}"):
        DebiasedBradleyTerry(covariates=["length", name])


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_a_debias_flag_that_names_no_covariate_is_one_error(tmp_path, capsys, value):
    # was: the debiased model fitted with its default covariate, length, without a word (no "debiased length:" line):
    # an empty --debias (a shell variable left unset) debiased labels the user did not ask to debias
    data = make_synthetic(n_pairs=40, n_annotators=6, judgments_per_pair=3, annotator_mix=MIX, seed=2)
    source = tmp_path / "judgments.parquet"
    data.judgments.to_parquet(source)
    out = tmp_path / "labels.parquet"
    assert main(["aggregate", "--input", str(source), "--debias", value, "--inference", "map", "--output", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--debias" in err and "names no covariate" in err
    assert not out.exists()
