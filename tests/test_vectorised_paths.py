"""Hot paths told at C speed give exactly what the per-row code they bypass gives: each is compared with that code
(still there, for the inputs it is kept for) on varied inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accord.reward.data as reward_data
from accord.datasets.errors import ValidationError

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
# a cell of a response or prompt column: mostly texts, sometimes what the per-row checks are there for
CELL = st.one_of(TEXT, TEXT, TEXT, TEXT.map(np.str_), st.none(), st.just(np.nan), st.integers(-5, 5),
                 st.just([{"role": "user", "content": "hi"}]), st.just([]))


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
        patch.setattr(reward_data, "_all_texts", lambda values: False)
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
    from accord.aggregate.cleaned import _texts
    from accord.datasets.cleaned import is_messages

    column = (pd.Series(cells, dtype="str") if kind == "str" and all(isinstance(c, str) for c in cells)
              else pd.Series(cells, dtype=object))
    per_row = any(is_messages(c) for c in column)
    assert (not _texts(column) and any(is_messages(c) for c in column)) == per_row
