r"""``AttributeScores``: what a multi-attribute aggregator returns, per item and attribute.

The multi-attribute counterpart of :class:`~accord.datasets.softlabels.SoftLabels`. For every item (a response or a
pair) and attribute it holds the posterior of the attribute on the rating scale (mean, sd, credible interval) and
the number of ratings behind it; and, for comparing items, a Gaussian posterior of the attribute on a latent scale
(mean per attribute, covariance across the attributes of one item).

Comparisons
-----------
For two responses A and B, :meth:`AttributeScores.compare` gives P(A better on attribute a) = P(z_{Aa} > z_{Ba})
under the two items' latent posteriors (treated as independent):

.. math:: P(A \succ_a B) = \Phi\Big(\frac{\mu_{Aa} - \mu_{Ba}}{\sqrt{S_{A,aa} + S_{B,aa}}}\Big).

For pair items with a preference attribute (scale ``-S..S``, negative: A better) the latent is the pair's gap, and
:meth:`AttributeScores.p_a_better` gives P(gap below the attribute's neutral point), the posterior probability
that A is better on that attribute.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError

#: The central posterior interval the summaries report.
INTERVAL = 0.9


def check_interval(value: object) -> None:
    """One error unless ``value`` (an ``interval`` setting) is a probability strictly between 0 and 1: a text
    ('0.9', from a config file) failed in the comparison with a TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
        raise AccordError(f"interval must be a probability in (0, 1), got {value!r}")


@dataclass(frozen=True)
class AttributeScores:
    """Per-item, per-attribute posterior summaries of one aggregation method.

    Attributes
    ----------
    mean, sd, lower, upper
        ``[items x attributes]`` frames (index ``response_id`` or ``pair_id``): the posterior mean, sd and central
        ``interval`` credible interval of each attribute on its rating scale (for a model: the rating a typical
        rater would give on average).
    n
        ``[items x attributes]`` number of ratings behind each value (0: the value is imputed, e.g. from the other
        attributes of the item).
    latent_mean
        ``[items x attributes]`` posterior mean on the latent scale that comparisons use.
    latent_cov
        ``[items, attributes, attributes]`` posterior covariance of each item's latent attributes.
    scales
        ``{attribute: (low, high)}``.
    item_kind
        ``"response"`` or ``"pair"``.
    method
        The method's name.
    neutral
        Per attribute: the latent value at which neither side of a pair is better (preference attributes of pair
        items; NaN elsewhere).
    prior_cov
        ``[attributes, attributes]`` covariance of the latent attributes across items before seeing any rating
        (the population's spread, against which :meth:`reliability` measures how much the ratings tell).
    interval
        The probability of the credible interval (0.9).
    """

    mean: pd.DataFrame
    sd: pd.DataFrame
    lower: pd.DataFrame
    upper: pd.DataFrame
    n: pd.DataFrame
    latent_mean: pd.DataFrame
    latent_cov: np.ndarray
    scales: dict[str, tuple[int, int]]
    item_kind: str
    method: str
    neutral: pd.Series | None = None
    prior_cov: np.ndarray | None = None
    interval: float = INTERVAL

    def __post_init__(self) -> None:
        frames = {"sd": self.sd, "lower": self.lower, "upper": self.upper, "n": self.n,
                  "latent_mean": self.latent_mean}
        for name, frame in frames.items():
            if not (frame.index.equals(self.mean.index) and list(frame.columns) == list(self.mean.columns)):
                raise AccordError(f"AttributeScores.{name} is not shaped like mean (items x attributes)")
        shape = (len(self.mean), self.mean.shape[1], self.mean.shape[1])
        if self.latent_cov.shape != shape:
            raise AccordError(f"AttributeScores.latent_cov has shape {self.latent_cov.shape}, expected {shape}")
        if list(self.scales) != list(self.mean.columns):
            raise AccordError("AttributeScores.scales must name the attributes in the order of the columns")
        values = self.mean.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise AccordError(f"AttributeScores from '{self.method}': a mean is not finite")

    @property
    def attributes(self) -> list[str]:
        return list(self.mean.columns)

    @property
    def item_ids(self) -> pd.Index:
        return self.mean.index

    def latent_sd(self) -> pd.DataFrame:
        """``[items x attributes]`` posterior sd on the latent scale."""
        diagonal = np.sqrt(np.einsum("iaa->ia", self.latent_cov))
        return pd.DataFrame(diagonal, index=self.mean.index, columns=self.mean.columns)

    def prior_variance(self) -> pd.Series:
        """Per attribute, the latent variance across items before any rating (``prior_cov``'s diagonal, else the
        spread of the posterior means plus the mean posterior variance)."""
        if self.prior_cov is not None:
            values = np.diag(self.prior_cov)
        else:
            values = self.latent_mean.var(ddof=0).to_numpy() + np.einsum("iaa->a", self.latent_cov) / max(len(self), 1)
        return pd.Series(values, index=self.attributes)

    def reliability(self, a: pd.Index | np.ndarray | list | None = None,
                    b: pd.Index | np.ndarray | list | None = None) -> pd.DataFrame:
        """How much the ratings pin down each attribute, in [0, 1]: ``1 - posterior variance / prior variance``.

        Of each item's attribute when ``a`` and ``b`` are omitted; of the gap between responses ``a[k]`` and
        ``b[k]`` otherwise (prior variance ``2 Sigma_aa``). 0: the ratings say nothing (e.g. the attribute was not
        rated, or every item was rated alike so that there is nothing to pin down); 1: they determine it.
        """
        prior = self.prior_variance().to_numpy()[None, :]
        var = np.einsum("iaa->ia", self.latent_cov)
        if a is None and b is None:
            posterior, index = var, self.mean.index
        else:
            if a is None or b is None:
                raise AccordError("reliability() needs both a and b, or neither")
            a_rows, b_rows = self._pair_rows(a, b, "reliability")
            posterior, index = (var[a_rows] + var[b_rows]) / 2, None
        # a prior variance of 0 (per-attribute averaging when every item has the same mean) gave 0 / 0 = NaN where
        # the posterior variance is 0 too: the ratio is taken as infinite there, as it is for a positive posterior
        ratio = np.divide(posterior, prior, out=np.full(posterior.shape, np.inf), where=prior > 0)
        return pd.DataFrame(np.clip(1.0 - ratio, 0.0, 1.0), index=index, columns=self.attributes)

    def to_frame(self) -> pd.DataFrame:
        """One row per item: ``<attribute>_mean``, ``_sd``, ``_lower``, ``_upper`` and ``_n`` per attribute."""
        parts = {}
        for attribute in self.attributes:
            parts[f"{attribute}_mean"] = self.mean[attribute]
            parts[f"{attribute}_sd"] = self.sd[attribute]
            parts[f"{attribute}_lower"] = self.lower[attribute]
            parts[f"{attribute}_upper"] = self.upper[attribute]
            parts[f"{attribute}_n"] = self.n[attribute]
        return pd.DataFrame(parts, index=self.mean.index)

    def compare(self, a: pd.Index | np.ndarray | list, b: pd.Index | np.ndarray | list) -> pd.DataFrame:
        """P(A better on each attribute) for responses ``a[k]`` against ``b[k]`` (response items only).

        Returns a frame with one row per pair and one column per attribute.
        """
        from scipy.special import ndtr  # deferred: scipy is slow to import

        if self.item_kind != "response":
            raise AccordError("compare() is for responses; for pair items use p_a_better()")
        a_rows, b_rows = self._pair_rows(a, b, "compare")
        mu = self.latent_mean.to_numpy()
        var = np.einsum("iaa->ia", self.latent_cov)
        z = (mu[a_rows] - mu[b_rows]) / np.sqrt(np.maximum(var[a_rows] + var[b_rows], 1e-300))
        return pd.DataFrame(ndtr(z), columns=self.attributes)

    def p_a_better(self) -> pd.DataFrame:
        """For pair items: P(A better) on each preference attribute (NaN for other attributes)."""
        from scipy.special import ndtr  # deferred: scipy is slow to import

        if self.item_kind != "pair":
            raise AccordError("p_a_better() is for pair items; for responses use compare()")
        neutral = self.neutral if self.neutral is not None else pd.Series(np.nan, index=self.attributes)
        mu = self.latent_mean.to_numpy()
        sd = np.sqrt(np.maximum(np.einsum("iaa->ia", self.latent_cov), 1e-300))
        values = ndtr((neutral.reindex(self.attributes).to_numpy()[None, :] - mu) / sd)
        return pd.DataFrame(values, index=self.mean.index, columns=self.attributes)

    def _pair_rows(self, a: pd.Index | np.ndarray | list, b: pd.Index | np.ndarray | list,
                   caller: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``a[k]`` and ``b[k]``: two lists of ids of one length. Lists of other lengths were
        broadcast by numpy without a word (one id against none gave an empty frame, two against one compared both
        with it) or failed on "operands could not be broadcast"; a lone id failed in pandas' Index."""
        for name, ids in (("a", a), ("b", b)):
            if isinstance(ids, (str, bytes)) or np.ndim(ids) != 1:
                raise AccordError(f"{caller}(): {name} must be a list of item ids, e.g. {name}=[{ids!r}], "
                                  f"got {type(ids).__name__}")
        if len(a) != len(b):
            raise AccordError(f"{caller}(): a and b pair a[k] with b[k] and must be as long, got {len(a)} and "
                              f"{len(b)} ids")
        return self._rows(a), self._rows(b)

    def _rows(self, ids: pd.Index | np.ndarray | list) -> np.ndarray:
        rows = self.mean.index.get_indexer(pd.Index(ids))
        if (rows < 0).any():
            missing = pd.Index(ids)[rows < 0][0]
            raise AccordError(f"no scores for item {missing!r}")
        return rows

    def __len__(self) -> int:
        return len(self.mean)

    def __repr__(self) -> str:
        return (f"AttributeScores(method={self.method!r}, {self.item_kind}s={len(self)}, "
                f"attributes={self.attributes})")
