"""Pairwise utility models (crowd Bradley-Terry, ordinal preference): a latent utility per response, and per
annotator a sharpness, a position bias and more, each an exchangeable group with its scale integrated out.

This module holds what the two share: the link functions and the two distributions of their likelihood and priors,
the layout of responses and judgments, and :class:`PairwiseUtilityModel`, whose subclass supplies the Pyro model
(``_model``), the per-judgment class log-probabilities (:meth:`~PairwiseUtilityModel.class_log_probs`, also for a
*typical* annotator when ``workers is None``), its annotator groups (``group_priors``: location site and
InverseGamma prior of each, see :class:`GroupNormal`), warm-start values (``_init_values``), how its classes map to
the soft-label classes (``_vote_classes``, ``_pair_columns``) and its own annotator columns.

The common annotator columns (:mod:`accord.models.base`) read each rater's confusion as: the true label of a pair
is its better response, and the rater's vote distribution on a pair they judged, with the better response shown
first and second (``P(vote | gap = |g|)``, ``P(vote | gap = -|g|)``), averaged over their judgments.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F

from accord.datasets import AccordError, Encoded, FitError, ValidationError, encode, validate
from accord.datasets.schema import input_row, is_validated
from accord.models._data import id_ranks, sorted_ranks
from accord.models.base import (PyroRaterModel, concat_summaries, interval_columns, is_one_of, mean_and_interval,
                                 summarize_draws)
from accord.models.pyro_fit import fit_pyro

Params = Mapping[str, torch.Tensor]

LINKS: tuple[str, ...] = ("logit", "probit")
LATENT_MODES: tuple[str, ...] = ("auto", "response", "pair")
ROTATED = "utility_rotated"  # the site of the utilities in the basis they are sampled in (ComponentReflection)
# Pairs per chunk when summarising draws: bounds memory at draws x chunk x classes floats.
_CHUNK = 20_000


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
        gamma = torch.distributions.Gamma(torch.full(shape, float(self.concentration), device=self.loc.device),
                                          torch.tensor(float(self.rate), device=self.loc.device))
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


@dataclass(frozen=True)
class ComponentReflection:
    r"""The orthonormal change of basis ``u = H z`` in which the utilities are sampled: per connected component
    of the comparison graph (responses joined by a compared pair), the Householder reflection that maps the
    component's first response to the direction of its mean, ``H = I - 2 w w^T / (w^T w)`` with
    ``w = e_first - 1 / \sqrt{R}`` on the component's ``R`` responses (identity for a response alone).

    ``H`` is orthogonal and symmetric, so ``z ~ N(0, I)`` gives ``u = H z ~ N(0, I)``: the model is unchanged. The
    votes see only differences within a component, so the component's mean utility is known only through its
    prior, and every utility of the component shares its variance; a mean-field guide over ``u`` cannot represent
    that shared part and adds it to the variance of every gap ``u_A - u_B``, which then shrinks the sharpness and
    makes the soft labels timid against exact posterior draws (measured in the README's debiasing section). In
    ``z`` the mean is one coordinate of its own, apart from the differences.
    """

    component: torch.Tensor  # [n] component code of each response
    w: torch.Tensor  # [n] the reflection vector, component by component
    scale: torch.Tensor  # [C] 2 / (w^T w) per component, 0 for a component of one response

    @classmethod
    def of_pairs(cls, pair_a: np.ndarray, pair_b: np.ndarray, n_responses: int,
                 device: torch.device) -> ComponentReflection:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(len(pair_a)), (pair_a, pair_b)), shape=(n_responses, n_responses))
        _, component = connected_components(graph, directed=False)
        size = np.bincount(component)
        first = np.zeros(n_responses, dtype=bool)
        first[np.unique(component, return_index=True)[1]] = True
        w = first - 1.0 / np.sqrt(size[component])
        norm = 2.0 - 2.0 / np.sqrt(size)  # w^T w: (1 - 1/sqrt R)^2 + (R - 1) / R
        scale = np.divide(2.0, norm, out=np.zeros_like(norm), where=norm > 1e-12)
        return cls(*(torch.as_tensor(v, device=device) for v in (component, w.astype(np.float32),
                                                                 scale.astype(np.float32))))

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """``H values`` along the last dimension (``H`` is its own inverse: the same call maps ``u`` to ``z``)."""
        w = self.w.to(values.dtype)
        dots = torch.zeros(*values.shape[:-1], len(self.scale), dtype=values.dtype, device=values.device)
        dots = dots.index_add(-1, self.component, values * w) * self.scale.to(values.dtype)
        return values - w * dots[..., self.component]


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
    pairs: torch.Tensor | None = None  # judgment -> pair code (for pair-level effects)
    n_pairs: int = 0
    reflection: ComponentReflection | None = None  # "response" mode: the basis the utilities are sampled in

    @property
    def n_judgments(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def select(self, index: Any = None, cpu: bool = False) -> tuple[torch.Tensor | None, ...]:
        """``(side_a, side_b, workers, labels, pairs)`` of the judgments at ``index`` (``None``: all of them, without
        a copying gather), moved to the host with ``cpu``."""
        parts = (self.side_a, self.side_b, self.workers, self.labels, self.pairs)
        if index is not None:
            parts = tuple(None if part is None else part[index] for part in parts)
        return tuple(None if part is None else part.cpu() for part in parts) if cpu else parts


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


def sd_columns(name: str, draws: torch.Tensor) -> dict[str, np.ndarray]:
    """``name``, ``name_sd`` (NaN for a point estimate), ``name_lower``, ``name_upper``: the posterior mean, sd and
    90% interval of ``draws`` (first axis)."""
    mean, lower, upper = mean_and_interval(draws)
    sd = draws.std(0).numpy() if draws.shape[0] > 1 else np.full(mean.shape, np.nan)
    return {name: mean, f"{name}_sd": sd, f"{name}_lower": lower, f"{name}_upper": upper}


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


def _codes_with_new(index: pd.Index, values: pd.Series) -> tuple[np.ndarray, int]:
    """Codes of ``values`` in ``index``, unseen values numbered after it (in sorted order), and how many are new."""
    codes = index.get_indexer(values)
    unseen = codes < 0
    if not unseen.any():
        return codes, 0
    _, new = np.unique(values[unseen].astype(str), return_inverse=True)
    codes[unseen] = len(index) + new
    return codes, int(new.max()) + 1


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
        response_index = pd.Index(np.column_stack([pair_ids + "/A", pair_ids + "/B"]).ravel(), name="response_id")
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
        raise ValidationError("one pair_id is given two different (response_a_id, response_b_id)",
                              column="response_a_id", row=input_row(table, row),
                              value=(table["pair_id"].iloc[row], a.iloc[row], b.iloc[row]))
    return ResponseLayout("response", pd.Index(uniques, name="response_id"), pair_a, pair_b, judgment_a, judgment_b)


class PairwiseUtilityModel(PyroRaterModel):
    """Shared machinery of the utility-based pairwise models (see the module docstring).

    Parameters
    ----------
    link
        ``"logit"`` or ``"probit"``.
    latent
        ``"auto"`` (a utility per response when ``response_a_id`` / ``response_b_id`` exist, else a gap per pair),
        ``"response"`` or ``"pair"``.
    patience
        Default 50: with one-particle ELBO estimates on a few thousand judgments, shorter windows sometimes met the
        tolerance by chance, before the guide's scales had grown, and the intervals came out too narrow.
    rank
        Rank of the low-rank guide (default ``min(16, sqrt(dim))``).
    Others: :class:`~accord.models.base.PyroRaterModel` (``"map"`` keeps the annotator groups mean-field: a point
    estimate of a group sits at its mode, where every effect equals the group mean).
    """

    supported_inference: ClassVar[tuple[str, ...]] = ("map", "meanfield", "lowrank", "nuts")
    reads_table: ClassVar[bool] = True
    #: fit on the judgments in id order, draws mapped back (:meth:`_in_id_order`); a model whose sites or tensors
    #: beyond :class:`PairwiseData` follow the judgments' rows says no
    fits_in_id_order: ClassVar[bool] = True
    group_priors: ClassVar[dict[str, tuple[str | None, float, float]]] = {}
    pair_priors: ClassVar[dict[str, tuple[float, float]]] = {}
    link: str = "logit"
    latent: str = "auto"
    max_steps: int = 3000
    patience: int = 50
    num_chains: int = 1

    def __post_init__(self) -> None:
        if not is_one_of(self.link, LINKS):
            raise AccordError(f"link must be one of {LINKS}, not {self.link!r}")
        if not is_one_of(self.latent, LATENT_MODES):
            raise AccordError(f"latent must be one of {LATENT_MODES}, not {self.latent!r}")

    def _model(self, data: PairwiseData, batch_size: int | None = None) -> None:
        raise NotImplementedError

    def class_log_probs(self, params: Params, gap: torch.Tensor, workers: torch.Tensor | None,
                        pairs: torch.Tensor | None = None) -> torch.Tensor:
        """``[..., n, K]`` log-probabilities of each class for utility gaps ``gap[..., n]`` judged by ``workers``
        (``None``: a typical annotator) on pairs ``pairs`` (``None``: a typical pair), under parameters ``params``
        (scalars ``[...]``, per-annotator ``[..., J]``, per-pair ``[..., I]``)."""
        raise NotImplementedError

    def _new_pair_params(self, params: Params, n_new: int, generator: torch.Generator) -> Params:
        """``params`` with per-pair sites extended by ``n_new`` pairs unseen in fitting, drawn from their population
        (none by default)."""
        return params

    def _init_values(self, data: PairwiseData) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _labels_for_model(self, encoded: Encoded) -> tuple[np.ndarray, int]:
        """Class codes in the model's order and the number of classes."""
        raise NotImplementedError

    def _vote_classes(self, prob_draws: torch.Tensor) -> torch.Tensor:
        """``[draws, n, C]`` probabilities of the soft-label classes (A, B[, tie]) from those of the model's."""
        return prob_draws

    def _pair_columns(self, prob_draws: torch.Tensor) -> dict[str, np.ndarray]:
        """Extra per-pair soft-label columns from ``[draws, n, K]`` typical-annotator class probabilities."""
        return {}

    def _derived_sites(self, chains: dict[str, torch.Tensor]) -> None:
        """Add deterministic functions of the draws that :meth:`class_log_probs` reads (``[chains, draws, ...]``)."""

    def annotator_priors(self, params: Params) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per annotator-level site, the population ``(loc, scale)`` (``[draws]``) of its Normal prior, the
        scale being the derived ``<site>_scale`` draws."""
        out = {}
        for site, (loc_site, _, _) in self.group_priors.items():
            if site in params:
                scale = params[f"{site}_scale"]
                out[site] = (params[loc_site] if loc_site is not None else torch.zeros_like(scale), scale)
        return out

    def _constant(self, data: PairwiseData, key: str, build: Callable[[], Any]) -> Any:
        """``build()``, made once per data object: what the model reads on every SVI step but no parameter changes
        (a prior with fixed parameters, a constant tensor); a small model's step is mostly such small operations."""
        store = getattr(self, "_constants_of", None)
        if store is None or store[0] is not data:
            store = self._constants_of = (data, {})
        if key not in store[1]:
            store[1][key] = build()
        return store[1][key]

    def _sample_latent(self, data: PairwiseData) -> torch.Tensor:
        """Sample the utilities (or, in pair mode, the gaps) in their plate: ``u ~ N(0, 1)``, fixed scale (the
        annotators' sharpness carries the scale). Utilities are sampled as ``z`` (site ``utility_rotated``) and
        returned as ``u = H z`` (:class:`ComponentReflection`: the same prior, a basis a mean-field guide fits)."""
        device = data.device

        def build() -> dist.Distribution:
            zero, one = torch.zeros((), device=device), torch.ones((), device=device)
            # pair mode: u_A - u_B of two independent N(0, 1) utilities
            return dist.Normal(zero, one) if data.side_b is not None else dist.Normal(zero, one * math.sqrt(2.0))

        prior = self._constant(data, "latent", build)
        # the plate is made on every call: making one records its subsample site in the trace (model-guide match)
        if data.side_b is not None:
            with pyro.plate("responses", data.n_latent, device=device):
                rotated = pyro.sample(ROTATED, prior)
            return data.reflection(rotated) if data.reflection is not None else rotated
        with pyro.plate("pairs", data.n_latent, device=device):
            return pyro.sample("gap", prior)

    def _sample_group(self, site: str, loc: torch.Tensor, data: PairwiseData) -> torch.Tensor:
        _, concentration, rate = self.group_priors[site]
        return pyro.sample(site, GroupNormal(loc, concentration, rate, data.n_workers))

    @staticmethod
    def _gap(latent: torch.Tensor, side_a: torch.Tensor, side_b: torch.Tensor | None) -> torch.Tensor:
        return latent[..., side_a] if side_b is None else latent[..., side_a] - latent[..., side_b]

    def _judgment_log_probs(self, params: Params, latent: torch.Tensor, data: PairwiseData, index: Any = None,
                            cpu: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(workers, labels, [..., n, K] class log-probabilities)`` of the judgments at ``index`` (``None``: all),
        on the host with ``cpu`` (the post-fit computations)."""
        side_a, side_b, workers, labels, pairs = data.select(index, cpu=cpu)
        return workers, labels, self.class_log_probs(params, self._gap(latent, side_a, side_b), workers, pairs)

    def _observe(self, data: PairwiseData, latent: torch.Tensor, params: Params, batch_size: int | None) -> None:
        """The likelihood: one vectorised Categorical over the (optionally subsampled) judgments plate."""
        with pyro.plate("judgments", data.n_judgments, subsample_size=batch_size, device=data.device) as idx:
            _, labels, logits = self._judgment_log_probs(params, latent, data, None if batch_size is None else idx)
            pyro.sample("y", NormalizedCategorical(logits), obs=labels)

    def _judged_once(self) -> bool:
        """As every model's, but responses compared in more than one pair tie the pairs together through their
        utilities (A over B, B over C, C over A tells a rater's sharpness without a pair judged twice)."""
        layout = self.layout_
        shared = layout.mode == "response" and bool(
            (np.bincount(np.concatenate([layout.pair_a, layout.pair_b]), minlength=layout.n_responses) > 1).any())
        return not shared and super()._judged_once()

    def _prepare(self, table: pd.DataFrame | None, encoded: Encoded) -> None:
        if encoded.form == "categorical":
            raise AccordError(f"{type(self).__name__} needs pairwise labels (A/B/tie or graded), not categorical ones")
        self.layout_ = build_layout(table, encoded, self.latent)
        device, layout = self._torch_device, self.layout_
        labels, n_classes = self._labels_for_model(encoded)
        reflection = None
        if layout.mode == "response":
            side_a = torch.as_tensor(layout.judgment_a, device=device)
            side_b: torch.Tensor | None = torch.as_tensor(layout.judgment_b, device=device)
            reflection = ComponentReflection.of_pairs(layout.pair_a, layout.pair_b, layout.n_responses, device)
        else:
            side_a, side_b = torch.as_tensor(encoded.items, device=device), None
        self._data = PairwiseData(side_a, side_b, torch.as_tensor(encoded.workers, device=device),
                                  torch.as_tensor(labels, device=device),
                                  layout.n_responses if layout.mode == "response" else encoded.n_items,
                                  encoded.n_workers, n_classes, torch.as_tensor(encoded.items, device=device),
                                  encoded.n_items, reflection)

    def _fit(self, encoded: Encoded) -> None:
        data = self._data
        batch = None
        if self.batch_size is not None:  # pairs per step -> their judgments, on average
            batch = round(self.batch_size * data.n_judgments / max(encoded.n_items, 1))
        n_latent = data.n_latent + data.n_workers * max(len(self.group_priors), 1)
        # the default rank (sqrt of the dimension) is too costly for 1e5 responses; 16 directions catch the
        # dominant posterior correlations (shared scale parameters, connected utilities)
        rank = self.rank if self.rank is not None else max(1, min(16, int(math.sqrt(n_latent))))
        fitted, back = self._in_id_order(data, encoded) if self.fits_in_id_order else (data, {})
        init = self._init_values(fitted)
        if fitted.reflection is not None:  # the utilities' start in the basis they are sampled in (H is its inverse)
            init[ROTATED] = fitted.reflection(init.pop("utility"))
        chains = self._keep_fit(fit_pyro(self, self._model, fitted, init=init, rank=rank,
                                         map_normal=(*self.group_priors, *self.pair_priors), vectorize_draws=True,
                                         subsample=batch if batch is not None and batch < data.n_judgments else None))
        if fitted.reflection is not None:
            chains["utility"] = fitted.reflection(chains.pop(ROTATED))
        # guide_ keeps the id order; the draws and everything read off them are in the codes of encoded_
        chains = {name: (value if name not in back else value.index_select(2, torch.as_tensor(
            back[name], device=value.device))).detach().cpu().float() for name, value in chains.items()}
        # the group scales (annotator and pair groups) are integrated out of the model: add their conditional
        # posterior draws
        scales = {**self.group_priors, **{site: (None, *prior) for site, prior in self.pair_priors.items()}}
        for site, (loc_site, concentration, rate) in scales.items():
            if site in chains:
                loc = chains[loc_site] if loc_site is not None else 0.0
                chains[f"{site}_scale"] = GroupNormal.scale_draws(chains[site], loc, concentration, rate,
                                                                  point=self.inference == "map")
        self._derived_sites(chains)
        self._chains = chains
        self._draws = {name: value.reshape(-1, *value.shape[2:]) for name, value in chains.items()}
        for name, value in self._draws.items():
            if not torch.isfinite(value).all():
                raise FitError(f"{type(self).__name__}: posterior draws of '{name}' are not finite; try a smaller "
                               "learning_rate or inference='map'")
        parts, extras = [], []
        with torch.no_grad():
            for start in range(0, encoded.n_items, _CHUNK):
                pairs = np.arange(start, min(start + _CHUNK, encoded.n_items))
                gap = self._pair_gap_draws(pairs)
                prob_draws = self.class_log_probs(self._draws, gap, None, torch.as_tensor(pairs)).exp()
                parts.append(summarize_draws(self._vote_classes(prob_draws)))
                extras.append(self._pair_columns(prob_draws))
        self._item_summary = concat_summaries(parts)
        extra = {name: np.concatenate([e[name] for e in extras]) for name in extras[0]}
        self._extra = pd.DataFrame(extra, index=encoded.item_index) if extra else None

    def _in_id_order(self, data: PairwiseData, encoded: Encoded) -> tuple[PairwiseData, dict[str, np.ndarray]]:
        """``data`` with its judgments sorted by pair id, annotator id and label, and pairs, annotators and responses
        numbered in the order of their ids (:func:`~accord.models._data.in_id_order`'s rule: the same judgments in any
        row order give one ``PairwiseData``, so the guide's random draws, the subsampled judgments and the basis of
        the utilities follow the judgments and the seed), and, per sample site, the index that takes a draw in these
        codes back to ``data``'s."""
        item_rank, worker_rank = id_ranks(encoded.item_index), id_ranks(encoded.worker_index)
        items, workers, labels = (t.cpu().numpy() for t in (data.pairs, data.workers, data.labels))
        order = np.lexsort([labels, worker_rank[workers], item_rank[items]])
        tensor = functools.partial(torch.as_tensor, device=data.device)
        layout, reflection = self.layout_, None
        if data.side_b is None:  # pair mode: the latent is the pair's gap
            latent_rank = item_rank
            side_a, side_b = tensor(item_rank[items[order]]), None
        else:
            latent_rank = sorted_ranks(layout.response_index)
            side_a = tensor(latent_rank[data.side_a.cpu().numpy()[order]])
            side_b = tensor(latent_rank[data.side_b.cpu().numpy()[order]])
            reflection = ComponentReflection.of_pairs(latent_rank[layout.pair_a], latent_rank[layout.pair_b],
                                                      layout.n_responses, data.device)
        ordered = replace(data, side_a=side_a, side_b=side_b, workers=tensor(worker_rank[workers[order]]),
                          labels=data.labels[tensor(order)], pairs=tensor(item_rank[items[order]]),
                          reflection=reflection)
        back = {"gap" if data.side_b is None else "utility": latent_rank,
                **dict.fromkeys(self.pair_priors, item_rank), **dict.fromkeys(self.group_priors, worker_rank)}
        return ordered, back

    def _soft_extra(self) -> pd.DataFrame | None:
        return self._extra

    @property
    def _n_draws(self) -> int:
        return int(next(iter(self._draws.values())).shape[0])

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
        return (utility[:, torch.as_tensor(self.layout_.pair_a[pairs])]
                - utility[:, torch.as_tensor(self.layout_.pair_b[pairs])])

    def _summary(self, draws: torch.Tensor) -> dict[str, np.ndarray]:
        """Posterior mean, sd and 90% interval along the draw axis (sd and interval NaN for a point estimate)."""
        mean, lower, upper = mean_and_interval(draws.double())
        if draws.shape[0] > 1:
            return {"mean": mean, "sd": draws.double().std(0).numpy(), "lower": lower, "upper": upper}
        nan = np.full(mean.shape, np.nan)
        return {"mean": mean, "sd": nan, "lower": nan, "upper": nan}

    def _population(self) -> dict[str, dict[str, np.ndarray]]:
        """The rows of :attr:`population_`."""
        return {name: self._summary(value) for name, value in self._draws.items() if value.ndim == 1}

    @property
    def population_(self) -> pd.DataFrame:
        """Posterior mean, sd and 90% interval of the scalar population parameters and group scales."""
        self._check_fitted()
        return pd.DataFrame(self._population()).T[["mean", "sd", "lower", "upper"]].astype(float)

    def _predicted_columns(self, prob_draws: torch.Tensor) -> dict[str, np.ndarray]:
        """Model-specific columns of :meth:`predict_proba` from ``[draws, n, K]`` class probabilities."""
        return {}

    def predict_proba(self, pairs: pd.DataFrame | Sequence[tuple[Any, Any]]) -> pd.DataFrame:
        """P(A better), P(B better) (and P(tie) where ties are modelled) for any two responses seen in fitting,
        compared in the data or not: the posterior mean over draws for a typical annotator, the model's own columns
        (e.g. the expected strength), and ``sd`` of P(A better).

        ``pairs``: a DataFrame with ``response_a_id`` / ``response_b_id`` (the result has its index) or a sequence
        of ``(a, b)`` ids.
        """
        self._check_fitted()
        frame, a, b = self._response_codes(pairs)
        utility = self.utility_draws()
        gap = utility[:, torch.as_tensor(a)] - utility[:, torch.as_tensor(b)]
        # a pair compared in fitting (either way round) keeps its pair-level effects; any other is a typical pair
        layout, n_pairs = self.layout_, self.encoded_.n_items
        fitted = pd.Series(np.arange(n_pairs), index=pd.MultiIndex.from_arrays([layout.pair_a, layout.pair_b]))
        fitted = fitted[~fitted.index.duplicated()]
        found = [fitted.reindex(pd.MultiIndex.from_arrays(sides)).to_numpy() for sides in ([a, b], [b, a])]
        code = np.where(np.isnan(found[0]), np.nan_to_num(found[1], nan=n_pairs), found[0])
        params = {name: torch.cat([value, value.new_zeros(value.shape[0], 1)], dim=-1)
                  if name in self.pair_priors else value for name, value in self._draws.items()}
        with torch.no_grad():
            draws = self.class_log_probs(params, gap, None, torch.as_tensor(code.astype(np.int64))).exp()
        probs = self._vote_classes(draws).numpy().astype(np.float64)
        out = frame.copy()
        if isinstance(pairs, pd.DataFrame):
            # one row per given pair under the caller's labels: a filtered or sorted frame's predictions were
            # numbered 0..n-1, so pairs.assign(p=model.predict_proba(pairs)["A"]) put them on other rows (or NaN)
            out.index = pairs.index
        for k, name in enumerate(self._soft_classes()):
            out[name] = probs[..., k].mean(axis=0)
        for name, values in self._predicted_columns(draws).items():
            out[name] = values
        out["sd"] = probs[..., 0].std(axis=0, ddof=1) if probs.shape[0] > 1 else np.nan
        return out

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
            layout = self.layout_
            stats = self._summary(self.utility_draws() * self._draws["sharpness_mean"].unsqueeze(-1))
            frame = pd.DataFrame(stats, index=layout.response_index).rename(columns={"mean": "utility"})
            frame["rank"] = frame["utility"].rank(ascending=False, method="min").astype(np.int64)
            frame["n_judgments"] = np.bincount(np.concatenate([layout.judgment_a, layout.judgment_b]),
                                               minlength=layout.n_responses)
            self._cache["ranking"] = frame.sort_values("rank")
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
                raise AccordError(f"{column} {frame[column].iloc[row]!r} (row {row}) was not seen in fitting"
                                  + ("" if self.layout_.mode == "response" else "; without response ids, responses "
                                     "are named '<pair_id>/A' and '<pair_id>/B'"))
            codes.append(code)
        return frame, codes[0], codes[1]

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        """Rows: the better response shown first (true A) and second (true B); each the rater's vote distribution
        over the soft-label classes, averaged over their judgments."""
        data = self._data
        chosen = torch.nonzero((data.workers >= lo) & (data.workers < hi))[:, 0]
        latent = self._draws["utility" if self.layout_.mode == "response" else "gap"]
        total = torch.zeros(self._n_draws, hi - lo, 2, len(self._soft_classes()))
        step = max(1, 2_000_000 // max(1, self._n_draws))
        with torch.no_grad():
            for start in range(0, len(chosen), step):
                side_a, side_b, workers, _, pairs = data.select(chosen[start:start + step], cpu=True)
                gap = self._gap(latent, side_a, side_b).abs()
                rows = [self._vote_classes(self.class_log_probs(self._draws, g, workers, pairs).exp())
                        for g in (gap, -gap)]
                total.index_add_(1, workers - lo, torch.stack(rows, dim=-2).float())
        counts = torch.bincount(data.workers.cpu()[chosen.cpu()] - lo, minlength=hi - lo).clamp_min(1)
        return total / counts[None, :, None, None]

    def _class_prior_draws(self) -> torch.Tensor:
        return torch.full((self._n_draws, 2), 0.5)

    def _sharpness_columns(self) -> dict[str, np.ndarray]:
        """``sharpness`` = ``s_j / mu_s`` (1 = the typical annotator, 0 = random, negative = adversarial) with sd
        and 90% interval, and ``p_adversarial`` = P(s_j < 0). The ratio is invariant to the scale split between
        utilities and sharpness that MAP leaves to the priors."""
        sharpness = self._draws["sharpness"]
        relative = (sharpness / self._draws["sharpness_mean"].unsqueeze(-1)).double()
        return {**sd_columns("sharpness", relative), "p_adversarial": (sharpness < 0).double().mean(dim=0).numpy()}

    def _site_columns(self, site: str, name: str, values: torch.Tensor | None = None) -> dict[str, np.ndarray]:
        if site not in self._draws:
            return {}
        return interval_columns(name, (self._draws[site] if values is None else values).double())

    def _judgment_loglik_blocks(self, params: Params, latent: torch.Tensor,
                                data: PairwiseData) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(workers, loglik [draws, block])`` for blocks of judgments in order, each at most about 4M numbers."""
        n = data.n_judgments
        step = max(1, 4_000_000 // max(1, int(latent.shape[0])))
        with torch.no_grad():
            for start in range(0, n, step):
                block = slice(start, min(start + step, n))
                workers, labels, logp = self._judgment_log_probs(params, latent, data, block, cpu=True)
                yield workers, logp.gather(-1, labels.expand(*logp.shape[:-2], -1).unsqueeze(-1)).squeeze(-1)

    def _judgment_loglik(self, params: Params, latent: torch.Tensor, data: PairwiseData) -> torch.Tensor:
        """``[draws, n]`` log-likelihood of each judgment under each draw, in blocks to bound memory."""
        return torch.cat([block for _, block in self._judgment_loglik_blocks(params, latent, data)], dim=-1)

    def _loglik_draws(self) -> np.ndarray:
        if "loglik" not in self._cache:
            latent = self._draws["utility" if self.layout_.mode == "response" else "gap"]
            flat = self._judgment_loglik(self._draws, latent, self._data)
            chains = next(iter(self._chains.values())).shape[0]
            self._cache["loglik"] = flat.reshape(chains, -1, flat.shape[-1]).numpy()
        return self._cache["loglik"]

    def _posterior_draws(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        out = {}
        for name, value in self._chains.items():
            if name == "utility":
                dims = ["response"]
            elif name == "gap" or name in self.pair_priors:
                dims = ["pair_id"]
            elif name in self.group_priors:
                dims = ["annotator"]
            else:
                dims = [f"{name}_dim"] if value.ndim == 3 else []
            out[name] = (value.numpy(), dims)
        return out

    def _extra_coords(self) -> dict[str, Any]:
        if self.layout_.mode == "response":
            return {"response": np.asarray(self.layout_.response_index.astype(str))}
        return {}

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """Log posterior-predictive density of each judgment of ``judgments`` (``log mean_draws p(y | draw)``).

        Annotators, responses or pairs not seen in fitting get parameters drawn from their population prior
        under each draw (a MAP fit is replicated over ``num_samples`` such draws), which is what a held-out
        judgment by a new rater or about a new response should be scored against.
        """
        self._check_fitted()
        table = judgments if is_validated(judgments) else validate(judgments, form=self.encoded_.form,
                                                                   scale=self.encoded_.scale)
        labels, _ = self._labels_for_model(self._recode(encode(table)))
        n_draws = self._n_draws if self._n_draws > 1 else max(self.num_samples, 1)
        params = {k: v.expand(n_draws, *v.shape[1:]) for k, v in self._draws.items()}
        generator = torch.Generator().manual_seed(self.seed + 104729)
        pairs, n_new_pairs = _codes_with_new(self.encoded_.item_index, table["pair_id"])
        workers, n_new = _codes_with_new(self.encoded_.worker_index, table["annotator"])
        if n_new:
            for site, (loc, scale) in self.annotator_priors(params).items():
                fresh = loc.unsqueeze(-1) + scale.unsqueeze(-1) * torch.randn(n_draws, n_new, generator=generator)
                params[site] = torch.cat([params[site], fresh], dim=-1)
        if self.layout_.mode == "response":
            ids = _response_ids(table)
            if ids is None:
                raise AccordError("the model was fitted with response ids; the test table has none")
            both = pd.concat(ids, ignore_index=True).astype(object)
            codes, n_new = _codes_with_new(self.layout_.response_index, both)
            latent = torch.cat([params["utility"], torch.randn(n_draws, n_new, generator=generator)], dim=-1)
            side_a, side_b = torch.as_tensor(codes[: len(table)]), torch.as_tensor(codes[len(table):])
        else:
            fresh = math.sqrt(2.0) * torch.randn(n_draws, n_new_pairs, generator=generator)  # u_A - u_B of two N(0, 1)
            latent, side_a, side_b = torch.cat([params["gap"], fresh], dim=-1), torch.as_tensor(pairs), None
        params = self._new_pair_params(params, n_new_pairs, generator)
        data = PairwiseData(side_a, side_b, torch.as_tensor(workers, dtype=torch.int64), torch.as_tensor(labels),
                            int(latent.shape[-1]), int(params["sharpness"].shape[-1]), 0,
                            torch.as_tensor(pairs, dtype=torch.int64), self.encoded_.n_items + n_new_pairs)
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

    def _latent_start(self, data: PairwiseData, sign: torch.Tensor) -> dict[str, torch.Tensor]:
        """Warm-start utilities (gaps) and sharpness from the votes: a smoothed log-odds of each latent's 'score'.

        ``sign[n]`` in [-1, 1] is judgment ``n``'s vote for side A (1 = A, -1 = B, 0 = tie). Starting near the
        vote-based answer with every sharpness equal puts SVI in the honest-majority mode: from a symmetric start the
        sign symmetry ``(u, s) -> (-u, -s)`` could flip the whole solution. Utilities have prior sd 1, so they start at
        unit spread and the vote-based spread goes into every ``s_j`` and ``mu_s``.
        """
        sign, device = sign.to(data.device), data.device
        weight = 1.0 if self.link == "logit" else 0.6  # probit utilities are ~1/1.7 of logistic ones
        score = torch.zeros(data.n_latent, device=device).index_add_(0, data.side_a, sign)
        count = torch.zeros(data.n_latent, device=device).index_add_(0, data.side_a, torch.ones_like(sign))
        if data.side_b is not None:
            score.index_add_(0, data.side_b, -sign)
            count.index_add_(0, data.side_b, torch.ones_like(sign))
        # Laplace-smoothed share of 'wins' -> log-odds, shrunk towards 0 for latents with few votes
        share = (0.5 * (score + count) + 1.0) / (count + 2.0)
        latent = weight * torch.log(share / (1 - share))
        latent = latent - latent.mean() if data.side_b is not None else latent
        # one latent (a table of one pair) has no spread: torch's std is NaN there, and NaN passes clamp
        spread = max(float(latent.std()) if latent.numel() > 1 else 0.0, 0.3) / (
            math.sqrt(2.0) if data.side_b is None else 1.0)
        return {"utility" if data.side_b is not None else "gap": latent / spread,
                "sharpness_mean": torch.tensor(spread, device=data.device),
                "sharpness": torch.full((data.n_workers,), spread, device=data.device)}
