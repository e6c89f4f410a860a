"""Per-attribute averaging: the baseline a multi-attribute rater model is judged against."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from accord._settings import ConstructorSettings
from accord.datasets import AccordError, AttributeScores, encode_attributes, validate_attributes
from accord.datasets.attribute_scores import INTERVAL, check_interval
from accord.datasets.attributes import ATTRIBUTE_FORM, is_preference_scale
from accord.datasets.schema import checked_info


class AttributeMean(ConstructorSettings):
    """Each item's mean rating on each attribute, with a normal-theory standard error.

    The score of item ``i`` on attribute ``a`` is the mean of its ``n_ia`` ratings; its sd is ``s_a / sqrt(n_ia)``
    with ``s_a`` the within-item sd of attribute ``a`` pooled over the items rated at least twice (0 when no item
    is: a single gold label per item is taken as given). Every rater counts the same: no leniency, no noise, no
    pooling across attributes. The interval is ``mean +- z sd``,
    clipped to the scale. An item without ratings on an attribute gets the attribute's mean over the ``m`` rated
    items, ``n = 0`` and the sd ``sqrt((sum_i (mean_i - grand)^2 + s_0^2) / m)``: the rated items' squared deviations
    with the variance ``s_0^2 = (K^2 - 1) / 12`` of a rating uniform over the scale's ``K`` levels counted as one more
    item's, so that a few rated items that agree do not claim to pin an unrated one (one rated item: ``s_0``; many: the
    between-item sd). The prior variance that :meth:`~AttributeScores.reliability` divides by stays the between-item
    variance of the means (``s_0^2`` when one item is rated), so the rated items' outputs do not depend on this rule.
    Comparisons use the means as the latent scale (P(A better) =
    ``Phi((mean_A - mean_B) / sqrt(sd_A^2 + sd_B^2))``; for a preference attribute of pairs, P(A better) =
    ``Phi(-mean / sd)``).

    Parameters
    ----------
    interval
        Probability of the reported central interval (``z`` is its normal quantile; default 0.9).

    Fitted attribute: ``scores_`` (:class:`~accord.datasets.attribute_scores.AttributeScores`).
    """

    method: ClassVar[str] = "attribute-mean"

    def __init__(self, *, interval: float = INTERVAL) -> None:
        check_interval(interval)  # here too: set_params builds a fresh instance, and refuses a bad interval at once
        self.interval = interval

    def fit(self, judgments: pd.DataFrame) -> "AttributeMean":
        from scipy.special import ndtri  # deferred: scipy is slow to import

        check_interval(self.interval)
        info = checked_info(judgments)
        table = judgments if info and info.get("form") == ATTRIBUTE_FORM else validate_attributes(judgments)
        codes = encode_attributes(table)
        n_items, n_attr = codes.n_items, codes.n_attributes
        slot = codes.items * n_attr + codes.attributes
        # levels counted from the bottom of each scale, and squares of deviations from the item's mean: the sum of
        # squares less n mean^2 of the labels themselves lost the spread to rounding on a scale far from 0 (a
        # constant added to every rating and its scale changed the sd, and made it NaN from 1e8 on)
        levels = codes.levels.astype(float)
        counts = codes.counts().astype(float)
        flat_counts = counts.ravel()
        sums = np.bincount(slot, weights=levels, minlength=n_items * n_attr)
        rated = flat_counts > 0
        mean = np.divide(sums, flat_counts, out=np.zeros_like(sums), where=rated)
        within = np.bincount(slot, weights=(levels - mean[slot]) ** 2, minlength=n_items * n_attr)
        within = within.reshape(n_items, n_attr)
        mean, rated = mean.reshape(n_items, n_attr), rated.reshape(n_items, n_attr)
        degrees = np.maximum(counts - 1, 0).sum(0)
        # no item rated twice (e.g. one gold label per item): nothing to estimate a spread from, ratings taken as given
        pooled = np.sqrt(np.divide(within.sum(0), degrees, out=np.zeros(n_attr), where=degrees > 0))
        grand = np.array([mean[rated[:, a], a].mean() if rated[:, a].any() else 0.0 for a in range(n_attr)])
        # one rated item shows no spread between items: an unrated item is then as uncertain as a rating drawn
        # uniformly from the scale's levels (a fixed 1.0 was overconfident on a 0-100 scale, too wide on 0-1)
        levels_on_scale = (codes.highs - codes.lows + 1).astype(float)
        uniform = np.sqrt((levels_on_scale ** 2 - 1) / 12)
        between = np.array([mean[rated[:, a], a].std() if rated[:, a].sum() > 1 else uniform[a]
                            for a in range(n_attr)])
        # an unrated item: the between-item spread alone was 0 when two rated items agreed (an interval [3, 3] with
        # n = 0) and 0.5 on 0-100 for means 2 and 3; the uniform variance as one pseudo-item keeps it honest
        n_rated = rated.sum(0)
        squares = np.where(rated, (mean - grand[None, :]) ** 2, 0.0).sum(0)
        unrated = np.sqrt((squares + uniform ** 2) / np.maximum(n_rated, 1))
        mean = codes.lows.astype(float)[None, :] + np.where(rated, mean, grand[None, :])
        sd = np.where(rated, pooled[None, :] / np.sqrt(np.maximum(counts, 1.0)), unrated[None, :])
        z = float(ndtri(0.5 + self.interval / 2))
        lows, highs = codes.lows.astype(float)[None, :], codes.highs.astype(float)[None, :]
        names = list(codes.attribute_names)
        frame = lambda values: pd.DataFrame(values, index=codes.item_index, columns=names)  # noqa: E731
        scales = {name: (int(codes.lows[a]), int(codes.highs[a])) for a, name in enumerate(names)}
        neutral = pd.Series(np.nan, index=names, dtype=float)
        if codes.item_kind == "pair":
            for name in names:
                if is_preference_scale(scales[name]):
                    neutral[name] = 0.0
        covariance = np.zeros((n_items, n_attr, n_attr))
        covariance[:, np.arange(n_attr), np.arange(n_attr)] = sd ** 2
        self.scores_ = AttributeScores(
            mean=frame(mean), sd=frame(sd), lower=frame(np.clip(mean - z * sd, lows, highs)),
            upper=frame(np.clip(mean + z * sd, lows, highs)), n=frame(counts.astype(np.int64)),
            latent_mean=frame(mean), latent_cov=covariance, scales=scales, item_kind=codes.item_kind,
            method=self.method, neutral=neutral, prior_cov=np.diag(between ** 2), interval=self.interval,
        )
        return self
