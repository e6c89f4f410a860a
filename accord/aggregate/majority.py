"""Majority vote: the most frequent label per pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

from accord._settings import ConstructorSettings
from accord.datasets import SoftLabels, encode
from accord.datasets.schema import check_two_classes


class MajorityVote(ConstructorSettings):
    """Majority vote over each pair's judgments.

    ``soft_labels_.probs`` is one-hot on the winning class. When several classes share the largest count (e.g. one
    "A" and one "B") the probability is split equally among them, so no side is favoured silently; ``hard()`` then
    returns the first of them in class order. Majority vote has no uncertainty: ``uncertainty`` is NaN.

    Example
    -------
    >>> from accord.datasets import make_synthetic
    >>> labels = MajorityVote().fit(make_synthetic(n_pairs=50, seed=0).judgments).soft_labels_
    """

    method = "majority"

    def fit(self, judgments: pd.DataFrame) -> "MajorityVote":
        encoded = encode(judgments)
        check_two_classes(encoded)
        counts = encoded.vote_counts()
        winners = (counts == counts.max(axis=1, keepdims=True)).astype(float)
        probs = winners / winners.sum(axis=1, keepdims=True)
        n = pd.Series(counts.sum(axis=1).astype(np.int64), index=encoded.item_index, name="n_judgments")
        self.soft_labels_ = SoftLabels(
            probs=pd.DataFrame(probs, index=encoded.item_index, columns=list(encoded.classes)),
            uncertainty=pd.Series(np.nan, index=encoded.item_index, name="uncertainty"),
            n_judgments=n,
            method=self.method,
        )
        return self

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        return self.fit(judgments).soft_labels_.hard()
