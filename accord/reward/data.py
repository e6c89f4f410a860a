"""The data path: preference pairs in, token ids out, batches that put chosen and rejected through one forward pass.

1. :func:`load_pairs` reads a cleaned dataset (:func:`accord.datasets.read_cleaned`) or any Hugging Face preference
   layout (``prompt``/``chosen``/``rejected`` as strings or as message lists, with or without an explicit prompt) and
   fills the label columns a layout lacks (``p_chosen = 1``, ``p_tie = 0``, ``weight = 1``).
2. :class:`PairEncoder` tokenizes prompt and response apart (chat template when the tokenizer has one), truncates
   responses before prompts (:func:`truncate_pair`; both sides of a pair keep the same prompt) and counts what it
   cut.
3. :func:`length_grouped_batches` draws batches of similar length in a random but seeded order.
4. :class:`PairCollator` builds one batch: the ``2B`` sequences (chosen first, then rejected) either padded to a
   rectangle or packed padding-free into rows, with the index of each sequence's pooled token.
"""

from __future__ import annotations

import contextvars
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import add, eq, getitem, mul
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord.datasets.cleaned import (CLEANED_COLUMNS, chat_messages, check_cleaned, is_messages, messages_text,
                                     non_text_part, only_texts, read_cleaned, readable_message, refuse_unrendered,
                                     split_shared_messages, written_messages)
from accord.datasets.errors import AccordError, SettingError, SettingWarning, ValidationError
from accord.datasets.io import COMPRESSION_SUFFIXES, infer_format
from accord.datasets.io import collector_paused as _collector_paused
from accord.datasets.schema import columns_note
from accord.datasets.loaders.generic import (messages_written_as_json, read_table, with_delimiter,
                                             with_texts_as_written)

#: The columns of every table :func:`load_pairs` returns: the pairs a reward model trains or is evaluated on, with
#: their label fields filled in (the judgments' pair-text columns are another thing).
TRAINING_PAIR_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "p_chosen", "p_tie", "uncertainty", "weight",
                         "margin")
VOTE_COLUMNS = ("votes_chosen", "votes_rejected", "votes_tie")
#: How far a soft label's ``p_chosen + p_tie`` may pass 1 (float rounding of labels written as float32, say).
LABEL_SUM_TOLERANCE = 1e-6
#: The columns of an input table that hold texts or ids, read as written (never as numbers or missing values); so is
#: every column named ``id`` or ending in ``_id`` (:func:`read_as_written`).
TEXT_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "response")


def read_as_written(column: Any) -> bool:
    """Whether a CSV or TSV column holds texts or ids (:data:`TEXT_COLUMNS`, ``id`` and every ``*_id``): a cleaned
    dataset's ``chosen_id`` / ``rejected_id`` and a table's ``prompt_id``, ``response_id`` or ``problem_id`` were
    guessed as numbers, and ``accord score`` wrote the id "007" back as 7.0 and "NA" as an empty cell."""
    return column in TEXT_COLUMNS or (isinstance(column, str) and (column == "id" or column.endswith("_id")))


# ----------------------------------------------------------------------------------------------------------------------
# 1. Loading
# ----------------------------------------------------------------------------------------------------------------------


def load_pairs(source: Any, *, held_out: bool = False) -> pd.DataFrame:
    """Preference pairs as a frame with the columns of :data:`TRAINING_PAIR_COLUMNS`.

    ``source``: a path to a cleaned dataset or a preference file (``.parquet``, ``.jsonl``, ``.json``, ``.csv``), a
    folder written by ``datasets.Dataset.save_to_disk``, a ``pandas.DataFrame``, a ``datasets.Dataset`` or a dict
    of columns. Conversational pairs without a ``prompt`` column, or with a text one beside conversations that
    include it, get the messages the two sides share as prompt. ``held_out``: the pairs are evaluated on, so a
    saved ``DatasetDict`` is read by its held-out split (:func:`read_table_path`).
    """
    name = None
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        frame = read_table_path(Path(source), held_out=held_out)
    elif isinstance(source, pd.DataFrame):
        frame = source.copy()
    elif isinstance(source, dict):
        frame = pd.DataFrame(source)
    elif hasattr(source, "to_pandas"):
        frame = source.to_pandas()
    else:
        raise AccordError(f"cannot read preference pairs from a {type(source).__name__}")
    return normalise_pairs(frame, source=name)


def read_table_path(path: Path, *, held_out: bool = False) -> pd.DataFrame:
    """The table in ``path``, the one reader of the reward commands' inputs: a cleaned dataset (checked), a table
    read as the pipeline reads one (:func:`accord.datasets.loaders.generic.read_table`: ``.parquet``, ``.jsonl``,
    ``.json``, ``.csv``, ``.tsv``, compressed by a ``.gz``, ``.bz2``... suffix; text columns read as text) or a
    folder written by ``datasets.Dataset.save_to_disk`` (for a ``DatasetDict`` its ``train`` split, or with
    ``held_out`` or within :func:`reading_for` ``("held_out")``, data to evaluate on, its held-out one:
    :func:`dataset_split`; within ``reading_for("score")`` its one split: :func:`scored_split`). Each failure is one
    :class:`AccordError` naming the file."""
    path = Path(path).expanduser()  # "~/cleaned.parquet" is the home folder's, as pandas' readers read it
    if not path.exists():
        raise AccordError(f"file {path}: not found")
    if path.is_dir():
        try:
            import datasets

            loaded = datasets.load_from_disk(str(path))
        except Exception as err:  # noqa: BLE001 - any failure is the user's folder
            raise AccordError(f"folder {path}: not a saved Hugging Face dataset: {str(err).splitlines()[0]}") from err
        if isinstance(loaded, datasets.DatasetDict):
            purpose = "held_out" if held_out else _READING_FOR.get()
            splits = list(loaded)
            if not splits:  # was IndexError to evaluate on (dataset_split read its only split)
                raise AccordError(f"folder {path}: a DatasetDict without a split (nothing to read)")
            loaded = loaded[scored_split(splits, path) if purpose == "score" else
                            dataset_split(splits, path, purpose == "held_out")]
        return loaded.to_pandas()
    fmt = infer_format(path)
    if fmt in ("csv", "tsv"):
        return _read_delimited(path)
    # JSON's own types, as written: pandas' guessing read the id "007" as 7
    frame = read_table(path) if fmt == "parquet" else read_table(path, dtype=False)
    if all(column in frame.columns for column in CLEANED_COLUMNS) and _cleaned_format(path, fmt):
        return read_cleaned(path, fmt=_cleaned_format(path, fmt))
    return frame


#: What the data being read is for, which decides the split of a saved ``DatasetDict`` :func:`read_table_path` reads:
#: ``"train"`` (its ``train`` split), ``"held_out"`` (data to evaluate on: :func:`dataset_split`) or ``"score"``
#: (data to score: :func:`scored_split`). Set by :func:`reading_for`, so that every task's reader (pairs, steps,
#: attributes) reads it without a flag of its own.
_READING_FOR: contextvars.ContextVar[str] = contextvars.ContextVar("accord_reading_for", default="train")


@contextmanager
def reading_for(purpose: str) -> Iterator[None]:
    """Within it, a saved ``DatasetDict`` that any reader of the reward commands reads (:func:`load_pairs`,
    :func:`accord.reward.steps.load_steps`, :func:`accord.reward.attributes.read_attribute_table`, through
    :func:`read_table_path`) is read for ``purpose`` (:data:`_READING_FOR`): ``"held_out"`` reads its held-out split,
    as :meth:`accord.reward.task.RewardTask.read_held_out` and ``accord evaluate`` read one (was: the pairwise task
    alone; the step and attribute tasks evaluated on a folder's ``train`` split); ``"score"`` reads its one split,
    as ``accord score`` reads one."""
    token = _READING_FOR.set(purpose)
    try:
        yield
    finally:
        _READING_FOR.reset(token)


def scored_split(splits: list[str], path: Path) -> str:
    """The split of a saved ``DatasetDict`` (``splits``: its names, at ``path``) that scoring reads: its one split,
    whatever its name (scoring is not evaluation: any data can be scored; was its ``train`` split, and a folder of
    ``test`` alone was refused). A folder of several is one error naming them and the folder of each split, which
    is a saved dataset of its own: which one to score is the user's to say."""
    if len(splits) == 1:
        return splits[0]
    names = ", ".join(repr(name) for name in splits)
    raise AccordError(f"folder {path}: a DatasetDict of {len(splits)} splits ({names}) where scoring reads one "
                      f"table: give the folder of the split to score, as {path / splits[-1]}")


#: The names of a ``DatasetDict``'s held-out splits, in the order evaluation prefers them; a split named with one of
#: them as a word (``test_prefs``) is held out too.
HELD_OUT_SPLITS = ("test", "validation", "valid", "val", "eval", "evaluation", "dev", "held_out", "heldout")


def dataset_split(splits: list[str], path: Path, held_out: bool) -> str:
    """The split of a saved ``DatasetDict`` (``splits``: its names, at ``path``) to read: ``train`` to train on; to
    evaluate on (``held_out``) its held-out one: the first of :data:`HELD_OUT_SPLITS` it has, else the one split
    named with such a word, else its only split (with a warning: it may be the data the model trained on). Was:
    ``train`` whatever the command, so `accord evaluate rm folder` scored the training pairs of a folder of
    ``train`` and ``test`` without a word, and refused one of ``test`` alone."""
    if not held_out:
        if "train" not in splits:
            raise AccordError(f"folder {path}: a DatasetDict without a 'train' split ({splits})")
        return "train"
    for name in HELD_OUT_SPLITS:
        if name in splits:
            return name
    worded = [name for name in splits if set(re.split(r"[_\-\s]+", name.lower())) & set(HELD_OUT_SPLITS)]
    if len(worded) == 1:
        return worded[0]
    if len(worded) > 1 or len(splits) > 1:
        raise AccordError(f"folder {path}: a DatasetDict whose held-out split cannot be told among {splits} "
                          "(evaluation reads 'test', 'validation' or 'dev', else the one split named with such a "
                          "word): save the split to evaluate on alone")
    warnings.warn(f"folder {path}: a DatasetDict with no held-out split (its one split is '{splits[0]}'): evaluating "
                  "on it, which may be the data the model trained on", UserWarning, stacklevel=4)
    return splits[0]


def _read_delimited(path: Path) -> pd.DataFrame:
    """A CSV or TSV file whose text and id columns (:func:`read_as_written`) stay as written: pandas' guessing read a
    response "04" as the number 4 and "NA", "None" or "null" as a missing text; only an empty cell is missing there.
    Its delimiter is found as the judgments' is (Excel's ``;`` export, a ``sep=;`` line: :func:`with_delimiter`)."""
    delimiter = with_delimiter(path, infer_format(path), {})
    frame = read_table(path, **delimiter)
    with_texts_as_written(frame, path, [column for column in frame.columns if read_as_written(column)], **delimiter)
    # chat messages a text cell holds as JSON, as the JSON Lines or Parquet twin of the file holds them
    return messages_written_as_json(frame, str(path))


def _cleaned_format(path: Path, fmt: str) -> str | None:
    """The format a cleaned dataset in ``path`` is read in (:func:`read_cleaned`): Parquet, or JSON Lines under
    ``.jsonl`` or ``.json``; ``None`` for a file the cleaned reader does not read (compressed, a JSON array): its
    columns are checked as those of a table (:func:`normalise_pairs`)."""
    if path.suffix.lower() in COMPRESSION_SUFFIXES:
        return None
    if fmt == "json":
        with open(path, encoding="utf-8-sig") as handle:  # utf-8-sig: a byte-order mark is skipped
            return "jsonl" if handle.read(1).strip() != "[" else None
    return fmt if fmt in ("parquet", "jsonl") else None


def normalise_pairs(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Check a preference table and bring it to :data:`TRAINING_PAIR_COLUMNS` (see :func:`load_pairs`)."""
    for column in ("chosen", "rejected"):
        if column not in frame.columns:
            if {"annotator", "label"} <= set(frame.columns) or {"worker", "label"} <= set(frame.columns):
                # the raters' judgments themselves, as the multi-attribute task refuses them: name the step between
                raise ValidationError("a judgments table (one row per judgment), not a preference dataset: aggregate "
                                      "it first (accord aggregate --input FILE --output cleaned.parquet) and train "
                                      "on that", source=source)
            if {"pair_id", "p_A", "p_B"} <= set(frame.columns):
                # what accord aggregate writes to .csv / .tsv, or from judgments without texts: ids and numbers only
                raise ValidationError("soft labels (pair_id, p_A, p_B), not a preference dataset: they hold no texts "
                                      "to train on; write the cleaned dataset with accord aggregate --output "
                                      "cleaned.parquet (or .jsonl) from judgments that carry prompt, response_a "
                                      "and response_b", source=source)
            raise ValidationError(f"missing required column of a preference dataset ({columns_note(frame.columns)})",
                                  source=source, column=column)
    if len(frame) == 0:
        raise ValidationError("the preference dataset is empty", source=source)
    if all(column in frame.columns for column in CLEANED_COLUMNS):
        check_cleaned(frame, source=source)
    out = pd.DataFrame(index=range(len(frame)))
    # responses that are all texts (a cleaned dataset of texts) pass every check below and stay as they are: told
    # at C speed, where the checks one cell at a time took 4 s of the 6 s that loading 200k pairs took
    texts = only_texts(frame["chosen"], missing=False) and only_texts(frame["rejected"], missing=False)
    # messages as written (written_messages): a Parquet file or Arrow-backed dataset gives each message the keys of
    # every other of its column, None, so the turns both sides start with differed where one side had a key the
    # other had not ('name'), and no pair had a shared prompt
    chosen = _texts(frame["chosen"]) if texts else list(frame["chosen"].map(written_messages))
    rejected = _texts(frame["rejected"]) if texts else list(frame["rejected"].map(written_messages))
    conversational = is_messages(chosen[0])
    for row, (c, r) in enumerate([] if texts else zip(chosen, rejected)):
        for column, value in (("chosen", c), ("rejected", r)):
            if _missing(value):
                raise ValidationError("missing response text", source=source, column=column, row=row)
            _refuse_non_text(value, source, column, row)
            if not _well_formed(value):
                raise ValidationError("must be a text or a non-empty list of chat messages ({'role': text, "
                                      "'content': text})", source=source, column=column, row=row, value=value)
            if is_messages(value) != conversational:
                raise ValidationError("mixes chat messages and plain texts: row 0 of 'chosen' is "
                                      f"{'messages' if conversational else 'a text'}, this one is not",
                                      source=source, column=column, row=row)
    if "prompt" in frame.columns and only_texts(frame["prompt"], missing=False) and not conversational:
        prompts = _texts(frame["prompt"])
    elif "prompt" in frame.columns:
        check_prompts(frame, source)
        prompts = [_text_or_messages(p) for p in frame["prompt"]]
        if conversational:
            prompts, chosen, rejected = _prompts_in_conversations(prompts, chosen, rejected)
            # no prompt ("", None, the cleaned dataset's []) is none, as without the column and as score reads
            # responses: an empty user turn before the conversation was another text than those paths render
            prompts = [[] if p == "" else p for p in prompts]
    elif conversational:
        prompts, chosen, rejected = zip(*(split_shared_messages(c, r) for c, r in zip(chosen, rejected)))
    else:
        prompts = [""] * len(frame)
    out["pair_id"] = frame["pair_id"].astype(str).to_numpy() if "pair_id" in frame.columns else [
        str(i) for i in range(len(frame))]
    out["prompt"] = list(prompts)
    out["chosen"] = chosen if texts else [_text_or_messages(c) for c in chosen]
    out["rejected"] = rejected if texts else [_text_or_messages(r) for r in rejected]
    defaults = {"p_chosen": 1.0, "p_tie": 0.0, "uncertainty": np.nan, "weight": 1.0, "margin": np.nan}
    for column, default in defaults.items():
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        else:
            values = np.full(len(frame), default, dtype=float)
        if column in ("p_chosen", "p_tie", "weight"):
            bad = ~np.isfinite(values) | (values < 0) | (values > 1)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValidationError("must be a probability in [0, 1]", source=source, column=column, row=row,
                                      value=frame[column].iloc[row])
        elif column in frame.columns:  # NaN (or a missing value) means "none"; text or infinity is a mistake
            bad = np.isinf(values) | (np.isnan(values) & frame[column].notna().to_numpy())
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValidationError("must be a finite number (or missing)", source=source, column=column, row=row,
                                      value=frame[column].iloc[row])
        out[column] = values
    over = out["p_chosen"].to_numpy() + out["p_tie"].to_numpy() > 1 + LABEL_SUM_TOLERANCE
    if over.any():
        row = int(np.flatnonzero(over)[0])
        raise ValidationError("p_chosen + p_tie exceeds 1", source=source, column="p_tie", row=row)
    for column in VOTE_COLUMNS:  # held-out votes travel along for evaluation
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            # a missing tie count is no tie votes; a missing chosen/rejected count would void every vote metric
            unreadable = np.isnan(values) & (frame[column].notna().to_numpy() | (column != "votes_tie"))
            bad = unreadable | np.isinf(values) | (values < 0)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValidationError("must be a vote count (a number >= 0)", source=source, column=column, row=row,
                                      value=frame[column].iloc[row])
            out[column] = values
    out.attrs = dict(frame.attrs)
    return out


def check_prompts(frame: pd.DataFrame, source: str | None = None) -> None:
    """One error naming the row of a ``prompt`` that is neither a text nor a list of chat messages (missing or an
    empty list: no prompt)."""
    texts = only_texts(frame["prompt"], missing=False)  # texts, none missing: each is well formed
    for row, value in enumerate([] if texts else frame["prompt"]):
        _refuse_non_text(value, source, "prompt", row)
        if not _missing(value) and not _well_formed(value) and not _no_messages(value):
            raise ValidationError("must be a text or a list of chat messages ({'role': text, 'content': text})",
                                  source=source, column="prompt", row=row, value=value)


def check_responses(frame: pd.DataFrame, source: str | None = None) -> None:
    """One error naming the row of a ``response`` (present: missing ones are the caller's to refuse) that is neither
    a text nor a non-empty list of chat messages, or of such a prompt, as :func:`normalise_pairs` refuses them in
    pairs: a single message (a dict), a list of texts or an empty list was scored as its repr, and messages without
    a role failed with a KeyError."""
    texts = only_texts(frame["response"], missing=False)  # texts, none missing: each is well formed
    for row, value in enumerate([] if texts else frame["response"]):
        _refuse_non_text(value, source, "response", row)
        if not _well_formed(value):
            raise ValidationError("must be a text or a non-empty list of chat messages ({'role': text, 'content': "
                                  "text})", source=source, column="response", row=row, value=value)
    if "prompt" in frame.columns:
        check_prompts(frame, source)


def pair_texts(table: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """The prompts and responses of a table of pairs as training, scoring and fitting a combination read them
    (:func:`normalise_pairs`: chat messages stay messages, the prompt of conversations is the messages both sides
    share), and none of its labels: what only reads the texts refused a table for a label it does not use (a
    missing ``p_chosen`` of a pair not rated yet, a ``weight`` above 1)."""
    return normalise_pairs(table[[c for c in ("pair_id", "prompt", "chosen", "rejected") if c in table.columns]],
                           source=source)


def response_texts(table: pd.DataFrame) -> tuple[list[Any], list[Any]]:
    """The prompts and responses of a table of responses as training and scoring read them: a text as written
    (missing: empty), chat messages as messages (the encoder renders them with the chat template), also when a
    Parquet file gives them back as numpy arrays of messages (their repr was scored as the text)."""
    if only_texts(table["response"], missing=False) and (
            "prompt" not in table.columns or only_texts(table["prompt"], missing=False)):
        # texts, none missing (told at C speed): each is its own text, and no response is messages
        return _texts(table["prompt"]) if "prompt" in table.columns else [""] * len(table), _texts(table["response"])
    prompts = [_text_or_messages(p) for p in table["prompt"]] if "prompt" in table.columns else [""] * len(table)
    responses = [_text_or_messages(r) for r in table["response"]]
    # chat messages without a prompt are the whole conversation, as a pair's messages that share no prompt are:
    # no empty user turn before them (a reward other than the same messages got as a side of a pair)
    prompts = [[] if p == "" and isinstance(r, list) else p for p, r in zip(prompts, responses)]
    return prompts, responses


def _texts(values: pd.Series) -> list[str]:
    """A column of texts, none missing (:func:`accord.datasets.cleaned.only_texts`), as the Python strings
    :func:`_text_or_messages` makes of them."""
    return values.astype(str).tolist()


def _well_formed(value: Any) -> bool:
    """A text (a number is read as its text) or a non-empty list of messages with text ``role`` and ``content`` (a
    text, or a list of text parts: the OpenAI / Hugging Face multimodal layout; none where the message calls tools:
    :func:`readable_message`, the step path's rule too)."""
    if isinstance(value, np.ndarray):
        value = list(value)
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(readable_message(m) for m in value)
    return not isinstance(value, (dict, set))


def _refuse_non_text(value: Any, source: str | None, column: str, row: int) -> None:
    """One error naming the row of chat messages holding a part that is not text (an image: its URL or bytes were
    read as text otherwise; accord reads text only)."""
    kind = non_text_part(value)
    if kind is not None:
        raise ValidationError(f"a chat message holds a {kind!r} part: accord reads text only (give the content as "
                              "text, or as parts of type 'text')", source=source, column=column, row=row)


def _text_or_messages(value: Any) -> str | list[dict[str, Any]]:
    if isinstance(value, np.ndarray):
        value = list(value)
    if is_messages(value):
        # the messages as the step path reads them (chat_messages): as written, every key (a part that is not text
        # is refused before this)
        return chat_messages(value)
    if _missing(value) or _no_messages(value):
        return ""
    # numpy's str() of its text scalar drops trailing NULs; the text as stored is what the column-wide path keeps
    return str.__str__(value) if isinstance(value, str) else str(value)


def _no_messages(value: Any) -> bool:
    """An empty list of messages (a prompt that says nothing)."""
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) == 0


def _missing(value: Any) -> bool:
    """A cell without a text: ``None``, NaN, or the ``pd.NA`` of pandas' nullable string columns."""
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _prompts_in_conversations(prompts: list, chosen: list, rejected: list) -> tuple[list, list, list]:
    """Conversations that carry their prompt beside a text ``prompt`` column (the layout of UltraFeedback-binarized:
    ``prompt`` a text, ``chosen`` and ``rejected`` the whole conversation, user turn included): the leading messages
    both sides share are the prompt, as without the column, so it is not read twice. A text prompt beside
    conversations that share nothing (assistant turns alone) stays the prompt, as do prompts given as messages."""
    out: tuple[list, list, list] = ([], [], [])
    for prompt, c, r in zip(prompts, chosen, rejected):
        shared, c_rest, r_rest = split_shared_messages(c, r)
        parts = (shared, c_rest, r_rest) if isinstance(prompt, str) and shared else (prompt, c, r)
        for column, part in zip(out, parts):
            column.append(part)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# 2. Tokenizing
# ----------------------------------------------------------------------------------------------------------------------


def truncate_pair(prompt: list[int], response: list[int], budget: int) -> tuple[list[int], list[int], bool, bool]:
    """Fit ``prompt + response`` into ``budget`` tokens, cutting the response first.

    The response keeps its beginning and is shortened to what the prompt leaves, but never below
    ``min(len(response), budget // 2)`` tokens; only then is the prompt cut, from the left (its end, next to the
    response, stays). Returns the two parts and whether each was cut.
    """
    if budget < 1:
        raise SettingError("max_length", lambda name: (
            f"{name} leaves no room for text after the special tokens (budget {budget})"))
    if len(prompt) + len(response) <= budget:
        return prompt, response, False, False
    keep_response = max(budget - len(prompt), min(len(response), budget // 2))
    cut_response = keep_response < len(response)
    response = response[:keep_response]
    keep_prompt = budget - len(response)
    cut_prompt = keep_prompt < len(prompt)
    if cut_prompt:
        prompt = prompt[len(prompt) - keep_prompt:] if keep_prompt > 0 else []
    return prompt, response, cut_prompt, cut_response


@dataclass
class TokenizedResponses:
    """Token ids of a set of (prompt, response) sequences, as :meth:`PairEncoder.encode` makes them."""

    ids: list[list[int]]
    prompt_lengths: np.ndarray  # tokens before the response starts (special tokens and template included)
    type_ids: list[list[int]] | None
    truncated_prompts: int = 0
    truncated_responses: int = 0


@dataclass
class TokenizedPairs:
    """Tokenized preference pairs plus their labels; what the collator reads."""

    chosen: TokenizedResponses
    rejected: TokenizedResponses
    pair_id: np.ndarray
    p_chosen: np.ndarray
    p_tie: np.ndarray
    weight: np.ndarray
    margin: np.ndarray
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = np.array([len(c) + len(r) for c, r in zip(self.chosen.ids, self.rejected.ids)], dtype=np.int64)

    @property
    def longest(self) -> np.ndarray:
        """The longer side of each pair (what a padded batch's width depends on)."""
        return np.array([max(len(c), len(r)) for c, r in zip(self.chosen.ids, self.rejected.ids)], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.chosen.ids)

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    @property
    def truncation(self) -> dict[str, int]:
        """How many prompts and responses were truncated, over both sides of every pair."""
        return {
            "truncated_prompts": self.chosen.truncated_prompts + self.rejected.truncated_prompts,
            "truncated_responses": self.chosen.truncated_responses + self.rejected.truncated_responses,
            "sequences": 2 * len(self),
        }


def warn_cut(cut: int, total: int, what: str, max_length: int, effect: str, *, prefix: str = "",
             stacklevel: int = 3, advice: str | None = None) -> None:
    """Say in one warning how many of ``total`` ``what`` (responses, responses of the pairs) ``max_length`` cut and
    what that does (``effect``): score, and training, read only their first tokens, which their printed counts alone
    did not say (`accord train --max-length 8` cut every response without a word). ``advice`` replaces the closing
    'a larger max_length reads more' where the caller has no such setting (combine reads the saved model's)."""
    def closing(name: str) -> str:
        return advice or f"a larger {name}, within the backbone's positions, reads more"

    if cut:
        warnings.warn(SettingWarning("max_length", lambda name: (
            f"{prefix}{cut} of the {total} {what} did not fit {name} {max_length} (with their prompt and special "
            f"tokens) and were cut: {effect} ({closing(name)})")),
            stacklevel=stacklevel + 1)


def ensure_pad_token(tokenizer: Any, model: str) -> None:
    """Give a tokenizer without a pad token its end-of-sequence (or unknown) token as one: padded positions are
    masked, so any id serves, but the collators need one. One without any of the three is a clear error."""
    if tokenizer.pad_token_id is not None:
        return
    tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token_id is None:
        raise AccordError(f"model {model}: its tokenizer has no pad, end-of-sequence or unknown token to pad "
                          "batches with; give it one (tokenizer.pad_token = ...) and save it with the model")


class PairEncoder:
    """Tokenizes (prompt, response) pairs for one backbone.

    * Chat template (``use_chat_template``, by default when the tokenizer has one): the prompt is the template of the
      user turn with the generation prompt, the response the rest of the template of the whole conversation.
    * Otherwise encoders get the tokenizer's pair layout (``[CLS] prompt [SEP] response [SEP]``, token types 0/1, or
      ``[CLS] response [SEP]`` without a prompt) and decoders the tokenizer's leading special tokens, the prompt, the
      response and the end-of-sequence token (TRL appends it too: it gives the last-token pooling a fixed token to
      read).

    Every sequence fits ``max_length`` through :func:`truncate_pair`; the two sides of a pair keep the same prompt
    tokens (:meth:`encode_pairs`).
    """

    def __init__(self, tokenizer: Any, max_length: int, is_decoder: bool, use_chat_template: bool | None = None):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.is_decoder = bool(is_decoder)
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if use_chat_template and not has_template:
            raise AccordError("use_chat_template is set but the tokenizer has no chat template")
        self.use_chat_template = has_template if use_chat_template is None else bool(use_chat_template)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(backend.to_str())  # a copy: padding/truncation off without touching the user's
            backend.no_padding()
            backend.no_truncation()
        self.backend = backend
        self.single = self._layout(pair=False)
        self.pair = None if self.is_decoder else self._layout(pair=True)
        eos = getattr(tokenizer, "eos_token_id", None)
        suffix = self.single[0][2]
        self.eos = [eos] if (self.is_decoder and eos is not None and suffix[-1:] != [eos]) else []
        self.turn_end = self._turn_end() if self.use_chat_template else []
        self.chat_head = self._chat_head() if self.use_chat_template else []

    def _turn_end(self) -> list[int]:
        """The tokens a chat template puts after the assistant's text (its end-of-turn marker, e.g. ``</s>`` or
        ``<|im_end|>\\n``), found with probe texts; ``[]`` when the probe is not found whole."""
        user, assistant = "reward model probe", "another probe text"
        full = _template_ids(self.tokenizer, [{"role": "user", "content": user},
                                              {"role": "assistant", "content": assistant}], add_generation_prompt=False)
        probe = self._plain_ids([assistant])[0]
        at = _find(full, probe, 0)
        return full[at + len(probe):] if probe and at >= 0 else []

    def _chat_head(self) -> list[int]:
        return chat_template_head(self.tokenizer)

    def _layout(self, pair: bool) -> tuple[list[list[int]], list[list[int]], tuple[int, int]]:
        """Where the tokenizer puts its special tokens: ``([before, between, after] ids, the same for token types,
        (type of the first text, type of the second))``, found by encoding two probe texts."""
        first, second = "reward model probe", "another probe text"
        plain_a = list(self.tokenizer(first, add_special_tokens=False)["input_ids"])
        plain_b = list(self.tokenizer(second, add_special_tokens=False)["input_ids"])
        enc = self.tokenizer(first, second, add_special_tokens=True, return_token_type_ids=True) if pair else \
            self.tokenizer(first, add_special_tokens=True, return_token_type_ids=True)
        ids = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        a = _find(ids, plain_a, 0)
        if a < 0:
            raise AccordError("cannot tell where the tokenizer puts its special tokens")
        if not pair:
            end = a + len(plain_a)
            return [ids[:a], [], ids[end:]], [types[:a], [], types[end:]], (types[a] if plain_a else 0, 0)
        b = _find(ids, plain_b, a + len(plain_a))
        if b < 0:
            raise AccordError("cannot tell where the tokenizer puts its special tokens")
        mid = slice(a + len(plain_a), b)
        end = b + len(plain_b)
        return ([ids[:a], ids[mid], ids[end:]], [types[:a], types[mid], types[end:]],
                (types[a] if plain_a else 0, types[b] if plain_b else 0))

    def _plain_ids(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        with _collector_paused():
            if self.backend is not None:
                return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]
            return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def encode(self, prompts: Sequence[Any], responses: Sequence[Any],
               prompt_room: np.ndarray | None = None) -> TokenizedResponses:
        """Token ids of ``prompt_i + response_i`` for every i (prompts may be ``""``).

        ``prompt_room[i]``: at most this many tokens before response ``i`` starts (a ``prompt_lengths`` value); the
        prompt is cut from the left to fit it before :func:`truncate_pair` runs.
        """
        if len(prompts) != len(responses):
            raise AccordError(f"{len(prompts)} prompts for {len(responses)} responses")
        if self.use_chat_template:
            return self._encode_chat(prompts, responses, prompt_room)
        prompts, responses = _as_texts(prompts), _as_texts(responses)
        return self._lay_out(prompts, self._plain_ids(prompts), self._plain_ids(responses), prompt_room)

    def _lay_out(self, prompts: list[str], p_ids: list[list[int]], r_ids: list[list[int]],
                 prompt_room: np.ndarray | None) -> TokenizedResponses:
        """:meth:`encode` without a chat template, from the prompts' and responses' plain token ids (read, never
        changed: one prompt's ids may serve many rows).

        What :meth:`_lay_out_rows` gives, without Python code per row: the cuts of :func:`_fit_prompt` and
        :func:`truncate_pair` told with numpy over lengths, the sequences joined by C loops (``map`` over builtins)
        from slices of the tokenizer's lists (the ids through numpy and back to lists cost more than the per-row code
        did); most of that code's time was the garbage collector walking the lists already built, paused here.
        """
        with _collector_paused():
            return self._lay_out_flat(prompts, p_ids, r_ids, prompt_room)

    def _lay_out_flat(self, prompts: list[str], p_ids: list[list[int]], r_ids: list[list[int]],
                      prompt_room: np.ndarray | None) -> TokenizedResponses:
        """:meth:`_lay_out`, the collector running or not."""
        n = len(prompts)
        lp = whole_p = np.fromiter(map(len, p_ids), np.int64, n)
        lr = np.fromiter(map(len, r_ids), np.int64, n)
        # encoders: the tokenizer's pair layout when there is a prompt; decoders: one text, then EOS. Layout 0 is the
        # single text's (its response takes the first text's token type), layout 1 the pair's
        layouts = [self.single] if self.pair is None else [self.single, self.pair]
        kind = (np.fromiter(map(bool, prompts), bool, n) if self.pair is not None else np.zeros(n, bool)).astype(
            np.int64)
        parts = [part for (ids, _, _) in layouts for part in ids] + [self.eos]  # before, between, after; ..., EOS
        part_len = np.array([len(part) for part in parts], dtype=np.int64)
        n_before, n_between, n_after = (part_len[3 * kind + j] for j in range(3))
        n_eos = len(self.eos)
        budget = self.max_length - n_before - n_between - n_after - n_eos
        room = None if prompt_room is None else np.asarray(prompt_room, dtype=np.int64)[:n] - n_before - n_between
        roomed, cut_p, cut_r, lp_kept, lr_kept = _cut_lengths(lp, lr, budget, room)
        pick = kind.tolist()

        def part(j: int, of: list[list[list[int]]]) -> Any:
            """Each row's layout's ``j``-th special part (0 before, 1 between, 2 after) of ``of`` (ids or types)."""
            return map([layout[j] for layout in of].__getitem__, pick)

        ids_of = [layout[0] for layout in layouts]
        prompt = map(getitem, p_ids, map(slice, (whole_p - lp_kept).tolist(), repeat(None)))
        response = map(getitem, r_ids, map(slice, repeat(None), lr_kept.tolist()))
        ids = list(map(list, map(chain, part(0, ids_of), prompt, part(1, ids_of), response, part(2, ids_of),
                                 repeat(self.eos))))
        types = None
        if not self.is_decoder:  # the special tokens' own types, then the first text's and the second text's
            types_of = [layout[1] for layout in layouts]
            first = map([[layout[2][0]] for layout in layouts].__getitem__, pick)
            second = map([[layout[2][1] if k else layout[2][0]] for k, layout in enumerate(layouts)].__getitem__,
                         pick)
            types = list(map(list, map(chain, part(0, types_of), map(mul, first, lp_kept.tolist()), part(1, types_of),
                                       map(mul, second, lr_kept.tolist()), part(2, types_of),
                                       repeat([0] * n_eos))))
        return TokenizedResponses(ids, n_before + lp_kept + n_between, types, int((cut_p | roomed).sum()),
                                  int(cut_r.sum()))

    def _lay_out_rows(self, prompts: list[str], p_ids: list[list[int]], r_ids: list[list[int]],
                      prompt_room: np.ndarray | None) -> TokenizedResponses:
        """:meth:`_lay_out` row by row: what it replaced, kept as its reference (tests/test_vectorised_paths.py)."""
        ids, types, prompt_lengths, cut_p, cut_r = [], [], [], 0, 0
        for i, (text, p, r) in enumerate(zip(prompts, p_ids, r_ids)):
            # encoders: the tokenizer's pair layout when there is a prompt; decoders: one text, then EOS
            (before, between, after), (t_before, t_between, t_after), (t_p, t_r) = (
                self.pair if (self.pair is not None and text) else self.single)
            if self.pair is None or not text:
                t_r = t_p
            budget = self.max_length - len(before) - len(between) - len(after) - len(self.eos)
            p, roomed = _fit_prompt(p, None if prompt_room is None else prompt_room[i] - len(before) - len(between))
            p, r, a, b = truncate_pair(p, r, budget)
            cut_p += a or roomed
            cut_r += b
            ids.append(before + p + between + r + after + self.eos)
            types.append(t_before + [t_p] * len(p) + t_between + [t_r] * len(r) + t_after + [0] * len(self.eos))
            prompt_lengths.append(len(before) + len(p) + len(between))
        return TokenizedResponses(ids, np.asarray(prompt_lengths, dtype=np.int64), None if self.is_decoder else types,
                                  cut_p, cut_r)

    def _encode_chat(self, prompts: Sequence[Any], responses: Sequence[Any],
                     prompt_room: np.ndarray | None) -> TokenizedResponses:
        """:meth:`encode` through the chat template: each distinct prompt and conversation rendered once."""
        prompt_ids, (full_ids,) = self._render_chat(prompts, [responses])
        return self._lay_out_chat(prompt_ids, full_ids, responses, prompt_room)

    def _render_chat(self, prompts: Sequence[Any], sides: Sequence[Sequence[Any]],
                     side_names: Sequence[str] = ("response",)) -> tuple[list[list[int]], list[list[list[int]]]]:
        """The template's token ids of each row's prompt (its user turn and the generation prompt) and of each row's
        conversation on every side of ``sides`` (response lists, one per side).

        Each distinct prompt is rendered once and each distinct conversation once, over all sides, in one batched
        call for the prompts and one for the conversations, in the order rows first give them (a template's error is
        the one the first failing row gave); rows alike share one list (read, never changed). Rendering every row's
        prompt and conversation per side and per pass (eight renderings a pair, one where responses to one prompt
        share it) was nearly all the time of encoding. A conversation the template refuses is one error naming its
        column (``prompt``, or the side's name in ``side_names``) and its row (:func:`refuse_unrendered`)."""
        p_keys = list(map(_chat_key, prompts))
        p_first = dict(zip(p_keys, prompts))  # any row of a key serves: the key fixes what the template reads
        p_messages = {key: _chat_messages(p_first[key], "user") for key in dict.fromkeys(p_keys)}
        # a conversation without a prompt (pairs of messages that share none, a response given as the whole
        # conversation) has no prompt tokens: the template of an empty conversation is an error in transformers
        asked = [key for key, messages in p_messages.items() if messages]
        p_found = dict.fromkeys(p_messages, [])
        try:
            p_found.update(zip(asked, _template_ids_batch(self.tokenizer, [p_messages[key] for key in asked],
                                                          add_generation_prompt=True)))
        except Exception as error:  # jinja's TemplateError of a template that refuses a prompt (a system turn)
            row = dict(zip(reversed(p_keys), range(len(p_keys) - 1, -1, -1)))  # each key's first row
            refuse_unrendered(self.tokenizer, [p_messages[key] for key in asked], [row[key] for key in asked], error)
            raise
        c_keys = [list(zip(p_keys, map(_chat_key, responses))) for responses in sides]
        c_first = {key: response for keys, responses in zip(c_keys, sides) for key, response in zip(keys, responses)}
        distinct = list(dict.fromkeys(chain.from_iterable(c_keys)))
        conversations = [p_messages[p] + _chat_messages(c_first[(p, r)], "assistant") for p, r in distinct]
        try:
            found = _template_ids_batch(self.tokenizer, conversations, add_generation_prompt=False)
        except Exception as error:  # one the template refuses with its response (a role order it does not take)
            where = {key: (row, side) for side, keys in reversed(list(zip(side_names, c_keys)))
                     for row, key in reversed(list(enumerate(keys)))}  # each conversation's first row and side
            refuse_unrendered(self.tokenizer, conversations, [where[key][0] for key in distinct], error,
                              [where[key][1] for key in distinct], add_generation_prompt=False)
            raise
        c_found = dict(zip(distinct, found))
        return list(map(p_found.__getitem__, p_keys)), [list(map(c_found.__getitem__, keys)) for keys in c_keys]

    def _lay_out_chat(self, p_ids: list[list[int]], full_ids: list[list[int]], responses: Sequence[Any],
                      prompt_room: np.ndarray | None) -> TokenizedResponses:
        """The chat layout of rendered prompts and conversations (:meth:`_render_chat`, lists read, never changed):
        the response is what the conversation adds to its prompt, fitted to ``max_length`` with its end-of-turn
        marker kept.

        What :meth:`_lay_out_chat_rows` gives, without Python code per row, as :meth:`_lay_out` does the plain
        layouts': the cuts told with numpy over lengths, the sequences joined by C loops from slices of the
        rendered lists, the garbage collector paused."""
        with _collector_paused():
            return self._lay_out_chat_flat(p_ids, full_ids, list(responses), prompt_room)

    def _lay_out_chat_flat(self, p_ids: list[list[int]], full_ids: list[list[int]], responses: list[Any],
                           prompt_room: np.ndarray | None) -> TokenizedResponses:
        """:meth:`_lay_out_chat`, the collector running or not."""
        n = len(p_ids)
        lw = np.fromiter(map(len, p_ids), np.int64, n)  # the whole prompt's length
        # the response is what the conversation adds to its prompt; where the template's generation prompt is not a
        # prefix of the conversation, the response's plain ids, then EOS
        prefixed = np.fromiter(map(eq, map(getitem, full_ids, map(slice, repeat(None), lw.tolist())), p_ids), bool,
                               n)
        other = np.flatnonzero(~prefixed)
        plain = self._plain_ids(_as_texts(list(map(responses.__getitem__, other.tolist())))) if len(other) else []
        lr = np.fromiter(map(len, full_ids), np.int64, n) - lw
        lr[other] = np.fromiter(map(len, plain), np.int64, len(plain))
        # the end marker kept (0: none, 1: the turn's end, 2: EOS): the conversation's end of turn where it ends the
        # response, EOS after a plain response
        ends = [[], self.turn_end, self.eos]
        n_end = np.array(list(map(len, ends)), dtype=np.int64)
        end_kind = np.where(prefixed, 0, 2 if self.eos else 0)
        if self.turn_end:
            k = len(self.turn_end)
            tails = np.fromiter(map(eq, map(getitem, full_ids, repeat(slice(-k, None))), repeat(self.turn_end)),
                                bool, n)
            end_kind[prefixed & (lr >= k) & tails] = 1
        lr = np.where(prefixed, lr - n_end[end_kind], lr)  # the response without its end marker
        budget = self.max_length - n_end[end_kind]
        room = None if prompt_room is None else np.asarray(prompt_room, dtype=np.int64)[:n]
        roomed, cut_p, cut_r, lp_kept, lr_kept = _cut_lengths(lw, lr, budget, room)
        # a prompt cut from the left keeps the template's start (the BOS token, the user header) and the end of the
        # text, in as many tokens as were kept, where they are enough for that start (measured once a prompt)
        head = np.zeros(n, np.int64)
        shortened = np.flatnonzero(lp_kept < lw)
        if len(shortened):
            wholes = list(map(p_ids.__getitem__, shortened.tolist()))
            distinct = dict(zip(map(id, wholes), wholes))
            n_head = dict(zip(distinct, map(_shared_length, distinct.values(), repeat(self.chat_head))))
            heads = np.fromiter(map(n_head.__getitem__, map(id, wholes)), np.int64, len(wholes))
            head[shortened] = np.where(lp_kept[shortened] >= heads, heads, 0)
        tail = lp_kept - head
        # a sequence is one slice of its conversation (the prompt's kept end, the response's kept start and, when
        # the response is whole, its end marker), or of its prompt where the response is not the conversation's;
        # the plain responses, the end markers after a cut response and the template's start are added to the rows
        # that have them. Concatenating copies at C speed (chaining went token by token, twice as long)
        end_inside = prefixed & (lr_kept == lr)
        stop = np.where(prefixed, lw + lr_kept + np.where(end_inside, n_end[end_kind], 0), lw)
        sliced = list(full_ids)
        list(map(sliced.__setitem__, other.tolist(), map(p_ids.__getitem__, other.tolist())))
        ids = list(map(getitem, sliced, map(slice, (lw - tail).tolist(), stop.tolist())))

        def join(rows: np.ndarray, parts: Any, before: bool = False) -> None:
            """``ids[i] = ids[i] + part`` (``part + ids[i]``) for each row ``i`` of ``rows`` and its part."""
            at = rows.tolist()
            pairs = (parts, map(ids.__getitem__, at)) if before else (map(ids.__getitem__, at), parts)
            list(map(ids.__setitem__, at, map(add, *pairs)))

        added_end = np.flatnonzero(prefixed & ~end_inside & (n_end[end_kind] > 0))
        join(added_end, map(ends.__getitem__, end_kind[added_end].tolist()))
        join(other, map(add, map(getitem, plain, map(slice, repeat(None), lr_kept[other].tolist())),
                        map(ends.__getitem__, end_kind[other].tolist())))
        headed = np.flatnonzero(head > 0)
        join(headed, map(getitem, map(p_ids.__getitem__, headed.tolist()),
                         map(slice, repeat(None), head[headed].tolist())), before=True)
        return TokenizedResponses(ids, lp_kept.astype(np.int64), None, int((cut_p | roomed).sum()), int(cut_r.sum()))

    def _lay_out_chat_rows(self, p_ids: list[list[int]], full_ids: list[list[int]], responses: Sequence[Any],
                           prompt_room: np.ndarray | None) -> TokenizedResponses:
        """:meth:`_lay_out_chat` row by row: what it replaced, kept as its reference
        (tests/test_vectorised_paths.py)."""
        ids, prompt_lengths, cut_p, cut_r = [], [], 0, 0
        heads: dict[int, int] = {}  # rows of one prompt share its list: its head is measured once
        for i, (response, p, full) in enumerate(zip(responses, p_ids, full_ids)):
            if full[:len(p)] == p:
                r, end = full[len(p):], self.turn_end
            else:  # a template whose generation prompt is not a prefix of the conversation
                r, end = self._plain_ids([_as_text(response)])[0] + self.eos, self.eos
            # the end-of-turn marker stays when the response is cut, as the encoders' [SEP] and the decoders' EOS
            # do: a last-token reward is then read at the same token in truncated and whole responses
            end = end if end and r[len(r) - len(end):] == end else []
            r = r[:len(r) - len(end)]
            whole = p
            p, roomed = _fit_prompt(p, None if prompt_room is None else prompt_room[i])
            p, r, a, b = truncate_pair(p, r, self.max_length - len(end))
            # a prompt cut from the left lost the template's start (the BOS token, the user header) that the plain
            # layouts keep: it now keeps that start and the end of the text, in as many tokens as were kept
            if len(p) < len(whole):
                n_head = heads.get(id(whole))
                if n_head is None:
                    n_head = heads[id(whole)] = _shared_length(whole, self.chat_head)
                if len(p) >= n_head:
                    p = whole[:n_head] + whole[len(whole) - (len(p) - n_head):]
            cut_p += a or roomed
            cut_r += b
            ids.append(p + r + end)
            prompt_lengths.append(len(p))
        return TokenizedResponses(ids, np.asarray(prompt_lengths, dtype=np.int64), None, cut_p, cut_r)

    def _encode_chat_rows(self, prompts: Sequence[Any], responses: Sequence[Any],
                          prompt_room: np.ndarray | None, side_name: str = "response") -> TokenizedResponses:
        """:meth:`_encode_chat` rendering every row's prompt and conversation on each call: what it replaced,
        kept as its reference (tests/test_vectorised_paths.py); the layout is the same :meth:`_lay_out_chat`."""
        prompt_messages = [prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
                           for prompt in prompts]
        conversations = [messages + (response if isinstance(response, list) else [
            {"role": "assistant", "content": str(response)}]) for messages, response in zip(prompt_messages, responses)]
        # one tokenizer call for all prompts and one for all conversations (four calls per pair took three times
        # as long); the templates still render one by one, inside the tokenizer
        # a conversation without a prompt (pairs of messages that share none, a response given as the whole
        # conversation) has no prompt tokens: the template of an empty conversation is an error in transformers
        asked = [i for i, messages in enumerate(prompt_messages) if messages]
        prompt_ids: list[list[int]] = [[] for _ in prompt_messages]
        try:
            rendered = _template_ids_batch(self.tokenizer, [prompt_messages[i] for i in asked],
                                           add_generation_prompt=True)
        except Exception as error:
            refuse_unrendered(self.tokenizer, [prompt_messages[i] for i in asked], asked, error)
            raise
        for i, found in zip(asked, rendered):
            prompt_ids[i] = found
        try:
            full_ids = _template_ids_batch(self.tokenizer, conversations, add_generation_prompt=False)
        except Exception as error:
            refuse_unrendered(self.tokenizer, conversations, range(len(conversations)), error, side_name,
                              add_generation_prompt=False)
            raise
        return self._lay_out_chat(prompt_ids, full_ids, responses, prompt_room)

    def encode_pairs(self, frame: pd.DataFrame) -> TokenizedPairs:
        """Tokenize a frame from :func:`load_pairs`; both sides of a pair keep the same prompt tokens."""
        prompts = list(frame["prompt"])
        if self.use_chat_template:
            encode = self._chat_sides(prompts, frame)
        else:
            # plain layouts: each distinct prompt is tokenized once (not once per side and per pass), and each
            # response once, whatever the passes below
            texts = _as_texts(frame["prompt"])
            distinct = list(dict.fromkeys(texts))
            known = dict(zip(distinct, self._plain_ids(distinct)))
            p_ids = list(map(known.__getitem__, texts))
            r_ids = {side: self._plain_ids(_as_texts(frame[side])) for side in ("chosen", "rejected")}

            def encode(side: str, room: np.ndarray | None = None) -> TokenizedResponses:
                return self._lay_out(texts, p_ids, r_ids[side], room)
        chosen = encode("chosen")
        rejected = encode("rejected")
        # a long response cuts more of the prompt than a short one; the two rewards of a pair must read the same
        # prompt, so the side that kept more of it is encoded again with the other side's share (its response
        # gets the room that frees)
        room = np.minimum(chosen.prompt_lengths, rejected.prompt_lengths)
        if (chosen.prompt_lengths > room).any():
            chosen = encode("chosen", room)
        if (rejected.prompt_lengths > room).any():
            rejected = encode("rejected", room)
        self._warn_same_after_cut(frame, chosen, rejected)
        margin = frame["margin"].to_numpy(dtype=np.float32) if "margin" in frame.columns else np.full(
            len(frame), np.nan, dtype=np.float32)
        return TokenizedPairs(
            chosen=chosen,
            rejected=rejected,
            pair_id=frame["pair_id"].astype(str).to_numpy(),
            p_chosen=frame["p_chosen"].to_numpy(dtype=np.float32),
            p_tie=frame["p_tie"].to_numpy(dtype=np.float32),
            weight=frame["weight"].to_numpy(dtype=np.float32),
            margin=margin,
        )

    def _chat_sides(self, prompts: list[Any], frame: pd.DataFrame
                    ) -> Callable[[str, np.ndarray | None], TokenizedResponses]:
        """:meth:`encode_pairs`' encoder of one side through the chat template: the prompts and both sides'
        conversations rendered once (:meth:`_render_chat`), whatever the passes."""
        sides = ("chosen", "rejected")
        responses = {side: list(frame[side]) for side in sides}
        prompt_ids, full_ids = self._render_chat(prompts, [responses[side] for side in sides], sides)
        full = dict(zip(sides, full_ids))

        def encode(side: str, room: np.ndarray | None = None) -> TokenizedResponses:
            return self._lay_out_chat(prompt_ids, full[side], responses[side], room)
        return encode

    def _chat_sides_rows(self, prompts: list[Any], frame: pd.DataFrame
                         ) -> Callable[[str, np.ndarray | None], TokenizedResponses]:
        """:meth:`_chat_sides` rendering each side again on each pass: what it replaced, kept as its reference
        (tests/test_vectorised_paths.py)."""
        def encode(side: str, room: np.ndarray | None = None) -> TokenizedResponses:
            if len(prompts) != len(frame[side]):
                raise AccordError(f"{len(prompts)} prompts for {len(frame[side])} responses")
            return self._encode_chat_rows(prompts, list(frame[side]), room, side)
        return encode

    def _warn_same_after_cut(self, frame: pd.DataFrame, chosen: TokenizedResponses,
                             rejected: TokenizedResponses) -> None:
        """Say how many pairs of two different responses the cut left as one sequence: their rewards are equal and
        their label teaches nothing, without a word (chat messages on a tokenizer without a chat template begin
        with the same 'assistant: ', which a small max_length could leave as all of both responses)."""
        if not chosen.truncated_responses and not rejected.truncated_responses:
            return
        same = [i for i, (a, b) in enumerate(zip(chosen.ids, rejected.ids)) if a == b]
        texts = [(frame["chosen"].iloc[i], frame["rejected"].iloc[i]) for i in same]
        alike = [(a, b) for a, b in texts if _as_text(a) != _as_text(b)]
        if not alike:
            return
        chat = any(isinstance(a, list) or isinstance(b, list) for a, b in alike) and not self.use_chat_template
        why = (" (chat messages are written as 'role: content' text here, the tokenizer having no chat template, "
               "and the role takes room)" if chat else "")
        warnings.warn(SettingWarning("max_length", lambda name: (
            f"{len(alike)} of {len(frame)} pairs of two different responses were cut to the same tokens by "
            f"{name} {self.max_length}{why}: the model cannot tell their sides apart; a larger {name} keeps "
            "them apart")), stacklevel=3)


def _cut_lengths(lp: np.ndarray, lr: np.ndarray, budget: np.ndarray, room: np.ndarray | None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_fit_prompt` then :func:`truncate_pair` over arrays of lengths (prompt ``lp``, response ``lr``, each
    row's ``budget`` and prompt ``room``): whether each prompt was cut to its room, whether the pair cut the prompt
    and the response, and the lengths each keeps (the prompt its last tokens, the response its first)."""
    roomed = np.zeros(len(lp), bool)
    if room is not None:
        roomed = lp > room
        lp = np.where(roomed, np.maximum(room, 0), lp)
    if (budget < 1).any():  # truncate_pair's error, for the first row it meets it on
        truncate_pair([], [], int(budget[np.flatnonzero(budget < 1)[0]]))
    # the response cut first, never below min(its length, budget // 2), then the prompt's start
    over = lp + lr > budget
    keep_r = np.maximum(budget - lp, np.minimum(lr, budget // 2))
    cut_r = over & (keep_r < lr)
    lr_kept = np.where(over, keep_r, lr)
    keep_p = budget - lr_kept
    cut_p = over & (keep_p < lp)
    return roomed, cut_p, cut_r, np.where(cut_p, np.maximum(keep_p, 0), lp), lr_kept


def _fit_prompt(prompt: list[int], room: int | None) -> tuple[list[int], bool]:
    """The last ``room`` tokens of ``prompt`` (its end, next to the response, stays) and whether it was cut."""
    if room is None or len(prompt) <= room:
        return prompt, False
    return (prompt[len(prompt) - room:] if room > 0 else []), True


def chat_template_head(tokenizer: Any) -> list[int]:
    """What a chat template writes before the user's text (e.g. ``<s>``, a system turn, the user header): the
    tokens two probe prompts share. A templated prompt cut from the left keeps it (the pairwise and the step
    encoders alike)."""
    first, second = ([{"role": "user", "content": text}] for text in ("reward model probe", "another probe text"))
    a = _template_ids(tokenizer, first, add_generation_prompt=True)
    b = _template_ids(tokenizer, second, add_generation_prompt=True)
    return a[:_shared_length(a, b)]


def _shared_length(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _find(haystack: list[int], needle: list[int], start: int) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i:i + len(needle)] == needle:
            return i
    return -1


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return messages_text(value)
    return "" if value is None else str(value)


def _as_texts(values: Sequence[Any] | pd.Series) -> list[str]:
    """:func:`_as_text` of every value; a column of texts at C speed, not one call per cell."""
    column = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if len(column) and only_texts(column, missing=False):
        return _texts(column)
    return [_as_text(v) for v in values]


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    out = _input_ids(tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                   tokenize=True))
    return list(map(int, out))  # ints whatever the tokenizer gives, at C speed (not a comprehension's Python loop)


def _input_ids(out: Any) -> Any:
    """The token ids of what ``apply_chat_template(..., tokenize=True)`` returns (a list, or a BatchEncoding)."""
    return out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out


def _template_ids_batch(tokenizer: Any, conversations: Sequence[list[dict[str, str]]],
                        add_generation_prompt: bool) -> list[list[int]]:
    """The chat-template token ids of each conversation, from one batched tokenizer call."""
    if not conversations:
        return []
    if any(len(messages) == 0 for messages in conversations):
        # a batched call reads an empty list as no conversation at all; one call each gives every conversation
        # what the tokenizer makes of it alone (its error, or its template's text), row for row
        return [_template_ids(tokenizer, messages, add_generation_prompt) for messages in conversations]
    out = _input_ids(tokenizer.apply_chat_template(list(conversations), add_generation_prompt=add_generation_prompt,
                                                   tokenize=True))
    return [list(map(int, ids)) for ids in out]


def _chat_messages(value: Any, role: str) -> list:
    """A prompt or response as chat messages: its own list, or one ``role`` turn of its text."""
    return value if isinstance(value, list) else [{"role": role, "content": str(value)}]


def _chat_key(value: Any) -> Any:
    """What the chat template reads of a prompt or response, hashable: the text it becomes, or its messages with
    every value's type (alike keys render alike); messages holding other objects are keyed by the list itself."""
    if not isinstance(value, list):
        return str(value)
    try:
        return "messages", _frozen(value)
    except TypeError:
        return "object", id(value)  # the rows' lists outlive the rendering, so no other list takes this id


def _frozen(value: Any) -> Any:
    """``value`` (lists, dicts and plain scalars) as nested tuples that are equal only where the values render
    alike: floats by their text (``0.0 == -0.0``), bools apart from ints; anything else is a ``TypeError``."""
    kind = type(value)
    if kind is list:
        return kind, tuple(map(_frozen, value))
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise TypeError(kind)
        return kind, tuple((k, _frozen(v)) for k, v in value.items())
    if kind is float:
        return kind, repr(value)
    if kind in _PLAIN:
        return kind, value
    raise TypeError(kind)


_PLAIN = (str, int, bool, type(None))


# ----------------------------------------------------------------------------------------------------------------------
# 3. Batch order
# ----------------------------------------------------------------------------------------------------------------------


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_by_length: bool = True, megabatch: int = 64
) -> list[np.ndarray]:
    """The epoch's batches of pair indices: a seeded permutation, cut into mega-batches of ``megabatch`` batches
    each sorted by length (longest first) and cut into batches; the batch order is then shuffled again.

    A function of ``(seed, epoch)`` only: a resumed run recomputes the same batches and skips the ones it has done.
    The last batch may be short.
    """
    n = len(lengths)
    rng = np.random.default_rng([int(seed), int(epoch)])
    order = rng.permutation(n)
    if not group_by_length:
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    size = batch_size * megabatch
    batches = []
    for start in range(0, n, size):
        chunk = order[start:start + size]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    full = [b for b in batches if len(b) == batch_size]
    short = [b for b in batches if len(b) < batch_size]
    full = [full[i] for i in rng.permutation(len(full))]
    return full + short


# ----------------------------------------------------------------------------------------------------------------------
# 4. Collating
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class PairCollator:
    """Builds the model input for a batch of pairs: its ``2B`` sequences, chosen ones first, in one tensor.

    * padded (``packing=False``): one row per sequence, right-padded to the longest (``attention_mask`` 2-D);
    * packed: sequences placed first-fit-decreasing into rows of ``capacity`` tokens (``whole_batch_row``: all of
      them in one row; by default, with the model's ``hidden_size`` known, the width among 1, 1.25, 1.5 and 2 times
      the batch's longest sequence that costs least with dense attention masks, else the longest sequence),
      position ids restarting at 0 for each sequence and ``segment_ids`` telling which sequence every token belongs
      to (-1: padding at a row's end). Decoders need nothing else (transformers reads the packing from the position
      ids); encoders get a block-diagonal mask from the segment ids in :class:`accord.reward.model.RewardModel`.

    * shared prompt (``share_prompt``, decoders with last-token pooling): a pair whose two sequences start with the
      same prompt tokens becomes one unit ``prompt + chosen response + rejected response``; both responses continue
      the prompt's positions, and ``dense_mask`` (rows x T x T, True = may attend) lets each response see the prompt
      and itself but not the other response, so the prompt is encoded once for both. Units are packed as above.

    ``pool_index[k]`` is the flat index (``row * T + column``) of sequence ``k``'s pooled token (its last real token
    for ``pooling="last"``, its first otherwise) and ``token_seq`` the sequence of every flat position (-1: padding),
    for mean pooling. Label fields are float tensors of length ``B``.
    """

    pad_token_id: int
    packing: bool = False
    pooling: str = "last"
    capacity: int | None = None
    hidden_size: int = 0
    whole_batch_row: bool = False
    pad_to_multiple_of: int | None = None
    share_prompt: bool = False

    def __call__(self, pairs: TokenizedPairs, indices: Sequence[int]) -> dict[str, Any]:
        indices = np.asarray(indices, dtype=np.int64)
        seqs = [pairs.chosen.ids[i] for i in indices] + [pairs.rejected.ids[i] for i in indices]
        types = None
        if pairs.chosen.type_ids is not None:
            types = [pairs.chosen.type_ids[i] for i in indices] + [pairs.rejected.type_ids[i] for i in indices]
        batch = self._pack_shared(pairs, indices) if self.share_prompt else self.sequences(seqs, types)
        batch.update(
            p_chosen=torch.from_numpy(pairs.p_chosen[indices].copy()),
            p_tie=torch.from_numpy(pairs.p_tie[indices].copy()),
            weight=torch.from_numpy(pairs.weight[indices].copy()),
            margin=torch.from_numpy(pairs.margin[indices].copy()),
            n_pairs=len(indices),
        )
        return batch

    def sequences(self, seqs: list[list[int]], types: list[list[int]] | None = None) -> dict[str, Any]:
        """Model inputs for any list of sequences (no labels): ``pool_index[k]`` belongs to ``seqs[k]``."""
        batch = self._pack(seqs, types) if self.packing else self._pad(seqs, types)
        batch["n_tokens"] = int(sum(len(s) for s in seqs))
        return batch

    def _width(self, longest: int) -> int:
        if self.pad_to_multiple_of:
            m = int(self.pad_to_multiple_of)
            return (longest + m - 1) // m * m
        return longest

    def _pad(self, seqs: list[list[int]], types: list[list[int]] | None) -> dict[str, Any]:
        longest = max(len(s) for s in seqs)
        width = self._width(longest)
        n = len(seqs)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        token_types = torch.zeros((n, width), dtype=torch.long) if types is not None else None
        token_seq = torch.full((n, width), -1, dtype=torch.long)
        pool = torch.empty(n, dtype=torch.long)
        for k, s in enumerate(seqs):
            input_ids[k, :len(s)] = torch.as_tensor(s)
            attention[k, :len(s)] = 1
            token_seq[k, :len(s)] = k
            if token_types is not None:
                token_types[k, :len(s)] = torch.as_tensor(types[k])
            pool[k] = k * width + (len(s) - 1 if self.pooling == "last" else 0)
        out = {
            "input_ids": input_ids,
            "attention_mask": attention,
            # (pad_to_multiple_of may widen the rows past the backbone's positions: the padding's restart)
            "position_ids": _padding_positions(width, longest).expand(n, width).contiguous(),
            "pool_index": pool,
            "token_seq": token_seq.view(-1),
        }
        if token_types is not None:
            out["token_type_ids"] = token_types
        return out

    def _bins(self, lengths: list[int]) -> tuple[list[list[int]], int]:
        """The units in each packed row and the row width: first-fit-decreasing into rows of the capacity."""
        longest = max(lengths)
        if self.whole_batch_row:
            return _first_fit_decreasing(lengths, sum(lengths), self._width)
        if self.capacity or not self.hidden_size:
            return _first_fit_decreasing(lengths, max(self.capacity or 0, longest), self._width)
        # a wider row leaves less padding at row ends but makes the dense attention of every row dearer: per token,
        # the linear layers cost ~24 h^2 and attention ~4 h C multiply-adds, so a row of width C costs ~C (1 + C / 6h)
        best: tuple[float, list[list[int]], int] | None = None
        for capacity in sorted({longest, -(-5 * longest // 4), -(-3 * longest // 2), 2 * longest}):
            rows, width = _first_fit_decreasing(lengths, capacity, self._width)
            cost = len(rows) * width * (1.0 + width / (6.0 * self.hidden_size))
            if best is None or cost < best[0]:
                best = (cost, rows, width)
        return best[1], best[2]

    def _pack(self, seqs: list[list[int]], types: list[list[int]] | None) -> dict[str, Any]:
        lengths = [len(s) for s in seqs]
        longest = max(lengths)
        rows, width = self._bins(lengths)
        n_rows = len(rows)
        input_ids = torch.full((n_rows, width), self.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((n_rows, width), dtype=torch.long)
        segment_ids = torch.full((n_rows, width), -1, dtype=torch.long)
        token_types = torch.zeros((n_rows, width), dtype=torch.long) if types is not None else None
        pool = torch.empty(len(seqs), dtype=torch.long)
        for r, members in enumerate(rows):
            at = 0
            for k in members:
                length = lengths[k]
                input_ids[r, at:at + length] = torch.as_tensor(seqs[k])
                position_ids[r, at:at + length] = torch.arange(length)
                segment_ids[r, at:at + length] = k
                if token_types is not None:
                    token_types[r, at:at + length] = torch.as_tensor(types[k])
                pool[k] = r * width + at + (length - 1 if self.pooling == "last" else 0)
                at += length
            if at < width:  # padding: sequences of their own, positions restarting at 0 within the longest's
                position_ids[r, at:] = _padding_positions(width - at, longest)
        out = {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "segment_ids": segment_ids,
            "pool_index": pool,
            "token_seq": segment_ids.view(-1).clone(),
        }
        if token_types is not None:
            out["token_type_ids"] = token_types
        return out

    def _pack_shared(self, pairs: TokenizedPairs, indices: np.ndarray) -> dict[str, Any]:
        if self.pooling != "last":
            raise AccordError("share_prompt needs last-token pooling (a decoder)")
        n = len(indices)
        units: list[tuple[list[int], list[int], list[int], list[tuple[int, int]]]] = []  # ids, positions, branch, pools
        for j, i in enumerate(indices):
            c, r = pairs.chosen.ids[i], pairs.rejected.ids[i]
            pc, pr = int(pairs.chosen.prompt_lengths[i]), int(pairs.rejected.prompt_lengths[i])
            if pc > 0 and pc == pr and c[:pc] == r[:pr]:
                tail = r[pr:]
                ids = c + tail
                positions = list(range(len(c))) + list(range(pr, len(r)))
                branch = [0] * pc + [1] * (len(c) - pc) + [2] * len(tail)
                pool_r = len(c) + len(tail) - 1 if tail else pc - 1
                units.append((ids, positions, branch, [(j, len(c) - 1), (n + j, pool_r)]))
            else:  # nothing to share: two ordinary sequences
                units.append((c, list(range(len(c))), [1] * len(c), [(j, len(c) - 1)]))
                units.append((r, list(range(len(r))), [1] * len(r), [(n + j, len(r) - 1)]))
        rows, width = self._bins([len(u[0]) for u in units])
        longest = max(u[1][-1] for u in units) + 1  # the positions a unit reaches (both sides continue the prompt's)
        n_rows = len(rows)
        input_ids = torch.full((n_rows, width), self.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((n_rows, width), dtype=torch.long)
        segment = torch.full((n_rows, width), -1, dtype=torch.long)
        branch = torch.zeros((n_rows, width), dtype=torch.long)
        pool = torch.empty(2 * n, dtype=torch.long)
        n_tokens = 0
        for row, members in enumerate(rows):
            at = 0
            for u in members:
                ids, positions, branches, pools = units[u]
                length = len(ids)
                input_ids[row, at:at + length] = torch.as_tensor(ids)
                position_ids[row, at:at + length] = torch.as_tensor(positions)
                segment[row, at:at + length] = u
                branch[row, at:at + length] = torch.as_tensor(branches)
                for k, offset in pools:
                    pool[k] = row * width + at + offset
                at += length
                n_tokens += length
            if at < width:
                position_ids[row, at:] = _padding_positions(width - at, longest)
        same_unit = segment[:, :, None] == segment[:, None, :]
        visible = (branch[:, None, :] == 0) | (branch[:, None, :] == branch[:, :, None])
        causal = position_ids[:, None, :] <= position_ids[:, :, None]
        return {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "dense_mask": same_unit & visible & causal,
            "pool_index": pool,
            "n_tokens": n_tokens,
        }


def _padding_positions(n: int, longest: int) -> torch.Tensor:
    """Positions of ``n`` tokens of a row's end (a padded row: all of it): 0, 1, ... restarting every ``longest``
    (the batch's longest sequence, whose positions fit the backbone), so a sequence's own positions are unchanged.
    Was ``0 .. n - 1``: a row wider than a BERT-style backbone's position table (``packing_capacity`` 1024 for
    MiniLM's 512, or ``pad_to_multiple_of`` rounding past it) crashed with 'index out of range' when a packed row
    was less than half full, or always. Never read: no real token attends to padding."""
    return torch.arange(n) % max(int(longest), 1)


def _first_fit_decreasing(lengths: list[int], capacity: int,
                          width_of: Any = lambda longest: longest) -> tuple[list[list[int]], int]:
    """Units (by index) placed longest first into the first row with room; the rows and their width (the fullest
    row's tokens, passed through ``width_of``)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for k in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, free in enumerate(room):
            if free >= lengths[k]:
                rows[r].append(k)
                room[r] -= lengths[k]
                break
        else:
            rows.append([k])
            room.append(capacity - lengths[k])
    return rows, width_of(max(capacity - free for free in room))
