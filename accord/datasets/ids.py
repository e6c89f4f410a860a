"""Stable ids from content: a pair's id from its texts when the data has none, and the hashes behind it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

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
    a = table["response_a"].astype(str)
    b = table["response_b"].astype(str)
    # a missing prompt is no prompt (as in the cleaned dataset), not the text "nan"
    prompt = table["prompt"].fillna("").astype(str) if "prompt" in table.columns else pd.Series("", index=table.index)
    hash_a = pd.util.hash_pandas_object(a, index=False).to_numpy(np.uint64)
    hash_b = pd.util.hash_pandas_object(b, index=False).to_numpy(np.uint64)
    a_first = hash_a <= hash_b
    keyed = pd.DataFrame({"prompt": prompt, "first": a.where(a_first, b), "second": b.where(a_first, a)})
    pair_id = content_ids(keyed, ["prompt", "first", "second"], "pair-", unique=False)
    # the orientation of each pair's first row is the pair's orientation
    first_a = a.groupby(pair_id.to_numpy(), sort=False).transform("first")
    swapped = (a != first_a).to_numpy()
    out = table.copy()
    out.insert(0, "pair_id", pair_id.to_numpy())
    if swapped.any():
        out.loc[swapped, ["response_a", "response_b"]] = table.loc[swapped, ["response_b", "response_a"]].to_numpy()
        if {"response_a_id", "response_b_id"} <= set(out.columns):
            ids = ["response_a_id", "response_b_id"]
            out.loc[swapped, ids] = table.loc[swapped, ids[::-1]].to_numpy()
        label = out["label"].astype(object)
        if form == "graded":
            numeric = pd.to_numeric(label, errors="coerce")
            label = label.where(~(swapped & numeric.notna().to_numpy()), -numeric)
        else:
            label = label.where(~swapped, label.map({"A": "B", "B": "A"}).fillna(label))
        out["label"] = label
        out["presented_swapped"] = swapped
    return out
