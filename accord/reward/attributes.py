"""The multi-attribute reward task: one backbone, one forward pass, ``K`` rewards per response (one per attribute).

``accord train --task attributes`` reads a cleaned multi-attribute dataset (:mod:`accord.datasets.
cleaned_attributes`, written by ``accord aggregate`` from per-attribute ratings) or any table in one of its two
layouts, and trains a head of ``K`` outputs on it:

* **pairs** (``prompt``, ``chosen``, ``rejected`` and per attribute ``p_chosen_<a>``, optionally ``weight_<a>``):
  each *preference* attribute is a pairwise reward, ``d_a = r_a(chosen) - r_a(rejected)`` is the log-odds that
  chosen is better on ``a`` and the configured pairwise loss (``--loss``, default the certainty-weighted soft BCE)
  compares it with ``p_chosen_<a>``, weighted by ``weight_<a>`` (the label's certainty). A *property* of a pair
  (``<a>_mean`` on a ``low..high`` scale, e.g. UKPConvArg2's reasons on ``0..1``) is predicted from the same
  per-response head, ``P(a) = sigmoid(r_a(chosen) - r_a(rejected) + c_a)``, with ``c_a`` the logit of the
  property's training prevalence (so an untrained head predicts the base rate), by the weighted soft BCE against
  its rescaled mean.
* **responses** (``prompt``, ``response`` and per attribute ``<a>_mean``, ``<a>_sd``): each attribute is a
  regression on its scale rescaled to ``-1..1`` (``y = (mean - centre) / half-width``) with a Gaussian likelihood,
  :func:`gaussian_nll_loss`: the label's own variance ``(sd / half-width)^2`` (plus a small floor) is the noise
  variance, so an uncertain mean counts less; with ``--uncertainty-head`` the model's predicted variance is added.
  The scale is the cleaned dataset's; a plain table declares it by columns (:func:`declared_scale_columns`), else
  it is inferred from the table's values (:func:`inferred_scale`) and recorded as inferred.

Missing labels are masked: a count ``n_<a>`` / ``<a>_n`` of 0 (the cleaned layouts impute such values, and refuse
a NaN one: they carry no rating), or a NaN label in a plain table. The loss of attribute ``a`` is averaged over the examples rated on ``a`` in the whole
optimisation step (:meth:`AttributesTask.step_context` counts them), so a rarely rated attribute is not drowned by
a frequent one and the gradient does not depend on how the step is split; the ``K`` attribute losses are averaged.

The attributes, their kinds, scales and offsets are saved in the model's metadata (``attributes``), with the
default combination into one scalar (``combination``: the ``overall`` attribute, else the attribute the pairs were
oriented by, else equal weights); :mod:`accord.reward.attribute_combination` fits others, and
:func:`score_attributes` (``accord score``) reports every attribute and the combined reward.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from accord.datasets.attributes import validate_attributes
from accord.datasets.cleaned import read_with_provenance
from accord.datasets.cleaned_attributes import LAYOUTS, check_attribute_cleaned
from accord.datasets.errors import AccordError, SettingWarning, ValidationError
from accord.datasets.schema import columns_named
from accord.reward.data import (LABEL_SUM_TOLERANCE, PairCollator, PairEncoder, TokenizedPairs,
                                TokenizedResponses, pair_texts, reading_for, response_texts)
from accord.reward.evaluate import pair_hits
from accord.reward.losses import get_loss, pair_loss_inputs, pairwise_logit
from accord.reward.task import RewardTask, model_inputs, register_task

PREFERENCE, PROPERTY, SCORE = "preference", "property", "score"
#: Floor of a graded label's noise sd on the rescaled ``-1..1`` scale: a mean with sd 0 (one rating, or a gold
#: value) still leaves the head some slack, so that one exact label cannot dominate the step.
SCORE_NOISE_FLOOR = 0.1


def gaussian_nll_loss(reward: torch.Tensor, target: torch.Tensor, target_var: torch.Tensor,
                      reward_var: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian negative log-likelihood of a graded label: ``0.5 ((r - y)^2 / v + log v)``.

    ``v = target_var + SCORE_NOISE_FLOOR^2`` (+ ``reward_var``, the model's own variance, with an uncertainty head):
    the label's posterior variance is part of the noise, so the squared error of an uncertain label is divided by a
    larger variance and counts less. Element-wise, one (response, attribute) per element. Not in the loss registry:
    ``--loss`` chooses the pairwise loss, and graded attributes always use this one.
    """
    variance = target_var.float() + SCORE_NOISE_FLOOR**2
    if reward_var is not None:
        variance = variance + reward_var.float()
    return 0.5 * ((reward.float() - target.float()) ** 2 / variance + torch.log(variance))


# ----------------------------------------------------------------------------------------------------------------------
# reading: the attributes of a table
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class AttributeSpec:
    """What the model learns per output: names, kinds (preference, property, score), scales and property offsets."""

    layout: str  # "pairs" or "responses"
    names: list[str]
    kinds: list[str]
    scales: list[tuple[float, float]]
    offsets: list[float] = field(default_factory=list)  # per attribute; 0 except for properties
    chosen_by: str | None = None
    #: the graded attributes whose scale no one declared: taken from the training table's values
    inferred: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "names": self.names, "kinds": self.kinds,
                "scales": [list(s) for s in self.scales], "offsets": self.offsets, "chosen_by": self.chosen_by,
                "inferred_scales": self.inferred}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AttributeSpec":
        return cls(values["layout"], list(values["names"]), list(values["kinds"]),
                   [tuple(s) for s in values["scales"]], list(values["offsets"]), values.get("chosen_by"),
                   list(values.get("inferred_scales") or []))

    def default_weights(self) -> dict[str, float]:
        """The default combination: ``overall`` when there is one, else the attribute the pairs were oriented by,
        else equal weights on every attribute that is a reward (properties of pairs are not)."""
        for name in ("overall", self.chosen_by):
            if name in self.names and self.kinds[self.names.index(name)] != PROPERTY:
                return {name: 1.0}
        rewards = [n for n, k in zip(self.names, self.kinds) if k != PROPERTY] or self.names
        return {name: 1.0 / len(rewards) for name in rewards}


def read_attribute_table(source: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A multi-attribute training table and its metadata (empty for a plain table), checked.

    A long-form judgments table (one row per rating, an ``attribute`` column) is validated - its problems (a
    missing attribute, a rating off its scale, two scales in one attribute) are reported as such - and then
    refused: a reward model trains on aggregated labels (``accord aggregate`` writes them).
    """
    name = None
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        path = Path(source)
        if path.suffix.lower() in (".parquet", ".pq", ".jsonl", ".ndjson") and path.is_file():
            frame, meta = read_with_provenance(path, text_columns=("pair_id", "response_id", "prompt", "response",
                                                                    "chosen", "rejected"))
        else:
            from accord.reward.data import read_table_path

            frame, meta = read_table_path(path), {}
    elif isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
        meta = dict(source.attrs.get("accord") or source.attrs.get("provenance") or {})
    else:
        raise AccordError(f"cannot read a multi-attribute table from a {type(source).__name__}")
    if {"attribute", "label"} <= set(frame.columns):
        validate_attributes(frame, source=name)
        raise AccordError(f"{name or 'the table'}: a judgments table (one row per rating): aggregate it into a "
                          "cleaned multi-attribute dataset first (accord aggregate --input FILE --output "
                          "cleaned.parquet) and train on that")
    if len(frame) == 0:
        raise ValidationError("the multi-attribute table is empty", source=name)
    if meta.get("layout") in LAYOUTS:
        check_attribute_cleaned(frame, meta, source=name)
    elif meta.get("layout") is not None:
        raise ValidationError(f"a '{meta['layout']}' dataset, not a multi-attribute one (layouts {LAYOUTS})",
                              source=name)
    frame.attrs = {"accord": meta, "source": name}
    return frame, meta


def attribute_spec(frame: pd.DataFrame, meta: dict[str, Any]) -> AttributeSpec:
    """The attributes a table trains, from its metadata (a cleaned dataset) or its column names (a plain table)."""
    source = frame.attrs.get("source")
    columns = set(frame.columns)
    scales = {a: tuple(s) for a, s in (meta.get("scales") or {}).items()}
    if {"chosen", "rejected"} <= columns:
        if meta.get("layout") == "attribute-pairs":
            preference = list(meta.get("preference_attributes") or [])
            properties = list(meta.get("property_attributes") or [])
        else:
            preference = [c[len("p_chosen_"):] for c in columns_named(frame, prefix="p_chosen_")]
            properties = [c[:-len("_mean")] for c in columns_named(frame, suffix="_mean")]
        names = preference + properties
        kinds = [PREFERENCE] * len(preference) + [PROPERTY] * len(properties)
        layout = "pairs"
    elif "response" in columns:
        names = list(meta.get("attributes") or [c[:-len("_mean")] for c in columns_named(frame, suffix="_mean")])
        kinds = [SCORE] * len(names)
        layout = "responses"
    else:
        raise ValidationError("neither pairs ('chosen' and 'rejected' columns) nor responses (a 'response' "
                              "column)", source=source, column="response")
    if not names:
        raise ValidationError("no attribute columns (p_chosen_<a> for pairs, <a>_mean for responses)",
                              source=source)
    spec_scales, inferred = [], []
    for name, kind in zip(names, kinds):
        if kind == PREFERENCE:
            spec_scales.append((0.0, 1.0))
            continue
        if name not in scales:
            declared = declared_scale_columns(frame, name, source)
            if declared is not None:
                scales[name] = declared
            elif kind == PROPERTY:
                scales[name] = (0.0, 1.0)  # a property without a declared scale is a probability
            else:
                scales[name] = inferred_scale(frame, name, source)
                inferred.append(name)
        low, high = scales[name]
        if not high > low:
            raise ValidationError(f"the scale {low}..{high} is empty" + (
                f"; {DECLARE_SCALE.format(name=name)}" if name in inferred else ""), source=source,
                column=f"{name}_mean")
        spec_scales.append((float(low), float(high)))
    return AttributeSpec(layout, names, kinds, spec_scales, [0.0] * len(names), meta.get("chosen_by"), inferred)


#: How a plain table declares a graded attribute's scale (the advice of errors about an inferred one).
DECLARE_SCALE = ("declare the scale in the training table: columns scale_min and scale_max (one scale for every "
                 "attribute) or {name}_scale_min and {name}_scale_max (one attribute's), or train on the cleaned "
                 "dataset accord aggregate writes, which records it")


def declared_scale_columns(frame: pd.DataFrame, name: str, source: str | None) -> tuple[int, int] | None:
    """An attribute's scale declared by the table's columns, as the judgments table declares it: ``<a>_scale_min`` /
    ``<a>_scale_max`` (that attribute's), else ``scale_min`` / ``scale_max`` (every attribute's); one value per
    column. None when the table has neither pair."""
    for low_column, high_column in ((f"{name}_scale_min", f"{name}_scale_max"), ("scale_min", "scale_max")):
        present = [c for c in (low_column, high_column) if c in frame.columns]
        if not present:
            continue
        if len(present) == 1:
            missing = high_column if present[0] == low_column else low_column
            raise ValidationError(f"'{present[0]}' needs its partner column", source=source, column=missing)
        bounds = []
        for column in (low_column, high_column):
            values = _numeric(frame, column, source)
            bad = ~np.isfinite(values) | (values != values[0])
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValidationError(f"the scale bound must be one number in every row (row 0 has "
                                      f"{frame[column].iloc[0]!r})", source=source, column=column, row=row,
                                      value=frame[column].iloc[row])
            bounds.append(float(values[0]))
        return bounds[0], bounds[1]
    return None


def inferred_scale(frame: pd.DataFrame, name: str, source: str | None) -> tuple[int, int]:
    """A graded attribute's scale when none is declared: the whole numbers around every value the table gives on it
    (``<a>_mean`` and, where present, the interval ``<a>_lower`` / ``<a>_upper``: the widest evidence there is)."""
    columns = [c for c in (f"{name}_mean", f"{name}_lower", f"{name}_upper") if c in frame.columns]
    values = np.concatenate([_numeric(frame, column, source) for column in columns])
    if np.isnan(values).all():
        raise ValidationError(f"no rating to take the scale from: {DECLARE_SCALE.format(name=name)}",
                              source=source, column=f"{name}_mean")
    return math.floor(np.nanmin(values)), math.ceil(np.nanmax(values))


def attribute_labels(frame: pd.DataFrame, spec: AttributeSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, label_var, weight)``, each ``(n, K)`` float32: the targets (probabilities for pairs, means
    rescaled to ``-1..1`` for responses), their variances and weights; NaN labels where an attribute was not rated
    (or its column is absent). Values off their range are one :class:`ValidationError` naming column and row."""
    source = frame.attrs.get("source")
    n, k = len(frame), len(spec.names)
    labels = np.full((n, k), np.nan, dtype=np.float64)
    label_var = np.zeros((n, k), dtype=np.float64)
    weight = np.ones((n, k), dtype=np.float64)
    for j, (name, kind, (low, high)) in enumerate(zip(spec.names, spec.kinds, spec.scales)):
        column = f"p_chosen_{name}" if kind == PREFERENCE else f"{name}_mean"
        if column not in frame.columns:
            continue  # an evaluation table without this attribute: masked
        values = _numeric(frame, column, source)
        centre, half = (low + high) / 2.0, (high - low) / 2.0
        bad = np.isfinite(values) & ((values < low - 1e-9) | (values > high + 1e-9))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            # a scale taken from the training means (none declared) is no more than their range: say so, and how to
            # declare the real one (was: the bare refusal, naming a scale the user never gave)
            inferred = "" if name not in spec.inferred else (
                f" (inferred from the training table's values, which declared no scale: "
                f"{DECLARE_SCALE.format(name=name)}, and train again)")
            raise ValidationError(f"must lie on the attribute's scale {low:g}..{high:g}{inferred}", source=source,
                                  column=column, row=row, value=frame[column].iloc[row])
        if kind == SCORE:
            labels[:, j] = (values - centre) / half
            if f"{name}_sd" in frame.columns:
                sd = _numeric(frame, f"{name}_sd", source)
                if (sd < 0).any():
                    row = int(np.flatnonzero(sd < 0)[0])
                    raise ValidationError("must be a standard deviation >= 0", source=source,
                                          column=f"{name}_sd", row=row, value=frame[f"{name}_sd"].iloc[row])
                label_var[:, j] = np.nan_to_num((sd / half) ** 2)
        else:
            labels[:, j] = (values - low) / (high - low)
        weight_column = f"weight_{name}"
        if weight_column in frame.columns:
            w = _numeric(frame, weight_column, source)
            bad = np.isfinite(w) & ((w < 0) | (w > 1))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValidationError("must be a weight in [0, 1]", source=source, column=weight_column, row=row,
                                      value=frame[weight_column].iloc[row])
            weight[:, j] = np.nan_to_num(w, nan=1.0)
        for count in (f"n_{name}", f"{name}_n"):
            if count in frame.columns:
                labels[_numeric(frame, count, source) == 0, j] = np.nan  # imputed, not rated
    return labels.astype(np.float32), label_var.astype(np.float32), weight.astype(np.float32)


def encode_attribute_table(encoder: PairEncoder, spec: AttributeSpec, table: pd.DataFrame) -> "AttributeData":
    """Tokenize a table of :func:`read_attribute_table` and attach its labels (:func:`attribute_labels`)."""
    labels, label_var, weight = attribute_labels(table, spec)
    if spec.layout == "pairs":
        return AttributeData(encoder.encode_pairs(pair_texts(table)), None, labels, label_var, weight)
    return AttributeData(None, encoder.encode(*response_texts(table)), labels, label_var, weight)


def _numeric(frame: pd.DataFrame, column: str, source: str | None) -> np.ndarray:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = (np.isnan(values) & raw.notna().to_numpy()) | np.isinf(values)  # missing is NaN: not rated
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError("must be a finite number", source=source, column=column, row=row,
                              value=raw.iloc[row])
    return values


# ----------------------------------------------------------------------------------------------------------------------
# the task
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class AttributeData:
    """Tokenized examples (pairs or responses) with ``(n, K)`` labels, label variances and weights."""

    pairs: TokenizedPairs | None
    responses: TokenizedResponses | None
    labels: np.ndarray
    label_var: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        if self.pairs is not None:
            return self.pairs.lengths
        return np.array([len(ids) for ids in self.responses.ids], dtype=np.int64)

    @property
    def truncation(self) -> dict[str, int]:
        """How many prompts and responses ``max_length`` cut, as :attr:`TokenizedPairs.truncation` counts them: the
        pairwise and step models' evaluate reported them, a multi-attribute model's none."""
        if self.pairs is not None:
            return self.pairs.truncation
        return {"truncated_prompts": int(self.responses.truncated_prompts),
                "truncated_responses": int(self.responses.truncated_responses), "sequences": len(self.responses.ids)}


@register_task
class AttributesTask(RewardTask):
    """``K`` attributes from one forward pass (see the module docstring)."""

    name = "attributes"
    unit = "examples"
    loss_inputs = frozenset({"d", "p_chosen", "p_tie", "target", "weight", "weight_mean", "margin"})

    def __init__(self, config: Any, spec: AttributeSpec | None = None):
        super().__init__(config)
        self.property_loss = get_loss("weighted_soft_bce")
        self.spec = spec

    @property
    def num_outputs(self) -> int:
        if self.spec is None:
            raise AccordError("the attributes task knows its number of outputs once it has read its training data")
        return len(self.spec.names)

    def read(self, source: Any) -> pd.DataFrame:
        if isinstance(source, AttributeData):
            return source
        frame, meta = read_attribute_table(source)
        spec = attribute_spec(frame, meta)
        if self.spec is None:  # the training data (read first) fixes the attributes
            self.spec = spec
            labels, _, _ = attribute_labels(frame, spec)
            for j, kind in enumerate(spec.kinds):
                # the logit of the property's training prevalence; a property no training pair is rated on keeps 0
                # (its loss is masked everywhere, as an unrated preference's): a NaN offset would make its masked
                # losses' gradients NaN and every weight of the model with them
                if kind == PROPERTY and not np.isnan(labels[:, j]).all():
                    rate = float(np.clip(np.nanmean(labels[:, j]), 1e-3, 1 - 1e-3))
                    spec.offsets[j] = math.log(rate / (1 - rate))
        else:  # evaluation data: pairs score a model trained on graded responses too, as accord evaluate reads them
            warn_unlabelled(evaluation_spec(self.spec, frame, "the model"), frame)
        if spec.layout == "pairs":
            pair_texts(frame)  # the texts checked as the pairwise task checks them
        return frame

    def check_training(self, table: Any, source: str | None = None) -> None:
        # an attribute named like another column of the scores ('normalised': reward_normalised) trained, and then
        # every accord score of the model failed; refused before the model loads (bind checks a saved head's too)
        refuse_shared_score_column(self.spec, bool(self.config.uncertainty_head), source)
        # as the pairwise task: an attribute's weights are normalised to mean 1 over the step's rated pairs, so an
        # attribute rated only with weight 0 gets no gradient, and its reward would stay the untrained head's
        if isinstance(table, AttributeData) or self.spec.layout != "pairs":
            return  # graded responses: the Gaussian likelihood reads no weights
        labels, _, weight = attribute_labels(table, self.spec)
        for j, (name, kind) in enumerate(zip(self.spec.names, self.spec.kinds)):
            rated = ~np.isnan(labels[:, j])
            weighted = kind == PROPERTY or "weight" in self.loss.inputs  # properties: always the weighted soft BCE
            if weighted and rated.any() and not (weight[rated, j] > 0).any():
                loss = "weighted_soft_bce" if kind == PROPERTY else self.loss.name
                raise ValidationError(
                    f"every training pair rated on '{name}' has weight 0, so the loss '{loss}' (weighted by it) "
                    f"learns nothing of '{name}': give it weights > 0"
                    + ("" if kind == PROPERTY else ", or train with a loss that ignores weights (loss='soft_bce', "
                       "--loss soft_bce)"), source=source, column=f"weight_{name}")

    def resume_settings(self) -> dict[str, Any]:
        # the head's output j learned attribute j of the training data: a checkpoint records which, in order
        return {"attributes": list(self.spec.names), "kinds": list(self.spec.kinds)}

    def check_resume(self, saved: dict[str, Any], checkpoint: str) -> None:
        """A resumed run whose training data rename, reorder or leave out an attribute went on training each output
        towards another attribute than the one it had learned (or failed in torch's state-dict loading, naming
        none): refused, naming the attributes."""
        names, now = saved.get("attributes"), list(self.spec.names)
        if names is None:  # a checkpoint of an older version
            return
        kinds = dict(zip(names, saved.get("kinds") or self.spec.kinds))
        changed = [name for name, kind in zip(now, self.spec.kinds) if name in kinds and kinds[name] != kind]
        if names == now and not changed:
            return
        missing, new = [a for a in names if a not in now], [a for a in now if a not in names]
        if missing or new:
            how = "; ".join([*(f"{a!r} is not among this run's" for a in missing), *(f"{a!r} is new" for a in new)])
        elif changed:
            how = f"{changed[0]!r} is a {kinds[changed[0]]} there and a {self.spec.kinds[now.index(changed[0])]} here"
        else:
            how = "the same attributes in another order"
        raise AccordError(f"{checkpoint}: saved training the attributes {names}; this run's training data have {now} "
                          f"({how}): the checkpoint's head has one output per attribute, in that order, so a resumed "
                          "run needs the same attributes (start a fresh run to train others)")

    def bind(self, tokenizer: Any, model: Any) -> dict[str, Any]:
        cfg = self.config
        # a model trained on from a saved one has its uncertainty head, given or not: reward_sd is written
        refuse_shared_score_column(self.spec, bool(model.uncertainty_head), None)
        self.pad_token_id = tokenizer.pad_token_id
        self.encoder = PairEncoder(tokenizer, cfg.max_length, model.is_decoder, cfg.use_chat_template)
        self.collator = PairCollator(tokenizer.pad_token_id, packing=bool(cfg.packing), pooling=model.pooling,
                                     capacity=cfg.packing_capacity, hidden_size=model.hidden_size,
                                     pad_to_multiple_of=cfg.pad_to_multiple_of)
        return {"max_length": cfg.max_length, "use_chat_template": self.encoder.use_chat_template, "loss": cfg.loss,
                "attributes": self.spec.to_dict(),
                "combination": {"method": "fixed", "weights": self.spec.default_weights()}}

    def encode(self, table: Any) -> AttributeData:
        if isinstance(table, AttributeData):
            return table
        return encode_attribute_table(self.encoder, evaluation_spec(self.spec, table, "the model"), table)

    def cost(self, data: AttributeData) -> np.ndarray:
        if data.pairs is not None and not self.collator.packing:
            return data.pairs.longest
        return data.lengths

    def collate(self, data: AttributeData, indices: Sequence[int]) -> dict[str, Any]:
        indices = np.asarray(indices, dtype=np.int64)
        if data.pairs is not None:
            batch = self.collator(data.pairs, indices)
        else:
            types = None if data.responses.type_ids is None else [data.responses.type_ids[i] for i in indices]
            batch = self.collator.sequences([data.responses.ids[i] for i in indices], types)
        batch.update(labels=torch.from_numpy(data.labels[indices]), label_var=torch.from_numpy(
            data.label_var[indices]), attribute_weight=torch.from_numpy(data.weight[indices]), n_examples=len(indices))
        if data.pairs is not None:  # the side each label favours, for the logged accuracy
            batch["side"] = torch.from_numpy(label_sides(data.labels[indices]))
        return batch

    def step_context(self, data: AttributeData, indices: np.ndarray) -> dict[str, Any]:
        """The examples rated on each attribute in the whole step, and each attribute's mean weight over them; for
        pairs, the pairs whose label favours a side on each preference attribute (the logged accuracy's)."""
        rated = ~np.isnan(data.labels[indices])
        count = rated.sum(axis=0)
        weight_sum = np.where(rated, data.weight[indices], 0.0).sum(axis=0)
        step = {"n_examples": len(indices), "rated": torch.from_numpy(np.maximum(count, 1)).float(),
                "weight_mean": torch.from_numpy(weight_sum / np.maximum(count, 1)).float()}
        if data.pairs is not None:
            preference = np.array([kind == PREFERENCE for kind in self.spec.kinds])
            sided = ((label_sides(data.labels[indices]) != 0) & preference).sum(axis=0)
            step.update(sided=torch.from_numpy(sided).float(), n_sided_attributes=int((sided > 0).sum()))
        return step

    def compute_loss(self, model: torch.nn.Module, batch: dict[str, Any],
                     step: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per (example, attribute) losses, masked, averaged per attribute over the step, averaged over attributes;
        logs that loss (the one optimised) and, for pairs with a preference attribute, the accuracy as the evaluation
        reads it (:meth:`_accuracy`)."""
        out = model(**model_inputs(batch))
        labels = batch["labels"]
        rated = ~torch.isnan(labels)
        y = torch.nan_to_num(labels)
        k = labels.shape[1]
        reward = out.reward.reshape(-1, k)
        variance = None if out.variance is None else out.variance.reshape(-1, k)
        if self.spec.layout == "pairs":
            n = batch["n_pairs"]
            d = pairwise_logit(reward[:n], reward[n:], None if variance is None else variance[:n],
                               None if variance is None else variance[n:])
            kinds = self.spec.kinds
            offsets = torch.tensor(self.spec.offsets, dtype=d.dtype, device=d.device)
            is_property = torch.tensor([kind == PROPERTY for kind in kinds], device=d.device)
            logit = d + torch.where(is_property, offsets, torch.zeros_like(offsets))
            zeros = torch.zeros_like(y)
            weight_mean = step["weight_mean"].to(d.device)
            inputs = pair_loss_inputs(logit, p_chosen=y, p_tie=zeros, weight=batch["attribute_weight"],
                                      margin=zeros, weight_mean=weight_mean, default_margin=self.config.margin)
            per = self.loss({**self.loss_settings, **inputs})
            if is_property.any():
                per = torch.where(is_property, self.property_loss(inputs), per)
            accuracy = self._accuracy(logit, batch, step, ~is_property)
        else:
            per = gaussian_nll_loss(reward, y, batch["label_var"], variance)
            accuracy = None
        per = torch.where(rated, per, torch.zeros_like(per))
        loss = (per.sum(dim=0) / step["rated"].to(per.device)).sum() / k
        # the core divides logged sums by the step's examples: the micro-batch's share of the step's loss times them
        # logs the loss optimised (per attribute the mean over its rated pairs), where the sum of `per` over every
        # example and attribute would count each unrated one as a loss of 0 and read low with missing labels
        sums = {"loss": loss.detach() * step["n_examples"]}
        if accuracy is not None and PREFERENCE in self.spec.kinds:  # as the evaluation's: preferences only
            sums["accuracy"] = accuracy.detach()
        return loss, sums

    @staticmethod
    def _accuracy(logit: torch.Tensor, batch: dict[str, Any], step: dict[str, Any],
                  preference: torch.Tensor) -> torch.Tensor:
        """The micro-batch's share of the step's accuracy as :func:`attribute_metrics` reads it: per preference
        attribute the hits (:func:`accord.reward.evaluate.pair_hits`, a pair scored exactly even half right) over the
        step's pairs whose label favours a side, averaged over the attributes with such pairs; times the step's
        examples, which the core divides by."""
        side = batch["side"].to(logit.device)
        scored = (side != 0) & preference
        hits = torch.where(scored, pair_hits(logit.detach(), side), torch.zeros_like(logit)).sum(dim=0)
        per_attribute = hits / step["sided"].to(logit.device).clamp_min(1)
        return per_attribute.sum() * (step["n_examples"] / max(step["n_sided_attributes"], 1))

    def evaluate(self, model: Any, data: AttributeData, table: Any, *, device: torch.device, batch_size: int,
                 progress: bool) -> dict[str, float]:
        """Per attribute: pairwise ``accuracy_<a>`` (preferences), ``f1_<a>`` and ``accuracy_<a>`` (properties), each
        with its calibration (``nll_<a>``, ``ece_<a>``, ``soft_nll_<a>``, ``soft_ece_<a>``), or ``spearman_<a>`` and
        ``rmse_<a>`` on the attribute's scale (graded responses); ``accuracy``: the mean of the preference
        accuracies."""
        rewards = predict_attributes(model, data, pad_token_id=self.pad_token_id, batch_size=batch_size,
                                     packing=self.collator.packing, progress=progress)
        # pairs evaluating a model trained on graded responses: each attribute's reward difference orders the pair
        spec = pairs_view(self.spec) if data.pairs is not None and self.spec.layout != "pairs" else self.spec
        refuse_nan_rewards("evaluation data", spec, rewards)  # as accord evaluate (evaluate_attributes) does
        return attribute_metrics(spec, rewards, data.labels)

    def reward_stats(self, model: Any, data: AttributeData, indices: np.ndarray, *, device: torch.device,
                     batch_size: int, progress: bool) -> dict[str, Any]:
        """Mean and sd of every attribute's rewards (``attributes``) and of the default combined reward (a NaN
        reward is an error: its NaN mean would make every normalised reward of the saved model NaN)."""
        from accord.reward.evaluate import reward_stats

        rewards = predict_attributes(model, data, pad_token_id=self.pad_token_id, batch_size=batch_size,
                                     packing=self.collator.packing, indices=indices, progress=progress)
        every = np.concatenate([rewards["chosen"], rewards["rejected"]]) if "chosen" in rewards else rewards["reward"]
        weights = self.spec.default_weights()
        combined = every @ np.array([weights.get(name, 0.0) for name in self.spec.names])
        return {**reward_stats(combined), "attributes": {name: reward_stats(every[:, j]) for j, name in
                                                         enumerate(self.spec.names)}}


# ----------------------------------------------------------------------------------------------------------------------
# prediction and metrics
# ----------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_sequences(model: Any, encoded: TokenizedResponses, *, pad_token_id: int, batch_size: int = 64,
                      packing: bool = True, indices: np.ndarray | None = None, progress: bool = False,
                      capture_pooled: bool = False) -> dict[str, np.ndarray]:
    """``reward`` ``(n, K)`` of the sequences ``indices`` of ``encoded`` (default: all), ``variance`` with an
    uncertainty head, and with ``capture_pooled`` the pooled hidden states the head reads (``pooled``, ``(n, H)``:
    the embedding a gating network conditions on)."""
    from accord.reward.evaluate import _bar, _eval_mode

    device = next(model.parameters()).device
    collator = PairCollator(pad_token_id, packing=packing, pooling=model.pooling, hidden_size=model.hidden_size)
    subset = np.arange(len(encoded.ids)) if indices is None else np.asarray(indices, dtype=np.int64)
    n, k = len(subset), model.num_outputs
    order = np.argsort(-np.array([len(encoded.ids[i]) for i in subset]), kind="stable")
    reward = np.zeros((n, k))
    variance = np.full((n, k), np.nan)
    pooled = np.zeros((n, model.hidden_size), dtype=np.float32) if capture_pooled else None
    captured: list[torch.Tensor] = []
    hook = model.head.register_forward_hook(lambda _m, args, _o: captured.append(args[0])) if capture_pooled else None
    try:
        with _eval_mode(model), _bar(n, "scoring", "sequence", progress) as bar:
            for start in range(0, n, batch_size):
                at = order[start:start + batch_size]
                rows = subset[at]
                types = None if encoded.type_ids is None else [encoded.type_ids[i] for i in rows]
                batch = collator.sequences([encoded.ids[i] for i in rows], types)
                out = model(**{key: v.to(device) for key, v in batch.items() if isinstance(v, torch.Tensor)})
                reward[at] = out.reward.float().reshape(len(at), k).cpu().numpy()
                if out.log_var is not None:
                    variance[at] = out.log_var.float().exp().reshape(len(at), k).cpu().numpy()
                if capture_pooled:
                    pooled[at] = captured.pop().float().cpu().numpy()
                bar.update(len(at))
    finally:
        if hook is not None:
            hook.remove()
    result = {"reward": reward, "variance": variance}
    if capture_pooled:
        result["pooled"] = pooled
    return result


def predict_attributes(model: Any, data: AttributeData, *, pad_token_id: int, batch_size: int = 64,
                       packing: bool = True, indices: np.ndarray | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
    """Every attribute's reward: ``chosen``/``rejected`` (and ``var_chosen``/``var_rejected``) ``(n, K)`` for pairs,
    ``reward`` (and ``variance``) for responses."""
    settings = dict(pad_token_id=pad_token_id, batch_size=batch_size, packing=packing, indices=indices,
                    progress=progress)
    if data.pairs is None:
        return predict_sequences(model, data.responses, **settings)
    chosen = predict_sequences(model, data.pairs.chosen, **settings)
    rejected = predict_sequences(model, data.pairs.rejected, **settings)
    return {"chosen": chosen["reward"], "rejected": rejected["reward"], "var_chosen": chosen["variance"],
            "var_rejected": rejected["variance"]}


def refuse_nan_rewards(name: str | Path, spec: AttributeSpec, rewards: dict[str, np.ndarray]) -> None:
    """One error naming ``name`` (the model, or the data being evaluated), the attribute and the first response or
    pair whose reward of it is NaN (a diverged model), which would come out as NaN or wrong metrics."""
    from accord.reward.evaluate import refuse_nan

    for key, suffix, rows in (("reward", "", "responses"), ("chosen", "_chosen", "pairs"),
                              ("rejected", "_rejected", "pairs")):
        if key not in rewards:  # responses or pairs, not both
            continue
        for j, attribute in enumerate(spec.names):
            refuse_nan(f"{name}: reward_{attribute}{suffix}", rewards[key][:, j], rows)


def pair_attribute_logits(spec: AttributeSpec, rewards: dict[str, np.ndarray]) -> np.ndarray:
    """``(n, K)``: the log-odds that chosen is better on each preference attribute, and the logit of each property."""
    var_c, var_r = rewards["var_chosen"], rewards["var_rejected"]
    has_var = not np.isnan(var_c).all()
    d = pairwise_logit(torch.as_tensor(rewards["chosen"]), torch.as_tensor(rewards["rejected"]),
                       torch.as_tensor(var_c) if has_var else None, torch.as_tensor(var_r) if has_var else None)
    d = d.double().numpy()
    return d + np.array([o if kind == PROPERTY else 0.0 for o, kind in zip(spec.offsets, spec.kinds)])


def attribute_metrics(spec: AttributeSpec, rewards: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """The metrics of :meth:`AttributesTask.evaluate` from predicted rewards and ``(n, K)`` labels."""
    from accord.reward.evaluate import pairwise_metrics

    out: dict[str, float] = {}
    accuracies = []
    if "chosen" in rewards:
        logits = pair_attribute_logits(spec, rewards)
        sides = label_sides(labels)
        for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
            side = sides[:, j]
            keep = side != 0
            if not keep.any():
                continue
            truth, guess = side[keep] > 0, logits[keep, j] > 0
            # a pair scored exactly even (two identical responses) is half right, as pairwise_metrics counts it,
            # not right whenever the label favours the rejected side
            out[f"accuracy_{name}"] = float(pair_hits(logits[keep, j], side[keep]).mean())
            out[f"n_{name}"] = int(keep.sum())
            # calibration as the combined reward's (it was not measured per attribute): of the pairs favouring a side
            # (nll, ece) and against the soft labels of every rated pair (soft_nll, soft_ece)
            rated = np.isfinite(labels[:, j])
            calibration = pairwise_metrics(logits[rated, j], labels[rated, j])
            out.update({f"{metric}_{name}": calibration[metric] for metric in ("nll", "ece", "soft_nll", "soft_ece")})
            if kind == PROPERTY:
                out[f"f1_{name}"] = f1_score(truth, guess)
            else:
                accuracies.append(out[f"accuracy_{name}"])
    else:
        for j, (name, (low, high)) in enumerate(zip(spec.names, spec.scales)):
            y = labels[:, j]
            keep = np.isfinite(y)
            if keep.sum() < 2:
                continue
            centre, half = (low + high) / 2.0, (high - low) / 2.0
            reward, truth = rewards["reward"][keep, j], centre + half * y[keep]
            # the order of the rewards themselves (clipped grades tie where the head overshoots), and the error of the
            # grade accord score writes: unclipped, a grade off the scale counted an error no mean rating can make
            out[f"spearman_{name}"] = float(pd.Series(reward).corr(pd.Series(truth), method="spearman"))
            out[f"rmse_{name}"] = float(np.sqrt(np.mean((predicted_grade(reward, low, high) - truth) ** 2)))
            out[f"n_{name}"] = int(keep.sum())
    if accuracies:
        out["accuracy"] = float(np.mean(accuracies))
    return out


def predicted_grade(reward: np.ndarray, low: float, high: float) -> np.ndarray:
    """A graded attribute's reward read back on its scale ``low..high`` (training rescaled the means to ``-1..1``),
    clipped to the scale: the linear head is unbounded, and a predicted mean rating of 4.3 on a 0..4 scale (or below
    its bottom) was written as ``<a>_predicted``, a mean no ratings can have."""
    return np.clip((low + high) / 2.0 + (high - low) / 2.0 * np.asarray(reward, dtype=float), low, high)


def label_sides(labels: np.ndarray) -> np.ndarray:
    """The side each pair's label favours on each attribute, ``(n, K)`` int8: ``1`` chosen (above 1/2), ``-1``
    rejected, ``0`` neither (exactly 1/2, or not rated): the pairs an accuracy leaves out."""
    y = np.asarray(labels, dtype=float)
    sided = np.isfinite(y) & (np.abs(np.nan_to_num(y, nan=0.5) - 0.5) > 1e-9)
    return np.where(sided, np.sign(np.nan_to_num(y, nan=0.5) - 0.5), 0).astype(np.int8)


def f1_score(truth: np.ndarray, guess: np.ndarray) -> float:
    """F1 of the positive class; 0 when the class is neither present nor predicted."""
    tp = float((truth & guess).sum())
    denominator = float(truth.sum() + guess.sum())
    return 2.0 * tp / denominator if denominator > 0 else 0.0


# ----------------------------------------------------------------------------------------------------------------------
# using a saved model: accord score and accord evaluate
# ----------------------------------------------------------------------------------------------------------------------


def score_attributes(model_dir: str | Path, data: Any, *, k: float | None = None, batch_size: int = 32,
                     max_length: int | None = None, device: str | torch.device | None = None,
                     progress: bool = False) -> pd.DataFrame:
    """Every attribute's reward and the combined reward of new responses or pairs (``accord score``).

    Per response: ``reward_<a>`` for each attribute (the head's output; ``reward_sd_<a>`` with an uncertainty
    head), ``<a>_predicted`` for a graded attribute (the predicted mean on its scale, clipped to it), ``reward``
    (the combination saved with the model, :mod:`accord.reward.attribute_combination`), ``reward_normalised`` (by the
    combined reward's statistics on the data it was fitted on, or trained on; absent for fixed weights given without
    data),
    ``gate_<a>`` for a gating combination (attribute ``a``'s weight in the combined reward, set by the prompt) and,
    with an uncertainty head, ``reward_sd`` (the attributes' variances combined with the squared weights) and
    ``conservative_reward = reward - k * reward_sd``. Pairs get these per side (suffixes ``_chosen``,
    ``_rejected``; ``gate_<a>`` once, the two sides' prompt being one), ``p_chosen_<a>_model`` per preference
    attribute, ``p_<a>_model`` per property and ``p_chosen_model`` from the combined reward.
    """
    from accord.reward.attribute_combination import COMBINATION_FILE, _text, load_combination, response_lengths
    from accord.reward.evaluate import (_encoder, _read_scored, _source, _warn_cut, k_without_uncertainty_head,
                                        load_model, refuse_nan, refuse_score_columns, warn_stats_length)
    from accord.reward.model import STATS_FILE, RewardModel

    frame = _read_scored(data)  # before the model loads: a problem with the data is reported at once
    meta = RewardModel.read_meta(model_dir)
    if k is not None and not meta.get("uncertainty_head"):
        raise k_without_uncertainty_head(model_dir)
    # a data column named like a score column, before the model loads (it was found once every response was scored)
    folder = Path(model_dir).expanduser()
    saved = load_combination(model_dir, meta)
    normalised = bool(saved.stats_) or (not (folder / COMBINATION_FILE).exists() and (folder / STATS_FILE).exists())
    saved_spec, pairs, uncertainty = AttributeSpec.from_dict(meta["attributes"]), "response" not in frame, bool(
        meta.get("uncertainty_head"))
    # a model saved before training refused an attribute named like another score column ('normalised':
    # reward_normalised): the error of its scoring, before it loads
    shared = shared_score_column(saved_spec, uncertainty, (pairs,), normalised, saved.method == "gating")
    if shared is not None:
        raise shared_column_error(model_dir, *shared[:3])
    refuse_score_columns(frame, score_columns(saved_spec, pairs, uncertainty, normalised, saved.method == "gating"),
                         _source(data))
    model, tokenizer = load_model(model_dir, device, progress)
    spec = AttributeSpec.from_dict(model.meta["attributes"])
    k = 1.0 if k is None else float(k)
    combination = load_combination(model_dir, model.meta)
    # the combined reward's statistics: measured when the combination was fitted, else (the default combination)
    # at the end of training; a fixed combination given without data has none, and no normalised reward
    stats = combination.stats_ or (None if (Path(model_dir).expanduser() / COMBINATION_FILE).exists() else model.stats)
    encoder = _encoder(model, tokenizer, max_length)
    warn_stats_length(stats, encoder.max_length, COMBINATION_FILE if stats is combination.stats_ else STATS_FILE)
    settings = dict(pad_token_id=tokenizer.pad_token_id, batch_size=batch_size, progress=progress)
    # the texts as training and fit_combination read them: the Python repr of chat messages (str of a list) was
    # scored here, and a pair encoded side by side, not with the prompt both sides keep
    if "response" in frame.columns:
        prompts, responses = response_texts(frame)
    else:  # pairs: _read_scored has checked that the table has one of the two layouts
        pairs = pair_texts(frame)
        prompts = list(pairs["prompt"])
        encoded = encoder.encode_pairs(pairs)
    embedding = None
    if combination.method == "gating":  # the prompt's embedding, as fit_combination reads it
        embedding = predict_sequences(model, encoder.encode([""] * len(frame), [_text(p) for p in prompts]),
                                      capture_pooled=True, **settings)["pooled"]

    # an attribute named like a column of another meaning (an attribute 'normalised' and the combined reward's
    # reward_normalised, 'sd' and reward_sd) gave one column, the later silently replacing the earlier
    owners: dict[str, str] = {}

    def put(columns: dict[str, np.ndarray], column: str, values: np.ndarray, what: str) -> None:
        if column in owners and owners[column] != what:
            raise shared_column_error(model_dir, column, owners[column], what)
        owners[column] = what
        columns[column] = values

    def side(sequences: TokenizedResponses, texts: list[Any], suffix: str) -> tuple[dict[str, np.ndarray],
                                                                                      dict[str, np.ndarray]]:
        predicted = predict_sequences(model, sequences, **settings)
        rewards, variance = predicted["reward"], predicted["variance"]
        columns: dict[str, np.ndarray] = {}
        rows = "pairs" if suffix else "responses"
        side_name = f" ({suffix[1:]})" if suffix else ""
        for j, (name, kind, (low, high)) in enumerate(zip(spec.names, spec.kinds, spec.scales)):
            # a NaN reward (a diverged model) would be written on as a score, and NaN the combined reward with it
            refuse_nan(f"{model_dir}: reward_{name}{suffix}", rewards[:, j], rows)
            put(columns, f"reward_{name}{suffix}", rewards[:, j], f"attribute '{name}''s reward{side_name}")
            if model.uncertainty_head:
                put(columns, f"reward_sd_{name}{suffix}", np.sqrt(variance[:, j]),
                    f"attribute '{name}''s reward_sd{side_name}")
            if kind == SCORE:
                put(columns, f"{name}_predicted{suffix}", predicted_grade(rewards[:, j], low, high),
                    f"attribute '{name}''s predicted grade{side_name}")
        lengths = response_lengths(texts)
        combined = combination.combine(rewards, lengths, embedding)
        refuse_nan(f"{model_dir}: reward{suffix} (the attributes' rewards combined)", combined, rows)
        weights = combination.weights(embedding, len(texts))
        put(columns, f"reward{suffix}", combined, f"the combined reward{side_name}")
        if stats:
            put(columns, f"reward_normalised{suffix}",
                (combined - float(stats["mean"])) / (float(stats["sd"]) or 1.0),
                f"the combined reward normalised{side_name}")
        if combination.method == "gating" and not suffix.endswith("rejected"):
            # gate_, not weight_: accord aggregate's pairs have a weight_<a> (the label's certainty) of each attribute
            for j, name in enumerate(spec.names):
                put(columns, f"gate_{name}", weights[:, j], f"attribute '{name}''s gating weight")
        if model.uncertainty_head:
            combined_sd = np.sqrt((weights**2 * variance).sum(axis=1))
            put(columns, f"reward_sd{suffix}", combined_sd, f"the combined reward_sd{side_name}")
            put(columns, f"conservative_reward{suffix}", combined - k * combined_sd,
                f"the conservative reward{side_name}")
        return columns, predicted

    if "response" in frame.columns:
        encoded_responses = encoder.encode(prompts, responses)
        _warn_cut(encoded_responses.truncated_responses, len(frame), "responses", encoder.max_length)
        columns, _ = side(encoded_responses, responses, "")
        refuse_score_columns(frame, list(columns), _source(data))
        return frame.copy().assign(**columns)
    # as the pairwise score says it (was: not a word): the rewards of a cut response read only its beginning
    _warn_cut(encoded.truncation["truncated_responses"], 2 * len(pairs), "responses of the pairs", encoder.max_length)
    chosen_columns, chosen = side(encoded.chosen, list(pairs["chosen"]), "_chosen")
    rejected_columns, rejected = side(encoded.rejected, list(pairs["rejected"]), "_rejected")
    # with the variances of an uncertainty head, as training and accord evaluate read the log-odds: without them
    # the probabilities came out more confident than the model's own
    logits = pair_attribute_logits(spec, {"chosen": chosen["reward"], "rejected": rejected["reward"],
                                          "var_chosen": chosen["variance"], "var_rejected": rejected["variance"]})
    probabilities: dict[str, np.ndarray] = {}
    for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
        column = f"p_{name}_model" if kind == PROPERTY else f"p_chosen_{name}_model"
        # no overflow warning for large negative logits
        put(probabilities, column, expit(logits[:, j]), f"attribute '{name}''s probability")
    # the combined reward's, by the same rule: with an uncertainty head its variance (reward_sd^2) pulls the
    # probability towards 1/2, as a single-reward model's p_chosen_model does (was: the plain difference)
    put(probabilities, "p_chosen_model", expit(combined_pair_logit(chosen_columns, rejected_columns)),
        "the combined reward's P(chosen better)")
    refuse_score_columns(frame, [*chosen_columns, *rejected_columns, *probabilities], _source(data))
    return frame.copy().assign(**chosen_columns, **rejected_columns, **probabilities)


def combined_pair_logit(chosen: Mapping[str, Any], rejected: Mapping[str, Any]) -> np.ndarray:
    """Log-odds that the chosen side's combined reward beats the rejected side's, from the columns
    :func:`score_attributes` writes: :func:`accord.reward.losses.pairwise_logit` of ``reward_chosen`` and
    ``reward_rejected``, with the variances ``reward_sd_<side>^2`` where the model has an uncertainty head. The
    combined reward ``sum_k w_k r_k`` of independent ``r_k ~ N(mu_k, var_k)`` is ``N(sum_k w_k mu_k, sum_k w_k^2
    var_k)`` (its ``reward_sd``), so the single-reward rule applies to it unchanged."""
    sd_c, sd_r = chosen.get("reward_sd_chosen"), rejected.get("reward_sd_rejected")
    d = pairwise_logit(torch.tensor(np.array(chosen["reward_chosen"], dtype=np.float64)),
                       torch.tensor(np.array(rejected["reward_rejected"], dtype=np.float64)),
                       None if sd_c is None else torch.tensor(np.array(sd_c, dtype=np.float64) ** 2),
                       None if sd_r is None else torch.tensor(np.array(sd_r, dtype=np.float64) ** 2))
    return d.double().numpy()


def score_columns(spec: AttributeSpec, pairs: bool, uncertainty: bool, normalised: bool, gating: bool) -> list[str]:
    """The columns :func:`score_attributes` writes, in its order: per side (``_chosen``, ``_rejected`` for pairs)
    every attribute's ``reward_<a>`` (``reward_sd_<a>``, ``<a>_predicted``), the combined ``reward`` (its
    ``reward_normalised`` with statistics, the gating ``gate_<a>``, ``reward_sd`` and ``conservative_reward``), then
    for pairs each attribute's probability and ``p_chosen_model``."""
    return [column for column, _, _ in score_column_owners(spec, pairs, uncertainty, normalised, gating)]


def score_column_owners(spec: AttributeSpec, pairs: bool, uncertainty: bool, normalised: bool,
                        gating: bool) -> list[tuple[str, str, str | None]]:
    """:func:`score_columns` as ``(column, what it holds, the attribute it is of or None)``, what it holds in the
    words of :func:`score_attributes`'s error of a column two values would share."""
    owners: list[tuple[str, str, str | None]] = []
    for suffix in ("_chosen", "_rejected") if pairs else ("",):
        side = f" ({suffix[1:]})" if suffix else ""
        for name, kind in zip(spec.names, spec.kinds):
            owners.append((f"reward_{name}{suffix}", f"attribute '{name}''s reward{side}", name))
            if uncertainty:
                owners.append((f"reward_sd_{name}{suffix}", f"attribute '{name}''s reward_sd{side}", name))
            if kind == SCORE:
                owners.append((f"{name}_predicted{suffix}", f"attribute '{name}''s predicted grade{side}", name))
        owners.append((f"reward{suffix}", f"the combined reward{side}", None))
        if normalised:
            owners.append((f"reward_normalised{suffix}", f"the combined reward normalised{side}", None))
        if gating and not suffix.endswith("rejected"):
            owners += [(f"gate_{name}", f"attribute '{name}''s gating weight", name) for name in spec.names]
        if uncertainty:
            owners += [(f"reward_sd{suffix}", f"the combined reward_sd{side}", None),
                       (f"conservative_reward{suffix}", f"the conservative reward{side}", None)]
    if pairs:
        owners += [(f"p_{name}_model", f"attribute '{name}''s probability", name) if kind == PROPERTY else
                   (f"p_chosen_{name}_model", f"attribute '{name}''s probability", name)
                   for name, kind in zip(spec.names, spec.kinds)]
        owners.append(("p_chosen_model", "the combined reward's P(chosen better)", None))
    return owners


def shared_score_column(spec: AttributeSpec, uncertainty: bool, layouts: Sequence[bool] = (False, True),
                        normalised: bool = True, gating: bool = True) -> tuple[str, str, str, list[str]] | None:
    """The first column :func:`score_attributes` would write two values to, for an attribute named like another
    score column (``normalised``: ``reward_normalised``; ``sd`` with an uncertainty head: ``reward_sd``), as
    ``(column, what, other what, the attributes of the two)``; None when every column is one value's. By default on
    responses and on pairs (a model scores both), with statistics and a gating combination (``accord combine`` may
    fit one later)."""
    for pairs in layouts:
        seen: dict[str, tuple[str, str | None]] = {}
        for column, what, attribute in score_column_owners(spec, pairs, uncertainty, normalised, gating):
            if column in seen and seen[column][0] != what:
                first, first_attribute = seen[column]
                return column, first, what, list(dict.fromkeys(a for a in (first_attribute, attribute) if a))
            seen.setdefault(column, (what, attribute))
    return None


def shared_column_error(model_dir: str | Path, column: str, first: str, second: str) -> AccordError:
    """The error of :func:`score_attributes` for a column two of its values would share."""
    return AccordError(f"{model_dir}: {first} and {second} both give the column '{column}' of the scores; rename "
                       "the attribute in the training data and train again")


def refuse_shared_score_column(spec: AttributeSpec, uncertainty: bool, source: str | None) -> None:
    """One error naming the attribute, its column in the training data and the score column it would share with
    another value (:func:`shared_score_column`), before a step is trained."""
    shared = shared_score_column(spec, uncertainty)
    if shared is None:
        return
    column, first, second, attributes = shared
    last = attributes[-1]
    label = f"p_chosen_{last}" if spec.kinds[spec.names.index(last)] == PREFERENCE else f"{last}_mean"
    raise ValidationError(f"{first} and {second} would both give the column '{column}' of accord score's scores, so "
                          "the model could not be scored: rename the attribute "
                          + " or ".join(f"'{a}'" for a in attributes), source=source, column=label)


def pairs_view(spec: AttributeSpec) -> AttributeSpec:
    """A model trained on graded responses, read on pairs: every attribute a preference whose log-odds is the
    difference of the two sides' rewards."""
    k = len(spec.names)
    return AttributeSpec("pairs", list(spec.names), [PREFERENCE] * k, [(0.0, 1.0)] * k, [0.0] * k, spec.chosen_by)


def evaluation_spec(spec: AttributeSpec, frame: pd.DataFrame, model_dir: str | Path) -> AttributeSpec:
    """The model's attributes as ``frame``'s layout scores them. Pairs (``chosen``, ``rejected``) score a model trained
    on graded responses too, as ``accord score`` and ``accord combine`` read them: each attribute's reward difference
    orders the pair against its ``p_chosen_<a>`` (what ``accord aggregate --pairs-output`` writes beside the scores).
    A model trained on pairs has rewards on no scale, so graded responses cannot score it: one error naming the
    file."""
    source = frame.attrs.get("source") or "the data"
    is_pairs = {"chosen", "rejected"} <= set(frame.columns)
    if is_pairs == (spec.layout == "pairs") and (is_pairs or "response" in frame.columns):
        return spec
    if spec.layout == "pairs":
        raise ValidationError(f"{model_dir} was trained on pairs of responses, whose rewards have no scale to compare "
                              "with ratings: evaluate it on pairs ('chosen', 'rejected', 'p_chosen_<a>'), e.g. the "
                              "--pairs-output of accord aggregate", source=source, column="chosen")
    if not is_pairs:
        raise ValidationError("neither graded responses (a 'response' column) nor pairs ('chosen' and 'rejected' "
                              "columns)", source=source, column="response")
    return pairs_view(spec)


def refuse_unlabelled(spec: AttributeSpec, frame: pd.DataFrame) -> None:
    """One error naming the file when ``frame`` has none of the labels an evaluation of ``spec`` reads (each
    attribute's ``p_chosen_<a>`` or ``<a>_mean``, and for pairs the overall ``p_chosen``): its metrics would be
    none, printed as if the model had been evaluated."""
    wanted = [f"p_chosen_{name}" if kind == PREFERENCE else f"{name}_mean"
              for name, kind in zip(spec.names, spec.kinds)]
    wanted += ["p_chosen"] if spec.layout == "pairs" else []
    if not set(wanted) & set(frame.columns):
        raise ValidationError(f"no label to evaluate the model against: none of the columns {', '.join(wanted)}",
                              source=frame.attrs.get("source") or "the data")
    warn_unlabelled(spec, frame)


def warn_unlabelled(spec: AttributeSpec, frame: pd.DataFrame) -> None:
    """A warning naming the attributes of ``spec`` that evaluation data ``frame`` has no label column of: their
    metrics were left out of the result, and of the mean accuracy, without a word."""
    missing = [(name, f"p_chosen_{name}" if kind == PREFERENCE else f"{name}_mean")
               for name, kind in zip(spec.names, spec.kinds)]
    missing = [(name, column) for name, column in missing if column not in frame.columns]
    if not missing:
        return
    names = ", ".join(f"'{name}'" for name, _ in missing)
    columns = ", ".join(column for _, column in missing)
    what, they = ("attributes", "they are") if len(missing) > 1 else ("attribute", "it is")
    warnings.warn(f"{frame.attrs.get('source') or 'the data'}: no label of the model's {what} {names} (no column "
                  f"{columns}): {they} left out of the metrics, and the mean accuracy is the others'", UserWarning,
                  stacklevel=4)


def overall_labels(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The overall soft label of the pairs of ``frame`` (``p_chosen``, NaN where a pair has none, and ``p_tie``, 0
    where missing), checked as :func:`accord.reward.data.load_pairs` checks a label: a text or a value off [0, 1]
    was a bare ValueError of numpy or of the ECE, naming no file, column or row."""
    source = frame.attrs.get("source")
    p_chosen = _numeric(frame, "p_chosen", source)
    p_tie = np.nan_to_num(_numeric(frame, "p_tie", source)) if "p_tie" in frame.columns else np.zeros(len(frame))
    for column, values in (("p_chosen", p_chosen), ("p_tie", p_tie)):
        bad = (values < 0) | (values > 1)  # NaN: no overall label
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("must be a probability in [0, 1]", source=source, column=column, row=row,
                                  value=frame[column].iloc[row])
    over = p_chosen + p_tie > 1 + LABEL_SUM_TOLERANCE
    if over.any():
        raise ValidationError("p_chosen + p_tie exceeds 1", source=source, column="p_tie",
                              row=int(np.flatnonzero(over)[0]))
    return p_chosen, p_tie


def evaluate_attributes(model_dir: str | Path, data: Any, *, batch_size: int = 32, max_length: int | None = None,
                        device: str | torch.device | None = None, progress: bool = False) -> dict[str, float]:
    """``accord evaluate`` of a multi-attribute model: the per-attribute metrics of :func:`attribute_metrics` on the
    attributes ``data`` has, and, when it has an overall label (``p_chosen``) with pairs, the metrics of the
    combined reward against it (``combined_accuracy``, ``combined_nll``, ...)."""
    from accord.reward.evaluate import _encoder, _warn_cut, load_model, pairwise_metrics
    from accord.reward.model import RewardModel

    # the data, and whether its layout can score the model, before the model loads, as score does
    with reading_for("held_out"):  # a saved DatasetDict's held-out split, as the pairwise evaluate reads it
        frame, _ = read_attribute_table(data)
    spec = evaluation_spec(AttributeSpec.from_dict(RewardModel.read_meta(model_dir)["attributes"]), frame, model_dir)
    refuse_unlabelled(spec, frame)
    overall = overall_labels(frame) if "p_chosen" in frame.columns and spec.layout == "pairs" else None
    model, tokenizer = load_model(model_dir, device, progress)
    encoder = _encoder(model, tokenizer, max_length)
    encoded = encode_attribute_table(encoder, spec, frame)
    rewards = predict_attributes(model, encoded, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                                 progress=progress)
    refuse_nan_rewards(model_dir, spec, rewards)  # as score_attributes refuses a NaN attribute reward
    truncation = encoded.truncation  # said once, as the pairwise evaluate says it (was: in the metrics alone)
    _warn_cut(truncation["truncated_responses"], truncation["sequences"],
              "responses of the pairs" if encoded.pairs is not None else "responses", encoder.max_length, "evaluate")
    result = attribute_metrics(spec, rewards, encoded.labels)
    if overall is not None:
        with warnings.catch_warnings():  # the pairs were encoded above, and what their cut warns of was said there
            warnings.simplefilter("ignore", SettingWarning)
            scored = score_attributes(model_dir, frame[["prompt", "chosen", "rejected"]] if "prompt" in frame.columns
                                      else frame[["chosen", "rejected"]], batch_size=batch_size,
                                      max_length=max_length, device=device)
        # the log-odds score's p_chosen_model reads (the variances of an uncertainty head included): the combined
        # NLL and ECE were of the plain difference, more confident than the probabilities accord score writes
        d = combined_pair_logit(scored, scored)
        p_chosen, p_tie = overall
        # the overall label is, like every attribute's, given for some pairs only: the others are not scored (a NaN
        # label compared as "rejected is better")
        labelled = ~np.isnan(p_chosen)
        if labelled.any():
            overall = pairwise_metrics(d[labelled], p_chosen[labelled], p_tie[labelled])
            result.update({f"combined_{name}": value for name, value in overall.items()})
    result.update({k: int(v) for k, v in encoded.truncation.items()})
    return result
