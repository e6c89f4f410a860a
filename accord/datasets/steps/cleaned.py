"""The cleaned step dataset: the file that carries soft step labels from aggregation to a process reward model.

One row per solution, in TRL's stepwise-supervision layout (``prompt``, ``completions``: the list of step texts,
``labels``: one label per step) with accord's soft labels, weights and first-error distribution:

=======================  ====================================================================================
``solution_id``          the solution's id in the step-judgments table
``prompt``               the problem (empty string when the source has none), or chat messages (a list of
                         ``{"role", "content"}`` dicts; a text prompt beside them is the user's turn)
``completions``          list of the ``T`` step texts, in order
``labels``               list of ``T`` floats: P(step ``t`` is correct, i.e. not wrong: a neutral step
                         counts as correct); for the first-error model ``P(tau > t)``
``label_uncertainty``    list of ``T`` floats: posterior standard deviation of each label (NaN when the method
                         has none)
``label_weights``        list of ``T`` floats in [0, 1]: ``1 - 2 * uncertainty`` (1 where it is unknown)
``p_first_error``        list of ``T + 1`` floats summing to 1: P(the first wrong step is ``t``); the last entry
                         is P(no step is wrong)
``p_all_correct``        P(no step is wrong): the outcome label of an outcome-only reward model (the last entry
                         of ``p_first_error``; checked)
``outcome_weight``       ``1 - 2 * uncertainty`` of ``p_all_correct`` (1 where it is unknown)
``first_error``          the most probable first-error position (``T`` = no error)
``n_steps``              ``T``
``n_judgments``          step labels behind the solution
``n_annotators``         distinct annotators who labelled the solution
=======================  ====================================================================================

Optional columns written when known: ``problem_id`` (solutions to one problem, e.g. best-of-n candidates).

Provenance (method, package version, source, time) lives in the Parquet schema metadata under the key ``accord``;
for JSONL in a hidden sidecar ``.<file>.meta.json``, as for the cleaned preference dataset. Files load with
``pandas.read_parquet`` / ``pandas.read_json(lines=True, dtype=False)`` and
``datasets.load_dataset("parquet", data_files=...)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.cleaned import only_texts, read_with_provenance, weight_from_uncertainty, write_with_provenance
from accord.datasets.errors import ValidationError
from accord.datasets.io import collector_paused
from accord.datasets.schema import check_ids

STEP_CLEANED_COLUMNS: tuple[str, ...] = (
    "solution_id",
    "prompt",
    "completions",
    "labels",
    "label_uncertainty",
    "label_weights",
    "p_first_error",
    "p_all_correct",
    "outcome_weight",
    "first_error",
    "n_steps",
    "n_judgments",
    "n_annotators",
)
_STEP_LISTS: tuple[str, ...] = ("completions", "labels", "label_uncertainty", "label_weights")
_FLOAT_LISTS: tuple[str, ...] = ("labels", "label_uncertainty", "label_weights", "p_first_error")


def check_cleaned_steps(frame: pd.DataFrame,
                        source: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    """Raise :class:`ValidationError` when ``frame`` is not a cleaned step dataset. Returns what :func:`flat_lists`
    read of each list column (``None`` for a column checked row by row), from which its lists are made without
    reading the rows again (:func:`float_rows`, :func:`text_rows`)."""
    for column in STEP_CLEANED_COLUMNS:
        if column not in frame.columns:
            raise ValidationError("missing required column of the cleaned step dataset", source=source,
                                  column=column)
    if len(frame) == 0:
        raise ValidationError("the cleaned step dataset is empty", source=source)
    n_steps = numeric_cells(frame["n_steps"])  # (a 0-d array read as its value: see numeric_cells)
    with np.errstate(invalid="ignore"):  # (a fraction was reported as the lists' fault: 'completions' not n_steps)
        bad = ~np.isfinite(n_steps) | (n_steps < 1) | (n_steps != np.round(n_steps))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError("must be a positive whole number of steps", source=source, column="n_steps", row=row,
                              value=frame["n_steps"].iloc[row])
    _check_ids(frame["solution_id"], source)
    # counts of step labels and of raters (a fraction or a negative count was written and read without a word)
    for column in ("n_judgments", "n_annotators"):
        counts = numeric_cells(frame[column])
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(counts) | (counts < 0) | (counts != np.round(counts))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError(f"solution {frame['solution_id'].iloc[row]!r}: must be a whole number >= 0 (it "
                                  f"counts {'step labels' if column == 'n_judgments' else 'raters'})", source=source,
                                  column=column, row=row, value=frame[column].iloc[row])
    # each list column at C speed where every row is a flat list of floats (of texts: completions), as a cleaned
    # file holds them; the per-row checks below read any other column (a missing row or entry, a text among
    # numbers, ...) and name its first bad row. They took 1.2 s a check at 128k solutions, each read checks twice.
    lists = {column: flat_lists(frame[column], texts=column == "completions")
                  for column in (*_STEP_LISTS, "p_first_error")}
    for column in (*_STEP_LISTS, "p_first_error"):
        extra = 1 if column == "p_first_error" else 0
        known = lists[column]
        lengths = known[0] if known is not None else frame[column].map(_length).to_numpy(dtype=float)
        bad = lengths != n_steps + extra
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError(f"must be a list of n_steps{' + 1' if extra else ''} values", source=source,
                                  column=column, row=row, value=frame[column].iloc[row])
    for column in ("labels", "label_uncertainty", "label_weights", "p_first_error"):
        if lists[column] is not None:
            continue  # every row a flat list of floats
        unreadable = frame[column].map(float_list).isna().to_numpy()
        if unreadable.any():
            row = int(np.flatnonzero(unreadable)[0])
            raise ValidationError("must be a list of numbers", source=source, column=column, row=row,
                                  value=frame[column].iloc[row])
    for column in ("labels", "label_weights", "p_first_error"):
        known = lists[column]
        flat = known[1] if known is not None else np.concatenate([np.asarray(v, dtype=float) for v in frame[column]])
        bad = ~np.isfinite(flat) | (flat < 0) | (flat > 1)
        if bad.any():
            row = _row_of(frame[column], int(np.flatnonzero(bad)[0]))
            raise ValidationError("must hold probabilities in [0, 1]", source=source, column=column, row=row,
                                  value=frame[column].iloc[row])
    # the weights the layout promises, by which the step trainer weighs each step's loss: 1 - 2 * uncertainty clipped
    # to [0, 1], 1 where it is unknown (as the pairwise weight). float32 storage and JSON's decimals are far inside 1e-6
    flat = {column: lists[column][1] if lists[column] is not None else
            np.concatenate([np.asarray(v, dtype=float) for v in frame[column]])
            for column in ("label_uncertainty", "label_weights")}
    ends = np.cumsum(n_steps).astype(np.int64)  # the lists' lengths, checked above

    def step_of(position: int) -> tuple[int, int]:
        """The row and the step of entry ``position`` of a step list's concatenated rows."""
        row = int(np.searchsorted(ends, position, side="right"))
        return row, position - (int(ends[row - 1]) if row else 0)

    # each label's posterior sd, or NaN: a negative or infinite one got weight 1, which passed the check below (no
    # upper bound: as the pairwise uncertainty, an sd may pass 0.5, its weight then 0)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(flat["label_uncertainty"]) | (flat["label_uncertainty"] < 0)
    if bad.any():
        row, step = step_of(int(np.flatnonzero(bad)[0]))
        raise ValidationError(f"solution {frame['solution_id'].iloc[row]!r}, step {step}: must be a standard "
                              "deviation, a finite number >= 0 (or NaN: none)", source=source,
                              column="label_uncertainty", row=row, value=frame["label_uncertainty"].iloc[row])
    expected = weight_from_uncertainty(flat["label_uncertainty"])
    off = np.abs(flat["label_weights"] - expected) > 1e-6
    if off.any():
        position = int(np.flatnonzero(off)[0])
        row, step = step_of(position)
        raise ValidationError(f"solution {frame['solution_id'].iloc[row]!r}, step {step}: must be 1 - 2 * "
                              f"label_uncertainty clipped to [0, 1] (1 where it is unknown), which is "
                              f"{expected[position]:.6g}", source=source, column="label_weights", row=row,
                              value=frame["label_weights"].iloc[row])
    # P(first error at step t) for every step, then P(no step is wrong): one distribution per solution. The
    # tolerance is far above float32 storage (~3e-8) and JSON's 10 decimals, far below a wrong layout.
    known = lists["p_first_error"]
    totals = (_row_sums(*known) if known is not None else
              frame["p_first_error"].map(lambda v: float(np.sum(np.asarray(v, dtype=float)))).to_numpy(dtype=float))
    off = np.abs(totals - 1.0) > 1e-6
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValidationError(f"must sum to 1 (P(first error at each step), then P(no step is wrong) last), sums "
                              f"to {totals[row]:.6g}", source=source, column="p_first_error", row=row,
                              value=frame["p_first_error"].iloc[row])
    # the truth of the first-error metrics: a missing or impossible position was scored as a solution without error
    first_error = numeric_cells(frame["first_error"])
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(first_error) & (first_error >= 0) & (first_error <= n_steps)
                & (first_error == np.round(first_error)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError("must be a step position 0..n_steps (n_steps: no step is wrong)", source=source,
                              column="first_error", row=row, value=frame["first_error"].iloc[row])
    # ... and the most probable one of p_first_error (within the tolerance of the sums: float32 storage may turn
    # a tie either way): a file naming another position scored the first-error metrics against it
    flat_first = known[1] if known is not None else np.concatenate(
        [np.asarray(v, dtype=float) for v in frame["p_first_error"]])
    starts = np.cumsum(n_steps + 1).astype(np.int64) - (n_steps + 1).astype(np.int64)
    best = np.maximum.reduceat(flat_first, starts)
    off = flat_first[starts + first_error.astype(np.int64)] < best - 1e-6
    if off.any():
        row = int(np.flatnonzero(off)[0])
        position = int(np.argmax(flat_first[starts[row]:starts[row] + int(n_steps[row]) + 1]))
        raise ValidationError(f"solution {frame['solution_id'].iloc[row]!r}: must be the most probable position of "
                              f"p_first_error, {position} (P = {best[row]:.6g})", source=source,
                              column="first_error", row=row, value=frame["first_error"].iloc[row])
    for column in ("p_all_correct", "outcome_weight"):
        values = numeric_cells(frame[column])
        bad = ~np.isfinite(values) | (values < 0) | (values > 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("must be a probability in [0, 1]", source=source, column=column, row=row,
                                  value=frame[column].iloc[row])
    # the layout's two names for P(no step is wrong): the outcome-only model trained on p_all_correct while the
    # first-error distribution said another number (same tolerance as the sum above)
    last = (known[1][np.cumsum(known[0]).astype(np.int64) - 1] if known is not None else
            frame["p_first_error"].map(lambda v: float(np.asarray(v, dtype=float)[-1])).to_numpy(dtype=float))
    off = np.abs(numeric_cells(frame["p_all_correct"]) - last) > 1e-6
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValidationError(f"solution {frame['solution_id'].iloc[row]!r}: must equal the last entry of "
                              f"p_first_error (both are P(no step is wrong)), which is {last[row]:.6g}",
                              source=source, column="p_all_correct", row=row, value=frame["p_all_correct"].iloc[row])
    if lists["completions"] is None:
        texts = frame["completions"].map(lambda steps: all(isinstance(s, str) for s in steps)).to_numpy()
        if not texts.all():
            row = int(np.flatnonzero(~texts)[0])
            raise ValidationError("every step must be a text", source=source, column="completions", row=row)
    check_blank_steps(n_steps, chain.from_iterable(frame["completions"]), source)
    return lists


def check_blank_steps(n_steps: np.ndarray, texts: Any, source: str | None, column: str = "completions") -> None:
    """One error naming the row and the step of the first step text that is empty or only spaces (``texts``: every
    solution's ``n_steps`` texts in turn, each a ``str``). Such a step (a split on blank lines that left an empty
    piece) was trained on with its label and scored at a separator right after the step before it, as the
    Math-Shepherd loader refuses it ("an empty step between two step tags")."""
    texts = texts if isinstance(texts, list) else list(texts)
    # str.isspace and len by C loops (map over builtins): what str.strip() leaves nothing of. Arrow's trim took 0.7 s
    # of 1M steps, all but 0.06 s of it making its array of the texts
    blank = np.fromiter(map(str.isspace, texts), bool, len(texts))
    blank |= np.fromiter(map(len, texts), np.int64, len(texts)) == 0
    if blank.any():
        at = int(np.flatnonzero(blank)[0])
        ends = np.cumsum(np.asarray(n_steps, dtype=np.int64))
        row = int(np.searchsorted(ends, at, side="right"))
        raise ValidationError(f"step {at - int(ends[row] - n_steps[row])} has no text (it is empty or only spaces): "
                              "give the step its text, or leave the solution out",
                              source=source, column=column, row=row)


def write_cleaned_steps(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    provenance: dict[str, Any] | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a cleaned step dataset atomically (Parquet by default from the suffix, or JSONL).

    The provenance recorded is the package version and time, what ``frame.attrs["provenance"]`` holds (the method
    and source that :func:`accord.aggregate.build_cleaned_steps` copies from the step labels and the judgments, or
    a file :func:`read_cleaned_steps` read), and ``provenance``, whose keys win.
    """
    plain = _plain_lists(frame, check_cleaned_steps(frame))  # the lists the check read, not each row again
    return write_with_provenance(plain, path, {**frame.attrs.get("provenance", {}), "kind": "steps",
                                               **(provenance or {})}, fmt, float_lists=_FLOAT_LISTS)


def read_cleaned_steps(path: str | os.PathLike, fmt: str | None = None) -> pd.DataFrame:
    """Read a cleaned step dataset (list columns as Python lists); its provenance is in
    ``frame.attrs["provenance"]``."""
    frame, meta = read_unchecked_steps(path, fmt, fast=True)
    return checked_read(frame, meta, path, fmt)


def checked_read(frame: pd.DataFrame, meta: dict[str, Any], path: str | os.PathLike, fmt: str | None = None,
                 before: Callable[[pd.DataFrame], Any] | None = None) -> pd.DataFrame:
    """``frame`` and ``meta`` as :func:`read_unchecked_steps` read them from ``path``, checked (:func:`checked_steps`;
    ``before``: a reader's own checks first), the provenance in ``attrs["provenance"]``. A JSON Lines file Arrow
    read (``fast``) is read again by pandas where a check fails, so that the error names the value as it always did
    (a list, not the array Arrow gives)."""
    if frame.attrs.pop(_ARROW_READ, False):
        try:
            return _checked(frame, meta, str(path), before)
        except ValidationError:
            frame, meta = read_unchecked_steps(path, fmt)
    return _checked(frame, meta, str(path), before)


def _checked(frame: pd.DataFrame, meta: dict[str, Any], source: str,
             before: Callable[[pd.DataFrame], Any] | None) -> pd.DataFrame:
    if before is not None:
        before(frame)
    frame = checked_steps(frame, source=source)
    frame.attrs["provenance"] = meta
    return frame


def read_unchecked_steps(path: str | os.PathLike, fmt: str | None = None, *,
                         fast: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table in a cleaned step dataset file as read, not yet checked (:func:`checked_steps`), and its
    provenance: :func:`read_cleaned_steps` in two steps (:func:`checked_read`), for a reader with checks of its own to
    run first. ``fast``: a JSON Lines file is read by Arrow where Arrow reads it as pandas' reader does
    (:func:`_arrow_json_lines`), its list columns then numpy arrays, as Parquet's: load_steps read 64k solutions in
    3 s of CPU, 1.5 s of them pandas' parser, and its nulls for NaN sent every uncertainty list to the row-by-row
    check; 0.9 s by Arrow (Parquet: 0.6 s)."""
    # the prompt stays text; solution_id keeps its JSON type, as Parquet keeps the table's (7 stays a number)
    return read_with_provenance(path, fmt, ("prompt",), json_lines=_arrow_json_lines if fast else None)


#: the key of a frame's attrs that says Arrow read it (:func:`read_cleaned_steps` reads it again where a check fails)
_ARROW_READ = "accord_arrow_json"


def _arrow_json_lines(path: Path) -> pd.DataFrame | None:
    """A cleaned step dataset's JSON Lines file read by Arrow, as pandas' ``read_json(lines=True, dtype=False,
    precise_float=True)`` reads it but for the lists (numpy arrays, as Parquet gives them); ``None`` where Arrow
    would read it otherwise.

    The float lists are read as ``list<double>`` by an explicit schema: Arrow's guess for a list of nulls only (the
    uncertainty of a method without one) gave each row the wrong length. Any column of another type than pandas'
    reader gives alike is left to pandas: a date-like text (Arrow reads a timestamp), chat messages (dicts filled
    with the keys of every other), a number past int64 (a float to Arrow), a true/false column with a null, a column
    mixing types (Arrow refuses it)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    schema = pa.schema([(column, pa.list_(pa.float64())) for column in _FLOAT_LISTS])
    try:
        with open(path, encoding="utf-8-sig") as handle:  # the column order pandas gives, the first row's
            first = json.loads(handle.readline())
        table = pa_json.read_json(path, parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                                                           unexpected_field_behavior="infer"))
        table.validate(full=True)
    except (OSError, ValueError, pa.ArrowException):
        return None
    # the explicit columns are made where a file lacks them: each must be in the first row, as the writer puts it
    if not isinstance(first, dict) or not set(_FLOAT_LISTS) <= set(first) or table.num_rows == 0:
        return None
    for field, column in zip(table.schema, table.columns):
        kind = field.type
        if field.name in _FLOAT_LISTS or kind in (pa.string(), pa.int64()):
            continue
        if pa.types.is_null(kind) or pa.types.is_boolean(kind) and column.null_count == 0:
            continue
        if field.name in ("p_all_correct", "outcome_weight") and pa.types.is_float64(kind):
            continue  # (a number past int64 elsewhere would be a float to Arrow, an integer to pandas)
        if field.name == "completions" and pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
            continue
        return None
    names = table.column_names
    table = table.select([*(c for c in first if c in names), *(c for c in names if c not in first)])
    frame = table.to_pandas()
    frame.attrs[_ARROW_READ] = True
    return frame


def checked_steps(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """``frame`` checked as a cleaned step dataset (:func:`check_cleaned_steps`), its list columns as Python lists."""
    return _plain_lists(frame, check_cleaned_steps(frame, source))


def _check_ids(ids: pd.Series, source: str | None) -> None:
    """One row per solution: a solution listed twice (two fits concatenated) was trained on twice. Each id follows
    the rules of every id column (:func:`check_ids`): a missing id was read as the solution "nan", a blank one as "",
    and 'a' beside 'a ' as two solutions."""
    if ids.dtype == object and not ids.map(lambda v: isinstance(v, Hashable)).all():
        row = int(np.flatnonzero(~ids.map(lambda v: isinstance(v, Hashable)).to_numpy(dtype=bool))[0])
        raise ValidationError("must be one id (a text or a number) per solution", source=source,
                              column="solution_id", row=row, value=ids.iloc[row])
    check_ids(ids, "solution_id", source)
    try:
        if ids.is_unique:
            return
        repeated = ids.duplicated(keep="first").to_numpy()
    except TypeError:  # an unhashable id (a list, an array): no single id, and duplicated's raw TypeError
        row = int(np.flatnonzero(~ids.map(lambda v: isinstance(v, Hashable)).to_numpy(dtype=bool))[0])
        raise ValidationError("must be one id (a text or a number) per solution", source=source,
                              column="solution_id", row=row, value=ids.iloc[row]) from None
    row = int(np.flatnonzero(repeated)[0])
    codes = pd.factorize(ids)[0]  # the same hashing as duplicated (a missing id is -1, as every other)
    first = int(np.flatnonzero(codes == codes[row])[0])
    raise ValidationError(f"solution {ids.iloc[row]!r} again, first at row {first}: the cleaned step dataset has one "
                          "row per solution", source=source, column="solution_id", row=row)


def numeric_cells(values: pd.Series) -> np.ndarray:
    """``pd.to_numeric(values, errors="coerce")`` as floats (what is no number is NaN), a 0-d array read as the value
    it holds: pandas' own conversion failed on one with a raw TypeError ("len() of unsized object")."""
    if values.dtype == object:
        values = values.map(lambda v: v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def float_list(value: Any) -> np.ndarray | None:
    """One solution's list as floats (a missing entry is NaN); ``None`` when it is not a flat list of numbers
    (texts included: "1" is not a label)."""
    # a 0-d array is no list: iterating it for texts was a raw TypeError
    if (not isinstance(value, (list, tuple, np.ndarray)) or isinstance(value, np.ndarray) and value.ndim != 1
            or any(isinstance(x, str) for x in value)):
        return None
    try:
        values = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return values if values.ndim == 1 else None


def flat_lists(values: pd.Series, texts: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """The length of each row and the rows' entries concatenated (as floats; none with ``texts``) of a column whose
    every row is a list, tuple or 1-d array of floats (of texts, with ``texts``) without a missing entry; ``None``
    for any other column. What :func:`float_list` and :func:`_length` read of such a row, told at C speed."""
    import pyarrow as pa

    # Arrow also reads a set as a list, which float_list refuses (its order is no step order)
    if not values.map(type).isin((list, tuple, np.ndarray)).all():
        return None
    if texts:  # pandas, not Arrow: Arrow reads bytes as texts. An empty row explodes to NaN; None is no text
        entries = values.explode()
        if not only_texts(entries, missing=False):
            return None
        return values.map(len).to_numpy(dtype=float), np.empty(0)
    try:
        array = pa.array(values, from_pandas=False)  # NaN stays a float; None, pd.NA, a text among numbers do not
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_list(array.type) and not pa.types.is_large_list(array.type) or array.null_count:
        return None
    entries = array.flatten()
    if not pa.types.is_floating(entries.type) or entries.null_count:
        return None
    return (array.value_lengths().to_numpy(zero_copy_only=False).astype(float),
            entries.to_numpy(zero_copy_only=False).astype(float))


def _row_sums(lengths: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Each row's ``np.sum`` of the concatenated rows ``flat``, exactly as summing the row alone gives it: the rows of
    one length summed along a matrix's rows (numpy's pairwise sum, row by row; a loop over lengths, not rows)."""
    lengths = lengths.astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    totals = np.zeros(len(lengths))
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        totals[rows] = flat[starts[rows, None] + np.arange(length)].sum(axis=1)
    return totals


def _length(value: Any) -> float:
    try:
        return float(len(value)) if not isinstance(value, str) else np.nan
    except TypeError:
        return np.nan


def _plain_lists(frame: pd.DataFrame, lists: dict[str, tuple[np.ndarray, np.ndarray] | None]) -> pd.DataFrame:
    """List columns as Python lists (Parquet gives numpy arrays; JSON gives null for NaN), cut from one list of every
    row's values where :func:`flat_lists` read the column (``lists``, as :func:`_checked_lists` gives them): a loop
    per solution over the four columns took 1.2 s of reading 64k solutions."""
    with collector_paused():  # lists of floats and texts make no cycles; it walked every list made so far
        out = frame.assign(**{c: float_rows(frame[c], lists.get(c)) for c in _FLOAT_LISTS})
        out["completions"] = text_rows(frame["completions"], lists.get("completions"))
    return out


def float_rows(values: pd.Series, known: tuple[np.ndarray, np.ndarray] | None) -> pd.Series:
    """Each row's list as floats (``np.asarray(v, dtype=float).tolist()``), sliced from one list of every row's
    values when :func:`flat_lists` read the column (``known``; not an array and a list per row), else row by
    row."""
    if known is None:
        return values.map(lambda v: np.asarray(v, dtype=float).tolist())
    return split_rows(values, known[0], known[1].tolist())


def text_rows(values: pd.Series, known: tuple[np.ndarray, np.ndarray] | None) -> pd.Series:
    """Each row's step texts as a list (``list(v)``), sliced from one list of every row's texts when
    :func:`flat_lists` read the column (``known``), else row by row."""
    if known is None:
        return values.map(list)
    return split_rows(values, known[0], list(chain.from_iterable(values)))


def split_rows(values: pd.Series, lengths: np.ndarray, flat: list[Any]) -> pd.Series:
    """``flat`` cut into one list per row of ``values`` (``lengths[i]`` entries each), as a column like it."""
    ends = np.cumsum(lengths.astype(np.int64))
    with collector_paused():  # lists of floats or texts make no cycles
        rows = list(map(flat.__getitem__, map(slice, (ends - lengths.astype(np.int64)).tolist(), ends.tolist())))
    return pd.Series(rows, index=values.index, dtype=object, name=values.name)


def _row_of(column: pd.Series, flat_position: int) -> int:
    """The row holding element ``flat_position`` of the concatenated lists of ``column``."""
    ends = np.cumsum(column.map(len).to_numpy())
    return int(np.searchsorted(ends, flat_position, side="right"))
