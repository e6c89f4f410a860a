"""Models whose discrete latent, each item's true class, is summed out, and whose annotator (and item) parameters
enter through a per-judgment likelihood: MACE and GLAD.

A subclass of :class:`EnumeratedRaterModel` supplies ``_model`` (the Pyro model over the padded judgments, its
single specification), ``_site_dims`` (its continuous sites and their ArviZ dims; ``_local_sites``: those in the
item plate), ``_init_values``, ``_log_emission``, ``_new_slot_points`` and ``_rater_confusion`` (each documented
where it is declared).

Everything after the fit (soft labels, per-judgment log-likelihoods, held-out prediction) runs on ``_log_emission``
item block by item block, so memory stays bounded at any size; a test checks that it agrees with the item posterior
Pyro computes from ``_model``. A model whose judgment likelihood depends only on the annotator and the label (MACE)
also returns its confusion matrices from ``_log_confusion``, and then the same quantities come from Dawid-Skene's
sparse products (:mod:`accord.models._vb`) instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError, Encoded, FitError
from accord.models._data import PaddedJudgments, in_id_order, pad_judgments
from accord.models._vb import Incidence, build_incidence, item_log_posterior_scores, summarize_item_posterior
from accord.models.base import ItemSummary, PyroRaterModel, concat_summaries, summarize_draws
from accord.models.confusion import TINY, check_start, confusion_loglik_draws, heldout_codes, to_codes

Draws = dict[str, torch.Tensor]  # site name -> [n_draws, *shape] (constrained values; item sites [n_draws, items])

#: elements of one ``[draws, classes, judgments]`` block in the post-fit computations (about 64 MB in float64)
_BLOCK_BUDGET = 2**23


def per_judgment(value: torch.Tensor, workers: torch.Tensor, event_dims: int = 0) -> torch.Tensor:
    """An annotator-plate site's value at each judgment: ``[..., W, *event]`` -> ``[..., I, M, *event]``.

    ``workers`` is the ``[I, M]`` grid of annotator codes. Leading batch dims of ``value`` (vectorised ELBO
    particles, left of the plates) broadcast against the grid, which plain ``value[workers]`` would get wrong.
    """
    from pyro.ops.indexing import Vindex

    grid = value.unsqueeze(-2 - event_dims)  # room for the item dim: [..., 1, W, *event]
    index = (Ellipsis, workers) + (slice(None),) * event_dims
    return Vindex(grid)[index]


class _SortedJudgments:
    """The judgments sorted by item, so a contiguous block of items is a contiguous slice of judgments."""

    def __init__(self, encoded: Encoded, device: torch.device) -> None:
        order = np.argsort(encoded.items, kind="stable")
        self.order = torch.as_tensor(order, device=device)
        self.items = torch.as_tensor(encoded.items[order], device=device)
        self.workers = torch.as_tensor(encoded.workers[order], device=device)
        self.labels = torch.as_tensor(encoded.labels[order], device=device)
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(encoded.items, minlength=encoded.n_items))])
        self.n_items = encoded.n_items

    def blocks(self, judgments_per_block: int) -> Iterator[tuple[int, int, slice]]:
        """``(first item, end item, judgment slice)`` of consecutive item blocks of about the given size."""
        lo = 0
        while lo < self.n_items:
            target = self.starts[lo] + max(judgments_per_block, 1)
            hi = int(np.searchsorted(self.starts, target, side="right")) - 1
            hi = min(max(hi, lo + 1), self.n_items)
            yield lo, hi, slice(int(self.starts[lo]), int(self.starts[hi]))
            lo = hi


class EnumeratedRaterModel(PyroRaterModel):
    """Shared fitting for rater models whose discrete latent, each item's true class, is enumerated out.

    Parameters
    ----------
    class_prior
        Concentration of the symmetric Dirichlet prior on the class proportions ``pi`` (learned), or ``None``: ``pi``
        fixed uniform, as in the original papers.
    init, warm_start
        ``init`` (:data:`accord.models.confusion.INIT_METHODS`) and whether SVI / NUTS start from it (otherwise
        Pyro's prior median).
    """

    _site_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    _local_sites: ClassVar[tuple[str, ...]] = ()
    final_lr_fraction: float = 0.1
    class_prior: float | None = 1.0
    init: str = "vote"
    warm_start: bool = True

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        raise NotImplementedError

    def _init_values(self, encoded: Encoded) -> Draws:
        """Constrained starting values of the continuous sites (shapes as in the model), from vote fractions."""
        raise NotImplementedError

    def _log_emission(self, params: Draws, workers: torch.Tensor, items: torch.Tensor,
                      labels: torch.Tensor) -> torch.Tensor:
        """``[D, K, N]``: ``log p(labels[n] | true class k)`` under each of ``D`` draws (index ``-1`` of
        ``workers`` / ``items``: the unseen-annotator / unseen-item slot that :meth:`_with_new_slot` appends)."""
        raise NotImplementedError

    def _new_slot_points(self, params: Draws) -> list[tuple[float, Draws]]:
        """``(log weight, values [D, 1, ...])`` points whose weighted mixture is the distribution of an unseen
        annotator's and an unseen item's parameters under each of the ``D`` draws ``params`` (the fitted population).

        A judgment by a new annotator is that annotator's only one, so its predictive averages the emission
        probability over the population; a fixed quadrature instead of random draws keeps the prediction the same
        on every call, and a mixture of emission distributions stays normalised."""
        raise NotImplementedError

    def _log_confusion(self, params: Draws) -> torch.Tensor | None:
        """``[D, W, K, L]`` log confusion matrices when a judgment's likelihood depends only on its annotator and
        label (MACE), else ``None``; with them the post-fit computations use the sparse incidence products."""
        return None

    def _after_fit(self) -> None:
        """Model-specific fitted attributes (e.g. item difficulty), once ``self._draws`` is set."""

    def _fit_vb(self, encoded: Encoded) -> Draws:
        raise AccordError(f"{type(self).__name__} has no closed-form variational solver")

    @property
    def _global_sites(self) -> dict[str, tuple[str, ...]]:
        """Every continuous site with its ArviZ dims, the class prior included when it is learned."""
        return {**self._site_dims, **({"class_prior": ("true_class",)} if self.class_prior is not None else {})}

    def _check_settings(self, encoded: Encoded) -> None:
        check_start(self.init, self.class_prior, uniform_prior=True)
        if self.inference == "lowrank" and self.batch_size is not None and self._local_sites:
            raise AccordError(f"{type(self).__name__}: inference='lowrank' couples the item-level sites in one "
                              "covariance and cannot subsample items (batch_size); use 'meanfield' or batch_size=None")

    def _sample_class_prior(self, n_classes: int, device: torch.device) -> torch.Tensor:
        """The learned ``class_prior`` site (Dirichlet), or the fixed uniform prior."""
        if self.class_prior is None:
            return torch.full((n_classes,), 1.0 / n_classes, device=device)
        import pyro
        import pyro.distributions as dist

        return pyro.sample("class_prior", dist.Dirichlet(torch.full((n_classes,), float(self.class_prior),
                                                                    device=device)))

    def _log_class_prior(self, params: Draws, n_draws: int) -> torch.Tensor:
        """``[D, K]`` log class prior under each draw."""
        if "class_prior" in params:
            return params["class_prior"].clamp_min(TINY).log()
        k = self.encoded_.n_classes
        return torch.full((n_draws, k), -math.log(k), device=self._torch_device)

    def _fit(self, encoded: Encoded) -> None:
        self._check_settings(encoded)
        self._sorted = _SortedJudgments(encoded, self._torch_device)
        if self.inference == "vb":
            draws = self._fit_vb(encoded)
        else:
            draws = self._fit_pyro(encoded)
        self._n_chains = int(next(iter(draws.values())).shape[0])
        self._draws = {name: self._squeeze_local(name, value.reshape(-1, *value.shape[2:]).detach()) for name,
                       value in draws.items()}
        self._guard_label_switching()
        self._finish()

    def _fit_pyro(self, encoded: Encoded) -> Draws:
        """SVI or NUTS on the judgments in id order (:func:`~accord.models._data.in_id_order`), so that the guide's
        random draws, the subsampled items and the posterior draws follow the judgments as a set and the seed, not
        the order of the rows; the warm start is computed on ``encoded`` and laid in id order, the draws of the
        annotator and item sites mapped back to the codes (``guide_`` keeps the id order). Returns ``name -> [chains,
        draws, *shape]`` of the continuous sites."""
        from accord.models.pyro_fit import fit_pyro

        ordered, item_ranks, worker_ranks = in_id_order(encoded)
        ranks = {"annotator": worker_ranks, "pair_id": item_ranks}  # by the first dim of each site
        init = self._init_values(encoded) if (self.init != "uniform" and self.warm_start) else None
        if init is not None and self.batch_size is not None and self.batch_size < encoded.n_items:
            # a subsampled plate asks for the start of a batch of items only: leave item-level sites to the
            # prior median (init_to_median), which is where they start anyway
            init = {name: value for name, value in init.items() if name not in self._local_sites}
        if init is not None:
            init = {name: self._in_id_order(value, ranks.get(self._global_sites[name][0])) for name, value in
                    init.items()}
        draws = self._keep_fit(fit_pyro(self, self._model, pad_judgments(ordered).to(self._torch_device),
                                        sites=list(self._global_sites), enumerated=True, init=init,
                                        plates=self._item_plate, rank=self.rank, subsample=self.batch_size,
                                        vectorize_draws=self.inference != "lowrank"))
        out = {}
        for name, dims in self._global_sites.items():
            rank = ranks.get(dims[0])
            out[name] = draws[name] if rank is None else to_codes(draws[name], rank, dim=2)
        return out

    @staticmethod
    def _in_id_order(value: torch.Tensor, ranks: np.ndarray | None) -> torch.Tensor:
        """A start ``value`` whose first axis is in the codes' order, laid in id order (``ranks``: the place of each
        code's id; ``None``: a site of neither plate, kept)."""
        if ranks is None:
            return value
        return value.index_select(0, torch.as_tensor(np.argsort(ranks), device=value.device))

    def _guard_label_switching(self) -> None:
        """Move a fit that landed in a mirror mode (every label switched) back to the honest one, if the model has
        such a mode (see GLAD)."""

    def _squeeze_local(self, name: str, value: torch.Tensor) -> torch.Tensor:
        # item-plate sites carry the judgment-slot plate's singleton dimension: [D, I, 1] -> [D, I]
        return value.reshape(value.shape[0], -1) if name in self._local_sites else value

    def _item_plate(self, data: PaddedJudgments, batch_size: int | None = None) -> list[Any]:
        """The guide's item plate, rebuilt on each call from its arguments: an autoguide otherwise freezes the
        training batch size, and drawing the item-level sites of every item after a minibatch fit needs the full
        plate. (Pyro hands the guide's subsample to the model's plate of the same name.)"""
        if not self._local_sites:
            return []
        import pyro

        subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
        return [pyro.plate("item", data.n_items, dim=-2, subsample_size=subsample, device=data.labels.device)]

    @property
    def _n_draws(self) -> int:
        return int(next(iter(self._draws.values())).shape[0])

    def _draw_chunks(self) -> Iterator[tuple[int, int, Draws]]:
        """``(first, end, draws)`` of consecutive blocks of 32 posterior draws."""
        for lo in range(0, self._n_draws, 32):
            hi = min(lo + 32, self._n_draws)
            yield lo, hi, {name: value[lo:hi] for name, value in self._draws.items()}

    def _item_scores(self, params: Draws, lo: int, hi: int, span: slice) -> torch.Tensor:
        """``[D, hi - lo, K]``: ``log pi_k + sum_n log p(y_n | k)`` for the items of one block."""
        s = self._sorted
        log_em = self._log_emission(params, s.workers[span], s.items[span], s.labels[span])  # [D, K, n]
        d, k, _ = log_em.shape
        scores = torch.zeros(d, hi - lo, k, dtype=log_em.dtype, device=log_em.device)
        scores.index_add_(1, s.items[span] - lo, log_em.transpose(1, 2))
        return scores + self._log_class_prior(params, d).to(log_em.dtype)[:, None, :]

    def _block_size(self, n_draws: int) -> int:
        return _BLOCK_BUDGET // max(1, n_draws * self.encoded_.n_classes)

    def _incidence(self) -> Incidence:
        if self._cache.get("incidence") is None:
            # float64: in float32 a confident item's minority-class probability (1e-9 and below with dozens of
            # judgments per item) rounds to 0, which costs gold NLL for nothing
            self._cache["incidence"] = build_incidence(self.encoded_, self._torch_device, dtype=torch.float64)
        return self._cache["incidence"]

    def _finish(self) -> None:
        """Soft labels (mean, sd and 90% interval of the top class over draws) and ``class_prior_``."""
        draws, k = self._draws, self.encoded_.n_classes
        summary = self._summarize_items()
        if not np.isfinite(summary.mean).all():
            raise FitError(f"{type(self).__name__}: the fitted posterior gives non-finite class probabilities")
        self._item_summary = summary
        prior = draws["class_prior"].double().mean(0).cpu().numpy() if "class_prior" in draws else np.full(k, 1 / k)
        self.class_prior_ = pd.Series(prior, index=list(self.encoded_.classes), name="class_prior")
        self._after_fit()

    def _summarize_items(self, klass: int | None = None) -> ItemSummary:
        """Each item's class probabilities summarised over the draws: the sd and interval of class ``klass`` (its
        index) where given, else of each item's top class."""
        draws, n_draws = self._draws, self._n_draws
        log_theta = self._log_confusion(draws)
        if log_theta is not None:
            incidence = self._incidence()
            dtype = incidence.val.dtype
            return summarize_item_posterior(incidence, log_theta.to(dtype),
                                            self._log_class_prior(draws, n_draws).to(dtype), klass=klass)
        return concat_summaries([summarize_draws(torch.softmax(self._item_scores(draws, lo, hi, span), dim=-1),
                                                 klass=klass)
                                 for lo, hi, span in self._sorted.blocks(self._block_size(n_draws))])

    def _class_prior_draws(self) -> torch.Tensor:
        return self._log_class_prior(self._draws, self._n_draws).exp()

    def _loglik_draws(self) -> np.ndarray:
        draws, n_draws = self._draws, self._n_draws
        log_theta = self._log_confusion(draws)
        if log_theta is not None:
            out = confusion_loglik_draws(self._incidence(), self.encoded_, log_theta,
                                         self._log_class_prior(draws, n_draws))
            return out.reshape(self._n_chains, -1, out.shape[1])
        s = self._sorted
        out = np.empty((n_draws, len(s.labels)))
        block = self._block_size(min(n_draws, 32))
        for d_lo, d_hi, part in self._draw_chunks():
            for lo, hi, span in s.blocks(block):
                log_em = self._log_emission(part, s.workers[span], s.items[span], s.labels[span])  # [D, K, n]
                scores = self._item_scores(part, lo, hi, span)[:, s.items[span] - lo].transpose(1, 2)  # [D, K, n]
                ll = torch.logsumexp(scores, 1) - torch.logsumexp(scores - log_em, 1)
                out[d_lo:d_hi, span] = ll.double().cpu().numpy()
        table_order = np.empty_like(out)
        table_order[:, s.order.cpu().numpy()] = out
        return table_order.reshape(self._n_chains, -1, out.shape[1])

    def _posterior_draws(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        out = {}
        for name, dims in self._global_sites.items():
            value = self._draws[name].double().cpu().numpy()
            out[name] = (value.reshape(self._n_chains, -1, *value.shape[1:]), list(dims))
        return out

    def _with_new_slot(self, params: Draws, new: Draws) -> Draws:
        """Append the prior draw as the last annotator / item, so that index -1 means "not seen in training"."""
        return {name: torch.cat([value, new[name]], dim=1) if name in new else value for name, value in params.items()}

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """``log p(y_n | training judgments)`` for each judgment of a new table, averaged over posterior draws.

        Each judgment is predicted on its own: ``log mean_d sum_t p(t | its item's training labels, draw d)
        p(y_n | t, draw d)``. An item unseen in training has the class prior as its posterior; for an annotator (or,
        for GLAD, an item) unseen in training ``p(y_n | t, draw d)`` is averaged over the population of the fitted
        annotators (items) under draw ``d`` (:meth:`_new_slot_points`): deterministic, and normalised over labels.
        """
        self._check_fitted()
        encoded, device = self.encoded_, self._torch_device
        items, workers, labels = heldout_codes(encoded, judgments, device)
        n_draws = self._n_draws
        novel = (workers < 0) | (items < 0)
        # the posterior of every training item that the new judgments touch, block by block
        needed = torch.zeros(encoded.n_items + 1, dtype=torch.bool, device=device)
        needed[items] = True
        per_draw = torch.empty(n_draws, len(labels), dtype=torch.float64, device=device)
        for d_lo, d_hi, part in self._draw_chunks():
            log_prior = self._log_class_prior(part, d_hi - d_lo).double()
            post = log_prior[:, None, :].expand(-1, encoded.n_items + 1, -1).clone()  # last row: unseen item
            log_theta = self._log_confusion(part)
            if log_theta is not None:
                incidence = self._incidence()
                scores = item_log_posterior_scores(
                    incidence, log_theta.to(incidence.val.dtype), log_prior.to(incidence.val.dtype))
                post[:, :-1] = torch.log_softmax(scores.double(), dim=-1)
            else:
                for lo, hi, span in self._sorted.blocks(self._block_size(d_hi - d_lo)):
                    if needed[lo:hi].any():
                        post[:, lo:hi] = torch.log_softmax(self._item_scores(part, lo, hi, span).double(), dim=-1)
            points = self._new_slot_points(part)
            log_em = self._log_emission(self._with_new_slot(part, points[0][1]), workers, items, labels).double()
            if novel.any():  # [D, K, N]: the judgments of new annotators / items average over the population
                mixed = [weight + self._log_emission(self._with_new_slot(part, point), workers[novel], items[novel],
                                                     labels[novel]).double() for weight, point in points]
                log_em[:, :, novel] = torch.logsumexp(torch.stack(mixed), 0)
            per_draw[d_lo:d_hi] = torch.logsumexp(post[:, items].transpose(1, 2) + log_em, dim=1)
        return (torch.logsumexp(per_draw, 0) - math.log(n_draws)).cpu().numpy()
