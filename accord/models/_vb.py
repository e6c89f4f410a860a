"""Closed-form variational Bayes for confusion-matrix models, and the vectorized item posterior under parameter draws.

Everything here works on one sparse matrix, the *incidence* of the judgments: ``S[i, w * L + l]`` counts the
judgments that annotator ``w`` gave item ``i`` with label ``l``. With it, both halves of an EM/VB iteration are one
sparse-dense product each, with no Python loop over judgments:

- E-step: ``scores[i, k] = log pi_k + sum_{(w, l) in i} log theta[w, k, l] = log pi_k + (S @ T)[i, k]`` where
  ``T[w * L + l, k] = log theta[w, k, l]``;
- M-step: ``counts[w * L + l, k] = sum_{i judged by w with l} q(z_i = k) = (S^T @ q)[w * L + l, k]``.

Under ``D`` posterior draws of ``theta`` the E-step is still one product, ``S @ [T_1 | ... | T_D]``, done on chunks of
items so memory stays bounded. The same code runs on any torch device (CSR products exist on CPU and CUDA).

Variational Bayes for Dawid & Skene (1979) with Dirichlet priors (the mean-field family ``q(z) q(pi) q(theta)`` is
conjugate: every factor has a closed-form update):

- ``q(theta_{w,k}) = Dirichlet(beta_k + sum_{i, l} q(z_i = k) S[i, w L + l] e_l)``,
- ``q(pi) = Dirichlet(alpha + sum_i q(z_i))``,
- ``q(z_i = k) ∝ exp(E[log pi_k] + sum_{(w, l) in i} E[log theta_{w,k,l}])``, with
  ``E[log theta_{w,k,l}] = digamma(a_{w,k,l}) - digamma(sum_l a_{w,k,l})``.

Two calibration devices of :class:`accord.models.dawid_skene.DawidSkene` live here as well (its docstring has the
maths): the empirical Bayes prior of the confusion rows (:func:`fit_confusion_prior_evidence`,
:func:`fit_confusion_prior`) and the gold-free tempering and vote shrinkage of the item posterior
(:func:`select_item_calibration`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from scipy.special import gammaln, polygamma, psi

from accord.datasets import Encoded
from accord.models.base import ItemSummary, quantiles_90


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A CSR tensor (torch marks sparse CSR as beta; the products used here are stable, so its notice is muted)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)


@dataclass(frozen=True)
class Incidence:
    """The judgments as a sparse ``[n_items, n_workers * n_classes]`` count matrix, in both orientations."""

    by_item: torch.Tensor  # CSR [I, W * L]
    by_cell: torch.Tensor  # CSR [W * L, I]
    crow: np.ndarray  # row pointers of by_item (numpy, for chunking)
    col: torch.Tensor  # column indices of by_item
    val: torch.Tensor  # counts of by_item
    n_items: int
    n_workers: int
    n_classes: int
    host: sp.csr_matrix | None = None  # by_item as a SciPy matrix, float64 on the CPU (None elsewhere)

    def __reduce__(self) -> tuple:
        """Pickle and ``copy.deepcopy`` (of a fitted model) by the CSR tensors' parts: torch cannot deepcopy a sparse
        CSR tensor (it has no storage to copy), and unpickling one whole warns that CSR support is beta."""
        parts = lambda m: (m.crow_indices(), m.col_indices(), m.values(), tuple(m.shape))  # noqa: E731
        return (_incidence_from_parts, (parts(self.by_item), parts(self.by_cell), self.crow, self.n_items,
                                        self.n_workers, self.n_classes, self.host))

    def item_product(self, table: torch.Tensor) -> torch.Tensor:
        """``by_item @ table`` (``[I, K']`` from ``[W * L, K']``), the E-step's product."""
        if self._on_host(table):
            return torch.from_numpy(self.host @ table.numpy())
        return self.by_item @ table

    def cell_product(self, q: torch.Tensor) -> torch.Tensor:
        """``by_cell @ q`` (``[W * L, K']`` from ``[I, K']``), the M-step's product."""
        if self._on_host(q):
            return torch.from_numpy(np.ascontiguousarray(self.host.T @ q.numpy()))
        return self.by_cell @ q

    def _on_host(self, dense: torch.Tensor) -> bool:
        """Whether a product with ``dense`` goes to SciPy: on one torch thread its CSR kernels (one pass over the
        judgments, the transposed product as a scatter into the small output) take about half the time of torch's,
        whose kernels are the ones that run on several threads or on an accelerator."""
        return (self.host is not None and dense.dtype == torch.float64 and dense.device.type == "cpu"
                and not dense.requires_grad and torch.get_num_threads() == 1)

    def astype(self, dtype: torch.dtype) -> "Incidence":
        """The same incidence with values of another dtype (float32 halves the cost of draw-based summaries)."""
        if self.val.dtype == dtype:
            return self

        def cast(m: torch.Tensor) -> torch.Tensor:
            return _csr(m.crow_indices(), m.col_indices(), m.values().to(dtype), tuple(m.shape))

        by_item = cast(self.by_item)
        return Incidence(by_item, cast(self.by_cell), self.crow, self.col, by_item.values(), self.n_items,
                         self.n_workers, self.n_classes)

    def item_chunks(self, rows_per_chunk: int) -> Iterator[tuple[int, int, torch.Tensor]]:
        """``(start, stop, csr)`` for consecutive blocks of items (rows of ``by_item``)."""
        for start in range(0, self.n_items, rows_per_chunk):
            stop = min(start + rows_per_chunk, self.n_items)
            lo, hi = int(self.crow[start]), int(self.crow[stop])
            crow = torch.as_tensor(self.crow[start : stop + 1] - lo, device=self.col.device)
            block = _csr(crow, self.col[lo:hi], self.val[lo:hi], (stop - start, self.n_workers * self.n_classes))
            yield start, stop, block


def _incidence_from_parts(by_item: tuple, by_cell: tuple, crow: np.ndarray, n_items: int, n_workers: int,
                          n_classes: int, host: sp.csr_matrix | None) -> Incidence:
    """The :class:`Incidence` that :meth:`Incidence.__reduce__` took apart (``col`` and ``val`` share by_item's)."""
    item, cell = _csr(*by_item), _csr(*by_cell)
    return Incidence(item, cell, crow, item.col_indices(), item.values(), n_items, n_workers, n_classes, host)


def build_incidence(encoded: Encoded, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float64) -> Incidence:
    """Sparse incidence of ``encoded`` (duplicated (item, annotator, label) triples are summed)."""
    n_cells = encoded.n_workers * encoded.n_classes
    cells = encoded.workers * encoded.n_classes + encoded.labels
    ones = np.ones(len(cells), dtype=np.float64)
    csr = sp.csr_matrix((ones, (encoded.items, cells)), shape=(encoded.n_items, n_cells))
    csr.sum_duplicates()
    return incidence_from_csr(csr, encoded.n_workers, encoded.n_classes, device, dtype)


def incidence_from_csr(csr: sp.csr_matrix, n_workers: int, n_classes: int, device: torch.device | str = "cpu",
                       dtype: torch.dtype = torch.float64) -> Incidence:
    """The :class:`Incidence` of a SciPy count matrix ``[n_items, n_workers * n_classes]`` in canonical form (sorted
    column indices, no duplicates), as :func:`build_incidence` makes it."""
    n_cells = n_workers * n_classes
    csc = csr.tocsc()  # the transpose's CSR layout

    def to_torch(crow: np.ndarray, col: np.ndarray, val: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
        return _csr(torch.as_tensor(crow.astype(np.int64), device=device),
                    torch.as_tensor(col.astype(np.int64), device=device),
                    torch.as_tensor(val, dtype=dtype, device=device), shape)

    by_item = to_torch(csr.indptr, csr.indices, csr.data, csr.shape)
    by_cell = to_torch(csc.indptr, csc.indices, csc.data, (n_cells, csr.shape[0]))
    host = csr if torch.device(device).type == "cpu" and dtype == torch.float64 else None
    return Incidence(by_item=by_item, by_cell=by_cell, crow=csr.indptr.astype(np.int64), col=by_item.col_indices(),
                     val=by_item.values(), n_items=csr.shape[0], n_workers=n_workers, n_classes=n_classes, host=host)


def cell_table(log_theta: torch.Tensor) -> torch.Tensor:
    """``[W, K, L]`` (or ``[D, W, K, L]``) log confusions as the ``[W * L, K]`` (``[W * L, D * K]``) table of the
    E-step product."""
    if log_theta.dim() == 3:
        w, k, l = log_theta.shape
        return log_theta.permute(0, 2, 1).reshape(w * l, k)
    d, w, k, l = log_theta.shape
    return log_theta.permute(1, 3, 0, 2).reshape(w * l, d * k)


def softmax_last(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, fast for the few classes here (torch's kernel is slow on a last axis of 2-3)."""
    if scores.shape[-1] == 2:
        odds = scores[..., 1] - scores[..., 0]
        return torch.stack([torch.sigmoid(-odds), torch.sigmoid(odds)], dim=-1)  # both tails kept exactly
    e = (scores - scores.max(-1, keepdim=True).values).exp()
    return e / e.sum(-1, keepdim=True)


def row_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(-1)`` of an ``[I, K]`` tensor with few columns, as ``K - 1`` additions of columns (torch's reductions
    over a last axis of 2-3 are several times slower)."""
    columns = x.unbind(-1)
    total = columns[0].clone()
    for column in columns[1:]:
        total += column
    return total


def softmax_and_logsumexp(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(scores)`` and ``logsumexp(scores)`` over the last axis of ``[I, K]`` scores with few columns (entries
    may be ``-inf``, not all of a row), from one exponential, with the maximum and the sum as column operations."""
    columns = scores.unbind(-1)
    top = columns[0].clone()
    for column in columns[1:]:
        torch.maximum(top, column, out=top)
    e = (scores - top[:, None]).exp_()
    total = row_sums(e)
    return e.div_(total[:, None]), total.log_().add_(top)


def dirichlet_expected_log(alpha: torch.Tensor) -> torch.Tensor:
    """``E[log theta]`` under ``Dirichlet(alpha)`` along the last axis."""
    return torch.digamma(alpha) - torch.digamma(alpha.sum(-1, keepdim=True))


@dataclass
class VBResult:
    """Variational posterior of Dawid-Skene: Dirichlet parameters and item class probabilities."""

    confusion_alpha: torch.Tensor  # [W, K, L]
    class_alpha: torch.Tensor  # [K]
    item_probs: torch.Tensor  # [I, K]
    n_iter: int
    converged: bool
    confusion_prior: torch.Tensor | None = None  # [K, L] the prior the posterior was computed with (fitted if EB)


def vb_dawid_skene(incidence: Incidence, confusion_prior: torch.Tensor, class_prior: torch.Tensor,
                   init_item_probs: torch.Tensor, *, max_iter: int = 500, tol: float = 1e-5,
                   empirical_prior: bool = False,
                   prior_fit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                   all_reduce: Callable[..., torch.Tensor] | None = None, stop: str = "change",
                   informative: torch.Tensor | None = None) -> VBResult:
    """Mean-field VB-EM for Dawid-Skene, started with an M-step from ``init_item_probs``.

    Stops (with ``empirical_prior`` also once the prior moves by less than ``PRIOR_TOL`` relatively), or after
    ``max_iter``, by the rule ``stop``: ``"change"``, when no item's class probability moves by more than ``tol`` in
    an iteration; ``"distance"``, when the distance still to go to the fixed point is estimated below ``tol``
    (:class:`FixedPointDistance`: VB-EM converges linearly, and where it is slow an iteration that moves little is
    still far from its fixed point).
    ``confusion_prior`` is ``[K, L]`` (row ``k``: the Dirichlet prior of a true-``k`` row), ``class_prior`` ``[K]``.

    ``empirical_prior``: ``confusion_prior`` must then be the two-valued prior ``b + (a - b) I`` (its starting
    point); after each M-step it takes the type-II step of :class:`~accord.models.dawid_skene.DawidSkene`'s
    *Empirical prior* (:func:`fit_confusion_prior`, then :func:`fit_confusion_prior_evidence` once no pair moved by
    :data:`SETTLED_CHANGE`) and returns the fitted prior in ``VBResult.confusion_prior``. ``prior_fit`` replaces that
    step by another of the same signature (``(confusion_alpha, prior) -> prior``), e.g. :func:`fit_population_prior`,
    followed once the pairs settle by its step on the evidence where it has one (:data:`SETTLED_PRIOR_FIT`).

    ``all_reduce(tensor, op)`` (``op`` ``"sum"`` or ``"max"``) reduces over the processes of a fit whose items are
    split across processes (:mod:`accord.models.distributed`): the M-step's counts are then sums over all items and
    every process stops at the same iteration; ``item_probs`` of the result are the local items'.

    ``informative`` (``[I]``, 1 or 0; None: all 1): the items whose ``q(z)`` enter the M-step's counts (a pair of one
    judgment says nothing of its rater's accuracy, and its expected counts would only echo the start: see
    :func:`informative_items`); every item gets its ``q(z)`` from the E-step.
    """
    if empirical_prior and prior_fit is None:
        prior_fit = fit_confusion_prior
    settled_prior_fit = SETTLED_PRIOR_FIT.get(prior_fit)  # type: ignore[arg-type]
    w, k = incidence.n_workers, incidence.n_classes
    q = init_item_probs
    converged = False
    n_iter = 0
    prior = confusion_prior
    change = float("inf")

    def m_step(q: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if informative is not None:
            q = q * informative[:, None]
        if all_reduce is None:
            return _vb_m_step(incidence, q, prior, class_prior, w, k)
        return prior + all_reduce(_counts(incidence, q, w, k), "sum"), class_prior + all_reduce(q.sum(0), "sum")

    distance = FixedPointDistance()
    for n_iter in range(1, max_iter + 1):
        conf_alpha, class_alpha = m_step(q, prior)
        prior_change = 0.0
        if prior_fit is not None:
            settled = settled_prior_fit is not None and n_iter > 1 and change < SETTLED_CHANGE
            new_prior = (settled_prior_fit if settled else prior_fit)(conf_alpha, prior)
            conf_alpha = conf_alpha - prior + new_prior  # the same counts under the new prior
            prior_change = float(((new_prior - prior).abs() / prior).max())
            prior = new_prior
        scores = incidence.item_product(cell_table(dirichlet_expected_log(conf_alpha)))
        scores = scores + dirichlet_expected_log(class_alpha)
        new_q = softmax_last(scores)
        local = (new_q - q).abs().max() if q.numel() else new_q.new_zeros(())
        change = float(local if all_reduce is None else all_reduce(local.reshape(1), "max")[0])
        q = new_q
        if (distance(change) if stop == "distance" else change) < tol and prior_change < PRIOR_TOL:
            converged = True
            break
    conf_alpha, class_alpha = m_step(q, prior)
    return VBResult(conf_alpha, class_alpha, q, n_iter, converged, prior)


def _log_dirichlet_norm(alpha: torch.Tensor) -> torch.Tensor:
    """``log B(alpha) = sum_l log G(alpha_l) - log G(sum_l alpha_l)`` along the last axis."""
    return torch.lgamma(alpha).sum(-1) - torch.lgamma(alpha.sum(-1))


def evidence_bound(result: VBResult, class_prior: torch.Tensor) -> float:
    """The evidence lower bound (ELBO) of Dawid-Skene at a VB-EM result, its ``q(theta) q(pi)`` the M-step's from its
    ``q(z)`` (as :func:`vb_dawid_skene` returns them; every item's ``q(z)`` in the counts) and its prior.

    With ``q(theta_wk) = Dirichlet(beta_k + n_wk)`` and ``q(pi) = Dirichlet(gamma + sum_i q(z_i))`` the bound's terms
    in ``theta`` and ``pi`` collapse to ratios of Dirichlet normalisers (``log B(beta_k + n_wk) - log B(beta_k)``,
    the Dirichlet-multinomial evidence that :func:`fit_confusion_prior_evidence` maximises over the prior), so the
    bound is ``H[q(z)]`` plus those sums: the objective that VB-EM and the type-II prior steps climb, which ranks
    two fixed points of the same judgments."""
    prior = result.confusion_prior
    assert prior is not None
    q = result.item_probs.double()
    entropy = -float(torch.special.xlogy(q, q).sum())
    confusions = float((_log_dirichlet_norm(result.confusion_alpha.double())
                        - _log_dirichlet_norm(prior.double())).sum())
    classes = float(_log_dirichlet_norm(result.class_alpha.double()) - _log_dirichlet_norm(class_prior.double()))
    return entropy + confusions + classes


class FixedPointDistance:
    """The distance from the latest iterate of a linearly converging iteration to its fixed point, estimated from
    its steps (the largest absolute change of any coordinate).

    Near the fixed point the steps shrink geometrically, ``c_{t+1} = r c_t``, so what remains after step ``t`` is
    ``c_t r / (1 - r)`` (:func:`remaining_distance`). The rate ``r`` is the larger of the last two ratios of
    successive steps (one ratio can be small by chance where the largest-moving coordinate changes); while the
    steps do not shrink the distance is infinite. Call it with each step; it returns the estimate.
    """

    def __init__(self) -> None:
        self.steps: list[float] = []

    def __call__(self, step: float) -> float:
        self.steps = [*self.steps[-2:], step]
        if len(self.steps) < 3 or min(self.steps[:2]) == 0.0:
            return 0.0 if step == 0.0 else float("inf")
        return remaining_distance(step, max(self.steps[1] / self.steps[0], self.steps[2] / self.steps[1]))


def remaining_distance(step: float, rate: float) -> float:
    """``step r / (1 - r)``: what is left to go after a step of an iteration whose steps shrink by ``rate``."""
    if step == 0.0:
        return 0.0
    return step * rate / (1.0 - rate) if rate < 1.0 else float("inf")


#: relative change of the fitted prior below which VB-EM may stop
PRIOR_TOL = 1e-3
#: relative Newton step of :func:`fit_confusion_prior_evidence` taken without a check of the objective, as its last
SMALL_NEWTON_STEP = 1e-3
#: largest change of a pair's class probability in the last VB-EM iteration below which the empirical prior is
#: fitted on the evidence of the counts (:func:`fit_confusion_prior_evidence`) rather than given ``q(theta)``
SETTLED_CHANGE = 1e-2
#: bounds of the fitted Dirichlet concentrations (a guard against a degenerate optimum on tiny data)
PRIOR_BOUNDS = (1e-2, 1e3)


def fit_confusion_prior(confusion_alpha: torch.Tensor, prior: torch.Tensor, *, max_newton: int = 50) -> torch.Tensor:
    """Type-II maximum likelihood (VB-EM) step for the two-valued Dirichlet prior ``b + (a - b) I`` of the rows.

    Given ``q(theta_wk) = Dirichlet(confusion_alpha[w, k])``, the prior enters the ELBO only through
    ``sum_{w,k} E_q[log Dirichlet(theta_wk | beta_k)]``, i.e. with ``R = W K`` rows, ``s = a + (L - 1) b``,
    ``S_d = sum_{w,k} E[log theta_wkk]`` and ``S_o = sum_{w,k} sum_{l != k} E[log theta_wkl]``::

        f(a, b) = R [log G(s) - log G(a) - (L - 1) log G(b)] + (a - 1) S_d + (b - 1) S_o

    which is concave in ``(a, b)`` (the Dirichlet log-partition is convex); it is maximised by Newton's method
    (step halving keeps ``a, b`` positive), under the constraint ``a >= b`` (the prior stays diagonal-heavy or flat:
    an anti-diagonal prior would invite label switching), started at ``prior``. Returns the ``[K, L]`` prior.
    """
    k = prior.shape[0]
    eye = torch.eye(k, dtype=torch.bool, device=prior.device)
    elog = dirichlet_expected_log(confusion_alpha).double().cpu()
    rows = float(confusion_alpha.shape[0] * k)
    s_diag = float(elog[:, eye.cpu()].sum())
    s_off = float(elog[:, ~eye.cpu()].sum())
    a0, b0 = float(prior[0, 0]), float(prior[0, 1]) if k > 1 else float(prior[0, 0])
    lo, hi = PRIOR_BOUNDS
    m = k - 1

    def objective(a: float, b: float) -> float:
        return rows * (gammaln(a + m * b) - gammaln(a) - m * gammaln(b)) + (a - 1) * s_diag + (b - 1) * s_off

    def newton(a: float, b: float, tied: bool) -> tuple[float, float]:
        for _ in range(max_newton):
            s = a + m * b
            if tied:  # a = b = c: f(c) = R [log G(K c) - K log G(c)] + (c - 1)(S_d + S_o)
                grad = rows * k * (psi(k * a) - psi(a)) + s_diag + s_off
                hess = rows * k * (k * polygamma(1, k * a) - polygamma(1, a))
                step_a = step_b = -grad / hess
            else:
                ga = rows * (psi(s) - psi(a)) + s_diag
                gb = rows * m * (psi(s) - psi(b)) + s_off
                t_s = polygamma(1, s)
                haa = rows * (t_s - polygamma(1, a))
                hab = rows * m * t_s
                hbb = rows * m * (m * t_s - polygamma(1, b))
                det = haa * hbb - hab * hab
                step_a = -(hbb * ga - hab * gb) / det
                step_b = -(haa * gb - hab * ga) / det
            current = objective(a, b)
            scale = 1.0
            while scale > 1e-6:
                na = min(max(a + scale * step_a, lo), hi)
                nb = min(max(b + scale * step_b, lo), hi)
                if objective(na, nb) >= current - 1e-9 * abs(current):
                    break
                scale *= 0.5
            else:
                break
            done = abs(na - a) < 1e-6 * a and abs(nb - b) < 1e-6 * b
            a, b = na, nb
            if done:
                break
        return a, b

    a, b = newton(a0, min(b0, a0), tied=False)
    if a < b:
        a = b = newton(0.5 * (a + b), 0.5 * (a + b), tied=True)[0]
    return b + (a - b) * torch.eye(k, dtype=prior.dtype, device=prior.device)


def count_cells(confusion_alpha: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The expected counts ``n = confusion_alpha - prior`` as the evidence of a two-valued prior reads them: the
    non-empty diagonal cells ``n_wkk``, off-diagonal cells ``n_wkl`` and rows ``N_wk`` (float64, on the CPU; empty
    cells and rows add nothing to the evidence)."""
    eye = torch.eye(prior.shape[0], dtype=torch.bool)
    counts = (confusion_alpha - prior).double().clamp_min(0.0).cpu()
    n_d, n_o, n_row = counts[:, eye].reshape(-1), counts[:, ~eye].reshape(-1), counts.sum(-1).reshape(-1)
    return n_d[n_d > 0], n_o[n_o > 0], n_row[n_row > 0]


def log_evidence(cells: tuple[torch.Tensor, torch.Tensor, torch.Tensor], a: torch.Tensor, b: torch.Tensor,
                 m: int) -> torch.Tensor:
    """``[G]``: the Dirichlet-multinomial log evidence ``g(a, b)`` of :func:`fit_confusion_prior_evidence` at each of
    ``G`` priors (``a``, ``b`` of shape ``[G]``; ``m = L - 1``), from the :func:`count_cells` of the counts."""
    n_d, n_o, n_row = cells
    s = a + m * b
    return (len(n_row) * torch.lgamma(s) - torch.lgamma(s[:, None] + n_row).sum(-1)
            + torch.lgamma(a[:, None] + n_d).sum(-1) - len(n_d) * torch.lgamma(a)
            + torch.lgamma(b[:, None] + n_o).sum(-1) - len(n_o) * torch.lgamma(b))


def fit_confusion_prior_evidence(confusion_alpha: torch.Tensor, prior: torch.Tensor, *,
                                 max_newton: int = 50) -> torch.Tensor:
    """Type-II maximum likelihood step for the two-valued Dirichlet prior ``b + (a - b) I`` of the rows, on the
    evidence of the expected counts (``q(theta)`` integrated out): the step of ``empirical_prior=True`` once the
    pairs have settled (:func:`vb_dawid_skene`), and of the warm refit.

    With the counts ``n_wkl = confusion_alpha[w, k, l] - prior[k, l]`` (the M-step's, from ``q(z)``), the best
    ``q(theta_wk)`` for a prior is ``Dirichlet(beta_k + n_wk)``, and the evidence lower bound, maximised over
    ``q(theta)``, depends on the prior through the Dirichlet-multinomial log evidence of the counts (``s = a + (L -
    1) b``, ``N_wk = sum_l n_wkl``)::

        g(a, b) = sum_{w,k} [log G(s) - log G(s + N_wk) + log G(a + n_wkk) - log G(a)
                             + sum_{l != k} (log G(b + n_wkl) - log G(b))]

    This step maximises ``g`` (Newton's method with step halving, bounded by :data:`PRIOR_BOUNDS`, ``a >= b`` as in
    :func:`fit_confusion_prior`, started at ``prior``). It has the fixed points of :func:`fit_confusion_prior` (by
    the envelope theorem the gradient of ``g`` is that of ``E_q[log Dirichlet(theta | beta)]`` at ``q(theta) =
    Dirichlet(beta + n)``), but reaches them in one step where that one creeps: alternating ``q(theta)`` with the
    prior is EM for the concentration, and when the rows look alike the concentration grows by a small amount per
    iteration toward a distant optimum (or its bound), hundreds to thousands of VB-EM iterations on small tables.
    """
    k = prior.shape[0]
    n_d, n_o, n_row = cells = count_cells(confusion_alpha, prior)
    lo, hi = PRIOR_BOUNDS
    m = k - 1

    def objective(a: float, b: float) -> float:
        return float(log_evidence(cells, torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64),
                                  m)[0])

    def derivatives(a: float, b: float, order: int) -> tuple[float, float, float]:
        """The sums over rows, diagonal cells and off-diagonal cells of the ``order``-th polygamma differences."""
        s = a + m * b
        return (len(n_row) * float(polygamma(order, s)) - float(torch.polygamma(order, s + n_row).sum()),
                float(torch.polygamma(order, a + n_d).sum()) - len(n_d) * float(polygamma(order, a)),
                float(torch.polygamma(order, b + n_o).sum()) - len(n_o) * float(polygamma(order, b)))

    def newton(a: float, b: float, tied: bool) -> tuple[float, float]:
        current = None
        for _ in range(max_newton):
            g_s, g_d, g_o = derivatives(a, b, 0)
            t_s, t_d, t_o = derivatives(a, b, 1)
            ga, gb = g_s + g_d, m * g_s + g_o
            haa, hab, hbb = t_s + t_d, m * t_s, m * m * t_s + t_o
            concave = True
            held_a = (a >= hi and ga > 0) or (a <= lo and ga < 0)
            held_b = (b >= hi and gb > 0) or (b <= lo and gb < 0)
            if tied:  # a = b = c: dg/dc = ga + gb
                grad, hess = ga + gb, haa + 2 * hab + hbb
                concave = hess < 0
                step_a = step_b = -grad / hess if concave else float(np.sign(grad)) * 0.5 * a
            elif held_a or held_b:  # a bound holds one value: the step of the other alone (the joint step, clipped at
                # the bound, need not climb, and the search then stopped where it started, e.g. where the prior of
                # the previous fit put it)
                if held_a and held_b:
                    return a, b
                grad, hess, value = (gb, hbb, b) if held_a else (ga, haa, a)
                concave = hess < 0
                step = -grad / hess if concave else float(np.sign(grad)) * 0.5 * value
                step_a, step_b = (0.0, step) if held_a else (step, 0.0)
            elif haa < 0 and haa * hbb - hab * hab > 0:
                det = haa * hbb - hab * hab
                step_a = -(hbb * ga - hab * gb) / det
                step_b = -(haa * gb - hab * ga) / det
            else:  # g is not concave here: a step of half the values uphill, halved until it climbs
                concave = False
                step_a, step_b = float(np.sign(ga)) * 0.5 * a, float(np.sign(gb)) * 0.5 * b
            if concave and abs(step_a) < SMALL_NEWTON_STEP * a and abs(step_b) < SMALL_NEWTON_STEP * b:
                # near the maximum the Newton step is taken without checking the objective, and ends the step (its
                # error is of the order of its square; VB-EM's next iteration continues from there)
                return min(max(a + step_a, lo), hi), min(max(b + step_b, lo), hi)
            current = objective(a, b) if current is None else current
            scale = 1.0
            while scale > 1e-6:
                na = min(max(a + scale * step_a, lo), hi)
                nb = min(max(b + scale * step_b, lo), hi)
                value = objective(na, nb)
                if value >= current - 1e-12 * abs(current):
                    break
                scale *= 0.5
            else:
                break
            done = abs(na - a) < 1e-6 * a and abs(nb - b) < 1e-6 * b  # e.g. held at a bound
            a, b, current = na, nb, value
            if done:
                break
        return a, b

    a0, b0 = float(prior[0, 0]), float(prior[0, 1]) if k > 1 else float(prior[0, 0])
    a, b = newton(a0, min(b0, a0), tied=False)
    if a < b:
        a = b = newton(0.5 * (a + b), 0.5 * (a + b), tied=True)[0]
    return b + (a - b) * torch.eye(k, dtype=prior.dtype, device=prior.device)


def concentration_draws(confusion_alpha: torch.Tensor, prior: torch.Tensor, num_samples: int,
                        grid_size: int = 32) -> torch.Tensor:
    """``[D, K, L]``: one two-valued prior ``b + (a - b) I`` per posterior draw of the annotator table, its
    concentration ``s = a + (L - 1) b`` drawn from its posterior given the expected counts (the prior's mean diagonal
    share ``m = a / s`` held at the fitted value).

    The empirical prior is a point estimate (type-II maximum likelihood, :func:`fit_confusion_prior_evidence`), and
    posteriors computed with a hyperparameter fixed at its estimate are too narrow where the data say little about it
    (Kass & Steffey 1989): a row with one judgment carries no information on ``s``, so on a small table the evidence
    is flat toward ``s -> inf`` and the maximum lies at :data:`PRIOR_BOUNDS`, where every rater has the population's
    reliability within a few hundredths whatever their votes. The draws of the annotator table therefore integrate
    ``s`` out: on a grid of ``log s``, ``p(log s | n) ∝ g(a(s), b(s)) s / (1 + s)^2`` with ``g`` the
    Dirichlet-multinomial evidence of the counts ``n = confusion_alpha - prior`` (as in
    :func:`fit_confusion_prior_evidence`) and ``s / (1 + s)^2`` the density of ``log s`` under Chung et al.'s (2013)
    boundary-avoiding ``Gamma(2, 0)`` prior on the rows' between-rater standard deviation ``sqrt(m (1 - m) / (s +
    1))`` (also the uniform shrinkage prior of a row of one judgment); then ``s_d`` is drawn from it for each draw
    ``d`` (torch's global stream). Where the counts determine ``s`` the draws stay at the fitted value.
    """
    k = prior.shape[0]
    cells = count_cells(confusion_alpha, prior)
    share = float(prior[0, 0] / prior[0].sum())  # the diagonal's share of a row (a table has two classes or more)
    lo, hi = PRIOR_BOUNDS
    grid = torch.logspace(math.log10(k * lo), math.log10(k * hi), grid_size, dtype=torch.float64)
    a, b = share * grid, (1.0 - share) * grid / max(k - 1, 1)
    log_post = grid.log() - 2.0 * torch.log1p(grid)
    for block in torch.arange(grid_size).split(8):  # [8, rows] at a time: bounded memory at millions of judgments
        log_post[block] += log_evidence(cells, a[block], b[block], k - 1)
    pick = torch.multinomial(torch.softmax(log_post, 0).float(), num_samples, replacement=True)
    diagonal, off = a[pick], b[pick]
    return (off[:, None, None] + (diagonal - off)[:, None, None] * torch.eye(k, dtype=torch.float64)).to(
        dtype=prior.dtype, device=prior.device)


def fit_population_prior(confusion_alpha: torch.Tensor, prior: torch.Tensor, *, max_iter: int = 50,
                         tol: float = 1e-9) -> torch.Tensor:
    """Type-II maximum likelihood (VB-EM) step for a full population Dirichlet per true class, given ``q(theta)``.

    Annotator rows are ``theta_wk ~ Dirichlet(alpha_k)`` with every ``alpha_k`` (``L`` values) free. Given
    ``q(theta_wk) = Dirichlet(confusion_alpha[w, k])`` the ELBO's prior term for row ``k`` is, with
    ``m_kl = mean_w E_q[log theta_wkl]``::

        W [log G(s_k) - sum_l log G(alpha_kl) + sum_l (alpha_kl - 1) m_kl],   s_k = sum_l alpha_kl

    the Dirichlet likelihood of "observed" mean log-probabilities ``m_k``, concave in ``alpha_k``, whose Hessian
    ``W [psi'(s_k) 11^T - diag(psi'(alpha_k))]`` is a diagonal plus a constant, so a Newton step costs ``O(L)`` per
    row by the Sherman-Morrison formula (Minka 2000, "Estimating a Dirichlet distribution", sec. 1); the step is
    halved until the values stay positive and the term does not fall. Newton converges in a handful of steps where
    the fixed point ``psi(alpha) = psi(s) + m`` needs hundreds on concentrated populations. The concentration
    ``s_k`` is the pooling strength (large: annotators alike, few judgments suffice; small: each annotator keeps its
    own confusion). All ``K`` rows at once, values within :data:`PRIOR_BOUNDS` (a value at a bound that the gradient
    pushes beyond it is held there), started at ``prior``; stops when no value moves by more than ``tol``
    relatively. Returns the ``[K, L]`` prior.
    """
    lo, hi = PRIOR_BOUNDS
    mean_log = dirichlet_expected_log(confusion_alpha).mean(0)  # [K, L]; W scales the term and cancels in the step

    def objective(alpha: torch.Tensor) -> torch.Tensor:
        return torch.lgamma(alpha.sum(-1)) - torch.lgamma(alpha).sum(-1) + ((alpha - 1.0) * mean_log).sum(-1)

    alpha = prior.clamp(lo, hi).clone()
    value = objective(alpha)
    for _ in range(max_iter):
        s = alpha.sum(-1, keepdim=True)
        grad = torch.digamma(s) - torch.digamma(alpha) + mean_log
        # Newton on the values not held at a bound (the gradient pushing them out): the held ones' inverse curvature
        # is set to 0, which solves the free block exactly
        held = ((alpha <= lo) & (grad < 0)) | ((alpha >= hi) & (grad > 0))
        inverse = torch.where(held, torch.zeros_like(alpha), -1.0 / torch.polygamma(1, alpha))  # [K, L], < 0
        const = torch.polygamma(1, s)  # [K, 1], > 0
        shift = (grad * inverse).sum(-1, keepdim=True) / (1.0 / const + inverse.sum(-1, keepdim=True))
        alpha, value, done = _halved_step(alpha, -(grad - shift) * inverse, value, objective, tol)
        if done:
            break
    # a row whose diagonal would no longer be its largest value keeps the prior it came with (Dawid-Skene's
    # identifiability, as in fit_population_prior_evidence): on a table whose pairs are nearly all of one class, the
    # rare class's row crept step by step to 'raters answer the common class whatever the truth', and unanimous
    # pairs of the common class ended at P = 0.53
    dominant = (alpha.diagonal()[:, None] >= alpha).all(-1)
    return alpha if bool(dominant.all()) else torch.where(dominant[:, None], alpha, prior)


def fit_population_prior_evidence(confusion_alpha: torch.Tensor, prior: torch.Tensor, *,
                                  steps: int = 200) -> torch.Tensor:
    """Type-II maximum likelihood step for the full population Dirichlet on the evidence of the expected counts
    (``q(theta)`` integrated out): the step of ``empirical_prior="full"`` (and of the hierarchical model's VB-EM) once
    the pairs have settled, as :func:`fit_confusion_prior_evidence` is for the two-valued prior.

    With the counts ``n_wkl = confusion_alpha[w, k, l] - prior[k, l]``, row ``k``'s prior maximises the Dirichlet-
    multinomial (Polya) log evidence of the raters' rows (:func:`fit_polya_prior`, no hyperprior). It has the fixed
    points of :func:`fit_population_prior` (the envelope theorem, as for the two-valued prior) but reaches them in one
    step where alternating ``q(theta)`` with that step creeps: where the raters look alike the concentration grows a
    little per VB-EM iteration (a 24-judgment table ran 2,000 iterations unconverged).

    A row is taken from the evidence only where its diagonal stays its largest value (raters report the true class
    most often: Dawid-Skene's identifiability, which the two-valued prior keeps by ``a >= b``); elsewhere it takes the
    step given ``q(theta)``, which stays near the start. Where the table cannot tell the classes apart (every vote a
    tie) the evidence is as high with every row concentrated on the one label reported, whatever the true class,
    and the soft labels would leave the label the raters gave.
    """
    new = fit_polya_prior((confusion_alpha - prior).clamp_min(0.0).to(prior.dtype), prior, None, steps=steps)
    dominant = (new.diagonal()[:, None] >= new).all(-1)
    if bool(dominant.all()):
        return new
    return torch.where(dominant[:, None], new, fit_population_prior(confusion_alpha, prior))


#: shape of the Gamma hyperprior on each value of an empirical prior (its mean is the value the fit starts from)
HYPER_SHAPE = 2.0


def log_hyperprior(alpha: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """``log Gamma(alpha | HYPER_SHAPE, HYPER_SHAPE / anchor)`` summed over the last axis, up to a constant."""
    return ((HYPER_SHAPE - 1.0) * alpha.log() - HYPER_SHAPE * alpha / anchor).sum(-1)


def fit_polya_prior(counts: torch.Tensor, prior: torch.Tensor, anchor: torch.Tensor | None, steps: int,
                    tol: float = 1e-9) -> torch.Tensor:
    """Type-II MAP estimate of the Dirichlet priors behind expected counts ``counts`` (``[R, K, L]``).

    For each of the ``K`` priors ``a`` (``prior`` is ``[K, L]``, the starting point) it maximises the Dirichlet-
    multinomial (Polya) log-likelihood of the rows' counts, ``sum_r [log G(A) - log G(A + N_r) + sum_l
    log G(a_l + n_rl) - log G(a_l)]`` (``A = sum_l a_l``, ``N_r = sum_l n_rl``; fractional counts allowed), plus, with
    an ``anchor``, the log hyperprior ``sum_l (s - 1) log a_l - s a_l / anchor_l`` (a Gamma with shape
    ``s = HYPER_SHAPE`` and mean ``anchor``; ``None``: type-II maximum likelihood).

    The Hessian is a diagonal plus a constant (Minka 2000, "Estimating a Dirichlet distribution", sec. 3), inverted in
    closed form: at most ``steps`` Newton steps, all ``K`` priors at once. Where a prior's Hessian is not negative
    definite (the Polya likelihood need not be concave: where the rows look alike it grows without end along the
    concentration) its step is half of each value uphill, so that it reaches a distant optimum or its bound in a few
    steps (Minka's fixed point crawls there). Each step is halved, prior by prior, until the objective does not
    fall. Values within :data:`PRIOR_BOUNDS`; a value at a bound that the gradient pushes beyond it is held there (its
    inverse curvature set to 0, which solves the free block exactly). Stops when no value moves by more than ``tol``
    relatively.
    """
    lo, hi = PRIOR_BOUNDS
    totals = counts.sum(-1)  # [R, K]; an empty row adds 0 to every term
    shape = HYPER_SHAPE if anchor is not None else 1.0  # shape 1 and rate 0: the hyperprior's terms vanish
    rate = HYPER_SHAPE / anchor if anchor is not None else torch.zeros_like(prior)

    def objective(a: torch.Tensor) -> torch.Tensor:
        a_total = a.sum(-1)
        evidence = ((torch.lgamma(a_total) - torch.lgamma(a_total + totals)).sum(0)
                    + (torch.lgamma(a + counts) - torch.lgamma(a)).sum((0, -1)))
        return evidence if anchor is None else evidence + log_hyperprior(a, anchor)

    alpha = prior.clamp(lo, hi).clone()
    value = objective(alpha)
    for _ in range(steps):
        a_total = alpha.sum(-1, keepdim=True)
        grad = ((torch.digamma(a_total) - torch.digamma(a_total + totals[..., None])).sum(0)
                + (torch.digamma(alpha + counts) - torch.digamma(alpha)).sum(0) + (shape - 1.0) / alpha - rate)
        const = (torch.polygamma(1, a_total) - torch.polygamma(1, a_total + totals[..., None])).sum(0)  # [K, 1] >= 0
        diagonal = ((torch.polygamma(1, alpha + counts) - torch.polygamma(1, alpha)).sum(0)
                    - (shape - 1.0) / alpha**2)  # [K, L] <= 0
        held = ((alpha <= lo) & (grad < 0)) | ((alpha >= hi) & (grad > 0))
        curved = held | (diagonal < 0)  # a free value of empty cells, without a hyperprior, is not
        inverse = torch.where(curved & ~held, 1.0 / diagonal.clamp_max(-1e-300), torch.zeros_like(alpha))
        # the free block's Hessian D + c 11^T is negative definite where 1 + c 1^T D^-1 1 > 0
        denominator = 1.0 / const.clamp_min(1e-300) + inverse.sum(-1, keepdim=True)
        newton = -(grad - (grad * inverse).sum(-1, keepdim=True) / denominator) * inverse
        uphill = torch.where(held, torch.zeros_like(alpha), torch.sign(grad) * 0.5 * alpha)
        step = torch.where((denominator > 0) & curved.all(-1, keepdim=True), newton, uphill)
        alpha, value, done = _halved_step(alpha, step, value, objective, tol)
        if done:
            break
    return alpha


def _halved_step(alpha: torch.Tensor, step: torch.Tensor, value: torch.Tensor,
                 objective: Callable[[torch.Tensor], torch.Tensor],
                 tol: float) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """One step of the Dirichlet priors' Newton methods: ``step`` (``[K, L]``) from ``alpha`` halved, row by row,
    until the values stay positive and ``objective`` (one value per row, ``value`` at ``alpha``) does not fall; values
    clamped to :data:`PRIOR_BOUNDS`. Returns the new values, their objective, and whether no value moved by more than
    ``tol`` relatively."""
    lo, hi = PRIOR_BOUNDS
    scale = torch.ones_like(value)
    for _ in range(30):
        candidate = (alpha + scale[:, None] * step).clamp(lo, hi)
        new_value = objective(candidate)
        ok = (alpha + scale[:, None] * step > 0).all(-1) & (new_value >= value - 1e-12 * value.abs())
        if bool(ok.all()):
            break
        scale = torch.where(ok, scale, scale / 2)
    new = torch.where(ok[:, None], candidate, alpha)
    done = float(((new - alpha).abs() / alpha).max()) < tol
    return new, torch.where(ok, new_value, value), done


#: a type-II step given ``q(theta)`` -> the same step on the evidence of the counts, taken once the pairs settle
SETTLED_PRIOR_FIT: dict[Callable[..., torch.Tensor], Callable[..., torch.Tensor]] = {
    fit_confusion_prior: fit_confusion_prior_evidence, fit_population_prior: fit_population_prior_evidence}


def _inverse_digamma(y: torch.Tensor, newton_steps: int = 5) -> torch.Tensor:
    """``x`` with ``digamma(x) = y`` (Minka's initialisation, then Newton's method)."""
    x = torch.where(y >= -2.22, y.exp() + 0.5, -1.0 / (y - torch.digamma(torch.ones_like(y))))
    for _ in range(newton_steps):
        x = x - (torch.digamma(x) - y) / torch.polygamma(1, x)
    return x


def vote_counts(incidence: Incidence) -> torch.Tensor:
    """``[I, K]`` votes per class of each item (the incidence summed over annotators)."""
    n_cells, k = incidence.n_workers * incidence.n_classes, incidence.n_classes
    pick = torch.zeros(n_cells, k, dtype=incidence.val.dtype, device=incidence.val.device)
    pick[torch.arange(n_cells), torch.arange(n_cells) % k] = 1.0
    return incidence.by_item @ pick


def informative_items(incidence: Incidence) -> torch.Tensor | None:
    """``[I]`` 1 for the items of two judgments or more, 0 for those of one; None where every item has two or more.

    A pair of one judgment constrains its rater's confusion only through how often the rater gives each label; how
    often it is right is told by agreement alone. In VB-EM its expected counts repeat the rater's current accuracy
    (started from vote fractions, a perfect rater) and, with many such pairs, hold it there; the empirical prior,
    fitted to those counts, then runs to a bound. Such pairs are left out of the counts of the confusions and the
    class prior (a cut: the raters are learned from the pairs that can tell them apart), and get their soft labels
    from them; a table of no such pairs leaves every rater at the prior.
    """
    single = vote_counts(incidence).sum(-1) < 2
    if not bool(single.any()):
        return None
    return (~single).to(incidence.val.dtype)


def design_effect(incidence: Incidence, rho: float) -> torch.Tensor | None:
    """``[I]`` item temperatures ``T_i = 1 + (n_i - 1) rho`` (None when ``rho == 0``: no tempering)."""
    if not rho:
        return None
    return 1.0 + (vote_counts(incidence).sum(-1) - 1.0).clamp_min(0.0) * float(rho)


def _counts(incidence: Incidence, q: torch.Tensor, w: int, k: int) -> torch.Tensor:
    """``[W, K, L]`` expected counts: judgments of annotator ``w`` with label ``l`` on pairs of true class ``k``."""
    return incidence.cell_product(q).reshape(w, k, k).permute(0, 2, 1)


@dataclass
class GibbsResult:
    """Draws of a blocked Gibbs sampler: ``theta [C, D, W, K, L]``, ``pi [C, D, K]``."""

    theta: torch.Tensor
    pi: torch.Tensor


def gibbs_dawid_skene(incidence: Incidence, confusion_prior: torch.Tensor, class_prior: torch.Tensor,
                      init_theta: torch.Tensor, init_pi: torch.Tensor, *, num_samples: int, num_warmup: int,
                      num_chains: int, sample_concentration: bool = False,
                      informative: torch.Tensor | None = None) -> GibbsResult:
    """Blocked Gibbs sampling of Dawid-Skene (exact posterior draws; all chains advance together).

    One sweep: ``z_i ~ p(z_i | y_i, theta, pi)`` for every pair at once (one sparse product), then
    ``theta_wk ~ Dirichlet(beta_k + counts_wk(z))`` and ``pi ~ Dirichlet(alpha + counts(z))`` (conjugate). Chains
    start at ``init_theta`` / ``init_pi`` (e.g. the VB posterior mean), which also fixes the labelling of the
    classes: the sampler does not jump between the mirror-image modes. With ``sample_concentration`` (a two-valued
    ``confusion_prior``) each chain first draws the prior's concentration given ``z`` with ``theta`` integrated out
    (:func:`concentration_draws` on the counts of ``z``, the prior's mean held), then ``theta`` under it: the
    concentration is sampled with the rest instead of fixed at its estimate. ``informative``: as in
    :func:`vb_dawid_skene`, the items whose ``z`` enter the counts of ``theta`` and ``pi`` (the others are drawn
    given them: a cut, Plummer 2015).
    """
    w, k = incidence.n_workers, incidence.n_classes
    c = num_chains
    dtype = init_theta.dtype
    log_theta = init_theta.clamp_min(1e-30).log().expand(c, w, k, k).clone()
    log_pi = init_pi.clamp_min(1e-30).log().expand(c, k).clone()
    keep_theta = torch.empty(c, num_samples, w, k, k, dtype=torch.float32, device=init_theta.device)
    keep_pi = torch.empty(c, num_samples, k, dtype=torch.float32, device=init_theta.device)
    eye = torch.eye(k, dtype=dtype, device=init_theta.device)
    for sweep in range(num_warmup + num_samples):
        scores = (incidence.by_item @ cell_table(log_theta)).reshape(-1, c, k) + log_pi[None]  # [I, C, K]
        u = torch.rand(scores.shape[:-1], dtype=dtype, device=scores.device)
        cdf = softmax_last(scores).cumsum(-1)
        z = (u[..., None] > cdf).sum(-1).clamp_max(k - 1)  # [I, C]
        onehot = eye[z].reshape(-1, c * k)  # [I, C*K]
        if informative is not None:
            onehot = onehot * informative[:, None]
        counts = (incidence.by_cell @ onehot).reshape(w, k, c, k).permute(2, 0, 3, 1)  # [C, W, K(true), L]
        prior = confusion_prior
        if sample_concentration:  # [C, 1, K, L]: each chain's prior, drawn given its z
            prior = torch.stack([concentration_draws(chain + confusion_prior, confusion_prior, 1)[0]
                                 for chain in counts])[:, None]
        theta = _dirichlet(prior + counts)
        pi = _dirichlet(class_prior + onehot.reshape(-1, c, k).sum(0))
        log_theta = theta.clamp_min(1e-30).log()
        log_pi = pi.clamp_min(1e-30).log()
        if sweep >= num_warmup:
            keep_theta[:, sweep - num_warmup] = theta
            keep_pi[:, sweep - num_warmup] = pi
    return GibbsResult(keep_theta, keep_pi)


def _dirichlet(alpha: torch.Tensor) -> torch.Tensor:
    """Dirichlet draws along the last axis (normalised gamma draws from torch's global stream)."""
    gamma = torch._standard_gamma(alpha).clamp_min(1e-300)
    return gamma / gamma.sum(-1, keepdim=True)


def _vb_m_step(incidence: Incidence, q: torch.Tensor, confusion_prior: torch.Tensor, class_prior: torch.Tensor, w: int,
               k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return confusion_prior + _counts(incidence, q, w, k), class_prior + q.sum(0)


def _item_blocks(incidence: Incidence, log_theta: torch.Tensor, item_temperature: torch.Tensor | None,
                 budget: int = 2**23) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(start, stop, [rows, D, K])``: ``sum_{judgments} log theta`` of consecutive blocks of items (about ``budget``
    elements each) under draws ``[D, W, K, L]``, divided by the item temperatures ``T_i`` where given."""
    d, _, k, _ = log_theta.shape
    table = cell_table(log_theta)
    for lo, hi, block in incidence.item_chunks(max(1, budget // max(1, d * k))):
        scores = (block @ table).reshape(hi - lo, d, k)
        yield lo, hi, scores if item_temperature is None else scores / item_temperature[lo:hi, None, None].to(scores)


def item_log_posterior_scores(incidence: Incidence, log_theta: torch.Tensor, log_pi: torch.Tensor,
                              item_temperature: torch.Tensor | None = None) -> torch.Tensor:
    """``[D, I, K]`` unnormalised joint scores ``log pi_k + sum_{judgments} log theta`` of every item per draw.

    With ``item_temperature`` (``[I]``, :func:`design_effect`) the judgments' sum is divided by ``T_i``."""
    d, _, k, _ = log_theta.shape
    parts = [scores.permute(1, 0, 2) for _, _, scores in _item_blocks(incidence, log_theta, item_temperature)]
    scores = torch.cat(parts, dim=1) if parts else log_theta.new_zeros(d, 0, k)
    return scores + log_pi[:, None, :]


EXACT_QUANTILE_BUDGET = 20_000_000


def summarize_item_posterior(incidence: Incidence, log_theta: torch.Tensor, log_pi: torch.Tensor,
                             item_temperature: torch.Tensor | None = None, *, klass: int | None = None) -> ItemSummary:
    """Mean, sd and 5% / 95% quantiles of ``p(z_i | y_i, theta_d, pi_d)`` over draws ``d``, block by block of items
    (memory stays bounded however many items and draws). Computed in the incidence's dtype; with two classes only
    ``p(z_i = 1)`` is formed (a sigmoid of the log-odds), which halves the work.

    The quantiles are the draws' empirical ones while ``n_items * n_draws <= EXACT_QUANTILE_BUDGET``; above that
    (two classes only) they come from a normal approximation of the log-odds across draws (a sum of independent
    per-annotator terms), ``sigmoid(mean +- 1.645 sd)``, which avoids a partial sort of every item's draws.

    ``item_temperature`` (``[I]``, :func:`design_effect`): the judgments' log-likelihood of item ``i`` is divided by
    ``T_i`` before the class prior is added (the tempered posterior of :class:`~accord.models.dawid_skene.DawidSkene`).
    ``klass``: the sd and quantiles are of this class's probability (its index), not of each item's top class.
    """
    d, _, k, _ = log_theta.shape
    exact = d == 1 or incidence.n_items * d <= EXACT_QUANTILE_BUDGET
    dtype = incidence.val.dtype
    log_pi = log_pi.to(dtype)
    n = incidence.n_items
    mean = np.empty((n, k))
    sd = np.full(n, np.nan)
    lower = np.empty(n)
    upper = np.empty(n)
    for lo, hi, scores in _item_blocks(incidence, log_theta.to(dtype), item_temperature):
        if k == 2:
            odds = scores[..., 1] - scores[..., 0] + (log_pi[:, 1] - log_pi[:, 0])[None]  # [rows, D]
            p1 = torch.sigmoid(odds)
            m1 = p1.mean(1).double()
            mean[lo:hi, 1] = m1.cpu().numpy()
            mean[lo:hi, 0] = torch.sigmoid(-odds).mean(1).double().cpu().numpy()  # not 1 - m1: keeps the tail
            top_is_1 = m1 > 0.5 if klass is None else torch.full_like(m1, klass == 1, dtype=torch.bool)
            if d > 1:
                sd[lo:hi] = p1.std(1).double().cpu().numpy()
            if exact:  # (one draw: its value)
                low, high = quantiles_90(p1, dim=1)
            else:
                centre, spread = odds.mean(1), 1.6448536 * odds.std(1)
                low, high = torch.sigmoid(centre - spread).double(), torch.sigmoid(centre + spread).double()
            lower[lo:hi] = torch.where(top_is_1, low, 1.0 - high).cpu().numpy()
            upper[lo:hi] = torch.where(top_is_1, high, 1.0 - low).cpu().numpy()
            continue
        probs = softmax_last(scores + log_pi[None, :, :])  # [rows, D, K]
        m = probs.mean(1).double()
        m = m / m.sum(-1, keepdim=True)
        top = m.argmax(-1) if klass is None else torch.full_like(m[:, 0], klass, dtype=torch.long)
        top_draws = probs.gather(2, top[:, None, None].expand(-1, d, 1))[..., 0]  # [rows, D]
        mean[lo:hi] = m.cpu().numpy()
        if d > 1:
            sd[lo:hi] = top_draws.std(1).double().cpu().numpy()
        low, high = quantiles_90(top_draws, dim=1)  # (one draw: its value)
        lower[lo:hi] = low.cpu().numpy()
        upper[lo:hi] = high.cpu().numpy()
    return ItemSummary(mean, sd, lower, upper)


def judgment_loglik_draws(incidence: Incidence, items: torch.Tensor, cells: torch.Tensor, log_theta: torch.Tensor,
                          log_pi: torch.Tensor, *, draws_per_chunk: int = 16) -> np.ndarray:
    """``[D, N]``: ``log p(y_n | other judgments of its item, theta_d, pi_d)`` for every judgment ``n``.

    With ``s_ik`` the item's joint score, this is ``logsumexp_k s_ik - logsumexp_k (s_ik - log theta[w_n, k, y_n])``.
    Since ``p(y | theta) = p(y_n | y_-n, theta) p(y_-n | theta)``, importance weights built from these terms are
    exactly those of leaving judgment ``n`` out, so PSIS-LOO over them estimates the leave-one-judgment-out
    predictive density (the non-factorized case of Bürkner, Gabry & Vehtari 2021).
    """
    d, w, k, l = log_theta.shape
    out = np.empty((d, len(items)))
    for lo in range(0, d, draws_per_chunk):
        hi = min(lo + draws_per_chunk, d)
        scores = item_log_posterior_scores(incidence, log_theta[lo:hi], log_pi[lo:hi])  # [d', I, K]
        table = cell_table(log_theta[lo:hi]).reshape(w * l, hi - lo, k)  # [W*L, d', K]
        own = table[cells].permute(1, 0, 2)  # [d', N, K]
        full = scores[:, items]  # [d', N, K]
        out[lo:hi] = (torch.logsumexp(full, -1) - torch.logsumexp(full - own, -1)).double().cpu().numpy()
    return out


# -- the item posterior from the posterior moments of the confusions (no draws over the judgments) ------------------


@dataclass(frozen=True)
class ConfusionMoments:
    """Posterior moments of a confusion model: ``log E[theta]`` and ``Var[log theta]`` (``[W, K, L]``), ``log E[pi]``
    and ``Var[log pi]`` (``[K]``)."""

    log_theta: torch.Tensor
    var_log_theta: torch.Tensor
    log_pi: torch.Tensor
    var_log_pi: torch.Tensor
    mean_log_theta: torch.Tensor  # E[log theta] and E[log pi]: the centre of the scores' posterior distribution
    mean_log_pi: torch.Tensor


def dirichlet_moments(confusion_alpha: torch.Tensor, class_alpha: torch.Tensor) -> ConfusionMoments:
    """Moments under ``Dirichlet`` factors: ``log(a / a_0)`` and ``Var[log theta_l] = psi'(a_l) - psi'(a_0)``."""

    def pair(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = alpha.sum(-1, keepdim=True)
        return (alpha / total).log(), torch.polygamma(1, alpha) - torch.polygamma(1, total)

    log_theta, var_theta = pair(confusion_alpha)
    log_pi, var_pi = pair(class_alpha)
    return ConfusionMoments(log_theta, var_theta, log_pi, var_pi, dirichlet_expected_log(confusion_alpha),
                            dirichlet_expected_log(class_alpha))


def draw_moments(log_theta: torch.Tensor, log_pi: torch.Tensor) -> ConfusionMoments:
    """The same moments estimated from posterior draws ``[D, W, K, L]`` and ``[D, K]`` (Gibbs, SVI, NUTS)."""

    def pair(draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        draws = draws.double()
        mean = draws.exp().mean(0).clamp_min(1e-300).log()
        var = draws.var(0) if draws.shape[0] > 1 else torch.zeros_like(mean)
        return mean, var

    return ConfusionMoments(*pair(log_theta), *pair(log_pi), log_theta.double().mean(0), log_pi.double().mean(0))


def item_scores(incidence: Incidence, moments: ConfusionMoments) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[I, K]`` scores of each item: the collapsed score, and the mean and variance over the posterior of the
    joint score ``log pi_k + sum_{n in i} log theta[w_n, k, y_n]``.

    The collapsed (posterior-predictive) score enters each judgment through ``log E[theta]``, the probability of the
    vote for a new draw of the annotator's row, so an item's posterior is Bayes' rule with the annotators'
    predictive confusions (Teh, Newman & Welling 2007). Over the posterior the score has mean ``sum E[log theta]``
    and variance ``sum Var[log theta]`` (the rows are independent a posteriori; a sum of such terms is close to
    normal)."""
    dtype = incidence.val.dtype

    def product(table: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return incidence.item_product(cell_table(table.to(dtype))) + prior.to(dtype)

    return (product(moments.log_theta, moments.log_pi), product(moments.mean_log_theta, moments.mean_log_pi),
            product(moments.var_log_theta, moments.var_log_pi))


def closed_form_item_summary(incidence: Incidence, moments: ConfusionMoments, *,
                             temperature: torch.Tensor | None = None, vote_probs: torch.Tensor | None = None,
                             shrinkage: float = 0.0, klass: int | None = None) -> ItemSummary:
    """Soft labels and their 90% intervals from posterior moments, without posterior draws.

    Mean: ``(1 - e) softmax(s_i / T_i) + e v_i`` with ``s_i`` the collapsed scores of :func:`item_scores`, ``T_i``
    the item temperatures (:func:`design_effect`; 1 when ``None``), ``v_i`` the item's vote fractions and ``e`` the
    shrinkage. Interval of the top class ``t``: its log-odds ``g = m_t - logsumexp_{k != t} m_k`` (``m`` the scores'
    posterior means, over ``T_i``) is approximately normal over the posterior with variance ``(var_t + sum_{k != t}
    w_k^2 var_k) / T_i^2`` (delta method, ``w`` the softmax over the other classes; the class scores are independent a
    posteriori because they use different confusion rows), so the interval is ``sigmoid(g +- 1.645 sd)``, mixed with
    ``v_it`` as the mean is; ``sd`` of the top probability is that of ``sigmoid(g)`` under the same normal
    (:func:`logistic_normal_sd`), so that it agrees with the interval. Cost: three sparse products,
    whatever ``num_samples``. ``klass``: the interval and sd are of this class (its index) instead of the top one.
    """
    scores, mean_scores, var_scores = item_scores(incidence, moments)
    if temperature is not None:
        t = temperature.to(mean_scores)[:, None]
        scores, mean_scores, var_scores = scores / t, mean_scores / t, var_scores / t**2
    mixed = softmax_last(scores) if scores.shape[-1] <= 2 else softmax_and_logsumexp(scores)[0]
    if vote_probs is not None and shrinkage:  # the ambiguous-item mixture (see select_item_calibration)
        mixed = (1.0 - shrinkage) * mixed + shrinkage * vote_probs.to(mixed)
    mixed = mixed / row_sums(mixed)[:, None]
    top = mixed.argmax(-1, keepdim=True) if klass is None else torch.full_like(mixed[:, :1], klass, dtype=torch.long)
    s_top = mean_scores.gather(1, top)[:, 0]
    weights, log_sum = softmax_and_logsumexp(mean_scores.scatter(1, top, float("-inf")))
    log_odds = s_top - log_sum
    var = var_scores.gather(1, top)[:, 0] + row_sums(weights.square_().mul_(var_scores))
    sd_odds = var.clamp_min(0.0).sqrt()
    p_top = torch.sigmoid(log_odds)
    lower = torch.sigmoid(log_odds - 1.6448536 * sd_odds)
    upper = torch.sigmoid(log_odds + 1.6448536 * sd_odds)
    if vote_probs is not None and shrinkage:
        v_top = vote_probs.to(mixed).gather(1, top)[:, 0]
        lower, upper = [(1.0 - shrinkage) * b + shrinkage * v_top for b in (lower, upper)]
    sd = (1.0 - shrinkage) * logistic_normal_sd(log_odds.double(), sd_odds.double())
    as_numpy = lambda t: t.double().cpu().numpy()  # noqa: E731
    return ItemSummary(as_numpy(mixed), as_numpy(sd), as_numpy(lower), as_numpy(upper))


_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(80)


def logistic_normal_sd(mean: torch.Tensor, sd: torch.Tensor, block: int = 1 << 16) -> torch.Tensor:
    """The sd of ``sigmoid(g)`` for ``g ~ Normal(mean, sd)``, elementwise, by 80-point Gauss-Hermite quadrature.

    The delta method's ``p (1 - p) sd`` holds only while ``sd`` is small: a confident mean with a wide spread (log-odds
    8 +- 6, whose 90% interval of the probability is [0.12, 1.00]) has a probability sd near 0.2, where it gives
    0.002. Deviations are taken from ``sigmoid(mean)`` and on the side where the probabilities are small
    (``sigmoid(g)`` and ``sigmoid(-g)`` have one sd), so that nothing is lost to cancellation near 0 or 1; blocks of
    ``block`` items bound the working memory.
    """
    nodes = torch.as_tensor(_HERMITE_NODES, dtype=torch.float64, device=mean.device)
    weights = torch.as_tensor(_HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum(), dtype=torch.float64, device=mean.device)
    centre = -mean.abs()  # the small side
    out = torch.empty_like(centre)
    for start in range(0, len(centre), block):  # a few blocks of 65k items, not a loop over items
        m, s = centre[start:start + block, None], sd[start:start + block, None]
        deviation = torch.sigmoid(m + s * nodes) - torch.sigmoid(m)
        first = deviation @ weights
        out[start:start + block] = ((deviation.square() @ weights) - first.square()).clamp_min(0.0).sqrt()
    return out


def item_uniforms(item_ids: Any, seed: int) -> np.ndarray:
    """A number in ``[0, 1)`` for each item id, uniform over ids and a function of the id and ``seed`` alone: not of
    the order of the rows (which numbers the items) nor of the process that holds the item (pandas' ``hash_array``,
    unlike Python's ``hash``, is not salted per process)."""
    hashed = pd.util.hash_array(np.asarray(item_ids, dtype=object), hash_key=f"{seed % 10 ** 16:016d}",
                                categorize=False)
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def select_item_calibration(incidence: Incidence, items: torch.Tensor, workers: torch.Tensor, labels: torch.Tensor,
                            moments: ConfusionMoments, confusion_alpha: torch.Tensor | None = None,
                            item_probs: torch.Tensor | None = None, *, correlation: float | None = None,
                            shrinkage: float | None = None, vote_smoothing: float = 1e-3,
                            max_judgments: int = 200_000, min_z: float = 0.0, seed: int = 0,
                            item_ids: Any = None,
                            all_reduce: Callable[..., torch.Tensor] | None = None) -> tuple[float, float]:
    """The item temperature's ``rho`` and the vote shrinkage ``e`` that best predict each judgment from the others.

    For judgment ``n`` (annotator ``w``, label ``y``) of item ``i`` with ``n_i`` judgments, the calibrated
    leave-one-out posterior is ``p(z | y_{i,-n}) = (1 - e) softmax(s_{i,-n} / T) + e v_{i,-n}`` with ``s_{i,-n}``
    the item's collapsed score without the judgment, ``T = 1 + (n_i - 2) rho`` (the design effect of the
    ``n_i - 1`` others) and ``v_{i,-n}`` the others' vote fractions; the criterion is the mean of
    ``log sum_k p(z = k | y_{i,-n}) theta[w, k, y]`` over the judgments whose item has others. ``rho`` (with ``e = 0``) then ``e`` (given ``rho``) are each
    maximised over ``[0, 1]`` (bounded Brent) and kept only where the total gain over 0 exceeds ``min_z``
    standard errors of the per-item sums of the gains (items are the independent units). A value passed in
    (``correlation``, ``shrinkage``) is kept fixed. The predicting row is the VB cavity ``(alpha[w, k, y] - q_ik) /
    (sum_l alpha[w, k, l] - q_ik)`` when ``confusion_alpha`` and ``item_probs`` are given (a judgment does not
    predict itself through its annotator's matrix), else ``E[theta]``. The criterion uses the judgments of at most
    ``max_judgments`` judgments' worth of items drawn at random (``seed``): its cost stays bounded at any size. An
    item is drawn by a hash of its id in ``item_ids`` (:func:`item_uniforms`; ``None``: of its code), so the draw is
    the same whatever the order of the rows and however the items are split across processes.
    ``all_reduce(tensor, "sum")`` sums per-process sums over the processes of a fit whose items are split across
    processes (``None``: one process), so every process makes the same choice from all the judgments.

    No gold label is involved: this is the gold-free calibration step of
    :class:`~accord.models.dawid_skene.DawidSkene` (``item_correlation``, ``vote_shrinkage``).
    """
    from scipy.optimize import minimize_scalar

    if correlation is not None and shrinkage is not None:
        return float(correlation), float(shrinkage)
    k = incidence.n_classes
    dtype = incidence.val.dtype
    n_items = incidence.n_items
    counts = vote_counts(incidence).to(dtype)  # every judgment of the item counts, not only the sampled ones
    per_item = counts.sum(-1)
    # a judgment alone on its item has no others to be predicted from, so it says nothing about either value: its
    # 'others' vote fractions are uniform where the soft label of its item mixes in its own vote (on a table of one
    # vote per pair this chose e = 1, and Gibbs soft labels of 0.999 beside a rater of reliability 0.67)
    with_others = per_item[items] > 1
    items, workers, labels = items[with_others], workers[with_others], labels[with_others]
    n_all = float(len(items)) if all_reduce is None else float(all_reduce(torch.tensor([float(len(items))],
                                                                                     dtype=torch.float64), "sum")[0])
    # a process of a sharded fit that holds no pairs still joins every all_reduce (returning early alone would leave
    # the other processes waiting in theirs for ever); no judgment anywhere: every process returns here at once
    if n_all == 0:
        return float(correlation or 0.0), float(shrinkage or 0.0)
    if n_all > max_judgments:
        # drawn by id, not by code: codes follow the rows' first appearance (a shuffle of the rows drew other items,
        # rho 0.0039 against 0.0 on 300k judgments) and each process of a sharded fit numbers its own items
        share = max_judgments / n_all
        ids = np.arange(n_items) if item_ids is None else item_ids
        chosen = torch.as_tensor(item_uniforms(ids, seed) < share, device=items.device)
        keep = chosen[items]
        items, workers, labels = items[keep], workers[keep], labels[keep]
    table = cell_table(moments.log_theta.to(dtype))  # [W * L, K]
    own = table[workers * k + labels]  # [N, K]
    rest = (incidence.by_item @ table)[items] - own + moments.log_pi.to(dtype)
    if confusion_alpha is not None and item_probs is not None:
        q = item_probs[items].to(dtype)
        alpha = confusion_alpha.to(dtype)
        predict = ((alpha[workers, :, labels] - q) / (alpha[workers].sum(-1) - q)).clamp_min(1e-12).log()
    else:
        predict = own
    predict_probs = predict.exp()
    others_n = per_item[items] - 1.0  # judgments of the item besides n
    others_votes = counts[items] - torch.nn.functional.one_hot(labels, k).to(dtype)
    votes = (others_votes + vote_smoothing) / (others_n[:, None] + k * vote_smoothing)
    extra = (others_n - 1.0).clamp_min(0.0)

    def pointwise(rho: float, e: float) -> torch.Tensor:
        post = softmax_last(rest / (1.0 + extra * rho)[:, None])
        mixed = (1.0 - e) * post + e * votes
        return (mixed * predict_probs).sum(-1).clamp_min(1e-300).log()

    used = torch.unique(items)

    def significant(gain: torch.Tensor) -> bool:
        sums = torch.zeros(n_items, dtype=torch.float64, device=gain.device).index_add_(0, items, gain.double())[used]
        if all_reduce is None:
            se = float(sums.std()) * np.sqrt(len(used)) if len(used) > 1 else float("inf")
            return float(gain.sum()) > min_z * se
        n, first, second, gained = all_reduce(torch.stack([torch.tensor(float(len(used)), dtype=torch.float64),
                                                           sums.sum().cpu(), (sums ** 2).sum().cpu(),
                                                           gain.double().sum().cpu()]), "sum").tolist()
        se = float(np.sqrt(max(second - first * first / n, 0.0) / (n - 1)) * np.sqrt(n)) if n > 1 else float("inf")
        return gained > min_z * se

    def mean(values: torch.Tensor) -> float:
        if all_reduce is None:
            return float(values.mean())
        summed, count = all_reduce(torch.stack([values.double().sum().cpu(),
                                                torch.tensor(float(len(values)), dtype=torch.float64)]), "sum").tolist()
        return summed / count

    def choose(objective: Callable[[float], torch.Tensor]) -> float:
        found = minimize_scalar(lambda x: -mean(objective(x)), bounds=(0.0, 1.0), method="bounded",
                                options={"xatol": 1e-3})
        return float(found.x) if significant(objective(float(found.x)) - objective(0.0)) else 0.0

    rho = float(correlation) if correlation is not None else choose(lambda r: pointwise(r, 0.0))
    e = float(shrinkage) if shrinkage is not None else choose(lambda x: pointwise(rho, x))
    return rho, e
