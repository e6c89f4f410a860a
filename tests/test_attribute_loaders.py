"""Loaders of per-aspect rating sets: HelpSteer2, MultiPref aspects, summarize-from-feedback axes, UKPConvArg2."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accord.datasets import (
    AccordError,
    ValidationError,
    load,
    load_helpsteer2_ratings,
    load_multipref_aspects,
    load_summarize_axis,
    load_summarize_from_feedback,
    load_ukpconvarg2,
)
from accord.datasets.loaders.ukp2 import REASONS
from tests.conftest import shared_data_or_skip

FIXTURES = Path(__file__).parent / "fixtures"
ATTR = FIXTURES / "attributes"
HS2_ATTRIBUTES = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


class TestHelpSteer2:
    def test_released_scores_are_one_published_rating_per_attribute(self) -> None:
        table = load_helpsteer2_ratings(ATTR / "helpsteer2_ratings.jsonl")
        assert table.attrs["accord"]["attributes"] == HS2_ATTRIBUTES
        assert table.attrs["accord"]["scales"] == {a: [0, 4] for a in HS2_ATTRIBUTES}
        assert len(table) == 15 and set(table["annotator"]) == {"published"}
        first = table[table["response_id"] == table["response_id"].iloc[0]]
        assert first["label"].tolist() == [3, 4, 4, 2, 1]

    def test_disagreements_are_one_row_per_annotator_and_attribute(self) -> None:
        table = load_helpsteer2_ratings(ATTR / "helpsteer2_disagreements.jsonl",
                                        published=ATTR / "helpsteer2_ratings.jsonl")
        assert len(table) == (3 + 2 + 4) * 5
        assert table["response_id"].nunique() == 3
        third = table[table["prompt"] == "Name three primary colours."]
        assert third["annotator"].nunique() == 4
        verbosity = third[third["attribute"] == "verbosity"]
        assert verbosity["label"].tolist() == [2, 2, 3, 2]
        assert verbosity["annotator"].str.endswith(("/1", "/2", "/3", "/4")).all()
        # the k-th annotator is the same pseudo-rater on every attribute of a response
        assert (third.groupby("annotator").size() == 5).all()
        assert verbosity["item_published"].tolist() == [2, 2, 2, 2]
        released = load_helpsteer2_ratings(ATTR / "helpsteer2_ratings.jsonl")
        assert set(table["response_id"]) == set(released["response_id"])

    def test_dataframe_and_parquet_inputs_match(self, tmp_path: Path) -> None:
        expected = load_helpsteer2_ratings(ATTR / "helpsteer2_disagreements.jsonl", attributes=["helpfulness"])
        raw = pd.read_json(ATTR / "helpsteer2_disagreements.jsonl", lines=True)
        pd.testing.assert_frame_equal(load_helpsteer2_ratings(raw, attributes=["helpfulness"]), expected)
        raw.to_parquet(tmp_path / "d.parquet")
        from_parquet = load_helpsteer2_ratings(tmp_path / "d.parquet", attributes=["helpfulness"])
        pd.testing.assert_frame_equal(from_parquet, expected, check_dtype=False)

    def test_off_scale_and_uneven_lists_name_row_and_attribute(self) -> None:
        raw = pd.read_json(ATTR / "helpsteer2_disagreements.jsonl", lines=True)
        raw.at[1, "coherence"] = [3, 5]
        with pytest.raises(ValidationError, match=r"column 'coherence', row 1: rating is not an integer on the "
                                                  r"scale 0..4 \(value: 5\)"):
            load_helpsteer2_ratings(raw)
        raw = pd.read_json(ATTR / "helpsteer2_disagreements.jsonl", lines=True)
        raw.at[2, "verbosity"] = [2, 2, 3]
        with pytest.raises(ValidationError, match="row 2: lists of ratings of different lengths"):
            load_helpsteer2_ratings(raw)
        with pytest.raises(ValidationError, match="column 'verbosity': missing column"):
            load_helpsteer2_ratings(raw.drop(columns="verbosity"))
        with pytest.raises(AccordError, match="attributes must be"):
            load_helpsteer2_ratings(raw, attributes=["honesty"])


class TestMultiPrefAspects:
    def test_every_annotation_gives_four_aspect_ratings(self) -> None:
        table = load_multipref_aspects(FIXTURES / "hub" / "multipref.jsonl")
        assert len(table) == 3 * 4 * 4
        assert table.attrs["accord"]["scales"] == {a: [-2, 2] for a in ["overall", "helpful", "truthful",
                                                                         "harmless"]}
        first = table[(table["pair_id"] == "c0a1") & (table["annotator"] == "jovial_shirley")]
        assert first[["attribute", "label"]].values.tolist() == [
            ["overall", -2], ["helpful", -2], ["truthful", 0], ["harmless", 0]]
        assert set(table["annotator_group"]) == {"normal", "expert"}
        assert (table["confidence"] == "fairly-confident").all()

    def test_empty_aspects_are_no_rating_and_confidence_is_per_aspect(self) -> None:
        raw = pd.read_json(FIXTURES / "hub" / "multipref.jsonl", lines=True)
        annotation = dict(raw.at[0, "normal_worker_annotations"][0])
        annotation["harmless_pref"] = None
        annotation["helpful_confidence"] = "absolutely-confident"
        raw.at[0, "normal_worker_annotations"] = [annotation, *raw.at[0, "normal_worker_annotations"][1:]]
        table = load_multipref_aspects(raw, groups=["normal"])
        mine = table[(table["pair_id"] == "c0a1") & (table["annotator"] == "jovial_shirley")]
        assert mine["attribute"].tolist() == ["overall", "helpful", "truthful"]
        assert mine.set_index("attribute").loc["helpful", "confidence"] == "absolutely-confident"
        assert set(table["annotator_group"]) == {"normal"}

    def test_unknown_value_names_column_and_row(self) -> None:
        raw = pd.read_json(FIXTURES / "hub" / "multipref.jsonl", lines=True)
        annotation = dict(raw.at[2, "expert_worker_annotations"][0])
        annotation["truthful_pref"] = "A-is-much-better"
        raw.at[2, "expert_worker_annotations"] = [annotation]
        with pytest.raises(ValidationError, match="column 'truthful_pref', row 2: value is not one of"):
            load_multipref_aspects(raw)


class TestSummarizeAxis:
    def test_axes_on_1_to_7_with_empty_axes_dropped(self) -> None:
        table = load_summarize_axis(ATTR / "summarize_axis.jsonl")
        assert len(table) == 4 * 4 - 1
        assert table.attrs["accord"]["scales"] == {a: [1, 7] for a in ["overall", "accuracy", "coverage",
                                                                       "coherence"]}
        beta = table[table["annotator"] == "w_beta"]
        assert beta["attribute"].tolist() == ["overall", "accuracy", "coherence"]
        news = table[table["item_post_id"] == "dm-0001"]
        assert news["prompt"].iloc[0].startswith("A storm hit the coast")

    def test_summaries_share_their_ids_with_the_comparisons(self) -> None:
        axis = load_summarize_axis(ATTR / "summarize_axis.jsonl")
        comparisons = load_summarize_from_feedback(FIXTURES / "hub" / "summarize_comparisons.jsonl")
        texts = dict(zip(comparisons["response_a_id"], comparisons["response_a"])) | dict(
            zip(comparisons["response_b_id"], comparisons["response_b"]))
        for response_id, text in zip(axis["response_id"], axis["response"]):
            assert texts[response_id] == text

    def test_off_scale_rating(self) -> None:
        raw = pd.read_json(ATTR / "summarize_axis.jsonl", lines=True)
        raw.at[3, "summary"] = {**raw.at[3, "summary"], "axes": {"overall": 8, "accuracy": 7}}
        with pytest.raises(ValidationError, match="column 'overall', row 3: rating is not an integer on the scale "
                                                  "1..7"):
            load_summarize_axis(raw)


class TestUKPConvArg2:
    def test_fixture_sides_as_the_workers_saw_them(self) -> None:
        table = load_ukpconvarg2(FIXTURES / "ukp2")
        assert table.attrs["accord"]["attributes"] == ["convincing", "o5", "o6", "o7", "o8", "o9"]
        wide = table.pivot(index="pair_id", columns="attribute", values="label")
        assert wide["convincing"].to_dict() == {"x1_x2": 1, "x1_x3": -1, "x2_x3": -1}
        assert wide.loc["x1_x3", ["o5", "o6", "o7", "o8", "o9"]].tolist() == [1, 0, 1, 0, 0]
        pairs = table.drop_duplicates("pair_id").set_index("pair_id")
        assert pairs.loc["x1_x2", "response_a"] == "First argument text."
        assert pairs.loc["x1_x2", "response_b"] == "Second argument, with facts.\nAnd a second line."
        assert pairs["response_a_id"].tolist() == ["x1", "x1", "x2"]
        assert pairs["prompt"].iloc[0] == "Mini debate"

    def test_convincing_first_and_per_reason(self) -> None:
        table = load_ukpconvarg2(FIXTURES / "ukp2", sides="convincing_first", attributes="reason")
        assert table.attrs["accord"]["attributes"] == ["convincing", *REASONS]
        assert (table.loc[table["attribute"] == "convincing", "label"] == -1).all()
        given = table[(table["label"] == 1) & (table["attribute"] != "convincing")]
        assert sorted(given["attribute"]) == sorted(["o8_1", "o9_1", "o5_2", "o7_1", "o8_4", "o6_3"])
        first = table[table["pair_id"] == "x1_x2"].drop_duplicates("pair_id")
        assert first["response_a_id"].iloc[0] == "x2"

    def test_reasons_without_the_preference_keep_which_side_they_are_about(self) -> None:
        """The reasons say why the more convincing argument wins. ``preference=False`` with the default
        ``sides="original"`` (A as the workers saw it, the loser in some pairs) dropped the only record of which side
        wins, so the reasons could no longer be tied to a side (a pair property predicted from A's reward minus B's
        was of the winner's in some pairs and the loser's in others), without a word. Now that combination is one
        error naming both settings; with ``sides="convincing_first"`` (A always wins) the reasons load alone."""
        with pytest.raises(AccordError, match="preference=False.*sides='original'.*convincing_first") as caught:
            load_ukpconvarg2(FIXTURES / "ukp2", preference=False)
        assert "\n" not in str(caught.value)
        table = load_ukpconvarg2(FIXTURES / "ukp2", preference=False, sides="convincing_first")
        assert table.attrs["accord"]["attributes"] == ["o5", "o6", "o7", "o8", "o9"]

    def test_unknown_reason_names_the_file_and_row(self, tmp_path: Path) -> None:
        bad = tmp_path / "debate_side.xml.csv"
        bad.write_text("x1_x2\to8_1\tone\ttwo\nx1_x3\to4_1\tone\tthree\n")
        with pytest.raises(ValidationError, match=f"file {bad}, column 'reasons', row 1: unknown reason label"):
            load_ukpconvarg2(bad)
        with pytest.raises(AccordError, match="no \\*.xml.csv files"):
            load_ukpconvarg2(tmp_path / "..")

    def test_repeated_pair_id_names_the_file_and_row_it_repeats_in(self, tmp_path: Path) -> None:
        (tmp_path / "debate_no.xml.csv").write_text("x1_x2\to8_1\tone\ttwo\nx3_x4\to5_1\tthree\tfour\n")
        second = tmp_path / "debate_yes.xml.csv"
        second.write_text("x5_x6\to9_1\tfive\tsix\nx1_x2\to8_1\tone\ttwo\n")
        # the files are read in name order; the repeat is row 1 of debate_yes (it was "row 3" of the folder)
        with pytest.raises(ValidationError, match=f"file {second}, column 'pair_id', row 1: pair id appears twice"):
            load_ukpconvarg2(tmp_path)

    def test_shared_copy_counts_and_the_strict_labels(self) -> None:
        folder = shared_data_or_skip("ukp-convarg2")
        table = load_ukpconvarg2(folder, attributes="reason")
        assert table["pair_id"].nunique() == 9_111
        assert table["item_debate"].nunique() == 32
        given = table[(table["attribute"] != "convincing") & (table["label"] == 1)]
        assert len(given) == 15_696
        assert given["attribute"].value_counts()["o8_1"] == 5_668
        convincing = table[table["attribute"] == "convincing"].set_index("pair_id")["label"]
        assert (convincing == -1).sum() == 4_592
        strict_folder = folder.parent / "ukp-convarg1" / "UKPConvArg1Strict-CSV"
        if strict_folder.is_dir():  # the recovered sides reproduce every UKPConvArg1Strict label
            strict = {}
            for file in strict_folder.glob("*.csv"):
                with open(file, newline="") as handle:
                    for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                        strict[row[0]] = row[1]
            expected = convincing.index.map(lambda p: -1 if strict[p] == "a1" else 1)
            assert np.array_equal(convincing.to_numpy(), np.asarray(expected))
            debates = {f.stem for f in strict_folder.glob("*.csv")}
            assert set(table["item_debate"]) == debates
        groups = load("ukpconvarg2")
        assert groups.attrs["accord"]["attributes"] == ["convincing", "o5", "o6", "o7", "o8", "o9"]
        assert len(groups) == 9_111 * 6


def _multipref_without_harmless() -> pd.DataFrame:
    raw = pd.read_json(FIXTURES / "hub" / "multipref.jsonl", lines=True)
    for column in ("normal_worker_annotations", "expert_worker_annotations"):
        raw[column] = raw[column].map(lambda annotations: [{**a, "harmless_pref": None} for a in annotations])
    return raw


def _helpsteer2_lists_without_verbosity() -> pd.DataFrame:
    raw = pd.read_json(ATTR / "helpsteer2_disagreements.jsonl", lines=True)
    return raw.assign(verbosity=raw["verbosity"].map(lambda ratings: [None] * len(ratings)))


@pytest.mark.parametrize(("load", "unrated"), [
    (lambda: load_helpsteer2_ratings(pd.read_json(ATTR / "helpsteer2_ratings.jsonl", lines=True).assign(
        verbosity=np.nan)), "verbosity"),
    (lambda: load_helpsteer2_ratings(_helpsteer2_lists_without_verbosity()), "verbosity"),
    (lambda: load_multipref_aspects(_multipref_without_harmless()), "harmless"),
    (lambda: load_summarize_axis(pd.read_json(ATTR / "summarize_axis.jsonl", lines=True).assign(
        summary=lambda raw: raw["summary"].map(lambda s: {**s, "axes": {**s["axes"], "coverage": None}}))),
     "coverage"),
], ids=["helpsteer2 released", "helpsteer2 lists", "multipref", "summarize axes"])
def test_an_attribute_every_rater_skipped_is_named_in_a_warning(load, unrated) -> None:
    """An attribute asked for (by default, or by name) whose every rating is missing was left out of the table without
    a word: the cleaned dataset and the reward model then lacked it, and `accord combine --weights verbosity=...`
    said only that the model has no such attribute. Now the loader warns, naming it; the others load as before."""
    with pytest.warns(UserWarning, match=f"no rating of the attribute '{unrated}'.*left out"):
        table = load()
    assert unrated not in table.attrs["accord"]["attributes"] and len(table.attrs["accord"]["attributes"]) >= 3
