"""Bayesian annotator models in Pyro, one per file, each with its maths and citation in the class docstring.

==========================  ===================================================================================
``DawidSkene``              a confusion matrix per annotator (Dawid & Skene 1979); ``symmetric=True`` for
                            preference data with a position-bias term; closed-form VB, SVI or NUTS
``HierarchicalDawidSkene``  confusions drawn from a learned population distribution (partial pooling)
``MACE``                    per-annotator spam probability and spam-label distribution (Hovy et al. 2013)
``GLAD``                    annotator ability x item difficulty (Whitehill et al. 2009)
``CrowdBradleyTerry``       latent utility per response, annotator sharpness and position bias, Davidson or
                            Rao-Kupper ties; ranks responses and predicts unseen pairs (Chen et al. 2013)
``OrdinalPreference``       graded strengths with per-annotator thresholds (cumulative logit, McCullagh 1980)
``ContextPreference``       preference and reliability that depend on annotator groups and item topics
``RaterTypes``              a finite mixture of rater types, the number chosen by held-out likelihood
``MultiAttributeOrdinal``   several rated attributes at once: per-rater, per-attribute leniency and noise,
                            correlated attributes (multirater ordinal probit, Johnson & Albert 1999)
==========================  ===================================================================================

All share scikit-learn habits: settings in the constructor, ``fit(judgments)`` learns, fitted attributes end in
``_`` (``soft_labels_``, ``annotators_``), and ``to_arviz()`` exports an ``InferenceData`` with a per-judgment
``log_likelihood`` group. :func:`compare` ranks fitted models by PSIS-LOO and k-fold held-out log-likelihood.
"""

from accord.models.base import RaterModel
from accord.models.bradley_terry import CrowdBradleyTerry
from accord.models.compare import compare
from accord.models.context import ContextPreference
from accord.models.dawid_skene import DawidSkene
from accord.models.glad import GLAD
from accord.models.hierarchical_dawid_skene import HierarchicalDawidSkene
from accord.models.mace import MACE
from accord.models.multi_attribute import MultiAttributeOrdinal
from accord.models.ordinal import OrdinalPreference
from accord.models.rater_types import RaterTypes

__all__ = [
    "GLAD",
    "MACE",
    "ContextPreference",
    "CrowdBradleyTerry",
    "DawidSkene",
    "HierarchicalDawidSkene",
    "MultiAttributeOrdinal",
    "OrdinalPreference",
    "RaterModel",
    "RaterTypes",
    "compare",
]
