"""Incremental refits: new judgments added to a fitted model without starting over.

Annotation arrives in batches. Refitting from scratch after each batch repeats the work of every earlier fit; the
fixed point of variational Bayes for the whole data is, however, close to the previous one when the new judgments
are few. :func:`partial_fit` appends the new judgments to the model's codes (only the new rows are validated and
encoded; new pairs and raters get codes after the old ones, in the order :func:`accord.datasets.encode` would give
them) and refits:

- :class:`~accord.models.dawid_skene.DawidSkene` with closed-form VB (``inference="vb"``): VB-EM restarts from the
  previous item posteriors ``q(z)`` (new pairs from their vote fractions) and the previous fitted prior (a fitted
  prior at the upper bound of :data:`~accord.models._vb.PRIOR_BOUNDS`, the mark of a small table with more than one
  fixed point, is refitted cold instead). VB-EM
  converges linearly, and slowly where raters are uncertain, so the warm iteration is accelerated by SQUAREM
  (Varadhan & Roland 2008) on the parameters ``E[log theta]``, ``E[log pi]`` (:func:`warm_vb_dawid_skene`). The
  calibration chosen by an earlier fit (``item_correlation="auto"``, ``vote_shrinkage="auto"``) is kept, since a
  small batch barely moves it, until the judgments have grown by a tenth since it was chosen (then it is chosen
  again, as a cold fit does). Where VB-EM has more than one fixed point, the warm start stays at the one nearest
  the previous fit, which a cold fit need not reach: past the same growth VB-EM is also solved from a cold fit's
  start (its prior, the vote fractions), and of the two fixed points the one with the higher evidence lower bound
  (:func:`~accord.models._vb.evidence_bound`) is kept; below it the warm solve alone stays, near the previous fit.
  ``n_iter_`` counts the kept solve's sweeps;
- every other model, and a Dawid-Skene whose settings changed since its fit (``set_params``): a fit on all
  judgments (the same answer as :meth:`~accord.models.base.RaterModel.fit`, with no
  saving); a model that reads columns of its table beyond the codes (``reads_table``: response ids, context columns,
  covariates) keeps its validated table and refits on it with the new rows appended.

The soft labels are computed afresh; the posterior draws and what is summarised from them (``annotators_``,
``confusion_``, ``class_prior_``, :meth:`~accord.models.base.RaterModel.to_arviz`) on first access, as after a cold
fit, from the same random state a cold fit would use.

References
----------
R. Varadhan, C. Roland (2008). Simple and globally convergent methods for accelerating the convergence of any EM
algorithm. *Scandinavian Journal of Statistics* 35(2), 335-353.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
import torch

from accord.datasets import AccordError, Encoded, ValidationError, validate
from accord.datasets.errors import as_written
from accord.datasets.schema import (REQUIRED_COLUMNS, _sorted_labels, input_row, is_validated,
                                     with_required_columns)
from accord.models._data import vote_fractions
from accord.models._vb import (PRIOR_BOUNDS, PRIOR_TOL, Incidence, VBResult, _vb_m_step, build_incidence,
                               cell_table, dirichlet_expected_log, evidence_bound, fit_confusion_prior_evidence,
                               fit_population_prior_evidence, incidence_from_csr, remaining_distance, row_sums,
                               softmax_last)
from accord._session import seeded
from accord.models.confusion import label_codes

def _codes_extended(index: pd.Index, values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes of ``values`` in ``index``, with unseen values appended in order of first appearance.

    The lookup table is built on the few distinct new values, and the fitted ``index`` is looked up in it: hashing
    into a small table is cheaper than building one over every fitted pair (:func:`_places`)."""
    distinct = pd.Index(pd.unique(values.to_numpy()))
    place = _places(index, distinct)  # for each fitted value, its place among the new ones (-1: not among them)
    known = np.full(len(distinct), -1, dtype=np.int64)
    known[place[place >= 0]] = np.flatnonzero(place >= 0)
    codes = known[distinct.get_indexer(values)]
    unseen = codes < 0
    if unseen.any():
        new_codes, new_values = pd.factorize(values[unseen], sort=False)
        codes[unseen] = len(index) + new_codes
        index = index.append(pd.Index(new_values, name=index.name))
    return codes.astype(np.int64), index


def _places(index: pd.Index, distinct: pd.Index) -> np.ndarray:
    """``distinct.get_indexer(index)``, by Arrow's ``index_in`` where both convert to Arrow arrays of types it can
    compare: an Arrow-backed string index is hashed as it is stored, where pandas first converts every value to a
    Python string (about six times slower on 333k pair ids)."""
    try:
        found = pc.index_in(pa.array(index.array), value_set=pa.array(distinct.array))
    except (pa.ArrowException, TypeError, ValueError):
        return distinct.get_indexer(index)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def validate_new(encoded: Encoded, new_judgments: pd.DataFrame, duplicates: str = "error") -> pd.DataFrame:
    """New judgments validated in the form (scale, categorical classes) of the fitted ones; with
    ``duplicates="keep"`` they may repeat a (pair, rater) among themselves too."""
    missing = [c for c in REQUIRED_COLUMNS if c not in new_judgments.columns]
    if is_validated(new_judgments) and missing:  # pandas carries attrs through rename: was a KeyError
        raise ValidationError("missing required column; the table changed since it was validated: validate it again",
                              column=missing[0])
    return new_judgments if is_validated(new_judgments) else validate(
        new_judgments, form=encoded.form, scale=encoded.scale,
        # classes read off the fitted labels grow with the data (extend_encoded); only declared ones refuse a label
        classes=list(encoded.classes) if encoded.form == "categorical" and encoded.classes_declared else None,
        duplicates="keep" if duplicates == "keep" else "error")


def extend_encoded(encoded: Encoded, new_judgments: pd.DataFrame, duplicates: str = "error") -> Encoded:
    """``encoded`` with the judgments of a new table appended (its labels must be among the fitted classes, but for
    a first tie of preference labels, which adds the class ``"tie"`` as a fit of all judgments has it, and for new
    categorical classes where none were declared, which grow the classes as :func:`_grown_classes` does); with
    ``duplicates="error"``, none may be of a pair by a rater whose judgment of it was fitted."""
    if duplicates not in ("error", "keep"):
        raise AccordError(f"duplicates must be 'error' or 'keep' when judgments are added, not {duplicates!r}")
    table = validate_new(encoded, new_judgments, duplicates)
    form = table.attrs["accord"]["form"]
    if form != encoded.form:
        raise AccordError(f"the new judgments are {form} labels; the model was fitted on {encoded.form} labels")
    for column, index in (("pair_id", encoded.item_index), ("annotator", encoded.worker_index)):
        _check_id_kind(index, table[column], column)
    items, item_index = _codes_extended(encoded.item_index, table["pair_id"])
    workers, worker_index = _codes_extended(encoded.worker_index, table["annotator"])
    classes = tuple(encoded.classes)
    if form == "preference" and "tie" not in classes and (table["label"] == "tie").any():
        # a fit of all judgments has the classes (A, B, tie) once one of them is a tie (accord.datasets.encode), and A
        # and B keep their codes: the first tie of a stream was refused ('not one of the fitted classes'). A gold
        # tie adds none: gold never makes a class of the model (encode)
        classes = (*classes, "tie")
    if form == "categorical" and not encoded.classes_declared:
        # classes that were read off the fitted labels, not declared: a fit of all the judgments has the new batch's
        # classes too, sorted as accord.datasets.encode sorts them (the fitted labels' codes move with them)
        encoded = _grown_classes(encoded, table)
        classes = encoded.classes
    unknown = ~pd.Index(table["label"]).isin(list(classes))
    if unknown.any():  # a table validated with classes of its own: label_codes' error named no row, and numpy's repr
        row = int(np.flatnonzero(unknown)[0])
        value = table["label"].iloc[row]
        raise AccordError(f"column 'label', row {input_row(table, row)}: the new judgments' label "
                          f"{as_written(value)!r} is not one of the fitted "
                          f"classes {list(classes)}")
    labels = label_codes(replace(encoded, classes=classes), table).astype(np.int64)
    if duplicates == "error":
        _check_no_repeats(encoded, items, workers, len(worker_index), table)
    return replace(encoded, items=np.concatenate([encoded.items, items]),
                   workers=np.concatenate([encoded.workers, workers]),
                   labels=np.concatenate([encoded.labels, labels]), item_index=item_index, worker_index=worker_index,
                   classes=classes)


def _grown_classes(encoded: Encoded, table: pd.DataFrame) -> Encoded:
    """``encoded`` on the classes of its labels and of ``table``'s labels (gold never makes a class of the model:
    :func:`accord.datasets.encode`), sorted as ``encode`` sorts undeclared classes; the same codes when ``table``
    adds none."""
    known = set(encoded.classes)
    # Python's numbers, as accord.datasets.encode gives the classes (numpy's were shown as np.int64(5))
    unseen = [as_written(v) for v in pd.unique(table["label"].dropna().to_numpy()) if v not in known]
    if not unseen:
        return encoded
    fitted = list(encoded.classes)
    if len({isinstance(v, str) for v in (*fitted, *unseen)}) > 1:  # a fit of all the judgments refuses them mixed
        kind = "a text" if isinstance(unseen[0], str) else "a number"
        raise AccordError(f"column 'label': the new judgments' class {unseen[0]!r} is {kind} and the fitted classes "
                          f"{fitted} are not; give the labels as the fit had them")
    classes = tuple(_sorted_labels(np.array([*fitted, *unseen], dtype=object)))
    moved = pd.Index(classes).get_indexer(fitted)
    return replace(encoded, classes=classes, labels=moved[encoded.labels].astype(np.int64))


def _check_no_repeats(encoded: Encoded, items: np.ndarray, workers: np.ndarray, n_workers: int,
                      table: pd.DataFrame) -> None:
    """One error for a new judgment of a pair by a rater whose judgment of it is fitted (a batch added twice counted
    every vote twice). Only the fitted judgments of the pairs the batch touches are compared: a mask gathered over
    the fitted items, not a search of every (pair, rater) of a large fit."""
    touched = np.zeros(int(items.max(initial=-1)) + 1, dtype=bool)
    touched[items] = True
    fitted = encoded.items < len(touched)
    fitted[fitted] = touched[encoded.items[fitted]]
    if not fitted.any():
        return
    repeated = np.isin(items * n_workers + workers, encoded.items[fitted] * n_workers + encoded.workers[fitted])
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        # the row of the user's table (a duplicate policy may have dropped rows), the ids as written (not np.int64(7))
        rater, pair = as_written(table["annotator"].iloc[row]), as_written(table["pair_id"].iloc[row])
        raise AccordError(f"row {input_row(table, row)}: annotator {rater!r} already judged pair {pair!r} in the "
                          "fitted judgments (a batch added twice?); to add repeat judgments on purpose: "
                          "partial_fit(new_judgments, duplicates='keep')")


def _check_id_kind(fitted: pd.Index, values: pd.Series, column: str) -> None:
    """New ids of the kind (text or number) of the fitted ones: the text '7' and the number 7 are two ids, so new
    judgments of fitted pairs would silently become judgments of new pairs. Each table holds one kind
    (:func:`accord.datasets.schema.check_ids`), so its first id tells it."""
    if len(fitted) == 0 or len(values) == 0:
        return
    old_text, new_text = isinstance(fitted[0], str), isinstance(values.iloc[0], str)
    if old_text != new_text:
        kinds = {True: "texts", False: "numbers"}
        # 7, not numpy's np.int64(7)
        new_id, old_id = (as_written(v) for v in (values.iloc[0], fitted[0]))
        raise AccordError(f"column '{column}': the new judgments' ids are {kinds[new_text]} (e.g. "
                          f"{new_id!r}) and the fitted ones {kinds[old_text]} (e.g. {old_id!r}); a text and a "
                          "number are two ids even where they read alike: give the ids as the fit had them")


def partial_fit(model: Any, new_judgments: pd.DataFrame, duplicates: str = "error") -> Any:
    """Refit ``model`` on its judgments plus ``new_judgments``, warm-started where it can be (module docstring);
    ``duplicates``: as :func:`extend_encoded`. A model not fitted yet is fitted on ``new_judgments`` (scikit-learn's
    ``partial_fit`` habit: the first batch of a stream starts the fit), as ``fit`` would fit them."""
    if not hasattr(model, "soft_labels_"):
        # the first batch of ``for batch in stream: model.partial_fit(batch)`` was refused ('not fitted yet: call
        # fit(judgments) first'), where the fit of that batch is the answer
        if duplicates not in ("error", "keep"):
            raise AccordError(f"duplicates must be 'error' or 'keep' when judgments are added, not {duplicates!r}")
        if isinstance(new_judgments, pd.DataFrame) and duplicates == "keep" and not is_validated(new_judgments):
            new_judgments = validate(new_judgments, duplicates="keep")
        return model.fit(new_judgments)
    processes = model.__dict__.get("_fitted_processes", 1)
    if processes > 1:  # fit_sharded: the other processes' pairs, and their judgments of the raters, are not here
        raise AccordError(f"partial_fit: this {type(model).__name__} was fitted across {processes} processes and holds "
                          "the pairs of one of them; a refit here would drop the other processes' judgments (soft "
                          "labels far from a fit of all): fit all the judgments across the processes again")
    if not isinstance(new_judgments, pd.DataFrame):  # validate names it, as for fit (was an AttributeError on
        validate(new_judgments)                      # .columns, or a TypeError on len() of None)
    if len(new_judgments) == 0:  # a batch of no judgments adds none; but a frame without their columns
        if not is_validated(new_judgments):  # (pd.DataFrame()) is refused as fit refuses it, where it was passed
            with_required_columns(new_judgments, form=model.encoded_.form, scale=model.encoded_.scale)
        return model
    new_judgments = validate_new(model.encoded_, new_judgments, duplicates)
    encoded = extend_encoded(model.encoded_, new_judgments, duplicates)
    fitted = list(model.encoded_.classes)
    if encoded.form == "categorical" and len(encoded.classes) > len(fitted):  # say why the fit starts over
        unseen = [c for c in encoded.classes if c not in model.encoded_.classes]
        more = f" (and {len(unseen) - 1} more)" if len(unseen) > 1 else ""
        warnings.warn(f"class {unseen[0]!r}{more} of the new judgments is not among the fitted classes {fitted}, "
                      f"which were not declared: the classes grow to {list(encoded.classes)} and "
                      f"{type(model).__name__} is fitted afresh on all judgments (declare the classes with "
                      "validate(judgments, classes=[...]) to refuse such a label)", UserWarning, stacklevel=3)
    if getattr(model, "_table", None) is not None:  # the fit reads the table's columns (response ids, context)
        missing = [c for c in model._table.columns if c not in new_judgments.columns and c != "gold"]
        if missing:  # the fit would read them as missing on the new rows (e.g. a utility per pair side)
            raise AccordError(f"the new judgments lack column '{missing[0]}' that the fitted table has "
                              f"({type(model).__name__} reads it)")
        table = pd.concat([model._table, new_judgments.reindex(columns=model._table.columns)], ignore_index=True)
        table.attrs = dict(model._table.attrs)
        return model._fit_table(table, classes=encoded.classes)
    from accord.models.dawid_skene import DawidSkene

    # the warm refit continues a closed-form VB fit (whose draws it puts off: ``_pending_draws``); a NUTS, Gibbs or
    # SVI fit keeps a VB-EM solution too, as its start, and after set_params(inference="vb") the warm refit went on
    # from it and left that fit's NUTS divergences (sample_stats of another chain count in to_arviz), guide and SVI
    # record beside the VB draws: such a model is fitted afresh. So is one whose settings changed since its fit
    # (set_params): the warm refit went on with that fit's prior, class prior and calibration (after
    # set_params(empirical_prior=False) its soft labels sat 0.47 from a cold fit's)
    # (and one whose classes grew, by a first tie: the warm start's item posteriors and prior have a class too few;
    # and a table with pairs of one judgment, which a fit leaves out of the counts and the warm sweeps do not;
    # and a fitted confusion prior at the upper bound of PRIOR_BOUNDS, the mark of a small table whose evidence barely
    # tells the prior's concentration: there the fixed point VB-EM reaches depends on where it starts, and a warm solve
    # from the fit's prior, or the prior's fit from the previous q(z), settled at another than a cold fit's (soft
    # labels 0.40 and 0.63 apart on tables of 90 and 45 judgments; neither fixed point has the higher evidence bound
    # in general): such a table is small, and refitted cold)
    if (type(model) is not DawidSkene or model.inference != "vb" or getattr(model, "_vb", None) is None
            or "_pending_draws" not in model.__dict__ or model.__dict__.get("_fitted_settings") != model.get_params()
            or encoded.n_classes != model.encoded_.n_classes
            or bool((np.bincount(encoded.items, minlength=encoded.n_items) < 2).any())
            or (model._prior_fitted and _at_upper_bound(model._vb.confusion_prior))):
        return model._fit_table(None, encoded=encoded)
    return _refit_dawid_skene(model, encoded)


def _refit_dawid_skene(model: Any, encoded: Encoded) -> Any:
    """The warm refit of a closed-form Dawid-Skene fit: the solve, then what ``DawidSkene._fit`` does after its
    own (the fitted prior, the draws put off, the moments, calibration and soft labels)."""
    old = model._vb
    # the judgments the calibration was chosen on; a fit across processes does not record them: then all the fitted
    # ones (read before encoded_ grows below: read after, a streamed fit's calibration was never chosen again)
    calibrated_at = getattr(model, "_calibrated_at", len(model.encoded_.items))
    incidence = _extended_incidence(model._incidence, encoded, len(model.encoded_.items), model._torch_device)
    n_old = old.item_probs.shape[0]
    late = slice(len(model.encoded_.items), None)  # the new judgments; only they are on the new pairs
    on_new = encoded.items[late] >= n_old
    new_pairs = replace(encoded, items=encoded.items[late][on_new] - n_old, workers=encoded.workers[late][on_new],
                        labels=encoded.labels[late][on_new], item_index=encoded.item_index[n_old:])
    fresh = torch.as_tensor(vote_fractions(new_pairs, 1e-3), dtype=old.item_probs.dtype, device=old.item_probs.device)
    # one annotator still: the fixed prior, as DawidSkene's fit keeps it (no population to fit a prior to)
    prior_fit = {"full": fit_population_prior_evidence, True: fit_confusion_prior_evidence}.get(
        model.empirical_prior) if encoded.n_workers > 1 else None
    model._prior_fitted = prior_fit is not None
    start = torch.cat([old.item_probs, fresh])
    vb = warm_vb_dawid_skene(incidence, old.confusion_prior, model._class_prior_vec, start, prior_fit=prior_fit,
                             tol=model.tol, max_iter=model.max_steps)
    # the calibration is kept while the judgments have grown by less than RECALIBRATE_GROWTH since it was chosen
    # (a small batch barely moves it, and choosing it costs more than the warm sweeps); past that it is chosen
    # again, so that batch after batch it does not stay where the first fit put it
    recalibrate = len(encoded.items) >= RECALIBRATE_GROWTH * calibrated_at
    if recalibrate:
        # where VB-EM has more than one fixed point the warm start stays at the one nearest the previous fit, which a
        # large batch can leave behind (soft labels up to 0.999 from a cold fit's, after adding half the raters):
        # past the same growth the fixed point a cold fit starts toward (its prior, its start) is solved too, and the
        # one with the higher evidence bound kept (ties: the warm one)
        cold = warm_vb_dawid_skene(incidence, model._fixed_prior(encoded.n_classes), model._class_prior_vec,
                                   model._initial_item_probs(encoded), prior_fit=prior_fit, tol=model.tol,
                                   max_iter=model.max_steps)
        if evidence_bound(cold, model._class_prior_vec) > evidence_bound(vb, model._class_prior_vec):
            vb = cold
    model.encoded_, model._incidence, model._cache = encoded, incidence, {}
    model._keep_vb(vb)
    model._confusion_prior = vb.confusion_prior
    model._summarize_prior()
    with seeded(model.seed, model._torch_device):
        model._draw_from_vb(vb)
        with nullcontext() if recalibrate else _calibration_kept(model):
            model._finish()
        if recalibrate:
            model._calibrated_at = len(encoded.items)
        model.soft_labels_ = model._soft_labels()
    model._defer("_annotator_table", "annotators_")
    return model


def _at_upper_bound(prior: torch.Tensor) -> bool:
    """Whether a value of a fitted confusion prior sits at the upper bound of :data:`accord.models._vb.PRIOR_BOUNDS`
    (where a small table's evidence, flat toward a large concentration, puts it; the lower bound of a rare confusion
    of ``empirical_prior="full"`` is met on large tables too, where the warm solve's speed matters)."""
    return bool((prior >= PRIOR_BOUNDS[1]).any())


def _extended_incidence(fitted: Incidence, encoded: Encoded, n_fitted: int, device: Any) -> Incidence:
    """:func:`accord.models._vb.build_incidence` of ``encoded`` whose first ``n_fitted`` judgments made ``fitted``:
    where ``fitted`` keeps its SciPy matrix, the counts of the new judgments are added to it (a merge of sorted rows,
    a quarter of the cost of sorting every judgment again)."""
    if fitted.host is None:
        return build_incidence(encoded, device)
    n_items, n_cells = encoded.n_items, encoded.n_workers * encoded.n_classes
    host = fitted.host
    indptr = np.concatenate([host.indptr, np.full(n_items - host.shape[0], host.indptr[-1], dtype=host.indptr.dtype)])
    grown = sp.csr_matrix((host.data, host.indices, indptr), shape=(n_items, n_cells))
    cells = encoded.workers[n_fitted:] * encoded.n_classes + encoded.labels[n_fitted:]
    added = sp.csr_matrix((np.ones(len(cells)), (encoded.items[n_fitted:], cells)), shape=(n_items, n_cells))
    added.sum_duplicates()
    counts = grown + added
    counts.sort_indices()
    return incidence_from_csr(counts, encoded.n_workers, encoded.n_classes, device)


#: all judgments, as a multiple of those the calibration was chosen on, from which :func:`partial_fit` chooses it
#: again: a bound on its drift over many batches, not tuned (on a synthetic table of 18,000 judgments keeping it
#: changed nothing for up to 30% more judgments, and moved soft labels by up to 0.06 for 50% more)
RECALIBRATE_GROWTH = 1.1


@contextmanager
def _calibration_kept(model: Any) -> Iterator[None]:
    """Settings ``"auto"`` of the calibration fixed, for the block, at the values the previous fit chose."""
    saved = {name: getattr(model, name) for name in ("item_correlation", "vote_shrinkage")
             if getattr(model, name) == "auto"}
    try:
        for name in saved:
            setattr(model, name, getattr(model, name + "_"))
        yield
    finally:
        for name, value in saved.items():
            setattr(model, name, value)


#: the smallest sum of a pair's exponentiated scores that :func:`_softmax_classes` divides by as it is (far from the
#: subnormal numbers, below which the exponentials lose precision)
SMALLEST_TOTAL = 1e-300


def _softmax_classes(scores: torch.Tensor, shift: torch.Tensor, workspace: np.ndarray | None = None) -> torch.Tensor:
    """:func:`accord.models._vb.softmax_last` of ``[I, K]`` scores plus a ``[K]`` shift, in place.

    On the CPU with ``K > 2`` the shifted scores are taken through a classes-first (``[K, I]``) copy, on which the
    exponential and the sum are operations on contiguous vectors (on ``[I, K]`` each is a loop of length ``K``,
    several times slower), and the division writes back into ``scores``; ``workspace``, a ``[K, I]`` array of the
    scores' dtype, holds the copy (one is allocated when it is None; a sweep reuses one, as a fresh 8 MB array costs
    its page faults every time). The E-step's scores are log-probabilities, so they are exponentiated without
    subtracting each pair's maximum; the rare pairs whose exponentials sum to less than :data:`SMALLEST_TOTAL` (or
    overflow) are done again by :func:`~accord.models._vb.softmax_last`. Elsewhere the maximum and the sum over the
    classes are ``K - 1`` elementwise operations on the columns."""
    k = scores.shape[-1]
    if k > 2 and scores.device.type == "cpu":
        out = scores.numpy()
        if workspace is None:
            workspace = np.empty(out.shape[::-1], dtype=out.dtype)
        by_class = np.add(out.T, shift.numpy()[:, None], out=workspace)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # such pairs are done again below
            np.exp(by_class, out=by_class)
            total = np.add(by_class[0], by_class[1])
            for row in by_class[2:]:
                total += row
            redo = None
            if not (total.min() >= SMALLEST_TOTAL and total.max() < np.inf):
                redo = np.flatnonzero(~((total >= SMALLEST_TOTAL) & (total < np.inf)))
                again = softmax_last(torch.from_numpy(out[redo]) + shift).numpy()
            for j in range(k):
                np.divide(by_class[j], total, out=out[:, j])
        if redo is not None:
            out[redo] = again
        return scores
    scores += shift
    if k <= 2:
        return softmax_last(scores)
    columns = scores.unbind(-1)
    top = columns[0].clone()
    for column in columns[1:]:
        torch.maximum(top, column, out=top)
    scores -= top[:, None]
    scores.exp_()
    scores /= row_sums(scores)[:, None]
    return scores


def _m_step_parameters(incidence: Incidence, q: torch.Tensor, prior: torch.Tensor, class_prior: torch.Tensor,
                       prior_fit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
                       ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The M-step half of a VB-EM sweep of Dawid-Skene (with the prior's type-II step), as
    :func:`accord.models._vb.vb_dawid_skene` takes it, returning the parameters the E-step reads: the
    ``[W * L * K + K]`` vector of ``E[log theta]`` as :func:`accord.models._vb.cell_table` lays it out, then
    ``E[log pi]``; also the (fitted) prior and its largest relative change."""
    conf_alpha, class_alpha = _vb_m_step(incidence, q, prior, class_prior, incidence.n_workers, incidence.n_classes)
    change = 0.0
    if prior_fit is not None:
        new_prior = prior_fit(conf_alpha, prior)
        conf_alpha = conf_alpha - prior + new_prior
        change = float(((new_prior - prior).abs() / prior).max())
        prior = new_prior
    table = cell_table(dirichlet_expected_log(conf_alpha))
    return torch.cat([table.reshape(-1), dirichlet_expected_log(class_alpha).to(table)]), prior, change


def _e_step_parameters(incidence: Incidence, parameters: torch.Tensor, workspace: np.ndarray | None) -> torch.Tensor:
    """The E-step half of a sweep: ``q(z)`` ``[I, K]`` from the parameters of :func:`_m_step_parameters` (or any
    real vector laid out as they are, such as an extrapolation of them)."""
    k = incidence.n_classes
    scores = incidence.item_product(parameters[:-k].reshape(-1, k))
    return _softmax_classes(scores, parameters[-k:], workspace)


def warm_vb_dawid_skene(incidence: Incidence, confusion_prior: torch.Tensor, class_prior: torch.Tensor,
                        start: torch.Tensor, *, tol: float, max_iter: int,
                        prior_fit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> VBResult:
    """The VB-EM fixed point of Dawid-Skene from a nearby ``q(z)`` (``start``), accelerated by SQUAREM (scheme S3)
    on the parameters.

    A sweep is an M-step (:func:`_m_step_parameters`: ``q(z)`` to the parameters ``p = (E[log theta], E[log pi])``,
    ``W L K + K`` numbers) then an E-step (:func:`_e_step_parameters`: ``p`` to ``q(z)``). A cycle takes three
    sweeps: from ``q``, ``p0 = M(q)``, ``q1 = E(p0)``, ``p1 = M(q1)``, ``q2 = E(p1)``, ``p2 = M(q2)``; it
    extrapolates along ``r = p1 - p0``, ``v = p2 - 2 p1 + p0`` with the step ``a = -|r| / |v|`` (at most -1) to
    ``p0 - 2 a r + a^2 v`` and ends with the E-step from there, whose ``q(z)`` starts the next cycle (its M-step
    stabilises the extrapolation). The parameters, not ``q(z)``, are extrapolated: as in the EM acceleration SQUAREM
    was made for, and any real vector of them gives a ``q(z)`` on the simplex; it costs a vector of the size of the
    confusion tables, not of the pairs.

    Stops by the rule of a cold fit (``stop="distance"`` of :func:`accord.models._vb.vb_dawid_skene`): after a sweep
    whose result is estimated within ``tol`` of the fixed point (:func:`distance_below`: from the sweep's largest move
    of a pair's class probability and the rate at which plain sweeps shrink, measured as the ratio of the largest
    moves of the parameters in a cycle's two plain steps ``p0 -> p1 -> p2``) and whose M-step moved the fitted prior
    by less than ``PRIOR_TOL`` (relatively); the test follows the first two sweeps of a cycle (the first one's move
    is the one from the extrapolated point). ``n_iter`` counts the sweeps, at most ``max_iter``; those left when a
    cycle no longer fits are plain sweeps.
    """
    q, prior, n_iter = start.contiguous(), confusion_prior, 0
    converged = False
    rates: list[float] = []
    workspace = np.empty(q.shape[::-1], dtype=q.numpy().dtype) if q.device.type == "cpu" else None
    moved = torch.empty_like(q)

    def sweep(q: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
        parameters, prior, change = _m_step_parameters(incidence, q, prior, class_prior, prior_fit)
        new_q = _e_step_parameters(incidence, parameters, workspace)
        settled = distance_below(_largest_move(torch.sub(new_q, q, out=moved)), rates, tol) and change < PRIOR_TOL
        return parameters, new_q, prior, settled

    while n_iter + 3 <= max_iter:
        p0, q1, prior, settled = sweep(q, prior)
        n_iter += 1
        if settled:
            q, converged = q1, True
            break
        p1, q2, prior, settled = sweep(q1, prior)
        n_iter += 1
        if settled:
            q, converged = q2, True
            break
        p2, prior, _ = _m_step_parameters(incidence, q2, prior, class_prior, prior_fit)
        r, v = p1 - p0, p2 - p1
        first = _largest_move(r)
        rates.append(_largest_move(v) / first if first > 0 else 1.0)
        v -= r
        v_norm = float(v.norm())
        step = min(-float(r.norm()) / v_norm, -1.0) if v_norm > 0 else -1.0
        jump = p0.add_(r, alpha=-2.0 * step).add_(v, alpha=step * step) if np.isfinite(step * v_norm) else p2
        q = _e_step_parameters(incidence, jump, workspace)
        n_iter += 1
    while not converged and n_iter < max_iter:  # fewer sweeps left than a cycle takes: plain ones (none were taken)
        _, q, prior, converged = sweep(q, prior)
        n_iter += 1
    conf_alpha, class_alpha = _vb_m_step(incidence, q, prior, class_prior, incidence.n_workers, incidence.n_classes)
    return VBResult(conf_alpha, class_alpha, q, n_iter, converged, prior)


def _largest_move(step: torch.Tensor) -> float:
    """``step.abs().max()`` from one pass that allocates nothing (``aminmax``)."""
    if step.numel() == 0:
        return 0.0
    low, high = torch.aminmax(step)
    return max(float(high), -float(low))


def distance_below(step: float, rates: list[float], tol: float) -> bool:
    """Whether a sweep that moved the pairs by at most ``step`` left them within ``tol`` of the fixed point, by the
    estimate :func:`accord.models._vb.remaining_distance` with the larger of the last two measured rates (False
    while none is known, unless nothing moved)."""
    return remaining_distance(step, max(rates[-2:], default=1.0)) < tol
