"""``RewardTrainer``: a plain training loop over accelerate (one process, DDP or FSDP) for :class:`RewardModel`.

One optimisation step = ``gradient_accumulation_steps`` micro-batches on each of ``world_size`` processes. Every
process computes the same epoch's batch order (:func:`accord.reward.data.length_grouped_batches`), so each knows
the whole step's pairs: the loss of a micro-batch is its per-pair losses summed and divided by the number of pairs
in the whole step (times the world size, which DDP's gradient averaging divides away again), and weights are
normalised by their mean over the whole step. The gradient is then the same whatever the split into micro-batches
and processes.

Checkpoints (``output_dir/checkpoints/step-NNNNNNN``) hold the model, optimiser, scheduler and every process's
RNG states (``accelerate.save_state``) plus ``trainer_state.json`` (the step, hence the data position). They are
written to a ``.partial`` folder and renamed when complete, so a run killed while writing leaves the previous
checkpoint intact. Resuming recomputes the epoch's batch order and skips the batches already done.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accord.datasets.errors import AccordError
from accord.datasets.io import atomic_path
from accord.reward.config import RewardConfig
from accord.reward.data import PairCollator, PairEncoder, TokenizedPairs, length_grouped_batches, load_pairs
from accord.reward.evaluate import pair_logits, pairwise_metrics, predict_pairs, reward_stats
from accord.reward.losses import WEIGHTED_LOSSES, pair_losses, pairwise_logit
from accord.reward.model import RewardModel, apply_lora, compile_repeated_blocks, resolve_model_path

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.jsonl"
MODEL_INPUTS = ("input_ids", "pool_index", "position_ids", "attention_mask", "segment_ids", "token_type_ids",
                "token_seq", "dense_mask")


@dataclass
class TrainResult:
    """What :func:`train` returns: where the model is, how far training got and how fast it went."""

    output_dir: Path
    global_step: int
    train_loss: float  # mean loss over the last logging window
    train_seconds: float  # the training loop's wall time (no tokenizing, loading or final save)
    pairs: int  # pairs processed by this run (all processes; a resumed run counts only its own)
    tokens: int  # real (non-pad) tokens processed by this run
    truncation: dict[str, int] = field(default_factory=dict)
    eval_metrics: dict[str, float] | None = None
    peak_memory_mb: float | None = None
    resumed_from: str | None = None

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds > 0 else float("nan")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    """Trains a :class:`RewardModel` on preference pairs (see the module docstring for the step's arithmetic).

    ``model``/``tokenizer``/``train_pairs``/``eval_pairs`` may be passed ready-made (the benchmarks do); by default
    they come from ``config.model``, ``config.train_path`` and ``config.eval_path``. ``callbacks`` are called as
    ``callback(trainer, state)`` after every optimisation step (after any checkpoint of that step), ``state`` a dict
    with ``step``, ``loss`` (the mean of the last logging window: the loop reads losses from the device only on
    logging steps) and ``lr``.
    """

    def __init__(self, config: RewardConfig, *, model: RewardModel | None = None, tokenizer: Any = None,
                 train_pairs: Any = None, eval_pairs: Any = None,
                 callbacks: Sequence[Callable[["RewardTrainer", dict[str, Any]], None]] = ()):
        from accelerate import Accelerator
        from accelerate.utils import DistributedType

        config.validate(require_data=False)
        if model is None and not config.model:
            raise AccordError("config: 'model' is required (a local folder or a hub name)")
        if train_pairs is None and not config.train_path:
            raise AccordError("config: 'train_path' is required")
        self.config = config
        self.callbacks = list(callbacks)
        cuda = torch.cuda.is_available()
        mixed = config.mixed_precision
        if mixed == "auto":
            mixed = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
        if not cuda and mixed != "no":
            mixed = "no"  # autocast only on a GPU
        self.accelerator = Accelerator(cpu=not cuda, mixed_precision=mixed)
        self.output_dir = Path(config.output_dir)

        # read the data first: a wrong path fails before a model is loaded
        train_frame = train_pairs if isinstance(train_pairs, TokenizedPairs) else load_pairs(
            train_pairs if train_pairs is not None else config.train_path)
        self.eval_frame = None
        if eval_pairs is not None or config.eval_path:
            self.eval_frame = load_pairs(eval_pairs if eval_pairs is not None else config.eval_path)

        seed_everything(config.seed)
        if model is None:
            model = RewardModel.from_backbone(config.model, pooling=config.pooling,
                                              uncertainty_head=config.uncertainty_head,
                                              attn_implementation=config.attn_implementation or "sdpa",
                                              dropout=not config.disable_dropout)
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(config.model or model.meta["base_model"]))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if config.lora:
            apply_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules)
        if config.gradient_checkpointing:
            backbone = model.backbone
            if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5
                backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.torch_compile:
            compile_repeated_blocks(model.backbone)
        self.tokenizer = tokenizer
        self.encoder = PairEncoder(tokenizer, config.max_length, model.is_decoder, config.use_chat_template)
        model.meta.update(max_length=config.max_length, use_chat_template=self.encoder.use_chat_template,
                          loss=config.loss)

        self.train_pairs = self._tokenize(train_frame)
        self.eval_pairs = None if self.eval_frame is None else self.encoder.encode_pairs(self.eval_frame)

        packing = bool(config.packing)
        flex = (config.attn_implementation or "") == "flex_attention"
        if config.share_prompt and not (model.is_decoder and model.pooling == "last"):
            raise AccordError("config: share_prompt needs a decoder with last-token pooling")
        self.collator = PairCollator(tokenizer.pad_token_id, packing=packing, pooling=model.pooling,
                                     capacity=config.packing_capacity, whole_batch_row=packing and flex and
                                     config.packing_capacity is None, pad_to_multiple_of=config.pad_to_multiple_of,
                                     share_prompt=config.share_prompt)

        world = self.accelerator.num_processes
        self.micro_per_step = config.gradient_accumulation_steps * world
        n_micro = len(self._epoch_batches(0))
        self.steps_per_epoch = n_micro // self.micro_per_step
        if self.steps_per_epoch == 0:
            raise AccordError(
                f"{len(self.train_pairs)} training pairs make {n_micro} batches of {config.batch_size}: fewer than "
                f"one step needs ({config.gradient_accumulation_steps} accumulation x {world} processes)")
        self.total_steps = config.max_steps or max(1, math.ceil(config.num_epochs * self.steps_per_epoch))
        warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio *
                                                                                 self.total_steps)

        # the model is prepared (wrapped for DDP / sharded for FSDP) before the optimizer sees its parameters
        self.model = self.accelerator.prepare(model)
        decay, no_decay = [], []
        for param in self.model.parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 else no_decay).append(param)  # no decay on biases and norms
        # one fused kernel per parameter group on a GPU (sharded FSDP parameters keep the default implementation)
        fused = self.accelerator.device.type == "cuda" and self.accelerator.distributed_type != DistributedType.FSDP
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon,
            fused=fused or None)
        self.optimizer = self.accelerator.prepare(optimizer)
        # the scheduler is stepped once per optimisation step by this loop (not prepared: accelerate would step it
        # once per process), and checkpointed with the rest
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.optimizer,
                                                           lr_lambda(config.lr_scheduler, warmup, self.total_steps))
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.global_step = 0
        self.resumed_from: str | None = None

    # ------------------------------------------------------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------------------------------------------------------

    def _tokenize(self, frame: Any) -> TokenizedPairs:
        return frame if isinstance(frame, TokenizedPairs) else self.encoder.encode_pairs(frame)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        # group by what sets the batch's cost: the tokens of the pair when packed, its longer side when padded
        key = self.train_pairs.lengths if self.collator.packing else self.train_pairs.longest
        return length_grouped_batches(key, self.config.batch_size, self.config.seed, epoch,
                                      self.config.group_by_length)

    def _step_batches(self, batches: list[np.ndarray], step_in_epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """This process's micro-batches of a step, and the pair indices of the whole step (every process)."""
        start = step_in_epoch * self.micro_per_step
        step = batches[start:start + self.micro_per_step]
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        return step[rank::world], np.concatenate(step)

    # ------------------------------------------------------------------------------------------------------------------
    # the loss
    # ------------------------------------------------------------------------------------------------------------------

    def compute_loss(self, model: torch.nn.Module, batch: dict[str, Any], *, pairs_in_step: int,
                     weight_mean: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one micro-batch, scaled so the step's micro-batches (on all processes) add up to the mean loss.

        ``d`` is the log-odds that chosen beats rejected (variance-scaled with an uncertainty head), the configured
        loss gives one value per pair, and the sum over the micro-batch is divided by the step's pair count.
        """
        cfg = self.config
        out = model(**{k: batch[k] for k in MODEL_INPUTS if k in batch})
        n = batch["n_pairs"]
        var = out.variance
        d = pairwise_logit(out.reward[:n], out.reward[n:],
                           None if var is None else var[:n], None if var is None else var[n:])
        per_pair = pair_losses(cfg.loss, d, p_chosen=batch["p_chosen"], p_tie=batch["p_tie"], weight=batch["weight"],
                               margin=torch.nan_to_num(batch["margin"], nan=cfg.margin), weight_mean=weight_mean,
                               label_smoothing=cfg.label_smoothing, davidson_nu=cfg.davidson_nu)
        if cfg.center_rewards_coefficient:
            per_pair = per_pair + cfg.center_rewards_coefficient * (out.reward[:n] + out.reward[n:]) ** 2
        loss = per_pair.sum() * (self.accelerator.num_processes / pairs_in_step)
        stats = {"loss_sum": per_pair.detach().sum(), "correct": (d.detach() > 0).sum().float()}
        return loss, stats

    # ------------------------------------------------------------------------------------------------------------------
    # the loop
    # ------------------------------------------------------------------------------------------------------------------

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, acc = self.config, self.accelerator
        self._maybe_resume()
        device = acc.device
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.output_dir / "reward_config.json")
            self._trim_metrics(self.global_step)
        use_weights = cfg.loss in WEIGHTED_LOSSES
        # the window's sums stay on the device: the host reads them (a GPU sync) only on logging steps, so the next
        # step's batch is built while the GPU still works on this one
        window = self._new_window(device)
        run_pairs = run_tokens = 0
        last_loss = float("nan")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        bar = tqdm(total=self.total_steps, initial=self.global_step, disable=not (cfg.progress and acc.is_main_process),
                   desc="reward model", dynamic_ncols=True)
        self.model.train()
        epoch, batches = -1, []
        start = time.perf_counter()
        while self.global_step < self.total_steps:
            step_epoch, step_in_epoch = divmod(self.global_step, self.steps_per_epoch)
            if step_epoch != epoch:
                epoch, batches = step_epoch, self._epoch_batches(step_epoch)
            mine, whole_step = self._step_batches(batches, step_in_epoch)
            weight_mean = float(self.train_pairs.weight[whole_step].mean()) if use_weights else 1.0
            for k, indices in enumerate(mine):
                batch = self._to_device(self.collator(self.train_pairs, indices), device)
                sync = k == len(mine) - 1
                with (acc.no_sync(self.model) if not sync else _nullcontext()):
                    loss, stats = self.compute_loss(self.model, batch, pairs_in_step=len(whole_step),
                                                    weight_mean=weight_mean)
                    acc.backward(loss)
                window["sums"] += torch.stack([stats["loss_sum"], stats["correct"]])
                window["tokens"] += batch["n_tokens"]
                run_tokens += batch["n_tokens"]
            grad_norm = None
            if cfg.max_grad_norm:
                grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.global_step += 1
            bar.update(1)
            window["pairs"] += len(whole_step)
            run_pairs += len(whole_step)
            lr = self.scheduler.get_last_lr()[0]
            if self.global_step % cfg.logging_steps == 0 or self.global_step == self.total_steps:
                loss_sum, correct, tokens = acc.reduce(
                    torch.cat([window["sums"], torch.tensor([float(window["tokens"])], device=device)]),
                    reduction="sum").tolist()
                elapsed = max(time.perf_counter() - window["time"], 1e-9)
                record = {
                    "step": self.global_step,
                    "epoch": round(self.global_step / self.steps_per_epoch, 4),
                    "loss": loss_sum / window["pairs"],
                    "accuracy": correct / window["pairs"],
                    "lr": lr,
                    "grad_norm": None if grad_norm is None else float(grad_norm),
                    "pairs_per_s": window["pairs"] / elapsed,
                    "tokens_per_s": tokens / elapsed,
                }
                last_loss = record["loss"]
                self._log(record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['accuracy']:.3f}")
                window = self._new_window(device)
            if cfg.eval_steps and self.eval_pairs is not None and self.global_step % cfg.eval_steps == 0 \
                    and self.global_step < self.total_steps:
                self._log({"step": self.global_step, **{f"eval_{k}": v for k, v in self.evaluate().items()}})
            if cfg.save_steps and self.global_step % cfg.save_steps == 0 and self.global_step < self.total_steps:
                self.save_checkpoint()
            for callback in self.callbacks:
                callback(self, {"step": self.global_step, "loss": last_loss, "lr": lr})
        train_seconds = time.perf_counter() - start
        bar.close()
        run_tokens = int(acc.reduce(torch.tensor(run_tokens, dtype=torch.int64, device=device), reduction="sum").item())
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        eval_metrics = None
        if self.eval_pairs is not None:
            eval_metrics = self.evaluate()
            self._log({"step": self.global_step, **{f"eval_{k}": v for k, v in eval_metrics.items()}})
        self.save_model()
        return TrainResult(output_dir=self.output_dir, global_step=self.global_step, train_loss=last_loss,
                           train_seconds=train_seconds, pairs=run_pairs, tokens=run_tokens,
                           truncation=self.train_pairs.truncation, eval_metrics=eval_metrics, peak_memory_mb=peak,
                           resumed_from=self.resumed_from)

    @staticmethod
    def _new_window(device: torch.device) -> dict[str, Any]:
        """Sums over the steps since the last log line: loss and correct pairs (device), pairs and tokens (host)."""
        return {"sums": torch.zeros(2, device=device), "pairs": 0, "tokens": 0, "time": time.perf_counter()}

    @staticmethod
    def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    # ------------------------------------------------------------------------------------------------------------------
    # evaluation, saving, checkpoints
    # ------------------------------------------------------------------------------------------------------------------

    def unwrapped(self) -> RewardModel:
        return self.accelerator.unwrap_model(self.model)

    def evaluate(self, pairs: TokenizedPairs | None = None, frame: Any = None) -> dict[str, float]:
        """Metrics of :func:`accord.reward.evaluate.pairwise_metrics` on the eval pairs (all processes compute them)."""
        pairs = pairs or self.eval_pairs
        frame = frame if frame is not None else self.eval_frame
        if pairs is None:
            raise AccordError("no evaluation pairs (set eval_path)")
        model = self.unwrapped()
        pred = predict_pairs(model, pairs, pad_token_id=self.tokenizer.pad_token_id, batch_size=self.config.batch_size,
                             packing=self.collator.packing, device=self.accelerator.device)
        votes = frame if frame is not None and "votes_chosen" in frame.columns else None
        return pairwise_metrics(pair_logits(pred), pairs.p_chosen, pairs.p_tie, votes=votes)

    def save_model(self, directory: str | Path | None = None) -> Path:
        """The final model (``save_pretrained`` layout) with ``reward_stats.json`` from the training rewards."""
        acc = self.accelerator
        directory = Path(directory or self.output_dir)
        state = acc.get_state_dict(self.model)  # a collective under FSDP: every process takes part
        model = self.unwrapped()
        pred = predict_pairs(model, self.train_pairs, pad_token_id=self.tokenizer.pad_token_id,
                             batch_size=self.config.batch_size, packing=self.collator.packing, device=acc.device,
                             limit=self.config.stats_max_pairs)
        stats = reward_stats(np.concatenate([pred["reward_chosen"], pred["reward_rejected"]]))
        if acc.is_main_process:
            model.save_pretrained(directory, tokenizer=self.tokenizer, stats=stats,
                                  extra_meta={"global_step": self.global_step},
                                  state_dict=state if acc.distributed_type.value == "FSDP" else None)
        acc.wait_for_everyone()
        return directory

    def checkpoint_dir(self) -> Path:
        return self.output_dir / CHECKPOINTS

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step-NNNNNNN`` (atomically: a ``.partial`` folder renamed when complete)."""
        acc = self.accelerator
        final = self.checkpoint_dir() / f"step-{self.global_step:07d}"
        partial = final.with_name(final.name + ".partial")
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(partial))
        if acc.is_main_process:
            state = {"global_step": self.global_step, "steps_per_epoch": self.steps_per_epoch,
                     "total_steps": self.total_steps, "world_size": acc.num_processes, "seed": self.config.seed}
            (partial / STATE_FILE).write_text(json.dumps(state, indent=2))
            _fsync_tree(partial)
            shutil.rmtree(final, ignore_errors=True)
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
            shutil.rmtree(old, ignore_errors=True)

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
            raise AccordError(f"folder {path}: not a complete checkpoint (no {STATE_FILE})")
        state = json.loads((path / STATE_FILE).read_text())
        if state["world_size"] != self.accelerator.num_processes or state["steps_per_epoch"] != self.steps_per_epoch:
            raise AccordError(f"folder {path}: saved with {state['world_size']} processes and "
                              f"{state['steps_per_epoch']} steps per epoch; this run has "
                              f"{self.accelerator.num_processes} and {self.steps_per_epoch} (resume needs the same "
                              "data, batch size and processes)")
        self.accelerator.load_state(str(path))
        self.global_step = int(state["global_step"])
        self.resumed_from = str(path)

    def _log(self, record: dict[str, Any]) -> None:
        if not self.accelerator.is_main_process:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=float) + "\n")

    def _trim_metrics(self, step: int) -> None:
        """On resume, drop the lines a killed run wrote after its last checkpoint."""
        path = self.output_dir / METRICS_FILE
        if not path.exists():
            return
        if step == 0:
            path.unlink()
            return
        keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in keep))
            os.chmod(tmp, 0o644)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def train(config: RewardConfig, **kwargs: Any) -> TrainResult:
    """Train a reward model as ``config`` says and save it to ``config.output_dir`` (``accord train``)."""
    return RewardTrainer(config, **kwargs).train()
