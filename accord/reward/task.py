"""The reward task contract: what a kind of reward model supplies to the trainer core.

The core (:class:`accord.reward.RewardTrainer`) owns the loop and knows nothing of what is learned: accelerate,
the optimiser and schedule, gradient accumulation, checkpoints and exact resume, logging, evaluation hooks and
interrupts. A task owns the rest: reading and tokenizing its data, building a batch, the width of the head, the
loss, the evaluation metrics and the statistics saved with the model. :class:`accord.reward.pairwise.PairwiseTask`
(one scalar reward per response, learned from preference pairs) is the worked example.

What the core calls, in order::

    task = get_task(config.task)(config)        # settings checked; the loss looked up in accord.reward.losses.LOSSES
    table = task.read(source)                   # before any model is loaded, so bad input fails fast
    task.check_training(table, source)          # the training table only: can the loss learn from it?
    eval_table = task.read_held_out(eval_source)  # the evaluation data (a DatasetDict's held-out split)
    model = RewardModel.from_backbone(..., num_outputs=task.num_outputs)
    meta = task.bind(tokenizer, model)          # the tokenizer- and model-dependent parts; saved with the model
    data = task.encode(table)                   # token ids and labels
    for each optimisation step:
        step = task.step_context(data, indices of the whole step, every process)
        for each micro-batch: loss, sums = task.compute_loss(model, task.collate(data, indices), step)
    task.evaluate(model, data, table, ...)       # every eval_steps and at the end
    task.reward_stats(model, data, indices, ...)  # saved as reward_stats.json

A new task is a subclass registered with :func:`register_task` (``accord train --task NAME`` then reaches it), or an
instance passed as ``RewardTrainer(config, task=...)``. A per-attribute task returns ``num_outputs = K`` (one
forward pass, ``K`` rewards per response; :class:`accord.reward.model.RewardOutput` is then ``(N, K)``) and masks
the losses of missing attributes; a per-step task puts the positions of its step separators in the batch's
``pool_index`` (the model reads the hidden state there) and reads one score per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from accord.datasets.errors import AccordError
from accord.reward.config import QUOTE, refused
from accord.reward.losses import get_loss
from accord.reward.model import RewardModel


class RewardTask:
    """Base class of reward tasks (see the module docstring for the order of calls).

    Class attributes: ``name`` (``RewardConfig.task``), ``unit`` (what one example is, for logs: ``"pairs"``) and
    ``loss_inputs`` (the inputs :meth:`compute_loss` hands to a loss: a loss that needs any other input than these and
    the config's fields does not fit the task, and the config is refused) and ``ensemble_heads`` (whether the task
    trains a model of several ensemble heads, ``RewardConfig.ensemble_heads``; a config asking for them is refused
    otherwise).
    """

    name: ClassVar[str] = ""
    unit: ClassVar[str] = "examples"
    loss_inputs: ClassVar[frozenset[str]] = frozenset()
    ensemble_heads: ClassVar[bool] = False

    def __init__(self, config: Any):
        self.config = config
        if getattr(config, "ensemble_heads", None) and not self.ensemble_heads:
            raise refused(lambda name: f"the '{self.name}' task has no ensemble heads ({name} is for the pairwise "
                                       "task)", "ensemble_heads")
        self.loss = get_loss(config.loss)
        fields = {f.name for f in dataclasses.fields(config)}
        missing = self.loss.required - self.loss_inputs - fields
        if missing:
            raise refused(lambda loss, task: (f"{loss.strip(QUOTE)} '{config.loss}' reads {sorted(missing)}, which "
                                              f"the {task.strip(QUOTE)} '{self.name}' does not provide (it provides "
                                              f"{sorted(self.loss_inputs)})"), "loss", "task")
        #: the config settings the loss reads by name (label_smoothing, davidson_nu, ...)
        self.loss_settings = {name: getattr(config, name) for name in self.loss.inputs if name in fields}

    @property
    def num_outputs(self) -> int:
        """Rewards per pooled position: the width of the head (before an uncertainty head doubles it)."""
        return 1

    def read(self, source: Any) -> Any:
        """The examples of ``source`` (a path, a frame, ...) as a table, checked; one clear error on bad input."""
        raise NotImplementedError

    def read_held_out(self, source: Any) -> Any:
        """:meth:`read` of the evaluation data (``eval_path``): a source of several splits (a saved ``DatasetDict``)
        is read by its held-out one, not the training one: :meth:`read` within
        :func:`accord.reward.data.reading_for` ``("held_out")``, for every task alike (was: the pairwise task alone;
        the step and attribute tasks evaluated on the ``train`` split of an ``eval_path`` folder)."""
        from accord.reward.data import reading_for

        with reading_for("held_out"):
            return self.read(source)

    def check_training(self, table: Any, source: str | None = None) -> None:
        """Refuse, in one clear error, training examples the loss cannot learn from (what :meth:`read` returned for
        the training data, read from the file ``source`` when it was a file; evaluation data is not checked).
        Nothing by default."""

    def resume_settings(self) -> dict[str, Any]:
        """What the task read from its training data that shapes the model (beyond the config's settings): a
        checkpoint records it, and a run resumed from that checkpoint must read alike (:meth:`check_resume`). Nothing
        by default."""
        return {}

    def check_resume(self, saved: dict[str, Any], checkpoint: str) -> None:
        """Refuse, in one clear error naming ``checkpoint``, a resumed run whose training data give other
        :meth:`resume_settings` than the checkpoint ``saved`` (empty for a checkpoint of an older version). Nothing
        by default."""

    def bind(self, tokenizer: Any, model: Any) -> dict[str, Any]:
        """Set up what depends on the tokenizer and the model (an encoder, a collator); return the settings to save
        in the model's metadata so that evaluation and scoring encode text the same way."""
        raise NotImplementedError

    def encode(self, table: Any) -> Any:
        """Tokenized examples with their labels: a sized object the other methods index."""
        raise NotImplementedError

    def cost(self, data: Any) -> np.ndarray:
        """Each example's cost (tokens, or the longest sequence when padded), for length-grouped batches."""
        raise NotImplementedError

    def collate(self, data: Any, indices: Sequence[int]) -> dict[str, Any]:
        """One micro-batch: the model's inputs (:data:`accord.reward.model.RewardModel.INPUTS`), the labels, and
        ``n_tokens`` (real tokens, for the throughput log)."""
        raise NotImplementedError

    def step_context(self, data: Any, indices: np.ndarray) -> dict[str, Any]:
        """What the loss needs to know about the whole optimisation step (every micro-batch on every process), so
        that the gradient does not depend on how the step is split: at least ``n_examples``."""
        return {"n_examples": len(indices)}

    def compute_loss(self, model: torch.nn.Module, batch: dict[str, Any],
                     step: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The micro-batch's loss, scaled so that the micro-batches of one step add up to the step's loss, and the
        sums to log (detached; each is divided by the examples of the logging window, e.g. ``{"loss": ...,
        "accuracy": ...}``)."""
        raise NotImplementedError

    def evaluate(self, model: Any, data: Any, table: Any, *, device: torch.device, batch_size: int,
                 progress: bool) -> dict[str, float]:
        """Metrics of ``model`` on evaluation data (``table`` is what :meth:`read` returned for it)."""
        raise NotImplementedError

    def reward_stats(self, model: Any, data: Any, indices: np.ndarray, *, device: torch.device, batch_size: int,
                     progress: bool) -> dict[str, Any] | None:
        """Statistics of the rewards on the training examples ``indices`` (``reward_stats.json``), or ``None``."""
        return None


#: The tasks by name (``RewardConfig.task``), filled by :func:`register_task`.
TASKS: dict[str, type[RewardTask]] = {}


def register_task(cls: type[RewardTask] | None = None, *, replace: bool = False) -> Any:
    """Class decorator: add a task to :data:`TASKS` under its ``name``.

    A name already taken (a built-in task's included) is refused unless ``@register_task(replace=True)`` asks to
    replace the task registered under it.
    """

    def add(cls: type[RewardTask]) -> type[RewardTask]:
        if not cls.name:
            raise AccordError(f"task class {cls.__name__} needs a name")
        if cls.name in TASKS and TASKS[cls.name] is not cls and not replace:
            raise AccordError(f"a task named '{cls.name}' is already registered ({TASKS[cls.name].__name__}): give "
                              f"{cls.__name__} another name, or register it with register_task(replace=True)")
        TASKS[cls.name] = cls
        return cls

    return add if cls is None else add(cls)


def task_names() -> list[str]:
    """The names of the registered tasks (the built-in ones included)."""
    import accord.reward.attributes  # noqa: F401 - registers the built-in tasks (imported here: no import cycle)
    import accord.reward.pairwise  # noqa: F401
    import accord.reward.steps  # noqa: F401

    return sorted(TASKS)


def get_task(name: str) -> type[RewardTask]:
    """The registered task called ``name``, or one clear error listing the names there are."""
    if name not in task_names():
        raise AccordError(f"config: unknown task '{name}' (use one of {sorted(TASKS)})")
    return TASKS[name]


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The entries of a batch the model's ``forward`` takes (the rest are labels and counts)."""
    return {name: batch[name] for name in RewardModel.INPUTS if name in batch}
