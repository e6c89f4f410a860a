"""Chatbot Arena and MT-Bench human judgments: two chat models answer one user, a person picks the better answer.

:func:`load_chatbot_arena` reads the two layouts these battles are published in, from a file you download
yourself (JSON Lines, JSON, CSV or Parquet) or a DataFrame:

* **conversations** (``lmsys/chatbot_arena_conversations``, ``lmsys/mt_bench_human_judgments``,
  ``lmarena-ai/arena-human-preference-100k``): one judgment a row, with ``model_a``/``model_b``, ``winner``
  (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)`` or ``both_bad``), ``conversation_a``/``conversation_b``
  (lists of ``{"role", "content"}`` messages) and the rater in ``judge`` (or ``judge_hash``);
* **one-hot** (the ``lmsys-chatbot-arena`` Kaggle competition, ``lmarena-ai/arena-human-preference-55k``): one
  judgment a row, with ``prompt``, ``response_a``, ``response_b`` (JSON lists of the turns' texts) and the verdict
  spread over ``winner_model_a``, ``winner_model_b`` and ``winner_tie`` (exactly one of them 1).

A battle's prompt is the user's first message; each side's response is the rest of its conversation (up to the
judged ``turn`` where the source names one): the answer alone for a single turn, ``"role: content"`` blocks for
several (the later user messages stay in, so what was compared is what is kept). ``tie (bothbad)`` is a tie; the
rater's "both are bad" is kept in ``both_bad``. The one-hot layout names no rater: its judgments get
pseudo-annotators ``"<pair_id>/<k>"``, which states that raters cannot be linked across battles. Model names are
item covariates (``item_model_a``, ``item_model_b``), not response ids: one model's answers to different prompts
are different responses.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.errors import ValidationError
from accord.datasets.ids import derive_pair_ids
from accord.datasets.loaders.generic import frame_or_file, require_columns
from accord.datasets.loaders.hub import Source, _as_list, _drop_identical_sides, validate_naming_source_rows

#: The conversations layout's verdicts, as preference labels (both kinds of tie are ties).
ARENA_WINNERS: dict[str, str] = {
    "model_a": "A",
    "model_b": "B",
    "tie": "tie",
    "tie (bothbad)": "tie",
    "both_bad": "tie",
}
ONE_HOT_WINNERS: tuple[str, str, str] = ("winner_model_a", "winner_model_b", "winner_tie")
CONVERSATION_COLUMNS: tuple[str, ...] = ("model_a", "model_b", "winner", "conversation_a", "conversation_b")
ONE_HOT_COLUMNS: tuple[str, ...] = ("prompt", "response_a", "response_b", *ONE_HOT_WINNERS)
#: The columns of either layout that hold texts or ids, read as written from CSV or TSV (a question id "007")
ARENA_TEXTS: tuple[str, ...] = ("prompt", "response_a", "response_b", "conversation_a", "conversation_b", "judge",
                                "judge_hash", "question_id", "id", "model_a", "model_b", "winner", "language")


def load_chatbot_arena(source: Source, *, duplicates: str = "error") -> pd.DataFrame:
    """Load Chatbot Arena or MT-Bench human battles (either published layout) as a judgments table.

    Parameters
    ----------
    source
        A file of one of the two layouts (see the module's docstring) or the table as a DataFrame (e.g.
        ``datasets.load_dataset(...)["train"].to_pandas()``).
    duplicates
        Policy for one judge judging one pair twice (see :func:`~accord.datasets.schema.validate`).

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (``pair-`` + a hash of the prompt and the two responses, in either order), ``annotator``
        (``judge`` / ``judge_hash``, or pseudo), ``label`` (A/B/tie), ``prompt``, ``response_a``/``response_b``,
        ``both_bad`` (conversations layout) and, where the source has them, ``item_model_a``, ``item_model_b``,
        ``item_question_id``, ``item_turn``, ``item_language``; ``presented_swapped`` where a battle showed a pair
        the other way round than its first battle (its texts, label and model names turned to that orientation).
    """
    frame, name = frame_or_file(source, texts=ARENA_TEXTS)
    frame = frame.reset_index(drop=True)
    if all(column in frame.columns for column in ONE_HOT_WINNERS):
        require_columns(frame, ONE_HOT_COLUMNS, name, "Chatbot Arena (one-hot winners)")
        table = _one_hot_battles(frame, name)
    else:
        require_columns(frame, CONVERSATION_COLUMNS, name, "Chatbot Arena conversations")
        table = _conversation_battles(frame, name)
    table["_source_row"] = np.arange(len(table))  # the battle's row in the source (errors are named there)
    for column in ("model_a", "model_b", "question_id", "turn", "language"):
        if column in frame.columns:
            table[f"item_{column}"] = frame[column].to_numpy()
    # one pair whichever side each battle showed first (MT-Bench judged both orders): turned to the pair's first
    # orientation, the models' names with their answers
    table = derive_pair_ids(table, "preference")
    if "presented_swapped" in table.columns and {"item_model_a", "item_model_b"} <= set(table.columns):
        swapped = table["presented_swapped"].to_numpy()
        table.loc[swapped, ["item_model_a", "item_model_b"]] = table.loc[swapped,
                                                                         ["item_model_b", "item_model_a"]].to_numpy()
    if "annotator" not in table.columns:
        # no rater named: the k-th judgment of a pair is its own pseudo-annotator
        pair_id = table["pair_id"]
        table.insert(1, "annotator", pair_id + "/" + (pair_id.groupby(pair_id).cumcount() + 1).astype(str))
    table = _drop_identical_sides(table, name)
    return validate_naming_source_rows(table, form="preference", duplicates=duplicates, source=name)


def _conversation_battles(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    winner = frame["winner"]
    label = winner.map(lambda v: ARENA_WINNERS.get(v.strip().lower()) if isinstance(v, str) else None)
    _refuse_first(label.isna(), f"winner is not one of {list(ARENA_WINNERS)}", name, "winner", winner)
    turns = frame["turn"] if "turn" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    prompt, response_a = _split_column(frame["conversation_a"], turns, name, "conversation_a")
    _, response_b = _split_column(frame["conversation_b"], turns, name, "conversation_b")
    table = pd.DataFrame({"label": label.to_numpy(), "prompt": prompt, "response_a": response_a,
                          "response_b": response_b})
    judge = next((c for c in ("judge", "judge_hash") if c in frame.columns), None)
    if judge is not None:
        table.insert(0, "annotator", frame[judge].to_numpy())
    table["both_bad"] = winner.map(lambda v: isinstance(v, str) and "bad" in v.lower()).to_numpy(dtype=bool)
    return table


def _one_hot_battles(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    flags = frame[list(ONE_HOT_WINNERS)].apply(pd.to_numeric, errors="coerce")
    valid = flags.isin([0, 1]).all(axis=1) & (flags.sum(axis=1) == 1)
    if not valid.all():  # (the three cells, shown as one value, only for the error)
        _refuse_first(~valid, f"exactly one of {', '.join(ONE_HOT_WINNERS)} must be 1 (the others 0)", name,
                      ", ".join(ONE_HOT_WINNERS), frame[list(ONE_HOT_WINNERS)].astype(str).agg("/".join, axis=1))
    label = np.array(["A", "B", "tie"], dtype=object)[flags.to_numpy().argmax(axis=1)]
    questions = _turns(frame["prompt"])
    sides = {}
    for side in ("a", "b"):
        answers = _turns(frame[f"response_{side}"])
        # the k-th question then its answer; a side with fewer answers than questions keeps the turns it answered
        answered = questions.index.intersection(answers.index)
        order = np.concatenate([2 * answered.get_level_values(1), 2 * answered.get_level_values(1) + 1])
        flat = pd.DataFrame({
            "battle": np.concatenate([answered.get_level_values(0)] * 2),
            "order": order,
            "role": np.repeat(["user", "assistant"], len(answered)),
            "content": np.concatenate([questions.loc[answered].to_numpy(), answers.loc[answered].to_numpy()]),
        }).sort_values(["battle", "order"], kind="stable").set_index("battle").rename_axis(None)
        prompt, sides[side] = _split_messages(flat["role"], flat["content"], frame.index, None, name,
                                              f"response_{side}", frame[f"response_{side}"])
    return pd.DataFrame({"label": label, "prompt": prompt, "response_a": sides["a"], "response_b": sides["b"]})


def _split_column(conversations: pd.Series, turns: pd.Series | None, name: str,
                  column: str) -> tuple[pd.Series, pd.Series]:
    """Each chat of ``column`` (a list of ``{"role", "content"}`` messages) as (prompt, response)."""
    lists = conversations.map(_list_or_none)  # a cell may be a list, a numpy array (Parquet) or JSON text
    _refuse_first(lists.isna(), "cannot read the conversation (a list of messages, or JSON text of one)", name,
                  column, conversations)
    exploded = lists[lists.map(len) > 0].explode()  # (an empty chat has no answer: named below)
    is_message = exploded.map(lambda m: isinstance(m, dict) and "content" in m)
    # per battle of the whole column: the empty chats left out above would shift the row named by one each
    all_messages = is_message.groupby(level=0).all().reindex(conversations.index, fill_value=True)
    _refuse_first(~all_messages, "a message must be an object with 'role' and 'content'", name, column,
                  conversations)
    exploded = exploded[is_message.to_numpy()]
    messages = pd.json_normalize(exploded.tolist(), max_level=0) if len(exploded) else pd.DataFrame()
    messages = messages.reindex(columns=["role", "content"])
    messages.index = exploded.index
    role = messages["role"].where(messages["role"].notna(), "user").astype(str).str.lower()
    return _split_messages(role, messages["content"], conversations.index, turns, name, column, conversations)


def _split_messages(role: pd.Series, content: pd.Series, index: pd.Index, turns: pd.Series | None, name: str,
                    column: str, source_values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(the user's first message, the rest up to the judged ``turn``'s answer) of every battle, from one row per
    message (indexed by battle, in order), worked out on all messages at once."""
    content = content.where(content.notna(), "").astype(str)
    is_answer = (role == "assistant").astype(np.int64)
    answers_so_far = is_answer.groupby(level=0).cumsum()
    answer_count = answers_so_far.groupby(level=0).max().reindex(index, fill_value=0)
    _refuse_first(answer_count == 0, "no assistant message in the conversation", name, column, source_values)
    if turns is not None:
        judged = pd.to_numeric(turns, errors="coerce").reindex(index)
        unreadable = judged.notna() & ((judged != judged.round()) | (judged < 1) | (judged > answer_count))
        _refuse_first(unreadable, "turn is not one of the conversation's answers (1, 2, ...)", name, "turn", turns)
        # keep every message up to and including the judged turn's answer
        limit = judged.fillna(np.inf).reindex(role.index).to_numpy()
        keep = (answers_so_far - is_answer).to_numpy() < limit
        role, content, answers_so_far = role[keep], content[keep], answers_so_far[keep]
    opening = answers_so_far.to_numpy() == 0
    return (_render(role[opening], content[opening], index),
            _render(role[~opening], content[~opening], index))


def _list_or_none(value: Any) -> list[Any] | None:
    try:
        return _as_list(value)
    except (TypeError, ValueError, SyntaxError):
        return None


def _render(role: pd.Series, content: pd.Series, index: pd.Index) -> pd.Series:
    """Each battle's messages as one text: a lone message as itself, several (a system prompt, later turns) as
    ``role: content`` blocks."""
    size = content.groupby(level=0).size()
    text = content.groupby(level=0).first().astype(object)
    several = size.index[size.to_numpy() > 1]
    if len(several):
        # only battles of several messages are joined (a Python join per battle; most battles have one each side)
        many = content.index.isin(several)
        blocks = (role[many] + ": " + content[many]).groupby(level=0).agg("\n\n".join)
        text.loc[blocks.index] = blocks.to_numpy()
    return text.reindex(index).where(lambda s: s.notna(), "").astype(object)


def _turns(values: pd.Series) -> pd.Series:
    """The one-hot layout's turns, one row per turn indexed by (battle, its position): JSON text of a list
    (``'["hi", null]'``) as its items, a list or array as it is, any other text as one turn."""
    lists = values.map(_turn_list)
    lists = lists[lists.map(len) > 0]  # (explode makes an empty list one missing turn)
    turns = lists.explode()
    position = turns.groupby(level=0).cumcount().to_numpy()
    return pd.Series(turns.to_numpy(dtype=object), index=pd.MultiIndex.from_arrays([turns.index, position]))


def _turn_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return parsed if isinstance(parsed, list) else [value]
    try:
        return _as_list(value)
    except (TypeError, ValueError, SyntaxError):
        return [value]  # a number where a turn's text belongs is that text


def _refuse_first(bad: pd.Series, problem: str, name: str, column: str, values: pd.Series) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(problem, source=name, column=column, row=row, value=values.iloc[row])
