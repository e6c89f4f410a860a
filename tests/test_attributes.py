"""The multi-attribute judgments table: validation, one-line errors, codes, one attribute for the other models."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets import (
    AccordError,
    ValidationError,
    attributes_from_wide,
    encode,
    encode_attributes,
    read_judgments,
    select_attribute,
    validate,
    validate_attributes,
)


def ratings() -> pd.DataFrame:
    return pd.DataFrame({
        "response_id": ["r1", "r1", "r2", "r2", "r3"],
        "annotator": ["a", "a", "b", "a", "b"],
        "attribute": ["helpfulness", "verbosity", "helpfulness", "verbosity", "helpfulness"],
        "label": [3, 1, 0, 4, 2],
        "prompt": ["q"] * 5,
        "response": ["x", "x", "y", "y", "z"],
    })


def pair_aspects() -> pd.DataFrame:
    return pd.DataFrame({
        "pair_id": ["p1", "p1", "p1", "p2"],
        "annotator": ["a", "a", "b", "a"],
        "attribute": ["overall", "helpful", "overall", "overall"],
        "label": [-2, 0, 1, 2],
        "response_a": ["x", "x", "x", "u"],
        "response_b": ["y", "y", "y", "v"],
    })


class TestValidate:
    def test_a_valid_table_records_item_kind_attributes_and_scales(self) -> None:
        table = validate_attributes(ratings(), scales={"verbosity": (0, 4), "helpfulness": (0, 4)})
        assert table.attrs["accord"] == {
            "form": "attribute", "item": "response", "attributes": ["verbosity", "helpfulness"],
            "scales": {"verbosity": [0, 4], "helpfulness": [0, 4]},
        }
        assert table["label"].dtype == np.int64
        assert ratings()["label"].tolist() == table["label"].tolist()  # the input is not modified, rows kept

    def test_schema_validate_hands_attribute_tables_over(self) -> None:
        table = validate(pair_aspects(), scale=2)
        assert table.attrs["accord"]["item"] == "pair"
        assert table.attrs["accord"]["scales"] == {"overall": [-2, 2], "helpful": [-2, 2]}
        with pytest.raises(AccordError, match="multi-attribute table"):
            encode(table)

    def test_scale_columns_declare_the_scales(self) -> None:
        table = ratings().assign(scale_min=0, scale_max=[4, 4, 4, 4, 4])
        assert validate_attributes(table).attrs["accord"]["scales"]["verbosity"] == [0, 4]

    def test_preference_text_labels_of_pairs_are_minus_one_zero_one(self) -> None:
        table = pair_aspects().assign(label=["A", "tie", "B", "A"])
        checked = validate_attributes(table)
        assert checked["label"].tolist() == [-1, 0, 1, -1]
        assert checked.attrs["accord"]["scales"]["overall"] == [-1, 1]

    def test_crowdkit_worker_and_task_names(self) -> None:
        table = ratings().rename(columns={"annotator": "worker", "response_id": "task"})
        checked = validate_attributes(table, scales=(0, 4), item="response")
        assert {"response_id", "annotator"} <= set(checked.columns)

    BAD = {
        "attribute missing from some rows": (
            lambda t: t.assign(attribute=["helpfulness", None, "helpfulness", "verbosity", "helpfulness"]),
            (0, 4), "column 'attribute', row 1: attribute missing"),
        "empty attribute name": (
            lambda t: t.assign(attribute=["helpfulness", " ", "helpfulness", "verbosity", "helpfulness"]),
            (0, 4), "column 'attribute', row 1: attribute missing"),
        "rating outside the declared scale": (
            lambda t: t.assign(label=[3, 1, 0, 5, 2]), (0, 4),
            "column 'label', row 3: rating outside the declared scale 0..4 of attribute 'verbosity' (value: 5)"),
        "rating below a per-attribute scale": (
            lambda t: t, {"helpfulness": (1, 5), "verbosity": (0, 4)},
            "column 'label', row 2: rating outside the declared scale 1..5 of attribute 'helpfulness'"),
        "two scales in one attribute (rows)": (
            lambda t: t.assign(scale_min=0, scale_max=[4, 4, 4, 4, 5]), None,
            "column 'scale_max', row 4: two scales in one attribute: 'helpfulness' is 0..4"),
        "two scales in one attribute (declared vs rows)": (
            lambda t: t.assign(scale_min=1, scale_max=5), (0, 4),
            "column 'scale_min', row 0: two scales in one attribute: 'helpfulness' is declared 0..4"),
        "undeclared scale": (
            lambda t: t, {"helpfulness": (0, 4)}, "column 'attribute', row 1: no declared scale for attribute "
                                                  "'verbosity'"),
        "not an integer": (lambda t: t.assign(label=[3.0, 1.5, 0.0, 4.0, 2.0]), (0, 4),
                           "column 'label', row 1: rating is not an integer (value: 1.5)"),
        "text rating of a response": (lambda t: t.assign(label=["3", 1, 0, 4, 2]), (0, 4),
                                      "column 'label', row 0: ratings of responses must be integers"),
        "missing rating": (lambda t: t.assign(label=[3, None, 0, 4, 2]), (0, 4),
                           "column 'label', row 1: missing rating"),
        "repeated rating": (lambda t: t.assign(response_id=["r1", "r1", "r2", "r2", "r2"],
                                               annotator=["a", "a", "b", "a", "b"]), (0, 4),
                            "column 'annotator', row 4: annotator rated this item on this attribute more than once"),
        "missing rater": (lambda t: t.assign(annotator=["a", "a", "", "a", "b"]), (0, 4),
                          "column 'annotator', row 2: missing id"),
        "both item columns": (lambda t: t.assign(pair_id="p"), (0, 4), "column 'response_id': both"),
        "missing label column": (lambda t: t.drop(columns="label"), (0, 4), "column 'label': missing required"),
    }

    @pytest.mark.parametrize("case", list(BAD))
    def test_bad_input_is_one_line_naming_file_column_and_row(self, case: str) -> None:
        change, scales, expected = self.BAD[case]
        with pytest.raises(ValidationError) as excinfo:
            validate_attributes(change(ratings()), scales=scales, source="ratings.csv")
        message = str(excinfo.value)
        assert "\n" not in message
        assert message.startswith("file ratings.csv")
        assert expected in message

    def test_bad_pair_inputs(self) -> None:
        mixed = pair_aspects().assign(label=["A", 0, -1, "B"])
        with pytest.raises(ValidationError, match="row 1: two scales in one attribute: attribute 'helpful'|"
                                                  "row 2: two scales in one attribute: attribute 'overall'"):
            validate_attributes(mixed)
        declared = pair_aspects().assign(label=["A", "tie", "B", "A"])
        with pytest.raises(ValidationError, match="'overall' has A/B/tie labels but is declared 0..4"):
            validate_attributes(declared, scales={"overall": (0, 4), "helpful": (-1, 1)})
        same = pair_aspects().assign(response_b=["x", "x", "x", "v"])
        with pytest.raises(ValidationError, match="column 'response_b', row 0: both sides of the pair are the same"):
            validate_attributes(same, scales=2)
        with pytest.raises(ValidationError, match="'A', 'B' or 'tie'"):
            validate_attributes(pair_aspects().assign(label=["A", "a", "B", "A"]))

    def test_read_judgments_validates_an_attribute_file_and_names_it(self, tmp_path: Path) -> None:
        good = tmp_path / "ratings.csv"
        ratings().assign(scale_min=0, scale_max=4).to_csv(good, index=False)
        table = read_judgments(good)
        assert table.attrs["accord"]["attributes"] == ["helpfulness", "verbosity"]
        assert table["response_id"].tolist() == ["r1", "r1", "r2", "r2", "r3"]
        bad = tmp_path / "bad.csv"
        ratings().assign(scale_min=0, scale_max=4, label=[3, 1, 9, 4, 2]).to_csv(bad, index=False)
        with pytest.raises(ValidationError, match=f"file {bad}, column 'label', row 2: rating outside"):
            read_judgments(bad)

    def test_duplicate_policies(self) -> None:
        twice = pd.concat([ratings(), ratings().iloc[[0]].assign(label=4)], ignore_index=True)
        assert validate_attributes(twice, scales=(0, 4), duplicates="last")["label"].tolist() == [1, 0, 4, 2, 4]
        assert len(validate_attributes(twice, scales=(0, 4), duplicates="keep")) == 6


class TestCodesAndViews:
    def test_codes_count_ratings_per_item_and_attribute(self) -> None:
        codes = encode_attributes(validate_attributes(ratings(), scales=(0, 4)))
        assert codes.attribute_names == ("helpfulness", "verbosity")
        assert codes.counts().tolist() == [[1, 1], [1, 1], [1, 0]]
        assert codes.n_levels.tolist() == [5, 5]
        assert codes.item_index.name == "response_id"

    def test_a_filtered_table_encodes_the_attributes_it_still_has(self) -> None:
        table = validate_attributes(ratings(), scales=(0, 4))
        only = table[table["attribute"] == "verbosity"]
        assert only.attrs["accord"]["attributes"] == ["helpfulness", "verbosity"]  # pandas keeps the attrs
        assert encode_attributes(only).attribute_names == ("verbosity",)

    def test_select_attribute_gives_each_form(self) -> None:
        pairs = validate_attributes(pair_aspects(), scales=2)
        graded = select_attribute(pairs, "overall")
        assert graded.attrs["accord"] == {"form": "graded", "scale": 2}
        assert graded["label"].tolist() == [-2, 1, 2]
        binary = validate_attributes(pair_aspects().assign(label=["A", "tie", "B", "A"]))
        assert select_attribute(binary, "overall")["label"].tolist() == ["A", "B", "A"]
        categorical = select_attribute(validate_attributes(ratings(), scales=(0, 4)), "helpfulness")
        assert categorical.attrs["accord"]["form"] == "categorical"
        assert categorical["pair_id"].tolist() == ["r1", "r2", "r3"]
        with pytest.raises(ValidationError, match="no such attribute"):
            select_attribute(pairs, "harmless")

    def test_from_wide_drops_missing_cells(self) -> None:
        wide = pd.DataFrame({"response_id": ["r1", "r2"], "annotator": ["a", "b"], "help": [1, None],
                             "verb": [2, 3]})
        long = attributes_from_wide(wide, {"help": "helpfulness", "verb": "verbosity"}, scales=(0, 4),
                                    keep=["response_id", "annotator"])
        assert long[["response_id", "attribute", "label"]].values.tolist() == [
            ["r1", "helpfulness", 1], ["r1", "verbosity", 2], ["r2", "verbosity", 3]]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    n_attributes=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_codes_round_trip_on_random_tables(n: int, n_attributes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lows = rng.integers(-3, 2, n_attributes)
    highs = lows + rng.integers(1, 5, n_attributes)
    attribute = rng.integers(0, n_attributes, n)
    table = pd.DataFrame({
        "response_id": [f"r{i}" for i in range(n)],
        "annotator": rng.choice(["a", "b", "c"], n),
        "attribute": [f"x{a}" for a in attribute],
        "label": rng.integers(lows[attribute], highs[attribute] + 1),
    })
    scales = {f"x{a}": (int(lows[a]), int(highs[a])) for a in range(n_attributes)}
    codes = encode_attributes(validate_attributes(table, scales=scales))
    assert codes.counts().sum() == n
    assert ((codes.levels >= 0) & (codes.levels < codes.n_levels[codes.attributes])).all()
    assert (codes.levels + codes.lows[codes.attributes] == table["label"].to_numpy()).all()


def test_a_repeated_column_name_in_an_attribute_table_is_one_line_naming_it():
    table = pd.DataFrame({"response_id": ["r1", "r2"], "annotator": ["a", "a"], "attribute": ["help", "help"],
                          "label": [1, 3]})
    with pytest.raises(ValidationError, match="column 'label': the column appears more than once"):
        validate_attributes(pd.concat([table, table[["label"]]], axis=1), scales=(0, 4))


def test_item_ids_mixing_texts_and_numbers_are_refused():
    table = pd.DataFrame({"response_id": ["7", 7], "annotator": ["a", "a"], "attribute": ["help", "help"],
                          "label": [1, 3]})
    with pytest.raises(ValidationError, match="column 'response_id', row 1: ids mix texts and numbers"):
        validate_attributes(table, scales=(0, 4))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), n_columns=st.integers(1, 3), data=st.data())
def test_a_bad_rating_in_a_wide_table_names_its_row_and_rating_column(n: int, n_columns: int,
                                                                      data: st.DataObject) -> None:
    # the error named column 'label' and the row of the long table (one row per rating), neither of the frame given
    names = st.sampled_from(["help", "Help ful", "ü verbosity", "2"])
    columns = [data.draw(names) + f"#{c}" for c in range(n_columns)]
    cells = data.draw(st.lists(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n_columns,
                                        max_size=n_columns), min_size=n, max_size=n))
    wide = pd.DataFrame({"response_id": [f"r{i}" for i in range(n)], "annotator": "a",
                         **{c: pd.array([row[k] for row in cells], dtype="Float64") for k, c in enumerate(columns)}})
    row, column = data.draw(st.integers(0, n - 1)), data.draw(st.sampled_from(columns))
    bad = data.draw(st.sampled_from([7.0, -1.0, 2.5]))
    wide.loc[row, column] = bad
    wide.index = [f"x{i}" for i in reversed(range(n))]  # rows are named by position, not by index label
    with pytest.raises(ValidationError) as caught:
        attributes_from_wide(wide, columns, scales=(0, 4), keep=["response_id", "annotator"], source="wide.csv")
    assert (caught.value.column, caught.value.row, caught.value.value) == (column, row, bad)
    assert str(caught.value).startswith(f"file wide.csv, column '{column}', row {row}:")


def test_wide_columns_named_like_the_long_forms_columns() -> None:
    # a rating column called 'label' was pandas' "value_name (label) cannot match an element"; a kept 'attribute'
    # was "melt output columns cannot contain duplicate names"; a number as a name named a row of no table given
    wide = pd.DataFrame({"response_id": ["r1", "r2"], "annotator": ["a", "b"], "help": [1, 2], "label": [0, 3]})
    long = attributes_from_wide(wide, ["help", "label"], scales=(0, 4), keep=["response_id", "annotator"])
    assert long[["response_id", "attribute", "label"]].values.tolist() == [
        ["r1", "help", 1], ["r1", "label", 0], ["r2", "help", 2], ["r2", "label", 3]]
    for kept in ("attribute", "label"):
        frame = wide.rename(columns={"label": "other"}).assign(**{kept: ["x", "y"]})
        with pytest.raises(ValidationError, match=f"a kept column cannot be called '{kept}'") as caught:
            attributes_from_wide(frame, ["help"], scales=(0, 4), keep=["response_id", "annotator", kept])
        assert caught.value.column == kept
    numbered = pd.DataFrame({"response_id": ["r1"], "annotator": ["a"], 1: [2], 2: [3]})
    with pytest.raises(ValidationError, match="must be a name") as caught:
        attributes_from_wide(numbered, [1, 2], scales=(0, 4), keep=["response_id", "annotator"])
    assert caught.value.column == 1
    long = attributes_from_wide(numbered, {1: "1", 2: "2"}, scales=(0, 4), keep=["response_id", "annotator"])
    assert long["attribute"].tolist() == ["1", "2"]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 8), kind=st.sampled_from(["response", "pair"]), as_text=st.booleans(), data=st.data())
def test_one_bad_rating_in_a_column_read_as_text_names_its_own_row(n: int, kind: str, as_text: bool,
                                                                   data: st.DataObject) -> None:
    # a CSV column with one bad cell is read as text throughout: its row 0 ('1', a good rating) was named, and among
    # numbers a text that is no A/B/tie was called "both A/B/tie labels and numbers" at a number
    ratings = data.draw(st.lists(st.integers(-1, 1), min_size=n, max_size=n))
    row = data.draw(st.integers(0, n - 1))
    bad = data.draw(st.sampled_from(["x", "good", "1.5?", "-"]))
    labels: list[object] = [str(r) if as_text else r for r in ratings]
    labels[row] = bad
    table = pd.DataFrame({f"{kind}_id": [f"i{i}" for i in range(n)], "annotator": "a", "attribute": "overall",
                          "label": pd.Series(labels, dtype=object)})
    with pytest.raises(ValidationError) as caught:
        validate_attributes(table, scales=(-1, 1), source="ratings.csv")
    assert (caught.value.column, caught.value.row, caught.value.value) == ("label", row, bad)


@settings(max_examples=20, deadline=None)
@given(item=st.sampled_from(["response_id", "pair_id"]), kept=st.sets(st.sampled_from(["item", "annotator"])))
def test_a_required_column_left_out_of_keep_is_named_as_such(item: str, kept: set[str]) -> None:
    # it was "missing required column" of a column the frame has (and of response_id where it has pair_id)
    wide = pd.DataFrame({item: ["i1", "i2"], "annotator": ["a", "b"], "help": [1, 2]})
    keep = [item if k == "item" else k for k in sorted(kept)]
    if len(keep) == 2:
        assert len(attributes_from_wide(wide, ["help"], scales=(0, 4), keep=keep)) == 2
        return
    with pytest.raises(ValidationError, match="keep leaves it out") as caught:
        attributes_from_wide(wide, ["help"], scales=(0, 4), keep=keep)
    assert caught.value.column in {item, "annotator"} - set(keep)


def test_an_attribute_column_every_rater_left_empty_is_named_in_a_warning() -> None:
    """attributes_from_wide dropped the missing cells of a rating column, so a column with no rating at all (every
    rater skipped the attribute) left the attribute out of the long table without a word, as did a scale declared for
    an attribute no rating names. Now both warn, naming the attribute; the rated attributes are as before."""
    frame = pd.DataFrame({"response_id": ["r1", "r2", "r3"], "annotator": "w", "helpfulness": [1, 3, 4],
                          "verbosity": [np.nan, None, np.nan]})
    for scales in ((0, 4), {"helpfulness": (0, 4), "verbosity": (0, 4)}):
        with pytest.warns(UserWarning, match="no rating of the attribute 'verbosity'.*left out"):
            table = attributes_from_wide(frame, ["helpfulness", "verbosity"], scales=scales,
                                         keep=["response_id", "annotator"])
        assert table.attrs["accord"]["attributes"] == ["helpfulness"] and len(table) == 3
    long = table.drop(columns=["scale_min", "scale_max"], errors="ignore")
    with pytest.warns(UserWarning, match="no rating of the attribute 'tone'"):
        validate_attributes(long, scales={"helpfulness": (0, 4), "tone": (1, 7)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_attributes(long, scales={"helpfulness": (0, 4)})


def test_the_mixed_id_error_quotes_the_column_s_own_ids_as_written(tmp_path):
    """Was: 'ids mix texts and numbers (the text '7' and the number 7 would be two ids)' of a file whose ids were
    '007' and 8: the example '7' read as the file's '007' turned into a number. Now the message quotes the
    column's own ids, the text as written, and no 7 the file does not hold."""
    import json

    from accord.cli import main as accord_main

    rows = [{"response_id": rid, "annotator": "a", "attribute": "help", "label": 1, "scale_min": 0, "scale_max": 4}
            for rid in ("007", 8)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert accord_main(["aggregate", "--input", str(path), "--output", str(tmp_path / "out.parquet")]) == 2
    with pytest.raises(ValidationError) as caught:
        validate_attributes(pd.DataFrame(rows))
    message = str(caught.value)
    assert "the text '007'" in message and "the number 8" in message
    assert "7'" not in message.replace("'007'", "")
    assert not (tmp_path / "out.parquet").exists()
