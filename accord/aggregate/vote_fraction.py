"""Vote fractions: the share of each label among a pair's judgments."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from accord._settings import ConstructorSettings
from accord.datasets import AccordError, SoftLabels, encode
from accord.datasets.schema import check_two_classes


class VoteFraction(ConstructorSettings):
    """Vote fractions with a posterior standard deviation.

    ``P(class k) = n_k / n`` for a pair with ``n`` judgments, ``n_k`` of them for class ``k`` (ties are a class of
    their own: a pair judged A, B, tie gets 1/3 each). The uncertainty is the standard deviation of the top class's
    probability under the Dirichlet(n_1 + prior, ..., n_K + prior) posterior (the default 1/2 is Jeffreys' prior):
    with ``a = n_top + prior`` and ``a0 = n + K prior``, ``sd = sqrt(a (a0 - a) / (a0^2 (a0 + 1)))``. One vote gives
    a large uncertainty, ten unanimous votes a small one.

    Parameters
    ----------
    prior
        Pseudo-votes per class of the Dirichlet prior behind the uncertainty (a finite number >= 0; default 0.5).
        The probabilities themselves are the plain fractions ``n_k / n`` whatever it is.
    """

    method = "vote-fraction"

    def __init__(self, prior: float = 0.5) -> None:
        _check_prior(prior)  # here: set_params builds a fresh instance, and refuses a bad prior at once
        self.prior = prior

    def fit(self, judgments: pd.DataFrame) -> "VoteFraction":
        _check_prior(self.prior)  # again, for a prior assigned directly
        encoded = encode(judgments)
        check_two_classes(encoded)
        counts = encoded.vote_counts()
        n = counts.sum(axis=1)
        probs = counts / n[:, None]
        top = counts.max(axis=1)
        a = top + self.prior
        a0 = n + self.prior * encoded.n_classes
        sd = np.sqrt(a * (a0 - a) / (a0**2 * (a0 + 1.0)))
        index = encoded.item_index
        self.soft_labels_ = SoftLabels(
            probs=pd.DataFrame(probs, index=index, columns=list(encoded.classes)),
            uncertainty=pd.Series(sd, index=index, name="uncertainty"),
            n_judgments=pd.Series(n.astype(np.int64), index=index, name="n_judgments"),
            method=self.method,
        )
        return self

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        return self.fit(judgments).soft_labels_.hard()


def _check_prior(prior: object) -> None:
    if isinstance(prior, bool) or not isinstance(prior, numbers.Real) or not 0 <= prior < np.inf:
        raise AccordError(f"VoteFraction: prior must be a finite number >= 0 (pseudo-votes per class), got "
                          f"{prior!r}")
