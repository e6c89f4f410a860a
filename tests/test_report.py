"""The rater report on a slice of UKPConvArg1: HTML, PNG figures and CSV tables are there and say the right things."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.aggregate.pluralistic import pluralistic_soft_labels
from accord.aggregate.report import vote_counts, write_report
from accord.datasets import AccordError, validate
from accord.datasets.loaders.ukp import load_ukpconvarg1
from accord.models.context import ContextPreference
from accord.models.rater_types import RaterTypes

from conftest import shared_data_or_skip

torch.set_num_threads(1)
FILES = ("evolution-vs-creation_evolution.xml", "evolution-vs-creation_creation.xml")


@pytest.fixture(scope="module")
def ukp_slice() -> pd.DataFrame:
    folder = shared_data_or_skip("ukp-convarg1", "UKPConvArg1-full-XML")
    table = pd.concat([load_ukpconvarg1(folder / name) for name in FILES], ignore_index=True)
    return validate(table[table["annotator_stance"].notna()].reset_index(drop=True))


def test_report_writes_html_figures_and_csvs(ukp_slice, tmp_path, drawn_figures):
    context = ContextPreference(
        group="annotator_stance", reference_group="none", topic="item_debate", covariates=None, inference="map",
        max_steps=400,
    ).fit(ukp_slice)
    types = RaterTypes(n_types=2, max_steps=400).fit(ukp_slice)
    out = tmp_path / "report"
    (out).mkdir()
    (out / "stale.txt").write_text("an older report")  # replaced as a whole, atomically
    (out / "report.html").write_text("<html></html>")  # an earlier report: only such a folder is replaced
    assert write_report(out, ukp_slice, context, types, top_n=10) == out

    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert figures >= {"reliability_forest.png", "confusion_matrices.png", "group_effects.png", "rater_types.png",
                       "genuine_disagreement.png", "disagreement_split.png"}
    assert all((out / "figures" / name).stat().st_size > 5_000 for name in figures)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 8  # self-contained: every section's figure is embedded
    for heading in ("Contested pairs", "The methods side by side", "Annotator reliability", "Confusion matrices",
                    "Flagged raters", "Group effects", "Rater types", "genuine disagreement"):
        assert heading in page

    annotators = pd.read_csv(out / "annotators.csv", index_col=0)
    assert len(annotators) == ukp_slice["annotator"].nunique()
    assert {"reliability", "reliability_lower", "reliability_upper", "spam", "adversarial_share"} <= set(
        annotators.columns)
    assert annotators["reliability"].between(0, 1).all()
    effects = pd.read_csv(out / "group_effects.csv")
    assert set(effects["group"]) == {"opposite", "same"} and (effects["reference"] == "none").all()
    assert {"preference_scale", "reliability", "tie"} <= set(effects["effect"])
    assert (effects["lower"] <= effects["upper"]).all()
    pairs = pd.read_csv(out / "genuine_disagreement.csv", index_col=0)
    assert len(pairs) == ukp_slice["pair_id"].nunique()
    assert {"p_a_none", "p_a_same", "p_a_opposite", "disagreement", "noise_share"} <= set(pairs.columns)
    assert pairs["between"].is_monotonic_decreasing
    confusion = pd.read_csv(out / "confusion.csv")
    assert set(confusion["rank"]) == {"worst", "best"} and set(confusion["true"]) == {"A", "B", "tie"}
    types_table = pd.read_csv(out / "types.csv")
    assert len(types_table) == 2 and abs(types_table["share"].sum() - 1) < 1e-6
    assert (out / "flagged.csv").exists() and (out / "summary.csv").exists()
    for name, figure in drawn_figures.items():
        assert _covered_by_legend(figure) == [], name


# -- the report on small tables: its text agrees with its data ------------------------------------------------------


def _small_table(seed: int = 0, n_pairs: int = 60, spammer_judgments: int = 10) -> tuple[pd.DataFrame, pd.Series]:
    """Six raters who are right 90% of the time judge every pair; a spammer judges a few pairs and, as a coin would
    on average, gets half of them right."""
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.choice(["A", "B"], size=n_pairs), index=[f"p{i}" for i in range(n_pairs)])
    rows = []
    for rater in [f"good{j}" for j in range(6)]:
        right = rng.random(n_pairs) < 0.9
        said = np.where(right, truth.to_numpy(), np.where(truth.to_numpy() == "A", "B", "A"))
        rows += [(p, rater, s) for p, s in zip(truth.index, said)]
    for k, p in enumerate(rng.choice(truth.index, size=spammer_judgments, replace=False)):
        rows.append((p, "spammer", truth[p] if k % 2 else {"A": "B", "B": "A"}[truth[p]]))
    table = pd.DataFrame(rows, columns=["pair_id", "annotator", "label"])
    return validate(table.assign(gold=table["pair_id"].map(truth))), truth


def _fit(table: pd.DataFrame, *names: str) -> list:
    from accord.aggregate import fit_method

    return [fit_method(name, table, **({} if name in ("majority", "vote-fraction") else {"progress": False}))
            for name in names]


def test_a_random_spammer_with_ten_judgments_is_flagged_and_the_rule_is_stated(tmp_path):
    table, _ = _small_table()
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"))
    flagged = pd.read_csv(out / "flagged.csv", index_col=0)
    assert list(flagged.index) == ["spammer"] and flagged.loc["spammer", "flag"] == "spammer"
    assert flagged.loc["spammer", "n_judgments"] == 10
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Flagged: 1 as spammer, 0 as adversarial" in page
    assert "a rater is a <b>spammer</b> when their interval reaches down to random agreement" in page


def test_one_undecided_rater_is_counted_in_the_singular(tmp_path):
    # a spammer with two judgments (one right, one wrong): their interval is too wide to call; the page said
    # "1 raters have intervals too wide ... (1 annotators have fewer than 10 judgments)"
    table, _ = _small_table(spammer_judgments=2)
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "1 rater has an interval too wide to tell a spammer from a typical rater" in page
    assert "(1 annotator has fewer than 10 judgments)" in page
    assert "1 raters" not in page and "1 annotators" not in page


def test_a_rater_certain_to_be_right_is_drawn_though_its_mean_rounds_outside_its_interval(tmp_path):
    # ten unanimous judgments: reliability 0.99998 (exact) against an interval [1.0, 1.0] of float32 draws; the
    # forest plot's error bar came out 2e-5 negative and matplotlib refused it, so the report failed
    from accord.datasets import make_synthetic

    table = validate(make_synthetic(n_pairs=5, n_annotators=3, judgments_per_pair=2, seed=1).judgments)
    (model,) = _fit(table, "dawid-skene")
    raters = model.annotators_
    assert (raters["reliability"] < raters["reliability_lower"]).any()  # the case this test is about
    out = write_report(tmp_path / "r", table, model)
    assert (out / "report.html").exists()


def test_report_text_agrees_with_its_tables_on_few_judgments(tmp_path):
    """Five raters with 5-6 judgments each: no claim about raters with 10 judgments, the least and most reliable
    are not mixed up, and the counts in the text are those of the CSV files."""
    rng = np.random.default_rng(3)
    pairs = [f"p{i}" for i in range(10)]
    rows = [(p, r, rng.choice(["A", "B"], p=[0.8, 0.2])) for p in pairs for r in rng.choice(
        ["ann", "bob", "cid", "dee", "eve"], size=3, replace=False)]
    table = validate(pd.DataFrame(rows, columns=["pair_id", "annotator", "label"]))
    assert table.groupby("annotator").size().max() < 10
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene", "majority"), top_n=20)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "with at least 10 judgments" not in page
    assert "fewer than two have 10 or more judgments, so none is left out" in page
    assert "Least reliable annotators" not in page and "Annotators, least reliable first (5)" in page
    annotators = pd.read_csv(out / "annotators.csv", index_col=0)
    confusion = pd.read_csv(out / "confusion.csv").drop_duplicates("annotator").set_index("annotator")
    worst = annotators.loc[confusion.index[confusion["rank"] == "worst"], "reliability"]
    best = annotators.loc[confusion.index[confusion["rank"] == "best"], "reliability"]
    assert len(worst) == len(best) == 2 and not set(worst.index) & set(best.index)
    assert worst.max() <= best.min()
    pair_table = pd.read_csv(out / "pairs.csv", index_col=0)
    contested = int((pair_table["probability"] < 0.6).sum())
    assert f"Contested pairs: {contested:,} of {len(pair_table):,}</b>" in page
    assert len(pd.read_csv(out / "methods.csv")) == 2


def test_an_empty_confusion_cell_is_drawn_light_and_a_nearly_empty_row_grey():
    from matplotlib.figure import Figure

    from accord.aggregate.report import _ReportBuilder

    matrix = pd.DataFrame([[5.0, 0.0], [0.01, 0.02]], index=["true A", "true B"], columns=["said A", "said B"])
    ax = Figure().subplots()
    _ReportBuilder.draw_confusion(ax, matrix)
    image = ax.images[0]
    rgba = image.to_rgba(image.get_array())
    assert rgba[0, 0, :3].sum() < 1.0  # 5 of 5: dark
    assert rgba[0, 1, :3].sum() > 2.7  # 0.0: nearly white, not dark blue
    assert np.ma.getmaskarray(image.get_array())[1].all()  # 0.03 expected judgments: no share is drawn


def test_report_compares_baselines_and_answers_against_gold(tmp_path):
    table, truth = _small_table(seed=1)
    models = _fit(table, "dawid-skene", "vote-fraction", "majority")
    out = write_report(tmp_path / "r", table, *models)
    methods = pd.read_csv(out / "methods.csv", index_col=0)
    assert list(methods.index) == ["dawid-skene", "vote-fraction", "majority"]
    for model in models:
        right = (model.soft_labels_.hard() == truth.reindex(model.soft_labels_.pair_ids)).mean()
        assert methods.loc[model.method, "gold accuracy"] == pytest.approx(right)
    pairs = pd.read_csv(out / "pairs.csv", index_col=0, keep_default_na=False)
    assert len(pairs) == len(truth) and set(pairs["agrees with gold"]) <= {"yes", "no"}
    page = (out / "report.html").read_text(encoding="utf-8")
    share = (pairs["agrees with gold"] == "yes").mean()
    assert share == pytest.approx(methods.loc["dawid-skene", "gold accuracy"])  # one accuracy, two places
    assert (f"Against the gold labels of {len(truth):,} pairs (gold ties left out, as in every accuracy accord "
            f"reports) the most likely label is right on {share:.1%}") in page
    assert page.count("data:image/png;base64,") == 4  # pairs, methods, reliability, confusion (flags: a table)


def test_a_method_fitted_on_part_of_the_pairs_is_compared_on_the_pairs_it_labels(tmp_path):
    # accord report --group fits the context model on the judgments with a group only (on UKPConvArg1 40,539 of
    # 84,445 have no stance): the comparison failed on its empty rows, "Encountered all NA values", after every fit
    table, _ = _small_table(seed=2)
    kept = table["pair_id"].drop_duplicates().iloc[:40]
    (full,) = _fit(table, "dawid-skene")
    (part,) = _fit(validate(table[table["pair_id"].isin(kept)].reset_index(drop=True)), "majority")
    out = write_report(tmp_path / "r", table, full, part)
    methods = pd.read_csv(out / "methods.csv", index_col=0)
    assert methods.loc["majority", "pairs"] == len(kept) and methods.loc["dawid-skene", "pairs"] == 60
    same = (full.soft_labels_.hard().reindex(kept) == part.soft_labels_.hard().reindex(kept)).mean()
    assert methods.loc["majority", "same label as dawid-skene"] == pytest.approx(same)
    agreement = pd.read_csv(out / "method_agreement.csv", index_col=0)
    assert np.diag(agreement.to_numpy()).tolist() == [1.0, 1.0]  # a method always agrees with itself
    assert agreement.loc["majority", "dawid-skene"] == pytest.approx(same)
    assert "a method fitted on part of the table labels fewer" in (out / "report.html").read_text(encoding="utf-8")


def test_gold_agreement_is_one_accuracy_when_gold_has_ties(tmp_path):
    from accord.datasets import make_synthetic

    data = make_synthetic(n_pairs=80, n_annotators=15, judgments_per_pair=3, tie_rate=0.2, seed=2)
    table = validate(data.judgments.drop(columns="gold").assign(gold=data.judgments["pair_id"].map(data.true_label)))
    assert (table["gold"] == "tie").any()
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene", "majority"))
    pairs = pd.read_csv(out / "pairs.csv", index_col=0, keep_default_na=False)
    methods = pd.read_csv(out / "methods.csv", index_col=0)
    scored = pairs["agrees with gold"].isin(["yes", "no"])
    assert (pairs.loc[~scored, "gold"] == "tie").all()
    share = (pairs.loc[scored, "agrees with gold"] == "yes").mean()
    assert share == pytest.approx(methods.loc["dawid-skene", "gold accuracy"])
    assert f"the most likely label is right on {share:.1%}" in (out / "report.html").read_text(encoding="utf-8")


def test_the_methods_section_says_how_many_gold_ties_its_accuracy_leaves_out(tmp_path):
    # UKPConvArg1 (3,000 pairs): "against the gold labels of 2,870 pairs, accuracy ..." while the accuracy read the
    # 2,298 without a gold tie (the pairs section and accord aggregate's line said so; this one did not)
    from accord.datasets import make_synthetic

    data = make_synthetic(n_pairs=80, n_annotators=15, judgments_per_pair=3, tie_rate=0.2, seed=2)
    table = validate(data.judgments.drop(columns="gold").assign(gold=data.judgments["pair_id"].map(data.true_label)))
    gold = table.groupby("pair_id")["gold"].first()
    ties = int((gold == "tie").sum())
    assert 0 < ties < len(gold)
    page = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene", "majority")) / "report.html"
    methods_intro = page.read_text(encoding="utf-8").split("The methods side by side")[-1]
    assert (f"against the gold labels of {len(gold)} pairs (the accuracy leaves out {ties} gold ties)"
            in methods_intro)


def test_a_debiased_model_reports_who_is_pulled_and_its_text_agrees_with_its_table(tmp_path):
    from accord.datasets import make_synthetic
    from accord.models import DebiasedBradleyTerry

    data = make_synthetic(n_pairs=400, n_annotators=16, judgments_per_pair=3, tie_rate=0.0, seed=1,
                          annotator_mix={"reliable": 0.7, "length_biased": 0.3})
    model = DebiasedBradleyTerry(covariates=("length",), seed=0, max_steps=400).fit(data.judgments)
    out = write_report(tmp_path / "r", data.judgments, model)
    pulls = pd.read_csv(out / "pulls_length.csv", index_col=0)
    assert len(pulls) == 16 and (out / "figures" / "pulls_length.png").exists()
    pulled = int((pulls["p_length_effect_nonzero"] >= 0.5).sum())
    biased = data.annotators["length_bias"] > 0
    assert pulled >= 1 and set(pulls.index[pulls["p_length_effect_nonzero"] >= 0.5]) <= set(biased[biased].index)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"<b>{pulled} of 16</b> raters are more likely pulled than not" in page


def test_the_pulled_raters_table_of_the_page_shows_at_most_top_n_of_them(tmp_path):
    """The page's table of raters more likely pulled than not held every such rater (thousands in a large crowd),
    where the other tables of raters and pairs show ``top_n`` rows and leave the rest to their CSV. Now it shows the
    ``top_n`` most likely pulled and says so; the CSV holds them all."""
    import re

    from accord.datasets import make_synthetic
    from accord.models import DebiasedBradleyTerry

    data = make_synthetic(n_pairs=120, n_annotators=8, judgments_per_pair=3, tie_rate=0.0, seed=1,
                          annotator_mix={"reliable": 0.5, "length_biased": 0.5})
    model = DebiasedBradleyTerry(covariates=("length",), seed=0, max_steps=30).fit(data.judgments)
    table = model.annotators_.copy()
    table["p_length_effect_nonzero"] = np.linspace(0.6, 0.95, len(table))  # every rater more likely pulled
    model.annotators_ = table
    out = write_report(tmp_path / "r", data.judgments, model, top_n=3)
    pulls = pd.read_csv(out / "pulls_length.csv", index_col=0)
    assert len(pulls) == 8 and (pulls["p_length_effect_nonzero"] >= 0.5).all()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>8 of 8</b> raters are more likely pulled than not" in page
    shown = page.split("Raters more likely pulled than not")[-1].split("</table>")[0]
    rows = re.findall(r"<tr>\s*<th>([^<]*)</th>\s*<td>", shown)  # the body's rows, by the rater named
    assert rows == [str(a) for a in table["p_length_effect_nonzero"].sort_values(ascending=False).index[:3]], rows


def test_ids_with_dollar_signs_and_html_are_shown_as_they_are(tmp_path):
    # an id with '$' ("$a^$", "w$2") switched matplotlib to math mode: the forest plot and the confusion titles
    # failed to parse and the whole report was lost; HTML in an id must reach the page escaped
    table, _ = _small_table()
    names = {"good0": "$a^$", "good1": "w$2", "good2": "<script>x</script>", "spammer": "a&b"}
    table = table.assign(annotator=table["annotator"].replace(names), pair_id="$" + table["pair_id"].astype(str))
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene", "majority"))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert set(names.values()) <= set(pd.read_csv(out / "annotators.csv", index_col=0).index)
    assert (out / "figures" / "confusion_matrices.png").exists()


def test_ids_with_control_characters_are_drawn_as_escapes_without_warnings(tmp_path):
    # a tab or carriage return in an id (a pasted spreadsheet cell) has no glyph in any font: matplotlib drew a box
    # and warned "Glyph 9 missing from font(s) DejaVu Sans" once per figure and drawing; the CSVs keep the id whole
    import warnings

    table, _ = _small_table()
    names = {"good0": "tab\there", "good1": "nul\x00here", "spammer": "bell\x07"}
    table = table.assign(annotator=table["annotator"].replace(names), pair_id=table["pair_id"].astype(str) + "\t")
    models = _fit(table, "dawid-skene", "majority")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = write_report(tmp_path / "r", table, *models)
    assert set(names.values()) <= set(pd.read_csv(out / "annotators.csv", index_col=0).index)
    assert (out / "figures" / "reliability_forest.png").exists()


def test_an_id_with_a_carriage_return_stays_one_row_of_the_report_csvs(tmp_path):
    # the report wrote its CSVs with pandas' to_csv, which quotes a "\n" but not a lone "\r": every CSV reader took
    # it for a line end, and the rater "cr\rhere" came back as two rows, "cr" and "here" (accord's write_table
    # quotes such a file)
    table, _ = _small_table()
    table = table.assign(annotator=table["annotator"].replace({"good1": "cr\rhere"}))
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"))
    raters = pd.read_csv(out / "annotators.csv", index_col=0)
    assert "cr\rhere" in raters.index and len(raters) == table["annotator"].nunique()
    assert raters.index.name is None or raters.index.name == "annotator"
    assert "n_judgments" in raters.columns and raters["n_judgments"].sum() == len(table)


def test_a_report_is_not_written_over_a_file_nor_under_one(tmp_path):
    # over a file: the user's file was moved aside to a hidden '.notes.txt.*.old' and a folder put in its place;
    # under a file: a FileExistsError traceback instead of an error naming the folder
    table, _ = _small_table()
    model = _fit(table, "majority")[0]
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for target in (notes, notes / "report"):
        with pytest.raises(AccordError, match="notes.txt"):
            write_report(target, table, model)
    assert notes.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_folder_of_other_files_is_not_replaced_but_an_earlier_report_and_an_empty_folder_are(tmp_path):
    # the report replaces its whole folder: `--output-dir ~/data` deleted every file there
    table, _ = _small_table()
    model = _fit(table, "majority")[0]
    data = tmp_path / "data"
    data.mkdir()
    (data / "judgments.csv").write_text("mine")
    with pytest.raises(AccordError, match="no earlier report"):
        write_report(data, table, model)
    assert [p.name for p in data.iterdir()] == ["judgments.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_report(empty, table, model)
    write_report(empty, table, model)  # now an earlier report, replaced
    assert (empty / "report.html").exists()


def test_a_covariate_with_a_slash_in_its_name_gets_a_safe_file_name(tmp_path):
    # 'item_len/chars' made the report write pulls_item_len/chars.csv, in a folder that is not there: the report
    # failed after the fit
    from accord.datasets import make_synthetic
    from accord.models import DebiasedBradleyTerry

    data = make_synthetic(n_pairs=60, n_annotators=6, judgments_per_pair=3, tie_rate=0.0, seed=1)
    table = data.judgments.copy()
    length = data.responses["length"]
    table["item_len/chars"] = (length.reindex(table["response_a_id"]).to_numpy()
                               - length.reindex(table["response_b_id"]).to_numpy())
    model = DebiasedBradleyTerry(covariates=("item_len/chars",), seed=0, max_steps=30).fit(table)
    out = write_report(tmp_path / "r", table, model)
    assert (out / "pulls_item_len_chars.csv").exists() and (out / "figures" / "pulls_item_len_chars.png").exists()
    assert "<code>pulls_item_len_chars.csv</code>" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", [{"top_n": -2}, {"top_n": 0}, {"max_forest": 0}, {"min_judgments": -1},
                                     {"top_n": 2.5}])
def test_a_row_count_below_one_is_refused(setting, tmp_path):
    # top_n=-2 went to DataFrame.head(-2): the tables silently lost their last two rows instead of showing two
    table, _ = _small_table()
    with pytest.raises(AccordError, match=next(iter(setting))):
        write_report(tmp_path / "r", table, *_fit(table, "majority"), **setting)
    assert not (tmp_path / "r").exists()


def test_a_very_long_id_does_not_widen_the_forest_plot(tmp_path):
    # one 200-character id made reliability_forest.png 2,084 pixels wide: the page, which fits figures to its
    # width, drew the plot about half as large; the tables keep the id whole
    from PIL import Image

    table, _ = _small_table()
    long_id = "\u00e9" * 200
    table = table.assign(annotator=table["annotator"].replace({"good0": long_id}))
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"))
    assert Image.open(out / "figures" / "reliability_forest.png").size[0] < 1100
    assert long_id in set(pd.read_csv(out / "annotators.csv", index_col=0).index)


def test_graded_judgments_under_a_model_over_sides_show_their_votes_and_confusions(tmp_path):
    # the ordinal model's soft labels are over A/B/tie while the judgments are grades: no grade matched a class,
    # so the votes column was empty, every confusion matrix zero and no rater could be flagged
    rng = np.random.default_rng(0)
    rows = [(f"p{i}", f"w{j}", int(rng.integers(-2, 3))) for i in range(20) for j in range(4)]
    table = validate(pd.DataFrame(rows, columns=["pair_id", "annotator", "label"]), form="graded", scale=2)
    (model,) = _fit(table, "ordinal")
    assert list(model.soft_labels_.classes) == ["A", "B", "tie"]  # the case this test is about
    out = write_report(tmp_path / "r", table, model)
    pairs = pd.read_csv(out / "pairs.csv", index_col=0)
    grades = table.groupby("pair_id")["label"].apply(lambda g: (int((g < 0).sum()), int((g > 0).sum())))
    for pair, (a, b) in grades.items():
        votes = str(pairs.loc[pair, "votes"])
        assert (f"A:{a}" in votes) == (a > 0) and (f"B:{b}" in votes) == (b > 0)
    confusion = pd.read_csv(out / "confusion.csv")
    assert confusion.groupby("annotator")["count"].sum().gt(0).all()


def test_graded_gold_under_a_model_over_sides_is_read_as_its_side(tmp_path):
    # gold grades (-2, 0, 2) against the ordinal model's A/B/tie: every pair was 'no', a gold 0 was not a gold tie
    rng = np.random.default_rng(0)
    rows = [(f"p{i}", f"w{j}", int(rng.integers(-2, 3)), [-2, 0, 2][i % 3]) for i in range(20) for j in range(4)]
    table = validate(pd.DataFrame(rows, columns=["pair_id", "annotator", "label", "gold"]), form="graded", scale=2)
    out = write_report(tmp_path / "r", table, *_fit(table, "ordinal", "majority"))
    pairs = pd.read_csv(out / "pairs.csv", index_col=0)
    side = pairs["gold"].astype(str)
    assert set(side) == {"A", "B", "tie"}
    assert ((pairs["agrees with gold"] == "gold tie") == (side == "tie")).all()
    expected = (pairs["most likely"] == side)[side != "tie"].mean()
    assert pd.read_csv(out / "methods.csv", index_col=0).iloc[0]["gold accuracy"] == pytest.approx(expected)


# -- the figures as drawn: their numbers are the tables' --------------------------------------------------------------


@pytest.fixture
def drawn_figures(monkeypatch) -> dict:
    """Every figure the report saves, by name, kept open for the test to read what was drawn."""
    from accord.aggregate.report import _ReportBuilder

    figures: dict = {}
    save = _ReportBuilder.save_figure

    def keep(self, figure, name):
        figures[name] = figure
        return save(self, figure, name)

    monkeypatch.setattr(_ReportBuilder, "save_figure", keep)
    return figures


def test_the_forest_plot_draws_the_annotator_table_without_exporting_the_posterior(tmp_path, drawn_figures,
                                                                                   monkeypatch):
    # the forest plot first exported the whole posterior with every judgment's log-likelihood (to_arviz: 4.6 s and
    # 360 MB more peak memory on UKPConvArg1's 3,815 raters) to look for a 'reliability' variable no model has
    table, _ = _small_table()
    (model,) = _fit(table, "dawid-skene")
    exported = []
    monkeypatch.setattr(type(model), "to_arviz", lambda self: exported.append(1))
    out = write_report(tmp_path / "r", table, model)
    assert exported == []
    ax = drawn_figures["reliability_forest"].axes[0]
    drawn = pd.Series(ax.lines[0].get_xdata(), index=[t.get_text() for t in ax.get_yticklabels()])
    annotators = pd.read_csv(out / "annotators.csv", index_col=0)
    assert drawn.to_numpy() == pytest.approx(annotators.loc[drawn.index, "reliability"].to_numpy())
    assert ax.get_yticks()[np.argmin(drawn.to_numpy())] == max(ax.get_yticks())  # the least reliable at the top


def _covered_by_legend(figure) -> list[str]:
    """What a legend of ``figure`` is drawn over: bars of some height, points of lines and markers (a vertical
    reference line, drawn across the whole height, is left out)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import Rectangle

    FigureCanvasAgg(figure).draw()
    covered = []
    for ax in figure.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        for bar in ax.patches:
            if isinstance(bar, Rectangle) and bar.get_height() > 0 and bar.get_window_extent().overlaps(box):
                covered.append(f"{ax.get_xlabel()}: bar at x={bar.get_x():.2f}")
        for line in ax.lines:
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            if len(np.unique(x)) > 1:
                points = ax.transData.transform(np.column_stack([x, y]))
                if any(box.contains(px, py) for px, py in points):
                    covered.append(f"{ax.get_xlabel()}: line {line.get_label()}")
        for markers in ax.collections:
            points = markers.get_offset_transform().transform(markers.get_offsets())
            if any(box.contains(px, py) for px, py in points):
                covered.append(f"{ax.get_xlabel()}: markers {markers.get_label()}")
    return covered


def test_no_legend_is_drawn_over_the_data(ukp_slice, tmp_path, drawn_figures):
    # pair_labels.png put 'contested below 0.6' over its tallest bar, the pairs labelled with certainty (on
    # UKPConvArg1 the 3,800 pairs at P = 1.0), where no corner of the panel was free
    write_report(tmp_path / "r", ukp_slice, *_fit(ukp_slice, "dawid-skene", "majority"))
    assert {"pair_labels", "methods"} <= set(drawn_figures)
    for name, figure in drawn_figures.items():
        assert _covered_by_legend(figure) == [], name


def test_the_disagreement_split_of_rater_types_shows_the_genuine_share_within_types(tmp_path, drawn_figures):
    # under rater types members of one type may genuinely differ (on UKPConvArg1 81% of a pair's disagreement on
    # average): the figure and the text showed only the shares between types and noise, called that the whole split,
    # and labelled the types 'groups'
    from accord.aggregate.pluralistic import decompose_disagreement
    from accord.datasets import make_synthetic

    table = validate(make_synthetic(n_pairs=60, n_annotators=8, judgments_per_pair=3, seed=0).judgments)
    types = RaterTypes(n_types=2, max_steps=100).fit(table)
    split = decompose_disagreement(types)
    assert split["within_group"].gt(0).any()  # the case this test is about
    out = write_report(tmp_path / "r", table, types)
    ax = drawn_figures["disagreement_split"].axes[0]
    names = [text.get_text() for text in ax.get_legend().get_texts()]
    assert names == ["genuine (between types)", "genuine (within types)", "noise"]
    seen = split[split["total"] > 0.05]
    for bars, column in zip(ax.containers, ["disagreement", "within_group", "noise_share"]):
        heights = [bar.get_height() for bar in bars]
        assert heights == np.histogram(seen[column], bins=20, range=(0, 1))[0].tolist(), column
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "genuine disagreement within types" in page and "(between types; within types)" in page
    assert "<th>within_group</th>" in page


def test_one_rater_type_ranks_the_pairs_by_the_disagreement_within_it_and_says_so(tmp_path):
    # VLDB'17 Dog: rater-types (n_types='auto') chose one type, so every pair's between-type disagreement is 0, and
    # "the pairs where the types differ most" were the first 20 pairs of the file (ids 1..20), in their order
    from accord.datasets import make_synthetic

    table = validate(make_synthetic(n_pairs=60, n_annotators=8, judgments_per_pair=3, seed=0).judgments)
    types = RaterTypes(n_types=1, max_steps=100).fit(table)
    out = write_report(tmp_path / "r", table, types)
    frame = pd.read_csv(out / "genuine_disagreement.csv", index_col=0)
    assert (frame["between"] == 0).all() and frame["within"].gt(0).any()
    assert frame["within"].is_monotonic_decreasing
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "one type: no pair's types differ" in page


def _overlapping_texts(ax) -> list[tuple[str, str]]:
    """Pairs of texts of ``ax`` (cell texts, x tick labels) drawn over each other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(ax.figure).draw()
    overlaps = []
    for texts in (ax.texts, ax.get_xticklabels()):
        boxes = [(t.get_text(), t.get_window_extent()) for t in texts if t.get_text()]
        overlaps += [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:] if box.overlaps(other)]
    return overlaps


@pytest.mark.parametrize("names", [[f"c{k:02d}" for k in range(12)], [f"{k}" for k in range(7)],
                                   [f"{k}" for k in range(8)], ["entailment", "contradiction", "neutral"],
                                   ["A", "B", "tie"]])
def test_confusion_matrices_of_many_classes_or_long_names_stay_readable(names):
    # with 12 classes the counts of neighbouring cells and the class names below ran into each other
    from matplotlib.figure import Figure

    from accord.aggregate.report import _ReportBuilder

    counts = np.arange(len(names) ** 2, dtype=float).reshape(len(names), -1) * 37.3
    matrix = pd.DataFrame(counts, index=[f"true {c}" for c in names], columns=[f"said {c}" for c in names])
    ax = Figure(figsize=(3.2, 3.2)).subplots()  # the report's panel
    _ReportBuilder.draw_confusion(ax, matrix)
    assert _overlapping_texts(ax) == []
    assert [t.get_text() for t in ax.get_xticklabels()] == names


def test_the_forest_plot_marks_the_annotators_it_leaves_out(tmp_path, drawn_figures):
    # the least and the most reliable halves were drawn as one ranking: on Snow 2008 RTE the 124 raters between them
    # read as a jump from 0.73 to 0.94
    table, _ = _small_table()
    write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"), max_forest=4)
    ax = drawn_figures["reliability_forest"].axes[0]
    (note,) = ax.texts
    assert f"{table['annotator'].nunique() - 4} annotators not shown" in note.get_text()
    rows = np.sort(ax.get_yticks())
    assert rows[1] < note.get_position()[1] < rows[2]  # in a row of its own between the halves
    assert not set(rows) & {note.get_position()[1]}
    drawn_figures.clear()
    write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"), max_forest=40)
    assert list(drawn_figures["reliability_forest"].axes[0].texts) == []  # all shown: no note


def test_the_numbers_on_the_rater_types_agreement_map_contrast_with_their_cells(tmp_path, drawn_figures):
    # black on the darkest green of the map (every type agrees with itself: 1.00) was barely legible
    from matplotlib.colors import to_rgb

    table, _ = _small_table()
    write_report(tmp_path / "r", table, RaterTypes(n_types=2, max_steps=50).fit(table))
    agree = drawn_figures["rater_types"].axes[1]
    image = agree.images[0]
    for text in agree.texts:
        x, y = text.get_position()
        cell = np.mean(image.to_rgba(image.get_array()[int(round(y)), int(round(x))])[:3])
        ink = np.mean(to_rgb(text.get_color()))
        assert (cell > 0.4 or ink == 1.0) and (cell < 0.7 or ink == 0.0), text.get_text()  # dark: white; light: black


def test_the_genuine_disagreement_figure_draws_the_group_labels_that_rank_the_pairs(ukp_slice, tmp_path,
                                                                                     drawn_figures):
    # the pairs are ranked by the spread of the groups' labels, but the figure drew their preferences P(A > B): on
    # UKPConvArg1's top pairs, where one stance holds 'tie' and another 'B', every group sat near P(A) = 0.05
    from accord.aggregate.pluralistic import pluralistic_soft_labels

    context = ContextPreference(group="annotator_stance", reference_group="none", topic="item_debate",
                                covariates=None, inference="map", max_steps=400).fit(ukp_slice)
    out = write_report(tmp_path / "r", ukp_slice, context, top_n=8)
    held = pluralistic_soft_labels(context, target="label")
    top = pd.read_csv(out / "genuine_disagreement.csv", index_col=0).index[:8]
    axes = drawn_figures["genuine_disagreement"].axes
    assert [ax.get_xlabel() for ax in axes] == ["P(the group's label is A)", "P(the group's label is tie)"]
    rows = [t.get_text() for t in axes[0].get_yticklabels()]
    assert rows == [str(p) for p in top]
    for ax, side in zip(axes, ["a", "tie"]):
        for markers in ax.collections[:-1]:  # one per group, then the population
            expected = held.extra[f"p_{side}_{markers.get_label()}"].reindex(top).to_numpy()
            drawn = np.ma.getdata(markers.get_offsets())[:, 0]
            np.testing.assert_allclose(drawn, expected, err_msg=f"{side} {markers.get_label()}")


@pytest.mark.filterwarnings("ignore::accord.models.ConvergenceWarning")  # a short fit: its effects are what is drawn
def test_the_group_effects_figure_keeps_the_largest_effects_of_many_groups(tmp_path, drawn_figures):
    """A group column of many values (here every rater its own group) drew every effect: four rows per group, a
    figure that grew without bound. The figure and its table keep the max_forest largest; the CSV keeps all."""
    from accord.datasets import make_synthetic

    table = validate(make_synthetic(n_pairs=40, n_annotators=16, judgments_per_pair=4, seed=0).judgments)
    table = table.assign(rater_group=table["annotator"].astype(str))
    context = ContextPreference(group="rater_group", topic=None, covariates=None, inference="map", max_steps=60,
                                seed=0).fit(table)
    out = write_report(tmp_path / "r", table, context, max_forest=8)
    effects = pd.read_csv(out / "group_effects.csv")
    assert len(effects) > 8 and effects["group"].nunique() == 15  # every group but the reference, in the CSV
    axes = drawn_figures["group_effects"].axes[0]
    drawn = np.asarray(axes.containers[0][0].get_xdata(), dtype=float)  # the errorbar's points
    largest = np.sort(effects["mean"].abs().to_numpy())[-8:]
    assert len(axes.get_yticklabels()) == 8
    np.testing.assert_allclose(np.sort(np.abs(drawn)), largest, rtol=1e-6)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"8 largest of the {len(effects)} effects" in page


@settings(max_examples=80, deadline=None)
@given(judged=st.lists(st.tuples(st.sampled_from(["p1", "p2", "p3", "p4"]),
                                 st.sampled_from(["A", "B", "tie", "other", None])), max_size=30),
       shown=st.lists(st.sampled_from(["p1", "p2", "p3", "p5"]), unique=True),
       classes=st.sampled_from([["A", "B"], ["A", "B", "tie"], ["B", "tie", "A"]]))
def test_vote_counts_match_a_crosstab(judged, shown, classes):
    """The pairs table's vote counts, counted over codes, are pandas' crosstab of pair and label laid on the shown
    pairs and the model's classes (a label outside them, a missing label and an unshown pair count nowhere)."""
    pair_ids = pd.Series([p for p, _ in judged], dtype=object)
    labels = pd.Series([label for _, label in judged], dtype=object)
    pairs, columns = pd.Index(shown, dtype=object), pd.Index(classes, dtype=object)
    expected = pd.crosstab(pair_ids, labels).reindex(columns=columns, fill_value=0).reindex(pairs, fill_value=0)
    got = vote_counts(pair_ids, labels, pairs, columns)
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    assert got.index.equals(pairs) and got.columns.equals(columns)


def test_the_pairs_table_takes_each_pairs_texts_from_the_judgments_that_hold_them(tmp_path):
    # pairs.csv showed the texts of a pair's first judgment alone: a pair whose first judgment lacks its prompt or a
    # response (the others give it, and the cleaned dataset has it) was listed without it; chat messages were shown
    # as their Python repr
    from accord.aggregate import MajorityVote

    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ünïcode"}]
    table = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2", "p3"], "annotator": ["w1", "w2", "w1", "w2", "w1"],
                          "label": ["A", "A", "B", "A", "B"], "prompt": [None, None, None, "q2", "q3"],
                          "response_a": ["a1", "a1", None, "a2", chat],
                          "response_b": ["b1", "b1", "b2", "b2", chat[:1] + [{"role": "assistant", "content": "x"}]]})
    out = write_report(tmp_path / "r", table, MajorityVote().fit(table))
    pairs = pd.read_csv(out / "pairs.csv", index_col=0, keep_default_na=False)
    assert pairs.loc["p2", ["prompt", "response_a", "response_b"]].tolist() == ["q2", "a2", "b2"]
    assert pairs.loc["p1", ["prompt", "response_a", "response_b"]].tolist() == ["", "a1", "b1"]
    assert pairs.loc["p3", "response_a"] == "user: hi\nassistant: ünïcode"


@pytest.mark.parametrize("form", ["categorical", "graded"])
def test_rater_types_of_labels_without_sides_get_their_disagreement_section(form, tmp_path, drawn_figures):
    # rater types fit categorical and graded labels too, and the report then failed after the fit: the disagreement
    # section read P(A > B) of classes 'bird', 'cat', 'dog' (an AccordError) or drew a figure of no panels (grades:
    # matplotlib's ValueError). Each type's probability of the population's most likely label is shown instead
    rng = np.random.default_rng(0)
    classes = ["bird", "cat", "dog"] if form == "categorical" else [-2, -1, 0, 1, 2]
    truth = rng.choice(len(classes), size=30)
    rows = [{"pair_id": f"t{i}", "annotator": f"w{w}",
             "label": classes[t if rng.random() < 0.7 else rng.integers(len(classes))]}
            for i, t in enumerate(truth) for w in range(6)]
    table = validate(pd.DataFrame(rows), form=form, scale=2 if form == "graded" else None)
    model = RaterTypes(n_types=2, max_steps=50, num_samples=20).fit(table)
    out = write_report(tmp_path / "r", table, model)
    split = pd.read_csv(out / "genuine_disagreement.csv", index_col=0, dtype={"consensus": str})
    labels = pluralistic_soft_labels(model, "share")
    split = split.reindex(labels.probs.index)
    assert (split["consensus"] == labels.probs.idxmax(axis=1).astype(str)).all()
    assert np.allclose(split["p_consensus_population"], labels.probs.max(axis=1))
    for group in ("type1", "type2"):
        held = [labels.extra.loc[pair, f"p_{label.lower()}_{group}"] for pair, label in split["consensus"].items()]
        assert np.allclose(split[f"p_consensus_{group}"], held)
    assert "genuine_disagreement" in drawn_figures


@pytest.mark.parametrize("form", ["preference", "categorical"])
def test_two_rater_types_agree_on_a_pair_when_they_hold_the_same_label_most_likely(form, tmp_path, drawn_figures):
    # the agreement map compared whether each type's P(first class) exceeded 0.5: a type holding B and one holding
    # tie (or 'cat' and 'dog') were counted as agreeing
    rng = np.random.default_rng(1)
    classes = ["A", "B", "tie"] if form == "preference" else ["bird", "cat", "dog"]
    truth = rng.choice(3, size=40)
    # half the raters answer the truth, half the next class: the two types disagree on every pair, on no first class
    rows = [{"pair_id": f"t{i}", "annotator": f"w{w}",
             "label": classes[(t + (w % 2)) % 3 if rng.random() < 0.9 else rng.integers(3)]}
            for i, t in enumerate(truth) for w in range(8)]
    table = validate(pd.DataFrame(rows), form=form)
    model = RaterTypes(n_types=2, max_steps=50, num_samples=20).fit(table)
    write_report(tmp_path / "r", table, model)
    drawn = np.asarray(drawn_figures["rater_types"].axes[1].images[0].get_array())
    held = model.group_probabilities().mean_clean().argmax(axis=2)
    expected = [[(held[:, a] == held[:, b]).mean() for b in range(held.shape[1])] for a in range(held.shape[1])]
    assert np.allclose(drawn, expected)


def test_a_model_over_grades_and_one_over_sides_are_compared_on_sides(tmp_path):
    # graded judgments: the ordinal model's labels are sides (A / tie / B) and majority vote's are grades; a grade was
    # never the same label as a side, so the side-by-side said the two never agreed (0.0 on every pair)
    from accord.aggregate import MajorityVote
    from accord.models import OrdinalPreference

    rng = np.random.default_rng(0)
    truth = rng.integers(-2, 3, size=30)
    rows = [{"pair_id": f"t{i}", "annotator": f"w{w}", "label": int(np.clip(t + rng.integers(-1, 2), -2, 2))}
            for i, t in enumerate(truth) for w in range(5)]
    table = validate(pd.DataFrame(rows), scale=2)
    ordinal = OrdinalPreference(max_steps=100, num_samples=30).fit(table)
    majority = MajorityVote().fit(table)
    out = write_report(tmp_path / "r", table, ordinal, majority)
    agreement = pd.read_csv(out / "method_agreement.csv", index_col=0)
    grade = majority.soft_labels_.probs.idxmax(axis=1).reindex(ordinal.soft_labels_.probs.index).astype(int)
    side = np.select([grade < 0, grade > 0], ["A", "B"], "tie")
    expected = (ordinal.soft_labels_.probs.idxmax(axis=1).to_numpy() == side).mean()
    assert expected > 0.5
    assert agreement.loc["majority", ordinal.method] == pytest.approx(expected)
    methods = pd.read_csv(out / "methods.csv", index_col=0)
    assert methods.loc["majority", f"same label as {ordinal.method}"] == pytest.approx(expected)


@pytest.mark.filterwarnings("ignore::accord.models.ConvergenceWarning")  # a short fit: only its groups matter here
@pytest.mark.parametrize("name", ["population", "population!"])
def test_a_group_named_population_is_refused_naming_it_and_nothing_is_written(name, tmp_path):
    # genuine_disagreement.csv holds p_a_population (the population's P(A > B)) beside each group's p_a_<group>: a
    # group 'population' gave that name twice, and the report failed after the fits on pandas' "columns overlap"
    from accord.datasets import make_synthetic

    table = validate(make_synthetic(n_pairs=20, n_annotators=6, judgments_per_pair=3, seed=0).judgments)
    table = table.assign(rater_group=np.where(pd.factorize(table["annotator"])[0] % 2 == 0, name, "experts"))
    context = ContextPreference(group="rater_group", topic=None, covariates=None, inference="map", max_steps=10,
                                seed=0).fit(table)
    with pytest.raises(AccordError, match=f"group '{name}' gives the columns p_a_population and "
                                          "p_consensus_population of genuine_disagreement.csv"):
        write_report(tmp_path / "r", table, context)
    assert not (tmp_path / "r").exists() and list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def fitted_on_all() -> tuple[pd.DataFrame, list]:
    table, _ = _small_table(n_pairs=12, spammer_judgments=4)
    return table, _fit(table, "dawid-skene", "majority")


@settings(max_examples=25, deadline=None)
@given(left_out=st.sets(st.integers(0, 75), min_size=1, max_size=20), which=st.sampled_from([0, 1]))
def test_a_model_fitted_on_other_judgments_is_refused_and_nothing_is_written(fitted_on_all, left_out, which,
                                                                              tmp_path_factory):
    # a model fitted on the whole table and reported with part of it: the summary counted the judgments given
    # (60 of 76) while annotators.csv, pairs.csv and the flags were the model's, a report at odds with itself
    table, models = fitted_on_all
    part = validate(table.drop(index=sorted(left_out)).reset_index(drop=True))
    out = tmp_path_factory.mktemp("report") / "r"
    with pytest.raises(AccordError, match=f"{models[which].method} was fitted on other judgments"):
        write_report(out, part, models[which])
    assert not out.exists()


@pytest.mark.parametrize("weights", ["bogus", "Equal", 0.5, ["share"], {"g0": 1.0}, "equal"])
def test_weights_that_weigh_nothing_are_refused_and_nothing_is_written(weights, tmp_path):
    # without a context or rater-types model there are no groups to weigh: the weights (even 'bogus') were accepted
    # and ignored, and a report written as if they had been applied
    table, _ = _small_table(n_pairs=12, spammer_judgments=4)
    with pytest.raises(AccordError, match="weights"):
        write_report(tmp_path / "r", table, *_fit(table, "majority"), weights=weights)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("title", [5, None, b"report"])
def test_a_title_that_is_not_text_is_refused_and_nothing_is_written(title, tmp_path):
    # it reached html.escape after every figure was drawn: AttributeError "'int' object has no attribute 'replace'"
    table, _ = _small_table(n_pairs=12, spammer_judgments=4)
    with pytest.raises(AccordError, match="title must be text"):
        write_report(tmp_path / "r", table, *_fit(table, "majority"), title=title)
    assert not (tmp_path / "r").exists()


def test_the_report_says_how_graded_gold_is_scored_by_a_model_over_grades_and_one_over_sides(tmp_path):
    """Graded gold under a model over grades is scored as exact grades, gold 0 included; under the ordinal model as
    sides, gold 0 (a tie) left out. The contested-pairs section said "gold ties left out" of a model over grades and
    the methods section "0 gold ties" left out under it; now each scoring is said as it is."""
    rng = np.random.default_rng(0)
    rows = [(f"p{i}", f"w{j}", int(np.clip([-2, 0, 2][i % 3] + rng.integers(-1, 2), -2, 2)), [-2, 0, 2][i % 3])
            for i in range(21) for j in range(4)]
    table = validate(pd.DataFrame(rows, columns=["pair_id", "annotator", "label", "gold"]), form="graded", scale=2)
    out = write_report(tmp_path / "r", table, *_fit(table, "dawid-skene", "ordinal"))
    page = (out / "report.html").read_text(encoding="utf-8")
    pairs = pd.read_csv(out / "pairs.csv", index_col=0)
    assert (pairs["gold"] == 0).sum() == 7 and set(pairs["agrees with gold"]) <= {"yes", "no"}  # gold 0 scored
    assert "gold ties left out" not in page and "0 gold ties" not in page
    assert "Against the gold labels of 21 pairs (scored as exact grades, gold 0 included) the most likely label" in page
    assert ("(dawid-skene scores exact grades, gold 0 included; ordinal-preference scores sides, leaving out "
            "7 gold ties (gold 0))") in page
    page = (write_report(tmp_path / "o", table, *_fit(table, "ordinal")) / "report.html").read_text(encoding="utf-8")
    assert "Against the gold labels of 14 pairs (scored as sides, leaving out 7 gold ties (gold 0)) the most" in page


@pytest.mark.filterwarnings("ignore::accord.models.ConvergenceWarning")  # a short fit: only its point estimates matter
def test_a_model_without_reliability_intervals_is_not_reported_with_90_percent_intervals(tmp_path, drawn_figures):
    """Rater types are MAP point estimates (the README: "no rater intervals"): the page called its reliabilities
    "posterior mean and 90% credible interval" and the forest plot was titled "(90% interval)", drawn with bars of
    zero width."""
    table, _ = _small_table()
    model = RaterTypes(n_types=1, max_steps=50).fit(table)
    annotators = model.annotators_
    assert (annotators["reliability_upper"] == annotators["reliability_lower"]).all()  # the case this test is about
    out = write_report(tmp_path / "r", table, model)
    page = (out / "report.html").read_text(encoding="utf-8")
    start = page.index("Annotator reliability</h2>")
    section = page[start:page.index("<h2", start)]
    assert "90%" not in section and "no intervals" in section
    assert "90%" not in drawn_figures["reliability_forest"].axes[0].get_title()
    # a model with intervals keeps saying so
    drawn_figures.clear()
    out = write_report(tmp_path / "r2", table, *_fit(table, "dawid-skene"))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "90% credible interval of each annotator's reliability" in page
    assert "90% interval" in drawn_figures["reliability_forest"].axes[0].get_title()


def test_a_report_without_a_rater_model_says_why_it_has_no_rater_sections(tmp_path):
    """`accord report --methods majority` wrote a "rater report" with no word on raters: the reliability, confusion
    and flag sections were left out silently, and the page read as if they had been lost."""
    table, _ = _small_table()
    out = write_report(tmp_path / "r", table, *_fit(table, "majority", "vote-fraction"))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Annotator reliability</h2>" not in page and not (out / "annotators.csv").exists()
    start = page.index("Raters</h2>")
    note = page[start:page.index("</p>", start)]
    assert "majority" in note and "vote-fraction" in note and "dawid-skene" in note
    # with a rater model there is no such note
    page = (write_report(tmp_path / "r2", table, *_fit(table, "majority", "dawid-skene")) / "report.html").read_text(
        encoding="utf-8")
    assert "Raters</h2>" not in page


def _drawn_id(title: str) -> str:
    """The annotator id a confusion matrix's title draws ('least reliable: <id>\\nreliability 0.49')."""
    return title.split("\n")[0].split(": ", 1)[1]


def test_long_rater_ids_that_differ_at_their_end_stay_apart_in_the_confusion_titles(tmp_path, drawn_figures):
    # the titles cut every id to its first 18 characters without a mark: 'annotator_batch_07_rater_01' and '..._02'
    # were both drawn as 'annotator_batch_07', names found in no table
    table, _ = _small_table()
    names = {f"good{j}": f"annotator_batch_07_rater_{j:02d}" for j in range(6)}
    table = table.assign(annotator=table["annotator"].replace(names))
    write_report(tmp_path / "r", table, *_fit(table, "dawid-skene"))
    titles = [ax.get_title() for ax in drawn_figures["confusion_matrices"].axes if ax.get_title()]
    drawn = [_drawn_id(title) for title in titles]
    assert len(drawn) == 6 and len(set(drawn)) == 6, drawn
    for shown in drawn:
        if shown not in names.values() and shown != "spammer":  # cut: marked, and its start and end are the id's
            head, tail = shown.split("\u2026")
            assert any(name.startswith(head) and name.endswith(tail) for name in names.values()), shown


@pytest.mark.filterwarnings("ignore::accord.models.ConvergenceWarning")  # a short fit: only its ids matter
def test_long_pair_ids_that_differ_at_their_end_stay_apart_in_the_genuine_disagreement_figure(tmp_path,
                                                                                              drawn_figures):
    # the figure cut pair ids to their first 24 characters without a mark: 'conversation-2024-06-01-0007' and
    # '...-0012' were drawn as one name, 'conversation-2024-06-01-'
    rng = np.random.default_rng(1)
    truth = rng.choice(3, size=30)
    rows = [{"pair_id": f"conversation-2024-06-01-{i:04d}", "annotator": f"w{w}",
             "label": ["A", "B", "tie"][(t + (w % 2)) % 3 if rng.random() < 0.9 else rng.integers(3)]}
            for i, t in enumerate(truth) for w in range(8)]
    table = validate(pd.DataFrame(rows))
    model = RaterTypes(n_types=2, max_steps=50, num_samples=20).fit(table)
    write_report(tmp_path / "r", table, model, top_n=10)
    drawn = [t.get_text() for t in drawn_figures["genuine_disagreement"].axes[0].get_yticklabels()]
    assert len(drawn) == 10 and len(set(drawn)) == 10, drawn
    assert all("\u2026" in shown and shown.endswith(shown.split("\u2026")[1]) for shown in drawn)
