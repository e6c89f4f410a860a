"""GLAD: Generative model of Labels, Abilities and Difficulties (Whitehill, Ruvolo, Wu, Bergsma & Movellan, 2009)."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError, Encoded
from accord.models._data import PaddedJudgments, vote_fractions
from accord.models.base import ConvergenceWarning, check_positive, interval_columns, is_numbers
from accord.models.enumerated import Draws, EnumeratedRaterModel, per_judgment


#: quadrature points per parameter for an unseen annotator or item (:meth:`GLAD._new_slot_points`)
POPULATION_POINTS = 8


def glad_label_logits(ability: torch.Tensor, beta: torch.Tensor, true: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[..., K]`` log-probabilities of each label given the true class under GLAD.

    ``log P(y = t) = log sigmoid(alpha beta)`` and, for each of the other ``K - 1`` classes,
    ``log P(y = k) = log sigmoid(-alpha beta) - log(K - 1)``. ``ability`` and ``beta`` are each judgment's
    annotator ability (on items of the true class: :math:`\\alpha_j + \\delta_{jt}`) and item inverse difficulty
    (broadcastable); ``true`` the true class (the enumerated ``[K, 1, 1]`` in the model).
    """
    x = (ability * beta)[..., None]
    right = torch.nn.functional.logsigmoid(x)
    wrong = torch.nn.functional.logsigmoid(-x) - math.log(max(n_classes - 1, 1))
    is_true = true.long()[..., None] == torch.arange(n_classes, device=x.device)
    return torch.where(is_true, right, wrong)


def one_coin_em(encoded: Encoded, start: np.ndarray, *, n_iter: int = 50,
                prior: tuple[float, float] = (2.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """EM for the one-coin model (each annotator right with probability ``p_j``, errors uniform over the other
    classes): GLAD with every item equally hard. Returns ``(p [annotators], item posteriors [items, K])``.

    Used as GLAD's starting point: started from vote fractions it settles on the labelling the majority points
    to, which is what keeps GLAD's gradient fit away from the flipped mode (negated abilities, every label
    switched), a mode of equal likelihood when two classes are symmetric. ``prior`` is a Beta(a, b) on ``p_j``.
    """
    items, workers, labels = encoded.items, encoded.workers, encoded.labels
    n_items, n_workers, k = encoded.n_items, encoded.n_workers, encoded.n_classes
    q = np.asarray(start, dtype=float)
    n_judged = np.bincount(workers, minlength=n_workers)
    a, b = prior
    p = np.full(n_workers, 0.7)
    for _ in range(n_iter):
        right = np.bincount(workers, weights=q[items, labels], minlength=n_workers)
        p = np.clip((right + a - 1.0) / (n_judged + a + b - 2.0), 1e-3, 1.0 - 1e-3)
        log_right = np.log(p)
        log_wrong = np.log1p(-p) - math.log(max(k - 1, 1))
        # every judgment adds log_wrong to all classes and (log_right - log_wrong) to its own label
        scores = np.zeros((n_items, k))
        np.add.at(scores, (items, labels), (log_right - log_wrong)[workers])
        scores -= scores.max(axis=1, keepdims=True)
        new_q = np.exp(scores)
        new_q /= new_q.sum(axis=1, keepdims=True)
        done = np.abs(new_q - q).max() < 1e-6
        q = new_q
        if done:
            break
    return p, q


class GLAD(EnumeratedRaterModel):
    r"""GLAD: annotator ability times item difficulty (Whitehill et al., 2009), Bayesian, K classes, with an
    annotator's ability allowed to differ by true class (Raykar et al.'s two-coin annotator, 2010).

    Model (annotator :math:`j`, item :math:`i`, judgment label :math:`y_{ij}`, :math:`K` classes)

    .. math::

        \alpha_j &\sim \mathcal N(\mu_\alpha, \sigma_\alpha)         &&\text{ability; } < 0 \text{ adversarial} \\
        \delta_{jk} &\sim \mathcal N(0, \sigma_\delta)              &&\text{ability's offset on items of class } k \\
        \beta_i &\sim \mathrm{LogNormal}(\mu_\beta, \sigma_\beta)   &&\text{inverse difficulty, } 1/\beta_i
            \text{ the difficulty} \\
        \pi &\sim \mathrm{Dirichlet}(c \mathbf 1_K)                 &&\text{class prior (or fixed uniform)} \\
        t_i &\sim \mathrm{Categorical}(\pi)                         &&\text{true class, enumerated out} \\
        P(y_{ij} = t_i) &= \sigma((\alpha_j + \delta_{j t_i}) \beta_i), \qquad
        P(y_{ij} = k) = \frac{1 - \sigma((\alpha_j + \delta_{j t_i}) \beta_i)}{K - 1} \quad (k \ne t_i)

    :math:`\alpha_j = 0` is guessing, :math:`\alpha_j \to \infty` always right, :math:`\alpha_j < 0` more often wrong
    than guessing; :math:`\beta_i \to 0` makes item :math:`i` a guess for everyone. The priors break the scale
    symmetry :math:`(\alpha c, \beta / c)`; the default :math:`\alpha \sim \mathcal N(1, 1)` also prefers the
    honest labelling to the flipped one, and the start from vote fractions (``init="vote"``: the one-coin EM,
    :func:`one_coin_em`) keeps the fit there even when the ability prior is symmetric. With two classes a fit that
    still lands in the flipped mode (most judgments from annotators of negative ability) is negated back, with a
    :class:`~accord.models.base.ConvergenceWarning`; so is a fit that stops at ``max_steps`` unconverged.
    With :math:`\sigma_\delta = 0` (``class_ability_scale=0``) this is Whitehill et al.'s GLAD, whose errors are
    symmetric in the classes: where annotators are right far more often on one class than on another (a crowd that
    says "no" when unsure), it weighs them wrongly and can fall below majority vote. The class offsets
    :math:`\delta_{jk}` give each annotator a sensitivity and a specificity, as in the two-coin model of Raykar et
    al. (2010), on top of GLAD's item difficulty; their prior shrinks an annotator with few judgments towards
    symmetric errors. The class offsets and the learned class prior come as a pair: with offsets but a fixed
    uniform prior, a skewed class balance is read as annotators who favour the majority class. The defaults
    (``class_ability_scale``, ``class_prior``) were chosen leave-one-dataset-out (``benchmarks/aggregation.py
    --loso``). Under ``inference="map"`` the learned class prior is a point estimate, which on a handful of items
    can settle on one class: there, use the default ``"meanfield"`` or ``class_prior=None``.

    Inference (``inference=``): ``"meanfield"`` (default), ``"map"``, ``"lowrank"`` (SVI on the Pyro model with
    ``TraceEnum_ELBO``, the true class enumerated, the guide over :math:`\alpha`, :math:`\log\beta` and :math:`\pi`;
    ``batch_size`` subsamples items, the item difficulties being local to the item plate) or ``"nuts"`` (small data).
    There is no closed form.

    Parameters
    ----------
    ability_prior
        :math:`(\mu_\alpha, \sigma_\alpha)`. ``(1, 1)``: an annotator is believed better than guessing
        (:math:`\sigma(1) = 0.73` right on an average binary item), as in Whitehill et al.
    log_beta_prior
        :math:`(\mu_\beta, \sigma_\beta)` of the log inverse difficulty. ``(0, 1)``: a typical item has
        :math:`\beta = 1`; 90% of items within a factor 5 of it.
    class_ability_scale
        :math:`\sigma_\delta`, the prior scale of an annotator's ability offset on items of each class; ``0``:
        symmetric errors (Whitehill et al.'s GLAD).
    init
        ``"vote"`` (abilities from the one-coin EM started at vote fractions, difficulties at the prior median),
        ``"uniform"`` (the prior median: the symmetric point when the ability prior has mean 0), ``"random"``
        (random abilities; only to show what ``"vote"`` guards against).
    Others: :class:`~accord.models.enumerated.EnumeratedRaterModel`, :class:`~accord.models.base.PyroRaterModel`.

    Fitted attributes: ``soft_labels_``; ``annotators_``, the common columns on an item of median difficulty
    (``position_bias`` NaN: GLAD has none), ``ability`` (:math:`\alpha_j`, with its interval) and, with class
    offsets, ``ability_<class>`` (:math:`\alpha_j + \delta_{jk}`, posterior mean);
    ``item_difficulty_`` (per item ``difficulty`` = :math:`1/\beta_i`, posterior mean, with 90% bounds,
    and ``n_judgments``); ``class_prior_``; ``svi_``; ``n_divergences_`` (NUTS).

    Example
    -------
    >>> import pandas as pd
    >>> from accord.models.glad import GLAD
    >>> judgments = pd.DataFrame({
    ...     "pair_id":   ["p1", "p1", "p1", "p2", "p2", "p2", "p3", "p3", "p3"],
    ...     "annotator": ["ann", "bob", "cid", "ann", "bob", "cid", "ann", "bob", "cid"],
    ...     "label":     ["A", "A", "B", "B", "B", "B", "A", "A", "B"],
    ... })
    >>> model = GLAD(max_steps=200, seed=0).fit(judgments)
    >>> model.soft_labels_.hard().tolist()
    ['A', 'B', 'A']
    >>> list(model.item_difficulty_.columns)
    ['difficulty', 'difficulty_lower', 'difficulty_upper', 'n_judgments']

    References
    ----------
    Jacob Whitehill, Paul Ruvolo, Tingfan Wu, Jacob Bergsma and Javier Movellan (2009). Whose Vote Should Count
    More: Optimal Integration of Labels from Labelers of Unknown Expertise. *Advances in Neural Information
    Processing Systems 22*, 2035-2043.

    Vikas C. Raykar, Shipeng Yu, Linda H. Zhao, Gerardo Hermosillo Valadez, Charles Florin, Luca Bogoni and Linda
    Moy (2010). Learning From Crowds. *Journal of Machine Learning Research* 11, 1297-1322.
    """

    method: ClassVar[str] = "glad"
    supported_inference: ClassVar[tuple[str, ...]] = ("map", "meanfield", "lowrank", "nuts")
    # delta_jk is the offset on pairs of *true* class k: the latent class's dim, as theta's rows (not "class", the
    # reported label's)
    _site_dims: ClassVar[dict[str, tuple[str, ...]]] = {"ability": ("annotator",),
                                                         "class_ability": ("annotator", "true_class"),
                                                         "beta": ("pair_id",)}
    _local_sites: ClassVar[tuple[str, ...]] = ("beta",)

    models_position_bias: ClassVar[bool] = False

    ability_prior: tuple[float, float] = (1.0, 1.0)
    log_beta_prior: tuple[float, float] = (0.0, 1.0)
    class_ability_scale: float = 2.0
    class_prior: float | None = 1.0

    @property
    def _global_sites(self) -> dict[str, tuple[str, ...]]:
        sites = super()._global_sites
        return sites if self.class_ability_scale > 0 else {k: v for k, v in sites.items() if k != "class_ability"}

    def _check_settings(self, encoded: Encoded) -> None:
        super()._check_settings(encoded)
        for name in ("ability_prior", "log_beta_prior"):  # (location, scale) of a normal
            value = getattr(self, name)
            # a bare number or a string failed to unpack, or to compare, with Python's raw TypeError
            real = is_numbers(value, 2) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
            if not (real and math.isfinite(value[0]) and 0 < value[1] < math.inf):
                raise AccordError(f"{name} must be (a finite location, a finite scale > 0), not {value!r}")
        check_positive(self, "class_ability_scale", zero=True)
        if self.class_ability_scale > 0:
            # annotators_ holds each class's ability as ability_<class> beside the interval of the ability: a class
            # 'lower' or 'upper' silently replaced ability_lower or ability_upper (an interval that missed its mean)
            for name in encoded.classes:
                if f"ability_{name}" in ("ability_lower", "ability_upper"):
                    raise AccordError(f"class {name!r} gives the annotator column 'ability_{name}' (its class "
                                      f"ability), which holds an end of the ability's interval: rename the class, or "
                                      "set class_ability_scale=0 (one ability per annotator)")

    def _model(self, data: PaddedJudgments, batch_size: int | None = None) -> None:
        import pyro
        import pyro.distributions as dist

        device = data.labels.device
        ability_prior = dist.Normal(*(torch.tensor(float(v), device=device) for v in self.ability_prior))
        beta_prior = dist.LogNormal(*(torch.tensor(float(v), device=device) for v in self.log_beta_prior))
        k = data.n_classes
        class_prior = self._sample_class_prior(k, device)
        with pyro.plate("annotator", data.n_workers, dim=-1):
            ability = pyro.sample("ability", ability_prior)
            if self.class_ability_scale > 0:
                offset = dist.Normal(torch.zeros(k, device=device), float(self.class_ability_scale)).to_event(1)
                class_ability = pyro.sample("class_ability", offset)
        subsample = batch_size if batch_size is not None and batch_size < data.n_items else None
        with pyro.plate("item", data.n_items, dim=-2, subsample_size=subsample, device=device) as idx:
            beta = pyro.sample("beta", beta_prior)  # [items, 1]
            true = pyro.sample("true_class", dist.Categorical(class_prior), infer={"enumerate": "parallel"})
            workers = data.workers[idx]
            with pyro.plate("judgment", data.max_judgments, dim=-1, device=device):
                judge_ability = per_judgment(ability, workers)
                if self.class_ability_scale > 0:  # the offset of the true class: [K, items, judgments]
                    on_true = torch.nn.functional.one_hot(true.long(), k).to(judge_ability.dtype)
                    judge_ability = judge_ability + (per_judgment(class_ability, workers, 1) * on_true).sum(-1)
                logits = glad_label_logits(judge_ability, beta, true, k)
                pyro.sample("label", dist.Categorical(logits=logits).mask(data.mask[idx]), obs=data.labels[idx])

    def _log_emission(self, params: Draws, workers: torch.Tensor, items: torch.Tensor,
                      labels: torch.Tensor) -> torch.Tensor:
        k = self.encoded_.n_classes
        ability = self._class_abilities(params)[:, workers].transpose(1, 2)  # [D, K, N]: per true class
        x = ability * params["beta"][:, None, items]
        right = torch.nn.functional.logsigmoid(x)
        wrong = torch.nn.functional.logsigmoid(-x) - math.log(max(k - 1, 1))
        is_label = labels[None, :] == torch.arange(k, device=labels.device)[:, None]  # [K, N]
        return torch.where(is_label[None], right, wrong)

    def _class_abilities(self, params: Draws) -> torch.Tensor:
        """``[D, W, K]``: each annotator's ability on items of each true class, :math:`\\alpha_j + \\delta_{jk}`."""
        ability = params["ability"][..., None]
        if "class_ability" in params:
            return ability + params["class_ability"]
        return ability.expand(*ability.shape[:-1], self.encoded_.n_classes)

    def _new_slot_points(self, params: Draws) -> list[tuple[float, Draws]]:
        """The fitted abilities' and inverse difficulties' quantiles at ``(q + 1/2) / Q``, ``Q`` =
        :data:`POPULATION_POINTS` each, every pair equally weighted: an unseen annotator is a random one of the
        fitted population, an unseen item a random one of the fitted items (the emission is not linear in them, so
        the mean would not do)."""
        levels = (torch.arange(POPULATION_POINTS, dtype=torch.float64) + 0.5) / POPULATION_POINTS
        quantiles = lambda v: torch.quantile(v.double(), levels.to(v.device), dim=1).to(v.dtype)  # noqa: E731
        beta = quantiles(params["beta"])  # [Q, D]
        # with class offsets, the quantiles of the ability on each class (the classes' quantiles taken together)
        ability = quantiles(self._class_abilities(params))  # [Q, D, K]
        weight = -2.0 * math.log(POPULATION_POINTS)
        points = []
        for a in ability:
            slot = {"ability": a[:, None, 0]}
            if "class_ability" in params:
                slot = {"ability": torch.zeros_like(a[:, None, 0]), "class_ability": a[:, None, :]}
            points += [(weight, {**slot, "beta": b[:, None]}) for b in beta]
        return points

    def _init_values(self, encoded: Encoded) -> Draws:
        device = self._torch_device
        dtype = torch.get_default_dtype()
        median_beta = math.exp(float(self.log_beta_prior[0]))
        values: Draws = {"beta": torch.full((encoded.n_items, 1), median_beta, dtype=dtype, device=device)}
        if self.init == "random":
            generator = torch.Generator().manual_seed(self.seed)
            values["ability"] = torch.randn(encoded.n_workers, generator=generator).to(device=device, dtype=dtype)
            if self.class_prior is not None:
                values["class_prior"] = torch.full((encoded.n_classes,), 1.0 / encoded.n_classes, device=device)
            return values
        accuracy, item_probs = one_coin_em(encoded, vote_fractions(encoded, 0.5))
        k = encoded.n_classes
        # sigma(alpha * beta) = P(right): alpha = logit(p) / beta at the median item; clipped because a perfect
        # record would send it to infinity
        ability = np.clip(np.log(accuracy) - np.log1p(-accuracy), -4.0, 4.0) / median_beta if k > 1 else accuracy
        values["ability"] = torch.as_tensor(ability, dtype=dtype, device=device)
        if self.class_ability_scale > 0:
            values["class_ability"] = torch.zeros((encoded.n_workers, k), dtype=dtype, device=device)
        if self.class_prior is not None:
            prior = (item_probs.sum(0) + self.class_prior) / (encoded.n_items + k * self.class_prior)
            values["class_prior"] = torch.as_tensor(prior, dtype=dtype, device=device)
        return values

    def _guard_label_switching(self) -> None:
        """With two classes, negating every ability and switching every label leaves the likelihood unchanged; a
        fit whose judgments come mostly from adversarial annotators (ability < 0, judgment-weighted, posterior
        mean) is taken to be that mirror and negated, with a warning. (The population being mostly adversarial is
        possible, but then no aggregate without gold can tell, and the honest reading is the one users expect.)
        Each NUTS chain is checked on its own: chains run apart and may settle in different modes, which cancel
        out in the pooled draws (soft labels of about 0.5, and nothing moved back)."""
        if self.encoded_.n_classes != 2:
            return
        chains = self._n_chains
        ability = self._class_abilities(self._draws).double()
        ability = ability.reshape(chains, -1, *ability.shape[1:]).mean((1, 3)).cpu().numpy()  # [chains, W]
        weight = np.bincount(self.encoded_.workers, minlength=self.encoded_.n_workers)
        mirrored = (weight * (ability < 0)).sum(1) > 0.5 * weight.sum()  # [chains]
        if not mirrored.any():
            return
        where = f" in {int(mirrored.sum())} of its {chains} chains" if chains > 1 else ""
        warnings.warn(f"GLAD: the fit landed in the mirror mode{where} (most judgments from annotators with negative "
                      "ability, every label switched); its abilities were negated", ConvergenceWarning, stacklevel=5)
        # the mirror of an ability is its negation, of class k's offset the other class's, of the class prior its flip
        mirrors = {"ability": lambda v: -v, "class_ability": lambda v: -v.flip(-1),
                   "class_prior": lambda v: v.flip(-1)}
        flip = torch.as_tensor(mirrored, device=self._torch_device).repeat_interleave(self._n_draws // chains)
        for name, mirror in mirrors.items():
            if name in self._draws:
                value = self._draws[name]
                self._draws[name] = torch.where(flip.view(-1, *([1] * (value.dim() - 1))), mirror(value), value)

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        """On an item of median difficulty: ``P(right | true k) = sigmoid((alpha_j + delta_jk) beta)``, errors
        uniform over the rest."""
        k = self.encoded_.n_classes
        typical_beta = self._draws["beta"].median(dim=1).values[:, None, None]  # [D, 1, 1]
        right = torch.sigmoid(self._class_abilities(self._draws)[:, lo:hi] * typical_beta)[..., None]  # [D, W, K, 1]
        eye = torch.eye(k, dtype=torch.bool, device=right.device)
        return torch.where(eye, right, (1.0 - right) / max(k - 1, 1))

    def _rater_columns(self) -> dict[str, np.ndarray]:
        columns = interval_columns("ability", self._draws["ability"])
        if "class_ability" in self._draws:
            by_class = self._class_abilities(self._draws).double().mean(0).cpu().numpy()
            columns.update({f"ability_{name}": by_class[:, k] for k, name in enumerate(self.encoded_.classes)})
        return columns

    def _after_fit(self) -> None:
        encoded = self.encoded_
        columns = interval_columns("difficulty", (1.0 / self._draws["beta"]).double())
        columns["n_judgments"] = np.bincount(encoded.items, minlength=encoded.n_items)
        self.item_difficulty_ = pd.DataFrame(columns, index=encoded.item_index)

    def _posterior_draws(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        posterior = super()._posterior_draws()
        beta, dims = posterior["beta"]
        posterior["difficulty"] = (1.0 / beta, dims)
        return posterior
