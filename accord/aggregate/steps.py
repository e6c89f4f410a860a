"""Step labels: the vote baselines, the step-level methods by name, and the cleaned step dataset.

====================  ===========================================================================================
``majority``          per-step majority vote (flags against the other labels; a tie is no flag)
``vote-fraction``     per-step share of labels that do not flag the step
``dawid-skene``       :class:`~accord.models.step_dawid_skene.StepDawidSkene`: a confusion matrix per rater across
                      steps
``first-error``       :class:`~accord.models.first_error.FirstErrorModel`: the first wrong step as the latent
                      variable, raters' sensitivity and specificity
====================  ===========================================================================================
"""

from __future__ import annotations

import importlib
import numbers
from typing import Any

import numpy as np
import pandas as pd

from accord._settings import ConstructorSettings
from accord.aggregate.methods import check_setting_names
from accord.datasets import AccordError, ValidationError, weight_from_uncertainty
from accord.datasets.cleaned import as_text, cleaned_step_prompts, only_texts
from accord.datasets.schema import checked_info
from accord.datasets.steps import EncodedSteps, StepLabels, encode_steps, validate_steps
from accord.datasets.steps.cleaned import check_blank_steps
from accord.datasets.steps.labels import position_index

# name -> (module, class). Rater models are imported on first use (Pyro is slow to import).
STEP_METHODS: dict[str, tuple[str, str]] = {
    "majority": ("accord.aggregate.steps", "StepMajorityVote"),
    "vote-fraction": ("accord.aggregate.steps", "StepVoteFraction"),
    "dawid-skene": ("accord.models.step_dawid_skene", "StepDawidSkene"),
    "first-error": ("accord.models.first_error", "FirstErrorModel"),
}


def make_step_method(name: str, **settings: Any) -> Any:
    """An unfitted step-level aggregator for ``name`` (one of :data:`STEP_METHODS`)."""
    if name not in STEP_METHODS:
        raise AccordError(f"unknown step method '{name}' (choose from {', '.join(STEP_METHODS)})")
    module, cls = STEP_METHODS[name]
    estimator_cls = getattr(importlib.import_module(module), cls)
    # as make_method: the constructor's TypeError ("StepMajorityVote() takes no arguments") named no setting
    check_setting_names(name, estimator_cls, settings)
    return estimator_cls(**settings)


def fit_step_method(name: str, judgments: pd.DataFrame, **settings: Any) -> Any:
    """Fit step method ``name`` on a step-judgments table; its ``step_labels_`` hold the result."""
    return make_step_method(name, **settings).fit(judgments)


class StepMajorityVote(ConstructorSettings):
    """Per-step majority vote: a step is wrong when more of its labels flag it than not (``P(correct)`` 0), else
    correct (1), a tie included.

    ``P(first error at t)`` follows from the step labels as if steps erred independently: all of it on the first
    step the majority flags, which is the predicted first error and the one the evaluation reads from the labels
    (:func:`accord.step_metrics.first_flagged_step`, the first step labelled below 1/2). No uncertainty (NaN).
    """

    method = "majority"

    def fit(self, judgments: pd.DataFrame) -> "StepMajorityVote":
        encoded = encode_steps(judgments)
        flags, total = _flag_counts(encoded)
        # a tie is no flag, in the labels themselves: a tie labelled 0.5 gave a first-error distribution whose mode
        # (the written first_error) was the tied step or one before the flag ([1, 0.5, 0.5, 0]: step 1), while the
        # evaluation's truth of the same labels (the first step labelled below 1/2) was the flagged step (3)
        p_correct = (2 * flags <= total).astype(float)
        self.step_labels_ = _independent(encoded, p_correct, total, self.method)
        return self

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        return self.fit(judgments).step_labels_.most_likely_first_error()


class StepVoteFraction(ConstructorSettings):
    """Per-step vote fraction: ``P(step correct)`` = the share of its labels that do not flag it. No uncertainty."""

    method = "vote-fraction"

    def fit(self, judgments: pd.DataFrame) -> "StepVoteFraction":
        encoded = encode_steps(judgments)
        flags, total = _flag_counts(encoded)
        self.step_labels_ = _independent(encoded, 1.0 - flags / total, total, self.method)
        return self

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        return self.fit(judgments).step_labels_.most_likely_first_error()


def _flag_counts(encoded: EncodedSteps) -> tuple[np.ndarray, np.ndarray]:
    n_cells = int(encoded.n_steps.sum())
    cells = encoded.step_cells
    flags = np.bincount(cells, weights=encoded.flags.astype(float), minlength=n_cells)
    total = np.bincount(cells, minlength=n_cells).astype(float)
    return flags, total


def _independent(encoded: EncodedSteps, p_correct: np.ndarray, total: np.ndarray, method: str) -> StepLabels:
    index = encoded.step_index()
    return StepLabels.from_independent_steps(
        p_correct=pd.Series(p_correct, index=index),
        uncertainty=pd.Series(np.nan, index=index),
        n_judgments=pd.Series(total.astype(np.int64), index=index),
        method=method,
    )


# -- the cleaned step dataset --------------------------------------------------------------------------------------


def build_cleaned_steps(step_labels: StepLabels, judgments: pd.DataFrame) -> pd.DataFrame:
    """One row per solution in the layout of :mod:`accord.datasets.steps.cleaned` (its columns in that order).

    The step texts come from the judgments' ``step_text`` column and the prompt from ``prompt`` (empty when there
    is none); ``problem_id`` is carried over when the judgments have it.
    """
    validated = checked_info(judgments, "accord_steps") is not None
    judgments = judgments if validated else validate_steps(judgments)
    check_step_texts(judgments)
    steps = step_labels.steps
    keys = pd.MultiIndex.from_arrays([judgments["solution_id"], judgments["step"]], names=["solution_id", "step"])
    texts = pd.Series(judgments["step_text"].to_numpy(), index=keys).dropna()
    texts = texts[~texts.index.duplicated()].reindex(steps.index)
    if texts.isna().any():
        solution, step = texts.index[int(np.flatnonzero(texts.isna().to_numpy())[0])]
        raise AccordError(f"column 'step_text': step {step} of solution {solution!r} has no text")

    solution_ids = step_labels.solution_ids
    n_steps = step_labels.n_steps.reindex(solution_ids).to_numpy()
    ends = np.cumsum(n_steps)[:-1]
    positions_end = np.cumsum(n_steps + 1)[:-1]
    per_solution = judgments.groupby("solution_id", sort=False)
    prompt = np.full(len(solution_ids), "")
    if "prompt" in judgments.columns:  # a missing prompt is no prompt (a categorical column refused fillna(""))
        # chat messages stay messages, which each reader renders with its tokenizer (their Python repr was written,
        # then 'role: content' lines that a chat-template backbone read only from this file)
        prompt = cleaned_step_prompts(per_solution["prompt"].first().reindex(solution_ids))
    # in the steps' order of solutions, as every other column: a StepLabels built with its first_error listing the
    # solutions in another order gave each solution another's p_first_error (beside its own p_all_correct)
    first_error = step_labels.first_error.reindex(position_index(solution_ids, n_steps))
    last_uncertainty = first_error["uncertainty"].to_numpy()[np.cumsum(n_steps + 1) - 1]
    uncertainty = steps["uncertainty"].to_numpy(dtype=float)
    out = pd.DataFrame({
        "solution_id": np.asarray(solution_ids),
        "prompt": prompt,
        # a step that is a number (JSON's "step_text": 42) is its text, as in the pairwise dataset: it was refused
        # as "every step must be a text" when written, after the fit
        "completions": _lists(as_text(texts), ends),
        "labels": _lists(steps["p_correct"].to_numpy(dtype=float), ends),
        "label_uncertainty": _lists(uncertainty, ends),
        "label_weights": _lists(weight_from_uncertainty(uncertainty), ends),
        "p_first_error": _lists(first_error["p_first_error"].to_numpy(dtype=float), positions_end),
        "p_all_correct": step_labels.p_all_correct.reindex(solution_ids).to_numpy(),
        "outcome_weight": weight_from_uncertainty(last_uncertainty),
        "first_error": step_labels.most_likely_first_error().reindex(solution_ids).to_numpy(),
        "n_steps": n_steps,
        "n_judgments": steps["n_judgments"].groupby(level="solution_id", sort=False).sum()
        .reindex(solution_ids).to_numpy(),
        "n_annotators": per_solution["annotator"].nunique().reindex(solution_ids).to_numpy(),
    })
    if "problem_id" in judgments.columns:
        out["problem_id"] = per_solution["problem_id"].first().reindex(solution_ids).to_numpy()
    # what write_cleaned_steps records without being told, as build_cleaned's output for write_cleaned
    out.attrs["provenance"] = {k: v for k, v in (("method", step_labels.method),
                                                  ("source", judgments.attrs.get("source"))) if v is not None}
    return out


def check_step_texts(judgments: pd.DataFrame, source: str | None = None, *, rows_as_given: bool = True) -> None:
    """Every step of a validated step-judgments table has its text in one of its rows (``step_text``), as
    :func:`build_cleaned_steps` needs: checked before a fit, so that the error does not wait for it. One error naming
    ``source``, the column and the first row of the first step without a text (``rows_as_given=False``: the rows are
    not the input's, some dropped as duplicates, and no row is named)."""
    if "step_text" not in judgments.columns:
        raise ValidationError("the cleaned step dataset needs the text of each step", source=source,
                              column="step_text")
    texts = judgments["step_text"]
    if not only_texts(texts):  # (a column of texts, told at C speed, holds none)
        # a list or a dict is no step's text (a number is, as written): it was refused at the write, after the fit, as
        # "column 'completions', row 0" of the output, naming no file
        other = ~texts.map(_text_like).to_numpy(dtype=bool)
        if other.any():
            row = int(np.flatnonzero(other)[0])
            raise ValidationError(f"step {int(judgments['step'].iloc[row])} of solution "
                                  f"{_plain(judgments['solution_id'].iloc[row])!r}: a step's text must be a text, not "
                                  f"a {_kind(texts.iloc[row])}", source=source, column="step_text",
                                  row=row if rows_as_given else None)
    # a text of nothing but spaces is no step (the step readers refuse it: check_blank_steps), refused before the fit
    # rather than in the file it writes. Texts as written: a number is one
    written = np.flatnonzero((texts.notna() if only_texts(texts) else texts.map(lambda v: isinstance(v, str)))
                             .to_numpy(dtype=bool))
    try:
        check_blank_steps(np.ones(len(written), dtype=np.int64), texts.iloc[written].tolist(), source,
                          column="step_text")
    except ValidationError as error:
        row = int(written[error.row])
        raise ValidationError(f"step {int(judgments['step'].iloc[row])} of solution "
                              f"{_plain(judgments['solution_id'].iloc[row])!r} has no text (it is empty or only "
                              "spaces): give the step its text, or leave the solution out", source=source,
                              column="step_text", row=row if rows_as_given else None) from None
    solution = pd.factorize(judgments["solution_id"], sort=False)[0]
    step = judgments["step"].to_numpy(dtype=np.int64)
    # one code per (solution, step), and the texts each has, without a loop over the rows
    cell = pd.factorize(solution * (int(step.max()) + 1) + step, sort=False)[0]
    missing = np.bincount(cell, weights=judgments["step_text"].notna().to_numpy(dtype=float))[cell] == 0
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValidationError(f"step {int(step[row])} of solution {_plain(judgments['solution_id'].iloc[row])!r} has "
                              "no text (the cleaned step dataset needs the text of each step)", source=source,
                              column="step_text", row=row if rows_as_given else None)


def _text_like(value: Any) -> bool:
    """Whether a step text cell is a text as the cleaned step dataset writes it (:func:`as_text`: a text, bytes, a
    number) or missing (no text in this row)."""
    return (isinstance(value, (str, bytes, bytearray, numbers.Number, np.generic)) or value is None
            or value is pd.NA)


def _kind(value: Any) -> str:
    """What a cell holds, as a user names it (Parquet's numpy array of a JSON list is a list)."""
    return "list" if isinstance(value, (list, tuple, np.ndarray)) else type(value).__name__


def _plain(value: Any) -> Any:
    """An id as written (7, not numpy's np.int64(7))."""
    return value.item() if isinstance(value, np.generic) else value


def _lists(values: np.ndarray, ends: np.ndarray) -> list[list[Any]]:
    """``[part.tolist() for part in np.split(values, ends)]``: one list per solution, sliced from one list of the
    values (numpy's split makes an array per part, then each its list: 2.4 s of 38,400 solutions' five columns)."""
    flat = values.tolist()
    bounds = [0, *np.asarray(ends, dtype=np.int64).tolist(), len(flat)]
    return [flat[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
