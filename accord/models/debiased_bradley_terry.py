r"""Debiased crowd Bradley-Terry: per-rater sensitivity to declared pair covariates (a length difference, any
``item_*`` column), partially pooled across raters, and soft labels with the covariates' pull removed.

The model
---------
Crowd Bradley-Terry (:class:`~accord.models.bradley_terry.CrowdBradleyTerry`: utilities ``u_r``, sharpness
``s_j``, position bias ``b_j``, Davidson or Rao-Kupper ties) with one more term per covariate ``k``. Pair ``i``
carries covariates ``x_{ik}``, signed towards A (``"length"``: words of A minus words of B, computed from the
texts; an ``item_*`` column: its value as given), centred at their mean over pairs ``m_k`` and scaled by their
standard deviation over pairs ``c_k``. Judgment ``n`` by rater ``j`` on pair ``i`` has the log-odds

.. math::

    d_n = s_j\,\Big(u_A - u_B + \sum_k \alpha_k \frac{x_{ik} - m_k}{c_k}\Big) + b_j
        + \sum_k \beta_{jk}\,\frac{x_{ik} - m_k}{c_k},
    \qquad \beta_{jk} \sim \mathrm{StudentT}_{\nu}(0, \tau_k), \quad \tau_k \sim \mathrm{LogNormal}(\log 0.3, 1),
    \quad \alpha_k \sim \mathcal N(0, 2),

so ``beta_jk`` is rater ``j``'s pull towards the side that is larger in covariate ``k``, in log-odds per standard
deviation of the covariate, and ``b_j`` their lean towards A on a pair of the mean covariate. Centring keeps the fit
the same when a constant is added to a covariate (a length difference in tokens where A is usually the longer): a
constant part of ``beta_jk x_ik`` is a lean towards A that only ``b_j`` can tell (un-centred, the priors split it
between ``b_j`` and the pull, mistaking a position bias for a pull). The raters share the scale ``tau_k`` (partial
pooling: a rater with few judgments is shrunk towards no pull) and ``nu`` (``effect_df``, default 1: Cauchy) gives
heavy tails, so a minority of strongly biased raters is not pulled in while the bulk sits at zero.

**What the data identify.** Utilities are free per response and the covariate is a property of the responses, so a
pull *shared by every rater* is indistinguishable from quality that goes with the covariate: only differences
between raters are identified. The model's reference is the bulk of the raters: the shared component ``alpha_k``
(scaled by each rater's sharpness, like quality, so a random rater shows no pull) takes what the raters have in
common, the sparse prior keeps the bulk's ``beta`` at zero, and a rater's ``beta`` measures how much more (or less)
they follow the covariate than most raters do. ``population_`` reports the judgment-weighted mean pull on that
scale and ``alpha`` (a pull every rater shares, or quality that goes with the covariate: the ratings cannot
tell). When the covariate agrees with the fitted quality almost exactly (``|corr| >= collinear_threshold`` between
``x`` and stage 1's fitted gap over pairs), sharpness and pull cannot be told apart per rater either; the fit then
warns and ``identified_`` says so. A covariate that is missing, not numeric or constant is an error, and so is one
that is a linear function of the covariates named before it (the same length twice, in words and as an item column).

**Debiased soft labels.** The fit has two stages. Stage 1 fits everything above. With ``alpha`` in the model the
utilities shrink towards ``alpha x`` rather than towards zero, so labels read from stage 1 would lean on the
covariate wherever the votes are few, even with no biased rater. Stage 2 therefore refits crowd Bradley-Terry with
each rater's own pull held at its stage-1 posterior mean (an offset ``beta_jk x_ik / c_k`` on their votes) and
``alpha = 0``: the utilities then carry everything the raters share, shrunk towards zero as in crowd Bradley-Terry.
Soft labels are, per pair, the posterior mean class probabilities of a *typical* rater of stage 2 (sharpness
``mu_s``, no position bias, the pair's tie propensity as in crowd Bradley-Terry, no pull): the vote a rater would
give if the two responses did not differ in the covariates (``extra["p_a_better"]`` = P(u_A > u_B) as in crowd
Bradley-Terry). The pulls and their intervals in ``annotators_`` are stage 1's.

**Which raters have a pull.** The Cauchy prior keeps the bulk near zero but never at it, so ``<name>_effect`` ranks
every rater. ``annotators_`` also answers "who has a pull at all": each rater's profile likelihood of their pull
(every other parameter at its stage-1 posterior mean) goes through empirical-Bayes adaptive shrinkage
(:func:`~accord.models.adaptive_shrinkage.adaptive_shrinkage`, Stephens 2017: a point mass at zero and zero-centred
normals, weights fitted to all raters), giving each rater's probability of a pull, its local false sign rate and
its posterior median - exactly zero for a rater more likely without a pull than with one. The prior's centre, the
bulk's pull, is estimated with it (Stephens' estimated mode) and the three are relative to it: with every other
parameter plugged in, the profiles of raters without a pull need not peak at zero, and in sparse crowds a prior
centred at zero would flag most of them (measured in the README's section on biased raters).

Inference in each stage as in crowd Bradley-Terry (SVI, warm start at the vote-based utilities, every pull at
zero).

References
----------
R. A. Bradley, M. E. Terry. Rank analysis of incomplete block designs I. *Biometrika* 39 (1952).
V. C. Raykar et al. Learning from crowds. *JMLR* 11 (2010) (rater behaviour depending on item covariates).
P. Singhal, T. Goyal, J. Xu, G. Durrett. A long way to go: investigating length correlations in RLHF (2023).
A. Gelman, A. Jakulin, M. G. Pittau, Y.-S. Su. A weakly informative default prior distribution for logistic
regression models. *Ann. Appl. Stat.* 2 (2008) (Cauchy priors on log-odds effects).

Example
-------
>>> model = DebiasedBradleyTerry(covariates=("length",)).fit(judgments)  # doctest: +SKIP
>>> model.annotators_[["length_effect", "length_effect_lower", "length_effect_upper"]]  # doctest: +SKIP
>>> model.soft_labels_.probs  # debiased P(A), P(B)[, P(tie)]                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from accord.datasets import AccordError, Encoded, validate
from accord.datasets.schema import input_row, is_validated
from accord.models.adaptive_shrinkage import SparseEffects, adaptive_shrinkage, effect_grid
from accord.models.base import as_names, check_positive, linear_in, mean_and_interval
from accord.models.bradley_terry import CrowdBradleyTerry
from accord.models.pairwise import Params, PairwiseData, sd_columns

LENGTH = "length"


def covariate_values(table: pd.DataFrame, name: str) -> np.ndarray:
    """The raw covariate ``name`` of every row of ``table``, signed towards A: ``"length"`` is the difference in
    words between ``response_a`` and ``response_b``; ``item_*`` a numeric column as given. One clear error for a
    missing column, missing text, a non-numeric or a missing value."""
    if name == LENGTH:
        sides = ("response_a", "response_b")
        missing = [c for c in sides if c not in table.columns]
        if missing:
            raise AccordError(f"covariate 'length' needs the response texts: no column '{missing[0]}'")
        for column in sides:
            if table[column].isna().any():
                row = input_row(table, int(np.flatnonzero(table[column].isna().to_numpy())[0]))
                raise AccordError(f"covariate 'length': column '{column}' row {row} has no text")
        # each distinct text is counted once: a response recurs in many judgments (200k judgments, 21k distinct
        # texts: 2.9 s counted row by row)
        texts = pd.concat([table[c].astype(object) for c in sides], ignore_index=True).astype(str)
        codes, distinct = pd.factorize(texts)
        per_text = pd.Series(distinct, dtype=texts.dtype).str.count(r"\S+").to_numpy(dtype=np.float64)
        count = per_text[codes]
        return count[:len(table)] - count[len(table):]
    if not name.startswith("item_"):
        raise AccordError(f"covariate {name!r}: use 'length' or an item_* column")
    if name not in table.columns:
        present = [c for c in table.columns if str(c).startswith("item_")]
        raise AccordError(f"covariate {name!r}: no such column (item columns: {', '.join(present) or 'none'})")
    column = table[name]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        # the first cell that is no number, so that a spreadsheet's "12,5" (a decimal comma) is seen, not a dtype
        parsed = pd.to_numeric(column.astype(object).where(~column.map(lambda v: isinstance(v, (bool, np.bool_)))),
                               errors="coerce")
        bad = np.flatnonzero((parsed.isna() & column.notna()).to_numpy())
        if len(bad):
            row, value = input_row(table, int(bad[0])), column.iloc[int(bad[0])]
            comma = isinstance(value, str) and "," in value and not pd.isna(
                pd.to_numeric(value.replace(",", "."), errors="coerce"))
            raise AccordError(f"covariate {name!r}: column is not numeric: row {row} is {value!r}"
                              + (" (a decimal comma? write numbers with '.')" if comma else ""))
        # numbers written as text ("1.5") were refused as "row 0 is '1.5' (a decimal comma? ...)": a cell that is a
        # number named as none, and a comma that is not there
        text = np.flatnonzero(column.map(lambda v: isinstance(v, str)).to_numpy())
        if len(text):
            row = int(text[0])
            raise AccordError(f"covariate {name!r}: column holds numbers written as text (row "
                              f"{input_row(table, row)} is {column.iloc[row]!r}): store them as numbers")
        column = parsed  # an object column of numbers (Python floats and ints) is a numeric column
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise AccordError(f"covariate {name!r}: row {input_row(table, row)} has no finite value "
                          f"({values[row]:g})")
    return values


def per_pair_values(table: pd.DataFrame, raw: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The covariates ``raw [rows, k]`` of ``table``'s rows per pair ``[pairs, k]``, pairs in order of first
    appearance (as :func:`~accord.datasets.encode` numbers them). A pair covariate takes one value per pair: two
    values in one pair (the last row's stood for the pair in the soft labels, each row's own in the likelihood) are
    one error naming the covariate, the pair and both rows."""
    pairs, _ = pd.factorize(table["pair_id"])
    _, first = np.unique(pairs, return_index=True)
    per_pair = raw[first]
    differs = raw != per_pair[pairs]
    if differs.any():
        row, k = (int(i) for i in np.argwhere(differs)[0])
        earlier = first[pairs[row]]
        raise AccordError(f"covariate {names[k]!r}: row {input_row(table, row)} (pair "
                          f"{table['pair_id'].iloc[row]!r}) has {raw[row, k]:g} but row {input_row(table, earlier)} "
                          f"of the same pair has {raw[earlier, k]:g}: a pair covariate takes one value per pair")
    return per_pair


def check_not_collinear(x: np.ndarray, names: tuple[str, ...], tolerance: float = 1e-6) -> None:
    """One error naming a covariate that the earlier ones determine: ``x [pairs, k]`` (centred and scaled per
    pair) has a column that is a linear function of the columns before it, to ``tolerance`` of its sd.

    Such a covariate (the same length given as ``length`` and as an ``item_*`` column, or one column twice in
    another unit) enters the likelihood only through its sum with the others, so each rater's pull was split
    between the names by the prior, each reported at a fraction of the pull, and ``identified_`` said True."""
    for k in range(1, x.shape[1]):
        coef = linear_in(x[:, :k], x[:, k], tolerance)
        if coef is not None:
            used = [names[j] for j in range(k) if abs(coef[j]) > tolerance] or list(names[:k])
            raise AccordError(f"covariate {names[k]!r} is a linear function of {', '.join(map(repr, used))} over "
                              "the pairs: only their sum is identified, so the raters' pull would be split between "
                              "them; give one of them")


class DebiasedBradleyTerry(CrowdBradleyTerry):
    r"""Crowd Bradley-Terry with per-rater pulls towards declared pair covariates; soft labels without the pull.

    See the module docstring for the maths and what the data identify.

    Parameters
    ----------
    covariates
        Names of the pair covariates: ``"length"`` (word difference of the texts) and/or ``item_*`` columns.
    effect_df
        Degrees of freedom of the Student-t prior of the per-rater pulls (1 = Cauchy: sparse, heavy-tailed).
    collinear_threshold
        ``|corr|`` between a covariate and the fitted utility gap over pairs at or above which the pull is
        reported as not identified (a warning, and ``identified_[name]`` False).
    Others: :class:`~accord.models.bradley_terry.CrowdBradleyTerry`.

    Fitted attributes: those of crowd Bradley-Terry; ``annotators_`` adds per covariate ``<name>_effect`` (the
    pull ``beta_jk``, log-odds per standard deviation of the covariate) with ``_sd``, ``_lower``, ``_upper`` (90%)
    and ``p_<name>_effect_positive``, and which raters have a pull at all (:mod:`accord.models.adaptive_shrinkage`
    on each rater's profile likelihood): ``p_<name>_effect_nonzero``, ``<name>_effect_median`` (the sparse estimate:
    zero where no pull is the likelier) and ``<name>_effect_lfsr`` (local false sign rate); ``covariate_scale_``
    (``c_k``, the covariate's units per standard deviation); ``covariate_centre_`` (``m_k``, its mean over pairs);
    ``identified_``; ``population_`` adds ``<name>_effect_scale`` (``tau_k``), ``<name>_effect_mean`` (the
    judgment-weighted mean pull, relative to the bulk of the raters), ``<name>_effect_shared`` (``alpha_k`` of stage
    1: a pull every rater shares, or quality that goes with the covariate), ``<name>_effect_null_share`` and
    ``<name>_effect_centre`` (the adaptive-shrinkage prior's share of raters without a pull and its centre, the bulk's
    pull on the profiles' scale). :meth:`to_arviz` exports ``<name>_effect`` (dims ``annotator``),
    ``<name>_effect_scale`` and ``<name>_effect_shared``, all stage 1's draws (a '/' in the name, which netCDF
    does not take, written '_').
    """

    method: ClassVar[str] = "debiased-bradley-terry"
    #: its judgments' covariates and its pulls' held values follow the rows and the annotators' codes: it fits in
    #: the rows' order (a row shuffle moves it as a change of seed does; tests/test_invariance.py)
    fits_in_id_order: ClassVar[bool] = False
    covariates: tuple[str, ...] = (LENGTH,)
    effect_df: float = 1.0
    collinear_threshold: float = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        as_names(self, "covariates")
        if isinstance(self.covariates, str):
            raise AccordError(f"covariates must be a sequence of names, e.g. ({self.covariates!r},), not a string")
        if not self.covariates:
            raise AccordError("covariates: name at least one ('length' or an item_* column)")
        for name in self.covariates:  # was accepted, and the fit failed with "'int' object has no attribute ..."
            if not isinstance(name, str):
                raise AccordError(f"covariates: every name is a text ('length' or an item_* column), not {name!r}")
        if len(set(self.covariates)) != len(self.covariates):
            raise AccordError(f"covariates: a name is given twice in {list(self.covariates)}")
        check_positive(self, "effect_df")
        threshold = self.collinear_threshold  # a text or None failed the comparison with a raw TypeError
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
            raise AccordError(f"collinear_threshold must be an absolute correlation in (0, 1], not "
                              f"{self.collinear_threshold!r}")

    # -- data ------------------------------------------------------------------------------------------------

    def _prepare(self, table: pd.DataFrame | None, encoded: Encoded) -> None:
        if table is None:
            raise AccordError(f"{type(self).__name__} reads its covariates from the judgments table: use fit(table)")
        super()._prepare(table, encoded)
        raw = np.column_stack([covariate_values(table, name) for name in self.covariates])
        per_pair = per_pair_values(table, raw, self.covariates)
        scale = per_pair.std(axis=0)
        for k, name in enumerate(self.covariates):
            if not scale[k] > 0:
                raise AccordError(f"covariate {name!r} is constant ({per_pair[0, k]:g} on every pair): its effect "
                                  "cannot be estimated")
        centre = per_pair.mean(axis=0)
        check_not_collinear((per_pair - centre) / scale, self.covariates)
        self.covariate_scale_ = dict(zip(self.covariates, scale.tolist()))
        self.covariate_centre_ = dict(zip(self.covariates, centre.tolist()))
        self._pair_x = (per_pair - centre) / scale
        self._x = torch.as_tensor((raw - centre) / scale, dtype=torch.float32, device=self._torch_device)

    def _scaled(self, table: pd.DataFrame) -> torch.Tensor:
        """The covariates of ``table``'s rows on the fit's scale (centred and scaled as the fitted table's were)."""
        raw = np.column_stack([covariate_values(table, name) for name in self.covariates])
        per_pair_values(table, raw, self.covariates)
        centre, scale = (np.array([fitted[n] for n in self.covariates])
                         for fitted in (self.covariate_centre_, self.covariate_scale_))
        return torch.as_tensor((raw - centre) / scale, dtype=torch.float32)

    # -- the model -------------------------------------------------------------------------------------------

    def _effect_sites(self) -> list[str]:
        return [f"effect_{k}" for k in range(len(self.covariates))]

    def _shift(self, params: Params, workers: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """A rater's own pull ``sum_k beta_{j(n) k} x_{nk}`` per judgment (``[..., n]``)."""
        return sum(params[site][..., workers] * x[:, k] for k, site in enumerate(self._effect_sites()))

    def _with_shared(self, params: Params, gap: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The gap plus the shared component ``sum_k alpha_k x_k`` (absent, i.e. zero, in the second stage)."""
        for k in range(len(self.covariates)):
            if f"effect_mean_{k}" in params:
                gap = gap + params[f"effect_mean_{k}"].unsqueeze(-1) * x[:, k]
        return gap

    def _pair_gap_draws(self, pairs: np.ndarray) -> torch.Tensor:
        gap = super()._pair_gap_draws(pairs)
        return self._with_shared(self._draws, gap, torch.as_tensor(self._pair_x[pairs], dtype=gap.dtype))

    def _observe(self, data: PairwiseData, latent: torch.Tensor, params: Params, batch_size: int | None) -> None:
        """The per-rater pulls (sampled here, after crowd Bradley-Terry's sites) and the likelihood with them."""
        device = data.device
        params = dict(params)

        def build() -> dict[str, Any]:
            c = lambda value: torch.tensor(value, device=device)  # noqa: E731 - constants on the data's device
            return {"mean": dist.Normal(c(0.0), c(2.0)), "scale": dist.LogNormal(c(math.log(0.3)), c(1.0)),
                    "df": c(float(self.effect_df)), "zero": c(0.0)}

        constants = self._constant(data, "pulls", build)
        scales = []
        for k in range(len(self.covariates)):
            params[f"effect_mean_{k}"] = pyro.sample(f"effect_mean_{k}", constants["mean"])
            scales.append(pyro.sample(f"effect_scale_{k}", constants["scale"]))
        with pyro.plate("annotators", data.n_workers, device=device):  # one plate for every covariate's pulls
            for site, scale in zip(self._effect_sites(), scales):
                params[site] = pyro.sample(site, dist.StudentT(constants["df"], constants["zero"], scale))
        super()._observe(data, latent, params, batch_size)

    def _judgment_log_probs(self, params: Params, latent: torch.Tensor, data: PairwiseData, index: Any = None,
                            cpu: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As crowd Bradley-Terry's, with the shared component and each rater's pull: the covariates are the fit's
        on its device, or on the host (``cpu``) those of the judgments scored after it (:meth:`predictive_loglik`
        swaps in the test table's)."""
        side_a, side_b, workers, labels, pairs = data.select(index, cpu=cpu)
        x = self._judgment_x if cpu else self._x
        x = x if index is None else x[index]
        gap = self._with_shared(params, self._gap(latent, side_a, side_b), x)
        return workers, labels, self.class_log_probs(params, gap, workers, pairs, shift=self._shift(params, workers, x))

    def class_log_probs(self, params: Params, gap: torch.Tensor, workers: torch.Tensor | None,
                        pairs: torch.Tensor | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
        """Crowd Bradley-Terry's class log-probabilities (the same signature, so every caller of the base class gets
        the same meaning) with the covariates' pull ``shift[..., n]`` added to each judgment's log-odds (``None``: no
        pull, as for the debiased typical rater, and for the annotator table's vote rows: a rater's reliability net
        of the pull, which has columns of its own)."""
        if shift is None or workers is None:
            return super().class_log_probs(params, gap, workers, pairs)
        per_judgment = dict(params)
        for site in ("sharpness", "tie_offset"):
            if site in params:
                per_judgment[site] = params[site][..., workers]
        bias = params["bias"][..., workers] if "bias" in params else 0.0
        per_judgment["bias"] = bias + shift
        return super().class_log_probs(per_judgment, gap, torch.arange(gap.shape[-1], device=gap.device), pairs)

    def _init_values(self, data: PairwiseData) -> dict[str, torch.Tensor]:
        values = super()._init_values(data)
        for k, site in enumerate(self._effect_sites()):
            values[site] = torch.zeros(data.n_workers, device=data.device)
            values[f"effect_scale_{k}"] = torch.tensor(0.3, device=data.device)
            values[f"effect_mean_{k}"] = torch.tensor(0.0, device=data.device)
        return values

    def _model(self, data: PairwiseData, batch_size: int | None = None) -> None:
        """Crowd Bradley-Terry's model with the pulls; in the second stage of the fit the pulls are held at their
        first-stage posterior means and the shared component at zero (see the module docstring)."""
        if self._held:
            return poutine.condition(super()._model, data=self._held)(data, batch_size)
        return super()._model(data, batch_size)

    def _fit(self, encoded: Encoded) -> None:
        self._judgment_x = self._x.cpu()
        self._held: dict[str, torch.Tensor] = {}
        super()._fit(encoded)  # stage 1: utilities, raters and pulls, the shared part of each pull apart
        self._check_identified()
        # the reference of each rater's pull is stage 1's (the shared part apart): kept for the pulls' profiles
        self._stage_one = {name: value.mean(0, keepdim=True) for name, value in self._draws.items()}
        pulls = {name: value for name, value in self._chains.items() if name.startswith("effect_")}
        # stage 2 holds every pull site at its stage-1 posterior mean, the shared part at zero
        held = {name: value.mean(0).to(self._torch_device) for name, value in self._draws.items() if name in pulls}
        self._held = {**held, **{f"effect_mean_{k}": torch.zeros((), device=self._torch_device)
                                 for k in range(len(self.covariates))}}
        try:
            super()._fit(encoded)  # stage 2: utilities and raters with each rater's own pull removed
        finally:
            self._held = {}
        # report the pulls of stage 1 (their uncertainty); the shared part is zero in the labels' fit
        self._chains.update(pulls)
        self._chains.update({f"effect_mean_{k}": torch.zeros_like(pulls[f"effect_mean_{k}"])
                             for k in range(len(self.covariates))})
        self._draws = {name: value.reshape(-1, *value.shape[2:]) for name, value in self._chains.items()}
        self._shared_ = {name: pulls[f"effect_mean_{k}"].reshape(-1) for k, name in enumerate(self.covariates)}

    def _check_identified(self) -> None:
        """Warn when a covariate agrees with stage 1's fitted quality (the utility gap with the shared part) so
        closely that each rater's sharpness and pull are confounded."""
        gap = self._pair_gap_draws(np.arange(self.encoded_.n_items)).mean(0).double().numpy()
        self.identified_ = {}
        for k, name in enumerate(self.covariates):
            x = self._pair_x[:, k]
            corr = float(np.corrcoef(x, gap)[0, 1]) if gap.std() > 0 else 1.0
            self.identified_[name] = bool(abs(corr) < self.collinear_threshold)
            if not self.identified_[name]:
                warnings.warn(f"covariate {name!r} agrees with the fitted quality almost exactly (correlation "
                              f"{corr:+.2f} over pairs): the raters' pull towards it is not identified, and its "
                              "effects and debiased labels rest on the prior", stacklevel=3)

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """As crowd Bradley-Terry's, with each held-out judgment's covariates read from ``judgments`` (a new rater's
        pull is drawn from a normal with the population scale)."""
        self._check_fitted()
        table = judgments if is_validated(judgments) else validate(
            judgments, form=self.encoded_.form, scale=self.encoded_.scale)
        fitted = self._judgment_x
        self._judgment_x = self._scaled(table)
        try:
            return super().predictive_loglik(table)
        finally:
            self._judgment_x = fitted

    def annotator_priors(self, params: Params) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = super().annotator_priors(params)
        for k, site in enumerate(self._effect_sites()):
            scale = params[f"effect_scale_{k}"]
            out[site] = (torch.zeros_like(scale), scale)
        return out

    # -- reporting -----------------------------------------------------------------------------------------

    def _effect_name(self, k: int) -> str:
        return f"{self.covariates[k]}_effect"

    def _effect_profile(self, k: int, grid: np.ndarray) -> np.ndarray:
        """Each rater's log-likelihood of their judgments ``[raters, len(grid)]`` with their pull towards covariate
        ``k`` set to each value of ``grid`` and every other parameter at its stage-1 posterior mean (one batched
        pass over the judgments, the grid as the draws dimension)."""
        size = len(grid)
        params = {name: value.expand(size, *value.shape[1:]) for name, value in self._stage_one.items()}
        params[self._effect_sites()[k]] = torch.as_tensor(grid, dtype=torch.float32)[:, None].expand(
            size, self._data.n_workers)
        latent = params["utility" if self.layout_.mode == "response" else "gap"]
        per_rater = torch.zeros(size, self._data.n_workers, dtype=torch.float64)
        for workers, block in self._judgment_loglik_blocks(params, latent, self._data):  # summed block by block
            per_rater.index_add_(1, workers, block.double())
        return per_rater.T.numpy()

    def _rater_columns(self) -> dict[str, np.ndarray]:
        columns = super()._rater_columns()
        for k, site in enumerate(self._effect_sites()):
            draws, name = self._draws[site].double(), self._effect_name(k)
            columns.update(sd_columns(name, draws))
            reach = np.abs(np.concatenate([columns[name], columns[f"{name}_lower"], columns[f"{name}_upper"]]))
            sparse = self._sparse_effects(k, reach)
            columns.update({f"p_{name}_positive": (draws > 0).double().mean(0).numpy(),
                            f"p_{name}_nonzero": sparse.p_nonzero, f"{name}_median": sparse.median,
                            f"{name}_lfsr": sparse.lfsr})
        return columns

    def _sparse_effects(self, k: int, reach: np.ndarray | None = None) -> SparseEffects:
        """Which raters have a pull towards covariate ``k`` at all: adaptive shrinkage of each rater's profile
        likelihood (cached; the grid spans the pulls and their 90% intervals, ``reach`` when the caller has them,
        one and a half times over)."""
        key = f"sparse_{k}"
        if key not in self._cache:
            if reach is None:
                reach = np.abs(np.concatenate(mean_and_interval(self._draws[self._effect_sites()[k]].double())))
            grid = effect_grid(max(1.0, 1.5 * float(np.nanmax(reach))))  # a MAP fit has no interval
            self._cache[key] = adaptive_shrinkage(self._effect_profile(k, grid), grid)
        return self._cache[key]

    def _population(self) -> dict[str, dict[str, np.ndarray]]:
        """Crowd Bradley-Terry's rows (the pulls' sites apart) and per covariate the rows the class docstring lists
        (the adaptive-shrinkage prior's null share and centre: point values)."""
        rows = {name: row for name, row in super()._population().items() if not name.startswith("effect_")}
        weights = torch.bincount(self._data.workers.cpu(), minlength=self._data.n_workers).double()
        weights = weights / weights.sum()
        for k, site in enumerate(self._effect_sites()):
            name = self._effect_name(k)
            rows[f"{name}_scale"] = self._summary(self._draws[f"effect_scale_{k}"])
            rows[f"{name}_mean"] = self._summary(self._draws[site].double() @ weights)
            rows[f"{name}_shared"] = self._summary(self._shared_[self.covariates[k]])
            for what in ("null_share", "centre"):
                point = np.asarray(getattr(self._sparse_effects(k), what))
                rows[f"{name}_{what}"] = {"mean": point, "sd": np.full((), np.nan), "lower": point, "upper": point}
        return rows

    def _posterior_draws(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        out = super()._posterior_draws()
        chains = next(iter(self._chains.values())).shape[0]
        for k, site in enumerate(self._effect_sites()):
            name = self._effect_name(k)
            out[name] = (out.pop(site)[0], ["annotator"])
            out[f"{name}_scale"] = (out.pop(f"effect_scale_{k}")[0], [])
            # the shared component alpha_k as stage 1 drew it (population_'s <name>_effect_shared), not the zero at
            # which stage 2 held it: that constant went out as 'effect_mean_0', a site of no name and no spread
            out.pop(f"effect_mean_{k}")
            out[f"{name}_shared"] = (self._shared_[self.covariates[k]].reshape(chains, -1).numpy(), [])
        return out
