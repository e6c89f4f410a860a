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
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.ids import content_ids
from accord.datasets.loaders.generic import frame_or_file, require_columns
from accord.datasets.steps.schema import validate_steps

STEP_TAG = "ки"
# Python's whitespace (what str.strip() strips and re's \s matches), for Arrow's kernels to read texts by its rules
_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # U+3000 is the last one


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
    frame, name = frame_or_file(source, texts=("input", "label", "task"), dtype=False)
    require_columns(frame, ("input", "label"), name, "Math-Shepherd")
    frame = frame.reset_index(drop=True)
    steps, problems = _parse(frame["input"], frame["label"], step_tag)
    if (problems != "").any():
        if invalid == "error":
            row = int(np.flatnonzero(problems != "")[0])
            text = frame["input"].iloc[row]
            raise ValidationError(str(problems[row]), source=name, column="input", row=row,
                                  value=text if isinstance(text, str) else None)
        warnings.warn(f"{name}: dropped {(problems != '').sum()} row(s) that could not be split into problem and "
                      "labelled steps", stacklevel=2)
    if steps.empty:
        raise ValidationError("no labelled steps in the table", source=name)
    again = frame["input"][problems == ""].duplicated() if duplicates == "error" else pd.Series(False)
    if again.any():  # (validate_steps would name a row of the table of steps, and its annotator)
        row = int(again.idxmax())
        raise ValidationError("the solution appears twice (the same input as an earlier row; duplicates='first' or "
                              "'last' keeps one)", source=name, column="input", row=row)
    rows = steps["source_row"].to_numpy()
    ids = content_ids(frame, ["input"], "ms-", unique=False).to_numpy()  # a hash of the row's input
    tasks = frame["task"].to_numpy() if "task" in frame.columns else np.full(len(frame), pd.NA)
    table = steps.assign(solution_id=ids[rows], annotator=annotator, task=tasks[rows])
    return validate_steps(table[["solution_id", "step", "annotator", "label", "prompt", "step_text", "task",
                                 "source_row"]], labels="binary", duplicates=duplicates, source=name)


def _parse(text: pd.Series, labelled: pd.Series, tag: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled steps of all rows (``source_row``, ``step``, ``label``, ``prompt``, ``step_text``) and, per row,
    why it cannot be read (``""`` when it can): Arrow's string kernels over all rows, told Python's whitespace so that
    they read the texts as ``str.strip`` and ``re`` did."""
    texts = _is_text(text) & _is_text(labelled)
    text, label = _arrow(text, texts), _arrow(labelled, texts)
    pieces = pc.split_pattern(text, tag)  # a row's last piece follows its last tag
    row, last = pc.list_parent_indices(pieces).to_numpy(), pieces.offsets.to_numpy()[1:] - 1
    tagged = np.ones(len(row), dtype=bool)  # the pieces that a tag ends
    tagged[last] = False
    # `label` is `input` with each tag replaced by one character, + or - (one byte in UTF-8): the byte after the
    # bytes of the pieces and signs before it. With those bytes made + it is `input` with each tag made a +
    tag_row = row[tagged]
    at = pd.Series(_length(pieces.values) + 1).groupby(row).cumsum().to_numpy()[tagged] - 1
    sign, plus_label = _signs(label, tag_row, at)
    replaced = pc.equal(pc.replace_substring(text, tag, "+"), plus_label).to_numpy(False) & ~_any(
        (sign != ord("+")) & (sign != ord("-")), tag_row, len(text))
    # the problem ends where 'Step 1:' begins: its tags (annotation slips) are dropped with their signs
    start = pc.find_substring_regex(text, f"(?i)step[{_SPACE}]*1[{_SPACE}]*:").to_numpy()
    head, rest = _cut(text, np.maximum(start, 0))
    steps = pc.split_pattern(rest, tag)  # a row's steps, then what follows its last tag
    step_row, step_last = pc.list_parent_indices(steps).to_numpy(), steps.offsets.to_numpy()[1:] - 1
    step_text = pc.utf8_trim(steps.values, _SPACE)
    is_step = np.ones(len(step_row), dtype=bool)
    is_step[step_last] = False
    problems = np.select(
        [~texts, pc.list_value_length(pieces).to_numpy() < 2, ~replaced,
         _length(pc.utf8_trim(pieces.values.take(last), _SPACE)) > 0, start < 0,
         _any(is_step & (_length(step_text) == 0), step_row, len(text))],
        ["input and label must be texts", f"no step tag {tag!r} in the input",
         "label is not the input with each step tag replaced by + or -",
         f"text after the last step tag {tag!r} has no label", "cannot tell where the problem ends (no 'Step 1:')",
         "an empty step between two step tags"], "")
    readable = problems == ""
    position = (np.arange(len(row)) - pieces.offsets.to_numpy()[row])[tagged]  # of each tag in its row
    step_sign = readable[tag_row] & (position >= pc.count_substring(head, tag).to_numpy()[tag_row])
    tag_pattern = "".join(f"\\x{{{ord(c):x}}}" for c in tag)
    prompt = pc.utf8_trim(pc.replace_substring_regex(head, f"[{_SPACE}]*{tag_pattern}", ""), _SPACE)
    keep = is_step & readable[step_row]
    steps = pd.DataFrame({"source_row": step_row[keep], "label": (sign[step_sign] == ord("+")).astype(np.int64),
                          "prompt": prompt.take(step_row[keep]).to_pandas(),
                          "step_text": step_text.filter(keep).to_pandas()})
    steps.insert(1, "step", steps.groupby("source_row").cumcount())
    return steps, problems


def _is_text(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.StringDtype):  # (a pandas string column holds texts or nothing)
        return column.notna().to_numpy()
    return column.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)


def _arrow(column: pd.Series, texts: np.ndarray) -> pa.LargeStringArray:
    """The texts of ``column`` as one Arrow array (``""`` where ``texts`` is false)."""
    array = pa.array(column.where(texts, ""), pa.large_string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _offsets(strings: pa.LargeStringArray) -> np.ndarray:
    """Where each text begins in the array's byte buffer, and where the last one ends."""
    return np.frombuffer(strings.buffers()[1], np.int64)[strings.offset:strings.offset + len(strings) + 1]


def _signs(label: pa.LargeStringArray, row: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, pa.LargeStringArray]:
    """Byte ``at[j]`` of the UTF-8 text ``row[j]`` of ``label`` (0 past its end), and ``label`` with those bytes
    made ``+`` (a copy of its bytes, its offsets shared)."""
    offsets, data = _offsets(label), np.frombuffer(label.buffers()[2] or b"", np.uint8)
    where = offsets[row] + at
    inside = where < offsets[row + 1]
    sign = np.zeros(len(row), dtype=np.uint8)
    sign[inside] = data[where[inside]]
    plus = data.copy()
    plus[where[inside]] = ord("+")
    return sign, pa.LargeStringArray.from_buffers(len(label), label.buffers()[1], pa.py_buffer(plus),
                                                  offset=label.offset)


def _cut(strings: pa.LargeStringArray, at: np.ndarray) -> tuple[pa.LargeStringArray, pa.LargeStringArray]:
    """Each text cut in two at its byte ``at``: both halves of all texts are one array over the same bytes, with a
    bound between each text's halves; the first halves are its even elements."""
    offsets = _offsets(strings)
    bounds = np.append(np.column_stack([offsets[:-1], offsets[:-1] + at]).ravel(), offsets[-1])
    halves = pa.LargeStringArray.from_buffers(2 * len(strings), pa.py_buffer(bounds), strings.buffers()[2])
    return halves.take(np.arange(0, len(halves), 2)), halves.take(np.arange(1, len(halves), 2))


def _length(strings: pa.LargeStringArray) -> np.ndarray:
    return pc.binary_length(strings).to_numpy()


def _any(mask: np.ndarray, row: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row: is ``mask`` true for any of its elements (element ``j`` belongs to row ``row[j]``)?"""
    return np.bincount(row[mask], minlength=n_rows) > 0
