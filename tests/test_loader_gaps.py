"""Loaders of real data sets fed small hand-written copies with gaps and odd cells (no shared data needed).

VLDB 2017: a ``truth.csv`` with gaps, or with truths of items no one answered, loads with one warning counting
them (it used to pass a left join silently). PandaLM: a verdict missing from one row, a verdict stored as 1.0, an
``idx`` of another kind, a null instruction or response, a list in a text field: each is named at its own file,
column and row (they used to be blamed on another row and column, on another file, or raised a raw TypeError).
Also: another published set's folder or file is refused rather than read as the set asked for; a folder of UKPConvArg1
files names the file and row of an error; a set's own file or innermost folder reads its folder; JSON ids stay text.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets import AccordError, ValidationError
from accord.datasets.loaders import load_pandalm, load_snow2008, load_ukpconvarg1, load_vldb17

FEW = settings(max_examples=25, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


def _vldb(folder: Path, n_items: int, truth_items: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{100 + i},w{j},{(i + j) % 2}" for i in range(n_items) for j in range(3)]
    (folder / "answer.csv").write_text("question,worker,answer\n" + "\n".join(rows) + "\n")
    (folder / "truth.csv").write_text("question,truth\n" + "".join(f"{100 + i},{i % 2}\n" for i in truth_items))
    return folder


@FEW
@given(st.integers(2, 12), st.data())
def test_vldb_truth_gaps_are_counted_in_a_warning(tmp_path_factory, n_items, data):
    known = sorted(data.draw(st.sets(st.integers(0, n_items - 1), max_size=n_items - 1)))
    folder = _vldb(tmp_path_factory.mktemp("vldb"), n_items, known)
    with pytest.warns(UserWarning, match=rf"{n_items - len(known)} of {n_items} answered items have no truth"):
        table = load_vldb17("duck", folder)
    without = table.drop_duplicates("pair_id")["gold"].isna().sum()
    assert without == n_items - len(known)


@FEW
@given(st.integers(1, 6), st.integers(1, 5))
def test_vldb_truths_of_unanswered_items_are_counted(tmp_path_factory, n_items, extra):
    folder = _vldb(tmp_path_factory.mktemp("vldb"), n_items, list(range(n_items + extra)))
    with pytest.warns(UserWarning, match=rf"{extra} truths name items that no row of answer.csv answers"):
        table = load_vldb17("duck", folder)
    assert table["gold"].notna().all()
    assert table["pair_id"].nunique() == n_items


def test_vldb_complete_truth_loads_without_warning(tmp_path):
    folder = _vldb(tmp_path / "set", 4, [0, 1, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_vldb17("duck", folder)["gold"].notna().all()


# -- PandaLM --------------------------------------------------------------------------------------------------


def _pandalm(folder: Path, items: list[dict], judge: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "testset-v1.json").write_text(json.dumps(items))
    gpt = judge if judge is not None else [{"idx": r["idx"], "gpt_result": "1", "gpt_reason": "r"} for r in items]
    (folder / "gpt-3.5-turbo-testset-v1.json").write_text(json.dumps(gpt))
    (folder / "pandalm-7b-testset-v1.json").write_text(json.dumps(
        [{"idx": r["idx"], "pandalm_result": 2, "pandalm_reason": "r"} for r in items]))
    return folder


def _items(n: int) -> list[dict]:
    return [{"idx": i, "motivation_app": "app", "cmp_key": "m1_m2", "instruction": f"do {i}", "input": "",
             "response1": f"one {i}", "response2": f"two {i}", "annotator1": i % 3, "annotator2": 1,
             "annotator3": 2} for i in range(n)]


@FEW
@given(st.integers(2, 8), st.data(), st.sampled_from(["annotator1", "annotator2", "annotator3"]),
       st.sampled_from(["null", "absent"]))
def test_pandalm_missing_verdict_is_named_at_its_row(tmp_path_factory, n, data, column, how):
    """A gap turns the JSON column into floats: the error used to blame row 0 and its 2.0."""
    row = data.draw(st.integers(0, n - 1))
    items = _items(n)
    if how == "null":
        items[row][column] = None
    else:
        del items[row][column]
    folder = _pandalm(tmp_path_factory.mktemp("pandalm"), items)
    with pytest.raises(ValidationError, match="verdict") as caught:
        load_pandalm(folder)
    assert (caught.value.column, caught.value.row) == (column, row)
    assert caught.value.source.endswith("testset-v1.json")


@FEW
@given(st.integers(2, 8), st.data())
def test_pandalm_whole_float_verdicts_are_verdicts(tmp_path_factory, n, data):
    row = data.draw(st.integers(0, n - 1))
    items = _items(n)
    items[row]["annotator1"] = float(items[row]["annotator1"])
    table = load_pandalm(_pandalm(tmp_path_factory.mktemp("pandalm"), items), include_ai_judges=False)
    expected = load_pandalm(_pandalm(tmp_path_factory.mktemp("plain"), _items(n)), include_ai_judges=False)
    assert table["label"].tolist() == expected["label"].tolist()


@FEW
@given(st.integers(2, 8), st.data(), st.sampled_from([("idx", "3x", "mix texts and numbers"),
                                                      ("idx", None, "missing id"),
                                                      ("instruction", None, "missing text"),
                                                      ("response2", None, "missing text"),
                                                      ("input", ["x"], "not a list")]))
def test_pandalm_odd_item_cells_are_named_in_the_human_file(tmp_path_factory, n, data, case):
    column, value, problem = case
    row = data.draw(st.integers(1, n - 1))  # row 0 sets the kind of the ids
    items = _items(n)
    items[row][column] = value
    folder = _pandalm(tmp_path_factory.mktemp("pandalm"), items)
    with pytest.raises(ValidationError, match=problem) as caught:
        load_pandalm(folder)
    assert (caught.value.column, caught.value.row) == (column, row)
    assert caught.value.source == str(folder / "testset-v1.json")


def test_pandalm_boolean_response_is_kept(tmp_path):
    """The published file stores a few one-word responses as JSON true; they stay loadable."""
    items = _items(3)
    items[1]["response1"] = True
    assert len(load_pandalm(_pandalm(tmp_path / "p", items), include_ai_judges=False)) == 9


# -- UKPConvArg1 / UKPConvArg2: a line cut short, an element missing -----------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def _cut_field(line: str, keep: int) -> str:
    """The line with only its first ``keep`` tab-separated fields (a line cut short)."""
    return "\t".join(line.rstrip("\n").split("\t")[:keep]) + "\n"


@pytest.mark.parametrize("keep", [2, 3])
@pytest.mark.parametrize("row", [0, 1])
def test_ukp_strict_line_cut_short_is_named(tmp_path, keep, row):
    """A strict CSV line without its last field(s) used to load with the argument text missing (NaN)."""
    from accord.datasets.loaders import load_ukpconvarg1

    lines = (FIXTURES / "ukp" / "mini-debate_side-a.csv").read_text().splitlines(keepends=True)
    lines[1 + row] = _cut_field(lines[1 + row], keep)
    path = tmp_path / "mini-debate_side-a.csv"
    path.write_text("".join(lines))
    with pytest.raises(ValidationError, match="missing or empty field") as caught:
        load_ukpconvarg1(path, variant="strict")
    assert (caught.value.column, caught.value.row, caught.value.source) == (["#id", "label", "a1", "a2"][keep], row,
                                                                             str(path))


@pytest.mark.parametrize(("pair_id", "problem"), [("1011", "pair id must be"), ("10_", "pair id must be"),
                                                   ("", "missing or empty field")])
def test_ukp_strict_pair_id_without_two_argument_ids(tmp_path, pair_id, problem):
    from accord.datasets.loaders import load_ukpconvarg1

    lines = (FIXTURES / "ukp" / "mini-debate_side-a.csv").read_text().splitlines(keepends=True)
    lines[2] = pair_id + lines[2][lines[2].index("\t"):]
    path = tmp_path / "mini-debate_side-a.csv"
    path.write_text("".join(lines))
    with pytest.raises(ValidationError, match=problem) as caught:
        load_ukpconvarg1(path, variant="strict")
    assert (caught.value.column, caught.value.row) == ("#id", 1)


def test_ukp_strict_header_only_file_is_refused(tmp_path):
    from accord.datasets.loaders import load_ukpconvarg1

    path = tmp_path / "mini-debate_side-a.csv"
    path.write_text((FIXTURES / "ukp" / "mini-debate_side-a.csv").read_text().splitlines(keepends=True)[0])
    with pytest.raises(ValidationError, match="no pairs"):
        load_ukpconvarg1(path, variant="strict")


@pytest.mark.parametrize(("element", "column"), [("text", "arg1/text"), ("turkID", "turkID"), ("value", "value")])
def test_ukp_xml_missing_element_is_named_in_its_file(tmp_path, element, column):
    """A missing <text> used to load as a pair without its argument; a missing <turkID> or <value> was blamed on a
    row of all files together, with the folder as the source."""
    from accord.datasets.loaders import load_ukpconvarg1

    text = (FIXTURES / "ukp" / "mini-debate_side-a.xml").read_text()
    start = text.index(f"<{element}>")
    end = text.index(f"</{element}>", start) + len(f"</{element}>")
    folder = tmp_path / "xml"
    folder.mkdir()
    (folder / "mini-debate_side-a.xml").write_text(text)  # an intact file beside the broken one
    broken = folder / "other-debate_side-b.xml"
    broken.write_text(text[:start] + text[end:])
    with pytest.raises(ValidationError, match="missing or empty element") as caught:
        load_ukpconvarg1(folder)
    assert (caught.value.source, caught.value.column, caught.value.row) == (str(broken), column, 0)


@pytest.mark.parametrize("keep", [2, 3])
def test_ukp2_line_cut_short_is_named(tmp_path, keep):
    from accord.datasets.loaders import load_ukpconvarg2

    lines = (FIXTURES / "ukp2" / "mini-debate_side-a.xml.csv").read_text().splitlines(keepends=True)
    lines[1] = _cut_field(lines[1], keep)
    path = tmp_path / "mini-debate_side-a.xml.csv"
    path.write_text("".join(lines))
    with pytest.raises(ValidationError, match="missing or empty field") as caught:
        load_ukpconvarg2(path)
    assert (caught.value.column, caught.value.row) == (["pair_id", "reasons", "more", "less"][keep], 1)


# -- loaders of nested records: odd values where a verdict, a list or a time belongs --------------------------


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


ODD_NESTED = st.sampled_from([{}, {"x": 1}, [], ["A-is-clearly-better"], 3, 1.5, True])


@FEW
@given(ODD_NESTED, st.data())
def test_multipref_verdict_of_another_kind_is_named(value, data):
    """A JSON object or list where the verdict belongs raised pandas' 'unhashable type'."""
    from accord.datasets.loaders import load_multipref

    records = _records("hub/multipref.jsonl")
    row = data.draw(st.integers(0, len(records) - 1))
    records[row]["normal_worker_annotations"][0]["overall_pref"] = value
    with pytest.raises(ValidationError, match="value is not one of") as caught:
        load_multipref(pd.DataFrame(records))
    assert caught.value.column == "overall_pref"


@FEW
@given(st.sampled_from([0, 1.5, True, [], {"t": 1}]), st.data())
def test_prm800k_timestamp_that_is_not_a_text_is_named(value, data):
    """A number among ISO texts used to fail the sort by time with a raw TypeError."""
    from accord.datasets.loaders import load_prm800k

    records = _records("steps/prm800k_phase1.jsonl")
    row = data.draw(st.integers(0, len(records) - 1))
    records[row]["timestamp"] = value
    with pytest.raises(ValidationError, match="timestamp must be a text") as caught:
        load_prm800k(pd.DataFrame(records))
    assert (caught.value.column, caught.value.row) == ("timestamp", row)


@FEW
@given(st.sampled_from([-1, 1.5, "x", {"text": "a"}]), st.data())
def test_prm800k_completions_that_are_not_a_list_are_named(value, data):
    from accord.datasets.loaders import load_prm800k

    records = _records("steps/prm800k_phase2.jsonl")
    row = data.draw(st.integers(0, len(records) - 1))
    records[row]["label"]["steps"][0]["completions"] = value
    with pytest.raises(ValidationError, match="list of completions") as caught:
        load_prm800k(pd.DataFrame(records))
    assert (caught.value.column, caught.value.row) == ("label.steps[0].completions", row)


@pytest.mark.parametrize("phase", [1, 2])
def test_prm800k_from_parquet_equals_from_json_lines(tmp_path, phase):
    """Parquet (and Hugging Face datasets) give nested lists as numpy arrays and nullable indices as floats: the
    file used to be reported as corrupt (dtype=False reached the Parquet reader), its records as having no steps."""
    from accord.datasets.loaders import load_prm800k

    source = FIXTURES / "steps" / f"prm800k_phase{phase}.jsonl"
    path = tmp_path / "records.parquet"
    pd.read_json(source, lines=True, dtype=False).to_parquet(path)
    from_parquet = load_prm800k(path)
    from_json = load_prm800k(source)
    pd.testing.assert_frame_equal(from_parquet.astype(str), from_json.astype(str))
    pd.testing.assert_frame_equal(load_prm800k(pd.read_parquet(path)).astype(str), from_json.astype(str))


@FEW
@given(st.sampled_from([1.5, -0.5, 2.25]), st.data())
def test_fractional_published_preference_and_confidence_are_unknown(value, data):
    """A fractional covariate raised pandas' 'cannot safely cast non-equivalent float64 to int64'; it is unknown
    (NA), as a value off the scale or a text already was."""
    from accord.datasets.loaders import load_helpsteer3_preference, load_summarize_from_feedback

    records = _records("hub/helpsteer3_preference.jsonl")
    row = data.draw(st.integers(0, len(records) - 1))
    records[row]["overall_preference"] = value
    table = load_helpsteer3_preference(pd.DataFrame(records))
    assert "item_published_preference" in table.columns
    comparisons = _records("hub/summarize_comparisons.jsonl")
    row = data.draw(st.integers(0, len(comparisons) - 1))
    comparisons[row].setdefault("extra", {})["confidence"] = value
    table = load_summarize_from_feedback(pd.DataFrame(comparisons))
    assert len(table) == len(comparisons)  # one judgment per record, in the records' order
    assert table["confidence"].isna().iloc[row]


# -- a CSV/TSV header that names a column twice -------------------------------------------------------------


@FEW
@given(st.sampled_from(["pair_id", "annotator", "label", "gold", "prompt"]), st.sampled_from(["csv", "tsv", "csv.gz"]),
       st.integers(0, 5))
def test_csv_header_naming_a_column_twice_is_refused(tmp_path_factory, column, fmt, position):
    """pandas reads the second 'label' as 'label.1': the table was read, silently, with the first one's values."""
    import gzip

    from accord.datasets import read_judgments

    names = ["pair_id", "annotator", "label", "gold", "prompt"]
    names.insert(min(position, len(names)), column)
    sep = "\t" if fmt == "tsv" else ","
    rows = [sep.join(names)] + [sep.join({"pair_id": f"p{i}", "annotator": f"w{i}", "label": "AB"[i],
                                          "gold": "A", "prompt": "q"}[n] for n in names) for i in range(2)]
    text = "\n".join(rows) + "\n"
    path = tmp_path_factory.mktemp("dup") / f"judgments.{fmt}"
    path.write_bytes(gzip.compress(text.encode()) if fmt.endswith(".gz") else text.encode())
    with pytest.raises(ValidationError, match="names this column more than once") as caught:
        read_judgments(path)
    assert (caught.value.column, caught.value.source) == (column, str(path))


def test_blank_header_cells_are_not_a_repeated_name(tmp_path):
    from accord.datasets import read_judgments

    path = tmp_path / "judgments.csv"
    path.write_text("pair_id,annotator,label,,\np1,a,A,,\np1,b,B,,\n")
    assert read_judgments(path)["label"].tolist() == ["A", "B"]


# -- another published set's folder or file, given for the set asked for ---------------------------------------


@pytest.mark.parametrize(("asked", "given"), [("dog", "d_sentiment"), ("duck", "d_jn-product"),
                                              ("sentiment", "D_DUCK IDENTIFICATION")])
def test_vldb_folder_of_another_set_is_refused(tmp_path, asked, given):
    """Every VLDB set folder holds the same answer.csv and truth.csv, and binary answers fit Dog's classes 0-3: the
    folder of another set was read as the set asked for, without a word (the sentiment answers as Dog)."""
    folder = _vldb(tmp_path / given, 4, [0, 1, 2, 3])
    with pytest.raises(AccordError, match=rf"file {re.escape(str(folder))}: this is the VLDB 2017 set"):
        load_vldb17(asked, folder)
    # the set's own folder, and a renamed copy, are read as the set asked for
    assert len(load_vldb17(given, folder)) == 12
    assert len(load_vldb17(asked, _vldb(tmp_path / "my copy", 4, [0, 1, 2, 3]))) == 12


def test_snow_file_of_another_set_is_refused(tmp_path):
    """TEMP's classes (1/2) fit WSD's (1/2/3): the TEMP file given for WSD was read as WSD, without a word."""
    rows = "!amt_annotation_ids\t!amt_worker_ids\torig_id\tresponse\tgold\nh1\tw1\t1\t1\t1\nh1\tw2\t1\t2\t1\n"
    temp = tmp_path / "temp.standardized.tsv"
    temp.write_text(rows, encoding="utf-8")
    with pytest.raises(AccordError, match=rf"file {re.escape(str(temp))}: this is the Snow 2008 set 'temp', not 'wsd'"):
        load_snow2008("wsd", temp)
    assert len(load_snow2008("temp", temp)) == 2
    renamed = tmp_path / "my-wsd-copy.tsv"
    renamed.write_text(rows, encoding="utf-8")
    assert load_snow2008("wsd", renamed).attrs["accord"]["classes"] == [1, 2, 3]


# -- UKPConvArg1: a folder of files, an error named in its own file --------------------------------------------


UKP_FIXTURES = Path(__file__).parent / "fixtures" / "ukp"


def test_ukp_error_of_a_folder_names_the_file_and_its_row(tmp_path):
    """A folder's files are checked as one table: a worker judging a pair twice in the second file was named under
    the folder, at its row among every file's rows (row 5), which no file has."""
    xml = (UKP_FIXTURES / "mini-debate_side-a.xml").read_text(encoding="utf-8")
    first = xml.replace("10_11", "20_21").replace("<id>10</id>", "<id>20</id>").replace("<id>11</id>", "<id>21</id>")
    (tmp_path / "a-debate_side.xml").write_text(first, encoding="utf-8")
    second = tmp_path / "b-debate_side.xml"
    second.write_text(xml.replace("<turkID>W2</turkID>", "<turkID>W1</turkID>"), encoding="utf-8")
    assert len(load_ukpconvarg1(tmp_path / "a-debate_side.xml")) == 4  # the first file's four assignments
    with pytest.raises(ValidationError, match=rf"^file {re.escape(str(second))}, column 'turkID', row 1: annotator "
                                              r"judged this pair more than once"):
        load_ukpconvarg1(tmp_path)
    # the strict CSVs: a pair of the first file repeated on the second line of the second
    csv_rows = (UKP_FIXTURES / "mini-debate_side-a.csv").read_text(encoding="utf-8").splitlines()
    strict = tmp_path / "strict"
    strict.mkdir()
    (strict / "a-debate_side.csv").write_text("\n".join(csv_rows) + "\n", encoding="utf-8")
    repeated = strict / "b-debate_side.csv"
    repeated.write_text("\n".join([csv_rows[0], csv_rows[2].replace("12_10", "30_31"), csv_rows[1]]) + "\n",
                        encoding="utf-8")
    with pytest.raises(ValidationError, match=rf"^file {re.escape(str(repeated))}, column '#id', row 1: "):
        load_ukpconvarg1(strict, variant="strict")


def test_pandalm_and_vldb_read_the_folder_of_a_file_of_theirs(tmp_path):
    """Given one of the set's files, its folder is read (the files were looked for inside the file:
    '.../testset-v1.json/testset-v1.json: not found'); a file of another name is named as no folder."""
    folder = _pandalm(tmp_path / "pandalm", _items(3))
    for name in ("testset-v1.json", "gpt-3.5-turbo-testset-v1.json"):
        pd.testing.assert_frame_equal(load_pandalm(folder / name), load_pandalm(folder))
    vldb = _vldb(tmp_path / "vldb", 3, [0, 1, 2])
    for name in ("answer.csv", "truth.csv"):
        pd.testing.assert_frame_equal(load_vldb17("duck", vldb / name), load_vldb17("duck", vldb))
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(AccordError, match=rf"file {re.escape(str(other))}: is a file, not the PandaLM folder"):
        load_pandalm(other)
    with pytest.raises(AccordError, match=rf"file {re.escape(str(other))}: is a file, not a VLDB 2017 folder"):
        load_vldb17("duck", other)


def test_load_by_name_reads_the_folder_that_holds_a_vldb_sets_files(tmp_path, monkeypatch):
    """``load("vldb17-dog", data_dir=".../s4_Dog data")``, the folder holding the set's answer.csv and truth.csv, as
    load_vldb17 reads it: it was refused, the message asking for the files under '.../s4_Dog data/vldb17/'."""
    from accord.datasets.loaders import load, registry

    monkeypatch.setenv("ACCORD_CACHE_DIR", str(tmp_path / "cache"))  # (an empty cache: nothing read from there)
    own = _vldb(tmp_path / "s4_Dog data", 4, [0, 1, 2, 3])
    assert registry.locate("vldb17-dog", own, download=False) == own
    pd.testing.assert_frame_equal(load("vldb17-dog", own, download=False), load_vldb17("dog", own),
                                  check_like=True)
    # taken by its published name only: every set has the same two files, so it is no other set's folder, nor is a
    # folder of another name any set's
    with pytest.raises(AccordError, match="download=False"):
        load("vldb17-duck", own, download=False)
    with pytest.raises(AccordError, match="download=False"):
        load("vldb17-dog", _vldb(tmp_path / "my copy", 4, [0, 1, 2, 3]), download=False)
    # a folder without one of the files is still refused, saying where they go
    (own / "truth.csv").unlink()
    with pytest.raises(AccordError, match="download=False"):
        load("vldb17-dog", own, download=False)


# -- files read from JSON keep JSON's types ---------------------------------------------------------------------


def test_json_ids_of_the_hub_loaders_are_read_as_written(tmp_path):
    """The Hub and Arena loaders read JSON with pandas' dtype guessing: the judges "007" and "7" (texts in the file)
    both became the number 7, one judge who then judged a pair twice (refused, or one judgment dropped), and a
    worker id "12" came back as an integer."""
    from accord.datasets import load_chatbot_arena, load_summarize_from_feedback

    def chat(answer: str) -> list[dict]:
        return [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]

    battles = [{"model_a": "m1", "model_b": "m2", "winner": winner, "judge": judge, "conversation_a": chat("a"),
                "conversation_b": chat("b")} for judge, winner in (("007", "model_a"), ("7", "model_b"))]
    arena = tmp_path / "arena.jsonl"
    arena.write_text("".join(json.dumps(b) + "\n" for b in battles), encoding="utf-8")
    table = load_chatbot_arena(arena)
    assert table["annotator"].tolist() == ["007", "7"] and table["label"].tolist() == ["A", "B"]

    comparisons = [{"info": {"id": "t1", "post": "p"}, "summaries": [{"text": "s1"}, {"text": "s2"}], "choice": 0,
                    "worker": worker} for worker in ("007", "12")]
    summarize = tmp_path / "comparisons.json"
    summarize.write_text(json.dumps(comparisons), encoding="utf-8")
    assert load_summarize_from_feedback(summarize)["annotator"].tolist() == ["007", "12"]


@FEW
@given(st.integers(2, 6), st.data())
def test_pandalm_pair_of_one_response_is_named_at_its_item_in_the_human_file(tmp_path_factory, n, data):
    """Checked as the table built from the three files (sorted by item, five judgments each), an item whose two
    responses are the same text was named under the folder at that table's row (row 10 for the file's row 2)."""
    row = data.draw(st.integers(0, n - 1))
    items = _items(n)
    items[row]["response2"] = items[row]["response1"]
    folder = _pandalm(tmp_path_factory.mktemp("pandalm"), items)
    with pytest.raises(ValidationError, match=rf"^file {re.escape(str(folder / 'testset-v1.json'))}, column "
                                              rf"'response2', row {row}: both sides of the pair are the same"):
        load_pandalm(folder)


# -- Hub loaders: a judgment's error is named at its row of the source -----------------------------------------


@FEW
@given(st.integers(2, 5), st.data())
def test_multipref_evaluator_twice_is_named_at_the_comparisons_row(tmp_path_factory, n, data):
    """The table checked is one row per annotation (per aspect of one, as attributes): an evaluator annotating
    comparison k twice was named at its row among every comparison's annotations (row 7 for the source's row 2, 14 as
    aspects), in no row of the file."""
    from accord.datasets import load_multipref, load_multipref_aspects

    row = data.draw(st.integers(0, n - 1))
    notes = [[{"evaluator": f"e{j}", "overall_pref": "Tie"} for j in range(3)] for _ in range(n)]
    notes[row][2]["evaluator"] = "e0"
    frame = pd.DataFrame({"comparison_id": [f"c{i}" for i in range(n)], "text": "q",
                          "completion_a": [f"a{i}" for i in range(n)], "completion_b": [f"b{i}" for i in range(n)],
                          "normal_worker_annotations": notes, "expert_worker_annotations": [[] for _ in range(n)]})
    with pytest.raises(ValidationError, match=rf"column 'annotator', row {row}: annotator judged this pair more"):
        load_multipref(frame)
    with pytest.raises(ValidationError, match=rf"column 'annotator', row {row}: annotator rated this item on this"):
        load_multipref_aspects(frame)


def test_summarize_judgment_after_a_dropped_row_is_named_at_its_own_row():
    """A row whose two summaries are one text is dropped (with a warning); the rows after it were named one row up."""
    from accord.datasets import load_summarize_from_feedback

    def comparison(first: str, second: str) -> dict:
        return {"info": {"id": "t1", "post": "p"}, "summaries": [{"text": first}, {"text": second}], "choice": 0,
                "worker": "w1"}

    frame = pd.DataFrame([comparison("same", "same"), comparison("s1", "s2"), comparison("s2", "s1")])
    with pytest.warns(UserWarning, match="identical"), \
            pytest.raises(ValidationError, match=r"column 'annotator', row 2: annotator judged this pair more"):
        load_summarize_from_feedback(frame)


WRITTEN_TEXTS = st.one_of(st.sampled_from(["007", "NA", "None", "null", "N/A", "nan", "1e3", "-0", "TRUE", "#N/A"]),
                          st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=5)
                          .filter(lambda s: s.strip() != ""))


@settings(max_examples=3, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # (two loaders, four files an example)
@given(st.lists(WRITTEN_TEXTS, min_size=6, max_size=6, unique=True), st.sampled_from(["csv", "tsv"]))
def test_hub_sets_from_csv_keep_their_texts_and_pair_ids_as_jsonl_does(tmp_path_factory, texts, fmt):
    """The Hub loaders read a CSV copy with pandas' guessing: a response "N/A" or "None" came back as no response
    (NaN, passed on as a pair without its text), "1e3" as 1000.0 and a prompt "007" as 7, so the same data gave other
    texts and other pair ids than its JSON Lines or Parquet twin."""
    from accord.datasets import load_chatbot_arena, load_helpsteer2_preference

    folder = tmp_path_factory.mktemp("hub")
    votes = [{"strength": -2, "justification": "x"}, {"strength": 1, "justification": "y"}]
    helpsteer = pd.DataFrame({"prompt": texts[0:2], "response_1": texts[2:4], "response_2": texts[4:6],
                              "all_preferences_unprocessed": [votes, votes], "preference_strength": [-1, 1]})
    arena = pd.DataFrame({"id": texts[0:2], "prompt": [json.dumps([t]) for t in texts[0:2]],
                          "response_a": [json.dumps([t]) for t in texts[2:4]],
                          "response_b": [json.dumps([t]) for t in texts[4:6]], "model_a": texts[1:3],
                          "model_b": texts[3:5], "winner_model_a": [1, 0], "winner_model_b": [0, 1],
                          "winner_tie": [0, 0]})
    for loader, frame in ((load_helpsteer2_preference, helpsteer), (load_chatbot_arena, arena)):
        jsonl, text = folder / f"{loader.__name__}.jsonl", folder / f"{loader.__name__}.{fmt}"
        frame.to_json(jsonl, orient="records", lines=True)
        frame.map(lambda v: json.dumps(v) if isinstance(v, list) else v).to_csv(
            text, index=False, sep="," if fmt == "csv" else "\t")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (pairs whose two sides are one text are dropped with a warning)
            expected, read = loader(jsonl), loader(text)
        pd.testing.assert_frame_equal(read, expected, check_dtype=False)
