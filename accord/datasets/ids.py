"""Stable ids from content: a pair's id from its texts when the data has none, the hashes behind it, and the turning
round of a judgment's sides that a pair's one orientation needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype="S1")


def content_ids(frame: pd.DataFrame, columns: Sequence[str], prefix: str, *, unique: bool = True) -> pd.Series:
    """A stable id per row from the content of ``columns`` (vectorized 64-bit hash, as 16 hex digits).

    pandas' hash uses a fixed key, so the same texts give the same id in every session and on every machine.
    With ``unique`` (for sources whose rows are distinct pairs), rows whose content is identical get ``#2``,
    ``#3``... appended; without it, equal content shares one id (rows that are judgments of the same pair).
    A missing value is hashed as an empty text (as a missing prompt is no prompt in a derived pair id), never as
    the text ``"nan"``.
    """
    content = frame[list(columns)]
    content = content.astype(str).where(content.notna(), "")
    hashed = pd.util.hash_pandas_object(content, index=False).to_numpy(np.uint64)
    # Hex digits without a per-row Python loop: split each hash into 16 nibbles and look them up.
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = ((hashed[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)
    digits = np.ascontiguousarray(_HEX_DIGITS[nibbles]).view("S16").ravel().astype(str)
    ids = prefix + pd.Series(digits, index=frame.index, dtype=object)
    if not unique:
        return ids
    repeat = ids.groupby(ids).cumcount()
    return ids.where(repeat == 0, ids + "#" + (repeat + 1).astype(str))


def derive_pair_ids(table: pd.DataFrame, form: str) -> pd.DataFrame:
    """``table`` with a ``pair_id`` column derived from ``prompt`` (when present), ``response_a`` and ``response_b``.

    The id hashes the prompt and the two responses in a fixed order of their own, so it does not depend on which
    response was shown first: ``"pair-" + 16 hex digits``, the same in every session. Rows that show a pair with its
    sides the other way round than the pair's first row are turned to that row's orientation (texts swapped, an
    ``"A"``/``"B"`` label exchanged, a graded strength negated) and marked ``presented_swapped``; a position bias is
    then measured against that orientation.
    """
    pair_id, _, a = _derived_ids(table)
    # the orientation of each pair's first row is the pair's orientation
    first_a = a.groupby(pair_id.to_numpy(), sort=False).transform("first")
    swapped = (a != first_a).to_numpy()
    out = table.copy()
    out.insert(0, "pair_id", pair_id.to_numpy())
    if swapped.any():
        out = swap_sides(out, swapped, graded=form == "graded")
        out["presented_swapped"] = swapped
    return out


def derived_pair_ids(table: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """The pair id :func:`derive_pair_ids` gives each row of ``table`` (``prompt`` when present, ``response_a``,
    ``response_b``) and whether ``response_a`` comes first in the id's own order of the two texts (an order of their
    hashes: the same whichever side a row shows first)."""
    pair_id, a_first, _ = _derived_ids(table)
    return pair_id, a_first


def _derived_ids(table: pd.DataFrame) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """:func:`derived_pair_ids`, and the texts of ``response_a`` it hashed."""
    a = _key_text(table["response_a"])
    b = _key_text(table["response_b"])
    # a missing prompt is no prompt (as in the cleaned dataset), not the text "nan"; blanked after the cast, as in
    # content_ids: a categorical prompt column refused fillna("") ("" is not one of its categories)
    prompt = (_key_text(table["prompt"]).where(table["prompt"].notna(), "") if "prompt" in table.columns
              else pd.Series("", index=table.index))
    hash_a = pd.util.hash_pandas_object(a, index=False).to_numpy(np.uint64)
    hash_b = pd.util.hash_pandas_object(b, index=False).to_numpy(np.uint64)
    a_first = hash_a <= hash_b
    keyed = pd.DataFrame({"prompt": prompt, "first": a.where(a_first, b), "second": b.where(a_first, a)})
    return content_ids(keyed, ["prompt", "first", "second"], "pair-", unique=False), a_first, a


def _key_text(values: pd.Series) -> pd.Series:
    """The cells as the texts a derived pair id hashes; chat messages as the text of the lists they hold: pandas
    reads them from Parquet as numpy arrays, whose text differs from the list's (no commas), and the same judgments
    got other pair ids from a Parquet file than from JSON Lines."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) != "string":  # texts: as they are
        values = values.map(_key_order)
    return values.astype(str)


#: The keys a message (or a content part) hashes first, in this order; the rest follow sorted. Messages written
#: role first (the usual order) keep the id their text gave.
_FIRST_KEYS = {"role": 0, "content": 1, "type": 2}


def _key_order(value: Any) -> Any:
    """A cell's messages with every dict's keys in one order (:data:`_FIRST_KEYS`, then sorted), lists as lists:
    the text of a dict follows the order its keys were written in, so a message written {"content", "role"} got
    another pair id than the same message from Parquet (one order of keys for its whole column) or another tool."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        return [_key_order(v) for v in value]
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (_FIRST_KEYS.get(k, len(_FIRST_KEYS)), str(k)))
        return {k: _key_order(value[k]) for k in keys}
    return value


def swap_sides(table: pd.DataFrame, rows: np.ndarray | pd.Series | None = None, *,
               graded: bool | None = None) -> pd.DataFrame:
    """A copy of ``table`` with the sides of ``rows`` (a boolean mask; default every row) turned round.

    ``response_a``/``response_b`` and ``response_a_id``/``response_b_id`` (where present) exchange places, an
    ``"A"``/``"B"`` label becomes the other one (a ``"tie"`` stays), and a graded strength is negated (``graded``:
    whether labels are strengths; by default, when the validated table says so or every label is a number); so does
    a ``gold`` label. The same judgments seen the other way round: a model without a position-bias term gives the
    mirrored fit. The copy carries no validation record: validate it again.
    """
    if "label" not in table.columns:
        raise AccordError(f"swap_sides: the table has no column 'label' (columns: {list(table.columns)})")
    mask = np.ones(len(table), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if mask.shape != (len(table),):
        raise AccordError(f"swap_sides: rows must be a boolean mask of the table's {len(table)} rows, not of shape "
                          f"{mask.shape}")
    if graded is None:
        form = table.attrs.get("accord", {}).get("form")
        graded = form == "graded" if form else bool(pd.api.types.is_numeric_dtype(table["label"]))
    out = table.copy()
    out.attrs = {}
    for a, b in (("response_a", "response_b"), ("response_a_id", "response_b_id")):
        if a in out.columns and b in out.columns:
            for column, other in ((a, b), (b, a)):
                if isinstance(out[column].dtype, pd.CategoricalDtype):
                    # a categorical side takes the other side's values: those not among its categories were
                    # pandas' 'Cannot setitem on a Categorical with a new category'
                    values = pd.unique(np.asarray(table.loc[mask, other].dropna(), dtype=object))
                    known = set(out[column].cat.categories)
                    out[column] = out[column].cat.add_categories([v for v in values if v not in known])
            out.loc[mask, [a, b]] = table.loc[mask, [b, a]].to_numpy()
    # gold is the pair's label in the same form: left as it was, it named the other side of a turned row (a pair's
    # gold from a row shown the other way round, accuracy against gold of a swapped table)
    for column in ("label", "gold"):
        if column not in out.columns:
            continue
        label = out[column].astype(object)
        if graded:
            numeric = pd.to_numeric(label, errors="coerce")
            label = label.where(~(mask & numeric.notna().to_numpy()), -numeric)
        else:
            label = label.where(~mask, label.map({"A": "B", "B": "A"}).fillna(label))
        out[column] = label
    return out
