"""Confusion-matrix models (the Dawid-Skene family): everything that follows from draws of ``theta`` and ``pi``.

A :class:`ConfusionModel` describes annotator ``w`` by a confusion matrix ``theta[w, k, l] = P(label l | true class
k)`` and the pairs by a class prior ``pi``; the true class of each pair is summed out. Its ``_fit`` stores posterior
draws ``self._log_theta`` (``[chains, draws, W, K, L]``) and ``self._log_pi`` (``[chains, draws, K]``), optionally
``self._extra_draws`` (more sites for ArviZ), and calls :meth:`ConfusionModel._finish`; it implements
:meth:`~ConfusionModel._new_annotator_log_confusion` (the expected confusion of an unseen annotator). The soft labels,
the annotator table, the ArviZ export and the held-out predictive then come from the sparse products of
:mod:`accord.models._vb`, and the Pyro models of the family (``_model``, ``_log_params``, ``_init_values``) are fitted
by :meth:`ConfusionModel._fit_pyro`.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError, Encoded
from accord.models._data import PaddedJudgments, id_ranks, in_id_order, pad_judgments, vote_fractions
from accord.models._vb import (ConfusionMoments, Incidence, VBResult, build_incidence, informative_items,
                               item_log_posterior_scores, judgment_loglik_draws, summarize_item_posterior)
from accord.datasets.schema import check_two_classes
from accord.models.base import ANNOTATOR_CHUNK, ConvergenceWarning, ItemSummary, RaterModel, deferred

TINY = 1e-30  # still a normal float32
#: ``"vote"``: start from vote fractions (the guard against label switching); ``"uniform"``: from the symmetric point
#: (or the prior's median); ``"random"``: from random values (only to show what ``"vote"`` protects against).
INIT_METHODS: tuple[str, ...] = ("vote", "random", "uniform")


def enumerated_likelihood(data: PaddedJudgments, log_pi: torch.Tensor, log_theta: torch.Tensor,
                          batch_size: int | None = None) -> None:
    """``z_i ~ Categorical(pi)`` (enumerated) and ``y_im ~ Categorical(theta[w_im, z_i])`` over the padded grid.

    Plates: ``items`` (dim -2, optionally subsampled: the log-likelihood is scaled by ``n_items / batch_size``) and
    ``judgments`` (dim -1, the padded slots of an item, masked). ``log_theta`` is ``[W, K, L]``.
    """
    import pyro
    import pyro.distributions as dist

    subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
    with pyro.plate("items", data.n_items, subsample_size=subsample, dim=-2, device=data.workers.device) as idx:
        z = pyro.sample("z", dist.Categorical(logits=log_pi), infer={"enumerate": "parallel"})
        with pyro.plate("judgments", data.max_judgments, dim=-1):
            logits = log_theta[data.workers[idx], z.long()]  # [(K,) b, M, L]
            pyro.sample("y", dist.Categorical(logits=logits).mask(data.mask[idx]), obs=data.labels[idx])


class ConfusionModel(RaterModel):
    """What confusion-matrix models share, once ``_fit`` has stored posterior draws (see the module docstring).

    A model of the family fitted by Pyro as well is also a :class:`~accord.models.base.PyroRaterModel` (the
    driver's settings), e.g. ``class DawidSkene(ConfusionModel, PyroRaterModel)``.

    Parameters
    ----------
    init, warm_start
        ``"vote"`` starts from vote fractions (the closed-form fit's first M-step uses them; SVI and NUTS start from
        that fit when ``warm_start``), ``"random"`` from random pair posteriors, ``"uniform"`` from the symmetric
        point. Only ``"vote"`` guards against label switching.
    class_prior
        Symmetric Dirichlet concentration of the class prior ``pi``.
    """

    method: ClassVar[str] = "confusion-model"
    no_overlap_consequence: ClassVar[str] = "the reliabilities and soft labels are the prior's"
    #: posterior means of the draws, computed on first access
    confusion_ = deferred()
    class_prior_ = deferred()
    init: str = "vote"
    warm_start: bool = True
    class_prior: float = 1.0

    def _prepare_fit(self, encoded: Encoded) -> None:
        check_start(self.init, self.class_prior)
        self._incidence = build_incidence(encoded, self._torch_device)
        # [I] the pairs of two judgments or more (None: all): the only ones that tell a rater's accuracy
        self._informative = informative_items(self._incidence)
        self._extra_draws: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._item_temperature: torch.Tensor | None = None  # [I] design-effect temperatures (DawidSkene)
        self._moments: ConfusionMoments | None = None  # set by models whose soft labels come from moments
        self._class_prior_vec = torch.full((encoded.n_classes,), float(self.class_prior), dtype=torch.float64,
                                           device=self._torch_device)
        check_two_classes(encoded)  # the distributed fit comes here without RaterModel.fit

    def _no_overlap(self) -> bool:
        """Whether no pair has two judgments: the raters' confusions are then the prior's (the warning is
        :meth:`RaterModel._warn_if_no_overlap`, given once by every fit)."""
        return self._informative is not None and not bool(self._informative.any())

    def _initial_item_probs(self, encoded: Encoded, init: str | None = None) -> torch.Tensor:
        """The first ``q(z)`` of a closed-form fit: vote fractions, random or uniform (``init``, or the setting)."""
        device, k, init = self._torch_device, encoded.n_classes, init or self.init
        if init == "vote":
            return torch.as_tensor(vote_fractions(encoded, 1e-3), dtype=torch.float64, device=device)
        if init == "random":
            generator = torch.Generator().manual_seed(self.seed)
            raw = torch.rand(encoded.n_items, k, generator=generator, dtype=torch.float64).to(device)
            return raw / raw.sum(-1, keepdim=True)
        return torch.full((encoded.n_items, k), 1.0 / k, dtype=torch.float64, device=device)

    def _flat_draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        c, d = self._log_pi.shape[:2]
        return self._log_theta.reshape(c * d, *self._log_theta.shape[2:]), self._log_pi.reshape(c * d, -1)

    def _draw_from_vb(self, vb: VBResult) -> None:
        """Store ``num_samples`` draws of the mean-field posterior ``q(theta) q(pi)`` of a closed-form VB fit, in
        float32 (with 100k annotators and 200 draws the confusion draws alone are 0.7 GB in float32), taken in the
        annotators' id order (:func:`to_codes`)."""
        ranks = id_ranks(self.encoded_.worker_index)
        alpha = vb.confusion_alpha[torch.as_tensor(np.argsort(ranks), device=vb.confusion_alpha.device)]
        theta = torch.distributions.Dirichlet(alpha.float()).sample((self.num_samples,))
        pi = torch.distributions.Dirichlet(vb.class_alpha).sample((self.num_samples,))
        self._log_theta = to_codes(theta.clamp_min_(TINY).log_(), ranks, dim=1)[None]
        self._log_pi = pi.clamp_min(TINY).log()[None]

    def _keep_vb(self, vb: VBResult, warn: bool = True) -> None:
        """Keep a closed-form VB-EM fit (``n_iter_``, ``converged_``), with a warning where it stopped at
        ``max_steps`` unconverged (as MACE's and the SVI fits warn; the soft labels were then silently unfinished)."""
        self._vb = vb
        self._keep_convergence(vb.n_iter, vb.converged, warn, stacklevel=6)

    def _keep_convergence(self, n_iter: int, converged: bool, warn: bool = True, stacklevel: int = 5) -> None:
        """``n_iter_`` and ``converged_`` of a closed-form VB-EM loop, and the one ConvergenceWarning where it stopped
        at ``max_steps`` unconverged (``stacklevel`` points at the caller of ``fit``)."""
        self.n_iter_, self.converged_ = n_iter, converged
        if warn and not converged:
            warnings.warn(f"{type(self).__name__}(vb): VB-EM stopped at max_steps={self.max_steps} iterations before "
                          f"it converged (tol={self.tol}); raise max_steps and check the soft labels",
                          ConvergenceWarning, stacklevel=stacklevel)

    def _finish(self) -> None:
        self._item_summary = self._summarize_items()
        self._defer("_posterior_means", "confusion_", "class_prior_")

    def _posterior_means(self) -> None:
        """``confusion_`` and ``class_prior_``: the means of the draws (computed on first access)."""
        log_theta, log_pi = self._flat_draws()
        self.confusion_ = torch.cat([chunk.float().exp().mean(0, dtype=torch.float64)
                                     for chunk in log_theta.split(ANNOTATOR_CHUNK, dim=1)]).cpu().numpy()
        pi = log_pi.float().exp().mean(0, dtype=torch.float64).cpu().numpy()
        self.class_prior_ = pd.Series(pi, index=list(self.encoded_.classes), name="class_prior")

    def _summarize_items(self, klass: int | None = None) -> ItemSummary:
        """Soft labels and intervals of the pairs: ``p(z_i | y_i, theta, pi)`` summarised over the draws (the sd and
        interval of class ``klass``, its index, where given; else of each item's top class)."""
        return summarize_item_posterior(self._incidence.astype(torch.float32), *self._flat_draws(),
                                        self._item_temperature, klass=klass)

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        return self._flat_draws()[0][:, lo:hi].float().exp()

    def _class_prior_draws(self) -> torch.Tensor:
        return self._flat_draws()[1].float().exp()

    def _posterior_draws(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        return {"theta": (self._log_theta.exp().double().cpu().numpy(), ["annotator", "true_class", "class"]),
                "pi": (self._log_pi.exp().double().cpu().numpy(), ["true_class"]), **self._extra_draws}

    def _loglik_draws(self) -> np.ndarray:
        log_theta, log_pi = self._flat_draws()
        flat = confusion_loglik_draws(self._incidence, self.encoded_, log_theta, log_pi)
        return flat.reshape(*self._log_pi.shape[:2], -1)

    def _new_annotator_log_confusion(self, log_pi: torch.Tensor) -> torch.Tensor:
        """``[S, K, L]``: the log expected confusion matrix of an annotator unseen in training, under each draw."""
        raise NotImplementedError

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """``log p(y_n | training judgments)`` for each judgment of a new table, averaged over posterior draws.

        A judgment's pair keeps the posterior its training judgments gave it (the class prior when it had none;
        calibrated as the soft labels are); an annotator unseen in training gets the model's expected confusion
        matrix for a new annotator. A model whose soft labels come from posterior moments (``_moments``) predicts
        with its soft labels and the annotators' posterior-mean confusions (the posterior predictive when items and
        annotators are independent a posteriori), without draws.
        """
        self._check_fitted()
        device = self._torch_device
        items, workers, labels = heldout_codes(self.encoded_, judgments, device)
        dtype = self._incidence.val.dtype
        if self._moments is not None:  # the soft labels themselves, with the annotators' predictive confusions
            log_theta, log_pi = self._moments.log_theta.to(dtype)[None], self._moments.log_pi.to(dtype)[None]
            mean = torch.as_tensor(self._item_summary.mean, dtype=dtype, device=device)
            item_post = mean.clamp_min(TINY).log()[None]
        else:
            log_theta, log_pi = self._flat_draws()
            log_theta, log_pi = log_theta.to(dtype), log_pi.to(dtype)
            scores = item_log_posterior_scores(self._incidence, log_theta, log_pi, self._item_temperature)
            item_post = torch.log_softmax(scores, dim=-1)  # [S, I, K]
        post = torch.where((items >= 0)[None, :, None], item_post[:, items.clamp_min(0)], log_pi[:, None, :])
        new_conf = self._new_annotator_log_confusion(log_pi).to(dtype)  # [S, K, L]
        seen = log_theta.transpose(-1, -2)[:, workers.clamp_min(0), labels]  # [S, N, K]
        unseen = new_conf[:, :, labels].permute(0, 2, 1)  # [S, N, K]
        per_draw = torch.logsumexp(post + torch.where((workers >= 0)[None, :, None], seen, unseen), dim=-1)
        return (torch.logsumexp(per_draw, dim=0) - np.log(log_pi.shape[0])).double().cpu().numpy()

    #: sample sites of the model's continuous globals (what guides and NUTS see)
    _global_sites: ClassVar[tuple[str, ...]] = ()

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        raise NotImplementedError

    def _log_params(self, sample: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_pi [..., K], log_theta [..., W, K, L])`` from a dict of global draws (any leading batch shape)."""
        raise NotImplementedError

    def _init_values(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _extra_sites(self) -> dict[str, list[str]]:
        """Model-specific posterior sites for ArviZ (besides theta and pi), with their dims."""
        return {}

    def _annotator_sites(self) -> tuple[str, ...]:
        """The sites of :attr:`_global_sites` in the annotators' plate (their first axis is the annotator)."""
        return ()

    def _fit_pyro(self, encoded: Encoded) -> None:
        """Fit the Pyro model on the judgments in id order (:func:`~accord.models._data.in_id_order`: the guide's
        random draws, the subsampled pairs and the posterior draws then follow the judgments as a set and the seed,
        not the order of the rows), then map the annotator sites' draws back to the codes; ``guide_`` keeps the id
        order."""
        from accord.models.pyro_fit import fit_pyro

        ordered, _, ranks = in_id_order(encoded)
        device = self._torch_device
        annotators = self._annotator_sites()
        warm = self.warm_start and self.init == "vote"
        init = None
        if warm or self.inference == "nuts":
            order = torch.as_tensor(np.argsort(ranks), device=device)
            init = {name: value[order] if name in annotators else value for name, value in self._init_values().items()}
        draws = self._keep_fit(fit_pyro(  # type: ignore[attr-defined]
            self, self._model, pad_judgments(ordered).to(device), sites=list(self._global_sites),
            enumerated=True, init=init, rank=self.rank, subsample=self.batch_size,
            vectorize_draws=self.inference != "lowrank",
        ))
        draws = {name: to_codes(value, ranks, dim=2) if name in annotators else value for name, value in draws.items()}
        for name, dims in self._extra_sites().items():
            self._extra_draws[name] = (draws[name].double().cpu().numpy(), dims)
        log_pi, log_theta = self._log_params(draws)
        self._log_pi, self._log_theta = log_pi.detach(), log_theta.detach()
        self._finish()


def to_codes(draws: torch.Tensor, ranks: np.ndarray, dim: int) -> torch.Tensor:
    """``draws`` taken with axis ``dim`` in id order, with that axis in the codes' order (``ranks``: the place of each
    code's id, :func:`~accord.models._data.id_ranks`); the tensor itself where the two orders agree."""
    if bool((ranks == np.arange(len(ranks))).all()):
        return draws
    return draws.index_select(dim, torch.as_tensor(ranks, device=draws.device))


def check_start(init: str, class_prior: float | None, uniform_prior: bool = False) -> None:
    """One error for an ``init`` not in :data:`INIT_METHODS` or a class-prior concentration that is not a positive
    number (or ``None``, a fixed uniform prior, where ``uniform_prior``)."""
    if init not in INIT_METHODS:
        raise AccordError(f"init must be one of {INIT_METHODS}, not {init!r}")
    if not ((class_prior is None and uniform_prior) or (isinstance(class_prior, (int, float))
                                                        and 0 < class_prior < math.inf)):
        allowed = "a positive number or None (uniform)" if uniform_prior else "a positive number"
        raise AccordError(f"class_prior must be {allowed}, not {class_prior!r}")


def confusion_loglik_draws(incidence: Incidence, encoded: Encoded, log_theta: torch.Tensor,
                           log_pi: torch.Tensor) -> np.ndarray:
    """``[D, N]`` :func:`~accord.models._vb.judgment_loglik_draws` of the fitted judgments, in the incidence's dtype."""
    device, dtype = incidence.val.device, incidence.val.dtype
    items = torch.as_tensor(encoded.items, device=device)
    cells = torch.as_tensor(encoded.workers * encoded.n_classes + encoded.labels, device=device)
    return judgment_loglik_draws(incidence, items, cells, log_theta.to(dtype), log_pi.to(dtype))


def heldout_codes(encoded: Encoded, judgments: pd.DataFrame,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair, annotator and label codes of a new table's judgments among the fitted ones (-1: a pair or annotator
    unseen in fitting); crowd-kit's ``task`` / ``worker`` column names are accepted."""
    judgments = judgments.rename(columns={"task": "pair_id", "worker": "annotator"})
    labels = torch.as_tensor(label_codes(encoded, judgments), device=device)
    items = torch.as_tensor(encoded.item_index.get_indexer(judgments["pair_id"]), device=device)
    workers = torch.as_tensor(encoded.worker_index.get_indexer(judgments["annotator"]), device=device)
    return items, workers, labels


def label_codes(encoded: Encoded, judgments: pd.DataFrame) -> np.ndarray:
    """The codes of a new table's labels among the fitted classes (an unknown label is an error)."""
    codes = pd.Index(list(encoded.classes)).get_indexer(judgments["label"])
    if (codes < 0).any():
        bad = judgments["label"].to_numpy()[codes < 0][0]
        raise AccordError(f"label {bad!r} is not one of the fitted classes {list(encoded.classes)}")
    return codes
