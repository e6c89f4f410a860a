"""Hierarchical Dawid-Skene: annotator confusions drawn from a learned population distribution (partial pooling)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

from accord.datasets import AccordError, Encoded
from accord.models._data import PaddedJudgments
from accord.models._vb import VBResult, fit_population_prior, vb_dawid_skene
from accord.models.base import PyroRaterModel, RaterModel, check_positive
from accord.models.confusion import TINY, ConfusionModel, enumerated_likelihood


def _offdiagonal_index(k: int, device: torch.device) -> torch.Tensor:
    """``[K, K - 1]``: for each true class, the reported classes that are errors, in order."""
    full = torch.arange(k, device=device).expand(k, k)
    keep = ~torch.eye(k, dtype=torch.bool, device=device)
    return full[keep].reshape(k, k - 1)


def hierarchical_log_confusion(mu: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor,
                               offdiag: torch.Tensor) -> torch.Tensor:
    """``[..., W, K, L]`` log confusions from population ``mu``, ``sigma`` (``[..., K, K-1]``) and standardized
    annotator effects ``eps`` (``[..., W, K, K-1]``): error logits ``mu + sigma * eps`` against a 0 logit for the
    correct report, then a softmax over reports."""
    errors = mu.unsqueeze(-3) + sigma.unsqueeze(-3) * eps
    k = offdiag.shape[0]
    logits = torch.zeros(*errors.shape[:-1], k, dtype=errors.dtype, device=errors.device)
    logits = logits.scatter(-1, offdiag.expand(*errors.shape[:-1], k - 1), errors)
    return torch.log_softmax(logits, dim=-1)


class HierarchicalDawidSkene(ConfusionModel, PyroRaterModel):
    r"""Dawid-Skene whose annotator confusion matrices share a learned population distribution.

    Model (a logistic-normal hierarchical Dawid & Skene 1979; partial pooling as in e.g. Paun et al. 2018,
    "Comparing Bayesian models of annotation", TACL 6)::

        pi                   ~ Dirichlet(class_prior * 1_K)
        mu[k, e]             ~ Normal(prior_error_logit, 1.5)          population mean error logit, e != k
        sigma[k, e]          ~ LogNormal(log(prior_scale), 0.5)        population spread
        eps[w, k, e]         ~ Normal(0, 1)                            annotator effect (non-centred)
        theta[w, k, :]       = softmax([0 at k; mu[k] + sigma[k] * eps[w, k] at the errors e])
        z_i                  ~ Categorical(pi)                         enumerated out
        y_n                  ~ Categorical(theta[w_n, z_{i_n}, :])

    For each true class ``k`` the error logits of an annotator (against the logit 0 of a correct report) are
    ``Normal(mu_k, sigma_k)``: an annotator with few judgments is pulled towards the population's typical confusion,
    one with many keeps its own. The scale prior is log-normal, not half-normal: a prior with mass at 0 lets the
    pooled solution collapse (every annotator the same) under MAP with a lower loss than the right answer.

    With ``inference="vb"`` the population is the conjugate one, fitted by empirical Bayes (closed-form VB-EM; the
    fast choice for millions of judgments)::

        alpha[k, :]          population Dirichlet of true-class-k rows, type-II maximum likelihood
        theta[w, k, :]       ~ Dirichlet(alpha[k])
        z_i, y_n             as above

    Each VB-EM iteration updates ``q(z)``, ``q(theta)``, ``q(pi)`` in closed form and moves ``alpha`` to the maximiser
    of the evidence lower bound (Newton's method, :func:`~accord.models._vb.fit_population_prior`); the pooling
    strength ``sum_l alpha[k, l]`` is learned, as the logistic-normal's ``sigma`` is (IBCC with hyperparameter
    learning, Kim & Ghahramani 2012). ``population_`` then holds ``alpha``.

    Inference: ``"meanfield"`` (default; AutoDiagonalNormal), ``"map"`` (AutoDelta; expect the pooling to be too strong or
    too weak, it is a point estimate of a hierarchical model), ``"lowrank"`` (AutoLowRankMultivariateNormal) and
    ``"nuts"`` (small data). All start, with ``init="vote"``, from the closed-form VB Dawid-Skene solution (itself
    started from vote fractions), which also fixes the labelling of the classes. Minibatches over pairs with
    ``batch_size``; the annotator-level globals stay full.

    Parameters
    ----------
    prior_error_logit
        Prior mean of the population's error logits (``-1.5``: a typical rater right about 4 times in 5 with two
        classes).
    prior_scale
        Prior median of the population spread ``sigma``.
    init
        ``"vote"`` (warm start from VB Dawid-Skene) or ``"uniform"`` (Pyro's median initialisation).
    Others: :class:`~accord.models.confusion.ConfusionModel`, :class:`~accord.models.base.PyroRaterModel`.

    Fitted attributes: as :class:`~accord.models.dawid_skene.DawidSkene` (``soft_labels_``, ``annotators_``,
    ``confusion_``, ``class_prior_``), plus ``population_`` (posterior mean ``mu`` and ``sigma``).

    Example
    -------
    >>> from accord.datasets.synthetic import make_synthetic
    >>> from accord.models.hierarchical_dawid_skene import HierarchicalDawidSkene
    >>> data = make_synthetic(n_pairs=60, n_annotators=12, judgments_per_pair=3, tie_rate=0.0, with_text=False,
    ...                       annotator_mix={"reliable": 0.8, "spammer": 0.2})
    >>> model = HierarchicalDawidSkene(max_steps=200, num_samples=50).fit(data.judgments)
    >>> model.soft_labels_.probs.shape
    (60, 2)
    """

    method: ClassVar[str] = "hierarchical-dawid-skene"
    supported_inference: ClassVar[tuple[str, ...]] = ("map", "meanfield", "lowrank", "nuts", "vb")
    _global_sites: ClassVar[tuple[str, ...]] = ("pi", "mu", "sigma", "eps")

    inference: str = "meanfield"
    final_lr_fraction: float = 0.1
    prior_error_logit: float = -1.5
    prior_scale: float = 1.0
    max_steps: int = 1500
    patience: int = 25

    @property
    def no_overlap_consequence(self) -> str:  # type: ignore[override]
        # only the closed form leaves pairs of one judgment out of what the raters are learned from
        return ConfusionModel.no_overlap_consequence if self.inference == "vb" else RaterModel.no_overlap_consequence

    def _fit(self, encoded: Encoded, solve: Callable[..., VBResult] = vb_dawid_skene) -> None:
        if self.init == "random":
            raise AccordError("init must be 'vote' or 'uniform' for HierarchicalDawidSkene")
        check_positive(self, "prior_scale")
        if not math.isfinite(self.prior_error_logit):
            raise AccordError(f"prior_error_logit must be a finite number, not {self.prior_error_logit!r}")
        self._prepare_fit(encoded)
        self._k = k = encoded.n_classes
        self._offdiag = _offdiagonal_index(k, self._torch_device)
        if self.inference == "vb":
            self._fit_vb(encoded, solve)
            return
        self._fit_pyro(encoded)
        self.population_ = {name: self._extra_draws[name][0].mean((0, 1)) for name in ("mu", "sigma")}

    def _fit_vb(self, encoded: Encoded, solve: Callable[..., VBResult] = vb_dawid_skene) -> None:
        """Closed-form VB-EM of the Dirichlet-population form, the population fitted by type-II maximum likelihood
        (``solve``: :func:`~accord.models._vb.vb_dawid_skene` or its sharded twin in
        :mod:`accord.models.distributed`)."""
        start = 1.0 + torch.eye(encoded.n_classes, dtype=torch.float64, device=self._torch_device)  # mildly diagonal
        # pairs of one judgment stay out of the counts (accord.models._vb.informative_items); with no pair of two the
        # population is not identified (its evidence ran to the bounds): the start is kept as the prior
        fitted = None if self._no_overlap() else fit_population_prior
        self._keep_vb(solve(self._incidence, start, self._class_prior_vec, self._initial_item_probs(encoded, "vote"),
                            max_iter=self.max_steps, tol=self.tol, prior_fit=fitted, informative=self._informative))
        self.population_ = {"alpha": self._vb.confusion_prior.cpu().numpy()}
        self._draw_from_vb(self._vb)
        self._finish()

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        import pyro
        import pyro.distributions as dist

        k, w = data.n_classes, data.n_workers
        zero = self._class_prior_vec.new_zeros(())
        pi = pyro.sample("pi", dist.Dirichlet(self._class_prior_vec))
        classes = pyro.plate("true_class", k, dim=-1)
        with classes:
            mu = pyro.sample("mu", dist.Normal(zero + self.prior_error_logit, 1.5).expand([k - 1]).to_event(1))
            sigma = pyro.sample(
                "sigma", dist.LogNormal(zero + float(np.log(self.prior_scale)), 0.5).expand([k - 1]).to_event(1)
            )
        with pyro.plate("annotators", w, dim=-2), classes:
            eps = pyro.sample("eps", dist.Normal(zero, 1.0).expand([k - 1]).to_event(1))
        log_theta = hierarchical_log_confusion(mu, sigma, eps, self._offdiag)
        enumerated_likelihood(data, pi.clamp_min(TINY).log(), log_theta, batch_size)

    def _log_params(self, sample: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        log_theta = hierarchical_log_confusion(sample["mu"], sample["sigma"], sample["eps"], self._offdiag)
        return sample["pi"].clamp_min(TINY).log(), log_theta

    def _init_values(self) -> dict[str, torch.Tensor]:
        """Population and annotator effects matching the VB Dawid-Skene posterior means (vote-fraction start)."""
        encoded = self.encoded_
        q0 = self._initial_item_probs(encoded, "vote")
        k = encoded.n_classes
        prior = 1.0 + torch.eye(k, dtype=torch.float64, device=self._torch_device)  # mildly diagonal-heavy, as in VB
        vb = vb_dawid_skene(self._incidence, prior, self._class_prior_vec, q0, max_iter=1000, tol=1e-6)
        theta = vb.confusion_alpha / vb.confusion_alpha.sum(-1, keepdim=True)  # [W, K, L]
        log_theta = theta.log()
        correct = torch.diagonal(log_theta, dim1=-2, dim2=-1)  # [W, K]
        errors = log_theta.gather(-1, self._offdiag.expand(theta.shape[0], k, k - 1)) - correct[..., None]
        weight = torch.as_tensor(np.bincount(encoded.workers, minlength=encoded.n_workers), dtype=torch.float64,
                                 device=self._torch_device)[:, None, None]
        mu = (errors * weight).sum(0) / weight.sum(0)
        sigma = (((errors - mu) ** 2 * weight).sum(0) / weight.sum(0)).sqrt().clamp(0.3, 5.0)
        eps = ((errors - mu) / sigma).clamp(-4.0, 4.0)
        return {"pi": vb.class_alpha / vb.class_alpha.sum(), "mu": mu, "sigma": sigma, "eps": eps}

    def _extra_sites(self) -> dict[str, list[str]]:
        return {"mu": ["true_class", "error_rank"], "sigma": ["true_class", "error_rank"]}

    def _annotator_sites(self) -> tuple[str, ...]:
        return ("eps",)

    def _extra_coords(self) -> dict[str, object]:
        return {"error_rank": np.arange(max(self.encoded_.n_classes - 1, 1))}

    def _new_annotator_log_confusion(self, log_pi: torch.Tensor) -> torch.Tensor:
        """Expected confusion of a new annotator under each draw of the population: Monte Carlo over ``eps`` (the
        population Dirichlet's mean with ``inference="vb"``)."""
        if self.inference == "vb":
            alpha = self._vb.confusion_prior.to(log_pi)
            return (alpha / alpha.sum(-1, keepdim=True)).log().expand(log_pi.shape[0], -1, -1)
        # the population's draws [chains, draws, K, K-1], flattened over chains
        mus, sigmas = (torch.as_tensor(draws.reshape(-1, *draws.shape[2:]), dtype=log_pi.dtype, device=log_pi.device)
                       for draws in (self._extra_draws["mu"][0], self._extra_draws["sigma"][0]))
        generator = torch.Generator().manual_seed(self.seed + 11)
        n = 64
        eps = torch.randn(n, *mus.shape[1:], generator=generator, dtype=log_pi.dtype).to(log_pi.device)
        log_theta = hierarchical_log_confusion(mus, sigmas, eps[None], self._offdiag)  # [S, n, K, L]
        return torch.logsumexp(log_theta, dim=1) - np.log(n)
