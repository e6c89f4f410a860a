"""Chatbot Arena / MT-Bench battles read by :func:`accord.datasets.load_chatbot_arena` in both published layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets import ValidationError, load_chatbot_arena
from accord.models import DawidSkene


def chat(*turns: str) -> list[dict[str, str]]:
    """A conversation of alternating user and assistant messages."""
    return [{"role": "user" if k % 2 == 0 else "assistant", "content": text} for k, text in enumerate(turns)]


def battle(judge: str, winner: str, a: list[dict[str, str]], b: list[dict[str, str]], *, model_a: str = "m1",
           model_b: str = "m2", turn: int = 1, question_id: int = 81) -> dict[str, object]:
    return {"question_id": question_id, "model_a": model_a, "model_b": model_b, "winner": winner, "judge": judge,
            "turn": turn, "language": "English", "conversation_a": a, "conversation_b": b}


def mt_bench() -> pd.DataFrame:
    """Two-turn MT-Bench-style judgments: two judges, both turns, and one pair shown in both orders."""
    a, b = chat("Plan a trip", "Go to Rome", "Shorter?", "Rome"), chat("Plan a trip", "Stay home", "Shorter?", "Home")
    return pd.DataFrame([
        battle("expert_0", "model_a", a, b, turn=1),
        battle("expert_1", "tie (bothbad)", a, b, turn=1),
        battle("expert_0", "model_b", a, b, turn=2),
        battle("author_2", "model_a", b, a, model_a="m2", model_b="m1", turn=1),  # the first pair, other way round
    ])


def test_conversations_give_judges_labels_and_the_judged_turn() -> None:
    table = load_chatbot_arena(mt_bench())
    assert table["annotator"].tolist() == ["expert_0", "expert_1", "expert_0", "author_2"]
    assert table["prompt"].tolist() == ["Plan a trip"] * 4
    # turn 1: the first answer alone; turn 2: the conversation after the first question, as role blocks
    assert table.loc[0, "response_a"] == "Go to Rome"
    assert table.loc[2, "response_a"] == "assistant: Go to Rome\n\nuser: Shorter?\n\nassistant: Rome"
    assert table["both_bad"].tolist() == [False, True, False, False]
    # the pair shown the other way round is the same pair, turned back: "model_a" (m2's answer) now reads B
    assert table.loc[3, "pair_id"] == table.loc[0, "pair_id"] != table.loc[2, "pair_id"]
    assert table["label"].tolist() == ["A", "tie", "B", "B"]
    assert table["presented_swapped"].tolist() == [False, False, False, True]
    assert table.loc[3, ["item_model_a", "item_model_b", "response_a"]].tolist() == ["m1", "m2", "Go to Rome"]
    assert table["item_turn"].tolist() == [1, 1, 2, 1]


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(4)), st.lists(st.booleans(), min_size=4, max_size=4))
def test_the_winning_model_of_each_judgment_does_not_depend_on_row_order_or_shown_side(
        order: list[int], turned: list[bool]) -> None:
    """Whatever order the battles come in and whichever side each showed first, every judge's verdict names the same
    model (or a tie) on the same pair."""
    def verdicts(frame: pd.DataFrame) -> set[tuple[str, str, str]]:
        table = load_chatbot_arena(frame)
        winner = np.select([table["label"] == "A", table["label"] == "B"],
                           [table["item_model_a"], table["item_model_b"]], "tie")
        return set(zip(table["pair_id"], table["annotator"], winner))

    source = mt_bench()
    shuffled = source.iloc[list(order)].copy()
    mask = np.array(turned)
    flipped = shuffled.copy()
    for a, b in (("conversation_a", "conversation_b"), ("model_a", "model_b")):
        flipped.loc[mask, [a, b]] = shuffled.loc[mask, [b, a]].to_numpy()
    flipped.loc[mask, "winner"] = shuffled.loc[mask, "winner"].replace({"model_a": "model_b", "model_b": "model_a"})
    assert verdicts(flipped) == verdicts(source)


def test_a_parquet_copy_reads_as_the_json_lines_file(tmp_path: Path) -> None:
    """Parquet holds the messages as numpy arrays of dicts, JSON Lines as lists: one table."""
    source = mt_bench()
    source.to_json(tmp_path / "mt.jsonl", orient="records", lines=True)
    source.to_parquet(tmp_path / "mt.parquet")
    pd.testing.assert_frame_equal(load_chatbot_arena(tmp_path / "mt.parquet"),
                                  load_chatbot_arena(tmp_path / "mt.jsonl"))


def kaggle() -> pd.DataFrame:
    """The Kaggle layout: JSON lists of turns, one-hot winners, no rater."""
    return pd.DataFrame({
        "id": [7, 8, 9],
        "model_a": ["m1", "m3", "m1"],
        "model_b": ["m2", "m4", "m2"],
        "prompt": [json.dumps(["hi"]), json.dumps(["q1", "q2"]), json.dumps(["hi"])],
        "response_a": [json.dumps(["hello"]), json.dumps(["a1", None]), json.dumps(["hello"])],
        "response_b": [json.dumps(["yo"]), json.dumps(["b1", "b2"]), json.dumps(["yo"])],
        "winner_model_a": [1, 0, 0],
        "winner_model_b": [0, 0, 1],
        "winner_tie": [0, 1, 0],
    })


def test_one_hot_winners_become_labels_with_a_pseudo_annotator_per_judgment() -> None:
    table = load_chatbot_arena(kaggle())
    assert table["label"].tolist() == ["A", "tie", "B"]
    assert table.loc[0, "pair_id"] == table.loc[2, "pair_id"]  # the same battle judged twice is one pair
    assert table["annotator"].tolist() == [f"{table.loc[0, 'pair_id']}/1", f"{table.loc[1, 'pair_id']}/1",
                                           f"{table.loc[0, 'pair_id']}/2"]
    assert table.loc[1, "prompt"] == "q1"
    # a null answer is an empty message, kept in its place
    assert table.loc[1, "response_a"] == "assistant: a1\n\nuser: q2\n\nassistant: "
    assert table.loc[1, "response_b"] == "assistant: b1\n\nuser: q2\n\nassistant: b2"


def test_a_plain_text_prompt_is_one_turn() -> None:
    frame = kaggle().assign(prompt=["hi", "[not json", "hi"],
                            response_a=["hello", "a1", "hello"], response_b=["yo", "b1", "yo"])
    table = load_chatbot_arena(frame)
    assert table["prompt"].tolist() == ["hi", "[not json", "hi"]
    assert table["response_a"].tolist() == ["hello", "a1", "hello"]


def test_the_judgments_fit_a_rater_model() -> None:
    """Loaded battles are an ordinary judgments table: a rater model fits them and labels every pair."""
    table = load_chatbot_arena(mt_bench())
    proba = DawidSkene(seed=0).fit_predict_proba(table)
    assert set(proba.index) == set(table["pair_id"])
    assert np.allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize(("change", "message"), [
    ({"winner_tie": [0, 1, 1]}, r"row 2: exactly one of winner_model_a, winner_model_b, winner_tie must be 1"),
    ({"winner_model_a": [1, 0, "yes"]}, r"row 2: exactly one of .*\(value: 'yes/1/0'\)"),
])
def test_a_one_hot_row_that_is_not_one_verdict_is_named(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_chatbot_arena(kaggle().assign(**change))


def test_errors_name_the_column_row_and_value() -> None:
    source = mt_bench()
    with pytest.raises(ValidationError, match=r"column 'winner', row 1: winner is not one of .*'tie \(both bad\)'"):
        load_chatbot_arena(source.assign(winner=["model_a", "tie (both bad)", "model_b", "model_a"]))
    no_answer = source.copy()
    no_answer.at[2, "conversation_b"] = chat("Plan a trip")
    with pytest.raises(ValidationError, match=r"column 'conversation_b', row 2: no assistant message"):
        load_chatbot_arena(no_answer)
    with pytest.raises(ValidationError, match=r"column 'turn', row 2: turn is not one of the conversation's answers"):
        load_chatbot_arena(source.assign(turn=[1, 1, 3, 1]))
    not_messages = source.copy()
    not_messages.at[1, "conversation_a"] = ["Plan a trip", "Go to Rome"]
    with pytest.raises(ValidationError, match=r"column 'conversation_a', row 1: .*'role' and 'content'"):
        load_chatbot_arena(not_messages)
    not_json = source.copy()
    not_json.at[3, "conversation_b"] = "user: Plan a trip"
    with pytest.raises(ValidationError, match=r"column 'conversation_b', row 3: cannot read the conversation"):
        load_chatbot_arena(not_json)
    with pytest.raises(ValidationError, match=r"column 'winner': missing column"):
        load_chatbot_arena(source.drop(columns="winner"))


def test_a_bad_message_after_an_empty_conversation_is_named_at_its_own_row() -> None:
    """Empty chats were left out before the per-battle check, so the row it named was counted among the non-empty
    ones: a bad message in row 3 after an empty chat in row 0 was reported at row 2, with row 2's conversation as the
    value."""
    source = mt_bench()
    source.at[0, "conversation_a"] = []
    source.at[3, "conversation_a"] = ["Plan a trip", "Rome"]
    with pytest.raises(ValidationError, match=r"column 'conversation_a', row 3: .*'role' and 'content' "
                                              r"\(value: \['Plan a trip', 'Rome'\]\)"):
        load_chatbot_arena(source)
