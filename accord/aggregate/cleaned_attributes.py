"""From per-attribute scores to the cleaned multi-attribute dataset (see :mod:`accord.datasets.cleaned_attributes`).

:func:`clean_attributes` is the whole stage in one call: validate a multi-attribute judgments table, fit a method
(the :class:`~accord.models.MultiAttributeOrdinal` rater model, or per-attribute averaging), build the per-response
and per-pair frames and write them atomically. :func:`build_attribute_responses` and :func:`build_attribute_pairs`
build the frames from any :class:`~accord.datasets.attribute_scores.AttributeScores`.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accord.aggregate.attribute_mean import AttributeMean
from accord.aggregate.cleaned import PAIR_TEXT_COLUMNS
from accord.datasets import AccordError, AttributeScores, ValidationError, validate_attributes
from accord.datasets.attributes import (ATTRIBUTE_COLUMN, ATTRIBUTE_FORM, is_preference_scale,
                                        refuse_shared_columns)
from accord.datasets.cleaned import as_text, item_texts
from accord.datasets.cleaned_attributes import check_attribute_cleaned, write_attribute_cleaned
from accord.datasets.io import check_output_path, written_together
from accord.datasets.schema import checked_info, input_row

#: The texts (and ids) of a rated item that every rating of it must show alike.
RESPONSE_TEXT_COLUMNS: tuple[str, ...] = ("prompt_id", "prompt", "response")
#: Methods :func:`clean_attributes` can fit, by name.
ATTRIBUTE_METHODS: tuple[str, ...] = ("multi-attribute-ordinal", "attribute-mean")
NO_PAIRS = "pairs_path: there are no pairs to write (no two responses share a prompt; pass pairs=)"


@dataclass(frozen=True)
class CleanedAttributes:
    """What :func:`clean_attributes` returns: the fitted method, its scores and the two frames (``pairs`` is
    None when the data have no pairs to compare)."""

    model: Any
    scores: AttributeScores
    responses: pd.DataFrame | None
    pairs: pd.DataFrame | None
    #: seconds the fit took: the model's import, the checks and the writing left out (``accord aggregate``'s
    #: "fit: X s" said their sum)
    fit_seconds: float = float("nan")


def build_attribute_responses(scores: AttributeScores, judgments: pd.DataFrame) -> pd.DataFrame:
    """One row per response: ``response_id``, ``prompt``, ``response``, ``<a>_mean``/``_sd``/``_lower``/``_upper``/
    ``_n`` per attribute and ``n`` (see :mod:`accord.datasets.cleaned_attributes`)."""
    if scores.item_kind != "response":
        raise AccordError("per-response scores need ratings of responses (items in response_id)")
    if "response" not in judgments.columns:
        raise AccordError("column 'response': the cleaned dataset needs the response texts")
    texts = item_texts(judgments, "response_id", RESPONSE_TEXT_COLUMNS, "response").reindex(scores.item_ids)
    out = pd.DataFrame({
        "response_id": scores.item_ids.to_numpy(),
        "prompt": as_text(texts["prompt"], missing="") if "prompt" in texts else "",
        "response": as_text(texts["response"]),
    })
    if "prompt_id" in texts:
        out["prompt_id"] = texts["prompt_id"].to_numpy()
    scored = scores.to_frame().reset_index(drop=True)
    out = pd.concat([out, scored], axis=1)
    out["n"] = scores.n.sum(axis=1).to_numpy()
    out.attrs["accord"] = _meta(scores, "attribute-responses")
    return out


def build_attribute_pairs(
    scores: AttributeScores,
    judgments: pd.DataFrame,
    *,
    pairs: pd.DataFrame | None = None,
    chosen_by: str | None = None,
) -> pd.DataFrame:
    """One row per pair with ``p_chosen_<a>``, ``weight_<a>`` and ``n_<a>`` per attribute, ``chosen``/``rejected``
    oriented by the ``chosen_by`` attribute (see :mod:`accord.datasets.cleaned_attributes`).

    Parameters
    ----------
    scores
        Per-item scores (responses, or pairs).
    judgments
        The multi-attribute table the scores come from (for the texts).
    pairs
        For response items: the pairs to compare, with ``response_a_id`` and ``response_b_id`` (and optionally
        ``pair_id``). Default: every pair of responses to the same prompt (``prompt_id``, else ``prompt``).
        Ignored for pair items (the items are the pairs).
    chosen_by
        The attribute that decides which side is ``chosen``; default ``"overall"`` when there is one, else the
        first preference attribute (pair items) or the first attribute (responses).
    """
    refuse_shared_columns(_pair_columns(scores.item_kind, scores.scales), "the pairs")
    if scores.item_kind == "response":
        return _response_pairs(scores, judgments, pairs, chosen_by)
    return _pair_items(scores, judgments, chosen_by)


def clean_attributes(
    judgments: pd.DataFrame,
    *,
    method: str = "multi-attribute-ordinal",
    responses_path: str | os.PathLike | None = None,
    pairs_path: str | os.PathLike | None = None,
    pairs: pd.DataFrame | None = None,
    chosen_by: str | None = None,
    provenance: dict[str, Any] | None = None,
    **settings: Any,
) -> CleanedAttributes:
    """Validate, fit ``method``, build the cleaned frames and write those given a path (atomically).

    Bad input (a missing attribute, a rating off its declared scale, two scales in one attribute, ...) raises one
    :class:`~accord.datasets.errors.ValidationError` before anything is fitted or written.
    """
    if method not in ATTRIBUTE_METHODS:
        raise AccordError(f"unknown method {method!r}: use one of {ATTRIBUTE_METHODS}")
    # a path that cannot be written is refused before the fit: a pairs path under a file failed after the responses
    # were written
    for path in (responses_path, pairs_path):
        if path is not None:
            check_output_path(path)
    info = checked_info(judgments)
    table = judgments if info and info.get("form") == ATTRIBUTE_FORM else validate_attributes(judgments)
    if responses_path is not None and table.attrs["accord"]["item"] != "response":
        raise AccordError("responses_path: per-response scores need ratings of responses, the table rates pairs")
    meta = table.attrs["accord"]
    if meta["item"] == "pair" or pairs is not None or _has_prompts(table):
        # before the fit: an attribute 'judgments' gave n_judgments, replaced by the chosen_by attribute's at the end
        # (the attributes the table still rates, as the fit encodes them)
        rated = set(pd.unique(table[ATTRIBUTE_COLUMN]))
        refuse_shared_columns(_pair_columns(meta["item"], {a: s for a, s in meta["scales"].items() if a in rated}),
                              "the pairs")
    _require_item_texts(table)  # before the fit: a response without its text was written as a missing one
    if pairs_path is not None and meta["item"] == "response" and pairs is None and not responses_share_a_prompt(table):
        raise AccordError(NO_PAIRS)  # before the fit, which was minutes on a large table
    if method == "attribute-mean":
        model = AttributeMean(**settings)
    else:
        from accord.models.multi_attribute import MultiAttributeOrdinal  # deferred: torch is heavy

        model = MultiAttributeOrdinal(**settings)
    started = time.perf_counter()  # the model is imported and made before the clock
    model.fit(table)
    fit_seconds = time.perf_counter() - started
    scores = model.scores_
    responses = build_attribute_responses(scores, table) if scores.item_kind == "response" else None
    pair_frame = None
    if scores.item_kind == "pair" or pairs is not None or _has_prompts(table):
        pair_frame = build_attribute_pairs(scores, table, pairs=pairs, chosen_by=chosen_by)
        if len(pair_frame) == 0:
            pair_frame = None
    if pairs_path is not None and pair_frame is None:
        raise AccordError(NO_PAIRS)
    if pair_frame is not None:
        _warn_one_level(table, scores)
    extra = {"method": model.method, "settings": settings, **(provenance or {})}
    # both frames are checked before either is written (pairs which fail their check, a response without its
    # text, leave no responses file behind), and the two files land together or not at all
    for frame, path in ((responses, responses_path), (pair_frame, pairs_path)):
        if path is not None and frame is not None:
            check_attribute_cleaned(frame, dict(frame.attrs.get("accord") or {}))
    with written_together():
        if responses_path is not None and responses is not None:
            write_attribute_cleaned(responses, Path(responses_path), provenance=extra)
        if pairs_path is not None and pair_frame is not None:
            write_attribute_cleaned(pair_frame, Path(pairs_path), provenance=extra)
    return CleanedAttributes(model=model, scores=scores, responses=responses, pairs=pair_frame,
                             fit_seconds=fit_seconds)


# -- helpers ------------------------------------------------------------------------------------------------


def _require_item_texts(table: pd.DataFrame) -> None:
    """Every rated item's texts (the response; a pair's two responses), taken as :func:`item_texts` takes them from
    whichever of its ratings hold them: an item none of whose ratings holds one is refused, naming the column and
    its first rating's row of the input. The responses file was written with the text missing (read back by
    ``accord train`` as an empty response), and the pairs failed after the fit naming their own 'chosen' column."""
    kind = table.attrs["accord"]["item"]
    key, texts = ("response_id", ("response",)) if kind == "response" else ("pair_id", ("response_a", "response_b"))
    present = [c for c in texts if c in table.columns]  # a missing column is the builders' error, as it was
    if not present:
        return
    held = item_texts(table, key, present, kind)
    for column in present:
        missing = held.index[held[column].isna().to_numpy()]
        if len(missing):
            row = input_row(table, int(np.flatnonzero((table[key] == missing[0]).to_numpy())[0]))
            raise ValidationError(f"missing response text (a cleaned multi-attribute dataset needs the texts, and no "
                                  f"rating of {kind} {missing[0]!r} holds this one)", column=column, row=row)


def _warn_one_level(table: pd.DataFrame, scores: AttributeScores) -> None:
    """A warning naming each attribute the pairs compare (every attribute of responses, the preferences of pairs)
    whose ratings are all one level: they tell no item from another, so every pair is a tie on it (p_chosen 1/2,
    weight about 0). Without it accord train refused the attribute-mean dataset ("every training pair rated on 'a'
    has weight 0 ... give it weights > 0"), and trained a head on ties from the rater model's."""
    compared = [a for a in scores.attributes
                if scores.item_kind == "response" or is_preference_scale(scores.scales[a])]
    levels = table.groupby(ATTRIBUTE_COLUMN, sort=False)["label"].agg(["min", "max"]).reindex(compared)
    flat = levels[levels["min"] == levels["max"]]
    if len(flat):
        said = "; ".join(f"'{a}': every rating is {int(row['min'])} (one level of its scale {scores.scales[a][0]}.."
                         f"{scores.scales[a][1]})" for a, row in flat.iterrows())
        them = "it" if len(flat) == 1 else "them"
        warnings.warn(f"{'attribute' if len(flat) == 1 else 'attributes'} rated on one level only ({said}): the "
                      f"ratings tell no item from another, so every pair is a tie on {them} (p_chosen_<a> 1/2, "
                      f"weight_<a> about 0), from which a reward model learns nothing: leave {them} out of the ratings",
                      UserWarning, stacklevel=3)


def responses_share_a_prompt(table: pd.DataFrame) -> bool:
    """Whether two rated responses of ``table`` share a prompt (``prompt_id``, else ``prompt``; each response's
    first one given), so that the pairs within prompts (:func:`_pairs_within_prompts`) are not none."""
    key = "prompt_id" if "prompt_id" in table.columns else "prompt"
    if key not in table.columns:
        return False
    prompts = table[["response_id", key]].dropna().drop_duplicates("response_id")[key]
    return bool(prompts.duplicated().any())


def _meta(scores: AttributeScores, layout: str, **extra: Any) -> dict[str, Any]:
    return {"layout": layout, "attributes": scores.attributes,
            "scales": {a: list(s) for a, s in scores.scales.items()}, "interval": scores.interval,
            "method": scores.method, **extra}


def _pair_columns(item_kind: str, scales: dict[str, Any]) -> list[tuple[str, str]]:
    """The columns of the pairs frame (:func:`_response_pairs`, :func:`_pair_items`), each with what it holds."""
    fixed = ["pair_id", "prompt", "chosen", "rejected", "chosen_id", "rejected_id", "chosen_side"]
    columns = [(c, f"the pair's {c}") for c in fixed]
    for attribute, scale in scales.items():
        if item_kind == "response" or is_preference_scale(scale):
            kinds = [f"p_chosen_{attribute}", f"weight_{attribute}", f"n_{attribute}"]
        else:
            kinds = [f"{attribute}_mean", f"{attribute}_sd", f"{attribute}_n"]
        columns += [(c, f"attribute '{attribute}'") for c in kinds]
    standard = ("p_chosen", "p_tie", "uncertainty", "weight", "n_judgments")
    return columns + [(c, f"the chosen_by attribute's {c} (a cleaned preference dataset's column)") for c in standard]


def _has_prompts(table: pd.DataFrame) -> bool:
    return "prompt_id" in table.columns or "prompt" in table.columns


def _default_chosen_by(scores: AttributeScores, candidates: list[str], chosen_by: str | None) -> str:
    if chosen_by is not None:
        if chosen_by not in candidates:
            raise AccordError(f"chosen_by must be one of the comparable attributes {candidates}, got {chosen_by!r}")
        return chosen_by
    if not candidates:
        raise AccordError("no attribute compares the two sides of a pair (none is on a -S..S preference scale)")
    return "overall" if "overall" in candidates else candidates[0]


def _response_pairs(scores: AttributeScores, judgments: pd.DataFrame, pairs: pd.DataFrame | None,
                    chosen_by: str | None) -> pd.DataFrame:
    if "response" not in judgments.columns:
        raise AccordError("column 'response': the cleaned dataset needs the response texts")
    responses = item_texts(judgments, "response_id", RESPONSE_TEXT_COLUMNS, "response")
    if pairs is None:
        pairs = _pairs_within_prompts(responses)
    for column in ("response_a_id", "response_b_id"):
        if column not in pairs.columns:
            raise AccordError(f"column '{column}': pairs need the ids of both responses")
    pairs = pairs.reset_index(drop=True)
    a_ids, b_ids = pairs["response_a_id"].to_numpy(), pairs["response_b_id"].to_numpy()
    _check_pairs(scores, pairs)
    attributes = scores.attributes
    chosen_by = _default_chosen_by(scores, attributes, chosen_by)
    p_a = scores.compare(a_ids, b_ids)
    weight = scores.reliability(a_ids, b_ids)
    counts = scores.n.reindex(a_ids).to_numpy() + scores.n.reindex(b_ids).to_numpy()
    a_chosen = p_a[chosen_by].to_numpy() >= 0.5
    text = pd.Series(as_text(responses["response"]), index=responses.index)
    pair_id = (pairs["pair_id"] if "pair_id" in pairs.columns
               else pd.Series(a_ids).astype(str) + "~" + pd.Series(b_ids).astype(str))
    prompt = as_text(responses["prompt"].reindex(a_ids), missing="") if "prompt" in responses else ""
    out = pd.DataFrame({
        "pair_id": np.asarray(pair_id),
        "prompt": prompt,
        "chosen": np.where(a_chosen, text.reindex(a_ids).to_numpy(), text.reindex(b_ids).to_numpy()),
        "rejected": np.where(a_chosen, text.reindex(b_ids).to_numpy(), text.reindex(a_ids).to_numpy()),
        "chosen_id": np.where(a_chosen, a_ids, b_ids),
        "rejected_id": np.where(a_chosen, b_ids, a_ids),
        "chosen_side": np.where(a_chosen, "A", "B"),
    })
    for k, attribute in enumerate(attributes):
        p = p_a[attribute].to_numpy()
        out[f"p_chosen_{attribute}"] = np.where(a_chosen, p, 1.0 - p)
        out[f"weight_{attribute}"] = weight[attribute].to_numpy()
        out[f"n_{attribute}"] = counts[:, k]
    _standard_columns(out, chosen_by)
    out.attrs["accord"] = _meta(scores, "attribute-pairs", chosen_by=chosen_by, preference_attributes=attributes,
                                property_attributes=[])
    return out


def _check_pairs(scores: AttributeScores, pairs: pd.DataFrame) -> None:
    """One error naming the row of ``pairs`` for a side that is no scored response (it was "no scores for item
    'x'", no row or column), a response compared with itself (it became a pair whose chosen and rejected are one
    text, at P = 0.5: a label of nothing, which the judgments table refuses) and a pair or pair_id given twice."""
    for column in ("response_a_id", "response_b_id"):
        unknown = scores.item_ids.get_indexer(pd.Index(pairs[column])) < 0
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ValidationError("pairs: no response of the judgments has this id (none was rated)", column=column,
                                  row=row, value=pairs[column].iloc[row])
    same = (pairs["response_a_id"] == pairs["response_b_id"]).to_numpy()
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise ValidationError("pairs: the pair compares a response with itself", column="response_b_id", row=row,
                              value=pairs["response_b_id"].iloc[row])
    # a pair given twice was written twice (its labels counted twice in training), and a pair_id of two pairs named
    # both in the cleaned dataset
    a = scores.item_ids.get_indexer(pd.Index(pairs["response_a_id"]))
    b = scores.item_ids.get_indexer(pd.Index(pairs["response_b_id"]))
    repeated = pd.Series(np.minimum(a, b).astype(np.int64) * len(scores) + np.maximum(a, b)).duplicated().to_numpy()
    for column, twice, why in (("response_b_id", repeated, "the pair repeats an earlier one (in either order)"),
                               ("pair_id", pairs["pair_id"].duplicated().to_numpy() if "pair_id" in pairs.columns
                                else np.zeros(len(pairs), dtype=bool), "the pair_id is an earlier pair's too")):
        if twice.any():
            row = int(np.flatnonzero(twice)[0])
            raise ValidationError(f"pairs: {why}", column=column, row=row, value=pairs[column].iloc[row])


def _pairs_within_prompts(responses: pd.DataFrame) -> pd.DataFrame:
    """Every pair of responses to one prompt, in the order the responses first appear (a response without a prompt
    is paired with none). Side A is the response whose id comes first as text: it was the one whose rating came first
    in the table, so the same judgments in another row order gave a pair another pair_id ('b~a' for 'a~b') and, at
    P = 1/2, another chosen side."""
    key = "prompt_id" if "prompt_id" in responses.columns else "prompt"
    if key not in responses.columns:
        raise AccordError("pairs=: the responses have no prompt to group them by; pass the pairs to compare")
    frame = pd.DataFrame({"key": responses[key].to_numpy(), "id": responses.index.to_numpy(),
                          "order": np.arange(len(responses))})
    frame = frame[frame["key"].notna()]  # pandas' merge matches missing keys with each other: not one prompt
    joined = frame.merge(frame, on="key", suffixes=("_a", "_b"))
    joined = joined[joined["order_a"] < joined["order_b"]].sort_values(["order_a", "order_b"])
    first, second = joined["id_a"].to_numpy(), joined["id_b"].to_numpy()
    swap = joined["id_a"].astype(str).to_numpy() > joined["id_b"].astype(str).to_numpy()
    return pd.DataFrame({"response_a_id": np.where(swap, second, first), "response_b_id": np.where(swap, first, second)})


def _pair_items(scores: AttributeScores, judgments: pd.DataFrame, chosen_by: str | None) -> pd.DataFrame:
    for column in ("response_a", "response_b"):
        if column not in judgments.columns:
            raise AccordError(f"column '{column}': the cleaned dataset needs the response texts")
    preference = [a for a in scores.attributes if is_preference_scale(scores.scales[a])]
    properties = [a for a in scores.attributes if a not in preference]
    chosen_by = _default_chosen_by(scores, preference, chosen_by)
    texts = item_texts(judgments, "pair_id", PAIR_TEXT_COLUMNS, "pair").reindex(scores.item_ids)
    p_a = scores.p_a_better()
    weight = scores.reliability()
    a_chosen = p_a[chosen_by].to_numpy() >= 0.5
    text_a, text_b = as_text(texts["response_a"]), as_text(texts["response_b"])
    out = pd.DataFrame({
        "pair_id": scores.item_ids.to_numpy(),
        "prompt": as_text(texts["prompt"], missing="") if "prompt" in texts else "",
        "chosen": np.where(a_chosen, text_a, text_b),
        "rejected": np.where(a_chosen, text_b, text_a),
        "chosen_side": np.where(a_chosen, "A", "B"),
    })
    if "response_a_id" in texts and "response_b_id" in texts:
        out["chosen_id"] = np.where(a_chosen, texts["response_a_id"], texts["response_b_id"])
        out["rejected_id"] = np.where(a_chosen, texts["response_b_id"], texts["response_a_id"])
    for attribute in preference:
        p = p_a[attribute].to_numpy()
        out[f"p_chosen_{attribute}"] = np.where(a_chosen, p, 1.0 - p)
        out[f"weight_{attribute}"] = weight[attribute].to_numpy()
        out[f"n_{attribute}"] = scores.n[attribute].to_numpy()
    for attribute in properties:
        out[f"{attribute}_mean"] = scores.mean[attribute].to_numpy()
        out[f"{attribute}_sd"] = scores.sd[attribute].to_numpy()
        out[f"{attribute}_n"] = scores.n[attribute].to_numpy()
    _standard_columns(out, chosen_by)
    out.attrs["accord"] = _meta(scores, "attribute-pairs", chosen_by=chosen_by, preference_attributes=preference,
                                property_attributes=properties)
    return out


def _standard_columns(out: pd.DataFrame, chosen_by: str) -> None:
    """The columns of a cleaned preference dataset, describing the ``chosen_by`` attribute."""
    out["p_chosen"] = out[f"p_chosen_{chosen_by}"]
    out["p_tie"] = 0.0
    out["uncertainty"] = np.nan
    out["weight"] = out[f"weight_{chosen_by}"]
    out["n_judgments"] = out[f"n_{chosen_by}"]
