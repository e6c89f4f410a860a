"""The judgments table: validation errors name column, row and value; encoding and crowd-kit conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets import ValidationError, encode, from_crowdkit, gold_labels, to_crowdkit, validate


def test_valid_table_records_form_and_does_not_modify_input(small_preferences):
    before = small_preferences.copy()
    table = validate(small_preferences)
    assert table.attrs["accord"] == {"form": "preference", "scale": None}
    pd.testing.assert_frame_equal(small_preferences, before)


@pytest.mark.parametrize("column", ["pair_id", "annotator", "label"])
def test_missing_required_column(small_preferences, column):
    # without the response texts a missing pair id cannot be derived either
    table = small_preferences.drop(columns=[column, "response_a", "response_b"] if column == "pair_id" else column)
    with pytest.raises(ValidationError, match=f"column '{column}': missing required column"):
        validate(table, source="x.csv")


def test_error_names_file_column_row_and_value(small_preferences):
    bad = small_preferences.copy()
    bad.loc[4, "label"] = "C"
    with pytest.raises(ValidationError) as err:
        validate(bad, source="judgments.csv")
    message = str(err.value)
    assert message == ("file judgments.csv, column 'label', row 4: label outside the declared set "
                       "{'A', 'B', 'tie'} (for other labels: --form categorical, or --form graded --scale S for signed "
                       "strengths, on the command line; form='categorical', or form='graded', scale=S, in validate or "
                       "read_judgments in Python) (value: 'C')")
    assert "\n" not in message


def test_lowercase_label_is_not_coerced(small_preferences):
    bad = small_preferences.copy()
    bad.loc[0, "label"] = "a"
    with pytest.raises(ValidationError, match="row 0"):
        validate(bad)


@pytest.mark.parametrize("column", ["pair_id", "annotator"])
@pytest.mark.parametrize("missing", [None, np.nan, "", "  "])
def test_missing_ids(small_preferences, column, missing):
    bad = small_preferences.copy().astype({column: object})
    bad.loc[2, column] = missing
    with pytest.raises(ValidationError, match=f"column '{column}', row 2: missing id"):
        validate(bad)


def test_missing_label(small_preferences):
    bad = small_preferences.copy()
    bad.loc[3, "label"] = None
    with pytest.raises(ValidationError, match="row 3: missing label"):
        validate(bad)


def test_duplicate_judgment_is_an_error_by_default(small_preferences):
    bad = pd.concat([small_preferences, small_preferences.iloc[[1]]], ignore_index=True)
    with pytest.raises(ValidationError, match="row 8: annotator judged this pair more than once"):
        validate(bad)


@pytest.mark.parametrize("policy,expected", [("first", "A"), ("last", "B")])
def test_duplicate_policies(small_preferences, policy, expected):
    extra = small_preferences.iloc[[1]].assign(label="B")
    table = validate(pd.concat([small_preferences, extra], ignore_index=True), duplicates=policy)
    assert len(table) == len(small_preferences)
    row = table[(table.pair_id == "p1") & (table.annotator == "w2")]
    assert row["label"].tolist() == [expected]


def test_duplicate_policy_keep_keeps_both(small_preferences):
    doubled = pd.concat([small_preferences, small_preferences.iloc[[1]]], ignore_index=True)
    assert len(validate(doubled, duplicates="keep")) == len(doubled)


def test_same_response_on_both_sides(small_preferences):
    bad = small_preferences.copy()
    bad.loc[5, "response_b"] = bad.loc[5, "response_a"]
    with pytest.raises(ValidationError, match="column 'response_b', row 5: both sides of the pair are the same"):
        validate(bad)


def test_same_response_id_on_both_sides(small_preferences):
    bad = small_preferences.assign(response_a_id="r1", response_b_id="r2")
    bad.loc[6, "response_b_id"] = "r1"
    with pytest.raises(ValidationError, match="column 'response_b_id', row 6"):
        validate(bad)


def test_empty_table():
    with pytest.raises(ValidationError, match="the judgments table is empty"):
        validate(pd.DataFrame({"pair_id": [], "annotator": [], "label": []}))


def test_mixed_label_forms(small_preferences):
    bad = small_preferences.astype({"label": object})
    bad.loc[2, "label"] = 1
    with pytest.raises(ValidationError, match="mixed label forms"):
        validate(bad)


def test_graded_scale():
    table = pd.DataFrame({"pair_id": [1, 1, 2], "annotator": ["a", "b", "a"], "label": [-3, 2, 0]})
    valid = validate(table, scale=3)
    assert valid.attrs["accord"] == {"form": "graded", "scale": 3}
    assert encode(valid).classes == tuple(range(-3, 4))
    with pytest.raises(ValidationError, match=r"row 0: label outside the declared scale -1..1 \(value: -3\)"):
        validate(table, scale=1)
    with pytest.raises(ValidationError, match="need a declared scale"):
        validate(table, form="graded")
    with pytest.raises(ValidationError, match="not an integer"):
        validate(table.assign(label=[-1.5, 0.0, 1.0]), scale=3)


def test_graded_whole_floats_become_integers():
    # a Parquet float column, or a CSV gold column with a gap, holds 1.0 for the strength 1
    table = pd.DataFrame({"pair_id": [1, 1, 2], "annotator": ["a", "b", "a"], "label": [-3.0, 2.0, 0.0],
                          "gold": [2.0, 2.0, np.nan]})
    valid = validate(table, scale=3)
    assert valid["label"].dtype == np.int64 and valid["label"].tolist() == [-3, 2, 0]
    assert [type(v) for v in gold_labels(valid)] == [int] and gold_labels(valid).tolist() == [2]
    with pytest.raises(ValidationError, match=r"column 'label', row 1: graded label is not an integer.*\(value: 1.5\)"):
        validate(table.assign(label=[-3.0, 1.5, 0.0]), scale=3)
    with pytest.raises(ValidationError, match=r"column 'gold', row 2: graded label is not an integer"):
        validate(table.assign(gold=[2.0, 2.0, 0.5]), scale=3)
    with pytest.raises(ValidationError, match=r"column 'label', row 0: graded label is not an integer"):
        validate(table.assign(label=[np.inf, 2.0, 0.0]), scale=3)


def test_crowdkit_round_trip():
    ck = pd.DataFrame({"task": ["t1", "t1", "t2"], "worker": ["w1", "w2", "w1"], "label": [0, 1, 2]})
    table = from_crowdkit(ck)
    assert table.attrs["accord"]["form"] == "categorical"
    assert list(table.columns[:3]) == ["pair_id", "annotator", "label"]
    back = to_crowdkit(table)
    pd.testing.assert_frame_equal(back[["task", "worker", "label"]], ck)


def test_crowdkit_preference_labels_are_recognised():
    ck = pd.DataFrame({"task": ["t1", "t2"], "worker": ["w1", "w1"], "label": ["A", "tie"]})
    assert from_crowdkit(ck).attrs["accord"]["form"] == "preference"


def test_gold_labels_one_per_pair(small_preferences):
    table = small_preferences.assign(gold=small_preferences["pair_id"].map({"p1": "A", "p2": "B", "p3": None}))
    gold = gold_labels(validate(table))
    assert gold.to_dict() == {"p1": "A", "p2": "B"}


def test_gold_is_checked_too(small_preferences):
    with pytest.raises(ValidationError, match="column 'gold'"):
        validate(small_preferences.assign(gold="C"))


labels = st.sampled_from(["A", "B", "tie"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 8), labels), min_size=1, max_size=80,
                unique_by=lambda t: t[:2]))
def test_encode_round_trips_any_table(rows):
    table = pd.DataFrame(rows, columns=["pair_id", "annotator", "label"])
    encoded = encode(validate(table))
    assert encoded.n_judgments == len(table)
    assert (encoded.item_index[encoded.items] == table["pair_id"]).all()
    assert (encoded.worker_index[encoded.workers] == table["annotator"]).all()
    assert [encoded.classes[k] for k in encoded.labels] == table["label"].tolist()
    counts = encoded.vote_counts()
    assert counts.sum() == len(table)
    assert counts.shape == (table["pair_id"].nunique(), len(encoded.classes))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=3), st.integers(), st.floats(), st.none()), min_size=1, max_size=30))
def test_arbitrary_labels_give_a_one_line_error_or_a_valid_table(values):
    table = pd.DataFrame({"pair_id": range(len(values)), "annotator": "w", "label": pd.Series(values, dtype=object)})
    try:
        valid = validate(table)
    except ValidationError as err:
        assert "\n" not in str(err) and "column 'label'" in str(err)
    else:
        assert set(valid["label"]) <= {"A", "B", "tie"}


def test_a_validated_table_changed_afterwards_gives_a_one_line_error(small_preferences):
    """pandas carries ``attrs`` (the validation record) through ``assign`` and ``rename``: a validated table whose
    labels or column names were changed since must be refused by name, not crash deep in a model."""
    from accord.models import DawidSkene

    table = validate(small_preferences)
    relabelled = table.assign(label=table["label"].map({"A": 1, "B": 0, "tie": 2}))
    assert "accord" in relabelled.attrs  # skipped validation is the case under test
    with pytest.raises(ValidationError, match=r"column 'label', row 0: .*validate") as err:
        DawidSkene().fit(relabelled)
    assert "\n" not in str(err.value)
    renamed = table.rename(columns={"pair_id": "task", "annotator": "worker"})
    assert "accord" in renamed.attrs
    with pytest.raises(ValidationError, match=r"column 'pair_id': .*validate"):
        DawidSkene().fit(renamed)


def test_a_repeated_column_name_is_one_line_naming_it(small_preferences):
    # pd.concat of two tables, or a Parquet file written by another tool, can hold one name twice
    doubled = pd.concat([small_preferences, small_preferences[["label"]]], axis=1)
    with pytest.raises(ValidationError, match="column 'label': the column appears more than once"):
        validate(doubled, source="ratings.parquet")


@pytest.mark.parametrize("dtype", [object, "string"])
def test_a_pair_id_is_not_derived_from_a_missing_text(dtype):
    # the missing text was hashed (as "nan") into an id, and the row's sides were turned round
    table = pd.DataFrame({"annotator": ["a", "b"], "label": ["A", "B"], "response_a": ["x", None],
                          "response_b": ["y", "z"]}).astype({"response_a": dtype})
    with pytest.raises(ValidationError, match="column 'response_a', row 1: missing response text"):
        validate(table)


def test_ids_mixing_texts_and_numbers_are_refused(small_preferences):
    # JSON can hold "7" and 7 in one column: they were two different pairs, and writing Parquet raised ArrowTypeError
    mixed = small_preferences.astype({"pair_id": object})
    mixed.loc[3:4, "pair_id"] = 7
    with pytest.raises(ValidationError, match="column 'pair_id', row 3: ids mix texts and numbers"):
        validate(mixed)


def test_a_missing_prompt_derives_the_id_an_empty_prompt_does():
    # a CSV reads an empty prompt cell as NaN, which was hashed as the text "nan": one pair became two
    table = pd.DataFrame({"annotator": ["a", "b", "c"], "label": ["A", "B", "A"], "prompt": ["", None, np.nan],
                          "response_a": ["x", "x", "x"], "response_b": ["y", "y", "y"]})
    ids = validate(table)["pair_id"]
    assert ids.nunique() == 1
    assert ids.iloc[0] == validate(table.drop(columns="prompt"))["pair_id"].iloc[0]


@pytest.mark.parametrize("dtype", [object, "string"])
def test_content_ids_hash_a_missing_text_as_an_empty_one(dtype):
    # the loaders' ids follow the derived pair id's rule: a missing text is no text, not the text "nan"
    from accord.datasets.ids import content_ids

    frame = pd.DataFrame({"prompt": ["q"] * 4, "text": [None, np.nan, "", "nan"]}).astype({"text": dtype})
    ids = content_ids(frame, ["prompt", "text"], "x-", unique=False)
    assert ids.iloc[0] == ids.iloc[1] == ids.iloc[2] != ids.iloc[3]
    assert content_ids(frame, ["prompt", "text"], "x-").tolist() == [ids.iloc[0], ids.iloc[0] + "#2",
                                                                      ids.iloc[0] + "#3", ids.iloc[3]]


_CELL = st.one_of(st.sampled_from(["r1", "r2", "r3"]), st.integers(1, 3), st.floats(1, 3).map(round), st.none(),
                  st.just(float("nan")))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(_CELL, _CELL), min_size=1, max_size=12), st.sampled_from(["object", "typed", "arrow"]))
def test_same_cells_is_the_cell_by_cell_rule_in_one_step(rows, storage):
    """Both sides of a pair compared for 'the same response': the vectorised comparison (2 s -> 0.1 s of validating
    a million judgments with response ids) says what comparing cell by cell says - present, of one type, equal."""
    from accord.datasets.schema import _same, same_cells

    a, b = (pd.Series([row[side] for row in rows], dtype=object) for side in (0, 1))
    if storage != "object":  # columns as a reader gives them: one type per column, where the cells allow it
        a, b = a.infer_objects(), b.infer_objects()
        if storage == "arrow" and pd.api.types.infer_dtype(a) == pd.api.types.infer_dtype(b) == "string":
            a, b = a.astype("string[pyarrow]"), b.astype("string[pyarrow]")
    expected = [_same(x, y) and not (isinstance(x, float) and np.isnan(x)) for x, y in zip(a, b)]
    assert same_cells(a, b).tolist() == expected


def test_validate_refuses_one_response_on_both_sides_in_any_storage():
    table = pd.DataFrame({"pair_id": ["p1", "p2"], "annotator": ["w1", "w1"], "label": ["A", "B"],
                          "response_a_id": ["r1", "r2"], "response_b_id": ["r2", "r2"]})
    for column in (table, table.astype({"response_a_id": "string[pyarrow]", "response_b_id": "string[pyarrow]"}),
                   table.assign(response_a_id=[1, 2], response_b_id=[2, 2])):
        with pytest.raises(ValidationError, match="both sides of the pair are the same response") as error:
            validate(column)
        assert "row 1" in str(error.value)


@settings(max_examples=30, deadline=None)
@given(labels=st.lists(st.integers(-2, 2), min_size=2, max_size=8), data=st.data())
def test_one_bad_graded_label_in_a_column_read_as_text_names_its_own_row(labels: list[int],
                                                                         data: st.DataObject) -> None:
    # a CSV column with one bad cell is read as text throughout: its row 0 ('1', a good label) was named
    row = data.draw(st.integers(0, len(labels) - 1))
    bad = data.draw(st.sampled_from(["x", "strong", "?"]))
    text = [str(label) for label in labels]
    text[row] = bad
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(len(labels))], "annotator": "a", "label": text})
    with pytest.raises(ValidationError) as caught:
        validate(table, form="graded", scale=2)
    assert (caught.value.column, caught.value.row, caught.value.value) == ("label", row, bad)


@pytest.mark.parametrize("kind", ["preference", "steps", "attributes"])
def test_a_validated_table_written_to_parquet_edited_and_read_back_is_validated_again(kind, tmp_path):
    """pandas writes ``attrs`` (the validation record) into a Parquet file and reads them back: a validated table
    written, edited (here: one judgment twice) and read back passed for validated, and the models fitted it."""
    from accord.aggregate import VoteFraction
    from accord.datasets import encode_attributes, make_synthetic, make_synthetic_attributes
    from accord.datasets.steps import encode_steps, make_synthetic_steps

    table, use = {
        "preference": (lambda: make_synthetic(n_pairs=6, n_annotators=3, judgments_per_pair=2, seed=0).judgments,
                       lambda t: VoteFraction().fit(t)),
        "steps": (lambda: make_synthetic_steps(n_problems=2, seed=0).judgments, encode_steps),
        "attributes": (lambda: make_synthetic_attributes(seed=0).judgments, encode_attributes),
    }[kind]
    validated = table()
    use(validated)  # the table as validated is accepted
    path = tmp_path / "judgments.parquet"
    pd.concat([validated, validated.iloc[:1]], ignore_index=True).to_parquet(path)
    with pytest.raises(ValidationError, match="more than once"):
        use(pd.read_parquet(path))


def _gold_free_tables() -> list[tuple[pd.DataFrame, str]]:
    """Tables whose gold holds a class no rater gave: a categorical 'c' and a preference 'tie' among untied votes."""
    categorical = pd.DataFrame({"pair_id": ["i1", "i1", "i1", "i2", "i2", "i2", "i3", "i3", "i3"],
                                "annotator": ["r1", "r2", "r3"] * 3,
                                "label": ["a", "a", "b", "b", "b", "a", "a", "b", "a"],
                                "gold": ["a", "a", "a", "c", "c", "c", "b", "b", "b"]})
    preference = categorical.assign(label=categorical["label"].map({"a": "A", "b": "B"}),
                                    gold=categorical["gold"].map({"a": "A", "b": "B", "c": "tie"}))
    return [(categorical, "categorical"), (preference, "preference")]


@pytest.mark.parametrize("method", ["majority", "vote-fraction", "dawid-skene", "one-coin-dawid-skene", "mace"])
def test_gold_never_changes_the_fit(method):
    # no gold is used in fitting: gold's classes were added to the model's (a 'c' no rater gave moved vote-fraction's
    # uncertainty 0.186 -> 0.213, a gold 'tie' gave an untied preference table a tie class)
    from accord.aggregate import make_method

    settings = {} if method in ("majority", "vote-fraction") else {"seed": 0}
    for table, form in _gold_free_tables():
        with_gold = make_method(method, **settings).fit(validate(table, form=form))
        without = make_method(method, **settings).fit(validate(table.drop(columns="gold"), form=form))
        pd.testing.assert_frame_equal(with_gold.soft_labels_.probs, without.soft_labels_.probs)
        pd.testing.assert_series_equal(with_gold.soft_labels_.uncertainty, without.soft_labels_.uncertainty)
        if hasattr(without, "annotators_"):
            pd.testing.assert_frame_equal(with_gold.annotators_, without.annotators_)
        assert encode(validate(table, form=form)).classes == encode(validate(table.drop(columns="gold"),
                                                                            form=form)).classes
