"""Latent rater types: a finite mixture of label models, for disagreement nobody labelled a group for.

When no covariate says who prefers what, raters who share a taste can still be found from their votes alone:
:class:`RaterTypes` assumes each annotator belongs to one of ``T`` latent types, each type with its own preference
on every pair, and learns the types, each annotator's (soft) type and each type's ``P(A > B)`` per pair. The number
of types is chosen by held-out likelihood.

Model
-----
Annotator ``j`` has a latent type ``t_j ~ Categorical(omega)``, ``omega ~ Dirichlet(2, ..., 2)``. Type ``t`` prefers A
on pair ``i`` with log-odds ``eta_it = mu_i + d_it``: the population's ``mu_i ~ N(0, s_mu)`` plus the type's
deviation ``d_it ~ N(0, s_d)`` (hierarchical: a small type shrinks toward the population). Each judgment is the
annotator's own draw from their type's clean distribution ``pi_it`` (Bernoulli, or Rao-Kupper with ties: see
:func:`accord.models.context.preference_probs`; for a categorical table with ``K > 2`` classes ``mu_i``, ``d_it``
are vectors of ``K`` logits and ``pi_it = softmax(eta_it)``; a binary categorical table is the Bernoulli case,
its first class in the place of A), reported honestly with probability ``h_j = sigma(a_j)``,
``a_j ~ StudentT_3(m_a, s_a)``, else replaced by a label from a population spam distribution ``s`` (a softmax of
``N(0, 1)`` logits: ``K`` of them for ``K > 2`` unordered classes, so that no class is the reference; else ``K - 1``
against a 0 for the last class, the tie or B):

.. math::

    p(y_{j\\cdot}) = \\sum_t \\omega_t \\prod_{n \\in j} \\big(h_j\\,\\pi_{i_n t}(y_n) + (1 - h_j)\\,s(y_n)\\big).

The type is summed out exactly: per annotator the judgments' log-likelihoods under each type are added up
(``index_add`` over a flat ``judgments`` axis, no Python loop) and combined by ``logsumexp`` in a named
``annotators`` plate; this is the same marginal that ``TraceEnum_ELBO`` would compute for an enumerated
``t_j``, without padding every annotator's judgments to a common length. The posterior type probabilities
(responsibilities) are the exact conditional ``p(t_j | y, theta)``.

This is the mixture-of-annotator-models idea of Venanzi et al. (community-based Bayesian aggregation, WWW 2014)
applied to preferences, close to the latent-class preference models of the recommender literature and to the
"jury learning" view of pluralistic labels (Gordon et al., CHI 2022).

Label switching: types are exchangeable, so the fit starts from a spectral clustering of the annotators' votes
(residuals from the pair means, truncated SVD, k-means++), the warm start that keeps SVI off the symmetric
point; types are then ordered by share, largest first.

Choosing ``T``: each candidate is fitted on 80% of every annotator's judgments and scored on the other 20% by
``log sum_t p(t_j | training votes) p(y_n | t)``; the smallest ``T`` whose mean held-out log-likelihood is within
one standard error (of the paired difference) of the best is kept. Every candidate is scored: the held-out score
need not fall for good once it falls (each fit is a local optimum from its own warm start; on ``make_synthetic``'s
default mix 2 types scored below 1 and 3 types above both), so a search that ended at the first dip missed the best.

Example
-------
>>> model = RaterTypes(n_types="auto").fit(judgments)     # doctest: +SKIP
>>> model.selection_        # held-out log-likelihood per candidate number of types    # doctest: +SKIP
>>> model.annotators_       # reliability, type, type probability                     # doctest: +SKIP
>>> model.types_            # share, size and agreement of each type                  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch

from accord.datasets import AccordError, Encoded, validate
from accord.datasets.schema import is_validated
from accord.models._data import id_order, in_id_order, with_attrs
from accord.models.base import ConvergenceWarning, ItemSummary, PyroRaterModel, interval_columns, summarize_draws
from accord.models.confusion import label_codes, to_codes
from accord.models.context import RATER_DF, GroupProbabilities, _cell_sums, each_draw, log_mean_exp, pair_log_odds
from accord.models.context import preference_probs, softmax_with_zero, tie_start
from accord.models.pyro_fit import fit_pyro

TYPES_INFERENCE: tuple[str, ...] = ("map", "meanfield", "lowrank")
#: judgments an annotator needs before n_types="auto" holds some of them out
HOLDOUT_MINIMUM = 5
_TYPE_HYPER: tuple[str, ...] = ("pair_scale", "type_scale", "honest_mean", "honest_sd")


class RaterTypes(PyroRaterModel):
    """Finite mixture of rater types (see the module docstring for the maths).

    Parameters
    ----------
    n_types
        Number of types, at most the number of annotators (more is refused, as scikit-learn's ``KMeans`` refuses
        more clusters than samples), or ``"auto"`` to choose among ``candidates`` by held-out likelihood.
    candidates
        Numbers of types tried when ``n_types="auto"``; those above the number of annotators are left out.
    holdout
        Share of each annotator's judgments held out for the choice (annotators with fewer than 5 keep all).
    posterior_steps
        SVI steps of the posterior stage for ``meanfield``/``lowrank`` (after the MAP stage).
    Others: :class:`~accord.models.base.PyroRaterModel`; ``inference`` in ``map`` (default: the type posterior is
    exact given the parameters, which are point estimates), ``meanfield``, ``lowrank``. As in the context
    model (``ContextPreference``), the MAP stage holds the population hyperparameters
    (``pair_scale``, ``type_scale``, ``honest_mean``, ``honest_sd``) at their starting values, so under ``map`` they
    are never learned; the posterior stage of ``meanfield`` / ``lowrank`` learns them.

    Fitted attributes: ``n_types_``, ``selection_`` (with ``"auto"``), ``annotators_`` (the common columns, the
    type's clean label read as the truth; ``honest_share`` = ``sigmoid(a_j)`` with its interval, ``type`` and
    ``type_probability``), ``types_``, ``soft_labels_`` (population aggregate by type share),
    :meth:`group_probabilities` (per-type soft labels).
    """

    method: ClassVar[str] = "rater-types"
    supported_inference: ClassVar[tuple[str, ...]] = TYPES_INFERENCE
    reads_table: ClassVar[bool] = True

    n_types: int | str = "auto"
    candidates: Sequence[int] = (1, 2, 3, 4)
    holdout: float = 0.2
    posterior_steps: int = 400
    inference: str = "map"
    max_steps: int = 1000

    def __post_init__(self) -> None:
        # a number or None had no tuple(): Python's raw 'object is not iterable', naming no setting
        if isinstance(self.candidates, (str, bytes)) or not isinstance(self.candidates, Iterable):
            raise AccordError(f"candidates must be one or more whole numbers >= 1, not {self.candidates!r}")
        self.candidates = tuple(self.candidates)

    def _prepare(self, table: pd.DataFrame | None, encoded: Encoded) -> None:
        if self.batch_size is not None:
            raise AccordError("RaterTypes fits on every judgment (no subsampled steps): batch_size must be None")
        # K > 2 categorical classes have no order and no tie: one logit per class instead of one log-odds
        self._softmax = encoded.form != "preference" and encoded.n_classes > 2
        if self.n_types == "auto":
            if not self.candidates or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1
                                          for t in self.candidates):
                raise AccordError(f"candidates must be one or more whole numbers >= 1, not {self.candidates!r}")
            if not 0 < self.holdout < 1:
                raise AccordError(f"holdout must be a share in (0, 1), not {self.holdout!r}")
            if table is None:
                raise AccordError("n_types='auto' holds judgments out of the table: use fit(judgments)")
            # the candidates' fits stop quietly: one warning after the final fit names every fit that stopped
            self.selection_, self._unsettled_candidates = _select_n_types(self, table)
            self.n_types_ = int(self.selection_.loc[self.selection_["chosen"], "n_types"].iloc[0])
        elif isinstance(self.n_types, bool) or not isinstance(self.n_types, (int, np.integer)) or self.n_types < 1:
            raise AccordError(f"n_types must be 'auto' or a whole number >= 1, not {self.n_types!r}")
        else:
            self.n_types_ = int(self.n_types)
        if self.n_types_ > encoded.n_workers:
            # as scikit-learn's KMeans with more clusters than samples: a type no annotator can fill is refused,
            # not fitted as an empty component whose clean label and share come from the prior alone
            raise AccordError(f"n_types={self.n_types_} is more than the {encoded.n_workers} annotator(s) of the "
                              "table: each type needs an annotator; set n_types to at most that")

    def _warn_if_unsettled(self) -> None:
        """One ConvergenceWarning for the final fit and the held-out fits of n_types='auto' together (one per
        candidate before: five warnings of one cause with four candidates)."""
        unsettled = self.__dict__.get("_unsettled", [])
        candidates = self.__dict__.get("_unsettled_candidates", {})
        fits = [f"the final fit (n_types={self.n_types_})"] if unsettled else []
        if candidates:
            fits.append(f"the held-out fits of n_types={', '.join(map(str, candidates))} (choosing n_types='auto')")
        if fits:
            _warn_stopped(self, [*unsettled, *(limit for stopped in candidates.values() for limit in stopped)], fits,
                          "the soft labels", stacklevel=5)

    def _fit(self, encoded: Encoded) -> None:
        # the fit runs on the judgments in id order (pairs and annotators numbered by their ids,
        # :func:`~accord.models._data.in_id_order`), its draws mapped back to the codes: in the rows' order the
        # guide's random draws fell to other pairs and annotators after a row shuffle (soft labels 0.17 apart under
        # meanfield, as a change of seed), and the sums of the MAP path rounded otherwise
        ordered, item_ranks, worker_ranks = in_id_order(encoded)
        self.data_ = data = self._types_data(ordered)
        init = self._warm_start(data)
        hyper = {k: v for k, v in init.items() if k in _TYPE_HYPER}
        draws = self._keep_fit(fit_pyro(self, self._model, data, init=init, hold=(hyper, self.posterior_steps),
                                        rank=self.rank, vectorize_draws=True))
        # guide_ keeps the id order; the draws and everything read off them are in the codes of encoded_
        back = {"mu_z": item_ranks, "type_z": item_ranks, "honest_z": worker_ranks}
        draws = {name: to_codes(value, back[name], dim=2) if name in back else value for name, value in draws.items()}
        self.data_ = data = self._types_data(encoded)
        self.draws_ = self._order_types([self._derive(sites) for sites in each_draw(draws, hyper)])
        self._summarise(data)

    def _types_data(self, encoded: Encoded) -> "_TypesData":
        """The flat judgment tensors of ``encoded`` on the model's device."""
        items, workers, labels = (torch.as_tensor(codes, device=self._torch_device)
                                  for codes in (encoded.items, encoded.workers, encoded.labels))
        return _TypesData(items=items, workers=workers, labels=labels, n_items=encoded.n_items,
                          n_workers=encoded.n_workers, n_classes=encoded.n_classes, n_types=self.n_types_,
                          softmax=self._softmax)

    def _model(self, data: "_TypesData", batch_size: int | None = None) -> None:
        T, K = data.n_types, data.n_classes
        zero, one = torch.zeros((), device=data.labels.device), torch.ones((), device=data.labels.device)
        sites: dict[str, torch.Tensor] = {}

        def sample(name: str, prior: dist.Distribution) -> None:
            sites[name] = pyro.sample(name, prior)

        sample("pair_scale", dist.LogNormal(math.log(2.0) * one, 0.5))
        sample("honest_mean", dist.Normal(1.5 * one, 1.5))
        sample("honest_sd", dist.LogNormal(zero, 0.5))
        sample("spam_logits", dist.Normal(torch.zeros(self._n_spam_logits(data), device=one.device), 1.0).to_event(1))
        if K == 3 and not data.softmax:
            sample("tie_base", dist.Normal(zero, 1.5))
        if T > 1:
            sample("type_scale", dist.LogNormal(zero, 0.5))
            sample("type_weights", dist.Dirichlet(torch.full((T,), 2.0, device=one.device)))
        logits = [K] if data.softmax else []  # the event shape of one pair's (one type's) preference
        with pyro.plate("pairs", data.n_items):
            sample("mu_z", dist.Normal(zero, one).expand([data.n_items, *logits]).to_event(len(logits)))
            if T > 1:
                sample("type_z", dist.Normal(zero, one).expand([data.n_items, T, *logits]).to_event(1 + len(logits)))
        with pyro.plate("annotators", data.n_workers):
            sample("honest_z", dist.StudentT(RATER_DF, zero, one))
            pyro.factor("types", torch.logsumexp(self._joint(self._derive(sites), data)[1], dim=-1))

    def _derive(self, sites: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p = dict(sites)
        T = self.n_types_
        p["mu"] = sites["pair_scale"] * sites["mu_z"]
        if T > 1:
            p["eta"] = p["mu"][:, None] + sites["type_scale"] * sites["type_z"]
            p["weights"] = sites["type_weights"]
        else:
            p["eta"] = p["mu"][:, None]
            p["weights"] = torch.ones(1, device=p["mu"].device)
        p["honest"] = sites["honest_mean"] + sites["honest_sd"] * sites["honest_z"]
        return p

    def _clean(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[n_items, T, K]``: each type's clean label distribution."""
        if self._softmax:
            return torch.softmax(p["eta"], dim=-1)
        theta = None
        if "tie_base" in p:
            theta = torch.nn.functional.softplus(p["tie_base"]).expand_as(p["eta"])
        return preference_probs(p["eta"], theta)

    @staticmethod
    def _n_spam_logits(data: "_TypesData") -> int:
        """``K`` free logits for unordered classes (an exchangeable prior: no class is the reference, so the fit
        does not depend on which class name sorts last), else ``K - 1`` against a 0 for the last class (B of two,
        or the tie of A/B/tie, where A and B stay exchangeable)."""
        return data.n_classes if data.softmax else data.n_classes - 1

    def _spam(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = p["spam_logits"]
        return softmax_with_zero(logits) if logits.shape[-1] < self.data_.n_classes else torch.softmax(logits, -1)

    def _judgment_loglik(self, p: dict[str, torch.Tensor], data: "_TypesData") -> torch.Tensor:
        """``[N, T]``: log P(y_n | the annotator is of type t)."""
        return self._mixture_loglik(p, self._clean(p)[data.items], torch.sigmoid(p["honest"][data.workers]),
                                    data.labels)

    def _mixture_loglik(self, p: dict[str, torch.Tensor], clean: torch.Tensor, honest: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
        """``[N, T]``: ``log(h pi_t(y) + (1 - h) s(y))`` from each judgment's clean distributions ``[N, T, K]`` and
        honesty ``h`` ``[N]``."""
        chosen = clean.gather(-1, y[:, None, None].expand(-1, clean.shape[1], 1)).squeeze(-1)
        honest = honest[:, None]
        return torch.log((honest * chosen + (1.0 - honest) * self._spam(p)[y][:, None]).clamp_min(1e-9))

    def _warm_start(self, data: "_TypesData") -> dict[str, torch.Tensor]:
        """Pair log-odds from vote fractions, honest raters, and types from a spectral clustering of the votes."""
        labels, items, workers = (t.cpu().numpy() for t in (data.labels, data.items, data.workers))
        T, K = data.n_types, data.n_classes
        f32 = dict(dtype=torch.float32, device=data.labels.device)
        clusters = spectral_types(items, workers, labels, data.n_items, data.n_workers, T, self.seed,
                                  n_classes=K if data.softmax else None)
        start = functools.partial(class_logits, n_classes=K) if data.softmax else pair_log_odds
        mu = start(items, labels, np.ones(len(labels), dtype=bool), data.n_items)
        pair_scale = max(float(mu.std()), 0.5)
        init = {"pair_scale": torch.tensor(pair_scale, **f32), "honest_mean": torch.tensor(2.0, **f32),
                "honest_sd": torch.tensor(1.0, **f32), "spam_logits": torch.zeros(self._n_spam_logits(data), **f32),
                "mu_z": torch.as_tensor(mu / pair_scale, **f32), "honest_z": torch.zeros(data.n_workers, **f32)}
        if K == 3 and not data.softmax:
            init["tie_base"] = torch.tensor(tie_start(labels), **f32)
        if T > 1:
            member = clusters[workers]
            deviation = np.stack([start(items, labels, member == t, data.n_items) - mu for t in range(T)], axis=1)
            share = np.bincount(clusters, minlength=T) + 1.0
            init["type_scale"] = torch.tensor(1.0, **f32)
            init["type_z"] = torch.as_tensor(deviation, **f32)
            init["type_weights"] = torch.as_tensor(share / share.sum(), **f32)
        return init

    def _item_prob_draws(self) -> np.ndarray:
        """``[draws, items, K]``: each item's class probabilities under each draw (its types' clean labels, weighted
        by the types' shares)."""
        return np.einsum("sitk,t->sik", self._clean_draws.astype(np.float64), self._share)

    def _summarize_items(self, klass: int | None = None) -> ItemSummary:
        """The items' class probabilities summarised over the draws: the sd and interval of class ``klass`` (its
        index) where given, else of each item's top class."""
        return summarize_draws(self._item_prob_draws(), klass=klass)

    def _order_types(self, draws: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
        """Relabel types by share, largest first (types are exchangeable; a fixed order makes names stable): the
        share ``types_`` reports, the annotators' mean type probability. (Ordered by the mixture weights ``omega``
        instead, a posterior fit's types came out of share order, e.g. 0.332, 0.344, 0.324.)"""
        if self.n_types_ == 1:
            return draws
        with torch.no_grad():
            share = torch.stack([torch.softmax(self._joint(d, self.data_)[1], dim=-1).mean(0) for d in draws]).mean(0)
        order = torch.argsort(share, descending=True, stable=True)
        return [{**d, "eta": d["eta"][:, order], "weights": d["weights"][order]} for d in draws]

    @property
    def type_names_(self) -> list[str]:
        return [f"type{t + 1}" for t in range(self.n_types_)]

    def _joint(self, p: dict[str, torch.Tensor], data: "_TypesData") -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_by_type [N, T], joint [W, T])``: each judgment's log-likelihood under each type, and each
        annotator's ``log omega_t + sum_{n in j} log p(y_n | t)`` (less its ``logsumexp``: the log posterior type
        probabilities, the responsibilities)."""
        log_by_type = self._judgment_loglik(p, data)
        per = log_by_type.new_zeros(data.n_workers, data.n_types).index_add(0, data.workers, log_by_type)
        return log_by_type, torch.log(p["weights"]) + per

    def _summarise(self, data: "_TypesData") -> None:
        S, T, K = len(self.draws_), data.n_types, data.n_classes
        W, N, n_items = data.n_workers, data.n_judgments, data.n_items
        workers = data.workers
        clean = np.empty((S, n_items, T, K), dtype=np.float32)
        resp_draws = np.empty((S, W, T))
        loglik = np.empty((S, N), dtype=np.float32)
        reliability = np.empty((S, W))
        weights = np.empty((S, T))
        spam_labels = np.empty((S, K))
        observed = np.zeros((n_items, T, K))
        counts = np.zeros((n_items, T))
        items_np = data.items.cpu().numpy()
        with torch.no_grad():
            for s, p in enumerate(self.draws_):
                log_by_type, joint = self._joint(p, data)
                r = (joint - torch.logsumexp(joint, -1, keepdim=True)).exp()
                resp_draws[s] = r.cpu().numpy()
                # leave-one-judgment-out conditional: log p(y_n | the annotator's other votes, theta)
                without = joint[workers] - log_by_type
                loglik[s] = (torch.logsumexp(without + log_by_type, -1) - torch.logsumexp(without, -1)).cpu().numpy()
                clean[s] = self._clean(p).cpu().numpy()
                h = torch.sigmoid(p["honest"])
                reliability[s] = h.cpu().numpy()
                weights[s] = p["weights"].cpu().numpy()
                # what the pair's raters of each type report: responsibility-weighted honesty, typical where none
                r_n = r[workers].cpu().numpy()  # [N, T]
                h_n = h[workers].cpu().numpy()
                mass = _cell_sums(items_np, r_n, n_items)
                honest_mass = _cell_sums(items_np, r_n * h_n[:, None], n_items)
                typical = float(torch.sigmoid(p["honest_mean"]))
                h_bar = np.where(mass > 0, honest_mass / np.maximum(mass, 1e-12), typical)
                spam = self._spam(p).cpu().numpy()
                spam_labels[s] = spam
                observed += (h_bar[..., None] * clean[s] + (1.0 - h_bar[..., None]) * spam) / S
                counts += mass / S
        resp = resp_draws.mean(0)
        share = resp.mean(0)
        self._clean_draws, self._observed_mean, self._counts, self._share = clean, observed, counts, share
        self.responsibilities_ = pd.DataFrame(resp, index=self.encoded_.worker_index, columns=self.type_names_)
        item_probs = self._item_prob_draws()
        self._item_summary, self._class_prior = summarize_draws(item_probs), torch.as_tensor(item_probs.mean(1))
        self._loglik, self._honest, self._spam_labels = loglik[None], reliability, spam_labels
        table = pd.DataFrame(self._rater_columns(), index=self.encoded_.worker_index)
        table["n_judgments"] = np.bincount(workers.cpu().numpy(), minlength=W)
        population = np.einsum("itk,t->ik", clean.mean(0), share)
        rows = []
        for t, name in enumerate(self.type_names_):
            members = table["type"] == name
            p_type = clean.mean(0)[:, t]
            rows.append(
                {"type": name, "share": float(share[t]), "weight": float(weights[:, t].mean()),
                 "n_annotators": int(members.sum()), "n_judgments": int(table.loc[members, "n_judgments"].sum()),
                 "mean_honest_share": float(table.loc[members, "honest_share"].mean()) if members.any() else np.nan,
                 "agreement_with_population": float((p_type.argmax(-1) == population.argmax(-1)).mean()),
                 # total variation: |P_type(A) - P(A)| on binary labels
                 "mean_abs_difference": float(0.5 * np.abs(p_type - population).sum(-1).mean())}
            )
        self.types_ = pd.DataFrame(rows)
        self._posterior = {"honest_share": (reliability[None], ["annotator"]),
                           "type_weights": (weights[None], ["type"]),
                           # each draw's own responsibilities: their mean copied into every draw gave the type
                           # assignments a posterior sd of 0 (and ArviZ a constant variable) under any inference
                           "type_probability": (resp_draws[None], ["annotator", "type"])}

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        """Row ``c`` (the type's clean label): ``h e_c + (1 - h) s``, honesty ``h = sigmoid(a_j)``, spam labels
        ``s``."""
        honest = torch.as_tensor(self._honest[:, lo:hi])[..., None, None]
        eye = torch.eye(self._spam_labels.shape[-1], dtype=torch.float64)
        return honest * eye + (1.0 - honest) * torch.as_tensor(self._spam_labels)[:, None, None, :]

    def _rater_columns(self) -> dict[str, np.ndarray]:
        resp = self.responsibilities_.to_numpy()
        columns: dict[str, Any] = interval_columns("honest_share", self._honest)
        columns["type"] = np.asarray(self.type_names_, dtype=object)[resp.argmax(1)]
        columns["type_probability"] = resp.max(1)
        return columns

    def _extra_coords(self) -> dict[str, Any]:
        return {"type": self.type_names_}

    def group_probabilities(self) -> GroupProbabilities:
        """Per-type clean label distributions (see :class:`~accord.models.context.GroupProbabilities`)."""
        self._check_fitted()
        return GroupProbabilities(clean=self._clean_draws, observed=self._observed_mean, groups=self.type_names_,
                                  share=self._share, counts=self._counts, item_index=self.encoded_.item_index,
                                  classes=self.encoded_.classes, kind="type", consensus=self._clean_draws.mean(0),
                                  genuine_within=True)

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """Log-probability of each judgment of ``judgments`` given the fit: ``log sum_t p(t_j | fit) p(y | t)``.

        Annotators not seen in training get the type shares as their type probabilities and the population's
        typical honesty; unseen pairs get the population's prior (log-odds 0).
        """
        self._check_fitted()
        # read as the fitted table was: validated without its form, a categorical or graded table was read as
        # preferences and refused ('label outside the declared set {A, B, tie}')
        table = judgments if is_validated(judgments) else validate(
            judgments, form=self.encoded_.form, scale=self.encoded_.scale)
        encoded, data = self.encoded_, self.data_
        device = self._torch_device
        y = torch.as_tensor(label_codes(encoded, table), device=device)
        item = encoded.item_index.get_indexer(table["pair_id"])
        worker = encoded.worker_index.get_indexer(table["annotator"])
        known_item = torch.as_tensor(item >= 0, device=device)
        known_worker = torch.as_tensor(worker >= 0, device=device)
        w_idx = torch.as_tensor(np.maximum(worker, 0), device=device)
        out = []
        with torch.no_grad():
            for p in self.draws_:
                _, joint = self._joint(p, data)
                log_resp = joint - torch.logsumexp(joint, -1, keepdim=True)
                pi = self._clean(p)
                prior_pi = self._clean({**p, "eta": torch.zeros_like(p["eta"][:1])})[0]
                probs = torch.where(known_item[:, None, None], pi[torch.as_tensor(np.maximum(item, 0))], prior_pi)
                h = torch.where(known_worker, torch.sigmoid(p["honest"][w_idx]), torch.sigmoid(p["honest_mean"]))
                log_r = torch.where(known_worker[:, None], log_resp[w_idx], torch.log(p["weights"])[None, :])
                per_type = self._mixture_loglik(p, probs, h, y)
                out.append(torch.logsumexp(log_r + per_type, -1).cpu().numpy())
        return log_mean_exp(out)


@dataclass(frozen=True)
class _TypesData:
    """Flat judgment tensors and sizes for :class:`RaterTypes`."""

    items: torch.Tensor
    workers: torch.Tensor
    labels: torch.Tensor
    n_items: int
    n_workers: int
    n_classes: int
    n_types: int
    softmax: bool = False  # one logit per class (categorical, K > 2) instead of one log-odds

    @property
    def n_judgments(self) -> int:
        return int(self.labels.shape[0])


def spectral_types(items: np.ndarray, workers: np.ndarray, labels: np.ndarray, n_items: int, n_workers: int,
                   n_types: int, seed: int, n_classes: int | None = None) -> np.ndarray:
    """A first type for every annotator: k-means++ on the top singular vectors of their residual votes.

    Votes are coded +1 (A), -1 (B), 0 (tie) (with ``n_classes``, unordered classes: one-hot over the classes) and
    centred by the pair's mean vote, so what remains is how an annotator departs from the crowd; annotators who
    depart the same way share a type.
    """
    if n_types == 1:
        return np.zeros(n_workers, dtype=np.int64)
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import svds

    per_pair = np.maximum(np.bincount(items, minlength=n_items), 1)
    if n_classes is None:
        vote = np.where(labels == 0, 1.0, np.where(labels == 1, -1.0, 0.0))
        pair_mean = np.bincount(items, weights=vote, minlength=n_items) / per_pair
        matrix = csr_matrix((vote - pair_mean[items], (workers, items)), shape=(n_workers, n_items))
    else:  # columns (pair, class): a judgment's one-hot label minus the pair's vote fractions
        share = np.bincount(items * n_classes + labels, minlength=n_items * n_classes) / np.repeat(per_pair, n_classes)
        rows = np.repeat(workers, n_classes)
        columns = (items[:, None] * n_classes + np.arange(n_classes)).reshape(-1)
        values = (labels[:, None] == np.arange(n_classes)).reshape(-1) - share[columns]
        matrix = csr_matrix((values, (rows, columns)), shape=(n_workers, n_items * n_classes))
    if matrix.count_nonzero() == 0:  # every annotator votes as its pairs' crowd: nothing sets one apart
        return np.zeros(n_workers, dtype=np.int64)
    if min(matrix.shape) < 2:  # one annotator or one column: ARPACK needs k < min(shape), nothing to reduce
        embedding = matrix.toarray()
    else:
        u, sv, _ = svds(matrix, k=max(1, min(n_types, min(matrix.shape) - 1)), random_state=seed)
        embedding = u * sv
    embedding = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    # k-means++ picks its start points by position: in the annotators' order (their first rows), a row shuffle or new
    # names moved the start and the fit with it as a change of seed does; the points in an order of their own do not
    order = _canonical_order(embedding)
    types = np.empty(n_workers, dtype=np.int64)
    types[order] = _kmeans(embedding[order], n_types, seed)
    return types


def _canonical_order(points: np.ndarray) -> np.ndarray:
    """An order of ``points`` that follows their values only: each column's sign fixed so that its entry of largest
    size is positive (a singular vector's sign is arbitrary), then sorted by the columns (rounded, so that a
    difference the SVD's rounding makes does not reorder two points)."""
    largest = points[np.abs(points).argmax(0), np.arange(points.shape[1])]
    keys = np.round(points * np.where(largest < 0, -1.0, 1.0), 9)
    return np.lexsort(keys.T[::-1])


def _kmeans(points: np.ndarray, k: int, seed: int, restarts: int = 8, iterations: int = 50) -> np.ndarray:
    """Plain k-means with k-means++ seeding (Arthur and Vassilvitskii, SODA 2007); best of ``restarts``."""
    rng = np.random.default_rng(seed)
    best, best_cost = np.zeros(len(points), dtype=np.int64), np.inf
    for _ in range(restarts):
        centres = [points[rng.integers(len(points))]]
        for _ in range(1, k):
            d2 = np.min(((points[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
            total = d2.sum()
            pick = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
            centres.append(points[pick])
        centre = np.asarray(centres)
        for _ in range(iterations):
            assign = ((points[:, None, :] - centre[None]) ** 2).sum(-1).argmin(1)
            moved = np.stack([points[assign == c].mean(0) if (assign == c).any() else centre[c] for c in range(k)])
            if np.allclose(moved, centre):
                break
            centre = moved
        cost = ((points - centre[assign]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = assign, cost
    return best


def class_logits(items: np.ndarray, labels: np.ndarray, mask: np.ndarray, n_items: int,
                 n_classes: int) -> np.ndarray:
    """``[n_items, K]`` centred log vote fractions among the judgments in ``mask`` (smoothed, stretched and clipped
    as :func:`accord.models.context.pair_log_odds` does for two sides): the warm start of unordered classes."""
    counts = np.bincount(items[mask] * n_classes + labels[mask], minlength=n_items * n_classes).reshape(n_items, -1)
    logits = np.log(counts + 0.5)
    return np.clip(1.5 * (logits - logits.mean(1, keepdims=True)), -4.0, 4.0)


def holdout_split(table: pd.DataFrame, share: float, seed: int, minimum: int = HOLDOUT_MINIMUM) -> np.ndarray:
    """Boolean mask of held-out rows: ``share`` of the judgments of each annotator with at least ``minimum``."""
    rng = np.random.default_rng(seed)
    codes, _ = pd.factorize(table["annotator"])
    counts = np.bincount(codes)
    # the judgments drawn in an order of their ids, not of their rows: drawn by position, a row shuffle held out
    # other judgments, as a change of seed does (n_types="auto" then chose another number of types on 4 of 6 tables)
    order = id_order(table)[rng.permutation(len(table))]
    rank = np.empty(len(table), dtype=np.int64)
    # each row's place among its annotator's rows, in the random order
    rank[order] = pd.Series(codes[order]).groupby(codes[order]).cumcount().to_numpy()
    held = rank < np.floor(share * counts[codes])
    return held & (counts[codes] >= minimum)


def select_n_types(model: RaterTypes, table: pd.DataFrame) -> pd.DataFrame:
    """Held-out log-likelihood of every candidate number of types; the chosen one is flagged (see module doc)."""
    out, unsettled = _select_n_types(model, table)
    if unsettled:
        _warn_stopped(model, [limit for stopped in unsettled.values() for limit in stopped],
                      [f"the held-out fits of n_types={', '.join(map(str, unsettled))}"], "the choice", stacklevel=3)
    return out


def _warn_stopped(model: RaterTypes, limits: list[str], fits: list[str], check: str, stacklevel: int) -> None:
    """One ConvergenceWarning naming the step limits (each once) that ``fits`` stopped at before their loss settled."""
    limits = " and ".join(f"{limit}={getattr(model, limit)}" for limit in dict.fromkeys(limits))
    warnings.warn(f"{type(model).__name__}({model.inference}): SVI stopped at {limits} before its loss settled in "
                  f"{' and '.join(fits)}; raise it (or learning_rate) and check {check}", ConvergenceWarning,
                  stacklevel=stacklevel)


def _select_n_types(model: RaterTypes, table: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """:func:`select_n_types` and, by candidate, the step limits its fit stopped at unconverged (not warned)."""
    held = holdout_split(table, model.holdout, model.seed)
    train = with_attrs(table[~held], table)  # the table's form: categorical and graded labels too
    test = with_attrs(table[held], table)
    if len(test) == 0:
        raise AccordError(f"n_types='auto' holds out a share holdout={model.holdout} of each annotator's judgments "
                          f"(of annotators with at least {HOLDOUT_MINIMUM}) to choose the number of types, and no "
                          "annotator has enough: set n_types to a number (e.g. n_types=1)")
    # a number of types above the annotators' is no candidate (a fit of it is refused): left out of the choice
    n_annotators = int(train["annotator"].nunique())
    candidates = sorted(t for t in model.candidates if t <= n_annotators)
    if not candidates:
        raise AccordError(f"n_types='auto': every one of candidates={tuple(model.candidates)} is more than the "
                          f"{n_annotators} annotator(s) of the table: give candidates of at most that")
    scores: dict[int, np.ndarray] = {}
    unsettled: dict[int, list[str]] = {}
    for t in candidates:  # all of them: a dip at one T says nothing of the next (module doc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # the fit of the whole table says it once if no pair has two judgments
            warnings.filterwarnings("ignore", message=r".*: no pair has two judgments", category=UserWarning)
            candidate = model.clone(n_types=t).fit(train)
        if candidate.__dict__.get("_unsettled"):
            unsettled[t] = candidate.__dict__["_unsettled"]
        scores[t] = candidate.predictive_loglik(test)
    means = {t: float(v.mean()) for t, v in scores.items()}
    best = max(means, key=means.get)  # type: ignore[arg-type]
    rows = []
    for t, values in scores.items():
        diff = values - scores[best]
        # one held-out judgment (one annotator of 5-9 judgments) has no standard error: NaN, without numpy's warning
        se = 0.0 if t == best else float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
        rows.append({"n_types": t, "heldout_loglik": means[t], "heldout_loglik_sum": float(values.sum()),
                     "difference_to_best": means[t] - means[best], "se_difference": se})
    out = pd.DataFrame(rows)
    within = out["difference_to_best"] >= -out["se_difference"]
    out["chosen"] = out["n_types"] == out.loc[within, "n_types"].min()
    return out, unsettled


__all__ = ["RaterTypes", "holdout_split", "select_n_types", "spectral_types"]
