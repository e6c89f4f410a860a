"""Measures for step labels against the truth: first-error localisation and per-step calibration (a leaf, like
:mod:`accord.metrics`).

First errors are positions ``0..T`` with ``T`` (the number of steps) meaning "no wrong step". ProcessBench (Zheng
et al. 2024) scores localisation as the harmonic mean (F1) of the accuracy on solutions that have an error
(the first wrong step must be found exactly) and on solutions that have none (no error may be reported).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError
from accord.metrics import EPS, calibration_error


def _aligned(predicted: pd.Series, truth: pd.Series, *also: pd.Series,
             names: tuple[str, ...] = ("predicted", "truth", "n_steps")) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    for name, series in zip(names, (predicted, truth, *also)):
        # .loc gave a repeated id once per listing: Series of different lengths, numpy's broadcast error
        repeated = series.index.duplicated()
        if repeated.any():
            label = series.index[int(np.flatnonzero(repeated)[0])]
            what = "step" if isinstance(label, tuple) else "solution"  # (solution_id, step) or solution_id
            raise AccordError(f"{name}: {what} {_plain(label)!r} is listed {int(series.index.isin([label]).sum())} "
                              f"times (one value per {what})")
    common = predicted.index.intersection(truth.index)
    for other in also:  # (solutions missing from one of them were a KeyError, not left out)
        common = common.intersection(other.index)
    if len(common) == 0:
        raise ValueError("no ids in common between the predictions and the truth"
                         + (" and the step counts" if also else ""))
    return predicted.loc[common].to_numpy(), truth.loc[common].to_numpy(), common


def _whole_step_counts(counts: np.ndarray, solutions: Sequence[object]) -> np.ndarray:
    """The step counts as floats, once each is a whole number >= 1, else one error naming the first other solution
    (from ``solutions``): a count of NaN or 2.5 was blamed on the positions beside it, 0 scored a solution of no
    steps as one without error, and a text was Python's TypeError from '<='."""
    number = pd.to_numeric(pd.Series(counts, dtype=object), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(number) & (number >= 1) & (number % 1 == 0)
    if not whole.all():
        at = int(np.flatnonzero(~whole)[0])
        raise AccordError(f"n_steps: every solution has a whole number of steps >= 1 (solution {solutions[at]!r}: "
                          f"{np.asarray(counts[at]).item()!r})")
    return number


def first_error_scores(predicted: pd.Series, truth: pd.Series, n_steps: pd.Series) -> dict[str, float | int]:
    """Exact first-error recovery and ProcessBench's F1, on the solutions present in all three Series.

    Returns ``recovery`` (share of solutions whose first-error position, "none" included, is exactly right),
    ``accuracy_erroneous`` (on solutions with an error), ``accuracy_correct`` (on solutions without), their
    harmonic mean ``f1`` (NaN, like the accuracy it lacks, when there are no solutions of one kind) and the counts
    ``n``, ``n_erroneous``.
    """
    guess, true, common = _aligned(predicted, truth, n_steps)
    length = _whole_step_counts(n_steps.loc[common].to_numpy(), common)
    # a missing truth (NaN) or one past the solution's end counted as a solution without error (NaN < T is False),
    # a missing prediction as a miss: scores of solutions no one localised
    for name, values in (("predicted", guess), ("truth", true)):
        position = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(position) & (position >= 0) & (position <= length) & (position % 1 == 0))
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise AccordError(f"{name}: a first-error position is a step 0..n_steps (n_steps: no wrong step); "
                              f"solution {common[at]!r} has {np.asarray(values[at]).item()!r} with n_steps "
                              f"{int(length[at])} ({int(bad.sum())} of {len(values)} solutions)")
    hit = guess == true
    erroneous = true < length
    acc_err = float(hit[erroneous].mean()) if erroneous.any() else float("nan")
    acc_ok = float(hit[~erroneous].mean()) if (~erroneous).any() else float("nan")
    # without solutions of one kind its accuracy is NaN and so is the harmonic mean (NaN + x > 0 is False: it was
    # 0, the score of a model that localises nothing, given to a perfect one)
    f1 = float("nan") if math.isnan(acc_err + acc_ok) else (
        2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0)
    return {"recovery": float(hit.mean()), "accuracy_erroneous": acc_err, "accuracy_correct": acc_ok, "f1": f1,
            "n": len(common), "n_erroneous": int(erroneous.sum())}  # counts as ints, not 16.0


def step_label_scores(p_correct: pd.Series, truth: pd.Series, n_bins: int = 10) -> dict[str, float | int]:
    """Step accuracy (threshold 0.5), NLL, Brier score and ECE of ``P(step correct)`` against the true steps.

    Both Series are indexed by ``(solution_id, step)``; ``truth`` holds booleans (or 0/1).
    """
    p, true, common = _aligned(p_correct, truth, names=("p_correct", "truth"))
    p = p.astype(float)
    off = ~(np.isfinite(p) & (p >= 0) & (p <= 1))  # (the calibration error's ValueError named 'predicted')
    if off.any():
        at = int(np.flatnonzero(off)[0])
        raise AccordError(f"p_correct: must be probabilities in [0, 1] ({int(off.sum())} of {len(p)} are not; the "
                          f"first at {_plain(common[at])!r}: {float(p[at])!r})")
    # a soft truth (0.7) was read as a wrong step by the accuracy and the NLL (only 1.0 counted as correct)
    outcome = _true_or_false(true, "truth", common).astype(float)
    likelihood = np.where(outcome == 1.0, p, 1.0 - p)
    return {
        "accuracy": float(((p >= 0.5) == (outcome == 1.0)).mean()),
        # + 0.0: steps all scored right with certainty gave -0.0, printed as 'NLL -0.000' (as accord.metrics.nll)
        "nll": float(-np.log(np.clip(likelihood, EPS, 1.0)).mean()) + 0.0,
        "brier": float(((p - outcome) ** 2).mean()),
        "ece": calibration_error(p, outcome, n_bins),
        "n": len(p),
    }


def _plain(label: object) -> object:
    """An index label as written: (solution_id, step) as ('a', 1), not as numpy's ('a', np.int64(1))."""
    if isinstance(label, tuple):
        return tuple(part.item() if isinstance(part, np.generic) else part for part in label)
    return label.item() if isinstance(label, np.generic) else label


def _true_or_false(values: np.ndarray, name: str, index: pd.Index | None = None) -> np.ndarray:
    """``values`` as booleans, once each is True/False or 1/0; else one error naming ``name`` and the first other
    value's position (its ``index`` label when given)."""
    values = np.asarray(values)
    if values.dtype == bool:
        return values
    numeric = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    off = ~np.isin(numeric, (0.0, 1.0))
    if off.any():
        at = int(np.flatnonzero(off)[0])
        label = _plain(index[at]) if index is not None else None
        where = f"at {label!r}" if index is not None else f"at position {at}"
        value = np.asarray(values[at]).item()
        raise AccordError(f"{name}: must be True/False or 1/0 ({int(off.sum())} of {len(values)} values are something "
                          f"else, e.g. a probability or a missing value; the first {where}: {value!r})")
    return numeric == 1.0


def auroc(score: np.ndarray, outcome: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the positive ``outcome`` (True/False or 1/0; Mann-Whitney U with
    mid-ranks for ties); NaN when one class is absent."""
    score = np.asarray(score, dtype=float)
    outcome = np.asarray(outcome)
    # a NaN score is ranked last by pandas (no rank: a NaN AUROC), a NaN outcome is True to astype(bool)
    for name, values in (("score", score), ("outcome", outcome)):
        missing = pd.isna(values)
        if missing.any():
            raise AccordError(f"{name}: {int(missing.sum())} of {len(values)} values are NaN (the first at position "
                              f"{int(np.flatnonzero(missing)[0])})")
    # a soft outcome (a step label of 0.3) was True to astype(bool): every labelled step a positive, the AUROC NaN
    # or that of another question; the caller says where its threshold is (``label >= 0.5``)
    positive = _true_or_false(outcome, "outcome")
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def first_flagged_step(p_correct: np.ndarray, n_steps: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per solution, the first step whose ``P(correct)`` is below ``threshold`` (``T`` when none is): how a process
    reward model localises the first error. ``p_correct`` holds each solution's ``n_steps`` scores in turn."""
    p_correct, n_steps = _steps_of_solutions(p_correct, n_steps)
    solution = np.repeat(np.arange(len(n_steps)), n_steps)
    position = np.arange(len(p_correct)) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
    first = n_steps.copy()
    flagged = p_correct < threshold
    np.minimum.at(first, solution[flagged], position[flagged])
    return first


def _steps_of_solutions(p_correct: np.ndarray, n_steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat step scores and the step counts as arrays, once the counts are whole numbers >= 1 that add up to the
    scores: a solution of no steps took its neighbour's score (``reduceat`` reads an empty segment as the next
    value), and counts that added up to fewer steps than there were scores left the rest out without a word."""
    p_correct = np.asarray(p_correct, dtype=float)
    counts = np.asarray(n_steps)
    if counts.ndim != 1:
        raise AccordError(f"n_steps: one number of steps per solution (a 1-d array), got shape {counts.shape}")
    _whole_step_counts(counts, range(len(counts)))
    counts = counts.astype(np.int64)
    if p_correct.ndim != 1 or int(counts.sum()) != len(p_correct):
        raise AccordError(f"n_steps: the {len(counts)} solutions have {int(counts.sum())} steps in all, but "
                          f"p_correct holds {p_correct.size} step scores")
    # a NaN step was never flagged (its solution predicted to have no error), and 'last' kept a score of 1.5 that
    # 'product' clipped to 1
    off = ~(np.isfinite(p_correct) & (p_correct >= 0) & (p_correct <= 1))
    if off.any():
        at = int(np.flatnonzero(off)[0])
        solution = int(np.searchsorted(np.cumsum(counts), at, side="right"))
        raise AccordError(f"p_correct: must be probabilities in [0, 1] ({int(off.sum())} of {len(p_correct)} are "
                          f"not; the first, step {at - int(np.sum(counts[:solution]))} of solution {solution}: "
                          f"{float(p_correct[at])!r})")
    return p_correct, counts


#: How step scores become one solution score for best-of-n selection.
SOLUTION_AGGREGATES: tuple[str, ...] = ("min", "product", "last")


def solution_scores(p_correct: np.ndarray, n_steps: np.ndarray, how: str) -> np.ndarray:
    """One score per solution from its steps' ``P(correct)``: the weakest step (``min``), the chance that every step
    is right if they erred independently (``product``, as its log: summed in log space, ``-inf`` for a product of
    0) or the last step's (``last``)."""
    if how not in SOLUTION_AGGREGATES:
        raise ValueError(f"unknown aggregate '{how}' (use one of {SOLUTION_AGGREGATES})")
    p_correct, n_steps = _steps_of_solutions(p_correct, n_steps)
    starts = np.cumsum(n_steps) - n_steps
    if how == "last":
        return p_correct[starts + n_steps - 1]
    if how == "min":
        return np.minimum.reduceat(p_correct, starts)
    # the log of each probability as it is: clipped at EPS, every solution with a step below 1e-12 tied at log(EPS)
    # (a step at 1e-15 and one at 1e-30 counted as one score), though min ranks them and the product does; a step of
    # exactly 0 gives -inf, a product of 0, tied with every other such solution as the product is
    with np.errstate(divide="ignore"):
        return np.add.reduceat(np.log(np.clip(p_correct, 0.0, 1.0)), starts)


def best_of_n(score: np.ndarray, correct: np.ndarray, group: np.ndarray) -> dict[str, float | int]:
    """Best-of-n selection: in each group (the candidate solutions of one problem) the highest-scoring candidate is
    picked, a tie broken at random: a tied group counts its tied candidates' mean correctness, as
    :func:`accord.reward.best_of_n.best_of_n_expectation` does (a saturated sigmoid gives many solutions exactly 1,
    and taking the first made the result depend on the order of the rows). Returns the share of groups whose pick
    is ``correct``, with the same share for a uniformly random pick (``random``: the mean correctness within each
    group) and for an oracle (``oracle``: a group with any correct candidate counts), and ``n_groups``,
    ``n_candidates`` (the mean group size)."""
    # a missing correctness (NaN) was skipped by the means: its group's pick counted as no group in the accuracy, yet
    # as one in n_groups; the text "False" was numpy's ValueError
    frame = pd.DataFrame({"group": np.asarray(group), "score": np.asarray(score, dtype=float),
                          "correct": _true_or_false(correct, "correct").astype(float)})
    if frame["group"].isna().any():  # the pick counted them as one problem, the random and oracle columns not at all
        raise AccordError(f"group: {int(frame['group'].isna().sum())} candidates have no problem (group); best-of-n "
                          "compares the candidates of one problem")
    if frame["score"].isna().any():  # never picked, or (a group of them) no pick at all
        raise AccordError(f"score: {int(frame['score'].isna().sum())} candidates have a NaN score (the first at "
                          f"position {int(np.flatnonzero(frame['score'].isna())[0])})")
    top = frame["score"] == frame.groupby("group")["score"].transform("max")
    picked = frame[top].groupby("group", sort=True)["correct"].mean()
    per_group = frame.groupby("group", sort=True)["correct"]
    return {"accuracy": float(picked.mean()), "random": float(per_group.mean().mean()),
            "oracle": float((per_group.max() > 0).mean()), "n_groups": len(picked),
            "n_candidates": float(per_group.size().mean())}
