"""Compare fitted rater models: ArviZ's PSIS-LOO comparison and held-out judgment log-likelihood by k-fold."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from accord.datasets import AccordError, Encoded, encode, validate
from accord.datasets.schema import is_validated
from accord.models._data import id_order, with_attrs
from accord.models.base import RaterModel, check_seed

COLUMNS: tuple[str, ...] = ("loo_rank", "elpd_loo", "p_loo", "elpd_diff", "loo_se", "loo_dse", "weight", "loo_warning",
                            "heldout_loglik", "heldout_se", "heldout_diff", "heldout_dse", "n_judgments")


def compare(models: Sequence[RaterModel], judgments: pd.DataFrame, *, k: int = 5, seed: int = 0,
            names: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank rater models on one judgments table, one row per model.

    Two views, both in nats per judgment-level prediction:

    - **PSIS-LOO** (``az.compare`` with ``ic="loo"`` on each model's :meth:`~RaterModel.to_arviz`): ``elpd_loo``
      (sum over judgments), ``p_loo``, ``elpd_diff`` to the best, ``loo_se`` / ``loo_dse``, stacking ``weight``,
      ``loo_warning`` (Pareto k too high) and ``loo_rank``. A model with a single draw (MAP) gets NaN here: LOO needs
      posterior draws. Models fitted on ``judgments`` under their present settings are used as they are; the
      others (not fitted yet, fitted on another table, or given other settings since) are fitted on it, with the
      same settings. A prior fitted to the judgments (empirical Bayes: ``DawidSkene``'s and
      ``HierarchicalDawidSkene``'s by default) is held fixed in the draws, so the left-out judgment still shaped
      it and PSIS-LOO is optimistic where the table is small (the README's model comparison has a measured case):
      read the held-out columns there, which refit the prior.
    - **k-fold held-out judgment log-likelihood**: the judgments are split at random into ``k`` folds (``seed``);
      each model is refitted (same settings) on ``k - 1`` folds and scores ``log p(y_n | training folds)`` of each
      held-out judgment. ``heldout_loglik`` is the mean per judgment, ``heldout_se`` its standard error,
      ``heldout_diff`` / ``heldout_dse`` the mean paired difference to the best model and its standard error
      (the same judgments are scored for every model, so the paired error is the one to read).

    Parameters
    ----------
    models
        Rater models (fitted or not).
    judgments
        The judgments table.
    k
        Number of folds (``k < 2`` skips the held-out part).
    seed
        Seed of the fold assignment.
    names
        Row labels; default ``"<method>:<inference>"`` (numbered when repeated).
    """
    if len(models) == 0:
        raise AccordError("compare needs at least one model")
    if not _whole(k):
        raise AccordError(f"k must be a whole number (below 2 skips the held-out part), not {k!r}")
    check_seed(seed)  # here: numpy refused -1 or 2.5 in its own words, after every model's PSIS-LOO
    for position, model in enumerate(models):
        _check_rater_model(model, f"model {position}")
    table = _read(judgments, models)
    if k >= 2 and len(table) < k:  # named here, before the fits: heldout_loglik names its own setting, folds
        raise AccordError(f"k={k}: {len(table)} judgments cannot be split into {k} folds (k below 2 skips the "
                          "held-out part)")
    encoded = encode(table)
    labels = _names(models, names)

    fitted = [model if _fitted_on(model, encoded) else model.clone().fit(table) for model in models]

    out = pd.DataFrame(index=pd.Index(labels, name="model"), columns=list(COLUMNS), dtype=float)
    out["loo_warning"] = out["loo_warning"].astype(object)
    out["n_judgments"] = encoded.n_judgments
    _loo_part(out, fitted, labels)
    if k >= 2:
        _heldout_part(out, fitted, labels, table, k, seed)
    return out.sort_values(["loo_rank", "heldout_loglik"], ascending=[True, False], na_position="last")


def _names(models: Sequence[RaterModel], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        if len(names) != len(models) or len(set(names)) != len(names):
            raise AccordError("names must be unique, one per model")
        return list(names)
    raw = [f"{m.method}:{m.inference}" for m in models]
    seen: dict[str, int] = {}
    labels = []
    for name in raw:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if raw.count(name) == 1 else f"{name}#{seen[name]}")
    return labels


def _loo_part(out: pd.DataFrame, fitted: list[RaterModel], labels: list[str]) -> None:
    import arviz as az

    idatas = {}
    for name, model in zip(labels, fitted):
        idata = model.to_arviz()
        if idata.posterior.sizes.get("draw", 1) * idata.posterior.sizes.get("chain", 1) > 1:
            _check_finite(name, model, idata.log_likelihood["y"].values)
            idatas[name] = idata
    if not idatas:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(idatas) == 1:
            name, idata = next(iter(idatas.items()))
            loo = az.loo(idata, pointwise=True)
            out.loc[name, ["loo_rank", "elpd_loo", "p_loo", "elpd_diff", "loo_se", "loo_dse", "weight"]] = [
                0, loo.elpd_loo, loo.p_loo, 0.0, loo.se, 0.0, 1.0,
            ]
            out.loc[name, "loo_warning"] = bool(loo.warning)
            return
        table = az.compare(idatas, ic="loo")
    # az.compare's column -> ours
    renamed = {"rank": "loo_rank", "elpd_loo": "elpd_loo", "p_loo": "p_loo", "elpd_diff": "elpd_diff", "se": "loo_se",
               "dse": "loo_dse", "weight": "weight"}
    for name, row in table.iterrows():
        for source, column in renamed.items():
            out.loc[name, column] = row[source]
        out.loc[name, "loo_warning"] = bool(row["warning"])


def _check_finite(name: str, model: RaterModel, loglik: np.ndarray) -> None:
    """One error naming the model and the first judgment whose log-likelihood is -inf or NaN under some draw: PSIS-LOO
    is undefined there, and az.compare still ranked such a model, with a NaN elpd_loo and a share of the weight."""
    bad = ~np.isfinite(loglik.reshape(-1, loglik.shape[-1]))
    judged = bad.any(axis=0)
    if not judged.any():
        return
    j = int(np.flatnonzero(judged)[0])
    encoded = model.encoded_
    raise AccordError(f"{name}: its per-judgment log-likelihood is not finite in {int(bad[:, j].sum())} of "
                      f"{bad.shape[0]} draws for judgment {j} (pair {encoded.item_index[encoded.items[j]]!r}, "
                      f"annotator {encoded.worker_index[encoded.workers[j]]!r}), {int(judged.sum())} of the table's "
                      "judgments in all: PSIS-LOO is undefined where a judgment's probability is 0 or NaN")


def heldout_loglik(model: RaterModel | Callable[[], RaterModel], judgments: pd.DataFrame, *, folds: int = 5,
                   seed: int = 0) -> np.ndarray:
    """k-fold held-out log predictive density of every judgment: the judgments are split at random into ``folds``
    folds (``seed``; a pair's judgments spread over folds), and each fold is scored by the model refitted (same
    settings) on the others. ``model``: a rater model (fitted or not) or a function returning a fresh one."""
    # fewer than two folds has no training part (and 0 or fewer no fold at all: np.empty's memory came back)
    if not _whole(folds) or folds < 2:
        raise AccordError(f"folds must be a whole number >= 2, not {folds!r}")
    check_seed(seed)
    table = _read(judgments, [model] if isinstance(model, RaterModel) else [])
    n = len(table)
    if n < folds:
        raise AccordError(f"folds={folds}: {n} judgments cannot be split into {folds} folds")
    # the folds dealt in an order of the ids, not of the rows: by position, a row shuffle moved judgments between
    # folds as a change of seed does (the mean held-out log-likelihood of Dawid-Skene by 0.020, a seed by 0.026)
    fold = np.empty(n, dtype=np.int64)
    fold[id_order(table)] = np.random.default_rng(seed).permutation(n) % folds
    out = np.empty(n)
    for f in range(folds):
        test = fold == f
        source = model if isinstance(model, RaterModel) else _check_rater_model(
            model() if callable(model) else model, "model")
        values = np.asarray(source._heldout_loglik(with_attrs(table[~test], table), with_attrs(table[test], table)),
                            dtype=float)
        if values.shape != (int(test.sum()),):
            raise AccordError(f"{type(source).__name__}: held-out log-likelihood has shape {values.shape}, expected "
                              f"({int(test.sum())},)")
        out[test] = values
    return out


def _check_rater_model(model: object, what: str) -> RaterModel:
    """``model`` when it is a rater model; else one error saying what it is (a baseline, a step or multi-attribute
    model, a method name, a model class): these have no posterior to export nor a held-out predictive, and failed
    deep inside with an AttributeError or a TypeError."""
    if isinstance(model, RaterModel):
        return model
    if isinstance(model, type) and issubclass(model, RaterModel):
        raise AccordError(f"{what} is the class {model.__name__}: pass a model, {model.__name__}()")
    raise AccordError(f"{what} is a {type(model).__name__}, not a rater model of accord.models: only those "
                      "(Dawid-Skene, MACE, GLAD, crowd Bradley-Terry, ...) export a posterior and score held-out "
                      "judgments; baselines, step and multi-attribute models do not")


def _read(judgments: pd.DataFrame, models: Sequence[RaterModel]) -> pd.DataFrame:
    """``judgments`` validated in the form and scale of the fitted models (as their own ``predictive_loglik``
    reads a plain table): validated without it, a table of categorical or graded labels was read as preferences
    and a model fitted on it refused its own judgments ('label outside the declared set {A, B, tie}'). Unfitted
    models have no form yet: the table is read as ``validate`` infers it."""
    if is_validated(judgments):
        return judgments
    forms = {(model.encoded_.form, model.encoded_.scale) for model in models if hasattr(model, "soft_labels_")}
    if len(forms) > 1:
        raise AccordError("the fitted models were fitted on labels of different forms "
                          f"({', '.join(f'{form} (scale {scale})' for form, scale in sorted(forms, key=str))}): "
                          "validate the judgments table (accord.datasets.validate) in the form to compare on")
    if not forms:
        return validate(judgments)
    form, scale = forms.pop()
    return validate(judgments, form=form, scale=scale)


def _fitted_on(model: RaterModel, encoded: Encoded) -> bool:
    """Whether ``model`` was fitted on the table ``encoded`` codes: the same judgments (pair, rater, label, in
    order) and ids. The number of judgments alone took a fit on another table of the same size for one on this.
    And under its present settings: after a ``set_params`` the PSIS-LOO column scored the earlier fit while the
    held-out column refitted with the new settings, two models in one row."""
    if not hasattr(model, "soft_labels_") or model.__dict__.get("_fitted_settings") != model.get_params():
        return False
    mine = model.encoded_
    return (mine.n_judgments == encoded.n_judgments and tuple(mine.classes) == tuple(encoded.classes)
            and mine.item_index.equals(encoded.item_index) and mine.worker_index.equals(encoded.worker_index)
            and all(np.array_equal(getattr(mine, name), getattr(encoded, name))
                    for name in ("items", "workers", "labels")))


def _whole(value: object) -> bool:
    """An int that is not a bool (``True`` would be one fold)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _heldout_part(out: pd.DataFrame, fitted: list[RaterModel], labels: list[str], table: pd.DataFrame, k: int,
                  seed: int) -> None:
    n = len(table)
    scores = np.zeros((len(fitted), n))
    for m, model in enumerate(fitted):
        try:
            scores[m] = heldout_loglik(model, table, folds=k, seed=seed)
        except NotImplementedError:
            scores[m] = np.nan
    means = scores.mean(1)
    best = int(np.nanargmax(means)) if np.isfinite(means).any() else 0
    for m, name in enumerate(labels):
        diff = scores[m] - scores[best]
        out.loc[name, ["heldout_loglik", "heldout_se", "heldout_diff", "heldout_dse"]] = [
            means[m], scores[m].std(ddof=1) / np.sqrt(n), diff.mean(), diff.std(ddof=1) / np.sqrt(n)]
