"""DataFrames as users have them, at every public entry point: pandas' own dtypes (Arrow-backed, ``string``,
categorical with unused categories, nullable ``Int64``/``boolean``/``Float64``), indexes other than 0..n-1 (a
filtered, sorted, repeated, string or MultiIndex), crowd-kit's ``task``/``worker`` names.

The rule: the same answer as the plain table (object columns, a RangeIndex), or one error naming the column (and
the row, where a cell is to blame); and the user's frame is never modified.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from accord.aggregate import MajorityVote
from accord.datasets import (AccordError, ValidationError, attributes_from_wide, encode, encode_attributes,
                             gold_labels, make_synthetic, swap_sides, validate, validate_attributes, validate_steps)
from accord.datasets.cleaned import item_texts
from accord.datasets.steps.schema import encode_steps
from accord.models.debiased_bradley_terry import covariate_values, per_pair_values
from accord.models.pairwise import build_layout

PANDAS_FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

INDEX_KINDS = ("gaps", "sorted", "repeated", "text", "multi")


def with_index(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``frame`` (same rows, same order) under an index of ``kind``: what filtering, sorting, concatenating or
    reading with ``index_col`` leaves."""
    n = len(frame)
    index = {
        "gaps": lambda: pd.Index(np.arange(n) * 3 + 5),  # a filtered frame
        "sorted": lambda: pd.Index(np.arange(n)[::-1]),  # a frame sorted by a column: its labels out of order
        "repeated": lambda: pd.Index(np.zeros(n, dtype=np.int64)),  # pd.concat without ignore_index
        "text": lambda: pd.Index([f"r{i}" for i in range(n)]),  # "r10" sorts before "r2"
        "multi": lambda: pd.MultiIndex.from_arrays([np.arange(n) // 2, np.arange(n) % 2]),
    }[kind]()
    return frame.set_axis(index)


@contextmanager
def unchanged(*frames: pd.DataFrame) -> Iterator[None]:
    """The frames hold the same cells, dtypes, index and columns after the block as before it."""
    before = [frame.copy(deep=True) for frame in frames]
    yield
    for frame, copy in zip(frames, before):
        assert_frame_equal(frame, copy, check_exact=True)
        assert frame.index.equals(copy.index) and list(frame.columns) == list(copy.columns)


# -- attributes_from_wide ------------------------------------------------------------------------------------------


@PANDAS_FUZZ
@given(st.integers(3, 12), st.sampled_from(INDEX_KINDS), st.integers(0, 10_000))
def test_wide_ratings_become_long_in_row_order_whatever_the_index(n, kind, seed):
    """The long rows were ordered by the frame's index labels: a sorted frame's ratings came out in the order of its
    old labels, a text index put 'r10' before 'r2', and under a repeated index one item's ratings were no longer
    together (all of the first attribute, then all of the next)."""
    rng = np.random.default_rng(seed)
    wide = pd.DataFrame({"response_id": [f"r{i}" for i in range(n)], "annotator": rng.choice(["a", "b", "c"], n),
                         "help": rng.integers(0, 5, n).astype(float), "verb": rng.integers(0, 5, n)})
    wide.loc[rng.random(n) < 0.2, "help"] = np.nan  # a missing cell is not a rating
    plain = attributes_from_wide(wide, ["help", "verb"], scales=(0, 4), keep=["response_id", "annotator"])
    messy = with_index(wide, kind)
    with unchanged(messy):
        long = attributes_from_wide(messy, ["help", "verb"], scales=(0, 4), keep=["response_id", "annotator"])
    assert_frame_equal(long, plain)


# -- step judgments --------------------------------------------------------------------------------------------


@PANDAS_FUZZ
@given(st.integers(0, 3), st.sampled_from(["boolean", pd.ArrowDtype(pa.bool_())]))
def test_a_missing_step_label_in_a_nullable_boolean_column_is_named(row, dtype):
    """pandas' "boolean" and Arrow's bool columns hold pd.NA: the cast of true/false to 1/0 met it as pandas' own
    ValueError ('cannot convert NA to integer') or TypeError, naming no column or row."""
    labels = [True, False, True, True]
    labels[row] = None
    table = pd.DataFrame({"solution_id": ["s"] * 4, "step": [0, 1, 0, 1], "annotator": ["a", "a", "b", "b"],
                          "label": pd.array(labels, dtype=dtype)})
    with unchanged(table), pytest.raises(ValidationError, match=f"column 'label', row {row}: missing label"):
        validate_steps(table)


# -- swap_sides ------------------------------------------------------------------------------------------------


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["x", "y", "z", "w"]), st.sampled_from(["x", "y", "z", "w"]),
                          st.sampled_from(["A", "B", "tie"]), st.booleans()), min_size=1, max_size=8),
       st.sampled_from(["sides", "ids", "both"]), st.sampled_from(INDEX_KINDS))
def test_swap_sides_of_categorical_response_columns(rows, categorical, kind):
    """A categorical response column (``astype('category')``, Parquet's dictionary columns) took the other side's
    texts only when they were among its own categories: else pandas' 'Cannot setitem on a Categorical with a new
    category'."""
    plain = pd.DataFrame({"pair_id": [f"p{i}" for i in range(len(rows))], "annotator": "w",
                          "label": [label for _, _, label, _ in rows], "response_a": [a for a, _, _, _ in rows],
                          "response_b": [b for _, b, _, _ in rows],
                          "response_a_id": [f"id-{a}" for a, _, _, _ in rows],
                          "response_b_id": [f"id-{b}" for _, b, _, _ in rows]})
    mask = np.array([turn for _, _, _, turn in rows])
    columns = {"sides": ["response_a", "response_b"], "ids": ["response_a_id", "response_b_id"]}.get(
        categorical, ["response_a", "response_b", "response_a_id", "response_b_id"])
    messy = with_index(plain.astype(dict.fromkeys(columns, "category")), kind)
    with unchanged(messy):
        turned = swap_sides(messy, mask)
    expected = swap_sides(plain, mask)
    assert turned.index.equals(messy.index)
    for column in expected.columns:
        assert turned[column].astype(object).tolist() == expected[column].tolist(), column
    for column in columns:  # still categorical, its categories the values of both sides
        assert isinstance(turned[column].dtype, pd.CategoricalDtype)


# -- Arrow dictionary columns ------------------------------------------------------------------------------------


def read_back_with_arrow(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` written to Parquet and read with ``dtype_backend="pyarrow"``: its categorical columns come back as
    Arrow dictionary columns, whose dictionaries keep every category (unused ones too)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    buffer.seek(0)
    return pd.read_parquet(buffer, dtype_backend="pyarrow")


def as_categories(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` as pandas categoricals with the categories sorted and one unused category added."""
    out = frame.copy()
    for column in columns:
        values = out[column].astype(str)
        out[column] = pd.Categorical(values, categories=sorted({*values, "zz-unused"}))
    return out


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4), st.sampled_from(["A", "B", "tie"])), min_size=2,
                max_size=30, unique_by=lambda row: row[:2]),
       st.integers(0, 4))
def test_arrow_dictionary_columns_are_read_as_their_values(rows, dropped):
    """An Arrow dictionary column was numbered in its dictionary's order, unused entries included: a table filtered
    after reading (a rater's rows dropped) still had that rater, and a pair nobody judged got a uniform soft label;
    raters came in sorted order, not in order of appearance as from a plain column."""
    table = pd.DataFrame(rows, columns=["pair_id", "annotator", "label"]).assign(
        pair_id=lambda t: "p" + t["pair_id"].astype(str), annotator=lambda t: "w" + t["annotator"].astype(str))
    stored = read_back_with_arrow(as_categories(table, ["pair_id", "annotator", "label"]))
    keep = (table["annotator"] != f"w{dropped}").to_numpy()
    if not keep.any():
        return
    plain, messy = table[keep], stored[keep]
    with unchanged(messy):
        expected, got = encode(validate(plain)), encode(validate(messy))
        votes = MajorityVote().fit(messy).soft_labels_.probs
    assert list(got.item_index) == list(expected.item_index)
    assert list(got.worker_index) == list(expected.worker_index)
    for codes in ("items", "workers", "labels"):
        assert np.array_equal(getattr(got, codes), getattr(expected, codes))
    assert got.classes == expected.classes
    assert list(votes.index) == list(MajorityVote().fit(plain).soft_labels_.probs.index)


def test_arrow_dictionary_response_ids_fit_the_context_model():
    """pyarrow's isin refused the plain ids of a dictionary column ('Array type doesn't match type of values set')."""
    from accord.models import ContextPreference

    judgments = make_synthetic(n_pairs=8, n_annotators=4, judgments_per_pair=3, n_groups=2, seed=0).judgments
    judgments.attrs = {}
    columns = [c for c in judgments.columns if not pd.api.types.is_numeric_dtype(judgments[c])]
    stored = read_back_with_arrow(as_categories(judgments, columns))
    settings_ = {"max_steps": 5, "num_samples": 5}
    with unchanged(stored):
        fitted = ContextPreference(**settings_).fit(stored)
    plain = ContextPreference(**settings_).fit(judgments)
    assert_frame_equal(fitted.soft_labels_.probs, plain.soft_labels_.probs, check_index_type=False)


@pytest.mark.parametrize("kind", ["attributes", "steps"])
def test_arrow_dictionary_ids_of_ratings_and_steps(kind):
    """The same reading of the ids for multi-attribute ratings and step judgments (a filtered table kept its
    dictionary's unused raters)."""
    if kind == "attributes":
        table = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2"], "annotator": ["b", "a", "b", "c"],
                              "attribute": ["help"] * 4, "label": [1, 2, 3, 1]})
        check, codes = (lambda t: validate_attributes(t, scales=(0, 4))), encode_attributes
        index = "item_index"
    else:
        table = pd.DataFrame({"solution_id": ["s2", "s2", "s1", "s1"], "step": [0, 0, 0, 0],
                              "annotator": ["b", "a", "b", "c"], "label": [1, 0, 1, 1]})
        check, codes = validate_steps, encode_steps
        index = "solution_index"
    stored = read_back_with_arrow(as_categories(table, [table.columns[0], "annotator"]))
    keep = (table["annotator"] != "c").to_numpy()
    got, expected = codes(check(stored[keep])), codes(check(table[keep]))
    assert list(got.worker_index) == list(expected.worker_index) == ["b", "a"]
    assert list(getattr(got, index)) == list(getattr(expected, index))
    assert np.array_equal(got.workers, expected.workers)


# -- predict_proba of response pairs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crowd_bradley_terry():
    from accord.models import CrowdBradleyTerry

    judgments = make_synthetic(n_pairs=10, n_annotators=4, judgments_per_pair=3, seed=0).judgments
    return CrowdBradleyTerry(max_steps=30, num_samples=10).fit(judgments)


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19)), min_size=1, max_size=8),
       st.sampled_from(INDEX_KINDS), st.sampled_from([None, "category", "string[pyarrow]"]))
def test_predict_proba_keeps_the_index_of_the_pairs(crowd_bradley_terry, picks, kind, dtype):
    """The predictions of a filtered or sorted frame of pairs came numbered 0..n-1: assigned back to the frame
    (pairs.assign(p_a=model.predict_proba(pairs)['A'])) they landed on other rows, or on none (NaN)."""
    responses = crowd_bradley_terry.layout_.response_index
    plain = pd.DataFrame({"response_a_id": [responses[a % len(responses)] for a, _ in picks],
                          "response_b_id": [responses[b % len(responses)] for _, b in picks]})
    messy = with_index(plain if dtype is None else plain.astype(dtype), kind)
    with unchanged(messy):
        out = crowd_bradley_terry.predict_proba(messy)
    assert out.index.equals(messy.index)
    expected = crowd_bradley_terry.predict_proba(plain)
    assert_frame_equal(out.reset_index(drop=True).astype({c: object for c in ("response_a_id", "response_b_id")}),
                       expected.astype({c: object for c in ("response_a_id", "response_b_id")}))
    if kind != "repeated":  # assigned back, each row gets its own pair's prediction
        assert messy.assign(p_a=out["A"])["p_a"].tolist() == expected["A"].tolist()


# -- suggest -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dawid_skene():
    from accord.models import DawidSkene

    judgments = make_synthetic(n_pairs=10, n_annotators=5, judgments_per_pair=2, seed=1).judgments
    return DawidSkene().fit(judgments)


@PANDAS_FUZZ
@given(st.data(), st.sampled_from(INDEX_KINDS), st.sampled_from([None, "category", "string[pyarrow]"]),
       st.booleans())
def test_suggest_reads_allowed_assignments_as_given(dawid_skene, data, kind, dtype, crowdkit):
    """The allowed (pair, rater) rows in any dtype and index give the batch of the plain rows; with crowd-kit's
    task/worker names they were refused ('allowed assignments need columns pair_id and annotator')."""
    from accord.aggregate.suggest import suggest

    pairs, raters = dawid_skene.encoded_.item_index, dawid_skene.encoded_.worker_index
    rows = data.draw(st.lists(st.tuples(st.sampled_from(list(pairs)), st.sampled_from(list(raters))), min_size=1,
                              max_size=20, unique=True))
    plain = pd.DataFrame(rows, columns=["pair_id", "annotator"])
    messy = with_index(plain if dtype is None else plain.astype(dtype), kind)
    if crowdkit:
        messy = messy.rename(columns={"pair_id": "task", "annotator": "worker"})
    with unchanged(messy):
        batch = suggest(dawid_skene, 4, allowed=messy, certainty=1.0)
    assert_frame_equal(batch, suggest(dawid_skene, 4, allowed=plain, certainty=1.0))


# -- rows named after a duplicate policy -------------------------------------------------------------------------


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["a", "b"])), min_size=1, max_size=10),
       st.integers(0, 10), st.sampled_from(["first", "last", "keep"]), st.sampled_from(["judgments", "ratings"]),
       st.sampled_from(INDEX_KINDS))
def test_an_error_after_dropping_duplicates_names_the_row_given(rows, at, duplicates, kind, index):
    """With duplicates='first' or 'last', the checks after the policy read the table without the dropped rows: a
    pair shown with the same response on both sides was reported at its position there (row 2 for the input's row 3
    after one earlier row was dropped)."""
    at = min(at, len(rows))
    good = [{"pair_id": pair, "annotator": rater, "response_a_id": "x", "response_b_id": "y"} for pair, rater in rows]
    bad = {"pair_id": "p-bad", "annotator": "a", "response_a_id": "z", "response_b_id": "z"}
    table = pd.DataFrame(good[:at] + [bad] + good[at:])
    if kind == "judgments":
        table["label"] = "A"
        check = lambda t: validate(t, duplicates=duplicates)  # noqa: E731
    else:
        table = table.assign(attribute="overall", label=1)
        check = lambda t: validate_attributes(t, duplicates=duplicates, scales=1)  # noqa: E731
    with pytest.raises(ValidationError, match=f"column 'response_b_id', row {at}: both sides"):
        check(with_index(table, index))


def _with_bad_pair(rows: list[tuple[str, str]], at: int, bad: list[dict]) -> pd.DataFrame:
    """Judgments of ``rows`` (pair, rater; repeats among them) with the judgments ``bad`` put in at row ``at``."""
    good = [{"pair_id": pair, "annotator": rater, "label": "A", "response_a": "x", "response_b": "y",
             "response_a_id": "x", "response_b_id": "y", "item_n": 1.0} for pair, rater in rows]
    base = {"pair_id": "p-bad", "label": "B", "response_a": "u", "response_b": "v", "response_a_id": "u",
            "response_b_id": "v", "item_n": 2.0}
    return pd.DataFrame(good[:at] + [{**base, **row} for row in bad] + good[at:])


AFTER_VALIDATION = {
    # the check after validation, the judgments it is given (the second at row at + 1) and the error it names
    "two texts": (lambda t: item_texts(t, "pair_id", ("response_a", "response_b"), "pair"),
                  [{"annotator": "a"}, {"annotator": "b", "response_b": "w"}],
                  r"\('v' in row {at}, 'w' in row {next}\)"),
    "two response ids": (lambda t: build_layout(t, encode(t), "response"),
                         [{"annotator": "a"}, {"annotator": "b", "response_b_id": "w"}],
                         r"column 'response_a_id', row {at}: one pair_id"),
    "no text for length": (lambda t: covariate_values(t, "length"),
                           [{"annotator": "a", "response_a": None}], r"column 'response_a' row {at} has no text"),
    "no covariate value": (lambda t: covariate_values(t, "item_n"),
                           [{"annotator": "a", "item_n": np.nan}], r"row {at} has no finite value"),
    "two covariate values": (lambda t: per_pair_values(t, covariate_values(t, "item_n")[:, None], ("item_n",)),
                             [{"annotator": "a"}, {"annotator": "b", "item_n": 3.0}],
                             r"row {next} \(pair 'p-bad'\) has 3 but row {at} of the same pair has 2"),
}


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["a", "b"])), min_size=1, max_size=10),
       st.integers(0, 10), st.sampled_from(["first", "last"]), st.sampled_from(sorted(AFTER_VALIDATION)),
       st.booleans())
def test_an_error_after_validation_names_the_row_given(rows, at, duplicates, case, again):
    """Checks of a validated table (a pair's texts, its response ids, the debiased model's covariates) named the
    row of the table without the repeats that duplicates='first' or 'last' dropped (the file's row 3 as row 2 after
    one earlier repeat): they name the row of the table given, also once the table is validated again (gold
    attached)."""
    at = min(at, len(rows))
    check, bad, expected = AFTER_VALIDATION[case]
    table = validate(_with_bad_pair(rows, at, bad), duplicates=duplicates)
    if again:
        table = validate(table.assign(gold=None), duplicates="keep")
    with pytest.raises(AccordError, match=expected.format(at=at, next=at + 1)):
        check(table)


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["a", "b"])), min_size=1, max_size=10),
       st.integers(0, 10), st.sampled_from(["first", "last"]))
def test_a_validated_table_sorted_afresh_names_its_own_rows_not_stale_ones(rows, at, duplicates):
    """The rows recorded at validation describe the validated table's order: sorted and numbered afresh (a RangeIndex
    again, the record still in its attrs), the table's errors name its own rows, never the recorded rows of others."""
    at = min(at, len(rows))
    table = validate(_with_bad_pair(rows, at, [{"annotator": "a"}, {"annotator": "b", "response_b": "w"}]),
                     duplicates=duplicates)
    shuffled = table.iloc[::-1].reset_index(drop=True)
    where = np.flatnonzero((shuffled["pair_id"] == "p-bad").to_numpy())
    with pytest.raises(AccordError, match=rf"\('w' in row {where[0]}, 'v' in row {where[1]}\)"):
        item_texts(shuffled, "pair_id", ("response_a", "response_b"), "pair")


MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


@pytest.mark.parametrize("text", ["a1", MESSAGES], ids=["texts", "messages"])
@pytest.mark.parametrize("missing", [pd.NA, None, np.nan], ids=["NA", "None", "nan"])
def test_a_text_missing_as_pd_na_in_an_object_column_is_a_missing_text(text, missing):
    """A pair's text missing from one of its judgments as pd.NA (an object column of a frame built with nullable
    values) is a missing text, as None or NaN is: the pair keeps the text its other judgment shows. It was a raw
    TypeError ('boolean value of NA is ambiguous') from the comparison of each cell with its pair's first text."""
    from accord.aggregate import build_cleaned

    table = pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["r1", "r2", "r1"], "label": ["A", "A", "B"],
                          "response_a": pd.Series([missing, text, "a2"], dtype=object),
                          "response_b": pd.Series(["b1", "b1", "b2"], dtype=object)})
    texts = item_texts(table, "pair_id", ("response_a", "response_b"), "pair")
    assert texts.loc["p1", "response_a"] == text
    assert texts.loc["p2", "response_a"] == "a2"
    cleaned = build_cleaned(MajorityVote().fit(table).soft_labels_, table)
    assert cleaned["rejected"].iloc[1] == "a2"


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2"]), st.sampled_from(["a", "b"])), min_size=1, max_size=10),
       st.integers(0, 10), st.sampled_from(["first", "last", "keep"]), st.sampled_from(["numbering", "text"]))
def test_a_step_error_after_dropping_duplicates_names_the_row_given(rows, at, duplicates, problem):
    """The same for step judgments: the numbering and one-text-per-step checks run after the duplicate policy."""
    at = min(at, len(rows))
    good = [{"solution_id": solution, "step": 0, "annotator": rater, "label": 1, "step_text": "t"}
            for solution, rater in rows]
    bad = [{"solution_id": "s-bad", "step": 0, "annotator": "a", "label": 1, "step_text": "t"},
           {"solution_id": "s-bad", "step": 2 if problem == "numbering" else 0, "annotator": "b", "label": 1,
            "step_text": "t" if problem == "numbering" else "other"}]
    table = pd.DataFrame(good[:at] + bad + good[at:])
    column = "step" if problem == "numbering" else "step_text"
    with pytest.raises(ValidationError, match=f"column '{column}', row {at + 1}: "):
        validate_steps(table, duplicates=duplicates)


# -- column names that are not texts -------------------------------------------------------------------------------


NON_TEXT_NAMES = st.sampled_from([0, 7, np.int64(3), 1.5, np.nan, True, ("a", "b")])


@PANDAS_FUZZ
@given(st.lists(NON_TEXT_NAMES, min_size=1, max_size=3, unique_by=repr))
def test_columns_named_by_numbers_are_no_covariates(names):
    """A column named 0 (read_csv(header=None), an unnamed Series put beside the table) or NaN (frame[None] = ...)
    beside accord's columns: annotator_columns / item_columns, ContextPreference's covariates='auto' and the reward
    model's attribute columns read every name as a text ('int' object has no attribute 'startswith')."""
    from accord.datasets import annotator_columns, item_columns

    table = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2"], "annotator": ["a", "b", "a", "b"],
                          "label": ["A", "B", "B", "B"], "annotator_group": ["g", "h", "g", "h"],
                          "item_topic": ["t", "t", "u", "u"]})
    for position, name in enumerate(names):
        table.insert(position, name, position)
    with unchanged(table):
        assert annotator_columns(table) == ["annotator_group"]
        assert item_columns(table) == ["item_topic"]
    from accord.datasets.schema import columns_named

    assert columns_named(table, suffix="_topic") == ["item_topic"]


def test_a_number_named_column_beside_the_context_columns_fits():
    from accord.models import ContextPreference

    judgments = make_synthetic(n_pairs=8, n_annotators=4, judgments_per_pair=3, n_groups=2, seed=0).judgments
    judgments.attrs = {}
    messy = judgments.assign(**{"0": 1}).rename(columns={"0": 0})
    with unchanged(messy):
        fitted = ContextPreference(max_steps=5, num_samples=5).fit(messy)
    plain = ContextPreference(max_steps=5, num_samples=5).fit(judgments)
    assert_frame_equal(fitted.soft_labels_.probs, plain.soft_labels_.probs)


def test_a_number_named_column_beside_attribute_pairs_for_the_reward_model():
    from accord.reward.attributes import attribute_spec, read_attribute_table

    pairs = pd.DataFrame({"pair_id": ["q1", "q2"], "prompt": ["p", "p"], "chosen": ["x", "y"], "rejected": ["y", "x"],
                          "p_chosen_help": [0.9, 0.7], "weight_help": [1.0, 1.0], "p_chosen": [0.9, 0.7],
                          "p_tie": [0.0, 0.0], "weight": [1.0, 1.0], "length_mean": [3.0, 4.0]})
    expected = attribute_spec(*read_attribute_table(pairs))
    messy = pairs.assign(extra=1).rename(columns={"extra": 0})
    with unchanged(messy):
        spec = attribute_spec(*read_attribute_table(messy))
    assert spec == expected and spec.names == ["help", "length"]


# -- categorical labels with a gold column ----------------------------------------------------------------------


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(0, 4))), min_size=2, max_size=20),
       st.sampled_from(["int64", "Int64", "uint8", "object"]), st.sampled_from(["float64", "Int64", "Float64"]))
def test_integer_classes_whatever_holds_the_gold_gaps(rows, label_dtype, gold_dtype):
    """A gap in a gold column of whole numbers makes it float in numpy: the classes of integer labels then became
    the floats 0.0, 1.0, 2.0 (soft-label columns and hard labels 1.0), where a nullable Int64 gold gave 0, 1, 2.
    The classes are the labels' (gold makes none); gold is read as integers, so that it matches them."""
    if all(gold is None for _, gold in rows):
        return
    table = pd.DataFrame({"task": [f"t{i}" for i in range(len(rows))], "worker": "w",
                          "label": pd.Series([label for label, _ in rows]).astype(label_dtype),
                          "gold": pd.Series([np.nan if gold is None else gold for _, gold in rows]).astype(gold_dtype)})
    expected = tuple(sorted({label for label, _ in rows}))
    with unchanged(table):
        valid = validate(table)
        classes = encode(valid).classes
        probs = MajorityVote().fit(table).soft_labels_.probs if len(expected) > 1 else None
    assert classes == expected
    assert all(isinstance(c, (int, np.integer)) for c in classes), classes
    assert all(isinstance(g, (int, np.integer)) for g in gold_labels(valid)), gold_labels(valid).tolist()
    assert probs is None or list(probs.columns) == list(expected)


# -- cleaned datasets written from Arrow-backed frames -------------------------------------------------------------


@pytest.fixture(scope="module")
def cleaned_steps():
    from accord.aggregate import build_cleaned_steps, make_step_method
    from accord.datasets import make_synthetic_steps

    judgments = make_synthetic_steps(4, candidates_per_problem=2, labelled_per_problem=2, seed=0).judgments
    return build_cleaned_steps(make_step_method("first-error").fit(judgments).step_labels_, judgments)


@PANDAS_FUZZ
@given(st.data(), st.sampled_from(INDEX_KINDS), st.sampled_from(["parquet", "jsonl"]))
def test_a_cleaned_step_dataset_read_with_arrow_is_written_and_read_back(tmp_path_factory, cleaned_steps, data, kind,
                                                                         fmt):
    """A cleaned step dataset read with dtype_backend='pyarrow' (lists of step texts as Arrow list columns), filtered
    and written again: pandas recorded the dtype 'list<element: string>[pyarrow]' in the Parquet file, and reading it
    back failed with a TypeError ('data type ... not understood')."""
    from accord.datasets import read_cleaned_steps, write_cleaned_steps

    folder = tmp_path_factory.mktemp("steps")
    write_cleaned_steps(cleaned_steps, folder / "all.parquet")
    stored = pd.read_parquet(folder / "all.parquet", dtype_backend="pyarrow")
    keep = data.draw(st.lists(st.booleans(), min_size=len(stored), max_size=len(stored)).filter(any))
    messy = with_index(stored[keep], kind)
    with unchanged(messy):
        write_cleaned_steps(messy, folder / f"some.{fmt}")
    write_cleaned_steps(cleaned_steps[keep], folder / f"plain.{fmt}")
    got, expected = read_cleaned_steps(folder / f"some.{fmt}"), read_cleaned_steps(folder / f"plain.{fmt}")
    assert list(got.columns) == list(expected.columns)
    assert_frame_equal(got.astype(str), expected.astype(str))


def test_a_step_file_pandas_wrote_from_arrow_lists_is_read(tmp_path, cleaned_steps):
    """The reader reads such a file written by pandas itself (df.to_parquet of an Arrow-backed frame) from its Arrow
    types."""
    from accord.datasets import read_cleaned_steps, write_cleaned_steps

    write_cleaned_steps(cleaned_steps, tmp_path / "all.parquet")
    pd.read_parquet(tmp_path / "all.parquet", dtype_backend="pyarrow").to_parquet(tmp_path / "pandas.parquet")
    got = read_cleaned_steps(tmp_path / "pandas.parquet")
    assert [list(steps) for steps in got["completions"]] == [list(steps) for steps in cleaned_steps["completions"]]
    assert got["solution_id"].tolist() == cleaned_steps["solution_id"].tolist()


# -- a categorical prompt column with a missing prompt --------------------------------------------------------


@PANDAS_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["q1", "q2", None]), st.sampled_from(["x", "y", "z"]),
                          st.sampled_from(["u", "v"]), st.sampled_from(["A", "B"])), min_size=1, max_size=10),
       st.sampled_from(INDEX_KINDS))
def test_pair_ids_from_a_categorical_prompt_column_with_gaps(rows, kind):
    """A missing prompt is no prompt when the pair id is derived from the texts; a categorical prompt column
    refused the blank (fillna('') on a Categorical: 'Cannot setitem on a Categorical with a new category')."""
    plain = pd.DataFrame(rows, columns=["prompt", "response_a", "response_b", "label"]).assign(
        annotator=[f"w{i}" for i in range(len(rows))])
    messy = with_index(plain.astype({"prompt": "category"}), kind)
    with unchanged(messy):
        got = validate(messy)
    expected = validate(plain)
    assert got["pair_id"].tolist() == expected["pair_id"].tolist()


def test_cleaned_steps_with_a_categorical_prompt_column_with_gaps():
    from accord.aggregate import StepMajorityVote, build_cleaned_steps

    judgments = pd.DataFrame({"solution_id": ["s1", "s1", "s2", "s2"], "step": [0, 1, 0, 0],
                              "annotator": ["a", "a", "a", "b"], "label": [1, 0, 1, 1],
                              "prompt": ["q", "q", None, None], "step_text": ["t1", "t2", "t3", "t3"]})
    messy = judgments.astype({"prompt": "category"})
    with unchanged(messy):
        got = build_cleaned_steps(StepMajorityVote().fit(messy).step_labels_, messy)
    expected = build_cleaned_steps(StepMajorityVote().fit(judgments).step_labels_, judgments)
    assert got["prompt"].tolist() == expected["prompt"].tolist() == ["q", ""]


def test_reward_step_data_with_a_categorical_prompt_column_with_gaps():
    from accord.reward.steps import load_steps

    stepwise = pd.DataFrame({"prompt": ["q", None], "completions": [["a", "b"], ["c"]], "labels": [[1, 0], [1]]})
    messy = stepwise.astype({"prompt": "category"})
    with unchanged(messy):
        got = load_steps(messy)
    assert got["prompt"].tolist() == load_steps(stepwise)["prompt"].tolist() == ["q", ""]


@pytest.fixture(scope="module")
def tiny_ensemble_reward_model(tmp_path_factory):
    """A tiny random BERT trained for two steps with two ensemble heads (its rewards are noise; what is checked is
    how the responses are read)."""
    from accord.reward import RewardConfig, train
    from accord.reward.tiny import build_tiny_backbone

    folder = tmp_path_factory.mktemp("reward")
    words = "good bad clear rude answer question".split()
    bert = build_tiny_backbone(folder / "bert", "bert", texts=[" ".join(words)], seed=1)
    pairs = pd.DataFrame({"chosen": ["good clear answer"] * 8, "rejected": ["rude bad answer"] * 8,
                          "prompt": "question"})
    config = RewardConfig(model=str(bert), train_path=str(folder / "pairs.jsonl"), output_dir=str(folder / "rm"),
                          batch_size=4, max_steps=2, seed=0, save_steps=None, progress=False, stats_max_pairs=4,
                          ensemble_heads=2)
    pairs.to_json(config.train_path, orient="records", lines=True)
    train(config)
    return config.output_dir


def test_scoring_responses_with_a_categorical_prompt_column_with_gaps(tiny_ensemble_reward_model):
    """score and score_ensemble read a missing prompt as no prompt; a categorical prompt (or response) column refused
    fillna('') with pandas' TypeError."""
    from accord.reward.ensemble import score_ensemble
    from accord.reward.evaluate import score

    plain = pd.DataFrame({"prompt": ["question", None, "question"], "response": ["good answer", "rude", "clear"]})
    messy = with_index(plain.astype({"prompt": "category", "response": "category"}), "gaps")
    with unchanged(messy):
        scored = score(tiny_ensemble_reward_model, messy)
        members = score_ensemble([tiny_ensemble_reward_model], messy)
    np.testing.assert_allclose(scored["reward"], score(tiny_ensemble_reward_model, plain)["reward"], rtol=1e-5)
    np.testing.assert_allclose(members["reward_mean"],
                               score_ensemble([tiny_ensemble_reward_model], plain)["reward_mean"], rtol=1e-5)
