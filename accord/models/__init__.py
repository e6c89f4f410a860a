"""Bayesian annotator models, one per file, each with its maths and citation in the class docstring.

==========================  ===================================================================================
``DawidSkene``              a confusion matrix per annotator (Dawid & Skene 1979); ``symmetric=True`` for
                            preference data with a position-bias term; closed-form VB, Gibbs, SVI or NUTS
``OneCoinDawidSkene``       one accuracy per annotator, errors uniform over the other classes; closed-form VB
``HierarchicalDawidSkene``  confusions drawn from a learned population distribution (partial pooling)
``MACE``                    per-annotator spam probability and spam-label distribution (Hovy et al. 2013)
``GLAD``                    annotator ability x item difficulty (Whitehill et al. 2009)
``CrowdBradleyTerry``       latent utility per response, annotator sharpness and position bias, Davidson or
                            Rao-Kupper ties; ranks responses and predicts unseen pairs (Chen et al. 2013)
``DebiasedBradleyTerry``    crowd Bradley-Terry with per-rater pulls towards pair covariates (e.g. length);
                            soft labels with the pull removed
``OrdinalPreference``       graded strengths with per-annotator thresholds (cumulative logit, McCullagh 1980)
``ContextPreference``       preference and reliability that depend on annotator groups and item topics
``RaterTypes``              a finite mixture of rater types, the number chosen by held-out likelihood
``FirstErrorModel``         step labels: the first wrong step of a solution as the latent variable, rater
                            sensitivity and specificity (closed-form VB-EM)
``StepDawidSkene``          step labels: Dawid-Skene with every (solution, step) an item
``MultiAttributeOrdinal``   several rated attributes at once: per-rater, per-attribute leniency and noise,
                            correlated attributes (multirater ordinal probit, Johnson & Albert 1999)
==========================  ===================================================================================

All follow one contract (:mod:`accord.models.base`): settings in the constructor, ``fit(judgments)`` learns, fitted
attributes end in ``_`` (``soft_labels_``, ``annotators_`` with the same columns for every model), ``to_arviz()``
exports an ``InferenceData`` with a per-judgment ``log_likelihood`` group, and :func:`compare` ranks fitted models by
PSIS-LOO and k-fold held-out log-likelihood. The two step-level models take a step-judgments table
(:mod:`accord.datasets.steps`) and give ``step_labels_`` instead of ``soft_labels_``, and ``MultiAttributeOrdinal``
takes a multi-attribute table and gives ``scores_``; these three have no ArviZ export. A fit that stops at its
step limit before it converged warns :class:`ConvergenceWarning` (``warnings.simplefilter('error',
ConvergenceWarning)`` makes it an error).
Importing this package loads no model: each is imported on first use
(Pyro and ArviZ only when a fit or an export needs them).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {"RaterModel": "base", "ConvergenceWarning": "base", "compare": "comparison", "heldout_loglik": "comparison", "DawidSkene": "dawid_skene",
         "OneCoinDawidSkene": "one_coin", "HierarchicalDawidSkene": "hierarchical_dawid_skene", "MACE": "mace",
         "GLAD": "glad", "CrowdBradleyTerry": "bradley_terry", "OrdinalPreference": "ordinal",
         "ContextPreference": "context", "RaterTypes": "rater_types", "FirstErrorModel": "first_error",
         "StepDawidSkene": "step_dawid_skene", "MultiAttributeOrdinal": "multi_attribute",
         "DebiasedBradleyTerry": "debiased_bradley_terry"}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'accord.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"accord.models.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
