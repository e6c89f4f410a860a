"""Tests of the dataset loaders: published counts on the real files, every bad-input path of read_judgments, the
Hugging Face Hub schemas (hand-made fixtures), and the registry (never touching the network)."""

from __future__ import annotations

import codecs
import gzip
import json
import re
import shutil
import urllib.error
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.loaders import (
    describe,
    fetch,
    list_datasets,
    load,
    load_helpsteer2_preference,
    load_helpsteer3_preference,
    load_multipref,
    load_pandalm,
    load_snow2008,
    load_summarize_from_feedback,
    load_ukpconvarg1,
    load_vldb17,
    read_judgments,
    read_table,
)
from accord.datasets.loaders import registry
from accord.datasets.loaders.ukp import DEBATE_TITLES
from conftest import SHARED_DATA, shared_data_or_skip

# The real downloader, kept before the autouse fixture below replaces it; used only with file:// URLs.
REAL_DOWNLOAD = registry._download
FIXTURES = Path(__file__).parent / "fixtures"
HUB = FIXTURES / "hub"
UKP_MINI_XML = FIXTURES / "ukp" / "mini-debate_side-a.xml"
UKP_MINI_CSV = FIXTURES / "ukp" / "mini-debate_side-a.csv"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may download: the downloader fails loudly, and the cache and data dir point into tmp_path."""

    def refuse(url: str, destination: Path, timeout: float = 60.0) -> None:
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(registry, "_download", refuse)
    monkeypatch.setenv("ACCORD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ACCORD_DATA_DIR", raising=False)


def assert_one_line(error: BaseException, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# -- real data, parsed once per session ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ukp_full() -> pd.DataFrame:
    return load_ukpconvarg1(shared_data_or_skip("ukp-convarg1"))


@pytest.fixture(scope="module")
def ukp_strict() -> pd.DataFrame:
    return load_ukpconvarg1(shared_data_or_skip("ukp-convarg1"), variant="strict")


@pytest.fixture(scope="module")
def pandalm_table() -> pd.DataFrame:
    folder = shared_data_or_skip("pandalm")
    with pytest.warns(UserWarning, match="dropped 25 of 999 verdicts of gpt-3.5-turbo"):  # its "garbage" verdicts
        return load_pandalm(folder)


class TestUKPConvArg1:
    def test_full_corpus_has_the_published_counts(self, ukp_full: pd.DataFrame) -> None:
        assert ukp_full["pair_id"].nunique() == 16_927
        assert len(ukp_full) == 84_445
        assert ukp_full["annotator"].nunique() == 3_815
        assert ukp_full["label"].value_counts().to_dict() == {"A": 32_849, "B": 32_491, "tie": 19_105}
        assert ukp_full["item_debate"].nunique() == 32
        assert ukp_full["item_topic"].nunique() == 16
        assert ukp_full.attrs["accord"]["form"] == "preference"

    def test_gold_is_the_corpus_goldlabel_and_missing_for_846_pairs(self, ukp_full: pd.DataFrame) -> None:
        per_pair = ukp_full.groupby("pair_id")["gold"].agg(["first", "nunique"])
        assert per_pair["first"].notna().sum() == 16_081  # the readme's "16,081 pairs"
        assert per_pair["first"].isna().sum() == 846
        assert (per_pair["nunique"] <= 1).all()
        assert set(per_pair["first"].dropna()) == {"A", "B", "tie"}

    def test_no_worker_judged_a_pair_twice_and_pairs_have_4_or_5_judgments(self, ukp_full: pd.DataFrame) -> None:
        assert not ukp_full.duplicated(["pair_id", "annotator"]).any()
        sizes = ukp_full.groupby("pair_id").size().value_counts().to_dict()
        assert sizes == {5: 16_737, 4: 190}

    def test_fields_of_the_readme_example_pair(self, ukp_full: pd.DataFrame) -> None:
        pair = ukp_full[ukp_full["pair_id"] == "803_794"]
        first = pair[pair["annotator"] == "A365TVEXXLHT2U"].iloc[0]
        assert first["label"] == "B" and first["gold"] == "B"
        assert first["prompt"] == "Evolution vs. Creation"
        assert (first["response_a_id"], first["response_b_id"]) == ("803", "794")
        assert first["response_a"].startswith("I have to contradict phro")
        assert first["item_debate"] == "evolution-vs-creation_evolution"
        assert first["item_topic"] == "evolution-vs-creation"
        assert first["annotator_stance"] == "none"
        assert first["annotator_competence"] == pytest.approx(0.9971903929844271)
        assert first["annotator_rank"] == 432
        assert first["accept_time"] == pd.Timestamp("2016-02-22 21:40:51", tz="UTC")
        assert first["reason"].startswith("A2 provides a more in depth explanation")
        assert pair.set_index("annotator").loc["A1LNZS1KNSREZB", "label"] == "tie"

    def test_worker_covariates_are_complete_and_in_range(self, ukp_full: pd.DataFrame) -> None:
        assert ukp_full["accept_time"].notna().all() and ukp_full["submit_time"].notna().all()
        assert ukp_full["annotator_competence"].between(0, 1).all()
        assert set(ukp_full["annotator_stance"].dropna()) == {"same", "opposite", "none"}
        assert ukp_full["annotator_stance"].isna().sum() == 84_445 - 43_906
        # MACE competence is a property of the worker, so it must not vary across a worker's judgments.
        assert (ukp_full.groupby("annotator")["annotator_competence"].nunique() == 1).all()

    def test_strict_variant_is_one_gold_judgment_per_pair(self, ukp_strict: pd.DataFrame) -> None:
        assert len(ukp_strict) == ukp_strict["pair_id"].nunique() == 11_650
        assert set(ukp_strict["annotator"]) == {"gold"}
        assert (ukp_strict["label"] == ukp_strict["gold"]).all()
        assert ukp_strict["label"].value_counts().to_dict() == {"A": 5_872, "B": 5_778}
        assert set(ukp_strict["prompt"]) == set(DEBATE_TITLES.values())
        assert not ukp_strict["response_a"].str.contains("<br/>", regex=False).any()
        assert ukp_strict["response_a"].str.contains("\n", regex=False).any()

    def test_strict_pairs_are_full_pairs_and_their_labels_mostly_agree(
        self, ukp_full: pd.DataFrame, ukp_strict: pd.DataFrame
    ) -> None:
        full_gold = ukp_full.groupby("pair_id")["gold"].first()
        assert ukp_strict["pair_id"].isin(full_gold.index).all()
        compared = ukp_strict.set_index("pair_id")["label"].to_frame().join(full_gold)
        assert compared["gold"].isna().sum() == 1
        known = compared.dropna()
        assert (known["label"] != known["gold"]).sum() == 8

    def test_mini_xml_parses_every_field(self) -> None:
        table = load_ukpconvarg1(UKP_MINI_XML)
        assert table[["pair_id", "annotator", "label"]].values.tolist() == [
            ["10_11", "W1", "A"], ["10_11", "W2", "B"], ["12_10", "W1", "tie"], ["12_10", "W3", "B"],
        ]
        assert table["gold"].tolist()[:2] == ["A", "A"] and table["gold"].iloc[2:].isna().all()
        assert table["response_a"].iloc[0] == "Argument ten, with evidence.\nAnd a second line."
        assert pd.isna(table["annotator_stance"].iloc[2]) and table["annotator_stance"].iloc[0] == "same"
        assert table["comment"].iloc[0] == "nice task" and table["comment"].iloc[1:].isna().all()
        assert table["item_debate"].iloc[0] == "mini-debate_side-a" and table["item_topic"].iloc[0] == "mini-debate"

    def test_repeated_worker_on_a_pair_is_refused_unless_a_policy_is_given(self, tmp_path: Path) -> None:
        file = tmp_path / "mini-debate_side-a.xml"
        file.write_text(UKP_MINI_XML.read_text().replace("<turkID>W3</turkID>", "<turkID>W1</turkID>"))
        with pytest.raises(ValidationError) as excinfo:
            load_ukpconvarg1(file)
        assert_one_line(excinfo.value, str(file), "more than once")
        kept = load_ukpconvarg1(file, duplicates="first")
        assert len(kept) == 3
        assert kept.set_index(["pair_id", "annotator"]).loc[("12_10", "W1"), "label"] == "tie"

    def test_truncated_xml_names_the_file(self, tmp_path: Path) -> None:
        file = tmp_path / "cut_side.xml"
        text = UKP_MINI_XML.read_text()
        file.write_text(text[: len(text) // 2])
        with pytest.raises(ValidationError) as excinfo:
            load_ukpconvarg1(file)
        assert_one_line(excinfo.value, str(file), "not well-formed XML")
        assert excinfo.value.__cause__ is None

    def test_strict_csv_decodes_line_breaks_and_keeps_quotes(self) -> None:
        table = load_ukpconvarg1(UKP_MINI_CSV, variant="strict")
        assert table["response_a"].iloc[0] == "Argument ten, with evidence.\nAnd a second line."
        assert table["response_b"].iloc[1] == 'Argument ten, with "evidence".'
        assert table[["response_a_id", "response_b_id"]].values.tolist() == [["10", "11"], ["12", "10"]]
        assert table["prompt"].iloc[0] == "Mini debate"  # not in the title table: made from the file name

    def test_unknown_variant_and_empty_folder(self, tmp_path: Path) -> None:
        with pytest.raises(AccordError, match="variant"):
            load_ukpconvarg1(UKP_MINI_XML, variant="cleaned")  # type: ignore[arg-type]
        with pytest.raises(AccordError, match="no .xml files"):
            load_ukpconvarg1(tmp_path)


class TestPandaLM:
    def test_counts_with_and_without_ai_judges(self, pandalm_table: pd.DataFrame) -> None:
        assert pandalm_table["pair_id"].nunique() == 999
        per_rater = pandalm_table.groupby("annotator").size().to_dict()
        # gpt-3.5-turbo gave 25 "garbage" verdicts, which are not judgments.
        assert per_rater == {"annotator1": 999, "annotator2": 999, "annotator3": 999, "gpt-3.5-turbo": 974,
                             "pandalm-7b": 999}
        humans = load_pandalm(shared_data_or_skip("pandalm"), include_ai_judges=False)
        assert len(humans) == 2_997 and not humans["annotator_is_ai"].any()
        assert set(humans["annotator_kind"]) == {"human"}

    def test_labels_map_0_tie_1_a_2_b(self, pandalm_table: pd.DataFrame) -> None:
        humans = pandalm_table[~pandalm_table["annotator_is_ai"]]
        assert humans["label"].value_counts().to_dict() == {"B": 475 + 466 + 475, "A": 427 + 417 + 411,
                                                            "tie": 97 + 116 + 113}
        first = pandalm_table[pandalm_table["pair_id"] == 0].set_index("annotator")["label"].to_dict()
        assert first == {"annotator1": "B", "annotator2": "B", "annotator3": "B", "gpt-3.5-turbo": "A",
                         "pandalm-7b": "B"}
        gpt = pandalm_table[pandalm_table["annotator"] == "gpt-3.5-turbo"]
        assert (gpt["label"] == "tie").sum() == 38  # the "Tie" strings

    def test_ai_flags_prompt_and_models(self, pandalm_table: pd.DataFrame) -> None:
        is_ai = pandalm_table["annotator"].isin(["gpt-3.5-turbo", "pandalm-7b"])
        assert (pandalm_table["annotator_is_ai"] == is_ai).all()
        assert (pandalm_table.loc[is_ai, "annotator_kind"] == "ai").all()
        assert pandalm_table.loc[is_ai, "reason"].notna().all()
        row = pandalm_table.iloc[0]
        assert row["prompt"].startswith("The sentence you are given might be too wordy")
        assert row["prompt"].endswith("please let me know.") and "\n\n" in row["prompt"]
        assert (row["item_model_a"], row["item_model_b"]) == ("bloom-7b", "llama-7b")
        assert row["response_a"] == "If you have any questions about my rate, please let me know."


    def test_bad_verdict_names_its_file_row_and_column(self, tmp_path: Path) -> None:
        items = [{"idx": i, "instruction": "q", "input": "", "response1": "a", "response2": "b",
                  "annotator1": 1, "annotator2": 2, "annotator3": 0} for i in range(4)]
        items[2]["annotator2"] = 5
        (tmp_path / "testset-v1.json").write_text(json.dumps(items), encoding="utf-8")
        # the item's row in the file, not its place among the 12 judgments (row 6 was reported)
        with pytest.raises(AccordError, match=r"testset-v1\.json, column 'annotator2', row 2: .*value: 5\)"):
            load_pandalm(tmp_path, include_ai_judges=False)
        items[2]["annotator2"] = 2
        (tmp_path / "testset-v1.json").write_text(json.dumps(items), encoding="utf-8")
        judged = [{"idx": i, "pandalm_result": 1} for i in range(4)]
        judged[3]["pandalm_result"] = "maybe"
        (tmp_path / "pandalm-7b-testset-v1.json").write_text(json.dumps(judged), encoding="utf-8")
        (tmp_path / "gpt-3.5-turbo-testset-v1.json").write_text(
            json.dumps([{"idx": i, "gpt_result": "Tie"} for i in range(4)]), encoding="utf-8")
        with pytest.raises(AccordError, match=r"pandalm-7b-testset-v1\.json, column 'pandalm_result', row 3"):
            load_pandalm(tmp_path)


    def test_ai_judge_file_with_a_repeated_item_names_the_file_and_row(self, tmp_path: Path) -> None:
        items = [{"idx": i, "instruction": "q", "input": "", "response1": f"a{i}", "response2": "b",
                  "annotator1": 1, "annotator2": 2, "annotator3": 0} for i in range(3)]
        (tmp_path / "testset-v1.json").write_text(json.dumps(items), encoding="utf-8")
        (tmp_path / "gpt-3.5-turbo-testset-v1.json").write_text(
            json.dumps([{"idx": i, "gpt_result": "1"} for i in range(3)]), encoding="utf-8")
        judged = tmp_path / "pandalm-7b-testset-v1.json"
        judged.write_text(json.dumps([{"idx": i, "pandalm_result": 1} for i in (0, 1, 1)]), encoding="utf-8")
        # was "file <folder>, column 'annotator', row 10" (a row of the merged judgments)
        with pytest.raises(ValidationError, match=f"file {judged}, column 'idx', row 2: repeated item"):
            load_pandalm(tmp_path)


    def test_non_verdicts_left_out_are_counted_in_a_warning(self, tmp_path: Path) -> None:
        items = [{"idx": i, "instruction": "q", "input": "", "response1": f"a{i}", "response2": "b",
                  "annotator1": 1, "annotator2": 2, "annotator3": 0} for i in range(4)]
        (tmp_path / "testset-v1.json").write_text(json.dumps(items), encoding="utf-8")
        gpt = tmp_path / "gpt-3.5-turbo-testset-v1.json"
        gpt.write_text(json.dumps([{"idx": i, "gpt_result": "garbage" if i % 2 else "1"} for i in range(4)]),
                       encoding="utf-8")
        (tmp_path / "pandalm-7b-testset-v1.json").write_text(
            json.dumps([{"idx": i, "pandalm_result": 1} for i in range(4)]), encoding="utf-8")
        # the judge's two unparseable verdicts were dropped without a word (14 of 16 judgments returned)
        with pytest.warns(UserWarning, match=rf"{re.escape(str(gpt))}: dropped 2 of 4 verdicts of gpt-3\.5-turbo"):
            table = load_pandalm(tmp_path)
        assert (table["annotator"] == "gpt-3.5-turbo").sum() == 2
        with warnings.catch_warnings():  # nothing left out, nothing said
            warnings.simplefilter("error")
            load_pandalm(tmp_path, include_ai_judges=False)


class TestSnowAndVLDB:
    @pytest.mark.parametrize(
        ("name", "items", "workers", "labels", "classes"),
        [("rte", 800, 164, 8_000, [0, 1]), ("temp", 462, 76, 4_620, [1, 2]), ("wsd", 177, 34, 1_770, [1, 2, 3])],
    )
    def test_snow2008_counts(self, name: str, items: int, workers: int, labels: int, classes: list[int]) -> None:
        table = load_snow2008(name, shared_data_or_skip("snow2008"))
        assert (table["pair_id"].nunique(), table["annotator"].nunique(), len(table)) == (items, workers, labels)
        assert table.attrs["accord"] == {"form": "categorical", "scale": None, "classes": classes}
        assert set(table["label"]) <= set(classes) and set(table["gold"]) <= set(classes)
        assert (table.groupby("pair_id")["gold"].nunique() == 1).all()

    def test_snow2008_item_with_two_gold_labels_is_refused(self, tmp_path: Path) -> None:
        header = "!amt_annotation_ids\t!amt_worker_ids\torig_id\tresponse\tgold\n"
        file = tmp_path / "rte.standardized.tsv"
        file.write_text(header + "h1\tw1\t1\t1\t1\nh1\tw2\t2\t0\t0\nh2\tw2\t1\t1\t0\n", encoding="utf-8")
        # the expert label is repeated on every row of an item; a copy where two rows disagree had its first
        # gold kept without a word
        with pytest.raises(ValidationError, match=r"column 'gold', row 2: item has two gold labels"):
            load_snow2008("rte", tmp_path)

    @pytest.mark.parametrize(
        ("name", "items", "workers", "answers"),
        [("d_jn-product", 8_315, 176, 24_945), ("sentiment", 1_000, 85, 20_000), ("duck", 108, 39, 4_212)],
    )
    def test_vldb17_counts(self, name: str, items: int, workers: int, answers: int) -> None:
        table = load_vldb17(name, shared_data_or_skip("vldb17"))
        assert (table["pair_id"].nunique(), table["annotator"].nunique(), len(table)) == (items, workers, answers)
        assert table["gold"].notna().all() and set(table["label"]) == {0, 1}

    def test_vldb17_aliases_name_the_same_set(self) -> None:
        folder = shared_data_or_skip("vldb17")
        by_alias = load_vldb17("product", folder)
        pd.testing.assert_frame_equal(by_alias, load_vldb17("d_jn-product", folder))
        pd.testing.assert_frame_equal(load_vldb17("duck", folder / "d_Duck Identification"),
                                      load_vldb17("d_Duck Identification", folder))

    def test_unknown_names(self) -> None:
        with pytest.raises(AccordError, match="unknown VLDB 2017 set"):
            load_vldb17("birds", SHARED_DATA / "vldb17")
        with pytest.raises(AccordError, match="unknown Snow 2008 set"):
            load_snow2008("ner", SHARED_DATA / "snow2008")


# -- read_judgments ---------------------------------------------------------------------------------------------


GOOD = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2"], "annotator": ["w1", "w2", "w1", "w3"],
                     "label": ["A", "B", "tie", "A"]})


class TestReadJudgments:
    @pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet", ".csv.gz", ".jsonl.gz"])
    def test_every_format_reads_back_the_same_table(self, tmp_path: Path, suffix: str) -> None:
        file = tmp_path / f"judgments{suffix}"
        if suffix.startswith(".csv"):
            GOOD.to_csv(file, index=False)
        elif suffix == ".tsv":
            GOOD.to_csv(file, sep="\t", index=False)
        elif suffix.startswith(".jsonl"):
            GOOD.to_json(file, orient="records", lines=True)
        elif suffix == ".json":
            GOOD.to_json(file, orient="records")
        else:
            GOOD.to_parquet(file)
        table = read_judgments(file)
        assert table[["pair_id", "annotator", "label"]].astype(str).values.tolist() == GOOD.values.tolist()
        assert table.attrs["accord"]["form"] == "preference"

    def test_columns_are_renamed_and_ids_stay_text(self, tmp_path: Path) -> None:
        file = tmp_path / "ratings.csv"
        file.write_text("item,rater,choice\n007,1,A\n007,2,B\n010,1,tie\n")
        table = read_judgments(file, columns={"item": "pair_id", "rater": "annotator", "choice": "label"})
        assert table["pair_id"].tolist() == ["007", "007", "010"]
        assert table["annotator"].tolist() == ["1", "2", "1"]

    def test_response_and_prompt_ids_of_per_attribute_ratings_stay_text(self, tmp_path: Path) -> None:
        # only pair_id and annotator were read as text: the responses "001" and "01" became the one response 1 (its
        # ratings pooled), and the prompts "01" and "1" one prompt
        file = tmp_path / "ratings.csv"
        file.write_text("response_id,annotator,attribute,label,scale_min,scale_max,prompt_id\n"
                        "001,a,help,1,0,4,01\n01,b,help,3,0,4,1\n")
        table = read_judgments(file)
        assert table["response_id"].tolist() == ["001", "01"] and table["prompt_id"].tolist() == ["01", "1"]

    def test_fixture_with_quoted_commas(self) -> None:
        table = read_judgments(FIXTURES / "judgments" / "preferences.csv")
        assert table["prompt"].iloc[0] == "Which, is better?" and len(table) == 4

    def test_graded_labels_on_a_declared_scale(self, tmp_path: Path) -> None:
        file = tmp_path / "graded.csv"
        file.write_text("pair_id,annotator,label\np1,w1,-3\np1,w2,2\n")
        table = read_judgments(file, scale=3)
        assert table.attrs["accord"] == {"form": "graded", "scale": 3}
        assert table["label"].tolist() == [-3, 2]

    def test_encoding_can_be_passed_through(self, tmp_path: Path) -> None:
        file = tmp_path / "latin1.csv"
        file.write_bytes("pair_id,annotator,label\np1,Jos\u00e9,A\n".encode("latin-1"))
        assert read_judgments(file, encoding="latin-1")["annotator"].iloc[0] == "Jos\u00e9"

    @pytest.mark.parametrize("name", ["bom.csv", "bom.tsv", "bom.jsonl", "bom.json", "bom.jsonl.gz"])
    @pytest.mark.parametrize("encoding", [None, "utf-8", "UTF8"])
    def test_a_utf8_byte_order_mark_is_skipped(self, tmp_path: Path, name: str, encoding: str | None) -> None:
        # Excel's "CSV UTF-8" and Windows tools write one: JSON files were refused ("Unexpected UTF-8 BOM")
        text = {"csv": GOOD.to_csv(index=False), "tsv": GOOD.to_csv(index=False, sep="\t"),
                "jsonl": GOOD.to_json(orient="records", lines=True), "json": GOOD.to_json(orient="records")}
        data = "\ufeff".encode() + text[name.split(".")[1]].encode()
        file = tmp_path / name
        file.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        kwargs = {} if encoding is None else {"encoding": encoding}
        pd.testing.assert_frame_equal(read_table(file, **kwargs), GOOD, check_dtype=False)

    @staticmethod
    def _write_case(tmp_path: Path, case: str) -> tuple[Path, dict]:
        """A file broken in the way ``case`` names, and the read_judgments keywords for it."""
        kwargs: dict = {}
        if case == "truncated parquet":
            file = tmp_path / "cut.parquet"
            GOOD.to_parquet(file)
            data = file.read_bytes()
            file.write_bytes(data[: len(data) // 2])
        elif case == "truncated jsonl":
            file = tmp_path / "cut.jsonl"
            text = GOOD.to_json(orient="records", lines=True)
            file.write_text(text[: len(text) - 12])
        elif case == "truncated gzip":
            file = tmp_path / "cut.csv.gz"
            file.write_bytes(gzip.compress(GOOD.to_csv(index=False).encode())[:25])
        elif case == "wrong encoding csv":
            file = tmp_path / "latin1.csv"
            file.write_bytes("pair_id,annotator,label\np1,w1,A\np1,Ren\u00e9e,B\n".encode("latin-1"))
        elif case == "wrong encoding jsonl":
            file = tmp_path / "latin1.jsonl"
            file.write_bytes('{"pair_id": "p1", "annotator": "Jos\u00e9", "label": "A"}\n'.encode("latin-1"))
        elif case == "empty file":
            file = tmp_path / "empty.csv"
            file.write_text("")
        elif case == "header only":
            file = tmp_path / "header.csv"
            file.write_text("pair_id,annotator,label\n")
        elif case == "blank lines":
            file = tmp_path / "blank.jsonl"
            file.write_text("\n\n")
        elif case == "missing column":
            file = tmp_path / "no_annotator.csv"
            file.write_text("pair_id,rater,label\np1,w1,A\n")
        elif case == "mapping names an absent column":
            file = tmp_path / "mapped.csv"
            file.write_text("pair_id,rater,label\np1,w1,A\n")
            kwargs = {"columns": {"worker_id": "annotator"}}
        elif case == "label off the scale":
            file = tmp_path / "graded.csv"
            file.write_text("pair_id,annotator,label\np1,w1,2\np1,w2,5\n")
            kwargs = {"scale": 3}
        elif case == "label off the set":
            file = tmp_path / "labels.csv"
            file.write_text("pair_id,annotator,label\np1,w1,A\np1,w2,C\n")
        elif case == "ragged csv":
            file = tmp_path / "ragged.csv"
            file.write_text("pair_id,annotator,label\np1,w1,A\np1,w2,B,oops\n")
        elif case == "repeated judgment":
            file = tmp_path / "twice.csv"
            file.write_text("pair_id,annotator,label\np1,w1,A\np1,w1,B\n")
        elif case == "unknown suffix":
            file = tmp_path / "judgments.xlsx"
            file.write_text("x")
        elif case == "no such file":
            file = tmp_path / "absent.csv"
        else:  # a folder
            file = tmp_path / "folder.csv"
            file.mkdir()
        return file, kwargs

    @pytest.mark.parametrize(
        ("case", "expected"),
        [
            ("truncated parquet", "not a readable Parquet file"),
            ("truncated jsonl", "line 4: invalid JSON"),
            ("truncated gzip", "compressed file is truncated"),
            ("wrong encoding csv", "not valid utf-8 text: line 3, byte 0xe9"),
            ("wrong encoding jsonl", "not valid utf-8 text: line 1, byte 0xe9"),
            ("empty file", "the file is empty"),
            ("header only", "the judgments table is empty"),
            ("blank lines", "holds no records"),
            ("missing column", "column 'annotator': missing required column"),
            ("mapping names an absent column", "column 'worker_id'"),
            ("label off the scale", "row 1: label outside the declared scale -3..3 (value: 5)"),
            ("label off the set", "row 1: label outside the declared set"),
            ("ragged csv", "Expected 3 fields in line 3, saw 4"),
            ("repeated judgment", "judged this pair more than once"),
            ("unknown suffix", "cannot tell the format from the suffix '.xlsx'"),
            ("no such file", "no such file"),
            ("a folder", "is a folder"),
        ],
    )
    def test_bad_input_is_one_line_naming_the_file(self, tmp_path: Path, case: str, expected: str) -> None:
        file, kwargs = self._write_case(tmp_path, case)
        with pytest.raises(ValidationError) as excinfo:
            read_judgments(file, **kwargs)
        assert_one_line(excinfo.value, f"file {file}", expected)
        # Expected failures are reported without the reader's traceback chained underneath.
        assert excinfo.value.__cause__ is None

    def test_read_table_rejects_an_unknown_format_name(self, tmp_path: Path) -> None:
        file = tmp_path / "a.csv"
        GOOD.to_csv(file, index=False)
        with pytest.raises(ValidationError, match="unknown format 'xml'"):
            read_table(file, fmt="xml")


# -- Hugging Face Hub schemas ---------------------------------------------------------------------------------


class TestMultiPref:
    def test_graded_on_minus_2_to_2_with_groups(self) -> None:
        table = load_multipref(HUB / "multipref.jsonl")
        assert table.attrs["accord"] == {"form": "graded", "scale": 2}
        assert len(table) == 12 and table["pair_id"].nunique() == 3
        first = table[table["pair_id"] == "c0a1"].set_index("annotator")
        assert first["label"].to_dict() == {"jovial_shirley": -2, "brave_tesla": -1, "calm_curie": -2,
                                            "keen_noether": 0}
        assert first["annotator_group"].to_dict()["calm_curie"] == "expert"
        assert first.loc["jovial_shirley", "label_helpful"] == -2
        assert first.loc["calm_curie", "label_truthful"] == -1
        assert first.loc["jovial_shirley", "prompt"] == "How do I boil an egg?"
        assert first.loc["jovial_shirley", "item_model_b"] == "gpt-4-turbo-2024-04-09"
        assert first.loc["jovial_shirley", "confidence"] == "fairly-confident"

    def test_collapse_to_preference_and_one_group(self) -> None:
        table = load_multipref(HUB / "multipref.jsonl", groups=["expert"], form="preference")
        assert table.attrs["accord"]["form"] == "preference"
        assert set(table["annotator_group"]) == {"expert"} and len(table) == 6
        assert table.groupby("pair_id")["label"].apply(list).to_dict() == {
            "c0a1": ["A", "tie"], "c0a2": ["B", "B"], "c0a3": ["B", "tie"]}

    def test_dataframe_and_parquet_inputs_match_the_jsonl(self, tmp_path: Path) -> None:
        expected = load_multipref(HUB / "multipref.jsonl")
        raw = pd.read_json(HUB / "multipref.jsonl", lines=True)
        pd.testing.assert_frame_equal(load_multipref(raw), expected)
        # Parquet turns the nested lists into numpy arrays of dicts.
        raw.to_parquet(tmp_path / "multipref.parquet")
        from_parquet = load_multipref(tmp_path / "multipref.parquet")
        pd.testing.assert_frame_equal(from_parquet[["pair_id", "annotator", "label"]],
                                      expected[["pair_id", "annotator", "label"]])

    def test_unknown_preference_value_names_column_and_row(self) -> None:
        raw = pd.read_json(HUB / "multipref.jsonl", lines=True)
        raw.at[1, "expert_worker_annotations"] = [{"evaluator": "x", "overall_pref": "A-is-better"}]
        with pytest.raises(ValidationError) as excinfo:
            load_multipref(raw)
        assert_one_line(excinfo.value, "column 'overall_pref'", "row 1", "A-is-better")

    def test_missing_schema_column(self) -> None:
        raw = pd.read_json(HUB / "multipref.jsonl", lines=True).drop(columns="completion_b")
        with pytest.raises(ValidationError, match="column 'completion_b'"):
            load_multipref(raw)


class TestHelpSteer:
    def test_helpsteer2_all_ratings_with_pseudo_annotators(self) -> None:
        with pytest.warns(UserWarning, match=r"dropped 1 rating\(s\) outside -3..3"):
            table = load_helpsteer2_preference(HUB / "helpsteer2_preference.jsonl")
        assert table.attrs["accord"] == {"form": "graded", "scale": 3}
        assert table.groupby("pair_id", sort=False).size().tolist() == [4, 3, 3]  # pair 2 lost its -100
        assert table["pair_id"].str.startswith("hs2-").all()
        # Raters cannot be linked across pairs: every pseudo-annotator belongs to one pair.
        assert (table.groupby("annotator")["pair_id"].nunique() == 1).all()
        assert table["annotator"].iloc[0] == table["pair_id"].iloc[0] + "/1"
        primes = table[table["prompt"] == "Name a prime number."]
        assert primes["label"].tolist() == [-3, -3, -2]  # parsed from the Python-repr string
        assert primes["item_published_preference"].tolist() == [-3, -3, -3]
        assert set(table["item_split"]) == {"train", "val"}

    def test_helpsteer2_pair_ids_are_stable(self) -> None:
        with pytest.warns(UserWarning):
            first = load_helpsteer2_preference(HUB / "helpsteer2_preference.jsonl")
        with pytest.warns(UserWarning):
            again = load_helpsteer2_preference(pd.read_json(HUB / "helpsteer2_preference.jsonl", lines=True))
        assert first["pair_id"].tolist() == again["pair_id"].tolist()

    def test_helpsteer2_off_scale_can_be_an_error(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            load_helpsteer2_preference(HUB / "helpsteer2_preference.jsonl", invalid="error")
        assert_one_line(excinfo.value, "column 'strength'", "row 1", "-100")

    def test_helpsteer2_three_most_similar_collapsed(self) -> None:
        table = load_helpsteer2_preference(HUB / "helpsteer2_preference.jsonl", ratings="three_most_similar",
                                           form="preference")
        assert table.attrs["accord"] == {"form": "preference", "scale": None}
        assert table.groupby("pair_id", sort=False)["label"].apply(list).tolist() == [
            ["B", "B", "B"], ["A", "A", "A"], ["tie", "A", "B"]]
        assert table["reason"].iloc[0] == ("@Response 2 is better than @Response 1 because it is more complete. "
                                           "It gives an example.")

    def test_helpsteer3_context_and_scores(self) -> None:
        table = load_helpsteer3_preference(HUB / "helpsteer3_preference.jsonl")
        assert table.attrs["accord"] == {"form": "graded", "scale": 3}
        assert table.groupby("pair_id", sort=False)["label"].apply(list).tolist() == [[-1, -3, -2], [-2, 1],
                                                                                      [0, 0, 1]]
        assert table["prompt"].iloc[0] == "Write a function that adds two numbers."
        multi = table[table["item_domain"] == "general"]["prompt"].iloc[0]
        assert multi == ("user: Suggest a name for a cat.\n\nassistant: How about Whiskers?\n\n"
                         "user: Something less common, please.")
        assert table["item_published_preference"].tolist()[:3] == [-2, -2, -2]
        collapsed = load_helpsteer3_preference(HUB / "helpsteer3_preference.jsonl", form="preference")
        assert collapsed["label"].tolist() == ["A", "A", "A", "A", "B", "tie", "tie", "B"]

    def test_helpsteer3_from_parquet(self, tmp_path: Path) -> None:
        raw = pd.read_json(HUB / "helpsteer3_preference.jsonl", lines=True)
        raw.to_parquet(tmp_path / "hs3.parquet")
        pd.testing.assert_frame_equal(load_helpsteer3_preference(tmp_path / "hs3.parquet"),
                                      load_helpsteer3_preference(HUB / "helpsteer3_preference.jsonl"))


class TestSummarizeFromFeedback:
    def test_repeated_comparisons_share_one_canonical_pair(self) -> None:
        table = load_summarize_from_feedback(HUB / "summarize_comparisons.jsonl")
        cat = table[table["item_post_id"] == "t3_1abcde"]
        assert cat["pair_id"].nunique() == 1 and len(cat) == 3
        good = " new cat hides under bed, how do I help her feel safe?"
        # w_alpha and w_beta chose the good summary (in either order), w_gamma the other one.
        chose_good = cat.apply(lambda r: (r["response_a"] if r["label"] == "A" else r["response_b"]) == good,
                               axis=1)
        assert chose_good.tolist() == [True, True, False]
        # The three workers saw the sides in two different orders.
        assert cat["presented_swapped"].nunique() == 2
        assert cat["response_a_id"].nunique() == 1 and cat["response_a_id"].iloc[0] != cat["response_b_id"].iloc[0]

    def test_fields_and_news_rows(self) -> None:
        table = load_summarize_from_feedback(HUB / "summarize_comparisons.jsonl")
        assert table.attrs["accord"]["form"] == "preference" and len(table) == 5
        news = table[table["item_post_id"] == "dm-0001"].iloc[0]
        assert news["prompt"].startswith("A storm hit the coast") and news["item_site"] == "dailymail"
        assert pd.isna(news["confidence"])
        assert table["confidence"].iloc[0] == 8
        assert set(table["item_split"]) == {"train", "valid1", "valid2"}
        assert {news["item_policy_a"], news["item_policy_b"]} == {"ref", "sup2"}

    def test_choice_must_be_0_or_1(self) -> None:
        raw = pd.read_json(HUB / "summarize_comparisons.jsonl", lines=True)
        raw.loc[2, "choice"] = 2
        with pytest.raises(ValidationError) as excinfo:
            load_summarize_from_feedback(raw)
        assert_one_line(excinfo.value, "column 'choice'", "row 2")

    def test_identical_summaries_are_dropped_with_a_warning(self) -> None:
        raw = pd.read_json(HUB / "summarize_comparisons.jsonl", lines=True)
        twin = {"text": "same", "policy": "ref", "note": None}
        raw.at[3, "summaries"] = [twin, dict(twin, policy="sup2")]
        with pytest.warns(UserWarning, match="identical"):
            table = load_summarize_from_feedback(raw)
        assert len(table) == 4


@pytest.mark.parametrize("loader", ["load_multipref", "load_multipref_aspects"])
def test_multipref_without_expert_annotations_loads_the_normal_ones(tmp_path: Path, loader: str) -> None:
    """A MultiPref file whose expert lists are all empty (comparisons no expert rated) loads with the default
    groups. Was: refused as a whole, "column 'expert_worker_annotations': no annotations in any row"."""
    import accord.datasets as datasets

    load = getattr(datasets, loader)
    raw = pd.read_json(HUB / "multipref.jsonl", lines=True)
    raw["expert_worker_annotations"] = [[] for _ in range(len(raw))]
    path = tmp_path / "normal-only.jsonl"
    raw.to_json(path, orient="records", lines=True)
    table = load(path)
    assert set(table["annotator_group"]) == {"normal"}
    pd.testing.assert_frame_equal(table, load(path, groups=["normal"]))
    with pytest.raises(ValidationError, match="column 'expert_worker_annotations': no annotations in any row"):
        load(path, groups=["expert"])
    raw["normal_worker_annotations"] = raw["expert_worker_annotations"]
    raw.to_json(path, orient="records", lines=True)
    with pytest.raises(ValidationError) as excinfo:
        load(path)
    assert_one_line(excinfo.value, "normal_worker_annotations / expert_worker_annotations", "no annotations in any row")


@settings(max_examples=30, deadline=None)
@given(ratings=st.lists(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=5, max_size=5),
                        min_size=1, max_size=4))
def test_helpsteer2_missing_rating_keeps_the_annotators_aligned(ratings: list[list[int | None]]) -> None:
    """HelpSteer2's k-th entry of every attribute's list is the k-th annotator, also after a missing rating.
    Was: a missing entry moved every later annotator of the row one place up, so that annotator's ratings of
    the other attributes were joined to someone else's."""
    from accord.datasets import load_helpsteer2_ratings
    from accord.datasets.loaders.hub_attributes import HELPSTEER2_ATTRIBUTES

    # ratings[k][a]: annotator k's rating of attribute a (None: not rated)
    if all(v is None for row in ratings for v in row):
        ratings = [[1, *row[1:]] for row in ratings]
    row = {"prompt": "q", "response": "r", **{a: [r[i] for r in ratings]
                                              for i, a in enumerate(HELPSTEER2_ATTRIBUTES)}}
    table = load_helpsteer2_ratings(pd.DataFrame([row]))
    got = {(name.rsplit("/", 1)[1], attribute): label
           for name, attribute, label in table[["annotator", "attribute", "label"]].itertuples(index=False)}
    expected = {(str(k + 1), a): r[i] for k, r in enumerate(ratings) for i, a in enumerate(HELPSTEER2_ATTRIBUTES)
                if r[i] is not None}
    assert got == expected


# -- a path that is no file ---------------------------------------------------------------------------------------

PATH_LOADERS = ["read_table", "read_judgments", "load_multipref", "load_helpsteer2_preference",
                "load_helpsteer3_preference", "load_summarize_from_feedback", "load_helpsteer2_ratings",
                "load_multipref_aspects", "load_summarize_axis", "load_prm800k", "load_math_shepherd",
                "load_chatbot_arena"]


@pytest.mark.parametrize("loader", PATH_LOADERS)
def test_a_folder_given_for_a_file_is_named_with_the_files_it_holds(tmp_path: Path, loader: str) -> None:
    """A Hub download is a folder (``huggingface-cli download ... --local-dir ms``): the error names it and the
    table files inside. Was: "cannot tell the format from the suffix ''" (the folder has no suffix)."""
    import accord.datasets as datasets

    folder = tmp_path / "download"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    (folder / "README.md").write_text("a dataset card\n")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock.json").write_text("{}")
    with pytest.raises(ValidationError) as excinfo:
        getattr(datasets, loader)(folder)
    assert_one_line(excinfo.value, f"file {folder}: is a folder, not a file", "data/train-00000-of-00001.parquet")
    assert "lock.json" not in str(excinfo.value) and "README" not in str(excinfo.value)
    (folder / "data" / "train-00000-of-00001.parquet").unlink()
    with pytest.raises(ValidationError, match="holds no table file"):
        getattr(datasets, loader)(folder)


@pytest.mark.parametrize("loader", PATH_LOADERS)
def test_a_missing_path_without_a_suffix_is_no_such_file(tmp_path: Path, loader: str) -> None:
    """Was: "cannot tell the format from the suffix ''", as if the file were there."""
    import accord.datasets as datasets

    with pytest.raises(ValidationError) as excinfo:
        getattr(datasets, loader)(tmp_path / "multipref")
    assert_one_line(excinfo.value, f"file {tmp_path / 'multipref'}: no such file")


# -- registry ---------------------------------------------------------------------------------------------------


class TestRegistry:
    NAMES = ["ukpconvarg1", "ukpconvarg1-strict", "pandalm", "snow2008-rte", "snow2008-temp", "snow2008-wsd",
             "vldb17-product", "vldb17-sentiment", "vldb17-duck", "vldb17-dog", "ukpconvarg2"]

    def test_list_datasets(self) -> None:
        listing = list_datasets()
        assert listing["name"].tolist() == self.NAMES
        assert {"name", "description", "form", "licence", "citation"} <= set(listing.columns)
        assert listing.set_index("name").loc["pandalm", "licence"] == "Apache-2.0"
        assert listing["citation"].str.len().gt(20).all()

    def test_every_local_file_matches_its_recorded_checksum(self) -> None:
        """The registry's sha256 values are those of the shared copies (checked on the small files)."""
        shared = shared_data_or_skip()
        small = [rel for rel in registry._SHA256 if not rel.startswith("ukp-convarg1/UKPConvArg1-full-XML")]
        for rel in small:
            assert registry.sha256_of(shared / rel) == registry._SHA256[rel], rel

    def test_load_by_name_from_the_shared_folder(self) -> None:
        shared = shared_data_or_skip("snow2008")
        pd.testing.assert_frame_equal(load("snow2008-rte"), load_snow2008("rte", shared))
        pd.testing.assert_frame_equal(load("SNOW2008-RTE", data_dir=shared.parent), load_snow2008("rte", shared))

    def test_describe_counts(self) -> None:
        shared_data_or_skip("vldb17")
        assert describe("vldb17-duck") == {
            "name": "vldb17-duck", "form": "categorical", "scale": None, "n_items": 108, "n_judgments": 4_212,
            "n_annotators": 39, "labels": {0: 2_615, 1: 1_597}, "has_gold": True, "n_items_with_gold": 108,
        }
        # the one multi-class set of the four (it was loadable by load_vldb17("dog") but not by name)
        dog = describe("vldb17-dog")
        assert (dog["n_items"], dog["n_judgments"], dog["n_annotators"]) == (807, 8_070, 109)
        assert set(dog["labels"]) == {0, 1, 2, 3} and dog["n_items_with_gold"] == 807

    def test_describe_gives_a_multi_attribute_set_s_labels_and_scales_per_attribute(self) -> None:
        """UKPConvArg2's labels were counted over every attribute at once ({-1: 4592, 0: 31063, 1: 19011}: the
        preference's -1/1 and the reasons' 0/1 on one count) and its scale was None. Counts from the CSV files
        with pandas: 4,592 pairs whose more convincing argument was the first the workers saw; 1,514 with a
        reason of group o5, 6,282 of o8."""
        shared_data_or_skip("ukp-convarg2")
        info = describe("ukpconvarg2")
        assert (info["form"], info["n_items"], info["n_judgments"], info["n_annotators"]) == (
            "attribute", 9_111, 54_666, 1)
        assert info["scale"] == {"convincing": (-1, 1), **{g: (0, 1) for g in ("o5", "o6", "o7", "o8", "o9")}}
        assert list(info["labels"]) == ["convincing", "o5", "o6", "o7", "o8", "o9"]
        assert info["labels"]["convincing"] == {-1: 4_592, 1: 4_519}
        assert info["labels"]["o5"] == {0: 9_111 - 1_514, 1: 1_514}
        assert info["labels"]["o8"] == {0: 9_111 - 6_282, 1: 6_282}

    def test_env_var_names_the_data_folder(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        mine = tmp_path / "mine"
        (mine / "snow2008").mkdir(parents=True)
        shutil.copyfile(shared_data_or_skip("snow2008", "wsd.standardized.tsv"),
                        mine / "snow2008" / "wsd.standardized.tsv")
        monkeypatch.setenv("ACCORD_DATA_DIR", str(mine))
        assert registry.locate("snow2008-wsd") == mine / "snow2008"
        assert len(load("snow2008-wsd")) == 1_770

    @pytest.mark.parametrize("name, source, files", [
        ("snow2008-wsd", "snow2008", ["wsd.standardized.tsv"]),
        ("vldb17-duck", "vldb17", ["d_Duck Identification/answer.csv", "d_Duck Identification/truth.csv"]),
    ])
    def test_data_dir_may_name_the_sets_own_folder(self, tmp_path: Path, name: str, source: str,
                                                   files: list[str]) -> None:
        """``load(name, ".../snow2008")``: the folder the set's files are in. Was: refused, the message asking
        for them under ``.../snow2008/snow2008/``."""
        shared = shared_data_or_skip(source)
        own = tmp_path / "my copy"
        for rel in files:
            (own / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared / rel, own / rel)
        assert registry.locate(name, own, download=False) == own
        pd.testing.assert_frame_equal(load(name, data_dir=own, download=False), load(name, download=False))
        # a folder with only some of the files is still refused, naming what it lacks and where it goes
        (own / files[-1]).unlink()
        with pytest.raises(AccordError) as excinfo:
            load(name, data_dir=own, download=False)
        assert_one_line(excinfo.value, "download=False", files[-1].rsplit("/", 1)[-1], f"under {own}/{source}/")

    def test_offline_message_says_where_to_put_the_files(self, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
        def offline(url: str, destination: Path, timeout: float = 60.0) -> None:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

        monkeypatch.setattr(registry, "_download", offline)
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(AccordError) as excinfo:
            load("pandalm", data_dir=empty)
        assert_one_line(excinfo.value, "not available offline", "put testset-v1.json", f"under {empty}/pandalm/",
                        "https://github.com/WeOpenML/PandaLM", "Temporary failure in name resolution")
        assert not (tmp_path / "cache" / "pandalm").exists()

    def test_no_download_allowed(self, tmp_path: Path) -> None:
        with pytest.raises(AccordError) as excinfo:
            load("ukpconvarg1", data_dir=tmp_path, download=False)
        assert_one_line(excinfo.value, "download=False", "UKPConvArg1-full-XML/ (32 files)",
                        f"under {tmp_path}/ukp-convarg1/")

    def test_real_downloader_copies_a_url(self, tmp_path: Path) -> None:
        source = FIXTURES / "judgments" / "preferences.csv"
        destination = tmp_path / "sub" / "copy.csv"
        REAL_DOWNLOAD(source.resolve().as_uri(), destination)  # file:// URL: exercises urllib, not the network
        assert destination.read_bytes() == source.read_bytes()

    def test_http_error_is_reported_as_one_line(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        def not_found(url: str, destination: Path, timeout: float = 60.0) -> None:
            raise urllib.error.HTTPError(url, 404, "Not Found", None, None)  # type: ignore[arg-type]

        monkeypatch.setattr(registry, "_download", not_found)
        with pytest.raises(AccordError) as excinfo:
            load("snow2008-wsd", data_dir=tmp_path)
        assert_one_line(excinfo.value, "HTTPError: Not Found", "wsd.standardized.tsv",
                        "edwinrobots/bayesian_combination_tutorial2/raw/f98448e2/all_collected_data/")

    def test_unknown_name(self) -> None:
        with pytest.raises(AccordError, match="unknown dataset 'mnist'"):
            load("mnist")

    @staticmethod
    def _serve_shared(monkeypatch: pytest.MonkeyPatch, calls: list[str], corrupt: bool = False) -> None:
        """A downloader that serves files from the shared folder (or a zip of them) instead of GitHub."""
        shared = shared_data_or_skip()

        def serve(url: str, destination: Path, timeout: float = 60.0) -> None:
            calls.append(url)
            if url.endswith("datasets.zip"):
                with zipfile.ZipFile(destination, "w") as archive:
                    for folder in (shared / "vldb17").iterdir():
                        for file in folder.iterdir():
                            archive.write(file, f"datasets/{folder.name}/{file.name}")
                    archive.writestr("__MACOSX/datasets/d_sentiment/._truth.csv", b"junk")
                return
            path = urllib.parse.unquote(url)
            source = next(p for p in registry._SHA256 if path.endswith("/" + p.split("/", 1)[1]))
            data = (shared / source).read_bytes()
            destination.write_bytes(data + b"x" if corrupt else data)

        monkeypatch.setattr(registry, "_download", serve)

    def test_download_is_verified_and_cached(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        calls: list[str] = []
        self._serve_shared(monkeypatch, calls)
        table = load("pandalm", data_dir=tmp_path / "nothing-here")
        assert len(table) == 4_970
        cache = tmp_path / "cache" / "pandalm"
        assert sorted(p.name for p in cache.iterdir()) == ["gpt-3.5-turbo-testset-v1.json",
                                                           "pandalm-7b-testset-v1.json", "testset-v1.json"]
        assert calls[0] == "https://github.com/WeOpenML/PandaLM/raw/3871806e/data/testset-v1.json"
        load("pandalm", data_dir=tmp_path / "nothing-here")  # second time: served from the cache
        assert len(calls) == 3

    def test_checksum_mismatch_keeps_nothing(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        calls: list[str] = []
        self._serve_shared(monkeypatch, calls, corrupt=True)
        with pytest.raises(AccordError) as excinfo:
            fetch("snow2008-temp", tmp_path / "cache")
        assert_one_line(excinfo.value, "sha256", "does not match", "snow2008/temp.standardized.tsv")
        assert not (tmp_path / "cache" / "snow2008" / "temp.standardized.tsv").exists()

    def test_archive_members_are_extracted_and_verified(self, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
        calls: list[str] = []
        self._serve_shared(monkeypatch, calls)
        folder = fetch("vldb17-duck", tmp_path / "cache")
        assert folder == tmp_path / "cache" / "vldb17"
        assert calls == ["https://github.com/zhydhkcws/zhydhkcws.github.io/raw/a9d529c1/"
                         "crowd_truth_inference/datasets.zip"]
        assert len(load("vldb17-duck", data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache")) == 4_212
        assert sorted(p.name for p in (folder / "d_Duck Identification").iterdir()) == ["answer.csv", "truth.csv"]


def test_public_names() -> None:
    import accord.datasets.loaders as loaders

    assert sorted(loaders.__all__) == loaders.__all__
    for name in loaders.__all__:
        assert callable(getattr(loaders, name)), name


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.tab", "t.jsonl", "t.ndjson", "t.json", "t.parquet", "t.pq",
                                  "t.csv.gz", "t.jsonl.gz", "t.tsv.bz2"])
def test_write_table_writes_what_read_table_reads_by_the_same_suffix(tmp_path, name):
    # .tab, .ndjson, .json and compressed names got Parquet bytes, which read_table then refused
    from accord.datasets.io import write_table

    frame = pd.DataFrame({"annotator": ["r1", "r2"], "accuracy": [0.5, 0.75]})
    write_table(frame, tmp_path / name)
    pd.testing.assert_frame_equal(read_table(tmp_path / name), frame, check_dtype=False)


@pytest.mark.parametrize("odd", [True, 4, 2.5])
@pytest.mark.parametrize("name", ["t.parquet", "t.pq"])
def test_a_table_parquet_cannot_hold_is_refused_in_one_line_naming_file_and_column(tmp_path, odd, name):
    # PandaLM's published responses include a few JSON true's among texts: `accord suggest --dataset pandalm --output
    # x.parquet` (its batch carries the pairs' texts) ended in pyarrow's ArrowTypeError traceback
    from accord.datasets.io import write_table

    target = tmp_path / name
    write_table(pd.DataFrame({"pair_id": ["p0"], "response_a": ["kept"]}), target)
    before = target.read_bytes()
    frame = pd.DataFrame({"pair_id": ["p1", "p2"], "p_A": [0.5, 0.25], "response_a": ["yes", odd]})
    with pytest.raises(ValidationError, match=r"column 'response_a': cannot write as Parquet") as caught:
        write_table(frame, target)
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_told_to_be_read_as_utf16(tmp_path, encoding):
    # Excel's "Unicode Text" export is UTF-16 with a byte-order mark; the error suggested --encoding latin-1, which
    # reads it as garbage ("ÿþp\x00a\x00...") and fails on every column name
    file = tmp_path / "unicode_text.tsv"
    text = "pair_id\tannotator\tlabel\np1\tw1\tA\np1\tw2\tB\n"
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[encoding]
    file.write_bytes(bom + text.encode(encoding))
    with pytest.raises(ValidationError) as caught:
        read_judgments(file)
    assert str(file) in str(caught.value) and "--encoding utf-16" in str(caught.value)
    assert "latin-1" not in str(caught.value)
    assert list(read_judgments(file, encoding="utf-16")["annotator"]) == ["w1", "w2"]


@given(trailing=st.integers(min_value=1, max_value=4), sep=st.sampled_from([",", ";", "\t"]))
@settings(max_examples=15, deadline=None)
def test_empty_rows_a_spreadsheet_appends_are_no_records(tmp_path_factory, trailing, sep):
    # a spreadsheet exports rows it once formatted as ";;;" lines; they were read as judgments and refused
    # ("column 'pair_id', row 2: missing id") though the file's real rows were fine
    file = tmp_path_factory.mktemp("excel") / ("rows.tsv" if sep == "\t" else "rows.csv")
    lines = [sep.join(["pair_id", "annotator", "label", "note"]), sep.join(["p1", "w1", "A", ""]),
             sep.join(["p1", "w2", "B", "x"]), *[sep * 3] * trailing]
    file.write_text("\r\n".join(lines) + "\r\n")
    table = read_judgments(file)
    assert list(table["annotator"]) == ["w1", "w2"]
    # an empty row among the records is still an error naming its row, as pandas numbers it
    file.write_text("\r\n".join([*lines[:2], sep * 3, *lines[2:]]) + "\r\n")
    with pytest.raises(ValidationError, match="row 1"):
        read_judgments(file)


@pytest.mark.parametrize("sep", [";", ",", "\t", "|"])
def test_an_excel_sep_line_above_the_header_declares_the_delimiter(tmp_path, sep):
    # Excel writes (and reads) "sep=;" above the header; it was read as the header ("the table has: 'sep=',
    # 'Unnamed: 1'") and every judgment refused
    file = tmp_path / "excel.csv"
    rows = [sep.join(["pair_id", "annotator", "label"]), sep.join(["007", "w1", "A"]), sep.join(["007", "w2", "tie"])]
    file.write_bytes(("\ufeff" + f"sep={sep}\r\n" + "\r\n".join(rows) + "\r\n").encode())
    table = read_judgments(file)
    assert list(table["pair_id"]) == ["007", "007"] and list(table["label"]) == ["A", "tie"]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"sep={sep}\n" + "\n".join([*rows[:2], sep.join(["007", "w2", "C"])]) + "\n")
    with pytest.raises(ValidationError, match="row 1"):  # rows are still counted from the first after the header
        read_judgments(bad)


@settings(max_examples=10, deadline=None)
@given(n_rows=st.integers(1, 40_000), at=st.floats(0, 1), suffix=st.sampled_from(["", ".gz", ".bz2", ".xz"]))
def test_an_undecodable_byte_is_named_by_its_line_in_a_compressed_file_too(tmp_path_factory, n_rows, at, suffix):
    # the readers decode in chunks: for a compressed file the error named the byte and no line (the whole file was
    # decoded again only when uncompressed); the line is that of the file, wherever the chunks end
    import bz2
    import gzip
    import lzma

    lines = ["pair_id,annotator,label", *(f"p{i},a{i % 7},{'AB'[i % 2]}" for i in range(n_rows))]
    bad = 1 + min(int(at * n_rows), n_rows - 1)  # a data line, 0-based
    lines[bad] = lines[bad].replace("p", "p\xe9", 1)
    data = "\n".join(lines).encode("latin-1")
    compress = {"": bytes, ".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
    path = tmp_path_factory.mktemp("enc") / f"judgments.csv{suffix}"
    path.write_bytes(compress(data))
    with pytest.raises(ValidationError, match=f"not valid utf-8 text: line {bad + 1}, byte 0xe9"):
        read_judgments(path)


SURROGATE_TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=40, deadline=None)
@given(SURROGATE_TEXTS, SURROGATE_TEXTS, st.sampled_from(["\\ud800", "\\udbff", "\\udc00", "\\uDFFF"]),
       st.integers(0, 3), st.sampled_from(["jsonl", "json"]))
def test_a_lone_surrogate_in_a_json_text_is_refused_naming_the_column_and_line(
        tmp_path_factory, before, after, escape, at, fmt):
    """A lone UTF-16 surrogate escape (``"x\\ud800y"``, what a tool that cut a text inside an emoji writes) was
    dropped without a word by pandas' JSON reader (read as ``"xy"``), or failed naming no line ('utf-8' codec can't
    encode ...); a CSV file's undecodable byte is refused naming the line. Now one error names the file, the column
    and the line (the row, in a JSON array)."""
    rows = [{"pair_id": f"p{i}", "annotator": "w1", "label": "A", "response_a": f"a{i}", "response_b": f"b{i}"}
            for i in range(4)]
    texts = [json.dumps(row, ensure_ascii=True) for row in rows]
    bad = json.dumps(before, ensure_ascii=True)[:-1] + escape + json.dumps(after, ensure_ascii=True)[1:]
    texts[at] = texts[at].replace('"b%d"' % at, bad)
    path = tmp_path_factory.mktemp("surrogate") / f"judgments.{fmt}"
    path.write_text("\n".join(texts) + "\n" if fmt == "jsonl" else "[\n" + ",\n".join(texts) + "\n]\n")
    where = f"column 'response_b': line {at + 1}: " if fmt == "jsonl" else f"column 'response_b', row {at}: "
    with pytest.raises(ValidationError, match=re.escape(f"file {path}, {where}the text holds a lone UTF-16 "
                                                        f"surrogate ({escape.lower()} without")):
        read_judgments(path)


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=12).filter(lambda t: not any("\ud800" <= c <= "\udfff" for c in t)))
def test_a_json_text_with_surrogate_pairs_and_escaped_backslashes_is_read_as_json_says(tmp_path_factory, text):
    """An emoji written as its surrogate pair (``\\ud83d\\ude00``) and the escaped text ``\\\\ud800`` are text:
    read as Python's JSON reader reads them, never refused."""
    text = text + "\U0001f600\\ud800"
    row = {"pair_id": "p1", "annotator": "w1", "label": "A", "response_a": text, "response_b": "b"}
    path = tmp_path_factory.mktemp("pairs") / "judgments.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=True) + "\n")
    assert read_judgments(path)["response_a"].iloc[0] == json.loads(path.read_text())["response_a"] == text
