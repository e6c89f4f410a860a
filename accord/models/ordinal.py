r"""Graded preference strength: a cumulative-link (ordinal) model with per-annotator thresholds.

For Likert-style preference scales (HelpSteer-style ``-3..3``; negative = A better, 0 = tie), each judgment
``y_n`` by annotator ``j`` of the pair (A, B) is an ordered category of the latent gap ``d = u_A - u_B``
(McCullagh 1980):

.. math::

    P(y_n \le m) = F\bigl(c_{j,m} + s_j\, d\bigr), \qquad m = 1..2S, \qquad
    c_{j,m} = a_j + e^{\rho_j}\, \kappa_m,

with ``F`` the logistic (``link="logit"``, proportional odds) or normal CDF (``link="probit"``). The population
cut-points are symmetric, :math:`\kappa = (-h_S, \dots, -h_1, h_1, \dots, h_S)` with
:math:`h_k = \sum_{i \le k} e^{\theta_i}` (so they are ordered by construction and the tie band is
:math:`(-h_1, h_1)`); each annotator moves them by a *threshold shift* ``a_j`` (positive = leans to A, i.e. a
position bias) and stretches them by a *spread* ``exp(rho_j)`` (above 1: keeps to the middle of the scale; below 1:
uses the extremes; the log-spreads are centred on their mean over the annotators, so that the population
cut-points are those of the annotator of average log-spread, instead of trading their scale against the mean
log-spread, a direction the likelihood leaves flat and mean-field SVI resolved 15-20% off), and has a *sharpness*
``s_j`` (negative = adversarial), all hierarchical:

.. math::

    u_r \sim \mathcal N(0, 1), \quad \theta_i \sim \mathcal N(0, 1.5), \quad
    s_j \sim \mathcal N(\mu_s, \tau_s), \quad a_j \sim \mathcal N(\mu_a, \tau_a),
    \quad \rho_j \sim \mathcal N(0, \tau_\rho),

    \mu_s \sim \mathrm{LogNormal}(0, 1), \quad \mu_a \sim \mathcal N(0, 1), \quad
    \tau^2_\cdot \sim \mathrm{InverseGamma}(2, \beta_\cdot) \text{ (integrated out, see } GroupNormal\text{)}.

``mu_a`` is the population's position bias: with symmetric cut-points an asymmetric use of the scale is attributed
to the first-shown position, not to the responses. The latent gap is per response (``u_A - u_B`` with
``response_a_id`` / ``response_b_id``) or per pair (``latent="pair"``, the default without ids); identification,
the warm start and the inference options are those of :class:`~accord.models.bradley_terry.CrowdBradleyTerry`.

Soft labels are a typical annotator's (sharpness ``mu_s``, no shift, unit spread) posterior-mean probabilities
P(A better) = P(y < 0), P(tie) = P(y = 0), P(B better) = P(y > 0), with ``extra`` columns ``expected_strength``
(:math:`E[y]` on the label scale, negative = A better), its sd, and each grade's probability ``grade_<k>``.

Plain A/B/tie labels are accepted as the scale ``-1..1`` (the model is then Rao & Kupper's threshold model with
annotator-specific thresholds).

Reference
---------
P. McCullagh. Regression models for ordinal data. *Journal of the Royal Statistical Society B* 42 (1980), 109-142.

Example
-------
>>> model = OrdinalPreference().fit(graded_judgments)  # labels -3..3, attrs["accord"]["scale"] = 3  # doctest: +SKIP
>>> model.soft_labels_.to_frame()[["p_A", "p_tie", "p_B", "expected_strength"]]               # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch

from accord.datasets import Encoded
from accord.models.pairwise import Params, PairwiseData, PairwiseUtilityModel, ordinal_log_probs


class OrdinalPreference(PairwiseUtilityModel):
    r"""Cumulative-link model of graded preferences with per-annotator thresholds (see the module docstring).

    Parameters
    ----------
    link
        ``"logit"`` (proportional odds) or ``"probit"``.
    annotator_shift, annotator_spread
        Learn each annotator's threshold shift ``a_j`` / spread ``exp(rho_j)``; otherwise every annotator uses
        the population cut-points (shift ``mu_a``, spread 1).
    Others: :class:`~accord.models.pairwise.PairwiseUtilityModel`, :class:`~accord.models.base.PyroRaterModel`.

    Fitted attributes: ``soft_labels_`` (columns A, B, tie; extra ``expected_strength``, ``expected_strength_sd``,
    ``grade_<k>``), ``annotators_`` (the common columns, ``sharpness`` = ``s_j / mu_s`` with its sd and interval,
    ``p_adversarial``, ``shift`` and ``spread`` with their intervals), ``cutpoints_`` (population cut-points),
    ``population_``, ``ranking_``, ``predict_proba``.
    """

    method: ClassVar[str] = "ordinal-preference"
    group_priors: ClassVar[dict[str, tuple[str | None, float, float]]] = {"sharpness": ("sharpness_mean", 2.0, 0.5),
                                                                          "shift": ("shift_mean", 2.0, 0.1),
                                                                          "spread": (None, 2.0, 0.05)}

    annotator_shift: bool = True
    annotator_spread: bool = True

    def _labels_for_model(self, encoded: Encoded) -> tuple[np.ndarray, int]:
        if encoded.form == "graded":
            return encoded.labels, 2 * int(encoded.scale) + 1  # classes are -S..S in order
        # A / B / tie as the scale -1..1: A -> 0 (y = -1), tie -> 1, B -> 2
        values = np.asarray(encoded.classes, dtype=object)[encoded.labels]
        codes = np.where(values == "A", 0, np.where(values == "B", 2, 1)).astype(np.int64)
        return codes, 3

    @property
    def scale_(self) -> int:
        """``S``, the largest strength of the fitted scale ``-S..S``."""
        return (self._data.n_classes - 1) // 2

    def _soft_classes(self) -> list[Any]:
        return ["A", "B", "tie"]

    def _model(self, data: PairwiseData, batch_size: int | None = None) -> None:
        """The Pyro model (see the module docstring)."""
        device = data.device
        n_cuts = (data.n_classes - 1) // 2
        zero, one = torch.zeros((), device=device), torch.ones((), device=device)
        params = {"sharpness_mean": pyro.sample("sharpness_mean", dist.LogNormal(zero, one))}
        params["cut_log_increments"] = pyro.sample("cut_log_increments",
                                                   dist.Normal(zero, 1.5 * one).expand([n_cuts]).to_event(1))
        # the population's position bias (the mean threshold shift)
        params["shift_mean"] = pyro.sample("shift_mean", dist.Normal(zero, one))
        latent = self._sample_latent(data)
        params["sharpness"] = self._sample_group("sharpness", params["sharpness_mean"], data)
        if self.annotator_shift:
            params["shift"] = self._sample_group("shift", params["shift_mean"], data)
        if self.annotator_spread:
            params["spread"] = self._sample_group("spread", zero, data)
            params["spread_center"] = params["spread"].mean(-1)
        self._observe(data, latent, params, batch_size)

    @staticmethod
    def population_cuts(params: Params) -> torch.Tensor:
        """``[..., 2S]`` symmetric population cut-points from the log-increments ``theta``."""
        half = torch.cumsum(params["cut_log_increments"].exp(), dim=-1)
        return torch.cat([-half.flip(-1), half], dim=-1)

    def class_log_probs(self, params: Params, gap: torch.Tensor, workers: torch.Tensor | None,
                        pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities of the grades ``-S..S`` (in that order) for gaps ``u_A - u_B``; ``workers=None`` is
        the typical annotator (sharpness ``mu_s``, no shift, spread 1)."""
        cuts = self.population_cuts(params).unsqueeze(-2)  # [..., 1, 2S]
        if workers is None:
            eta = params["sharpness_mean"].unsqueeze(-1) * gap
            return ordinal_log_probs(cuts.expand(*eta.shape, cuts.shape[-1]), eta, self.link)
        eta = params["sharpness"][..., workers] * gap
        if "spread" in params:
            log_spread = params["spread"][..., workers] - params["spread_center"].unsqueeze(-1)
            cuts = log_spread.exp().unsqueeze(-1) * cuts
        shift = params["shift"][..., workers] if "shift" in params else params["shift_mean"].unsqueeze(-1)
        cuts = cuts + shift.unsqueeze(-1)
        return ordinal_log_probs(cuts.expand(*eta.shape, cuts.shape[-1]), eta, self.link)

    def _init_values(self, data: PairwiseData) -> dict[str, torch.Tensor]:
        n_classes, device = data.n_classes, data.device
        n_cuts = (n_classes - 1) // 2
        grade = data.labels.to(torch.float32) - n_cuts  # -S..S
        # a vote for side A in [-1, 1]: the negated strength, scaled
        values = self._latent_start(data, -grade / max(n_cuts, 1))
        # cut-points from the marginal grade frequencies, symmetrised: kappa_m ~ F^-1(P(y <= m))
        counts = torch.bincount(data.labels.cpu(), minlength=n_classes).double() + 0.5
        cumulative = (counts.cumsum(0) / counts.sum())[:-1].clamp(1e-3, 1 - 1e-3)
        if self.link == "logit":
            boundaries = torch.log(cumulative / (1 - cumulative))
        else:
            boundaries = torch.special.ndtri(cumulative)
        half = (boundaries[n_cuts:] - boundaries.flip(0)[n_cuts:]) / 2
        increments = torch.diff(half, prepend=torch.zeros(1, dtype=half.dtype)).clamp(min=0.1)
        values.update(cut_log_increments=increments.log().to(torch.float32).to(device),
                      shift_mean=torch.tensor(0.0, device=device))
        if self.annotator_shift:
            values["shift"] = torch.zeros(data.n_workers, device=device)
        if self.annotator_spread:
            values["spread"] = torch.zeros(data.n_workers, device=device)
        return values

    def _vote_classes(self, prob_draws: torch.Tensor) -> torch.Tensor:
        """``[draws, n, 3]`` P(A better), P(B better), P(tie) from grade probabilities."""
        draws = prob_draws.double()
        middle = (draws.shape[-1] - 1) // 2
        return torch.stack([draws[..., :middle].sum(-1), draws[..., middle + 1:].sum(-1), draws[..., middle]], dim=-1)

    def _expected_strength(self, prob_draws: torch.Tensor) -> np.ndarray:
        grades = np.arange(prob_draws.shape[-1]) - (prob_draws.shape[-1] - 1) // 2
        return prob_draws.numpy().astype(np.float64) @ grades

    def _pair_columns(self, prob_draws: torch.Tensor) -> dict[str, np.ndarray]:
        strength = self._expected_strength(prob_draws)
        sd = strength.std(axis=0, ddof=1) if strength.shape[0] > 1 else np.full(strength.shape[1], np.nan)
        extra = {"expected_strength": strength.mean(axis=0), "expected_strength_sd": sd}
        grades = prob_draws.numpy().astype(np.float64).mean(axis=0)
        scale = (grades.shape[-1] - 1) // 2
        return {**extra, **{f"grade_{k - scale}": grades[:, k] for k in range(grades.shape[-1])}}

    def _rater_columns(self) -> dict[str, np.ndarray]:
        spread = None
        if "spread" in self._draws:
            spread = (self._draws["spread"] - self._draws["spread_center"].unsqueeze(-1)).exp()
        return {**self._sharpness_columns(), **self._site_columns("shift", "shift"),
                **self._site_columns("spread", "spread", spread)}

    @property
    def cutpoints_(self) -> pd.DataFrame:
        """Population cut-points ``kappa`` (between grades ``k-1`` and ``k``): posterior mean, sd, 90% interval.
        They are on a typical annotator's scale, as are the reported utilities: ``P(y <= m) = F(kappa_m +
        utility_A - utility_B)``."""
        self._check_fitted()
        index = [f"{k - 1}|{k}" for k in range(-self.scale_ + 1, self.scale_ + 1)]
        return pd.DataFrame(self._summary(self.population_cuts(self._draws)), index=pd.Index(index, name="boundary"))

    def _predicted_columns(self, prob_draws: torch.Tensor) -> dict[str, np.ndarray]:
        return {"expected_strength": self._expected_strength(prob_draws).mean(axis=0)}

    def _derived_sites(self, chains: dict[str, torch.Tensor]) -> None:
        if "spread" in chains:
            chains["spread_center"] = chains["spread"].mean(-1)
