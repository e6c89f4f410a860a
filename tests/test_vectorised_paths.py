"""Hot paths told at C speed give exactly what the per-row code they bypass gives: each is compared with that code
(still there, for the inputs it is kept for) on varied inputs."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accord.reward.data as reward_data
from accord.datasets.errors import AccordError, ValidationError

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
# a cell of a response or prompt column: mostly texts, sometimes what the per-row checks are there for
CELL = st.one_of(TEXT, TEXT, TEXT, TEXT.map(np.str_), st.none(), st.just(np.nan), st.integers(-5, 5),
                 st.just([{"role": "user", "content": "hi"}]), st.just([]))


def _both_paths(outcome: Any, module: Any, name: str, per_row_stub: Any) -> tuple[Any, Any]:
    """``outcome()`` through the fast path, then with ``module.name`` stubbed so that every cell takes the per-row
    path it replaced; an error (returned as text) must be the same error either way."""
    fast = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, per_row_stub)
        per_row = outcome()
    assert type(fast) is type(per_row)
    if isinstance(per_row, str):
        assert fast == per_row
    return fast, per_row


def _column(cells: list[Any], kind: str) -> pd.Series:
    if kind == "str" and all(isinstance(c, str) for c in cells):
        return pd.Series(cells, dtype="str")
    return pd.Series(cells, dtype=object)


def _outcome(frame: pd.DataFrame) -> Any:
    try:
        return reward_data.normalise_pairs(frame, source="t.parquet")
    except ValidationError as error:
        return str(error)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 6), data=st.data(), kind=st.sampled_from(["str", "object"]), with_prompt=st.booleans(),
       plain=st.booleans())
def test_normalise_pairs_of_texts_is_the_per_row_result(n, data, kind, with_prompt, plain):
    cells = st.lists(TEXT if plain else CELL, min_size=n, max_size=n)
    frame = pd.DataFrame({"chosen": _column(data.draw(cells), kind), "rejected": _column(data.draw(cells), kind)})
    if with_prompt:
        frame["prompt"] = _column(data.draw(cells), kind)
    fast = _outcome(frame)
    with pytest.MonkeyPatch.context() as patch:  # every column through the per-row checks, as before
        patch.setattr(reward_data, "only_texts", lambda values, missing=True: False)
        per_row = _outcome(frame)
    assert type(fast) is type(per_row)
    if isinstance(per_row, str):
        assert fast == per_row
        return
    pd.testing.assert_frame_equal(fast, per_row, check_exact=True)
    for column in ("prompt", "chosen", "rejected"):
        assert [type(v) for v in fast[column]] == [type(v) for v in per_row[column]], column


MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
RESPONSE = st.one_of(TEXT, TEXT, st.none(), st.just(np.nan), st.just(pd.NA), st.integers(-3, 3), st.just(MESSAGES),
                     st.just(np.array(MESSAGES, dtype=object)), st.just([]), st.just(b"bytes"))


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(RESPONSE, max_size=6), kind=st.sampled_from(["str", "object"]))
def test_build_cleaned_sees_chat_messages_as_the_per_row_check_did(cells, kind):
    from accord.datasets.cleaned import is_messages, only_texts

    column = (pd.Series(cells, dtype="str") if kind == "str" and all(isinstance(c, str) for c in cells)
              else pd.Series(cells, dtype=object))
    per_row = any(is_messages(c) for c in column)
    assert (not only_texts(column) and any(is_messages(c) for c in column)) == per_row


def _solution(draw: Any, n_steps: int) -> dict[str, Any]:
    """One valid row of a cleaned step dataset, its lists as lists, tuples or arrays."""
    from accord.datasets.cleaned import weight_from_uncertainty

    probabilities = st.floats(0, 1)
    labels = draw(st.lists(probabilities, min_size=n_steps, max_size=n_steps))
    first = np.asarray(draw(st.lists(st.floats(0.01, 1), min_size=n_steps + 1, max_size=n_steps + 1)))
    as_kind = draw(st.sampled_from([list, tuple, np.asarray, lambda v: np.asarray(v, dtype=np.float32).astype(float)]))
    p_first_error = as_kind((first / first.sum()).tolist())
    uncertainty = draw(st.one_of(st.just([np.nan] * n_steps),
                                 st.lists(st.floats(0, 1), min_size=n_steps, max_size=n_steps)))
    return {"solution_id": draw(st.integers(0, 99)), "prompt": "p",
            "completions": draw(st.sampled_from([list, tuple, lambda v: np.asarray(v, dtype=object)]))(
                [draw(TEXT.filter(str.strip)) for _ in range(n_steps)]),  # (a step of no text is refused)
            "labels": as_kind(labels), "label_uncertainty": as_kind(uncertainty),
            "label_weights": as_kind(weight_from_uncertainty(uncertainty).tolist()),  # as the layout has them
            "p_first_error": p_first_error, "p_all_correct": float(p_first_error[-1]), "outcome_weight": 1.0,
            # the most probable position, as the layout has it
            "first_error": int(np.argmax(np.asarray(p_first_error, dtype=float))), "n_steps": n_steps,
            "n_judgments": 3, "n_annotators": 3}


# what a row's list may wrongly hold or be: each is read by the per-row checks, or by Arrow where it reads the same
ODD = [None, np.nan, pd.NA, "0.5", b"x", True, 2, 2**70, -0.0, 1.5, float("inf"), [0.5], {0.5, 0.25}, {"a": 1},
       "steps", (0.5,), np.array([[0.5, 0.5]]), np.array(0.5), np.array(["a"]), []]


def _make_one_cell_odd(draw: Any, frame: pd.DataFrame, columns: list[str]) -> None:
    """One cell of one of ``columns``, or the last entry of its list, replaced by an odd value (in place)."""
    column = draw(st.sampled_from(columns))
    row, value = draw(st.integers(0, len(frame) - 1)), draw(st.sampled_from(ODD))
    cell = frame.at[row, column]
    if draw(st.booleans()) and isinstance(value, (str, bytes, bool, int, float)) or value is None:
        cell = [*list(cell)[:-1], value]
    else:
        cell = value
    frame[column] = frame[column].astype(object)
    frame.at[row, column] = cell


@settings(max_examples=600, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), odd=st.booleans())
def test_check_cleaned_steps_is_the_per_row_check(data, n, odd):
    from accord.datasets.steps import cleaned

    rows = [_solution(data.draw, data.draw(st.integers(1, 12))) for _ in range(n)]
    frame = pd.DataFrame(rows).assign(solution_id=lambda f: f["solution_id"] + 100 * np.arange(n))  # one per row
    if odd:
        _make_one_cell_odd(data.draw, frame, ["completions", "labels", "label_uncertainty", "label_weights",
                                              "p_first_error"])

    def outcome() -> str:
        try:
            cleaned.check_cleaned_steps(frame, source="s.parquet")
        except ValidationError as error:
            return str(error)
        return "valid"

    fast = outcome()
    if not odd:  # a well-formed file passes, read at C speed
        assert fast == "valid"
        assert all(cleaned.flat_lists(frame[c], texts=c == "completions") is not None
                   for c in ("completions", "labels", "label_uncertainty", "label_weights", "p_first_error"))
    with pytest.MonkeyPatch.context() as patch:  # every column through the per-row checks, as before
        patch.setattr(cleaned, "flat_lists", lambda values, texts=False: None)
        per_row = outcome()
    assert fast == per_row


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.floats(-1e6, 1e6), max_size=300), min_size=1, max_size=8))
def test_row_sums_are_each_rows_numpy_sum(rows):
    from accord.datasets.steps.cleaned import _row_sums

    lengths = np.array([len(r) for r in rows], dtype=float)
    flat = np.concatenate([np.asarray(r, dtype=float) for r in rows])
    expected = np.array([float(np.sum(np.asarray(r, dtype=float))) for r in rows])
    np.testing.assert_array_equal(_row_sums(lengths, flat), expected)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 6), data=st.data(), kind=st.sampled_from(["str", "object"]), with_prompt=st.booleans(),
       plain=st.booleans())
def test_response_texts_and_checks_of_texts_are_the_per_row_result(n, data, kind, with_prompt, plain):
    cells = st.lists(TEXT if plain else CELL, min_size=n, max_size=n)
    frame = pd.DataFrame({"response": _column(data.draw(cells), kind)})
    if with_prompt:
        frame["prompt"] = _column(data.draw(cells), kind)

    def outcome() -> Any:
        try:
            reward_data.check_responses(frame, source="r.jsonl")
        except ValidationError as error:
            return str(error)
        return reward_data.response_texts(frame)

    fast = outcome()
    with pytest.MonkeyPatch.context() as patch:  # every column through the per-row code, as before
        patch.setattr(reward_data, "only_texts", lambda values, missing=True: False)
        per_row = outcome()
    assert fast == per_row
    if not isinstance(per_row, str):
        assert [[type(v) for v in part] for part in fast] == [[type(v) for v in part] for part in per_row]


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.one_of(CELL, st.just(pd.NA), st.just(b"x"), st.just(np.array(MESSAGES, dtype=object))),
                      max_size=6),
       kind=st.sampled_from(["str", "object", "category"]), width=st.integers(0, 8))
def test_report_pair_texts_are_the_per_cell_texts(cells, kind, width):
    from accord.aggregate.report import _missing, _shown_texts
    from accord.datasets.cleaned import is_messages, messages_text

    texts_only = all(isinstance(c, str) or c is None or c is pd.NA for c in cells)
    if kind == "str" and texts_only:
        values = pd.Series(cells, dtype="str")
    elif kind == "category" and texts_only:
        values = pd.Series(cells, dtype="category")
    else:
        values = pd.Series(cells, dtype=object)
    per_cell = pd.Series([messages_text(v) if is_messages(v) else "" if _missing(v) else str(v) for v in values],
                         index=values.index, dtype=object).str.slice(0, width)
    shown = _shown_texts(values, width)
    pd.testing.assert_series_equal(shown, per_cell)
    assert [type(v) for v in shown] == [type(v) for v in per_cell]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), odd=st.booleans(), with_labels=st.booleans())
def test_load_steps_of_stepwise_lists_is_the_per_row_result(data, n, odd, with_labels):
    import accord.reward.steps as reward_steps

    rows = [_solution(data.draw, data.draw(st.integers(1, 6))) for _ in range(n)]
    frame = pd.DataFrame({"prompt": [r["prompt"] for r in rows], "completions": [r["completions"] for r in rows]})
    if with_labels:
        frame["labels"] = [r["labels"] for r in rows]
    if odd:
        _make_one_cell_odd(data.draw, frame, ["completions", "labels"] if with_labels else ["completions"])

    def outcome() -> Any:
        try:
            return reward_steps.load_steps(frame, need_labels=False)
        except (ValidationError, TypeError) as error:  # (a 0-d array of steps fails with a TypeError either way)
            return f"{type(error).__name__}: {error}"

    fast, per_row = _both_paths(outcome, reward_steps, "flat_lists", lambda values, texts=False: None)
    if isinstance(per_row, str):
        return
    pd.testing.assert_frame_equal(fast, per_row, check_exact=True)
    for column in ("completions", "labels"):
        assert [[type(v) for v in cell] for cell in fast[column]] == [[type(v) for v in cell] for cell in per_row[column]]


# an item's text cell: few distinct values, so that items repeat texts, miss them, or show two of them
ITEM_TEXT = st.one_of(st.sampled_from(["x", "y", "", " x", "é"]), st.none(), st.just(np.nan), st.just(pd.NA))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), key_kind=st.sampled_from(["str", "object", "int", "object-int"]),
       kinds=st.lists(st.sampled_from(["str", "object", "float", "int", "messages", "mixed"]), min_size=0,
                      max_size=3))
def test_item_texts_by_codes_is_the_per_cell_result(data, n, key_kind, kinds):
    import accord.datasets.cleaned as cleaned
    from accord.datasets import AccordError

    keys = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    key = {"str": pd.Series([f"p{k}" for k in keys], dtype="str"), "object": pd.Series([f"p{k}" for k in keys],
                                                                                       dtype=object),
           "int": pd.Series(keys, dtype="int64"), "object-int": pd.Series(keys, dtype=object)}[key_kind]
    frame = pd.DataFrame({"pair_id": key})
    for position, kind in enumerate(kinds):
        if kind in ("str", "object"):
            cells = data.draw(st.lists(ITEM_TEXT, min_size=n, max_size=n))
            column = pd.Series(cells, dtype="str" if kind == "str" else object)
        elif kind in ("float", "int"):
            numbers = data.draw(st.lists(st.sampled_from([0.0, -0.0, 1.5, np.nan] if kind == "float" else [0, 7]),
                                         min_size=n, max_size=n))
            column = pd.Series(numbers, dtype="float64" if kind == "float" else "int64")
        else:  # chat messages or texts mixed with numbers: the per-cell path only
            cells = data.draw(st.lists(st.one_of(ITEM_TEXT, st.just(MESSAGES), st.integers(0, 1)), min_size=n,
                                       max_size=n))
            column = pd.Series(cells, dtype=object)
        frame[f"c{position}"] = column
    frame.index = pd.RangeIndex(10, 10 + n)  # the judgments' own row numbers, as after a duplicate policy

    def outcome() -> Any:
        try:
            return cleaned.item_texts(frame, "pair_id", [f"c{p}" for p in range(len(kinds))] + ["absent"], "pair")
        except AccordError as error:
            return str(error)

    fast, per_cell = _both_paths(outcome, cleaned, "_item_texts_by_codes", lambda table, key, present: None)
    if isinstance(per_cell, str):
        return
    pd.testing.assert_frame_equal(fast, per_cell, check_exact=True)
    for column in fast.columns:
        assert [type(v) for v in fast[column]] == [type(v) for v in per_cell[column]], column


NUMBER_CELL = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                        st.floats(-5, 5).map(round).map(float), st.sampled_from([-0.0, 2.5, 1e300, np.float32(3.0)]),
                        st.booleans(), st.none(), st.just(np.nan), st.just(pd.NA), st.just("1"), st.just(np.int64(4)))


@settings(max_examples=400, deadline=None)
@given(cells=st.lists(NUMBER_CELL, max_size=8),
       dtype=st.sampled_from([object, "float64", "float32", "Float64", "int64", "Int64", "double[pyarrow]"]))
def test_integral_mask_is_each_cells_is_integral(cells, dtype):
    from accord.datasets.schema import _is_integral, integral_mask

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # (a cast of a huge int to float32)
            warnings.simplefilter("ignore", RuntimeWarning)
            values = pd.Series(cells, dtype=dtype)
    except (TypeError, ValueError, OverflowError):  # cells this dtype cannot hold
        return
    expected = values.map(_is_integral).astype(bool)
    np.testing.assert_array_equal(integral_mask(values).to_numpy(dtype=bool), expected.to_numpy())


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), by_step=st.booleans(),
       kind=st.sampled_from(["str", "object", "float", "int", "messages", "mixed"]))
def test_one_value_per_step_by_codes_is_the_per_cell_check(data, n, by_step, kind):
    import accord.datasets.steps.schema as step_schema

    codes = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    steps = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    if kind in ("str", "object"):
        column = pd.Series(data.draw(st.lists(ITEM_TEXT, min_size=n, max_size=n)),
                           dtype="str" if kind == "str" else object)
    elif kind in ("float", "int"):
        column = pd.Series(data.draw(st.lists(st.sampled_from([0.0, -0.0, 1.5, np.nan] if kind == "float" else [0, 7]),
                                              min_size=n, max_size=n)), dtype="float64" if kind == "float" else "int64")
    else:  # chat messages (as Parquet's arrays too) or texts mixed with numbers: the per-cell path only
        cells = st.one_of(ITEM_TEXT, st.just(MESSAGES), st.just(np.array(MESSAGES, dtype=object)), st.integers(0, 1))
        column = pd.Series(data.draw(st.lists(cells, min_size=n, max_size=n)), dtype=object)
    table = pd.DataFrame({"step": steps, "step_text": column})

    def outcome() -> str:
        try:
            step_schema._check_one_value(table, codes, "step_text", "two texts", "s.csv", by_step=by_step)
        except ValidationError as error:
            return str(error)
        return "valid"

    fast, per_cell = _both_paths(outcome, step_schema, "codes_comparable", lambda values: False)
    assert fast == per_cell


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.one_of(ITEM_TEXT, TEXT, st.just(MESSAGES), st.just(np.array(MESSAGES, dtype=object)),
                                st.integers(-3, 3)), max_size=6),
       kind=st.sampled_from(["str", "object", "category"]))
def test_step_prompts_of_texts_are_the_per_cell_prompts(cells, kind):
    import accord.datasets.cleaned as cleaned

    if kind != "object" and not all(isinstance(c, str) or c is None or c is pd.NA or c is np.nan for c in cells):
        kind = "object"
    prompts = pd.Series(cells, dtype=kind)
    fast = cleaned.cleaned_step_prompts(prompts)
    with pytest.MonkeyPatch.context() as patch:  # every cell looked at for chat messages, as before
        patch.setattr(cleaned, "only_texts", lambda values, missing=True: False)
        per_cell = cleaned.cleaned_step_prompts(prompts)
    assert [type(v) for v in fast] == [type(v) for v in per_cell]
    assert list(fast) == list(per_cell)


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=10), texts=st.booleans(), seed=st.integers(0, 99))
def test_step_lists_are_numpys_split_lists(lengths, texts, seed):
    from accord.aggregate.steps import _lists

    ends = np.cumsum(lengths)[:-1]
    values = np.random.default_rng(seed).random(sum(lengths))
    values[::3] = np.nan
    if texts:
        values = np.array([str(v) for v in values], dtype=object)
    expected = [part.tolist() for part in np.split(values, ends)]
    got = _lists(values, ends)
    assert repr(got) == repr(expected)
    assert [[type(v) for v in part] for part in got] == [[type(v) for v in part] for part in expected]


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(st.one_of(st.sampled_from(["g0", "g1", " g1", "NA", "1"]), st.none(), st.just(np.nan),
                                st.sampled_from([0.0, -0.0, 1.0, 1.5, 2.0, float("inf")]), st.integers(-2, 2),
                                st.booleans()), max_size=8),
       dtype=st.sampled_from([None, object, "str", "float64", "int64", "bool", "category"]))
def test_context_levels_named_once_per_value_are_each_cells_name(cells, dtype):
    import accord.models.context as context

    try:
        values = pd.Series(cells, dtype=dtype, name="group", index=pd.RangeIndex(3, 3 + len(cells)))
    except (TypeError, ValueError, OverflowError):  # cells this dtype cannot hold
        return
    fast = context._as_level(values)
    with pytest.MonkeyPatch.context() as patch:  # every cell named, as before
        patch.setattr(context, "codes_comparable", lambda values: False)
        per_cell = context._as_level(values)
    pd.testing.assert_series_equal(fast, per_cell, check_exact=True)


_IDS = st.lists(st.integers(0, 50), max_size=4)
# a layout as PairEncoder._layout finds it: ([before, between, after] ids, their token types, (first, second) types)
_LAYOUT = st.tuples(st.tuples(_IDS, _IDS, _IDS), st.integers(0, 2), st.integers(0, 2)).map(
    lambda t: ([list(p) for p in t[0]], [[t[1]] * len(p) for p in t[0]], (t[1], t[2])))


@pytest.fixture(scope="module")
def word_encoders() -> dict[bool, Any]:
    from accord.reward.tiny import word_tokenizer

    return {decoder: reward_data.PairEncoder(word_tokenizer(decoder=decoder), 16, is_decoder=decoder,
                                             use_chat_template=False) for decoder in (False, True)}


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(0, 8), decoder=st.booleans(), max_length=st.integers(1, 24),
       with_room=st.booleans())
def test_pair_layout_of_all_rows_is_the_per_row_layout(word_encoders, data, n, decoder, max_length, with_room):
    encoder = word_encoders[decoder]
    with pytest.MonkeyPatch.context() as patch:  # layouts as varied as tokenizers make them
        patch.setattr(encoder, "max_length", max_length)
        patch.setattr(encoder, "single", data.draw(_LAYOUT))
        patch.setattr(encoder, "pair", None if decoder else data.draw(_LAYOUT))
        patch.setattr(encoder, "eos", data.draw(st.sampled_from([[], [3]])) if decoder else [])
        shared = data.draw(st.lists(st.lists(st.integers(0, 50), max_size=12), min_size=1, max_size=3))
        picks = data.draw(st.lists(st.integers(0, len(shared) - 1), min_size=n, max_size=n))
        prompts = ["" if not shared[k] and data.draw(st.booleans()) else f"prompt {k}" for k in picks]
        p_ids = [shared[k] for k in picks]  # one prompt's list serves many rows, as encode_pairs gives it
        r_ids = data.draw(st.lists(st.lists(st.integers(0, 50), max_size=20), min_size=n, max_size=n))
        room = np.asarray(data.draw(st.lists(st.integers(-2, 14), min_size=n, max_size=n)),
                          dtype=np.int64) if with_room else None
        before = repr((p_ids, r_ids))

        def outcome() -> Any:
            try:
                return encoder._lay_out(prompts, p_ids, r_ids, room)
            except AccordError as error:
                return str(error)

        fast, per_row = _both_paths(outcome, reward_data.PairEncoder, "_lay_out",
                                    reward_data.PairEncoder._lay_out_rows)
    assert repr((p_ids, r_ids)) == before  # the tokenizer's lists are read, never changed
    _same_responses(fast, per_row)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 5))
def test_load_steps_of_a_cleaned_step_dataset_is_the_per_row_result(data, n):
    import accord.reward.steps as reward_steps

    rows = [_solution(data.draw, data.draw(st.integers(1, 6))) for _ in range(n)]
    frame = pd.DataFrame(rows).assign(solution_id=lambda f: f["solution_id"] + 100 * np.arange(n))  # one per row

    def outcome() -> Any:
        try:
            return reward_steps.load_steps(frame)
        except ValidationError as error:
            return str(error)

    fast = outcome()
    with _row_by_row():
        per_row = outcome()
    assert type(fast) is type(per_row)
    if isinstance(per_row, str):
        assert fast == per_row
        return
    _same_step_table(fast, per_row, ("completions", "labels", "label_weights"))


@contextlib.contextmanager
def _row_by_row(old_route: bool = False) -> Any:
    """Every list column of a step dataset read row by row (no :func:`flat_lists`, in the checks or in making the
    lists), as before; ``old_route``: a cleaned step file also read as a table first to find its columns, then read
    again by the cleaned reader, as before it was read once."""
    import accord.datasets.steps.cleaned as cleaned
    import accord.reward.steps as reward_steps

    with pytest.MonkeyPatch.context() as patch:
        for module in (cleaned, reward_steps):
            patch.setattr(module, "flat_lists", lambda values, texts=False: None)
        if old_route:
            patch.setattr(reward_steps, "_names_step_columns", lambda path, fmt: False)
        yield


def _same_step_table(fast: pd.DataFrame, per_row: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """The same frame, its list columns holding lists of values of the same types (their reprs: a NaN is no NaN's
    equal), with the same provenance."""
    pd.testing.assert_frame_equal(fast.drop(columns=list(columns)), per_row.drop(columns=list(columns)),
                                  check_exact=True)
    assert list(fast.columns) == list(per_row.columns)
    for column in columns:
        assert [type(cell) for cell in fast[column]] == [type(cell) for cell in per_row[column]], column
        assert [[type(v) for v in cell] for cell in fast[column]] == [[type(v) for v in cell] for cell in per_row[column]]
        assert repr(fast[column].tolist()) == repr(per_row[column].tolist())
    assert fast.attrs == per_row.attrs


def _write_raw(frame: pd.DataFrame, path: Any) -> bool:
    """``frame`` written as it is (no check) in the format of ``path``'s suffix; ``False`` where it cannot be."""
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True, double_precision=15)
    except Exception:  # noqa: BLE001 - an odd cell pandas or Arrow cannot write: nothing to read back
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), odd=st.booleans(), suffix=st.sampled_from([".parquet", ".jsonl"]),
       empty=st.booleans())
def test_load_steps_of_a_cleaned_step_file_is_the_old_routes_result(tmp_path_factory, data, n, odd, suffix, empty):
    """A cleaned step file read once, its lists cut from flat arrays, gives what reading it as a table, again as a
    cleaned step dataset and making its lists row by row gave: the same frame, provenance and error."""
    import accord.reward.steps as reward_steps
    from accord.datasets.steps import write_cleaned_steps

    rows = [_solution(data.draw, data.draw(st.integers(1, 6))) for _ in range(n)]
    frame = pd.DataFrame(rows).assign(solution_id=lambda f: f["solution_id"] + 100 * np.arange(n))  # one per row
    path = tmp_path_factory.mktemp("steps") / f"steps{suffix}"
    if odd or empty:
        if odd:
            _make_one_cell_odd(data.draw, frame, ["completions", "labels", "label_uncertainty", "label_weights",
                                                  "p_first_error"])
        if not _write_raw(frame.iloc[:0] if empty else frame, path):
            return
    else:
        with _row_by_row():  # written as before, so that this reads what the writer wrote before
            write_cleaned_steps(frame, path, provenance={"method": "test"})

    def outcome() -> Any:
        try:
            return reward_steps.load_steps(path)
        except AccordError as error:
            return f"{type(error).__name__}: {error}"

    fast = outcome()
    with _row_by_row(old_route=True):
        per_row = outcome()
    assert type(fast) is type(per_row)
    if isinstance(per_row, str):
        assert fast == per_row
        return
    assert not odd or not empty
    _same_step_table(fast, per_row, ("completions", "labels", "label_uncertainty", "label_weights", "p_first_error"))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), suffix=st.sampled_from([".parquet", ".jsonl"]))
def test_write_cleaned_steps_writes_what_the_per_row_lists_wrote(tmp_path_factory, data, n, suffix):
    """The writer's lists cut from flat arrays write the file that the per-row lists wrote, byte for byte but the
    time of writing."""
    import pyarrow.parquet as pq

    from accord.datasets.steps import write_cleaned_steps

    rows = [_solution(data.draw, data.draw(st.integers(1, 6))) for _ in range(n)]
    frame = pd.DataFrame(rows).assign(solution_id=lambda f: f["solution_id"] + 100 * np.arange(n))
    folder = tmp_path_factory.mktemp("written")
    fast, per_row = folder / f"fast{suffix}", folder / f"per_row{suffix}"
    then = pd.Timestamp("2026-01-01", tz="UTC")
    with pytest.MonkeyPatch.context() as patch:  # one time of writing for both
        patch.setattr(pd.Timestamp, "now", staticmethod(lambda tz=None: then))
        write_cleaned_steps(frame, fast)
        with _row_by_row():
            write_cleaned_steps(frame, per_row)
    if suffix == ".parquet":
        assert pq.read_table(fast).equals(pq.read_table(per_row), check_metadata=True)
    else:
        assert fast.read_bytes() == per_row.read_bytes()
        assert (folder / ".fast.jsonl.meta.json").read_bytes() == (folder / ".per_row.jsonl.meta.json").read_bytes()


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.one_of(CELL, st.just(MESSAGES), st.just(pd.NA), st.just(b"x")), max_size=6),
       kind=st.sampled_from(["str", "object", "list"]))
def test_texts_the_encoder_reads_are_each_cells_text(cells, kind):
    values = cells if kind == "list" else _column(cells, kind)
    per_cell = [reward_data._as_text(v) for v in values]
    fast = reward_data._as_texts(values)
    assert fast == per_cell
    assert [type(v) for v in fast] == [type(v) for v in per_cell]


def _same_steps(fast: Any, per_row: Any) -> None:
    """Two TokenizedSteps hold the same sequences, positions, counts and per-step arrays, of the same types."""
    assert fast.ids == per_row.ids and fast.type_ids == per_row.type_ids
    assert [[type(t) for t in s] for s in fast.ids] == [[type(t) for t in s] for s in per_row.ids]
    assert len(fast.separators) == len(per_row.separators)
    for a, b in zip(fast.separators, per_row.separators):
        assert a.dtype == b.dtype and a.tolist() == b.tolist()
    for name in ("n_steps", "label", "target", "weight", "labelled", "lengths", "offsets"):
        a, b = getattr(fast, name), getattr(per_row, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    for name in ("truncated_prompts", "truncated_steps", "outcomes_left_out", "steps_given"):
        assert getattr(fast, name) == getattr(per_row, name) and type(getattr(fast, name)) is int, name


def _warned(call: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.fixture(scope="module")
def step_encoders() -> dict[bool, Any]:
    from accord.reward.steps import StepEncoder, separator_token
    from accord.reward.tiny import word_tokenizer

    encoders = {}
    for decoder in (False, True):
        tokenizer = word_tokenizer(["cat dog sat on the mat", "so it adds up"], decoder=decoder)
        encoders[decoder] = StepEncoder(tokenizer, 16, decoder, separator_token(tokenizer, None)[1])
    return encoders


def _step_table(draw: Any, n_steps: list[int]) -> pd.DataFrame:
    """The label columns :meth:`StepEncoder.encode` reads, for solutions of ``n_steps`` steps."""
    floats = st.floats(0, 1)
    return pd.DataFrame({
        "n_steps": n_steps,
        "labels": [draw(st.lists(st.one_of(floats, st.just(np.nan)), min_size=k, max_size=k)) for k in n_steps],
        "label_weights": [draw(st.lists(floats, min_size=k, max_size=k)) for k in n_steps],
        "p_all_correct": draw(st.lists(floats, min_size=len(n_steps), max_size=len(n_steps))),
        "outcome_weight": draw(st.lists(floats, min_size=len(n_steps), max_size=len(n_steps)))})


WORD = st.sampled_from("cat dog sat on the mat so it adds up".split())


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), decoder=st.booleans(), max_length=st.integers(4, 40),
       target=st.sampled_from(["steps", "outcome"]))
def test_encoding_steps_is_the_per_solution_encoding(step_encoders, data, n, decoder, max_length, target):
    import accord.reward.steps as reward_steps

    encoder = step_encoders[decoder]
    n_steps = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    words = st.lists(WORD, max_size=data.draw(st.sampled_from([2, 6, 30]))).map(" ".join)
    table = _step_table(data.draw, n_steps).assign(
        prompt=[data.draw(st.one_of(st.just(""), words)) for _ in n_steps],
        completions=[[data.draw(words) for _ in range(k)] for k in n_steps])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "max_length", max_length)
        patch.setattr(encoder, "target", target)
        fast, fast_warned = _warned(lambda: encoder.encode(table))
        patch.setattr(reward_steps.StepEncoder, "_encode_flat", reward_steps.StepEncoder._encode_rows)
        per_row, row_warned = _warned(lambda: encoder.encode(table))
    _same_steps(fast, per_row)
    assert fast_warned == row_warned


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), decoder=st.booleans(), max_length=st.integers(4, 40),
       target=st.sampled_from(["steps", "outcome"]))
def test_encoding_steps_with_each_distinct_prompt_tokenized_once_is_tokenizing_every_solution_s(
        step_encoders, data, n, decoder, max_length, target):
    import accord.reward.steps as reward_steps

    encoder = step_encoders[decoder]
    words = st.lists(WORD, max_size=data.draw(st.sampled_from([2, 6, 30]))).map(" ".join)
    # a few prompts shared by many solutions, as process-reward data has them (the empty one, texts alike but
    # for spaces among them)
    shared = data.draw(st.lists(st.one_of(st.just(""), st.just(" "), words), min_size=1, max_size=4))
    picks = data.draw(st.lists(st.integers(0, len(shared) - 1), min_size=n, max_size=n))
    n_steps = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    table = _step_table(data.draw, n_steps).assign(
        prompt=[shared[k] for k in picks], completions=[[data.draw(words) for _ in range(k)] for k in n_steps])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "max_length", max_length)
        patch.setattr(encoder, "target", target)
        once, once_warned = _warned(lambda: encoder.encode(table))
        patch.setattr(reward_steps.StepEncoder, "_prompt_ids", reward_steps.StepEncoder._prompt_ids_each)
        each, each_warned = _warned(lambda: encoder.encode(table))
    _same_steps(once, each)
    assert once_warned == each_warned


def test_encoding_steps_tokenizes_each_distinct_prompt_once(step_encoders):
    """Was: StepEncoder.encode tokenized the prompt of every solution, though process-reward data holds several
    solutions a prompt (8 a prompt: 8 times the prompts' tokenizing). Now each distinct prompt is tokenized once."""
    encoder = step_encoders[False]
    prompts = ["the cat sat", "so it adds up", "the cat sat", "", "so it adds up", "the cat sat"]
    n = len(prompts)
    table = pd.DataFrame({"prompt": prompts, "completions": [["cat dog"]] * n, "n_steps": [1] * n,
                          "labels": [[1.0]] * n, "label_weights": [[1.0]] * n, "p_all_correct": [1.0] * n,
                          "outcome_weight": [1.0] * n})
    tokenized: list[str] = []
    real = encoder.layout._plain_ids

    def counted(texts):
        tokenized.extend(texts)
        return real(texts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder.layout, "_plain_ids", counted)
        encoder.encode(table)
    assert sorted(text for text in tokenized if text != "cat dog") == sorted(set(prompts))


# chat templates as varied as backbones write them: the tiny decoders' (one end-of-turn token), ChatML-like (two),
# one opening with BOS, one whose generation prompt is not how the conversation goes on (the plain-ids fallback)
# and one that refuses a system turn after the first message (a template's error, which must be the same one)
_CHAT_TEMPLATES = {
    "tiny": None,
    "two-token-end": "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>\n{% endfor %}"
                     "{% if add_generation_prompt %}<|assistant|>{% endif %}",
    "bos": "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
           "{% if add_generation_prompt %}<|assistant|>{% endif %}",
    "other-generation-prompt": "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
                               "{% if add_generation_prompt %}<|bot|>{% endif %}",
    "strict": "{% for m in messages %}{% if m['role'] == 'system' and not loop.first %}"
              "{{ raise_exception('a system turn after the first message: ' ~ m['content']) }}{% endif %}"
              "<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<|assistant|>"
              "{% endif %}",
}


@pytest.fixture(scope="module")
def chat_encoders() -> dict[str, Any]:
    from accord.reward.tiny import word_tokenizer

    encoders = {}
    for name, template in _CHAT_TEMPLATES.items():
        tokenizer = word_tokenizer(["the cat sat on the mat good bad answer"], decoder=True)
        if template is not None:
            tokenizer.chat_template = template
        encoders[name] = reward_data.PairEncoder(tokenizer, 16, is_decoder=True, use_chat_template=True)
    return encoders


_CHAT_TEXT = st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "good", "bad", "é", "\n", " ", ""]),
                      max_size=10).map(" ".join)
# message contents that print alike yet are not the same value, or are the same value of another type
_CONTENT = st.one_of(_CHAT_TEXT, st.sampled_from([0.0, -0.0, 1, True, 1.0, None, "1", "True"]),
                     _CHAT_TEXT.map(np.str_))
_MESSAGES = st.lists(st.builds(lambda role, content: {"role": role, "content": content},
                               st.sampled_from(["user", "assistant", "system"]), _CONTENT), max_size=3)
# one turn of a value that is equal to another (0.0 and -0.0, True and 1) but printed otherwise
_ALIKE = st.sampled_from([0.0, -0.0, 1, True, 1.0, "1"]).map(lambda content: [{"role": "system", "content": content}])
_CHAT_CELL = st.one_of(_ALIKE, st.one_of(_CHAT_TEXT, st.just(""), _MESSAGES, st.none(), st.just(np.nan),
                                         st.sampled_from([0, -0.0, 0.0]), _CHAT_TEXT.map(np.str_)))


def _outcome_warned(call: Any) -> tuple[Any, list[str]]:
    """``call()``'s result or its error (as text), and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = call()
        except Exception as error:  # noqa: BLE001 - a template's error must be the same error on both paths
            out = f"{type(error).__name__}: {error}"
    return out, [f"{w.category.__name__}: {w.message}" for w in caught]


def _same_responses(fast: Any, per_row: Any) -> None:
    assert type(fast) is type(per_row)
    if isinstance(per_row, str):
        assert fast == per_row
        return
    assert fast.ids == per_row.ids and fast.type_ids == per_row.type_ids
    assert [[type(t) for t in s] for s in fast.ids] == [[type(t) for t in s] for s in per_row.ids]
    assert fast.prompt_lengths.dtype == per_row.prompt_lengths.dtype == np.int64
    np.testing.assert_array_equal(fast.prompt_lengths, per_row.prompt_lengths)
    assert (fast.truncated_prompts, fast.truncated_responses) == (per_row.truncated_prompts,
                                                                  per_row.truncated_responses)
    assert type(fast.truncated_prompts) is type(per_row.truncated_prompts) is int


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 8), template=st.sampled_from(sorted(_CHAT_TEMPLATES)),
       max_length=st.integers(1, 30), with_room=st.booleans())
def test_chat_encoding_of_distinct_renderings_is_the_per_row_rendering(chat_encoders, data, n, template, max_length,
                                                                      with_room):
    """Each distinct prompt and conversation rendered once gives what rendering every row's did: prompts shared by
    rows, given as text, as messages (values printing alike apart) or empty, cut by small max_lengths."""
    encoder = chat_encoders[template]
    pool = data.draw(st.lists(_CHAT_CELL, min_size=1, max_size=4))
    prompts = [pool[k] for k in data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=n, max_size=n))]
    responses = data.draw(st.lists(_CHAT_CELL, min_size=n, max_size=n))
    room = np.asarray(data.draw(st.lists(st.integers(-2, 20), min_size=n, max_size=n)),
                      dtype=np.int64) if with_room else None
    before = repr((prompts, responses))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "max_length", max_length)
        fast, fast_warned = _outcome_warned(lambda: encoder._encode_chat(prompts, responses, room))
        per_row, row_warned = _outcome_warned(lambda: encoder._encode_chat_rows(prompts, responses, room))
    assert repr((prompts, responses)) == before
    _same_responses(fast, per_row)
    assert fast_warned == row_warned


_CHAT_WORDS = st.lists(st.sampled_from(["the", "cat", "sat", "good", "bad", "é"]), min_size=1, max_size=6).map(
    " ".join)


def _turns(roles: list[str], min_size: int) -> Any:
    """Chat messages of texts, as load_pairs takes them."""
    return st.lists(st.builds(lambda role, content: {"role": role, "content": content}, st.sampled_from(roles),
                              _CHAT_WORDS), min_size=min_size, max_size=3)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 8), template=st.sampled_from(sorted(_CHAT_TEMPLATES)),
       max_length=st.integers(2, 30))
def test_chat_encode_pairs_rendering_once_is_rendering_each_side_and_pass(chat_encoders, data, n, template,
                                                                          max_length):
    """encode_pairs' chat path renders the prompts and both sides' conversations once for all its passes; its
    pairs, prompt lengths, truncation counts and warnings are those of rendering each side again on each pass
    (responses to one prompt sharing it, list-of-messages and empty prompts, prompts and responses cut)."""
    encoder = chat_encoders[template]
    pool = data.draw(st.lists(st.one_of(_CHAT_TEXT, st.just(""), _turns(["user", "system"], 0)), min_size=1,
                              max_size=3))
    picks = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=n, max_size=n))
    side = _turns(["assistant"], 1) if data.draw(st.booleans()) else _CHAT_TEXT  # one kind per column, as loaded
    frame = pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "prompt": pd.Series([pool[k] for k in picks],
                                                                                      dtype=object),
                          "chosen": pd.Series(data.draw(st.lists(side, min_size=n, max_size=n)), dtype=object),
                          "rejected": pd.Series(data.draw(st.lists(side, min_size=n, max_size=n)), dtype=object)})
    try:
        pairs = reward_data.load_pairs(frame.assign(p_chosen=0.7))
    except AccordError:
        return  # a frame load_pairs refuses never reaches the encoder
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "max_length", max_length)
        fast, fast_warned = _outcome_warned(lambda: encoder.encode_pairs(pairs))
        patch.setattr(encoder, "_chat_sides", encoder._chat_sides_rows)
        per_row, row_warned = _outcome_warned(lambda: encoder.encode_pairs(pairs))
    assert fast_warned == row_warned
    assert type(fast) is type(per_row)
    if isinstance(per_row, str):
        assert fast == per_row
        return
    _same_responses(fast.chosen, per_row.chosen)
    _same_responses(fast.rejected, per_row.rejected)
    assert fast.truncation == per_row.truncation
    np.testing.assert_array_equal(fast.lengths, per_row.lengths)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), n=st.integers(0, 8), max_length=st.integers(1, 24), with_room=st.booleans())
def test_chat_layout_of_all_rows_is_the_per_row_layout(chat_encoders, data, n, max_length, with_room):
    """The chat path's layout (_lay_out_chat, numpy over lengths) gives the ids, prompt lengths and cut counts of
    the per-row layout it replaced (_lay_out_chat_rows), or its error: prompts that share a list, conversations
    that start with their prompt or not (the plain-ids fallback), end-of-turn markers, EOS and template starts of
    several lengths, prompt rooms, budgets down to none."""
    encoder = chat_encoders["tiny"]
    with pytest.MonkeyPatch.context() as patch:  # markers as varied as templates make them
        patch.setattr(encoder, "max_length", max_length)
        turn_end = data.draw(st.sampled_from([[], [7], [7, 8]]))
        chat_head = data.draw(st.sampled_from([[], [1], [1, 2, 4]]))
        patch.setattr(encoder, "turn_end", turn_end)
        patch.setattr(encoder, "chat_head", chat_head)
        patch.setattr(encoder, "eos", data.draw(st.sampled_from([[], [3]])))
        tokens = st.lists(st.sampled_from([0, 1, 2, 3, 4, 7, 8]), max_size=12)  # the markers' tokens often
        # prompts that open with the template's start (or part of it), or end with the turn's end marker (a
        # conversation that adds nothing to them, or less than the marker, does not end with it)
        shared = data.draw(st.lists(st.one_of(tokens, tokens.map(lambda t: chat_head + t),
                                              tokens.map(lambda t: chat_head[:1] + t),
                                              tokens.map(lambda t: t + turn_end)), min_size=1, max_size=3))
        picks = data.draw(st.lists(st.integers(0, len(shared) - 1), min_size=n, max_size=n))
        p_ids = [shared[k] for k in picks]  # one prompt's list serves many rows, as _render_chat gives it

        def conversation(prompt: list[int]) -> list[int]:
            kind = data.draw(st.sampled_from(["turn", "turn", "open", "other"]))
            if kind == "other":  # a template whose generation prompt is not how the conversation goes on
                return data.draw(tokens)
            return prompt + data.draw(tokens) + (turn_end if kind == "turn" else [])

        full_ids = [conversation(p) for p in p_ids]
        if n > 1 and data.draw(st.booleans()):
            full_ids[1] = full_ids[0]  # rows alike share one conversation's list
        responses = [data.draw(st.lists(st.sampled_from(["the", "cat", "sat", "mat"]), max_size=8).map(" ".join))
                     for _ in range(n)]
        room = np.asarray(data.draw(st.lists(st.integers(-2, 14), min_size=n, max_size=n)),
                          dtype=np.int64) if with_room else None
        before = repr((p_ids, full_ids))

        def outcome() -> Any:
            try:
                return encoder._lay_out_chat(p_ids, full_ids, responses, room)
            except AccordError as error:
                return str(error)

        fast, per_row = _both_paths(outcome, reward_data.PairEncoder, "_lay_out_chat",
                                    reward_data.PairEncoder._lay_out_chat_rows)
    assert repr((p_ids, full_ids)) == before  # the rendered lists are read, never changed
    _same_responses(fast, per_row)



def test_a_numpy_text_with_a_trailing_nul_is_read_the_same_either_path():
    # numpy's str() of np.str_("a\x00") is "a"; the column-wide path keeps the text as stored, so must the per-row one
    frame = pd.DataFrame({"chosen": pd.Series(["x", 1], dtype=object),
                          "rejected": pd.Series([np.str_("a\x00"), "b"], dtype=object)})
    frame_of_texts = frame.assign(chosen=["x", "1"])
    per_row, fast = _outcome(frame), _outcome(frame_of_texts)
    assert per_row["rejected"].tolist() == fast["rejected"].tolist() == ["a\x00", "b"]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), n=st.integers(1, 6), decoder=st.booleans(), max_length=st.integers(1, 30),
       target=st.sampled_from(["steps", "outcome"]))
def test_step_layout_of_all_solutions_is_the_per_solution_layout(step_encoders, data, n, decoder, max_length,
                                                                 target):
    """Prompts as the tokenizer wrote them, and prompts the chat template wrote (no start token of the layout's
    before them; cut from the left they keep the template's start, ``heads`` tokens): the layout of all solutions at
    once is the per-solution layout."""
    encoder = step_encoders[decoder]
    with pytest.MonkeyPatch.context() as patch:  # layouts as varied as tokenizers make them
        patch.setattr(encoder, "max_length", max_length)
        patch.setattr(encoder, "target", target)
        patch.setattr(encoder, "separator_id", data.draw(st.integers(0, 50)))
        patch.setattr(encoder.layout, "single", data.draw(_LAYOUT))
        patch.setattr(encoder.layout, "pair", None if decoder else data.draw(_LAYOUT))
        shared = data.draw(st.lists(st.lists(st.integers(0, 50), max_size=12), min_size=1, max_size=3))
        picks = data.draw(st.lists(st.integers(0, len(shared) - 1), min_size=n, max_size=n))
        prompts = ["" if not shared[k] and data.draw(st.booleans()) else f"prompt {k}" for k in picks]
        prompt_ids = [shared[k] for k in picks]  # one prompt's list serves many rows
        templated = np.array([bool(p) and data.draw(st.booleans()) for p in prompts])
        heads = np.array([data.draw(st.integers(0, len(ids))) if t else 0 for ids, t in zip(prompt_ids, templated)],
                         dtype=np.int64)
        n_steps = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
        step_ids = data.draw(st.lists(st.lists(st.integers(0, 50), max_size=data.draw(st.sampled_from([3, 10, 40]))),
                                      min_size=sum(n_steps), max_size=sum(n_steps)))
        table = _step_table(data.draw, n_steps)
        before = repr((prompt_ids, step_ids))
        fast, fast_warned = _warned(lambda: encoder._encode_flat(table, prompts, prompt_ids, step_ids, templated,
                                                                 heads))
        per_row, row_warned = _warned(lambda: encoder._encode_rows(table, prompts, prompt_ids, step_ids, templated,
                                                                   heads))
    assert repr((prompt_ids, step_ids)) == before  # the tokenizer's lists are read, never changed
    _same_steps(fast, per_row)
    assert fast_warned == row_warned
