"""Dawid-Skene: one confusion matrix per annotator, the true label of each pair summed out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

import numpy as np
import torch

from accord.datasets import AccordError, Encoded
from accord.models._data import PaddedJudgments, id_ranks, in_id_order, vote_fractions
from accord.models._vb import (_dirichlet, build_incidence, closed_form_item_summary, concentration_draws,
                               design_effect, dirichlet_moments, draw_moments, VBResult, fit_population_prior,
                               gibbs_dawid_skene, select_item_calibration, vb_dawid_skene)
from accord.models.base import ItemSummary, PyroRaterModel, check_positive, deferred, random_state, replay_random
from accord.models.confusion import TINY, ConfusionModel, enumerated_likelihood, to_codes


def symmetric_log_confusion(accuracy: torch.Tensor, bias: torch.Tensor, tie: torch.Tensor | None = None,
                            tie_tie: torch.Tensor | None = None) -> torch.Tensor:
    """``[..., W, K, L]`` log confusions of the symmetric preference model (classes A, B and optionally tie).

    With ``s = logsigmoid``, accuracy logit ``a``, position bias ``b`` (propensity to say "A"), tie logits ``t``
    (a tie reported when the truth is not a tie) and ``r`` (a tie reported when it is one):
    ``P(A | A) = (1 - s(t)) s(a + b)``, ``P(B | A) = (1 - s(t)) s(-a - b)``, ``P(A | B) = (1 - s(t)) s(b - a)``,
    ``P(B | B) = (1 - s(t)) s(a - b)``, ``P(tie | A or B) = s(t)``; for a true tie ``P(A) = (1 - s(r)) s(b)``,
    ``P(B) = (1 - s(r)) s(-b)``, ``P(tie) = s(r)``.
    """
    ls = torch.nn.functional.logsigmoid
    row_a = torch.stack([ls(accuracy + bias), ls(-accuracy - bias)], dim=-1)
    row_b = torch.stack([ls(bias - accuracy), ls(accuracy - bias)], dim=-1)
    if tie is None:
        return torch.stack([row_a, row_b], dim=-2)
    not_tie, is_tie = ls(-tie)[..., None], ls(tie)[..., None]
    row_a = torch.cat([row_a + not_tie, is_tie], dim=-1)
    row_b = torch.cat([row_b + not_tie, is_tie], dim=-1)
    assert tie_tie is not None
    row_t = torch.stack([ls(-tie_tie) + ls(bias), ls(-tie_tie) + ls(-bias), ls(tie_tie)], dim=-1)
    return torch.stack([row_a, row_b, row_t], dim=-2)


#: ``symmetric=True``: each annotator-level logit and the (loc, scale) of its Normal prior; the tie logits with ties
SYMMETRIC_PRIORS: dict[str, tuple[float, float]] = {"accuracy": (1.5, 1.5), "position_bias": (0.0, 1.0),
                                                    "tie": (-2.0, 1.5), "tie_tie": (0.0, 1.5)}


class DawidSkene(ConfusionModel, PyroRaterModel):
    r"""Dawid-Skene with Dirichlet priors: a full confusion matrix per annotator, Bayesian.

    Model (Dawid & Skene 1979, with the priors of e.g. Liu, Peng & Ihler 2012)::

        pi                 ~ Dirichlet(class_prior * 1_K)                  class prior
        theta[w, k, :]     ~ Dirichlet(beta_k),  beta_k[l] = prior_correct if l == k else prior_error
        z_i                ~ Categorical(pi)                               true label of pair i (enumerated out)
        y_n                ~ Categorical(theta[w_n, z_{i_n}, :])           judgment n of annotator w_n on pair i_n

    The prior ``prior_correct=2, prior_error=1`` is *diagonal-heavy*: a new annotator is believed better than
    chance but a handful of judgments overrides it; it also breaks the label-switching symmetry in favour of
    mostly-honest raters.

    *Empirical prior* (``empirical_prior=True``). A fixed ``(a, b)`` is a guess about the annotator population that
    shows where the data are thin (with three classes ``Dirichlet(2, 1, 1)`` pulls the rare-class rows of good raters
    towards 1/2), so the two concentrations are fitted by type-II maximum likelihood inside VB-EM (Beal 2003): after
    each M-step ``(a, b)`` maximise the evidence lower bound given ``q(z)``, with ``q(theta)`` at its best for each
    prior: the Dirichlet-multinomial evidence of the expected counts ``n_wkl`` (``s = a + (L-1) b``, ``N_wk = sum_l
    n_wkl``, ``beta_kl = a`` if ``l = k`` else ``b``),

    .. math:: \max_{a \ge b > 0}\ \sum_{w,k} \Big[\log\Gamma(s) - \log\Gamma(s + N_{wk})
              + \sum_l \big(\log\Gamma(\beta_{kl} + n_{wkl}) - \log\Gamma(\beta_{kl})\big)\Big],

    solved by Newton (:func:`accord.models._vb.fit_confusion_prior_evidence`). It has the fixed points of the step
    given ``q(theta)`` (:func:`accord.models._vb.fit_confusion_prior`, ``max E_q[log Dir(theta_wk | beta_k)]``) but
    does not creep toward them (where the raters look alike that step raises the concentration a little per
    iteration: thousands of iterations on a 100-judgment table). The first iterations, until no pair moves by 0.01
    or more (:data:`accord.models._vb.SETTLED_CHANGE`), take the step given ``q(theta)``: from the vote fractions of
    a crowd with many adversarial raters the evidence step would leap to the flat prior (raters carry no
    information), a fixed point of its own. ``empirical_prior="full"`` fits instead a free
    Dirichlet ``alpha_k`` per true class (the same two steps: :func:`accord.models._vb.fit_population_prior`, then
    :func:`accord.models._vb.fit_population_prior_evidence`, each by Newton's method):
    the population's typical confusions between particular classes are learned, which matters with more than two
    classes. The fitted prior (``prior_correct_``, ``prior_error_``: its mean diagonal and off-diagonal values) is the
    prior of every inference method; no gold label is involved. The VB soft labels use it as fitted; the draws of the
    annotator table (two-valued prior; with ``"gibbs"`` every sweep draws ``s`` given ``z``) integrate its
    concentration ``s`` out, since a point estimate of ``s`` makes the raters' intervals too narrow where the table
    says little about it (Kass & Steffey 1989; a row of one judgment says nothing, and on a small table the maximum
    lies at the bound ``s = 1e3``): each draw takes ``s`` from ``p(log s | n) ∝ evidence(n | s) s / (1 + s)^2`` with
    the prior's mean held (:func:`accord.models._vb.concentration_draws`). A table of one annotator keeps the fixed
    prior: one rater's counts say nothing about a population (the evidence grows without bound toward a prior that
    makes the rater a coin, and VB-EM crept toward it for its 2,000 iterations on a table of two judgments).

    *Pairs of one judgment* tell how often a rater gives each label, never how often it is right (only agreement
    does), and in VB-EM their expected counts repeat the start: they are left out of the counts of the confusions, the
    class prior and the empirical prior (a cut, Plummer 2015; :func:`accord.models._vb.informative_items`) and get
    their soft labels from the raters learned on the other pairs. A table with no pair of two judgments (one label per
    pair, as in much RLHF preference data) keeps the fixed prior and warns: every rater stays at the prior, and a
    lone vote's soft label is the prior's (``2/3`` for two classes under ``Dirichlet(2, 1)`` rows).

    *Soft labels* are Bayes' rule with each annotator's posterior-predictive confusion ``E[theta_w]``:
    ``log p(z_i = k | y) = log E[pi_k] + sum_{n in i} log E[theta_{w_n, k, y_n}] + const`` (the collapsed item
    posterior), then calibrated as below. Their 90% intervals come from the posterior variance of the same scores
    (``Var[log theta]`` in closed form for VB, from the draws otherwise), by the delta method on the top class's
    log-odds (:func:`accord.models._vb.closed_form_item_summary`): sparse products, no draws over the judgments;
    their ``uncertainty`` is the sd of the sigmoid of that normal log-odds, so that it agrees with the interval.

    *Calibration from held-out votes* (``item_correlation="auto"``, ``vote_shrinkage="auto"``). Given its true label
    an item's judgments are assumed independent, so its log-odds grow linearly with its number of judgments ``n_i``;
    real crowds err together on hard items, and agree on a wrong answer on some. With intra-item error correlation
    ``rho``, ``n_i`` judgments carry the information of ``n_i / T_i`` independent ones (the design effect ``T_i = 1 +
    (n_i - 1) rho``, Kish 1965), and the magnitude-adjusted composite likelihood (Varin, Reid & Firth 2011) divides
    the item's log posterior by ``T_i``; items the model cannot describe (ambiguous ones) are covered by a mixture
    with the item's vote fractions ``v_i`` of weight ``e``:

    .. math:: p(z_i = k \mid y_i) = (1 - e)\, \mathrm{softmax}_k\Big(\tfrac{1}{T_i}\big(\log E\pi_k
              + \textstyle\sum_{n \in i} \log E\theta_{w_n, k, y_n}\big)\Big) + e\, v_{ik}.

    ``rho`` and then ``e`` maximise, without gold, the leave-one-judgment-out log-likelihood of the votes
    ``sum_n log sum_k p(z_i = k | y_{i,-n}) theta_{w_n}[k, y_n]`` (:func:`accord.models._vb.select_item_calibration`,
    on a bounded random subset of items at scale). The held-out predictive uses the calibrated soft labels, the
    pointwise log-likelihood for ArviZ the model's own. ``item_correlation=0, vote_shrinkage=0`` is plain
    Dawid-Skene.

    ``symmetric=True`` (preference data) replaces the free confusion matrix by an accuracy logit ``a ~ N(1.5, 1.5)``
    shared by A- and B-pairs, a position-bias logit ``b ~ N(0, 1)`` and two tie logits, ``~ N(-2, 1.5)`` (tie
    reported on a non-tie) and ``N(0, 1.5)`` (on a tie): :func:`symmetric_log_confusion`.

    Inference: ``"vb"`` (default), closed-form mean-field VB with Dirichlet factors, each update one sparse product
    over the judgments (its intervals, as every mean-field fit's, are too narrow), run until the pairs' class
    probabilities are estimated within ``tol`` of the fixed point (VB-EM converges linearly, slowly where raters are
    uncertain: the distance left is the latest change times ``r / (1 - r)``, ``r`` the rate at which the changes
    shrink; :class:`accord.models._vb.FixedPointDistance`); ``"gibbs"``, blocked Gibbs sampling
    of the same conjugate model (exact draws, started from VB); ``"map"``, ``"meanfield"``, ``"lowrank"``, SVI with
    ``z`` enumerated; ``"nuts"`` for small data. ``symmetric=True`` has no closed form. ``num_samples`` posterior
    draws are kept for the annotator table, ``confusion_`` and ArviZ (with ``"vb"`` taken when one of them is first
    asked for, from the random state of the fit).

    Parameters
    ----------
    symmetric, prior_correct, prior_error, empirical_prior
        See above (``prior_*``: Dirichlet concentrations of a confusion row on its diagonal and off it).
    item_correlation
        ``"auto"`` (chosen from the votes) or a fixed ``rho`` in ``[0, 1]``; ``0`` turns the tempering off.
    vote_shrinkage
        ``"auto"`` (chosen from the votes) or a fixed weight ``e`` in ``[0, 1]`` of the vote fractions.
    Others: :class:`~accord.models.confusion.ConfusionModel`, :class:`~accord.models.base.PyroRaterModel`.

    Fitted attributes: ``soft_labels_``, ``annotators_``, ``confusion_`` (posterior mean ``[W, K, L]``),
    ``class_prior_``, ``prior_correct_`` / ``prior_error_`` (the prior used), ``item_correlation_`` (``rho``),
    ``vote_shrinkage_`` (``e``), ``n_iter_`` / ``converged_`` (vb), ``svi_``, ``n_divergences_`` (NUTS).

    Example
    -------
    >>> import pandas as pd
    >>> from accord.models.dawid_skene import DawidSkene
    >>> judgments = pd.DataFrame({
    ...     "pair_id": ["p1", "p1", "p1", "p2", "p2", "p2"],
    ...     "annotator": ["ann", "bob", "cid", "ann", "bob", "cid"],
    ...     "label": ["A", "A", "B", "B", "B", "B"],
    ... })
    >>> model = DawidSkene(seed=0).fit(judgments)
    >>> model.soft_labels_.hard().tolist()
    ['A', 'B']
    >>> list(model.annotators_.columns)[:4]
    ['n_judgments', 'reliability', 'reliability_lower', 'reliability_upper']

    References
    ----------
    A. P. Dawid and A. M. Skene (1979). Maximum likelihood estimation of observer error-rates using the EM algorithm.
    *Journal of the Royal Statistical Society C* 28(1), 20-28. https://doi.org/10.2307/2346806

    M. J. Beal (2003). *Variational algorithms for approximate Bayesian inference*, ch. 2 (VB-EM hyperparameters).
    PhD thesis, University College London.

    R. E. Kass, D. Steffey (1989). Approximate Bayesian inference in conditionally independent hierarchical models
    (parametric empirical Bayes models). *JASA* 84(407).

    Y. Chung, S. Rabe-Hesketh, V. Dorie, A. Gelman, J. Liu (2013). A nondegenerate penalized likelihood estimator
    for variance parameters in multilevel models. *Psychometrika* 78(4).

    T. P. Minka (2000). Estimating a Dirichlet distribution. Technical report, MIT.

    Y. W. Teh, D. Newman and M. Welling (2007). A collapsed variational Bayesian inference algorithm for latent
    Dirichlet allocation. *NeurIPS 19* (the collapsed, posterior-predictive item posterior).

    M. Plummer (2015). Cuts in Bayesian graphical models. *Statistics and Computing* 25(1), 37-43.

    L. Kish (1965). *Survey Sampling*. Wiley (the design effect ``1 + (m - 1) rho``).

    C. Varin, N. Reid and D. Firth (2011). An overview of composite likelihood methods. *Statistica Sinica* 21(1),
    5-42.
    """

    method: ClassVar[str] = "dawid-skene"
    # reduces over the processes of a fit across processes (accord.models.distributed sets it on the instance)
    _all_reduce: ClassVar[Callable[..., torch.Tensor] | None] = None
    inference: str = "vb"
    final_lr_fraction: float = 0.1
    symmetric: bool = False
    prior_correct: float = 2.0
    prior_error: float = 1.0
    empirical_prior: bool | str = True
    item_correlation: float | str = "auto"
    vote_shrinkage: float | str = "auto"
    #: posterior draws; with ``inference="vb"`` taken on first access (:meth:`_draw_from_vb`)
    _log_theta = deferred()
    _log_pi = deferred()

    @property
    def _global_sites(self) -> tuple[str, ...]:  # type: ignore[override]
        if not self.symmetric:
            return ("pi", "theta")
        return ("pi", *SYMMETRIC_PRIORS)[: 5 if self._k == 3 else 3]

    def _check_settings(self, encoded: Encoded) -> None:
        check_positive(self, "prior_correct", "prior_error")
        for name in ("item_correlation", "vote_shrinkage"):
            value = getattr(self, name)
            if not (value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                        and 0 <= value <= 1)):
                raise AccordError(f"{name} must be 'auto' or a number in [0, 1], not {value!r}")
        if self.empirical_prior not in (True, False, "full"):
            raise AccordError(f"empirical_prior must be True, False or 'full', not {self.empirical_prior!r}")
        if self.symmetric:
            if encoded.form != "preference" or tuple(encoded.classes[:2]) != ("A", "B"):
                raise AccordError("symmetric=True needs preference data (classes A, B and optionally tie)")
            if self.inference in ("vb", "gibbs"):
                raise AccordError("symmetric=True has no closed-form solver: use inference='map', 'meanfield', "
                                  "'lowrank' or 'nuts'")

    def _fit(self, encoded: Encoded) -> None:
        self._check_settings(encoded)
        self._prepare_fit(encoded)
        self._k = encoded.n_classes
        self._confusion_prior = self._fixed_prior(encoded.n_classes)
        self._vb = None
        closed_form = self.inference in ("vb", "gibbs")
        # warned whatever the prior (one annotator, symmetric=True): with no pair of two judgments it is the prior's
        empirical = self._prior_fitted = not self._no_overlap() and self._fits_prior(encoded)
        if closed_form or (self.warm_start and self.init == "vote") or empirical:
            self._keep_vb(vb_dawid_skene(self._incidence, self._confusion_prior, self._class_prior_vec,
                                         self._initial_item_probs(encoded),
                                         max_iter=self.max_steps if closed_form else 1000,
                                         tol=self.tol if closed_form else 1e-6, empirical_prior=empirical,
                                         prior_fit=fit_population_prior if empirical and self.empirical_prior == "full"
                                         else None, stop="distance" if self.inference == "vb" else "change",
                                         informative=self._informative),
                          warn=self.inference == "vb")  # elsewhere VB-EM is the start of the sampler or SVI
            if empirical:
                self._confusion_prior = self._vb.confusion_prior
        self._summarize_prior()
        if self.inference == "vb":
            self._draw_from_vb(self._vb)
            self._finish()
            self._calibrated_at = encoded.n_judgments  # partial_fit chooses the calibration again past a growth
        elif self.inference == "gibbs":
            # the sweeps draw each pair's class and each annotator's confusion in id order (the draws then follow the
            # judgments as a set and the seed, not the rows' order), mapped back to the codes
            ordered, items, workers = in_id_order(encoded)
            device = self._torch_device
            item_order, worker_order = (torch.as_tensor(np.argsort(r), device=device) for r in (items, workers))
            vb = self._vb
            theta = vb.confusion_alpha / vb.confusion_alpha.sum(-1, keepdim=True)
            draws = gibbs_dawid_skene(build_incidence(ordered, device), self._confusion_prior, self._class_prior_vec,
                                      theta[worker_order], vb.class_alpha / vb.class_alpha.sum(),
                                      num_samples=self.num_samples, num_warmup=self.num_warmup,
                                      num_chains=self.num_chains,
                                      sample_concentration=empirical and self.empirical_prior is True,
                                      informative=None if self._informative is None else self._informative[item_order])
            self._log_theta = to_codes(draws.theta, workers, dim=2).double().clamp_min(TINY).log()
            self._log_pi = draws.pi.double().clamp_min(TINY).log()
            self._finish()
        else:
            self._fit_pyro(encoded)

    def _fixed_prior(self, k: int) -> torch.Tensor:
        """The ``[K, K]`` Dirichlet parameters of the settings' confusion prior (``prior_correct`` on the diagonal):
        the prior of a fit with ``empirical_prior=False``, the start of its fit otherwise."""
        eye = torch.eye(k, dtype=torch.float64, device=self._torch_device)
        return self.prior_error + (self.prior_correct - self.prior_error) * eye

    def _fits_prior(self, encoded: Encoded) -> bool:
        """Whether the fit fits the confusion prior (``empirical_prior``): the population prior of one annotator is
        not identified (docstring), so then the fixed prior (a fit across processes asks too, with the global
        annotators)."""
        return bool(self.empirical_prior) and not self.symmetric and encoded.n_workers > 1

    def _summarize_prior(self) -> None:
        """``prior_correct_`` / ``prior_error_``: the mean diagonal and off-diagonal of the (fitted) confusion prior."""
        prior = self._confusion_prior
        off_diagonal = ~torch.eye(prior.shape[-1], dtype=torch.bool, device=prior.device)
        self.prior_correct_ = float(prior.diagonal().mean())
        self.prior_error_ = float(prior[off_diagonal].mean())

    def _draw_from_vb(self, vb: VBResult) -> None:
        """Draws of ``q(theta) q(pi)`` for the annotator table, ``confusion_`` and ArviZ only (the soft labels need
        none): taken on first use (:meth:`_take_vb_draws`) from the random stream as it is now."""
        self._pending_draws = (vb.confusion_alpha, vb.class_alpha, self.num_samples,
                               random_state(self._torch_device))
        self._defer("_take_vb_draws", "_log_theta", "_log_pi")

    def _take_vb_draws(self) -> None:
        """The draws :meth:`_draw_from_vb` put off, in float32; with the two-valued empirical prior its concentration
        is integrated out (:func:`accord.models._vb.concentration_draws`: each draw's rows under a prior of its own)."""
        confusion_alpha, class_alpha, num_samples, state = self._pending_draws
        # drawn in the annotators' id order (so they follow the judgments as a set and the seed, not the order of the
        # rows, which numbers the annotators), then mapped back to the codes
        ranks = id_ranks(self.encoded_.worker_index)
        confusion_alpha = confusion_alpha[torch.as_tensor(np.argsort(ranks), device=confusion_alpha.device)]
        with replay_random(state, self._torch_device):
            if self._prior_fitted and self.empirical_prior is True:
                priors = concentration_draws(confusion_alpha, self._confusion_prior, num_samples)
                alpha = (confusion_alpha - self._confusion_prior)[None] + priors[:, None]
                theta = _dirichlet(alpha.float())
            else:
                alpha = confusion_alpha.float()
                theta = _dirichlet(alpha.expand(num_samples, *alpha.shape).contiguous())
            self._log_pi = _dirichlet(class_alpha.expand(num_samples, -1)).clamp_min(TINY).log()[None]
        self._log_theta = to_codes(theta.clamp_min_(TINY).log_(), ranks, dim=1)[None]

    def _finish(self) -> None:
        """Posterior moments of the confusions, then the gold-free calibration (``rho``, ``e``) and the soft labels
        from the moments; the annotator table and ArviZ keep the draws."""
        vb = self._vb if self.inference == "vb" else None
        # a fit of one draw (MAP, or one Gibbs or NUTS draw) is a point estimate: its moments have no spread
        self._one_draw = False
        if vb is not None:
            self._moments = dirichlet_moments(vb.confusion_alpha, vb.class_alpha)
        else:
            log_theta, log_pi = self._flat_draws()
            self._moments = draw_moments(log_theta, log_pi)
            self._one_draw = log_pi.shape[0] == 1
        encoded, incidence = self.encoded_, self._incidence
        as_index = lambda a: torch.as_tensor(a, dtype=torch.long, device=self._torch_device)  # noqa: E731
        fixed = lambda value: None if value == "auto" else float(value)  # noqa: E731
        cavity = {"confusion_alpha": self._vb.confusion_alpha, "item_probs": self._vb.item_probs} \
            if self._vb is not None and not self.symmetric else {}
        rho, shrinkage = select_item_calibration(
            incidence, as_index(encoded.items), as_index(encoded.workers), as_index(encoded.labels), self._moments,
            correlation=fixed(self.item_correlation), shrinkage=fixed(self.vote_shrinkage), seed=self.seed,
            item_ids=encoded.item_index, all_reduce=self._all_reduce, **cavity)
        self.item_correlation_, self.vote_shrinkage_ = rho, shrinkage
        self._item_temperature = design_effect(incidence, rho)
        self._vote_probs = torch.as_tensor(vote_fractions(encoded, 1e-3), device=self._torch_device)
        super()._finish()

    def _summarize_items(self, klass: int | None = None) -> ItemSummary:
        assert self._moments is not None
        summary = closed_form_item_summary(self._incidence, self._moments, temperature=self._item_temperature,
                                           vote_probs=self._vote_probs, shrinkage=self.vote_shrinkage_, klass=klass)
        if self._one_draw:
            # the moments of one draw have variance 0, which read as an sd of 0 and a 90% interval of zero width:
            # a MAP fit's soft labels claimed certainty. One draw says nothing of the spread: NaN, as every other
            # model's one-draw summary (accord.models.base.summarize_draws) and the soft labels' contract say
            summary = replace(summary, sd=np.full_like(summary.sd, np.nan))
        return summary

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        import pyro
        import pyro.distributions as dist

        prior = self._confusion_prior
        pi = pyro.sample("pi", dist.Dirichlet(self._class_prior_vec))
        w, k = data.n_workers, data.n_classes
        if self.symmetric:
            with pyro.plate("annotators", w, dim=-1):
                sample = {name: pyro.sample(name, dist.Normal(prior.new_tensor(SYMMETRIC_PRIORS[name][0]),
                                                              SYMMETRIC_PRIORS[name][1]))
                          for name in self._global_sites[1:]}
            log_theta = self._symmetric_log_theta(sample)
        else:
            with pyro.plate("annotators", w, dim=-2), pyro.plate("true_class", k, dim=-1):
                theta = pyro.sample("theta", dist.Dirichlet(prior))
            log_theta = theta.clamp_min(TINY).log()
        enumerated_likelihood(data, pi.clamp_min(TINY).log(), log_theta, batch_size)

    def _symmetric_log_theta(self, sample: dict[str, torch.Tensor]) -> torch.Tensor:
        return symmetric_log_confusion(
            sample["accuracy"], sample["position_bias"], sample.get("tie"), sample.get("tie_tie")
        )

    def _log_params(self, sample: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        log_pi = sample["pi"].clamp_min(TINY).log()
        if self.symmetric:
            return log_pi, self._symmetric_log_theta(sample)
        return log_pi, sample["theta"].clamp_min(TINY).log()

    def _init_values(self) -> dict[str, torch.Tensor]:
        """Posterior means of the VB fit (itself started from vote fractions), in the model's parameters."""
        vb = self._vb
        theta = vb.confusion_alpha / vb.confusion_alpha.sum(-1, keepdim=True)
        values = {"pi": vb.class_alpha / vb.class_alpha.sum()}
        if not self.symmetric:
            values["theta"] = theta
            return values
        a_a = theta[:, 0, 0] / (theta[:, 0, 0] + theta[:, 0, 1])
        a_b = theta[:, 1, 0] / (theta[:, 1, 0] + theta[:, 1, 1])
        logit = torch.logit
        values["accuracy"] = 0.5 * (logit(a_a) - logit(a_b))
        values["position_bias"] = 0.5 * (logit(a_a) + logit(a_b))
        if self._k == 3:
            values["tie"] = logit(0.5 * (theta[:, 0, 2] + theta[:, 1, 2]))
            values["tie_tie"] = logit(theta[:, 2, 2])
        return values

    def _extra_sites(self) -> dict[str, list[str]]:
        return {name: ["annotator"] for name in self._global_sites[1:]} if self.symmetric else {}

    def _annotator_sites(self) -> tuple[str, ...]:
        return self._global_sites[1:]

    def _new_annotator_log_confusion(self, log_pi: torch.Tensor) -> torch.Tensor:
        s = log_pi.shape[0]
        if self.symmetric:
            generator = torch.Generator().manual_seed(self.seed + 7)
            draw = {name: SYMMETRIC_PRIORS[name][0] + SYMMETRIC_PRIORS[name][1] * torch.randn(256, generator=generator)
                    for name in self._global_sites[1:]}
            mean = self._symmetric_log_theta(draw).exp().mean(0).to(log_pi)
        else:
            prior = self._confusion_prior
            mean = (prior / prior.sum(-1, keepdim=True)).to(log_pi)
        return mean.log().expand(s, -1, -1)
