"""Context-dependent preference and reliability: who rates, and what the pair is about, change the answer.

Raters disagree for two reasons: some are noisy, and some genuinely prefer differently because of who they are and
what the pair is about. :class:`ContextPreference` models both at once, so the two can be told apart.

Model
-----
Judgment ``n`` is annotator ``j``'s label ``y_n`` on pair ``i``; the judgment belongs to group ``g`` (the value of an
annotator covariate column such as ``annotator_group``, ``annotator_stance`` or ``annotator_is_ai``; it may change
from judgment to judgment, e.g. a worker's stance depends on the topic). The pair has a topic ``t(i)`` and an item
covariate vector ``x_i`` (categorical ``item_*`` columns one-hot, numeric ones standardised).

*Clean preference of a group.* Group ``g`` prefers A over B on pair ``i`` with log-odds

.. math::

    \\eta_{ig} = \\lambda_{g,t(i)}\\,\\mu_i + \\delta_g^\\top x_i + v_{ig},
    \\qquad \\lambda_{g,t} = 1 + \\varepsilon_{g,t},

where ``mu_i`` is the pair's log-odds in the *reference group* (the largest group unless chosen): a free value
per pair, or ``u_A - u_B`` with a utility per response when responses recur across pairs (crowd Bradley-Terry,
``utilities``). ``epsilon_{g,t}`` scales or reverses it for group ``g`` on topic ``t`` (``lambda = -1``, effect -2:
the group prefers the opposite side; ``lambda = 0``: indifferent), ``delta_g`` shifts it along the item covariates,
and the optional interaction ``v_ig`` is a pair-specific deviation no covariate explains. The reference group has
``epsilon = delta = v = 0``, so every group effect is a contrast against it. With ties (labels ``A``/``B``/``tie``)
the clean label follows Rao and Kupper (1967) in logit form: ``P(A) = sigma(eta - theta_g)``,
``P(B) = sigma(-eta - theta_g)``, ``P(tie) = 1 - P(A) - P(B)`` with ``theta_g = softplus(theta_0 + gamma_g) > 0``.
Call this distribution ``pi_ig``: the group's soft label, P(A > B | group).

*Labels.* ``labels="shared"`` (default, Dawid and Skene, Appl. Stat. 1979, within each group): the raters of
group ``g`` share one true label ``z_ig ~ pi_ig`` per pair, so disagreement inside a group is rater noise; the
groups' labels are coupled through one pair-level draw ``U_i ~ U(0, 1)``, ``z_ig = F_ig^{-1}(U_i)`` over the class
order (A, tie, B), reversed for a group with ``lambda < 0`` (a reversed group reads the pair the other way round,
so it holds exactly the swapped label). ``labels="individual"``: every judgment draws its own clean label from
``pi_ig`` (members of a group genuinely differ).

*Rater behaviour.* Annotator ``j`` reports the clean label honestly, reports the opposite side (adversarial) or
answers from a personal spam distribution ``s_j`` (a MACE-like spammer, Hovy et al., NAACL 2013), with

.. math::

    (h, f, m)_n = \\operatorname{softmax}(a_j + \\rho_g + \\beta_g^\\top x_i,\\; b_j,\\; 0),

so reliability varies with the annotator, their group and the item:
``P(y_n = k | clean c) = h 1[k = c] + f 1[k = swap(c)] + m s_j(k)``. Under individual labels the clean
label is summed out per judgment (one flat ``judgments`` plate, subsampled with ``batch_size``). Under shared
labels ``U_i`` is summed out exactly per pair: given ``U_i`` every group's label is fixed, so
``P(votes_i) = sum_s |segment_s| prod_g P(votes_ig | z_g(s))`` over the at most ``G (K - 1) + 1`` segments of
[0, 1] cut by the groups' cumulative probabilities, a ``pyro.factor`` in the ``pairs`` plate (no discrete site
to enumerate, no Python loop over judgments).

*Priors (hierarchical, so that small groups and rare annotators shrink toward the population).*
``mu_i ~ N(0, s_mu)`` (or ``u_r ~ N(0, s_mu)``); ``a_j, b_j, logit s_j ~ StudentT_3(m, s)`` (heavy tails: a
normal population drags an 80-judgment spammer back to "decent"); every group effect ``~ StudentT_3(0, tau)``
(sparse effects: one reversed topic among agreeing ones) with its own ``tau ~ LogNormal``. Scale priors are
LogNormal, never HalfNormal (under hierarchical MAP a prior allowing ``tau = 0`` lets a real effect collapse).
The hierarchy is written non-centred (``mu = s_mu z``).

*Inference.* Two stages. (1) MAP (AutoDelta) with the population hyperparameters held at their starting values
(joint MAP over a hierarchy is degenerate), from a warm start off the mirror modes (label switching): pair log-odds
or utilities from vote fractions and win rates, honest raters, and the sign of each group's scale on each topic
chosen by the likelihood of its votes there (the sign flips the label coupling, which gradient steps cannot cross;
where the likelihood is within noise, runs from it and from the correlation's reading, the lower loss kept). Under
shared labels the warm start ties the groups' cut points of ``[0, 1]``, where the marginal has a kink that the fit
leaves as the order of the tied points says, which a side swap (A and B exchanged) reverses: stage 1 runs with both
orders (a second MAP run) and keeps the lower loss, so that a side-swapped table's fit mirrors this one. Each run
goes on at a tenth of its rate once its loss settles (at the fixed rate it hovers about a kinked optimum, and where
it stops follows rounding). The fit runs on the judgments sorted by their ids, so the rows' order does not change
its rounding; with three or more groups a swap can still end the MAP path elsewhere (``benchmarks/invariance.py``).
(2) ``"lowrank"`` (default; AutoLowRankMultivariateNormal) or ``"meanfield"`` (AutoDiagonalNormal) from the MAP
point, hyperparameters learned: mean-field shrinks the bilinear ``lambda mu`` and ``s_mu z``, which the low-rank
guide, holding those joint directions, recovers. ``"map"`` stops after stage 1 (point estimates; soft labels
overconfident).

The model is in the family of covariate-dependent annotator models (Yan et al., "Modeling annotator expertise",
AISTATS 2010; Raykar et al., JMLR 2010) and of crowd Bradley-Terry models with rater groups (Chen et al., WSDM
2013); the group scale ``lambda`` follows the "perspectivist" view of disagreement (Basile et al., 2021; Uma et al.,
JAIR 2021), where a group's reversed preference is signal, not noise.

Example
-------
>>> model = ContextPreference(group="annotator_group", topic="item_topic").fit(judgments)   # doctest: +SKIP
>>> model.group_effects_       # effect, group, reference, term, meaning, mean, sd, lower, upper  # doctest: +SKIP
>>> model.group_probabilities().p_a()          # P(A > B | group) per pair, a column per group   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch

from accord.datasets import AccordError, Encoded, validate
from accord.datasets.errors import ValidationError
from accord.datasets.schema import codes_comparable, is_validated, item_columns
from accord.models._data import id_ranks
from accord.models.base import PyroRaterModel, as_names, interval_columns, is_one_of, linear_in, summarize_draws
from accord.models.confusion import label_codes
from accord.models.pyro_fit import fit_pyro

# Column levels beyond this many are not one-hot encoded: such a column is an identifier or text, not a covariate.
MAX_LEVELS = 64
# Columns that cannot be context: the pair itself, and the judgment's label or the pair's truth (as a covariate the
# model would read the answer off the table)
RESERVED_CONTEXT: tuple[str, ...] = ("pair_id", "label", "gold")
# Degrees of freedom of the Student-t population of rater parameters (heavy tails let outlying raters stand out).
RATER_DF = 3.0
# Group effects (contrasts against the reference group): name -> (switch in ``_uses``, second axis, prior median
# of their scale). The preference scale's prior median is larger: a reversed preference is an effect of -2.
GROUP_EFFECTS: dict[str, tuple[str, str | None, float]] = {"scale_effect": ("scale", "topics", 1.0),
                                                           "shift_effect": ("shift", "covariates", 0.5),
                                                           "reliability_effect": ("reliability", None, 0.5),
                                                           "tie_effect": ("tie_group", None, 0.5)}
# How a group's raters relate to the group's preference: one shared label per group and pair ("shared", the
# Dawid-Skene view within a group), or an independent draw per judgment ("individual": a member's own taste).
LABEL_MODELS: tuple[str, ...] = ("shared", "individual")
# Population hyperparameters: held at their starting values in the MAP stage, learned in the posterior stage.
HYPERPARAMETERS: tuple[str, ...] = (
    "pair_scale", "honest_mean", "honest_sd", "adversarial_mean", "adversarial_sd", "spam_mean", "spam_sd",
)
CONTEXT_INFERENCE: tuple[str, ...] = ("map", "meanfield", "lowrank")
# Cut points of the shared-label marginal closer than this are tied (float32 rounding leaves a few 1e-8).
CUT_TIE_TOLERANCE = 1e-6


def flip_index(n_classes: int) -> list[int]:
    """Class order with A and B swapped (a tie stays a tie): where an adversarial rater's answer lands."""
    return [1, 0, 2][:n_classes]


def preference_probs(eta: torch.Tensor, tie_threshold: torch.Tensor | None) -> torch.Tensor:
    """Clean label distribution ``[..., K]`` from log-odds ``eta``: Bernoulli, or Rao-Kupper with a tie threshold.

    ``P(A) = sigma(eta - theta)``, ``P(B) = sigma(-eta - theta)``, ``P(tie) = 1 - P(A) - P(B)``; ``theta > 0``
    keeps the tie probability positive.
    """
    if tie_threshold is None:
        p_a = torch.sigmoid(eta)
        return torch.stack([p_a, 1.0 - p_a], dim=-1)
    p_a = torch.sigmoid(eta - tie_threshold)
    p_b = torch.sigmoid(-eta - tie_threshold)
    p_tie = (1.0 - p_a - p_b).clamp_min(1e-6)
    probs = torch.stack([p_a, p_b, p_tie], dim=-1)
    return probs / probs.sum(-1, keepdim=True)


def segment_lengths(cuts: torch.Tensor, tolerance: float = CUT_TIE_TOLERANCE) -> tuple[torch.Tensor, torch.Tensor]:
    """The cut points ``cuts [n, C]`` sorted, and the lengths ``[n, C - 1]`` of the segments between them.

    Points within ``tolerance`` of each other are tied: they keep their given order and the segments between them
    have length exactly 0. Ties come up to rounding (two groups with one distribution get cut points an ulp apart,
    in either direction, as vectorised maths rounds), and at a tie the marginal has a kink whose gradient would
    otherwise follow those ulps: a segment an ulp long carries a full-sized gradient.
    """
    values, index = torch.sort(cuts.detach(), dim=-1)
    new_tie = torch.cat([torch.ones_like(values[:, :1], dtype=torch.bool), values.diff(dim=-1) > tolerance], dim=-1)
    tie_group = torch.empty_like(index).scatter_(-1, index, new_tie.long().cumsum(-1))
    tie_group, order = torch.sort(tie_group, dim=-1, stable=True)
    cuts = cuts.gather(-1, order)
    tied = tie_group[:, 1:] == tie_group[:, :-1]
    return cuts, torch.where(tied, torch.zeros_like(cuts[:, 1:]), cuts[:, 1:] - cuts[:, :-1])


def softmax_with_zero(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of ``logits`` with a logit 0 appended (the last class is the reference)."""
    return torch.softmax(torch.cat([logits, logits.new_zeros(*logits.shape[:-1], 1)], dim=-1), dim=-1)


def _log_chosen(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log probs[n, labels[n]]``: each judgment's log-probability of its own label."""
    return torch.log(probs.gather(1, labels[:, None]).squeeze(1))


def _cell_sums(cells: np.ndarray, values: np.ndarray, n_cells: int) -> np.ndarray:
    """``[n_cells, C]``: the sums of each column of ``values [N, C]`` over the rows of each cell."""
    return np.stack([np.bincount(cells, weights=values[:, c], minlength=n_cells) for c in range(values.shape[1])], 1)


def gini(probs: np.ndarray) -> np.ndarray:
    """Probability that two independent draws from ``probs[..., K]`` differ (``1 - sum_k p_k^2``)."""
    return 1.0 - (probs**2).sum(-1)


def pair_log_odds(items: np.ndarray, labels: np.ndarray, mask: np.ndarray, n_items: int) -> np.ndarray:
    """Each pair's vote log-odds of A over B among the judgments in ``mask``, smoothed and stretched a little (vote
    fractions are shrunk toward 1/2 by rater noise) but kept moderate: the warm start of the pair preferences."""
    a = np.bincount(items[mask & (labels == 0)], minlength=n_items).astype(float)
    b = np.bincount(items[mask & (labels == 1)], minlength=n_items).astype(float)
    return np.clip(1.5 * np.log((a + 0.5) / (b + 0.5)), -4.0, 4.0)


def tie_start(labels: np.ndarray) -> float:
    """``softplus^-1(theta)`` of the tie threshold with P(tie | eta = 0) equal to the share of ties."""
    tie_rate = float(np.clip((labels == 2).mean(), 0.02, 0.9))
    theta = -math.log((1.0 - tie_rate) / 2.0 / (1.0 - (1.0 - tie_rate) / 2.0))
    return math.log(math.expm1(max(theta, 1e-3)))


def each_draw(draws: dict[str, torch.Tensor], held: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The sites of each draw of a one-chain fit (``name -> [1, draws, *shape]``), with the ``held`` values added."""
    return [{**held, **{k: v[0, s] for k, v in draws.items()}} for s in range(next(iter(draws.values())).shape[1])]


def log_mean_exp(values: list[np.ndarray]) -> np.ndarray:
    """``log mean_s exp(values[s])`` over a list of per-draw arrays, in float64."""
    stacked = np.stack(values).astype(np.float64)
    peak = stacked.max(0)
    return peak + np.log(np.exp(stacked - peak).mean(0))


@dataclass(frozen=True)
class GroupProbabilities:
    """Per-pair label distributions of each rater group (or rater type), the input of pluralistic soft labels.

    Attributes
    ----------
    clean
        ``[draws, n_items, n_groups, K]``: posterior draws of the distribution of a random group member's *clean*
        preference (no rater noise): the group's soft label.
    observed
        ``[n_items, n_groups, K]``: posterior predictive distribution of what the pair's actual raters of that group
        report, noise included (the group's typical rater where the pair has none of that group).
    groups
        Group (or type) names, in the order of the group axis.
    share
        Rater share of each group: ``(1 / J) sum_j n_jg / n_j`` (each annotator counts once, split over the groups
        of their judgments), the default population weights.
    counts
        ``[n_items, n_groups]`` judgments (or expected judgments, for latent types) of each group on each pair.
    item_index, classes
        Pair ids and class labels of the item and class axes.
    kind
        ``"group"`` (observed covariate) or ``"type"`` (latent rater type).
    consensus
        ``[n_items, n_groups, K]``: what the group holds on this pair, the term whose spread across groups is
        genuine disagreement: the posterior of the group's shared label (``labels="shared"``), or the mean clean
        distribution (``"individual"``).
    genuine_within
        Whether members of one group may genuinely disagree (``"individual"`` labels, rater types): then the
        clean spread within a group counts as genuine, otherwise all within-group disagreement is rater noise.
    """

    clean: np.ndarray
    observed: np.ndarray
    groups: list[str]
    share: np.ndarray
    counts: np.ndarray
    item_index: pd.Index
    classes: tuple[Any, ...]
    kind: str = "group"
    consensus: np.ndarray | None = None
    genuine_within: bool = False

    def mean_clean(self) -> np.ndarray:
        """Posterior mean of ``clean``: ``[n_items, n_groups, K]``."""
        return self.clean.mean(axis=0)

    def p_a(self) -> pd.DataFrame:
        """P(A > B | group) per pair: one column per group, indexed by pair id."""
        return pd.DataFrame(self.mean_clean()[:, :, 0], index=self.item_index, columns=self.groups)


@dataclass(frozen=True)
class ContextDesign:
    """How a judgments table's context columns are encoded (learned at fit, reused for new data)."""

    group_column: str | None
    topic_column: str | None
    covariate_columns: tuple[str, ...]
    group_names: tuple[str, ...]
    topic_names: tuple[str, ...]
    covariate_names: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]
    numeric: dict[str, tuple[float, float]]

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_topics(self) -> int:
        return len(self.topic_names)

    @property
    def n_covariates(self) -> int:
        return len(self.covariate_names)

    def groups_of(self, table: pd.DataFrame) -> np.ndarray:
        """Group code of each row (a missing group is an error). A group the fit did not see (:meth:`unseen_groups`)
        gets the code ``n_groups + its place there``, for effects of its own (code 0 gave it the reference group's,
        every effect exactly 0); with one group fitted there are no group effects, and every row is that group."""
        if self.group_column is None:
            return np.zeros(len(table), dtype=np.int64)
        levels = _group_levels(table, self.group_column)
        if self.n_groups == 1:
            return np.zeros(len(table), dtype=np.int64)
        return pd.Index([*self.group_names, *self._unseen_of(levels)]).get_indexer(levels).astype(np.int64)

    def unseen_groups(self, table: pd.DataFrame) -> pd.Index:
        """The groups of ``table`` the fit did not see, sorted (so the order of the rows does not number them);
        none where the fit had one group (no group effects to draw)."""
        if self.group_column is None or self.n_groups == 1:
            return pd.Index([], dtype=object)
        return self._unseen_of(_group_levels(table, self.group_column))

    def _unseen_of(self, levels: pd.Series) -> pd.Index:
        return pd.Index(sorted(pd.Index(levels.unique()).difference(pd.Index(self.group_names))), dtype=object)

    def item_frame(self, table: pd.DataFrame, item_index: pd.Index) -> pd.DataFrame:
        """One row per pair in ``item_index`` order with the pair's context columns (checked by
        :func:`check_item_columns`: one value per pair, numbers where the fit had numbers)."""
        columns = [c for c in dict.fromkeys([self.topic_column, *self.covariate_columns]) if c is not None]
        check_item_columns(table, columns, self.numeric)
        firsts = table.drop_duplicates("pair_id").set_index("pair_id")
        return firsts.reindex(item_index)[columns] if columns else pd.DataFrame(index=item_index)

    def check_same_context(self, table: pd.DataFrame, fitted: pd.DataFrame) -> None:
        """One error naming the column and row where a judgment of a pair in ``fitted`` (:meth:`item_frame` of the
        training table) gives it another topic or covariate value: the fitted value would be used without a word."""
        known = table["pair_id"].isin(fitted.index).to_numpy()
        if not known.any():
            return
        rows = table[known]
        for column in fitted.columns:
            before, now = fitted[column].reindex(rows["pair_id"]), rows[column]
            if column in self.numeric:
                old, new = _numbers(before, column), _numbers(now, column)
                differs = ~((old == new) | (np.isnan(old) & np.isnan(new)))
            else:
                old, new = _as_level(before).to_numpy(), _as_level(now).to_numpy()
                differs = old != new
            if differs.any():
                at = int(np.flatnonzero(differs)[0])
                raise ValidationError(f"pair {rows['pair_id'].iloc[at]!r} had {old[at]!r} when fitting and has "
                                      f"{new[at]!r} in this table: a fitted pair keeps its topic and covariates",
                                      column=column, row=int(np.flatnonzero(known)[at]))

    def unseen_topics(self, items: pd.DataFrame) -> pd.Index:
        """The topics of ``items`` the fit did not see, sorted (so the order of the rows does not number them)."""
        if self.topic_column is None:
            return pd.Index([], dtype=object)
        found = pd.Index(_as_level(items[self.topic_column]).unique())
        return pd.Index(sorted(found.difference(pd.Index(self.topic_names))), dtype=object)

    def topics_of(self, items: pd.DataFrame, unseen: pd.Index | None = None) -> np.ndarray:
        """Topic code of each pair; a topic of ``unseen`` (:meth:`unseen_topics`) gets the code ``n_topics + its
        place there``, for effects of its own (code 0 would give it the effects of whichever topic sorts first)."""
        if self.topic_column is None:
            return np.zeros(len(items), dtype=np.int64)
        names = pd.Index([*self.topic_names, *(() if unseen is None else unseen)])
        codes = names.get_indexer(_as_level(items[self.topic_column]))
        if (codes < 0).any():
            topic = _as_level(items[self.topic_column])[codes < 0].iloc[0]
            raise AccordError(f"column '{self.topic_column}': topic {topic!r} was not seen when fitting")
        return codes.astype(np.int64)

    def covariates_of(self, items: pd.DataFrame) -> np.ndarray:
        """``[n_items, P]``: one-hot levels of categorical columns, standardised numeric columns (unknown -> 0)."""
        blocks = []
        for column in self.covariate_columns:
            if column in self.numeric:
                centre, spread = self.numeric[column]
                values = _numbers(items[column], column)
                # a missing value is imputed at the mean (0 once standardised)
                blocks.append(np.nan_to_num((values - centre) / spread)[:, None])
            else:  # one-hot; an unknown level (code -1) is 0 in every column
                codes = pd.Index(self.levels[column]).get_indexer(_as_level(items[column]))
                blocks.append((codes[:, None] == np.arange(len(self.levels[column]))).astype(float))
        return np.concatenate([np.zeros((len(items), 0)), *blocks], axis=1)


def _as_level(values: pd.Series) -> pd.Series:
    """Category values as strings (:func:`level_name`), missing values as the level ``"NA"`` (so missing is a group of
    its own)."""
    if codes_comparable(values):  # texts or plain numbers: each distinct value named once, not every judgment's
        codes, uniques = pd.factorize(values)  # (a missing value is code -1: the last name, "NA")
        names = pd.array([*(level_name(u) for u in uniques), "NA"], dtype=object).astype(str)
        return pd.Series(names.take(codes), index=values.index, name=values.name)
    return values.astype(object).where(values.notna(), "NA").map(level_name).astype(str)


def level_name(value: Any) -> str:
    """The level a category value is known by: its text, a whole number written as an integer (one missing cell
    makes an integer column float: its groups 1.0 were unknown to a fit that saw the groups '0' and '1')."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _group_levels(table: pd.DataFrame, column: str) -> pd.Series:
    """The group column's levels (:func:`_as_level`). One error naming the row (its position) of a missing cell: it
    became a rater group of its own, "NA", with effects of its own (a rater of no group is in none to contrast)."""
    _require_column(table, column, "group")
    missing = table[column].isna().to_numpy()
    if missing.any():
        raise ValidationError("a rater group is missing (drop the judgments of no group, or name their group)",
                              column=column, row=int(np.flatnonzero(missing)[0]))
    return _as_level(table[column])


def _require_column(table: pd.DataFrame, column: str, role: str) -> None:
    if column not in table.columns:
        raise AccordError(f"column '{column}': the {role} column is not in the judgments table")


def _is_numeric(values: pd.Series) -> bool:
    """Whether a covariate column is a number (standardised) rather than a category (one-hot); booleans are
    categories."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _numbers(values: pd.Series, column: str) -> np.ndarray:
    """A numeric covariate column as floats, missing cells NaN (nullable integers too). One error naming the row
    (its position in ``values``, a column of the table given: a filtered or reordered table keeps index labels that
    name other rows) for an infinite value or a cell that is not a number (a column numeric at fit and text in a
    new table)."""
    numbers = pd.to_numeric(values.astype(object).where(values.notna(), np.nan), errors="coerce")
    numbers = numbers.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isinf(numbers) | (np.isnan(numbers) & values.notna().to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError("a numeric covariate needs a finite number or a missing cell", column=column,
                              row=row, value=values.iloc[row])
    return numbers


def check_item_columns(table: pd.DataFrame, columns: Sequence[str], numeric: Collection[str] = ()) -> None:
    """One error naming the column and row where a topic or item covariate column is absent, is not one value per
    pair (the first judgment's value stood for the pair, so the row order decided), or, numeric (``numeric``), holds
    an infinite value or text."""
    first = _first_rows(table)
    for column in columns:
        _require_column(table, column, "item covariate")
        if column in numeric:
            _numbers(table[column], column)
        off = _off_pair_rows(table, column, first)
        if len(off):
            row = int(off[0])
            levels = _as_level(table[column])
            raise ValidationError(
                f"pair {table['pair_id'].iloc[row]!r} has {levels.iloc[row]!r} in this row but "
                f"{levels.iloc[first[row]]!r} in row {first[row]}: a topic or item covariate takes one value per pair",
                column=column, row=row)


def _first_rows(table: pd.DataFrame) -> np.ndarray:
    """The position of each row's pair's first row."""
    pairs = pd.factorize(table["pair_id"])[0]
    return pd.Series(np.arange(len(table))).groupby(pairs).transform("min").to_numpy()


def _off_pair_rows(table: pd.DataFrame, column: str, first: np.ndarray) -> np.ndarray:
    """Positions of the rows whose ``column`` differs from their pair's first row (:func:`_first_rows`)."""
    levels = _as_level(table[column]).to_numpy()
    return np.flatnonzero(levels != levels[first])


def build_design(table: pd.DataFrame, *, group: str | None, topic: str | None, covariates: Sequence[str] | None,
                 reference_group: Any = None) -> ContextDesign:
    """Encode the context columns of a validated judgments table (see :class:`ContextPreference` for the options)."""
    if covariates is not None and len(set(covariates)) != len(covariates):
        # the column entered twice: two identical covariates, whose effects only their sum identifies
        raise AccordError(f"covariates: a name is given twice in {list(covariates)}")
    for role, column in (("group", group), ("topic", topic), *(("covariate", c) for c in covariates or ())):
        if column is not None:
            _require_column(table, column, role)
        if column in RESERVED_CONTEXT:
            raise AccordError(f"column '{column}' cannot be a {role} column: it is the pair or its label, not "
                              "context of the judgment")
    check_item_columns(table, [c for c in dict.fromkeys([topic, *(covariates or ())]) if c is not None],
                       [c for c in covariates or () if _is_numeric(table[c])])
    group_names: tuple[str, ...] = ("all",)
    if group is None and reference_group is not None:
        # without groups there is nothing to contrast against: the setting was silently ignored
        raise AccordError(f"reference_group={reference_group!r} needs a group column (group='auto' found no "
                          "annotator_group column, or group=None)")
    if group is not None:
        # most judgments first; equal counts in name order, so the reference does not depend on the rows' order
        counts = _group_levels(table, group).value_counts().sort_index().sort_values(ascending=False, kind="stable")
        reference = counts.index[0] if reference_group is None else level_name(reference_group)
        if reference not in counts.index:
            raise AccordError(f"reference group '{reference_group}' does not occur in column '{group}'")
        group_names = (reference, *sorted(c for c in counts.index if c != reference))
    firsts = table.drop_duplicates("pair_id")
    topic_names = ("all",) if topic is None else tuple(sorted(_as_level(firsts[topic]).unique()))
    levels: dict[str, tuple[str, ...]] = {}
    numeric: dict[str, tuple[float, float]] = {}
    names: list[str] = []
    kept: list[str] = []
    standardised: dict[str, np.ndarray] = {}  # the numeric covariates kept, per pair
    for column in covariates or ():
        values = firsts[column]
        if _is_numeric(values):
            numbers = _numbers(values, column)
            if len(np.unique(numbers[~np.isnan(numbers)])) < 2:
                # one value (or none) standardises to 0 on every pair: its effects would rest on the prior alone, and
                # multiply a new pair's other value (a constant 1e9 column gave a pair at 1e9 + 1000 the value 1000)
                continue
            centre, spread = float(np.nanmean(numbers)), float(np.nanstd(numbers))
            scaled = np.nan_to_num((numbers - centre) / spread)  # as covariates_of encodes it
            earlier = np.column_stack([*standardised.values(), np.zeros((len(scaled), 0))])
            coef = linear_in(earlier, scaled)
            if coef is not None:
                # another covariate told twice (a column copied, in other units): only the sum of their effects is
                # identified, so each was reported at a share of it; one is kept, as a name given twice is refused
                given = [name for name, c in zip(standardised, coef) if abs(c) > 1e-6] or list(standardised)
                warnings.warn(f"covariates: column '{column}' is a linear function of {given} over the pairs and is "
                              "left out (only the sum of their effects would be identified)", stacklevel=4)
                continue
            standardised[column] = scaled
            numeric[column] = (centre, spread)
            names.append(column)
        else:
            found = tuple(sorted(_as_level(values).unique()))
            if not 2 <= len(found) <= MAX_LEVELS:
                # more levels: an identifier or free text, not a covariate; one level is 1 on every pair, as a constant
                # numeric column: a group intercept the group effects hold, which a new pair with another level lost
                continue
            levels[column] = found
            names.extend(f"{column}={level}" for level in found)
        kept.append(column)
    return ContextDesign(group_column=group, topic_column=topic, covariate_columns=tuple(kept), group_names=group_names,
                         topic_names=topic_names, covariate_names=tuple(names), levels=levels, numeric=numeric)


@dataclass(frozen=True)
class ContextData:
    """Tensors the Pyro model reads: flat judgments plus per-pair topic and covariates."""

    items: torch.Tensor
    workers: torch.Tensor
    groups: torch.Tensor
    labels: torch.Tensor
    topics: torch.Tensor
    x: torch.Tensor
    n_items: int
    n_workers: int
    n_groups: int
    n_topics: int
    n_classes: int
    response_a: torch.Tensor | None = None
    response_b: torch.Tensor | None = None
    n_responses: int = 0

    @property
    def n_judgments(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_covariates(self) -> int:
        return int(self.x.shape[1])


class ContextPreference(PyroRaterModel):
    """Covariate-dependent preference and reliability model (see the module docstring for the maths).

    Parameters
    ----------
    group
        Column whose value puts a judgment in a rater group (``"auto"``: ``annotator_group`` when present, else no
        groups). Values may vary within an annotator (e.g. stance by topic); a missing value is an error naming the
        row (drop the judgments of no group first).
    topic
        Item column whose levels get their own group preference scale ``lambda_{g,t}`` (``"auto"``: ``item_topic``
        when present and one value per pair, else one scale per group), one value per pair.
    covariates
        Item columns entering the preference shift ``delta_g . x_i`` and reliability slopes ``beta_g . x_i``
        (``"auto"``: every ``item_*`` column that holds one value per pair, the others left out with a warning;
        ``None``: none), one value per pair. Categorical columns (booleans too) are one-hot encoded, a missing value
        as a level ``"NA"`` of its own (columns with more than 64 levels are skipped as identifiers); numeric ones
        are standardised, a missing value imputed at the column's mean (0 once standardised), and a column with
        fewer than two distinct values (levels, for a categorical one) is skipped (it tells the pairs nothing
        apart), as is, with a warning, a numeric column that is a linear function of the numeric ones before it
        (only the sum of their effects would be identified). An infinite value, or text in a column that was
        numeric at fit, is an error naming the row. ``pair_id``, ``label`` and ``gold`` cannot be a group, topic
        or covariate.
    reference_group
        The group every effect is a contrast against (default: the group with most judgments; of groups with equal
        counts, the first by name); an error without a group column.
    scale_effects, shift_effects, reliability_effects, tie_effects
        Switch each family of group effects on or off.
    labels
        ``"shared"`` (default; one true label per group and pair, coupled across groups: :meth:`_shared_terms`) or
        ``"individual"`` (one per judgment; supports ``batch_size``): *Labels* in the module docstring.
    utilities
        Write the reference group's pair log-odds as a difference of response utilities,
        ``mu_i = u_A(i) - u_B(i)`` (crowd Bradley-Terry), so that a response seen in several pairs pools their
        evidence; ``"auto"``: when ``response_a_id`` and ``response_b_id`` are present. Otherwise ``mu_i`` is a
        free log-odds per pair.
    posterior_steps
        SVI steps of the posterior stage (``meanfield``/``lowrank``), which starts at the MAP point found in at
        most ``max_steps`` steps.
    learning_rate
        ClippedAdam's rate of the MAP stage (the posterior stage takes half of it). Default 0.1, chosen
        leave-one-source-out among 0.05, 0.1 and 0.2 on 100-judgment tables with gold (``benchmarks/small_fits.py
        --gold``; UKPConvArg1 debates and synthetic tables): 0.1 had the lower NLL against gold on both sources
        (synthetic 0.349 vs 0.375 at 0.05, UKPConvArg1 0.337 vs 0.351) in about 30% fewer posterior steps.
    interaction
        Add a pair x group deviation ``v_ig ~ N(0, tau_v)`` for genuine disagreement that the covariates do not
        explain (``tau_v`` then measures it).
    Others: :class:`~accord.models.base.PyroRaterModel` (``inference`` in ``map``/``meanfield``/``lowrank``;
    ``batch_size`` needs ``labels="individual"``).

    Fitted attributes
    -----------------
    ``soft_labels_`` (population aggregate, groups weighted by rater share: of the groups' shared-label posteriors
    under ``labels="shared"``, the probabilities of ``pluralistic_soft_labels(model, target="label")``, and of
    their clean preferences under ``"individual"``, those of the default ``target="preference"``), ``annotators_``
    (the common columns, the rater's confusion read with the group's clean label as the truth, and the shares of the
    rater's reports that are honest, flipped and spam, ``honest_share``, ``adversarial_share``, ``spam_share``,
    with intervals; ``spam_lean``, ``P(A) - P(B)`` of their spam answers; ``group``, the group of most of the
    rater's judgments), ``group_effects_``, ``design_``,
    :meth:`group_probabilities` (per-group soft labels), ``svi_`` / ``svi_map_`` (the two stages).
    """

    method: ClassVar[str] = "context-preference"
    supported_inference: ClassVar[tuple[str, ...]] = CONTEXT_INFERENCE
    reads_table: ClassVar[bool] = True

    group: str | None = "auto"
    topic: str | None = "auto"
    covariates: Sequence[str] | str | None = "auto"
    reference_group: Any = None
    scale_effects: bool = True
    shift_effects: bool = True
    reliability_effects: bool = True
    tie_effects: bool = True
    interaction: bool = False
    labels: str = "shared"
    utilities: bool | str = "auto"
    posterior_steps: int = 600
    inference: str = "lowrank"
    max_steps: int = 1500
    learning_rate: float = 0.1
    # the sort order of tied cut points of the shared-label marginal (not a setting: the fit chooses it)
    _reverse_ties = False

    def __post_init__(self) -> None:
        as_names(self, "covariates")
        if not is_one_of(self.labels, LABEL_MODELS):
            raise AccordError(f"labels must be one of {LABEL_MODELS}, not '{self.labels}'")
        if not any(self.utilities is value for value in (True, False)) and not is_one_of(self.utilities, ("auto",)):
            raise AccordError(f"utilities must be True, False or 'auto', not {self.utilities!r}")

    def _prepare(self, table: pd.DataFrame | None, encoded: Encoded) -> None:
        if table is None:
            raise AccordError("ContextPreference reads the context columns of the judgments table: use fit(judgments)")
        if table.attrs["accord"]["form"] != "preference":
            raise AccordError("ContextPreference needs preference judgments (labels A/B/tie)")
        group = self.group
        if group == "auto":
            group = "annotator_group" if "annotator_group" in table.columns else None
        self.design_ = build_design(table, group=group,
                                    topic=_resolve_topic(self.topic, table),
                                    covariates=_resolve_covariates(self.covariates, table),
                                    reference_group=self.reference_group)
        self.data_ = self._data(table, encoded)

    def _data(self, table: pd.DataFrame, encoded: Encoded) -> ContextData:
        design, device = self.design_, self._torch_device
        responses: dict[str, Any] = {}
        if self._use_responses(table):
            self.response_index_, a, b = _pair_responses(table, encoded.item_index, device)
            responses = dict(response_a=a, response_b=b, n_responses=len(self.response_index_))
        # kept to check that a new table's judgments of these pairs give them the same context (predictive_loglik)
        self._item_frame = design.item_frame(table, encoded.item_index)
        tensors = self._judgment_tensors(table, encoded.items, encoded.workers, encoded.labels, self._item_frame)
        return ContextData(**tensors, n_items=encoded.n_items, n_workers=encoded.n_workers, n_groups=design.n_groups,
                           n_topics=design.n_topics, n_classes=encoded.n_classes, **responses)

    def _judgment_tensors(self, table: pd.DataFrame, items: np.ndarray, workers: np.ndarray, labels: np.ndarray,
                          frame: pd.DataFrame) -> dict[str, torch.Tensor]:
        """The judgments' pair, annotator, group and label codes, and the topic and covariates of the pairs of
        ``frame`` (:meth:`ContextDesign.item_frame`), as the tensors of :class:`ContextData`."""
        design, device = self.design_, self._torch_device
        return {"items": torch.as_tensor(items, device=device), "workers": torch.as_tensor(workers, device=device),
                "groups": torch.as_tensor(design.groups_of(table), device=device),
                "labels": torch.as_tensor(labels, device=device),
                "topics": torch.as_tensor(design.topics_of(frame, design.unseen_topics(frame)), device=device),
                "x": torch.as_tensor(design.covariates_of(frame), dtype=torch.float32, device=device)}

    def _use_responses(self, table: pd.DataFrame) -> bool:
        present = {"response_a_id", "response_b_id"} <= set(table.columns)
        if self.utilities == "auto":
            return present and bool(table["response_a_id"].notna().all() and table["response_b_id"].notna().all())
        if self.utilities and not present:
            raise AccordError("utilities=True needs the columns response_a_id and response_b_id")
        return bool(self.utilities)

    def _fit(self, encoded: Encoded) -> None:
        if self.labels == "shared" and self.batch_size is not None:
            raise AccordError("batch_size needs labels='individual' (shared labels tie each pair's votes together)")
        # the fit runs on the judgments in an order of their ids (and pairs, annotators and responses numbered in
        # it), its draws mapped back to the codes: in the rows' order the sums of the MAP path rounded otherwise, and
        # with three groups a row shuffle ended the path elsewhere (soft labels 0.43 apart on one synthetic table)
        data, back = _in_id_order(self.data_, self.encoded_)
        self._flip = flip_index(data.n_classes)
        init = self._warm_start(data)
        # the two stages of *Inference* (module docstring): MAP with the hyperparameters held (joint MAP over a
        # hierarchy is degenerate: the scales run to 0 when centred and to the prior's tail when non-centred), then
        # meanfield / lowrank learning everything from the MAP point
        hyper = {name: value for name, value in init.items() if name in HYPERPARAMETERS or name.endswith("_sd")}
        batch = None if self.batch_size is None else round(self.batch_size * data.n_judgments / data.n_items)
        # shared labels: MAP runs from both sort orders of tied cut points (and, where the votes leave a scale's sign
        # open, from both signs), the lower loss kept, each going on at a tenth of its rate once it settles (module
        # docstring). Without effects that move a group's cut points they stay tied and either order is the same.
        uses = self._uses(data)
        groups_differ = self.labels == "shared" and any(uses[k] for k in ("scale", "shift", "tie_group", "interaction"))
        signs = self._reversal_starts(data, init, uses) if uses["scale"] else [None]
        self._map_variant(init, False, signs[0])
        orders = [functools.partial(self._map_variant, init, flag, sign)
                  for sign in signs for flag in ((False, True) if groups_differ else (False,))]
        draws = self._keep_fit(fit_pyro(self, self._model, data, init=init, hold=(hyper, self.posterior_steps),
                                        rank=self.rank, vectorize_draws=True,
                                        subsample=batch if batch is not None and batch < data.n_judgments else None,
                                        map_variants=orders if len(orders) > 1 else (),
                                        map_plateau_cuts=1 if groups_differ else 0))
        # guide_ keeps the id order; the draws and everything read off them are in the codes of encoded_
        draws = {name: value[:, :, back[name]] if name in back else value for name, value in draws.items()}
        data = self.data_
        self.draws_ = [self._derive(sites, data) for sites in each_draw(draws, hyper)]
        self._summarise(data)

    def _map_variant(self, init: dict[str, torch.Tensor], reverse_ties: bool, signs: torch.Tensor | None) -> None:
        """Set up one MAP run: the sort order of tied cut points and (where given) the start of the scale signs,
        written into ``init``, which the run copies after this call."""
        self._reverse_ties = reverse_ties
        if signs is not None:
            init["scale_effect_z"] = signs

    def _uses(self, data: ContextData) -> dict[str, bool]:
        grouped = data.n_groups > 1
        return {"scale": grouped and self.scale_effects,
                "shift": grouped and self.shift_effects and data.n_covariates > 0,
                "reliability": grouped and self.reliability_effects,
                "slope": self.reliability_effects and data.n_covariates > 0, "ties": data.n_classes == 3,
                "tie_group": grouped and self.tie_effects and data.n_classes == 3,
                "interaction": grouped and self.interaction}

    def _model(self, data: ContextData, batch_size: int | None = None) -> None:
        """Priors and likelihood, non-centred: every hierarchical parameter is ``mean + scale * z`` with a standard
        ``z`` site (a centred hierarchy under mean-field VI lets the utility scale collapse, and the soft labels
        come out overconfident)."""
        uses = self._uses(data)
        priors = self._constants(data)["priors"]
        # plates are made on every call: making one records its subsample site in the trace (model-guide match)
        G = data.n_groups
        pairs, other_groups = pyro.plate("pairs", data.n_items), pyro.plate("other_groups", max(G - 1, 1))
        sites: dict[str, torch.Tensor] = {}

        def sample(name: str) -> None:
            sites[name] = pyro.sample(name, priors[name])

        for name in (*HYPERPARAMETERS, "tie_base"):
            if name in priors:
                sample(name)
        if data.response_a is not None:
            # crowd Bradley-Terry: responses shared across pairs carry one utility each (Chen et al., WSDM 2013)
            with pyro.plate("responses", data.n_responses):
                sample("utility_z")
        else:
            with pairs:
                sample("mu_z")
        with pyro.plate("annotators", data.n_workers):
            for name in ("honest_z", "adversarial_z", "spam_z"):
                sample(name)
        if uses["slope"]:
            sample("reliability_slope_sd")
            with pyro.plate("groups", G):
                sample("reliability_slope_z")
        # every group effect below is a contrast against the reference group (group 0), so it lives on G - 1 rows
        for name, (use, _, _) in GROUP_EFFECTS.items():
            if not uses[use]:
                continue
            sample(f"{name}_sd")
            with other_groups:
                sample(f"{name}_z")
        if uses["interaction"]:
            sample("interaction_sd")
            with pairs:
                sample("interaction_z")
        params = self._derive(sites, data)
        if self.labels == "shared":
            # the pair's votes are dependent through the groups' shared labels: one factor per pair
            with pairs:
                pyro.factor("votes", self._shared_terms(params, data, uses)["log_marginal"])
            return
        with pyro.plate("judgments", data.n_judgments, subsample_size=batch_size) as idx:
            probs = self._judgment_probs(params, data, idx, uses)
            pyro.sample("y", dist.Categorical(probs=probs), obs=data.labels[idx])

    def _constants(self, data: ContextData) -> dict[str, Any]:
        """What the model and its likelihood read on every SVI step but that no parameter changes, built once per
        data object: the priors (every one has fixed parameters: the hierarchy is non-centred) and the judgments'
        index tensors (a small model's step is mostly such small operations)."""
        cached = getattr(self, "_constants_of", None)
        if cached is not None and cached[0] is data:
            return cached[1]
        uses = self._uses(data)
        G, P, K = data.n_groups, data.n_covariates, data.n_classes
        zero, one = data.x.new_zeros(()), data.x.new_ones(())
        priors: dict[str, dist.Distribution] = {
            "pair_scale": dist.LogNormal(math.log(2.0) * one, 0.5), "honest_mean": dist.Normal(1.5 * one, 1.5),
            "honest_sd": dist.LogNormal(zero, 0.5), "adversarial_mean": dist.Normal(-3.0 * one, 1.0),
            "adversarial_sd": dist.LogNormal(zero, 0.5),
            "spam_mean": dist.Normal(data.x.new_zeros(K - 1), 1.0).to_event(1), "spam_sd": dist.LogNormal(zero, 0.5),
            "utility_z": dist.Normal(zero, one), "mu_z": dist.Normal(zero, one),
            # Student-t: a normal prior shrank an 80-judgment spammer back to "decent" (measured: 0.05 -> 0.80)
            "honest_z": dist.StudentT(RATER_DF, zero, one), "adversarial_z": dist.StudentT(RATER_DF, zero, one),
            "spam_z": dist.StudentT(RATER_DF, zero, one).expand([data.n_workers, K - 1]).to_event(1),
            "reliability_slope_sd": dist.LogNormal(math.log(0.5) * one, 0.75),
            "reliability_slope_z": dist.Normal(zero, one).expand([G, P]).to_event(1),
            "interaction_sd": dist.LogNormal(math.log(0.5) * one, 0.75),
            "interaction_z": dist.Normal(zero, one).expand([data.n_items, G - 1]).to_event(1),
        }
        if uses["ties"]:
            priors["tie_base"] = dist.Normal(zero, 1.5)
        for name, (_, width, median) in GROUP_EFFECTS.items():
            priors[f"{name}_sd"] = dist.LogNormal(math.log(median) * one, 0.75)
            # Student-t (sparse effects): a normal prior shrank the one reversed topic's -2 to -1.7, interval missed
            prior = dist.StudentT(RATER_DF, zero, one).expand(_effect_shape(width, data))
            priors[f"{name}_z"] = prior.to_event(1) if width else prior
        device = data.items.device
        y = data.labels[:, None]
        constants = {
            "priors": priors, "y": y, "cell": data.items * G + data.groups,
            # the judgment's label is the group label (honest report) or its swap (adversarial report)
            "honest_hit": (torch.arange(K, device=device)[None, :] == y).to(data.x.dtype),
            "adversarial_hit": (torch.tensor(self._flip, device=device)[None, :] == y).to(data.x.dtype),
            # the class at each rank of a group's label order: (A, tie, B), or (B, tie, A) for a reversed group
            "forward": torch.tensor([0, 2, 1][:K] if K == 3 else [0, 1], device=device),
            "backward": torch.tensor([1, 2, 0][:K] if K == 3 else [1, 0], device=device),
            "tie_order": self._tie_order(data),
        }
        self._constants_of = (data, constants)
        return constants

    @staticmethod
    def _tie_order(data: ContextData) -> torch.Tensor | None:
        """The order in which the groups' tied cut points sort (:meth:`_shared_terms`): the reference group, then the
        others by judgment count, most first (equal counts by name), as the reference is chosen; None where that is
        the code order (which alone let the names of three groups decide who got the gradient at the warm start)."""
        counts = np.bincount(data.groups.cpu().numpy(), minlength=data.n_groups)[1:]
        order = np.concatenate([[0], 1 + np.argsort(-counts, kind="stable")])
        return None if (order == np.arange(data.n_groups)).all() else torch.as_tensor(order, device=data.items.device)

    @staticmethod
    def _derive(sites: dict[str, torch.Tensor], data: ContextData) -> dict[str, torch.Tensor]:
        """Model parameters from the sample sites (the pair log-odds from utilities where there are responses)."""
        p = dict(sites)
        if "utility_z" in sites:
            p["utility"] = sites["pair_scale"] * sites["utility_z"]
            p["mu"] = p["utility"][data.response_a] - p["utility"][data.response_b]
        else:
            p["mu"] = sites["pair_scale"] * sites["mu_z"]
        for name in ("honest", "adversarial", "spam"):
            p[name] = sites[f"{name}_mean"] + sites[f"{name}_sd"] * sites[f"{name}_z"]
        for name in (*GROUP_EFFECTS, "reliability_slope", "interaction"):
            if f"{name}_z" in sites:
                p[name] = sites[f"{name}_sd"] * sites[f"{name}_z"]
        return p

    def _scales(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool]) -> torch.Tensor:
        """``lambda[i, g] = 1 + epsilon[g, t(i)]``: group ``g``'s preference scale on pair ``i``'s topic."""
        mu = p["mu"]
        if not uses["scale"]:
            return mu.new_ones(data.n_items, data.n_groups)
        epsilon = torch.cat([mu.new_zeros(1, data.n_topics), p["scale_effect"]], dim=0)  # [G, T]
        return 1.0 + epsilon[:, data.topics].T

    def _pair_logits(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool]) -> torch.Tensor:
        """``eta[i, g]``: the clean preference log-odds of group ``g`` on pair ``i``."""
        mu = p["mu"]
        eta = self._scales(p, data, uses) * mu[:, None]
        if uses["shift"]:
            delta = torch.cat([mu.new_zeros(1, data.n_covariates), p["shift_effect"]], dim=0)  # [G, P]
            eta = eta + data.x @ delta.T
        if uses["interaction"]:
            eta = eta + torch.cat([mu.new_zeros(data.n_items, 1), p["interaction"]], dim=1)
        return eta

    def _tie_thresholds(self, p: dict[str, torch.Tensor], data: ContextData,
                        uses: dict[str, bool]) -> torch.Tensor | None:
        """``theta[g] > 0`` (None without ties)."""
        if not uses["ties"]:
            return None
        raw = p["tie_base"].expand(data.n_groups)
        if uses["tie_group"]:
            raw = raw + torch.cat([raw.new_zeros(1), p["tie_effect"]])
        return torch.nn.functional.softplus(raw)

    def _reliability_logits(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool]) -> torch.Tensor:
        """``[n_items, G]``: the group and item part of the honest-report logit (the annotator part is added later)."""
        out = p["mu"].new_zeros(data.n_items, data.n_groups)
        if uses["reliability"]:
            out = out + torch.cat([out.new_zeros(1), p["reliability_effect"]])[None, :]
        if uses["slope"]:
            out = out + data.x @ p["reliability_slope"].T
        return out

    def _clean_table(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool]) -> torch.Tensor:
        """``pi[i, g, k]``: group ``g``'s clean label distribution on pair ``i``."""
        eta = self._pair_logits(p, data, uses)
        theta = self._tie_thresholds(p, data, uses)
        return preference_probs(eta, None if theta is None else theta[None, :].expand_as(eta))

    def _shared_terms(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool],
                      judgment_loglik: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Shared-label likelihood (*Labels* and *Rater behaviour* in the module docstring): group ``g``'s label is
        ``F_ig^-1(U_i)`` over (A, tie, B), or (B, tie, A) where its scale is negative, so that groups agree as far as
        their preference probabilities allow, and ``P(votes_i) = sum_s |segment_s| prod_g P(votes_ig | label_g(s))``.

        Returns ``log_marginal [n_items]``, ``log_length`` and ``segment_loglik`` ``[n_items, S]``, ``segment_class``
        ``[n_items, G, S]`` and the per-judgment ``judgment_loglik [N, K]`` (log P(y_n | group label = k)).
        """
        G, K, n_items = data.n_groups, data.n_classes, data.n_items
        clean = self._clean_table(p, data, uses)  # [n, G, K]
        if judgment_loglik is None:
            judgment_loglik = self._label_loglik(p, data, uses)
        constants = self._constants(data)
        votes = clean.new_zeros(n_items * G, K).index_add(0, constants["cell"], judgment_loglik).reshape(n_items, G, K)
        forward, backward = constants["forward"], constants["backward"]
        reversed_ = self._scales(p, data, uses) < 0  # [n, G]
        order = torch.where(reversed_[..., None], backward, forward)  # [n, G, K] class at each rank
        cumulative = torch.cumsum(clean.gather(-1, order), dim=-1)[..., :-1]  # [n, G, K-1] breakpoints
        tie_order = constants["tie_order"]
        flat = (cumulative if tie_order is None else cumulative[:, tie_order]).reshape(n_items, -1)
        if self._reverse_ties:  # tied cut points sort in the groups' reverse order (see _fit)
            flat = flat.flip(-1)
        cuts = torch.cat([clean.new_zeros(n_items, 1), flat, clean.new_ones(n_items, 1)], dim=-1).clamp(0.0, 1.0)
        cuts, length = segment_lengths(cuts)  # [n, S + 1], [n, S]
        middle = (0.5 * (cuts[:, 1:] + cuts[:, :-1])).detach()
        rank = (cumulative.detach()[:, :, None, :] <= middle[:, None, :, None]).sum(-1)  # [n, G, S]
        segment_class = order.gather(-1, rank)  # [n, G, S]
        segment_loglik = votes.gather(-1, segment_class).sum(1)  # [n, S]
        log_length = torch.log(length.clamp_min(1e-12))
        return {"log_marginal": torch.logsumexp(log_length + segment_loglik, dim=-1), "log_length": log_length,
                "segment_loglik": segment_loglik, "segment_class": segment_class, "judgment_loglik": judgment_loglik,
                "clean": clean}

    def _label_loglik(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool],
                      parts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``[N, K]``: log P(y_n | the rater's group label is k) = log(h 1[y = k] + f 1[y = swap k] + m s_j(y))."""
        behaviour, spam = self._behaviour(p, data, uses, data.items, data.workers, data.groups)
        if parts is not None:
            parts.update(behaviour=behaviour, spam=spam)
        constants = self._constants(data)
        prob = (behaviour[:, 0:1] * constants["honest_hit"] + behaviour[:, 1:2] * constants["adversarial_hit"]
                + behaviour[:, 2:3] * spam.gather(1, constants["y"]))
        return torch.log(prob.clamp_min(1e-9))

    def _behaviour(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool], items: torch.Tensor,
                   workers: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, f, m)`` per judgment ``[n, 3]`` and the rater's spam distribution ``[n, K]``."""
        honest = p["honest"][workers] + self._reliability_logits(p, data, uses)[items, groups]
        logits = torch.stack([honest, p["adversarial"][workers], torch.zeros_like(honest)], dim=-1)
        return torch.softmax(logits, dim=-1), softmax_with_zero(p["spam"][workers])

    def _judgment_probs(self, p: dict[str, torch.Tensor], data: ContextData, idx: torch.Tensor, uses: dict[str, bool],
                        parts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``[n, K]``: the distribution of each selected judgment's label. ``parts`` receives the pieces."""
        items, workers, groups = data.items[idx], data.workers[idx], data.groups[idx]
        eta = self._pair_logits(p, data, uses)[items, groups]
        theta = self._tie_thresholds(p, data, uses)
        clean = preference_probs(eta, None if theta is None else theta[groups])
        behaviour, spam = self._behaviour(p, data, uses, items, workers, groups)
        if parts is not None:
            parts.update(clean=clean, behaviour=behaviour, spam=spam)
        # honest h x clean + adversarial f x swapped clean + spam m x own spam labels
        reported = behaviour[:, 0:1] * clean + behaviour[:, 1:2] * clean[:, self._flip] + behaviour[:, 2:3] * spam
        return reported.clamp_min(1e-9)

    def _warm_start(self, data: ContextData) -> dict[str, torch.Tensor]:
        """Initial values: pair log-odds from the reference group's vote fractions (or utilities from win rates),
        honest raters (off the mirror mode: all raters adversarial, all preferences flipped), no effects."""
        labels, items = data.labels.cpu().numpy(), data.items.cpu().numpy()
        in_reference = data.groups.cpu().numpy() == 0
        # the reference group's vote log-odds, everybody's where the pair has no reference vote
        has_ref = np.bincount(items[in_reference & (labels < 2)], minlength=data.n_items) > 0
        mu = np.where(has_ref, pair_log_odds(items, labels, in_reference, data.n_items),
                      pair_log_odds(items, labels, np.ones_like(in_reference), data.n_items))
        K, W, G, P = data.n_classes, data.n_workers, data.n_groups, data.n_covariates
        f32 = dict(dtype=torch.float32, device=self._torch_device)
        pair_scale = max(float(np.std(mu)), 0.5)
        init = {name: torch.tensor(value, **f32) for name, value in [
            ("pair_scale", pair_scale), ("honest_mean", 2.0), ("honest_sd", 1.0), ("adversarial_mean", -3.0),
            ("adversarial_sd", 1.0), ("spam_sd", 1.0)]}
        if data.response_a is None:
            init["mu_z"] = torch.as_tensor(mu / pair_scale, **f32)
        else:  # response utilities from smoothed win rates
            a, b = data.response_a.cpu().numpy(), data.response_b.cpu().numpy()
            decided = labels < 2
            wins = np.bincount(np.where(labels == 0, a[items], b[items])[decided], minlength=data.n_responses)
            losses = np.bincount(np.where(labels == 0, b[items], a[items])[decided], minlength=data.n_responses)
            utility = np.log((wins.astype(float) + 1.0) / (losses.astype(float) + 1.0))
            init["utility_z"] = torch.as_tensor((utility - utility.mean()) / pair_scale, **f32)
        init.update(honest_z=torch.zeros(W, **f32), adversarial_z=torch.zeros(W, **f32),
                    spam_mean=torch.zeros(K - 1, **f32), spam_z=torch.zeros(W, K - 1, **f32))
        uses = self._uses(data)
        if uses["ties"]:
            init["tie_base"] = torch.tensor(tie_start(labels), **f32)
        shapes = {name: (use, _effect_shape(width, data), median)
                  for name, (use, width, median) in GROUP_EFFECTS.items()}
        shapes.update(reliability_slope=("slope", (G, P), 0.5), interaction=("interaction", (data.n_items, G - 1), 0.5))
        for name, (use, shape, sd) in shapes.items():
            if uses[use]:
                init[f"{name}_z"] = torch.zeros(shape, **f32)
                init[f"{name}_sd"] = torch.tensor(sd, **f32)
        return init

    def _reversal_starts(self, data: ContextData, init: dict[str, torch.Tensor],
                         uses: dict[str, bool]) -> list[torch.Tensor]:
        """Start values of ``epsilon[g, t] / sd`` (sd starts at 1): the likelihood's reading and, where it differs, a
        second. The first is -2 (reversed) where the votes of group ``g`` on topic ``t`` (at least 10 pairs that both
        it and the reference judged) are more likely, at the rest of the warm start, with the group's scale reversed
        than equal to the reference's, else 0; groups are chosen one after another. The sign flips the label
        coupling, which gradient steps cannot cross. The correlation of vote fractions (r < -0.2), read before,
        missed reversals whose pairs differ little (every pair about 60:40 correlates at r near 0) and ignored how
        many votes a pair has; the likelihood weighs each pair by its votes under the fit's own coupling.

        Where the summed gain is within twice its standard error over the pairs, the votes do not tell the readings
        apart: the second start takes the correlation's reading there and :meth:`_fit` keeps the run of lower loss
        (from a wrong sign the MAP path crosses scale 0 and stops at the kink there as rounding has it).
        """
        G, T = data.n_groups, data.n_topics
        items, groups, topics, labels = (t.cpu().numpy() for t in (data.items, data.groups, data.topics, data.labels))
        cell, size = items * G + groups, data.n_items * G
        count = np.bincount(cell, minlength=size).reshape(data.n_items, G).astype(float)
        start = torch.zeros(G - 1, T, dtype=init["pair_scale"].dtype, device=init["pair_scale"].device)
        fallback = start.clone()
        side = np.where(labels == 0, 1.0, np.where(labels == 1, -1.0, 0.0))
        lean = np.bincount(cell, weights=side, minlength=size).reshape(data.n_items, G) / np.maximum(count, 1.0)
        # the pairs' log-odds in the reference group, read off its votes alone: a start from utilities reads them
        # off every group's votes, which under individual labels then agree with any group's scale
        mu = torch.as_tensor(pair_log_odds(items, labels, groups == 0, data.n_items), dtype=start.dtype,
                             device=start.device)
        with torch.no_grad():
            for g in range(1, G):  # a loop over groups (a handful), never over judgments
                fits = []
                for value in (0.0, -2.0):
                    start[g - 1] = value
                    fits.append(self._pair_loglik({**init, "scale_effect_z": start}, data, uses, mu).cpu().numpy())
                # only pairs both groups judged: elsewhere the start's pair log-odds were read off this group's own
                # votes (no reference vote), which then agree with it whatever the group's scale
                both = (count[:, 0] > 0) & (count[:, g] > 0)
                pair_gain = np.where(both, fits[1] - fits[0], 0.0)
                gain = np.bincount(topics, weights=pair_gain, minlength=T)
                shared = np.bincount(topics, weights=both, minlength=T)
                spread = np.bincount(topics, weights=pair_gain ** 2, minlength=T) - gain ** 2 / np.maximum(shared, 1.0)
                # |gain| > 2 sqrt(n var) = 2 sqrt(sum of squared deviations); pairs that all gain alike are clear
                clear = gain ** 2 > 4.0 * np.maximum(spread, 0.0)
                reversed_ = (gain > 0) & (shared >= 10)
                start[g - 1] = torch.as_tensor(np.where(reversed_, -2.0, 0.0), dtype=start.dtype, device=start.device)
                read = np.where(clear, reversed_, self._correlation_reversed(lean[:, [0, g]], both, topics, T))
                fallback[g - 1] = torch.as_tensor(np.where(read, -2.0, 0.0), dtype=start.dtype, device=start.device)
        return [start] if torch.equal(start, fallback) else [start, fallback]

    @staticmethod
    def _correlation_reversed(lean: np.ndarray, both: np.ndarray, topics: np.ndarray, n_topics: int) -> np.ndarray:
        """``[n_topics]``: whether the two groups' vote leans (columns of ``lean``) correlate at r < -0.2 over the
        topic's pairs that both judged (at least 10, neither constant): the start's reading where the likelihood
        gives none."""
        out = np.zeros(n_topics, dtype=bool)
        for t in range(n_topics):  # a handful of topics, never a loop over judgments
            on = both & (topics == t)
            if on.sum() >= 10 and lean[on, 0].std() > 0 and lean[on, 1].std() > 0:
                out[t] = np.corrcoef(lean[on, 0], lean[on, 1])[0, 1] < -0.2
        return out

    def _pair_loglik(self, sites: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool],
                     mu: torch.Tensor) -> torch.Tensor:
        """``[n_items]``: log P(the pair's votes | parameters from ``sites``, pair log-odds ``mu``), the likelihood of
        :meth:`_model`."""
        p = {**self._derive(sites, data), "mu": mu}
        if self.labels == "shared":
            return self._shared_terms(p, data, uses)["log_marginal"]
        every = torch.arange(data.n_judgments, device=data.labels.device)
        log_p = _log_chosen(self._judgment_probs(p, data, every, uses), data.labels)
        return log_p.new_zeros(data.n_items).index_add(0, data.items, log_p)

    def _summarise(self, data: ContextData) -> None:
        uses = self._uses(data)
        S, N, G, K = len(self.draws_), data.n_judgments, data.n_groups, data.n_classes
        all_idx = torch.arange(N, device=data.labels.device)
        workers_np = data.workers.cpu().numpy()
        counts = np.bincount(workers_np, minlength=data.n_workers).astype(float)
        cell = (data.items * G + data.groups).cpu().numpy()
        cell_counts = np.bincount(cell, minlength=data.n_items * G).astype(float)
        clean = np.empty((S, data.n_items, G, K), dtype=np.float32)
        loglik = np.empty((S, N), dtype=np.float32)
        kinds = ("honest_share", "adversarial_share", "spam_share")  # the columns of the behaviour (h, f, m)
        shares = {name: np.empty((S, data.n_workers)) for name in (*kinds, "spam_lean")}
        spam_labels = np.empty((S, data.n_workers, K))
        observed = np.zeros((data.n_items, G, K))
        consensus = np.zeros((data.n_items, G, K))
        item_probs = np.empty((S, data.n_items, K))
        weights = self._share(data)
        with torch.no_grad():
            for s, p in enumerate(self.draws_):
                parts: dict[str, torch.Tensor] = {}
                if self.labels == "shared":
                    terms = self._shared_terms(p, data, uses, self._label_loglik(p, data, uses, parts))
                    pi = terms["clean"]
                    loglik[s] = self._conditional_loglik(terms, data).cpu().numpy()
                    label = self._label_posterior(terms, K)
                else:
                    q = self._judgment_probs(p, data, all_idx, uses, parts)
                    loglik[s] = _log_chosen(q, data.labels).cpu().numpy()
                    pi = label = self._clean_table(p, data, uses)
                clean[s] = pi.cpu().numpy()
                label_np = label.cpu().numpy()
                consensus += label_np / S
                item_probs[s] = np.einsum("igk,g->ik", label_np, weights)
                per_worker = _cell_sums(workers_np, parts["behaviour"].cpu().numpy(), data.n_workers)
                for column, name in enumerate(kinds):
                    shares[name][s] = per_worker[:, column] / np.maximum(counts, 1.0)
                spam_dist = softmax_with_zero(p["spam"])
                spam_labels[s] = spam_dist.cpu().numpy()
                shares["spam_lean"][s] = (spam_dist[:, 0] - spam_dist[:, 1]).cpu().numpy()
                observed += self._observed(p, data, uses, label, parts, cell, cell_counts) / S
        self._clean_draws, self._consensus, self._observed_mean = clean, consensus, observed
        self._cell_counts, self._rater_share = cell_counts.reshape(data.n_items, G), weights
        self._item_summary, self._class_prior = summarize_draws(item_probs), torch.as_tensor(item_probs.mean(1))
        self._loglik, self._shares, self._spam_labels = loglik[None], shares, spam_labels
        self.group_effects_ = self._effects_table(uses)
        self._posterior = self._posterior_dict(uses)

    @staticmethod
    def _label_posterior(terms: dict[str, torch.Tensor], n_classes: int) -> torch.Tensor:
        """``[n_items, G, K]``: P(group g's shared label on pair i = k | the pair's votes)."""
        weight = torch.softmax(terms["log_length"] + terms["segment_loglik"], dim=-1)  # [n, S]
        onehot = torch.nn.functional.one_hot(terms["segment_class"], n_classes).to(weight.dtype)  # [n, G, S, K]
        return (weight[:, None, :, None] * onehot).sum(2)

    @staticmethod
    def _conditional_loglik(terms: dict[str, torch.Tensor], data: ContextData) -> torch.Tensor:
        """``[N]``: log p(y_n | the pair's other votes, theta), the pointwise term for LOO of a model whose votes
        do not factorise given the parameters (Buerkner, Gabry and Vehtari, Comput. Stat. 2021)."""
        items, groups = data.items, data.groups
        base = terms["log_length"][items] + terms["segment_loglik"][items]  # [N, S]
        own = terms["segment_class"][items, groups]  # [N, S]: the judgment's group label in each segment
        without = base - terms["judgment_loglik"].gather(1, own)
        return torch.logsumexp(base, dim=-1) - torch.logsumexp(without, dim=-1)

    def _observed(self, p: dict[str, torch.Tensor], data: ContextData, uses: dict[str, bool], pi: torch.Tensor,
                  parts: dict[str, torch.Tensor], cell: np.ndarray, cell_counts: np.ndarray) -> np.ndarray:
        """``[n_items, G, K]``: what the pair's actual raters of each group report on average (typical rater where
        the pair has none of that group)."""
        G, K = data.n_groups, data.n_classes
        size = data.n_items * G
        sums = _cell_sums(cell, parts["behaviour"][:, :2].cpu().numpy(), size)
        spam_sum = _cell_sums(cell, (parts["behaviour"][:, 2:3] * parts["spam"]).cpu().numpy(), size)
        with torch.no_grad():
            honest = p["honest_mean"] + self._reliability_logits(p, data, uses)  # typical annotator
            logits = torch.stack([honest, p["adversarial_mean"].expand_as(honest), torch.zeros_like(honest)], -1)
            typical = torch.softmax(logits, -1).reshape(size, 3).cpu().numpy()
            typical_spam = softmax_with_zero(p["spam_mean"]).cpu().numpy()
        seen = cell_counts > 0
        denominator = np.maximum(cell_counts, 1.0)[:, None]
        hf = np.where(seen[:, None], sums / denominator, typical[:, :2])
        spam_mix = np.where(seen[:, None], spam_sum / denominator, typical[:, 2:3] * typical_spam[None, :])
        pi_np = pi.cpu().numpy().reshape(size, K)
        out = hf[:, 0:1] * pi_np + hf[:, 1:2] * pi_np[:, self._flip] + spam_mix
        return out.reshape(data.n_items, G, K)

    @staticmethod
    def _worker_group_counts(data: ContextData) -> np.ndarray:
        """``[n_workers, n_groups]``: each annotator's judgments in each group."""
        flat = (data.workers * data.n_groups + data.groups).cpu().numpy()
        return np.bincount(flat, minlength=data.n_workers * data.n_groups).reshape(data.n_workers, data.n_groups)

    def _share(self, data: ContextData) -> np.ndarray:
        """Rater share of each group: every annotator counts once, split over the groups of their judgments."""
        per = self._worker_group_counts(data).astype(float)
        per = per / np.maximum(per.sum(1, keepdims=True), 1.0)
        share = per.sum(0)
        return share / share.sum()

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        """Row ``c`` (the group's clean label): ``h e_c + f e_swap(c) + m s_j``, the shares of honest, flipped and
        spam reports averaged over the rater's judgments, under each draw."""
        share = {name: torch.as_tensor(self._shares[f"{name}_share"][:, lo:hi])[..., None, None]
                 for name in ("honest", "adversarial", "spam")}
        eye = torch.eye(len(self._flip), dtype=torch.float64)
        spam_labels = torch.as_tensor(self._spam_labels[:, lo:hi])[..., None, :]
        return share["honest"] * eye + share["adversarial"] * eye[self._flip] + share["spam"] * spam_labels

    def _rater_columns(self) -> dict[str, np.ndarray]:
        columns: dict[str, Any] = {}
        for name, values in self._shares.items():
            columns.update(interval_columns(name, values))
        if self.design_.group_column is not None:
            per = self._worker_group_counts(self.data_)
            columns["group"] = np.asarray(self.design_.group_names, dtype=object)[per.argmax(1)]
        return columns

    def _effect_draws(self, name: str) -> np.ndarray:
        return np.stack([p[name].cpu().numpy() for p in self.draws_])

    def _effects_table(self, uses: dict[str, bool]) -> pd.DataFrame:
        """One row per group effect: its posterior mean, sd, 90% interval and P(effect > 0)."""
        design = self.design_
        rows: list[dict[str, Any]] = []
        for use, effect, site, terms, what in (
            ("scale", "preference_scale", "scale_effect", design.topic_names,
             "lambda - 1: -2 = reversed preference, -1 = indifferent, 0 = same as reference"),
            ("shift", "preference_shift", "shift_effect", design.covariate_names,
             "log-odds shift of P(A > B) per unit of the covariate"),
            ("reliability", "reliability", "reliability_effect", [""], "log-odds shift of P(honest report)"),
            ("tie_group", "tie", "tie_effect", [""], "shift of the tie threshold (> 0: more ties)"),
            ("interaction", "interaction_sd", "interaction_sd", [""],
             "sd of pair-specific group deviations (log-odds)"),
        ):
            if not uses[use]:
                continue
            groups = design.group_names[1:] if use != "interaction" else ["all"]
            draws = self._effect_draws(site).reshape(len(self.draws_), len(groups), len(terms))
            for (g, group), (t, term) in itertools.product(enumerate(groups), enumerate(terms)):
                values = draws[:, g, t]
                rows.append({"effect": effect, "group": group, "reference": design.group_names[0], "term": term,
                             "meaning": what, "mean": float(values.mean()),
                             "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                             "lower": float(np.quantile(values, 0.05)), "upper": float(np.quantile(values, 0.95)),
                             "p_positive": float((values > 0).mean())})
        columns = ["effect", "group", "reference", "term", "meaning", "mean", "sd", "lower", "upper", "p_positive"]
        return pd.DataFrame(rows, columns=columns)

    def _posterior_dict(self, uses: dict[str, bool]) -> dict[str, tuple[Any, list]]:
        kinds = ("honest_share", "adversarial_share", "spam_share")
        post: dict[str, tuple[Any, list[str]]] = {name: (self._shares[name][None], ["annotator"]) for name in kinds}
        post["mu"] = (self._effect_draws("mu")[None], ["pair_id"])
        post["pair_scale"] = (self._effect_draws("pair_scale")[None], [])
        for name, (use, width, _) in GROUP_EFFECTS.items():
            if uses[use]:
                dims = ["other_group"] + ({"topics": ["topic"], "covariates": ["covariate"]}[width] if width else [])
                post[name] = (self._effect_draws(name)[None], dims)
        if uses["interaction"]:
            post["interaction_sd"] = (self._effect_draws("interaction_sd")[None], [])
        return post

    def _extra_coords(self) -> dict[str, Any]:
        """Named coordinates of the group-effect dimensions for :meth:`to_arviz`."""
        design = self.design_
        return {"other_group": list(design.group_names[1:]), "topic": list(design.topic_names),
                "covariate": list(design.covariate_names)}

    def group_probabilities(self) -> GroupProbabilities:
        """Per-group clean label distributions (draws), observed distributions, rater shares: see
        :class:`GroupProbabilities` and :func:`accord.aggregate.pluralistic.pluralistic_soft_labels`."""
        self._check_fitted()
        return GroupProbabilities(clean=self._clean_draws, observed=self._observed_mean,
                                  groups=list(self.design_.group_names), share=self._rater_share,
                                  counts=self._cell_counts, item_index=self.encoded_.item_index,
                                  classes=self.encoded_.classes, kind="group", consensus=self._consensus,
                                  genuine_within=self.labels == "individual")

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """Posterior predictive log-probability of each judgment of ``judgments`` (a table like the training one).

        Pairs, annotators and topics not seen in training get their parameters (a topic: its groups' scale effects)
        drawn from the fitted population distribution in every posterior draw (``log mean_s p(y | theta_s)``), so
        held-out data is scored honestly; so do the group effects of a group not seen in training, each such group its
        own (a model fitted on one group has none: every judgment is scored as that group). A level of a categorical
        covariate not seen is scored as no shift.
        """
        self._check_fitted()
        table = judgments if is_validated(judgments) else validate(judgments)
        encoded, design, data = self.encoded_, self.design_, self.data_
        labels = label_codes(encoded, table)
        item_codes, new_items = _codes_with_new(encoded.item_index, table["pair_id"])
        worker_codes, new_workers = _codes_with_new(encoded.worker_index, table["annotator"])
        device = self._torch_device
        n_train, n_test = data.n_judgments, len(table)
        if data.response_a is not None:
            responses, new_a, new_b = _pair_responses(table, new_items, device, self.response_index_)
        # the training judgments come first: under shared labels a held-out vote is predicted given the pair's
        # training votes (they fix the groups' labels); under individual labels they are simply not used
        frame = design.item_frame(table, new_items)
        design.check_same_context(table, self._item_frame)
        test_part = self._judgment_tensors(table, item_codes, worker_codes, labels, frame)
        # a topic the fit did not see gets its groups' scale effects drawn from their population in every draw
        unseen_topics, n_new_groups = design.unseen_topics(frame), len(design.unseen_groups(table))
        extended = ContextData(**{name: torch.cat([getattr(data, name), value]) for name, value in test_part.items()},
                               n_items=data.n_items + len(new_items), n_workers=data.n_workers + len(new_workers),
                               n_groups=data.n_groups + n_new_groups, n_topics=data.n_topics + len(unseen_topics),
                               n_classes=data.n_classes)
        uses = self._uses(data)
        n_new_items, n_new_workers = len(new_items), len(new_workers)
        generator = torch.Generator(device="cpu").manual_seed(self.seed + 1)
        topic_draws = np.random.default_rng(self.seed + 2)  # Student-t draws (torch's take no generator)
        group_draws = np.random.default_rng(self.seed + 3)  # a stream of their own: the other draws stay as they were

        def normal(shape: Any, mean: Any, sd: torch.Tensor) -> torch.Tensor:  # z drawn on the CPU by the generator
            return mean + sd * torch.randn(shape, generator=generator).to(device)

        logs = []
        with torch.no_grad():
            for p in self.draws_:
                q = dict(p)
                if data.response_a is not None:
                    utility = torch.cat([p["utility"], normal(len(responses) - data.n_responses, 0.0, p["pair_scale"])])
                    q["mu"] = torch.cat([p["mu"], utility[new_a] - utility[new_b]])
                else:
                    q["mu"] = torch.cat([p["mu"], normal(n_new_items, 0.0, p["pair_scale"])])
                for name, shape in (("honest", n_new_workers), ("adversarial", n_new_workers),
                                    ("spam", (n_new_workers, data.n_classes - 1))):
                    q[name] = torch.cat([p[name], normal(shape, p[f"{name}_mean"], p[f"{name}_sd"])])
                if uses["scale"] and len(unseen_topics):
                    shape = (data.n_groups - 1, len(unseen_topics))
                    fresh = torch.as_tensor(topic_draws.standard_t(RATER_DF, size=shape), dtype=p["scale_effect"].dtype,
                                            device=device)
                    q["scale_effect"] = torch.cat([p["scale_effect"], p["scale_effect_sd"] * fresh], dim=1)
                if uses["interaction"]:
                    extra = normal((n_new_items, data.n_groups - 1), 0.0, p["interaction_sd"])
                    q["interaction"] = torch.cat([p["interaction"], extra])
                if n_new_groups:
                    self._draw_new_groups(q, uses, n_new_groups, group_draws)
                test = torch.arange(n_train, n_train + n_test, device=device)
                if self.labels == "shared":
                    judgment_loglik = self._label_loglik(q, extended, uses)
                    train_only = judgment_loglik.clone()
                    train_only[n_train:] = 0.0
                    terms = self._shared_terms(q, extended, uses, train_only)
                    items, groups = extended.items[test], extended.groups[test]
                    base = terms["log_length"][items] + terms["segment_loglik"][items]
                    own = terms["segment_class"][items, groups]
                    log_p = torch.logsumexp(base + judgment_loglik[test].gather(1, own), -1) - torch.logsumexp(base, -1)
                else:
                    probs = self._judgment_probs(q, extended, test, uses)
                    log_p = _log_chosen(probs, extended.labels[test])
                logs.append(log_p.cpu().numpy())
        return log_mean_exp(logs)


    @staticmethod
    def _draw_new_groups(q: dict[str, torch.Tensor], uses: dict[str, bool], n_new: int,
                         rng: np.random.Generator) -> None:
        """Append to the draw ``q`` the effects of ``n_new`` groups the fit did not see, drawn from their fitted
        population as :meth:`_constants` writes their priors: Student-t group effects, normal reliability slopes and
        pair x group deviations."""

        def draw(sample: Any, shape: tuple[int, ...], sd: torch.Tensor) -> torch.Tensor:
            return sd * torch.as_tensor(sample(size=shape), dtype=sd.dtype, device=sd.device)

        student_t = functools.partial(rng.standard_t, RATER_DF)
        for name, (use, _, _) in GROUP_EFFECTS.items():
            if uses[use]:
                q[name] = torch.cat([q[name], draw(student_t, (n_new, *q[name].shape[1:]), q[f"{name}_sd"])])
        if uses["slope"]:
            slope = q["reliability_slope"]
            q["reliability_slope"] = torch.cat([slope, draw(rng.standard_normal, (n_new, slope.shape[1]),
                                                            q["reliability_slope_sd"])])
        if uses["interaction"]:
            extra = draw(rng.standard_normal, (q["interaction"].shape[0], n_new), q["interaction_sd"])
            q["interaction"] = torch.cat([q["interaction"], extra], dim=1)


def _in_id_order(data: ContextData, encoded: Encoded) -> tuple[ContextData, dict[str, np.ndarray]]:
    """``data`` with its judgments sorted by pair id, annotator id, label and group, and pairs, annotators and
    responses numbered in order of first appearance there (so the same judgments in any row order give one
    ``ContextData``; a table already in that order keeps every code), and, per sample site, the index that takes a
    draw in these codes back to ``data``'s (pair, annotator and response sites)."""
    item_rank, worker_rank = id_ranks(encoded.item_index), id_ranks(encoded.worker_index)
    items, workers = data.items.cpu().numpy(), data.workers.cpu().numpy()
    order = np.lexsort([data.groups.cpu().numpy(), data.labels.cpu().numpy(), worker_rank[workers], item_rank[items]])
    new_workers, worker_order = pd.factorize(workers[order])  # worker_order[new code] = old code
    worker_code = np.empty(data.n_workers, dtype=np.int64)
    worker_code[worker_order] = np.arange(data.n_workers)
    item_order = np.argsort(item_rank)  # item_order[new code] = old code
    device = data.items.device
    index = functools.partial(torch.as_tensor, device=device)
    fields: dict[str, Any] = dict(items=index(item_rank[items[order]]), workers=index(new_workers.astype(np.int64)),
                                  groups=data.groups[index(order)], labels=data.labels[index(order)],
                                  topics=data.topics[index(item_order)], x=data.x[index(item_order)])
    back = {"mu_z": item_rank, "interaction_z": item_rank, **dict.fromkeys(("honest_z", "adversarial_z", "spam_z"),
                                                                         worker_code)}
    if data.response_a is not None:
        # responses numbered as _pair_responses numbers them: the A responses of the pairs in order, then the B ones
        a, b = (r.cpu().numpy()[item_order] for r in (data.response_a, data.response_b))
        response_order = pd.unique(np.concatenate([a, b]))
        response_code = np.empty(data.n_responses, dtype=np.int64)
        response_code[response_order] = np.arange(len(response_order))
        fields.update(response_a=index(response_code[a]), response_b=index(response_code[b]))
        back["utility_z"] = response_code
    return replace(data, **fields), back


def _effect_shape(width: str | None, data: ContextData) -> list[int]:
    """The shape of a group effect (:data:`GROUP_EFFECTS`): a row per non-reference group, by topic or covariate."""
    if width is None:
        return [data.n_groups - 1]
    return [data.n_groups - 1, data.n_topics if width == "topics" else data.n_covariates]


def _codes_with_new(index: pd.Index, values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """The codes of ``values`` in ``index``, and the values it lacks, sorted by their text (ids of mixed types sort
    too) and numbered on after it: unseen pairs and raters draw their parameters from the population in that order
    (as the pairwise models number them), so the order of the rows does not decide who gets which draw."""
    codes = index.get_indexer(values)
    unique = values[codes < 0].unique()
    new = pd.Index(unique[np.argsort(np.asarray(unique).astype(str), kind="stable")])
    return np.where(codes < 0, len(index) + new.get_indexer(values), codes), new


def _pair_responses(table: pd.DataFrame, pairs: pd.Index, device: torch.device,
                    known: pd.Index | None = None) -> tuple[pd.Index, torch.Tensor, torch.Tensor]:
    """The response ids of ``pairs`` (their first judgments'), after the ``known`` ones, and each pair's codes there
    of its responses A and B.

    One error naming the column and row where a judgment of these pairs has no response id (a missing id became a
    response of its own, one utility shared by every pair without an id; a table without the columns was a
    KeyError)."""
    for column in ("response_a_id", "response_b_id"):
        if column not in table.columns:
            raise AccordError(f"column '{column}': the model writes pair preferences as response utilities "
                              "(utilities), and the table has no response ids")
        missing = (table["pair_id"].isin(pairs) & table[column].isna()).to_numpy()
        if missing.any():  # the row's position in the table given (its index label may name another row)
            raise ValidationError("missing response id (the model writes pair preferences as response utilities)",
                                  column=column, row=int(np.flatnonzero(missing)[0]))
    firsts = table.drop_duplicates("pair_id").set_index("pair_id").reindex(pairs)
    seen = pd.Index(pd.unique(np.concatenate([firsts["response_a_id"].to_numpy(), firsts["response_b_id"].to_numpy()])))
    ids = seen if known is None else known.append(seen.difference(known, sort=False))
    a, b = (torch.as_tensor(ids.get_indexer(firsts[c]), device=device) for c in ("response_a_id", "response_b_id"))
    return ids, a, b


def _per_pair_columns(table: pd.DataFrame, columns: list[str], setting: str) -> list[str]:
    """The ``columns`` that hold one value per pair. An "auto" setting takes item columns, and a column that differs
    between a pair's judgments is none (named, it is an error naming the row): it is left out with a warning, so
    that a table with one still fits (the command line has no flag to leave it out)."""
    first = _first_rows(table)
    kept = [c for c in columns if not len(_off_pair_rows(table, c, first))]
    if len(kept) < len(columns):
        left = [c for c in columns if c not in kept]
        warnings.warn(f"{setting}='auto': the item columns {left} differ between the judgments of a pair and are left "
                      "out (a topic or item covariate takes one value per pair)", stacklevel=5)
    return kept


def _resolve_topic(value: str | None, table: pd.DataFrame) -> str | None:
    if value == "auto":
        return next(iter(_per_pair_columns(table, ["item_topic"] if "item_topic" in table.columns else [], "topic")),
                    None)
    return value


def _resolve_covariates(value: Sequence[str] | str | None, table: pd.DataFrame) -> list[str]:
    if value is None:
        return []
    if value == "auto":
        return _per_pair_columns(table, item_columns(table), "covariates")
    if isinstance(value, str):
        return [value]
    return list(value)


__all__ = ["ContextDesign", "ContextPreference", "GroupProbabilities", "build_design", "flip_index", "gini",
           "level_name", "preference_probs"]

