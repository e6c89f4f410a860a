r"""Crowd Bradley-Terry / Thurstone: a latent utility per response, judged by annotators of varying reliability.

The model
---------
Each response ``r`` has a latent utility ``u_r``; each annotator ``j`` has a *sharpness* ``s_j`` (how strongly the
utility gap drives their choice: large = reliable, near 0 = random, negative = adversarial, i.e. systematically
picking the worse side) and a *position bias* ``b_j`` (a pull towards the first-shown side A). For judgment ``n`` by
annotator ``j`` of the pair (A, B)

.. math::

    d_n = s_j\,(u_A - u_B) + b_j, \qquad u_r \sim \mathcal N(0, 1),

    \mu_s \sim \mathrm{LogNormal}(0, 1), \quad s_j \sim \mathcal N(\mu_s, \tau_s), \qquad
    \mu_b \sim \mathcal N(0, 1), \quad b_j \sim \mathcal N(\mu_b, \tau_b), \qquad
    \tau_s^2 \sim \mathrm{IG}(2, 0.5), \quad \tau_b^2, \tau_t^2 \sim \mathrm{IG}(2, 0.1)
    \ (\text{integrated out}).

The likelihood is unchanged by ``(u, s) -> (c u, s / c)``: the utilities' prior scale is fixed at 1 and the typical
annotator's sharpness ``mu_s`` is learned (learning a utility scale as well makes MAP degenerate along that ray).
Results are reported in units that do not depend on where along the ray a fit lands: ``ranking_`` utilities as
``mu_s u`` (a typical annotator's log-odds, or probit, scale) and ``annotators_["sharpness"]`` as ``s_j / mu_s``
(1 = typical, 0 = random, negative = adversarial). The positive prior on ``mu_s`` breaks the sign symmetry
``(u, s) -> (-u, -s)``: the population is assumed mostly honest. (Chen et al. 2013 model a probability of flipping
the label; a signed scale puts "random" (``s = 0``) and "adversarial" (``s < 0``) on one continuous axis.)

Without ties, :math:`P(A \succ B) = F(d_n)` with ``F`` the logistic (Bradley & Terry 1952) or the standard normal
CDF (Thurstone 1927, case V). With ties, two classical extensions, each with a per-annotator tie propensity
``t_j ~ N(0, tau_t)`` around a population value (some raters say "equal" far more than others) and a per-pair one
``e_i ~ N(0, tau_e)``, ``tau_e^2 ~ IG(2, 0.5)`` (some pairs are genuinely equal: most of their votes are ties, and
a single population tie parameter would make "tie" the most likely answer on every pair of near-equal utilities
or on none; a utility gap of 0 alone does not say that two responses are equal rather than unknown). The tie
parameter of judgment ``n`` is ``log nu + t_j + e_i`` (Davidson) or ``log eta + t_j + e_i`` (Rao-Kupper):

- ``ties="davidson"`` (Davidson 1970): :math:`P(A) \propto e^{d/2}`, :math:`P(B) \propto e^{-d/2}`,
  :math:`P(\text{tie}) \propto \nu_j = \exp(\log\nu + t_j)`; i.e. a softmax over ``(d/2, -d/2, log nu_j)``.
  At ``d = 0`` the tie probability is ``nu / (2 + nu)``: above the others when ``nu > 1``.
- ``ties="rao-kupper"`` (Rao & Kupper 1967): a threshold ``eta_j = exp(log eta + t_j)``: :math:`P(A) = F(d - \eta_j)`,
  :math:`P(B) = F(-d - \eta_j)`, the rest is a tie. With ``link="probit"`` this is Glenn & David (1960); Davidson's
  model has no probit form, so ``link="probit"`` takes Rao-Kupper ties (the default there; ``ties="davidson"``
  with it is refused).

Responses are identified by ``response_a_id`` / ``response_b_id`` when the table has them (a response then appears
in many pairs, and any two seen responses can be compared). Without them each pair's sides are responses of their
own (``"<pair_id>/A"``, ``"<pair_id>/B"``); only their gap ``g = u_A - u_B`` is informed, so the model samples
``g ~ N(0, sqrt(2))`` and recovers the utilities in distribution as ``u_{A,B} = (m +- g) / 2`` with the pair sum
``m ~ N(0, sqrt(2))`` from its prior (sampling both utilities would overstate the gap's variance under a
mean-field guide).

Soft labels are, per pair, the posterior mean of the class probabilities a *typical* annotator (sharpness ``mu_s``,
no position bias, the population tie propensity, the pair's own tie propensity) would give, with
``extra["p_a_better"]`` = P(u_A > u_B).

Inference: each annotator effect (sharpness, bias, tie offset) is one exchangeable group whose scale ``tau`` is
integrated out and reported from its conjugate conditional posterior (:class:`~accord.models.pairwise.GroupNormal`
says why), and the utilities are sampled in the basis of :class:`~accord.models.pairwise.ComponentReflection`.
``"meanfield"`` (default) and ``"lowrank"`` by SVI, warm-started from vote-based utilities with every ``s_j`` equal
(the honest-majority mode); ``"map"`` (point estimates, the annotator groups mean-field; the scale split follows the
priors' slight tilt slowly, so prefer ``"meanfield"``); ``"nuts"`` for small data.

References
----------
R. A. Bradley, M. E. Terry. Rank analysis of incomplete block designs I. *Biometrika* 39 (1952).
L. L. Thurstone. A law of comparative judgment. *Psychological Review* 34 (1927).
P. V. Rao, L. L. Kupper. Ties in paired-comparison experiments. *JASA* 62 (1967).
R. R. Davidson. On extending the Bradley-Terry model to accommodate ties. *JASA* 65 (1970).
W. A. Glenn, H. A. David. Ties in paired-comparison experiments using a modified Thurstone-Mosteller model.
*Biometrics* 16 (1960).
X. Chen, P. N. Bennett, K. Collins-Thompson, E. Horvitz. Pairwise ranking aggregation in a crowdsourced setting.
*WSDM* (2013).

Example
-------
>>> model = CrowdBradleyTerry(ties="davidson", inference="meanfield").fit(judgments)  # doctest: +SKIP
>>> model.ranking_.head()                                                              # doctest: +SKIP
>>> model.predict_proba([("resp-1", "resp-7")])                                        # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from accord.datasets import AccordError, Encoded
from accord.models.base import is_one_of
from accord.models.pairwise import GroupNormal, Params, PairwiseData, PairwiseUtilityModel, log_cdf, ordinal_log_probs

TIE_MODELS: tuple[str, ...] = ("davidson", "rao-kupper")


class CrowdBradleyTerry(PairwiseUtilityModel):
    r"""Crowd Bradley-Terry / Thurstone: utilities per response, sharpness and position bias per annotator.

    See the module docstring for the maths.

    Parameters
    ----------
    link
        ``"logit"`` (Bradley-Terry) or ``"probit"`` (Thurstone case V).
    ties
        ``"davidson"`` (Davidson 1970) or ``"rao-kupper"`` (Rao & Kupper 1967; Glenn & David 1960 with
        ``link="probit"``); ``None`` (default): Davidson with the logit link, Rao-Kupper with the probit link (the
        tie model in use is :attr:`tie_model`). Used only when the data contain ties.
    annotator_bias
        Learn a position bias per annotator (``b_j``); otherwise ``b = 0`` for everyone.
    annotator_ties
        Learn a tie propensity per annotator around the population value; otherwise one for everyone.
    pair_ties
        Learn a tie propensity per pair around the population value (``e_i``); otherwise one for every pair.
    Others: :class:`~accord.models.pairwise.PairwiseUtilityModel`, :class:`~accord.models.base.PyroRaterModel`.

    Fitted attributes: ``soft_labels_``, ``ranking_``, ``annotators_`` (the common columns, and ``sharpness`` =
    ``s_j / mu_s`` with ``sharpness_sd`` and its interval, ``p_adversarial`` = P(s_j < 0), ``position_bias_logit``
    (``b_j``, positive = leans to A) and ``tie_offset`` with their intervals), ``population_`` (hyperparameters),
    ``predict_proba``.
    """

    method: ClassVar[str] = "crowd-bradley-terry"
    # annotator group -> (site of its location or None for 0, InverseGamma shape and rate of its variance)
    group_priors: ClassVar[dict[str, tuple[str | None, float, float]]] = {"sharpness": ("sharpness_mean", 2.0, 0.5),
                                                                          "bias": ("bias_mean", 2.0, 0.1),
                                                                          "tie_offset": (None, 2.0, 0.1)}
    #: pair-level sites: InverseGamma shape and rate of the variance of their group (integrated out)
    pair_priors: ClassVar[dict[str, tuple[float, float]]] = {"pair_tie": (2.0, 0.5)}
    ties: str | None = None
    annotator_bias: bool = True
    annotator_ties: bool = True
    pair_ties: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ties is not None and not is_one_of(self.ties, TIE_MODELS):
            raise AccordError(f"ties must be one of {TIE_MODELS} or None, not {self.ties!r}")
        if self.link == "probit" and self.ties == "davidson":
            raise AccordError("Davidson ties have no probit form: use ties='rao-kupper' (Glenn-David) with "
                              "link='probit'")

    @property
    def tie_model(self) -> str:
        """The tie model in use: ``ties``, or by default the one the link has (Davidson's has no probit form)."""
        if self.ties is not None:
            return self.ties
        return "rao-kupper" if self.link == "probit" else "davidson"

    def _labels_for_model(self, encoded: Encoded) -> tuple[np.ndarray, int]:
        if encoded.form == "graded":
            # the sign of a graded label is a preference: negative = A better, 0 = tie
            values = np.asarray(encoded.classes)[encoded.labels]
            codes = np.where(values < 0, 0, np.where(values > 0, 1, 2)).astype(np.int64)
            return codes, 3 if (values == 0).any() else 2
        return encoded.labels, encoded.n_classes  # ("A", "B"[, "tie"]) already in the model's order

    def _soft_classes(self) -> list[Any]:
        return ["A", "B", "tie"] if self._data.n_classes == 3 else ["A", "B"]

    def _model(self, data: PairwiseData, batch_size: int | None = None) -> None:
        """The Pyro model (see the module docstring)."""
        bias, ties = self.annotator_bias, data.n_classes == 3
        priors = self._constant(data, "priors", lambda: self._priors(data))
        params = {"sharpness_mean": pyro.sample("sharpness_mean", priors["sharpness_mean"])}
        if bias:
            params["bias_mean"] = pyro.sample("bias_mean", priors["bias_mean"])
        if ties:
            params["tie_log_mean"] = pyro.sample("tie_log_mean", priors["tie_log_mean"])
        latent = self._sample_latent(data)
        # annotator effects: one exchangeable group each, its scale integrated out (see GroupNormal)
        params["sharpness"] = self._sample_group("sharpness", params["sharpness_mean"], data)
        if bias:
            params["bias"] = self._sample_group("bias", params["bias_mean"], data)
        if ties and self.annotator_ties:
            params["tie_offset"] = self._sample_group("tie_offset", priors["zero"], data)
        if ties and self.pair_ties:
            params["pair_tie"] = pyro.sample("pair_tie", priors["pair_tie"])
        self._observe(data, latent, params, batch_size)

    def _priors(self, data: PairwiseData) -> dict[str, Any]:
        """The priors with fixed parameters (built once per data object, see :meth:`_constant`)."""
        c = lambda value: torch.tensor(value, device=data.device)  # noqa: E731 - constants on the data's device
        # Davidson: log nu; Rao-Kupper: log eta. Both centred where a tie is a minority answer.
        tie = (c(-1.0), c(1.5)) if self.tie_model == "davidson" else (c(math.log(0.5)), c(1.0))
        concentration, rate = self.pair_priors["pair_tie"]
        return {"sharpness_mean": dist.LogNormal(c(0.0), c(1.0)), "bias_mean": dist.Normal(c(0.0), c(1.0)),
                "tie_log_mean": dist.Normal(*tie), "zero": c(0.0),
                "pair_tie": GroupNormal(c(0.0), concentration, rate, data.n_pairs)}

    def class_log_probs(self, params: Params, gap: torch.Tensor, workers: torch.Tensor | None,
                        pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities of (A, B[, tie]) for gaps ``u_A - u_B``; ``workers=None`` is the typical annotator
        (sharpness ``mu_s``, no position bias, population tie propensity), ``pairs=None`` a typical pair."""
        if workers is None:
            d = params["sharpness_mean"].unsqueeze(-1) * gap
            tie_offset: torch.Tensor | float = 0.0
        else:
            d = params["sharpness"][..., workers] * gap
            if "bias" in params:
                d = d + params["bias"][..., workers]
            tie_offset = params["tie_offset"][..., workers] if "tie_offset" in params else 0.0
        if "tie_log_mean" not in params:
            return torch.stack([log_cdf(d, self.link), log_cdf(-d, self.link)], dim=-1)
        if pairs is not None and "pair_tie" in params:
            tie_offset = tie_offset + params["pair_tie"][..., pairs]
        tie_log = (params["tie_log_mean"].unsqueeze(-1) + tie_offset).expand_as(d)
        if self.tie_model == "davidson":
            # log of the normaliser e^{d/2} + e^{-d/2} + nu, elementwise (a log_softmax over 3 classes is slow)
            half = d / 2
            top = torch.maximum(half.abs(), tie_log)
            log_norm = top + torch.log(torch.exp(half - top) + torch.exp(-half - top) + torch.exp(tie_log - top))
            return torch.stack([half - log_norm, -half - log_norm, tie_log - log_norm], dim=-1)
        eta = tie_log.exp()
        # (A, tie, B) as ordered categories with cut-points (-eta, eta) and predictor d:
        # P(A) = F(d - eta), P(tie) = F(d + eta) - F(d - eta), P(B) = 1 - F(d + eta) = F(-d - eta)
        ordered = ordinal_log_probs(torch.stack([-eta, eta], dim=-1), d, self.link)
        return ordered[..., [0, 2, 1]]

    def _init_values(self, data: PairwiseData) -> dict[str, torch.Tensor]:
        labels = data.labels
        values = self._latent_start(data, torch.where(labels == 0, 1.0, torch.where(labels == 1, -1.0, 0.0)))
        if self.annotator_bias:
            n_a, n_b = (labels == 0).sum().item() + 1, (labels == 1).sum().item() + 1
            values["bias_mean"] = torch.tensor(0.5 * math.log(n_a / n_b), device=data.device)
            values["bias"] = torch.full((data.n_workers,), values["bias_mean"].item(), device=data.device)
        if data.n_classes == 3:
            tie_share = min(max(((labels == 2).sum().item() + 1) / (len(labels) + 2), 0.02), 0.9)
            # Davidson: P(tie | d = 0) = nu / (2 + nu); Rao-Kupper: = 2 F(eta) - 1
            if self.tie_model == "davidson":
                start = math.log(2 * tie_share / (1 - tie_share))
            else:
                q = (1 + tie_share) / 2
                start = math.log(math.log(q / (1 - q))) if self.link == "logit" else math.log(
                    float(torch.special.ndtri(torch.tensor(q))))
            values["tie_log_mean"] = torch.tensor(start, device=data.device)
            if self.annotator_ties:
                values["tie_offset"] = torch.zeros(data.n_workers, device=data.device)
            if self.pair_ties:
                # each pair's tie log-odds against the overall one, smoothed and halved (a start, not an estimate)
                is_tie = (labels == 2).float()
                ties = torch.zeros(data.n_pairs, device=data.device).index_add_(0, data.pairs, is_tie)
                others = torch.zeros(data.n_pairs, device=data.device).index_add_(0, data.pairs, 1.0 - is_tie)
                overall = math.log(tie_share / (1 - tie_share))
                values["pair_tie"] = 0.5 * (torch.log((ties + tie_share) / (others + 1 - tie_share)) - overall)
        return values

    def _new_pair_params(self, params: Params, n_new: int, generator: torch.Generator) -> Params:
        if n_new == 0 or "pair_tie" not in params:
            return params
        scale = params["pair_tie_scale"].unsqueeze(-1)
        fresh = scale * torch.randn(scale.shape[0], n_new, generator=generator)
        return {**params, "pair_tie": torch.cat([params["pair_tie"], fresh], dim=-1)}

    def _pair_columns(self, prob_draws: torch.Tensor) -> dict[str, np.ndarray]:
        if prob_draws.shape[0] == 1:
            return {}
        # P(u_A > u_B | data): the same for every link, since F(d) > 1/2 exactly when d > 0
        return {"p_a_better": (prob_draws[..., 0] > prob_draws[..., 1]).double().mean(0).numpy()}

    def _rater_columns(self) -> dict[str, np.ndarray]:
        return {**self._sharpness_columns(), **self._site_columns("bias", "position_bias_logit"),
                **self._site_columns("tie_offset", "tie_offset")}

    def _population(self) -> dict[str, dict[str, np.ndarray]]:
        """With ties also the tie parameter ``nu`` (Davidson) or ``eta`` (Rao-Kupper) on its natural scale."""
        rows = super()._population()
        if "tie_log_mean" in self._draws:
            rows["nu" if self.tie_model == "davidson" else "eta"] = self._summary(self._draws["tie_log_mean"].exp())
        return rows
