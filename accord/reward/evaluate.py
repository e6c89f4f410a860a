"""Evaluating and using a trained reward model: ``evaluate`` (``accord evaluate``) and ``score`` (``accord score``).

The model's probability that ``chosen`` beats ``rejected`` is ``sigmoid(d)`` with ``d = r_chosen - r_rejected`` (the
variance-scaled difference of :func:`accord.reward.losses.pairwise_logit` when the model has an uncertainty head).
:func:`pairwise_metrics` scores it three ways:

* against the **hard label** ``h`` (1 when ``chosen`` has the larger soft probability, else 0; pairs whose soft
  label is a tie are counted apart, ``n_ties``): pairwise ``accuracy``, ``nll``, ``brier`` = mean ``(p - h)^2`` (the
  binary Brier score, as ``soft_brier`` and ``votes_brier``; :func:`accord.metrics.brier` sums over both classes,
  twice this), ``ece`` (:mod:`accord.metrics`);
* against the **soft label** ``y = p_chosen + p_tie / 2``: ``soft_nll`` (cross-entropy, its floor is the label's
  entropy), ``soft_brier`` = mean ``(p - y)^2``, ``soft_ece`` = ECE with ``y`` as the outcome;
* against **held-out votes** when the data has ``votes_chosen`` / ``votes_rejected`` (and ``votes_tie``) counts:
  every non-tie vote is one Bernoulli outcome: ``votes_accuracy`` (share of votes the model agrees with),
  ``votes_nll``, ``votes_brier`` (per vote), ``votes_ece`` (per pair, outcome = the pair's vote share);
  tie votes are left out and counted (``n_tie_votes``).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from accord import metrics
from accord.datasets.errors import AccordError, SettingError, SettingWarning, ValidationError, naming_file
from accord.datasets.schema import columns_note
from accord.reward.calibration import apply_calibration
from accord.reward.config import assigned
from accord.reward.data import (LABEL_SUM_TOLERANCE, VOTE_COLUMNS, PairCollator, PairEncoder, TokenizedPairs,
                                TokenizedResponses, check_responses, ensure_pad_token, load_pairs, normalise_pairs,
                                pair_texts, reading_for, response_texts, warn_cut)
from accord.reward.losses import pairwise_logit
from accord.reward.model import META_FILE, STATS_FILE, RewardModel, load_tokenizer


TIE_TOLERANCE = 1e-6  # a soft label whose two sides differ by less is a tie (float32 labels are within ~1e-7)


def _device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        # 'cuda' where torch has none (or a typo) was torch's traceback ('Torch not compiled with CUDA enabled'),
        # after the weights had loaded
        from accord.models.base import check_device

        check_device(device, "device")
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _bar(total: int, desc: str, unit: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False, dynamic_ncols=True)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode for the block, then back in the mode it had, also when scoring fails or is
    interrupted (a training model was left in eval mode, its dropout off, by a Ctrl-C in a notebook)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def predict_pairs(model: RewardModel, pairs: TokenizedPairs, *, pad_token_id: int, batch_size: int = 32,
                  packing: bool | None = None, device: str | torch.device | None = None,
                  indices: np.ndarray | None = None, progress: bool = False,
                  desc: str = "scoring pairs") -> dict[str, np.ndarray]:
    """Rewards (and variances) of both sides of the pairs ``indices`` (default: all), in that order; ``progress``
    draws a bar. A model with ensemble heads adds each head's rewards, ``members_chosen`` and ``members_rejected``
    (``(n, H)``)."""
    device = _device(device) if device is not None else next(model.parameters()).device
    packing = True if packing is None else packing
    collator = PairCollator(pad_token_id, packing=packing, pooling=model.pooling, hidden_size=model.hidden_size)
    subset = np.arange(len(pairs)) if indices is None else np.asarray(indices, dtype=np.int64)
    n = len(subset)
    order = np.argsort(-pairs.lengths[subset], kind="stable")  # similar lengths together: less padding
    chosen = np.zeros(n, dtype=np.float64)
    rejected = np.zeros(n, dtype=np.float64)
    var_c = np.full(n, np.nan)
    var_r = np.full(n, np.nan)
    heads = getattr(model, "ensemble_heads", 1)
    members = np.zeros((2, n, heads)) if heads > 1 else None
    with _eval_mode(model), _bar(n, desc, "pair", progress) as bar:
        for start in range(0, n, batch_size):
            at = order[start:start + batch_size]
            batch = collator(pairs, subset[at])
            out = model(**{k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)})
            k = len(at)
            reward = out.reward.float().cpu().numpy()
            chosen[at], rejected[at] = reward[:k], reward[k:]
            if out.log_var is not None:
                var = out.log_var.float().exp().cpu().numpy()
                var_c[at], var_r[at] = var[:k], var[k:]
            if members is not None:
                each = out.members.float().cpu().numpy()
                members[0, at], members[1, at] = each[:k], each[k:]
            bar.update(k)
    pred = {"reward_chosen": chosen, "reward_rejected": rejected, "var_chosen": var_c, "var_rejected": var_r}
    if members is not None:
        pred.update(members_chosen=members[0], members_rejected=members[1])
    return pred


@torch.no_grad()
def predict_responses(model: RewardModel, encoded: TokenizedResponses, *, pad_token_id: int, batch_size: int = 64,
                      packing: bool | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Reward and variance (NaN without an uncertainty head) of every sequence in ``encoded``."""
    reward, variance, _ = _predict_sequences(model, encoded, pad_token_id=pad_token_id, batch_size=batch_size,
                                             packing=packing, progress=progress)
    return reward, variance


@torch.no_grad()
def predict_response_heads(model: RewardModel, encoded: TokenizedResponses, *, pad_token_id: int,
                           batch_size: int = 64, packing: bool | None = None, progress: bool = False) -> np.ndarray:
    """Each ensemble head's reward of every sequence in ``encoded``, ``(H, n)`` (a one-head model: ``(1, n)``)."""
    reward, _, members = _predict_sequences(model, encoded, pad_token_id=pad_token_id, batch_size=batch_size,
                                            packing=packing, progress=progress)
    return reward[None] if members is None else members.T


def _predict_sequences(model: RewardModel, encoded: TokenizedResponses, *, pad_token_id: int, batch_size: int,
                       packing: bool | None, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Reward, variance and (with ensemble heads, else ``None``) each head's reward, ``(n, H)``, of every
    sequence."""
    device = next(model.parameters()).device
    packing = True if packing is None else packing
    collator = PairCollator(pad_token_id, packing=packing, pooling=model.pooling, hidden_size=model.hidden_size)
    n = len(encoded.ids)
    order = np.argsort(-np.array([len(ids) for ids in encoded.ids]), kind="stable")
    reward = np.zeros(n, dtype=np.float64)
    variance = np.full(n, np.nan)
    heads = getattr(model, "ensemble_heads", 1)
    members = np.zeros((n, heads)) if heads > 1 else None
    with _eval_mode(model), _bar(n, "scoring responses", "response", progress) as bar:
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            types = None if encoded.type_ids is None else [encoded.type_ids[i] for i in idx]
            batch = collator.sequences([encoded.ids[i] for i in idx], types)
            out = model(**{k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)})
            reward[idx] = out.reward.float().cpu().numpy()
            if out.log_var is not None:
                variance[idx] = out.log_var.float().exp().cpu().numpy()
            if members is not None:
                members[idx] = out.members.float().cpu().numpy()
            bar.update(len(idx))
    return reward, variance, members


def pair_logits(predictions: dict[str, np.ndarray]) -> np.ndarray:
    """``d`` per pair from :func:`predict_pairs`' output (variance-scaled when the model has variances)."""
    var_c, var_r = predictions["var_chosen"], predictions["var_rejected"]
    has_var = not np.isnan(var_c).all()
    d = pairwise_logit(
        torch.as_tensor(predictions["reward_chosen"]),
        torch.as_tensor(predictions["reward_rejected"]),
        torch.as_tensor(var_c) if has_var else None,
        torch.as_tensor(var_r) if has_var else None,
    )
    return d.double().numpy()


def refuse_nan(name: str, values: np.ndarray, what: str, *, rewards: bool = True) -> None:
    """An error naming ``name`` and the first NaN of ``values`` (``what`` they are: "pairs", "responses"), if any:
    a NaN reward (a diverged model, a half-precision overflow) would pass on as NaN metrics, scores or statistics."""
    at = np.flatnonzero(np.isnan(np.asarray(values, dtype=float)))
    if len(at):
        raise AccordError(f"{name}: {len(at)} of {len(values)} {what} are NaN (the first at position {at[0]})"
                          + ("; the model's rewards are NaN there" if rewards else ""))


def pair_sides(p_chosen: np.ndarray, p_tie: np.ndarray) -> np.ndarray:
    """The side each soft label favours, the hard label of :func:`pairwise_metrics`: ``1`` chosen, ``-1`` rejected,
    ``0`` a tie (``P(chosen)`` and ``P(rejected)`` within :data:`TIE_TOLERANCE`, or ``P(tie)`` above both)."""
    p_chosen = np.asarray(p_chosen, dtype=float)
    p_tie = np.asarray(p_tie, dtype=float)
    p_rejected = np.clip(1.0 - p_chosen - p_tie, 0.0, 1.0)
    # ties within float32 precision: the trainer's labels are float32 (p_chosen = p_tie = 1/3 is then no exact tie)
    tie = (np.abs(p_chosen - p_rejected) < TIE_TOLERANCE) | (p_tie > np.maximum(p_chosen, p_rejected))
    return np.where(tie, 0, np.where(p_chosen > p_rejected, 1, -1)).astype(np.int8)


def pair_hits(d: Any, side: Any) -> Any:
    """How right ``d`` (the log-odds that chosen wins) is about pairs whose label favours ``side`` (``1`` chosen,
    ``-1`` rejected; :func:`pair_sides`): 1 ordered as the label, 0 against it, 1/2 scored exactly even (``d = 0``,
    e.g. two identical responses: not right by the order the sides are shown in). The one rule of the pairwise
    accuracy, in evaluation and in the training log; numpy arrays or torch tensors alike."""
    return ((d * side) > 0) + 0.5 * (d == 0)


def pairwise_metrics(d: np.ndarray, p_chosen: np.ndarray, p_tie: np.ndarray | None = None,
                     votes: pd.DataFrame | None = None, n_bins: int = 10) -> dict[str, float]:
    """Metrics of ``P(chosen > rejected) = sigmoid(d)`` against hard labels, soft labels and votes (module doc)."""
    d = np.asarray(d, dtype=float)
    p_chosen = np.asarray(p_chosen, dtype=float)
    p_tie = np.zeros_like(p_chosen) if p_tie is None else np.asarray(p_tie, dtype=float)
    # a NaN reward (a diverged model, a half-precision overflow) would otherwise come out as NaN metrics, or as an
    # error about "probabilities" the caller never passed
    for name, values in (("d", d), ("p_chosen", p_chosen), ("p_tie", p_tie)):
        refuse_nan(name, values, "pairs", rewards=name == "d")
    # labels off [0, 1] were a ValueError about an "outcome" the caller never passed (the soft ECE's)
    for name, values, high in (("p_chosen", p_chosen, 1.0), ("p_tie", p_tie, 1.0),
                               ("p_chosen + p_tie", p_chosen + p_tie, 1.0 + LABEL_SUM_TOLERANCE)):
        bad = (values < 0) | (values > high)
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise AccordError(f"{name}: {int(bad.sum())} of {len(bad)} pairs are not probabilities in [0, 1] (the "
                              f"first at position {at}: {float(values[at])})")
    prob = expit(d)  # 1 / (1 + exp(-d)) overflows (a RuntimeWarning) for d < -709
    # -log P(chosen) and -log P(rejected) from the log-odds, exactly: log(sigmoid(d)) clipped at 1e-12 capped every
    # pair's NLL at 27.6, so a model wrong by d = -300 scored as one wrong by -28 (and soft_nll was not the soft_bce
    # loss the model trains on)
    nll_chosen, nll_rejected = np.logaddexp(0.0, -d), np.logaddexp(0.0, d)
    side = pair_sides(p_chosen, p_tie)
    tie = side == 0
    gold = pd.Series(np.where(tie, "tie", np.where(side > 0, "chosen", "rejected")))
    # counts are whole numbers: JSON and the printed metrics wrote them as floats ("n_pairs": 120.0)
    out: dict[str, float | int] = {"n_pairs": len(d), "n_ties": int(tie.sum())}
    if (~tie).any():
        keep = ~tie
        # a pair the model scores exactly even is half right, not right by the column order of argmax; the ECE
        # counts it the same way (top-label confidence 1/2 against half a hit), so it agrees with the accuracy
        right = pair_hits(d[keep], side[keep])
        confidence = np.maximum(prob, 1.0 - prob)[keep]
        # the binary Brier score of P(chosen), the one soft_brier and votes_brier use: metrics.brier sums the
        # squares of both classes, twice it, so a model scored 0.625 here and 0.3125 on the same labels as soft ones
        hit = (gold[keep] == "chosen").to_numpy(dtype=float)
        nll = np.where(hit > 0, nll_chosen[keep], nll_rejected[keep]).mean()
        out.update(accuracy=float(right.mean()), nll=float(nll), brier=float(((prob[keep] - hit) ** 2).mean()),
                   ece=metrics.calibration_error(confidence, right, n_bins))
    # p_chosen + p_tie may pass 1 by the loaders' rounding tolerance: the soft ECE refused such a target as
    # "outcome: not a probability" (a soft label of p_chosen 1, p_tie 9e-7 that load_pairs accepts)
    y = np.clip(p_chosen + 0.5 * p_tie, 0.0, 1.0)
    out["soft_nll"] = float((y * nll_chosen + (1 - y) * nll_rejected).mean())
    out["soft_brier"] = float(((prob - y) ** 2).mean())
    out["soft_ece"] = metrics.calibration_error(prob, y, n_bins)
    if votes is not None and all(c in votes.columns for c in VOTE_COLUMNS[:2]):
        n_c = votes["votes_chosen"].to_numpy(dtype=float)
        n_r = votes["votes_rejected"].to_numpy(dtype=float)
        n_t = votes["votes_tie"].to_numpy(dtype=float) if "votes_tie" in votes.columns else np.zeros_like(n_c)
        total = n_c + n_r
        if total.sum() > 0:
            has = total > 0
            out["n_votes"] = whole(total.sum())
            out["n_tie_votes"] = whole(np.nansum(n_t))
            # by the sign of d, as the hard accuracy: sigmoid(d) rounds to exactly 1/2 for |d| < 1e-16
            out["votes_accuracy"] = float((n_c * (d > 0) + n_r * (d < 0) + 0.5 * total * (d == 0)).sum() / total.sum())
            out["votes_nll"] = float((n_c * nll_chosen + n_r * nll_rejected).sum() / total.sum())
            out["votes_brier"] = float((n_c * (1 - prob) ** 2 + n_r * prob**2).sum() / total.sum())
            out["votes_ece"] = metrics.calibration_error(prob[has], n_c[has] / total[has], n_bins)
    return out


def load_model(model_dir: str | Path, device: str | torch.device | None = None,
               progress: bool = False) -> tuple[RewardModel, Any]:
    """A saved reward model and its tokenizer, on ``device`` (default: a GPU when there is one); transformers'
    'Loading weights' bar only with ``progress``."""
    from accord.reward.trainer import library_bars

    model_dir = Path(model_dir).expanduser()
    target = _device(device)  # a device this machine lacks fails before the weights load
    with library_bars(progress):
        model = RewardModel.from_pretrained(model_dir).to(target)
    tokenizer = load_tokenizer(model_dir, model_dir)
    ensure_pad_token(tokenizer, str(model_dir))
    model.check_token("pad token", tokenizer.pad_token, tokenizer.pad_token_id, f"{model_dir}: ")
    return model, tokenizer


FALLBACK_MAX_LENGTH = 512  # RewardConfig's default: a saved model whose metadata records none was trained with it


def saved_max_length(model: RewardModel, max_length: int | None) -> int:
    """The tokens per sequence to read a saved model with: ``max_length``, else the length it was trained with (its
    metadata's, else the trainer's default), checked against the backbone's positions. An error about a length the
    user did not give says where it came from: '--max-length 512' was named where no one typed it."""
    if max_length:
        model.check_max_length(max_length)
        return max_length
    saved = model.meta.get("max_length")
    origin = (" (the length the model was trained with)" if saved else
              f" (the default: the model's {META_FILE} records no length)")
    max_length = int(saved or FALLBACK_MAX_LENGTH)
    model.check_max_length(max_length, origin=origin)
    return max_length


def warn_stats_length(stats: dict[str, Any] | None, max_length: int, source: str) -> None:
    """Warn once when the rewards' statistics (``source``: the file holding them) were measured at another
    ``max_length`` than the responses are read at (recorded since they are; older ones are taken as they are)."""
    measured_at = (stats or {}).get("max_length")
    if isinstance(measured_at, int) and measured_at != max_length:
        # rewards of responses cut elsewhere are other rewards: reward_normalised was put on another scale unsaid
        warnings.warn(SettingWarning("max_length", lambda name: (
            f"the mean and sd in {source} that reward_normalised divides by were measured on rewards read at "
            f"{assigned(name, measured_at)}; these are read at {assigned(name, max_length)}, so reward_normalised "
            f"may be on another scale (read them at {assigned(name, measured_at)})")), stacklevel=3)


def _encoder(model: RewardModel, tokenizer: Any, max_length: int | None) -> PairEncoder:
    max_length = saved_max_length(model, max_length)
    return PairEncoder(tokenizer, max_length, model.is_decoder, model.meta.get("use_chat_template"))


def evaluate(model_dir: str | Path, data: Any, *, batch_size: int = 32, max_length: int | None = None,
             device: str | torch.device | None = None, n_bins: int = 10,
             model: RewardModel | None = None, tokenizer: Any = None, progress: bool = False) -> dict[str, float]:
    """Score a saved reward model on preference pairs (a cleaned dataset or any layout :func:`load_pairs` reads).

    Returns the metrics of :func:`pairwise_metrics` of the calibrated log-odds (:mod:`accord.reward.calibration`,
    when the model has a calibration), plus the truncation counts (for a process reward model, those of
    :func:`accord.reward.steps.step_reward_metrics` on a step dataset). Vote columns in ``data``
    (``votes_chosen``, ``votes_rejected``, ``votes_tie``) add the metrics against held-out votes. ``progress``
    draws a bar over the pairs.
    """
    if model is None and _task(model_dir) == "steps":
        from accord.reward.steps import evaluate_steps

        return evaluate_steps(model_dir, data, batch_size=batch_size, max_length=max_length, device=device,
                              progress=progress)
    if model is None and _task(model_dir) == "attributes":
        from accord.reward.attributes import evaluate_attributes

        with naming_file(_source(data)):  # (a chat template's refusal named the row, not the file)
            return evaluate_attributes(model_dir, data, batch_size=batch_size, max_length=max_length, device=device,
                                       progress=progress)
    # before the model loads: a problem with the data is reported at once, as score does
    frame = load_pairs(data, held_out=True)
    if model is None:
        model, tokenizer = load_model(model_dir, device, progress)
    encoder = _encoder(model, tokenizer, max_length)
    with naming_file(_source(data)):  # (a chat template's refusal named the row, not the file)
        pairs = encoder.encode_pairs(frame)
    _warn_cut(pairs.truncation["truncated_responses"], pairs.truncation["sequences"], "responses of the pairs",
              encoder.max_length, "evaluate")
    pred = predict_pairs(model, pairs, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                         progress=progress, desc="evaluating")
    # the fitted temperature, when the model has one
    d = apply_calibration(pair_logits(pred), model.meta, encoder.max_length)
    result = pairwise_metrics(d, frame["p_chosen"].to_numpy(), frame["p_tie"].to_numpy(),
                              votes=frame if VOTE_COLUMNS[0] in frame.columns else None, n_bins=n_bins)
    result.update({k: int(v) for k, v in pairs.truncation.items()})
    return result


def whole(value: float) -> int | float:
    """A count as an int when it is a whole number (vote columns may hold weights, so a vote count may not be)."""
    value = float(value)
    return int(value) if value.is_integer() else value


def score(model_dir: str | Path, data: Any, *, k: float | None = None, batch_size: int = 32,
          max_length: int | None = None, device: str | torch.device | None = None,
          progress: bool = False) -> pd.DataFrame:
    """Rewards of new responses or pairs from a saved reward model.

    ``data``: a frame (or a file :func:`load_pairs` / pandas reads) with a ``response`` column (and optionally
    ``prompt``), or with ``chosen`` and ``rejected`` columns (``p_chosen_model`` uses the model's calibration,
    :mod:`accord.reward.calibration`, when it has one). Per response it returns ``reward`` and
    ``reward_normalised`` (``(reward - mean) / sd`` of the training-set rewards in ``reward_stats.json``; absent for
    a model saved without them); a model
    trained with an uncertainty head (``uncertainty_head=True``, ``accord train --uncertainty-head``) adds
    ``reward_sd``, its standard deviation, and ``conservative_reward = reward - k * reward_sd`` (``k`` defaults to
    1), to use against reward hacking. A model without the head has neither column, and asking it for ``k`` is an
    error: its conservative reward would be the reward itself. Pairs get these per side (suffixes ``_chosen``,
    ``_rejected``) and ``p_chosen_model``, the model's probability that ``chosen`` is better. The rows come back
    as they came, a frame's index kept; a column of the data named like one of these is an error (the score would
    replace it). A process reward model (``accord train --task steps``) scores a step
    dataset instead, one row per step (:func:`accord.reward.steps.score_steps`).
    """
    if _task(model_dir) == "attributes":  # every attribute and their combination
        from accord.reward.attributes import score_attributes

        with naming_file(_source(data)):
            return score_attributes(model_dir, data, k=k, batch_size=batch_size, max_length=max_length,
                                    device=device, progress=progress)
    if _task(model_dir) == "steps":  # a process reward model: one row per step
        from accord.reward.steps import score_steps

        if k is not None:
            raise SettingError("k", lambda name: f"{name}: the conservative reward is for response rewards, not "
                               "per-step scores")
        return score_steps(model_dir, data, batch_size=batch_size, max_length=max_length, device=device,
                           progress=progress)
    if k is not None and RewardModel.read_meta(model_dir).get("ensemble_heads", 1) > 1:
        raise SettingError("k", lambda name: f"{name}: {model_dir} has ensemble heads, no uncertainty head; score "
                           "them as an ensemble (accord.reward.ensemble.score_ensemble, `accord score "
                           "--conservative`)")
    if k is not None and not RewardModel.read_meta(model_dir).get("uncertainty_head"):
        raise k_without_uncertainty_head(model_dir)
    frame = _read_scored(data)  # before the model loads: a problem with the data is reported at once
    pairs_frame = None if "response" in frame.columns else pair_texts(frame, source=_source(data))
    uncertainty = bool(RewardModel.read_meta(model_dir).get("uncertainty_head"))
    sides = [""] if pairs_frame is None else ["_chosen", "_rejected"]
    written = [column for suffix in sides for column in _side_columns(np.zeros(0), np.zeros(0), 1.0, (0.0, 1.0),
                                                                      suffix, uncertainty)]
    refuse_score_columns(frame, written + ([] if pairs_frame is None else ["p_chosen_model"]), _source(data))
    model, tokenizer = load_model(model_dir, device, progress)
    k = 1.0 if k is None else float(k)
    encoder = _encoder(model, tokenizer, max_length)
    # a model saved without its training rewards' statistics has no normalised reward: it was the reward itself
    # (mean 0, sd 1 taken for them), a column that said normalised where nothing was, as score_attributes leaves
    # it out for a combination without statistics
    stats = model.stats or {}
    normalise = None
    if {"mean", "sd"} <= set(stats):
        mean, sd = float(stats["mean"]), float(stats["sd"]) or 1.0
        if not (math.isfinite(mean) and math.isfinite(sd)):  # every normalised reward would be NaN
            raise AccordError(f"{model_dir}: its {STATS_FILE} has mean {mean} and sd {sd}; the training rewards "
                              "were NaN (a diverged model): retrain it")
        normalise = (mean, sd)
        warn_stats_length(stats, encoder.max_length, STATS_FILE)
    if "response" in frame.columns:
        with naming_file(_source(data)):
            encoded = encoder.encode(*response_texts(frame))
        reward, variance = predict_responses(model, encoded, pad_token_id=tokenizer.pad_token_id,
                                             batch_size=batch_size, progress=progress)
        refuse_nan(f"{model_dir}: reward", reward, "responses")
        _warn_cut(encoded.truncated_responses, len(frame), "responses", encoder.max_length)
        return frame.copy().assign(**_side_columns(reward, variance, k, normalise, "", model.uncertainty_head))
    with naming_file(_source(data)):
        pairs = encoder.encode_pairs(pairs_frame)
    pred = predict_pairs(model, pairs, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                         progress=progress)
    for side in ("chosen", "rejected"):
        refuse_nan(f"{model_dir}: reward_{side}", pred[f"reward_{side}"], "pairs")
    _warn_cut(pairs.truncation["truncated_responses"], 2 * len(pairs_frame), "responses of the pairs",
              encoder.max_length)
    out = frame.copy()
    for side in ("chosen", "rejected"):
        out = out.assign(**_side_columns(pred[f"reward_{side}"], pred[f"var_{side}"], k, normalise, f"_{side}",
                                         model.uncertainty_head))
    out["p_chosen_model"] = expit(apply_calibration(pair_logits(pred), model.meta, encoder.max_length))
    return out


def k_without_uncertainty_head(model_dir: str | Path) -> SettingError:
    """The error of ``k`` (``--k`` on the command line, which the message names there) for a model without an
    uncertainty head."""
    return SettingError("k", lambda name: (
        f"{name}: {model_dir} has no uncertainty head (it was trained without --uncertainty-head), so it has no "
        f"reward_sd and its conservative reward would equal the reward; train with --uncertainty-head to use {name}"))


CUT_EFFECTS = {"score": "their rewards read only their beginning",
               "evaluate": "the metrics read only their beginning",
               "calibrate": "the temperature is fitted to the log-odds of their beginning"}  # what a cut does


def _warn_cut(cut: int, total: int, what: str, max_length: int, command: str = "score") -> None:
    """Say how many responses ``max_length`` cut, once, as training does: score read only their first tokens,
    without a word (two answers that part after the cut got one reward), and evaluate put the count in its metrics
    alone; ``command`` (score, evaluate, calibrate) leads the line and says what the cut does."""
    warn_cut(cut, total, what, max_length, CUT_EFFECTS[command], prefix=f"{command}: ", stacklevel=3)


def _task(model_dir: str | Path) -> str:
    """The task a saved model was trained for (models saved before tasks existed are pairwise)."""
    return RewardModel.read_meta(model_dir).get("task", "pairwise")


def _side_columns(reward: np.ndarray, var: np.ndarray, k: float, normalise: tuple[float, float] | None,
                  suffix: str, uncertainty: bool) -> dict[str, np.ndarray]:
    """The score's columns of one side: ``normalise`` is the training rewards' ``(mean, sd)`` (``None``: no
    ``reward_normalised``)."""
    columns = {f"reward{suffix}": reward}
    if uncertainty:
        reward_sd = np.sqrt(var)
        columns[f"reward_sd{suffix}"] = reward_sd
    if normalise is not None:
        columns[f"reward_normalised{suffix}"] = (reward - normalise[0]) / normalise[1]
    if uncertainty:
        columns[f"conservative_reward{suffix}"] = reward - k * reward_sd
    return columns


def _read_frame(data: Any) -> pd.DataFrame:
    """The table in ``data`` (a frame, or a file :func:`~accord.reward.data.read_table_path` reads), checked. A frame
    keeps its index, so that the scores come back on the caller's rows (``df["reward"] = score(rm, df)["reward"]``
    put every reward on the wrong row of a frame whose index was not 0..n-1); rows are read by position."""
    if isinstance(data, pd.DataFrame):
        return _check_texts(data, None)
    from accord.reward.data import read_table_path

    return _check_texts(read_table_path(Path(data)), _source(data))


def refuse_score_columns(frame: pd.DataFrame, written: list[str], source: str | None) -> None:
    """One error for a column of the scored table named like a column the scores are written to: the score
    replaced it without a word (a table scored before, or one with a ``reward`` of its own, lost its column)."""
    taken = [column for column in written if column in frame.columns]
    if taken:
        raise ValidationError(f"the scores are written to a column of this name ({len(taken)} of the data's columns "
                              f"would be replaced: {', '.join(repr(c) for c in taken)}); rename or drop "
                              f"{'it' if len(taken) == 1 else 'them'} in the data and score again",
                              source=source, column=taken[0])


def _source(data: Any) -> str | None:
    """The file ``data`` was read from, for an error to name (``None`` for a frame, a dict of columns or a Hugging
    Face dataset: nothing to name, not their text)."""
    return str(data) if isinstance(data, (str, os.PathLike)) else None


def _read_scored(data: Any) -> pd.DataFrame:
    """The table ``accord score`` reads (:func:`_read_frame`): responses (a ``response`` column) or pairs (``chosen``
    and ``rejected``). The raters' judgments, or a table with neither, is one error naming the file (:func:`_source`),
    found before a model loads."""
    with reading_for("score"):  # a saved DatasetDict's one split, whatever its name
        frame = _read_frame(data)
    source = _source(data)
    columns = set(frame.columns)
    if "response" not in columns and not {"chosen", "rejected"} <= columns:
        if {"annotator", "label"} <= columns or {"worker", "label"} <= columns:
            normalise_pairs(frame, source=source)  # its error: the judgments themselves, to be aggregated first
        raise ValidationError(f"scoring needs a 'response' column, or 'chosen' and 'rejected' "
                              f"({columns_note(frame.columns)})", source=source,
                              column="response" if "chosen" not in columns else "rejected")
    return frame


def _check_texts(frame: pd.DataFrame, source: str | None) -> pd.DataFrame:
    """``frame``, once it has rows, no response it scores is missing (it would be scored as the empty text) and every
    response and prompt is a text or chat messages."""
    if len(frame) == 0:
        raise ValidationError("the table is empty (nothing to score)", source=source)
    for column in ("response", "chosen", "rejected"):
        if column in frame.columns:
            missing = frame[column].isna().to_numpy()
            if missing.any():
                raise ValidationError("missing response text", source=source, column=column,
                                      row=int(np.flatnonzero(missing)[0]))
    if "response" in frame.columns:  # pairs are checked as training checks them (pair_texts)
        check_responses(frame, source)
    return frame


def reward_stats(rewards: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation (``sd``, at least 1e-6) of rewards, for ``reward_stats.json``."""
    rewards = np.asarray(rewards, dtype=float)
    # a NaN mean would make every normalised reward of the saved model NaN
    refuse_nan("training rewards (reward_stats.json)", rewards, "rewards")
    sd = float(rewards.std()) if len(rewards) > 1 else 1.0
    return {"mean": float(rewards.mean()), "sd": max(sd, 1e-6) if math.isfinite(sd) else 1.0, "n": len(rewards)}
