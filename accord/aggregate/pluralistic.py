"""Pluralistic soft labels: one soft label per rater group (or latent type), a population label with explicit
weights, and per pair a split of the disagreement into rater noise and genuine disagreement.

A reward model trained as if all disagreement were noise learns the majority's taste and calls the minority wrong.
The functions here take a fitted :class:`~accord.models.context.ContextPreference` or
:class:`~accord.models.rater_types.RaterTypes` (anything with ``group_probabilities()``) and return a
:class:`~accord.datasets.SoftLabels` whose ``extra`` columns carry the per-group view into the cleaned dataset.

Population weights
------------------
``"share"`` (default)
    Each group weighs its *rater share*: ``w_g = (1/J) sum_j n_jg / n_j``, every annotator counting once (split
    over the groups of their judgments when the group changes with the item, e.g. stance by topic). The
    population label is then what a randomly drawn rater's group prefers.
``"equal"``
    Every group weighs ``1 / G``: a minority counts as much as a majority.
a dict ``{group: weight}``
    User-given weights (normalised to sum to 1; groups left out weigh 0; a key names a group as the model knows it,
    a whole number as an integer, so 1.0 names the group ``'1'``).

Noise versus genuine disagreement
---------------------------------
Disagreement is measured as the Gini impurity ``D(p) = 1 - sum_k p_k^2``: the probability that two independent
judgments differ. For pair ``i`` with group weights ``w_g``:

- *total*: ``T = D(q)``, ``q = sum_g w_g q_g``, where ``q_g`` is the distribution of what the pair's raters of
  group ``g`` report, noise included;
- *between groups (genuine)*: ``B = sum_g w_g ||c_g - c||^2`` with ``c_g`` what group ``g`` holds on the pair
  (its label posterior under shared labels, its clean preference under individual labels or rater types) and
  ``c = sum_g w_g c_g``; this is the exact between-group term of the impurity of a mixture,
  ``D(c) = sum_g w_g D(c_g) + B``;
- *within groups (genuine)*: ``W = sum_g w_g D(c_g)`` where members of one group may genuinely differ
  (individual labels, types); 0 under shared labels, where a group's raters hold one label and every
  disagreement among them is noise;
- *noise*: ``N = max(T - B - W, 0)``, what rater error adds on top.

The exported shares are ``disagreement = B / (B + W + N)``, ``within_group = W / (B + W + N)`` and
``noise = N / (B + W + N)`` (all 0 where the pair shows no disagreement at all). The decomposition follows the
total-variance split of a mixture (as in the CrowdTruth ambiguity measures, Aroyo and Welty 2015, and the
perspectivist analyses of Uma et al., JAIR 2021), with impurity in place of variance so that ties count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets import AccordError, SoftLabels
from accord.models.base import summarize_draws
from accord.models.context import GroupProbabilities, gini, level_name

WEIGHTINGS: tuple[str, ...] = ("share", "equal")
TARGETS: tuple[str, ...] = ("preference", "label")


def column_name(group: Any) -> str:
    """A group name as it appears in column names (``p_a_<name>``): non-word characters become ``_``."""
    return re.sub(r"\W+", "_", str(group)).strip("_") or "group"


def group_probabilities_of(source: Any) -> GroupProbabilities:
    """The :class:`GroupProbabilities` of a fitted model (or the object itself)."""
    if isinstance(source, GroupProbabilities):
        return source
    if hasattr(source, "group_probabilities"):
        return source.group_probabilities()
    raise AccordError(
        f"{type(source).__name__} has no per-group probabilities: fit a ContextPreference or RaterTypes model"
    )


def population_weights(probs: GroupProbabilities, weights: str | Mapping[Any, float] = "share") -> np.ndarray:
    """The weight of every group (see the module docstring), summing to 1."""
    if isinstance(weights, str):
        if weights == "share":
            out = np.asarray(probs.share, dtype=float)
        elif weights == "equal":
            out = np.ones(len(probs.groups))
        else:
            raise AccordError(f"weights must be 'share', 'equal' or a dict of group weights, not '{weights}'")
    else:
        if isinstance(weights, pd.Series):  # keyed by group, as a dict (iterating it gave its weights as names)
            weights = weights.to_dict()
        if not isinstance(weights, Mapping):  # a list of names failed in Python's words, an array read as names
            raise AccordError(f"weights must be 'share', 'equal' or a dict of group weights, not {weights!r}")
        # a group is named as the model knows it (a whole number as an integer: 1.0 names the group '1')
        names = [str(g) for g in probs.groups]
        unknown = [g for g in weights if level_name(g) not in names]
        if unknown:
            raise AccordError(f"weights name unknown groups {unknown}; the groups are {names}")
        named_twice = pd.Series([level_name(g) for g in weights]).duplicated()
        if named_twice.any():
            raise AccordError(f"weights name the group '{level_name(list(weights)[int(named_twice.idxmax())])}' "
                              f"twice ({list(weights)})")
        given = {level_name(g): float(v) for g, v in weights.items()}
        if any(v < 0 for v in given.values()):
            raise AccordError("group weights must not be negative")
        out = np.asarray([given.get(name, 0.0) for name in names])
    total = out.sum()
    if not np.isfinite(total) or total <= 0:
        raise AccordError("group weights must have a positive sum")
    return out / total


def decompose_disagreement(
    source: Any, weights: str | Mapping[Any, float] = "share"
) -> pd.DataFrame:
    """Per pair: ``total``, ``between``, ``within``, ``noise`` (impurities) and the shares ``disagreement``,
    ``within_group``, ``noise_share`` (see the module docstring). Indexed by ``pair_id``."""
    probs = group_probabilities_of(source)
    w = population_weights(probs, weights)
    held = probs.consensus if probs.consensus is not None else probs.mean_clean()
    observed = np.einsum("igk,g->ik", probs.observed, w)
    centre = np.einsum("igk,g->ik", held, w)
    between = np.einsum("ig,g->i", ((held - centre[:, None, :]) ** 2).sum(-1), w)
    within = np.einsum("ig,g->i", gini(held), w) if probs.genuine_within else np.zeros(len(centre))
    total = gini(observed)
    noise = np.maximum(total - between - within, 0.0)
    parts = between + within + noise
    safe = np.where(parts > 1e-12, parts, 1.0)
    return pd.DataFrame(
        {
            "total": total,
            "between": between,
            "within": within,
            "noise": noise,
            "disagreement": np.where(parts > 1e-12, between / safe, 0.0),
            "within_group": np.where(parts > 1e-12, within / safe, 0.0),
            "noise_share": np.where(parts > 1e-12, noise / safe, 0.0),
        },
        index=pd.Index(probs.item_index, name="pair_id"),
    )


def pluralistic_soft_labels(
    source: Any,
    weights: str | Mapping[Any, float] = "share",
    *,
    target: str = "preference",
) -> SoftLabels:
    """Per-group soft labels, their weighted population aggregate and the noise/genuine split, as ``SoftLabels``.

    Parameters
    ----------
    source
        A fitted :class:`~accord.models.context.ContextPreference` or :class:`~accord.models.rater_types.RaterTypes`
        (or their :class:`GroupProbabilities`).
    weights
        ``"share"``, ``"equal"`` or ``{group: weight}`` (see the module docstring).
    target
        ``"preference"`` (default): P(a member of group g prefers A), posterior mean with its uncertainty;
        ``"label"``: the posterior of the group's label on this pair (its Dawid-Skene soft label; no
        uncertainty). Identical for individual labels and rater types.

    Returns
    -------
    SoftLabels
        ``probs``: the weighted population aggregate; ``uncertainty`` / ``interval``: its posterior sd and 90%
        interval (preference target); ``extra``: ``p_a_<g>``, ``p_b_<g>`` (and ``p_tie_<g>``) per group,
        ``disagreement``, ``within_group``, ``noise`` (shares) and ``total_disagreement`` (impurity). Through
        :func:`accord.aggregate.build_cleaned` these become ``p_chosen_<g>`` and the ``disagreement`` / ``noise``
        columns of the cleaned dataset.
    """
    if target not in TARGETS:
        raise AccordError(f"target must be one of {TARGETS}, not '{target}'")
    probs = group_probabilities_of(source)
    w = population_weights(probs, weights)
    index = pd.Index(probs.item_index, name="pair_id")
    classes = list(probs.classes)
    if target == "preference":
        draws = np.asarray(probs.clean, dtype=float)  # [S, n, G, K]
        per_group = draws.mean(0)
        population_draws = np.einsum("sigk,g->sik", draws, w)
    else:
        per_group = np.asarray(probs.consensus if probs.consensus is not None else probs.mean_clean(), dtype=float)
        population_draws = np.einsum("igk,g->ik", per_group, w)[None]
    summary = summarize_draws(population_draws)  # the models' one path from draws to soft labels
    mean, uncertainty = summary.mean, summary.sd
    interval = None
    if population_draws.shape[0] > 1:
        interval = pd.DataFrame({"lower": summary.lower, "upper": summary.upper}, index=index)
    extra = pd.DataFrame(index=index)
    named: dict[str, Any] = {}
    for group in probs.groups:  # one column per group: two groups must not share a column name
        if column_name(group) in named:
            raise AccordError(f"groups '{named[column_name(group)]}' and '{group}' both give the column name "
                              f"'{column_name(group)}' (p_a_<name>): rename one of them")
        named[column_name(group)] = group
    # one column per class and group (p_<class>_<group>, the class lower-cased as build_cleaned and the report read
    # it): classes such as 'A' and 'a', or 1 and '1', gave one name and the later silently replaced the earlier
    columns: dict[str, tuple[Any, Any]] = {}
    for g, group in enumerate(probs.groups):
        name = column_name(group)
        for k, label in enumerate(classes):
            column = f"p_{str(label).lower()}_{name}"
            if column in columns:
                other, other_group = columns[column]
                which = (f"classes {other!r} and {label!r}" if other_group == group else
                         f"class {other!r} of group '{other_group}' and class {label!r} of group '{group}'")
                raise AccordError(f"{which} both give the column name '{column}' (p_<class>_<group>, the class "
                                  "lower-cased): rename one of the classes")
            columns[column] = (label, group)
            extra[column] = per_group[:, g, k]
    split = decompose_disagreement(probs, weights)
    extra["disagreement"] = split["disagreement"].to_numpy()
    extra["within_group"] = split["within_group"].to_numpy()
    extra["noise"] = split["noise_share"].to_numpy()
    extra["total_disagreement"] = split["total"].to_numpy()
    counts = getattr(getattr(source, "soft_labels_", None), "n_judgments", None)
    if counts is None:
        counts = pd.Series(np.rint(probs.counts.sum(1)).astype(int), index=index)
    method = getattr(source, "method", probs.kind)
    weighting = weights if isinstance(weights, str) else "custom"
    return SoftLabels(
        probs=pd.DataFrame(mean, index=index, columns=classes),
        uncertainty=pd.Series(uncertainty, index=index, name="uncertainty"),
        n_judgments=pd.Series(np.asarray(counts), index=index, name="n_judgments"),
        method=f"{method}/pluralistic-{weighting}",
        interval=interval,
        extra=extra,
    )


__all__ = [
    "TARGETS",
    "WEIGHTINGS",
    "column_name",
    "decompose_disagreement",
    "group_probabilities_of",
    "pluralistic_soft_labels",
    "population_weights",
]
