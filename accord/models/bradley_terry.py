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

The likelihood is unchanged by ``(u, s) -> (c u, s / c)``; the utilities' prior scale is therefore fixed at 1
and the typical annotator's sharpness ``mu_s`` is learned: a typical annotator's log-odds (``link="logit"``) or
probit (``link="probit"``) of A over B is ``mu_s (u_A - u_B)``. (Learning a utility scale as well made MAP
degenerate: it shrank the utilities and inflated every sharpness along that ray.) Results are reported in units
that do not depend on where along the ray a fit lands: ``ranking_`` utilities as ``mu_s u`` (a typical annotator's
log-odds scale) and ``annotators_["reliability"]`` as ``s_j / mu_s`` (1 = typical, 0 = random, negative =
adversarial). The positive prior on ``mu_s`` breaks the sign symmetry ``(u, s) -> (-u, -s)``: the population is
assumed mostly honest, and an annotator whose sharpness is confidently negative is adversarial. (Chen et al. 2013
model the same thing as a probability of flipping the label; a signed scale keeps one continuous parameter per
annotator and puts "random" (``s = 0``) and "adversarial" (``s < 0``) on one axis.)

Without ties, :math:`P(A \succ B) = F(d_n)` with ``F`` the logistic (Bradley & Terry 1952) or the standard normal
CDF (Thurstone 1927, case V). With ties, two classical extensions, each with a per-annotator tie propensity
``t_j ~ N(0, tau_t)`` around a population value (some raters say "equal" far more than others):

- ``ties="davidson"`` (Davidson 1970): :math:`P(A) \propto e^{d/2}`, :math:`P(B) \propto e^{-d/2}`,
  :math:`P(\text{tie}) \propto \nu_j = \exp(\log\nu + t_j)`; i.e. a softmax over ``(d/2, -d/2, log nu_j)``.
  At ``d = 0`` the tie probability is ``nu / (2 + nu)``.
- ``ties="rao-kupper"`` (Rao & Kupper 1967): a threshold ``eta_j = exp(log eta + t_j)``: :math:`P(A) = F(d - \eta_j)`,
  :math:`P(B) = F(-d - \eta_j)`, the rest is a tie. With ``link="probit"`` this is Glenn & David (1960); Davidson's
  model has no probit form, so ``link="probit"`` requires ``ties="rao-kupper"``.

Responses are identified by ``response_a_id`` / ``response_b_id`` when the table has them (a response then appears
in many pairs, and any two seen responses can be compared, together or not). Without them each pair's two sides
are responses of their own (ids ``"<pair_id>/A"``, ``"<pair_id>/B"``); only their gap ``g = u_A - u_B`` is informed
by the data, so the model samples the gap (``g ~ N(0, sqrt(2))``) and recovers the two utilities exactly in
distribution as ``u_{A,B} = (m +- g) / 2`` with the pair sum ``m ~ N(0, sqrt(2))`` drawn from its prior,
which the data never inform. (Sampling the two utilities directly would double the parameters and, under a
mean-field guide, overstate the variance of the gap two-fold.)

Soft labels
-----------
``soft_labels_`` give, per pair, the posterior mean over draws of the class probabilities a *typical* annotator
(sharpness ``mu_s``, no position bias, the population tie propensity) would give; their ``uncertainty`` is the posterior
standard deviation of the most likely class's probability, and ``extra["p_a_better"]`` is the posterior probability
that ``u_A > u_B``. Global position bias ``mu_b`` is an artefact of presentation and is left out.

Inference
---------
The Pyro model is the single specification: named plates ``responses`` (or ``pairs``) and ``judgments``
(optionally subsampled), gathers instead of loops. Each annotator effect (sharpness, bias, tie offset) is one
exchangeable group whose scale ``tau`` is integrated out analytically (:class:`GroupNormal`, an InverseGamma(2, beta)
prior on ``tau^2``): with ``tau`` as a free parameter the joint density is unbounded as ``tau -> 0``, and a MAP fit
(measured with L-BFGS) drove every group scale to ~1e-7, erasing the adversarial raters. The group scales are
still reported, drawn from their conjugate conditional posterior.

- ``"meanfield"`` (default, AutoNormal) and ``"lowrank"`` (AutoLowRankMultivariateNormal) by SVI, warm-started
  from vote-based utilities with every ``s_j`` equal (which also keeps SVI in the honest-majority mode);
- ``"map"``: point estimates of utilities and population parameters, but the annotator effects keep a mean-field
  Gaussian (a point estimate of a high-dimensional group sits at its mode, where every effect equals the group
  mean: measured, it lost the adversarial raters' sign). The scale split between utilities and sharpness is then
  set only by the priors' slight tilt along the ray, which the point estimate follows slowly (about 950 SVI steps
  against 250-300 for mean-field, measured at 1e5 and 1e6 judgments); the reported scale-free quantities do not
  depend on it. Prefer ``"meanfield"``: it is faster here and gives intervals;
- ``"nuts"`` for small data (chains run one after another).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import MCMC, NUTS, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, AutoGuideList, AutoLowRankMultivariateNormal, AutoNormal
from pyro.infer.autoguide.initialization import init_to_value

from accord.datasets import AccordError, Encoded, FitError, SoftLabels, ValidationError, encode, validate
from accord.models._data import encode_with_classes, with_attrs
from accord.models.base import RaterModel
from accord.models.inference import run_svi

Params = Mapping[str, torch.Tensor]

LINKS: tuple[str, ...] = ("logit", "probit")
TIE_MODELS: tuple[str, ...] = ("davidson", "rao-kupper")
LATENT_MODES: tuple[str, ...] = ("auto", "response", "pair")

# Pairs per chunk when summarising draws: bounds memory at draws x chunk x classes floats.
_CHUNK = 20_000


# -- link-function helpers shared by the Bradley-Terry and ordinal models ------------------------------------


def log_cdf(x: torch.Tensor, link: str) -> torch.Tensor:
    """``log F(x)`` for the logistic (``"logit"``) or standard normal (``"probit"``) CDF, stable in both tails."""
    return F.logsigmoid(x) if link == "logit" else torch.special.log_ndtr(x)


def _log1mexp(z: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(z))`` for ``z < 0`` (Maechler's two-branch rule). ``z`` is clamped just below 0 so that a
    vanishing category width gives a large negative number, not ``-inf`` with a NaN gradient through ``where``."""
    z = z.clamp(max=-1e-7)
    return torch.where(z > -math.log(2.0), torch.log(-torch.expm1(z)), torch.log1p(-torch.exp(z)))


def ordinal_log_probs(cuts: torch.Tensor, eta: torch.Tensor, link: str) -> torch.Tensor:
    r"""Cumulative-link category log-probabilities.

    ``cuts[..., n, m]`` are increasing cut-points ``c_1 < ... < c_M`` and ``eta[..., n]`` a linear predictor; with
    :math:`P(y \le m) = F(c_m + \eta)` category ``m`` (0-based, ``M + 1`` of them) has probability
    :math:`F(c_{m+1} + \eta) - F(c_m + \eta)`. Differences of CDFs are taken on the side of the distribution where
    they do not cancel (lower tail via ``F``, upper tail via ``1 - F``), so extreme predictors stay finite.
    """
    x = cuts + eta.unsqueeze(-1)
    low = log_cdf(x, link)  # log F(x_m)
    high = log_cdf(-x, link)  # log (1 - F(x_m))
    parts = [low[..., :1]]
    if x.shape[-1] > 1:
        upper, lower = x[..., 1:], x[..., :-1]
        left = low[..., 1:] + _log1mexp(low[..., :-1] - low[..., 1:])
        right = high[..., :-1] + _log1mexp(high[..., 1:] - high[..., :-1])
        parts.append(torch.where(upper + lower <= 0, left, right))
    parts.append(high[..., -1:])
    return torch.cat(parts, dim=-1)


class NormalizedCategorical(dist.TorchDistribution):
    """A categorical distribution over classes whose log-probabilities ``log_probs[..., K]`` are already
    normalised.

    ``dist.Categorical(logits=...)`` re-normalises with a ``log_softmax`` over a last dimension of 2-7 classes,
    which on CPU cost as much as the rest of an SVI step at 1e5 judgments; the models here build normalised
    log-probabilities anyway, so the log-density is a gather.
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}
    has_enumerate_support = False

    def __init__(self, log_probs: torch.Tensor, validate_args: bool | None = None) -> None:
        self.log_probs = log_probs
        super().__init__(batch_shape=log_probs.shape[:-1], event_shape=torch.Size(), validate_args=False)

    @property
    def support(self) -> Any:  # type: ignore[override]
        return dist.constraints.integer_interval(0, self.log_probs.shape[-1] - 1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        log_probs, value = torch.broadcast_tensors(self.log_probs, value.long().unsqueeze(-1))
        return log_probs.gather(-1, value[..., :1]).squeeze(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return torch.distributions.Categorical(logits=self.log_probs).sample(sample_shape)

    def expand(self, batch_shape: Any, _instance: Any = None) -> "NormalizedCategorical":
        shape = torch.Size(batch_shape) + self.log_probs.shape[-1:]
        return NormalizedCategorical(self.log_probs.expand(shape))


class GroupNormal(dist.TorchDistribution):
    r"""The joint prior of a group's effects ``x_1..x_J ~ N(loc, tau)`` with the group scale integrated out under
    :math:`\tau^2 \sim \mathrm{InverseGamma}(\alpha, \beta)`: an isotropic multivariate Student-t,

    .. math::

        \log p(x) = \log\Gamma(\alpha + J/2) - \log\Gamma(\alpha) - \tfrac J2 \log(2\pi\beta)
                    - (\alpha + J/2)\,\log\Bigl(1 + \frac{\sum_j (x_j - loc)^2}{2\beta}\Bigr).

    Why not sample ``tau``: with ``tau`` a free parameter the joint density is unbounded as ``tau -> 0`` with every
    effect at ``loc`` (measured: L-BFGS on the MAP objective drove all three group scales to ~1e-7 at 1e5
    judgments), so a MAP fit collapses and NUTS meets a funnel. Integrating ``tau`` out leaves a bounded density
    with the same hierarchical model; the posterior of ``tau`` is recovered per draw from the conjugate
    :math:`\tau^2 \mid x \sim \mathrm{InverseGamma}(\alpha + J/2, \beta + \sum_j (x_j - loc)^2 / 2)`.
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}
    support = dist.constraints.real_vector

    def __init__(self, loc: torch.Tensor, concentration: float, rate: float, size: int,
                 validate_args: bool | None = None) -> None:
        self.loc = loc
        self.concentration = concentration
        self.rate = rate
        self.size = size
        super().__init__(batch_shape=loc.shape, event_shape=torch.Size([size]), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        a, b, n = self.concentration, self.rate, self.size
        squares = ((value - self.loc.unsqueeze(-1)) ** 2).sum(-1)
        const = math.lgamma(a + n / 2) - math.lgamma(a) - n / 2 * math.log(2 * math.pi * b)
        return const - (a + n / 2) * torch.log1p(squares / (2 * b))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        gamma = torch.distributions.Gamma(
            torch.full(shape, float(self.concentration), device=self.loc.device),
            torch.tensor(float(self.rate), device=self.loc.device),
        )
        scale = gamma.sample().reciprocal().sqrt()
        noise = torch.randn(shape + self.event_shape, device=self.loc.device)
        return self.loc.expand(shape).unsqueeze(-1) + scale.unsqueeze(-1) * noise

    def expand(self, batch_shape: Any, _instance: Any = None) -> "GroupNormal":
        return GroupNormal(self.loc.expand(batch_shape), self.concentration, self.rate, self.size)

    @staticmethod
    def scale_draws(values: torch.Tensor, loc: torch.Tensor | float, concentration: float, rate: float,
                    point: bool) -> torch.Tensor:
        """Draws (for a point estimate: the conditional mode) of the group scale ``tau`` given the effects
        ``values[draws, J]`` and their location ``loc`` (``[draws]`` or a number), one per draw."""
        n = values.shape[-1]
        centre = loc.unsqueeze(-1) if isinstance(loc, torch.Tensor) else loc
        shape_post = concentration + n / 2
        rate_post = rate + ((values - centre) ** 2).sum(-1) / 2
        if point:
            return (rate_post / (shape_post + 1)).sqrt()
        precision = torch.distributions.Gamma(torch.full_like(rate_post, shape_post), rate_post).sample()
        return precision.rsqrt()


# -- data layout -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairwiseData:
    """Per-judgment codes as tensors, the arguments of the Pyro models.

    ``side_a[n]`` / ``side_b[n]`` are the latent codes of judgment ``n``'s two sides: response codes in
    ``"response"`` mode; in ``"pair"`` mode ``side_a`` is the pair code (the latent is the pair's gap) and
    ``side_b`` is ``None``.
    """

    side_a: torch.Tensor
    side_b: torch.Tensor | None
    workers: torch.Tensor
    labels: torch.Tensor
    n_latent: int
    n_workers: int
    n_classes: int

    @property
    def n_judgments(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.labels.device


@dataclass(frozen=True)
class ResponseLayout:
    """Which responses each pair compares, and each judgment's codes (numpy, on the host)."""

    mode: str
    response_index: pd.Index
    pair_a: np.ndarray
    pair_b: np.ndarray
    judgment_a: np.ndarray
    judgment_b: np.ndarray

    @property
    def n_responses(self) -> int:
        return len(self.response_index)


def _response_ids(table: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """The response ids of each row when the table names them (missing ids fall back to the pair's own sides)."""
    if "response_a_id" not in table.columns or "response_b_id" not in table.columns:
        return None
    a, b = table["response_a_id"], table["response_b_id"]
    if a.isna().all() and b.isna().all():
        return None
    pair = table["pair_id"].astype(str)
    a = a.astype(object).where(a.notna(), pair + "/A")
    b = b.astype(object).where(b.notna(), pair + "/B")
    return a, b


def build_layout(table: pd.DataFrame | None, encoded: Encoded, latent: str) -> ResponseLayout:
    """Map pairs and judgments to response codes.

    ``latent="response"`` needs ``response_a_id`` / ``response_b_id``; ``"auto"`` uses them when present (never
    when ``table`` is ``None``, i.e. only the encoded codes are known). Raises :class:`ValidationError` when one
    pair is given two different response pairs.
    """
    ids = _response_ids(table) if table is not None else None
    if latent == "response" and ids is None:
        raise AccordError("latent='response' needs response_a_id and response_b_id columns")
    n_pairs = encoded.n_items
    if latent == "pair" or ids is None:
        pair_ids = encoded.item_index.astype(str)
        response_index = pd.Index(
            np.column_stack([pair_ids + "/A", pair_ids + "/B"]).ravel(), name="response_id"
        )
        pair_a = 2 * np.arange(n_pairs, dtype=np.int64)
        pair_b = pair_a + 1
        return ResponseLayout("pair", response_index, pair_a, pair_b, pair_a[encoded.items], pair_b[encoded.items])
    a, b = ids
    codes, uniques = pd.factorize(pd.concat([a, b], ignore_index=True), sort=False)
    codes = codes.astype(np.int64)
    judgment_a, judgment_b = codes[: len(a)], codes[len(a):]
    pair_a = np.zeros(n_pairs, dtype=np.int64)
    pair_b = np.zeros(n_pairs, dtype=np.int64)
    pair_a[encoded.items] = judgment_a
    pair_b[encoded.items] = judgment_b
    clash = (pair_a[encoded.items] != judgment_a) | (pair_b[encoded.items] != judgment_b)
    if clash.any():
        row = int(np.flatnonzero(clash)[0])
        raise ValidationError(
            "one pair_id is given two different (response_a_id, response_b_id)", column="response_a_id", row=row,
            value=(table["pair_id"].iloc[row], a.iloc[row], b.iloc[row]),
        )
    return ResponseLayout(
        "response", pd.Index(uniques, name="response_id"), pair_a, pair_b, judgment_a, judgment_b
    )


def _normal_quantiles(draws: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.quantile(draws, 0.05, axis=axis), np.quantile(draws, 0.95, axis=axis)


# -- the shared machinery ------------------------------------------------------------------------------------


class PairwiseUtilityModel(RaterModel):
    """Shared machinery of the utility-based pairwise models (crowd Bradley-Terry, ordinal preference).

    A subclass supplies the Pyro model (:meth:`model`), the per-judgment class log-probabilities
    (:meth:`class_log_probs`, also used for a *typical* annotator when ``workers is None``), its annotator groups
    (``group_priors``: location site and InverseGamma prior of each, see :class:`GroupNormal`), warm-start values
    (:meth:`init_values`), the soft-label summary (:meth:`_summarise`) and the annotator table.

    ``fit`` is overridden (not ``_fit`` alone) because the response ids live in the raw table, which
    :func:`accord.datasets.encode` does not carry.
    """

    supported_inference: ClassVar[tuple[str, ...]] = ("map", "meanfield", "lowrank", "nuts")
    group_priors: ClassVar[dict[str, tuple[str | None, float, float]]] = {}

    def __init__(
        self,
        *,
        link: str = "logit",
        latent: str = "auto",
        rank: int | None = None,
        init_scale: float = 0.05,
        inference: str = "meanfield",
        max_steps: int = 3000,
        learning_rate: float = 0.05,
        tol: float = 1e-4,
        patience: int = 50,
        batch_size: int | None = None,
        num_samples: int = 200,
        num_warmup: int = 300,
        num_chains: int = 1,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        super().__init__(
            inference=inference, max_steps=max_steps, learning_rate=learning_rate, tol=tol, patience=patience,
            batch_size=batch_size, num_samples=num_samples, num_warmup=num_warmup, num_chains=num_chains,
            seed=seed, device=device, progress=progress,
        )
        if link not in LINKS:
            raise AccordError(f"link must be one of {LINKS}, not {link!r}")
        if latent not in LATENT_MODES:
            raise AccordError(f"latent must be one of {LATENT_MODES}, not {latent!r}")
        self.link = link
        self.latent = latent
        self.rank = rank
        self.init_scale = init_scale

    # -- hooks ------------------------------------------------------------------------------------------

    def model(self, data: PairwiseData, subsample_size: int | None = None) -> None:
        raise NotImplementedError

    def class_log_probs(self, params: Params, gap: torch.Tensor, workers: torch.Tensor | None) -> torch.Tensor:
        """``[..., n, K]`` log-probabilities of each class for utility gaps ``gap[..., n]`` judged by ``workers``
        (``None``: a typical annotator), under parameters ``params`` (scalars ``[...]``, per-annotator ``[..., J]``)."""
        raise NotImplementedError

    def annotator_priors(self, params: Params) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per annotator-level site, the population ``(loc, scale)`` (``[draws]``) of its Normal prior, the
        scale being the derived ``<site>_scale`` draws."""
        out = {}
        for site, (loc_site, _, _) in self.group_priors.items():
            if site in params:
                scale = params[f"{site}_scale"]
                loc = params[loc_site] if loc_site is not None else torch.zeros_like(scale)
                out[site] = (loc, scale)
        return out

    def init_values(self, data: PairwiseData) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _derived_sites(self, chains: dict[str, torch.Tensor]) -> None:
        """Add deterministic functions of the draws that :meth:`class_log_probs` reads (``[chains, draws, ...]``)."""

    def _labels_for_model(self, encoded: Encoded) -> tuple[np.ndarray, int]:
        """Class codes in the model's order and the number of classes."""
        raise NotImplementedError

    def _summarise(self, prob_draws: torch.Tensor) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """From ``[draws, n, K]`` typical-annotator class probabilities: the soft-label probabilities ``[n, C]``, the
        draws of the top soft-label class ``[draws, n]`` and extra per-pair columns."""
        raise NotImplementedError

    def _soft_classes(self) -> list[Any]:
        raise NotImplementedError

    def _annotator_frame(self) -> pd.DataFrame:
        raise NotImplementedError

    # -- shared model pieces --------------------------------------------------------------------------------

    def _sample_latent(self, data: PairwiseData) -> torch.Tensor:
        """Sample the utilities (or, in pair mode, the gaps) in their plate: ``u ~ N(0, 1)``, fixed scale (the
        annotators' sharpness carries the scale, see the module docstring)."""
        device = data.device
        zero, one = torch.zeros((), device=device), torch.ones((), device=device)
        if data.side_b is not None:
            with pyro.plate("responses", data.n_latent, device=device):
                return pyro.sample("utility", dist.Normal(zero, one))
        with pyro.plate("pairs", data.n_latent, device=device):
            # u_A - u_B of two independent N(0, 1) utilities
            return pyro.sample("gap", dist.Normal(zero, one * math.sqrt(2.0)))

    def _sample_group(self, site: str, loc: torch.Tensor, data: PairwiseData) -> torch.Tensor:
        _, concentration, rate = self.group_priors[site]
        return pyro.sample(site, GroupNormal(loc, concentration, rate, data.n_workers))

    @staticmethod
    def _gap(latent: torch.Tensor, side_a: torch.Tensor, side_b: torch.Tensor | None) -> torch.Tensor:
        if side_b is None:
            return latent[..., side_a]
        return latent[..., side_a] - latent[..., side_b]

    def _observe(
        self, data: PairwiseData, latent: torch.Tensor, params: Params, subsample_size: int | None
    ) -> None:
        """The likelihood: one vectorised Categorical over the (optionally subsampled) judgments plate."""
        with pyro.plate("judgments", data.n_judgments, subsample_size=subsample_size, device=data.device) as idx:
            if subsample_size is None:
                # full batch: skip the (copying) index gathers
                side_a, side_b, workers, labels = data.side_a, data.side_b, data.workers, data.labels
            else:
                side_a = data.side_a[idx]
                side_b = None if data.side_b is None else data.side_b[idx]
                workers, labels = data.workers[idx], data.labels[idx]
            gap = self._gap(latent, side_a, side_b)
            logits = self.class_log_probs(params, gap, workers)
            pyro.sample("y", NormalizedCategorical(logits), obs=labels)

    # -- fitting ----------------------------------------------------------------------------------------

    def fit(self, judgments: pd.DataFrame) -> "PairwiseUtilityModel":
        """Learn utilities and annotator parameters from a judgments table (validated here when it was not)."""
        table = judgments if "accord" in judgments.attrs else validate(judgments)
        return self._fit_table(table)

    def fit_encoded(self, encoded: Encoded) -> "PairwiseUtilityModel":
        """Fit on integer codes only: without the table's response ids each pair's sides are its own responses."""
        return self._fit_table(None, encoded=encoded)

    def _fit_table(
        self, table: pd.DataFrame | None, classes: tuple[Any, ...] | None = None, encoded: Encoded | None = None
    ) -> "PairwiseUtilityModel":
        """Fit a validated table (or bare codes); ``classes`` lays the labels on a wider class set (a training
        fold without ties whose test fold has some)."""
        if self.inference not in self.supported_inference:
            raise AccordError(
                f"{type(self).__name__} supports inference in {self.supported_inference}, not '{self.inference}'"
            )
        if table is not None:
            self._check_form(table.attrs["accord"])
            encoded = encode_with_classes(table, classes)
        assert encoded is not None
        self._check_form({"form": encoded.form})
        self.encoded_ = encoded
        self.layout_ = build_layout(table, self.encoded_, self.latent)
        self._cache: dict[str, Any] = {}
        self._data = self._make_data(self.encoded_, self.layout_)
        self.__dict__.pop("_nuts_stats", None)
        self._seed_everything()
        pyro.clear_param_store()
        self._fit(self.encoded_)
        self.soft_labels_ = self._soft_labels()
        self.annotators_ = self._annotator_frame()
        return self

    def _check_form(self, info: Mapping[str, Any]) -> None:
        if info["form"] == "categorical":
            raise AccordError(f"{type(self).__name__} needs pairwise labels (A/B/tie or graded), not categorical ones")

    def _make_data(self, encoded: Encoded, layout: ResponseLayout) -> PairwiseData:
        device = self._torch_device
        labels, n_classes = self._labels_for_model(encoded)
        if layout.mode == "response":
            side_a = torch.as_tensor(layout.judgment_a, device=device)
            side_b: torch.Tensor | None = torch.as_tensor(layout.judgment_b, device=device)
            n_latent = layout.n_responses
        else:
            side_a, side_b, n_latent = torch.as_tensor(encoded.items, device=device), None, encoded.n_items
        return PairwiseData(
            side_a=side_a,
            side_b=side_b,
            workers=torch.as_tensor(encoded.workers, device=device),
            labels=torch.as_tensor(labels, device=device),
            n_latent=n_latent,
            n_workers=encoded.n_workers,
            n_classes=n_classes,
        )

    def _fit(self, encoded: Encoded) -> None:
        data = self._data
        init_values = self.init_values(data)
        self.svi_result_ = None
        if self.inference == "nuts":
            chains = self._run_nuts(data, init_to_value(values=init_values))
        else:
            chains = self._run_svi(data, init_values)
        # the group scales are integrated out of the model: add their conditional posterior draws
        for site, (loc_site, concentration, rate) in self.group_priors.items():
            if site in chains:
                loc = chains[loc_site] if loc_site is not None else 0.0
                chains[f"{site}_scale"] = GroupNormal.scale_draws(
                    chains[site], loc, concentration, rate, point=self.inference == "map"
                )
        self._derived_sites(chains)
        self._chains = chains
        self._draws = {name: value.reshape(-1, *value.shape[2:]) for name, value in chains.items()}
        for name, value in self._draws.items():
            if not torch.isfinite(value).all():
                raise FitError(f"{type(self).__name__}: posterior draws of '{name}' are not finite; try a smaller "
                               "learning_rate or inference='map'")

    def _make_guide(self, model: Callable[..., Any], init: Callable[..., Any]) -> Any:
        if self.inference == "map":
            groups = list(self.group_priors)
            guide = AutoGuideList(model)
            guide.append(AutoDelta(poutine.block(model, hide=groups), init_loc_fn=init))
            guide.append(AutoNormal(poutine.block(model, expose=groups), init_loc_fn=init,
                                    init_scale=self.init_scale))
            return guide
        if self.inference == "meanfield":
            return AutoNormal(model, init_loc_fn=init, init_scale=self.init_scale)
        n_latent = self._data.n_latent + self._data.n_workers * max(len(self.group_priors), 1)
        # the default rank (sqrt of the dimension) is too costly for 1e5 responses; 16 directions catch the
        # dominant posterior correlations (shared scale parameters, connected utilities)
        rank = self.rank if self.rank is not None else max(1, min(16, int(math.sqrt(n_latent))))
        return AutoLowRankMultivariateNormal(model, init_loc_fn=init, init_scale=self.init_scale, rank=rank)

    def _run_svi(self, data: PairwiseData, init_values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model = self.model
        guide = self._make_guide(model, init_to_value(values=dict(init_values)))
        subsample = self.batch_size if self.batch_size and self.batch_size < data.n_judgments else None
        self.svi_result_ = run_svi(
            model, guide, Trace_ELBO(), data, subsample,
            max_steps=self.max_steps, learning_rate=self.learning_rate, tol=self.tol, patience=self.patience,
            progress=self.progress, description=f"{self.method} ({self.inference})",
        )
        with torch.no_grad():
            if self.inference == "map":
                point = dict(guide.median(data, subsample))
                return {k: v.detach().unsqueeze(0).unsqueeze(0).cpu().float() for k, v in point.items()}
            samples: dict[str, list[torch.Tensor]] = {}
            for _ in range(self.num_samples):
                for k, v in guide(data, subsample).items():
                    samples.setdefault(k, []).append(v.detach().cpu().float())
        return {k: torch.stack(v).unsqueeze(0) for k, v in samples.items()}

    def _run_nuts(self, data: PairwiseData, init: Callable[..., Any]) -> dict[str, torch.Tensor]:
        per_chain: list[dict[str, torch.Tensor]] = []
        diverging = np.zeros((self.num_chains, self.num_samples), dtype=bool)
        for chain in range(self.num_chains):
            # chains run one after another: Pyro's multi-process chains are fragile on a shared 2-core CPU
            pyro.set_rng_seed(self.seed + chain)
            kernel = NUTS(self.model, init_strategy=init, jit_compile=False, max_tree_depth=8)
            mcmc = MCMC(kernel, num_samples=self.num_samples, warmup_steps=self.num_warmup,
                        disable_progbar=not self.progress)
            mcmc.run(data, None)
            for indices in mcmc.diagnostics().get("divergences", {}).values():
                diverging[chain, np.asarray(indices, dtype=np.int64)] = True
            per_chain.append({k: v.detach().cpu().float() for k, v in mcmc.get_samples().items()})
        self._nuts_stats = {"diverging": diverging}
        return {k: torch.stack([c[k] for c in per_chain]) for k in per_chain[0]}

    @property
    def divergences_(self) -> int:
        """Number of divergent NUTS transitions after warmup (0 for SVI fits)."""
        stats = getattr(self, "_nuts_stats", None)
        return int(stats["diverging"].sum()) if stats is not None else 0

    # -- draws ------------------------------------------------------------------------------------------

    @property
    def n_draws(self) -> int:
        return int(next(iter(self._draws.values())).shape[0])

    def _params(self) -> dict[str, torch.Tensor]:
        return self._draws

    def utility_draws(self) -> torch.Tensor:
        """``[draws, n_responses]`` posterior draws of every response's utility (pair mode: rebuilt from the gap
        and a pair mean drawn from its prior, see the module docstring)."""
        self._check_fitted()
        if "utility_draws" not in self._cache:
            if self.layout_.mode == "response":
                utility = self._draws["utility"]
            else:
                gap = self._draws["gap"]
                generator = torch.Generator().manual_seed(self.seed + 7919)
                total = torch.randn(gap.shape, generator=generator) * math.sqrt(2.0)  # u_A + u_B, prior only
                utility = torch.stack([(total + gap) / 2, (total - gap) / 2], dim=-1).reshape(gap.shape[0], -1)
            self._cache["utility_draws"] = utility
        return self._cache["utility_draws"]

    def _pair_gap_draws(self, pairs: np.ndarray) -> torch.Tensor:
        """``[draws, len(pairs)]`` gap draws of the fitted pairs (by pair code)."""
        if self.layout_.mode == "pair":
            return self._draws["gap"][:, torch.as_tensor(pairs)]
        utility = self._draws["utility"]
        a = torch.as_tensor(self.layout_.pair_a[pairs])
        b = torch.as_tensor(self.layout_.pair_b[pairs])
        return utility[:, a] - utility[:, b]

    # -- results ----------------------------------------------------------------------------------------

    def _soft_labels(self) -> SoftLabels:
        encoded = self.encoded_
        n_pairs = encoded.n_items
        probs, top, extra_parts = [], [], {}
        with torch.no_grad():
            for start in range(0, n_pairs, _CHUNK):
                pairs = np.arange(start, min(start + _CHUNK, n_pairs))
                gap = self._pair_gap_draws(pairs)
                prob_draws = self.class_log_probs(self._params(), gap, None).exp()
                p, t, extra = self._summarise(prob_draws)
                probs.append(p)
                top.append(t)
                for k, v in extra.items():
                    extra_parts.setdefault(k, []).append(v)
        index = encoded.item_index
        mean = np.concatenate(probs)
        mean = mean / mean.sum(axis=1, keepdims=True)
        top_draws = np.concatenate(top, axis=1)
        if top_draws.shape[0] > 1:
            sd = top_draws.std(axis=0, ddof=1)
            lower, upper = _normal_quantiles(top_draws)
            interval = pd.DataFrame({"lower": lower, "upper": upper}, index=index)
        else:
            sd = np.full(n_pairs, np.nan)
            interval = None
        extra_frame = pd.DataFrame({k: np.concatenate(v) for k, v in extra_parts.items()}, index=index)
        counts = np.bincount(encoded.items, minlength=n_pairs)
        return SoftLabels(
            probs=pd.DataFrame(mean, index=index, columns=self._soft_classes()),
            uncertainty=pd.Series(sd, index=index, name="uncertainty"),
            n_judgments=pd.Series(counts, index=index, name="n_judgments"),
            method=self.method,
            interval=interval,
            extra=extra_frame if len(extra_frame.columns) else None,
        )

    @property
    def ranking_(self) -> pd.DataFrame:
        """One row per response, best first: ``utility`` (posterior mean), ``sd``, 90% interval ``lower`` /
        ``upper``, ``rank`` (1 = best, by posterior mean) and ``n_judgments`` (judgments involving it).

        Utilities are reported as ``mu_s * u``, on a typical annotator's log-odds (probit) scale: then
        ``utility_A - utility_B`` is that annotator's log-odds of preferring A, and the figures do not depend
        on how the model splits the scale between ``u`` and the sharpness (under MAP that split is set by the
        priors, not the data)."""
        self._check_fitted()
        if "ranking" not in self._cache:
            unit = self._draws["sharpness_mean"].unsqueeze(-1)
            draws = (self.utility_draws() * unit).numpy().astype(np.float64)
            mean = draws.mean(axis=0)
            multiple = draws.shape[0] > 1
            sd = draws.std(axis=0, ddof=1) if multiple else np.full(mean.shape, np.nan)
            lower, upper = _normal_quantiles(draws) if multiple else (np.full(mean.shape, np.nan),) * 2
            layout = self.layout_
            n = np.bincount(
                np.concatenate([layout.judgment_a, layout.judgment_b]), minlength=layout.n_responses
            )
            frame = pd.DataFrame(
                {"utility": mean, "sd": sd, "lower": lower, "upper": upper, "n_judgments": n},
                index=layout.response_index,
            )
            frame["rank"] = frame["utility"].rank(ascending=False, method="min").astype(np.int64)
            self._cache["ranking"] = frame.sort_values("rank")[["utility", "sd", "lower", "upper", "rank",
                                                                 "n_judgments"]]
        return self._cache["ranking"]

    def _response_codes(self, pairs: pd.DataFrame | Sequence[tuple[Any, Any]]) -> tuple[pd.DataFrame, np.ndarray,
                                                                                         np.ndarray]:
        if isinstance(pairs, pd.DataFrame):
            if "response_a_id" not in pairs.columns or "response_b_id" not in pairs.columns:
                raise AccordError("predict_proba needs columns response_a_id and response_b_id")
            frame = pairs[["response_a_id", "response_b_id"]].reset_index(drop=True)
        else:
            rows = list(pairs)
            if any(len(r) != 2 for r in rows):
                raise AccordError("predict_proba takes (response_a_id, response_b_id) pairs")
            frame = pd.DataFrame(rows, columns=["response_a_id", "response_b_id"])
        index = self.layout_.response_index
        codes = []
        for column in ("response_a_id", "response_b_id"):
            code = index.get_indexer(frame[column].astype(object))
            if (code < 0).any():
                row = int(np.flatnonzero(code < 0)[0])
                raise AccordError(
                    f"{column} {frame[column].iloc[row]!r} (row {row}) was not seen in fitting"
                    + ("" if self.layout_.mode == "response" else "; without response ids, responses are named "
                       "'<pair_id>/A' and '<pair_id>/B'")
                )
            codes.append(code)
        return frame, codes[0], codes[1]

    def _predict_prob_draws(self, pairs: pd.DataFrame | Sequence[tuple[Any, Any]]) -> tuple[pd.DataFrame,
                                                                                            torch.Tensor]:
        self._check_fitted()
        frame, a, b = self._response_codes(pairs)
        utility = self.utility_draws()
        gap = utility[:, torch.as_tensor(a)] - utility[:, torch.as_tensor(b)]
        with torch.no_grad():
            return frame, self.class_log_probs(self._params(), gap, None).exp()

    # -- log-likelihoods --------------------------------------------------------------------------------

    def _judgment_loglik(self, params: Params, latent: torch.Tensor, data: PairwiseData) -> torch.Tensor:
        """``[draws, n]`` log-likelihood of each judgment under each draw, in chunks to bound memory."""
        out = []
        n = data.n_judgments
        step = max(1, 4_000_000 // max(1, int(latent.shape[0])))
        with torch.no_grad():
            for start in range(0, n, step):
                sl = slice(start, min(start + step, n))
                side_b = None if data.side_b is None else data.side_b[sl].cpu()
                gap = self._gap(latent, data.side_a[sl].cpu(), side_b)
                logp = self.class_log_probs(params, gap, data.workers[sl].cpu())
                labels = data.labels[sl].cpu()
                out.append(logp.gather(-1, labels.expand(*logp.shape[:-2], -1).unsqueeze(-1)).squeeze(-1))
        return torch.cat(out, dim=-1)

    @property
    def _loglik_draws(self) -> np.ndarray:
        """``[chains, draws, n_judgments]`` per-judgment log-likelihood (computed on first use: it is large)."""
        self._check_fitted()
        if "loglik" not in self._cache:
            latent = self._draws["utility" if self.layout_.mode == "response" else "gap"]
            flat = self._judgment_loglik(self._params(), latent, self._data)
            chains = next(iter(self._chains.values())).shape[0]
            self._cache["loglik"] = flat.reshape(chains, -1, flat.shape[-1]).numpy()
        return self._cache["loglik"]

    @property
    def _item_prob_draws(self) -> np.ndarray:
        """``[draws, n_pairs, K]`` typical-annotator class probabilities of every pair (large; built on use)."""
        self._check_fitted()
        gap = self._pair_gap_draws(np.arange(self.encoded_.n_items))
        with torch.no_grad():
            return self.class_log_probs(self._params(), gap, None).exp().numpy()

    @property
    def _posterior(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        self._check_fitted()
        out = {}
        for name, value in self._chains.items():
            if name == "utility":
                dims = ["response"]
            elif name == "gap":
                dims = ["pair_id"]
            elif name in self.group_priors:
                dims = ["annotator"]
            elif value.ndim == 3:
                dims = [f"{name}_dim"]
            else:
                dims = []
            out[name] = (value.numpy(), dims)
        return out

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """Log posterior-predictive density of each judgment of ``judgments`` (``log mean_draws p(y | draw)``).

        Annotators, responses or pairs not seen in fitting get parameters drawn from their population prior
        under each draw (a MAP fit is replicated over ``num_samples`` such draws), which is what a held-out
        judgment by a new rater or about a new response should be scored against.
        """
        self._check_fitted()
        table = judgments if "accord" in judgments.attrs else validate(
            judgments, form=self.encoded_.form, scale=self.encoded_.scale
        )
        test_encoded = encode(table)
        labels, _ = self._labels_for_model(self._recode(test_encoded))
        params = dict(self._params())
        n_draws = self.n_draws if self.n_draws > 1 else max(self.num_samples, 1)
        if self.n_draws == 1:
            params = {k: v.expand(n_draws, *v.shape[1:]) for k, v in params.items()}
        generator = torch.Generator().manual_seed(self.seed + 104729)

        workers = pd.Index(self.encoded_.worker_index).get_indexer(table["annotator"])
        new_workers = workers < 0
        if new_workers.any():
            _, new_codes = np.unique(table["annotator"][new_workers].astype(str), return_inverse=True)
            n_new = int(new_codes.max()) + 1
            workers = workers.copy()
            workers[new_workers] = self.encoded_.n_workers + new_codes
            for site, (loc, scale) in self.annotator_priors(params).items():
                fresh = loc.unsqueeze(-1) + scale.unsqueeze(-1) * torch.randn(n_draws, n_new, generator=generator)
                params[site] = torch.cat([params[site], fresh], dim=-1)

        if self.layout_.mode == "response":
            ids = _response_ids(table)
            if ids is None:
                raise AccordError("the model was fitted with response ids; the test table has none")
            latent = params["utility"]
            index = self.layout_.response_index
            both = pd.concat([ids[0], ids[1]], ignore_index=True).astype(object)
            codes = index.get_indexer(both)
            unseen = codes < 0
            if unseen.any():
                _, new_codes = np.unique(both[unseen].astype(str), return_inverse=True)
                codes[unseen] = len(index) + new_codes
                fresh = torch.randn(n_draws, int(new_codes.max()) + 1, generator=generator)
                latent = torch.cat([latent, fresh], dim=-1)
            side_a = torch.as_tensor(codes[: len(table)])
            side_b: torch.Tensor | None = torch.as_tensor(codes[len(table):])
        else:
            latent = params["gap"]
            codes = self.encoded_.item_index.get_indexer(table["pair_id"])
            unseen = codes < 0
            if unseen.any():
                _, new_codes = np.unique(table["pair_id"][unseen].astype(str), return_inverse=True)
                codes[unseen] = self.encoded_.n_items + new_codes
                fresh = math.sqrt(2.0) * torch.randn(n_draws, int(new_codes.max()) + 1, generator=generator)
                latent = torch.cat([latent, fresh], dim=-1)
            side_a, side_b = torch.as_tensor(codes), None
        data = PairwiseData(side_a, side_b, torch.as_tensor(workers, dtype=torch.int64), torch.as_tensor(labels),
                            int(latent.shape[-1]), int(params["sharpness"].shape[-1]), 0)
        loglik = self._judgment_loglik(params, latent, data)
        return (torch.logsumexp(loglik, dim=0) - math.log(loglik.shape[0])).numpy().astype(np.float64)

    def _recode(self, test: Encoded) -> Encoded:
        """The test table's labels in the fitted model's class order (raises when a class is new)."""
        classes = pd.Index(self.encoded_.classes)
        values = np.asarray(test.classes, dtype=object)[test.labels]
        codes = classes.get_indexer(values)
        if (codes < 0).any():
            raise AccordError(f"label {values[codes < 0][0]!r} was not seen when fitting {type(self).__name__}")
        return Encoded(test.items, test.workers, codes.astype(np.int64), test.item_index, test.worker_index,
                       self.encoded_.classes, self.encoded_.form, self.encoded_.scale)

    def _heldout_loglik(self, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        train = train if "accord" in train.attrs else validate(train)
        test = test if "accord" in test.attrs else validate(test)
        both = encode(with_attrs(pd.concat([train, test], ignore_index=True), train))
        clone = self.clone()
        assert isinstance(clone, PairwiseUtilityModel)
        clone._fit_table(train, both.classes)
        return clone.predictive_loglik(test)

    # -- ArviZ ------------------------------------------------------------------------------------------

    def to_arviz(self) -> az.InferenceData:
        """Posterior draws (dims ``response`` or ``pair_id``, ``annotator``) and a per-judgment ``log_likelihood``
        group ``y`` (dim ``judgment``), so that ``az.loo``, ``az.waic`` and ``az.compare`` work."""
        self._check_fitted()
        encoded = self.encoded_
        coords: dict[str, Any] = {
            "annotator": np.asarray(encoded.worker_index.astype(str)),
            "judgment": np.arange(encoded.n_judgments),
        }
        if self.layout_.mode == "response":
            coords["response"] = np.asarray(self.layout_.response_index.astype(str))
        else:
            coords["pair_id"] = np.asarray(encoded.item_index.astype(str))
        posterior = {name: value for name, (value, _) in self._posterior.items()}
        dims = {name: d for name, (_, d) in self._posterior.items()}
        dims["y"] = ["judgment"]
        return az.from_dict(
            posterior=posterior,
            log_likelihood={"y": self._loglik_draws},
            observed_data={"y": self._data.labels.cpu().numpy()},
            sample_stats=getattr(self, "_nuts_stats", None) if self.inference == "nuts" else None,
            coords=coords,
            dims=dims,
            attrs={"method": self.method, "inference": self.inference},
        )

    # -- helpers ----------------------------------------------------------------------------------------

    def _summary(self, draws: torch.Tensor) -> dict[str, np.ndarray]:
        """Posterior mean, sd and 90% interval along the draw axis (sd and interval NaN for a point estimate)."""
        values = draws.numpy().astype(np.float64)
        mean = values.mean(axis=0)
        if values.shape[0] > 1:
            lower, upper = _normal_quantiles(values)
            return {"mean": mean, "sd": values.std(axis=0, ddof=1), "lower": lower, "upper": upper}
        nan = np.full(mean.shape, np.nan)
        return {"mean": mean, "sd": nan, "lower": nan, "upper": nan}

    def _site_summary(self, name: str) -> pd.DataFrame:
        """Mean, sd and 90% interval of a scalar (or vector) site, one row per element."""
        stats = self._summary(self._draws[name])
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in stats.items()})

    def _reliability_frame(self) -> pd.DataFrame:
        """``reliability`` = ``s_j / mu_s`` (1 = the typical annotator, 0 = random, negative = adversarial) with
        sd and 90% interval, and ``p_adversarial`` = P(s_j < 0). The ratio is invariant to the scale split
        between utilities and sharpness that MAP leaves to the priors."""
        sharpness = self._draws["sharpness"]
        relative = sharpness / self._draws["sharpness_mean"].unsqueeze(-1)
        stats = self._summary(relative)
        return pd.DataFrame(
            {
                "reliability": stats["mean"],
                "reliability_sd": stats["sd"],
                "reliability_lower": stats["lower"],
                "reliability_upper": stats["upper"],
                "p_adversarial": (sharpness < 0).double().mean(dim=0).numpy(),
            },
            index=self.encoded_.worker_index,
        )

    def _n_per_worker(self) -> np.ndarray:
        return np.bincount(self.encoded_.workers, minlength=self.encoded_.n_workers)

    @staticmethod
    def _win_rate_init(data: PairwiseData, sign: torch.Tensor, weight: float) -> torch.Tensor:
        """Warm-start latent values: a smoothed log-odds of each latent's 'score' from the votes.

        ``sign[n]`` in [-1, 1] is judgment ``n``'s vote for side A (1 = A, -1 = B, 0 = tie). Starting near the
        vote-based answer with every sharpness at +1 puts SVI in the honest-majority mode: from a symmetric start
        the sign symmetry ``(u, s) -> (-u, -s)`` could flip the whole solution.
        """
        n = data.n_latent
        device = data.device
        score = torch.zeros(n, device=device)
        count = torch.zeros(n, device=device)
        ones = torch.ones_like(sign)
        score.index_add_(0, data.side_a, sign)
        count.index_add_(0, data.side_a, ones)
        if data.side_b is not None:
            score.index_add_(0, data.side_b, -sign)
            count.index_add_(0, data.side_b, ones)
        # Laplace-smoothed share of 'wins' -> log-odds, shrunk towards 0 for latents with few votes
        share = (0.5 * (score + count) + 1.0) / (count + 2.0)
        init = weight * torch.log(share / (1 - share))
        return init - init.mean() if data.side_b is not None else init


class CrowdBradleyTerry(PairwiseUtilityModel):
    r"""Crowd Bradley-Terry / Thurstone: utilities per response, sharpness and position bias per annotator.

    See the module docstring for the maths. Settings beyond :class:`~accord.models.base.RaterModel`'s:

    link
        ``"logit"`` (Bradley-Terry) or ``"probit"`` (Thurstone case V).
    ties
        ``"davidson"`` (default; Davidson 1970) or ``"rao-kupper"`` (Rao & Kupper 1967; Glenn & David 1960
        with ``link="probit"``). Used only when the data contain ties.
    annotator_bias
        Learn a position bias per annotator (``b_j``); otherwise ``b = 0`` for everyone.
    annotator_ties
        Learn a tie propensity per annotator around the population value; otherwise one for everyone.
    latent
        ``"auto"`` (responses when ``response_a_id`` / ``response_b_id`` exist, else per-pair gaps),
        ``"response"`` or ``"pair"``.
    rank
        Rank of the low-rank guide (default ``min(16, sqrt(dim))``).
    init_scale
        Initial posterior scale of the SVI guides.
    patience
        Default 50 (the base class uses 20): with one-particle ELBO estimates on a few thousand judgments,
        20-step windows sometimes met the tolerance by chance after 80 steps, before the guide's scales had
        grown, and the intervals came out too narrow.
    batch_size
        Subsample this many *judgments* per SVI step (memory-bound data only: full batch converges in fewer
        steps).

    Fitted attributes: ``soft_labels_``, ``ranking_``, ``annotators_`` (per annotator: ``reliability`` = the
    relative sharpness ``s_j / mu_s`` (1 = typical, 0 = random, negative = adversarial) with ``reliability_sd``,
    ``reliability_lower`` / ``reliability_upper`` (90%), ``p_adversarial`` = P(s_j < 0), ``bias`` (``b_j``, positive = leans to A) with its interval, ``tie_offset`` when
    ties are modelled, ``n_judgments``), ``population_`` (hyperparameters), ``to_arviz()``, ``predict_proba``.
    """

    method: ClassVar[str] = "crowd-bradley-terry"
    # annotator group -> (site of its location or None for 0, InverseGamma shape and rate of its variance)
    group_priors: ClassVar[dict[str, tuple[str | None, float, float]]] = {
        "sharpness": ("sharpness_mean", 2.0, 0.5),
        "bias": ("bias_mean", 2.0, 0.1),
        "tie_offset": (None, 2.0, 0.1),
    }

    def __init__(
        self,
        *,
        link: str = "logit",
        ties: str = "davidson",
        annotator_bias: bool = True,
        annotator_ties: bool = True,
        **settings: Any,
    ) -> None:
        super().__init__(link=link, **settings)
        if ties not in TIE_MODELS:
            raise AccordError(f"ties must be one of {TIE_MODELS}, not {ties!r}")
        if link == "probit" and ties == "davidson":
            raise AccordError("Davidson ties have no probit form: use ties='rao-kupper' (Glenn-David) with "
                              "link='probit'")
        self.ties = ties
        self.annotator_bias = annotator_bias
        self.annotator_ties = annotator_ties

    # -- data ---------------------------------------------------------------------------------------------

    def _labels_for_model(self, encoded: Encoded) -> tuple[np.ndarray, int]:
        if encoded.form == "graded":
            # the sign of a graded label is a preference: negative = A better, 0 = tie
            values = np.asarray(encoded.classes)[encoded.labels]
            codes = np.where(values < 0, 0, np.where(values > 0, 1, 2)).astype(np.int64)
            return codes, 3 if (values == 0).any() else 2
        return encoded.labels, encoded.n_classes  # ("A", "B"[, "tie"]) already in the model's order

    def _has_ties(self) -> bool:
        return self._data.n_classes == 3

    def _soft_classes(self) -> list[Any]:
        return ["A", "B", "tie"] if self._has_ties() else ["A", "B"]

    def fit(self, judgments: pd.DataFrame) -> "CrowdBradleyTerry":
        super().fit(judgments)
        return self

    # -- the model ----------------------------------------------------------------------------------------

    def model(self, data: PairwiseData, subsample_size: int | None = None) -> None:
        """The Pyro model (see the module docstring)."""
        device = data.device
        c = lambda value: torch.tensor(value, device=device)  # noqa: E731 - constants on the data's device
        bias, ties = self.annotator_bias, data.n_classes == 3
        annotator_ties = ties and self.annotator_ties
        params: dict[str, torch.Tensor] = {}
        params["sharpness_mean"] = pyro.sample("sharpness_mean", dist.LogNormal(c(0.0), c(1.0)))
        if bias:
            params["bias_mean"] = pyro.sample("bias_mean", dist.Normal(c(0.0), c(1.0)))
        if ties:
            # Davidson: log nu; Rao-Kupper: log eta. Both centred where a tie is a minority answer.
            prior = (c(-1.0), c(1.5)) if self.ties == "davidson" else (c(math.log(0.5)), c(1.0))
            params["tie_log_mean"] = pyro.sample("tie_log_mean", dist.Normal(*prior))
        latent = self._sample_latent(data)
        # annotator effects: one exchangeable group each, its scale integrated out (see GroupNormal)
        params["sharpness"] = self._sample_group("sharpness", params["sharpness_mean"], data)
        if bias:
            params["bias"] = self._sample_group("bias", params["bias_mean"], data)
        if annotator_ties:
            params["tie_offset"] = self._sample_group("tie_offset", c(0.0), data)
        self._observe(data, latent, params, subsample_size)

    def class_log_probs(self, params: Params, gap: torch.Tensor, workers: torch.Tensor | None) -> torch.Tensor:
        """Log-probabilities of (A, B[, tie]) for gaps ``u_A - u_B``; ``workers=None`` is the typical annotator
        (sharpness ``mu_s``, no position bias, population tie propensity)."""
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
        tie_log = (params["tie_log_mean"].unsqueeze(-1) + tie_offset).expand_as(d)
        if self.ties == "davidson":
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

    def init_values(self, data: PairwiseData) -> dict[str, torch.Tensor]:
        labels = data.labels
        vote = torch.where(labels == 0, 1.0, torch.where(labels == 1, -1.0, 0.0)).to(data.device)
        weight = 1.0 if self.link == "logit" else 0.6  # probit utilities are ~1/1.7 of logistic ones
        latent = self._win_rate_init(data, vote, weight)
        # utilities have prior sd 1: start them at unit spread and put the vote-based spread into mu_s
        spread = float(latent.std().clamp(min=0.3)) / (math.sqrt(2.0) if data.side_b is None else 1.0)
        values = {
            "utility" if data.side_b is not None else "gap": latent / spread,
            "sharpness_mean": torch.tensor(spread, device=data.device),
            "sharpness": torch.full((data.n_workers,), spread, device=data.device),
        }
        if self.annotator_bias:
            n_a, n_b = (labels == 0).sum().item() + 1, (labels == 1).sum().item() + 1
            values["bias_mean"] = torch.tensor(0.5 * math.log(n_a / n_b), device=data.device)
            values["bias"] = torch.full((data.n_workers,), values["bias_mean"].item(), device=data.device)
        if data.n_classes == 3:
            tie_share = min(max(((labels == 2).sum().item() + 1) / (len(labels) + 2), 0.02), 0.9)
            # Davidson: P(tie | d = 0) = nu / (2 + nu); Rao-Kupper: = 2 F(eta) - 1
            if self.ties == "davidson":
                start = math.log(2 * tie_share / (1 - tie_share))
            else:
                q = (1 + tie_share) / 2
                start = math.log(math.log(q / (1 - q))) if self.link == "logit" else math.log(
                    float(torch.special.ndtri(torch.tensor(q))))
            values["tie_log_mean"] = torch.tensor(start, device=data.device)
            if self.annotator_ties:
                values["tie_offset"] = torch.zeros(data.n_workers, device=data.device)
        return values

    # -- results ------------------------------------------------------------------------------------------

    def _summarise(self, prob_draws: torch.Tensor) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        draws = prob_draws.numpy().astype(np.float64)
        mean = draws.mean(axis=0)
        top = mean.argmax(axis=1)
        top_draws = draws[:, np.arange(draws.shape[1]), top]
        extra: dict[str, np.ndarray] = {}
        if draws.shape[0] > 1:
            # P(u_A > u_B | data): the same for every link, since F(d) > 1/2 exactly when d > 0
            extra["p_a_better"] = (draws[..., 0] > draws[..., 1]).mean(axis=0)
        return mean, top_draws, extra

    def _annotator_frame(self) -> pd.DataFrame:
        index = self.encoded_.worker_index
        frame = self._reliability_frame()
        for site, column in (("bias", "bias"), ("tie_offset", "tie_offset")):
            if site in self._draws:
                stats = self._summary(self._draws[site])
                frame[column] = stats["mean"]
                frame[f"{column}_lower"] = stats["lower"]
                frame[f"{column}_upper"] = stats["upper"]
        frame["n_judgments"] = self._n_per_worker()
        return frame

    @property
    def population_(self) -> pd.DataFrame:
        """Posterior mean, sd and 90% interval of the population parameters; with ties also the tie parameter
        ``nu`` (Davidson) or ``eta`` (Rao-Kupper) on its natural scale."""
        self._check_fitted()
        rows = {}
        for name, value in self._draws.items():
            if value.ndim == 1:
                rows[name] = self._summary(value)
        if "tie_log_mean" in self._draws:
            rows["nu" if self.ties == "davidson" else "eta"] = self._summary(self._draws["tie_log_mean"].exp())
        return pd.DataFrame(rows).T[["mean", "sd", "lower", "upper"]]

    def predict_proba(self, pairs: pd.DataFrame | Sequence[tuple[Any, Any]]) -> pd.DataFrame:
        """P(A > B) (and P(B > A), P(tie) where ties are modelled) for any two responses seen in fitting, compared
        in the data or not: posterior mean over draws for a typical annotator, and ``sd`` of P(A > B).

        ``pairs``: a DataFrame with ``response_a_id`` / ``response_b_id`` or a sequence of ``(a, b)`` ids.
        """
        frame, draws = self._predict_prob_draws(pairs)
        probs = draws.numpy().astype(np.float64)
        out = frame.copy()
        for k, name in enumerate(self._soft_classes()):
            out[name] = probs[..., k].mean(axis=0)
        out["sd"] = probs[..., 0].std(axis=0, ddof=1) if probs.shape[0] > 1 else np.nan
        return out
