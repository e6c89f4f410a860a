"""``RewardTrainer``: the trainer core, a plain training loop over accelerate (one process, DDP or FSDP).

The core owns what every reward model shares: the accelerator, the model's set-up (LoRA, frozen layers, activation
checkpointing, compilation), the optimiser and schedule, gradient accumulation, checkpoints and exact resume,
logging, evaluation hooks and interrupts. What is learned - data, batch, head width, loss, metrics - comes from a
*task* (:mod:`accord.reward.task`; the default is the pairwise preference task, :mod:`accord.reward.pairwise`).

One optimisation step = ``gradient_accumulation_steps`` micro-batches on each of ``world_size`` processes. Every
process computes the same epoch's batch order (:func:`accord.reward.data.length_grouped_batches`), so each knows
the whole step's examples; the task scales each micro-batch's loss so that the step's micro-batches add up to the
step's loss, and the core multiplies by the world size, which DDP's gradient averaging divides away again. The
gradient is then the same whatever the split into micro-batches and processes.

Checkpoints (``output_dir/checkpoints/step-NNNNNNN``) hold the model, optimiser, scheduler and every process's RNG
states (``accelerate.save_state``), each process's sums since the last log line (``log_window_<rank>.json``, so that a
resumed run logs what an uninterrupted one does) plus ``trainer_state.json`` (the step, hence the data position; the
seed and the number of examples, which set the batch order; the sizes of the other files, so that resuming one copied in
part is refused naming the file). They are written to a ``.partial`` folder and renamed when complete, so a run killed
while writing leaves the previous checkpoint intact (a write that fails removes the ``.partial`` folder; one being
deleted loses its ``trainer_state.json`` first). Resuming recomputes the epoch's batch order and skips the batches
already done; the checkpoint records that order, and a run whose settings or data order the batches otherwise is
refused, as is one with another model (:data:`MODEL_SETTINGS`), loss or optimiser (:data:`TRAINING_SETTINGS`). Resuming
from a checkpoint older than the newest in ``output_dir/checkpoints`` (``--resume-from`` a ``step-N`` folder while a run
that went on to ``step-M``, ``M > N``, left later ones) abandons that continuation: at resume, before the first step,
the checkpoints after step ``N`` are removed, with a line saying which (as ``metrics.jsonl`` loses its lines after step
``N``), so that ``--resume-from latest`` takes this run's newest checkpoint, or ``step-N`` until it saves one, never the
abandoned run's. A fresh run (no ``resume_from``) in a folder holding checkpoints is refused before a model loads,
unless ``overwrite_output_dir``, which removes them all at the start. A run over a finished model logs to
``metrics.next.jsonl``, which lands as ``metrics.jsonl`` with its model: until then the earlier model keeps its own log.
A run resumed from another folder's checkpoint starts its log from the log of the run that saved it. An interrupt
(Ctrl-C, SIGINT, or SIGTERM, which a cluster scheduler sends to pre-empt a job) lets the running step finish, saves a
checkpoint and raises :class:`TrainingInterrupted`; a second one stops at once, and the :class:`TrainingInterrupted`
names the last checkpoint saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accord._session import seed_everything
from accord.datasets.errors import AccordError, SettingError, SettingWarning, naming_file
from accord.datasets.io import WriteError, atomic_path, check_output_folder, json_text
from accord.reward.calibration import CALIBRATION_KEY
from accord.reward.config import QUOTE, RewardConfig, assigned, refused
from accord.reward.data import TokenizedPairs, ensure_pad_token, length_grouped_batches, warn_cut
from accord.reward.model import (
    META_FILE,
    METRICS_FILE,
    NEXT_METRICS_FILE,
    RewardModel,
    apply_lora,
    compile_repeated_blocks,
    freeze_lower_layers,
    give_usual_modes,
    load_tokenizer,
    resolve_model_path,
)
from accord.reward.task import RewardTask, get_task

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
WINDOW_FILE = "log_window_{rank}.json"  # a process's sums since the last log line, in a checkpoint
#: The settings besides the seed and the data that set the batch order (the examples' costs and how they are cut
#: into batches): a checkpoint records them, and a resumed run that orders its batches otherwise names them
BATCH_ORDER_SETTINGS = ("batch_size", "group_by_length", "max_length", "packing")
#: The settings that shape the model a checkpoint's states are loaded into (its head, adapters, what trains): a
#: resumed run must keep them (the backbone's path may change: a folder moved)
MODEL_SETTINGS = ("task", "pooling", "uncertainty_head", "ensemble_heads", "lora", "lora_r", "lora_target_modules",
                  "freeze_layers")
#: The settings of what the model is trained towards and how: the loss, and the optimiser's, whose values a resumed
#: run takes from the checkpoint's optimiser state whatever it is given (a resumed --learning-rate was ignored while
#: reward_config.json recorded it): a resumed run must keep them
TRAINING_SETTINGS = ("loss", "label_smoothing", "davidson_nu", "margin", "center_rewards_coefficient", "learning_rate",
                     "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon")
CONFIG_FILE = "reward_config.json"
LEARNS_BEGINNING = "the model learns from only their beginning"
EVALUATES_BEGINNING = "the evaluation reads only their beginning"
#: what a cut does to steps, for what it does to responses
STEP_CUT_EFFECTS = {
    LEARNS_BEGINNING: "the model learns no label of a step left out (a first step cut is read from its beginning)",
    EVALUATES_BEGINNING: "the evaluation scores no step left out (a first step cut is read from its beginning)"}


@dataclass
class TrainResult:
    """What :func:`train` returns: where the model is, how far training got and how fast it went."""

    output_dir: Path
    global_step: int
    train_loss: float  # mean loss over the last logging window
    train_seconds: float  # the training loop's wall time (no tokenizing, loading or final save)
    examples: int  # examples (pairs, for the pairwise task) processed by this run, all processes; a resumed run
    # counts only its own
    tokens: int  # real (non-pad) tokens processed by this run
    unit: str = "pairs"  # what one example is
    truncation: dict[str, int] = field(default_factory=dict)
    eval_metrics: dict[str, float] | None = None
    peak_memory_mb: float | None = None
    resumed_from: str | None = None

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds > 0 else float("nan")


class TrainingInterrupted(KeyboardInterrupt):
    """An interrupt stopped :meth:`RewardTrainer.train`; ``checkpoint`` is the resumable checkpoint it saved
    (``None``: it stopped before the first step and removed what it had written). ``str()`` says which;
    ``signum`` is the signal that asked first (SIGINT or SIGTERM: the command line exits with 128 + it)."""

    def __init__(self, message: str, checkpoint: Path | None, signum: int = signal.SIGINT):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.signum = int(signum)


def lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    """Multiplier of the learning rate at step ``s``: linear warm-up over ``warmup`` steps, then cosine (to 0),
    linear (to 0) or constant decay until ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class RewardTrainer:
    """Trains a :class:`RewardModel` on a task's data (see the module docstring for the step's arithmetic).

    ``task``: a :class:`accord.reward.task.RewardTask` instance (default: the task ``config.task`` names, built from
    ``config``). ``model``/``tokenizer``/``train_data``/``eval_data`` may be passed ready-made (the benchmarks do);
    by default they come from ``config.model``, ``config.train_path`` and ``config.eval_path``. ``callbacks`` are
    called as ``callback(trainer, state)`` after every optimisation step (after any checkpoint of that step),
    ``state`` a dict with ``step``, ``loss`` (the mean of the last logging window: the loop reads losses from the
    device only on logging steps) and ``lr``.
    """

    def __init__(self, config: RewardConfig, *, task: RewardTask | None = None, model: RewardModel | None = None,
                 tokenizer: Any = None, train_data: Any = None, eval_data: Any = None,
                 callbacks: Sequence[Callable[["RewardTrainer", dict[str, Any]], None]] = ()):
        config.validate()
        # the trainer's own copy: a saved reward model fills in the settings its head fixes (_saved_reward_model),
        # which the caller's config keeps as given
        config = dataclasses.replace(config)
        if model is None and not config.model:
            raise refused(lambda n: f"{n} is required (a local folder or a hub name)", "model")
        if train_data is None and not config.train_path:
            raise refused(lambda n: f"{n} is required", "train_path")
        if config.eval_steps and eval_data is None and not config.eval_path:
            raise refused(lambda n, path: f"{n} evaluates on {path.strip(QUOTE)}, which is unset (give "
                          f"{path.strip(QUOTE)}, or leave {n.strip(QUOTE)} unset)", "eval_steps", "eval_path")
        try:
            check_output_folder(config.output_dir, "output_dir", "the reward model (new or an earlier output)")
        except AccordError as err:  # its message starts with the name it was given: the flag's on the command line
            rest = str(err).removeprefix("output_dir")
            raise SettingError("output_dir", lambda name: name + rest) from err
        self.config = config
        self.task = task if task is not None else get_task(config.task)(config)
        self.callbacks = list(callbacks)
        self.accelerator = _accelerator(config.mixed_precision)
        self.output_dir = Path(config.output_dir).expanduser()
        if model is None:
            self._refuse_writing_over_the_backbone()
        self._check_earlier_run()

        # the data is read first: a wrong path fails before a model is loaded
        source = train_data if train_data is not None else config.train_path
        self.train_table = self.task.read(source)
        self.task.check_training(self.train_table, str(source) if isinstance(source, (str, os.PathLike)) else None)
        self.eval_table = None
        if eval_data is not None or config.eval_path:
            self.eval_table = self.task.read_held_out(eval_data if eval_data is not None else config.eval_path)
        self._say(f"loading {config.model or 'the model'} and tokenizing {len(self.train_table):,} training "
                  f"{self.task.unit}")
        with library_bars(config.progress):
            model, self.tokenizer = self._set_up_model(model, tokenizer)
        model.check_max_length(config.max_length, "config: ")
        if config.attn_implementation == "flex_attention" and self.accelerator.device.type == "cpu":
            # torch's NotImplementedError at the first backward pass otherwise (and with a shared prompt or a packed
            # encoder, a crash in the first forward pass: RewardModel.check_dense_mask)
            raise refused(lambda n: f"{n.strip(QUOTE)} 'flex_attention' trains on a GPU only (torch's flex "
                          "attention has no backward pass on the CPU); leave it unset (sdpa) on the CPU",
                          "attn_implementation")
        model.meta.update(task=self.task.name, **self.task.bind(self.tokenizer, model))
        # (a chat template's refusal named the row, not the file)
        with naming_file(source if isinstance(source, (str, os.PathLike)) else None):
            self.train_data = self.task.encode(self.train_table)
        self._warn_cut(self.train_data, LEARNS_BEGINNING)
        self.eval_data = None if self.eval_table is None else self._encode_eval(eval_data, config.eval_path)
        self._plan_steps()
        self._set_up_optimisation(model)
        self.global_step = 0
        self.resumed_from: str | None = None
        # what a checkpoint saved of the logging window it was written in (and the last logged loss): a resumed
        # run's next log line then covers the same steps as an uninterrupted run's
        self._window: _Window | None = None
        self._resumed_window: dict[str, Any] | None = None
        self._last_loss = float("nan")
        self._resumed_at_the_end = False  # resumed from a checkpoint of the run's last step (_maybe_resume)
        self._wrote_config = False  # whether this run wrote reward_config.json at its start (_start_output)
        self._metrics_path = self.output_dir / METRICS_FILE  # this run's log (_start_output)

    # ------------------------------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------------------------------

    def _encode_eval(self, eval_data: Any, eval_path: str | None) -> Any:
        """The evaluation data encoded, its warnings naming it: one about the training data (responses cut to the
        same tokens) was said again of the evaluation data in the same words, and could not be told from it."""
        named = eval_data if isinstance(eval_data, (str, os.PathLike)) else eval_path if eval_data is None else None
        with warnings.catch_warnings(record=True) as said, naming_file(named):
            encoded = self.task.encode(self.eval_table)
            self._warn_cut(encoded, EVALUATES_BEGINNING)
        for warning in said:
            said_of = warning.message
            if isinstance(said_of, SettingWarning) and eval_data is None and eval_path:
                message: Warning = SettingWarning("eval_path", lambda flag, *names, said_of=said_of: (
                    f"{flag} {eval_path}: {said_of.naming(*names)}"), *said_of.settings)
            else:
                message = warning.category(f"evaluation data: {said_of}")
            warnings.warn_explicit(message, warning.category, warning.filename, warning.lineno)
        return encoded

    def _warn_cut(self, data: Any, effect: str) -> None:
        """One warning counting the responses (or steps) max_length cut (a task whose data counts them): the count
        was in the printed JSON alone, and `accord train --max-length 8` cut every response without a word."""
        truncation = getattr(data, "truncation", {})
        if "truncated_responses" in truncation:
            what = "responses of the pairs" if isinstance(getattr(data, "pairs", data), TokenizedPairs) else "responses"
            warn_cut(truncation["truncated_responses"], truncation["sequences"], what, self.config.max_length,
                     effect, stacklevel=3)
        elif "truncated_steps" in truncation and not getattr(data, "outcomes_left_out", 0):
            # a process reward model's steps (the outcome-only target warns itself of the solutions it leaves out):
            # training on them said nothing of the steps max_length left out of the loss
            warn_cut(truncation["truncated_steps"], data.steps_given, "steps", self.config.max_length,
                     STEP_CUT_EFFECTS[effect], stacklevel=3)

    def _saved_reward_model(self, folder: Path) -> RewardModel:
        """The reward model saved in ``folder`` (what ``model`` names), head and all, to train on from where it
        stopped: the folder's backbone was loaded under a new head, and what the saved head had learned was silently
        dropped. Settings of the model that the saved one fixes must agree with it."""
        cfg = self.config
        # float32 whatever it was saved in: the optimiser's weights (mixed precision is the autocast's)
        model = RewardModel.from_pretrained(folder, attn_implementation=cfg.attn_implementation, dtype=torch.float32)
        # a setting left at its default is unset: the saved head's own (was: a model saved with an uncertainty head
        # or ensemble heads went on training only when the setting was given again, the error saying to leave it
        # unset, or that ensemble_heads, not given, asked for 1)
        for settings in [cfg] if self.task.config is cfg else [cfg, self.task.config]:  # and a task's given
            if not settings.uncertainty_head and model.uncertainty_head:
                settings.uncertainty_head = True
            if settings.ensemble_heads is None and model.ensemble_heads > 1:
                settings.ensemble_heads = model.ensemble_heads
        fixed = (("pooling", cfg.pooling, model.pooling), ("disable_dropout", cfg.disable_dropout, True),
                 ("uncertainty_head", cfg.uncertainty_head, model.uncertainty_head))
        conflicts = [(name, asked, saved) for name, asked, saved in fixed
                     if asked != saved and not (name == "pooling" and asked == "auto")]
        if conflicts:
            def message(*names: str) -> str:
                # as the user writes each: '--no-uncertainty-head', not '--uncertainty-head False' (a switch)
                asked = "; ".join(f"{assigned(name, value)} (the saved model's: {assigned(name, saved)})"
                                  for name, (_, value, saved) in zip(names, conflicts))
                return (f"model {cfg.model}: a saved reward model goes on training with its own head, which fixes "
                        f"what these settings ask otherwise: {asked}; leave them unset, or name its base backbone to "
                        "start a new head")

            first, *others = (name for name, _, _ in conflicts)
            raise SettingError(first, message, *others)
        # a temperature fitted to the saved model's log-odds (accord calibrate) says nothing about the model this
        # training makes: kept in its metadata, evaluate and score applied it to the new model's log-odds, unsaid;
        # the new model is calibrated on its own (accord calibrate again)
        model.meta.pop(CALIBRATION_KEY, None)
        return model

    def _set_up_model(self, model: RewardModel | None, tokenizer: Any) -> tuple[RewardModel, Any]:
        """The model (loaded unless given) with the config's training set-up, and its tokenizer."""
        cfg = self.config
        seed_everything(cfg.seed)  # the head's initialisation
        saved = Path(resolve_model_path(cfg.model)) if model is None and cfg.model else None
        if saved is not None and (saved / META_FILE).is_file():
            model = self._saved_reward_model(saved)
        heads = cfg.ensemble_heads or 1
        if model is None:
            model = RewardModel.from_backbone(cfg.model, pooling=cfg.pooling, uncertainty_head=cfg.uncertainty_head,
                                              num_outputs=self.task.num_outputs,
                                              attn_implementation=cfg.attn_implementation,
                                              dropout=not cfg.disable_dropout, ensemble_heads=heads,
                                              head_seed=cfg.seed if heads > 1 else None)
        elif model.num_outputs != self.task.num_outputs:
            raise AccordError(f"the model's head has {model.num_outputs} outputs; the '{self.task.name}' task needs "
                              f"{self.task.num_outputs}")
        elif model.ensemble_heads != heads:
            raise SettingError("ensemble_heads", lambda name: (
                f"the model has {model.ensemble_heads} ensemble heads; {name} asks for {heads}"))
        name = cfg.model or model.meta.get("base_model", "(given)")
        if tokenizer is None:
            tokenizer = load_tokenizer(resolve_model_path(name), name)
        ensure_pad_token(tokenizer, name)
        model.check_token("pad token", tokenizer.pad_token, tokenizer.pad_token_id, f"model {name}: ")
        if cfg.freeze_layers:
            freeze_lower_layers(model.backbone, cfg.freeze_layers)
        if cfg.lora:
            apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)
        if cfg.gradient_checkpointing:
            backbone = model.backbone
            if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5
                backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if cfg.freeze_layers:
                # transformers >= 5 also makes the embeddings' output require a gradient (for reentrant checkpoints
                # and adapters); with the embeddings frozen and non-reentrant checkpoints nothing needs it, and it
                # sent the backward pass through the frozen layers, recomputing each, which freezing them was to save
                with contextlib.suppress(AttributeError):  # transformers 4: no such hook to remove
                    backbone.disable_input_require_grads()
        if cfg.torch_compile:
            compile_repeated_blocks(model.backbone)
        return model, tokenizer

    def _plan_steps(self) -> None:
        """Steps per epoch and in all, from the data, the batch size and the processes."""
        cfg, world = self.config, self.accelerator.num_processes
        self.micro_per_step = cfg.gradient_accumulation_steps * world
        self._cost = self.task.cost(self.train_data)
        n_micro = len(self._epoch_batches(0))
        self.steps_per_epoch = n_micro // self.micro_per_step
        if self.steps_per_epoch == 0:
            raise AccordError(
                f"{len(self.train_data)} training {self.task.unit} make {n_micro} batches of {cfg.batch_size}: fewer "
                f"than one step needs ({cfg.gradient_accumulation_steps} accumulation x {world} processes)")
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.num_epochs * self.steps_per_epoch))

    def _set_up_optimisation(self, model: RewardModel) -> None:
        """AdamW (no decay on biases and norms) and the warm-up schedule, around the prepared model."""
        from accelerate.utils import DistributedType

        cfg, acc = self.config, self.accelerator
        # the model is prepared (wrapped for DDP / sharded for FSDP) before the optimizer sees its parameters
        self.model = acc.prepare(model)
        decay, no_decay = [], []
        for param in self.model.parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 else no_decay).append(param)
        # one fused kernel per parameter group on a GPU (sharded FSDP parameters keep the default implementation)
        fused = acc.device.type == "cuda" and acc.distributed_type != DistributedType.FSDP
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon, fused=fused or None)
        self.optimizer = acc.prepare(optimizer)
        warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(cfg.warmup_ratio * self.total_steps)
        # the scheduler is stepped once per optimisation step by this loop (not prepared: accelerate would step it
        # once per process), and checkpointed with the rest
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.optimizer,
                                                           lr_lambda(cfg.lr_scheduler, warmup, self.total_steps))
        acc.register_for_checkpointing(self.scheduler)

    # ------------------------------------------------------------------------------------------------------------------
    # data order
    # ------------------------------------------------------------------------------------------------------------------

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return length_grouped_batches(self._cost, self.config.batch_size, self.config.seed, epoch,
                                      self.config.group_by_length)

    def _step_batches(self, batches: list[np.ndarray], step_in_epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """This process's micro-batches of a step, and the example indices of the whole step (every process)."""
        start = step_in_epoch * self.micro_per_step
        step = batches[start:start + self.micro_per_step]
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        return step[rank::world], np.concatenate(step)

    # ------------------------------------------------------------------------------------------------------------------
    # the loop
    # ------------------------------------------------------------------------------------------------------------------

    def train(self) -> TrainResult:
        """Train to ``total_steps`` (from a checkpoint with ``resume_from``), evaluate, save the model."""
        cfg, acc = self.config, self.accelerator
        with _InterruptFlag() as interrupt:
            self._maybe_resume()
            if interrupt.requested:  # while the checkpoint loaded: before the output folder is touched (its start
                # trims the log, removes later or earlier checkpoints, writes the config), as the line says
                raise TrainingInterrupted("interrupted before the first training step: nothing written", None,
                                          interrupt.signum)
            created = self._start_output()
            if interrupt.requested:  # before the first step: nothing worth keeping
                self._remove_start(created)
                raise TrainingInterrupted("interrupted before the first training step: nothing written", None,
                                          interrupt.signum)
            start = time.perf_counter()
            try:
                examples, tokens, last_loss = self._loop(interrupt)
            except TrainingInterrupted:
                raise
            except KeyboardInterrupt as stopped:  # a second Ctrl-C: at once, not at the step's end
                raise self._interrupted_unsaved(interrupt.signum) from stopped
            train_seconds = time.perf_counter() - start
            device = acc.device
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
            if acc.num_processes > 1:
                eval_metrics, tokens = self._finish_together(interrupt, tokens)
            else:
                eval_metrics = self._finish_alone(interrupt)
        return TrainResult(output_dir=self.output_dir, global_step=self.global_step, train_loss=last_loss,
                           train_seconds=train_seconds, examples=examples, tokens=tokens, unit=self.task.unit,
                           truncation=getattr(self.train_data, "truncation", {}), eval_metrics=eval_metrics,
                           peak_memory_mb=peak, resumed_from=self.resumed_from)

    def _finish_alone(self, interrupt: "_InterruptFlag") -> dict[str, float] | None:
        """One process: the final evaluation and save, where an interrupt stops at once (the evaluation is done again
        on resume), SIGTERM as Ctrl-C: SIGTERM's default ended the run while it evaluated or saved, with no
        checkpoint of its last step. One asked since the last step's end was checked stops the run at this point too."""
        try:
            interrupt.at_once(pending=True)
            eval_metrics = None
            if self.eval_data is not None:
                eval_metrics = self.evaluate(progress=self.config.progress)
                self._log({"step": self.global_step, **{f"eval_{k}": v for k, v in eval_metrics.items()}})
            self.save_model()
        except KeyboardInterrupt as interrupted:
            try:
                checkpoint = self.save_checkpoint()
            except KeyboardInterrupt as again:
                raise self._interrupted_unsaved(interrupt.signum) from again
            raise self._interrupted_after_training(checkpoint, interrupt.signum) from interrupted
        return eval_metrics

    def _finish_together(self, interrupt: "_InterruptFlag", tokens: int) -> tuple[dict[str, float] | None, int]:
        """Several processes: the final evaluation and save, with every process stopping together, for the same
        signal. The evaluation has no collective, so a signalled process leaves its own at once and waits at the
        reduction that follows (the tokens' sum, made anyway), where all agree whether any was asked to stop: since
        the last step's agreement, while it logged, evaluated, saved or ran the callbacks, or while it evaluated
        now. The save has collectives (a barrier; FSDP's state dict): a process that left it would leave the others
        waiting there, so a signal in it waits for its end and one more reduction after that barrier, which every
        process reaches from the barrier with nothing between that could raise. Was: the signalled process raised a
        bare KeyboardInterrupt, with no checkpoint, and one not signalled named SIGINT when the signal was SIGTERM.
        Returns the metrics and ``tokens`` summed over the processes."""
        acc = self.accelerator
        interrupt.at_once(pending=False)
        eval_metrics = None
        try:
            try:
                if self.eval_data is not None and not interrupt.requested:
                    eval_metrics = self.evaluate(progress=self.config.progress)
            finally:
                interrupt.defer()
        except KeyboardInterrupt:
            pass  # this process was asked: the others learn it at the reduction
        tokens, signum = _agree(acc, interrupt, tokens)
        if not signum:
            if eval_metrics is not None:
                self._log({"step": self.global_step, **{f"eval_{k}": v for k, v in eval_metrics.items()}})
            self.save_model()
            signum = _agree(acc, interrupt, 0)[1]
        if signum:
            interrupt.signum = signum
            try:
                checkpoint = self.save_checkpoint()
            except KeyboardInterrupt as again:
                raise self._interrupted_unsaved(signum) from again
            raise self._interrupted_after_training(checkpoint, signum)
        return eval_metrics, tokens

    @staticmethod
    def _interrupted_after_training(checkpoint: Path, signum: int) -> TrainingInterrupted:
        """An interrupt after the last training step (while it logged, evaluated or saved): the checkpoint of that
        step, from which a resumed run only evaluates and saves."""
        return TrainingInterrupted(f"interrupted after the last training step: saved a resumable checkpoint to "
                                   f"{checkpoint} (resuming with --resume-from latest only evaluates and saves)",
                                   checkpoint, signum)

    def _interrupted_unsaved(self, signum: int = signal.SIGINT) -> TrainingInterrupted:
        """An interrupt that stopped the run at once (a second Ctrl-C), not at a step's end: it names the last
        checkpoint saved, which resuming continues. Was: `accord train` said "interrupted before training started:
        nothing written" of a run that had written its log and checkpoints."""
        latest = self.latest_checkpoint()
        done = f"interrupted after {self.global_step} of {self.total_steps} steps"
        if latest is None:
            return TrainingInterrupted(f"{done}, before any checkpoint was saved: nothing to resume (the log holds "
                                       "the steps done)", None, signum)
        again = "" if _checkpoint_step(latest) == self.global_step else ", which trains the steps after it again"
        return TrainingInterrupted(f"{done}: the last resumable checkpoint is {latest} (continue with --resume-from "
                                   f"latest{again})", latest, signum)

    @contextlib.contextmanager
    def _writing(self, what: str, *, resume: bool = True) -> Any:
        """An OSError while writing (a full disk, no permission) as one line: ``what`` failed, why, and (``resume``)
        the checkpoint that resumes the run. Was a torch, safetensors or transformers traceback ending in "OSError:
        [Errno 28] No space left on device", naming neither the folder nor what was kept."""
        try:
            yield
        except (OSError, WriteError) as err:  # WriteError: atomic_path's, which named only the file
            cause = err.reason if isinstance(err, WriteError) else err
            said = f"{what}: {cause.strerror or cause}"
            if resume:
                latest = self.latest_checkpoint()
                said += (f"; the last resumable checkpoint is {latest} (continue with --resume-from latest once it "
                         "can be written)" if latest else "; no checkpoint of this run to resume")
            raise AccordError(said) from err

    def _loop(self, interrupt: "_InterruptFlag") -> tuple[int, int, float]:
        """The optimisation steps; returns the examples and tokens this process saw and the last logged loss."""
        from tqdm.auto import tqdm

        cfg, acc, task = self.config, self.accelerator, self.task
        device, world = acc.device, acc.num_processes
        # the window's sums stay on the device: the host reads them (a GPU sync) only on logging steps, so the next
        # step's batch is built while the GPU still works on this one
        window = self._window = _Window(device, self._resumed_window)
        run_examples = run_tokens = 0
        last_loss = self._last_loss
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        bar = tqdm(total=self.total_steps, initial=self.global_step, desc="training", unit="step",
                   disable=not (cfg.progress and acc.is_main_process), dynamic_ncols=True)
        self.model.train()
        epoch, batches = -1, []
        while self.global_step < self.total_steps:
            step_epoch, step_in_epoch = divmod(self.global_step, self.steps_per_epoch)
            if step_epoch != epoch:
                epoch, batches = step_epoch, self._epoch_batches(step_epoch)
            mine, whole_step = self._step_batches(batches, step_in_epoch)
            step = task.step_context(self.train_data, whole_step)
            for k, indices in enumerate(mine):
                batch = _to_device(task.collate(self.train_data, indices), device)
                with (acc.no_sync(self.model) if k < len(mine) - 1 else _nullcontext()):
                    loss, sums = task.compute_loss(self.model, batch, step)
                    acc.backward(loss * world)  # DDP averages the processes' gradients; the step's loss is their sum
                window.add(sums, batch["n_tokens"])
                run_tokens += batch["n_tokens"]
            grad_norm = None
            if cfg.max_grad_norm:
                grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.global_step += 1
            bar.update(1)
            window.examples += len(whole_step)
            run_examples += len(whole_step)
            lr = self.scheduler.get_last_lr()[0]
            stop = interrupt.requested if world == 1 else False
            if self.global_step % cfg.logging_steps == 0 or self.global_step == self.total_steps:
                # several processes agree on stopping here, where they meet anyway
                means, tokens, agreed = window.reduce(acc, interrupt)
                if agreed:  # every process names the same signal (was: one not signalled said SIGINT)
                    stop, interrupt.signum = True, agreed
                elapsed = max(time.perf_counter() - window.started, 1e-9)
                record = {"step": self.global_step, "epoch": round(self.global_step / self.steps_per_epoch, 4),
                          **means, "lr": lr, "grad_norm": None if grad_norm is None else float(grad_norm),
                          f"{task.unit}_per_s": window.examples / elapsed, "tokens_per_s": tokens / elapsed}
                last_loss = self._last_loss = record.get("loss", float("nan"))
                self._log(record)
                bar.set_postfix({k: f"{v:.4f}" for k, v in means.items()})
                window = self._window = _Window(device)
            if cfg.eval_steps and self.eval_data is not None and self.global_step % cfg.eval_steps == 0 \
                    and self.global_step < self.total_steps:
                self._log({"step": self.global_step, **{f"eval_{k}": v for k, v in self.evaluate().items()}})
            saved = None
            if cfg.save_steps and self.global_step % cfg.save_steps == 0 and self.global_step < self.total_steps:
                saved = self.save_checkpoint()
            for callback in self.callbacks:
                callback(self, {"step": self.global_step, "loss": last_loss, "lr": lr})
            # one process: an interrupt asked while this step logged, evaluated, saved or ran the callbacks stops at
            # this step too (at the last step it was dropped: the run evaluated, saved and said it had finished)
            stop = stop or (world == 1 and interrupt.requested)
            if stop:
                bar.close()
                checkpoint = saved or self.save_checkpoint()
                if self.global_step == self.total_steps:
                    raise self._interrupted_after_training(checkpoint, interrupt.signum)
                raise TrainingInterrupted(f"interrupted at step {self.global_step} of {self.total_steps}: saved a "
                                          f"resumable checkpoint to {checkpoint} (continue with --resume-from "
                                          f"latest)", checkpoint, interrupt.signum)
        bar.close()
        return run_examples, run_tokens, last_loss

    def _start_output(self) -> bool:
        """Create the output folder and write the config (main process); whether the folder is new. Over a finished
        model (``overwrite_output_dir``, or the library's train run again) the config and the log wait for the new
        model and land with it (:meth:`save_model`): written now, a run cut short left the earlier model's weights
        beside this run's settings, a model that loaded with another's record of how it was trained, and the
        earlier model's log was gone. Until then the run logs to ``metrics.next.jsonl``, which is there from the
        start: a resumed run that finds it takes it for its own log; one that does not, over a finished model,
        resumes a checkpoint of the run that made it, whose log it starts from (trimmed to the step)."""
        created = not self.output_dir.exists()
        self._wrote_config = False
        finished = (self.output_dir / META_FILE).is_file()
        pending = self.output_dir / NEXT_METRICS_FILE
        elsewhere = self._checkpoint_run_elsewhere()
        if self.global_step == 0 or elsewhere is not None:
            self._metrics_path = pending if finished else self.output_dir / METRICS_FILE
        else:
            self._metrics_path = pending if finished or pending.is_file() else self.output_dir / METRICS_FILE
        if self.accelerator.is_main_process:
            with self._writing(f"folder {self.output_dir}: cannot start the run there", resume=False):
                self.output_dir.mkdir(parents=True, exist_ok=True)
                if not finished:
                    self.config.save(self.output_dir / CONFIG_FILE)
                    self._wrote_config = True
                if self.global_step == 0:
                    pending.unlink(missing_ok=True)  # the log of a run cut short before: this one starts afresh
                if elsewhere is not None:
                    # a checkpoint of another folder's run: this run's log is that run's, up to the step (was: this
                    # folder's own, so the log began at the step resumed, or held a finished model's lines there)
                    source = elsewhere / NEXT_METRICS_FILE
                    self._metrics_path.unlink(missing_ok=True)
                    self._trim_metrics(self.global_step, source if source.is_file() else elsewhere / METRICS_FILE)
                    if finished and not pending.is_file():
                        pending.touch()
                elif self._metrics_path == pending and not pending.is_file():
                    # a fresh run's log starts empty; a resumed one goes on from the finished model's own log
                    if self.global_step:
                        self._trim_metrics(self.global_step, self.output_dir / METRICS_FILE)
                    if not pending.is_file():
                        pending.touch()
                else:
                    self._trim_metrics(self.global_step)
            self._remove_abandoned_checkpoints()
        return created

    def _checkpoint_run_elsewhere(self) -> Path | None:
        """The output folder of the run that saved the checkpoint resumed (``<folder>/checkpoints/step-N``) when it
        is not this run's, else ``None``."""
        if self.resumed_from is None:
            return None
        checkpoint = Path(self.resumed_from)
        run = checkpoint.parent.parent
        if checkpoint.parent.name != CHECKPOINTS or not run.is_dir():
            return None
        if self.output_dir.exists() and os.path.samefile(run, self.output_dir):
            return None
        return run

    def _remove_start(self, created: bool) -> None:
        if not self.accelerator.is_main_process or self.global_step > 0:
            return
        if self._wrote_config:  # a finished model's own config stays
            (self.output_dir / CONFIG_FILE).unlink(missing_ok=True)
        (self.output_dir / NEXT_METRICS_FILE).unlink(missing_ok=True)
        if created and self.output_dir.exists() and not any(self.output_dir.iterdir()):
            self.output_dir.rmdir()

    def _say(self, line: str) -> None:
        """A line about a phase that has no bar of its own (on the main process, with ``progress``)."""
        if self.config.progress and self.accelerator.is_main_process:
            print(line, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------------------------------------------------------
    # evaluation, saving, checkpoints
    # ------------------------------------------------------------------------------------------------------------------

    def unwrapped(self) -> RewardModel:
        return self.accelerator.unwrap_model(self.model)

    def evaluate(self, data: Any = None, table: Any = None, *, progress: bool = False) -> dict[str, float]:
        """The task's metrics on the eval data (or on ``data``, encoded, with its ``table``); all processes compute
        them."""
        data = data if data is not None else self.eval_data
        table = table if table is not None else self.eval_table
        if data is None:
            raise AccordError("no evaluation data (set eval_path)")
        progress = progress and self.accelerator.is_main_process
        return self.task.evaluate(self.unwrapped(), data, table, device=self.accelerator.device,
                                  batch_size=self.config.batch_size, progress=progress)

    def stats_sample(self) -> np.ndarray:
        """The training examples whose rewards go into ``reward_stats.json``: a seeded sample of
        ``stats_max_pairs`` (all of them when there are fewer)."""
        n, limit = len(self.train_data), self.config.stats_max_pairs
        if n <= limit:
            return np.arange(n)
        return np.sort(np.random.default_rng([self.config.seed, n]).choice(n, size=limit, replace=False))

    def save_model(self, directory: str | Path | None = None) -> Path:
        """The final model (``save_pretrained`` layout) with ``reward_stats.json`` from the training rewards."""
        acc = self.accelerator
        directory = Path(directory or self.output_dir)
        state = acc.get_state_dict(self.model)  # a collective under FSDP: every process takes part
        model = self.unwrapped()
        try:
            stats = self.task.reward_stats(model, self.train_data, self.stats_sample(), device=acc.device,
                                           batch_size=self.config.batch_size,
                                           progress=self.config.progress and acc.is_main_process)
        except AccordError as err:  # NaN training rewards: name the model they belong to
            raise AccordError(f"{directory}: {err}") from err
        if stats is not None:  # the length the rewards were read at: score at another warns (warn_stats_length)
            stats = {**stats, "max_length": self.config.max_length}
        if acc.is_main_process:
            files = {CONFIG_FILE: self.config.to_json()}  # the settings land with it, and a log kept aside till now
            pending = self._metrics_path if self._metrics_path.name == NEXT_METRICS_FILE else None
            if pending is not None and directory == self.output_dir and pending.is_file():
                files[METRICS_FILE] = pending.read_text(encoding="utf-8")
            earlier = " (the earlier model there is kept as it was)" if (directory / META_FILE).is_file() else ""
            with library_bars(self.config.progress), self._writing(f"folder {directory}: cannot save the reward "
                                                                   f"model{earlier}"):
                model.save_pretrained(directory, tokenizer=self.tokenizer, stats=stats,
                                      extra_meta={"global_step": self.global_step},
                                      state_dict=state if acc.distributed_type.value == "FSDP" else None,
                                      files=files)
            if METRICS_FILE in files:  # landed: the run's log is metrics.jsonl from now on
                pending.unlink(missing_ok=True)
                self._metrics_path = self.output_dir / METRICS_FILE
        acc.wait_for_everyone()
        return directory

    def checkpoint_dir(self) -> Path:
        return self.output_dir / CHECKPOINTS

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step-NNNNNNN`` (atomically: a ``.partial`` folder renamed when complete, removed when
        the writing fails)."""
        final = self.checkpoint_dir() / f"step-{self.global_step:07d}"
        partial = final.with_name(final.name + ".partial")
        try:
            with self._writing(f"folder {final}: cannot write the checkpoint"):
                return self._write_checkpoint(final, partial)
        except BaseException:
            # a checkpoint cut short (a full disk, a second Ctrl-C): its half-written files took the space
            if self.accelerator.is_main_process:
                shutil.rmtree(partial, ignore_errors=True)
            raise

    def _write_checkpoint(self, final: Path, partial: Path) -> Path:
        acc = self.accelerator
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(partial))
        if self._window is not None:  # every process its own sums, as accelerate's RNG states
            (partial / WINDOW_FILE.format(rank=acc.process_index)).write_text(json.dumps(self._window.state()))
        acc.wait_for_everyone()
        if acc.is_main_process:
            state = {"global_step": self.global_step, "steps_per_epoch": self.steps_per_epoch,
                     "total_steps": self.total_steps, "world_size": acc.num_processes, "seed": self.config.seed,
                     "n_examples": len(self.train_data), "last_loss": self._last_loss,
                     "batch_order": self._batch_order(self.global_step),
                     "batch_settings": {name: getattr(self.config, name) for name in BATCH_ORDER_SETTINGS},
                     "model_settings": {name: getattr(self.config, name) for name in MODEL_SETTINGS},
                     "training_settings": {name: getattr(self.config, name) for name in TRAINING_SETTINGS},
                     "task_settings": self.task.resume_settings()}
            # every file's size (every process's, written by now): a resume of a checkpoint copied in part names
            # the file it lacks (_check_checkpoint_files)
            state["files"] = {file.relative_to(partial).as_posix(): file.stat().st_size
                              for file in sorted(partial.rglob("*")) if file.is_file()}
            # a last loss not yet logged (NaN) as null: a bare NaN token is no JSON
            (partial / STATE_FILE).write_text(json_text(state, indent=2))
            _usual_modes_tree(partial)
            _fsync_tree(partial)
            _remove_checkpoint(final)  # one saved at this step before (a resumed run that gets here again)
            os.replace(partial, final)
            self._prune_checkpoints()
        acc.wait_for_everyone()
        return final

    def _prune_checkpoints(self) -> None:
        limit = self.config.save_total_limit
        if not limit:
            return
        done = sorted(p for p in self.checkpoint_dir().glob("step-*") if not p.name.endswith(".partial"))
        for old in done[:-limit]:
            _remove_checkpoint(old)

    def _refuse_writing_over_the_backbone(self) -> None:
        """An ``output_dir`` that is the folder of the backbone ``model`` names (not a saved reward model, which goes
        on training in place) is refused before anything loads: the reward model's backbone weights, config and
        tokenizer were written over the pretrained ones, which were lost without a word."""
        backbone = Path(resolve_model_path(self.config.model))
        if not (backbone.is_dir() and self.output_dir.is_dir() and os.path.samefile(backbone, self.output_dir)):
            return
        if (backbone / META_FILE).is_file():
            return
        raise refused(lambda out, model: (
            f"{out.strip(QUOTE)} {self.config.output_dir}: is the folder of the backbone {model} names; "
            f"the reward model would be written over its weights, config and tokenizer: give another "
            f"{out.strip(QUOTE)}"), "output_dir", "model")

    def _check_earlier_run(self) -> None:
        """A fresh run (no ``resume_from``) in a folder holding an earlier run's checkpoints is refused unless
        ``overwrite_output_dir``: the earlier run's later steps would stay 'latest', and pruning would delete this
        run's checkpoints before them (checked before a model loads)."""
        earlier = self.latest_checkpoint()
        if earlier is None or self.config.resume_from or self.config.overwrite_output_dir:
            return
        raise AccordError(f"folder {self.output_dir}: holds checkpoints of an earlier run (newest {earlier.name}); "
                          "continue it with --resume-from latest, or start afresh with --overwrite-output-dir "
                          "(which removes them) or another --output-dir")

    def _remove_abandoned_checkpoints(self) -> None:
        """Remove the checkpoints after the step this run starts from: on resume, those of a run that went on from
        that checkpoint and was abandoned; on a fresh run (``overwrite_output_dir``), all of them. 'latest' would
        take the newest of them for this run's (module docstring)."""
        if not self.checkpoint_dir().exists():
            return
        later = sorted(p for p in self.checkpoint_dir().glob("step-*")
                       if (step := _checkpoint_step(p)) is not None and step > self.global_step)
        for folder in later:
            _remove_checkpoint(folder)
        # a .partial folder (a run killed while writing it) never was a checkpoint: it goes unsaid (it was called an
        # earlier run's checkpoint removed by overwrite_output_dir, of a run not given it)
        later = [folder for folder in later if not folder.name.endswith(".partial")]
        if not later:
            return
        # said with progress off too: files the user may have expected to keep are gone
        names = ", ".join(p.name for p in later)
        if self.resumed_from is None:
            print(f"starting afresh (overwrite_output_dir): removed {len(later)} checkpoint(s) of an earlier run "
                  f"({names})", file=sys.stderr, flush=True)
            return
        print(f"resuming from step {self.global_step} ({self.resumed_from}): removed {len(later)} later "
              f"checkpoint(s) of the run that went on from it ({names}), so that --resume-from latest continues "
              "this run", file=sys.stderr, flush=True)

    def latest_checkpoint(self) -> Path | None:
        if not self.checkpoint_dir().exists():
            return None
        done = sorted(p for p in self.checkpoint_dir().glob("step-*")
                      if not p.name.endswith(".partial") and (p / STATE_FILE).exists())
        return done[-1] if done else None

    def _maybe_resume(self) -> None:
        target = self.config.resume_from
        if not target:
            return
        path = self.latest_checkpoint() if target == "latest" else Path(target)
        if path is None:
            return  # "latest" with nothing saved yet: a fresh start
        if not (path / STATE_FILE).exists():
            problem = f"not a complete checkpoint (no {STATE_FILE})" if path.exists() else "not found"
            raise SettingError("resume_from", lambda name: f"{name} {path}: {problem}")
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:  # json's JSONDecodeError traceback
            raise AccordError(f"folder {path}: a damaged checkpoint: its {STATE_FILE} is not JSON ({err}); "
                              f"{DAMAGED_ADVICE}") from err
        _check_checkpoint_files(path, state.get("files"))
        if state["world_size"] != self.accelerator.num_processes or state["steps_per_epoch"] != self.steps_per_epoch:
            raise SettingError("batch_size", lambda name: (
                f"folder {path}: saved with {state['world_size']} processes and {state['steps_per_epoch']} steps per "
                f"epoch; this run has {self.accelerator.num_processes} and {self.steps_per_epoch} (resume needs the "
                f"same data, {name} and number of processes)"))
        # what the task read from the training data that shapes the model (the attributes of --task attributes, one
        # output each): a resume from data read otherwise trained each output towards another target
        self.task.check_resume(state.get("task_settings") or {}, f"folder {path}")
        # the epoch's batch order is a function of the seed and the number of examples: with another of either, the
        # run would skip the batches done and go on through batches of another order (older checkpoints lack both)
        unit = self.task.unit
        if "seed" in state and state["seed"] != self.config.seed:
            raise SettingError("seed", lambda name: (
                f"folder {path}: saved with {name} {state['seed']}; this run has {name} {self.config.seed} (resume "
                "needs the same seed: it sets the batch order)"))
        if "n_examples" in state and state["n_examples"] != len(self.train_data):
            raise AccordError(f"folder {path}: saved from {state['n_examples']} training {unit}; this run has "
                              f"{len(self.train_data)} (resume needs the same training data: it sets the batch order)")
        self._refuse_changed(path, state.get("model_settings", {}), MODEL_SETTINGS,
                             "resume needs the model the checkpoint was saved from")
        self._refuse_changed(path, state.get("training_settings", {}), TRAINING_SETTINGS,
                             "resume goes on with the checkpoint's loss and optimiser state, which holds its learning "
                             "rate, weight decay and Adam's settings; start a fresh run to train with others")
        if "batch_order" in state and state["batch_order"] != self._batch_order(int(state["global_step"])):
            self._refuse_another_batch_order(path, state)
        try:
            self.accelerator.load_state(str(path))
        except (RuntimeError, ValueError, KeyError) as err:  # torch's "Error(s) in loading state_dict" traceback
            if not isinstance(err, KeyError) and "state_dict" not in str(err) and "parameter group" not in str(err):
                raise
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")
            raise AccordError(f"folder {path}: its states do not fit this run's model ({reason}); resume with the "
                              "model and settings the checkpoint was saved with (the backbone, task, "
                              "uncertainty_head, ensemble_heads, LoRA, freeze_layers)") from err
        self.global_step = int(state["global_step"])
        # saved at the run's last step (an interrupt while it evaluated or saved the model): this run evaluates again
        self._resumed_at_the_end = state.get("total_steps") == self.global_step
        last_loss = state.get("last_loss")  # checkpoints of older versions lack it (and the window); null: not logged
        self._last_loss = float("nan") if last_loss is None else float(last_loss)
        window = path / WINDOW_FILE.format(rank=self.accelerator.process_index)
        self._resumed_window = json.loads(window.read_text()) if window.exists() else None
        self.resumed_from = str(path)

    def _batch_order(self, step: int) -> str:
        """A digest of the batches of the epoch of ``step``: those a run resumed there skips and goes on through."""
        batches = self._epoch_batches(step // self.steps_per_epoch)
        digest = hashlib.sha256(np.concatenate(batches).astype(np.int64).tobytes())
        digest.update(np.array([len(batch) for batch in batches], dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def _refuse_changed(self, path: Path, saved: dict[str, Any], settings: tuple[str, ...],
                        why: str | Callable[[tuple[str, ...]], str]) -> None:
        """One error naming the ``settings`` this run gives otherwise than the checkpoint ``saved`` them (those it
        recorded), saying ``why`` (or ``why(flags)`` of the flags named). :data:`MODEL_SETTINGS`: resuming with
        another head or adapters was torch's "Error(s) in loading state_dict" traceback, and with another pooling
        went on training what the checkpoint's head had learned to read elsewhere. :data:`TRAINING_SETTINGS`:
        another loss trained the rest of the run towards another objective and another learning rate was overridden
        by the optimiser state, while reward_config.json recorded this run's alone."""
        changed = [name for name in settings if name in saved and saved[name] != getattr(self.config, name)]
        if not changed:
            return

        def message(*names: str) -> str:
            was = ", ".join(assigned(flag, saved[name]) for flag, name in zip(names, changed))
            now = ", ".join(assigned(flag, getattr(self.config, name)) for flag, name in zip(names, changed))
            reason = why if isinstance(why, str) else why(names)
            return f"folder {path}: saved with {was}; this run has {now} ({reason})"

        raise SettingError(changed[0], message, *changed[1:])

    def _refuse_another_batch_order(self, path: Path, state: dict[str, Any]) -> None:
        """One error for a checkpoint whose batch order this run would not recompute: with another max_length,
        packing, group_by_length or batch size of as many steps per epoch (or other data of as many examples), the
        run skipped the batches done and went on through batches of another order (pairs trained twice, others
        never), without a word. Names the settings that differ, else the data."""
        self._refuse_changed(path, state.get("batch_settings", {}), BATCH_ORDER_SETTINGS, lambda names: (
            f"resume needs the same {', '.join(name.strip(QUOTE) for name in names)}: "
            f"{'they set' if len(names) > 1 else 'it sets'} the batch order"))
        unit = self.task.unit
        raise AccordError(f"folder {path}: saved with another batch order of its {state['n_examples']} training "
                          f"{unit} (their token lengths differ: other training data of as many {unit}, or another "
                          "backbone's tokenizer?); resume needs the same training data and model")

    def _log(self, record: dict[str, Any]) -> None:
        if not self.accelerator.is_main_process:
            return
        with self._writing(f"file {self._metrics_path}: cannot write the training log"):
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self._metrics_path, "a", encoding="utf-8") as handle:
                # NaN (a diverged loss, an evaluation AUROC of one class) as null: a bare NaN token is no JSON
                handle.write(json_text(record, default=float) + "\n")

    def _trim_metrics(self, step: int, source: Path | None = None) -> None:
        """On resume, drop the lines a killed run wrote after its last checkpoint: this run's log is the lines of
        ``source`` (by default the log itself) up to ``step``. A checkpoint of the run's last step was saved after
        the final evaluation's line (an interrupt while the model was saved): that line goes too, as this run
        evaluates again (it was logged twice)."""
        path = source or self._metrics_path
        if not path.exists():
            return
        if step == 0:
            path.unlink()
            return
        lines = path.read_text().splitlines()
        last = max((number for number, line in enumerate(lines, start=1) if line.strip()), default=0)
        keep = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                if number == last:  # a run killed while appending it: a step's line precedes its checkpoint,
                    break  # so it belongs after the checkpoint resumed from
                raise AccordError(f"file {path}, line {number}: not a JSON record ({err.msg}); remove the line to "
                                  "resume") from err
            final_evaluation = self._resumed_at_the_end and record["step"] == step and any(
                key.startswith("eval_") for key in record)
            if record["step"] <= step and not final_evaluation:
                keep.append(line)
        with atomic_path(self._metrics_path) as tmp:
            tmp.write_text("".join(line + "\n" for line in keep))


class _Window:
    """Sums since the last log line: the task's sums (on the device), examples and tokens (on the host)."""

    def __init__(self, device: torch.device, state: dict[str, Any] | None = None):
        self.device = device
        self.names: list[str] = []
        self.sums: torch.Tensor | None = None
        self.examples = 0
        self.tokens = 0
        self.started = time.perf_counter()
        if state:  # a window a checkpoint saved (:meth:`state`): the float32 sums come back exactly
            self.names = list(state["names"])
            if self.names:
                self.sums = torch.tensor(state["sums"], dtype=torch.float32, device=device)
            self.examples, self.tokens = int(state["examples"]), int(state["tokens"])

    def state(self) -> dict[str, Any]:
        """The sums, examples and tokens so far (for a checkpoint; the clock is not saved)."""
        sums = [] if self.sums is None else self.sums.tolist()
        return {"names": self.names, "sums": sums, "examples": self.examples, "tokens": self.tokens}

    def add(self, sums: dict[str, torch.Tensor], tokens: int) -> None:
        if self.sums is None:
            self.names = list(sums)
            self.sums = torch.zeros(len(self.names), device=self.device)
        self.sums += torch.stack([sums[name].float() for name in self.names])
        self.tokens += tokens

    def reduce(self, accelerator: Any, interrupt: "_InterruptFlag") -> tuple[dict[str, float], float, int]:
        """Means per example over every process, tokens over every process, and the signal they agree to stop for
        (0: none asked; :func:`_agreed_signal`)."""
        sums = self.sums if self.sums is not None else torch.zeros(0, device=self.device)
        extra = torch.tensor([float(self.tokens), *_votes(interrupt)], device=self.device)
        values = accelerator.reduce(torch.cat([sums, extra]), reduction="sum").tolist()
        means = {name: value / max(self.examples, 1) for name, value in zip(self.names, values)}
        return means, values[-3], _agreed_signal(values[-2], values[-1])


def _votes(interrupt: "_InterruptFlag") -> tuple[int, int]:
    """Whether this process was asked to stop by SIGINT, by SIGTERM (summed over the processes)."""
    return (int(interrupt.requested and interrupt.signum == signal.SIGINT),
            int(interrupt.requested and interrupt.signum != signal.SIGINT))


def _agreed_signal(sigint_votes: float, sigterm_votes: float) -> int:
    """The signal every process names when any was asked to stop: SIGTERM when any got it (a scheduler's
    pre-emption, which ends the job however it was also asked), else SIGINT; 0 when none was asked."""
    return int(signal.SIGTERM) if sigterm_votes else int(signal.SIGINT) if sigint_votes else 0


def _agree(accelerator: Any, interrupt: "_InterruptFlag", tokens: int) -> tuple[int, int]:
    """``tokens`` summed over the processes and the signal they agree to stop for (0: none), in one reduction."""
    values = accelerator.reduce(torch.tensor([tokens, *_votes(interrupt)], dtype=torch.int64,
                                             device=accelerator.device), reduction="sum").tolist()
    return int(values[0]), _agreed_signal(values[1], values[2])


#: Signals that stop a run at a step's end with a checkpoint: Ctrl-C, and the SIGTERM with which a cluster scheduler
#: (Slurm, Kubernetes) pre-empts a job before its SIGKILL; SIGTERM's default ended the run with no checkpoint.
STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


def _keyboard_interrupt(signum: int) -> KeyboardInterrupt:
    """The KeyboardInterrupt of an interrupt that stops at once; ``signum`` says which signal (the exit status)."""
    stopped = KeyboardInterrupt()
    stopped.signum = signum  # type: ignore[attr-defined]
    return stopped


class _InterruptFlag:
    """While active (in the main thread), SIGINT and SIGTERM only set ``requested`` (``signum``: the first one): the
    loop finishes the running step and stops there with a checkpoint, instead of dying in the middle of an optimiser
    update. A second one raises ``KeyboardInterrupt`` at once, as does every one after :meth:`at_once`. The earlier
    handlers are restored on exit."""

    def __enter__(self) -> "_InterruptFlag":
        self.requested = False
        self.signum = int(signal.SIGINT)
        self.deferred = True
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.requested:
            self.signum = int(signum)
        if self.requested or not self.deferred:
            self.requested = True
            raise _keyboard_interrupt(self.signum)
        self.requested = True

    def at_once(self, *, pending: bool) -> None:
        """From now on an interrupt raises ``KeyboardInterrupt`` at once; one already asked does now if
        ``pending``."""
        self.deferred = False
        if pending and self.requested:
            raise _keyboard_interrupt(self.signum)

    def defer(self) -> None:
        """From now on a first interrupt only sets ``requested`` again (a second one still raises at once)."""
        self.deferred = True

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self.previous.items():
            if previous is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(signum, previous)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


@contextlib.contextmanager
def library_bars(enabled: bool) -> Any:
    """transformers' own bars (loading and writing weights) shown only when the trainer shows its bars."""
    from transformers.utils import logging as transformers_logging

    hide = not enabled and transformers_logging.is_progress_bar_enabled()
    if hide:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if hide:
            transformers_logging.enable_progress_bar()


def _accelerator(mixed_precision: str) -> Any:
    """An accelerator on the GPU when there is one; autocast only there (``auto``: bf16 where supported)."""
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    mixed = mixed_precision
    if mixed == "auto":
        mixed = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    if not cuda:
        if mixed in ("bf16", "fp16"):
            warnings.warn(SettingWarning("mixed_precision", lambda name: (
                f"{assigned(name, mixed)} needs a GPU: on the CPU training runs in float32 (leave {name} at 'auto' "
                "or 'no' to train on the CPU without this warning)")), stacklevel=3)
        mixed = "no"
    return Accelerator(cpu=not cuda, mixed_precision=mixed)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _remove_checkpoint(folder: Path) -> None:
    """Delete a checkpoint, its ``trainer_state.json`` first: a run killed half-way through the deletion leaves a
    folder that resuming does not take for a complete checkpoint."""
    (folder / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


DAMAGED_ADVICE = ("resume from another checkpoint (--resume-from a checkpoints/step-N folder), or start afresh with "
                  "--overwrite-output-dir")


def _check_checkpoint_files(folder: Path, files: Any) -> None:
    """One error for a checkpoint that lacks a file it was saved with, or holds one of another size (copied in part,
    a disk fault): resuming it was a FileNotFoundError, safetensors or torch traceback, and one without its random
    states resumed without a word (accelerate goes on without them), its dropout no longer an uninterrupted run's.
    ``files``: the sizes :meth:`RewardTrainer.save_checkpoint` recorded (checkpoints of older versions lack them)."""
    if not isinstance(files, dict):
        return
    for name, size in files.items():
        file = folder / name
        if not file.is_file():
            problem = f"its {name} is missing"
        elif file.stat().st_size != size:
            problem = f"its {name} has {file.stat().st_size:,} bytes, saved with {size:,}"
        else:
            continue
        raise AccordError(f"folder {folder}: a damaged checkpoint ({problem}: copied in part?); {DAMAGED_ADVICE}")


def _checkpoint_step(folder: Path) -> int | None:
    """The step of a ``step-NNNNNNN`` checkpoint folder (or of its ``.partial``); ``None`` for another name."""
    digits = folder.name.removeprefix("step-").removesuffix(".partial")
    return int(digits) if digits.isdigit() else None


def _usual_modes_tree(folder: Path) -> None:
    """Give every file of a checkpoint the mode ``open(path, "w")`` gives (``0o666`` less the umask), as the saved
    model's files get: safetensors writes the weights private (``0o600``), so a group that could read the
    optimizer and RNG states beside them (and the model above) could not resume the checkpoint."""
    give_usual_modes(path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def refuse_finished_model(config: RewardConfig) -> None:
    """``accord train``'s refusal of a run that would replace the finished model in ``output_dir`` (a fresh run, or
    ``resume_from="latest"`` with no checkpoint there to resume) unless ``overwrite_output_dir``: the new model was
    written over it without a word, and the new run's config over its ``reward_config.json`` and log from the first
    step. A folder that also holds checkpoints is left to :meth:`RewardTrainer._check_earlier_run` (its message
    names resuming them). The library's :func:`train` replaces the folder's model, as a notebook run again does."""
    folder = Path(config.output_dir).expanduser()
    if config.overwrite_output_dir or not (folder / META_FILE).is_file():
        return
    if config.resume_from not in (None, "latest"):
        return
    checkpoints = folder / CHECKPOINTS
    if checkpoints.is_dir() and any((p / STATE_FILE).exists() for p in checkpoints.glob("step-*")
                                    if not p.name.endswith(".partial")):
        return
    try:
        step = f" (trained to step {int(json.loads((folder / META_FILE).read_text())['global_step'])})"
    except (OSError, ValueError, KeyError, TypeError):
        step = ""
    resume = config.resume_from == "latest"
    raise refused(lambda out, overwrite, resume_flag, model: (
        f"{out.strip(QUOTE)} {config.output_dir}: holds a finished reward model{step}"
        + (f" and no checkpoint for {resume_flag.strip(QUOTE)} latest to continue" if resume else "")
        + f", which this run would replace; replace it with {overwrite}, or give another {out} (to train on from "
        f"it, name it as the {model.strip(QUOTE)})"), "output_dir", "overwrite_output_dir", "resume_from", "model")


def train(config: RewardConfig, **kwargs: Any) -> TrainResult:
    """Train a reward model as ``config`` says and save it to ``config.output_dir`` (``accord train``); keyword
    arguments go to :class:`RewardTrainer`."""
    return RewardTrainer(config, **kwargs).train()
