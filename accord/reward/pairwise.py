"""The pairwise preference task: one scalar reward per response, learned from (soft) preference pairs.

A batch puts the ``2B`` sequences of ``B`` pairs (chosen ones first) through one forward pass; ``d`` is the log-odds
that chosen beats rejected, ``r_chosen - r_rejected`` (variance-scaled with an uncertainty head,
:func:`accord.reward.losses.pairwise_logit`), and the configured loss gives one value per pair. The step's loss is
the mean over its pairs, so each micro-batch contributes its sum divided by the pairs of the whole step; weights are
normalised by their mean over the whole step. The gradient is then the same however the step is split into
micro-batches and processes.

**Ensemble heads** (``RewardConfig.ensemble_heads = H``): the model has ``H`` scalar heads on one backbone
(:class:`accord.reward.model.RewardModel`), and head ``h`` learns from its own bootstrap of the pairs, the online
(Poisson) bootstrap of Oza and Russell (2001) as the bootstrapped heads of Osband et al. (2016) use it: pair ``i``
counts ``c_ih ~ Poisson(1)`` times in head ``h``'s loss, the counts drawn once per training set from a generator
seeded by ``[seed, h, n_pairs]``, so each head sees a fixed resample of the data whatever the batches (and about
37% of the pairs not at all). The step's loss is the mean over heads of ``sum_i c_ih * loss(d_ih) / n_step`` (the
counts average 1, so the scale is the one-head model's); the reward is the heads' mean, and their spread is the
ensemble's disagreement (:mod:`accord.reward.ensemble`).

N. C. Oza, S. Russell. Online bagging and boosting. *AISTATS* 2001.
I. Osband, C. Blundell, A. Pritzel, B. Van Roy. Deep exploration via bootstrapped DQN. *NeurIPS* 2016.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord.datasets.errors import AccordError, ValidationError
from accord.reward.config import QUOTE, refused
from accord.reward.data import PairCollator, PairEncoder, TokenizedPairs, load_pairs
from accord.reward.evaluate import (
    _eval_mode,
    pair_hits,
    pair_logits,
    pair_sides,
    pairwise_metrics,
    predict_pairs,
    reward_stats,
)
from accord.reward.losses import pair_loss_inputs, pairwise_logit
from accord.reward.task import RewardTask, model_inputs, register_task


@register_task
class PairwiseTask(RewardTask):
    """Preference pairs in (a cleaned dataset or any Hugging Face preference layout), one reward per response out."""

    name = "pairwise"
    unit = "pairs"
    loss_inputs = frozenset({"d", "p_chosen", "p_tie", "target", "weight", "weight_mean", "margin"})
    ensemble_heads = True

    def read(self, source: Any) -> Any:
        return source if isinstance(source, TokenizedPairs) else load_pairs(source)

    def check_training(self, table: Any, source: str | None = None) -> None:
        # weights are normalised to mean 1 over a step, and a step whose weights are all zero makes no update
        weight = table.weight if isinstance(table, TokenizedPairs) else table["weight"].to_numpy()
        if "weight" in self.loss.inputs and not (weight > 0).any():
            raise ValidationError(
                f"every training pair has weight 0, so the loss '{self.loss.name}' (weighted by it) learns nothing: "
                "give pairs whose labels are not all maximally uncertain, or train with a loss that ignores weights "
                "(loss='soft_bce', --loss soft_bce)", source=source, column="weight")

    def bind(self, tokenizer: Any, model: Any) -> dict[str, Any]:
        cfg = self.config
        if cfg.share_prompt and not (model.is_decoder and model.pooling == "last"):
            raise refused(lambda n: f"{n.strip(QUOTE)} needs a decoder with last-token pooling", "share_prompt")
        self.pad_token_id = tokenizer.pad_token_id
        self.encoder = PairEncoder(tokenizer, cfg.max_length, model.is_decoder, cfg.use_chat_template)
        flex = (cfg.attn_implementation or "") == "flex_attention"
        self.collator = PairCollator(tokenizer.pad_token_id, packing=bool(cfg.packing), pooling=model.pooling,
                                     capacity=cfg.packing_capacity, hidden_size=model.hidden_size,
                                     whole_batch_row=bool(cfg.packing) and flex and cfg.packing_capacity is None,
                                     pad_to_multiple_of=cfg.pad_to_multiple_of, share_prompt=cfg.share_prompt)
        if cfg.share_prompt:
            self._check_shared_prompt(model)
        return {"max_length": cfg.max_length, "use_chat_template": self.encoder.use_chat_template, "loss": cfg.loss}

    def _check_shared_prompt(self, model: Any) -> None:
        """One error naming share_prompt when the backbone does not score a shared-prompt unit as it scores its two
        sequences apart. The unit gives each response the positions and the mask it would have alone, which most
        decoders read; BLOOM and MPT bias attention by ALiBi built from the row's own layout: BLOOM crashed in the
        first forward pass (transformers' 'too many values to unpack'), and MPT trained on rewards of the rejected
        responses that changed with the prompt's length, without a word. Probed once, on one pair, on the CPU
        copy of the model before training."""
        probe = pd.DataFrame({"pair_id": ["probe"], "prompt": ["reward model probe of a shared prompt"],
                              "chosen": ["one answer"], "rejected": ["another and longer answer"], "p_chosen": [1.0],
                              "p_tie": [0.0], "weight": [1.0]})
        pairs = self.encoder.encode_pairs(probe)
        apart = PairCollator(self.pad_token_id, pooling=model.pooling, hidden_size=model.hidden_size)(pairs, [0])
        reason = None
        with _eval_mode(model), torch.no_grad():
            alone = model(**model_inputs(apart)).reward.float()
            try:
                shared = model(**model_inputs(self.collator(pairs, [0]))).reward.float()
            except (ValueError, RuntimeError, IndexError) as err:  # BLOOM's alibi takes a 2-D mask alone
                reason = f"its forward pass fails on the unit's mask: {str(err).strip().splitlines()[0]}"
            else:
                if not torch.allclose(shared, alone, rtol=1e-3, atol=1e-4):
                    reason = (f"it scores the unit's responses {shared.tolist()} where apart they score "
                              f"{alone.tolist()} (attention biased by the row's layout, as ALiBi is)")
        if reason is not None:
            backbone = type(model.backbone).__name__
            raise refused(lambda n: f"{n.strip(QUOTE)}: the backbone ({backbone}) cannot take a shared prompt: "
                          f"{reason}; turn {n.strip(QUOTE)} off", "share_prompt")

    def encode(self, table: Any) -> TokenizedPairs:
        return table if isinstance(table, TokenizedPairs) else self.encoder.encode_pairs(table)

    def cost(self, data: TokenizedPairs) -> np.ndarray:
        # what sets a batch's cost: the pair's tokens when packed, its longer side when padded
        return data.lengths if self.collator.packing else data.longest

    def collate(self, data: TokenizedPairs, indices: Sequence[int]) -> dict[str, Any]:
        batch = self.collator(data, indices)
        at = np.asarray(indices, dtype=np.int64)
        batch["side"] = torch.from_numpy(pair_sides(data.p_chosen[at], data.p_tie[at]))  # for the logged accuracy
        if self.config.ensemble_heads:
            batch["bootstrap"] = torch.from_numpy(self.bootstrap_counts(len(data))[at])
        return batch

    def bootstrap_counts(self, n_pairs: int) -> np.ndarray:
        """``(n_pairs, H)`` float32: how often each pair counts in each ensemble head's loss, Poisson(1) from head
        ``h``'s own generator (module docstring)."""
        seed, heads = self.config.seed % 2**32, int(self.config.ensemble_heads)
        cached = getattr(self, "_bootstrap", None)
        if cached is None or cached.shape != (n_pairs, heads):
            columns = [np.random.default_rng([seed, h, n_pairs]).poisson(1.0, n_pairs) for h in range(heads)]
            self._bootstrap = np.stack(columns, axis=1).astype(np.float32)
        return self._bootstrap

    def step_context(self, data: TokenizedPairs, indices: np.ndarray) -> dict[str, Any]:
        # the pairs whose label favours a side: the logged accuracy is over them, as the evaluation's
        untied = int((pair_sides(data.p_chosen[indices], data.p_tie[indices]) != 0).sum())
        step: dict[str, Any] = {"n_examples": len(indices), "n_untied": untied}
        if "weight_mean" in self.loss.inputs:
            step["weight_mean"] = float(data.weight[indices].mean())
        return step

    def compute_loss(self, model: torch.nn.Module, batch: dict[str, Any],
                     step: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The pairs' losses summed and divided by the pairs of the whole step; logs the loss and the share of pairs
        the model orders as the label does (:meth:`_hits`)."""
        out = model(**model_inputs(batch))
        n = batch["n_pairs"]
        reward, var = out.reward, out.variance
        d = pairwise_logit(reward[:n], reward[n:], None if var is None else var[:n], None if var is None else var[n:])
        if out.members is not None:  # ensemble heads: each head's loss on its own bootstrap of the pairs
            members = out.members
            per_head = self._pair_losses(members[:n] - members[n:], members[:n] + members[n:], batch, step, 1)
            loss = (batch["bootstrap"] * per_head).sum() / (step["n_examples"] * members.shape[1])
            return loss, {"loss": per_head.detach().mean(dim=1).sum(), "accuracy": self._hits(d, batch, step)}
        per_pair = self._pair_losses(d, reward[:n] + reward[n:], batch, step)
        loss = per_pair.sum() / step["n_examples"]
        return loss, {"loss": per_pair.detach().sum(), "accuracy": self._hits(d, batch, step)}

    @staticmethod
    def _hits(d: torch.Tensor, batch: dict[str, Any], step: dict[str, Any]) -> torch.Tensor:
        """The micro-batch's hits as the evaluation counts them (:func:`accord.reward.evaluate.pair_hits`: against
        the side the label favours, a pair scored exactly even half right, ties left out), scaled so that the core's
        division by the step's pairs reads per untied pair (0 for a step of ties only)."""
        side = batch["side"].to(d.device)
        hits = torch.where(side != 0, pair_hits(d.detach(), side), torch.zeros_like(d)).sum()
        return hits * (step["n_examples"] / max(step["n_untied"], 1))

    def _pair_losses(self, d: torch.Tensor, reward_sum: torch.Tensor, batch: dict[str, Any], step: dict[str, Any],
                     axis: int | None = None) -> torch.Tensor:
        """The configured loss per pair (per pair and head: ``axis=1`` spreads the pairs' labels over a second
        axis of ``d``), with the centring term when configured."""
        cfg = self.config
        labels = {name: batch[name] if axis is None else batch[name].unsqueeze(axis)
                  for name in ("p_chosen", "p_tie", "weight", "margin")}
        inputs = pair_loss_inputs(d, **labels, weight_mean=step.get("weight_mean"), default_margin=cfg.margin)
        per_pair = self.loss({**self.loss_settings, **inputs})
        if cfg.center_rewards_coefficient:
            per_pair = per_pair + cfg.center_rewards_coefficient * reward_sum**2
        return per_pair

    def evaluate(self, model: Any, data: TokenizedPairs, table: Any, *, device: torch.device, batch_size: int,
                 progress: bool) -> dict[str, float]:
        """:func:`accord.reward.evaluate.pairwise_metrics` (with the vote metrics when the table has votes)."""
        pred = predict_pairs(model, data, pad_token_id=self.pad_token_id, batch_size=batch_size,
                             packing=self.collator.packing, device=device, progress=progress, desc="evaluating")
        votes = table if table is not None and "votes_chosen" in getattr(table, "columns", ()) else None
        return pairwise_metrics(pair_logits(pred), data.p_chosen, data.p_tie, votes=votes)

    def reward_stats(self, model: Any, data: TokenizedPairs, indices: np.ndarray, *, device: torch.device,
                     batch_size: int, progress: bool) -> dict[str, Any]:
        """Mean and standard deviation of the rewards of both sides of the pairs ``indices`` (and of each ensemble
        head's: ``heads``, a list of such statistics)."""
        pred = predict_pairs(model, data, pad_token_id=self.pad_token_id, batch_size=batch_size,
                             packing=self.collator.packing, device=device, indices=indices, progress=progress,
                             desc="reward statistics")
        stats: dict[str, Any] = reward_stats(np.concatenate([pred["reward_chosen"], pred["reward_rejected"]]))
        if "members_chosen" in pred:
            both = np.concatenate([pred["members_chosen"], pred["members_rejected"]])
            stats["heads"] = [reward_stats(column) for column in both.T]
        return stats
