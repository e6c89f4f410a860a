r"""Active annotation: which pairs, and which raters, get the next judgments.

A fitted rater model holds, for every pair, a posterior over its label, and, for every rater, a posterior predictive
of the vote they would give under each label. The value of one more judgment of pair :math:`i` is the *expected
information gain* about the pair's label :math:`z_i` (Lindley 1956; MacKay 1992), the mutual information between
the label and the judgment :math:`y` under the posterior predictive,

.. math:: \mathrm{EIG}_i = I(z_i; y) = H\Big(\sum_k p_{ik}\, \theta_{k\cdot}\Big) - \sum_k p_{ik} H(\theta_{k\cdot}),

with :math:`p_{ik}` the pair's current posterior and :math:`\theta_{kl} = E[P(y = l \mid z = k)]` the rater's
posterior-mean confusion (the one-judgment posterior predictive given the label). A *random rater of a pool* is the
mixture of the confusions of the pool's raters who have not judged the pair, weighted by their judgment counts (the
rater is not chosen); a *chosen rater* uses their own confusion, so hard pairs go to the raters whose votes say most.

Batches. Several judgments of one pair in the same round are worth less than the sum of their single gains: the
gain of a sequence :math:`y_1..y_m` (conditionally independent given the label) is :math:`I(z_i; y_1..y_m) = H(y_1..
y_m) - \sum_j H(y_j \mid z_i)`, computed exactly by enumerating the :math:`L^m` outcomes. Each pair's sequence is
built greedily, the :math:`m`-th judgment going to the pool (or allowed rater) with the largest marginal gain per
cost given the first :math:`m - 1`; the marginal gains per cost are made non-increasing along the sequence and the
batch takes the best (pair, slot) entries until the budget (in cost units) is spent (one that does not fit what is
left is passed over, with its pair's later slots), which is the greedy rule for a monotone submodular objective
summed over pairs (Krause & Golovin 2014), computed for all pairs at once.

Stopping rule: a pair whose most likely label already has posterior probability ``certainty`` or more gets nothing.

Models. The Dawid-Skene family and every model with annotator confusion matrices (MACE, GLAD, ...) are read through
their soft labels and confusions. For crowd Bradley-Terry the latent is the responses' utilities: the gain is the
mutual information between the vote and the posterior draws of the utilities (BALD, Houlsby et al. 2011), for the
pairs in the data and for any two fitted responses never compared (``candidates``).

References
----------
D. V. Lindley (1956). On a measure of the information provided by an experiment. *Ann. Math. Statist.* 27(4).
D. J. C. MacKay (1992). Information-based objective functions for active data selection. *Neural Computation* 4(4).
N. Houlsby, F. Huszár, Z. Ghahramani, M. Lengyel (2011). Bayesian active learning for classification and
preference learning. arXiv:1112.5745.
A. Krause, D. Golovin (2014). Submodular function maximization. In *Tractability*, Cambridge University Press.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError
from accord.datasets.errors import as_written
from accord.datasets.schema import CROWDKIT_COLUMNS

#: the pool of raters whose pool is not given
DEFAULT_POOL = "crowd"
#: posterior draws used for the Bradley-Terry gain (the mutual information is averaged over them)
MAX_DRAWS = 64
#: elements of the largest intermediate array of one block of pairs
_BLOCK_BUDGET = 2**23
_TINY = 1e-30
#: gains per cost closer than this (relative to the best) are a tie, broken by ids, not by the table's row order
_TIE = 1e-10


# -- the posterior, as acquisition sees it ------------------------------------------------------------------


@dataclass
class LabelPosterior:
    """What acquisition needs from a fitted model with annotator confusions (the Dawid-Skene family, MACE, ...).

    ``probs`` ``[I, K]``: each pair's current posterior over its label; ``confusion`` ``[W, K, L]``: each rater's
    posterior-mean confusion; ``pool_confusion`` ``[P, K, L]``: a random rater of each pool; ``pair_pool_confusion``
    (optional): indexed by pairs ``[n]``, ``[n, P, K, L]``, a random rater of each pool among those who have not
    judged the pair (a tensor ``[I, P, K, L]``, or :class:`PoolsLeft`, which computes only the pairs asked for).
    """

    probs: torch.Tensor
    confusion: torch.Tensor
    pool_confusion: torch.Tensor
    pair_pool_confusion: torch.Tensor | PoolsLeft | None = None

    def weights(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.probs[pairs]

    def conditionals(self, pairs: torch.Tensor, options: torch.Tensor, n_pools: int) -> torch.Tensor:
        """``[n, O, K, L]``: P(vote | label) of each option (a pool code below ``n_pools``, else a rater)."""
        table = torch.cat([self.pool_confusion, self.confusion])
        out = table[options.clamp_min(0)]
        is_pool = (options >= 0) & (options < n_pools)
        if self.pair_pool_confusion is None or not bool(is_pool.any()):  # named raters only: no pool's is read
            return out
        own = self.pair_pool_confusion[pairs]  # [n, P, K, L]
        code = options.clamp(0, n_pools - 1)[:, :, None, None].expand(-1, -1, *own.shape[2:])
        return torch.where(is_pool[:, :, None, None], own.gather(1, code), out)


@dataclass
class ComparisonPosterior:
    """Crowd Bradley-Terry: the latent is the utilities, represented by ``D`` posterior draws (equal weights)."""

    model: Any
    draws: dict[str, torch.Tensor]
    gaps: torch.Tensor  # [D, I] utility gap of every candidate pair under each draw
    pair_codes: torch.Tensor  # [I] the fitted pair's code (its pair-level effects), or a typical pair's

    def weights(self, pairs: torch.Tensor) -> torch.Tensor:
        d = self.gaps.shape[0]
        return torch.full((len(pairs), d), 1.0 / d, dtype=torch.float64)

    def conditionals(self, pairs: torch.Tensor, options: torch.Tensor, n_pools: int) -> torch.Tensor:
        """``[n, O, D, L]``: the vote distribution under each draw, for a typical rater (pools) or a given one."""
        n, o = options.shape
        gap = self.gaps[:, pairs][:, :, None].expand(-1, n, o).reshape(self.gaps.shape[0], n * o)
        flat = options.reshape(-1)
        codes = self.pair_codes[pairs][:, None].expand(n, o).reshape(-1)
        with torch.no_grad():
            typical = self.model.class_log_probs(self.draws, gap, None, codes)  # [D, n*O, L]
            rater = self.model.class_log_probs(self.draws, gap, (flat - n_pools).clamp_min(0), codes)
        probs = torch.where((flat < n_pools)[None, :, None], typical, rater).exp().double()
        return probs.permute(1, 0, 2).reshape(n, o, self.gaps.shape[0], -1)


# -- the vectorised planner ---------------------------------------------------------------------------------


def _entropy(p: torch.Tensor) -> torch.Tensor:
    # in place on the one temporary: the same numbers, a third of the memory (the planner's outcomes of a block)
    return -(p.clamp_min(_TINY).log_().mul_(p).sum(-1))


def plan_sequences(posterior: Any, pairs: torch.Tensor, options: torch.Tensor, reusable: torch.Tensor,
                   cost: torch.Tensor, n_pools: int, max_per_pair: int,
                   fixed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pair's greedy sequence of up to ``max_per_pair`` judgments.

    ``options`` ``[N, O]`` (-1: none), ``reusable`` ``[N, O]`` (true/false: a pool may judge a pair again, a rater
    may not; or numbers: how many more judgments of the pair each option can give, a pool's raters who have not
    judged it) and ``cost`` ``[N, O]``. ``fixed`` ``[N, F]`` (-1 padded): judgments already planned for the pair in this batch;
    the sequence continues after them (and counts them against ``max_per_pair``). Returns the chosen option
    ``[N, J]`` (-1 where the sequence stopped) and the marginal information gain of each slot ``[N, J]`` (nats),
    given the judgments before it.
    """
    if fixed is None or fixed.shape[1] == 0:
        return _plan_rows(posterior, pairs, options, reusable, cost, n_pools, max_per_pair, fixed)
    chosen = torch.full((options.shape[0], max_per_pair), -1, dtype=torch.long)
    gains = torch.zeros(options.shape[0], max_per_pair, dtype=torch.float64)
    # the pairs grouped by how many judgments they hold already, each group's joint of outcomes enumerated over its
    # own judgments: in one block every pair's was padded to the most any pair held plus the most room any pair had
    # (a capacity-cut round of binary labels: 2^6 outcomes a pair where 2^3 are possible, most of its time)
    placed = (fixed >= 0).sum(1)
    for count in torch.unique(placed).tolist():
        if count >= max_per_pair:  # no room: nothing to plan
            continue
        rows = torch.nonzero(placed == count).squeeze(1)
        chosen[rows], gains[rows] = _plan_rows(posterior, pairs[rows], options[rows], reusable[rows], cost[rows],
                                               n_pools, max_per_pair, _compact(fixed[rows]))
    return chosen, gains


def _plan_rows(posterior: Any, pairs: torch.Tensor, options: torch.Tensor, reusable: torch.Tensor,
               cost: torch.Tensor, n_pools: int, max_per_pair: int,
               fixed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`plan_sequences` of rows planned together: the joint of outcomes has a column for each column of
    ``fixed`` and each slot any row has room for (a row's padded with impossible outcomes where it has none)."""
    n_all, o = options.shape
    fixed = torch.full((n_all, 0), -1, dtype=torch.long) if fixed is None else fixed
    chosen = torch.full((n_all, max_per_pair), -1, dtype=torch.long)
    gains = torch.zeros(n_all, max_per_pair, dtype=torch.float64)
    if n_all == 0 or o == 0:
        return chosen, gains
    uses = (torch.where(reusable, np.inf, 1.0) if reusable.dtype == torch.bool else reusable).double()
    probe = posterior.conditionals(pairs[:1], options[:1], n_pools)
    m, n_labels = probe.shape[-2], probe.shape[-1]
    widest = o * m * n_labels ** (max_per_pair + fixed.shape[1])
    block = max(1, _BLOCK_BUDGET // max(1, widest))
    for lo in range(0, n_all, block):  # blocks of pairs bound the memory; within a block all is vectorised
        hi = min(lo + block, n_all)
        n = hi - lo
        rows = torch.arange(n)
        w = posterior.weights(pairs[lo:hi]).double()  # [n, M]
        cond = posterior.conditionals(pairs[lo:hi], options[lo:hi], n_pools).double()  # [n, O, M, L]
        cond_entropy = (w[:, None, :] * _entropy(cond)).sum(-1)  # [n, O]: H(y | latent) of one judgment
        left = uses[lo:hi].clone()  # judgments each option can still give the pair
        available = (options[lo:hi] >= 0) & (left > 0)
        joint = torch.ones(n, m, 1, dtype=torch.float64)  # P(outcomes so far | latent component)
        info = torch.zeros(n, dtype=torch.float64)
        noise = torch.zeros(n, dtype=torch.float64)

        def extend(joint: torch.Tensor, grown: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
            """The grown joint where a judgment was added; elsewhere the old one, padded with impossible outcomes."""
            padded = torch.cat([joint] + [torch.zeros_like(joint)] * (n_labels - 1), -1)
            return torch.where(ok[:, None, None], grown, padded)

        for column in fixed[lo:hi].T:  # judgments already in the batch
            has = column >= 0
            # -1 where the pair has none: a row of nothing (not pool 0, whose per-pair confusion was computed for it)
            own = posterior.conditionals(pairs[lo:hi], column[:, None], n_pools).double()[:, 0]
            grown = (joint[:, :, :, None] * own[:, :, None, :]).reshape(n, m, -1)
            joint = extend(joint, grown, has)
            noise = noise + torch.where(has, (w * _entropy(own)).sum(-1), 0.0)
            info = _entropy((w[:, :, None] * joint).sum(1)) - noise
            left = left - ((options[lo:hi] == column[:, None]) & has[:, None]).double()
            available = available & (left > 0)
        room = max_per_pair - (fixed[lo:hi] >= 0).sum(1)
        for slot in range(int(room.max())):  # slots no pair of the block has room for would only grow the joint
            grown = (joint[:, None, :, :, None] * cond[:, :, :, None, :]).reshape(n, o, m, -1)
            # weighted in place (the block's largest array, held once, not twice); the chosen option's joint is
            # made again from its factors below
            outcome = grown.mul_(w[:, None, :, None]).sum(2)  # [n, O, S * L]
            del grown
            new_info = _entropy(outcome) - (noise[:, None] + cond_entropy)
            value = (new_info - info[:, None]) / cost[lo:hi]
            value = torch.where(available, value, torch.full_like(value, -np.inf))
            best = _first_best(value)
            ok = torch.isfinite(value[rows, best]) & (value[rows, best] > 0) & (slot < room)
            chosen[lo:hi, slot] = torch.where(ok, options[lo:hi][rows, best], -1)
            gains[lo:hi, slot] = torch.where(ok, new_info[rows, best] - info, 0.0)
            joint = extend(joint, (joint[:, :, :, None] * cond[rows, best][:, :, None, :]).reshape(n, m, -1), ok)
            info = torch.where(ok, new_info[rows, best], info)
            noise = torch.where(ok, noise + cond_entropy[rows, best], noise)
            used = torch.zeros_like(left)
            used[rows, best] = ok.double()
            left = left - used
            available = available & (left > 0)
            if not bool(ok.any()):  # a pair that took nothing takes nothing later: more slots only grow the joint
                break
    return chosen, gains


def _first_best(value: torch.Tensor) -> torch.Tensor:
    """``value.argmax(-1)``, with values within :data:`_TIE` (relative) of the row's best counted as ties, which go
    to the first column: equal gains of interchangeable options differ in their last bits with the order of the
    sums that made them, and the option chosen followed that noise."""
    top = value.max(-1, keepdim=True).values
    near = value >= top - _TIE * top.abs()  # a row of nothing (-inf) ties everywhere: column 0, not taken
    return near.to(torch.int8).argmax(-1)


def _id_ranks(ids: pd.Index) -> np.ndarray:
    """Each id's place in the sorted ids (as text where they do not sort), the order ties are broken in: codes
    number ids in order of first appearance, so ties broken by code followed the table's row order."""
    try:
        order = ids.argsort()  # pandas' sort of the ids (a numpy sort of Python objects was 5 times slower)
    except TypeError:
        order = ids.astype(str).argsort()
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


def select_batch(gains: torch.Tensor, chosen: torch.Tensor, slot_cost: torch.Tensor,
                 budget: float, pair_rank: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The (pair, slot) entries of the batch: best marginal gain per cost first, until ``budget`` is spent.

    The values per cost are made non-increasing along each pair's sequence (a running minimum), so a pair's k-th
    judgment is never taken before its first; ties (within :data:`_TIE`, relative) go to the pair of lower
    ``pair_rank`` (its id's place in the sorted ids; ``None``: its row in ``gains``), then to earlier slots.
    """
    value = torch.where(chosen >= 0, gains / slot_cost, torch.full_like(gains, -np.inf))
    value = torch.cummin(value, dim=1).values.numpy()
    pair, slot = np.nonzero(np.isfinite(value) & (value > 0))
    if len(pair) == 0:
        return pair, slot
    rank = np.arange(len(value)) if pair_rank is None else np.asarray(pair_rank)
    chosen_value = value[pair, slot]
    del value
    # equal gains whose last bits differ: one level (in place: these are every open pair's entries)
    level = np.divide(chosen_value, chosen_value.max(), out=chosen_value)
    level = np.negative(np.round(np.divide(level, _TIE, out=level), out=level), out=level)
    order = np.lexsort((slot, rank[pair], level))
    del level
    pair, slot = pair[order], slot[order]
    if budget == np.inf:  # every entry (suggest cuts by capacity and budget after): no copies of them
        return pair, slot
    spent = np.cumsum(slot_cost.numpy()[pair, slot])
    take = spent <= budget + 1e-9
    return pair[take], slot[take]


# -- reading a fitted model ---------------------------------------------------------------------------------


def _pools_of(model: Any, pools: pd.Series | Mapping[Any, str] | None) -> tuple[np.ndarray, list[str]]:
    """Each fitted rater's pool code, and the pool names (``DEFAULT_POOL`` where none is given)."""
    workers = model.encoded_.worker_index
    if pools is None:
        return np.zeros(len(workers), dtype=np.int64), [DEFAULT_POOL]
    series = (pools if isinstance(pools, pd.Series) else pd.Series(dict(pools))).dropna().astype(str)
    distinct = pd.DataFrame({"annotator": series.index, "pool": series.to_numpy()}).drop_duplicates()
    twice = distinct["annotator"].duplicated()
    if twice.any():  # was pandas' "cannot reindex on an axis with duplicate labels"
        rater = distinct["annotator"][twice].iloc[0]
        raise AccordError(f"pools: annotator {rater!r} is given two pools ({sorted(series[series.index == rater])}); "
                          "a rater belongs to one pool")
    series = series[~series.index.duplicated()]  # a rater named twice in one pool is one rater
    if len(series) and not series.index.isin(workers).any():  # e.g. ids read as numbers: every rater fell in one pool
        raise AccordError(f"pools: none of the {len(series):,} annotators given was fitted (pools name e.g. "
                          f"{series.index.tolist()[0]!r}; the model's annotators are e.g. {workers.tolist()[0]!r})")
    names = series.reindex(workers).astype(object).where(lambda s: s.notna(), DEFAULT_POOL).astype(str)
    codes, uniques = pd.factorize(names, sort=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def rater_confusions(model: Any) -> torch.Tensor:
    """``[W, K, L]``: each rater's posterior-mean confusion (the one-judgment posterior predictive given the label)."""
    moments = getattr(model, "_moments", None)
    if moments is not None:
        # the posterior means the soft labels are computed from (exact under VB), as predictive_loglik reads them:
        # ``confusion_`` averages num_samples draws, whose noise (about 0.02 at the default 200) decided which rater
        # a pair went to, so that the same judgments in another row order gave another batch
        return moments.log_theta.detach().double().exp().cpu()
    if getattr(model, "confusion_", None) is not None:
        return torch.as_tensor(np.asarray(model.confusion_), dtype=torch.float64)
    n, step = model.encoded_.n_workers, 4096
    parts = [model._rater_confusion(lo, min(lo + step, n)).double().mean(0) for lo in range(0, n, step)]
    return torch.cat(parts)


def _is_comparison_model(model: Any) -> bool:
    return hasattr(model, "class_log_probs") and hasattr(model, "utility_draws")


@dataclass
class _Setup:
    posterior: Any
    pair_ids: pd.Index
    pair_frame: pd.DataFrame | None  # response ids of the candidate pairs (comparison models)
    current: np.ndarray  # [N, C] current class probabilities
    classes: list[Any]
    pool_names: list[str]
    rater_pool: np.ndarray


def _setup(model: Any, pools: Any, candidates: pd.DataFrame | None) -> _Setup:
    from accord.models.base import RaterModel

    if not (_is_comparison_model(model) or (isinstance(model, RaterModel)
                                            and type(model)._rater_confusion is not RaterModel._rater_confusion)):
        raise AccordError(f"{type(model).__name__} has no rater model to ask (no annotator confusions): use the "
                          "Dawid-Skene family, MACE, GLAD or crowd Bradley-Terry")
    if not hasattr(model, "soft_labels_"):
        raise AccordError(f"{type(model).__name__} is not fitted yet: call fit(judgments) first")
    rater_pool, pool_names = _pools_of(model, pools)
    soft = model.soft_labels_
    classes = list(soft.probs.columns)
    if _is_comparison_model(model):
        return _comparison_setup(model, candidates, rater_pool, pool_names)
    if candidates is not None:
        raise AccordError(f"{type(model).__name__} judges the pairs it was fitted on: candidate pairs are for "
                          "comparison models (crowd Bradley-Terry)")
    probs = torch.tensor(soft.probs.to_numpy(dtype=np.float64))
    confusion = rater_confusions(model)
    counts = torch.as_tensor(np.bincount(model.encoded_.workers, minlength=model.encoded_.n_workers),
                             dtype=torch.float64)
    pool_conf = torch.stack([(confusion * (counts * torch.as_tensor(rater_pool == p))[:, None, None]).sum(0)
                             / max(float(counts[torch.as_tensor(rater_pool == p)].sum()), _TINY)
                             for p in range(len(pool_names))])
    pair_conf = PoolsLeft(model.encoded_, len(probs), confusion, counts, rater_pool, len(pool_names))
    return _Setup(LabelPosterior(probs, confusion, pool_conf, pair_conf), soft.probs.index, None,
                  soft.probs.to_numpy(), classes, pool_names, rater_pool)


class PoolsLeft:
    """Per pair, the confusion of a random rater of each pool who has not judged it (the pool's count-weighted
    mixture less the raters who judged the pair: only the others can give its next judgment, and a sharp rater who
    judged it made the pool look sharper than the raters left); where every rater of the pool judged the pair, the
    whole pool's (no judgment of it is planned there). ``self[pairs]`` ``[n, P, K, L]`` is computed for the pairs
    asked for, block by block as the planner reads them: all pairs at once held ``[I, P, K, L]`` four times over
    (0.8 GB at 1M pairs and 3 pools) though named raters read none of it and the planner one block of pairs."""

    def __init__(self, encoded: Any, n_pairs: int, confusion: torch.Tensor, counts: torch.Tensor,
                 rater_pool: np.ndarray, n_pools: int) -> None:
        self.pool = torch.as_tensor(rater_pool, dtype=torch.long)
        self.weighted = confusion * counts[:, None, None]
        self.counts = counts
        self.n_pools = n_pools
        self.total = torch.zeros(n_pools, *confusion.shape[1:], dtype=torch.float64).index_add_(0, self.pool,
                                                                                                self.weighted)
        self.total_count = torch.zeros(n_pools, dtype=torch.float64).index_add_(0, self.pool, counts)
        item, worker = _judged(encoded)  # sorted by pair: each pair's judgments are one run
        self.worker = torch.as_tensor(worker)
        self.start = np.searchsorted(item, np.arange(n_pairs + 1))

    def __getitem__(self, pairs: torch.Tensor) -> torch.Tensor:
        pairs = np.asarray(pairs, dtype=np.int64)
        n, p, shape = len(pairs), self.n_pools, self.total.shape[1:]
        lo, size = self.start[pairs], self.start[pairs + 1] - self.start[pairs]
        # the judgments of the pairs asked for, in their order: each pair's run, without a loop over pairs
        at = np.repeat(lo - np.concatenate([[0], np.cumsum(size)[:-1]]), size) + np.arange(int(size.sum()))
        worker = self.worker[torch.as_tensor(at, dtype=torch.long)]
        key = torch.as_tensor(np.repeat(np.arange(n), size)) * p + self.pool[worker]
        judged = torch.zeros(n * p, *shape, dtype=torch.float64).index_add_(
            0, key, self.weighted[worker]).reshape(n, p, *shape)
        judged_count = torch.zeros(n * p, dtype=torch.float64).index_add_(0, key, self.counts[worker]).reshape(n, p)
        left = self.total_count - judged_count
        whole = self.total / self.total_count.clamp_min(_TINY)[:, None, None]
        # in the one [n, P, K, L] buffer (a block of 1M pairs': two more of them): the same numbers
        rest = torch.sub(self.total, judged, out=judged).div_(left.clamp_min(_TINY)[:, :, None, None]).clamp_min_(0.0)
        return torch.where((left > 0.5)[:, :, None, None], rest, whole.expand_as(rest))  # clamped: not -1e-17


def _comparison_setup(model: Any, candidates: pd.DataFrame | None, rater_pool: np.ndarray,
                      pool_names: list[str]) -> _Setup:
    n_draws = model._n_draws
    keep = torch.linspace(0, n_draws - 1, min(n_draws, MAX_DRAWS)).round().long().unique()
    # per-pair sites (crowd Bradley-Terry's pair tie propensity) get a typical pair's 0 after the fitted pairs', as in
    # predict_proba: a fitted pair's votes are predicted with its own effects, as its soft labels are
    draws = {name: torch.cat([value[keep], value.new_zeros(len(keep), 1)], dim=-1) if name in model.pair_priors
             else value[keep] for name, value in model._draws.items()}
    fitted = model.encoded_.item_index
    gaps = model._pair_gap_draws(np.arange(len(fitted)))[keep].double()
    codes = torch.arange(len(fitted))
    layout = model.layout_
    frame = pd.DataFrame({"response_a_id": layout.response_index[layout.pair_a],
                          "response_b_id": layout.response_index[layout.pair_b]}) \
        if layout.mode == "response" else pd.DataFrame({"response_a_id": [None] * len(fitted),
                                                        "response_b_id": [None] * len(fitted)})
    ids = fitted
    if candidates is not None:
        new_frame, a, b = model._response_codes(candidates)
        _check_candidates(layout, new_frame, a, b)
        utility = model.utility_draws()[keep].double()
        new_gaps = utility[:, torch.as_tensor(a)] - utility[:, torch.as_tensor(b)]
        new_ids = pd.Index(new_frame["response_a_id"].astype(str) + " vs " + new_frame["response_b_id"].astype(str))
        gaps = torch.cat([gaps, new_gaps], dim=1)
        codes = torch.cat([codes, torch.full((len(new_ids),), len(fitted))])
        ids = fitted.append(new_ids)
        frame = pd.concat([frame, new_frame], ignore_index=True)
    # the fitted pairs' own soft labels (what the stopping rule and p_label read); a candidate's from the draws, the
    # model's votes (OrdinalPreference: grades -S..S) as its soft-label classes (A, B, tie)
    current = model.soft_labels_.probs.to_numpy(dtype=np.float64)
    if len(ids) > len(fitted):
        with torch.no_grad():
            votes = model.class_log_probs(draws, gaps[:, len(fitted):].float(), None, codes[len(fitted):]).exp()
        new = model._vote_classes(votes).double().mean(0).numpy()
        current = np.concatenate([current, new / new.sum(-1, keepdims=True)])
    posterior = ComparisonPosterior(model, {k: v.double() if v.is_floating_point() else v for k, v in draws.items()},
                                    gaps, codes)
    return _Setup(posterior, pd.Index(ids, name="pair_id"), frame, current, list(model._soft_classes()),
                  pool_names, rater_pool)


def _check_candidates(layout: Any, frame: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> None:
    """One error for a candidate that compares a response with itself, repeats an earlier candidate or is a fitted
    pair (in either order): each would be planned as a pair of its own, its judgments valued as if the other's did
    not exist (two first judgments of one comparison, more than ``max_per_pair``)."""
    n = max(layout.n_responses, 1)
    key = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)
    fitted = np.minimum(layout.pair_a, layout.pair_b).astype(np.int64) * n + np.maximum(layout.pair_a, layout.pair_b)
    for bad, why in ((a == b, "compares a response with itself"),
                     (pd.Series(key).duplicated().to_numpy(), "repeats an earlier candidate (in either order)"),
                     (np.isin(key, fitted), "is a pair the model was fitted on (in either order), valued already")):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise AccordError(f"candidates row {row}: ({frame['response_a_id'].iloc[row]!r}, "
                              f"{frame['response_b_id'].iloc[row]!r}) {why}; candidates are comparisons never made "
                              "(unseen_comparisons(judgments) lists them)")


# -- the public functions -----------------------------------------------------------------------------------


def check_pool_costs(pool_costs: Mapping[str, float] | pd.Series | None) -> dict[str, float]:
    """``pool_costs`` as :func:`suggest` takes it (a mapping or Series of pool name -> cost of one judgment), checked:
    each cost a positive finite number. The one check of costs, which ``accord suggest`` runs on ``--pool-costs``
    before its fit (it checked them itself, in words of its own)."""
    costs: dict[str, float] = {}
    # a Series as pools= takes one (``pool_costs or {}`` asked a Series for its truth value)
    for name, value in ({} if pool_costs is None else pool_costs).items():
        if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) and np.isfinite(value)
                                                        and value > 0):
            shown = value.item() if isinstance(value, np.generic) else value  # -1.0, not numpy's np.float64(-1.0)
            raise AccordError(f"pool cost of {name!r} must be a positive number, not {shown!r}")
        costs[name] = float(value)
    return costs


def _cost_vector(pool_names: list[str], pool_costs: Mapping[str, float] | pd.Series | None,
                 pools: pd.Series | Mapping[Any, str] | None = None) -> np.ndarray:
    """Each pool's cost, 1 where none is given. ``pools``: the pools as given, raters outside the fit included, so
    that a cost of a pool none of whose raters was fitted is not called an unknown pool (as the CLI says it)."""
    costs = np.ones(len(pool_names))
    given = pd.Series(dtype=object) if pools is None else \
        (pools if isinstance(pools, pd.Series) else pd.Series(dict(pools))).dropna().astype(str)
    for name, value in check_pool_costs(pool_costs).items():
        name = str(name)  # pools are named as text (_pools_of): pools={"w0": 1} is pool '1', and so is its cost's 1
        idle = given.index[given.to_numpy() == name] if name not in pool_names else given.index[:0]
        if len(idle):  # _pools_of keeps the fitted raters only: the pool was given, but none of it can be assigned
            raise AccordError(f"pool cost for pool {name!r}: it has no rater who judged a pair of the fit (e.g. "
                              f"{idle[0]!r}), so none of it can be assigned; the raters' pools are {pool_names}")
        if name not in pool_names:
            raise AccordError(f"pool cost for unknown pool {name!r}: the raters' pools are {pool_names}")
        costs[pool_names.index(name)] = value
    return costs


def expected_information_gain(model: Any, *, pools: pd.Series | Mapping[Any, str] | None = None,
                              candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per pair and pool: the expected information gain (nats) about the pair's label from one judgment by a random
    rater of the pool who has not judged the pair (one column per pool; 0 where every rater of the pool judged it, as
    :func:`suggest` sends the pool nothing there), and ``p_label``, the current probability of the most likely label."""
    setup = _setup(model, pools, candidates)
    if "p_label" in setup.pool_names:  # its gains were replaced by the label's probability, silently
        raise AccordError("pool 'p_label' gives the column name 'p_label', which also holds the current probability "
                          "of the most likely label: rename the pool")
    n, p = len(setup.pair_ids), len(setup.pool_names)
    pairs = torch.arange(n)
    options = torch.arange(p).expand(n, p)
    cond = _single_gains(setup.posterior, pairs, options, p)
    # no judgment is possible where every rater of the pool judged the pair (it showed a positive gain there)
    cond = torch.where(_pool_room(model, setup, np.arange(n)) > 0, cond, 0.0)
    out = pd.DataFrame(cond.numpy(), index=setup.pair_ids, columns=setup.pool_names)
    out["p_label"] = setup.current.max(-1)
    return out


def _single_gains(posterior: Any, pairs: torch.Tensor, options: torch.Tensor, n_pools: int) -> torch.Tensor:
    """``[N, O]`` single-judgment information gain of every option, block by block of pairs."""
    out = torch.zeros(options.shape, dtype=torch.float64)
    probe = posterior.conditionals(pairs[:1], options[:1], n_pools)
    block = max(1, _BLOCK_BUDGET // max(1, int(np.prod(probe.shape[1:]))))
    for lo in range(0, len(pairs), block):
        hi = min(lo + block, len(pairs))
        w = posterior.weights(pairs[lo:hi]).double()
        cond = posterior.conditionals(pairs[lo:hi], options[lo:hi], n_pools).double()
        mixed = (w[:, None, :, None] * cond).sum(2)
        out[lo:hi] = _entropy(mixed) - (w[:, None, :] * _entropy(cond)).sum(-1)
    return out.clamp_min(0.0)


def suggest(model: Any, budget: float, *, pool_costs: Mapping[str, float] | None = None,
            pools: pd.Series | Mapping[Any, str] | None = None, raters: Sequence[Any] | pd.Index | None = None,
            allowed: pd.DataFrame | None = None, capacity: int | pd.Series | Mapping[Any, int] | None = None,
            candidates: pd.DataFrame | None = None, max_per_pair: int = 3, certainty: float = 0.99) -> pd.DataFrame:
    """The next batch of judgments: one row per requested judgment, best value per cost first.

    Parameters
    ----------
    model
        A fitted rater model: the Dawid-Skene family, MACE, GLAD (anything with annotator confusions), or crowd
        Bradley-Terry.
    budget
        Total cost of the batch; with every cost 1 (the default), the number of judgments.
    pool_costs, pools
        Cost of one judgment per pool, e.g. ``{"human": 1, "ai": 0.05}``, and the pool of each fitted rater (a
        Series or mapping annotator -> pool; raters without one are in ``DEFAULT_POOL``).
    raters
        Raters who can be assigned (known to the model): each judgment then names its rater, each rater at most once
        per pair and never on a pair they already judged. Without ``raters`` (or ``allowed``), each judgment names a
        pool, to be given to a random rater of it.
    allowed
        ``pair_id`` / ``annotator`` rows (crowd-kit's ``task`` / ``worker``): the only (pair, rater) assignments
        possible (e.g. raters who can still be asked about that pair); implies rater assignment.
    capacity
        The most judgments a rater takes in this batch (one number for all, or per annotator; with ``raters`` or
        ``allowed``, as judgments given to a pool name no rater); the batch is then planned in rounds, each
        continuing the pairs' sequences after the judgments already placed.
    candidates
        Comparison models: response pairs to consider besides the fitted pairs (``response_a_id``,
        ``response_b_id``), e.g. two responses never compared.
    max_per_pair
        The most judgments one pair gets in this batch.
    certainty
        Stopping rule: pairs whose most likely label has at least this probability get nothing.

    Returns a DataFrame with ``pair_id``, ``annotator`` (missing for a pool), ``pool``, ``slot`` (1 = the pair's
    first judgment in the batch), ``expected_gain`` (the marginal information gain in nats, given the pair's
    earlier slots), ``cost``, ``label`` / ``p_label`` (the current most likely label and its probability), and
    ``response_a_id`` / ``response_b_id`` for comparison models.
    """
    # numpy's numbers count (a budget computed with numpy is an np.int64), true/false does not
    if isinstance(budget, bool) or not (isinstance(budget, numbers.Real) and np.isfinite(budget) and budget > 0):
        raise AccordError(f"budget must be a positive number, not {budget!r}")
    if isinstance(max_per_pair, bool) or not (isinstance(max_per_pair, numbers.Integral) and max_per_pair >= 1):
        raise AccordError(f"max_per_pair must be a whole number >= 1, not {max_per_pair!r}")
    max_per_pair = int(max_per_pair)
    if isinstance(certainty, (bool, np.bool_)) or not (isinstance(certainty, numbers.Real) and 0.0 < certainty <= 1.0):
        raise AccordError(f"certainty must be in (0, 1], not {certainty!r}")
    if isinstance(raters, pd.DataFrame):  # iterating a table gives its column names, which name no rater
        raise AccordError(f"raters: expected the annotator ids (a list, Index or Series), not a table with columns "
                          f"{list(raters.columns)}; pass e.g. raters=table['annotator'] and the table's capacity as "
                          "capacity=table.set_index('annotator')['capacity']")
    if isinstance(raters, str):  # one id, read letter by letter: "none of the raters given is known"
        raise AccordError(f"raters: expected a list of annotator ids, not the string {raters!r} (raters=[{raters!r}] "
                          "names one rater)")
    if raters is not None:
        raters = list(raters)  # read twice (the warning of unknown raters, the options): a generator was spent by one
    if capacity is not None and raters is None and allowed is None:  # each judgment names a pool: it capped nothing
        raise AccordError("capacity caps the judgments of named raters: pass raters= (or allowed=) too; without them "
                          "each judgment goes to a pool, to a random rater of it")
    setup = _setup(model, pools, candidates)
    pool_cost = _cost_vector(setup.pool_names, pool_costs, pools)
    n_pools, n_pairs = len(setup.pool_names), len(setup.pair_ids)
    open_pairs = np.flatnonzero(setup.current.max(-1) < certainty)
    workers = model.encoded_.worker_index
    if raters is None and allowed is None:
        options = torch.arange(n_pools).expand(len(open_pairs), n_pools).clone()
        reusable = _pool_room(model, setup, open_pairs)
    else:
        if raters is not None:
            _warn_unknown_raters(raters, workers)
        options = _rater_options(model, setup, open_pairs, raters, allowed) + n_pools
        options = torch.where(options >= n_pools, options, torch.full_like(options, -1))
        reusable = torch.ones(options.shape, dtype=torch.float64)  # a rater judges a pair once
    option_cost = np.concatenate([pool_cost, pool_cost[setup.rater_pool]])
    cost = torch.as_tensor(option_cost[options.clamp_min(0).numpy()], dtype=torch.float64)
    max_per_pair = _slots(setup.posterior, options, reusable, n_pools, max_per_pair, float(budget) / pool_cost.min())
    pairs = torch.as_tensor(open_pairs, dtype=torch.long)
    pair_rank = _id_ranks(setup.pair_ids)[open_pairs]  # ties go to the pair whose id sorts first
    room = _capacities(capacity, workers, setup.rater_pool)
    fixed = torch.full((len(open_pairs), 0), -1, dtype=torch.long)
    picked: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # row, option, slot, gain
    left = float(budget)
    n_gainful, min_cost, capacity_spent = 0, np.inf, False
    # one round unless raters' capacities cut the batch; a round that cuts fills a rater, so there are at most as many
    # as raters (8 rounds at most left the budget unspent where raters still had room: 28 of 40 raters of capacity 1)
    # (each round plans only the pairs that a cut left an entry worth something: every other pair's sequence is
    # placed whole or worth nothing more, and a later round, with fewer raters, would find it so again)
    # and only pairs that someone can judge: allowed= naming 2,000 of 1M open pairs planned them all (0.8 GB)
    active = np.flatnonzero(((options >= 0) & (reusable > 0)).any(1).numpy()) if options.numel() else \
        np.arange(len(open_pairs))
    for _ in range(len(workers) + 1):
        full = np.flatnonzero(room <= 0) + n_pools
        live = torch.where(torch.as_tensor(np.isin(options.numpy(), full)), -1, options) if len(full) else options
        if len(active) == len(open_pairs):  # every open pair (the first round, as a rule): no copy of [N, O] arrays
            chosen, gains = plan_sequences(setup.posterior, pairs, live, reusable, cost, n_pools, max_per_pair, fixed)
        else:
            sub = torch.as_tensor(active, dtype=torch.long)
            chosen, gains = plan_sequences(setup.posterior, pairs[sub], live[sub], reusable[sub], cost[sub], n_pools,
                                           max_per_pair, fixed[sub])
        slot_cost = torch.as_tensor(option_cost[chosen.clamp_min(0).numpy()], dtype=torch.float64)
        if not picked:  # open pairs a judgment would tell something of: none leaves an empty batch with budget left
            worth = (gains > 0) & (chosen >= 0) if gains.numel() else torch.zeros(0, dtype=torch.bool)
            n_gainful = int(worth.any(1).sum()) if worth.numel() else 0
            # why a batch can be empty: the cheapest judgment worth something is over the budget, or every rater
            # who could judge an open pair is at capacity
            min_cost = float(slot_cost[worth].min()) if n_gainful else np.inf
            capacity_spent = bool((options >= n_pools).any() and not (live >= 0).any())
        # every entry worth something, best first; those past a rater's capacity are dropped before the budget is
        # counted (dropped after, they left budget unspent that later rounds did not always place)
        selected, slot = select_batch(gains, chosen, slot_cost, np.inf, pair_rank[active])
        if len(selected) == 0:
            break
        pick = chosen.numpy()[selected, slot]  # numpy's gather: torch's copied both index arrays first
        keep = _within_capacity(selected, slot, pick - n_pools, room)
        if keep.all():  # no capacity cut (as a rule): the entries as they are, not three copies of them
            placed = _within_budget(selected, slot, option_cost[pick], left)
        else:
            placed = keep.copy()
            placed[keep] = _within_budget(selected[keep], slot[keep], option_cost[pick[keep]], left)
        row, slot, pick = active[selected[placed]], slot[placed], pick[placed]
        if len(row) == 0:
            break
        done = (fixed[torch.as_tensor(row)] >= 0).sum(1).numpy()  # judgments each placed pair held already
        picked.append((row, pick, done + slot, gains[selected[placed], slot].numpy()))
        if keep.all():  # nothing was cut by a capacity: no later round (nor its [N, J] plan of what is placed)
            break
        left -= float(option_cost[pick].sum())
        np.subtract.at(room, np.clip(pick - n_pools, 0, None)[pick >= n_pools], 1)
        added = torch.full((len(open_pairs), max_per_pair), -1, dtype=torch.long)
        added[torch.as_tensor(row), torch.as_tensor(slot)] = torch.as_tensor(pick)
        fixed = _compact(torch.cat([fixed, added], dim=1))
        active = np.unique(active[selected[~placed]])
    row, pick, slot, gain = (np.concatenate(parts) if picked else np.zeros(0, dtype=np.int64)
                             for parts in zip(*picked)) if picked else (np.zeros(0, dtype=np.int64),) * 4
    pair_code = open_pairs[row]
    is_rater = pick >= n_pools
    annotator = np.where(is_rater, np.asarray(workers, dtype=object)[np.clip(pick - n_pools, 0, None)], None)
    pool_code = np.where(is_rater, setup.rater_pool[np.clip(pick - n_pools, 0, None)], pick)
    top = setup.current[pair_code].argmax(-1) if len(pair_code) else np.zeros(0, dtype=int)
    out = pd.DataFrame({
        "pair_id": setup.pair_ids[pair_code],
        "annotator": annotator,
        "pool": np.asarray(setup.pool_names, dtype=object)[pool_code],
        "slot": slot + 1,
        "expected_gain": gain.astype(np.float64),
        "cost": option_cost[pick] if len(pick) else np.zeros(0),
        "label": np.asarray(setup.classes, dtype=object)[top],
        "p_label": setup.current[pair_code, top] if len(pair_code) else np.zeros(0),
    })
    if setup.pair_frame is not None:
        out.insert(1, "response_a_id", setup.pair_frame["response_a_id"].to_numpy()[pair_code])
        out.insert(2, "response_b_id", setup.pair_frame["response_b_id"].to_numpy()[pair_code])
    out.attrs["n_open_pairs"] = int(len(open_pairs))
    out.attrs["n_gainful_pairs"] = n_gainful
    out.attrs["min_cost"] = min_cost
    out.attrs["capacity_spent"] = capacity_spent
    # named raters, or the raters of every pool, each of whom judged every open pair already (a rater is not sent a
    # pair twice)
    out.attrs["raters_done"] = bool(len(open_pairs) and not ((options >= 0) & (reusable > 0)).any())
    out.attrs["n_pairs"] = int(n_pairs)
    return out


#: the most outcomes of one pair's planned judgments that are enumerated (labels ** judgments)
MAX_OUTCOMES = 2**16


def _slots(posterior: Any, options: torch.Tensor, reusable: torch.Tensor, n_pools: int, max_per_pair: int,
           affordable: float) -> int:
    """The judgments a pair can get in this batch: ``max_per_pair``, or fewer where the budget buys fewer (``
    affordable``, at the cheapest cost) or the pair's options give fewer (a pool's raters who have not judged it, each
    named rater once). A pair's sequence was planned to ``max_per_pair`` whatever the budget and the raters, its
    outcomes enumerated labels ** max_per_pair (max_per_pair=50 with a budget of 5: 2 ** 50 numbers a pair). Where
    the judgments a pair can get have more than :data:`MAX_OUTCOMES` outcomes (and are more than 3), one clear error."""
    if options.numel() == 0:
        return max_per_pair
    most = float(torch.where(options >= 0, reusable.double(), 0.0).sum(1).max())
    slots = max(1, int(min(max_per_pair, np.floor(affordable + 1e-9), most)))
    n_labels = posterior.conditionals(torch.zeros(1, dtype=torch.long), options[:1], n_pools).shape[-1]
    # three judgments (the default max_per_pair) are planned whatever the labels (40 classes and more: as before)
    if slots > 3 and n_labels ** slots > MAX_OUTCOMES:
        fits = max(3, int(np.floor(np.log(MAX_OUTCOMES) / np.log(n_labels) + 1e-9)))
        raise AccordError(f"max_per_pair {max_per_pair}: a pair's next {slots} judgments are valued jointly over their "
                          f"{n_labels}^{slots} outcomes, more than the {MAX_OUTCOMES:,} enumerated; pass max_per_pair="
                          f"{fits} or less (or a smaller budget)")
    return slots


def _judged(encoded: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (pair, rater) codes of the fitted judgments, each rater once per pair (a repeat judgment kept with
    ``duplicates='keep'`` is not a second rater), sorted by pair, then rater."""
    n_w = max(encoded.n_workers, 1)
    done = _sorted_unique(encoded.items.astype(np.int64) * n_w + encoded.workers)
    return done // n_w, done % n_w


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` of integers by a sort: numpy 2's ``np.unique`` hashes first, 7 s for 2M judgments' keys on
    one core where the sort takes 0.3 s (suggest read them three times: 25 s of a 1M-pair batch)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _sorted_isin(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.isin(values, keys)`` for sorted distinct ``keys``, by a binary search (``np.isin`` sorts both again, by
    ``np.unique``)."""
    if len(keys) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return keys[at] == values


def _as_written(value: Any) -> Any:
    """An id read from a table for a message: 3, not numpy's np.int64(3) (a tuple of them, each so)."""
    return tuple(_as_written(v) for v in value) if isinstance(value, tuple) else as_written(value)


def _first_few(values: Any, shown: int = 3) -> str:
    """The first ``shown`` of ``values`` for a message, then ", ..." when there are more."""
    values = list(values)
    return ", ".join(repr(_as_written(v)) for v in values[:shown]) + (", ..." if len(values) > shown else "")


def _pool_room(model: Any, setup: _Setup, open_pairs: np.ndarray) -> torch.Tensor:
    """``[N_open, P]``: how many more judgments of each open pair each pool can give, its raters who have not
    judged the pair (a random rater of the pool is one of them: the pool was sent a pair every rater of it had judged,
    up to ``max_per_pair`` times, judgments no rater could give but as a repeat)."""
    n_pools = len(setup.pool_names)
    item, worker = _judged(model.encoded_)
    judged = np.bincount(item * n_pools + setup.rater_pool[worker],
                         minlength=len(setup.pair_ids) * n_pools).reshape(-1, n_pools)
    size = np.bincount(setup.rater_pool, minlength=n_pools)
    return torch.as_tensor((size[None, :] - judged[open_pairs]).astype(np.float64))


def _compact(fixed: torch.Tensor) -> torch.Tensor:
    """Each pair's planned judgments first (in their order), then -1, and no column that is -1 for every pair: a pair
    holds at most ``max_per_pair`` judgments, so the planned columns stay that few. Appending each round's columns
    as they were grew the joint of outcomes that :func:`plan_sequences` enumerates by a factor of the number of
    labels per column, padding included (capacity-cut batches took minutes: 3^(3 x round))."""
    order = torch.argsort((fixed < 0).to(torch.int8), dim=1, stable=True)
    fixed = fixed.gather(1, order)
    return fixed[:, : int((fixed >= 0).sum(1).max())] if len(fixed) else fixed


def check_capacity(capacity: Any) -> float | pd.Series | None:
    """``capacity`` as :func:`suggest` takes it, checked: one number for all raters, or one per annotator (a Series,
    NaN for no cap); ``None`` for none. The one check of capacities, which ``accord suggest`` runs on a raters file's
    column before its fit (it checked them itself, and its check had drifted from this one)."""
    if capacity is None:
        return None
    if not isinstance(capacity, (pd.Series, Mapping)):
        if not _whole_number(capacity):  # 1.5 let a rater take 2
            raise AccordError(f"capacity must be a whole number of judgments >= 0, or one per annotator (a Series or "
                              f"mapping), not {capacity!r}")
        return float(capacity)
    values = capacity if isinstance(capacity, pd.Series) else pd.Series(dict(capacity), dtype=object)
    if values.index.has_duplicates:
        raise AccordError(f"capacity: annotator {values.index[values.index.duplicated()][0]!r} is given two capacities")
    given = values.notna()  # a missing capacity leaves the rater uncapped
    bad = given & ~values.map(_whole_number).astype(bool)
    if bad.any():
        value = values[bad].iloc[0]  # as given: -1, not numpy's np.int64(-1)
        raise AccordError(f"capacity of annotator {bad.idxmax()!r}: expected a whole number of judgments >= 0 (or "
                          f"missing for no cap), not {value.item() if isinstance(value, np.generic) else value!r}")
    return values.where(given).astype(float)


def _capacities(capacity: Any, workers: pd.Index, rater_pool: np.ndarray) -> np.ndarray:
    """Judgments each rater may still take in this batch (infinite without a capacity)."""
    values = check_capacity(capacity)
    if values is None:
        return np.full(len(workers), np.inf)
    if not isinstance(values, pd.Series):
        return np.full(len(workers), values)
    if len(values) and not values.index.isin(workers).any():  # e.g. ids read as numbers: every rater was uncapped
        raise AccordError(f"capacity: none of the {len(values):,} annotators given was fitted (capacity names e.g. "
                          f"{values.index.tolist()[0]!r}; the model's annotators are e.g. {workers.tolist()[0]!r})")
    unknown = values.index[~values.index.isin(workers)]
    if len(unknown):  # their capacity capped nothing, without a word (as unknown raters= are named)
        warnings.warn(f"capacity: {len(unknown):,} of the {len(values):,} annotators given judged no pair the model "
                      f"was fitted on: their capacity caps nothing ({_first_few(unknown)})", UserWarning, stacklevel=3)
    values = values.reindex(workers)
    return np.where(values.isna(), np.inf, values.to_numpy())


def _whole_number(value: Any) -> bool:
    """A whole number >= 0 (numpy's too; true/false and text are not)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and bool(np.isfinite(value))
            and value >= 0 and float(value).is_integer())


def _within_capacity(row: np.ndarray, slot: np.ndarray, rater: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Which selected entries (best first) fit the raters' remaining capacity; an entry whose pair lost an earlier
    slot goes too (a pair's k-th judgment only with its first k - 1)."""
    is_rater = rater >= 0
    code = np.where(is_rater, rater, 0)
    if not np.isfinite(room[code[is_rater]]).any():  # no capacity to cut by (pools, uncapped raters): all fit
        return np.ones(len(row), dtype=bool)
    order = pd.Series(code).groupby(code).cumcount().to_numpy()  # rank of the entry among its rater's (best first)
    keep = ~is_rater | (order < room[code])
    return keep & (slot < _first_lost(row, slot, ~keep))


def _first_lost(row: np.ndarray, slot: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """Per entry, the first ``lost`` slot of its pair ``row`` (int64's largest where none is): a pandas groupby of
    the entries (every open pair's, at 1M pairs) held ten times their memory."""
    first = np.full(int(row.max()) + 1 if len(row) else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, row[lost], slot[lost])
    return first[row]


def _within_budget(row: np.ndarray, slot: np.ndarray, cost: np.ndarray, left: float) -> np.ndarray:
    """Which selected entries (best first) the budget ``left`` buys: each in turn while it fits, as the greedy rule
    under a budget takes them. An entry that does not fit is passed over, with its pair's later slots (a pair's k-th
    judgment only with its first k - 1); it was the end of the batch, so that a dear judgment left the budget unspent
    where cheaper ones of positive value still fitted. Each pass takes the longest run that fits after dropping what
    no longer can (the budget only shrinks), so the passes are at most as many as the distinct costs."""
    taken = np.zeros(len(row), dtype=bool)
    live = np.ones(len(row), dtype=bool)
    cheapest = float(cost.min()) if len(cost) else 0.0
    while True:
        live &= cost <= left + 1e-9
        if not live.all():
            live &= slot < _first_lost(row, slot, ~live)
        waiting = np.flatnonzero(live & ~taken)
        if len(waiting) == 0:
            return taken
        # the run that fits is at most left / cheapest long: its sums over the waiting entries of a 1M-pair batch
        # (every entry worth something) held two more copies of them; where the head all fits, the whole as before
        most = len(waiting) if cheapest <= 0 else int(min(len(waiting), np.floor((left + 1e-9) / cheapest) + 2))
        head = waiting[:most]
        spent = np.cumsum(cost[head])
        if len(head) < len(waiting) and spent[-1] <= left + 1e-9:
            head, spent = waiting, np.cumsum(cost[waiting])
        take = head[spent <= left + 1e-9]  # the first one fits: every pass takes one
        taken[take] = True
        left -= float(cost[take].sum())


def _warn_unknown_raters(raters: Any, workers: pd.Index) -> None:
    """Warn of raters given who judged nothing the model was fitted on: they cannot be assigned (no confusion to
    value their judgment by) and were left out of the batch without a word, where ``accord suggest --raters`` names
    them. None known is an error (:func:`_rater_options`)."""
    given = pd.Index(list(raters)).drop_duplicates()
    unknown = given[workers.get_indexer(given) < 0]
    if 0 < len(unknown) < len(given):
        warnings.warn(f"raters: {len(unknown):,} of the {len(given):,} raters given judged no pair the model was "
                      f"fitted on and cannot be assigned ({_first_few(unknown)})", UserWarning, stacklevel=3)


def _rater_options(model: Any, setup: _Setup, open_pairs: np.ndarray, raters: Any,
                   allowed: pd.DataFrame | None) -> torch.Tensor:
    """``[N_open, O]`` rater codes each open pair may be sent to (-1 padding), without raters who judged it."""
    encoded = model.encoded_
    workers = encoded.worker_index
    if allowed is not None:
        if not isinstance(allowed, pd.DataFrame):
            raise AccordError(f"allowed must be a DataFrame with columns pair_id and annotator, not "
                              f"{type(allowed).__name__}")
        # crowd-kit's names, as the judgments table takes them (a table of task/worker rows was refused)
        allowed = allowed.rename(columns={crowdkit: ours for crowdkit, ours in CROWDKIT_COLUMNS.items()
                                          if ours not in allowed.columns})
        missing = [c for c in ("pair_id", "annotator") if c not in allowed.columns]
        if missing:
            raise AccordError(f"allowed assignments need columns pair_id and annotator (or crowd-kit's task and "
                              f"worker; missing {missing})")
        item = setup.pair_ids.get_indexer(allowed["pair_id"])
        worker = workers.get_indexer(allowed["annotator"])
        unknown = (item < 0) | (worker < 0)
        if 0 < unknown.sum() < len(allowed):  # they were left out without a word (none known is the error below)
            rows = allowed[unknown]
            warnings.warn(f"allowed: {int(unknown.sum()):,} of the {len(allowed):,} assignments name a pair or a rater "
                          f"the model was not fitted on and cannot be made "
                          f"({_first_few(zip(rows['pair_id'], rows['annotator']))})", UserWarning, stacklevel=3)
        if raters is not None:
            given = np.isin(worker, workers.get_indexer(pd.Index(list(raters))))
            if len(allowed) and not (given & ~unknown).any() and (~unknown).any():
                # the assignments the model knows name none of the raters given: it was called an unfitted table
                raise AccordError(f"none of the {len(allowed):,} allowed assignments names one of the raters given "
                                  f"(raters: {_first_few(raters)}; allowed: annotator "
                                  f"{_as_written(allowed['annotator'][~unknown].iloc[0])!r})")
            worker = np.where(given, worker, -1)
        keep = (item >= 0) & (worker >= 0)
        if len(allowed) and not keep.any():  # e.g. a model fitted on another table: not silently an empty batch
            raise AccordError(f"none of the {len(allowed):,} allowed assignments names a pair and a rater the model "
                              f"was fitted on (allowed: pair {_as_written(allowed['pair_id'].iloc[0])!r}, annotator "
                              f"{_as_written(allowed['annotator'].iloc[0])!r}; fitted: pair "
                              f"{setup.pair_ids[:1].tolist()[0]!r}, annotator {workers[:1].tolist()[0]!r})")
        item, worker = item[keep], worker[keep]
    else:
        codes = workers.get_indexer(pd.Index(list(raters)))
        codes = np.unique(codes[codes >= 0])
        if len(codes) == 0:
            raise AccordError("none of the raters given is known to the model (they judged nothing it was fitted "
                              "on): name annotators of the judgments")
        item = np.repeat(open_pairs, len(codes))
        worker = np.tile(codes, len(open_pairs))
    # never a rater on a pair they already judged
    n_w = max(encoded.n_workers, 1)
    judged_item, judged_worker = _judged(encoded)
    keep = ~_sorted_isin(item.astype(np.int64) * n_w + worker, judged_item * n_w + judged_worker)
    # only open pairs, laid out in the order of ``open_pairs``
    position = np.full(len(setup.pair_ids), -1)
    position[open_pairs] = np.arange(len(open_pairs))
    keep &= position[item] >= 0
    item, worker = position[item[keep]], worker[keep]
    # each pair's raters in the order of their ids, where a tie in the gain goes to the first (in the order of their
    # codes, it went to the rater whose row came first)
    order = np.lexsort((_id_ranks(workers)[worker], item))
    item, worker = item[order], worker[order]
    first = np.ones(len(item), dtype=bool)
    first[1:] = (item[1:] != item[:-1]) | (worker[1:] != worker[:-1])  # a rater allowed twice: once
    item, worker = item[first], worker[first]
    counts = np.bincount(item, minlength=len(open_pairs))
    width = max(int(counts.max()) if len(counts) else 0, 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(item)) - starts[item]
    grid = np.full((len(open_pairs), width), -1, dtype=np.int64)
    grid[item, slot] = worker
    return torch.as_tensor(grid)


def unseen_comparisons(judgments: pd.DataFrame, *, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Pairs of responses to one prompt that no judgment compares (``response_a_id``, ``response_b_id``), at most
    ``limit`` of them (a random subset); empty without response ids and prompts."""
    needed = {"prompt", "response_a_id", "response_b_id"}
    if not needed <= set(judgments.columns):
        return pd.DataFrame(columns=["response_a_id", "response_b_id"])
    sides = pd.concat([judgments[["prompt", "response_a_id"]].set_axis(["prompt", "response"], axis=1),
                       judgments[["prompt", "response_b_id"]].set_axis(["prompt", "response"], axis=1)])
    sides = sides.dropna().drop_duplicates()
    both = sides.merge(sides, on="prompt", suffixes=("_a", "_b"))
    both = both[both["response_a"].astype(str) < both["response_b"].astype(str)]
    seen = pd.concat([judgments[["response_a_id", "response_b_id"]],
                      judgments[["response_b_id", "response_a_id"]].set_axis(["response_a_id", "response_b_id"],
                                                                              axis=1)])
    # an anti-join on the ids as text (a left merge keeps the candidates' order), not a set lookup per candidate
    seen = seen.astype(str).drop_duplicates().set_axis(["response_a", "response_b"], axis=1)
    keys = both[["response_a", "response_b"]].astype(str)
    compared = keys.merge(seen, how="left", on=["response_a", "response_b"], indicator=True)["_merge"] == "both"
    fresh = both[~compared.to_numpy()]
    # in the order of the ids (as text), not of the judgments' rows: the random subset drawn from a table in another
    # row order was another subset, so the same judgments gave another batch
    fresh = fresh.loc[keys[~compared.to_numpy()].sort_values(["response_a", "response_b"], kind="stable").index]
    if limit is not None and len(fresh) > limit:
        fresh = fresh.sample(limit, random_state=seed)
    return fresh[["response_a", "response_b"]].set_axis(["response_a_id", "response_b_id"], axis=1).reset_index(
        drop=True)
