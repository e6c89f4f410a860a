"""One-coin Dawid-Skene: one accuracy per annotator, errors spread evenly over the other classes."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from accord.datasets import AccordError, Encoded
from accord.models._data import id_ranks
from accord.models.base import check_positive
from accord.models.confusion import TINY, ConfusionModel, to_codes


class OneCoinDawidSkene(ConfusionModel):
    r"""One-coin Dawid-Skene with a Beta prior on each annotator's accuracy, by closed-form variational Bayes.

    Model (annotator :math:`w`, pair :math:`i`, judgment :math:`n`, :math:`K` classes)::

        pi      ~ Dirichlet(class_prior * 1_K)                 class prior
        p_w     ~ Beta(prior_correct, prior_error)             annotator w's accuracy (one coin)
        z_i     ~ Categorical(pi)                              true label of pair i
        y_n     = z_i with probability p_w, else uniform over the other K - 1 classes

    i.e. Dawid & Skene's confusion matrix with one parameter, ``theta[w] = p_w I + (1 - p_w) / (K - 1) (1 - I)``.
    The mean-field posterior ``q(z) q(pi) prod_w q(p_w)`` is conjugate; with ``r_w = sum_{n by w} q(z_{i_n} = y_n)``
    (the expected number of the annotator's votes that are right) and ``m_w`` their judgments, VB-EM alternates

    .. math::

        q(p_w) &= \mathrm{Beta}(a + r_w,\ b + m_w - r_w), \qquad q(\pi) = \mathrm{Dirichlet}(c + \textstyle\sum_i
            q(z_i)), \\
        \log q(z_i = k) &= E\log\pi_k + \textstyle\sum_{n \in i} [y_n = k]\,
            \big(E\log p_{w_n} - E\log(1 - p_{w_n}) + \log(K - 1)\big) + \mathrm{const},

    with :math:`E\log p_w = \psi(a_w) - \psi(a_w + b_w)`, each step a bincount over the judgments. Soft labels average
    ``p(z_i | y, p, pi)`` over draws of ``q(p) q(pi)``; the annotator table, the ArviZ export, :func:`compare` and the
    held-out predictive come from :class:`~accord.models.confusion.ConfusionModel`. crowd-kit's ``OneCoinDawidSkene``
    is the maximum-likelihood EM of the same model (no priors).

    Parameters
    ----------
    prior_correct, prior_error
        The Beta prior's pseudo-counts of right and wrong votes (``(2, 1)``: an annotator is believed better than a
        coin, and a few votes override it).
    Others: :class:`~accord.models.confusion.ConfusionModel` (``init``, ``class_prior``) and
    :class:`~accord.models.base.RaterModel` (``max_steps`` iterations, ``tol``).

    Fitted attributes: ``soft_labels_``, ``annotators_``, ``confusion_``, ``class_prior_``, ``accuracy_`` (posterior
    mean ``p_w``), ``n_iter_``, ``converged_`` (a fit stopped at ``max_steps`` unconverged warns
    :class:`~accord.models.base.ConvergenceWarning`).

    References
    ----------
    A. P. Dawid and A. M. Skene (1979). Maximum likelihood estimation of observer error-rates using the EM algorithm.
    *Journal of the Royal Statistical Society C* 28(1), 20-28.

    Y. Zhang, X. Chen, D. Zhou and M. I. Jordan (2016). Spectral methods meet EM: a provably optimal algorithm for
    crowdsourcing. *Journal of Machine Learning Research* 17(102), 1-44.
    """

    method: ClassVar[str] = "one-coin-dawid-skene"
    supported_inference: ClassVar[tuple[str, ...]] = ("vb",)
    models_position_bias: ClassVar[bool] = False
    prior_correct: float = 2.0
    prior_error: float = 1.0

    def _fit(self, encoded: Encoded) -> None:
        check_positive(self, "prior_correct", "prior_error")
        self._prepare_fit(encoded)
        device, k, n_workers = self._torch_device, encoded.n_classes, encoded.n_workers
        items, workers, labels = (torch.as_tensor(a, device=device) for a in (encoded.items, encoded.workers,
                                                                              encoded.labels))
        # a pair of one judgment says nothing of how often its rater is right (only agreement does): it is left out
        # of the counts, as in DawidSkene (accord.models._vb.informative_items), and a table of none keeps the prior
        informative = self._informative
        self._no_overlap()
        weight = None if informative is None else informative[items]
        judged = torch.bincount(workers, weights=weight, minlength=n_workers).double()
        q = self._initial_item_probs(encoded)

        def m_step(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if informative is not None:
                q = q * informative[:, None]
            right = torch.bincount(workers, weights=q[items, labels], minlength=n_workers)
            return self.prior_correct + right, self.prior_error + judged - right, self._class_prior_vec + q.sum(0)

        n_iter, converged = 0, False
        while n_iter < self.max_steps and not converged:
            a, b, class_alpha = m_step(q)
            gain = (torch.digamma(a) - torch.digamma(b) + math.log(max(k - 1, 1)))[workers]
            scores = torch.zeros(encoded.n_items * k, dtype=torch.float64, device=device)
            scores = scores.index_add_(0, items * k + labels, gain).reshape(-1, k) + torch.digamma(class_alpha)
            new_q = torch.softmax(scores, dim=-1)
            n_iter, converged = n_iter + 1, float((new_q - q).abs().max()) < self.tol
            q = new_q
        self._keep_convergence(n_iter, converged)  # warns where it stopped at max_steps unconverged, as DawidSkene
        a, b, class_alpha = m_step(q)
        self.accuracy_ = (a / (a + b)).cpu().numpy()
        # drawn in the annotators' id order (their codes follow the rows' order), then mapped back to the codes
        ranks = id_ranks(encoded.worker_index)
        order = torch.as_tensor(np.argsort(ranks), device=device)
        p = torch.distributions.Beta(a[order].float(), b[order].float()).sample((self.num_samples,))
        self._log_theta = self._log_one_coin(to_codes(p, ranks, dim=1)[..., None, None])[None]
        pi = torch.distributions.Dirichlet(class_alpha).sample((self.num_samples,))
        self._log_pi = pi.clamp_min(TINY).log()[None]
        self._finish()

    def _log_one_coin(self, p: torch.Tensor) -> torch.Tensor:
        """``[..., K, K]`` log confusions from accuracies ``p`` (``[..., 1, 1]``)."""
        k = self.encoded_.n_classes
        eye = torch.eye(k, dtype=torch.bool, device=p.device)
        return torch.where(eye, p, (1.0 - p) / max(k - 1, 1)).clamp_min(TINY).log()

    def _new_annotator_log_confusion(self, log_pi: torch.Tensor) -> torch.Tensor:
        p = torch.tensor(self.prior_correct / (self.prior_correct + self.prior_error), dtype=log_pi.dtype,
                         device=log_pi.device)
        return self._log_one_coin(p[None, None]).expand(log_pi.shape[0], -1, -1)
