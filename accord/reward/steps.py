"""The process reward task: one score per step of a solution, learned from soft step labels (``--task steps``).

A process reward model (Lightman et al. 2023, "Let's Verify Step by Step") reads a problem and a solution written as
steps and gives each step the probability that it is correct. Here the solution's steps are joined by a *step
separator*, one token of the tokenizer written after every step; the model reads the hidden state at each separator
(the batch's ``pool_index`` holds their positions, so one forward pass scores every step of every solution in the
batch, packed padding-free or padded) and its head turns it into the step's log-odds ``d_t``.

The loss is the configured one of :mod:`accord.reward.losses` applied per step: by default the soft binary
cross-entropy against the step's soft label ``y_t = P(step t correct)`` weighted by the label's certainty
(``label_weights`` = ``1 - 2 sd``, normalised to mean 1 over the optimisation step), i.e.
``sum_t w_t / mean(w) * -(y_t log sigmoid(d_t) + (1 - y_t) log sigmoid(-d_t))`` divided by the labelled steps of the
optimisation step. ``step_target="outcome"`` trains the outcome-only baseline on the same data: one label per
solution, ``p_all_correct`` (P(no step is wrong)) weighted by ``outcome_weight``, read at the last step's separator;
a solution whose steps ``max_length`` cuts is left out of that loss (with a warning counting them), as its outcome
is about steps the model does not read.

With a decoder each step's score depends on the problem and the steps up to it; an encoder (MiniLM, BERT) attends
both ways, so its score at step ``t`` also sees the later steps of the solution.

Data: the cleaned step dataset (:mod:`accord.datasets.steps.cleaned`), or TRL's stepwise-supervision layout
(``prompt``, ``completions``: the step texts, ``labels``: one 0/1 or probability per step). A prompt given as chat
messages (a list of ``{"role", "content"}`` dicts, or one such dict) is rendered by the tokenizer's chat template with
the generation prompt when it has one (a last assistant turn continued), else as ``role: content`` lines
(:func:`accord.datasets.cleaned.render_prompts`, the one rendering of training, evaluation and scoring). Evaluation
(:func:`step_reward_metrics`): step accuracy, AUROC and ECE against the step labels, ProcessBench's first-error F1
(Zheng et al. 2024: the first step scored below 1/2 is the predicted first error; F1 is the harmonic mean of the
exact-hit accuracy on solutions with an error and on those without), and best-of-n accuracy over each problem's
candidates (``problem_id``) with the solution scored by its weakest step, the product of its steps or its last step.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import add, getitem, mul
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from scipy.special import expit

from accord import metrics
from accord.datasets.cleaned import CLEANED_COLUMNS, rendered_prompts, step_prompts
from accord.datasets.errors import AccordError, SettingError, SettingWarning, ValidationError, naming_file
from accord.datasets.io import infer_format
from accord.datasets.schema import check_ids
from accord.datasets.steps.cleaned import (STEP_CLEANED_COLUMNS, check_blank_steps, check_cleaned_steps, checked_read,
                                           flat_lists, float_list, float_rows, numeric_cells, read_unchecked_steps,
                                           split_rows, text_rows)
from accord.reward.config import QUOTE, assigned, refused
from accord.reward.data import (PairCollator, PairEncoder, _cleaned_format, _collector_paused, _shared_length,
                                chat_template_head, reading_for, warn_cut)
from accord.reward.evaluate import (
    _bar,
    _check_texts,
    _device,
    _eval_mode,
    _read_frame,
    _source,
    load_model,
    refuse_nan,
    reward_stats,
    saved_max_length,
)
from accord.reward.losses import pairwise_logit
from accord.reward.task import RewardTask, model_inputs, register_task
from accord.step_metrics import (
    SOLUTION_AGGREGATES,
    auroc,
    best_of_n,
    first_error_scores,
    first_flagged_step,
    solution_scores,
)

#: The columns every table :func:`load_steps` returns (the cleaned step dataset's label columns, filled in for the
#: stepwise layout); ``problem_id`` and ``is_correct`` travel along when present.
STEP_TABLE_COLUMNS = ("solution_id", "prompt", "completions", "labels", "label_weights", "p_all_correct",
                      "outcome_weight", "first_error", "n_steps")
STEP_TARGETS = ("steps", "outcome")
#: the columns of the cleaned step dataset that TRL's stepwise layout does not have
CLEANED_ONLY_COLUMNS = ("label_uncertainty", "label_weights", "p_first_error", "p_all_correct", "outcome_weight")


# ----------------------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------------------


def load_steps(source: Any, *, need_labels: bool = True) -> pd.DataFrame:
    """Solutions written as steps, as a frame with the columns of :data:`STEP_TABLE_COLUMNS`.

    ``source``: a cleaned step dataset (a path or a frame) or a table in TRL's stepwise-supervision layout
    (``completions`` as a list of step texts, ``labels`` as one 0/1, true/false or probability per step, optional
    ``prompt``, ``solution_id``, ``problem_id``). The stepwise layout's outcome label is the product of its step
    labels (for 0/1 labels: whether every step is right) and every weight is 1. ``need_labels=False`` (scoring)
    accepts a table without ``labels``. A table with any column that only the cleaned dataset has
    (:data:`CLEANED_ONLY_COLUMNS`) is checked as a cleaned step dataset, its missing columns named. Every layout has
    one row per solution: a ``solution_id`` given twice is an error naming both rows.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else None
    return _one_row_per_solution(_load_steps(source, name, need_labels), name)


def _one_row_per_solution(table: pd.DataFrame, source: str | None) -> pd.DataFrame:
    """``table`` once no ``solution_id`` (as read: text) is on two rows. Two solutions under one id were trained on
    as two and scored as two, one row per (solution_id, step) twice, which no join back to the solutions tells
    apart; the cleaned step dataset refuses the repeat already, this is every layout's check (the number 7 and the
    text '7' are one id once read)."""
    ids = table["solution_id"]
    if ids.is_unique:
        return table
    row = int(np.flatnonzero(ids.duplicated(keep="first").to_numpy())[0])
    codes = pd.factorize(ids)[0]  # the hashing of duplicated (a missing id is -1, as every other)
    first = int(np.flatnonzero(codes == codes[row])[0])
    raise ValidationError(f"solution {ids.iloc[row]!r} again, first at row {first}: a step dataset has one row per "
                          "solution (give each its own solution_id, or leave the column out: the rows are then "
                          "numbered)", source=source, column="solution_id", row=row)


def _load_steps(source: Any, name: str | None, need_labels: bool) -> pd.DataFrame:
    """:func:`load_steps` before its check of the ids."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AccordError(f"file {path}: not found")
        # the cleaned reader reads a file of its formats (and its provenance), as load_pairs does; a compressed one,
        # a JSON array or a `datasets` folder (each refused by the cleaned reader: "cannot tell the format from the
        # suffix ''", or read as JSON Lines) is checked below
        fmt = None if path.is_dir() else _cleaned_format(path, infer_format(path))
        if fmt is not None and _names_step_columns(path, fmt):
            return _read_cleaned_steps(path, fmt)
        frame = _read_frame(path)
        if all(column in frame.columns for column in STEP_CLEANED_COLUMNS) and fmt is not None:
            return _read_cleaned_steps(path, fmt)  # (columns its first line does not show)
    elif isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
    else:
        raise AccordError(f"cannot read solutions written as steps from a {type(source).__name__}")
    # the table this function returns (its columns, none of the others of the cleaned dataset): read with its own
    # weights and outcome labels. It was refused as a cleaned dataset missing label_uncertainty, so that a table
    # load_steps gave could not be trained or evaluated on (process_rewards.py --sections reward failed so)
    if set(STEP_TABLE_COLUMNS) <= set(frame.columns) and not set(frame.columns) & _CLEANED_BEYOND:
        return _own_table(frame, name, need_labels)
    # a column only the cleaned dataset has makes it one: without all of them it was read as the stepwise layout,
    # silently, its label weights and outcome weights 1 and p_all_correct the product of the step labels
    if any(column in frame.columns for column in CLEANED_ONLY_COLUMNS):
        lists = check_cleaned_steps(frame, source=name)  # names the missing column
        out = frame.copy()
        with _collector_paused():  # lists of texts and floats make no cycles; it walked every list made so far
            out["completions"] = text_rows(out["completions"], lists["completions"])
            for column in ("labels", "label_weights"):
                out[column] = float_rows(out[column], lists[column])
        return _as_step_table(out, name)
    return _stepwise(frame, name, need_labels)


#: the cleaned step dataset's columns that a table :func:`load_steps` returns does not have
_CLEANED_BEYOND = frozenset(STEP_CLEANED_COLUMNS) - frozenset(STEP_TABLE_COLUMNS)


def _own_table(frame: pd.DataFrame, source: str | None, need_labels: bool) -> pd.DataFrame:
    """A table :func:`load_steps` returned, read again: its steps and labels checked as the stepwise layout's, its
    ``label_weights``, ``p_all_correct``, ``outcome_weight`` and ``first_error`` kept once each is in range (one
    error naming the column and the row)."""
    own = ("label_weights", "p_all_correct", "outcome_weight", "first_error", "n_steps")
    out = _stepwise(frame.drop(columns=list(own)), source, need_labels)
    n_steps = out["n_steps"].to_numpy()
    known = flat_lists(frame["label_weights"])
    lengths = known[0] if known is not None else frame["label_weights"].map(
        lambda v: -1 if (values := float_list(v)) is None else len(values)).to_numpy()
    flat = known[1] if known is not None else None
    bad = lengths != n_steps
    if not bad.any() and flat is None:
        flat = np.concatenate([float_list(v) for v in frame["label_weights"]])
    if not bad.any():
        outside = ~(np.isfinite(flat) & (flat >= 0) & (flat <= 1))
        bad = np.bincount(np.repeat(np.arange(len(n_steps)), n_steps), weights=outside, minlength=len(n_steps)) > 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError("must be a list of one weight in [0, 1] per step", source=source,
                              column="label_weights", row=row, value=frame["label_weights"].iloc[row])
    out["label_weights"] = float_rows(frame["label_weights"], (lengths.astype(float), flat))
    for column in ("p_all_correct", "outcome_weight", "first_error"):
        values = numeric_cells(frame[column])
        with np.errstate(invalid="ignore"):
            bad = (~((values >= 0) & (values <= 1)) if column != "first_error" else
                   ~((values >= 0) & (values <= n_steps) & (values == np.round(values))))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("must be a step position 0..n_steps" if column == "first_error" else
                                  "must be a probability in [0, 1]", source=source, column=column, row=row,
                                  value=frame[column].iloc[row])
        out[column] = values.astype(np.int64) if column == "first_error" else values
    return out


def _read_cleaned_steps(path: Path, fmt: str) -> pd.DataFrame:
    """A cleaned step dataset file, read and checked once (it was read as a table to find its columns, then read
    again and checked twice: 2 of the 3.5 s of loading 64k solutions)."""
    try:
        frame, meta = read_unchecked_steps(path, fmt, fast=True)
    except AccordError:
        _read_frame(path)  # the table reader's error, which names the line, as before
        raise
    # the table reader's check first (an empty file has nothing to score)
    return _as_step_table(checked_read(frame, meta, path, fmt, before=lambda table: _check_texts(table, str(path))),
                          str(path))


def _names_step_columns(path: Path, fmt: str) -> bool:
    """Whether a file is a cleaned step dataset by its columns, told without reading its rows: a Parquet file's
    schema, or the first line of a JSON Lines file (its every line holds every column). ``False`` where that does
    not tell: the file is then read as a table to find them."""
    try:
        if fmt == "parquet":
            names = set(pq.read_schema(path).names)
        else:
            with open(path, encoding="utf-8-sig") as handle:  # utf-8-sig: a byte-order mark is skipped
                first = json.loads(handle.readline())
            names = set(first) if isinstance(first, dict) else set()
    except (OSError, ValueError, pa.ArrowException):
        return False
    # (a file with the preference dataset's columns too is the table reader's, as before)
    return set(STEP_CLEANED_COLUMNS) <= names and not set(CLEANED_COLUMNS) <= names


def _as_step_table(out: pd.DataFrame, source: str | None) -> pd.DataFrame:
    """A checked cleaned step dataset with its ids and prompts as the step encoder reads them (in place)."""
    out["solution_id"] = out["solution_id"].astype(str)
    # a null prompt is no prompt, as in the stepwise layout (the encoder read it as the problem text "nan"), and
    # chat messages stay messages: the step encoder renders them (render_prompts; their Python repr was read)
    out["prompt"] = step_prompts(out["prompt"], source)
    return out


def _stepwise(frame: pd.DataFrame, source: str | None, need_labels: bool) -> pd.DataFrame:
    """TRL's stepwise-supervision layout brought to :data:`STEP_TABLE_COLUMNS` (see :func:`load_steps`)."""
    if "completions" not in frame.columns:
        if {"solution_id", "step", "annotator", "label"} <= set(frame.columns):
            # the raters' step labels themselves: name the step between, as the other tasks do
            raise ValidationError("a step-judgments table (one row per label of a step), not a step dataset: "
                                  "aggregate it first (accord aggregate --input FILE --method first-error --output "
                                  "steps.parquet) and train on that", source=source)
        # what the other tasks read: say so, not only which column of ours is missing
        given = ("preference pairs ('chosen' and 'rejected')" if {"chosen", "rejected"} <= set(frame.columns) else
                 "responses ('response')" if "response" in frame.columns else None)
        if given is not None:
            raise ValidationError(f"missing required column of a step dataset: the table holds {given}, not a step "
                                  "dataset; a process reward model (task 'steps') reads solutions written as steps "
                                  "('completions': the list of step texts)", source=source, column="completions")
        raise ValidationError("missing required column of a step dataset (the list of step texts)", source=source,
                              column="completions")
    if need_labels and "labels" not in frame.columns:
        raise ValidationError("missing required column of a step dataset (one label per step)", source=source,
                              column="labels")
    if len(frame) == 0:
        raise ValidationError("the step dataset is empty", source=source)
    if "solution_id" in frame.columns:  # the rules of every id column: a missing id was the solution "nan"
        check_ids(frame["solution_id"], "solution_id", source)
    # lists of texts and of floats, as a stepwise file holds them, are told at C speed (the per-row checks took
    # 16 s of loading 1M solutions); any other column is read row by row, which names its first bad row
    known = flat_lists(frame["completions"], texts=True)
    if known is not None and (known[0] > 0).all():
        steps, n_steps = text_rows(frame["completions"], known), known[0].astype(np.int64)
    else:
        # a 0-d array is no list (iterating it was a raw TypeError); a 2-d one's rows are no texts, refused below
        steps = frame["completions"].map(lambda v: list(v) if isinstance(v, (list, tuple)) or (
            isinstance(v, np.ndarray) and v.ndim >= 1) else None)
        bad = steps.map(lambda v: v is None or len(v) == 0 or not all(isinstance(s, str) for s in v)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("must be a non-empty list of step texts", source=source, column="completions",
                                  row=row, value=frame["completions"].iloc[row])
        n_steps = steps.map(len).to_numpy(dtype=np.int64)
    check_blank_steps(n_steps, chain.from_iterable(steps), source)
    if "labels" in frame.columns:
        known = flat_lists(frame["labels"])
        if known is not None:  # every row a flat list of floats: what float_list reads of it
            labels = float_rows(frame["labels"], known)
            wrong = known[0] != n_steps
        else:
            labels = frame["labels"].map(lambda v: None if (values := float_list(v)) is None else values.tolist())
            wrong = labels.map(lambda v: v is None).to_numpy() | (labels.map(lambda v: -1 if v is None else len(v))
                                                                   .to_numpy() != n_steps)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise ValidationError("must be a list of one label per step", source=source, column="labels", row=row,
                                  value=frame["labels"].iloc[row])
        flat = known[1] if known is not None else np.concatenate([np.asarray(v, dtype=float) for v in labels])
        outside = ~np.isfinite(flat) | (flat < 0) | (flat > 1)
        if outside.any():
            row = int(np.searchsorted(np.cumsum(n_steps), int(np.flatnonzero(outside)[0]), side="right"))
            raise ValidationError("step labels must be 0/1 or probabilities in [0, 1]", source=source,
                                  column="labels", row=row, value=frame["labels"].iloc[row])
    else:
        flat = np.full(int(n_steps.sum()), np.nan)
        # (as the label weights below; numpy's NaN, as [np.nan] * n gave it: a list of it equals another)
        labels = split_rows(frame["completions"], n_steps, [np.nan] * len(flat))
    starts = np.cumsum(n_steps) - n_steps
    out = pd.DataFrame({
        "solution_id": frame["solution_id"].astype(str).to_numpy() if "solution_id" in frame.columns
        else np.arange(len(frame)).astype(str),
        # a missing prompt is no prompt (blanked after the cast: a categorical column refused fillna(""))
        "prompt": step_prompts(frame["prompt"], source) if "prompt" in frame.columns else "",
        "completions": steps.to_numpy(),
        "labels": labels.to_numpy(),
        # one list of ones sliced per solution, the collector paused: a list built per solution made the collector
        # walk every list of texts made so far (1.2 s of loading 128k solutions)
        "label_weights": split_rows(frame["completions"], n_steps, [1.0] * int(n_steps.sum())).to_numpy(),
        "p_all_correct": np.multiply.reduceat(np.nan_to_num(flat, nan=1.0), starts),
        "outcome_weight": 1.0,
        "first_error": first_flagged_step(np.nan_to_num(flat, nan=1.0), n_steps),
        "n_steps": n_steps,
    })
    for column in frame.columns:
        if column not in out.columns:
            out[column] = frame[column].to_numpy()
    return out


# ----------------------------------------------------------------------------------------------------------------------
# tokenizing
# ----------------------------------------------------------------------------------------------------------------------


def separator_token(tokenizer: Any, separator: str | None) -> tuple[str, int]:
    """The step separator's text and its token id: ``separator``, or the tokenizer's sep token (else its
    end-of-sequence token) when unset. One clear error when it is not exactly one token of the tokenizer."""
    text = separator if separator is not None else (getattr(tokenizer, "sep_token", None)
                                                    or getattr(tokenizer, "eos_token", None))
    if not text:
        raise refused(lambda name: (f"{name} is unset and the tokenizer has neither a sep nor an end-of-sequence "
                                    f"token; name a token of its vocabulary with {name}"), "step_separator")
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    unk = getattr(tokenizer, "unk_token_id", None)
    if len(ids) != 1 or (unk is not None and ids[0] == unk and text != getattr(tokenizer, "unk_token", None)):
        found = "the unknown token" if len(ids) == 1 else f"{len(ids)} tokens"
        hints = [t for t in (getattr(tokenizer, "sep_token", None), getattr(tokenizer, "eos_token", None)) if t]
        raise refused(lambda name: (f"{name.strip(QUOTE)} {text!r} is not a single token of the tokenizer (it "
                                    f"encodes to {found}); name one token of its vocabulary"
                                    + (f", e.g. {' or '.join(repr(h) for h in hints)}" if hints else "")),
                      "step_separator")
    return text, int(ids[0])


@dataclass
class TokenizedSteps:
    """Tokenized solutions and their step labels; what :class:`StepCollator` reads.

    Solution ``i`` is ``ids[i]``; its ``n_steps[i]`` scored steps (those that fit ``max_length``) end at the token
    positions ``separators[i]``. Per-step arrays are flat over the scored steps of all solutions, solution ``i``'s
    from ``offsets[i]``: ``label`` (the step's label), and what the loss reads, ``target``, ``weight`` and
    ``labelled`` (every step, or for the outcome-only model the last step of each solution kept whole: a cut
    solution's outcome is about steps the model does not read); ``outcomes_left_out`` counts the cut ones there.
    """

    ids: list[list[int]]
    type_ids: list[list[int]] | None
    separators: list[np.ndarray]
    n_steps: np.ndarray
    label: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    labelled: np.ndarray
    truncated_prompts: int = 0
    truncated_steps: int = 0
    outcomes_left_out: int = 0
    steps_given: int = 0  # the steps of the table, before max_length cut any (the count a cut warning is of)
    lengths: np.ndarray = field(init=False)
    offsets: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = np.array([len(s) for s in self.ids], dtype=np.int64)
        self.offsets = np.cumsum(self.n_steps) - self.n_steps

    def __len__(self) -> int:
        return len(self.ids)

    def flat_index(self, indices: np.ndarray) -> np.ndarray:
        """The flat positions of the steps of solutions ``indices``, solution by solution."""
        indices = np.asarray(indices, dtype=np.int64)
        counts = self.n_steps[indices]
        starts = self.offsets[indices]
        return np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))

    @property
    def truncation(self) -> dict[str, int]:
        return {"truncated_prompts": self.truncated_prompts, "truncated_steps": self.truncated_steps,
                "sequences": len(self)}


class StepEncoder:
    """Tokenizes solutions as ``prompt`` then every step followed by the separator token, in the tokenizer's layout
    (:class:`accord.reward.data.PairEncoder`: an encoder's ``[CLS] prompt [SEP] steps [SEP]``, a decoder's leading
    special tokens, the prompt and the steps). A prompt the chat template wrote is its tokens as written, as the
    pairwise encoder reads a templated prompt: the tokenizer adds no start token before it (the template writes its
    own, or none), and cut from the left it keeps the template's start (:func:`chat_template_head`).

    Sequences fit ``max_length``: the steps keep at least what half the budget allows beside the prompt, whole steps
    from the first (a step that does not fit is left out with every later one: its label is not trained on; a first
    step longer than the budget is cut and kept), and the prompt is cut from the left to the rest.
    """

    def __init__(self, tokenizer: Any, max_length: int, is_decoder: bool, separator_id: int,
                 target: str = "steps", use_chat_template: bool | None = None):
        if target not in STEP_TARGETS:
            raise refused(lambda name: f"unknown {name.strip(QUOTE)} '{target}' (use one of {STEP_TARGETS})",
                          "step_target")
        self.layout = PairEncoder(tokenizer, max_length, is_decoder, use_chat_template=False)
        # whether chat-message prompts go through the tokenizer's chat template (unset: when it has one; off: as
        # 'role: content' lines, what a step model saved before it had this choice was trained on)
        self.use_chat_template = (bool(getattr(tokenizer, "chat_template", None)) if use_chat_template is None
                                  else bool(use_chat_template))
        self.max_length = int(max_length)
        self.separator_id = int(separator_id)
        self.target = target
        templates = self.use_chat_template and bool(getattr(tokenizer, "chat_template", None))
        self.chat_head = chat_template_head(tokenizer) if templates else []

    def encode(self, table: pd.DataFrame) -> TokenizedSteps:
        texts = list(map(str, chain.from_iterable(table["completions"])))
        step_ids = self.layout._plain_ids(texts)
        # chat messages through the tokenizer's chat template when it has one, else as 'role: content' lines
        prompts, templated = rendered_prompts(table["prompt"],
                                              self.layout.tokenizer if self.use_chat_template else None)
        prompt_ids = self._prompt_ids(prompts, templated)
        heads = self._template_heads(prompt_ids, templated)
        n_steps = table["n_steps"].to_numpy(dtype=np.int64)
        if len(table) == 0 or (n_steps < 1).any() or int(n_steps.sum()) != len(step_ids):
            # what the per-solution code does with a table load_steps never gives (no solution, a solution without
            # steps, step counts that are not the lists' lengths), error or not
            return self._encode_rows(table, prompts, prompt_ids, step_ids, templated, heads)
        with _collector_paused():  # lists of ints make no cycles; it walked every list built so far
            return self._encode_flat(table, prompts, prompt_ids, step_ids, templated, heads)

    def _template_heads(self, prompt_ids: list[list[int]], templated: np.ndarray) -> np.ndarray:
        """Per solution, how many leading tokens of its prompt are the chat template's start (0 for a prompt the
        template did not write), measured once per distinct prompt's list: what a prompt cut from the left keeps."""
        heads = np.zeros(len(prompt_ids), dtype=np.int64)
        if not self.chat_head or not templated.any():
            return heads
        rows = np.flatnonzero(templated)
        lists = list(map(prompt_ids.__getitem__, rows.tolist()))
        distinct = dict(zip(map(id, lists), lists))
        n_head = dict(zip(distinct, map(_shared_length, distinct.values(), repeat(self.chat_head))))
        heads[rows] = np.fromiter(map(n_head.__getitem__, map(id, lists)), np.int64, len(lists))
        return heads

    def _prompt_ids(self, prompts: list[str], templated: np.ndarray | None = None) -> list[list[int]]:
        """Each solution's prompt's plain token ids, each distinct prompt tokenized once (the solutions of a prompt
        share its list, which the layouts read and never change): process-reward data holds several solutions a
        prompt, and every one of them was tokenized again (:meth:`_prompt_ids_each`, kept as the reference). A
        prompt the chat template wrote keeps its own start (``templated``)."""
        written = [False] * len(prompts) if templated is None else np.asarray(templated, dtype=bool).tolist()
        keys = list(zip(prompts, written))
        distinct = list(dict.fromkeys(keys))
        plain = self.layout._plain_ids([text for text, _ in distinct])
        known = {key: ids if key[1] else self._own_head([ids])[0] for key, ids in zip(distinct, plain)}
        return list(map(known.__getitem__, keys))

    def _own_head(self, prompt_ids: list[list[int]]) -> list[list[int]]:
        """Prompts' token ids without the leading special tokens the layout puts before them itself: a text prompt
        that was written by a chat template beforehand (``<s><|user|>...``) would hold two."""
        head = self.layout.single[0][0]
        if not head:
            return prompt_ids
        n = len(head)
        return [ids[n:] if ids[:n] == head else ids for ids in prompt_ids]

    def _prompt_ids_each(self, prompts: list[str], templated: np.ndarray | None = None) -> list[list[int]]:
        """:meth:`_prompt_ids` one prompt per solution: what it replaced, kept as its reference
        (tests/test_vectorised_paths.py)."""
        written = np.zeros(len(prompts), bool) if templated is None else np.asarray(templated, dtype=bool)
        return [ids if own else self._own_head([ids])[0]
                for ids, own in zip(self.layout._plain_ids(prompts), written)]

    def _templated_layout(self) -> tuple[list[list[int]], list[list[int]], tuple[int, int]]:
        """The layout of a solution whose prompt the chat template wrote: the single text's without the special
        tokens before it (the template wrote its own start), the steps taking the prompt's token type."""
        (_, _, after), (_, _, t_after), (t_text, _) = self.layout.single
        return [[], [], after], [[], [], t_after], (t_text, t_text)

    def _encode_flat(self, table: pd.DataFrame, prompts: list[str], prompt_ids: list[list[int]],
                     step_ids: list[list[int]], templated: np.ndarray | None = None,
                     heads: np.ndarray | None = None) -> TokenizedSteps:
        """:meth:`encode` from the plain token ids of the prompts and of every step (read, never changed), without
        Python code per solution: how many whole steps fit each solution's room is told with numpy over the steps'
        cumulative lengths, and the sequences are joined by C loops (``map`` over builtins) from slices of the
        tokenizer's lists, as :meth:`PairEncoder._lay_out` does (:meth:`_encode_rows`, the per-solution code it
        replaced, is kept as its reference)."""
        layout = self.layout
        n = len(prompts)
        n_steps = table["n_steps"].to_numpy(dtype=np.int64)
        lp = whole_p = np.fromiter(map(len, prompt_ids), np.int64, n)
        ls = np.fromiter(map(len, step_ids), np.int64, len(step_ids))
        # encoders: the tokenizer's pair layout when there is a prompt, else its single text's (whose second text
        # takes the first text's token type); decoders: the single text's; a templated prompt: its own start
        layouts = [layout.single, layout.single if layout.pair is None else layout.pair, self._templated_layout()]
        kind = (np.fromiter(map(bool, prompts), bool, n) if layout.pair is not None else np.zeros(n, bool)).astype(
            np.int64)
        if templated is not None:
            kind[np.asarray(templated, dtype=bool)] = 2
        part_len = np.array([len(part) for (ids, _, _) in layouts for part in ids], dtype=np.int64)
        n_before, n_between, n_after = (part_len[3 * kind + j] for j in range(3))
        budget = self.max_length - n_before - n_between - n_after
        room = budget - np.minimum(lp, budget // 2)  # the steps' share: at least half the budget beside the prompt
        # whole steps from the first while they and their separators fit the room: each step's end (separator
        # included) over all the steps, less what the solutions before take, against each solution's room
        starts = np.cumsum(n_steps) - n_steps
        ends = np.cumsum(ls + 1)
        base = ends[starts] - ls[starts] - 1
        fit = np.clip(np.searchsorted(ends, base + room, side="right") - starts, 0, n_steps)
        # a first step alone longer than the room is cut to it and kept, with its separator
        first = ls[starts]
        first_kept = np.where(fit == 0, np.minimum(first, np.maximum(room - 1, 0)), first)
        short = first - first_kept
        kept = np.maximum(fit, 1)
        body = ends[starts + kept - 1] - base - short  # the steps' tokens and separators kept
        # the prompt cut from the left to the rest of the budget
        keep_prompt = budget - body
        cut_p = lp > keep_prompt
        lp_kept = np.where(cut_p, np.maximum(keep_prompt, 0), lp)
        # a templated prompt cut from the left keeps the template's start where the room holds it, as the pairwise
        # chat layout does
        own = np.zeros(n, np.int64) if heads is None else np.where(cut_p & (lp_kept >= heads), heads, 0)
        head = n_before + lp_kept + n_between
        # the kept steps' positions among all the steps, solution by solution; each separator after its step
        flat_keep = np.repeat(starts - (np.cumsum(kept) - kept), kept) + np.arange(int(kept.sum()))
        at = ends[flat_keep] + np.repeat(head - base - short - 1, kept)
        last = np.cumsum(kept)
        separators = list(map(at.__getitem__, map(slice, (last - kept).tolist(), last.tolist())))
        # every step then the separator, over all the steps: a solution's body is a slice of it (2 entries a step)
        pieces = list(chain.from_iterable(zip(step_ids, repeat([self.separator_id]))))
        cut = np.flatnonzero(short > 0)
        list(map(pieces.__setitem__, (2 * starts[cut]).tolist(),
                 map(getitem, map(step_ids.__getitem__, starts[cut].tolist()),
                     map(slice, repeat(None), first_kept[cut].tolist()))))
        pick = kind.tolist()

        def part(j: int, of: list[list[list[int]]]) -> Any:
            """Each row's layout's ``j``-th special part (0 before, 1 between, 2 after) of ``of`` (ids or types)."""
            return map([layout[j] for layout in of].__getitem__, pick)

        ids_of = [layout[0] for layout in layouts]
        prompt = list(map(getitem, prompt_ids, map(slice, (whole_p - lp_kept + own).tolist(), repeat(None))))
        kept_head = np.flatnonzero(own > 0).tolist()
        list(map(prompt.__setitem__, kept_head, map(add, map(getitem, map(prompt_ids.__getitem__, kept_head),
                                                             map(slice, repeat(None), own[kept_head].tolist())),
                                                     map(prompt.__getitem__, kept_head))))
        steps = map(chain.from_iterable, map(pieces.__getitem__, map(slice, (2 * starts).tolist(),
                                                                     (2 * (starts + kept)).tolist())))
        ids = list(map(list, map(chain, part(0, ids_of), prompt, part(1, ids_of), steps, part(2, ids_of))))
        types = None
        if not layout.is_decoder:  # the special tokens' own types, then the prompt's and the steps'
            types_of = [layout[1] for layout in layouts]
            first_type = map([[layout[2][0]] for layout in layouts].__getitem__, pick)
            second_type = map([[layout[2][1] if k else layout[2][0]] for k, layout in enumerate(layouts)].__getitem__,
                              pick)
            types = list(map(list, map(chain, part(0, types_of), map(mul, first_type, lp_kept.tolist()),
                                       part(1, types_of), map(mul, second_type, body.tolist()), part(2, types_of))))
        label = np.asarray(list(chain.from_iterable(table["labels"])), dtype=float)[flat_keep]
        weight = np.asarray(list(chain.from_iterable(table["label_weights"])), dtype=float)[flat_keep]
        return self._targets(table, ids, types, separators, kept, (kept == n_steps) & (short == 0), label, weight,
                             int(cut_p.sum()), int((n_steps - kept).sum() + (short > 0).sum()))

    def _encode_rows(self, table: pd.DataFrame, prompts: list[str], prompt_ids: list[list[int]],
                     step_ids: list[list[int]], templated: np.ndarray | None = None,
                     heads: np.ndarray | None = None) -> TokenizedSteps:
        """:meth:`_encode_flat` solution by solution: what it replaced, kept as its reference
        (tests/test_vectorised_paths.py) and for the tables :meth:`encode` names."""
        n_steps = table["n_steps"].to_numpy(dtype=np.int64)
        starts = np.cumsum(n_steps) - n_steps
        ids, types, separators, kept = [], [], [], np.zeros(len(table), dtype=np.int64)
        whole = np.ones(len(table), dtype=bool)  # every step kept, none cut
        cut_prompts = cut_steps = 0
        layout = self.layout
        written = np.zeros(len(table), bool) if templated is None else np.asarray(templated, dtype=bool)
        for i, (prompt, p) in enumerate(zip(prompts, prompt_ids)):  # one solution at a time, as tokenizers are
            (before, between, after), (t_before, t_between, t_after), (t_p, t_r) = (
                self._templated_layout() if written[i] else
                layout.pair if (layout.pair is not None and prompt) else layout.single)
            if (layout.pair is None or not prompt) and not written[i]:
                t_r = t_p
            budget = self.max_length - len(before) - len(between) - len(after)
            pieces = step_ids[starts[i]:starts[i] + n_steps[i]]
            room = budget - min(len(p), budget // 2)
            sizes = np.cumsum([len(s) + 1 for s in pieces])
            k = int(np.searchsorted(sizes, room, side="right"))
            if k == 0:  # the first step alone is too long: cut it, keep its separator
                pieces = [pieces[0][:max(room - 1, 0)]]
                k = 1
            body = [token for s in pieces[:k] for token in (*s, self.separator_id)]
            ends = np.cumsum([len(s) + 1 for s in pieces[:k]]) - 1
            whole[i] = k == n_steps[i] and len(pieces[0]) == len(step_ids[starts[i]])
            cut_steps += int(n_steps[i] - k) + (1 if len(pieces[0]) < len(step_ids[starts[i]]) else 0)
            keep_prompt = budget - len(body)
            if len(p) > keep_prompt:
                whole_prompt = p
                p = p[len(p) - keep_prompt:] if keep_prompt > 0 else []
                n_head = 0 if heads is None else int(heads[i])
                if n_head and len(p) >= n_head:  # a templated prompt keeps the template's start
                    p = whole_prompt[:n_head] + whole_prompt[len(whole_prompt) - (len(p) - n_head):]
                cut_prompts += 1
            head = before + p + between
            ids.append(head + body + after)
            types.append(t_before + [t_p] * len(p) + t_between + [t_r] * len(body) + t_after)
            separators.append(len(head) + ends)
            kept[i] = k
        flat_keep = np.concatenate([np.arange(s, s + k) for s, k in zip(starts, kept)])
        label = np.concatenate([np.asarray(v, dtype=float) for v in table["labels"]])[flat_keep]
        weight = np.concatenate([np.asarray(v, dtype=float) for v in table["label_weights"]])[flat_keep]
        return self._targets(table, ids, None if layout.is_decoder else types, separators, kept, whole, label, weight,
                             cut_prompts, cut_steps)

    def _targets(self, table: pd.DataFrame, ids: list[list[int]], types: list[list[int]] | None,
                 separators: list[np.ndarray], kept: np.ndarray, whole: np.ndarray, label: np.ndarray,
                 weight: np.ndarray, cut_prompts: int, cut_steps: int) -> TokenizedSteps:
        """The laid-out solutions with what the loss reads of their kept steps (``label``, ``weight``: the table's,
        flat over the kept steps; ``whole``: the solutions that kept every step whole)."""
        n_kept = int(kept.sum())
        last = np.cumsum(kept) - 1
        left_out = 0
        if self.target == "outcome":
            # the outcome is read at the last step the model reads: of a cut solution, not its last step
            labelled = np.zeros(n_kept, dtype=bool)
            labelled[last[whole]] = True
            left_out = int((~whole).sum())
            if left_out:
                warnings.warn(SettingWarning("max_length", lambda name: (
                    f"{assigned(name, self.max_length)} cuts the steps of {left_out} of {len(table)} solutions: an "
                    "outcome label is about the whole solution, so these are left out of the outcome-only model's "
                    f"loss (a larger {name} keeps them)")), stacklevel=4)
            target = np.full(n_kept, np.nan)
            target[last] = table["p_all_correct"].to_numpy(dtype=float)
            weight = np.ones(n_kept)
            weight[last] = table["outcome_weight"].to_numpy(dtype=float)
        else:
            labelled = np.ones(n_kept, dtype=bool)
            target = label
        return TokenizedSteps(ids=ids, type_ids=types, separators=separators, n_steps=kept,
                              label=label.astype(np.float32), target=target.astype(np.float32),
                              weight=weight.astype(np.float32), labelled=labelled, truncated_prompts=cut_prompts,
                              truncated_steps=cut_steps, outcomes_left_out=left_out,
                              steps_given=int(table["n_steps"].to_numpy(dtype=np.int64).sum()))


# ----------------------------------------------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class StepCollator:
    """One batch of solutions: their sequences packed padding-free or padded (:class:`PairCollator`'s layouts), and
    ``pool_index`` at every step separator, solution by solution, so the model returns one score per step. The
    sequences' ``token_seq`` is left out: the model reads exactly these positions, whatever its pooling."""

    base: PairCollator

    def __call__(self, data: TokenizedSteps, indices: Sequence[int]) -> dict[str, Any]:
        indices = np.asarray(indices, dtype=np.int64)
        seqs = [data.ids[i] for i in indices]
        types = None if data.type_ids is None else [data.type_ids[i] for i in indices]
        batch = self.base.sequences(seqs, types)  # pooled at each sequence's last token: its start follows
        starts = batch["pool_index"].numpy() - (data.lengths[indices] - 1)
        counts = data.n_steps[indices]
        positions = np.concatenate([data.separators[i] for i in indices])
        batch["pool_index"] = torch.from_numpy(np.repeat(starts, counts) + positions)
        batch.pop("token_seq", None)
        flat = data.flat_index(indices)
        batch.update(target=torch.from_numpy(data.target[flat]), weight=torch.from_numpy(data.weight[flat]),
                     labelled=torch.from_numpy(data.labelled[flat]), n_solutions=len(indices))
        return batch


def step_logits(reward: torch.Tensor, variance: torch.Tensor | None) -> torch.Tensor:
    """Log-odds that each step is correct (scaled down by the reward's variance with an uncertainty head, as
    :func:`accord.reward.losses.pairwise_logit` does for pairs)."""
    zero = torch.zeros_like(reward)
    return pairwise_logit(reward, zero, variance, None if variance is None else zero)


@torch.no_grad()
def predict_steps(model: Any, data: TokenizedSteps, *, pad_token_id: int, batch_size: int = 32,
                  packing: bool = True, device: torch.device | None = None, indices: np.ndarray | None = None,
                  progress: bool = False, desc: str = "scoring steps") -> dict[str, np.ndarray]:
    """Per step of the solutions ``indices`` (default: all), flat in their order: ``reward`` (the head's output),
    ``variance`` (NaN without an uncertainty head) and ``logit`` (the step's log-odds of being correct)."""
    device = device if device is not None else next(model.parameters()).device
    collator = StepCollator(PairCollator(pad_token_id, packing=packing, pooling="last",
                                         hidden_size=model.hidden_size))
    subset = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
    flat_all = data.flat_index(subset)
    where = np.full(len(data.label), -1, dtype=np.int64)
    where[flat_all] = np.arange(len(flat_all))
    reward = np.zeros(len(flat_all))
    variance = np.full(len(flat_all), np.nan)
    logit = np.zeros(len(flat_all))
    order = subset[np.argsort(-data.lengths[subset], kind="stable")]
    # back in the mode it had also when scoring fails or is interrupted (a training model was left in eval mode)
    with _eval_mode(model), _bar(len(subset), desc, "solution", progress) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collator(data, chunk)
            out = model(**{k: v.to(device) for k, v in model_inputs(batch).items()})
            at = where[data.flat_index(chunk)]
            reward[at] = out.reward.float().cpu().numpy()
            if out.log_var is not None:
                variance[at] = out.variance.float().cpu().numpy()
            logit[at] = step_logits(out.reward, out.variance).float().cpu().numpy()
            bar.update(len(chunk))
    return {"reward": reward, "variance": variance, "logit": logit}


# ----------------------------------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------------------------------


def step_hits(p_correct: Any, label: Any) -> Any:
    """Whether each step's score is on its label's side of 1/2, the one rule of ``step_accuracy`` in evaluation and
    in the training log (numpy arrays or torch tensors alike): the model judges a step correct when
    ``P(correct) >= 1/2``, a step scored exactly even (``d = 0``) included, as :func:`first_flagged_step` flags only
    ``P < 1/2`` as the first error; the label says correct when it is ``>= 1/2``."""
    return (p_correct >= 0.5) == (label >= 0.5)


def labelled_first_error(table: pd.DataFrame) -> np.ndarray:
    """Per solution, the first step whose label is below 1/2 (``n_steps`` when none is; an unlabelled step counts as
    correct): the truth of the first-error measures, by the rule that locates a model's predicted first error. A
    cleaned step dataset's ``first_error`` column is the most probable position (the argmax of ``p_first_error``),
    which with soft labels is not always the first step labelled wrong: against it a model scoring every step exactly
    as its label missed some first errors, and the same labels scored otherwise in TRL's stepwise layout."""
    if "labels" not in table.columns:
        return table["first_error"].to_numpy()
    known = flat_lists(table["labels"])  # at C speed; a row with a missing label is read row by row
    flat = known[1] if known is not None else np.concatenate(
        [np.asarray(v, dtype=float) for v in table["labels"]] or [np.zeros(0)])
    return first_flagged_step(np.nan_to_num(flat, nan=1.0), table["n_steps"].to_numpy(dtype=np.int64))


def step_reward_metrics(logit: np.ndarray, data: TokenizedSteps, table: pd.DataFrame,
                        n_bins: int = 10) -> dict[str, float]:
    """Metrics of step scores (``logit``, flat over ``data``'s scored steps) against ``table``'s labels.

    ``step_accuracy`` (``P >= 1/2`` against ``label >= 1/2``), ``step_auroc``, ``step_ece`` (against the label,
    soft or hard), ``step_nll`` (soft cross-entropy); ProcessBench's first-error measures (``first_error_f1``,
    ``first_error_accuracy_erroneous``, ``first_error_accuracy_correct``, ``first_error_found``; the truth is the
    first step labelled below 1/2 (:func:`labelled_first_error`), the prediction the first step with ``P < 1/2``);
    with ``problem_id``, over the problems with more than one candidate, best-of-n accuracy ``bon_min``,
    ``bon_product``, ``bon_last`` (the solution's score: its weakest step, the product of its steps, its last step;
    correct: ``is_correct`` when the table has it, else ``p_all_correct >= 1/2``) beside ``bon_random`` and
    ``bon_oracle``; ``bon_single_left_out`` counts the problems of one candidate left out (nothing to choose).
    """
    prob = expit(np.asarray(logit, dtype=float))  # no overflow warning for large negative logits
    label = data.label.astype(float)
    known = np.isfinite(label)
    out: dict[str, float] = {"n_solutions": len(data), "n_steps": len(prob)}
    if known.any():
        p, y = prob[known], label[known]
        q = np.clip(p, metrics.EPS, 1 - metrics.EPS)
        out.update(step_accuracy=float(step_hits(p, y).mean()), step_auroc=auroc(p, y >= 0.5),
                   step_ece=metrics.calibration_error(p, y, n_bins),
                   step_nll=float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean()))
    ids = table["solution_id"].astype(str).to_numpy()
    if not pd.Index(ids).is_unique:  # (load_steps refuses a repeated id; a table made otherwise may hold one) the
        # three columns are aligned by row
        ids = np.arange(len(ids))
    n_steps = table["n_steps"].to_numpy(dtype=np.int64)
    predicted = first_flagged_step(prob, data.n_steps)
    predicted = np.where(predicted == data.n_steps, n_steps, predicted)  # none flagged: "no error"
    located = first_error_scores(pd.Series(predicted, index=ids), pd.Series(labelled_first_error(table), index=ids),
                                 pd.Series(n_steps, index=ids))
    out.update(first_error_f1=located["f1"], first_error_accuracy_erroneous=located["accuracy_erroneous"],
               first_error_accuracy_correct=located["accuracy_correct"], first_error_found=located["recovery"])
    grouped = table["problem_id"].notna().to_numpy() if "problem_id" in table.columns else np.zeros(len(table), bool)
    # a problem with one candidate has nothing to choose between: its "pick" is its only solution, which moved the
    # best-of-n figures towards the share of right solutions (counted as a problem with a pick); left out, counted
    problem = table["problem_id"].astype(str).where(grouped) if grouped.any() else None
    single = (problem.map(problem.value_counts()) == 1).to_numpy() if problem is not None else grouped
    grouped = grouped & ~single
    if grouped.any():
        correct = (_correct_flags(table["is_correct"], grouped) if "is_correct" in table.columns
                   else table["p_all_correct"].to_numpy(dtype=float)[grouped] >= 0.5)
        # solutions without a problem are left out, not taken for one problem named "nan"
        group = table.loc[grouped, "problem_id"].astype(str).to_numpy()
        for how in SOLUTION_AGGREGATES:
            chosen = best_of_n(solution_scores(prob, data.n_steps, how)[grouped], correct, group)
            out[f"bon_{how}"] = chosen["accuracy"]
        out.update(bon_random=chosen["random"], bon_oracle=chosen["oracle"], bon_n=chosen["n_candidates"],
                   bon_problems=int(chosen["n_groups"]))
    if single.any():
        out["bon_single_left_out"] = int(single.sum())
    return out


def _correct_flags(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``is_correct`` of the ``rows`` (a mask) as booleans, once each is True/False or 1/0: to ``astype(bool)`` a
    missing value (NaN) and the text "False" are both True, so a solution of unknown or wrong outcome counted as a
    right pick."""
    values = column.to_numpy(dtype=object)
    good = np.array([isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, float, np.integer, np.floating))
                                                          and v in (0, 1)) for v in values], dtype=bool) | ~rows
    if not good.all():
        row = int(np.flatnonzero(~good)[0])
        raise ValidationError("must be True or False (1 or 0) for best-of-n", column="is_correct", row=row,
                              value=values[row])
    return values[rows].astype(bool)


# ----------------------------------------------------------------------------------------------------------------------
# the task
# ----------------------------------------------------------------------------------------------------------------------


@register_task
class StepTask(RewardTask):
    """Solutions written as steps in (a cleaned step dataset or TRL's stepwise layout), one score per step out."""

    name = "steps"
    unit = "solutions"
    loss_inputs = frozenset({"d", "target", "weight", "weight_mean"})

    def __init__(self, config: Any):
        super().__init__(config)
        # the collator reads one score at each step separator, whatever the pooling: a pooling given was ignored and
        # saved in the model's metadata as if used. Refused here, before a model is loaded
        # a loss of d alone (bradley_terry, label_smoothing, margin: a pair's chosen side as the winner) reads no
        # step label, and trained every step as correct, the wrong ones too
        if "target" not in self.loss.inputs:
            raise refused(lambda name: (f"{name.strip(QUOTE)} '{config.loss}' reads no step label (it takes every "
                                        "step for a correct one); the 'steps' task trains with a loss of the step "
                                        "labels: weighted_soft_bce (the default) or soft_bce"), "loss")
        if getattr(config, "pooling", "auto") != "auto":
            raise refused(lambda name: (f"{name.strip(QUOTE)} {config.pooling!r}: the 'steps' task reads one score "
                                        f"at each step separator, whatever the pooling; leave {name} unset"),
                          "pooling")

    def read(self, source: Any) -> Any:
        return source if isinstance(source, TokenizedSteps) else load_steps(source)

    def check_training(self, table: Any, source: str | None = None) -> None:
        # as the pairwise task: weights are normalised to mean 1 over a step, and a step whose labelled steps all
        # weigh 0 makes no update, so training data whose weights are all 0 would train a model that never moves
        if "weight" not in self.loss.inputs or isinstance(table, TokenizedSteps):
            return
        outcome = self.config.step_target == "outcome"
        column = "outcome_weight" if outcome else "label_weights"
        weight = (table[column].to_numpy(dtype=float) if outcome
                  else np.concatenate([np.asarray(v, dtype=float) for v in table[column]]))
        if not (weight > 0).any():
            what = "solution" if outcome else "step"
            raise ValidationError(
                f"every training {what} has weight 0, so the loss '{self.loss.name}' (weighted by it) learns "
                "nothing: give labels that are not all maximally uncertain, or train with a loss that ignores "
                "weights (loss='soft_bce', --loss soft_bce)", source=source, column=column)

    def bind(self, tokenizer: Any, model: Any) -> dict[str, Any]:
        cfg = self.config
        if cfg.share_prompt:
            raise refused(lambda name: f"{name} is for preference pairs, not the 'steps' task", "share_prompt")
        if cfg.use_chat_template:
            raise refused(lambda name: ("the 'steps' task writes solutions as a prompt then steps and separators, "
                                        "not in a chat template; a prompt of chat messages goes through the "
                                        f"tokenizer's chat template when it has one: leave {name} unset (or off, "
                                        "for 'role: content' lines)"), "use_chat_template")
        text, sep_id = separator_token(tokenizer, cfg.step_separator)
        model.check_token("step_separator", text, sep_id, "config: ", setting=True)
        self.pad_token_id = tokenizer.pad_token_id
        self.encoder = StepEncoder(tokenizer, cfg.max_length, model.is_decoder, sep_id, cfg.step_target,
                                   cfg.use_chat_template)
        flex = (cfg.attn_implementation or "") == "flex_attention"
        base = PairCollator(tokenizer.pad_token_id, packing=bool(cfg.packing), pooling="last",
                            capacity=cfg.packing_capacity, hidden_size=model.hidden_size,
                            whole_batch_row=bool(cfg.packing) and flex and cfg.packing_capacity is None,
                            pad_to_multiple_of=cfg.pad_to_multiple_of)
        self.collator = StepCollator(base)
        return {"max_length": cfg.max_length, "use_chat_template": self.encoder.use_chat_template, "loss": cfg.loss,
                "step_separator": text, "step_target": cfg.step_target}

    def encode(self, table: Any) -> TokenizedSteps:
        return table if isinstance(table, TokenizedSteps) else self.encoder.encode(table)

    def cost(self, data: TokenizedSteps) -> np.ndarray:
        return data.lengths  # one sequence per solution: packed or padded, its length sets the cost

    def collate(self, data: TokenizedSteps, indices: Sequence[int]) -> dict[str, Any]:
        return self.collator(data, indices)

    def step_context(self, data: TokenizedSteps, indices: np.ndarray) -> dict[str, Any]:
        flat = data.flat_index(indices)
        labelled = data.labelled[flat]
        # (an outcome-only step of cut solutions alone has no label: its loss is 0, not 0 / 0)
        step: dict[str, Any] = {"n_examples": max(int(labelled.sum()), 1), "n_solutions": len(indices)}
        if "weight_mean" in self.loss.inputs:
            step["weight_mean"] = float(data.weight[flat][labelled].mean()) if labelled.any() else 1.0
        return step

    def compute_loss(self, model: torch.nn.Module, batch: dict[str, Any],
                     step: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The labelled steps' losses summed and divided by the labelled steps of the whole step; logs the mean
        step loss and the share of steps on the label's side of 1/2 (per labelled step)."""
        out = model(**model_inputs(batch))
        keep = batch["labelled"]
        d = step_logits(out.reward, out.variance)[keep]
        target = batch["target"][keep]
        inputs = {"d": d, "target": target, "weight": batch["weight"][keep], "weight_mean": step.get("weight_mean")}
        per_step = self.loss({**self.loss_settings, **inputs})
        loss = per_step.sum() / step["n_examples"]
        # the core divides logged sums by the step's solutions: scaled so that they read per labelled step
        scale = step["n_solutions"] / step["n_examples"]
        # the evaluation's rule on P(correct) in float64, as step_reward_metrics reads it: a step scored exactly
        # even counts as judged correct in both
        right = step_hits(torch.sigmoid(d.detach().double()), target).float().sum()
        return loss, {"loss": per_step.detach().sum() * scale, "step_accuracy": right * scale}

    def evaluate(self, model: Any, data: TokenizedSteps, table: Any, *, device: torch.device, batch_size: int,
                 progress: bool) -> dict[str, float]:
        """:func:`step_reward_metrics` on the evaluation solutions."""
        pred = predict_steps(model, data, pad_token_id=self.pad_token_id, batch_size=batch_size,
                             packing=self.collator.base.packing, device=device, progress=progress,
                             desc="evaluating")
        # as accord evaluate (evaluate_steps) refuses it: a NaN score would pass on as NaN or wrong metrics
        _refuse_nan_read_steps("evaluation data", table, data, pred["reward"])
        return {**step_reward_metrics(pred["logit"], data, table), "truncated_steps": int(data.truncated_steps)}

    def reward_stats(self, model: Any, data: TokenizedSteps, indices: np.ndarray, *, device: torch.device,
                     batch_size: int, progress: bool) -> dict[str, Any]:
        """Mean and standard deviation of the step rewards of the solutions ``indices``."""
        pred = predict_steps(model, data, pad_token_id=self.pad_token_id, batch_size=batch_size,
                             packing=self.collator.base.packing, device=device, indices=indices, progress=progress,
                             desc="reward statistics")
        return reward_stats(pred["reward"])


# ----------------------------------------------------------------------------------------------------------------------
# a saved model: evaluate, score
# ----------------------------------------------------------------------------------------------------------------------


def _saved_encoder(model_dir: str | Path, model: Any, tokenizer: Any, max_length: int | None) -> StepEncoder:
    from accord.reward.model import META_FILE

    meta = model.meta
    try:
        _, sep_id = separator_token(tokenizer, meta.get("step_separator"))
    except SettingError as error:  # the saved separator: 'config: step_separator' named a setting no one gave here
        raise AccordError(f"folder {model_dir}: the step separator its {META_FILE} records does not fit the "
                          f"tokenizer saved with it: {error.naming('step_separator')}; set \"step_separator\" in "
                          f"{META_FILE} to the one token the model was trained with, or train it again") from error
    max_length = saved_max_length(model, max_length)
    # (the step target says what a loss reads, which scoring and evaluating do not: an outcome-only model's cut
    # solutions are scored as any other)
    # chat prompts rendered as training rendered them (a model saved before the choice: 'role: content' lines)
    return StepEncoder(tokenizer, max_length, model.is_decoder, sep_id,
                       use_chat_template=bool(meta.get("use_chat_template", False)))


def _step_rows(table: pd.DataFrame, encoded: TokenizedSteps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step of every solution of ``table``, in order: its solution's row, its position in the solution, and
    whether the model read it (False for a step cut off by ``max_length``)."""
    n_steps = table["n_steps"].to_numpy(dtype=np.int64)
    rows = np.repeat(np.arange(len(table)), n_steps)
    step = np.arange(len(rows)) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
    return rows, step, step < encoded.n_steps[rows]


def _refuse_nan_read_steps(name: str | Path, table: pd.DataFrame, encoded: TokenizedSteps,
                           reward: np.ndarray) -> None:
    """One error naming ``name`` (the model, or the data being evaluated) and the first NaN ``reward`` (flat over the
    steps the model read) by its position among all the table's steps. A step cut off by max_length has no score by
    design (it is not in ``reward``); a NaN score of a step the model read is the model's (diverged, half-precision
    overflow)."""
    _, _, scored = _step_rows(table, encoded)
    full = np.zeros(len(scored))
    full[scored] = reward
    refuse_nan(f"{name}: reward", full, "steps")


def evaluate_steps(model_dir: str | Path, data: Any, *, batch_size: int = 32, max_length: int | None = None,
                   device: str | torch.device | None = None, progress: bool = False) -> dict[str, float]:
    """:func:`step_reward_metrics` of a saved process reward model on a step dataset, with the truncation counts."""
    with reading_for("held_out"):  # a saved DatasetDict's held-out split, as the pairwise evaluate reads it
        table = load_steps(data)  # before the model loads: a problem with the data is reported at once
    model, tokenizer = load_model(model_dir, device, progress)
    encoder = _saved_encoder(model_dir, model, tokenizer, max_length)
    with naming_file(_source(data)):  # (a chat template's refusal named the row, not the file)
        encoded = encoder.encode(table)
    # once, as training and the pairwise evaluate say it (was: in the metrics alone)
    warn_cut(encoded.truncated_steps, encoded.steps_given, "steps", encoder.max_length,
             "the metrics score no step left out (a first step cut is read from its beginning)", prefix="evaluate: ",
             stacklevel=2)
    pred = predict_steps(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                         device=_device(device), progress=progress, desc="evaluating")
    _refuse_nan_read_steps(model_dir, table, encoded, pred["reward"])  # else NaN metrics, without a word
    result = step_reward_metrics(pred["logit"], encoded, table)
    result.update({k: int(v) for k, v in encoded.truncation.items()})
    return result


def score_steps(model_dir: str | Path, data: Any, *, batch_size: int = 32, max_length: int | None = None,
                device: str | torch.device | None = None, progress: bool = False) -> pd.DataFrame:
    """Per-step scores of a saved process reward model: one row per step of every solution in ``data`` (a step
    dataset, labels optional) with ``solution_id``, ``step``, ``step_text``, ``reward`` (the head's output),
    ``p_correct`` (the model's probability that the step is correct) and, with an uncertainty head, ``reward_sd``;
    ``problem_id`` when the data has it. A step cut off by ``max_length`` has NaN scores."""
    with reading_for("score"):  # a saved DatasetDict's one split, whatever its name, as score reads it
        table = load_steps(data, need_labels=False)  # before the model loads, as score does
    model, tokenizer = load_model(model_dir, device, progress)
    encoder = _saved_encoder(model_dir, model, tokenizer, max_length)
    with naming_file(_source(data)):
        encoded = encoder.encode(table)
    # as the pairwise score says it (was: the steps cut off came out NaN without a word)
    warn_cut(encoded.truncated_steps, encoded.steps_given, "steps", encoder.max_length,
             "the steps left out have NaN scores (a first step cut is read from its beginning)", prefix="score: ",
             stacklevel=2)
    pred = predict_steps(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                         device=_device(device), progress=progress)
    rows, step, scored = _step_rows(table, encoded)
    out = pd.DataFrame({"solution_id": table["solution_id"].to_numpy()[rows], "step": step,
                        "step_text": [s for steps in table["completions"] for s in steps]})
    if "problem_id" in table.columns:
        out.insert(1, "problem_id", table["problem_id"].to_numpy()[rows])
    _refuse_nan_read_steps(model_dir, table, encoded, pred["reward"])  # else written on as a score
    for name, values in (("reward", pred["reward"]), ("p_correct", expit(pred["logit"]))):
        column = np.full(len(out), np.nan)
        column[scored] = values
        out[name] = column
    if model.uncertainty_head:
        column = np.full(len(out), np.nan)
        column[scored] = np.sqrt(pred["variance"])
        out["reward_sd"] = column
    return out


__all__ = ["StepCollator", "StepEncoder", "StepTask", "TokenizedSteps", "evaluate_steps", "load_steps",
           "predict_steps", "score_steps", "separator_token", "step_hits", "step_reward_metrics"]
