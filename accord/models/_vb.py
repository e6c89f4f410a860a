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
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from accord.datasets import Encoded



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


def build_incidence(
    encoded: Encoded, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
) -> Incidence:
    """Sparse incidence of ``encoded`` (duplicated (item, annotator, label) triples are summed)."""
    n_cells = encoded.n_workers * encoded.n_classes
    cells = encoded.workers * encoded.n_classes + encoded.labels
    ones = np.ones(len(cells), dtype=np.float64)
    csr = sp.csr_matrix((ones, (encoded.items, cells)), shape=(encoded.n_items, n_cells))
    csr.sum_duplicates()
    csc = csr.tocsc()  # the transpose's CSR layout

    def to_torch(crow: np.ndarray, col: np.ndarray, val: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
        return _csr(
            torch.as_tensor(crow.astype(np.int64), device=device),
            torch.as_tensor(col.astype(np.int64), device=device),
            torch.as_tensor(val, dtype=dtype, device=device),
            shape,
        )

    by_item = to_torch(csr.indptr, csr.indices, csr.data, csr.shape)
    by_cell = to_torch(csc.indptr, csc.indices, csc.data, (n_cells, encoded.n_items))
    return Incidence(
        by_item=by_item,
        by_cell=by_cell,
        crow=csr.indptr.astype(np.int64),
        col=by_item.col_indices(),
        val=by_item.values(),
        n_items=encoded.n_items,
        n_workers=encoded.n_workers,
        n_classes=encoded.n_classes,
    )


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


def quantiles_90(draws: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """5% and 95% quantiles along ``dim`` (linear interpolation, as ``torch.quantile``), from partial sorts."""
    n = draws.shape[dim]
    if n == 1:
        return draws.squeeze(dim), draws.squeeze(dim)
    position = 0.05 * (n - 1)
    lo_index = int(position)
    frac = position - lo_index
    k = min(lo_index + 2, n)
    small = torch.topk(draws, k, dim=dim, largest=False, sorted=True).values
    large = torch.topk(draws, k, dim=dim, largest=True, sorted=True).values
    take = lambda t, i: t.select(dim, min(i, k - 1))  # noqa: E731
    lower = take(small, lo_index) * (1 - frac) + take(small, lo_index + 1) * frac
    upper = take(large, lo_index) * (1 - frac) + take(large, lo_index + 1) * frac
    return lower, upper


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


def vb_dawid_skene(
    incidence: Incidence,
    confusion_prior: torch.Tensor,
    class_prior: torch.Tensor,
    init_item_probs: torch.Tensor,
    *,
    max_iter: int = 500,
    tol: float = 1e-5,
) -> VBResult:
    """Mean-field VB-EM for Dawid-Skene, started with an M-step from ``init_item_probs``.

    Stops when no item's class probability moves by more than ``tol`` in an iteration, or after ``max_iter``.
    ``confusion_prior`` is ``[K, L]`` (row ``k``: the Dirichlet prior of a true-``k`` row), ``class_prior`` ``[K]``.
    """
    w, k = incidence.n_workers, incidence.n_classes
    q = init_item_probs
    converged = False
    n_iter = 0
    prior = confusion_prior
    for n_iter in range(1, max_iter + 1):
        conf_alpha, class_alpha = _vb_m_step(incidence, q, prior, class_prior, w, k)
        scores = incidence.by_item @ cell_table(dirichlet_expected_log(conf_alpha))
        scores = scores + dirichlet_expected_log(class_alpha)
        new_q = softmax_last(scores)
        change = float((new_q - q).abs().max()) if q.numel() else 0.0
        q = new_q
        if change < tol:
            converged = True
            break
    conf_alpha, class_alpha = _vb_m_step(incidence, q, prior, class_prior, w, k)
    return VBResult(conf_alpha, class_alpha, q, n_iter, converged)


def _counts(incidence: Incidence, q: torch.Tensor, w: int, k: int) -> torch.Tensor:
    """``[W, K, L]`` expected counts: judgments of annotator ``w`` with label ``l`` on pairs of true class ``k``."""
    return (incidence.by_cell @ q).reshape(w, k, k).permute(0, 2, 1)


@dataclass
class GibbsResult:
    """Draws of a blocked Gibbs sampler: ``theta [C, D, W, K, L]``, ``pi [C, D, K]``."""

    theta: torch.Tensor
    pi: torch.Tensor


def gibbs_dawid_skene(
    incidence: Incidence,
    confusion_prior: torch.Tensor,
    class_prior: torch.Tensor,
    init_theta: torch.Tensor,
    init_pi: torch.Tensor,
    *,
    num_samples: int,
    num_warmup: int,
    num_chains: int,
) -> GibbsResult:
    """Blocked Gibbs sampling of Dawid-Skene (exact posterior draws; all chains advance together).

    One sweep: ``z_i ~ p(z_i | y_i, theta, pi)`` for every pair at once (one sparse product), then
    ``theta_wk ~ Dirichlet(beta_k + counts_wk(z))`` and ``pi ~ Dirichlet(alpha + counts(z))`` (conjugate). Chains
    start at ``init_theta`` / ``init_pi`` (e.g. the VB posterior mean), which also fixes the labelling of the
    classes: the sampler does not jump between the mirror-image modes.
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
        counts = (incidence.by_cell @ onehot).reshape(w, k, c, k).permute(2, 0, 3, 1)  # [C, W, K(true), L]
        theta = _dirichlet(confusion_prior + counts)
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


def _vb_m_step(
    incidence: Incidence, q: torch.Tensor, confusion_prior: torch.Tensor, class_prior: torch.Tensor, w: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return confusion_prior + _counts(incidence, q, w, k), class_prior + q.sum(0)


# -- item posteriors and log-likelihoods under posterior draws ------------------------------------------------


@dataclass
class ItemSummary:
    """Per item: the posterior mean class probabilities over draws, and the standard deviation and 90% interval of
    the probability of the most likely class."""

    mean: np.ndarray  # [I, K]
    sd: np.ndarray  # [I]
    lower: np.ndarray  # [I]
    upper: np.ndarray  # [I]


def _chunk_rows(n_draws: int, n_classes: int, budget: int = 2**23) -> int:
    return max(1, budget // max(1, n_draws * n_classes))


def item_log_posterior_scores(incidence: Incidence, log_theta: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """``[D, I, K]`` unnormalised joint scores ``log pi_k + sum_{judgments} log theta`` of every item per draw."""
    d, _, k, _ = log_theta.shape
    table = cell_table(log_theta)
    parts = [
        (block @ table).reshape(hi - lo, d, k).permute(1, 0, 2)
        for lo, hi, block in incidence.item_chunks(_chunk_rows(d, k))
    ]
    scores = torch.cat(parts, dim=1) if parts else log_theta.new_zeros(d, 0, k)
    return scores + log_pi[:, None, :]


EXACT_QUANTILE_BUDGET = 20_000_000


def summarize_item_posterior(incidence: Incidence, log_theta: torch.Tensor, log_pi: torch.Tensor) -> ItemSummary:
    """Mean, sd and 5% / 95% quantiles of ``p(z_i | y_i, theta_d, pi_d)`` over draws ``d``, block by block of items
    (memory stays bounded however many items and draws). Computed in the incidence's dtype; with two classes only
    ``p(z_i = 1)`` is formed (a sigmoid of the log-odds), which halves the work.

    The quantiles are the draws' empirical ones while ``n_items * n_draws <= EXACT_QUANTILE_BUDGET``; above that
    (two classes only) they come from a normal approximation of the log-odds across draws (a sum of independent
    per-annotator terms), ``sigmoid(mean +- 1.645 sd)``, which avoids a partial sort of every item's draws.
    """
    exact = incidence.n_items * log_theta.shape[0] <= EXACT_QUANTILE_BUDGET
    d, _, k, _ = log_theta.shape
    dtype = incidence.val.dtype
    table = cell_table(log_theta.to(dtype))
    log_pi = log_pi.to(dtype)
    n = incidence.n_items
    mean = np.empty((n, k))
    sd = np.full(n, np.nan)
    lower = np.empty(n)
    upper = np.empty(n)
    for lo, hi, block in incidence.item_chunks(_chunk_rows(d, k)):
        scores = (block @ table).reshape(hi - lo, d, k)
        if k == 2:
            odds = scores[..., 1] - scores[..., 0] + (log_pi[:, 1] - log_pi[:, 0])[None]  # [rows, D]
            p1 = torch.sigmoid(odds)
            m1 = p1.mean(1).double()
            mean[lo:hi, 1] = m1.cpu().numpy()
            mean[lo:hi, 0] = torch.sigmoid(-odds).mean(1).double().cpu().numpy()  # not 1 - m1: keeps the tail
            top_is_1 = m1 > 0.5
            if d > 1:
                sd[lo:hi] = p1.std(1).double().cpu().numpy()
                if exact:
                    low, high = quantiles_90(p1, dim=1)
                else:
                    centre, spread = odds.mean(1), 1.6448536 * odds.std(1)
                    low, high = torch.sigmoid(centre - spread).double(), torch.sigmoid(centre + spread).double()
                lower[lo:hi] = torch.where(top_is_1, low, 1.0 - high).cpu().numpy()
                upper[lo:hi] = torch.where(top_is_1, high, 1.0 - low).cpu().numpy()
            else:
                top = torch.where(top_is_1, p1[:, 0], 1.0 - p1[:, 0]).cpu().numpy()
                lower[lo:hi] = upper[lo:hi] = top
            continue
        probs = softmax_last(scores + log_pi[None, :, :])  # [rows, D, K]
        m = probs.mean(1).double()
        m = m / m.sum(-1, keepdim=True)
        top = m.argmax(-1)
        top_draws = probs.gather(2, top[:, None, None].expand(-1, d, 1))[..., 0]  # [rows, D]
        mean[lo:hi] = m.cpu().numpy()
        if d > 1:
            sd[lo:hi] = top_draws.std(1).double().cpu().numpy()
            low, high = quantiles_90(top_draws, dim=1)
            lower[lo:hi] = low.cpu().numpy()
            upper[lo:hi] = high.cpu().numpy()
        else:
            lower[lo:hi] = upper[lo:hi] = top_draws[:, 0].cpu().numpy()
    return ItemSummary(mean, sd, lower, upper)


def judgment_loglik_draws(
    incidence: Incidence,
    items: torch.Tensor,
    cells: torch.Tensor,
    log_theta: torch.Tensor,
    log_pi: torch.Tensor,
    *,
    draws_per_chunk: int = 16,
) -> np.ndarray:
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
