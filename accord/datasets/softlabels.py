"""``SoftLabels``: the one result type every aggregator returns.

Per pair (or item): the probability of each class (for preference data ``P(A > B)``, ``P(B > A)`` and, where ties
exist, ``P(tie)``), an uncertainty when the method has one, the number of judgments, and the method's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError


@dataclass(frozen=True)
class SoftLabels:
    """Soft labels of one aggregation method.

    Attributes
    ----------
    probs
        Index ``pair_id``; one column per class (``"A"``, ``"B"`` and, with ties, ``"tie"``); rows sum to 1.
    uncertainty
        Posterior standard deviation of the probability of each pair's most likely class; NaN when the method gives
        no uncertainty (majority vote).
    n_judgments
        Number of judgments behind each pair.
    method
        The method's name (``"majority"``, ``"vote-fraction"``, ``"dawid-skene"``, ...).
    interval
        Optional ``lower`` / ``upper`` columns: an equal-tailed 90% credible interval of the same probability as
        ``uncertainty``. Where that probability's posterior is skewed against 0 or 1 its mean (the soft label) can
        lie just outside the interval (Snow RTE under GLAD: by at most 7e-4): the mean is the label a reward model
        should see, the interval where 90% of the posterior lies, and neither is moved to hold the other.
    extra
        Optional further per-pair columns (e.g. per-group probabilities), carried into the cleaned dataset.
    """

    probs: pd.DataFrame
    uncertainty: pd.Series
    n_judgments: pd.Series
    method: str
    interval: pd.DataFrame | None = None
    extra: pd.DataFrame | None = field(default=None)

    def __post_init__(self) -> None:
        values = self.probs.to_numpy(dtype=float)
        if values.ndim != 2 or values.shape[1] < 2:
            raise AccordError("SoftLabels.probs needs one column per class (at least two)")
        if not np.isfinite(values).all() or (values < -1e-9).any() or (values > 1 + 1e-9).any():
            raise AccordError(f"SoftLabels from '{self.method}': probabilities outside [0, 1] or not finite")
        if not np.allclose(values.sum(axis=1), 1.0, atol=1e-6):
            raise AccordError(f"SoftLabels from '{self.method}': class probabilities do not sum to 1")
        for name in ("uncertainty", "n_judgments"):
            if not getattr(self, name).index.equals(self.probs.index):
                raise AccordError(f"SoftLabels.{name} is not indexed like probs")

    @property
    def classes(self) -> list:
        return list(self.probs.columns)

    @property
    def pair_ids(self) -> pd.Index:
        return self.probs.index

    @property
    def p_a(self) -> pd.Series:
        """P(A > B) per pair (preference data; graded: the grades below 0)."""
        if "A" in self.probs.columns:
            return self.probs["A"].rename("p_a")
        return self._graded_sum("p_a", lambda grades: grades < 0)

    @property
    def p_tie(self) -> pd.Series:
        """P(tie) per pair (graded: the grade 0); zero where the data has no ties."""
        if "tie" in self.probs.columns:
            return self.probs["tie"].rename("p_tie")
        if "A" in self.probs.columns:
            return pd.Series(0.0, index=self.probs.index, name="p_tie")
        return self._graded_sum("p_tie", lambda grades: grades == 0)

    def _graded_sum(self, name: str, chosen: Callable[[np.ndarray], np.ndarray]) -> pd.Series:
        """The probability of the grades ``chosen(grades)`` picks, for soft labels over a graded scale ``-S..S``
        (negative = A better, 0 = a tie), as the cleaned dataset reads them; one error for unordered classes (the
        tie's column was missing, so graded soft labels gave P(tie) = 0 for every pair and ``p_a`` a KeyError)."""
        classes = self.classes
        whole = all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes)
        if not whole or sorted(int(c) for c in classes) != list(range(-(len(classes) // 2), len(classes) // 2 + 1)):
            raise AccordError(f"SoftLabels.{name} is for preference data (classes A/B[/tie] or grades -S..S); "
                              f"method '{self.method}' gave classes {classes}")
        grades = np.asarray(classes, dtype=int)
        values = self.probs.to_numpy(dtype=float)[:, chosen(grades)].sum(axis=1)
        return pd.Series(values, index=self.probs.index, name=name)

    def hard(self) -> pd.Series:
        """The most likely class per pair."""
        return self.probs.idxmax(axis=1).rename("label")

    def to_frame(self) -> pd.DataFrame:
        """One row per pair: ``p_<class>`` columns, ``uncertainty``, interval, ``n_judgments``, ``method``."""
        out = self.probs.add_prefix("p_")
        out["uncertainty"] = self.uncertainty
        if self.interval is not None:
            out = out.join(self.interval)
        out["n_judgments"] = self.n_judgments
        if self.extra is not None:
            out = out.join(self.extra)
        out["method"] = self.method
        return out

    def __len__(self) -> int:
        return len(self.probs)

    def __repr__(self) -> str:
        return f"SoftLabels(method={self.method!r}, pairs={len(self)}, classes={self.classes})"
