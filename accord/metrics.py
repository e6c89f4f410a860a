"""Accuracy, negative log-likelihood, Brier score and expected calibration error.

A leaf: imports no other accord module.

Probabilities come as a DataFrame (index = pair or item id, one column per class), or as a model's ``soft_labels_``,
and gold labels as a Series on the same ids; only ids present in both are scored. Tie handling in :func:`accuracy`
is explicit: gold ties are either excluded (the default: pairwise accuracy is about which side is better) or counted
as ordinary classes, and an exact tie among the predicted top classes goes to the first column (the default) or is
split among them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

EPS = 1e-12


def _class_columns(probs: Any) -> Any:
    """``probs`` as one column per class: a model's ``soft_labels_`` (anything that holds its probabilities as a
    ``probs`` frame; duck-typed, this module imports no other accord module) is read as them. A column that holds no
    numbers (``soft_labels_.to_frame()``'s ``method``) is an error naming it, not pandas' 'could not convert string
    to float'."""
    if not isinstance(probs, (pd.DataFrame, pd.Series)) and isinstance(getattr(probs, "probs", None), pd.DataFrame):
        return probs.probs
    if isinstance(probs, pd.DataFrame):
        # numbers stored as objects (a JSON read with dtype=False) are numbers still
        # by position: a class given twice is refused later, naming it (by name, its two columns come as a frame)
        columns = [(name, probs.iloc[:, at]) for at, name in enumerate(probs.columns)]
        text = [name for name, values in columns if not pd.api.types.is_numeric_dtype(values)
                and (pd.to_numeric(values, errors="coerce").isna() & values.notna()).any()]
        if text:
            raise ValueError(f"column {text[0]!r} holds no numbers: pass one column per class (a model's "
                             "soft_labels_, or soft_labels_.probs)")
    return probs


def _unique_ids(index: pd.Index, what: str) -> None:
    """One error naming an id given twice: gold taken per judgment holds a pair once per judgment, and a repeated id
    put rows of the probabilities against the wrong gold (or failed in numpy's words)."""
    if not index.is_unique:
        repeated = index[index.duplicated()][0]
        raise ValueError(f"{what}: id {repeated!r} appears {int((index == repeated).sum())} times (one row per id; "
                         "take gold labels per pair, not per judgment)")


def _align(probs: pd.DataFrame, gold: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    probs = _class_columns(probs)
    gold = gold.dropna()
    _unique_ids(probs.index, "probabilities")
    _unique_ids(gold.index, "gold labels")
    common = probs.index.intersection(gold.index)
    if len(common) == 0:
        raise ValueError("no ids in common between the probabilities and the gold labels")
    return _check_probs(probs.loc[common]), gold.loc[common]


def _check_probs(probs: pd.DataFrame, *, scores: bool = False) -> pd.DataFrame:
    """``probs`` once every value is a probability (with ``scores``, any number: only the argmax is read): a NaN
    would be dropped by argmax, ignored by the NLL of another class and turn the Brier score into NaN, so each
    score would silently mean something else."""
    if not probs.columns.is_unique:  # two columns of a class: which is its probability? (pandas failed to reindex)
        repeated = probs.columns[probs.columns.duplicated()][0]
        raise ValueError(f"{'scores' if scores else 'probabilities'}: column {repeated!r} appears "
                         f"{int((probs.columns == repeated).sum())} times (one column per class)")
    values = probs.to_numpy(dtype=float)
    # written so that NaN is outside too
    outside = np.isnan(values) if scores else ~((values >= 0.0) & (values <= 1.0))
    if outside.any():
        row, col = (int(i[0]) for i in np.nonzero(outside))
        what = "scores: {} values are NaN" if scores else "probabilities: {} values are not in [0, 1]"
        raise ValueError(f"{what.format(int(outside.sum()))} (id {probs.index[row]!r}, column {probs.columns[col]!r}: "
                         f"{values[row, col]!r})")
    return probs


def _gold_codes(probs: pd.DataFrame, gold: pd.Series) -> np.ndarray:
    codes = pd.Index(probs.columns).get_indexer(gold.to_numpy())
    if (codes < 0).any():
        unknown = gold.to_numpy()[codes < 0][0]
        raise ValueError(f"gold label {unknown!r} is not one of the classes {list(probs.columns)}")
    return codes


def with_gold_classes(probs: pd.DataFrame, gold: pd.Series) -> pd.DataFrame:
    """``probs`` with a column of zeros for each gold class that is none of its columns, to score gold against.

    A model's classes are those of the labels (and the classes a user declares), never gold's: a gold class no rater
    gave is one the model never predicts. So scored, :func:`accuracy` counts it wrong, :func:`nll` reads the
    probability 0 clipped at 1e-12 (``-log(1e-12)``, about 27.6, for each such item: finite, and the worst an item can
    score), :func:`brier` adds its one-hot's 1 and :func:`ece` counts the top class wrong. Classes are matched as
    numbers (gold 3.0 is the int column 3); a whole gold class none of the int columns holds is added in their type
    (3, not 3.0), any other (2.5) beside the int columns as they are.
    """
    known = set(probs.columns)  # a set: gold 3.0 is the class 3, as equal numbers hash alike
    missing = [c for c in pd.unique(gold.dropna().to_numpy()) if c not in known]
    if not missing:
        return probs
    added, mixed = pd.Index(missing), False
    if pd.api.types.is_integer_dtype(probs.columns.dtype):
        # int classes and float gold (3.0, as a column with a gap reads): concat made every column a float
        # (1 -> 1.0); a whole gold class comes in the columns' type, any other beside the columns' own values
        whole = [_whole(c, probs.columns.dtype) for c in missing]
        mixed = any(w is None for w in whole)
        added = pd.Index([c if w is None else w for c, w in zip(missing, whole)],
                         dtype=object if mixed else probs.columns.dtype)
    out = pd.concat([probs, pd.DataFrame(0.0, index=probs.index, columns=added)], axis=1)
    if mixed:  # concat would turn the int columns into floats again
        out.columns = pd.Index([*probs.columns, *added], dtype=object)
    return out


def _whole(value: Any, dtype: np.dtype) -> int | None:
    """``value`` as an int of ``dtype``'s range where it is a whole number (3.0 -> 3), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    if not float(value).is_integer():  # NaN and inf are not
        return None
    info = np.iinfo(dtype)
    return int(value) if info.min <= value <= info.max else None


def accuracy(
    predicted: pd.Series | pd.DataFrame,
    gold: pd.Series,
    *,
    ties: Literal["exclude", "count"] = "exclude",
    predicted_ties: Literal["first", "split"] = "first",
) -> float:
    """Share of items whose predicted label equals gold.

    ``predicted`` is a Series of labels, a DataFrame of class probabilities or any scores (its argmax is taken; a
    NaN is an error) or a model's ``soft_labels_``. An exact tie between the top classes of a DataFrame is scored
    by ``predicted_ties``: ``"first"`` (the default) lets the first column win, so a tied item is right or wrong by
    the column order; ``"split"`` credits an item whose ``k`` top classes include gold with ``1/k``, the expected
    accuracy of a random tie-break (how published majority-vote figures are usually measured). A Series of labels
    has no ties to split. With ``ties="exclude"`` items whose gold is ``"tie"`` are left out (NaN when that leaves
    none).
    """
    # any other ties= counted the gold ties as classes: a typo ("excluded") moved the figure without a word
    if ties not in ("exclude", "count"):
        raise ValueError(f"ties must be 'exclude' or 'count', not {ties!r}")
    if predicted_ties not in ("first", "split"):
        raise ValueError(f"predicted_ties must be 'first' or 'split', not {predicted_ties!r}")
    predicted = _class_columns(predicted)
    scores = None
    if isinstance(predicted, pd.DataFrame):
        scores = _check_probs(predicted, scores=True)
        predicted = scores.idxmax(axis=1)
    gold = gold.dropna()
    _unique_ids(predicted.index, "probabilities" if scores is not None else "predictions")
    _unique_ids(gold.index, "gold labels")
    common = predicted.index.intersection(gold.index)
    if len(common) == 0:
        raise ValueError("no ids in common between the predictions and the gold labels")
    gold = gold.loc[common]
    if ties == "exclude":
        # every gold label a tie: no side to get right (this said "no ids in common", failing metrics.score)
        gold = gold[gold.astype(str) != "tie"]
        if gold.empty:
            return float("nan")
    if predicted_ties == "split" and scores is not None:
        values = scores.loc[gold.index].to_numpy(dtype=float)
        top = values == values.max(axis=1, keepdims=True)
        codes = pd.Index(scores.columns).get_indexer(gold.to_numpy())
        # a gold label that is no column (code -1) is wrong, as under "first", not the last column's credit
        hit = np.where(codes >= 0, top[np.arange(len(codes)), codes], False)
        return float((hit / top.sum(axis=1)).mean())
    return float((predicted.loc[gold.index].to_numpy() == gold.to_numpy()).mean())


def nll(probs: pd.DataFrame, gold: pd.Series) -> float:
    """Mean negative log probability of the gold class (probabilities clipped at 1e-12)."""
    probs, gold = _align(probs, gold)
    p = probs.to_numpy(dtype=float)[np.arange(len(gold)), _gold_codes(probs, gold)]
    # + 0.0: every gold class at probability 1 gave -0.0, which the command line printed as 'NLL -0.000'
    return float(-np.log(np.clip(p, EPS, 1.0)).mean()) + 0.0


def brier(probs: pd.DataFrame, gold: pd.Series) -> float:
    """Mean over items of the squared distance between the probability vector and the one-hot gold."""
    probs, gold = _align(probs, gold)
    onehot = np.zeros(probs.shape)
    onehot[np.arange(len(gold)), _gold_codes(probs, gold)] = 1.0
    return float(((probs.to_numpy(dtype=float) - onehot) ** 2).sum(axis=1).mean())


def calibration_error(predicted: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of probabilities ``predicted`` against outcomes in [0, 1].

    ``n_bins`` equal-width bins on the predicted probability with edges ``k / n_bins``, closed on the left like
    :func:`numpy.histogram`'s (the last also on the right, so 1 is in it): a probability exactly on an edge ``k / n``
    is in bin ``k`` whatever the float rounding of ``predicted * n`` (``(1/49) * 49`` rounds below 1, so
    ``floor(predicted * n)`` put 1/49 in bin 0). The error is ``sum_b (n_b / n) |mean(predicted_b) -
    mean(outcome_b)|``. ``outcome`` may be 0/1 events or, on synthetic data, true probabilities. A NaN or a value
    outside [0, 1] in either is an error naming it, not a NaN result.
    """
    predicted = np.asarray(predicted, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    if predicted.shape != outcome.shape or predicted.ndim != 1:
        raise ValueError("predicted and outcome must be 1-d arrays of equal length")
    if len(predicted) == 0:
        raise ValueError("no predictions to score")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a whole number >= 1, not {n_bins!r}")
    for name, values in (("predicted", predicted), ("outcome", outcome)):
        outside = ~((values >= 0.0) & (values <= 1.0))  # written so that NaN is outside too
        if outside.any():
            at = int(np.flatnonzero(outside)[0])
            raise ValueError(f"{name}: {int(outside.sum())} values are not probabilities in [0, 1] "
                             f"(position {at}: {values[at]!r})")
    edges = np.arange(n_bins + 1) / n_bins  # each edge k / n correctly rounded, as a caller writes it
    bins = np.minimum(np.searchsorted(edges, predicted, side="right") - 1, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(
        np.bincount(bins, weights=predicted, minlength=n_bins) - np.bincount(bins, weights=outcome, minlength=n_bins)
    )
    return float(gap.sum() / count.sum())


def ece(probs: pd.DataFrame, gold: pd.Series, n_bins: int = 10) -> float:
    """Top-label expected calibration error: confidence of the most likely class against whether it was right.

    On an exact tie between classes the first column is the most likely class, as in :func:`accuracy` (so a tied
    pair scores right or wrong by the column order; the benchmarks' vote-fraction figures were measured this way)."""
    probs, gold = _align(probs, gold)
    values = probs.to_numpy(dtype=float)
    top = values.argmax(axis=1)
    confidence = values[np.arange(len(top)), top]
    correct = (top == _gold_codes(probs, gold)).astype(float)
    return calibration_error(confidence, correct, n_bins)


def score(probs: pd.DataFrame, gold: pd.Series, n_bins: int = 10) -> dict[str, float | int]:
    """Accuracy (gold ties excluded), NLL, Brier and ECE in one dict, plus the number of scored items."""
    probs_aligned, gold_aligned = _align(probs, gold)
    return {
        "accuracy": accuracy(probs_aligned, gold_aligned),
        "nll": nll(probs_aligned, gold_aligned),
        "brier": brier(probs_aligned, gold_aligned),
        "ece": ece(probs_aligned, gold_aligned, n_bins),
        "n": len(gold_aligned),  # a count: 16, not 16.0 (as the reward layer writes its counts)
    }
