"""The cleaned preference dataset: building, atomic writing, reading with pandas and Hugging Face datasets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.aggregate import VoteFraction, build_cleaned
from accord.datasets import AccordError, ValidationError, read_cleaned, write_cleaned
from accord.datasets.cleaned import CLEANED_COLUMNS


@pytest.fixture
def cleaned(small_preferences) -> pd.DataFrame:
    soft = VoteFraction().fit(small_preferences).soft_labels_
    return build_cleaned(soft, small_preferences)


def test_chosen_is_the_more_likely_side(cleaned):
    rows = cleaned.set_index("pair_id")
    assert rows.loc["p1", "chosen"] == "a1" and rows.loc["p1", "rejected"] == "b1"
    assert rows.loc["p2", "chosen"] == "b2" and rows.loc["p2", "chosen_side"] == "B"
    assert rows.loc["p2", "p_chosen"] == pytest.approx(1.0)
    assert rows.loc["p3", "p_tie"] == pytest.approx(2 / 3)
    assert set(CLEANED_COLUMNS) <= set(cleaned.columns)
    assert ((cleaned["weight"] >= 0) & (cleaned["weight"] <= 1)).all()


def test_drop_ties(small_preferences):
    soft = VoteFraction().fit(small_preferences).soft_labels_
    kept = build_cleaned(soft, small_preferences, drop_ties=True)
    assert kept["pair_id"].tolist() == ["p1", "p2"]


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_round_trip_with_provenance(cleaned, tmp_path, suffix):
    path = tmp_path / f"clean.{suffix}"
    write_cleaned(cleaned, path, provenance={"method": "vote-fraction", "source": "unit"})
    back = read_cleaned(path)
    pd.testing.assert_frame_equal(back[list(CLEANED_COLUMNS)], cleaned[list(CLEANED_COLUMNS)], check_dtype=False)
    assert back.attrs["provenance"]["method"] == "vote-fraction"
    assert back.attrs["provenance"]["package"] == "accord"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_jsonl_file_with_a_byte_order_mark_reads_back(cleaned, tmp_path):
    # a file re-saved by a Windows tool starts with a BOM: it was "cannot read as jsonl: Expected object or value"
    path = write_cleaned(cleaned, tmp_path / "clean.jsonl", provenance={"method": "vote-fraction"})
    path.write_bytes("\ufeff".encode() + path.read_bytes())
    back = read_cleaned(path)
    assert back["pair_id"].tolist() == cleaned["pair_id"].tolist()
    assert back.attrs["provenance"]["method"] == "vote-fraction"


def test_a_cleaned_jsonl_file_is_read_as_a_table_is_with_the_same_error(cleaned, tmp_path):
    # a cleaned file and a judgments table are read by one JSON Lines reader: an integer beyond 64 bits, valid JSON
    # that pandas cannot read, said "cannot read as jsonl: Value is too big!" here and named the likely cause there
    from accord.datasets.loaders.generic import read_table

    path = write_cleaned(cleaned, tmp_path / "clean.jsonl", provenance={"method": "vote-fraction"})
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("{", '{"extra": 1180591620717411303424, ', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AccordError) as as_cleaned:
        read_cleaned(path)
    with pytest.raises(AccordError) as as_table:
        read_table(path)
    assert "a number beyond 64-bit integers" in str(as_cleaned.value)
    assert str(as_cleaned.value) == str(as_table.value)


def test_parquet_metadata_is_in_the_file(cleaned, tmp_path):
    path = tmp_path / "clean.parquet"
    write_cleaned(cleaned, path, provenance={"method": "m"})
    meta = json.loads(pq.read_schema(path).metadata[b"accord"])
    assert meta["method"] == "m" and "version" in meta


def test_loads_with_hugging_face_datasets(cleaned, tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "clean.parquet"
    write_cleaned(cleaned, path)
    loaded = datasets.load_dataset("parquet", data_files=str(path), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == len(cleaned)
    assert {"prompt", "chosen", "rejected", "p_chosen", "weight"} <= set(loaded.column_names)


def test_bad_frame_writes_nothing(cleaned, tmp_path):
    path = tmp_path / "clean.parquet"
    with pytest.raises(ValidationError, match="column 'p_chosen', row 0"):
        write_cleaned(cleaned.assign(p_chosen=1.5), path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(cleaned, tmp_path, monkeypatch):
    path = tmp_path / "clean.parquet"
    write_cleaned(cleaned, path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", explode)
    with pytest.raises(AccordError, match=f"^file {re.escape(str(path))}: cannot write it: disk full$"):
        write_cleaned(cleaned.iloc[:1], path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.parquet"]


def test_killed_writer_leaves_old_file_or_none(cleaned, tmp_path):
    """SIGKILL in the middle of a write: the target is either absent or a complete file."""
    path = tmp_path / "clean.parquet"
    script = f"""
import os, signal, pandas as pd, pyarrow.parquet as pq
from accord.datasets import write_cleaned
frame = pd.read_pickle({str(tmp_path / 'frame.pkl')!r})
real = pq.write_table
def write_then_die(table, where, **kw):
    real(table, where, **kw)
    os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = write_then_die
write_cleaned(frame, {str(path)!r})
"""
    cleaned.to_pickle(tmp_path / "frame.pkl")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -9
    assert not path.exists()


def test_read_rejects_a_file_without_the_columns(tmp_path):
    path = tmp_path / "other.parquet"
    pd.DataFrame({"prompt": ["x"], "chosen": ["a"]}).to_parquet(path)
    with pytest.raises(ValidationError, match=f"file {path}, column 'pair_id'"):
        read_cleaned(path)


def test_read_truncated_file(cleaned, tmp_path):
    path = tmp_path / "clean.parquet"
    write_cleaned(cleaned, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AccordError, match=f"file {path}: cannot read as parquet"):
        read_cleaned(path)


def test_unknown_suffix(cleaned, tmp_path):
    with pytest.raises(AccordError, match="cannot tell the format"):
        write_cleaned(cleaned, tmp_path / "x.csv")
    assert not os.listdir(tmp_path)


GRADED_VOTES = {"g1": [-3, -2, -2, 1], "g2": [2, 3, 0, 1], "g3": [0, 0, -1, 1]}


@pytest.fixture
def graded_with_texts() -> pd.DataFrame:
    from accord.datasets import validate

    rows = [{"pair_id": pair, "annotator": f"w{k}", "label": label, "prompt": f"q {pair}",
             "response_a": f"a {pair}", "response_b": f"b {pair}", "response_a_id": f"a{pair}",
             "response_b_id": f"b{pair}"}
            for pair, labels in GRADED_VOTES.items() for k, label in enumerate(labels)]
    return validate(pd.DataFrame(rows), scale=3)


def test_graded_soft_labels_over_grades_become_a_cleaned_dataset_with_a_margin(graded_with_texts):
    """Vote fractions over the grades: P(chosen) sums the chosen side's grades, ``margin`` is the mean strength
    towards the chosen side, and the grade-level uncertainty is not passed off as the sum's."""
    soft = VoteFraction().fit(graded_with_texts).soft_labels_
    assert set(soft.classes) == {-3, -2, -1, 0, 1, 2, 3}
    rows = build_cleaned(soft, graded_with_texts).set_index("pair_id")
    assert rows.loc["g1", "chosen"] == "a g1" and rows.loc["g1", "p_chosen"] == pytest.approx(0.75)
    assert rows.loc["g1", "margin"] == pytest.approx((3 + 2 + 2 - 1) / 4)
    assert rows.loc["g2", "chosen"] == "b g2" and rows.loc["g2", "p_chosen"] == pytest.approx(0.75)
    assert rows.loc["g2", "margin"] == pytest.approx((2 + 3 + 0 + 1) / 4)
    assert rows.loc["g3", "p_tie"] == pytest.approx(0.5) and rows.loc["g3", "margin"] == pytest.approx(0.0)
    assert rows["uncertainty"].isna().all() and (rows["weight"] == 1.0).all()
    assert build_cleaned(soft, graded_with_texts, drop_ties=True)["pair_id"].tolist() == ["g1", "g2"]


def test_ordinal_soft_labels_give_the_margin_and_grades_in_the_chosen_view(graded_with_texts):
    from accord.datasets import SoftLabels

    ids = pd.Index(list(GRADED_VOTES), name="pair_id")
    grades = pd.DataFrame({"grade_-1": [0.7, 0.1, 0.3], "grade_0": [0.2, 0.2, 0.4], "grade_1": [0.1, 0.7, 0.3]},
                          index=ids)
    soft = SoftLabels(probs=pd.DataFrame({"A": grades["grade_-1"], "B": grades["grade_1"], "tie": grades["grade_0"]}),
                      uncertainty=pd.Series(0.1, index=ids), n_judgments=pd.Series(4, index=ids), method="ordinal",
                      extra=grades.assign(expected_strength=grades["grade_1"] - grades["grade_-1"],
                                          expected_strength_sd=0.5))
    rows = build_cleaned(soft, graded_with_texts).set_index("pair_id")
    assert rows.loc["g1", "margin"] == pytest.approx(0.6) and rows.loc["g2", "margin"] == pytest.approx(0.6)
    assert rows.loc["g2", "chosen_side"] == "B"
    assert rows.loc["g2", "grade_-1"] == pytest.approx(0.7) and rows.loc["g2", "grade_1"] == pytest.approx(0.1)
    assert rows.loc["g1", "grade_-1"] == pytest.approx(0.7)  # A chosen: as it was
    assert "expected_strength" not in rows and rows["weight"].tolist() == pytest.approx([0.8] * 3)


def test_graded_judgments_through_the_command_line_give_a_cleaned_dataset(graded_with_texts, tmp_path):
    from accord.cli import main

    source, output = tmp_path / "graded.csv", tmp_path / "cleaned.parquet"
    graded_with_texts.to_csv(source, index=False)
    assert main(["aggregate", "--input", str(source), "--scale", "3", "--method", "vote-fraction",
                 "--output", str(output)]) == 0
    written = read_cleaned(output).set_index("pair_id")
    assert written.loc["g1", "chosen"] == "a g1" and written.loc["g2", "chosen"] == "b g2"
    assert (written.loc[["g1", "g2"], "margin"] > 0).all()


def test_jsonl_round_trip_keeps_response_ids_as_text_and_probabilities_as_floats(small_preferences, tmp_path):
    # ids such as "007" are text: JSON Lines must not read them back as the number 7
    judgments = small_preferences.assign(
        response_a_id=small_preferences["pair_id"].map({"p1": "001", "p2": "003", "p3": "005"}),
        response_b_id=small_preferences["pair_id"].map({"p1": "002", "p2": "004", "p3": "006"}))
    cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments, drop_ties=True)
    path = tmp_path / "clean.jsonl"
    write_cleaned(cleaned, path)
    back = read_cleaned(path)
    assert back["chosen_id"].tolist() == cleaned["chosen_id"].tolist()
    assert back["rejected_id"].tolist() == cleaned["rejected_id"].tolist()
    for column in ("p_chosen", "p_tie", "uncertainty", "weight"):  # p_tie is all 0 here: it was read back as int64
        assert back[column].dtype == "float64", column


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "0.5"])
def test_min_p_chosen_must_be_a_probability(small_preferences, threshold):
    soft = VoteFraction().fit(small_preferences).soft_labels_
    with pytest.raises(AccordError, match="min_p_chosen"):
        build_cleaned(soft, small_preferences, min_p_chosen=threshold)


def test_soft_labels_of_pairs_the_judgments_lack_are_refused(small_preferences):
    # those pairs got NaN texts, and write_cleaned later blamed a "missing response text"
    soft = VoteFraction().fit(small_preferences).soft_labels_
    others = small_preferences[small_preferences["pair_id"] != "p1"].reset_index(drop=True)
    with pytest.raises(AccordError, match="'p1'"):
        build_cleaned(soft, others)


def test_a_pair_shown_with_two_different_texts_is_refused(small_preferences):
    # the first row's text was taken without a word
    judgments = small_preferences.copy()
    judgments.loc[1, "response_a"] = "another text"
    soft = VoteFraction().fit(judgments).soft_labels_
    with pytest.raises(AccordError, match="column 'response_a'.*'p1'"):
        build_cleaned(soft, judgments)


def test_a_column_parquet_cannot_hold_is_one_line_and_nothing_is_written(cleaned, tmp_path):
    # pyarrow's ArrowInvalid came out as a traceback
    path = tmp_path / "clean.parquet"
    with pytest.raises(AccordError, match="column extra"):
        write_cleaned(cleaned.assign(extra=[[1], "a", {"x": 1}]), path)
    assert list(tmp_path.iterdir()) == []


def test_write_cleaned_refuses_p_chosen_and_p_tie_over_one(cleaned, tmp_path):
    # written and read back without a word, then refused by the reward trainer
    broken = cleaned.assign(p_chosen=0.9, p_tie=0.5)
    with pytest.raises(ValidationError, match="column 'p_tie', row 0: p_chosen \\+ p_tie exceeds 1"):
        write_cleaned(broken, tmp_path / "clean.parquet")
    assert not os.listdir(tmp_path)


def test_a_format_the_suffix_contradicts_is_refused_and_nothing_is_written(cleaned, tmp_path):
    """``write_cleaned(frame, "x.parquet", fmt="jsonl")`` wrote JSON Lines that ``read_cleaned`` then refused;
    a name whose suffix says no format still takes ``fmt``."""
    for name, fmt in (("x.parquet", "jsonl"), ("x.jsonl", "parquet"), ("x.json", "parquet")):
        with pytest.raises(AccordError, match="suffix .* says"):
            write_cleaned(cleaned, tmp_path / name, fmt=fmt)
        assert not (tmp_path / name).exists()
    written = write_cleaned(cleaned, tmp_path / "x.data", fmt="jsonl")
    assert read_cleaned(written, fmt="jsonl")["pair_id"].tolist() == cleaned["pair_id"].tolist()


def test_an_unvalidated_table_is_read_as_the_fit_read_it(small_preferences):
    """build_cleaned validated a raw table only to learn its form and then read the raw one: a table without
    ``pair_id`` (ids made from the texts, a judgment shown the other way round turned to the pair's orientation)
    and crowd-kit's ``task``/``worker`` names failed with KeyError: 'pair_id'."""
    raw = small_preferences.drop(columns="pair_id")
    # w3 saw pair p1 with the sides the other way round, and voted for a1 (shown as B)
    raw.loc[2, ["response_a", "response_b", "label"]] = ["b1", "a1", "B"]
    soft = VoteFraction().fit(raw).soft_labels_
    cleaned = build_cleaned(soft, raw)
    assert len(cleaned) == 3 and set(cleaned["pair_id"]) == set(soft.pair_ids)
    first = cleaned.set_index("prompt").loc["q1"]
    assert (first["chosen"], first["rejected"], first["p_chosen"]) == ("a1", "b1", pytest.approx(1.0))

    crowd_kit = small_preferences.rename(columns={"pair_id": "task", "annotator": "worker"})
    soft = VoteFraction().fit(crowd_kit).soft_labels_
    cleaned = build_cleaned(soft, crowd_kit)
    assert cleaned.set_index("pair_id").loc["p2", "chosen"] == "b2"


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_pair_ids_that_are_numbers_read_back_as_the_judgments_have_them(small_preferences, tmp_path, suffix):
    """JSON Lines turned the pair ids 7 and 8 into the texts '7' and '8' (Parquet kept the numbers), so the cleaned
    dataset no longer joined the judgments table it came from (pandas refuses to merge str on int64)."""
    judgments = small_preferences.assign(pair_id=small_preferences["pair_id"].map({"p1": 7, "p2": 8, "p3": 9}))
    cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments)
    back = read_cleaned(write_cleaned(cleaned, tmp_path / f"clean.{suffix}"))
    assert back["pair_id"].tolist() == [7, 8, 9]
    assert len(back.merge(judgments, on="pair_id")) == len(judgments)


def test_jsonl_keeps_probabilities_as_parquet_does(cleaned, tmp_path):
    # JSON Lines kept pandas' default 10 decimals: 1/3 came back as 0.3333333333 and a p_tie of 3e-11 as 0, so the
    # two formats of one dataset disagreed
    frame = cleaned.assign(p_chosen=[1 / 3, 2 / 3, 1 / 7][: len(cleaned)], p_tie=3e-11, uncertainty=1 / 9 * 1e-4)
    frame["weight"] = 1 - 2 * frame["uncertainty"]
    columns = ["p_chosen", "p_tie", "uncertainty", "weight"]
    parquet = read_cleaned(write_cleaned(frame, tmp_path / "x.parquet"))[columns]
    jsonl = read_cleaned(write_cleaned(frame, tmp_path / "x.jsonl"))[columns]
    pd.testing.assert_frame_equal(parquet, frame[columns], check_exact=True)
    pd.testing.assert_frame_equal(jsonl, parquet, check_exact=False, rtol=1e-13, atol=1e-15)


def test_an_even_split_of_sides_is_broken_by_the_strength_of_the_grades():
    # votes -1 and +3: P(A better) = P(B better) = 1/2, but the grades favour B; A was chosen with margin -1
    from accord.datasets import validate

    rows = [{"pair_id": pair, "annotator": f"w{k}", "label": label, "response_a": f"a {pair}",
             "response_b": f"b {pair}"}
            for pair, labels in {"lean_b": [-1, 3], "lean_a": [-3, 1], "even": [-2, 2]}.items()
            for k, label in enumerate(labels)]
    table = validate(pd.DataFrame(rows), scale=3)
    out = build_cleaned(VoteFraction().fit(table).soft_labels_, table).set_index("pair_id")
    assert out.loc["lean_b", "chosen"] == "b lean_b" and out.loc["lean_b", "margin"] == pytest.approx(1.0)
    assert out.loc["lean_a", "chosen"] == "a lean_a" and out.loc["lean_a", "margin"] == pytest.approx(1.0)
    assert out.loc["even", "chosen"] == "a even" and out.loc["even", "margin"] == pytest.approx(0.0)
    assert (out["p_chosen"] == 0.5).all()


# -- what a reader of the files sees: pyarrow, pandas, Hugging Face ------------------------------------------------

TEXTS = st.one_of(st.text(max_size=6), st.sampled_from(["", "NA", "null", "a\nb", "a\rb", "\u2028", "é😀", "7"]),
                  st.integers(-5, 5), st.floats(-3, 3, allow_nan=False).filter(lambda x: x != int(x)))


@st.composite
def _pairs_with_votes(draw) -> pd.DataFrame:
    """A few pairs whose texts may be any text or a number (a JSON file's ``"response_a": 4``), with a prompt that
    may be missing, and a few A/B/tie votes each."""
    rows = []
    for pair in range(draw(st.integers(1, 4))):
        a, b = draw(TEXTS), draw(TEXTS)
        if a == b or str(a) == str(b):
            b = f"{b} (other)"
        prompt = draw(st.one_of(st.none(), TEXTS))
        for rater, label in enumerate(draw(st.lists(st.sampled_from(["A", "B", "tie"]), min_size=1, max_size=4))):
            rows.append({"pair_id": f"p{pair}", "annotator": f"w{rater}", "label": label, "prompt": prompt,
                         "response_a": a, "response_b": b})
    return pd.DataFrame(rows)


def _as_written(value) -> str:
    return "" if pd.isna(value) else str(value)


@given(_pairs_with_votes(), st.booleans(), st.sampled_from([0.0, 0.4, 0.5]))
@settings(max_examples=20, deadline=None)
def test_the_texts_are_strings_that_read_back_as_they_were_given(tmp_path_factory, table, drop_ties, threshold):
    """A response that is a number (JSON's ``4``) made an int64 ``chosen`` column in Parquet and the text '4' in JSON
    Lines (whose reader reads texts as text); texts mixing numbers and words were refused by the Parquet writer
    after the fit. ``prompt``/``chosen``/``rejected`` are now strings, the same in both formats, for pyarrow and
    pandas; the soft label and weight columns stay probabilities, and the thresholds keep what they say."""
    import pyarrow as pa

    soft = VoteFraction().fit(table).soft_labels_
    cleaned = build_cleaned(soft, table, drop_ties=drop_ties, min_p_chosen=threshold)
    p_a, p_b, p_tie = (soft.probs.get(c, pd.Series(0.0, index=soft.pair_ids)) for c in ("A", "B", "tie"))
    kept = (p_a.combine(p_b, max) >= threshold) & ~(drop_ties & (p_tie > p_a) & (p_tie > p_b))
    assert cleaned["pair_id"].tolist() == soft.pair_ids[kept.to_numpy()].tolist()
    if len(cleaned) == 0:
        return
    given_texts = table.drop_duplicates("pair_id").set_index("pair_id")
    for pair, row in cleaned.set_index("pair_id").iterrows():
        a, b = (_as_written(given_texts.loc[pair, c]) for c in ("response_a", "response_b"))
        assert (row["chosen"], row["rejected"]) == ((a, b) if row["chosen_side"] == "A" else (b, a))
        assert row["prompt"] == _as_written(given_texts.loc[pair, "prompt"])
    for column in ("p_chosen", "p_tie", "weight"):
        assert cleaned[column].between(0, 1).all()
    folder = tmp_path_factory.mktemp("cleaned")
    for suffix in ("parquet", "jsonl"):
        path = write_cleaned(cleaned, folder / f"clean.{suffix}")
        back = read_cleaned(path)
        for column in ("prompt", "chosen", "rejected"):
            assert all(isinstance(v, str) for v in cleaned[column])
            assert back[column].tolist() == cleaned[column].tolist()
        pd.testing.assert_frame_equal(back[list(CLEANED_COLUMNS[4:])], cleaned[list(CLEANED_COLUMNS[4:])],
                                      check_exact=False, rtol=1e-13)
    schema = pq.read_schema(folder / "clean.parquet")
    assert all(pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)
               for c in ("prompt", "chosen", "rejected"))


def test_responses_that_are_numbers_load_as_text_in_hugging_face_datasets(small_preferences, tmp_path):
    # the Parquet file's chosen column was int64 (JSON Lines' the texts): TRL's tokenizer takes texts
    datasets = pytest.importorskip("datasets")
    judgments = small_preferences.assign(response_a=small_preferences["pair_id"].map({"p1": 1, "p2": 2, "p3": 3}),
                                         response_b=small_preferences["pair_id"].map({"p1": 4, "p2": 5, "p3": 6}))
    cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments)
    for suffix, reader in (("parquet", "parquet"), ("jsonl", "json")):
        path = write_cleaned(cleaned, tmp_path / f"clean.{suffix}")
        loaded = datasets.load_dataset(reader, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
        assert loaded["chosen"] == ["1", "5", "3"] and loaded["rejected"] == ["4", "2", "6"]


def test_a_jsonl_file_loads_from_its_folder_in_hugging_face_datasets(cleaned, tmp_path):
    # the provenance sidecar beside train.jsonl was a visible train.jsonl.meta.json, which load_dataset(folder)
    # read as a second data file of another schema and failed on (DatasetGenerationError)
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "prefs"
    folder.mkdir()
    write_cleaned(cleaned, folder / "train.jsonl")
    loaded = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded["chosen"] == cleaned["chosen"].tolist()
    assert read_cleaned(folder / "train.jsonl").attrs["provenance"]["package"] == "accord"


def test_a_jsonl_file_with_the_earlier_visible_sidecar_keeps_its_provenance(cleaned, tmp_path):
    path = write_cleaned(cleaned, tmp_path / "clean.jsonl", provenance={"method": "dawid-skene"})
    hidden = tmp_path / ".clean.jsonl.meta.json"
    visible = tmp_path / "clean.jsonl.meta.json"
    hidden.rename(visible)  # as an earlier accord wrote it
    assert read_cleaned(path).attrs["provenance"]["method"] == "dawid-skene"
    write_cleaned(cleaned, path, provenance={"method": "mace"})  # writing again leaves one sidecar, the new one
    assert not visible.exists()
    assert read_cleaned(path).attrs["provenance"]["method"] == "mace"


def test_a_pair_missing_a_text_in_one_judgment_keeps_the_text_of_the_others(small_preferences):
    # the first row's texts were the pair's: a judgment without its prompt or text left the pair without one
    judgments = small_preferences.copy()
    judgments.loc[0, ["prompt", "response_b"]] = None
    cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments).set_index("pair_id")
    assert (cleaned.loc["p1", "prompt"], cleaned.loc["p1", "rejected"]) == ("q1", "b1")


def test_a_table_with_some_pairs_turned_round_gives_the_same_cleaned_dataset():
    """The same judgments with the sides of half the pairs turned round (swap_sides): the same chosen and rejected
    texts and the same soft labels from the methods without a position term (vote counts)."""
    from accord.aggregate import MajorityVote
    from accord.datasets import make_synthetic, swap_sides

    judgments = make_synthetic(n_pairs=40, n_annotators=10, judgments_per_pair=4, seed=1).judgments
    pairs = judgments["pair_id"].unique()
    turned = swap_sides(judgments, judgments["pair_id"].isin(pairs[::2]).to_numpy())
    for method in (VoteFraction, MajorityVote):
        one = build_cleaned(method().fit(judgments).soft_labels_, judgments).set_index("pair_id")
        other = build_cleaned(method().fit(turned).soft_labels_, turned).set_index("pair_id").loc[one.index]
        decided = one["p_chosen"] > 1 - one["p_chosen"] - one["p_tie"]  # an even split goes to A by convention
        columns = ["chosen", "rejected", "chosen_id", "rejected_id"]
        pd.testing.assert_frame_equal(other.loc[decided, columns], one.loc[decided, columns])
        pd.testing.assert_frame_equal(other[["p_chosen", "p_tie", "weight"]], one[["p_chosen", "p_tie", "weight"]])


@pytest.mark.parametrize(("name", "fmt"), [("x.jsonl.gz", "jsonl"), ("x.parquet.bz2", "parquet"), ("x.zst", "jsonl")])
def test_a_compressed_name_is_refused_with_a_format_too_and_nothing_is_written(cleaned, tmp_path, name, fmt):
    # with fmt the name was taken: plain JSON Lines (or Parquet) under a '.gz' name, which pandas' reader, taking
    # the suffix at its word, failed to decompress
    with pytest.raises(AccordError, match=f"file .*{name}: a cleaned dataset is written uncompressed"):
        write_cleaned(cleaned, tmp_path / name, fmt=fmt)
    assert list(tmp_path.iterdir()) == []


def test_per_group_probabilities_are_turned_to_the_chosen_side(small_preferences):
    """``p_a_<g>`` (with ``p_b_<g>``, which differs from ``1 - p_a_<g>`` by the group's tie) becomes ``p_chosen_<g>``:
    the group's probability for the side that was chosen; ``p_tie_<g>`` and other columns are copied."""
    from accord.datasets import SoftLabels

    ids = pd.Index(["p1", "p2", "p3"], name="pair_id")
    probs = pd.DataFrame({"A": [0.7, 0.2, 0.5], "B": [0.2, 0.7, 0.3], "tie": [0.1, 0.1, 0.2]}, index=ids)
    extra = pd.DataFrame({"p_a_x": [0.6, 0.1, 0.4], "p_b_x": [0.3, 0.8, 0.4], "p_tie_x": [0.1, 0.1, 0.2],
                          "p_a_y": [0.9, 0.3, 0.5], "noise": [0.2, 0.3, 0.4]}, index=ids)
    soft = SoftLabels(probs=probs, uncertainty=pd.Series(0.1, index=ids), n_judgments=pd.Series(3, index=ids),
                      method="m", extra=extra)
    rows = build_cleaned(soft, small_preferences).set_index("pair_id")
    assert rows["chosen_side"].tolist() == ["A", "B", "A"]
    assert rows["p_chosen_x"].tolist() == pytest.approx([0.6, 0.8, 0.4])
    assert rows["p_chosen_y"].tolist() == pytest.approx([0.9, 0.7, 0.5])  # no p_b_y: 1 - p_a_y
    assert rows["p_tie_x"].tolist() == pytest.approx([0.1, 0.1, 0.2]) and "p_b_x" not in rows and "p_a_x" not in rows
    assert rows["noise"].tolist() == pytest.approx([0.2, 0.3, 0.4])


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture's table is only read
@given(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3).filter(lambda w: sum(w) > 0),
       st.sampled_from([(0, 1), (1, 0), (0, 3), (3, 4)]))
def test_grades_summing_to_a_hair_over_one_write_a_valid_cleaned_dataset(graded_with_texts, tmp_path_factory,
                                                                         weights, grades):
    """Soft labels over grades with all of a pair's mass on two grades of one side: the side's sum of the normalised
    row, e.g. 0.9314603364442222 + 0.06853966355577794, is 1 + 2e-16, which build_cleaned wrote as p_chosen and
    write_cleaned then refused ("must be a probability in [0, 1]"); the written dataset now reads back."""
    from accord.datasets import SoftLabels

    ids = pd.Index(list(GRADED_VOTES), name="pair_id")
    rows = np.zeros((len(ids), 7))
    rows[0, list(grades)] = [0.9314603364442222, 0.06853966355577794]  # the found case, at grades -3/-2, -3/0, ...
    rows[1, [0, 1, 6]] = np.asarray(weights) / sum(weights)
    rows[2] = 1.0 / 7
    soft = SoftLabels(probs=pd.DataFrame(rows, index=ids, columns=list(range(-3, 4))),
                      uncertainty=pd.Series(np.nan, index=ids), n_judgments=pd.Series(4, index=ids),
                      method="hand-made")
    cleaned = build_cleaned(soft, graded_with_texts)
    assert ((cleaned["p_chosen"] >= 0) & (cleaned["p_chosen"] <= 1)).all()
    path = write_cleaned(cleaned, tmp_path_factory.mktemp("cleaned") / "clean.parquet")
    assert len(read_cleaned(path)) == len(ids)


_MESSAGE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@st.composite
def _chat_cleaned(draw) -> pd.DataFrame:
    """A cleaned dataset whose responses are chat messages, its prompts messages or texts (empty or not, any
    unicode, now and then very long)."""
    n = draw(st.integers(1, 4))

    def messages(role: str) -> list[dict[str, str]]:
        texts = draw(st.lists(_MESSAGE_TEXT, min_size=1, max_size=3))
        return [{"role": role, "content": t * draw(st.sampled_from([1, 1, 5000]))} for t in texts]

    prompt_kind = draw(st.sampled_from(["messages", "text", "empty"]))
    prompts = [messages("user") if prompt_kind == "messages" else draw(_MESSAGE_TEXT) if prompt_kind == "text" else ""
               for _ in range(n)]
    return pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "prompt": prompts,
                         "chosen": [messages("assistant") for _ in range(n)],
                         "rejected": [messages("assistant") for _ in range(n)],
                         "p_chosen": draw(st.lists(st.floats(0.5, 1.0), min_size=n, max_size=n)), "p_tie": 0.0,
                         "uncertainty": np.nan, "weight": 1.0, "n_judgments": 3})


@given(_chat_cleaned())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_chat_messages_read_back_as_the_messages_written(tmp_path_factory, cleaned):
    """Chat messages in JSON Lines were read back as their Python repr ("[{'role': 'user', ...}]", a text the reward
    trainer then trained on) and from Parquet as numpy arrays: both formats now give the lists of dicts written."""
    folder = tmp_path_factory.mktemp("chat")
    for suffix in ("parquet", "jsonl"):
        back = read_cleaned(write_cleaned(cleaned, folder / f"clean.{suffix}"))
        for column in ("prompt", "chosen", "rejected"):
            assert back[column].tolist() == cleaned[column].tolist(), (suffix, column)
        pd.testing.assert_frame_equal(back[list(CLEANED_COLUMNS[4:])], cleaned[list(CLEANED_COLUMNS[4:])],
                                      check_dtype=False)


@pytest.mark.parametrize("prompt", ["missing", None, "", "question", "messages", "in the conversations"])
def test_chat_pairs_get_the_prompt_as_messages_as_trl_adds_prompt_and_response(prompt, tmp_path):
    """TRL's RewardTrainer reads an explicit prompt as ``prompt + chosen``: a cleaned dataset of chat messages had the
    text ``""`` as prompt of pairs without one (and a text prompt as given), and TRL failed with 'can only concatenate
    str (not "list") to str'. The prompt is now messages too (none: ``[]``), and prompt + chosen is the chosen
    conversation, in the files and in Hugging Face datasets."""
    user = [{"role": "user", "content": "question"}]

    def side(text: str) -> list[dict[str, str]]:
        return (user if prompt == "in the conversations" else []) + [{"role": "assistant", "content": text}]

    judgments = pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["w1", "w2", "w1"], "label": ["A", "B", "B"],
                              "response_a": [side("a1"), side("a1"), side("a2")],
                              "response_b": [side("b1"), side("b1"), side("b2")]})
    if prompt != "missing":
        judgments["prompt"] = [user if prompt == "messages" else prompt] * 3
    cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments)
    expected_prompt = [] if prompt in ("missing", None, "") else user
    assert cleaned["prompt"].tolist() == [expected_prompt] * 2
    for suffix, reader in (("parquet", "parquet"), ("jsonl", "json")):
        back = read_cleaned(write_cleaned(cleaned, tmp_path / f"clean.{suffix}"))
        for row in back.itertuples():
            side_of_chosen = "a" if row.chosen_side == "A" else "b"
            assert row.prompt + row.chosen == expected_prompt + [
                {"role": "assistant", "content": f"{side_of_chosen}{row.pair_id[1]}"}]
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "clean.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    assert all(isinstance(example["prompt"] + example["chosen"], list) for example in loaded)


def test_chat_pairs_without_a_prompt_reach_trl_through_the_readme_s_implicit_prompt_map(tmp_path):
    """A chat pair without a prompt has prompt ``[]`` (the documented layout); TRL's apply_chat_template reads its
    last message and fails (IndexError). The README's map to TRL's implicit-prompt layout is what TRL reads."""
    datasets = pytest.importorskip("datasets")
    data_utils = pytest.importorskip("trl.data_utils")
    from accord.reward.tiny import word_tokenizer

    def side(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    judgments = pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["w1", "w2", "w1"], "label": ["A", "B", "B"],
                              "response_a": [side("a1"), side("a1"), side("a2")],
                              "response_b": [side("b1"), side("b1"), side("b2")]})
    path = write_cleaned(build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments),
                         tmp_path / "clean.parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded[0]["prompt"] == []
    tokenizer = word_tokenizer(["a1 b1 a2 b2"])
    with pytest.raises(IndexError):
        data_utils.apply_chat_template(dict(loaded[0]), tokenizer)
    implicit = loaded.map(lambda x: {"chosen": x["prompt"] + x["chosen"], "rejected": x["prompt"] + x["rejected"]},
                          remove_columns=["prompt"])
    for example in implicit:
        assert data_utils.is_conversational(example)
        text = data_utils.apply_chat_template(example, tokenizer)
        assert text["chosen"].endswith(example["chosen"][-1]["content"] + "</s>"), text


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_a_file_read_and_written_again_records_this_writes_time_and_keeps_its_method(cleaned, tmp_path, suffix):
    """write_cleaned carries the provenance of a file read back (its method and source), and with it the time and
    package version of the first write, which then claimed a file written later by another version."""
    first = write_cleaned(cleaned, tmp_path / f"first.{suffix}", provenance={"method": "vote-fraction"})
    back = read_cleaned(first)
    back.attrs["provenance"] = {**back.attrs["provenance"], "written_at": "2001-01-01T00:00:00+00:00",
                                "version": "0.0.0"}  # as an older version would have written them
    again = read_cleaned(write_cleaned(back.iloc[:2], tmp_path / f"again.{suffix}")).attrs["provenance"]
    assert again["method"] == "vote-fraction"
    assert again["written_at"] > "2001-01-02" and again["version"] != "0.0.0"


def test_chat_judgments_read_from_parquet_give_the_cleaned_dataset_they_give_as_lists(tmp_path):
    """pandas reads chat messages from a Parquet judgments file as numpy arrays of dicts: build_cleaned (and so
    `accord aggregate --input judgments.parquet`) failed with 'The truth value of an array ... is ambiguous' when it
    compared a pair's texts across its judgments, after the fit. They now give what the lists give."""
    from accord.cli import main

    def side(text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": "ünïcode?"}, {"role": "assistant", "content": text}]

    judgments = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2"], "annotator": ["w1", "w2", "w1", "w2"],
                              "label": ["A", "B", "B", "B"], "response_a": [side("a1"), side("a1"), side("a2"),
                                                                            side("a2")],
                              "response_b": [side("b1"), side("b1"), side("b2"), side("b2")]})
    judgments.to_parquet(tmp_path / "judgments.parquet")
    read = pd.read_parquet(tmp_path / "judgments.parquet")
    assert isinstance(read["response_a"].iloc[0], np.ndarray)  # what the reader gives, not lists
    expected = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments)
    from_parquet = build_cleaned(VoteFraction().fit(read).soft_labels_, read)
    for column in ("prompt", "chosen", "rejected"):
        assert from_parquet[column].tolist() == expected[column].tolist()
    assert main(["aggregate", "--input", str(tmp_path / "judgments.parquet"), "--method", "vote-fraction",
                 "--output", str(tmp_path / "clean.parquet")]) == 0
    written = read_cleaned(tmp_path / "clean.parquet")
    assert written["chosen"].tolist() == expected["chosen"].tolist()
    assert written["prompt"].tolist() == [[{"role": "user", "content": "ünïcode?"}]] * 2


def test_chat_judgments_without_pair_ids_get_the_same_ids_from_parquet_as_from_json_lines(tmp_path):
    """A pair id derived from the texts hashed the text of each cell: chat messages read from Parquet (numpy arrays)
    read without the commas of the lists JSON Lines gives, so one set of judgments got other pair ids from each
    format (and a gold file or a batch keyed by one format's ids matched nothing of the other's)."""
    from accord.datasets import read_judgments

    def side(text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]

    judgments = pd.DataFrame({"annotator": ["w1", "w2", "w1"], "label": ["A", "A", "B"],
                              "prompt": [side("p")[:1]] * 3, "response_a": [side("a"), side("b"), side("c")],
                              "response_b": [side("b"), side("a"), side("d")]})
    judgments.to_parquet(tmp_path / "judgments.parquet")
    judgments.to_json(tmp_path / "judgments.jsonl", orient="records", lines=True)
    ids = [read_judgments(tmp_path / name)["pair_id"].tolist() for name in ("judgments.parquet", "judgments.jsonl")]
    assert ids[0] == ids[1] and len(set(ids[0])) == 2


def _judgments_with(prompt, side_a, side_b) -> pd.DataFrame:
    return pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["w1", "w2", "w1"], "label": ["A", "A", "B"],
                         "prompt": [prompt] * 3, "response_a": [side_a("a1"), side_a("a1"), side_a("a2")],
                         "response_b": [side_b("b1"), side_b("b1"), side_b("b2")]})


@pytest.mark.parametrize("chat", [False, True])
def test_an_empty_list_as_prompt_is_no_prompt_in_the_cleaned_dataset(chat, tmp_path):
    """A prompt given as an empty list of messages (a conversation with no user turn) was written as a user turn whose
    text is "[]" beside chat responses (the reward model trained on it), and as ``[]`` beside text responses (a
    prompt of messages beside texts: TRL failed on it with 'can only concatenate list (not "str") to list'). It is
    no prompt, as accord's trainer reads it: "" beside texts, ``[]`` beside messages (TRL's layout of messages)."""
    def text(t: str):
        return t

    def messages(t: str):
        return [{"role": "assistant", "content": t}]

    side = messages if chat else text
    for empty in ([], np.array([], dtype=object)):
        judgments = _judgments_with(empty, side, side)
        cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments)
        for suffix in ("parquet", "jsonl"):
            back = read_cleaned(write_cleaned(cleaned, tmp_path / f"clean.{suffix}"))
            assert back["prompt"].tolist() == [[] if chat else ""] * 2, (suffix, back["prompt"].tolist())
            assert back["chosen"].tolist() == [side("a1"), side("b2")]


def test_a_prompt_of_messages_makes_the_responses_assistant_turns_as_trl_reads_them(tmp_path):
    """Judgments whose prompt is chat messages and whose responses are texts gave a cleaned dataset of a messages
    prompt beside text responses: not TRL's conversational layout (prompt + chosen was 'can only concatenate list
    (not "str") to list'), nor its standard one. The responses are now the assistant's turn, and a text prompt of
    another pair the user's turn, so every row is in TRL's conversational layout, in the files and as a Hugging Face
    dataset."""
    user = [{"role": "user", "content": "question"}]
    judgments = _judgments_with(user, str, str)
    judgments.loc[2, "prompt"] = "another question"
    judgments["prompt"] = judgments["prompt"].astype(object)
    judgments.at[0, "prompt"] = judgments.at[1, "prompt"] = user
    cleaned = build_cleaned(VoteFraction().fit(judgments).soft_labels_, judgments)
    expected = {"p1": (user, "a1", "b1"), "p2": ([{"role": "user", "content": "another question"}], "b2", "a2")}
    for suffix in ("parquet", "jsonl"):
        back = read_cleaned(write_cleaned(cleaned, tmp_path / f"clean.{suffix}"))
        for row in back.itertuples():
            prompt, chosen, rejected = expected[row.pair_id]
            assert row.prompt == prompt, (suffix, row.prompt)
            assert row.chosen == [{"role": "assistant", "content": chosen}], (suffix, row.chosen)
            assert row.rejected == [{"role": "assistant", "content": rejected}], (suffix, row.rejected)
    trl = pytest.importorskip("trl.data_utils")
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "clean.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    for example in loaded:
        assert isinstance(example["prompt"] + example["chosen"], list)
        assert all(trl.is_conversational({key: example[key]}) for key in ("prompt", "chosen", "rejected"))


@pytest.mark.parametrize("value", [-0.1, float("inf"), "high"])
def test_an_uncertainty_that_is_no_standard_deviation_is_refused(cleaned, tmp_path, value):
    """``uncertainty`` is the posterior sd of a probability (NaN when the method has none), yet a negative, infinite
    or text value was written and read back without a word (the text as "no uncertainty"). Now one error naming the
    column and the row, on write and on read; NaN, 0 and an sd over 0.5 (a few draws, or the delta method's
    p (1 - p) sd(log-odds), can give one; its weight is 0) still pass."""
    bad = cleaned.assign(uncertainty=cleaned["uncertainty"].astype(object))
    bad.at[1, "uncertainty"] = value
    with pytest.raises(ValidationError, match=r"column 'uncertainty', row 1: must be a standard deviation, a finite"):
        write_cleaned(bad, tmp_path / "bad.parquet")
    assert list(tmp_path.iterdir()) == []
    if isinstance(value, str):
        bad.to_json(tmp_path / "theirs.jsonl", orient="records", lines=True)
    else:  # JSON has no infinity
        bad.astype({"uncertainty": float}).to_parquet(tmp_path / "theirs.parquet")
    theirs = next(tmp_path.iterdir())
    with pytest.raises(ValidationError, match=rf"{theirs.name}, column 'uncertainty', row 1"):
        read_cleaned(theirs)
    fine = cleaned.assign(uncertainty=[np.nan, 0.0, 0.8])
    fine["weight"] = np.clip(1 - 2 * fine["uncertainty"].fillna(0.0), 0, 1)
    assert len(read_cleaned(write_cleaned(fine, tmp_path / "fine.parquet"))) == len(cleaned)


def test_messages_with_other_keys_read_back_from_parquet_as_written(tmp_path, cleaned):
    """A Parquet column of chat messages is one struct of the union of their keys: a conversation with one ``name``
    came back from a cleaned dataset (pairs and steps) with ``'name': None`` in every other message, and a step
    prompt's message without a content with ``'content': None`` (read as the text "None", where JSON Lines' was
    refused). Both formats now give the messages as written, and refuse the message without a content alike."""
    from accord.datasets.cleaned import render_prompts, step_prompts
    from accord.datasets.steps import read_cleaned_steps, write_cleaned_steps
    from accord.reward.tiny import word_tokenizer

    prompt = [{"role": "system", "content": "be brief", "name": "policy"}, {"role": "user", "content": "why?"}]
    parts = [{"role": "user", "content": "hello"}]  # no name
    pairs = cleaned.head(2).assign(prompt=[prompt, parts], chosen=[[{"role": "assistant", "content": "yes"}]] * 2,
                                   rejected=[[{"role": "assistant", "content": "no", "name": "bot"}]] * 2)
    steps = pd.DataFrame({"solution_id": ["s0", "s1"], "problem_id": ["q0", "q1"], "prompt": [prompt, parts],
                          "completions": [["a", "b"], ["c"]], "labels": [[1.0, 0.0], [1.0]],
                          "label_weights": [[1.0, 1.0], [1.0]], "label_uncertainty": [[0.0, 0.0], [0.0]],
                          "p_first_error": [[0.1, 0.8, 0.1], [0.2, 0.8]], "p_all_correct": [0.1, 0.8],
                          "first_error": [1, 1], "outcome_weight": [1.0, 1.0], "n_steps": [2, 1],
                          "n_judgments": [2, 1], "n_annotators": [1, 1]})
    tokenizer = word_tokenizer()
    for suffix in ("parquet", "jsonl"):
        back = read_cleaned(write_cleaned(pairs, tmp_path / f"pairs.{suffix}"))
        for column in ("prompt", "chosen", "rejected"):
            assert back[column].tolist() == pairs[column].tolist(), (suffix, column)
        back = read_cleaned_steps(write_cleaned_steps(steps, tmp_path / f"steps.{suffix}"))
        assert back["prompt"].tolist() == steps["prompt"].tolist(), suffix
        assert render_prompts(back["prompt"], tokenizer) == render_prompts(steps["prompt"], tokenizer)
        no_content = steps.assign(prompt=[[{"role": "user", "content": "q"}], [{"role": "user"}]])
        back = read_cleaned_steps(write_cleaned_steps(no_content, tmp_path / f"no_content.{suffix}"))
        with pytest.raises(ValidationError, match=r"row 1: chat messages must each be"):
            step_prompts(back["prompt"], "data")


def _cleaned_from_parquet_and_jsonl(judgments: pd.DataFrame, folder: Path) -> dict[str, pd.DataFrame]:
    """The cleaned datasets `accord aggregate` (vote fractions) writes from ``judgments`` saved as Parquet and as
    JSON Lines, by format."""
    from accord.cli import main

    out = {}
    for suffix in ("parquet", "jsonl"):
        source = folder / f"judgments.{suffix}"
        judgments.to_parquet(source) if suffix == "parquet" else judgments.to_json(source, orient="records",
                                                                                  lines=True)
        assert main(["aggregate", "--input", str(source), "--method", "vote-fraction", "--output",
                     str(folder / f"clean-{suffix}.jsonl"), "--quiet"]) == 0
        out[suffix] = read_cleaned(folder / f"clean-{suffix}.jsonl")
    return out


def test_chat_judgments_whose_messages_differ_in_keys_give_the_same_cleaned_dataset_from_parquet(tmp_path):
    """Parquet gives each message the keys of every other message of its column, None: judgments whose response_a
    had a message with a 'name' that response_b's had not got, from a Parquet file, other pair ids (hashed from the
    texts) and no prompt (the user turns no longer matched), where JSON Lines gave the prompt and ids of the messages
    as written."""

    def side(text: str, **extra: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": "why?"}, {"role": "assistant", "content": text, **extra}]

    judgments = pd.DataFrame({"annotator": ["w1", "w2", "w1", "w2"], "label": ["A", "B", "B", "B"],
                              "response_a": [side("a1", name="bot"), side("a1", name="bot"), side("a2"), side("a2")],
                              "response_b": [side("b1"), side("b1"), side("b2"), side("b2")]})
    out = _cleaned_from_parquet_and_jsonl(judgments, tmp_path)
    assert out["jsonl"]["prompt"].tolist() == [[{"role": "user", "content": "why?"}]] * 2
    for column in ("pair_id", "prompt", "chosen", "rejected"):
        assert out["parquet"][column].tolist() == out["jsonl"][column].tolist(), column


def test_chat_judgments_whose_message_keys_are_in_another_order_get_one_pair_id_from_every_format(tmp_path):
    """A pair's id hashed the Python text of its messages, which follows the order their keys were written in: a
    message written {"content": ..., "role": ...} in JSON Lines got another id than the same judgments read from
    Parquet (whose column holds one order of keys for all its messages), and than the same message written
    {"role", "content"} by another tool. Now the order of a message's keys does not change the id, and messages
    written role first (the usual order) keep the id they had."""
    from accord.datasets.ids import derive_pair_ids

    def side(text: str, content_first: bool = False) -> list[dict[str, str]]:
        reply = {"content": text, "role": "assistant"} if content_first else {"role": "assistant", "content": text}
        return [{"role": "user", "content": "why?"}, reply]

    judgments = pd.DataFrame({"annotator": ["w1", "w2", "w1", "w2"], "label": ["A", "B", "B", "B"],
                              "response_a": [side("a1"), side("a1"), side("a2", True), side("a2", True)],
                              "response_b": [side("b1"), side("b1"), side("b2"), side("b2")]})
    out = _cleaned_from_parquet_and_jsonl(judgments, tmp_path)
    assert out["parquet"]["pair_id"].tolist() == out["jsonl"]["pair_id"].tolist()
    reordered = judgments.assign(response_a=[side("a1", True)] * 2 + [side("a2")] * 2)
    assert (derive_pair_ids(reordered, "preference")["pair_id"].tolist()
            == derive_pair_ids(judgments, "preference")["pair_id"].tolist())
    # messages written role first hash as their Python text did (the ids written before stay)
    as_text = judgments.assign(response_a=judgments["response_a"].map(str), response_b=judgments["response_b"].map(str))
    assert (derive_pair_ids(judgments, "preference")["pair_id"].iloc[:2].tolist()
            == derive_pair_ids(as_text, "preference")["pair_id"].iloc[:2].tolist())


@pytest.mark.parametrize("method", ["majority", "vote-fraction"])
def test_an_even_pair_without_a_pair_id_is_chosen_alike_whatever_the_order_of_the_rows(method):
    """Without a pair_id the pair's sides are those of its first row, so on an even vote (A 'by convention') the
    chosen response was whichever one the first row happened to show first: the same judgments in another row order
    gave a cleaned dataset with chosen and rejected exchanged. The chosen side of an even pair is now the first in
    the derived id's own order of the two texts, whatever the order of the rows."""
    from accord.aggregate import make_method

    table = pd.DataFrame({
        "annotator": ["r1", "r2", "r3", "r4", "r5", "r6"],
        "label": ["A", "A", "A", "B", "B", "B"],
        "prompt": ["Q3", "Q3", "Q1", "Q1", "Q2", "Q2"],
        "response_a": ["x3", "y3", "a1", "a1", "b2", "a2"],
        "response_b": ["y3", "x3", "b1", "b1", "a2", "b2"],
    })
    chosen = set()
    for order in ([0, 1, 2, 3, 4, 5], [1, 0, 3, 2, 5, 4], [5, 3, 1, 4, 2, 0]):
        rows = table.iloc[order].reset_index(drop=True)
        cleaned = build_cleaned(make_method(method).fit(rows).soft_labels_, rows)
        assert (cleaned["p_chosen"] == 0.5).all()  # every pair is even
        chosen.add(tuple(sorted(zip(cleaned["prompt"], cleaned["chosen"], cleaned["rejected"]))))
    assert len(chosen) == 1, chosen
    # where the pair has its own id, its sides are the table's: A stays the even pair's chosen side
    given = table.iloc[2:4].assign(pair_id="p1")
    cleaned = build_cleaned(make_method(method).fit(given).soft_labels_, given)
    assert cleaned["chosen"].tolist() == ["a1"] and cleaned["chosen_side"].tolist() == ["A"]


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_a_filtered_cleaned_dataset_records_its_filters_and_how_many_pairs_they_left_out(small_preferences, tmp_path,
                                                                                         suffix):
    """``drop_ties`` and ``min_p_chosen`` left pairs out without a trace: the file's provenance named the method and
    the source, and a reader could not tell it from one of every pair (only the command line said how many were
    dropped, and build_cleaned in Python said nothing). The provenance now records each filter used and the pairs
    they left out, and reads back with the file."""
    soft = VoteFraction().fit(small_preferences).soft_labels_
    whole = build_cleaned(soft, small_preferences)
    assert not {"drop_ties", "min_p_chosen", "pairs_left_out"} & set(whole.attrs["provenance"])
    kept = build_cleaned(soft, small_preferences, drop_ties=True, min_p_chosen=0.9)
    assert len(kept) < len(whole)
    assert kept.attrs["provenance"]["drop_ties"] is True and kept.attrs["provenance"]["min_p_chosen"] == 0.9
    assert kept.attrs["provenance"]["pairs_left_out"] == len(whole) - len(kept)
    back = read_cleaned(write_cleaned(kept, tmp_path / f"clean.{suffix}"))
    assert back.attrs["provenance"]["pairs_left_out"] == len(whole) - len(kept)
    assert back.attrs["provenance"]["min_p_chosen"] == 0.9 and back.attrs["provenance"]["method"] == "vote-fraction"
