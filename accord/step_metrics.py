"""Measures for step labels against the truth: first-error localisation and per-step calibration (a leaf, like
:mod:`accord.metrics`).

First errors are positions ``0..T`` with ``T`` (the number of steps) meaning "no wrong step". ProcessBench (Zheng
et al. 2024) scores localisation as the harmonic mean (F1) of the accuracy on solutions that have an error
(the first wrong step must be found exactly) and on solutions that have none (no error may be reported).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from accord.metrics import EPS, calibration_error


def _aligned(predicted: pd.Series, truth: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    common = predicted.index.intersection(truth.index)
    if len(common) == 0:
        raise ValueError("no ids in common between the predictions and the truth")
    return predicted.loc[common].to_numpy(), truth.loc[common].to_numpy(), common


def first_error_scores(predicted: pd.Series, truth: pd.Series, n_steps: pd.Series) -> dict[str, float]:
    """Exact first-error recovery and ProcessBench's F1, on the solutions present in all three Series.

    Returns ``recovery`` (share of solutions whose first-error position, "none" included, is exactly right),
    ``accuracy_erroneous`` (on solutions with an error), ``accuracy_correct`` (on solutions without), their
    harmonic mean ``f1`` and the counts ``n``, ``n_erroneous``.
    """
    guess, true, common = _aligned(predicted, truth)
    length = n_steps.loc[common].to_numpy()
    hit = guess == true
    erroneous = true < length
    acc_err = float(hit[erroneous].mean()) if erroneous.any() else float("nan")
    acc_ok = float(hit[~erroneous].mean()) if (~erroneous).any() else float("nan")
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0
    return {"recovery": float(hit.mean()), "accuracy_erroneous": acc_err, "accuracy_correct": acc_ok, "f1": f1,
            "n": float(len(common)), "n_erroneous": float(erroneous.sum())}


def step_label_scores(p_correct: pd.Series, truth: pd.Series, n_bins: int = 10) -> dict[str, float]:
    """Step accuracy (threshold 0.5), NLL, Brier score and ECE of ``P(step correct)`` against the true steps.

    Both Series are indexed by ``(solution_id, step)``; ``truth`` holds booleans (or 0/1).
    """
    p, true, _ = _aligned(p_correct, truth)
    p = p.astype(float)
    outcome = true.astype(float)
    likelihood = np.where(outcome == 1.0, p, 1.0 - p)
    return {
        "accuracy": float(((p >= 0.5) == (outcome == 1.0)).mean()),
        "nll": float(-np.log(np.clip(likelihood, EPS, 1.0)).mean()),
        "brier": float(((p - outcome) ** 2).mean()),
        "ece": calibration_error(p, outcome, n_bins),
        "n": float(len(p)),
    }
