"""Pairwise reward-model losses, one function each.

Every loss is a function of the reward difference ``d = r_chosen - r_rejected`` (a log-odds: the model's probability
that ``chosen`` beats ``rejected`` is ``sigmoid(d)``; with an uncertainty head ``d`` is the variance-scaled difference
of :func:`pairwise_logit`) and returns one loss **per pair**, unreduced. The trainer sums them and divides by the
number of pairs in the optimisation step, so every loss below is a mean over pairs.

Soft labels come from the cleaned dataset: ``p_chosen = P(chosen strictly better)``, ``p_tie = P(tie)`` and
``p_rejected = 1 - p_chosen - p_tie``. Losses without a tie outcome use the tie-split target
``y = p_chosen + p_tie / 2`` (:func:`tie_split_target`).

Weights (the cleaned dataset's ``weight`` column, ``1 - 2 * sd`` of the soft label) are normalised to mean 1 over the
optimisation step (:func:`normalise_weights`), so scaling every weight by a constant changes nothing: the effective
learning rate stays the one in the config.

**The registry.** :data:`LOSSES` is the one table of losses the trainer reads (``RewardConfig.loss`` names an entry).
A loss asks for its inputs by naming them as parameters; :func:`register_loss` records those names, and the task
that computes the loss (:mod:`accord.reward.task`) passes each one: the pairwise task offers ``d``, ``p_chosen``,
``p_tie``, ``target``, ``weight``, ``weight_mean`` and ``margin`` (:func:`pair_loss_inputs`), and every
:class:`accord.reward.RewardConfig` setting by its field name (``label_smoothing``, ``davidson_nu``). A parameter
with a default that nothing offers keeps its default. A new loss is one function and its registration::

    @register_loss("hinge")
    def hinge_loss(d, target):
        return torch.relu(1.0 - (2.0 * target - 1.0) * d)

after which ``RewardConfig(loss="hinge")`` and ``accord train --loss hinge`` train with it. Losses are element-wise,
so a task with several rewards per sequence (one per attribute) passes ``(B, K)`` tensors and masks the result.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from accord.datasets.errors import AccordError


# ----------------------------------------------------------------------------------------------------------------------
# the registry
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredLoss:
    """An entry of :data:`LOSSES`: the loss function and the names of the inputs it reads (its parameters)."""

    name: str
    function: Callable[..., torch.Tensor]
    inputs: tuple[str, ...]  # every parameter, in order
    required: frozenset[str]  # the parameters without a default

    def __call__(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """The loss per element, each parameter taken from ``inputs`` by name (defaults for the ones it lacks)."""
        missing = self.required - set(inputs)
        if missing:
            raise AccordError(f"loss '{self.name}' needs {sorted(missing)}, which this task does not provide")
        return self.function(**{name: inputs[name] for name in self.inputs if name in inputs})


#: The losses by name (``RewardConfig.loss``), filled by :func:`register_loss`.
LOSSES: dict[str, RegisteredLoss] = {}


def register_loss(name: str, *, replace: bool = False) -> Callable[[Callable[..., torch.Tensor]],
                                                                   Callable[..., torch.Tensor]]:
    """Decorator: add a loss function to :data:`LOSSES` under ``name`` (its parameters name its inputs). A name
    already taken is refused unless ``replace=True`` asks to replace the loss registered under it."""

    def add(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in LOSSES and LOSSES[name].function is not function and not replace:
            raise AccordError(f"a loss named '{name}' is already registered: give {function.__name__} another "
                              f"name, or register it with register_loss('{name}', replace=True)")
        parameters = inspect.signature(function).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            raise AccordError(f"loss '{name}': name every input as a parameter (no *args or **kwargs)")
        LOSSES[name] = RegisteredLoss(name, function, tuple(p.name for p in parameters),
                                      frozenset(p.name for p in parameters if p.default is p.empty))
        return function

    return add


def get_loss(name: str) -> RegisteredLoss:
    """The registered loss called ``name``, or one clear error listing the names there are."""
    if name not in LOSSES:
        raise AccordError(f"unknown loss '{name}' (use one of {sorted(LOSSES)})")
    return LOSSES[name]


# ----------------------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------------------


def normalise_weights(weight: torch.Tensor, mean: torch.Tensor | float | None = None) -> torch.Tensor:
    """Weights divided by their mean, ``w_i / mean_j w_j``, so that they average 1.

    ``mean`` is the mean over the whole optimisation step (all micro-batches and ranks) when the trainer knows it;
    by default the mean over ``weight`` itself. A step whose weights are all zero gets zero weights (no update)
    instead of a division by zero.
    """
    weight = weight.float()
    if mean is None:
        mean = weight.mean()
    mean = torch.as_tensor(mean, dtype=weight.dtype, device=weight.device)
    return torch.where(mean > 0, weight / mean.clamp_min(torch.finfo(weight.dtype).tiny), torch.zeros_like(weight))


def tie_split_target(p_chosen: torch.Tensor, p_tie: torch.Tensor | None = None) -> torch.Tensor:
    """Binary target ``y = p_chosen + p_tie / 2``: a tie counts half a win for each side."""
    if p_tie is None:
        return p_chosen.float()
    return (p_chosen + 0.5 * p_tie).float()


def pair_loss_inputs(
    d: torch.Tensor,
    *,
    p_chosen: torch.Tensor,
    p_tie: torch.Tensor,
    weight: torch.Tensor,
    margin: torch.Tensor,
    weight_mean: torch.Tensor | float | None = None,
    default_margin: float = 0.0,
) -> dict[str, Any]:
    """What a pairwise loss may read: the reward difference ``d``, the soft label (``p_chosen``, ``p_tie`` and the
    tie-split ``target``), the pair ``weight`` with the step's ``weight_mean``, and the ``margin`` (a pair's NaN
    margin becomes ``default_margin``). Element-wise: one pair per element, or one (pair, attribute)."""
    return {"d": d, "p_chosen": p_chosen, "p_tie": p_tie, "target": tie_split_target(p_chosen, p_tie),
            "weight": weight, "weight_mean": weight_mean, "margin": torch.nan_to_num(margin, nan=default_margin)}


# ----------------------------------------------------------------------------------------------------------------------
# the losses
# ----------------------------------------------------------------------------------------------------------------------


@register_loss("bradley_terry")
def bradley_terry_loss(d: torch.Tensor) -> torch.Tensor:
    """Hard Bradley-Terry (TRL's loss): ``-log sigmoid(d)``.

    Treats every pair as a certain win of ``chosen``. Minimised by ``d -> +inf``: nothing stops the model from
    becoming over-confident on pairs the raters disagreed about.
    """
    return -F.logsigmoid(d.float())


@register_loss("label_smoothing")
def label_smoothing_loss(d: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
    """Label-smoothed Bradley-Terry: ``-(1 - eps) log sigmoid(d) - eps log sigmoid(-d)``, ``eps = label_smoothing``.

    The same constant target ``1 - eps`` for every pair; minimised at ``d = log((1 - eps) / eps)``.
    """
    epsilon = label_smoothing
    if not 0.0 <= epsilon < 0.5:
        raise AccordError(f"label smoothing must be in [0, 0.5), got {epsilon}")
    d = d.float()
    return -(1.0 - epsilon) * F.logsigmoid(d) - epsilon * F.logsigmoid(-d)


@register_loss("soft_bce")
def soft_bce_loss(d: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft binary cross-entropy against the label's probability: ``-(y log sigmoid(d) + (1 - y) log sigmoid(-d))``.

    ``y`` is the per-pair target (:func:`tie_split_target` of the soft label). Minimised at ``d = logit(y)``: the
    model is asked to reproduce the raters' disagreement, not to exceed it.
    """
    d = d.float()
    target = target.float()
    return -(target * F.logsigmoid(d) + (1.0 - target) * F.logsigmoid(-d))


@register_loss("weighted_soft_bce")
def weighted_soft_bce_loss(
    d: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    weight_mean: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Uncertainty-weighted soft BCE (accord's default): ``(w_i / mean w) * soft_bce(d_i, y_i)``.

    ``w_i`` is the training weight of the pair's soft label (``1 - 2 sd``, so a label the aggregation is unsure
    about counts less); :func:`normalise_weights` makes the weights average 1 over the optimisation step
    (``weight_mean``), so the weights reallocate the gradient between pairs without changing its overall scale.
    """
    return normalise_weights(weight, weight_mean) * soft_bce_loss(d, target)


@register_loss("davidson")
def davidson_loss(d: torch.Tensor, p_chosen: torch.Tensor, p_tie: torch.Tensor,
                  davidson_nu: float = 1.0) -> torch.Tensor:
    """Tie-aware Davidson (1970) loss: cross-entropy of the three outcomes against ``(p_chosen, p_tie, p_rejected)``.

    With strengths ``pi = exp(r)`` and tie parameter ``nu = davidson_nu > 0``, Davidson's model is

        P(c > r) = pi_c / Z,   P(tie) = nu sqrt(pi_c pi_r) / Z,   P(r > c) = pi_r / Z,
        Z = pi_c + pi_r + nu sqrt(pi_c pi_r).

    Dividing by ``sqrt(pi_c pi_r)`` it depends on ``d`` only: ``Z' = exp(d/2) + exp(-d/2) + nu`` and
    ``log P(c > r) = d/2 - log Z'``, ``log P(tie) = log nu - log Z'``, ``log P(r > c) = -d/2 - log Z'``. The loss is
    ``-(p_c log P(c > r) + p_t log P(tie) + p_r log P(r > c))`` with ``p_r = 1 - p_c - p_t``. With ``nu -> 0`` and no
    ties it is the soft BCE.
    """
    nu = davidson_nu
    if nu <= 0:
        raise AccordError(f"the Davidson tie parameter nu must be positive, got {nu}")
    d = d.float()
    p_chosen = p_chosen.float()
    p_tie = p_tie.float()
    p_rejected = (1.0 - p_chosen - p_tie).clamp_min(0.0)
    log_nu = math.log(nu)
    half = 0.5 * d
    log_z = torch.logsumexp(torch.stack([half, -half, torch.full_like(d, log_nu)]), dim=0)
    return -(p_chosen * (half - log_z) + p_tie * (log_nu - log_z) + p_rejected * (-half - log_z))


@register_loss("margin")
def margin_loss(d: torch.Tensor, margin: torch.Tensor | float) -> torch.Tensor:
    """Bradley-Terry with a margin (Llama 2's reward loss, TRL's ``margin`` column): ``-log sigmoid(d - m)``.

    ``m`` is the pair's margin from the data (a ``margin`` column) or the config's constant; the loss keeps pushing
    until the chosen response leads by more than ``m``.
    """
    return -F.logsigmoid(d.float() - torch.as_tensor(margin, dtype=torch.float32, device=d.device))


def pairwise_logit(
    mean_chosen: torch.Tensor,
    mean_rejected: torch.Tensor,
    var_chosen: torch.Tensor | None = None,
    var_rejected: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-odds that chosen beats rejected, integrating over the rewards' uncertainty when the model has it.

    Without an uncertainty head: ``d = r_c - r_r``. With one, each reward is ``r ~ N(mu, var)`` and the pairwise
    likelihood is the logistic analogue of the probit ``Phi((mu_c - mu_r) / sqrt(1 + var_c + var_r))``:

        P(c > r) = E[sigmoid(r_c - r_r)] ~= sigmoid((mu_c - mu_r) / sqrt(1 + pi (var_c + var_r) / 8))

    (MacKay's probit approximation of the logistic-normal integral), which keeps ``d`` on the same log-odds scale
    as the model without the head. The variance can only pull the probability towards 1/2, so a response the model
    is unsure about makes it less confident about every pair it is in.
    """
    d = mean_chosen.float() - mean_rejected.float()
    if var_chosen is None or var_rejected is None:
        return d
    return d / torch.sqrt(1.0 + (math.pi / 8.0) * (var_chosen.float() + var_rejected.float()))
