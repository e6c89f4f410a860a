"""Dawid-Skene over steps: every (solution, step) an item, so each rater gets one confusion matrix across steps."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from accord._settings import ConstructorSettings
from accord.datasets import AccordError, validate
from accord.datasets.steps import StepLabels, encode_steps
from accord.models.base import RaterModel
from accord.models.dawid_skene import DawidSkene


class StepDawidSkene(ConstructorSettings):
    r"""Per-rater reliability across steps: accord's :class:`~accord.models.DawidSkene` on a (solution, step) table.

    Each step of each solution is an item whose true label is one of the declared step labels (-1/0/+1 or 0/1), and
    rater ``w`` has one confusion matrix ``theta[w]`` over all the steps it labelled (Dawid & Skene 1979)::

        z_(i,t)  ~ Categorical(pi)                        true label of step t of solution i
        y_n      ~ Categorical(theta[w_n, z_(i_n, t_n)])  the label rater w_n gave it

    with Dirichlet priors, fitted as :class:`~accord.models.DawidSkene` fits it (closed-form VB by default, its
    empirical prior and design-effect tempering included). The steps of a solution are treated as independent
    items: the model knows nothing of the order of steps or of errors carried forward (use
    :class:`~accord.models.first_error.FirstErrorModel` for that, Lightman et al. 2023). ``P(step correct)`` is
    ``1 - P(true label = the error label)``; its uncertainty is the posterior standard deviation of that probability
    (for an estimator that keeps no posterior summary by class, that of the step's most likely label), and
    ``P(first error at t)`` is what these step probabilities imply when steps
    err independently (:meth:`~accord.datasets.steps.StepLabels.from_independent_steps`).

    Parameters
    ----------
    estimator
        The unfitted :class:`~accord.models.DawidSkene` to use (its settings are kept); ``None``: the defaults.

    Attributes
    ----------
    step_labels_ : StepLabels
    annotators_ : pandas.DataFrame
        Dawid-Skene's annotator table (``reliability``, ``spam``, intervals) over the steps each rater labelled.
    estimator_ : DawidSkene
        The fitted model (its ``soft_labels_`` are indexed by the flat step number).
    """

    method = "dawid-skene"

    def __init__(self, estimator: DawidSkene | None = None) -> None:
        _check_estimator(estimator)  # here: set_params builds a fresh instance, and refuses a bad estimator at once
        self.estimator = estimator

    def fit(self, judgments: pd.DataFrame) -> "StepDawidSkene":
        """Fit on a step-judgments table (see :func:`accord.datasets.steps.validate_steps`)."""
        _check_estimator(self.estimator)  # again, for an estimator assigned directly
        encoded = encode_steps(judgments)
        values = list(encoded.label_values)
        items = pd.DataFrame({
            "pair_id": encoded.step_cells,
            "annotator": encoded.worker_index[encoded.workers],
            "label": np.asarray(values)[encoded.labels],
        })
        items = validate(items, form="categorical", classes=values, duplicates="keep")
        model = copy.deepcopy(self.estimator) if self.estimator is not None else DawidSkene()
        self.estimator_ = model.fit(items)
        soft = model.soft_labels_
        cells = np.arange(int(encoded.n_steps.sum()))  # every step has a label (steps are numbered 0..T-1)
        error = soft.probs[values[encoded.error_code]].reindex(cells).to_numpy()
        index = encoded.step_index()
        self.step_labels_ = StepLabels.from_independent_steps(
            p_correct=pd.Series(1.0 - error, index=index),
            uncertainty=pd.Series(_error_uncertainty(model, values[encoded.error_code]).reindex(cells).to_numpy(),
                                  index=index),
            n_judgments=pd.Series(soft.n_judgments.reindex(cells).to_numpy(), index=index),
            method=model.method,  # the estimator's ("mace", ...): the cleaned file's provenance names what was fit
        )
        self.annotators_ = model.annotators_
        return self

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        """Fit and return the most probable first-error position of each solution (``T`` = no error)."""
        return self.fit(judgments).step_labels_.most_likely_first_error()


def _error_uncertainty(model: RaterModel, error: int) -> pd.Series:
    """The posterior sd of each step's P(true label = ``error``), by item: the sd of ``p_correct``. The soft labels'
    uncertainty is that of each item's most likely label, which with three labels may be another's (a step split
    between neutral and correct, never wrong, had the sd of P(correct) alone, up to 0.27: a certain step weighed half
    in training). Every model that keeps its draws summarises them for this class (the Dawid-Skene family, MACE,
    GLAD, RaterTypes: these had the top label's sd); two labels, or a model without ``_summarize_items``: the soft
    labels' (with two it is the same)."""
    soft = model.soft_labels_
    classes = list(soft.probs.columns)
    if len(classes) <= 2 or not hasattr(model, "_summarize_items"):
        return soft.uncertainty
    sd = model._summarize_items(klass=classes.index(error)).sd
    return pd.Series(np.asarray(sd, dtype=float), index=soft.uncertainty.index, name="uncertainty")


def _check_estimator(estimator: object) -> None:
    if estimator is not None and not isinstance(estimator, RaterModel):
        raise AccordError(f"StepDawidSkene: estimator must be an unfitted rater model such as DawidSkene(), not "
                          f"{estimator!r}")  # it failed as "'str' object has no attribute 'fit'"
