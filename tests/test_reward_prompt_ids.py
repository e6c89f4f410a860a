"""PairEncoder.encode_pairs tokenizes each distinct prompt once on the plain (non-chat) layouts and gives exactly
what tokenizing it for each side and each pass gave: the same ids, token types, prompt lengths and truncation
counts, for an encoder's and a decoder's tokenizer, with repeated, empty and whitespace prompts and with pairs
whose prompt is cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.reward.data import PairEncoder, TokenizedPairs, load_pairs
from accord.reward.tiny import word_tokenizer

WORDS = "the a good bad helpful answer question cat dog sat on mat water yes no".split()


def reference_encode_pairs(encoder: PairEncoder, frame: pd.DataFrame) -> TokenizedPairs:
    """The former encode_pairs: each side tokenizes every prompt again, in every pass."""
    prompts = list(frame["prompt"])
    chosen = encoder.encode(prompts, list(frame["chosen"]))
    rejected = encoder.encode(prompts, list(frame["rejected"]))
    room = np.minimum(chosen.prompt_lengths, rejected.prompt_lengths)
    if (chosen.prompt_lengths > room).any():
        chosen = encoder.encode(prompts, list(frame["chosen"]), room)
    if (rejected.prompt_lengths > room).any():
        rejected = encoder.encode(prompts, list(frame["rejected"]), room)
    return TokenizedPairs(chosen=chosen, rejected=rejected, pair_id=frame["pair_id"].astype(str).to_numpy(),
                          p_chosen=frame["p_chosen"].to_numpy(dtype=np.float32),
                          p_tie=frame["p_tie"].to_numpy(dtype=np.float32),
                          weight=frame["weight"].to_numpy(dtype=np.float32),
                          margin=np.full(len(frame), np.nan, dtype=np.float32))


@pytest.fixture(scope="module")
def tokenizers() -> dict[bool, object]:
    return {decoder: word_tokenizer([" ".join(WORDS)], decoder=decoder) for decoder in (True, False)}


text = st.lists(st.sampled_from([*WORDS, "  ", "\n", "zebra"]), max_size=25).map(" ".join)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(pool=st.lists(st.one_of(st.just(""), st.just("  "), text), min_size=1, max_size=4),
       rows=st.lists(st.tuples(st.integers(0, 3), text, text), min_size=1, max_size=12),
       decoder=st.booleans(), max_length=st.sampled_from([6, 10, 16, 64]))
def test_prompt_ids_reused_match_tokenizing_per_side(tokenizers, pool, rows, decoder, max_length) -> None:
    frame = load_pairs({"prompt": [pool[i % len(pool)] for i, _, _ in rows],
                        "chosen": [c or "yes" for _, c, _ in rows], "rejected": [r or "no" for _, _, r in rows]})
    encoder = PairEncoder(tokenizers[decoder], max_length=max_length, is_decoder=decoder, use_chat_template=False)
    got, expected = encoder.encode_pairs(frame), reference_encode_pairs(encoder, frame)
    for side in ("chosen", "rejected"):
        a, b = getattr(got, side), getattr(expected, side)
        assert a.ids == b.ids and a.type_ids == b.type_ids
        np.testing.assert_array_equal(a.prompt_lengths, b.prompt_lengths)
        assert (a.truncated_prompts, a.truncated_responses) == (b.truncated_prompts, b.truncated_responses)
    assert got.truncation == expected.truncation
    np.testing.assert_array_equal(got.lengths, expected.lengths)
