"""Round trips at the boundary: a validated table through crowd-kit's layout and back, and through every file format
accord writes (CSV/TSV/JSON Lines/JSON/Parquet, compressed or not) and reads back, gives the same validated table.

Ids and texts come back as written: "007" is not 7, "1e3" is not 1000.0, leading and trailing spaces stay, and the
words pandas' CSV reader takes for missing values ("NA", "None", "null", "nan", "N/A") are ids and texts like any
other (they used to come back as missing ids, and a response "N/A" as no response).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accord.datasets import AccordError, from_crowdkit, read_judgments, to_crowdkit, validate
from accord.datasets.cleaned import written_messages
from accord.datasets.io import write_table

RT = settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])

ODD_IDS = ["007", "NA", "None", "null", "nan", "N/A", "NULL", "1e3", " a ", "a ", "-0", "TRUE", "inf", "#x", "ü",
           'q"uote', "1,5"]
IDS = st.one_of(st.sampled_from(ODD_IDS),
                st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=6)
                .filter(lambda s: s.strip() != ""))
FORMATS = ["csv", "csv.gz", "tsv", "csv.bz2", "jsonl", "jsonl.gz", "json", "parquet"]
FORMS = {"preference": (["A", "B", "tie", "A"], {}), "graded": ([1, -2, 0, 2], {"scale": 2}),
         "categorical": ([0, 1, 1, 2], {"form": "categorical"}), "class names": (None, {"form": "categorical"})}
#: class names a CSV reader guessed as numbers ("01" as 1, "1.0" and "1" as one class) or as missing ("None", "NA")
ODD_CLASSES = ["01", "02", "1.0", "1", "None", "NA", "null", "nan", "N/A", "1e3", "-0", "TRUE", "007", "0.50"]
#: a class that is no number, so that the others are class names too (a column of numbers and "NA" is R's numbers
#: with a missing label; read_judgments' docstring)
WORD_CLASSES = st.sampled_from(["cat", "dog", "spam", "ham"])


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, dict]:
    pairs = draw(st.lists(IDS, min_size=2, max_size=2, unique=True))
    workers = draw(st.lists(IDS, min_size=2, max_size=2, unique=True))
    labels, kwargs = FORMS[draw(st.sampled_from(sorted(FORMS)))]
    if labels is None:
        names = draw(st.lists(st.one_of(st.sampled_from(ODD_CLASSES), IDS), min_size=2, max_size=2, unique=True))
        names.append(draw(WORD_CLASSES.filter(lambda word: word not in names)))
        labels = [names[0], names[1], names[1], names[2]]
    texts = draw(st.lists(IDS, min_size=4, max_size=4, unique=True))
    table = pd.DataFrame({"pair_id": [pairs[0], pairs[0], pairs[1], pairs[1]],
                          "annotator": [workers[0], workers[1], workers[0], workers[1]], "label": labels,
                          "prompt": [pairs[0], pairs[0], pairs[1], pairs[1]],
                          "response_a": [texts[0], texts[0], texts[2], texts[2]],
                          "response_b": [texts[1], texts[1], texts[3], texts[3]]})
    return table, kwargs


def _same(written: pd.DataFrame, read: pd.DataFrame) -> None:
    for column in written.columns:
        assert written[column].astype(object).tolist() == read[column].astype(object).tolist(), column


@RT
@given(tables())
def test_crowdkit_layout_and_back(case):
    table, kwargs = case
    checked = validate(table, **kwargs)
    back = from_crowdkit(to_crowdkit(checked), **kwargs)
    _same(checked, back)
    assert back.attrs["accord"] == checked.attrs["accord"]


@RT
@given(tables(), st.sampled_from(FORMATS))
def test_written_table_reads_back_equal(tmp_path_factory, case, fmt):
    table, kwargs = case
    checked = validate(table, **kwargs)
    path = write_table(checked, tmp_path_factory.mktemp("rt") / f"judgments.{fmt}")
    back = read_judgments(path, **kwargs)
    _same(checked, back)
    assert back.attrs["accord"] == checked.attrs["accord"]


@pytest.mark.parametrize("word", ["NA", "None", "null", "nan", "N/A", "NULL", "#N/A", "<NA>"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz"])
def test_missing_value_words_are_ids_and_texts_in_csv(tmp_path, word, fmt):
    table = validate(pd.DataFrame({"pair_id": [word, word], "annotator": ["a", word], "label": ["A", "B"],
                                   "response_a": [word, word], "response_b": ["x", "x"]}))
    back = read_judgments(write_table(table, tmp_path / f"t.{fmt}"))
    _same(table, back)


def test_an_empty_cell_is_still_a_missing_id_and_na_is_still_a_missing_gold(tmp_path):
    """Only ids and texts keep the words: a gold written NA by R is no gold, an empty id is a missing id."""
    path = tmp_path / "t.csv"
    path.write_text("pair_id,annotator,label,gold\np1,a,A,NA\np1,b,B,A\n")
    assert read_judgments(path)["gold"].isna().tolist() == [True, False]
    path.write_text("pair_id,annotator,label\np1,a,A\n,b,B\n")
    with pytest.raises(ValueError, match="column 'pair_id', row 1: missing id"):
        read_judgments(path)


@pytest.mark.parametrize("huge", [2**64, 2**70])
def test_json_lines_with_an_integer_beyond_64_bits_is_named_as_such(tmp_path, huge):
    """Every line is valid JSON; the error used to say 'line 0: invalid JSON ... is the file truncated?'."""
    path = tmp_path / "judgments.jsonl"
    path.write_text(f'{{"pair_id": {huge}, "annotator": "a", "label": "A"}}\n'
                    '{"pair_id": 1, "annotator": "b", "label": "B"}\n')
    with pytest.raises(ValueError, match="valid JSON that pandas cannot read") as caught:
        read_judgments(path)
    assert str(path) in str(caught.value) and "truncated" not in str(caught.value)


@RT
@given(st.lists(st.text("ab \r\n,\t\"", min_size=1, max_size=6).filter(lambda s: s.strip() != ""), min_size=3,
                max_size=3, unique=True),
       st.sampled_from(["csv", "tsv", "csv.gz"]))
def test_texts_with_carriage_returns_come_back_whole(tmp_path_factory, texts, fmt):
    """pandas quotes a field holding "\\n" but not one holding a lone "\\r", which the reader takes for a line end:
    the text came back split over two rows (and the table as missing labels)."""
    table = validate(pd.DataFrame({"pair_id": ["p1", "p1"], "annotator": ["a", "b"], "label": ["A", "B"],
                                   "prompt": [texts[0]] * 2, "response_a": [texts[1]] * 2,
                                   "response_b": [texts[2]] * 2, "item_weight": [1.5, None]}))
    back = read_judgments(write_table(table, tmp_path_factory.mktemp("cr") / f"t.{fmt}"))
    _same(table.drop(columns="item_weight"), back.drop(columns="item_weight"))
    assert back["item_weight"].iloc[0] == 1.5 and pd.isna(back["item_weight"].iloc[1])


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "json"])
def test_a_json_table_keeps_its_numbers_as_the_csv_and_parquet_ones_do(tmp_path, suffix):
    # write_table wrote JSON with pandas' default 10 decimals: soft labels (or an annotator table) written as
    # .jsonl read back 1/3 as 0.3333333333 and a P(tie) of 3e-11 as 0, where their .csv and .parquet twins kept them
    frame = pd.DataFrame({"pair_id": ["p1", "p2"], "p_A": [1 / 3, 0.25], "p_B": [2 / 3 - 3e-11, 0.75],
                          "p_tie": [3e-11, 0.0]})
    path = write_table(frame, tmp_path / f"soft.{suffix}")
    back = pd.read_json(path, lines=suffix != "json", dtype=False)
    pd.testing.assert_frame_equal(back, frame, check_exact=False, rtol=1e-13, atol=1e-16)
    assert back.loc[0, "p_tie"] > 0


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz"])
@pytest.mark.parametrize("names", [["NA", "null"], ["007", "7"], ["1e3", "None"]])
def test_attribute_names_come_back_as_written_from_csv(tmp_path, fmt, names):
    """An attribute is a name (it becomes part of column names): "007" and "7" are two attributes, "NA" is one. The
    reader guessed their types: "NA" and "null" came back missing ("attribute missing from this row"), and names that
    all look like numbers as numbers ("attribute must be a name (text)", value 7 for "007")."""
    from accord.datasets import validate_attributes

    table = validate_attributes(pd.DataFrame({
        "response_id": ["r1", "r1", "r2", "r2"], "annotator": ["a", "a", "a", "b"],
        "attribute": [names[0], names[1], names[0], names[1]], "label": [0, 1, 2, 1], "scale_min": 0,
        "scale_max": 2}))
    back = read_judgments(write_table(table, tmp_path / f"ratings.{fmt}"))
    _same(table, back)
    assert back.attrs["accord"]["attributes"] == names


@pytest.mark.parametrize("word", ["NA", "None", "null", "N/A"])
def test_response_texts_of_attribute_ratings_come_back_as_written_from_csv(tmp_path, word):
    """A rated response's text is read as written, as a pair's response_a/response_b are: a response "None" came back
    as no text, and `accord aggregate` then failed on "column 'chosen', row 1: missing response text"."""
    from accord.datasets import validate_attributes

    table = validate_attributes(pd.DataFrame({
        "response_id": ["r1", "r2"], "annotator": ["a", "a"], "attribute": ["help", "help"], "label": [0, 2],
        "scale_min": 0, "scale_max": 2, "prompt": ["q", "q"], "response": [word, "x"]}))
    back = read_judgments(write_table(table, tmp_path / "ratings.csv"))
    _same(table, back)


@pytest.mark.parametrize("item", ["response", "pair"])
def test_multi_attribute_table_through_crowdkit_layout_and_back(item):
    """A table rating responses went out with its response_id and no task (neither convention), and from_crowdkit
    refused it ('missing required crowd-kit column'); the rated item is crowd-kit's task whichever it is."""
    from accord.datasets import validate_attributes

    key = f"{item}_id"
    sides = {"response": ["r1", "r1", "r2", "r2"]} if item == "response" else {"response_a": ["x", "x", "y", "y"],
                                                                               "response_b": ["z", "z", "w", "w"]}
    table = validate_attributes(pd.DataFrame({key: ["i1", "i1", "i2", "i2"], "annotator": ["a", "b", "a", "b"],
                                              "attribute": ["help"] * 4, "label": [0, 3, 4, 1], **sides}),
                                scales=(0, 4))
    crowdkit = to_crowdkit(table)
    assert {"task", "worker", "label"} <= set(crowdkit.columns) and key not in crowdkit.columns
    back = from_crowdkit(crowdkit, scale=(0, 4))
    _same(table, back)
    assert back.attrs["accord"] == table.attrs["accord"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz"])
@pytest.mark.parametrize("with_gold", [True, False])
def test_a_label_column_called_response_is_read_as_labels(tmp_path, fmt, with_gold):
    """Snow 2008's files call the label 'response' (``--columns response=label``): since a rated response's text is
    read as written, its labels came back as the texts '1'/'0' (classes of text; beside the gold 1, 'gold is not of
    the labels' kind'). A column renamed to something else is read as what it becomes."""
    table = pd.DataFrame({"item": ["i1", "i1", "i2"], "worker": ["w1", "w2", "w1"], "response": [1, 0, 1],
                          **({"gold": [1, 1, 0]} if with_gold else {})})
    path = write_table(table, tmp_path / f"snow.{fmt}")
    read = read_judgments(path, columns={"item": "task", "response": "label"})
    assert read["label"].tolist() == [1, 0, 1] and read.attrs["accord"]["form"] == "categorical"


@pytest.mark.parametrize("checked", [False, True])
def test_to_crowdkit_on_a_step_table_says_step_tables_have_no_crowdkit_layout(checked):
    """A step table (solution_id, step, annotator, label) was refused as 'missing required column pair_id', as if a
    column were misnamed; now one line that step tables have no crowd-kit layout, naming the step models."""
    from accord.datasets.steps import validate_steps

    table = pd.DataFrame({"solution_id": ["s0", "s0", "s1"], "step": [0, 1, 0], "annotator": ["a", "b", "a"],
                          "label": [1, 0, 1]})
    with pytest.raises(AccordError, match="step table") as caught:
        to_crowdkit(validate_steps(table) if checked else table)
    message = str(caught.value)
    assert "\n" not in message and "pair_id" not in message and "crowd-kit" in message


#: fewer examples for the message round trips (each writes and reads a file; under 3 s a test)
FEW_FILES = settings(RT, max_examples=8)
MESSAGE_TEXTS = st.one_of(st.sampled_from(["[1] first", "[]", "[x]", '{"a": 1}', "a, \"b\"\nc", "\t[", "NA", "ü"]),
                          st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8))


@st.composite
def message_cells(draw: st.DrawFn, role: str) -> list[dict]:
    return [{"role": draw(st.sampled_from([role, "system"])), "content": draw(MESSAGE_TEXTS)}
            for _ in range(draw(st.integers(1, 2)))]


def _as_lists(values: pd.Series) -> list:
    return [v.tolist() if hasattr(v, "tolist") else v for v in values]


@FEW_FILES
@given(message_cells("user"), message_cells("assistant"), message_cells("assistant"),
       st.sampled_from(["csv", "tsv", "csv.gz", "jsonl", "parquet"]))
def test_chat_messages_in_judgments_come_back_as_messages_from_every_format(tmp_path_factory, prompt, a, b, fmt):
    """A CSV cell holds text: messages were written as Python's repr and read back as that text, where the table's
    JSON Lines or Parquet twin gave the messages: one dataset, two training texts by the file's format."""
    assume(a != b)
    table = validate(pd.DataFrame({"pair_id": ["p1", "p1"], "annotator": ["a", "b"], "label": ["A", "B"],
                                   "prompt": [prompt] * 2, "response_a": [a] * 2, "response_b": [b] * 2}))
    back = read_judgments(write_table(table, tmp_path_factory.mktemp("msg") / f"judgments.{fmt}"))
    for column, messages in (("prompt", prompt), ("response_a", a), ("response_b", b)):
        assert [written_messages(v) for v in back[column]] == [messages] * 2, column


def _json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a user writes messages into a CSV file: each list cell as its JSON text."""
    return frame.apply(lambda column: column.map(lambda v: v if isinstance(v, str) else json.dumps(v)))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_a_preference_file_of_json_messages_trains_on_messages_whatever_its_format(tmp_path, fmt):
    """Hugging Face's conversational layout written to CSV by hand (json.dumps of each cell) was read as the JSON
    text of the messages: the reward model trained on '[{"role": ...' where the same pairs from JSON Lines or Parquet
    trained on the conversation."""
    from accord.reward.data import load_pairs

    user = [{"role": "user", "content": "[1] list three, please"}]
    frame = pd.DataFrame({"prompt": [user, [{"role": "user", "content": "hi"}]],
                          "chosen": [[{"role": "assistant", "content": "a, b, c"}],
                                     [{"role": "assistant", "content": "hello\nthere"}]],
                          "rejected": [[{"role": "assistant", "content": "no"}],
                                       [{"role": "assistant", "content": "[bye]"}]]})
    path = tmp_path / f"pairs.{fmt}"
    if fmt in ("csv", "tsv"):
        _json_cells(frame).to_csv(path, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    pairs, expected = load_pairs(path), load_pairs(frame)
    for column in ("prompt", "chosen", "rejected"):
        assert _as_lists(pairs[column]) == _as_lists(expected[column]), column


@FEW_FILES
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6).map(lambda s: "[" + s),
                min_size=2, max_size=2, unique=True))
def test_texts_that_start_with_a_bracket_stay_texts_in_csv(tmp_path_factory, texts):
    """Only a column whose every cell is JSON chat messages is read as messages: a response "[1] first" or "[1, 2]"
    is the text written."""
    table = validate(pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2"], "annotator": ["a", "b", "a", "b"],
                                   "label": ["A", "B", "A", "B"], "response_a": [texts[0]] * 2 + ["[1, 2]"] * 2,
                                   "response_b": [texts[1]] * 2 + ['[{"role": 1}'] * 2}))
    back = read_judgments(write_table(table, tmp_path_factory.mktemp("br") / "judgments.csv"))
    _same(table, back)


def test_a_column_mixing_json_messages_and_texts_is_read_as_text_with_a_warning(tmp_path):
    path = tmp_path / "judgments.csv"
    message = json.dumps([{"role": "assistant", "content": "x"}])
    pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["a", "b", "a"], "label": ["A", "B", "A"],
                  "response_a": ["plain", "plain", message], "response_b": ["y", "y", "z"]}).to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"column 'response_a': row 2 holds chat messages written as JSON, but row 0 "
                                         r"\(and 1 more\) is plain text") as caught:
        back = read_judgments(path)
    assert str(path) in str(caught[0].message) and "JSON Lines or Parquet" in str(caught[0].message)
    assert back["response_a"].tolist() == ["plain", "plain", message]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz"])
def test_class_names_that_look_like_numbers_or_missing_values_stay_classes_in_csv(tmp_path, fmt):
    """A crowd-kit table (task, worker, label) of class names came back from CSV with "01" and "02" as the numbers 1
    and 2, "1.0" and "1" as one class, and "None" / "NA" as missing labels ("column 'label', row 0: missing label"),
    where its JSON Lines and Parquet twins kept them as written."""
    frame = pd.DataFrame({"task": ["007", "007", "08", "08", "9"], "worker": ["w01", "w1", "w01", "w1", "NA"],
                          "label": ["None", "NA", "01", "1.0", "1"], "gold": ["NA", "NA", "01", "01", None]})
    back = read_judgments(write_table(frame, tmp_path / f"labels.{fmt}"))
    assert back["label"].tolist() == ["None", "NA", "01", "1.0", "1"]
    assert back["gold"].tolist()[:4] == ["NA", "NA", "01", "01"] and pd.isna(back["gold"].iloc[4])
    assert back["pair_id"].tolist() == ["007", "007", "08", "08", "9"]
    assert back["annotator"].tolist() == ["w01", "w1", "w01", "w1", "NA"]
    assert back.attrs["accord"]["form"] == "categorical"


def test_labels_written_as_numbers_stay_numbers_and_an_empty_or_na_label_is_a_missing_one(tmp_path):
    """Numbers stay numbers (graded strengths read as pandas reads them, "+2" too); a missing label, an empty cell or
    R's NA among numbers, is named by column and row; a gold NA beside text classes without an "NA" is no gold."""
    path = tmp_path / "t.csv"
    path.write_text("task,worker,label\n1,a,1\n1,b,2\n2,a,3\n")
    assert read_judgments(path)["label"].tolist() == [1, 2, 3]
    path.write_text("pair_id,annotator,label\np1,a,+2\np1,b,-1\np2,a,02\n")
    assert read_judgments(path, scale=3)["label"].tolist() == [2, -1, 2]
    for missing in ("", "NA"):
        path.write_text(f"task,worker,label\n1,a,1\n1,b,2\n2,a,{missing}\n")
        with pytest.raises(ValueError, match="column 'label', row 2: missing label"):
            read_judgments(path)
    path.write_text("pair_id,annotator,label\np1,a,A\np1,b,NA\np2,a,B\n")
    with pytest.raises(ValueError, match="column 'label', row 1: missing label"):
        read_judgments(path)
    path.write_text("task,worker,label,gold\n1,a,cat,NA\n1,b,dog,NA\n2,a,cat,dog\n")
    assert read_judgments(path)["gold"].isna().tolist() == [True, True, False]


@RT
@given(st.lists(st.one_of(st.sampled_from(ODD_CLASSES), IDS), min_size=2, max_size=2, unique=True), WORD_CLASSES,
       st.sampled_from(FORMATS))
def test_class_names_read_back_as_written_from_every_format(tmp_path_factory, names, word, fmt):
    """The twins of one table of class names give one table: from CSV, "NA" and "None" came back as missing labels,
    "01" as 1 and "1.0" beside "1" as one class, where JSON Lines and Parquet kept the names."""
    assume(word not in names)
    table = validate(pd.DataFrame({"task": ["p1", "p1", "p2", "p2"], "worker": ["a", "b", "a", "b"],
                                   "label": [names[0], names[1], names[1], word],
                                   "gold": [names[0], names[0], None, None]}))
    back = read_judgments(write_table(table, tmp_path_factory.mktemp("cls") / f"judgments.{fmt}"), form="categorical")
    _same(table, back)
    assert back.attrs["accord"] == table.attrs["accord"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz"])
def test_an_empty_response_comes_back_empty_and_a_missing_one_missing_from_csv(tmp_path, fmt):
    """PandaLM holds 270 empty responses: written to CSV and read back, each came back missing (an empty field either
    way), where the JSON Lines twin kept the empty text. write_table writes an empty text as "" and the readers tell
    it from an empty field (read_judgments and the Hugging Face loaders' frame_or_file alike)."""
    from accord.datasets.loaders.generic import frame_or_file

    table = validate(pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p3"], "annotator": ["a", "b", "a", "a"],
                                   "label": ["A", "B", "A", "tie"], "prompt": ["q", "q", "", "r\rs"],
                                   "response_a": ["", "", "x", None], "response_b": ["y", "y", "", "z"]}))
    path = write_table(table, tmp_path / f"judgments.{fmt}")
    for back in (read_judgments(path), frame_or_file(path, texts=("prompt", "response_a", "response_b"))[0]):
        assert back["response_a"].tolist()[:3] == ["", "", "x"] and pd.isna(back["response_a"].iloc[3])
        assert back["response_b"].tolist() == ["y", "y", "", "z"]
        assert back["prompt"].tolist() == table["prompt"].tolist()
