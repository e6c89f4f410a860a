"""The first-error model: a solution is right up to its first wrong step, and each rater's step labels are noisy
reports of where that step is."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from accord._settings import ConstructorSettings
from accord.datasets import AccordError, FitError
from accord.datasets.steps import EncodedSteps, StepLabels, encode_steps
from accord.datasets.steps.labels import position_index
from accord.models._vb import dirichlet_expected_log, fit_polya_prior, log_hyperprior, quantiles_90
from accord.models.base import ConvergenceWarning, check_positive, check_seed, check_switches, is_numbers

#: the three states a step can be in, given the first wrong step tau of its solution
STATES: tuple[str, ...] = ("correct", "first_error", "after_error")
_DRAW_BUDGET = 2**22  # floats per block of posterior draws (bounds memory on large tables)
_PRIOR_STEPS = 20  # Newton steps at most for the empirical prior in each VB-EM iteration


@dataclass(kw_only=True, eq=False, repr=False)
class FirstErrorModel(ConstructorSettings):
    r"""First-error model for step labels, fitted by closed-form variational Bayes (VB-EM).

    Process supervision (Lightman et al. 2023, "Let's Verify Step by Step", PRM800K) labels each step of a solution
    as correct, neutral or wrong; a solution is sound up to its *first* wrong step, and every later step builds on
    it. The model makes that position the latent variable. Solution ``i`` has ``T_i`` steps and first wrong step
    ``tau_i`` in ``0..T_i`` (``tau_i = T_i``: no step is wrong); step ``t`` is in state ``correct`` when
    ``t < tau_i``, ``first_error`` when ``t = tau_i`` and ``after_error`` when ``t > tau_i``. Rater ``w`` reports a
    label ``y`` in the declared set (-1/0/+1 or 0/1) from a distribution that depends on the step's state, as in
    Dawid & Skene (1979), with the states in place of classes::

        h_t          ~ Beta(a_h, b_h)                 hazard: P(step t is the first wrong one | steps < t right)
        tau_i        :  P(tau_i = t) = h_t prod_{s<t} (1 - h_s)  (t < T_i),  P(tau_i = T_i) = prod_{s<T_i} (1 - h_s)
        theta[w, k]  ~ Dirichlet(alpha_k)             rater w's label distribution in state k
        y_n          ~ Categorical(theta[w_n, state(s_n, tau_i)])

    ``theta`` gives each rater a sensitivity (``P(flag | first_error)``), a sensitivity to steps wrong in
    consequence (``P(flag | after_error)``) and a specificity (``1 - P(flag | correct)``), where a *flag* is the
    label that says "wrong". The hazards are per position, pooled across solutions.

    Raters' labels after their own first flag (``truncate_after_flag=True``, the default) are left out: a rater
    who has flagged a step either stops (PRM800K's phase-2 protocol) or calls every later step wrong because of it,
    and neither tells anything new about ``tau``. What remains of a rater's labels is then an exact report of *its*
    first-error position, and the stopping rule depends on the observed labels only, so leaving the rest out is
    ignorable.

    Inference. Mean-field VB, ``q(tau) q(theta) q(h)`` (Beal 2003): the E-step computes ``q(tau_i = t)`` exactly for
    every position by enumeration, vectorized over all positions of all solutions (for each solution the labels of
    state ``correct`` are a prefix sum over steps and those of ``after_error`` a suffix sum, so all ``T_i + 1``
    scores cost one pass over the judgments); the M-step adds expected label counts to the Dirichlet and Beta
    priors. With ``empirical_prior`` the priors ``alpha_k`` and ``(a_h, b_h)`` are fitted inside the same loop
    (type-II MAP): given ``q(tau)``, the bound maximised over ``q(theta)`` is the Dirichlet-multinomial (Polya)
    likelihood of the expected label counts, ``sum_w log B(alpha_k + n_wk) - log B(alpha_k)``, so ``alpha_k`` is
    fitted to it (Minka 2000) and ``q(theta) = Dirichlet(alpha_k + n_wk)`` follows, and likewise for the hazards
    (:func:`fit_polya_prior`). The population of raters pools each rater's estimate, the positions pool their
    hazards. A weak hyperprior, ``Gamma(2, 2 / a0)`` on each prior value with ``a0`` its starting value
    (``prior_flag``, ``prior_strength``, ``hazard_prior``), keeps the fit sane where the data are too few to fit a
    population (a handful of raters, a single automatic labeller); with tens of raters the data dominate. Each
    step raises the objective (the evidence lower bound plus the log hyperprior), recorded in ``elbo_history_``.

    VB-EM finds a local optimum of the bound. It starts twice, from each step wrong with its share of flags and from
    the first step a majority of all the labels flags, and keeps the second fit only where its bound is higher by
    more than ``max(1, 1e-6 |bound|)`` nats (on long solutions with false flags the first start settled 40-120 nats
    lower, reading the raters' first flags as first errors of low sensitivity).

    Identifiability. With truncation, what a rater says about solution ``i`` is its first flag, ``min(F, D)``: ``F``
    the first of its false flags on the correct steps ``0..tau_i - 1`` (each with probability ``r = 1 -
    specificity``), ``D`` where it detects the error. The number of false flags before ``tau`` is about Poisson with
    mean ``lambda = r E[tau]``, so a first flag is false with probability about ``1 - exp(-lambda)``, and where that
    exceeds 1/2 the first flags tell more about ``r`` than about ``tau``: ``tau`` is then not identified by them,
    whatever the prior or the start (300 steps, ``r = 0.02``: ``lambda`` about 3, 0.11-0.29 of the first errors
    found). The fit estimates ``lambda`` from the labels alone (``r`` at its one-sided 95% lower bound from the flags
    before the first step a majority flags, ``E[tau]`` by that step) and warns when ``1 - exp(-lambda) > 1/2``: if
    the raters went on labelling after a flag (most of those labels do not flag), the labels after it locate the
    error and ``truncate_after_flag=False`` reads them (0.98 found there); if they stop or call every later step
    wrong, no model of these labels locates it, majority vote neither. The estimate leans low where the majority's
    first flag is itself a false one.

    Soft labels average the exact posterior of ``tau`` over ``num_samples`` draws of ``(theta, h)`` from ``q``:
    ``P(first error at t)``, and ``P(step t correct) = P(tau > t)``, each with its standard deviation over the draws
    as uncertainty (``num_samples=0``: the VB posterior ``q(tau)`` itself, no uncertainty).

    Parameters
    ----------
    truncate_after_flag
        Leave out each rater's labels after its first flag on a solution (see above).
    empirical_prior
        Fit the Dirichlet priors of the raters and the Beta prior of the hazards to the data (type-II MAP, see
        above); the values below are then the starting point and the hyperprior's mean.
    prior_flag
        Prior mean of ``P(flag | state)`` for the states ``correct``, ``first_error``, ``after_error``; the other
        labels share the rest equally.
    prior_strength
        Pseudo-labels in each prior row of ``theta``.
    hazard_prior
        ``(a_h, b_h)`` of the hazards' Beta prior.
    max_iter, tol
        VB-EM iterations at most; stop when the evidence lower bound rises by less than ``tol`` (relative).
    num_samples
        Posterior draws behind the soft labels and their uncertainty (0: VB posterior only).
    seed
        Seed of the posterior draws.

    Attributes
    ----------
    step_labels_ : StepLabels
        Per step ``p_correct``, ``uncertainty``, ``n_judgments``; per solution and position ``p_first_error``.
    annotators_ : pandas.DataFrame
        Per rater: ``n_judgments`` (labels in the table), ``n_used`` (after truncation), ``sensitivity``,
        ``sensitivity_after``, ``specificity``, ``reliability`` (P(a used label agrees with the truth), weighting the
        three states by the rater's expected label counts) and ``spam`` (``1 - |sensitivity + specificity - 1|``:
        1 when flags do not depend on the truth), each with ``_lower`` / ``_upper`` 90% intervals.
    hazard_ : pandas.DataFrame
        Per position ``t``: posterior mean ``hazard`` and the expected number of solutions ``at_risk``.
    label_prior_ : pandas.DataFrame
        The (fitted) Dirichlet prior ``alpha_k``, one row per state, one column per label value.
    hazard_prior_ : tuple of float
        The (fitted) ``(a_h, b_h)``.
    elbo_history_ : list of float
        The evidence lower bound (plus the log hyperprior with ``empirical_prior``) after each E-step; ``elbo_`` is
        its last value.
    n_iter_, converged_
        Iterations run, and whether ``tol`` was reached.

    Example
    -------
    >>> from accord.datasets.steps import make_synthetic_steps
    >>> data = make_synthetic_steps(n_problems=60, seed=0)
    >>> model = FirstErrorModel().fit(data.judgments)
    >>> model.step_labels_.most_likely_first_error().head()  # doctest: +SKIP
    """

    method: ClassVar[str] = "first-error"

    truncate_after_flag: bool = True
    empirical_prior: bool = True
    prior_flag: tuple[float, float, float] = (0.2, 0.7, 0.6)
    prior_strength: float = 4.0
    hazard_prior: tuple[float, float] = (1.0, 9.0)
    max_iter: int = 500
    tol: float = 1e-7
    num_samples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        # checked here, so that the constructor and set_params (which builds a fresh instance) refuse a bad setting
        # at once, naming it; the fit checks again, for a setting assigned directly
        self._check_settings()

    # -- fitting --------------------------------------------------------------------------------------------------

    def fit(self, judgments: pd.DataFrame) -> "FirstErrorModel":
        """Fit on a step-judgments table (see :func:`accord.datasets.steps.validate_steps`)."""
        self._check_settings()
        encoded = encode_steps(judgments)  # kept as encoded_ with the other fitted attributes, once the fit is done
        keep = _kept(encoded) if self.truncate_after_flag else np.ones(encoded.n_judgments, dtype=bool)
        layout = _Layout.build(encoded, keep)
        self._warn_unidentified(encoded)
        n_labels = encoded.n_labels
        label_prior = label_anchor = self._initial_label_prior(n_labels, encoded.error_code)
        hazard_prior = hazard_anchor = torch.tensor([list(self.hazard_prior)], dtype=torch.float64)  # [1, 2]

        # VB-EM finds a local optimum of the bound, and from the per-step flag shares alone it can settle where the
        # raters' first flags are read as first errors of low sensitivity (on 300-step solutions with 2% false flags,
        # 0.11 of the first errors found against majority vote's 0.79, at a bound 19 nats below the one it reaches
        # from the truth). So it also starts from the first step a majority of all the labels flags, and keeps that
        # fit only where its bound is clearly higher: on data where both starts reach one optimum, the first's stands
        runs = [self._vb_em(layout, encoded, start, label_prior, hazard_prior, label_anchor, hazard_anchor)
                for start in (layout.initial_q(encoded, keep), layout.majority_q(encoded))]
        best = runs[0]
        if runs[1][3][-1] > best[3][-1] + max(1.0, 1e-6 * abs(best[3][-1])):
            best = runs[1]
        q, theta_alpha, hazard_alpha, history, label_prior, hazard_prior, iteration, converged = best
        self.encoded_ = encoded
        self._theta_alpha, self._hazard_alpha, self._layout, self._q = theta_alpha, hazard_alpha, layout, q
        self.label_prior_ = pd.DataFrame(label_prior.numpy(), index=list(STATES), columns=list(encoded.label_values))
        self.hazard_prior_ = (float(hazard_prior[0, 0]), float(hazard_prior[0, 1]))
        self.elbo_history_ = history
        self.elbo_ = history[-1]
        self.n_iter_ = iteration
        self.converged_ = converged
        if not converged:  # as every other model says it: the step labels below were silently unfinished
            warnings.warn(f"{type(self).__name__}: VB-EM stopped at max_iter={self.max_iter} iterations before it "
                          f"converged (tol={self.tol}); raise max_iter and check the step labels", ConvergenceWarning,
                          stacklevel=2)
        self.step_labels_ = self._step_labels(encoded, layout)
        self.annotators_ = self._annotator_table(encoded, keep, layout, q)
        self.hazard_ = self._hazard_table(layout, q)
        return self

    def _vb_em(self, layout: "_Layout", encoded: EncodedSteps, q: torch.Tensor, label_prior: torch.Tensor,
               hazard_prior: torch.Tensor, label_anchor: torch.Tensor, hazard_anchor: torch.Tensor) -> tuple:
        """VB-EM from the posterior ``q``: ``(q, theta_alpha, hazard_alpha, history, label_prior, hazard_prior,
        iterations, converged)``."""
        n_labels = encoded.n_labels
        history: list[float] = []
        converged = False
        for iteration in range(1, self.max_iter + 1):
            counts, hazard_counts = layout.expected_counts(q, encoded.n_workers, n_labels)
            if self.empirical_prior:
                label_prior = fit_polya_prior(counts, label_prior, label_anchor, _PRIOR_STEPS)
                hazard_prior = fit_polya_prior(hazard_counts[:, None, :], hazard_prior, hazard_anchor, _PRIOR_STEPS)
            theta_alpha = label_prior + counts
            hazard_alpha = hazard_prior + hazard_counts
            log_theta = dirichlet_expected_log(theta_alpha)
            log_hazard = dirichlet_expected_log(hazard_alpha)
            scores = layout.scores(log_theta, log_hazard[:, 0], log_hazard[:, 1])
            log_z = layout.log_normalizer(scores)
            new_q = torch.exp(scores - log_z[layout.cell_solution])
            elbo = float(log_z.sum() - _dirichlet_kl(theta_alpha, label_prior).sum()
                         - _dirichlet_kl(hazard_alpha, hazard_prior[0]).sum())
            if self.empirical_prior:  # the objective of type-II MAP: the bound plus the log hyperprior
                elbo += float(log_hyperprior(label_prior, label_anchor).sum()
                              + log_hyperprior(hazard_prior, hazard_anchor).sum())
            if not math.isfinite(elbo):
                raise FitError("first-error model: the evidence lower bound is not finite (degenerate labels?)")
            q = new_q
            if history and elbo - history[-1] < self.tol * abs(elbo):
                history.append(elbo)
                converged = True
                break
            history.append(elbo)
        return q, theta_alpha, hazard_alpha, history, label_prior, hazard_prior, iteration, converged

    def _warn_unidentified(self, encoded: EncodedSteps) -> None:
        """Warn where the raters' first flags are more likely false than true (see the class's *Identifiability*)."""
        false_flags, share_false, continued = _false_flags_before_first_error(encoded)
        if not share_false > 0.5 or (continued > 0.5 and not self.truncate_after_flag):
            return
        said = (f"FirstErrorModel: the raters' first flags are more likely false than true: about {false_flags:.2g} "
                f"false flags per rater and solution come before its first wrong step (the share of correct steps "
                f"flagged, times the steps before the first one a majority flags), so {share_false:.0%} of the first "
                "flags are expected to be false")
        if continued > 0.5:
            said += (f"; {continued:.0%} of the labels after a rater's first flag do not flag, so the raters went on "
                     "labelling, and truncate_after_flag=True leaves out the labels that locate the first error: fit "
                     "with truncate_after_flag=False")
        else:
            said += ("; the labels after a rater's first flag flag every later step or are missing, so these labels "
                     "do not locate the first error (majority vote neither): more raters per solution, or shorter "
                     "solutions")
        warnings.warn(said, stacklevel=3)

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        """Fit and return the most probable first-error position of each solution (``T`` = no error)."""
        return self.fit(judgments).step_labels_.most_likely_first_error()

    # -- pieces ---------------------------------------------------------------------------------------------------

    def _check_settings(self) -> None:
        check_switches(self)  # truncate_after_flag="no" or empirical_prior="false" was truthy: the part stayed on
        # a number, None or a text had no len() or compared with a str: raw TypeErrors that named no setting
        flag = self.prior_flag
        if (not is_numbers(flag, 3)
                or not all(isinstance(p, numbers.Real) and not isinstance(p, bool) and 0 < p < 1 for p in flag)):
            raise AccordError(f"prior_flag must hold three probabilities in (0, 1), got {self.prior_flag!r}")
        if not is_numbers(self.hazard_prior, 2):
            raise AccordError(f"hazard_prior must be the two shapes of a Beta prior, got {self.hazard_prior!r}")
        check_positive(self, "prior_strength", "hazard_prior", "tol")
        # tested as the good case, naming the setting: None (or 2.5) was a raw TypeError from the comparison (or
        # from range() in the fit)
        for name, least in (("max_iter", 1), ("num_samples", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise AccordError(f"{name} must be a whole number >= {least}, not {value!r}")
        # None or "a" failed in torch.manual_seed only after the VB-EM loop, and 2.5 or True were taken as 2 and 1
        check_seed(self.seed)

    def _initial_label_prior(self, n_labels: int, error_code: int) -> torch.Tensor:
        flag = torch.tensor(self.prior_flag, dtype=torch.float64)[:, None]
        rows = ((1.0 - flag) / (n_labels - 1)).expand(3, n_labels).clone()
        rows[:, error_code] = flag[:, 0]
        return rows * self.prior_strength

    def _step_labels(self, encoded: EncodedSteps, layout: "_Layout") -> StepLabels:
        if self.num_samples == 0:
            mean_q, sd_q = self._q, torch.full_like(self._q, float("nan"))
            mean_c = 1.0 - layout.cdf(self._q)[layout.cell_of_step]
            sd_c = torch.full_like(mean_c, float("nan"))
        else:
            mean_q, sd_q, mean_c, sd_c = self._posterior_draws(layout, encoded.worker_index)
        n_judgments = np.bincount(encoded.step_cells, minlength=int(encoded.n_steps.sum()))
        steps = pd.DataFrame({"p_correct": mean_c.clamp(0, 1).numpy(), "uncertainty": sd_c.numpy(),
                              "n_judgments": n_judgments}, index=encoded.step_index())
        first_error = pd.DataFrame({"p_first_error": mean_q.numpy(), "uncertainty": sd_q.numpy()},
                                   index=position_index(encoded.solution_index, encoded.n_steps))
        return StepLabels(steps=steps, first_error=first_error, method=self.method)

    def _posterior_draws(self, layout: "_Layout", workers: pd.Index) -> tuple[torch.Tensor, ...]:
        """Mean and sd over draws of ``(theta, h) ~ q`` of the exact posterior of ``tau`` and of P(step correct).
        Each rater's ``theta`` is drawn in the order of the raters' ids (:func:`_id_order`), not of their first rows:
        the soft labels (up to 0.06 apart at 200 draws) and the first errors depended on the order of the rows."""
        order, back = _id_order(workers)
        width = max(3 * layout.n_judgments, layout.n_cells, 1)
        block = max(1, min(self.num_samples, _DRAW_BUDGET // width))
        sums = [torch.zeros(layout.n_cells, dtype=torch.float64) for _ in range(2)]
        step_sums = [torch.zeros(layout.n_step_cells, dtype=torch.float64) for _ in range(2)]
        theta = torch.distributions.Dirichlet(self._theta_alpha[order])
        hazard = torch.distributions.Dirichlet(self._hazard_alpha)
        tiny = torch.finfo(torch.float64).tiny
        done = 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            while done < self.num_samples:
                n = min(block, self.num_samples - done)
                log_theta = theta.sample((n,))[:, back].clamp_min(tiny).log()
                log_hazard = hazard.sample((n,)).clamp_min(tiny).log()
                scores = layout.scores(log_theta, log_hazard[..., 0], log_hazard[..., 1])
                q = torch.exp(scores - layout.log_normalizer(scores)[..., layout.cell_solution])
                correct = 1.0 - layout.cdf(q)[..., layout.cell_of_step]
                for total, values in ((sums, q), (step_sums, correct)):
                    total[0] += values.sum(0)
                    total[1] += (values * values).sum(0)
                done += n
        mean_q, mean_c = sums[0] / done, step_sums[0] / done
        sd_q = (sums[1] / done - mean_q**2).clamp_min(0).sqrt()
        sd_c = (step_sums[1] / done - mean_c**2).clamp_min(0).sqrt()
        return mean_q, sd_q, mean_c, sd_c

    def _annotator_table(self, encoded: EncodedSteps, keep: np.ndarray, layout: "_Layout",
                         q: torch.Tensor) -> pd.DataFrame:
        order, back = _id_order(encoded.worker_index)  # drawn in the order of the ids, as _posterior_draws
        alpha = self._theta_alpha[order]  # [W, 3, L]
        e = encoded.error_code
        # the flag probability of a Dirichlet row is Beta(alpha_e, sum(alpha) - alpha_e)
        flag = torch.distributions.Beta(alpha[..., e], alpha.sum(-1) - alpha[..., e])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 1)
            p_flag = flag.sample((max(self.num_samples, 200),))[:, back]  # [S, W, 3]
        state_counts = layout.state_counts(q, encoded.n_workers)  # [W, 3]
        share = state_counts / state_counts.sum(-1, keepdim=True).clamp_min(1e-12)
        quantities = {
            "sensitivity": p_flag[..., 1],
            "sensitivity_after": p_flag[..., 2],
            "specificity": 1.0 - p_flag[..., 0],
        }
        quantities["reliability"] = (share[None, :, 0] * quantities["specificity"]
                                     + share[None, :, 1] * quantities["sensitivity"]
                                     + share[None, :, 2] * quantities["sensitivity_after"])
        quantities["spam"] = 1.0 - (quantities["sensitivity"] + quantities["specificity"] - 1.0).abs()
        columns: dict[str, np.ndarray] = {
            "n_judgments": np.bincount(encoded.workers, minlength=encoded.n_workers),
            "n_used": np.bincount(encoded.workers[keep], minlength=encoded.n_workers),
        }
        for name, draws in quantities.items():
            lower, upper = quantiles_90(draws, dim=0)
            columns[name] = draws.mean(0).numpy()
            columns[f"{name}_lower"] = lower.numpy()
            columns[f"{name}_upper"] = upper.numpy()
        return pd.DataFrame(columns, index=encoded.worker_index)

    def _hazard_table(self, layout: "_Layout", q: torch.Tensor) -> pd.DataFrame:
        alpha = self._hazard_alpha
        at_risk = layout.at_risk(q)
        return pd.DataFrame({"hazard": (alpha[:, 0] / alpha.sum(-1)).numpy(), "at_risk": at_risk.numpy()},
                            index=pd.RangeIndex(len(alpha), name="position"))


# -- the data layout and the E/M-steps --------------------------------------------------------------------------


def _kept(encoded: EncodedSteps) -> np.ndarray:
    """Each (solution, rater)'s labels up to and including its first flag."""
    key = encoded.solutions * encoded.n_workers + encoded.workers
    codes, inverse = np.unique(key, return_inverse=True)
    first_flag = np.full(len(codes), np.iinfo(np.int64).max)
    np.minimum.at(first_flag, inverse[encoded.flags], encoded.steps[encoded.flags])
    return encoded.steps <= first_flag[inverse]


@dataclass
class _Layout:
    """Positions ``0..T_i`` of every solution laid out flat (``cells``), and the used judgments mapped onto them.

    Solution ``i`` owns cells ``offsets[i] .. offsets[i] + T_i``; cell ``offsets[i] + t`` stands for ``tau_i = t``
    and, for ``t < T_i``, also for step ``t`` (whose labels are summed there).
    """

    cell_solution: torch.Tensor  # [C]
    cell_position: torch.Tensor  # [C]
    is_step: torch.Tensor  # [C] position < T_i
    offsets: torch.Tensor  # [I]
    ends: torch.Tensor  # [I] the last cell (tau = T_i) of each solution
    judgment_cell: torch.Tensor  # [N] cell of each used judgment's step
    theta_index: torch.Tensor  # [N, 3] flat index of (worker, state, label) into [W, 3, L]
    workers: torch.Tensor  # [N]
    cell_of_step: torch.Tensor  # [total steps] the cell of each step, in step order
    n_positions: int

    @classmethod
    def build(cls, encoded: EncodedSteps, keep: np.ndarray) -> "_Layout":
        n_steps = torch.as_tensor(encoded.n_steps)
        size = n_steps + 1
        offsets = torch.cumsum(size, 0) - size
        n_cells = int(size.sum())
        cell_solution = torch.repeat_interleave(torch.arange(len(size)), size)
        cell_position = torch.arange(n_cells) - offsets[cell_solution]
        solutions = torch.as_tensor(encoded.solutions[keep])
        steps = torch.as_tensor(encoded.steps[keep])
        workers = torch.as_tensor(encoded.workers[keep])
        labels = torch.as_tensor(encoded.labels[keep])
        states = torch.arange(3)
        theta_index = (workers[:, None] * 3 + states) * encoded.n_labels + labels[:, None]
        is_step = cell_position < n_steps[cell_solution]
        return cls(
            cell_solution=cell_solution, cell_position=cell_position, is_step=is_step, offsets=offsets,
            ends=offsets + n_steps, judgment_cell=offsets[solutions] + steps, theta_index=theta_index,
            workers=workers, cell_of_step=torch.nonzero(is_step).squeeze(-1),
            n_positions=int(n_steps.max()),
        )

    @property
    def n_cells(self) -> int:
        return len(self.cell_solution)

    @property
    def n_step_cells(self) -> int:
        return len(self.cell_of_step)

    @property
    def n_judgments(self) -> int:
        return len(self.judgment_cell)

    def scores(self, log_theta: torch.Tensor, log_h: torch.Tensor, log_not_h: torch.Tensor) -> torch.Tensor:
        """Unnormalised ``log p(tau_i = t, y_i)`` for every cell; any leading batch dimensions (posterior draws).

        ``log_theta`` is ``[..., W, 3, L]``, ``log_h`` / ``log_not_h`` are ``[..., P]``.
        """
        batch = log_theta.shape[:-3]
        per_state = log_theta.reshape(*batch, -1)[..., self.theta_index]  # [..., N, 3]
        totals = torch.zeros(*batch, 3, self.n_cells, dtype=log_theta.dtype)
        totals.index_add_(-1, self.judgment_cell, per_state.movedim(-1, -2))
        correct, first, after = totals.unbind(-2)
        before = self._exclusive_cumsum(correct)  # labels of steps s < t, read as correct
        cumulative_after = torch.cumsum(after, -1)
        later = cumulative_after[..., self.ends][..., self.cell_solution] - cumulative_after  # steps s > t
        # prior: sum_{s<t} log(1 - h_s) + log h_t (t < T_i); position-wise, then gathered per cell
        survive = torch.cat([torch.zeros(*batch, 1, dtype=log_not_h.dtype), torch.cumsum(log_not_h, -1)], -1)
        prior = survive[..., self.cell_position]
        step_positions = self.cell_position.clamp_max(self.n_positions - 1)
        prior = prior + torch.where(self.is_step, log_h[..., step_positions], torch.zeros_like(prior))
        return prior + before + first + later

    def _exclusive_cumsum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of ``values`` over the earlier cells of the same solution (vectorized over solutions)."""
        total = torch.cumsum(values, -1)
        exclusive = total - values
        return exclusive - exclusive[..., self.offsets][..., self.cell_solution]

    def cdf(self, q: torch.Tensor) -> torch.Tensor:
        """``P(tau_i <= t)`` per cell from ``q(tau_i = t)``."""
        return self._exclusive_cumsum(q) + q

    def log_normalizer(self, scores: torch.Tensor) -> torch.Tensor:
        """``log sum_t exp(scores)`` per solution (segment log-sum-exp)."""
        batch = scores.shape[:-1]
        index = self.cell_solution.expand(*batch, -1)
        n_solutions = len(self.offsets)
        peak = torch.full((*batch, n_solutions), -torch.inf, dtype=scores.dtype)
        peak = peak.scatter_reduce(-1, index, scores, reduce="amax", include_self=True)
        shifted = torch.exp(scores - peak[..., self.cell_solution])
        total = torch.zeros((*batch, n_solutions), dtype=scores.dtype).index_add_(-1, self.cell_solution, shifted)
        return peak + total.log()

    def state_probabilities(self, q: torch.Tensor) -> torch.Tensor:
        """``[N, 3]``: P(each used judgment's step is correct / the first error / after the first error)."""
        cdf = self.cdf(q)[self.judgment_cell]
        at = q[self.judgment_cell]
        return torch.stack([(1.0 - cdf).clamp_min(0), at, (cdf - at).clamp_min(0)], -1)

    def expected_counts(self, q: torch.Tensor, n_workers: int, n_labels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Expected label counts ``[W, 3, L]`` per rater and state, and hazard counts ``[P, 2]`` per position
        (solutions whose first error is there, solutions whose step there is correct), under ``q(tau)``."""
        counts = torch.zeros(n_workers * 3 * n_labels, dtype=q.dtype)
        counts.index_add_(0, self.theta_index.reshape(-1), self.state_probabilities(q).reshape(-1))
        steps = self.is_step
        position = self.cell_position[steps]
        events = torch.zeros(self.n_positions, dtype=q.dtype).index_add_(0, position, q[steps])
        survived = torch.zeros(self.n_positions, dtype=q.dtype).index_add_(
            0, position, (1.0 - self.cdf(q)[steps]).clamp_min(0))
        return counts.reshape(n_workers, 3, n_labels), torch.stack([events, survived], -1)

    def state_counts(self, q: torch.Tensor, n_workers: int) -> torch.Tensor:
        """Expected number of each rater's used labels in each state, ``[W, 3]``."""
        return torch.zeros(n_workers, 3, dtype=q.dtype).index_add_(0, self.workers, self.state_probabilities(q))

    def at_risk(self, q: torch.Tensor) -> torch.Tensor:
        """Expected number of solutions whose steps before ``t`` are all correct, per position ``t``."""
        steps = self.is_step
        reach = (1.0 - self.cdf(q) + q)[steps]  # P(tau >= t)
        return torch.zeros(self.n_positions, dtype=q.dtype).index_add_(0, self.cell_position[steps], reach)

    def initial_q(self, encoded: EncodedSteps, keep: np.ndarray) -> torch.Tensor:
        """Starting posterior: each step wrong independently with its (smoothed) share of flags among the used
        labels."""
        flags, total = self._flag_counts(encoded, keep)
        return self._q_of_step_shares((flags + 0.5) / (total + 1.0))

    def majority_q(self, encoded: EncodedSteps) -> torch.Tensor:
        """Second starting posterior: the first error at the first step that a majority of all its labels flags
        (labels after a rater's first flag included), each other step wrong with a small probability."""
        flags, total = self._flag_counts(encoded, np.ones(len(encoded.flags), dtype=bool))
        return self._q_of_step_shares(torch.where(2 * flags > total, 0.9, 0.01).to(torch.float64))

    @staticmethod
    def _flag_counts(encoded: EncodedSteps, keep: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Each step's number of flags and of labels among the judgments ``keep`` marks."""
        cells = torch.as_tensor(encoded.step_cells[keep])
        n_step_cells = int(encoded.n_steps.sum())
        flags = torch.zeros(n_step_cells, dtype=torch.float64).index_add_(
            0, cells, torch.as_tensor(encoded.flags[keep], dtype=torch.float64))
        total = torch.zeros(n_step_cells, dtype=torch.float64).index_add_(
            0, cells, torch.ones(len(cells), dtype=torch.float64))
        return flags, total

    def _q_of_step_shares(self, share: torch.Tensor) -> torch.Tensor:
        """The posterior over each solution's first error when each step is wrong independently with ``share``."""
        log_flag = torch.zeros(self.n_cells, dtype=torch.float64)
        log_pass = torch.zeros(self.n_cells, dtype=torch.float64)
        log_flag[self.cell_of_step] = share.log()
        log_pass[self.cell_of_step] = (1.0 - share).log()
        scores = self._exclusive_cumsum(log_pass) + log_flag
        return torch.exp(scores - self.log_normalizer(scores)[self.cell_solution])


def _id_order(ids: pd.Index) -> tuple[torch.Tensor, torch.Tensor]:
    """The raters sorted by id (``order``: their positions in ``ids``) and each one's place in that order
    (``back``): per-rater draws made in this order and read back with ``back`` do not depend on the order of the
    rows, which sets the order of ``ids``."""
    order = np.argsort(np.asarray(ids.astype(str)), kind="stable")
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return torch.from_numpy(order), torch.from_numpy(back)


def _false_flags_before_first_error(encoded: EncodedSteps) -> tuple[float, float, float]:
    """Read from the labels, no fit: the expected number of false flags a rater gives on a solution before its
    first wrong step, ``lambda = r * m`` (``m``: the mean number of steps before the first step a majority of all
    the labels flags, ``T`` where none is; ``r``: the share of the raters' labels on those steps that flag, up to
    each rater's first flag, at its one-sided 95% lower bound), the share of first flags then expected to be false,
    ``1 - exp(-lambda)``, and the share of the labels after a rater's first flag that do not flag (the raters went
    on labelling)."""
    n_steps = np.asarray(encoded.n_steps)
    cells = encoded.step_cells
    n_cells = int(n_steps.sum())
    flags = np.bincount(cells, weights=encoded.flags.astype(float), minlength=n_cells)
    total = np.bincount(cells, minlength=n_cells)
    cell_solution = np.repeat(np.arange(len(n_steps)), n_steps)
    position = np.arange(n_cells) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
    majority = np.flatnonzero(2 * flags > total)
    first_majority = n_steps.copy()
    np.minimum.at(first_majority, cell_solution[majority], position[majority])
    key = encoded.solutions * encoded.n_workers + encoded.workers
    codes, inverse = np.unique(key, return_inverse=True)
    first_flag = np.full(len(codes), np.iinfo(np.int64).max)
    np.minimum.at(first_flag, inverse[encoded.flags], encoded.steps[encoded.flags])
    steps, own_first = encoded.steps, first_flag[inverse]
    before = steps < first_majority[encoded.solutions]
    exposed = before & (steps <= own_first)
    events = float(encoded.flags[exposed].sum())
    # the one-sided 95% lower bound of the rate (Poisson count of flags over the labels exposed), so that a small
    # table's few flags do not read as many
    rate = max(events - 1.645 * math.sqrt(events), 0.0) / max(int(exposed.sum()), 1)
    false_flags = rate * float(first_majority.mean())
    after = steps > own_first
    continued = float((~encoded.flags[after]).mean()) if after.any() else 0.0
    return false_flags, 1.0 - math.exp(-false_flags), continued

def _dirichlet_kl(alpha: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``KL(Dirichlet(alpha) || Dirichlet(prior))`` along the last axis (prior broadcast)."""
    prior = prior.expand_as(alpha)
    a0, b0 = alpha.sum(-1), prior.sum(-1)
    return (torch.lgamma(a0) - torch.lgamma(alpha).sum(-1) - torch.lgamma(b0) + torch.lgamma(prior).sum(-1)
            + ((alpha - prior) * dirichlet_expected_log(alpha)).sum(-1))
