"""DataFrames as users have them, at every public entry point: pandas' own dtypes (Arrow-backed, ``string``,
categorical with unused categories, nullable ``Int64``/``boolean``/``Float64``), indexes other than 0..n-1 (a
filtered, sorted, repeated, string or MultiIndex), crowd-kit's ``task``/``worker`` names.

The rule: the same answer as the plain table (object columns, a RangeIndex), or one error naming the column (and
the row, where a cell is to blame); and the user's frame is never modified.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from accord.datasets import ValidationError, attributes_from_wide, swap_sides, validate_steps

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
