"""The aggregation methods by name, as the command line and ``accord.aggregate.fit_method`` know them."""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

import pandas as pd

from accord.datasets import AccordError
from accord.datasets.errors import SettingError

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

# the methods a fit across processes (--distributed) fits, and each one's default inference, named here without
# importing the models (torch and Pyro, ~10 s on a small machine): the process that launches torchrun only checks the
# flags. A test checks these defaults against the models' own.
SHARDED_DEFAULT_INFERENCE: dict[str, str] = {"dawid-skene": "vb", "hierarchical-dawid-skene": "meanfield"}


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
    check_setting_names(name, estimator_cls, settings)
    return estimator_cls(**{**defaults, **settings})


def check_setting_names(name: str, estimator_cls: type, settings: dict[str, Any]) -> None:
    """One error naming method ``name`` and the first of ``settings`` its constructor does not take."""
    known = setting_names(estimator_cls)
    unknown = [setting for setting in settings if setting not in known]
    if unknown:  # the constructor's own TypeError ("got an unexpected keyword argument") named no method
        close = difflib.get_close_matches(unknown[0], known, n=1)
        cls = estimator_cls.__name__
        raise SettingError(unknown[0], lambda setting: f"method '{name}' ({cls}) has no setting '{setting}'"
                           + (f" (did you mean '{close[0]}'?)" if close else "")
                           + f"; its settings: {', '.join(known) or 'none'}")


def setting_names(estimator_cls: type) -> list[str]:
    """The settings ``estimator_cls``'s constructor takes, by name (none for a constructor without its own)."""
    parameters = inspect.signature(estimator_cls).parameters.values()
    return [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def fit_method(name: str, judgments: pd.DataFrame, **settings: Any) -> Any:
    """Fit method ``name`` on ``judgments`` and return the fitted estimator (its ``soft_labels_`` hold the result)."""
    return make_method(name, **settings).fit(judgments)
