"""Dawid-Skene: one confusion matrix per annotator, the true label of each pair enumerated out.

:class:`ConfusionModel` holds what every confusion-matrix model shares (soft labels and annotator summaries from
posterior draws, the ArviZ export, held-out log-likelihood); :class:`DawidSkene` is the model itself, with a
closed-form variational solver and the Pyro specification used by SVI and NUTS.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from pyro.infer.autoguide.initialization import init_to_median, init_to_value

from accord.datasets import AccordError, Encoded
from accord.models._data import PaddedJudgments, encode_with_classes, pad_judgments, shared_classes
from accord.models._vb import (
    Incidence,
    VBResult,
    build_incidence,
    design_effect,
    gibbs_dawid_skene,
    item_log_posterior_scores,
    judgment_loglik_draws,
    quantiles_90,
    select_item_correlation,
    summarize_item_posterior,
    vb_dawid_skene,
)
from accord.models.base import RaterModel
from accord.models.inference import run_nuts, run_svi

TINY = 1e-30
#: annotators per block when summarising draws (bounds the memory of the annotator table)
ANNOTATOR_CHUNK = 8192
INIT_METHODS: tuple[str, ...] = ("vote", "random", "uniform")


# -- the likelihood shared by every confusion-matrix model ----------------------------------------------------


def enumerated_likelihood(
    data: PaddedJudgments, log_pi: torch.Tensor, log_theta: torch.Tensor, batch_size: int | None = None
) -> None:
    """``z_i ~ Categorical(pi)`` (enumerated) and ``y_im ~ Categorical(theta[w_im, z_i])`` over the padded grid.

    Plates: ``items`` (dim -2, optionally subsampled: the log-likelihood is scaled by ``n_items / batch_size``) and
    ``judgments`` (dim -1, the padded slots of an item, masked). ``log_theta`` is ``[W, K, L]``.
    """
    subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
    with pyro.plate("items", data.n_items, subsample_size=subsample, dim=-2, device=data.workers.device) as idx:
        z = pyro.sample("z", dist.Categorical(logits=log_pi), infer={"enumerate": "parallel"})
        workers = data.workers[idx]
        labels = data.labels[idx]
        mask = data.mask[idx]
        with pyro.plate("judgments", data.max_judgments, dim=-1):
            logits = log_theta[workers, z.long()]  # [(K,) b, M, L]
            pyro.sample("y", dist.Categorical(logits=logits).mask(mask), obs=labels)


def symmetric_log_confusion(
    accuracy: torch.Tensor, bias: torch.Tensor, tie: torch.Tensor | None = None, tie_tie: torch.Tensor | None = None
) -> torch.Tensor:
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


def _quantiles(draws: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 5% / 95% quantiles over the first axis."""
    mean = draws.mean(0, dtype=torch.float64).cpu().numpy()
    lower, upper = quantiles_90(draws, dim=0)
    return mean, lower.double().cpu().numpy(), upper.double().cpu().numpy()


class ConfusionModel(RaterModel):
    """What confusion-matrix models share, once ``_fit`` has stored posterior draws.

    A subclass's ``_fit`` sets ``self._log_theta`` (``[chains, draws, W, K, L]`` log confusions),
    ``self._log_pi`` (``[chains, draws, K]``), optionally ``self._extra_draws`` (``name -> (array [chains,
    draws, ...], dims)`` for ArviZ) and then calls ``self._finish()``. It implements
    ``_new_annotator_log_confusion(log_pi)``: for annotators unseen in training, the log of the expected confusion
    matrix under each draw (``[S, K, L]``).
    """

    method: ClassVar[str] = "confusion-model"

    # -- the pieces subclasses share -----------------------------------------------------------------------------

    def _prepare(self, encoded: Encoded) -> None:
        self._incidence: Incidence = build_incidence(encoded, self._torch_device)
        self._extra_draws: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._item_temperature: torch.Tensor | None = None  # [I] design-effect temperatures (DawidSkene)

    def _flat_draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        c, d = self._log_pi.shape[:2]
        return self._log_theta.reshape(c * d, *self._log_theta.shape[2:]), self._log_pi.reshape(c * d, -1)

    def _draw_from_vb(self, vb: VBResult) -> None:
        """Store ``num_samples`` draws of the mean-field posterior ``q(theta) q(pi)`` of a closed-form VB fit.

        Draws are kept in float32 (the summaries are computed in float32 anyway): with 100k annotators and 200
        draws the confusion draws alone are 0.7 GB in float32, twice that in float64."""
        theta = dist.Dirichlet(vb.confusion_alpha.float()).sample((self.num_samples,))
        pi = dist.Dirichlet(vb.class_alpha).sample((self.num_samples,))
        self._log_theta = theta.clamp_min_(TINY).log_()[None]  # 1e-30 is still a normal float32
        self._log_pi = pi.clamp_min(TINY).log()[None]

    def _finish(self) -> None:
        log_theta, log_pi = self._flat_draws()
        self._item_summary = summarize_item_posterior(self._incidence.astype(torch.float32), log_theta, log_pi,
                                                      getattr(self, "_item_temperature", None))
        pi = log_pi.float().exp()
        self.annotators_ = self._annotator_table(log_theta, pi)
        self.confusion_ = torch.cat([chunk.float().exp().mean(0, dtype=torch.float64)
                                     for chunk in log_theta.split(ANNOTATOR_CHUNK, dim=1)]).cpu().numpy()
        self.class_prior_ = pd.Series(pi.mean(0, dtype=torch.float64).cpu().numpy(), index=list(self.encoded_.classes),
                                      name="class_prior")

    def _annotator_table(self, log_theta: torch.Tensor, pi: torch.Tensor) -> pd.DataFrame:
        """The table of :meth:`_annotator_rows`, computed on blocks of annotators (bounded memory at any scale)."""
        blocks = [self._annotator_rows(chunk.float().exp(), pi) for chunk in log_theta.split(ANNOTATOR_CHUNK, dim=1)]
        columns = {name: np.concatenate([block[name] for block in blocks]) for name in blocks[0]}
        columns = {"n_judgments": np.bincount(self.encoded_.workers, minlength=self.encoded_.n_workers), **columns}
        return pd.DataFrame(columns, index=self.encoded_.worker_index)

    def _annotator_rows(self, theta: torch.Tensor, pi: torch.Tensor) -> dict[str, np.ndarray]:
        """Per annotator: judgments, reliability, spam score and (preference data) position bias, with 90% intervals.

        - ``reliability``: ``sum_k pi_k theta[k, k]``, the probability of a correct label for a pair drawn from the
          class prior;
        - ``spam``: ``1 - mean_{k < k'} TV(theta[k], theta[k'])``: 1 when every row of the confusion matrix is the
          same (the label says nothing about the truth), 0 when the rows are disjoint (a perfect rater, or a
          perfect flipper);
        - ``bias`` (preference data, else NaN): ``(P("A" | A, not tie) + P("A" | B, not tie)) / 2 - 1/2``, the
          propensity to say "A" whatever the truth, 0 for a rater without position bias.

        Each is summarised by its posterior mean and 5% / 95% quantiles over the draws (equal at a point estimate).
        """
        encoded = self.encoded_
        k = encoded.n_classes
        n_workers = theta.shape[1]
        diag = torch.diagonal(theta, dim1=-2, dim2=-1)  # [S, W, K]
        reliability = (diag * pi[:, None, :]).sum(-1)
        columns: dict[str, Any] = {}
        columns["reliability"], columns["reliability_lower"], columns["reliability_upper"] = _quantiles(reliability)
        if k > 1:
            rows_i, rows_j = torch.triu_indices(k, k, offset=1, device=theta.device)
            tv = 0.5 * (theta[:, :, rows_i, :] - theta[:, :, rows_j, :]).abs().sum(-1).mean(-1)
            columns["spam"], columns["spam_lower"], columns["spam_upper"] = _quantiles(1.0 - tv)
        else:
            for name in ("spam", "spam_lower", "spam_upper"):
                columns[name] = np.full(n_workers, np.nan)
        if encoded.form == "preference" and k >= 2:
            says_a_given_a = theta[..., 0, 0] / (theta[..., 0, 0] + theta[..., 0, 1])
            says_a_given_b = theta[..., 1, 0] / (theta[..., 1, 0] + theta[..., 1, 1])
            bias = 0.5 * (says_a_given_a + says_a_given_b) - 0.5
            columns["bias"], columns["bias_lower"], columns["bias_upper"] = _quantiles(bias)
        else:
            for name in ("bias", "bias_lower", "bias_upper"):
                columns[name] = np.full(n_workers, np.nan)
        return columns

    def _fit_trivial(self) -> None:
        """One class only: nothing to learn, and soft labels need two classes at least."""
        raise AccordError(
            f"column 'label': every judgment has the label {self.encoded_.classes[0]!r} and no other class is known: "
            "declare the label set (validate(judgments, classes=[...])) so that the model has something to tell apart"
        )

    # -- ArviZ ---------------------------------------------------------------------------------------------------

    def _compute_posterior(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        posterior: dict[str, tuple[np.ndarray, list[str]]] = {
            "theta": (self._log_theta.exp().double().cpu().numpy(), ["annotator", "true_class", "class"]),
            "pi": (self._log_pi.exp().double().cpu().numpy(), ["true_class"]),
        }
        posterior.update(self._extra_draws)
        return posterior

    def _compute_loglik_draws(self) -> np.ndarray:
        encoded = self.encoded_
        log_theta, log_pi = self._flat_draws()
        dtype = self._incidence.val.dtype
        device = self._torch_device
        items = torch.as_tensor(encoded.items, device=device)
        cells = torch.as_tensor(encoded.workers * encoded.n_classes + encoded.labels, device=device)
        flat = judgment_loglik_draws(self._incidence, items, cells, log_theta.to(dtype), log_pi.to(dtype))
        c, d = self._log_pi.shape[:2]
        return flat.reshape(c, d, -1)

    # -- held-out prediction -------------------------------------------------------------------------------------

    def _new_annotator_log_confusion(self, log_pi: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """``log p(y_n | training judgments)`` for each judgment of a new table, averaged over posterior draws.

        A judgment's pair keeps the posterior its training judgments gave it (the class prior when it had none;
        tempered as the soft labels are, see :class:`DawidSkene`); an annotator unseen in training gets the model's
        expected confusion matrix for a new annotator.
        """
        self._check_fitted()
        encoded = self.encoded_
        device = self._torch_device
        items = torch.as_tensor(encoded.item_index.get_indexer(judgments["pair_id"]), device=device)
        workers = torch.as_tensor(encoded.worker_index.get_indexer(judgments["annotator"]), device=device)
        label_codes = pd.Index(list(encoded.classes)).get_indexer(judgments["label"])
        if (label_codes < 0).any():
            bad = judgments["label"].to_numpy()[label_codes < 0][0]
            raise AccordError(f"label {bad!r} is not one of the fitted classes {list(encoded.classes)}")
        labels = torch.as_tensor(label_codes, device=device)
        log_theta, log_pi = self._flat_draws()
        dtype = self._incidence.val.dtype
        log_theta, log_pi = log_theta.to(dtype), log_pi.to(dtype)
        s = log_pi.shape[0]
        scores = item_log_posterior_scores(self._incidence, log_theta, log_pi,
                                           getattr(self, "_item_temperature", None))  # [S, I, K]
        item_post = torch.log_softmax(scores, dim=-1)
        known_item = items >= 0
        post = torch.where(known_item[None, :, None], item_post[:, items.clamp_min(0)], log_pi[:, None, :])
        new_conf = self._new_annotator_log_confusion(log_pi).to(dtype)  # [S, K, L]
        known_worker = workers >= 0
        seen = log_theta.transpose(-1, -2)[:, workers.clamp_min(0), labels]  # [S, N, K]
        unseen = new_conf[:, :, labels].permute(0, 2, 1)  # [S, N, K]
        conf = torch.where(known_worker[None, :, None], seen, unseen)
        per_draw = torch.logsumexp(post + conf, dim=-1)  # [S, N]
        return (torch.logsumexp(per_draw, dim=0) - np.log(s)).double().cpu().numpy()

    def _heldout_loglik(self, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        classes = shared_classes(train, test)
        model = self.clone()
        model.fit_encoded(encode_with_classes(train, classes))
        return model.predictive_loglik(test)

    # -- Pyro fitting shared by SVI and NUTS -----------------------------------------------------------------------

    #: sample sites of the model's continuous globals (what guides and NUTS see)
    _global_sites: ClassVar[tuple[str, ...]] = ()

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        raise NotImplementedError

    def _log_params(self, sample: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_pi [..., K], log_theta [..., W, K, L])`` from a dict of global draws (any leading batch shape)."""
        raise NotImplementedError

    def _init_values(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _fit_pyro(self, encoded: Encoded) -> None:
        data = pad_judgments(encoded).to(self._torch_device)
        if self.inference == "nuts":
            result = run_nuts(
                self._model, data, None, init_values=self._init_values(), num_samples=self.num_samples,
                num_warmup=self.num_warmup, num_chains=self.num_chains, seed=self.seed, progress=self.progress,
            )
            log_pi, log_theta = self._log_params(result.samples)
            self._sample_stats = {"diverging": result.diverging.cpu().numpy()}
            self._store_extra_draws({k: v.detach() for k, v in result.samples.items()})
            self.n_divergences_ = int(result.diverging.sum())
        else:
            guide = self._make_guide()
            loss = TraceEnum_ELBO(max_plate_nesting=2)
            self.svi_ = run_svi(
                self._model, guide, loss, data, self.batch_size, max_steps=self.max_steps,
                learning_rate=self.learning_rate, tol=self.tol, patience=self.patience, progress=self.progress,
                description=f"{type(self).__name__}({self.inference})",
                final_lr_fraction=getattr(self, "final_lr_fraction", 1.0),
            )
            log_pi, log_theta = self._guide_draws(guide, data)
        self._log_pi, self._log_theta = log_pi.detach(), log_theta.detach()
        self._finish()

    def _make_guide(self) -> Callable[..., Any]:
        blocked = poutine.block(self._model, expose=list(self._global_sites))
        init = init_to_value(values=self._init_values(), fallback=init_to_median) if self._warm() else init_to_median
        if self.inference == "map":
            return AutoDelta(blocked, init_loc_fn=init)
        if self.inference == "meanfield":
            return AutoNormal(blocked, init_loc_fn=init, init_scale=0.05)
        return AutoLowRankMultivariateNormal(blocked, init_loc_fn=init, init_scale=0.05,
                                             rank=getattr(self, "rank", None))

    def _warm(self) -> bool:
        return getattr(self, "init", "vote") != "uniform"

    def _guide_draws(self, guide: Callable[..., Any], data: PaddedJudgments) -> tuple[torch.Tensor, torch.Tensor]:
        n = 1 if self.inference == "map" else self.num_samples
        draws: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            for _ in range(n):
                sample = guide(data, self.batch_size)
                for name in self._global_sites:
                    if name in sample:
                        draws.setdefault(name, []).append(sample[name].detach())
        stacked = {name: torch.stack(v)[None] for name, v in draws.items()}  # [1, S, ...]
        self._store_extra_draws(stacked)
        return self._log_params(stacked)

    def _store_extra_draws(self, samples: dict[str, torch.Tensor]) -> None:
        """Model-specific posterior sites for ArviZ (besides theta and pi)."""


class DawidSkene(ConfusionModel):
    r"""Dawid-Skene with Dirichlet priors: a full confusion matrix per annotator, Bayesian.

    Model (Dawid & Skene 1979, with the priors of e.g. Liu, Peng & Ihler 2012)::

        pi                 ~ Dirichlet(class_prior * 1_K)                  class prior
        theta[w, k, :]     ~ Dirichlet(beta_k),  beta_k[l] = prior_correct if l == k else prior_error
        z_i                ~ Categorical(pi)                               true label of pair i (enumerated out)
        y_n                ~ Categorical(theta[w_n, z_{i_n}, :])           judgment n of annotator w_n on pair i_n

    The prior ``prior_correct=2, prior_error=1`` is *diagonal-heavy*: a new annotator is believed better than
    chance (prior mean accuracy 2/3 for two classes) but a handful of judgments overrides it; it also breaks the
    label-switching symmetry in favour of mostly-honest raters.

    Empirical prior (``empirical_prior=True``, the default)
    ---------------------------------------------------------
    A fixed ``(a, b) = (prior_correct, prior_error)`` is a guess about the annotator population, and a wrong guess
    shows where the data are thin: with three classes ``Dirichlet(2, 1, 1)`` adds four pseudo-judgments to every
    row and pulls it towards accuracy 1/2, so the rows of rare classes (ties) of good raters are shrunk well below
    their truth and the 90% intervals of reliability cover it only ~75% of the time on synthetic data. With
    ``empirical_prior`` the two concentrations are fitted to the annotators themselves by type-II maximum
    likelihood inside VB-EM (Beal 2003): after each M-step ``(a, b)`` maximise the evidence lower bound given
    ``q(theta)``,

    .. math:: \max_{a \ge b > 0}\ \sum_{w,k} E_q[\log \mathrm{Dir}(\theta_{wk} \mid b + (a - b) e_k)]
              = R[\log\Gamma(a + (L-1)b) - \log\Gamma(a) - (L-1)\log\Gamma(b)] + (a-1)S_d + (b-1)S_o,

    (``R = W K`` rows; ``S_d``, ``S_o`` the summed ``E[log theta]`` on and off the diagonal; concave, solved by
    Newton; :func:`accord.models._vb.fit_confusion_prior`), the constraint ``a >= b`` keeping the prior
    diagonal-heavy or flat (label switching). The given values are only the starting point. The fitted prior
    (``prior_correct_``, ``prior_error_``) is then the prior of every inference method (Gibbs, SVI, NUTS and the
    expected confusion of an unseen annotator). No gold label is involved: it is the marginal likelihood of the
    judgments. On the synthetic benchmark it gives ``(a, b) ~ (2.1, 0.56)`` (prior mean accuracy 0.65 with
    about 3 pseudo-judgments per row) and 90% Gibbs intervals of reliability that cover the truth ~0.90 of the
    time.

    Correlated errors: design-effect tempering (``item_correlation="auto"``, the default)
    ------------------------------------------------------------------------------------
    Dawid-Skene assumes that the judgments of an item are independent given its true label, so an item's
    log-odds grow linearly with its number of judgments ``n_i``. Real crowds err together on hard or ambiguous
    items (one misleading cue fools many raters), and with 10-40 judgments per item the posterior then puts odds of
    ``1e10`` or more on labels that are wrong: a few such items dominate the log-loss of the soft labels. If the
    errors of an item's raters have intra-item correlation ``rho``, the information in ``n_i`` judgments is that of
    ``n_i / T_i`` independent ones, with the design effect (Kish 1965) ``T_i = 1 + (n_i - 1) rho``; the
    magnitude-adjusted composite (independence) likelihood (Varin, Reid & Firth 2011) divides the item's
    log-likelihood by ``T_i``. The soft labels are therefore

    .. math:: p_\rho(z_i = k \mid y_i, \theta, \pi) \propto \pi_k
              \exp\Big(\tfrac{1}{T_i}\sum_{n \in i} \log\theta_{w_n, k, y_n}\Big),
              \qquad T_i = 1 + (n_i - 1)\rho,

    averaged over posterior draws as before. ``theta`` and ``pi`` are fitted as usual: their estimating equations
    sum over items and stay unbiased under within-item dependence; only the per-item posterior is overconfident.
    ``rho`` is chosen without gold labels, by how well the votes predict each other: it maximises the
    leave-one-judgment-out log-likelihood ``sum_n log sum_k p_rho(z_i = k | y_{i,-n}) theta_{w_n}[k, y_n]``
    (with ``T = 1 + (n_i - 2) rho`` for the ``n_i - 1`` other judgments and, under VB, the judgment's own count
    removed from its annotator's row; :func:`accord.models._vb.select_item_correlation`). When the data are
    conditionally independent (as the synthetic benchmark is) this gives ``rho ~ 0``, plain Dawid-Skene; on
    the gold sets it gives 0 to 0.15 and cuts the gold NLL where raters disagree in blocks (e.g. VLDB'17 Duck from
    1.34 to about 0.37). The held-out predictive (:meth:`predictive_loglik`) uses the same tempered item
    posterior; the pointwise log-likelihood for ArviZ (``to_arviz``) is the model's own, untempered.
    ``item_correlation`` may also be a number in ``[0, 1]``; ``0`` gives the untempered posterior.

    ``symmetric=True`` (preference data, classes A, B [, tie]) replaces the free confusion matrix by one accuracy
    logit ``a`` shared by A- and B-pairs, a position-bias logit ``b`` (saying "A" whatever the truth) and two tie
    logits; see :func:`symmetric_log_confusion`. Priors: ``a ~ N(1.5, 1.5)``, ``b ~ N(0, 1)``, tie logits
    ``~ N(-2, 1.5)`` (tie reported on a non-tie) and ``N(0, 1.5)`` (tie reported on a tie).

    Inference
    ---------
    ``"vb"`` (default): closed-form mean-field variational Bayes, ``q(z) q(pi) prod q(theta_wk)`` with Dirichlet
    factors, each update one sparse product over the judgments (:mod:`accord.models._vb`); fast (about as fast as
    crowd-kit's EM) but, like every mean-field fit, its intervals are too narrow (about 0.84 coverage of 90%
    intervals on synthetic data with the empirical prior). ``"gibbs"``: blocked Gibbs sampling of the same conjugate
    model (exact posterior draws; each sweep one sparse product and conjugate Dirichlet draws, all chains at once;
    started from the VB solution), a few times slower than ``"vb"`` and honest about uncertainty. ``"map"``,
    ``"meanfield"``, ``"lowrank"``: SVI on the Pyro model with ``z`` enumerated (``TraceEnum_ELBO``) and an
    autoguide over the continuous globals (AutoDelta, AutoNormal, AutoLowRankMultivariateNormal);
    ``guide="dirichlet"`` with ``"meanfield"`` uses the conjugate family instead (Dirichlet factors and a per-pair
    categorical ``q(z)``, enumerated in the guide), the same family as ``"vb"``, which the tests use to check the
    closed-form solver.
    ``"nuts"``: NUTS with ``z`` enumerated, for small data. ``symmetric=True`` has no closed form: use ``"map"``,
    ``"meanfield"``, ``"lowrank"`` or ``"nuts"``.

    Soft labels are ``E[p(z_i | y, theta, pi)]`` over posterior draws of the parameters (exact enumeration under each
    draw); their uncertainty is the draws' standard deviation of the top class's probability.

    Initialization (``init``): ``"vote"`` starts from vote fractions (VB's first M-step uses them; SVI and NUTS
    start from the VB solution when ``warm_start``); ``"random"`` from random pair posteriors; ``"uniform"`` from
    the symmetric point. Only ``"vote"`` is protected against label switching (see the tests).

    Parameters
    ----------
    symmetric
        Tie the A/B confusion symmetrically with a separate position bias (preference data only).
    prior_correct, prior_error
        Dirichlet concentrations of a confusion row on its diagonal and off it (the starting point of the fit when
        ``empirical_prior``).
    empirical_prior
        Fit ``prior_correct`` / ``prior_error`` by type-II maximum likelihood (see above; not with
        ``symmetric=True``, whose priors are normal).
    item_correlation
        ``"auto"`` (choose ``rho`` from the votes, see above) or a fixed ``rho`` in ``[0, 1]`` for the tempering
        of the item posterior; ``0`` turns it off.
    class_prior
        Symmetric Dirichlet concentration of the class prior.
    init, warm_start
        See above.
    guide
        ``"auto"`` (autoguides) or ``"dirichlet"`` (the conjugate mean-field family; with ``inference="meanfield"``).
    rank
        Rank of the low-rank guide (default: Pyro's, about the square root of the number of parameters).
    final_lr_fraction
        SVI learning rate decays geometrically to this fraction of ``learning_rate`` at ``max_steps``.
    tol
        SVI: relative change of the averaged loss that stops the fit; ``"vb"``: the largest change of any pair's
        class probability in one iteration.
    Others: see :class:`accord.models.base.RaterModel`.

    Fitted attributes: ``soft_labels_``, ``annotators_`` (``n_judgments``, ``reliability``, ``spam``, ``bias``, each
    with ``_lower`` / ``_upper`` 90% credible bounds), ``confusion_`` (posterior mean ``[W, K, L]``),
    ``class_prior_``, ``prior_correct_`` / ``prior_error_`` (the prior used), ``item_correlation_`` (``rho``),
    ``n_iter_`` / ``converged_`` (vb), ``svi_`` (SVI loss history), ``n_divergences_`` (NUTS).

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
    >>> sorted(model.annotators_.columns)[:3]
    ['bias', 'bias_lower', 'bias_upper']

    References
    ----------
    A. P. Dawid and A. M. Skene (1979). Maximum likelihood estimation of observer error-rates using the EM algorithm.
    *Journal of the Royal Statistical Society C* 28(1), 20-28. https://doi.org/10.2307/2346806

    M. J. Beal (2003). *Variational algorithms for approximate Bayesian inference*, ch. 2 (VB-EM hyperparameters).
    PhD thesis, University College London.

    L. Kish (1965). *Survey Sampling*. Wiley (the design effect ``1 + (m - 1) rho``).

    C. Varin, N. Reid and D. Firth (2011). An overview of composite likelihood methods. *Statistica Sinica* 21(1),
    5-42.
    """

    method: ClassVar[str] = "dawid-skene"
    supported_inference: ClassVar[tuple[str, ...]] = ("vb", "gibbs", "map", "meanfield", "lowrank", "nuts")

    def __init__(
        self,
        *,
        inference: str = "vb",
        symmetric: bool = False,
        prior_correct: float = 2.0,
        prior_error: float = 1.0,
        class_prior: float = 1.0,
        empirical_prior: bool = True,
        item_correlation: float | str = "auto",
        init: str = "vote",
        warm_start: bool = True,
        guide: str = "auto",
        rank: int | None = None,
        final_lr_fraction: float = 0.1,
        max_steps: int = 2000,
        learning_rate: float = 0.05,
        tol: float = 1e-4,
        patience: int = 20,
        batch_size: int | None = None,
        num_samples: int = 200,
        num_warmup: int = 300,
        num_chains: int = 2,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        super().__init__(
            inference=inference, max_steps=max_steps, learning_rate=learning_rate, tol=tol, patience=patience,
            batch_size=batch_size, num_samples=num_samples, num_warmup=num_warmup, num_chains=num_chains, seed=seed,
            device=device, progress=progress,
        )
        self.symmetric = symmetric
        self.prior_correct = prior_correct
        self.prior_error = prior_error
        self.class_prior = class_prior
        self.empirical_prior = empirical_prior
        self.item_correlation = item_correlation
        self.init = init
        self.warm_start = warm_start
        self.guide = guide
        self.rank = rank
        self.final_lr_fraction = final_lr_fraction

    @property
    def _global_sites(self) -> tuple[str, ...]:  # type: ignore[override]
        if not self.symmetric:
            return ("pi", "theta")
        if self._k == 3:
            return ("pi", "accuracy", "position_bias", "tie", "tie_tie")
        return ("pi", "accuracy", "position_bias")

    # -- fitting -------------------------------------------------------------------------------------------------

    def _check_settings(self, encoded: Encoded) -> None:
        if self.init not in INIT_METHODS:
            raise AccordError(f"init must be one of {INIT_METHODS}, not '{self.init}'")
        if self.guide not in ("auto", "dirichlet"):
            raise AccordError(f"guide must be 'auto' or 'dirichlet', not '{self.guide}'")
        if self.guide == "dirichlet" and (self.inference != "meanfield" or self.symmetric):
            raise AccordError("guide='dirichlet' is the conjugate mean-field family: use it with inference='meanfield'"
                              " and symmetric=False")
        if self.prior_correct <= 0 or self.prior_error <= 0 or self.class_prior <= 0:
            raise AccordError("prior_correct, prior_error and class_prior must be positive")
        rho = self.item_correlation
        if not (rho == "auto" or (isinstance(rho, (int, float)) and not isinstance(rho, bool) and 0 <= rho <= 1)):
            raise AccordError(f"item_correlation must be 'auto' or a number in [0, 1], not {rho!r}")
        if self.symmetric:
            if encoded.form != "preference" or tuple(encoded.classes[:2]) != ("A", "B"):
                raise AccordError("symmetric=True needs preference data (classes A, B and optionally tie)")
            if self.inference in ("vb", "gibbs"):
                raise AccordError("symmetric=True has no closed-form solver: use inference='map', 'meanfield', "
                                  "'lowrank' or 'nuts'")

    def _fit(self, encoded: Encoded) -> None:
        self._check_settings(encoded)
        self._prepare(encoded)
        self._k = encoded.n_classes
        device = self._torch_device
        k = encoded.n_classes
        eye = torch.eye(k, dtype=torch.float64, device=device)
        self._confusion_prior = self.prior_error + (self.prior_correct - self.prior_error) * eye
        self._class_prior_vec = torch.full((k,), float(self.class_prior), dtype=torch.float64, device=device)
        self._vb = None
        if k == 1:
            self._fit_trivial()
            return
        closed_form = self.inference in ("vb", "gibbs")
        empirical = self.empirical_prior and not self.symmetric
        if closed_form or (self.warm_start and self.init == "vote") or self.guide == "dirichlet" or empirical:
            self._vb = vb_dawid_skene(
                self._incidence, self._confusion_prior, self._class_prior_vec, self._initial_item_probs(encoded),
                max_iter=self.max_steps if closed_form else 1000, tol=self.tol if closed_form else 1e-6,
                empirical_prior=empirical,
            )
            self.n_iter_ = self._vb.n_iter
            self.converged_ = self._vb.converged
            if empirical:
                self._confusion_prior = self._vb.confusion_prior
        self.prior_correct_ = float(self._confusion_prior[0, 0])
        self.prior_error_ = float(self._confusion_prior[0, 1])
        if self.inference == "vb":
            self._draw_from_vb(self._vb)
            self._finish()
        elif self.inference == "gibbs":
            vb = self._vb
            draws = gibbs_dawid_skene(
                self._incidence, self._confusion_prior, self._class_prior_vec,
                vb.confusion_alpha / vb.confusion_alpha.sum(-1, keepdim=True), vb.class_alpha / vb.class_alpha.sum(),
                num_samples=self.num_samples, num_warmup=self.num_warmup, num_chains=self.num_chains,
            )
            self._log_theta = draws.theta.double().clamp_min(TINY).log()
            self._log_pi = draws.pi.double().clamp_min(TINY).log()
            self._finish()
        elif self.guide == "dirichlet":
            self._fit_dirichlet_svi(encoded)
        else:
            self._fit_pyro(encoded)

    def _finish(self) -> None:
        self._choose_item_correlation()
        super()._finish()

    def _choose_item_correlation(self) -> None:
        """Set ``item_correlation_`` (``rho``) and the item temperatures ``T_i = 1 + (n_i - 1) rho``."""
        rho = self.item_correlation
        if rho == "auto":
            encoded = self.encoded_
            device = self._torch_device
            as_index = lambda a: torch.as_tensor(a, dtype=torch.long, device=device)  # noqa: E731
            incidence = self._incidence
            vb = self._vb if not self.symmetric else None
            if vb is not None:  # the VB posterior, with each judgment's own count removed from its row
                alpha = vb.confusion_alpha
                log_theta = (alpha / alpha.sum(-1, keepdim=True)).log()
                log_pi = (vb.class_alpha / vb.class_alpha.sum()).log()
                extra = {"confusion_alpha": alpha, "item_probs": vb.item_probs}
            else:  # posterior means of the draws
                log_theta_draws, log_pi_draws = self._flat_draws()
                log_theta = log_theta_draws.double().exp().mean(0).clamp_min(TINY).log()
                log_pi = log_pi_draws.double().exp().mean(0).clamp_min(TINY).log()
                extra = {}
            rho = select_item_correlation(
                incidence, as_index(encoded.items), as_index(encoded.workers), as_index(encoded.labels),
                log_theta.to(incidence.val.dtype), log_pi.to(incidence.val.dtype), **extra,
            )
        self.item_correlation_ = float(rho)
        self._item_temperature = design_effect(self._incidence, self.item_correlation_)

    def _initial_item_probs(self, encoded: Encoded) -> torch.Tensor:
        device = self._torch_device
        k = encoded.n_classes
        if self.init == "vote":
            counts = torch.as_tensor(encoded.vote_counts(), dtype=torch.float64, device=device)
            return (counts + 1e-3) / (counts + 1e-3).sum(-1, keepdim=True)
        if self.init == "random":
            generator = torch.Generator().manual_seed(self.seed)
            raw = torch.rand(encoded.n_items, k, generator=generator, dtype=torch.float64).to(device)
            return raw / raw.sum(-1, keepdim=True)
        return torch.full((encoded.n_items, k), 1.0 / k, dtype=torch.float64, device=device)

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        prior = self._confusion_prior
        pi = pyro.sample("pi", dist.Dirichlet(self._class_prior_vec))
        w, k = data.n_workers, data.n_classes
        if self.symmetric:
            with pyro.plate("annotators", w, dim=-1):
                sample = {
                    "accuracy": pyro.sample("accuracy", dist.Normal(prior.new_tensor(1.5), 1.5)),
                    "position_bias": pyro.sample("position_bias", dist.Normal(prior.new_tensor(0.0), 1.0)),
                }
                if k == 3:
                    sample["tie"] = pyro.sample("tie", dist.Normal(prior.new_tensor(-2.0), 1.5))
                    sample["tie_tie"] = pyro.sample("tie_tie", dist.Normal(prior.new_tensor(0.0), 1.5))
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

    def _warm(self) -> bool:
        return self.warm_start and self.init == "vote"

    def _store_extra_draws(self, samples: dict[str, torch.Tensor]) -> None:
        if self.symmetric:
            for name in self._global_sites[1:]:
                self._extra_draws[name] = (samples[name].double().cpu().numpy(), ["annotator"])

    def _new_annotator_log_confusion(self, log_pi: torch.Tensor) -> torch.Tensor:
        s = log_pi.shape[0]
        if self.symmetric:
            generator = torch.Generator().manual_seed(self.seed + 7)
            n = 256
            draw = {
                "accuracy": 1.5 + 1.5 * torch.randn(n, generator=generator),
                "position_bias": torch.randn(n, generator=generator),
            }
            if self._k == 3:
                draw["tie"] = -2.0 + 1.5 * torch.randn(n, generator=generator)
                draw["tie_tie"] = 1.5 * torch.randn(n, generator=generator)
            mean = self._symmetric_log_theta(draw).exp().mean(0).to(log_pi)
        else:
            prior = self._confusion_prior
            mean = (prior / prior.sum(-1, keepdim=True)).to(log_pi)
        return mean.log().expand(s, -1, -1)

    # -- the conjugate family by SVI (to check the closed-form solver) ------------------------------------------

    def _fit_dirichlet_svi(self, encoded: Encoded) -> None:
        """SVI in the VB family: Dirichlet ``q(pi)``, ``q(theta_wk)`` and categorical ``q(z_i)`` enumerated in the
        guide, started (deliberately) from the vote-fraction M-step rather than from the VB optimum."""
        data = pad_judgments(encoded).to(self._torch_device)
        q0 = self._initial_item_probs(encoded)
        one_step = vb_dawid_skene(self._incidence, self._confusion_prior, self._class_prior_vec, q0, max_iter=1)
        init_theta, init_pi = one_step.confusion_alpha, one_step.class_alpha
        w, k = encoded.n_workers, encoded.n_classes

        def guide(data: PaddedJudgments, batch_size: int | None = None) -> None:
            a_pi = pyro.param("q_pi", init_pi.clone(), constraint=dist.constraints.positive)
            pyro.sample("pi", dist.Dirichlet(a_pi))
            a_theta = pyro.param("q_theta", init_theta.clone(), constraint=dist.constraints.positive)
            with pyro.plate("annotators", w, dim=-2), pyro.plate("true_class", k, dim=-1):
                pyro.sample("theta", dist.Dirichlet(a_theta))
            q_z = pyro.param("q_z", q0.clone(), constraint=dist.constraints.simplex)
            subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
            with pyro.plate("items", data.n_items, subsample_size=subsample, dim=-2,
                            device=data.workers.device) as idx:
                pyro.sample("z", dist.Categorical(q_z[idx].unsqueeze(-2)), infer={"enumerate": "parallel"})

        self.svi_ = run_svi(
            self._model, guide, TraceEnum_ELBO(max_plate_nesting=2), data, self.batch_size,
            max_steps=self.max_steps, learning_rate=self.learning_rate, tol=self.tol, patience=self.patience,
            progress=self.progress, description="DawidSkene(meanfield, dirichlet guide)",
            final_lr_fraction=self.final_lr_fraction,
        )
        store = pyro.get_param_store()
        a_theta, a_pi = store["q_theta"].detach(), store["q_pi"].detach()
        self.guide_item_probs_ = store["q_z"].detach().cpu().numpy()
        self.confusion_alpha_ = a_theta.cpu().numpy()
        theta = dist.Dirichlet(a_theta).sample((self.num_samples,))
        pi = dist.Dirichlet(a_pi).sample((self.num_samples,))
        self._log_theta = theta.clamp_min(TINY).log()[None]
        self._log_pi = pi.clamp_min(TINY).log()[None]
        self._finish()
