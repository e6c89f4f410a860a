"""PRM800K (openai/prm800k, Lightman et al. 2023): step labels of MATH solutions, as a step-judgments table.

accord never downloads it: clone the repository with Git LFS (its ``data/`` folder holds
``phase1_train.jsonl``, ``phase1_test.jsonl``, ``phase2_train.jsonl``, ``phase2_test.jsonl``) and pass a file's
path, or the records as a DataFrame.

One line of a file is one labeler's work on one solution::

    labeler, timestamp, generation (phase 2; null in phase 1),
    is_quality_control_question, is_initial_screening_question,
    question: {problem, ground_truth_answer, ground_truth_solution,
               pre_generated_steps, pre_generated_answer, pre_generated_verifier_score  (phase 2 only)}
    label: {steps: [{completions: [{text, rating (-1/0/+1), flagged}], human_completion, chosen_completion}],
            total_time, finish_reason ("found_error", "solution", "bad_problem", "give_up")}

Phase 2 labelers rated the steps of a pre-generated solution (``pre_generated_steps``) up to its first wrong step;
quality-control solutions were served to every labeler, which is where several labelers rate one solution. Phase
1 labelers built the solution as they went: at each step they rated one or more candidate completions and chose
one to continue with (``chosen_completion``) or wrote their own (``human_completion``).

How a line becomes judgments:

- the *solution* is, in phase 2, the pre-generated solution (its step ``t`` is labelled with the rating of the
  completion whose text is ``pre_generated_steps[t]``); in phase 1 the chosen path (the chosen completion, else
  the human completion, else the only completion). It ends at the first step without such a step, without a
  rating or without a text. A human-written step counts as rated +1 unless it carries its own rating
  (``step_source="human"``);
- a step without a text (PRM800K holds completions, and pre-generated steps, whose ``text`` is null or empty):
  the solution ends before it, its earlier steps kept with their labels, and an alternative completion without a
  text is left out; one warning naming the file counts both. A step of no text cannot be trained on or scored
  (the step readers refuse it), and the steps after it continue a text no one has;
- ``solution_id`` is a hash of the problem and the solution's step texts (in phase 2 of the whole pre-generated
  solution), so every labeler of one solution shares it;
- with ``alternatives=True`` every other rated completion at step ``t`` becomes a solution of its own: the path's
  first ``t`` steps (with this labeler's ratings, so a prefix's labels count once per alternative) and the
  alternative (``alternative=True``).

Columns: ``solution_id``, ``step``, ``annotator`` (the labeler id), ``label`` (the rating: ternary -1/0/+1),
``prompt`` (the problem), ``step_text``, ``phase``, ``generation``, ``quality_control``, ``initial_screening``,
``finish_reason``, ``step_source``, ``alternative``, ``flagged``, ``timestamp``, ``ground_truth_answer`` and
``source_row`` (the record's 0-based row in the file).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.ids import content_ids
from accord.datasets.loaders.generic import frame_or_file, require_columns
from accord.datasets.steps.schema import validate_steps

RATINGS: frozenset[int] = frozenset({-1, 0, 1})
_RECORD_COLUMNS: tuple[str, ...] = ("labeler", "question", "label")


def load_prm800k(
    source: pd.DataFrame | str | os.PathLike,
    *,
    phase: int | str = "auto",
    alternatives: bool = False,
    duplicates: str = "first",
) -> pd.DataFrame:
    """Load a PRM800K file (one labeled solution per line) as a validated step-judgments table (ternary labels).

    Parameters
    ----------
    source
        A ``phase{1,2}_{train,test}.jsonl`` file (``.gz`` is fine), or its records as a DataFrame.
    phase
        ``1``, ``2`` or ``"auto"`` (per line: phase 2 when it has ``pre_generated_steps``). A line of the other
        layout than the one asked for is an error.
    alternatives
        Also return each rated alternative completion as a solution of its own (see the module docstring).
    duplicates
        When one labeler rated one step of one solution more than once (a quality-control solution served
        twice): keep the ``"first"`` (default, earliest ``timestamp``) or ``"last"`` label, ``"keep"`` both, or
        ``"error"``.

    Raises
    ------
    ValidationError
        One line naming the file, the field and the record's row: a missing field, a line that is not a labeled
        solution, a rating outside -1/0/+1, a chosen completion that does not exist.
    """
    if phase not in (1, 2, "auto"):
        raise AccordError(f"phase must be 1, 2 or 'auto', got {phase!r}")
    frame, name = frame_or_file(source, dtype=False)
    require_columns(frame, _RECORD_COLUMNS, name, "PRM800K")
    records = frame.reset_index(drop=True)
    # a field that some lines lack is NaN in the frame pandas reads: null, as in those lines (NaN is no text, and true)
    records = records.astype(object).where(records.notna(), None)
    columns: dict[str, list[Any]] = {key: [] for key in _OUTPUT}
    path_keys: list[str] = []
    untexted = {"cut": 0, "alternatives": 0}  # solutions ended, and alternatives left out, at a step without text
    for row, record in enumerate(records.to_dict("records")):  # nested JSON: one record at a time
        _one_record(record, row, phase, alternatives, name, columns, path_keys, untexted)
    _warn_untexted(name, untexted)
    if not columns["step"]:
        raise ValidationError("no rated steps in the file", source=name)
    table = pd.DataFrame(columns)
    table["solution_id"] = content_ids(pd.DataFrame({"key": path_keys}), ["key"], "prm-", unique=False).to_numpy()
    if "timestamp" in records.columns:
        table = table.sort_values("timestamp", kind="stable", na_position="last")
    table = table[["solution_id", *_OUTPUT]].sort_values(["solution_id", "step"], kind="stable")
    table = table.reset_index(drop=True)
    try:
        return validate_steps(table, labels="ternary", duplicates=duplicates, source=name)
    except ValidationError as error:  # named a row of the table built here: name the file's line (and field)
        if error.row is None:
            raise
        raise ValidationError(error.problem, source=name, column={"annotator": "labeler"}.get(error.column,
                              error.column), row=int(table["source_row"].iloc[error.row]), value=error.value) from None


_OUTPUT: tuple[str, ...] = (
    "step", "annotator", "label", "prompt", "step_text", "phase", "generation", "quality_control",
    "initial_screening", "finish_reason", "step_source", "alternative", "flagged", "timestamp",
    "ground_truth_answer", "source_row",
)


def _warn_untexted(source: str, untexted: dict[str, int]) -> None:
    """One warning counting the solutions ended and the alternatives left out at a step without text."""
    cut, left_out = untexted["cut"], untexted["alternatives"]
    if not cut and not left_out:
        return
    parts = ([f"{cut} solution(s) end before a step without text (its later steps left out)"] if cut else []) + (
        [f"{left_out} alternative completion(s) without text left out"] if left_out else [])
    warnings.warn(f"{source}: {' and '.join(parts)}: a step of no text cannot be trained on or scored",
                  stacklevel=3)


def _one_record(record: dict[str, Any], row: int, phase: int | str, alternatives: bool, source: str,
                out: dict[str, list[Any]], path_keys: list[str], untexted: dict[str, int]) -> None:
    if record.get("labeler") is None:  # (else validate_steps named the annotator of a row of the derived table)
        raise ValidationError("missing labeler", source=source, column="labeler", row=row)
    question = _mapping(record.get("question"), "question", row, source)
    label = _mapping(record.get("label"), "label", row, source)
    problem = question.get("problem")
    if not isinstance(problem, str):
        raise ValidationError("missing problem text", source=source, column="question.problem", row=row)
    steps = _sequence(label.get("steps"))
    if steps is None:
        raise ValidationError("missing list of labeled steps", source=source, column="label.steps", row=row)
    pre = question.get("pre_generated_steps")
    line_phase = 2 if isinstance(pre, (list, np.ndarray)) else 1
    if phase != "auto" and line_phase != phase:
        raise ValidationError(f"a phase-{line_phase} record where phase {phase} was asked for (phase 2 records "
                              "have question.pre_generated_steps)", source=source, column="question", row=row)
    pre_steps = [_text(s) for s in pre] if line_phase == 2 else []
    timestamp = record.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):  # texts (ISO times) sort; a mix of kinds cannot
        raise ValidationError("timestamp must be a text (an ISO time) or null", source=source, column="timestamp",
                              row=row, value=timestamp)
    shared = {
        "annotator": record.get("labeler"), "prompt": problem, "phase": line_phase,
        "generation": record.get("generation"),
        "quality_control": bool(record.get("is_quality_control_question") or False),
        "initial_screening": bool(record.get("is_initial_screening_question") or False),
        "finish_reason": label.get("finish_reason"), "timestamp": record.get("timestamp"),
        "ground_truth_answer": question.get("ground_truth_answer"), "source_row": row,
    }
    path: list[tuple[str, int, str, Any]] = []  # (text, rating, source, flagged) of the solution's steps
    for t, step in enumerate(steps):
        step = _mapping(step, f"label.steps[{t}]", row, source)
        completions = _sequence(step.get("completions"), missing=[])
        if completions is None:
            raise ValidationError("expected a list of completions", source=source,
                                  column=f"label.steps[{t}].completions", row=row, value=step.get("completions"))
        ratings = [_rating(c, f"label.steps[{t}].completions[{k}]", row, source) for k, c in enumerate(completions)]
        chosen = _path_step(step, completions, t, line_phase, pre_steps, row, source)
        if alternatives:
            for c, (completion, rating) in enumerate(zip(completions, ratings)):
                if (chosen is not None and chosen[4] == c) or rating is None:
                    continue
                alt = (_text(completion.get("text")), rating, "model", completion.get("flagged"))
                if _blank(alt[0]):
                    untexted["alternatives"] += 1
                    continue
                _emit([*path, alt], problem, shared, True, out, path_keys, None)
        if chosen is None or chosen[1] is None:
            break
        if _blank(chosen[0]):
            untexted["cut"] += 1
            break
        path.append(chosen[:4])
        if _whole(step.get("chosen_completion")) is None and step.get("human_completion") is None \
                and line_phase == 1:
            break  # nothing was chosen to continue with
    if path:
        _emit(path, problem, shared, False, out, path_keys, pre_steps if line_phase == 2 else None)


def _path_step(step: dict[str, Any], completions: list[Any], t: int, line_phase: int, pre_steps: list[str],
               row: int, source: str) -> tuple[str, Any, str, Any, int] | None:
    """``(text, rating, source, flagged, completion index)`` of the solution's step ``t``, or None (path ends)."""
    where = f"label.steps[{t}]"
    if line_phase == 2:
        if t >= len(pre_steps):
            return None
        for c, completion in enumerate(completions):
            completion = _mapping(completion, f"{where}.completions[{c}]", row, source)
            if _text(completion.get("text")).strip() == pre_steps[t].strip():
                rating = _rating(completion, f"{where}.completions[{c}]", row, source)
                return pre_steps[t], rating, "model", completion.get("flagged"), c
        return None
    chosen = _whole(step.get("chosen_completion"))
    if chosen is not None:
        # (a JSON true is no index, though Python counts it as 1)
        if isinstance(chosen, bool) or not isinstance(chosen, (int, np.integer)) or not 0 <= chosen < len(completions):
            raise ValidationError(f"chosen completion does not exist (the step has {len(completions)})",
                                  source=source, column=f"{where}.chosen_completion", row=row, value=chosen)
        completion = _mapping(completions[chosen], f"{where}.completions[{chosen}]", row, source)
        rating = _rating(completion, f"{where}.completions[{chosen}]", row, source)
        return _text(completion.get("text")), rating, "model", completion.get("flagged"), int(chosen)
    human = step.get("human_completion")
    if human is not None:
        text = human.get("text") if isinstance(human, dict) else human
        if text is None or (isinstance(text, float) and np.isnan(text)):
            text = ""  # a null text: no text, which ends the path (_one_record)
        if not isinstance(text, str):
            raise ValidationError("human completion without text", source=source, column=f"{where}.human_completion",
                                  row=row)
        rating = _rating(human, f"{where}.human_completion", row, source) if isinstance(human, dict) else None
        flagged = human.get("flagged") if isinstance(human, dict) else None
        return text, 1 if rating is None else rating, "human", flagged, -1
    if len(completions) == 1:
        completion = _mapping(completions[0], f"{where}.completions[0]", row, source)
        rating = _rating(completion, f"{where}.completions[0]", row, source)
        return _text(completion.get("text")), rating, "model", completion.get("flagged"), 0
    return None


def _emit(path: list[tuple[str, Any, str, Any]], problem: str, shared: dict[str, Any], alternative: bool,
          out: dict[str, list[Any]], path_keys: list[str], whole_solution: list[str] | None) -> None:
    key = "\x1f".join([problem, *(whole_solution if whole_solution else [p[0] for p in path])])
    for t, (text, rating, step_source, flagged) in enumerate(path):
        for name, value in shared.items():
            out[name].append(value)
        out["step"].append(t)
        out["label"].append(rating)
        out["step_text"].append(text)
        out["step_source"].append(step_source)
        out["alternative"].append(alternative)
        out["flagged"].append(flagged)
        path_keys.append(key)


def _rating(completion: Any, where: str, row: int, source: str) -> int | None:
    if not isinstance(completion, dict):
        raise ValidationError("expected an object with text and rating", source=source, column=where, row=row)
    rating = completion.get("rating")
    if rating is None or (isinstance(rating, float) and np.isnan(rating)):
        return None
    if isinstance(rating, bool) or not isinstance(rating, (int, np.integer, float)) or rating not in RATINGS:
        raise ValidationError("rating outside -1/0/+1", source=source, column=f"{where}.rating", row=row,
                              value=rating)
    return int(rating)


def _text(value: Any) -> str:
    """A step's text as read: a null is no text (it was the text 'None', in the step and in the solution's id)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _blank(text: str) -> bool:
    """Whether a step's text is no text: empty or only spaces (what the step readers refuse)."""
    return not text or text.isspace()


def _whole(value: Any) -> Any:
    """An index as read from JSON or Parquet: Parquet stores a struct field with nulls as floats (1.0, NaN)."""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return None
        if float(value).is_integer():
            return int(value)
    return value


def _sequence(value: Any, missing: list[Any] | None = None) -> list[Any] | None:
    """A JSON list as a list: Parquet files and Hugging Face datasets give nested lists as numpy arrays; ``missing``
    for a null; ``None`` for anything else (the caller names it)."""
    if isinstance(value, list):
        return value
    if isinstance(value, np.ndarray):
        return list(value)
    if value is None:
        return missing
    return None


def _mapping(value: Any, where: str, row: int, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("expected an object", source=source, column=where, row=row, value=value)
    return value
