r"""Combining a multi-attribute reward model's ``K`` rewards into one scalar.

With ``r_k(x)`` the reward of response ``x`` on attribute ``k``, every combination is

.. math:: R(x) = \sum_k w_k(p)\,\big(r_k(x) - s_k (\ell(x) - \bar\ell)\big)

with ``p`` the prompt and ``\ell(x)`` the response's length in words:

* :class:`FixedWeights` - weights chosen by hand (Nemotron-4-340B-Reward combines its five HelpSteer2 attributes
  with fixed weights; Wang et al., 2024);
* :class:`FittedWeights` - weights fitted to overall preferences: a logistic regression of the overall label
  ``P(chosen > rejected)`` on the attribute reward differences ``r_k(chosen) - r_k(rejected)`` (no intercept: the
  order of a pair's sides carries no information), with an L2 penalty ``alpha``;
* :class:`GatingNetwork` - prompt-conditioned weights (ArmoRM's gating network; Wang et al., 2024, "Interpretable
  Preferences via Multi-Objective Reward Modeling and Mixture-of-Experts"): a small MLP on the prompt's embedding
  (the backbone's pooled hidden state of the prompt alone) gives non-negative weights summing to one (a softmax),
  times a learned scale ``beta``, trained on overall preferences with the soft Bradley-Terry loss.

``decorrelate_length`` (any combination): ``s_k`` is the slope of attribute ``k``'s reward on the response's length
over the fitting responses (both sides of every pair), so each corrected reward is uncorrelated with length there
(ArmoRM's verbosity decorrelation, done per attribute by least squares); without it ``s_k = 0``.

A combination is saved next to the model (:data:`COMBINATION_FILE`, JSON) by :func:`save_combination` and used by
``accord score``; :func:`fit_combination` (``accord combine``) fits one from a saved model and preference pairs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord._session import fit_defaults, seeded
from accord.datasets.cleaned import chat_messages, content_text, is_messages
from accord.datasets.errors import AccordError, SettingError, ValidationError
from accord.datasets.io import atomic_path

COMBINATION_FILE = "reward_combination.json"
METHODS = ("fixed", "fitted", "gating")


def response_lengths(texts: Sequence[Any]) -> np.ndarray:
    """Length of each response in words (whitespace-separated), the length the decorrelation removes. A response
    given as chat messages counts the words of its assistant turns' content (a whole conversation's user turns are
    the prompt; messages without an assistant turn count every turn's content): the Python repr of the list was
    counted, its brackets, keys and roles with it."""
    return np.array([len(_response_words(t).split()) for t in texts], dtype=np.float64)


def _response_words(value: Any) -> str:
    """The text of a response whose words :func:`response_lengths` counts."""
    messages = chat_messages(value) if is_messages(value) else None
    if not messages:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    said = [m for m in messages if m.get("role") == "assistant"] or messages
    return "\n".join(content_text(m.get("content")) for m in said if m.get("content") is not None)


class Combination:
    """Base class: ``attributes`` (the model's outputs, in order), the length correction, :meth:`combine`."""

    method = ""

    def __init__(self, attributes: Sequence[str], decorrelate_length: bool = False):
        self.attributes = list(attributes)
        self.decorrelate_length = bool(decorrelate_length)
        self.length_slope_ = np.zeros(len(self.attributes))
        self.length_mean_ = 0.0
        self.stats_: dict[str, float] | None = None

    def fit_length(self, rewards: np.ndarray, lengths: np.ndarray) -> "Combination":
        """The slope of each attribute's reward on length (least squares), when ``decorrelate_length``."""
        if not self.decorrelate_length:
            return self
        lengths = np.asarray(lengths, dtype=float)
        centred = lengths - lengths.mean()
        variance = float((centred**2).mean())
        self.length_mean_ = float(lengths.mean())
        if variance > 0:
            self.length_slope_ = (centred[:, None] * (rewards - rewards.mean(axis=0))).mean(axis=0) / variance
        return self

    def corrected(self, rewards: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        """``r_k - s_k (length - mean length)``; unchanged without decorrelation."""
        if not self.decorrelate_length:
            return np.asarray(rewards, dtype=float)
        if lengths is None:
            raise AccordError("this combination removes the length: it needs the responses' texts")
        return rewards - self.length_slope_ * (np.asarray(lengths, dtype=float)[:, None] - self.length_mean_)

    def weights(self, embedding: np.ndarray | None, n: int) -> np.ndarray:
        """``(n, K)`` weights of each example's attributes."""
        raise NotImplementedError

    def combine(self, rewards: np.ndarray, lengths: np.ndarray | None = None,
                embedding: np.ndarray | None = None) -> np.ndarray:
        """The combined reward of each response (``rewards``: ``(n, K)``)."""
        rewards = np.asarray(rewards, dtype=float)
        return (self.weights(embedding, len(rewards)) * self.corrected(rewards, lengths)).sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "attributes": self.attributes, "decorrelate_length": self.decorrelate_length,
                "length_slope": self.length_slope_.tolist(), "length_mean": self.length_mean_, "stats": self.stats_}

    def _load_common(self, values: Mapping[str, Any]) -> None:
        self.length_slope_ = np.asarray(values.get("length_slope") or np.zeros(len(self.attributes)), dtype=float)
        self.length_mean_ = float(values.get("length_mean") or 0.0)
        self.stats_ = values.get("stats")


class FixedWeights(Combination):
    """Weights chosen by hand, ``{attribute: weight}`` (attributes left out weigh 0)."""

    method = "fixed"

    def __init__(self, weights: Mapping[str, float], attributes: Sequence[str], decorrelate_length: bool = False):
        super().__init__(attributes, decorrelate_length)
        unknown = sorted(set(weights) - set(self.attributes))
        if unknown:
            raise SettingError("weights", lambda name: (
                f"{name}: unknown attribute(s) {unknown} (the model has {self.attributes})"))
        self.coef_ = np.array([float(weights.get(a, 0.0)) for a in self.attributes])
        if not np.isfinite(self.coef_).all():
            raise SettingError("weights", lambda name: (
                f"{name}: every weight must be a finite number, got {dict(weights)}"))

    def weights(self, embedding: np.ndarray | None, n: int) -> np.ndarray:
        return np.broadcast_to(self.coef_, (n, len(self.attributes)))

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "weights": dict(zip(self.attributes, self.coef_.tolist()))}


class FittedWeights(FixedWeights):
    """Weights fitted to overall preferences by L2-penalised logistic regression without intercept.

    Maximises ``sum_i u_i [y_i log sigmoid(x_i.w) + (1 - y_i) log sigmoid(-x_i.w)] - alpha |w|^2 / 2`` by Newton's
    method, with ``x_i`` the pair's attribute reward differences (length-corrected), ``y_i`` its soft overall label
    and ``u_i`` its weight.
    """

    method = "fitted"

    def __init__(self, attributes: Sequence[str], alpha: float = 1.0, decorrelate_length: bool = False,
                 max_iter: int = 100, tol: float = 1e-8):
        super().__init__({}, attributes, decorrelate_length)
        self.alpha, self.max_iter, self.tol = float(alpha), int(max_iter), float(tol)
        if not 0.0 <= self.alpha < math.inf:
            raise SettingError("alpha", lambda name: f"{name}: the L2 penalty must be a finite number >= 0, got {alpha}")

    def fit(self, differences: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None = None
            ) -> "FittedWeights":
        x = np.asarray(differences, dtype=float)
        y = np.asarray(target, dtype=float)
        u = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        for what, values in (("attribute reward differences", x), ("overall labels", y), ("weights", u)):
            # a NaN made Newton's step NaN, which was refused as a missing penalty ("give alpha > 0") at any alpha
            finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
            if not finite.all():
                raise AccordError(f"fitted combination: the pairs' {what} must be finite numbers (pair "
                                  f"{int(np.flatnonzero(~finite)[0])} is not)")
        w = np.zeros(x.shape[1])
        penalty = self.alpha * np.eye(x.shape[1])
        for _ in range(self.max_iter):
            with np.errstate(over="ignore"):  # exp of a large margin: p is 0 or 1 there, as it should be
                p = 1.0 / (1.0 + np.exp(-(x @ w)))
            gradient = x.T @ (u * (p - y)) + self.alpha * w
            hessian = (x * (u * p * (1.0 - p))[:, None]).T @ x + penalty
            try:
                step = np.linalg.solve(hessian, gradient)
            except np.linalg.LinAlgError:  # only without a penalty: alpha > 0 keeps the Hessian positive definite
                step = np.full_like(w, np.nan)
            if not np.isfinite(step).all():
                # was numpy's "LinAlgError: Singular matrix" traceback: without a penalty the likelihood has no
                # finite maximum where the rewards separate the labels (the weights grow until p is exactly 0 or 1)
                raise self._undetermined()
            w = w - step
            if np.abs(step).max() < self.tol:
                break
        else:
            if self.alpha == 0:  # still growing after max_iter steps: no finite maximum, as above
                raise self._undetermined()
        self.coef_ = w
        return self

    def _undetermined(self) -> SettingError:
        return SettingError("alpha", lambda name: (
            f"{name}: without a penalty the weights are not determined by these pairs (the attribute rewards "
            f"separate the overall labels, or an attribute's differences are all 0): give {name} > 0"))


class GatingNetwork(Combination):
    """Prompt-conditioned weights: ``w(p) = softmax(MLP(e(p)))``, the combined reward ``beta * sum_k w_k(p) r_k``.

    The MLP has one hidden layer of ``hidden`` units (ReLU); ``beta = exp(log_beta)`` is learned with it. Trained
    with Adam for ``max_steps`` full-batch steps on the soft Bradley-Terry loss against the overall label, with
    weight decay ``weight_decay`` (the embeddings are standardised first, with the fitting set's mean and sd).
    """

    method = "gating"

    def __init__(self, attributes: Sequence[str], hidden: int = 64, max_steps: int = 500, learning_rate: float = 1e-2,
                 weight_decay: float = 1e-3, seed: int = 0, decorrelate_length: bool = False):
        super().__init__(attributes, decorrelate_length)
        self.hidden, self.max_steps, self.learning_rate = int(hidden), int(max_steps), float(learning_rate)
        self.weight_decay, self.seed = float(weight_decay), int(seed)
        if self.hidden < 1:
            raise SettingError("hidden", lambda name: (
                f"{name}: the gating network needs at least 1 hidden unit, got {hidden}"))
        self.params_: dict[str, np.ndarray] = {}

    def _network(self, size: int) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(size, self.hidden), torch.nn.ReLU(),
                                   torch.nn.Linear(self.hidden, len(self.attributes)))

    def fit(self, embedding: np.ndarray, differences: np.ndarray, target: np.ndarray,
            sample_weight: np.ndarray | None = None) -> "GatingNetwork":
        # seeded, in float32 and with gradients on, whatever the session has set; its random streams and defaults
        # are back after the fit (a bare torch.manual_seed here reseeded the caller's global stream)
        with seeded(self.seed), fit_defaults():
            return self._fit(embedding, differences, target, sample_weight)

    def _fit(self, embedding: np.ndarray, differences: np.ndarray, target: np.ndarray,
             sample_weight: np.ndarray | None) -> "GatingNetwork":
        emb = np.asarray(embedding, dtype=np.float64)
        self.params_["emb_mean"], self.params_["emb_sd"] = emb.mean(axis=0), emb.std(axis=0) + 1e-6
        e = torch.as_tensor((emb - self.params_["emb_mean"]) / self.params_["emb_sd"], dtype=torch.float32)
        x = torch.as_tensor(np.array(differences, dtype=np.float32))
        y = torch.as_tensor(np.array(target, dtype=np.float32))
        u = torch.ones_like(y) if sample_weight is None else torch.as_tensor(np.array(sample_weight, dtype=np.float32))
        network = self._network(e.shape[1])
        log_beta = torch.zeros((), requires_grad=True)
        optimiser = torch.optim.Adam([*network.parameters(), log_beta], lr=self.learning_rate,
                                     weight_decay=0.0)
        for _ in range(self.max_steps):
            optimiser.zero_grad()
            gate = torch.softmax(network(e), dim=1)
            logit = log_beta.exp() * (gate * x).sum(dim=1)
            nll = -(y * torch.nn.functional.logsigmoid(logit) + (1 - y) * torch.nn.functional.logsigmoid(-logit))
            decay = sum((p**2).sum() for name, p in network.named_parameters() if name.endswith("weight"))
            loss = (u * nll).sum() / u.sum() + self.weight_decay * decay
            loss.backward()
            optimiser.step()
        for name, value in network.state_dict().items():
            self.params_[name] = value.detach().numpy().astype(np.float64)
        self.params_["log_beta"] = np.array(float(log_beta.detach()))
        return self

    def weights(self, embedding: np.ndarray | None, n: int) -> np.ndarray:
        if embedding is None:
            raise AccordError("a gating combination needs the prompts' embeddings")
        p = self.params_
        e = (np.asarray(embedding, dtype=float) - p["emb_mean"]) / p["emb_sd"]
        hidden = np.maximum(e @ p["0.weight"].T + p["0.bias"], 0.0)
        logits = hidden @ p["2.weight"].T + p["2.bias"]
        logits -= logits.max(axis=1, keepdims=True)
        gate = np.exp(logits)
        gate /= gate.sum(axis=1, keepdims=True)
        return math.exp(float(p["log_beta"])) * gate

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "hidden": self.hidden,
                "params": {k: np.asarray(v).tolist() for k, v in self.params_.items()}}


def check_fixed_weights(weights: Mapping[str, float]) -> None:
    """One error when every weight given by hand is 0: the combined reward would be 0 for every response (weights of
    opposite signs, or attributes left out, are fine)."""
    if weights and all(float(w) == 0.0 for w in weights.values()):
        raise SettingError("weights", lambda name: (
            f"{name}: every weight is 0, so the combined reward would be 0 for every response: give some attribute a "
            "weight other than 0"))


def combination_from_dict(values: Mapping[str, Any], attributes: Sequence[str]) -> Combination:
    """A combination saved by :meth:`Combination.to_dict` (or the default ``{"method": "fixed", "weights": ...}``
    of a model's metadata)."""
    method = values.get("method")
    decorrelate = bool(values.get("decorrelate_length", False))
    if method in ("fixed", "fitted"):
        combination: Combination = FixedWeights(values.get("weights") or {}, attributes, decorrelate)
        combination.method = method
    elif method == "gating":
        combination = GatingNetwork(attributes, hidden=int(values.get("hidden", 64)), decorrelate_length=decorrelate)
        combination.params_ = {k: np.asarray(v, dtype=np.float64) for k, v in values["params"].items()}
    else:
        raise AccordError(f"unknown combination method {method!r} (use one of {METHODS})")
    combination._load_common(values)
    return combination


def save_combination(model_dir: str | Path, combination: Combination) -> Path:
    """Write ``reward_combination.json`` into a saved model's folder (atomically); ``accord score`` then uses it."""
    path = Path(model_dir).expanduser() / COMBINATION_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(combination.to_dict(), indent=1))
    return path


def load_combination(model_dir: str | Path, meta: Mapping[str, Any]) -> Combination:
    """The saved combination of a model, else the default one of its metadata."""
    names = meta["attributes"]["names"]
    # "~/rm" as the model loads from it: unexpanded, the saved combination was not found and the default one
    # (the training-time weights) scored in its place, unsaid
    path = Path(model_dir).expanduser() / COMBINATION_FILE
    if path.exists():  # a file cut short (or no object) was a JSONDecodeError or AttributeError traceback
        from accord.reward.model import _read_json

        return combination_from_dict(_read_json(path, model_dir, dict), names)
    return combination_from_dict(meta.get("combination") or {"method": "fixed", "weights": {}}, names)


def fit_combination(model_dir: str | Path, pairs: Any, method: str = "fitted", *,
                    weights: Mapping[str, float] | None = None, decorrelate_length: bool = False, alpha: float = 1.0,
                    hidden: int = 64, seed: int = 0, batch_size: int = 32, device: str | None = None,
                    model: Any = None, tokenizer: Any = None, progress: bool = False) -> Combination:
    """Fit a combination of a saved multi-attribute model's rewards on preference pairs with an overall label.

    ``pairs``: anything :func:`accord.reward.load_pairs` reads (``prompt``, ``chosen``, ``rejected``, ``p_chosen``
    and optionally ``weight``: a cleaned dataset of overall preferences). ``method``: ``"fixed"`` (``weights``
    needed; the pairs only set the length correction and the statistics), ``"fitted"`` or ``"gating"``. The
    combined reward's mean and sd on the pairs' responses are kept as its statistics (``reward_normalised``).
    """
    from accord.reward.attributes import AttributeSpec, predict_sequences
    from accord.reward.data import load_pairs, warn_cut
    from accord.reward.evaluate import _encoder, load_model

    if method not in METHODS:
        raise AccordError(f"unknown combination method {method!r} (use one of {METHODS})")
    if method == "fixed" and not weights:
        raise AccordError("a fixed combination needs weights (attribute=weight, ...)")
    if method == "fixed":
        check_fixed_weights(weights)
    if model is None:
        from accord.reward.model import RewardModel

        meta = RewardModel.read_meta(model_dir)
        if meta.get("task") != "attributes":
            raise AccordError(f"{model_dir}: not a multi-attribute reward model (trained with --task attributes)")
    names = AttributeSpec.from_dict((meta if model is None else model.meta)["attributes"]).names
    # the settings and the pairs before the model loads: a negative alpha, no hidden unit or a weight of an
    # attribute the model lacks was said only after every pair was scored
    if method == "fixed":
        combination: Combination = FixedWeights(weights or {}, names, decorrelate_length)
    elif method == "fitted":
        combination = FittedWeights(names, alpha=alpha, decorrelate_length=decorrelate_length)
    else:
        combination = GatingNetwork(names, hidden=hidden, seed=seed, decorrelate_length=decorrelate_length)
    frame = load_pairs(pairs)
    weighted = frame["weight"].to_numpy(dtype=float) > 0
    if method != "fixed" and not weighted.any():
        # the fitted weights came out 0 (a combined reward of 0 for every response) and the gating network NaN: a
        # loss weighted by 0 everywhere learns nothing
        raise ValidationError(f"every pair has weight 0, so the {method} combination learns nothing from them: give "
                              "pairs with weights > 0", source=None if isinstance(pairs, pd.DataFrame) else str(pairs),
                              column="weight")
    tied = np.abs((frame["p_chosen"] + 0.5 * frame["p_tie"]).to_numpy(dtype=float) - 0.5) < 1e-12
    if method != "fixed" and tied[weighted].all():
        # no pair prefers a side: the fitted weights came out exactly 0 (a constant combined reward), with exit 0
        raise ValidationError(f"every pair's overall label is a tie (p_chosen + p_tie / 2 = 0.5), so the {method} "
                              "combination learns nothing from them: give pairs where one side is preferred",
                              source=None if isinstance(pairs, pd.DataFrame) else str(pairs), column="p_chosen")
    if model is None:
        model, tokenizer = load_model(model_dir, device)
    encoder = _encoder(model, tokenizer, None)
    encoded = encoder.encode_pairs(frame)
    # fitted on the rewards of what the saved max_length kept, as score reads them: said, as score says it
    warn_cut(encoded.truncation["truncated_responses"], encoded.truncation["sequences"], "responses of the pairs",
             encoder.max_length, "the combination is fitted to the rewards of their beginning", prefix="combine: ",
             stacklevel=2, advice="combine reads the max_length the model was saved with: a model trained with a "
             "larger one reads more")
    settings = dict(pad_token_id=tokenizer.pad_token_id, batch_size=batch_size, progress=progress)
    chosen = predict_sequences(model, encoded.chosen, **settings)["reward"]
    rejected = predict_sequences(model, encoded.rejected, **settings)["reward"]
    len_c, len_r = response_lengths(frame["chosen"]), response_lengths(frame["rejected"])
    target = (frame["p_chosen"] + 0.5 * frame["p_tie"]).to_numpy(dtype=float)
    weight = frame["weight"].to_numpy(dtype=float)
    embedding = None
    if method == "gating":
        prompts = encoder.encode([""] * len(frame), [_text(p) for p in frame["prompt"]])
        embedding = predict_sequences(model, prompts, capture_pooled=True, **settings)["pooled"]
    combination.fit_length(np.concatenate([chosen, rejected]), np.concatenate([len_c, len_r]))
    differences = combination.corrected(chosen, len_c) - combination.corrected(rejected, len_r)
    if method == "fitted":
        combination.fit(differences, target, weight)
    elif method == "gating":
        combination.fit(embedding, differences, target, weight)
    both = np.concatenate([combination.combine(chosen, len_c, embedding),
                           combination.combine(rejected, len_r, embedding)])
    # the length the rewards were read at: score at another warns (warn_stats_length)
    combination.stats_ = {"mean": float(both.mean()), "sd": max(float(both.std()), 1e-6), "n": len(both),
                          "max_length": encoder.max_length}
    return combination


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(m.get("content", "")) for m in value)
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def combination_frame(combination: Combination) -> pd.DataFrame:
    """The fixed or fitted weights (and length slopes) as a table, one row per attribute."""
    frame = pd.DataFrame({"attribute": combination.attributes, "length_slope": combination.length_slope_})
    if isinstance(combination, FixedWeights):
        frame.insert(1, "weight", combination.coef_)
    return frame
