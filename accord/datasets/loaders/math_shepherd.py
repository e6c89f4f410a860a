"""Math-Shepherd (``peiyi9979/Math-Shepherd``, Wang et al. 2024): automatically labelled steps, as a step-judgments
table.

accord never downloads it: get the file with the Hugging Face Hub's tools and pass its path (JSON Lines, JSON or
Parquet; ``.gz`` is fine), or the table as a DataFrame.

One row per solution with three fields:

- ``input``: the problem followed by the solution, each step ending in the step tag ``ки``
  (``"... How much does she make? Step 1: 16 - 3 = 13 eggs. ки\\nStep 2: ... The answer is: 18 ки"``);
- ``label``: the same text with each tag replaced by ``+`` (the step can still reach the right answer) or ``-``;
- ``task``: ``GSM8K`` or ``MATH``.

The problem ends where ``Step 1:`` begins (a tag inside the problem text is dropped with its label). The labels
come from one automatic labeller (completions rolled out from each step), so every judgment has the one
annotator named by ``annotator``; labels are binary, ``+`` = 1 (correct), ``-`` = 0 (wrong).

Columns: ``solution_id`` (a hash of ``input``), ``step``, ``annotator``, ``label``, ``prompt``, ``step_text``,
``task`` and ``source_row``.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.ids import content_ids
from accord.datasets.loaders.generic import frame_or_file, require_columns
from accord.datasets.steps.schema import validate_steps

STEP_TAG = "ки"
_FIRST_STEP = re.compile(r"step\s*1\s*:", re.IGNORECASE)
_LABELS: dict[str, int] = {"+": 1, "-": 0}


def load_math_shepherd(
    source: pd.DataFrame | str | os.PathLike,
    *,
    step_tag: str = STEP_TAG,
    annotator: str = "math-shepherd",
    invalid: str = "error",
    duplicates: str = "first",
) -> pd.DataFrame:
    """Load Math-Shepherd (``input``, ``label``, ``task``) as a validated step-judgments table (binary labels).

    Parameters
    ----------
    source
        A JSONL/JSON/Parquet file of the Hub schema, or that table as a DataFrame.
    step_tag
        The tag that ends each step in ``input``.
    annotator
        The name of the automatic labeller (the one annotator of every judgment).
    invalid
        A row that cannot be split into problem and labelled steps (no ``Step 1:``, a label that is not ``+``/``-``
        where a tag stands, ``label`` not the ``input`` with its tags replaced): ``"error"`` (default) or
        ``"drop"`` (with one warning counting them).
    duplicates
        A solution that appears twice: keep the ``"first"`` (default) or ``"last"`` labels, or ``"error"``.
    """
    if invalid not in ("error", "drop"):
        raise AccordError(f"invalid must be 'error' or 'drop', got {invalid!r}")
    if not step_tag:
        raise AccordError("step_tag must be a non-empty string")
    frame, name = frame_or_file(source, dtype=False)
    require_columns(frame, ("input", "label"), name, "Math-Shepherd")
    frame = frame.reset_index(drop=True)
    tasks = frame["task"] if "task" in frame.columns else pd.Series(pd.NA, index=frame.index)
    parts: dict[str, list[Any]] = {k: [] for k in ("source_row", "step", "label", "prompt", "step_text", "input")}
    dropped = 0
    for row, (text, labelled) in enumerate(zip(frame["input"], frame["label"])):  # string parsing, row by row
        try:
            prompt, steps, labels = _split(text, labelled, step_tag)
        except ValueError as problem:
            if invalid == "error":
                raise ValidationError(str(problem), source=name, column="input", row=row,
                                      value=text if isinstance(text, str) else None) from None
            dropped += 1
            continue
        for t, (step_text, label) in enumerate(zip(steps, labels)):
            parts["source_row"].append(row)
            parts["step"].append(t)
            parts["label"].append(label)
            parts["prompt"].append(prompt)
            parts["step_text"].append(step_text)
            parts["input"].append(text)
    if dropped:
        warnings.warn(f"{name}: dropped {dropped} row(s) that could not be split into problem and labelled steps",
                      stacklevel=2)
    if not parts["step"]:
        raise ValidationError("no labelled steps in the table", source=name)
    table = pd.DataFrame(parts)
    table.insert(0, "solution_id", content_ids(table, ["input"], "ms-", unique=False).to_numpy())
    table.insert(2, "annotator", annotator)
    table["task"] = tasks.to_numpy()[table["source_row"].to_numpy()]
    table = table.drop(columns="input")[["solution_id", "step", "annotator", "label", "prompt", "step_text", "task",
                                         "source_row"]]
    return validate_steps(table, labels="binary", duplicates=duplicates, source=name)


def _split(text: Any, labelled: Any, tag: str) -> tuple[str, list[str], list[int]]:
    """Problem, step texts and 0/1 labels of one row; ValueError with the reason when it cannot be read."""
    if not isinstance(text, str) or not isinstance(labelled, str):
        raise ValueError("input and label must be texts")
    pieces = text.split(tag)
    if len(pieces) < 2:
        raise ValueError(f"no step tag {tag!r} in the input")
    # in `label` each tag is one character (+ or -): find those characters and check the rest is the input
    marks, position = [], 0
    for piece in pieces[:-1]:
        position += len(piece)
        marks.append(labelled[position] if position < len(labelled) else "")
        position += 1
    rebuilt = "".join(piece + mark for piece, mark in zip(pieces, [*marks, ""]))
    if any(mark not in _LABELS for mark in marks) or rebuilt != labelled:
        raise ValueError("label is not the input with each step tag replaced by + or -")
    if pieces[-1].strip():
        raise ValueError(f"text after the last step tag {tag!r} has no label")
    start = _FIRST_STEP.search(text)
    if start is None:
        raise ValueError("cannot tell where the problem ends (no 'Step 1:')")
    # pieces that end before 'Step 1:' are part of the problem: their tags (annotation slips) are dropped
    ends, first = [], 0
    position = 0
    for piece in pieces[:-1]:
        position += len(piece) + len(tag)
        ends.append(position)
    first = sum(end <= start.start() for end in ends)
    prompt = re.sub(r"\s*" + re.escape(tag), "", text[: start.start()]).strip()
    first_piece_start = start.start() - (ends[first - 1] if first else 0)
    steps = [pieces[first][first_piece_start:].strip(), *(p.strip() for p in pieces[first + 1:-1])]
    labels = [_LABELS[m] for m in marks[first:]]
    if not steps or any(not s for s in steps):
        raise ValueError("an empty step between two step tags")
    return prompt, steps, labels
