"""The data boundary under messy in-memory tables: pandas' own dtypes (categorical, nullable Int64/Float64/boolean,
Arrow strings), Python objects mixed in one column, whole numbers beyond 64 bits, blank texts.

The rule for every table of every kind (judgments, crowd-kit layout, multi-attribute, step judgments): it validates
(and then a fast model fits it), or it raises accord's one-line error naming the column (and the row, where a cell is
to blame). Never a raw pandas/numpy exception, never a table that validates and then breaks a fit.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.aggregate import MajorityVote
from accord.datasets import AccordError, ValidationError, encode, validate, validate_attributes, validate_steps
from accord.datasets.attributes import encode_attributes
from accord.datasets.steps.schema import encode_steps
from accord.models.dawid_skene import DawidSkene

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

CELLS = st.one_of(
    st.none(), st.just(np.nan), st.just(np.inf), st.just(""), st.just("  "), st.sampled_from(["A", "B", "tie"]),
    st.integers(-3, 3), st.integers(2**63 - 2, 2**70), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
    st.just(pd.NA), st.sampled_from(["007", "NA", "None", "1e3", " a "]), st.just(np.int64(2)),
    st.lists(st.integers(), max_size=1),
)
DTYPES = st.sampled_from([None, "category", "string", "string[pyarrow]", "Int64", "boolean", "Float64", "object",
                          "float64", "int64", "uint64"])


@st.composite
def messy_tables(draw: st.DrawFn, names: list[str]) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    columns = {}
    for name in names:
        values = draw(st.one_of(st.lists(CELLS, min_size=n, max_size=n),
                                st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=n, max_size=n),
                                st.lists(st.integers(-2, 2), min_size=n, max_size=n)))
        column = pd.Series(values, dtype=object)
        dtype = draw(DTYPES)
        if dtype is None:
            column = pd.Series(list(values))  # pandas' own inference
        else:
            try:
                column = column.astype(dtype)
            except (TypeError, ValueError, OverflowError):
                pass  # not every dtype holds every draw; the object column stays
        columns[name] = column
    table = pd.DataFrame(columns)
    if draw(st.booleans()):
        table = pd.concat([table, table.iloc[:1]], ignore_index=True)  # a duplicated row
    return table


def _one_line(error: AccordError) -> None:
    assert "\n" not in str(error)


@FUZZ
@given(messy_tables(["pair_id", "annotator", "label"]),
       st.sampled_from([{}, {"scale": 2}, {"form": "categorical"}, {"duplicates": "keep"}]),
       st.booleans(), st.booleans())
def test_messy_judgments_validate_and_fit_or_one_error(table, kwargs, crowdkit, with_gold):
    if with_gold:
        table = table.assign(gold=table["label"].iloc[::-1].to_numpy())
    if crowdkit:
        table = table.rename(columns={"pair_id": "task", "annotator": "worker"})
    try:
        checked = validate(table, **kwargs)
    except AccordError as error:
        _one_line(error)
        return
    encode(checked)
    try:
        MajorityVote().fit(checked)
        DawidSkene(max_steps=20).fit(checked)
    except AccordError as error:  # e.g. one class only: the fit's own one-line refusal, never a crash
        _one_line(error)


def _validates_or_one_error(validate_table, encode_table) -> None:
    """The rule of every messy table: it validates and then encodes, or it is one error on one line."""
    try:
        checked = validate_table()
    except AccordError as error:
        _one_line(error)
        return
    encode_table(checked)


@FUZZ
@given(messy_tables(["response_id", "annotator", "attribute", "label"]), st.sampled_from([3, (0, 5)]))
def test_messy_attribute_tables_validate_or_one_error(table, scales):
    _validates_or_one_error(lambda: validate_attributes(table, scales=scales), encode_attributes)


@FUZZ
@given(messy_tables(["solution_id", "step", "annotator", "label"]), st.sampled_from([None, "binary"]))
def test_messy_step_tables_validate_or_one_error(table, labels):
    _validates_or_one_error(lambda: validate_steps(table, labels=labels), encode_steps)


# -- categorical columns ------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(["pair_id", "annotator", "label"]),
       st.sampled_from(["categorical", "numbered", "preference", "graded"]))
def test_categorical_columns_are_read_as_their_values(column, form):
    labels = {"categorical": ["x", "y", "x", "z"], "numbered": [0, 1, 0, 2], "preference": ["A", "B", "tie", "A"],
              "graded": [1, -2, 0, 2]}
    form, labels = ("categorical", labels[form]) if form == "numbered" else (form, labels[form])
    table = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2"], "annotator": ["a", "b", "a", "b"],
                          "label": labels})
    plain = validate(table, form=form, scale=2 if form == "graded" else None)
    table[column] = table[column].astype("category")
    checked = validate(table, form=form, scale=2 if form == "graded" else None)
    assert encode(checked).labels.tolist() == encode(plain).labels.tolist()
    assert encode(checked).classes == encode(plain).classes
    MajorityVote().fit(checked)


@settings(FUZZ, max_examples=30)
@given(st.integers(0, 3), st.sampled_from([(" ", "missing id"), (7, "mix texts and numbers"),
                                           (np.inf, "not finite")]))
def test_categorical_ids_get_the_checks_of_object_ids(row, bad):
    value, problem = bad
    ids: list = ["p1", "p1", "p2", "p2"] if not isinstance(value, float) else [1.0, 1.0, 2.0, 2.0]
    ids[row] = value
    if isinstance(value, int) and row == 0:
        ids[1] = 8  # the first id sets the kind: the text after it is the odd one
    table = pd.DataFrame({"pair_id": pd.Categorical(ids), "annotator": ["a", "b", "c", "d"],
                          "label": ["A", "B", "A", "B"]})
    with pytest.raises(ValidationError, match=problem) as caught:
        validate(table)
    assert caught.value.column == "pair_id"


@settings(FUZZ, max_examples=30)
@given(st.sampled_from(["annotator", "attribute", "label"]), st.sampled_from(["step", "label", "annotator"]))
def test_categorical_attribute_and_step_columns(attribute_column, step_column):
    ratings = pd.DataFrame({"response_id": ["r1", "r1", "r2"], "annotator": ["a", "b", "a"],
                            "attribute": ["help", "help", "help"], "label": [1, 1, 1]})
    plain = validate_attributes(ratings, scales=(0, 3))
    ratings[attribute_column] = ratings[attribute_column].astype("category")
    assert validate_attributes(ratings, scales=(0, 3))["label"].tolist() == plain["label"].tolist()
    steps = pd.DataFrame({"solution_id": ["s", "s", "s"], "step": [0, 1, 0], "annotator": ["a", "a", "b"],
                          "label": [1, -1, 1]})
    plain_steps = validate_steps(steps)
    steps[step_column] = steps[step_column].astype("category")
    assert validate_steps(steps)["label"].tolist() == plain_steps["label"].tolist()


# -- categorical labels: what a class is --------------------------------------------------------------------


def _crowdkit(labels: list) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame({"task": [f"t{i // 2}" for i in range(n)], "worker": [f"w{i % 2}" for i in range(n)],
                         "label": pd.Series(labels, dtype=object)})


@settings(FUZZ, max_examples=40)
@given(st.lists(st.integers(0, 2), min_size=2, max_size=8), st.data(),
       st.sampled_from([(float("inf"), "not finite"), (float("-inf"), "not finite"), ("", "blank label"),
                        ("   ", "blank label"), (True, "true/false")]))
def test_odd_categorical_label_is_named_with_its_row(labels, data, bad):
    value, problem = bad
    row = data.draw(st.integers(0, len(labels) - 1))
    if isinstance(value, str):  # a blank among text classes, not among numbers (that is a mixed column)
        labels = [f"c{v}" for v in labels]
    labels = list(labels)
    labels[row] = value
    if isinstance(value, bool) and len(labels) > 1 and all(isinstance(v, bool) for v in labels):
        labels[(row + 1) % len(labels)] = 1
    with pytest.raises(ValidationError, match=problem) as caught:
        validate(_crowdkit(labels))
    assert caught.value.column == "label"
    assert caught.value.row is not None
    assert labels[caught.value.row] is value or str(labels[caught.value.row]) == str(value) \
        or isinstance(value, bool)


@settings(FUZZ, max_examples=40)
@given(st.lists(st.integers(0, 2), min_size=2, max_size=8), st.data(), st.booleans())
def test_gold_of_another_kind_than_the_labels(labels, data, text_labels):
    """The gold '1' beside the label 1 would be a class no judgment gives: every gold would miss."""
    row = data.draw(st.integers(0, len(labels) - 1))
    table = _crowdkit([f"c{v}" if text_labels else v for v in labels])
    gold = pd.Series([None] * len(labels), dtype=object)
    gold[row] = 1 if text_labels else "1"
    table["gold"] = gold
    with pytest.raises(ValidationError, match="gold is not of the labels' kind") as caught:
        validate(table)
    assert (caught.value.column, caught.value.row) == ("gold", row)


@pytest.mark.parametrize(("classes", "problem"), [
    ([0, 1, 1, 2], r"classes\[2\] repeats"),
    ([0, 1, 2, np.nan], r"classes\[3\] is missing"),
    ([0, 1, 2, None], r"classes\[3\] is missing"),
    ("012", "must be a list"),
    ([0, [1], 2], r"classes\[1\] must be a single value"),
])
def test_declared_classes_are_checked(classes, problem):
    with pytest.raises(ValidationError, match=problem):
        validate(_crowdkit([0, 1, 1, 2]), classes=classes)


def test_header_of_several_levels_is_named():
    table = _crowdkit([0, 1, 1, 2])
    table.columns = pd.MultiIndex.from_tuples([(c, "") for c in table.columns])
    with pytest.raises(ValidationError, match="several levels"):
        validate(table)
    for frame, check in ((pd.DataFrame({"response_id": ["r"], "annotator": ["a"], "attribute": ["h"], "label": [1]}),
                          lambda t: validate_attributes(t, scales=3)),
                         (pd.DataFrame({"solution_id": ["s"], "step": [0], "annotator": ["a"], "label": [1]}),
                          validate_steps)):
        frame.columns = pd.MultiIndex.from_tuples([(c, "x") for c in frame.columns])
        with pytest.raises(ValidationError, match="several levels"):
            check(frame)


# -- whole numbers beyond 64 bits ---------------------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(st.integers(1, 6), st.data(), st.sampled_from([2**63, 2**64 - 1, 2**70, -(2**63) - 1]),
       st.sampled_from(["object", "uint64"]))
def test_ratings_beyond_int64_are_named_not_wrapped(n, data, huge, dtype):
    """A uint64 2**64-1 used to wrap round to -1, a rating on the scale -3..3; 2**70 overflowed inside pandas."""
    if dtype == "uint64" and not 0 <= huge < 2**64:
        dtype = "object"
    row = data.draw(st.integers(0, n - 1))
    labels = [1] * n
    labels[row] = huge
    table = pd.DataFrame({"response_id": [f"r{i}" for i in range(n)], "annotator": ["a"] * n,
                          "attribute": ["help"] * n, "label": pd.Series(labels, dtype=object).astype(dtype)})
    with pytest.raises(ValidationError) as caught:
        validate_attributes(table, scales=3)
    assert (caught.value.column, caught.value.row) == ("label", row)
    assert int(caught.value.value) == huge


@settings(FUZZ, max_examples=30)
@given(st.sampled_from([2**63, 2**64 - 1, 2**70]), st.sampled_from(["object", "uint64"]))
def test_steps_beyond_int64_are_named_as_given(huge, dtype):
    if dtype == "uint64" and huge >= 2**64:
        dtype = "object"
    table = pd.DataFrame({"solution_id": ["s", "s"], "step": pd.Series([0, huge], dtype=object).astype(dtype),
                          "annotator": ["a", "a"], "label": [1, 1]})
    with pytest.raises(ValidationError, match="non-negative integer") as caught:
        validate_steps(table)
    assert (caught.value.column, caught.value.row) == ("step", 1)
    assert int(caught.value.value) == huge


@pytest.mark.parametrize("scales", [(0, 2**70), (-(2**70), 0), 2**70])
def test_declared_scale_beyond_int64(scales):
    table = pd.DataFrame({"response_id": ["r"], "annotator": ["a"], "attribute": ["h"], "label": [1]})
    with pytest.raises(ValidationError, match="scale of"):
        validate_attributes(table, scales=scales)


def test_scale_columns_beyond_int64():
    table = pd.DataFrame({"response_id": ["r", "s"], "annotator": ["a", "a"], "attribute": ["h", "h"],
                          "label": [1, 1], "scale_min": [0, 0], "scale_max": [2**70, 2**70]})
    with pytest.raises(ValidationError, match="scale bound") as caught:
        validate_attributes(table)
    assert (caught.value.column, caught.value.row) == ("scale_max", 0)


@settings(FUZZ, max_examples=40)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=8), st.data(), st.sampled_from(["pair_id", "annotator"]))
def test_ids_mixing_booleans_and_numbers_are_refused(ids, data, column):
    """True == 1 and hash(True) == hash(1): a JSON file with the ids true and 1 had them grouped as one id."""
    row = data.draw(st.integers(1, len(ids) - 1))
    values: list = list(ids)
    values[row] = data.draw(st.booleans())
    n = len(ids)
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "annotator": [f"w{i}" for i in range(n)],
                          "label": ["A"] * n})
    table[column] = pd.Series(values, dtype=object)
    with pytest.raises(ValidationError, match="true/false and numbers") as caught:
        validate(table)
    assert (caught.value.column, caught.value.row) == (column, row)


def test_all_boolean_ids_stay_ids():
    table = pd.DataFrame({"pair_id": pd.Series([True, True, False, False], dtype=object),
                          "annotator": ["a", "b", "a", "b"], "label": ["A", "B", "A", "tie"]})
    assert encode(validate(table)).n_items == 2


# -- the streamed (sharded) reader follows the same cell rules ----------------------------------------------


@settings(FUZZ, max_examples=25)
@given(st.integers(2, 12), st.integers(1, 4), st.booleans())
def test_shards_of_a_categorical_pair_column_partition_the_pairs(tmp_path_factory, n_pairs, world_size, as_category):
    """A pandas categorical is stored dictionary-encoded; each rank's shard used to list every pair of the file
    (the whole dictionary), with made-up first rows for the pairs it does not own."""
    from accord.datasets.stream import read_judgment_shard

    pairs = [f"p{i}" for i in range(n_pairs) for _ in range(2)]
    table = pd.DataFrame({"pair_id": pairs, "annotator": ["a", "b"] * n_pairs, "label": ["A", "B"] * n_pairs})
    plain = tmp_path_factory.mktemp("shards") / "plain.parquet"
    table.to_parquet(plain)
    coded = plain.with_name("coded.parquet")
    table.assign(**{"pair_id": table["pair_id"].astype("category") if as_category else table["pair_id"],
                    "annotator": table["annotator"].astype("category")}).to_parquet(coded)
    seen: list[str] = []
    for rank in range(world_size):
        shard = read_judgment_shard(coded, rank, world_size)
        reference = read_judgment_shard(plain, rank, world_size)
        assert list(shard.item_ids) == list(reference.item_ids)
        assert shard.item_first_row.tolist() == reference.item_first_row.tolist()
        assert shard.items.tolist() == reference.items.tolist()
        seen += list(shard.item_ids)
    assert sorted(seen) == sorted(set(pairs))


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("pair_id", " ", "missing id"), ("annotator", "", "missing id"), ("label", "  ", "blank label"),
])
@pytest.mark.parametrize("as_category", [False, True])
def test_streamed_reader_refuses_what_validate_refuses(tmp_path, column, value, problem, as_category):
    from accord.datasets.stream import read_judgment_shard

    table = pd.DataFrame({"task": ["p1", "p1", "p2", "p2"], "worker": ["a", "b", "a", "b"],
                          "label": ["x", "y", "x", "y"]})
    table.loc[2, {"pair_id": "task", "annotator": "worker"}.get(column, column)] = value
    if as_category:
        table = table.astype("category")
    path = tmp_path / "judgments.parquet"
    table.to_parquet(path)
    with pytest.raises(ValidationError, match=problem):
        validate(table)
    with pytest.raises(ValidationError, match=problem) as caught:
        read_judgment_shard(path)
    assert caught.value.row == 2


@pytest.mark.parametrize("column", ["task", "label"])
def test_streamed_reader_refuses_infinite_ids_and_labels(tmp_path, column):
    from accord.datasets.stream import read_judgment_shard

    table = pd.DataFrame({"task": [1.0, 1.0, 2.0, 2.0], "worker": ["a", "b", "a", "b"], "label": [0.0, 1.0, 0.0, 1.0]})
    table.loc[3, column] = np.inf
    path = tmp_path / "judgments.parquet"
    table.to_parquet(path)
    with pytest.raises(ValidationError, match="not finite") as caught:
        read_judgment_shard(path)
    assert caught.value.row == 3


# -- attributes_from_wide: the wide layout's own mistakes ---------------------------------------------------


@settings(FUZZ, max_examples=30)
@given(st.integers(2, 4), st.data())
def test_wide_columns_giving_one_attribute_twice_are_named(n_columns, data):
    """Two rating columns mapped to one attribute raised pandas' InvalidIndexError."""
    from accord.datasets import attributes_from_wide

    columns = [f"c{i}" for i in range(n_columns)]
    frame = pd.DataFrame({"response_id": ["r1", "r2"], "annotator": ["a", "b"], **{c: [1, 2] for c in columns}})
    first, second = sorted(data.draw(st.lists(st.sampled_from(columns), min_size=2, max_size=2, unique=True)))
    mapping = {c: c for c in columns}
    mapping[second] = first
    with pytest.raises(ValidationError, match="two rating columns give the attribute") as caught:
        attributes_from_wide(frame, mapping, scales=3, keep=["response_id", "annotator"])
    assert caught.value.column == second


def test_wide_column_both_rated_and_kept_or_given_as_a_text():
    from accord.datasets import attributes_from_wide

    frame = pd.DataFrame({"response_id": ["r1", "r2"], "annotator": ["a", "b"], "help": [1, 2]})
    with pytest.raises(ValidationError, match="both a rating column") as caught:
        attributes_from_wide(frame, ["help"], scales=3, keep=["response_id", "annotator", "help"])
    assert caught.value.column == "help"
    with pytest.raises(ValidationError, match="attributes must be a list"):
        attributes_from_wide(frame, "help", scales=3, keep=["response_id", "annotator"])
    with pytest.raises(ValidationError, match="keep must be a list"):
        attributes_from_wide(frame, ["help"], scales=3, keep="response_id")


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string", "object", "str"])
@pytest.mark.parametrize("n", [1, 3])
def test_crowdkit_labels_all_missing_in_a_string_column(dtype, n):
    """Inferring the form from no labels at all asked a string column's all(), which pandas refuses (TypeError)."""
    table = pd.DataFrame({"task": [f"p{i}" for i in range(n)], "worker": ["a"] * n,
                          "label": pd.array([None] * n, dtype=dtype)})
    with pytest.raises(ValidationError, match="missing label") as caught:
        validate(table)
    assert (caught.value.column, caught.value.row) == ("label", 0)


# -- the checks of object columns read a column's kind in C, and flag exactly the cells the per-cell rules flag -------

OBJECT_CELLS = st.one_of(
    CELLS, st.just(pd.NaT), st.just(Decimal("NaN")), st.just(Decimal("1.5")), st.just(b"A"), st.just(np.str_("A")),
    st.just(np.bool_(True)), st.just(np.float32("nan")), st.just(np.float64(2.0)), st.just({"a": 1}),
    st.sampled_from(["a\rb", "\r", "line\r\n"]), st.just(("A", 1)), st.just(np.zeros(1)),
)


def _object_columns() -> st.SearchStrategy[pd.Series]:
    """Object columns of mixed cells, and of one kind (with and without missing cells), as big tables mostly are."""
    one_kind = st.one_of(st.text(max_size=3), st.integers(-(2**70), 2**70), st.booleans(), st.floats())
    cells = st.one_of(st.lists(OBJECT_CELLS, min_size=1, max_size=8),
                      st.lists(st.one_of(one_kind, st.none(), st.just(np.nan)), min_size=1, max_size=8),
                      one_kind.flatmap(lambda _: st.lists(one_kind, min_size=1, max_size=8)))
    return cells.map(lambda values: pd.Series(values, dtype=object))


def _cellwise(values: pd.Series, predicate) -> np.ndarray:  # the per-cell rules, as they were written
    return np.array([bool(predicate(v)) for v in values], dtype=bool)


def _is_float_not_finite(v) -> bool:
    return isinstance(v, (float, np.floating)) and not np.isfinite(v)


def _is_bool(v) -> bool:
    return isinstance(v, (bool, np.bool_))


@FUZZ
@given(_object_columns())
def test_object_column_masks_flag_exactly_the_cells_the_per_cell_rules_flag(values):
    from accord.datasets.schema import _check_hashable, _object_mask, string_mask

    is_text = _cellwise(values, lambda v: isinstance(v, str))
    assert np.array_equal(string_mask(values).to_numpy(dtype=bool), is_text)
    assert np.array_equal(string_mask(values.dropna()).to_numpy(dtype=bool),
                          _cellwise(values.dropna(), lambda v: isinstance(v, str)))
    present = values.notna()
    for predicate in (_is_float_not_finite, _is_bool):
        assert np.array_equal(_object_mask(values, present, predicate).to_numpy(dtype=bool),
                              present.to_numpy() & _cellwise(values, predicate))
    unhashable = _cellwise(values, lambda v: isinstance(v, (list, dict, set, np.ndarray)) or not _hashable(v))
    if unhashable.any():
        with pytest.raises(ValidationError, match="single value") as caught:
            _check_hashable(values, "label", None)
        assert caught.value.row == int(np.flatnonzero(unhashable)[0])
    else:
        _check_hashable(values, "label", None)


def _hashable(v) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


@FUZZ
@given(_object_columns())
def test_object_ids_passed_by_their_kind_pass_every_per_cell_rule(values):
    """check_ids passes an object column of texts, of whole numbers or of booleans (nothing missing) without reading
    its cells: the per-cell rules it skips (single, finite, all texts or none, all booleans or none) pass them."""
    from accord.datasets.schema import check_ids, object_kind

    blank = _cellwise(values, lambda v: isinstance(v, str) and not v.strip())
    if values.isna().any() or blank.any() or object_kind(values) not in ("string", "integer", "boolean"):
        return  # (missing and blank ids are refused first, by a vectorised check)
    check_ids(values, "pair_id", None)
    assert _cellwise(values, _hashable).all() and not _cellwise(values, _is_float_not_finite).any()
    for predicate in (lambda v: isinstance(v, str), _is_bool):
        assert len(set(_cellwise(values, predicate))) == 1


@FUZZ
@given(_object_columns(), st.sampled_from([object, "str", "string"]))
def test_carriage_return_search_agrees_with_the_per_cell_rule(values, dtype):
    from accord.datasets.io import _holds_carriage_return

    if dtype != object:
        values = values.where(values.map(lambda v: isinstance(v, str)), None).astype(dtype)
    expected = _cellwise(values, lambda v: isinstance(v, str) and "\r" in v).any()
    assert _holds_carriage_return(pd.DataFrame({"response_a": values})) == expected


def test_plain_object_tables_are_checked_and_written_without_a_python_call_per_cell(monkeypatch, tmp_path):
    """The hot-path rule: validating a big object (or categorical) table of texts, and writing a text table to CSV,
    must not call Python once per judgment (on 1M judgments the per-cell checks cost seconds)."""
    from accord.datasets.io import write_table

    n = 2_000
    texts = pd.DataFrame({"pair_id": [f"p{i // 3}" for i in range(n)], "annotator": [f"w{i % 7}" for i in range(n)],
                          "label": np.array(["A", "B", "tie"])[np.arange(n) % 3],
                          "gold": np.where(np.arange(n) % 5 == 0, None, "A")}).astype(object)
    calls = []
    plain_map = pd.Series.map
    monkeypatch.setattr(pd.Series, "map", lambda self, f, *a, **k: calls.append(f) or plain_map(self, f, *a, **k))
    validate(texts)
    validate(texts.astype({"pair_id": "category", "annotator": "category", "label": "category"}))
    validate(texts.drop(columns="gold").rename(columns={"pair_id": "task", "annotator": "worker"}))
    labels = texts.assign(label=texts["label"].map({"A": "cat", "B": "dog", "tie": "bird"}.get), gold=None)
    ratings = texts.drop(columns="gold").assign(attribute=np.array(["help", "harm"])[np.arange(n) % 2])
    calls.clear()
    validate(labels, form="categorical")
    validate_attributes(ratings.assign(response_a="a", response_b="b"))  # A/B/tie ratings of pairs
    validate_attributes(ratings.astype(str).assign(response_a="a", response_b="b"))
    write_table(texts.assign(prompt="a\nb"), tmp_path / "t.csv")
    assert [f for f in calls if callable(f)] == []


@FUZZ
@given(st.lists(st.sampled_from(["A", "B", "tie"]), min_size=1, max_size=8), st.sampled_from([object, "str", "string"]))
def test_text_ratings_of_pairs_get_their_codes(labels, dtype):
    """A/B/tie ratings of pairs (looked up for the whole column at once) are -1/1/0, row by row, as int64."""
    from accord.datasets.attributes import PREFERENCE_CODES

    n = len(labels)
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "response_a": "a", "response_b": "b",
                          "annotator": "w", "attribute": "help", "label": pd.Series(labels, dtype=dtype)})
    checked = validate_attributes(table)
    assert checked["label"].dtype == np.int64
    assert checked["label"].tolist() == [PREFERENCE_CODES[v] for v in labels]
