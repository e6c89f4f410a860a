"""The aggregation methods by name, as the command line and ``accord.aggregate.fit_method`` know them."""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd

from accord.datasets import AccordError

# name -> (module, class, default settings). Models are imported on first use: loading Pyro costs a second.
METHODS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "majority": ("accord.aggregate.majority", "MajorityVote", {}),
    "vote-fraction": ("accord.aggregate.vote_fraction", "VoteFraction", {}),
    "dawid-skene": ("accord.models.dawid_skene", "DawidSkene", {}),
    "one-coin-dawid-skene": ("accord.models.one_coin", "OneCoinDawidSkene", {}),
    "hierarchical-dawid-skene": ("accord.models.hierarchical_dawid_skene", "HierarchicalDawidSkene", {}),
    "mace": ("accord.models.mace", "MACE", {}),
    "glad": ("accord.models.glad", "GLAD", {}),
    "bradley-terry": ("accord.models.bradley_terry", "CrowdBradleyTerry", {}),
    "ordinal": ("accord.models.ordinal", "OrdinalPreference", {}),
    "context": ("accord.models.context", "ContextPreference", {}),
    "rater-types": ("accord.models.rater_types", "RaterTypes", {}),
    "debiased-bradley-terry": ("accord.models.debiased_bradley_terry", "DebiasedBradleyTerry", {}),
}


def available_methods() -> list[str]:
    """Names of the methods whose implementation can be imported."""
    names = []
    for name, (module, cls, _) in METHODS.items():
        try:
            getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):
            continue
        names.append(name)
    return names


def make_method(name: str, **settings: Any) -> Any:
    """An unfitted estimator for ``name`` with ``settings`` overriding its defaults."""
    if name not in METHODS:
        raise AccordError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")
    module, cls, defaults = METHODS[name]
    try:
        estimator_cls = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as err:
        raise AccordError(f"method '{name}' is not available in this installation ({err})") from err
    return estimator_cls(**{**defaults, **settings})


def fit_method(name: str, judgments: pd.DataFrame, **settings: Any) -> Any:
    """Fit method ``name`` on ``judgments`` and return the fitted estimator (its ``soft_labels_`` hold the result)."""
    return make_method(name, **settings).fit(judgments)
