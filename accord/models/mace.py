"""MACE: Multi-Annotator Competence Estimation (Hovy, Berg-Kirkpatrick, Vaswani & Hovy, NAACL 2013)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from accord.datasets import AccordError, Encoded, FitError
from accord.models._data import PaddedJudgments, id_ranks, vote_fractions
from accord.models.base import ConvergenceWarning, check_positive, interval_columns, is_numbers
from accord.models.confusion import TINY, to_codes
from accord.models.enumerated import Draws, EnumeratedRaterModel, per_judgment


def mace_label_probs(spam: torch.Tensor, spam_labels: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``[..., K]``: ``P(label = k | true class)`` under MACE, ``(1 - s)[k = t] + s xi_k``.

    ``spam`` ``[...]`` and ``spam_labels`` ``[..., K]`` are each judgment's annotator's parameters; ``true`` is
    broadcastable against ``spam`` (the enumerated ``[K, 1, 1]`` in the model).
    """
    knows = torch.nn.functional.one_hot(true.long(), spam_labels.shape[-1]).to(spam.dtype)
    return (1.0 - spam)[..., None] * knows + spam[..., None] * spam_labels


class MACE(EnumeratedRaterModel):
    r"""MACE: which annotators answer at random, and what they answer when they do (Hovy et al., 2013).

    Model (annotator :math:`j`, item :math:`i`, judgment label :math:`y_{ij}`, :math:`K` classes)

    .. math::

        s_j &\sim \mathrm{Beta}(a, b)                      &&\text{probability that } j \text{ spams} \\
        \xi_j &\sim \mathrm{Dirichlet}(\gamma \mathbf 1_K)  &&\text{what } j \text{ answers when spamming} \\
        \pi &\sim \mathrm{Dirichlet}(c \mathbf 1_K)         &&\text{class prior (or fixed uniform)} \\
        t_i &\sim \mathrm{Categorical}(\pi)                 &&\text{true class, enumerated out} \\
        S_{ij} &\sim \mathrm{Bernoulli}(s_j),\qquad
        y_{ij} = t_i \text{ if } S_{ij} = 0,\quad y_{ij} \sim \mathrm{Categorical}(\xi_j) \text{ if } S_{ij} = 1

    so, with the spam indicator summed out, :math:`p(y_{ij} = k \mid t_i) = (1 - s_j)[k = t_i] + s_j \xi_{jk}`.
    Hovy et al. write :math:`\theta_j = 1 - s_j` (the competence: the probability of knowing the answer) and fix
    :math:`\pi` uniform (``class_prior=None``); the default learns :math:`\pi`, because with a fixed uniform prior a
    skewed class balance is explained as spam towards the majority class. MACE has no adversarial mode, so it
    cannot flip every label as a confusion model can; it still starts from vote fractions.

    Inference (``inference=``)

    - ``"meanfield"`` (default), ``"map"``, ``"lowrank"``: SVI on the Pyro model with the true class enumerated and an
      autoguide on the unconstrained space of :math:`s, \xi, \pi`, started at the VB solution (``warm_start``).
    - ``"vb"``: the paper's closed-form variational Bayes, :math:`q(s_j)` Beta, :math:`q(\xi_j)` and :math:`q(\pi)`
      Dirichlet, :math:`q(t_i)` and :math:`q(S_{ij} \mid t_i)` (:func:`mace_vb`); each iteration is a few bincounts
      over the judgments, so it is the choice for large data. Its point estimates and soft labels match SVI in the
      same Beta/Dirichlet family (tested), but by treating each judgment's spam indicator as a separate factor it
      counts every judgment as a full observation of :math:`s_j`: its spam intervals are too narrow (NUTS and
      ``"meanfield"`` agree with each other). Use ``"vb"`` for soft labels at scale, ``"meanfield"`` (or ``"nuts"``)
      for annotator intervals.
    - ``"nuts"``: NUTS with the true class enumerated, chains started at the VB solution; for small data.

    Parameters
    ----------
    spam_prior
        :math:`(a, b)` of the Beta prior on each annotator's spam probability. ``(2, 2)``: weakly informative, and
        its mode is inside (0, 1), so MAP stays off the boundary for annotators with few judgments.
    spam_label_concentration
        :math:`\gamma` of the symmetric Dirichlet prior on the spam-label distribution (1: uniform on the simplex).
    init
        ``"vote"`` (VB started from vote fractions; SVI and NUTS start from its solution) or ``"uniform"`` (VB from
        uniform item posteriors, SVI from the prior median).
    Others: :class:`~accord.models.enumerated.EnumeratedRaterModel`, :class:`~accord.models.base.PyroRaterModel`.

    Fitted attributes: ``soft_labels_``; ``annotators_`` (the common columns; ``spam`` is :math:`s_j`) with
    ``competence`` (:math:`1 - s_j`, with its interval) and ``spam_label_<class>`` (posterior mean :math:`\xi_j`);
    ``class_prior_``; ``vb_`` (the closed-form posterior, :class:`MaceVBResult`); ``svi_``; ``n_divergences_``.

    Example
    -------
    >>> import pandas as pd
    >>> from accord.models.mace import MACE
    >>> judgments = pd.DataFrame({
    ...     "pair_id":   ["p1", "p1", "p1", "p2", "p2", "p2", "p3", "p3", "p3"],
    ...     "annotator": ["ann", "bob", "cid", "ann", "bob", "cid", "ann", "bob", "cid"],
    ...     "label":     ["A", "A", "B", "B", "B", "B", "A", "A", "B"],
    ... })
    >>> model = MACE(inference="vb", seed=0).fit(judgments)
    >>> model.soft_labels_.hard().tolist()
    ['A', 'B', 'A']
    >>> bool(model.annotators_.loc["cid", "spam"] > model.annotators_.loc["ann", "spam"])
    True

    References
    ----------
    Dirk Hovy, Taylor Berg-Kirkpatrick, Ashish Vaswani and Eduard Hovy (2013). Learning Whom to Trust with MACE.
    *Proceedings of NAACL-HLT 2013*, 1120-1130. https://aclanthology.org/N13-1132
    """

    method: ClassVar[str] = "mace"
    supported_inference: ClassVar[tuple[str, ...]] = ("vb", "map", "meanfield", "lowrank", "nuts")
    _site_dims: ClassVar[dict[str, tuple[str, ...]]] = {"spam": ("annotator",), "spam_labels": ("annotator", "class")}

    spam_prior: tuple[float, float] = (2.0, 2.0)
    spam_label_concentration: float = 1.0

    def _check_settings(self, encoded: Encoded) -> None:
        super()._check_settings(encoded)
        if self.init == "random":
            raise AccordError("MACE supports init='vote' or 'uniform'")
        if not is_numbers(self.spam_prior, 2):  # a bare number: len() failed
            raise AccordError(f"spam_prior must be the two shapes (a, b) of a Beta prior, not {self.spam_prior!r}")
        check_positive(self, "spam_prior", "spam_label_concentration")

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        import pyro
        import pyro.distributions as dist

        device = data.labels.device
        a, b = (torch.tensor(float(v), device=device) for v in self.spam_prior)
        k = data.n_classes
        gamma = torch.full((k,), float(self.spam_label_concentration), device=device)
        class_prior = self._sample_class_prior(k, device)
        with pyro.plate("annotator", data.n_workers, dim=-1):
            spam = pyro.sample("spam", dist.Beta(a, b))
            spam_labels = pyro.sample("spam_labels", dist.Dirichlet(gamma))
        subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
        with pyro.plate("item", data.n_items, dim=-2, subsample_size=subsample, device=device) as idx:
            true = pyro.sample("true_class", dist.Categorical(class_prior), infer={"enumerate": "parallel"})
            workers = data.workers[idx]
            with pyro.plate("judgment", data.max_judgments, dim=-1, device=device):
                probs = mace_label_probs(per_judgment(spam, workers), per_judgment(spam_labels, workers, 1), true)
                pyro.sample("label", dist.Categorical(probs=probs.clamp_min(TINY)).mask(data.mask[idx]),
                            obs=data.labels[idx])

    def _log_emission(self, params: Draws, workers: torch.Tensor, items: torch.Tensor,
                      labels: torch.Tensor) -> torch.Tensor:
        return self._log_confusion(params)[:, workers, :, labels].permute(1, 2, 0)  # [N, D, K] -> [D, K, N]

    def _log_confusion(self, params: Draws) -> torch.Tensor:
        spam, spam_labels = params["spam"], params["spam_labels"]
        true = torch.arange(spam_labels.shape[-1], device=spam.device)  # the rows of each confusion matrix
        return mace_label_probs(spam[..., None], spam_labels[..., None, :], true).clamp_min(TINY).log()

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        return self._log_confusion({name: self._draws[name][:, lo:hi] for name in ("spam", "spam_labels")}).exp()

    def _rater_columns(self) -> dict[str, np.ndarray]:
        columns = interval_columns("competence", 1.0 - self._draws["spam"].double())
        label_mean = self._draws["spam_labels"].double().mean(0).cpu().numpy()
        columns.update({f"spam_label_{name}": label_mean[:, k] for k, name in enumerate(self.encoded_.classes)})
        return columns

    def _new_slot_points(self, params: Draws) -> list[tuple[float, Draws]]:
        """One point, exact: MACE's confusion is linear in ``(1 - s_j, s_j xi_j)``, so the population's mean
        confusion is that of a spam probability ``mean_j s_j`` with spam labels ``mean_j s_j xi_j / mean_j s_j``."""
        spam = params["spam"].mean(1, keepdim=True)  # [D, 1]
        spam_mass = (params["spam"][..., None] * params["spam_labels"]).mean(1, keepdim=True)  # [D, 1, K]
        return [(0.0, {"spam": spam, "spam_labels": spam_mass / spam[..., None].clamp_min(TINY)})]

    def _run_vb(self, encoded: Encoded) -> "MaceVBResult":
        start = vote_fractions(encoded, 0.5) if self.init == "vote" else np.full(
            (encoded.n_items, encoded.n_classes), 1.0 / encoded.n_classes)
        is_vb = self.inference == "vb"
        self.vb_ = mace_vb(encoded, start, spam_prior=self.spam_prior,
                           spam_label_concentration=self.spam_label_concentration, class_prior=self.class_prior,
                           max_iter=self.max_steps if is_vb else 1000, tol=self.tol if is_vb else 1e-6,
                           device=self._torch_device)
        return self.vb_

    def _init_values(self, encoded: Encoded) -> Draws:
        """Posterior means of the VB fit started from vote fractions."""
        vb = self._run_vb(encoded)
        dtype = torch.get_default_dtype()
        values = {"spam": (vb.spam_count / (vb.spam_count + vb.trust_count)).to(dtype),
                  "spam_labels": (vb.spam_label_count / vb.spam_label_count.sum(-1, keepdim=True)).to(dtype)}
        if self.class_prior is not None:
            values["class_prior"] = (vb.class_count / vb.class_count.sum()).to(dtype)
        return values

    def _fit_vb(self, encoded: Encoded) -> Draws:
        vb = self._run_vb(encoded)
        self.n_iter_, self.converged_ = vb.n_iter, vb.converged
        if not vb.converged:
            warnings.warn(f"MACE(vb): stopped at max_steps={self.max_steps} iterations before no item posterior "
                          f"moved by more than tol={self.tol}; raise max_steps", ConvergenceWarning, stacklevel=5)
        shape = (1, self.num_samples)
        # drawn in the annotators' id order (their codes follow the rows' order), then mapped back to the codes
        ranks = id_ranks(encoded.worker_index)
        order = torch.as_tensor(np.argsort(ranks), device=vb.spam_count.device)
        draws = {"spam": torch.distributions.Beta(vb.spam_count[order], vb.trust_count[order]).sample(shape),
                 "spam_labels": torch.distributions.Dirichlet(vb.spam_label_count[order]).sample(shape)}
        draws = {name: to_codes(value, ranks, dim=2) for name, value in draws.items()}
        if self.class_prior is not None:
            draws["class_prior"] = torch.distributions.Dirichlet(vb.class_count).sample(shape)
        return draws


@dataclass
class MaceVBResult:
    """The closed-form VB posterior: ``q(s_j) = Beta(spam_count_j, trust_count_j)``, ``q(xi_j) =
    Dirichlet(spam_label_count_j)``, ``q(pi) = Dirichlet(class_count)`` and the item posteriors ``q(t_i)``."""

    spam_count: torch.Tensor
    trust_count: torch.Tensor
    spam_label_count: torch.Tensor
    class_count: torch.Tensor
    item_probs: torch.Tensor
    n_iter: int
    converged: bool


def mace_vb(encoded: Encoded, start: np.ndarray, *, spam_prior: tuple[float, float] = (2.0, 2.0),
            spam_label_concentration: float = 1.0, class_prior: float | None = 1.0, max_iter: int = 1000,
            tol: float = 1e-6, device: torch.device | str = "cpu") -> MaceVBResult:
    r"""Closed-form mean-field variational Bayes for MACE, vectorised over judgments.

    With :math:`q(s_j) = \mathrm{Beta}(\alpha_j, \beta_j)`, :math:`q(\xi_j) = \mathrm{Dirichlet}(\gamma_j)` and
    :math:`q(\pi) = \mathrm{Dirichlet}(c)`, let :math:`\tau_j = \exp E\log(1 - s_j)` and
    :math:`\nu_{jk} = \exp(E\log s_j + E\log \xi_{jk})`. Judgment :math:`n` (annotator :math:`j`, label :math:`y`)
    contributes the factor :math:`w_n(t) = \tau_j [t = y] + \nu_{jy}` for true class :math:`t`, so

    - E-step: :math:`\log q(t_i = t) = \mathrm{const} + E\log\pi_t + \sum_{n \in i} [t = y_n]
      \log(1 + \tau_j / \nu_{j y_n})` (the factors free of :math:`t` cancel), and the posterior probability that
      judgment :math:`n` was spam is :math:`E[S_n] = 1 - q(t_i = y_n)\, \tau_j / (\tau_j + \nu_{j y_n})`;
    - M-step: :math:`\alpha_j = a + \sum_n E[S_n]`, :math:`\beta_j = b + \sum_n (1 - E[S_n])`,
      :math:`\gamma_{jk} = \gamma + \sum_{n: y_n = k} E[S_n]`, :math:`c_t = c_0 + \sum_i q(t_i = t)`.

    ``start`` (``[items, K]``) is the first ``q(t)``, with every agreement with it counted as knowing. With
    ``class_prior=None`` the class prior is fixed uniform (Hovy et al.). Stops when no item's class probability
    moves by more than ``tol``. Float64 throughout: the bincounts sum many small terms.
    """
    dtype = torch.float64
    items = torch.as_tensor(encoded.items, device=device)
    workers = torch.as_tensor(encoded.workers, device=device)
    labels = torch.as_tensor(encoded.labels, device=device)
    n_items, n_workers, k = encoded.n_items, encoded.n_workers, encoded.n_classes
    a, b = (float(v) for v in spam_prior)
    gamma = float(spam_label_concentration)
    cells = workers * k + labels

    def m_step(item_probs: torch.Tensor, trust_share: torch.Tensor) -> tuple[torch.Tensor, ...]:
        expected_spam = 1.0 - item_probs[items, labels] * trust_share
        spam_count = a + torch.bincount(workers, weights=expected_spam, minlength=n_workers)
        trust_count = b + torch.bincount(workers, weights=1.0 - expected_spam, minlength=n_workers)
        spam_label_count = gamma + torch.bincount(cells, weights=expected_spam, minlength=n_workers * k)
        if class_prior is None:  # fixed uniform prior: equal counts make E log pi a constant
            class_count = torch.ones(k, dtype=dtype, device=device)
        else:
            class_count = float(class_prior) + item_probs.sum(0)
        return spam_count, trust_count, spam_label_count.reshape(n_workers, k), class_count

    item_probs = torch.as_tensor(start, dtype=dtype, device=device)
    trust_share = torch.ones(len(labels), dtype=dtype, device=device)  # P(knows | t = y): 1 before any estimate
    n_iter, converged = 0, False
    for n_iter in range(1, max_iter + 1):
        spam_count, trust_count, spam_label_count, class_count = m_step(item_probs, trust_share)
        total = torch.digamma(spam_count + trust_count)
        log_trust = torch.digamma(trust_count) - total
        log_noise = (torch.digamma(spam_count) - total)[:, None] + (
            torch.digamma(spam_label_count) - torch.digamma(spam_label_count.sum(-1, keepdim=True))
        )
        log_ratio = log_trust[workers] - log_noise[workers, labels]  # log(tau / nu) per judgment
        logits = torch.zeros(n_items * k, dtype=dtype, device=device)
        logits.index_add_(0, items * k + labels, torch.nn.functional.softplus(log_ratio))
        logits = logits.reshape(n_items, k) + (torch.digamma(class_count) - torch.digamma(class_count.sum()))
        new_probs = torch.softmax(logits, dim=1)
        trust_share = torch.sigmoid(log_ratio)
        change = float((new_probs - item_probs).abs().max())
        item_probs = new_probs
        if not math.isfinite(change):
            raise FitError("MACE vb: item posteriors became NaN; check that every prior setting is positive")
        if change < tol:
            converged = True
            break
    # a last M-step, so that the annotator posteriors are those that go with the returned item posteriors
    spam_count, trust_count, spam_label_count, class_count = m_step(item_probs, trust_share)
    return MaceVBResult(spam_count, trust_count, spam_label_count, class_count, item_probs, n_iter, converged)
