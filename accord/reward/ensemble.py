r"""Reward-model ensembles and conservative rewards: several saved reward models (members trained with different
seeds and data order, full or LoRA), or the heads of one model trained with ``ensemble_heads`` (several scalar heads
on one backbone, each on its own bootstrap of the pairs: :mod:`accord.reward.pairwise`), score the same responses,
and their spread guards against a policy that exploits one model's errors. Heads cost one backbone's training and
one forward pass; separate models are the reference (their backbones differ too).

For the ``M`` members' rewards :math:`r_1..r_M` of a response (each standardised by its own training-set mean and
standard deviation from ``reward_stats.json``, a head by its own, so members on different scales are comparable):

=============  =================================================  ==========================================
``mean``       :math:`\bar r`                                      the ensemble's reward
``sd``         :math:`\bar r - k\,s`, :math:`s` the members' sd    uncertainty-weighted (Coste et al. 2024 UWO)
``var``        :math:`\bar r - k\,s^2` (``k`` is their lambda)      uncertainty-weighted optimisation
``min``        :math:`\min_m r_m`                                   worst-case optimisation (WCO)
=============  =================================================  ==========================================

T. Coste, U. Anwar, R. Kirk, D. Krueger. Reward model ensembles help mitigate overoptimization. *ICLR* 2024.
S. Zhang, Z. Chen, S. Chen, Y. Shen, Z. Sun, C. Gan. Improving reinforcement learning from human feedback with
efficient reward model ensemble. arXiv:2401.16635, 2024 (several linear heads on one shared backbone).
L. Gao, J. Schulman, J. Hilton. Scaling laws for reward model overoptimization. *ICML* 2023.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError, naming_file

CONSERVATIVE = ("sd", "var", "min")


def conservative_reward(members: np.ndarray, kind: str = "sd", k: float = 1.0) -> np.ndarray:
    """The conservative reward of ``members[M, n]`` (``M >= 2`` members' rewards of ``n`` responses): ``"sd"``,
    ``"var"``, ``"min"`` or ``"mean"`` (see the module docstring)."""
    _check_k(kind, k)
    members = np.asarray(members, dtype=np.float64)
    if members.ndim != 2:  # was "needs at least 2 reward models (got 0)", for two members' rewards of shape (2, n, 1)
        raise AccordError(f"members must be a 2-d array (members x responses), got shape {members.shape}")
    check_ensemble(members.shape[0], kind, k)
    bad = ~np.isfinite(members)
    if bad.any():  # the mean, sd and min would pass it on as a NaN (inf - inf in the sd) or infinite reward, unsaid
        member, response = (int(i[0]) for i in np.nonzero(bad))
        value = "NaN" if np.isnan(members[member, response]) else f"{members[member, response]:g}"
        raise AccordError(f"member {member}: its reward of response {response} is {value} "
                          f"({int(bad.sum())} NaN or infinite rewards in all); the conservative reward needs "
                          "every member's finite reward")
    mean = members.mean(axis=0)
    if kind == "mean":
        return mean
    if kind == "min":
        return members.min(axis=0)
    sd = members.std(axis=0, ddof=1)
    return mean - k * (sd if kind == "sd" else sd**2)


def check_ensemble(n_members: int, kind: str, k: float | None) -> None:
    """One clear error for an ensemble of fewer than two members, an unknown kind or a negative ``k``."""
    if kind not in CONSERVATIVE + ("mean",):
        raise AccordError(f"conservative: unknown kind {kind!r} (choose from {', '.join(CONSERVATIVE)} or mean)")
    if n_members < 2:
        raise AccordError(f"an ensemble needs at least 2 reward models (got {n_members}): its spread is what the "
                          "conservative reward subtracts")
    if k is not None:
        _check_k(kind, k)


def _check_k(kind: str, k: Any) -> None:
    """One error for a ``k`` that is no finite number >= 0: a string or a list was numpy's or Python's TypeError,
    None (for ``sd`` and ``var``) Python's, and True was taken as 1 without a word."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (math.isfinite(k) and k >= 0):
        if k is None and kind not in ("sd", "var"):  # min and mean subtract no spread: k is not read
            return
        raise AccordError(f"k must be a finite number >= 0 (how much spread to subtract), got {k!r}")


def ensemble_heads(model_dir: str | Path) -> int:
    """How many ensemble heads a saved model has (1: a plain model), read from its metadata."""
    from accord.reward.model import RewardModel

    return int(RewardModel.read_meta(model_dir).get("ensemble_heads", 1))


def score_ensemble(model_dirs: str | Path | Sequence[str | Path], data: Any, *, conservative: str = "sd",
                   k: float = 1.0, batch_size: int = 32, max_length: int | None = None, device: Any = None,
                   progress: bool = False) -> pd.DataFrame:
    """Rewards of responses (a ``response`` column, optionally ``prompt``) from every member in ``model_dirs``: a
    plain model is one member, a model trained with ``ensemble_heads = H`` is ``H`` (one folder of such a model is
    an ensemble by itself, and may be given bare).

    Returns the input with ``reward_mean``, ``reward_sd`` (the members' standard deviation), ``reward_min`` and
    ``conservative_reward`` (of kind ``conservative`` with ``k``), all on the members' standardised scale, and each
    member's standardised reward (``reward_0``, ``reward_1``, ...).
    """
    from accord.reward.evaluate import _read_scored, _source, _task, refuse_score_columns, score

    _check_k(conservative, k)  # a wrong setting before any member is read
    if isinstance(model_dirs, (str, os.PathLike)):  # one folder (of heads): was read letter by letter ("folder r")
        model_dirs = [model_dirs]
    model_dirs = [str(d) for d in model_dirs]
    heads = [ensemble_heads(d) for d in model_dirs]
    check_ensemble(sum(heads), conservative, k)
    for directory in model_dirs:  # a step or multi-attribute model scores steps or attributes, not one reward
        task = _task(directory)
        if task != "pairwise":
            raise AccordError(f"folder {directory}: a reward model of task '{task}'; an ensemble's members are "
                              "pairwise reward models (one reward per response)")
    named: dict[str, str] = {}
    for directory in model_dirs:  # "rm,rm" (or rm and ./rm/) was two identical members: no spread, a smaller sd
        folder = os.path.realpath(Path(directory).expanduser())
        if folder in named:
            first = named[folder]
            raise AccordError(f"folder {directory}: named twice in the ensemble (also as {first}); a member counts "
                              "once: its copy would add no spread and shrink the members' sd")
        named[folder] = directory
    frame = _read_scored(data)
    if "response" not in frame.columns:
        raise ValidationError("an ensemble scores responses: the data needs a 'response' column (and optionally "
                              "'prompt')", source=_source(data), column="response")
    written = [f"reward_{m}" for m in range(sum(heads))]
    refuse_score_columns(frame, [*written, "reward_mean", "reward_sd", "reward_min", "conservative_reward"],
                         _source(data))
    for directory, n_heads in zip(model_dirs, heads):  # the data first, then what the members lack
        _check_stats(directory, n_heads)
    rows = []
    # each member warns of what it reads (responses max_length cut): members reading the same responses the same
    # way said it once per member, so each distinct warning is said once, after the members scored
    # (naming_file: a chat template's refusal named the row, not the file)
    with warnings.catch_warnings(record=True) as said, naming_file(_source(data)):
        for directory, n_heads in zip(model_dirs, heads):
            if n_heads > 1:
                rows.extend(head_rewards(directory, frame, batch_size=batch_size, max_length=max_length,
                                         device=device, progress=progress))
            else:
                # only the texts: a column of the data named like one a member's own scores write ('reward') is
                # no column the ensemble writes
                texts = frame[[column for column in ("prompt", "response") if column in frame.columns]]
                rows.append(score(directory, texts, batch_size=batch_size, max_length=max_length, device=device,
                                  progress=progress)["reward_normalised"].to_numpy())
    for warning in {(type(w.message), str(w.message)): w for w in said}.values():
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    members = np.stack(rows)
    out = frame.copy()
    for m, values in enumerate(members):
        out[f"reward_{m}"] = values
    out["reward_mean"] = members.mean(axis=0)
    out["reward_sd"] = members.std(axis=0, ddof=1)
    out["reward_min"] = members.min(axis=0)
    out["conservative_reward"] = conservative_reward(members, conservative, k)
    return out


def _check_stats(directory: str, n_heads: int) -> None:
    """One error, before any model loads, for a member without the training-set statistics (``reward_stats.json``,
    with one entry per head for ensemble heads) that put it on the members' common scale: its rewards were taken
    as they came (mean 0, sd 1), beside members standardised by theirs, and the spread mixed the two scales."""
    from accord.reward.model import STATS_FILE, _read_json

    path = Path(directory).expanduser() / STATS_FILE
    stats = _read_json(path, directory) if path.is_file() else None
    wanted = "mean and sd" if n_heads == 1 else f"a mean and sd for each of its {n_heads} heads ('heads')"
    if not isinstance(stats, dict) or (n_heads == 1 and not {"mean", "sd"} <= set(stats)) or (
            n_heads > 1 and len(stats.get("heads") or []) != n_heads):
        raise AccordError(f"folder {directory}: an ensemble member needs its training rewards' {wanted} in "
                          f"{STATS_FILE} (the trainer writes them), to put its rewards on the members' common scale")


def head_rewards(model_dir: str | Path, frame: pd.DataFrame, *, batch_size: int = 32, max_length: int | None = None,
                 device: Any = None, progress: bool = False) -> np.ndarray:
    """``(H, n)``: each ensemble head's reward of the responses of ``frame`` (a ``response`` column, optionally
    ``prompt``), standardised by that head's training-set mean and standard deviation (``reward_stats.json``)."""
    from accord.reward.data import response_texts
    from accord.reward.evaluate import _encoder, _warn_cut, load_model, predict_response_heads

    model, tokenizer = load_model(model_dir, device)
    encoder = _encoder(model, tokenizer, max_length)
    encoded = encoder.encode(*response_texts(frame))
    # as score says it of a plain member: the heads read only the beginning of a response max_length cut (was: not
    # a word, for the same responses a plain member warned of)
    _warn_cut(encoded.truncated_responses, len(frame), "responses", encoder.max_length)
    members = predict_response_heads(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                                     progress=progress)
    stats = (model.stats or {}).get("heads") or [{}] * len(members)
    mean = np.array([float(s.get("mean", 0.0)) for s in stats])
    sd = np.array([float(s.get("sd", 1.0)) or 1.0 for s in stats])
    return (members - mean[:, None]) / sd[:, None]
