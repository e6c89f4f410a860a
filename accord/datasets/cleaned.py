"""The cleaned preference dataset: the file that carries soft labels from aggregation to a reward-model trainer.

Columns (Hugging Face preference layout plus accord's soft label and weight):

==============  ==========================================================================================
``pair_id``     the pair's id in the judgments table
``prompt``      the prompt (empty string when the source has none)
``chosen``      the response more likely preferred (side with the larger posterior probability)
``rejected``    the other response
``p_chosen``    P(chosen strictly better than rejected)
``p_tie``       P(tie); 0 where the data has no ties
``uncertainty`` posterior standard deviation of the soft label (NaN when the method has none)
``weight``      training weight in [0, 1]: ``1 - 2 * uncertainty`` (the largest possible standard deviation of
                a probability is 0.5), 1 where the method gives no uncertainty
``n_judgments`` number of judgments behind the pair
==============  ==========================================================================================

``prompt``, ``chosen`` and ``rejected`` are texts (a response given as a number, JSON's ``4``, is written as its
text), the same in both formats, or chat messages (lists of ``{"role", "content"}``), the prompt then messages too
(:func:`conversational_prompts`). Optional columns written when known: ``chosen_id``, ``rejected_id`` (response
ids), ``chosen_side`` (``"A"`` or ``"B"``), per-group probabilities ``p_chosen_<group>`` and disagreement shares;
from graded judgments ``margin`` (the expected strength towards the chosen side, on the label scale: what
``--loss margin`` reads) and the ordinal model's ``grade_<k>`` probabilities in the chosen side's view.

Provenance (method, package version, source, time; a filter of :func:`accord.aggregate.build_cleaned` used, with
``pairs_left_out``) lives in the Parquet schema metadata under the key ``accord``;
for JSONL, which has no metadata, in a hidden sidecar ``.<file>.meta.json`` (hidden so that
``datasets.load_dataset(folder)`` does not read it as data). Files load with ``pandas.read_parquet`` /
``pandas.read_json(lines=True, dtype=False)`` (without ``dtype=False`` pandas reads an id "007" as 7), with
``datasets.load_dataset("parquet", data_files=...)`` and from their folder.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.io import COMPRESSION_SUFFIXES, JSON_DECIMALS, atomic_path, index_as_columns, infer_format
from accord.datasets.schema import codes_comparable, input_row

CLEANED_COLUMNS: tuple[str, ...] = (
    "pair_id",
    "prompt",
    "chosen",
    "rejected",
    "p_chosen",
    "p_tie",
    "uncertainty",
    "weight",
    "n_judgments",
)
METADATA_KEY = b"accord"
FORMATS = ("parquet", "jsonl")


def weight_from_uncertainty(uncertainty: pd.Series | np.ndarray) -> np.ndarray:
    """Training weight ``1 - 2 * sd`` clipped to [0, 1]; 1 where the uncertainty is unknown (NaN)."""
    sd = np.asarray(uncertainty, dtype=float)
    weight = np.clip(1.0 - 2.0 * sd, 0.0, 1.0)
    return np.where(np.isnan(sd), 1.0, weight)


def item_texts(judgments: pd.DataFrame, key: str, columns: Sequence[str], what: str) -> pd.DataFrame:
    """The ``columns`` of ``judgments`` that it has, one row per ``key`` value (the index, in order of first
    appearance): each the first value present among the item's judgments (a judgment without the text does not
    lose the item its text). An item (named ``what`` in the message) shown with two different values of a column is
    refused, naming the column, the item and the two rows: its first row's text was taken without a word (the
    multi-attribute datasets; the pairwise one refused it without naming the rows)."""
    present = [c for c in columns if c in judgments.columns]
    table = judgments[[key, *present]].reset_index(drop=True)
    fast = _item_texts_by_codes(table, key, present)
    if fast is not None:
        return fast
    for column in present:
        # chat messages read from Parquet are numpy arrays, which compared element by element ('truth value of an
        # array ... is ambiguous'): as the lists they hold (a column of texts, told at C speed, is left as it is)
        if table[column].dtype == object and pd.api.types.infer_dtype(table[column], skipna=True) != "string":
            table[column] = table[column].map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)
    grouped = table.groupby(key, sort=False)
    for column in present:
        values = table[column]
        first = grouped[column].transform("first")
        # cells compared only where both are present: pd.NA (a missing text of an object column) answers != with
        # NA, whose truth value is an error
        both = (values.notna() & first.notna()).to_numpy()
        differs = np.zeros(len(values), dtype=bool)
        differs[both] = first.to_numpy()[both] != values.to_numpy()[both]
        if differs.any():
            row = int(np.flatnonzero(differs)[0])
            item = table[key].iloc[row]
            earlier = int(np.flatnonzero((table[key] == item).to_numpy() & values.notna().to_numpy())[0])
            # the rows of the user's table (a duplicate policy may have dropped rows before these)
            raise AccordError(f"column '{column}': {what} {item!r} is shown with two different values "
                              f"({values.iloc[earlier]!r} in row {input_row(judgments, earlier)}, "
                              f"{values.iloc[row]!r} in row {input_row(judgments, row)})")
    return grouped[present].first() if present else pd.DataFrame(index=pd.Index(table[key].unique(), name=key))


def _item_texts_by_codes(table: pd.DataFrame, key: str, present: list[str]) -> pd.DataFrame | None:
    """:func:`item_texts` where every column compares by codes (:func:`~accord.datasets.schema.codes_comparable`)
    and no item shows two values: each item's first present value found from integer codes, at C speed. Arrow-backed text columns took
    seconds at 600k judgments through ``transform("first")`` and an object comparison of every cell. ``None``
    where it cannot say (a column of another kind, a missing or categorical key, two values of one item: the
    per-cell path then gives the result or names the rows)."""
    if not present or isinstance(table[key].dtype, pd.CategoricalDtype) or table[key].isna().any():
        return None
    if not all(codes_comparable(table[column]) for column in present):
        return None
    grouped = table.groupby(key, sort=False)
    index = grouped.size().index  # the items in order of first appearance, as groupby names them
    item = grouped.ngroup().to_numpy()
    out = {}
    for column in present:
        values = table[column]
        rows = np.flatnonzero(values.notna().to_numpy())
        # (a column without a gap is coded as it is: taking its present cells copied every text)
        codes = pd.factorize(values if len(rows) == len(values) else values.iloc[rows])[0]
        first_item, first_at = np.unique(item[rows], return_index=True)  # each item's first present value
        first = np.full(len(index), -1, dtype=np.int64)
        first[first_item] = first_at
        if (codes != codes[first[item[rows]]]).any():
            return None
        chosen = np.where(first >= 0, rows[np.maximum(first, 0)] if len(rows) else 0, -1)
        taken = values.array.take(chosen, allow_fill=True)
        if values.dtype == object:  # groupby's first of an object column without a value is None, not NaN
            taken = np.where(chosen >= 0, np.asarray(taken, dtype=object), None)
        out[column] = pd.Series(taken, index=index, dtype=values.dtype, name=column)
    return pd.DataFrame(out, index=index)


def as_text(values: pd.Series | np.ndarray, missing: str | None = None) -> np.ndarray:
    """Text cells as Python strings: a number (JSON's ``4`` as a response) becomes its text and bytes are decoded
    as UTF-8, so that ``prompt``/``chosen``/``rejected`` are string columns in Parquet as in JSON Lines (whose
    reader reads them as text); a Parquet file held an int64 ``chosen`` column, or refused a column mixing texts and
    numbers after the fit. Missing cells become ``missing`` when it is given (a missing prompt is no prompt, ``""``),
    else stay missing; lists (chat messages) stay as they are."""
    cells = pd.Series(np.asarray(values, dtype=object), dtype=object)
    if missing is not None:
        cells = cells.where(cells.notna(), missing)
    if only_texts(cells):
        return cells.to_numpy()

    def text(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, (numbers.Number, np.generic)) and not pd.isna(value):
            return str(value.item() if isinstance(value, np.generic) else value)
        return value

    return cells.map(text).to_numpy()


def only_texts(values: pd.Series, missing: bool = True) -> bool:
    """Whether every cell of ``values`` is a text (cells without a value allowed with ``missing``), told at C speed:
    such a column holds no chat messages, numbers or other objects, so the checks and conversions made one cell at a
    time have nothing to do."""
    if pd.api.types.infer_dtype(values, skipna=True) not in (("string", "empty") if missing else ("string",)):
        return False
    return missing or not bool(pd.isna(values).any())


def is_messages(value: Any) -> bool:
    """Whether a cell holds chat messages: a non-empty list (or the numpy array Parquet reads) of ``{"role",
    "content"}`` dicts."""
    if isinstance(value, np.ndarray):
        value = list(value) if value.ndim == 1 else None  # a 0-d array holds one value (list() of it: TypeError)
    return isinstance(value, list) and len(value) > 0 and isinstance(value[0], dict) and (
        "content" in value[0] or "tool_calls" in value[0])


def messages_text(messages: Any) -> str:
    """Chat messages as the text a tokenizer without a chat template reads them: one ``role: content`` line per
    message (:class:`accord.reward.data.PairEncoder`'s plain layout); a content given as a list of parts (the
    OpenAI / Hugging Face multimodal layout) is its text parts, one line each (:func:`content_text`); a tool call
    without a content is its calls' JSON text."""
    return "\n".join(f"{m['role']}: {_message_text(m)}" for m in messages)


def _message_text(message: dict) -> str:
    """What :func:`messages_text` writes of a message after its role."""
    if message.get("content") is None and _calls_tools(message):
        return json.dumps(written_messages(message["tool_calls"]), ensure_ascii=False, default=str)
    return content_text(message["content"])


def _calls_tools(message: dict) -> bool:
    """Whether a message carries tool calls (a non-empty ``tool_calls`` list, or the numpy array Parquet reads)."""
    calls = message.get("tool_calls")
    return isinstance(calls, (list, np.ndarray)) and len(calls) > 0


def readable_message(message: Any) -> bool:
    """Whether a chat message is one accord reads, on the pairwise and the step paths alike: a dict with a text
    ``role`` and a content :func:`text_content` reads, or no content (null) where it calls tools (the OpenAI /
    Hugging Face layout of a tool call, which ``apply_chat_template`` takes; it was refused)."""
    return (isinstance(message, dict) and isinstance(message.get("role"), str)
            and (text_content(message.get("content")) or (message.get("content") is None and _calls_tools(message))))


def content_text(content: Any) -> str:
    """A message's content as text: a text as it is; a list of parts (``[{"type": "text", "text": ...}]``, or the
    numpy array Parquet reads) as its text parts in order, one line each (their Python repr was written).
    :func:`check_messages` refuses a part that is not text before this reads it."""
    if isinstance(content, np.ndarray):
        content = list(content) if content.ndim == 1 else content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "\n".join(str(p.get("text", "")) for p in content)
    return str(content)


def non_text_part(messages: Any) -> str | None:
    """The type of the first part of ``messages`` (a cell: a list of messages, one message alone, or anything
    else) that is not text, in a content given as a list of parts (an image: accord reads text only); else None."""
    if isinstance(messages, dict):
        messages = [messages]
    if isinstance(messages, np.ndarray):
        messages = list(messages) if messages.ndim == 1 else None
    if not isinstance(messages, list):
        return None
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, np.ndarray):
            content = list(content) if content.ndim == 1 else None
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                if kind != "text":
                    return str(kind)
    return None


def text_content(content: Any) -> bool:
    """Whether a message's content is one accord reads, on the pairwise and the step paths alike: a text, or a
    non-empty list (Parquet: array) of parts whose text parts each hold a text (a part of another type is
    :func:`non_text_part`'s, refused by name). A step prompt's empty list of parts or text part without a text
    (null, a number) was read as "" or the number's text where a pair's was refused."""
    if isinstance(content, np.ndarray):
        content = list(content) if content.ndim == 1 else None
    if isinstance(content, list):
        return len(content) > 0 and all(isinstance(p, dict) and (p.get("type") != "text"
                                                                  or isinstance(p.get("text"), str)) for p in content)
    return isinstance(content, str)


def broken_messages(cells: pd.Series) -> np.ndarray:
    """Which cells are chat messages :func:`messages_text` cannot render: a dict, or a list (or the numpy array
    Parquet reads) holding a dict, yet not every entry a dict with a text ``role`` and a content
    :func:`text_content` reads (as the pairwise path checks them: a null content was rendered "user: None", a null
    role "None: ...", and Parquet fills a message's missing keys with null)."""
    def broken(value: Any) -> bool:
        if isinstance(value, dict):  # one message alone (a single turn), as chat_messages reads it
            value = [value]
        if isinstance(value, np.ndarray):
            value = list(value) if value.ndim == 1 else None
        return (isinstance(value, list) and any(isinstance(m, dict) for m in value)
                and not all(readable_message(m) for m in value))

    return np.zeros(len(cells), dtype=bool) if only_texts(cells) else cells.map(broken).to_numpy(dtype=bool)


def check_messages(cells: pd.Series, source: str | None = None) -> None:
    """One error naming the row of the first cell of ``cells`` (a ``prompt`` column) that is chat messages without
    a ``role`` or a ``content`` (:func:`broken_messages`): rendered as text, they were Python's KeyError or
    TypeError."""
    broken = broken_messages(cells)
    if broken.any():
        row = int(np.flatnonzero(broken)[0])
        raise ValidationError("chat messages must each be a {'role': text, 'content': text} dict", source=source,
                              column=str(cells.name), row=row, value=cells.iloc[row])
    if only_texts(cells):
        return
    kinds = cells.map(non_text_part)
    other = kinds.notna().to_numpy()
    if other.any():  # an image's URL or bytes would be trained on as text
        row = int(np.flatnonzero(other)[0])
        raise ValidationError(f"a chat message holds a {kinds.iloc[row]!r} part: accord reads text only (give the "
                              "content as text, or as parts of type 'text')", source=source,
                              column=str(cells.name), row=row)


def chat_messages(value: Any) -> list | None:
    """A cell's chat messages as the chat template reads them, the one rule of the pairwise and the step paths
    (training, evaluation and scoring): as Hugging Face's ``apply_chat_template`` takes them, as written, every key
    kept (``name``, ``tool_calls``, ``tool_call_id``...: what a template does with a key is the template's business;
    the pairwise path kept ``role`` and ``content`` alone, so one conversation was two texts on the two tasks).
    Parquet's lists (numpy arrays) are lists and the keys it fills with None are dropped (:func:`written_messages`),
    one message dict alone is a list of one (a single turn), and a content of text parts is their text
    (:func:`content_text`: a text-only chat template prints a list as its Python repr). ``[]`` for an empty list (no
    prompt), ``None`` for a cell that holds no messages (a text, a missing value)."""
    value = written_messages(value)
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return [{**m, "content": content_text(m["content"])} if isinstance(m.get("content"), list) else m
                for m in value]
    return None


def step_prompts(prompts: pd.Series, source: str | None = None) -> np.ndarray:
    """The prompts of a step dataset as :func:`render_prompts` reads them, checked: chat messages kept as lists of
    message dicts (one dict alone a list of one, Parquet's arrays lists), so that the step encoder renders them with
    its tokenizer's chat template; texts as texts; a missing prompt as no prompt (``""``). Messages without a role or
    a content are one error naming ``source`` and the row (:func:`check_messages`)."""
    cells = prompts.astype(object).reset_index(drop=True)
    check_messages(cells.rename("prompt"), source)
    if only_texts(cells):  # told at C speed: the cell-by-cell look took 2 s of 3 at 1M solutions
        return cells.where(cells.notna(), "").to_numpy()

    def cell(value: Any) -> Any:
        messages = chat_messages(value)
        if messages is not None:
            return messages if messages else ""
        return "" if _no_value(value) else str(value)

    out = np.empty(len(cells), dtype=object)
    out[:] = [cell(v) for v in cells]
    return out


def render_prompts(prompts: Sequence[Any] | pd.Series, tokenizer: Any = None) -> list[str]:
    """The one rendering of step prompts as the text the step encoder tokenizes (training, evaluation and scoring,
    of a stepwise table or a cleaned step dataset alike, which keeps the messages): chat messages
    (:func:`chat_messages`) through ``tokenizer``'s chat template with the generation prompt (a last turn that is
    the assistant's continued: :func:`prompt_rendering`), as TRL renders a prompt, when it has one; else one
    ``role: content`` line per message (:func:`messages_text`). A text stays as it is, a missing prompt or an empty
    list is no prompt. (Messages were tokenized as their Python repr.)"""
    return rendered_prompts(prompts, tokenizer)[0]


def rendered_prompts(prompts: Sequence[Any] | pd.Series, tokenizer: Any = None) -> tuple[list[str], np.ndarray]:
    """:func:`render_prompts`' texts, and which of them the chat template wrote: such a text holds the template's
    own special tokens (a ``{{ bos_token }}`` among them, or none), so a tokenizer's start token is not added before
    it, as the pairwise encoder tokenizes the template's output as it is."""
    cells = prompts if isinstance(prompts, pd.Series) else pd.Series(list(prompts), dtype=object)
    templated = np.zeros(len(cells), dtype=bool)
    if only_texts(cells):
        return cells.where(cells.notna(), "").astype(str).tolist(), templated
    messages = [chat_messages(v) for v in cells]
    texts = ["" if m is not None or _no_value(v) else str(v) for v, m in zip(cells, messages)]
    chat = [i for i, m in enumerate(messages) if m]
    if not chat:
        return texts, templated
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        templated[chat] = True
        # each distinct conversation rendered once (a problem's prompt is shared by its solutions)
        keys = [json.dumps(messages[i], sort_keys=True, default=str) for i in chat]
        distinct = dict(zip(keys, (messages[i] for i in chat)))
        known: dict[str, str] = {}
        for opened in (False, True):  # one batched call for the prompts of each rendering
            group = {key: m for key, m in distinct.items() if _opened(m) is opened}
            if not group:
                continue
            try:
                rendered = tokenizer.apply_chat_template(list(group.values()), tokenize=False,
                                                         **prompt_rendering(next(iter(group.values()))))
            except Exception as error:  # jinja's TemplateError of a template that refuses one (a system turn)
                refuse_unrendered(tokenizer, [messages[i] for i in chat], chat, error, continue_opened=True)
                raise
            known.update(zip(group, rendered))
        for i, key in zip(chat, keys):
            texts[i] = known[key]
    else:
        for i in chat:
            texts[i] = messages_text(messages[i])
    return texts, templated


def _opened(messages: list) -> bool:
    """Whether a prompt's last message is the assistant's text (a turn its continuation goes on; a tool call
    without a content waits for the tool's answer, not for more of it)."""
    last = messages[-1] if messages else None
    return isinstance(last, dict) and last.get("role") == "assistant" and last.get("content") is not None


def prompt_rendering(messages: list) -> dict[str, bool]:
    """How the chat template renders a step prompt of chat messages, as TRL renders a prompt: one whose last turn
    is the assistant's is continued (``continue_final_message``: the steps go on with that turn; it was closed and
    a new empty assistant turn opened before them), any other gets the generation prompt."""
    if _opened(messages):
        return {"add_generation_prompt": False, "continue_final_message": True}
    return {"add_generation_prompt": True}


def refuse_unrendered(tokenizer: Any, conversations: Sequence[list], rows: Sequence[int], error: Exception,
                      columns: Sequence[str] | str = "prompt", add_generation_prompt: bool = True,
                      continue_opened: bool = False) -> None:
    """One error naming the row (and its column, one for all or one per conversation) of the first conversation the
    tokenizer's chat template refuses alone, and why (was the template's traceback, e.g. jinja's "TemplateError:
    System role not supported", from `accord train`): the step prompts' rendering (``continue_opened``: each as
    :func:`prompt_rendering` renders it) and the pairwise encoder's. Returns when none does alone (the batched
    call's error is then not the data's)."""
    names = [columns] * len(rows) if isinstance(columns, str) else columns
    for row, column, conversation in zip(rows, names, conversations):
        how = (prompt_rendering(conversation) if continue_opened
               else {"add_generation_prompt": add_generation_prompt})
        try:
            tokenizer.apply_chat_template(conversation, tokenize=False, **how)
        except Exception as alone:
            why = (str(alone).splitlines() or [type(alone).__name__])[0]
            raise ValidationError(f"the tokenizer's chat template cannot write these chat messages ({why}); give "
                                  f"the {column} as messages it accepts or as text, or train with use_chat_template "
                                  "off", column=column, row=row, value=conversation) from error


def _no_value(value: Any) -> bool:
    """Whether a cell that holds no messages is missing (None, NaN, pd.NA; pd.isna of a list is an array)."""
    return not isinstance(value, (list, tuple, dict, np.ndarray)) and bool(pd.isna(value))


def cleaned_step_prompts(prompts: pd.Series, source: str | None = None) -> np.ndarray:
    """The prompts of a step dataset as the cleaned step dataset holds them: as :func:`step_prompts` reads them
    (chat messages kept as lists of message dicts, so that training, evaluation and scoring each render them with the
    tokenizer's chat template through :func:`render_prompts`, as they render a stepwise table's; they were written
    as ``role: content`` lines, another text than a chat-template backbone reads of the same messages elsewhere).
    A column of texts stays texts; beside messages (one Parquet column holds one type) a text prompt is the user's
    turn and no prompt ``[]``, as the pairwise cleaned dataset writes a conversational prompt."""
    cells = step_prompts(prompts, source)
    if not any(isinstance(v, list) for v in cells):
        return cells
    out = np.empty(len(cells), dtype=object)
    out[:] = [v if isinstance(v, list) else [{"role": "user", "content": v}] if v else [] for v in cells]
    return out


def split_shared_messages(chosen: Any, rejected: Any) -> tuple[list, list, list]:
    """The leading messages two conversations share (the implicit prompt; each side keeps its last message), and
    the rest of each."""
    chosen, rejected = list(chosen), list(rejected)
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and dict(chosen[n]) == dict(rejected[n]):
        n += 1
    return chosen[:n], chosen[n:], rejected[n:]


def conversational_prompts(prompts: Sequence[Any], chosen: Sequence[Any],
                           rejected: Sequence[Any]) -> tuple[list, list, list]:
    """Pairs whose responses are chat messages in the conversational layout with an explicit prompt, the prompt a
    list of messages too: TRL's ``RewardTrainer`` adds prompt and response, and the text prompt beside messages (the
    ``""`` of a pair without one) failed there ('can only concatenate str (not "list") to str'). A prompt given as
    messages stays; else the messages both sides start with are the prompt (as TRL's ``extract_prompt`` and accord's
    trainer read them; a text prompt beside whole conversations repeats their first turn), else the text prompt is
    the user's turn (as accord's trainer reads it), else there is none (``[]``: TRL's ``apply_chat_template`` and
    ``is_conversational`` read an explicit prompt's messages and fail on it; the README shows the map to TRL's
    implicit-prompt layout). Pairs of texts stay as they are."""
    out: tuple[list, list, list] = ([], [], [])
    for prompt, c, r in zip(prompts, chosen, rejected):
        parts = (prompt, c, r)
        if is_messages(c) and is_messages(r) and not is_messages(prompt):
            shared, c_rest, r_rest = split_shared_messages(c, r)
            text = "" if prompt is None or (isinstance(prompt, float) and np.isnan(prompt)) else str(prompt)
            turn = [{"role": "user", "content": text}] if text else []
            parts = (shared, c_rest, r_rest) if shared else (turn, list(c), list(r))
        for column, part in zip(out, parts):
            column.append(part)
    return out


def cleaned_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """``"parquet"`` or ``"jsonl"``: ``fmt`` when given (for a name whose suffix says no format; one that says the
    other format is refused, as its reader would refuse the file), else from the suffix (a cleaned dataset named
    ``.json`` holds JSON Lines)."""
    suffix = Path(path).suffix.lower()
    try:
        table_format = infer_format(path)
    except ValidationError:
        table_format = None
    if fmt is not None:
        if fmt not in FORMATS:
            raise AccordError(f"unknown cleaned-dataset format '{fmt}' (use one of {FORMATS})")
        named = {"parquet": "parquet", "jsonl": "jsonl", "json": "jsonl"}.get(table_format or "")
        if named is not None and named != fmt:
            raise AccordError(f"file {path}: format '{fmt}' but the suffix '{suffix}' says {named}")
        return fmt
    if suffix in COMPRESSION_SUFFIXES or table_format not in ("parquet", "jsonl", "json"):
        raise AccordError(f"file {path}: cannot tell the format from the suffix '{suffix}' (a cleaned dataset is "
                          ".parquet or .jsonl)")
    return "jsonl" if table_format == "json" else table_format


def check_cleaned(frame: pd.DataFrame, source: str | None = None) -> None:
    """Raise :class:`ValidationError` when ``frame`` is not a cleaned preference dataset."""
    for column in CLEANED_COLUMNS:
        if column not in frame.columns:
            raise ValidationError("missing required column of the cleaned dataset", source=source, column=column)
    if len(frame) == 0:
        raise ValidationError("the cleaned dataset is empty", source=source)
    for column in ("p_chosen", "p_tie", "weight"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < 0) | (values > 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError(
                "must be a probability in [0, 1]", source=source, column=column, row=row, value=frame[column].iloc[row]
            )
    # the posterior sd of a probability, or NaN where the method gives none: a negative, infinite or text value
    # (read as "none") was written and read without a word. No upper bound: the sd of a few draws (over n - 1) can
    # pass 0.5 (the weight is then 0)
    values = pd.to_numeric(frame["uncertainty"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = (np.isnan(values) & frame["uncertainty"].notna().to_numpy()) | np.isinf(values) | (values < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError("must be a standard deviation, a finite number >= 0 (or missing: none)", source=source,
                              column="uncertainty", row=row, value=frame["uncertainty"].iloc[row])
    p_chosen = pd.to_numeric(frame["p_chosen"]).to_numpy(dtype=float)
    over = p_chosen + pd.to_numeric(frame["p_tie"]).to_numpy(dtype=float) > 1 + 1e-6
    if over.any():
        row = int(np.flatnonzero(over)[0])
        raise ValidationError("p_chosen + p_tie exceeds 1", source=source, column="p_tie", row=row)
    for column in ("chosen", "rejected"):
        missing = frame[column].isna()
        if missing.any():
            row = int(np.flatnonzero(missing.to_numpy())[0])
            raise ValidationError("missing response text", source=source, column=column, row=row)


def write_cleaned(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    provenance: dict[str, Any] | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a cleaned preference dataset atomically (Parquet by default from the suffix, or JSONL).

    The provenance recorded is the package version and time, what ``frame.attrs["provenance"]`` holds (the method
    and source that :func:`accord.aggregate.build_cleaned` copies from the soft labels and the judgments), and
    ``provenance``, whose keys win.
    """
    check_cleaned(frame)
    return write_with_provenance(frame, path, {**frame.attrs.get("provenance", {}), **(provenance or {})}, fmt)


def write_with_provenance(frame: pd.DataFrame, path: str | os.PathLike, provenance: dict[str, Any],
                          fmt: str | None = None, float_lists: tuple[str, ...] = ()) -> Path:
    """Write ``frame`` atomically as Parquet (the provenance in the schema's metadata) or JSON Lines (the provenance
    in a hidden ``.<file>.meta.json`` sidecar): the one writer of every cleaned layout (pairs, steps, attributes).
    The columns ``float_lists`` are lists of floats in Parquet whatever they hold."""
    fmt = cleaned_format(path, fmt)
    target = Path(path).expanduser()
    if target.suffix.lower() in COMPRESSION_SUFFIXES:  # only with fmt: the suffix alone is refused above
        # the file was written uncompressed under the compressed name, which pandas then failed to decompress
        raise AccordError(f"file {target}: a cleaned dataset is written uncompressed (Parquet compresses its "
                          f"columns itself); a name ending in '{target.suffix}' says it is compressed: name it "
                          ".parquet or .jsonl")
    meta = _provenance(provenance)
    frame = frame.reset_index(drop=True)
    frame.attrs = {}
    # Arrow-backed nested columns (a step dataset's lists read with dtype_backend="pyarrow") as Python lists: pandas
    # records such a column's dtype in the file as 'list<element: string>[pyarrow]', which neither it nor pyarrow
    # reads back ('data type ... not understood')
    nested = [column for column, dtype in frame.dtypes.items()
              if isinstance(dtype, pd.ArrowDtype) and pa.types.is_nested(dtype.pyarrow_dtype)]
    if nested:
        frame = frame.astype(dict.fromkeys(nested, object))
    if fmt == "parquet":
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:  # e.g. a column mixing lists and texts
            reason = "; ".join(str(part) for part in reversed(err.args))
            raise AccordError(f"file {target}: cannot write as Parquet: {reason}") from err
        # a list column of NaN only (a step dataset's label_uncertainty from a method without one) is list<null> to
        # Arrow: Hugging Face datasets read it as None, not floats, and refused to load it beside another method's
        # file ("Couldn't cast array of type double to null")
        for column in float_lists:
            i = table.schema.get_field_index(column)
            table = table.set_column(i, column, table.column(i).cast(pa.list_(pa.float64())))
        metadata = dict(table.schema.metadata or {})
        metadata[METADATA_KEY] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(metadata)
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp)
    else:
        sidecar = sidecar_path(target)
        with atomic_path(target) as tmp, atomic_path(sidecar) as tmp_meta:
            # 15 decimals, the most pandas writes (its default 10 read 1/3 back as 0.3333333333 and a p_tie of 3e-11
            # as 0): the file then matches its Parquet twin to 1e-15
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False, double_precision=JSON_DECIMALS)
            tmp_meta.write_text(json.dumps(meta, indent=2))
        # the visible sidecar of an earlier accord would keep the old provenance beside the new file and keep
        # Hugging Face's folder loader failing on it
        legacy_sidecar_path(target).unlink(missing_ok=True)
    return target


def sidecar_path(target: Path) -> Path:
    """Where a JSON Lines file's provenance is written: ``.<file>.meta.json`` beside it. Hidden, because
    ``datasets.load_dataset(folder)`` reads every visible file of the folder as data (a ``<file>.meta.json`` beside
    ``train.jsonl`` made it fail: the sidecar has another schema) and skips names starting with a dot."""
    return target.with_name(f".{target.name}.meta.json")


def legacy_sidecar_path(target: Path) -> Path:
    """The sidecar's name before it was hidden, ``<file>.meta.json``: still read, so earlier files keep their
    provenance."""
    return Path(str(target) + ".meta.json")


def read_cleaned(path: str | os.PathLike, fmt: str | None = None) -> pd.DataFrame:
    """Read a cleaned preference dataset; its provenance is in ``frame.attrs["provenance"]``."""
    # the texts stay text; pair_id keeps its JSON type, as Parquet keeps the table's (7 stays a number, "007" text)
    frame, meta = read_with_provenance(path, fmt, ("prompt", "chosen", "rejected"))
    check_cleaned(frame, source=str(path))
    frame.attrs["provenance"] = meta
    return frame


def read_with_provenance(path: str | os.PathLike, fmt: str | None = None, text_columns: tuple[str, ...] = (),
                         json_lines: Callable[[Path], pd.DataFrame | None] | None = None,
                         ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A table written by :func:`write_with_provenance`, and its provenance; ``text_columns`` stay text in JSON.
    ``json_lines`` reads a JSON Lines file faster where it can, as pandas' reader below reads it (``None``: it
    cannot, and pandas' reader reads it)."""
    target = Path(path).expanduser()
    if not target.exists():
        raise AccordError(f"file {target}: not found")
    fmt = cleaned_format(target, fmt)
    try:
        if fmt == "parquet":
            table = pq.read_table(target)
            raw = (table.schema.metadata or {}).get(METADATA_KEY)
            meta = json.loads(raw) if raw else {}
            try:
                frame = index_as_columns(table.to_pandas())
            except TypeError:  # a pandas dtype its own reader does not understand (a file written from an
                frame = table.to_pandas(ignore_metadata=True)  # Arrow-backed list column): the Arrow types decide
        else:
            frame = json_lines(target) if json_lines is not None else None
            if frame is None:
                # JSON's own types, as written: pandas' guessing would read the id "007" as 7 and the float 1.0 as 1
                # a byte-order mark skipped; precise_float: the fast parser is off in the last digit of what it reads
                from accord.datasets.loaders.generic import read_json_lines  # the loaders import this module

                frame = read_json_lines(target, {"dtype": False, "encoding": "utf-8-sig", "precise_float": True})
            frame = frame.astype({c: str for c in text_columns if c in frame.columns and not _has_lists(frame[c])})
            empty = [c for c in frame.columns if frame[c].dtype == object and frame[c].isna().all()]
            frame = frame.astype(dict.fromkeys(empty, float))  # a column of nulls (no uncertainty) is NaN
            sidecar = next((p for p in (sidecar_path(target), legacy_sidecar_path(target)) if p.exists()), None)
            meta = json.loads(sidecar.read_text()) if sidecar is not None else {}
    except AccordError:
        raise
    except (OSError, ValueError, pa.ArrowException) as err:
        raise AccordError(f"file {target}: cannot read as {fmt}: {str(err).splitlines()[0]}") from err
    for column in (c for c in text_columns if c in frame.columns and _has_lists(frame[c])):
        # chat messages as they were written, lists of dicts: JSON Lines' were turned to their repr, a text that
        # the trainer then trained on, and Parquet gives numpy arrays
        frame[column] = as_text(frame[column].map(written_messages))
    return frame, meta


def written_messages(value: Any) -> Any:
    """A cell of chat messages as it was written: numpy arrays (Parquet's lists) as lists, and the keys whose value
    is None dropped from every dict. A Parquet column of messages is one struct of the union of their keys, so a
    conversation with one ``name`` came back with ``'name': None`` in every other message (and a message without a
    ``content`` with ``'content': None``, rendered as the text "None" where JSON Lines' was refused): every reader of
    a cleaned dataset's messages gets them through this function, so Parquet, JSON Lines and data in memory read
    alike."""
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.ndim == 1 else value
    if isinstance(value, list):
        return [written_messages(v) for v in value]
    if isinstance(value, dict):
        return {k: written_messages(v) for k, v in value.items() if v is not None}
    return value


def _has_lists(column: pd.Series) -> bool:
    """Whether a text column holds chat messages (lists; numpy arrays as Parquet reads them; one message dict: a
    JSON Lines column of them alone was cast to their repr)."""
    return column.dtype == object and bool(column.map(lambda v: isinstance(v, (list, np.ndarray, dict))).any())


def _provenance(extra: dict[str, Any] | None) -> dict[str, Any]:
    from importlib import metadata

    try:
        version = metadata.version("accord")
    except metadata.PackageNotFoundError:
        version = "unknown"
    # the package, version and time are this write's: a file read back (its provenance in attrs, which the writers
    # carry over) and written again kept the time and version of the first write
    meta: dict[str, Any] = {**(extra or {}), "package": "accord", "version": version,
                            "written_at": pd.Timestamp.now(tz="UTC").isoformat()}
    return json.loads(json.dumps(meta, default=str))
