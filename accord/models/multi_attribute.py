r"""Multi-attribute ordinal rater model: per-rater, per-attribute leniency and noise, correlated attributes.

The maths, the inference and the references are in :class:`MultiAttributeOrdinal`'s docstring.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr, ndtri

from accord._settings import ConstructorSettings
from accord.datasets import AccordError, FitError
from accord.datasets.attribute_scores import INTERVAL, AttributeScores, check_interval
from accord.datasets.attributes import (
    ATTRIBUTE_FORM,
    AttributeCodes,
    encode_attributes,
    is_preference_scale,
    refuse_shared_columns,
    validate_attributes,
)
from accord.datasets.schema import checked_info
from accord.models._data import sorted_ranks
from accord.models.base import check_device, check_positive
from accord.models.ordinal_probit import ordinal_probit_derivatives, ordinal_probit_loglik

# Weak priors, in units of a typical rater's noise: the centre of an attribute's cut-points, the cut-point
# log-increments, and the floor of every variance of the rater effects (see _variance_mode) and of the attributes.
_CUT_CENTRE_SD = 10.0
_CUT_INCREMENT_SD = 1.5
# The cut-points of a scale span about this many units a priori, whatever its number of levels: the increments'
# prior is centred at log(span / (L - 1)) (0 on a 0..4 scale). Centred at 0 on every scale, a 0..100 slider's 99
# increments were held near one unit each, a span of 99 units against the data's few: the prior outweighed the
# ratings and the intervals under-covered (tests/test_multi_attribute_truth.py).
_CUT_SPAN = 4.0
# The variances of the rater effects have the prior p(v) ~ exp(-floor / v), flat above the floor, so that their
# estimate is near 0 only where the data say so. An inverse-gamma(1, floor) prior, p(v) ~ v^-2 exp(-floor / v),
# had a spike of density at v = floor / 2 that outweighed a few nats of likelihood: the EM update shrank every
# variance by n / (n + 4) and, run to convergence, about a third of the attributes' spreads of log-noise fell to
# 0.02 where the truth was 0.3 (tests/test_multi_attribute_truth.py).
_VARIANCE_FLOOR = 1e-3
#: the axes of each parameter and hyperparameter of the EM, from the first ("level": a cut-point column, kept)
_AXES: dict[str, tuple[str, ...]] = {
    "shift": ("worker", "attribute"), "log_noise": ("worker", "attribute"), "shift_rater": ("worker",),
    "log_noise_rater": ("worker",), "cut_centre": ("attribute",), "cut_log_increment": ("attribute", "level"),
    "covariance": ("attribute", "attribute"), "shift_var": ("attribute",), "noise_var": ("attribute",),
    "shift_var_rater": (), "noise_var_rater": ()}


@functools.lru_cache(maxsize=8)
def _hermite(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights (for the weight ``exp(-x^2)``)."""
    return np.polynomial.hermite.hermgauss(nodes)


@dataclass
class _Data:
    item: torch.Tensor
    attr: torch.Tensor
    worker: torch.Tensor
    level: torch.Tensor
    has_lower: torch.Tensor
    has_upper: torch.Tensor
    lower_cut: torch.Tensor
    upper_cut: torch.Tensor
    n_items: int
    n_workers: int
    n_attributes: int
    n_levels: np.ndarray
    item_slot: torch.Tensor  # item * A + attribute, per rating
    worker_slot: torch.Tensor  # worker * A + attribute, per rating
    item_counts: np.ndarray  # [items, attributes]
    worker_counts: np.ndarray  # [workers, attributes]
    rated: torch.Tensor  # [workers, attributes] float: 1 where the rater rated the attribute
    cut_used: torch.Tensor  # [attributes, max_levels - 1] float: 1 where the column is one of the attribute's cuts


@dataclass(kw_only=True, eq=False, repr=False)
class MultiAttributeOrdinal(ConstructorSettings):
    r"""Multi-attribute cumulative-probit rater model with per-rater, per-attribute leniency and noise.

    Every rating ``y_n`` (a level ``0..L_a-1`` of attribute ``a``'s scale) by rater ``j`` of item ``i`` (a response,
    or a pair) is a cumulative-probit reading of the item's latent attribute ``\eta_{ia}`` (the multirater ordinal
    probit model of Johnson & Albert 1999; McCullagh 1980 for cumulative links):

    .. math::

        P(y_n \le k) = \Phi\Big(\frac{\gamma_{ak} - \eta_{ia} - b_{ja}}{\sigma_{ja}}\Big), \qquad
        \gamma_{a1} < \dots < \gamma_{a,L_a-1},

    with attribute-specific cut-points ``\gamma_a`` (ordered by construction: their centre plus exponentiated
    increments about it, so that the scale turned round is the same model; the log-increments' weak prior
    ``\mathcal N(\log(4 / (L_a - 1)), 1.5^2)`` lets the cut-points of any scale span about four units, a 0..4 scale's
    or a 0..100 slider's alike), and for rater ``j`` on attribute ``a``
    a *threshold shift* ``b_{ja}`` (leniency: positive reads the item higher) and a *noise*
    ``\sigma_{ja} = e^{s_{ja}}``. Partial pooling, across raters and across attributes (in the spirit of the
    hierarchical rater model of Patz, Junker, Johnson & Mariano 2002):

    .. math::

        \eta_i \sim \mathcal N_A(0, \Sigma), \qquad
        b_{ja} \sim \mathcal N(\beta_j, \tau_a^2),\ \beta_j \sim \mathcal N(0, \tau_\beta^2), \qquad
        s_{ja} \sim \mathcal N(\rho_j, \omega_a^2),\ \rho_j \sim \mathcal N(0, \omega_\rho^2).

    ``\Sigma`` is the covariance of one item's attributes (its correlation is ``attribute_correlation_``): an item
    rated on helpfulness but not on correctness borrows strength from the correlation. ``\beta_j`` is a rater's
    general leniency and ``\rho_j`` their general noisiness; ``b_{ja}``, ``s_{ja}`` deviate from them by attribute.
    The likelihood cannot tell a shift of every rater from a shift of the items, nor a change of every rater's noise
    from a change of scale: the shifts and log-noises are centred over the raters of each attribute, so the *typical*
    rater has no shift and noise 1, and the latent scale is in units of a typical rater's noise.

    Inference: variational EM (empirical Bayes). Each round

    1. *items*: each item's posterior ``q(\eta_i) = \mathcal N(m_i, S_i)``, the variational Gaussian
       approximation (Opper & Archambeau 2009): ``S_i^{-1} = \Sigma^{-1} + \mathrm{diag}_a(\sum_{n \in (i, a)}
       E_q[h_n])`` with ``h_n = -\partial^2_\eta \log p(y_n)`` in closed form, and Newton steps on ``m_i`` for
       ``\sum_n E_q[\log p(y_n \mid \eta_i)] + \log \mathcal N(m_i; 0, \Sigma)`` (concave: the ordinal probit is
       log-concave in the location); the expectations by Gauss-Hermite quadrature;
    2. *raters and cut-points*: ``b, \beta, s, \rho, \gamma`` maximise ``\sum_n E_q[\log p(y_n)]`` (Gauss-Hermite
       quadrature over each item's posterior) plus their log priors (L-BFGS). Integrating over the items, rather
       than plugging in their modes, is what keeps a rater's noise from collapsing to 0 when the items are free;
    3. *hyperparameters*: each attribute's variance ``\Sigma_{aa}`` by its marginal likelihood over the items
       (each item's ratings read as a Gaussian site on its latent), the correlation from the items' posterior moments
       ``\sum_i m_i m_i^\top + S_i`` (off-diagonal shrunk by ``I / (I + A + 2)``), and each variance of the rater
       effects from their squared deviations plus their curvature-based posterior variances (every variance under a
       prior flat above a small floor, so that ratings of pure noise give ``\Sigma_{aa}`` near 0),

    until nothing moves by more than ``tol`` (see the parameter).

    Outputs, in the rating scale of each attribute (what a *typical* rater would give on average: no shift,
    the geometric-mean noise of the raters of that attribute):

    .. math:: t_a(\eta) = \mathrm{low}_a + \sum_k \Phi\big((\eta - \gamma_{ak}) / \bar\sigma_a\big),

    with posterior mean and sd by Gauss-Hermite quadrature over the Gaussian posterior of ``\eta_{ia}`` and the 90%
    interval ``t_a(m \pm 1.645\, \mathrm{sd})`` (exact for a monotone ``t_a``). For two responses,
    P(A better on ``a``) = ``\Phi((m_{Aa} - m_{Ba}) / \sqrt{S_{A,aa} + S_{B,aa}})``; for a pair item with a
    preference attribute (scale ``-S..S``), P(A better) is the posterior probability that the pair's latent lies
    below the middle of its tie band.

    References
    ----------
    V. E. Johnson and J. H. Albert. *Ordinal Data Modeling*. Springer, 1999.
    P. McCullagh. Regression models for ordinal data. *JRSS B* 42 (1980), 109-142.
    M. Opper and C. Archambeau. The variational Gaussian approximation revisited. *Neural Computation* 21
    (2009), 786-792.
    R. J. Patz, B. W. Junker, M. S. Johnson and L. T. Mariano. The hierarchical rater model for rated test items and
    its application to large-scale educational assessment data. *J. Educ. Behav. Stat.* 27 (2002), 341-384.

    Example
    -------
    >>> from accord.datasets.synthetic_attributes import make_synthetic_attributes
    >>> data = make_synthetic_attributes(n_responses=400, n_raters=30, with_text=False)
    >>> model = MultiAttributeOrdinal().fit(data.judgments)
    >>> model.scores_.mean.shape
    (400, 5)

    Parameters
    ----------
    shift
        Learn each rater's threshold shift (leniency) per attribute; otherwise every rater reads like the typical
        one.
    noise
        Learn each rater's noise per attribute; otherwise every rater has the typical noise.
    correlated
        Learn the full covariance of an item's attributes (otherwise independent attributes).
    max_iter
        Most EM rounds (each: the hyperparameters, then the raters and cut-points, then the items' posteriors).
    inner_steps
        L-BFGS iterations of the raters' step per EM round.
    nodes
        Gauss-Hermite nodes of the expectation over each item's posterior in the raters' step.
    tol
        Stop when, in an EM round, no item mean moves by more than this many latent sds of its attribute, no
        cut-point by more than this many latent sds or typical rater noises (the larger), no correlation or log-sd
        of the attributes by more than this, and no rater-effect sd by more than this many units of a typical
        rater's noise.
    interval
        Probability of the reported central credible interval.
    device
        Torch device (``"cpu"``, ``"cuda"``).

    Fitted attributes
    -----------------
    scores_
        :class:`~accord.datasets.attribute_scores.AttributeScores`: per item and attribute the posterior mean, sd
        and interval on the rating scale, the number of ratings, and the latent posterior for comparisons.
    annotators_
        Per rater: ``shift`` / ``noise`` (general leniency ``beta_j``, noisiness ``exp(rho_j)``), per attribute
        ``shift_<a>`` (``b_ja``, latent units), ``noise_<a>`` (``sigma_ja`` relative to the typical rater),
        ``reliability_<a>`` (``Sigma_aa / (Sigma_aa + sigma_ja^2)``: the share of the rater's reading that is the
        item) and ``n_<a>``; ``reliability`` (their mean weighted by ``n_<a>``) and ``n_judgments``.
    attribute_correlation_
        ``[attributes x attributes]`` correlation of the true attributes of one item.
    cutpoints_
        Per attribute, the cut-points on the latent scale.
    population_
        The hyperparameters: ``sd`` of each attribute (``sqrt(Sigma_aa)``), ``shift_sd`` (``tau_a``),
        ``noise_sd`` (``omega_a``), ``typical_noise`` (``bar sigma_a``); and ``shift_sd_rater`` /
        ``noise_sd_rater`` (``tau_beta``, ``omega_rho``) in ``attrs``.
    n_iter_, converged_, objective_
        EM rounds run, whether the fit settled (``tol``) within ``max_iter`` rounds, and the final variational
        objective (expected log joint density plus the entropy of the items' posteriors).
    """

    method: ClassVar[str] = "multi-attribute-ordinal"

    shift: bool = True
    noise: bool = True
    correlated: bool = True
    max_iter: int = 100
    inner_steps: int = 10
    nodes: int = 3
    tol: float = 0.01
    interval: float = INTERVAL
    device: str = "cpu"

    def __post_init__(self) -> None:
        # checked here, so that the constructor and set_params (which builds a fresh instance) refuse a bad setting
        # at once, naming it; the device is checked at the fit (whether torch can use it depends on the machine)
        self._check_values()

    # -- fitting --------------------------------------------------------------------------------------------

    def fit(self, judgments: pd.DataFrame) -> "MultiAttributeOrdinal":
        """Fit on a multi-attribute table (see :mod:`accord.datasets.attributes`)."""
        self._check_settings()
        info = checked_info(judgments)
        table = judgments if info and info.get("form") == ATTRIBUTE_FORM else validate_attributes(judgments)
        codes = encode_attributes(table)
        # before the fit: an attribute 'judgments' gave annotators_ its n_judgments, replaced by the total at the end
        refuse_shared_columns(self._annotator_columns(codes.attribute_names), "annotators_")
        data = self._tensors(codes)
        once = data.item_counts.max(axis=0, initial=0) < 2  # per attribute: no item rated twice on it
        if once.any():
            # one rating an item (gold labels): nothing tells a rater's noise, so each rating is read as one typical
            # rater's and shrunk toward its attribute's mean (UKPConvArg2: P(chosen) 0.69-0.78 for a gold 1.0); per
            # attribute, as gold labels of one attribute beside crowd ratings of another are shrunk as much
            names = [a for a, single in zip(codes.attribute_names, once) if single]
            where = ("an attribute" if once.all() else
                     f"the attribute{'s' if len(names) > 1 else ''} {', '.join(repr(a) for a in names)}")
            warnings.warn(f"{type(self).__name__}: no item is rated twice on {where}, so the ratings cannot tell "
                          f"how noisy a rater is and each is shrunk toward its attribute's mean; for gold labels, "
                          f"method attribute-mean keeps them as given", UserWarning, stacklevel=2)
        # the EM runs on the ratings in id order (items, raters and attributes numbered by their ids and names), its
        # result mapped back to the codes: in the rows' order its sums and the raters' L-BFGS rounded otherwise, the
        # path drifted (1e-3 in a mean rating after 12 rounds), and at a loose tol the round it stopped at could
        # differ too (0.012)
        ordered, ranks = _in_id_order(codes)
        mean, covariance, params, hyper, rounds, converged = self._em(self._tensors(ordered))
        mean, covariance, params, hyper = _to_codes(ranks, mean, covariance, params, hyper)
        self._summarise(codes, data, mean, covariance, params, hyper)
        self.n_iter_ = rounds
        self.converged_ = converged
        self.objective_ = float(self._expected_log_joint(mean, covariance, params, hyper, data))
        return self

    def _em(self, data: _Data) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor],
                                       int, bool]:
        """The variational EM from the moments' start: ``(item means, item covariances, parameters,
        hyperparameters, rounds run, whether it settled within tol)``."""
        mean, params, start_variance = self._init_params(data)
        hyper = self._init_hyper(mean, start_variance, data)
        covariance = self._item_step(mean, hyper["covariance"].expand(data.n_items, -1, -1), params, hyper, data)
        converged, rounds = False, 0
        for rounds in range(1, self.max_iter + 1):
            before = self._watched(mean, params, hyper, data)
            hyper = self._prior_step(mean, covariance, params, hyper, data)
            self._rater_step(mean, covariance, params, hyper, data)
            covariance = self._item_step(mean, covariance, params, hyper, data)
            after = self._watched(mean, params, hyper, data)
            if max(float((after[k] - before[k]).abs().max()) for k in after) < self.tol:
                converged = True
                break
        if not (torch.isfinite(mean).all() and torch.isfinite(covariance).all()):
            raise FitError(f"{self.method}: the fit diverged (non-finite latent values)")
        return mean, covariance, params, hyper, rounds, converged

    def _watched(self, mean: torch.Tensor, params: dict[str, torch.Tensor], hyper: dict[str, torch.Tensor],
                 data: _Data) -> dict[str, torch.Tensor]:
        """What convergence is judged on, each in units of its attribute's latent sd: the items' means, the
        cut-points (or in units of a typical rater's noise, where larger) and the covariance; and the sds of the
        rater effects (in units of a typical rater's noise)."""
        sd = torch.diagonal(hyper["covariance"]).sqrt()
        cuts = self.cutpoints(params, data)
        # a cut-point's move matters against the spread of the readings it cuts, at least a typical rater's noise:
        # in units of an attribute's latent sd alone, one with no spread between items (ratings of noise) kept its
        # cut-points' slow drift above tol and ran to max_iter
        unit = sd.clamp(min=1.0).unsqueeze(-1).expand(-1, cuts.shape[1])
        watched = {"mean": mean / sd, "cuts": cuts / unit,
                   "covariance": hyper["covariance"] / torch.outer(sd, sd), "log_sd": sd.log()}
        for name in ("shift_var", "shift_var_rater", "noise_var", "noise_var_rater"):
            watched[name] = hyper[name].sqrt()
        return watched

    def _check_settings(self) -> None:
        self._check_values()  # again, for a setting assigned directly
        check_device(self.device)

    def _check_values(self) -> None:
        check_interval(self.interval)
        check_positive(self, "tol", zero=True)  # NaN (no change is below it) ran every fit to max_iter
        for name in ("max_iter", "inner_steps", "nodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AccordError(f"{name} must be an integer >= 1, got {value!r}")

    def _tensors(self, codes: AttributeCodes) -> _Data:
        device = torch.device(self.device)
        n_levels = codes.n_levels
        level = codes.levels
        top = n_levels[codes.attributes] - 1
        max_cut = int(n_levels.max()) - 2  # index of the last cut-point column
        as_long = lambda x: torch.as_tensor(np.ascontiguousarray(x), dtype=torch.long, device=device)  # noqa: E731
        item_counts = codes.counts()
        flat = codes.workers * codes.n_attributes + codes.attributes
        worker_counts = np.bincount(flat, minlength=codes.n_workers * codes.n_attributes).reshape(
            codes.n_workers, codes.n_attributes)
        return _Data(
            item=as_long(codes.items), attr=as_long(codes.attributes), worker=as_long(codes.workers),
            level=as_long(level),
            has_lower=torch.as_tensor(level > 0, device=device),
            has_upper=torch.as_tensor(level < top, device=device),
            lower_cut=as_long(np.clip(level - 1, 0, max_cut)), upper_cut=as_long(np.clip(level, 0, max_cut)),
            item_slot=as_long(codes.items * codes.n_attributes + codes.attributes),
            worker_slot=as_long(flat),
            n_items=codes.n_items, n_workers=codes.n_workers, n_attributes=codes.n_attributes,
            n_levels=n_levels, item_counts=item_counts, worker_counts=worker_counts,
            rated=torch.as_tensor(worker_counts > 0, dtype=torch.float64, device=device),
            cut_used=torch.as_tensor(np.arange(max(max_cut + 1, 1))[None, :] < (n_levels - 1)[:, None],
                                     dtype=torch.float64, device=device),
        )

    def _init_params(self, data: _Data) -> tuple[torch.Tensor, dict[str, torch.Tensor], np.ndarray]:
        """A start near the answer, from moments of the ratings (EM converges linearly from wherever it starts).

        Per attribute, the share of rating variance between items (an intraclass correlation ``r``) gives the
        latent variance in units of the noise, ``v = r / (1 - r)``; the item means are the standardised mean ratings
        times ``sqrt(v)`` shrunk by their reliability, and the cut-points the probit quantiles of the marginal level
        frequencies under ``eta + noise ~ N(0, v + 1)``. Rater effects start at 0. Returns the item means, the
        parameters and the start's latent variances ``v``.
        """
        dtype = torch.float64
        n_attr, max_levels = data.n_attributes, int(data.n_levels.max())
        level = data.level.cpu().numpy().astype(float)
        attr = data.attr.cpu().numpy()
        slot = data.item_slot.cpu().numpy()
        counts = data.item_counts.ravel().astype(float)
        sums = np.bincount(slot, weights=level, minlength=counts.size)
        means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        within = (level - means[slot]) ** 2
        means = means.reshape(data.n_items, n_attr)
        eta = np.zeros((data.n_items, n_attr))
        centre = np.zeros(n_attr)
        increments = np.zeros((n_attr, max(max_levels - 2, 0)))
        start_variance = np.ones(n_attr)
        for a in range(n_attr):  # one small loop over attributes, not over ratings
            rated = data.item_counts[:, a] > 0
            values = means[rated, a]
            mine = attr == a
            degrees = (data.item_counts[rated, a] - 1).sum()
            total = level[mine].var()
            noise_var = within[mine].sum() / degrees if degrees > 0 else total / 2
            share = float(np.clip(1.0 - noise_var / total, 0.05, 0.95)) if total > 0 else 0.5
            variance = share / (1.0 - share)
            start_variance[a] = variance
            spread = values.std() if rated.sum() > 1 and values.std() > 0 else 1.0
            reliability = variance / (variance + 1.0 / np.maximum(data.item_counts[rated, a], 1))
            eta[rated, a] = (values - values.mean()) / spread * math.sqrt(variance) * reliability
            n_levels = int(data.n_levels[a])
            frequency = np.bincount(level[mine].astype(int), minlength=n_levels) + 0.5
            cumulative = np.cumsum(frequency)[:-1] / frequency.sum()
            cuts = math.sqrt(variance + 1.0) * ndtri(np.clip(cumulative, 1e-3, 1 - 1e-3))
            # spread out ties; centred, so that the start of the scale turned round is this start turned round
            cuts = np.maximum.accumulate(cuts + 1e-3 * (np.arange(len(cuts)) - (len(cuts) - 1) / 2))
            centre[a] = cuts.mean()
            if n_levels > 2:
                increments[a, : n_levels - 2] = np.log(np.maximum(np.diff(cuts), 0.05))
        device = torch.device(self.device)
        tensor = lambda x: torch.as_tensor(x, dtype=dtype, device=device).clone()  # noqa: E731
        params = {"cut_centre": tensor(centre), "cut_log_increment": tensor(increments)}
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        if self.shift:
            params["shift"] = zeros(data.n_workers, n_attr)
            params["shift_rater"] = zeros(data.n_workers)
        if self.noise:
            params["log_noise"] = zeros(data.n_workers, n_attr)
            params["log_noise_rater"] = zeros(data.n_workers)
        return tensor(eta), params, start_variance

    def _init_hyper(self, mean: torch.Tensor, start_variance: np.ndarray, data: _Data) -> dict[str, torch.Tensor]:
        """The covariance from the start's variances and the correlation of the items' mean ratings."""
        n_attr = data.n_attributes
        eye = torch.eye(n_attr, dtype=mean.dtype, device=mean.device)
        sd = torch.as_tensor(np.sqrt(start_variance), dtype=mean.dtype, device=mean.device)
        correlation = torch.corrcoef(mean.T).reshape(n_attr, n_attr) if data.n_items > 2 else eye.clone()
        correlation = torch.nan_to_num(correlation, nan=0.0).fill_diagonal_(1.0)
        covariance = 0.9 * correlation * torch.outer(sd, sd) + 0.1 * torch.diag(sd * sd)
        if not self.correlated:
            covariance = torch.diag(torch.diagonal(covariance))
        full = lambda value: torch.full((n_attr,), value, dtype=mean.dtype, device=mean.device)  # noqa: E731
        scalar = lambda value: torch.tensor(value, dtype=mean.dtype, device=mean.device)  # noqa: E731
        return {"covariance": covariance, "shift_var": full(0.1), "shift_var_rater": scalar(0.1),
                "noise_var": full(0.05), "noise_var_rater": scalar(0.05)}

    # -- the model ------------------------------------------------------------------------------------------

    @staticmethod
    def cutpoints(params: dict[str, torch.Tensor], data: _Data) -> torch.Tensor:
        """``[attributes, max_levels - 1]`` ordered cut-points (columns past an attribute's last are unused): the
        centre of the attribute's cut-points plus exponentiated increments about it. The centre, not the first cut,
        is the free location: the scale turned round (a side swap of pairs) maps it to minus itself and reverses
        the increments, so the fit of the turned table is this fit turned round."""
        steps = params["cut_log_increment"].exp()
        # the first offset is a column of its own: ``steps[:, :1]`` has no column when every scale has 2 levels
        # (no increments), which left no cut-point at all (an IndexError on a table of 0/1 ratings only)
        first = steps.new_zeros((steps.shape[0], 1))
        offsets = torch.cat([first, torch.cumsum(steps, dim=-1)], dim=-1)
        used = data.cut_used
        middle = (offsets * used).sum(-1) / used.sum(-1).clamp(min=1.0)
        return params["cut_centre"].unsqueeze(-1) + offsets - middle.unsqueeze(-1)

    @staticmethod
    def centred(values: torch.Tensor, data: _Data) -> torch.Tensor:
        """``[workers, A]`` rater effects minus their mean over the raters of each attribute.

        The likelihood cannot tell a common shift of every rater from a shift of the items (nor a common change of
        every rater's noise from a change of scale): centring makes the typical rater exactly the one with no
        shift and the geometric-mean noise of 1, which fixes the latent scale's location and unit.
        """
        rated = data.rated
        mean = (values * rated).sum(0) / rated.sum(0).clamp(min=1)
        return values - mean

    def _rater_terms(self, params: dict[str, torch.Tensor], data: _Data) -> tuple[torch.Tensor, ...]:
        """Per rating: the rater's shift and log-noise, and the cut-points below and above the rating's level."""
        cuts = self.cutpoints(params, data)
        if self.shift:
            shift = self.centred(params["shift"], data)[data.worker, data.attr]
        else:
            shift = torch.zeros(len(data.level), dtype=cuts.dtype, device=cuts.device)
        if self.noise:
            log_noise = self.centred(params["log_noise"], data)[data.worker, data.attr]
        else:
            log_noise = torch.zeros_like(shift)
        return shift, log_noise, cuts[data.attr, data.lower_cut], cuts[data.attr, data.upper_cut]

    def _rater_log_prior(self, params: dict[str, torch.Tensor], hyper: dict[str, torch.Tensor],
                         data: _Data) -> torch.Tensor:
        total = -0.5 * (params["cut_centre"] / _CUT_CENTRE_SD).pow(2).sum()
        increments = params["cut_log_increment"]
        levels = torch.as_tensor(data.n_levels, dtype=increments.dtype, device=increments.device)
        typical = torch.log(_CUT_SPAN / (levels - 1.0).clamp_min(1.0)).unsqueeze(-1)  # per attribute
        total = total - 0.5 * ((increments - typical) / _CUT_INCREMENT_SD).pow(2).sum()
        for kind, name in (("shift", "shift"), ("noise", "log_noise")):
            if getattr(self, kind):
                deviation = params[name] - params[f"{name}_rater"].unsqueeze(-1)
                total = total - 0.5 * (deviation ** 2 / hyper[f"{kind}_var"]).sum()
                total = total - 0.5 * (params[f"{name}_rater"] ** 2).sum() / hyper[f"{kind}_var_rater"]
        return total

    def _quadrature(self, mean: torch.Tensor, covariance: torch.Tensor, shift: torch.Tensor, data: _Data
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gauss-Hermite points ``[ratings, nodes]`` of each rating's location under its item's posterior, and the
        weights (summing to 1)."""
        nodes, weights = (torch.as_tensor(v, dtype=mean.dtype, device=mean.device) for v in _hermite(self.nodes))
        centre = mean[data.item, data.attr] + shift
        sd = torch.diagonal(covariance, dim1=-2, dim2=-1)[data.item, data.attr].clamp(min=0).sqrt()
        location = centre.unsqueeze(-1) + math.sqrt(2.0) * sd.unsqueeze(-1) * nodes
        return location, weights / math.sqrt(math.pi)

    def _expected_loglik(self, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
                         data: _Data) -> torch.Tensor:
        """Per rating, ``E_q[log p(y_n)]`` over the item's Gaussian posterior (Gauss-Hermite quadrature)."""
        shift, log_noise, lower, upper = self._rater_terms(params, data)
        location, weights = self._quadrature(mean, covariance, shift, data)
        loglik = ordinal_probit_loglik(location, log_noise.unsqueeze(-1), lower.unsqueeze(-1),
                                       upper.unsqueeze(-1), data.has_lower.unsqueeze(-1),
                                       data.has_upper.unsqueeze(-1))
        return loglik @ weights

    def _expected_log_joint(self, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
                            hyper: dict[str, torch.Tensor], data: _Data) -> torch.Tensor:
        """The variational objective up to constants: expected log-likelihood, log priors and q's entropy."""
        precision = torch.linalg.inv(hyper["covariance"])
        prior = -0.5 * ((mean @ precision) * mean).sum() - 0.5 * (precision * covariance.sum(0)).sum()
        prior = prior - 0.5 * data.n_items * torch.logdet(hyper["covariance"])
        entropy = 0.5 * torch.logdet(covariance).sum()
        loglik = self._expected_loglik(mean, covariance, params, data).sum()
        return loglik + prior + entropy + self._rater_log_prior(params, hyper, data)

    # -- the three EM steps ---------------------------------------------------------------------------------

    def _item_step(self, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
                   hyper: dict[str, torch.Tensor], data: _Data, max_rounds: int = 50) -> torch.Tensor:
        """Each item's Gaussian posterior ``N(m_i, S_i)``, updated in place (``mean``) and returned (``S``).

        The variational Gaussian fixed point (Opper & Archambeau 2009): ``S_i^{-1} = Sigma^{-1} +
        diag(E_q[h])`` and a Newton step on ``m_i`` for ``E_q[log p(y | eta_i)] + log N(m_i; 0, Sigma)``, with
        the expectations by Gauss-Hermite quadrature over each rating's marginal. Unlike Laplace's approximation at
        the mode, the expectations see the whole posterior: an item rated at the top of the scale by everyone has
        a skewed posterior whose mean lies above its mode. The expected log-likelihood is concave in ``m`` (the
        ordinal probit is log-concave), and a step that lowers an item's objective is halved.
        """
        precision = torch.linalg.inv(hyper["covariance"])
        shift, log_noise, lower, upper = (t.detach().unsqueeze(-1) for t in self._rater_terms(params, data))
        bounds = (log_noise, lower, upper, data.has_lower.unsqueeze(-1), data.has_upper.unsqueeze(-1))
        shape = (data.n_items, data.n_attributes)
        size = data.n_items * data.n_attributes

        def evaluate(values: torch.Tensor, cov: torch.Tensor) -> tuple[torch.Tensor, ...]:
            location, weights = self._quadrature(values, cov, shift.squeeze(-1), data)
            rating = ordinal_probit_derivatives(location, *bounds)
            per_item = _scatter(rating["loglik"] @ weights, data.item, data.n_items)
            per_item = per_item - 0.5 * ((values @ precision) * values).sum(1)
            gradient = _scatter(rating["grad_location"] @ weights, data.item_slot, size).reshape(shape)
            information = _scatter(rating["info_location"] @ weights, data.item_slot, size).reshape(shape)
            return per_item, gradient - values @ precision, information.clamp(min=0)

        cov = covariance
        objective, gradient, information = evaluate(mean, cov)
        for _ in range(max_rounds):
            previous = torch.diagonal(cov, dim1=-2, dim2=-1)
            cov = torch.linalg.inv(precision + torch.diag_embed(information))
            objective, gradient, information = evaluate(mean, cov)
            step = (cov @ gradient.unsqueeze(-1)).squeeze(-1)
            moved = (torch.diagonal(cov, dim1=-2, dim2=-1) - previous).abs().max()
            if float(step.abs().max()) < 1e-5 and float(moved) < 1e-5:
                break
            scale = torch.ones(data.n_items, 1, dtype=mean.dtype, device=mean.device)
            for _ in range(6):
                trial = mean + scale * step
                new_objective, new_gradient, new_information = evaluate(trial, cov)
                worse = new_objective < objective - 1e-10
                if not bool(worse.any()):
                    break
                scale = torch.where(worse.unsqueeze(-1), 0.5 * scale, scale)
            keep = (new_objective >= objective - 1e-10).unsqueeze(-1)
            mean.copy_(torch.where(keep, trial, mean))
            objective = torch.where(keep.squeeze(-1), new_objective, objective)
            gradient = torch.where(keep, new_gradient, gradient)
            information = torch.where(keep, new_information, information)
        return torch.linalg.inv(precision + torch.diag_embed(information))

    def _rater_step(self, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
                    hyper: dict[str, torch.Tensor], data: _Data) -> None:
        """Raters' shifts and noises and the cut-points: maximise the expected log-likelihood under the items'
        posteriors plus the log priors (L-BFGS, warm-started).

        Integrating over each item's uncertainty, rather than plugging in its mode, is what keeps a rater's noise
        away from 0: with the items' values free, a rater with few ratings could otherwise look noiseless.
        """
        # Diagonal preconditioning: each parameter is optimised in units of its rough posterior sd (one over the
        # root of the number of ratings that inform it), so that a cut-point informed by every rating of an
        # attribute and a rater with ten ratings move at comparable speeds.
        root = {name: self._information_root(name, data) for name in params}
        leaves = {name: (params[name] * root[name]).detach().requires_grad_(True) for name in params}
        optimiser = torch.optim.LBFGS(list(leaves.values()), lr=1.0, max_iter=self.inner_steps, history_size=20,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                      tolerance_change=1e-13)
        scale = 1.0 / max(len(data.level), 1)

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            current = {name: leaves[name] / root[name] for name in leaves}
            objective = self._expected_loglik(mean, covariance, current, data).sum()
            loss = -(objective + self._rater_log_prior(current, hyper, data)) * scale
            loss.backward()
            return loss

        optimiser.step(closure)
        for name in params:
            params[name] = (leaves[name] / root[name]).detach()

    @staticmethod
    def _information_root(name: str, data: _Data) -> torch.Tensor:
        """Square root of (1 + the number of ratings informing each entry of parameter ``name``)."""
        as_tensor = lambda x: torch.as_tensor(np.sqrt(1.0 + x), dtype=torch.float64,  # noqa: E731
                                              device=data.item.device)
        per_attribute = data.item_counts.sum(0).astype(float)
        if name in ("shift", "log_noise"):
            return as_tensor(data.worker_counts.astype(float))
        if name in ("shift_rater", "log_noise_rater"):
            return as_tensor(data.worker_counts.sum(1).astype(float))
        if name == "cut_centre":
            return as_tensor(per_attribute)
        width = max(int(data.n_levels.max()) - 2, 0)
        return as_tensor(np.repeat(per_attribute[:, None], width, axis=1))

    def _prior_step(self, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
                    hyper: dict[str, torch.Tensor], data: _Data) -> dict[str, torch.Tensor]:
        """M-step of the hyperparameters from the posterior moments.

        ``Sigma`` from the items' Gaussian posteriors (see :meth:`_item_covariance`); each variance of the rater
        effects in closed form from their squared deviations plus a curvature-based posterior variance (the
        expected log-likelihood's information about ``b_ja`` and ``s_ja``; a deviation ``b_ja - beta_j`` also
        carries the variance of ``beta_j``), with a prior flat above a small floor.
        """
        updated = {"covariance": self._item_covariance(mean, covariance, hyper, data)}
        information = self._rater_information(mean, covariance, params, data)
        for kind, name in (("shift", "shift"), ("noise", "log_noise")):
            if not getattr(self, kind):
                updated[f"{kind}_var"] = hyper[f"{kind}_var"]
                updated[f"{kind}_var_rater"] = hyper[f"{kind}_var_rater"]
                continue
            value, rater = params[name], params[f"{name}_rater"]
            rated = data.rated
            variance = hyper[f"{kind}_var"]
            info = information[kind].clamp(min=0.0)
            # a rater's general term is informed by each attribute through b_ja (or s_ja)
            through = rated / (variance + 1.0 / info.clamp(min=1e-12))
            rater_var = 1.0 / (1.0 / hyper[f"{kind}_var_rater"] + through.sum(1))
            # the deviation d = b_ja - beta_j given beta_j has variance 1 / (info + 1 / tau^2) and mean pulled
            # towards the data by info tau^2 / (1 + info tau^2); beta_j is uncertain too, so by the law of total
            # variance that pull's square times beta_j's variance adds to d's. Without it the update of tau_a^2
            # had a fixed point at 0 that it fell into where the general term took one attribute's shifts whole
            # (tests/test_multi_attribute_truth.py: per-attribute spreads near 0 where the truth was not)
            pull = info * variance / (1.0 + info * variance)
            posterior_var = 1.0 / (info + 1.0 / variance) + pull ** 2 * rater_var.unsqueeze(-1)
            squares = ((value - rater.unsqueeze(-1)) ** 2 + posterior_var) * rated
            updated[f"{kind}_var"] = _variance_mode(squares.sum(0), rated.sum(0))
            active = (rated.sum(1) > 0).to(mean.dtype)
            updated[f"{kind}_var_rater"] = _variance_mode(((rater ** 2 + rater_var) * active).sum(), active.sum())
        return updated

    def _item_covariance(self, mean: torch.Tensor, covariance: torch.Tensor, hyper: dict[str, torch.Tensor],
                         data: _Data) -> torch.Tensor:
        """``Sigma``: each attribute's variance by its marginal likelihood over the items, the correlation from the
        items' posterior moments.

        The ratings of item ``i`` enter its posterior as a Gaussian site on ``eta_i``: precision ``lambda_i`` (the
        posterior's precision less the prior's) at the mean ``z_i`` that makes prior times site the posterior. Then
        ``z_ia ~ N(0, Sigma_aa + 1 / lambda_ia)`` over the items rated on ``a``, and ``Sigma_aa`` maximises that
        likelihood under the rater variances' prior, flat above a small floor (a few steps of Fisher scoring in
        ``log Sigma_aa``). The EM moment update with an inverse-Wishart prior of ``A + 2`` pseudo-items at the
        identity kept ratings of pure noise at a variance near ``((A + 2) / (I h^2))^(1/3)``, not 0 (``h``: the
        information of one item's ratings; 0.11 at 100 responses of 8 ratings, 0.04 at 2,000): near 0 the
        likelihood is flat to first order and the pseudo-items' ``-1 / Sigma`` term pushed it up, so
        pairs of noise got weight 0.35 and P(chosen) up to 0.98; without them the EM's moment update crept to 0
        over hundreds of rounds, where the marginal likelihood gets there at once
        (tests/test_multi_attribute.py::TestRaterModel::test_pure_noise_ratings_give_no_signal). The correlation's
        off-diagonal keeps the old prior's shrinkage towards 0, ``I / (I + A + 2)``.
        """
        n_attr = data.n_attributes
        precision = torch.linalg.inv(hyper["covariance"])  # the prior the items' posteriors were fitted under
        site = torch.diagonal(torch.linalg.inv(covariance), dim1=-2, dim2=-1) - torch.diagonal(precision)
        rated = torch.as_tensor(data.item_counts > 0, device=mean.device) & (site > 1e-12)
        site = torch.where(rated, site, torch.ones_like(site))
        spread = 1.0 / site  # the site's variance
        square = torch.where(rated, (mean + (mean @ precision) * spread) ** 2, torch.zeros_like(site))
        weight = rated.to(mean.dtype)
        log_var = torch.diagonal(hyper["covariance"]).clamp(min=_VARIANCE_FLOOR).log()
        # a fixed number of rounds from the last value, each vectorised over items and attributes: a stop on a
        # threshold let rounding (the items' order) change how many ran, and the fit of the same table shuffled
        for _ in range(30):
            var = log_var.exp()
            total = var.unsqueeze(0) + spread
            gradient = var * ((0.5 * (square - total) / total ** 2 * weight).sum(0) + _VARIANCE_FLOOR / var ** 2)
            information = var ** 2 * (0.5 / total ** 2 * weight).sum(0) + _VARIANCE_FLOOR / var
            log_var = log_var + (gradient / information).clamp(-2.0, 2.0)
        # with no item rated twice on an attribute its single ratings tell only the cut-points over sqrt(1 + Sigma_aa),
        # not Sigma_aa: there the prior decides, the old one of A + 2 pseudo-items at 1 (without it, UKPConvArg2's
        # gold labels drifted along that ridge for 100 rounds to variances of 0.05-0.29, P(chosen) 0.60-0.66)
        once = torch.as_tensor(data.item_counts.max(axis=0, initial=0) < 2, device=mean.device)
        pseudo = n_attr + 2.0
        moment = (torch.diagonal(mean.T @ mean + covariance.sum(0)) + pseudo) / (data.n_items + pseudo)
        sd = torch.where(once, moment, log_var.exp()).sqrt()
        if not self.correlated:
            return torch.diag(sd ** 2)
        moments = mean.T @ mean + covariance.sum(0)
        root = torch.diagonal(moments).clamp(min=1e-300).sqrt()
        shrink = data.n_items / (data.n_items + n_attr + 2.0)
        eye = torch.eye(n_attr, dtype=mean.dtype, device=mean.device)
        correlation = shrink * moments / torch.outer(root, root) + (1.0 - shrink) * eye
        correlation = correlation * (1.0 - eye) + eye
        return correlation * torch.outer(sd, sd)

    def _rater_information(self, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
                           data: _Data) -> dict[str, torch.Tensor]:
        """``[workers, A]`` observed information of the expected log-likelihood about each ``b_ja`` and ``s_ja``."""
        shift, log_noise, lower, upper = self._rater_terms(params, data)
        location, weights = self._quadrature(mean, covariance, shift, data)
        rating = ordinal_probit_derivatives(location, log_noise.unsqueeze(-1), lower.unsqueeze(-1),
                                            upper.unsqueeze(-1), data.has_lower.unsqueeze(-1),
                                            data.has_upper.unsqueeze(-1))
        size = data.n_workers * data.n_attributes
        shape = (data.n_workers, data.n_attributes)
        return {"shift": _scatter(rating["info_location"] @ weights, data.worker_slot, size).reshape(shape),
                "noise": _scatter(rating["info_log_noise"] @ weights, data.worker_slot, size).reshape(shape)}

    # -- results --------------------------------------------------------------------------------------------

    def _summarise(self, codes: AttributeCodes, data: _Data, mean: torch.Tensor, covariance: torch.Tensor,
                   params: dict[str, torch.Tensor], hyper: dict[str, torch.Tensor]) -> None:
        names = list(codes.attribute_names)
        covariance = covariance.cpu().numpy()
        eta = mean.cpu().numpy()
        cuts = self.cutpoints(params, data).cpu().numpy()
        rated = data.worker_counts > 0
        if self.noise:
            log_noise = self.centred(params["log_noise"], data).cpu().numpy()
            with np.errstate(invalid="ignore"):
                typical_log = np.where(rated, log_noise, 0.0).sum(0) / np.maximum(rated.sum(0), 1)
        else:
            log_noise = np.zeros((data.n_workers, data.n_attributes))
            typical_log = np.zeros(data.n_attributes)
        typical = np.exp(typical_log)
        sd = np.sqrt(np.einsum("iaa->ia", covariance))
        z = float(ndtri(0.5 + self.interval / 2))
        nodes, weights = _hermite(32)
        mean = np.empty_like(eta)
        spread = np.empty_like(eta)
        lower = np.empty_like(eta)
        upper = np.empty_like(eta)
        for a in range(data.n_attributes):  # a loop over the few attributes; everything inside is vectorized
            active = cuts[a, : int(data.n_levels[a]) - 1]
            scale = lambda x, _c=active, _s=typical[a]: ndtr((x[..., None] - _c) / _s).sum(-1)  # noqa: E731
            points = eta[:, a, None] + math.sqrt(2.0) * sd[:, a, None] * nodes[None, :]
            values = scale(points)
            first = values @ weights / math.sqrt(math.pi)
            second = (values ** 2) @ weights / math.sqrt(math.pi)
            mean[:, a] = codes.lows[a] + first
            spread[:, a] = np.sqrt(np.maximum(second - first ** 2, 0.0))
            lower[:, a] = codes.lows[a] + scale(eta[:, a] - z * sd[:, a])
            upper[:, a] = codes.lows[a] + scale(eta[:, a] + z * sd[:, a])
        frame = lambda values: pd.DataFrame(values, index=codes.item_index, columns=names)  # noqa: E731
        scales = {name: (int(codes.lows[a]), int(codes.highs[a])) for a, name in enumerate(names)}
        neutral = pd.Series(np.nan, index=names, dtype=float)
        if codes.item_kind == "pair":
            for a, name in enumerate(names):
                if is_preference_scale(scales[name]):
                    middle = int(codes.highs[a])  # the tie level's index on 0..2S
                    neutral[name] = 0.5 * (cuts[a, middle - 1] + cuts[a, middle])
        self.scores_ = AttributeScores(
            mean=frame(mean), sd=frame(spread), lower=frame(lower), upper=frame(upper),
            n=frame(data.item_counts.astype(np.int64)), latent_mean=frame(eta), latent_cov=covariance,
            scales=scales, item_kind=codes.item_kind, method=self.method, neutral=neutral,
            prior_cov=hyper["covariance"].cpu().numpy(), interval=self.interval,
        )
        self._annotators(codes, data, params, hyper, log_noise, typical_log)
        sigma = hyper["covariance"].cpu().numpy()
        attribute_sd = np.sqrt(np.diag(sigma))
        self.attribute_correlation_ = pd.DataFrame(sigma / np.outer(attribute_sd, attribute_sd), index=names,
                                                   columns=names)
        self.cutpoints_ = pd.DataFrame(
            [cuts[a, : int(data.n_levels[a]) - 1].tolist() + [np.nan] * (cuts.shape[1] - int(data.n_levels[a]) + 1)
             for a in range(data.n_attributes)],
            index=pd.Index(names, name="attribute"),
            columns=[f"cut_{k + 1}" for k in range(cuts.shape[1])],
        )
        population = pd.DataFrame({
            "sd": attribute_sd,
            "shift_sd": np.sqrt(hyper["shift_var"].cpu().numpy()) if self.shift else 0.0,
            "noise_sd": np.sqrt(hyper["noise_var"].cpu().numpy()) if self.noise else 0.0,
            "typical_noise": typical,
        }, index=pd.Index(names, name="attribute"))
        population.attrs["shift_sd_rater"] = float(hyper["shift_var_rater"].sqrt()) if self.shift else 0.0
        population.attrs["noise_sd_rater"] = float(hyper["noise_var_rater"].sqrt()) if self.noise else 0.0
        self.population_ = population

    def _annotator_columns(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """The columns :meth:`_annotators` writes, each with what it holds, in order."""
        columns = [(c, f"every attribute's {c}") for c, on in (("shift", self.shift), ("noise", self.noise)) if on]
        for name in names:
            kinds = ("shift", "noise", "reliability", "n") if self.shift else ("noise", "reliability", "n")
            columns += [(f"{kind}_{name}", f"attribute '{name}' ({kind}_<attribute>)") for kind in kinds]
        return columns + [("reliability", "every attribute's reliability"),
                          ("n_judgments", "the judgments of all attributes together")]

    def _annotators(self, codes: AttributeCodes, data: _Data, params: dict[str, torch.Tensor],
                    hyper: dict[str, torch.Tensor], log_noise: np.ndarray, typical_log: np.ndarray) -> None:
        names = list(codes.attribute_names)
        counts = data.worker_counts
        variance = np.diag(hyper["covariance"].cpu().numpy())
        frame = pd.DataFrame(index=codes.worker_index)
        shift = self.centred(params["shift"], data).cpu().numpy() if self.shift else None
        if self.shift:
            frame["shift"] = params["shift_rater"].cpu().numpy()
        if self.noise:
            frame["noise"] = np.exp(params["log_noise_rater"].cpu().numpy())
        reliability = variance[None, :] / (variance[None, :] + np.exp(2 * log_noise))
        for a, name in enumerate(names):
            if self.shift:
                frame[f"shift_{name}"] = shift[:, a]
            frame[f"noise_{name}"] = np.exp(log_noise[:, a] - typical_log[a])
            frame[f"reliability_{name}"] = reliability[:, a]
            frame[f"n_{name}"] = counts[:, a]
        weights = counts.sum(1)
        frame["reliability"] = (reliability * counts).sum(1) / np.maximum(weights, 1)
        frame["n_judgments"] = weights
        self.annotators_ = frame

    def compare(self, a: Any, b: Any) -> pd.DataFrame:
        """P(response ``a[k]`` better than ``b[k]``) on each attribute (see :meth:`AttributeScores.compare`)."""
        self._check_fitted()
        return self.scores_.compare(a, b)

    def _check_fitted(self) -> None:
        if not hasattr(self, "scores_"):
            raise AccordError(f"{type(self).__name__} is not fitted yet: call fit(judgments) first")


@dataclass(frozen=True)
class _Ranks:
    """The new code of each item, rater and attribute code (their places among the sorted ids and names)."""

    items: np.ndarray
    workers: np.ndarray
    attributes: np.ndarray


def _in_id_order(codes: AttributeCodes) -> tuple[AttributeCodes, _Ranks]:
    """``codes`` with items, raters and attributes numbered in the order of their ids and names and the ratings
    sorted by item, attribute, rater and level (the same ratings as a set give one ``AttributeCodes``, whatever the
    order of their rows: :func:`~accord.models._data.in_id_order`'s rule), and the new code of each old one."""
    ranks = _Ranks(sorted_ranks(codes.item_index), sorted_ranks(codes.worker_index),
                   sorted_ranks(pd.Index(codes.attribute_names)))
    items, workers = ranks.items[codes.items], ranks.workers[codes.workers]
    attributes = ranks.attributes[codes.attributes]
    order = np.lexsort([codes.levels, workers, attributes, items])
    by_name = np.argsort(ranks.attributes)
    ordered = replace(codes, items=items[order], workers=workers[order], attributes=attributes[order],
                      levels=codes.levels[order], item_index=codes.item_index[np.argsort(ranks.items)],
                      worker_index=codes.worker_index[np.argsort(ranks.workers)],
                      attribute_names=tuple(np.asarray(codes.attribute_names, dtype=object)[by_name]),
                      lows=codes.lows[by_name], highs=codes.highs[by_name])
    return ordered, ranks


def _to_codes(ranks: _Ranks, mean: torch.Tensor, covariance: torch.Tensor, params: dict[str, torch.Tensor],
              hyper: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor],
                                                      dict[str, torch.Tensor]]:
    """The EM's result in id order (:func:`_in_id_order`) taken back to the codes: the items' and raters' rows and
    every attribute axis (:data:`_AXES`)."""
    index = {kind: torch.as_tensor(r, device=mean.device) for kind, r in
             (("item", ranks.items), ("worker", ranks.workers), ("attribute", ranks.attributes))}

    def back(value: torch.Tensor, axes: tuple[str, ...]) -> torch.Tensor:
        for dim, kind in enumerate(axes):
            value = value.index_select(dim, index[kind]) if kind in index else value
        return value

    return (back(mean, ("item", "attribute")), back(covariance, ("item", "attribute", "attribute")),
            {name: back(value, _AXES[name]) for name, value in params.items()},
            {name: back(value, _AXES[name]) for name, value in hyper.items()})


def _scatter(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sums of ``values`` by ``index`` (a bincount that keeps the dtype and device)."""
    return torch.zeros(size, dtype=values.dtype, device=values.device).index_add_(0, index, values)


def _variance_mode(sum_of_squares: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The variance ``v`` that maximises ``-n/2 log v - (SS + 2 floor) / (2 v)``: the expected log density of ``n``
    effects with expected sum of squares ``SS`` under the prior ``exp(-floor / v)``, ``(SS + 2 floor) / n``."""
    return (2 * _VARIANCE_FLOOR + sum_of_squares) / count.clamp(min=1)
