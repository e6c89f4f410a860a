"""Incremental refits: new judgments added to a fitted model without starting over.

Annotation arrives in batches. Refitting from scratch after each batch repeats the work of every earlier fit; the
fixed point of variational Bayes for the whole data is, however, close to the previous one when the new judgments
are few, so a fit started there needs only a few sweeps. :func:`partial_fit` appends the new judgments to the
model's codes (new pairs and raters get new codes after the old ones, in the order :func:`accord.datasets.encode`
would give them) and refits:

- :class:`~accord.models.dawid_skene.DawidSkene` with closed-form VB (``inference="vb"``): the iteration starts
  from the previous item posteriors ``q(z)`` (new pairs from their vote fractions) and the previous fitted prior.
  VB-EM converges linearly, and slowly where raters are uncertain, so the warm iteration is accelerated by
  SQUAREM (Varadhan & Roland 2008; :func:`squarem_vb`) and run to ``tol * WARM_TOL_FACTOR``, past the cold fit's
  stopping rule: the answer is the fixed point a cold fit approaches. The calibration chosen by the previous fit
  (``item_correlation="auto"``, ``vote_shrinkage="auto"``) is kept, since a small batch barely moves it (a cold fit
  chooses it again);
- every other model: a fit on all judgments (the same answer as :meth:`~accord.models.base.RaterModel.fit`, with no
  saving).

The posterior draws, their soft-label summary and the annotator table are computed afresh, as in a cold fit.

References
----------
R. Varadhan, C. Roland (2008). Simple and globally convergent methods for accelerating the convergence of any EM
algorithm. *Scandinavian Journal of Statistics* 35(2), 335-353.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError, Encoded, validate
from accord.models._data import vote_fractions
from accord.models._vb import (Incidence, _vb_m_step, build_incidence, cell_table, dirichlet_expected_log,
                               fit_confusion_prior, softmax_last)
from accord.models.confusion import label_codes

#: the warm-started VB stops at ``tol * WARM_TOL_FACTOR``: with a slow linear rate, stopping when an iteration moves
#: no pair by more than ``tol`` leaves the answer about ``tol / (1 - rate)`` from the fixed point
WARM_TOL_FACTOR = 0.1
#: at most this many SQUAREM cycles (three VB sweeps each)
MAX_CYCLES = 200


def _codes_extended(index: pd.Index, values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes of ``values`` in ``index``, with unseen values appended in order of first appearance."""
    codes = index.get_indexer(values)
    unseen = codes < 0
    if unseen.any():
        new_codes, new_values = pd.factorize(values[unseen], sort=False)
        codes[unseen] = len(index) + new_codes
        index = index.append(pd.Index(new_values, name=index.name))
    return codes.astype(np.int64), index


def extend_encoded(encoded: Encoded, new_judgments: pd.DataFrame) -> Encoded:
    """``encoded`` with the judgments of a new table appended (its labels must be among the fitted classes)."""
    table = new_judgments if "accord" in new_judgments.attrs else validate(
        new_judgments, form=encoded.form, scale=encoded.scale,
        classes=list(encoded.classes) if encoded.form == "categorical" else None)
    form = table.attrs["accord"]["form"]
    if form != encoded.form:
        raise AccordError(f"the new judgments are {form} labels; the model was fitted on {encoded.form} labels")
    items, item_index = _codes_extended(encoded.item_index, table["pair_id"])
    workers, worker_index = _codes_extended(encoded.worker_index, table["annotator"])
    labels = label_codes(encoded, table).astype(np.int64)
    return replace(encoded, items=np.concatenate([encoded.items, items]),
                   workers=np.concatenate([encoded.workers, workers]),
                   labels=np.concatenate([encoded.labels, labels]), item_index=item_index, worker_index=worker_index)


def partial_fit(model: Any, new_judgments: pd.DataFrame) -> Any:
    """Refit ``model`` on its judgments plus ``new_judgments``, warm-started where it can be (module docstring)."""
    model._check_fitted()
    if len(new_judgments) == 0:
        return model
    encoded = extend_encoded(model.encoded_, new_judgments)
    from accord.models.dawid_skene import DawidSkene

    vb = getattr(model, "_vb", None)
    # the warm sweeps are Dawid-Skene's own (its prior step); other models of the family refit from scratch
    warm = type(model) is DawidSkene and vb is not None and model.inference == "vb"
    if not warm:
        return model._fit_table(None, encoded=encoded)
    old_items = vb.item_probs.shape[0]
    new_part = torch.as_tensor(vote_fractions(encoded, 1e-3)[old_items:], dtype=vb.item_probs.dtype,
                               device=vb.item_probs.device)
    saved: dict[str, Any] = {}
    for name in ("item_correlation", "vote_shrinkage"):  # calibration chosen on the earlier fit is kept
        if getattr(model, name, None) == "auto":
            saved[name] = getattr(model, name)
    if getattr(model, "empirical_prior", False):  # the fitted prior is the starting point of its own refit
        saved.update(prior_correct=model.prior_correct, prior_error=model.prior_error)
    start = torch.cat([vb.item_probs, new_part])
    empirical = bool(getattr(model, "empirical_prior", False))
    incidence = build_incidence(encoded, model._torch_device)
    class_prior = torch.full((encoded.n_classes,), float(model.class_prior), dtype=torch.float64,
                             device=model._torch_device)
    model._warm_item_probs, prior = squarem_vb(incidence, vb.confusion_prior, class_prior, start,
                                              empirical=empirical, tol=model.tol * WARM_TOL_FACTOR)
    try:
        for name in ("item_correlation", "vote_shrinkage"):
            if name in saved:
                setattr(model, name, getattr(model, name + "_"))
        if "prior_correct" in saved:
            model.prior_correct, model.prior_error = float(prior[0, 0]), float(prior[0, 1])
        model._fit_table(None, encoded=encoded)
    finally:
        for name, value in saved.items():
            setattr(model, name, value)
        model._warm_item_probs = None
    return model


def _vb_sweep(incidence: Incidence, q: torch.Tensor, prior: torch.Tensor, class_prior: torch.Tensor,
              empirical: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One VB-EM sweep ``q -> q'`` of Dawid-Skene (M-step, the prior's type-II step, E-step), as
    :func:`accord.models._vb.vb_dawid_skene` takes it."""
    conf_alpha, class_alpha = _vb_m_step(incidence, q, prior, class_prior, incidence.n_workers, incidence.n_classes)
    if empirical:
        new_prior = fit_confusion_prior(conf_alpha, prior)
        conf_alpha = conf_alpha - prior + new_prior
        prior = new_prior
    scores = incidence.by_item @ cell_table(dirichlet_expected_log(conf_alpha)) + dirichlet_expected_log(class_alpha)
    return softmax_last(scores), prior


def squarem_vb(incidence: Incidence, prior: torch.Tensor, class_prior: torch.Tensor, start: torch.Tensor, *,
               empirical: bool, tol: float, max_cycles: int = MAX_CYCLES) -> tuple[torch.Tensor, torch.Tensor]:
    """The VB-EM fixed point ``q(z)`` of Dawid-Skene from ``start``, accelerated by SQUAREM (scheme S3).

    A cycle takes two sweeps ``q1 = F(q0)``, ``q2 = F(q1)``, extrapolates along ``r = q1 - q0``,
    ``v = q2 - 2 q1 + q0`` with the step ``a = -|r| / |v|`` (at most -1) to ``q0 - 2 a r + a^2 v`` (clipped to the
    simplex), and stabilises with one more sweep; a step that leaves the simplex far behind falls back to ``q2``.
    Stops when a sweep moves no pair's class probability by more than ``tol``; returns ``q(z)`` and the confusion
    prior (refitted when ``empirical``).
    """
    q = start
    for _ in range(max_cycles):
        q1, prior = _vb_sweep(incidence, q, prior, class_prior, empirical)
        if float((q1 - q).abs().max()) < tol:
            return q1, prior
        q2, prior = _vb_sweep(incidence, q1, prior, class_prior, empirical)
        r, v = q1 - q, q2 - 2 * q1 + q
        v_norm = float(v.norm())
        step = -float(r.norm()) / v_norm if v_norm > 0 else -1.0
        step = min(step, -1.0)
        jump = (q - 2 * step * r + step * step * v).clamp_min(1e-12)
        jump = jump / jump.sum(-1, keepdim=True)
        q, prior = _vb_sweep(incidence, jump if torch.isfinite(jump).all() else q2, prior, class_prior, empirical)
    return q, prior
