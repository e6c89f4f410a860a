"""Loaders for public per-aspect rating sets, as multi-attribute tables (:mod:`accord.datasets.attributes`).

As with :mod:`accord.datasets.loaders.hub`, accord never downloads these: pass a local file (JSON Lines, JSON or
Parquet; ``.gz`` is fine) or the table as a DataFrame. Nested fields may be Python lists or dicts, numpy arrays
(Parquet) or JSON text.

======================================  ===================================================================
loader                                  source schema (one row = ...)
======================================  ===================================================================
:func:`load_helpsteer2_ratings`         ``nvidia/HelpSteer2``: one response, with ``prompt``, ``response`` and
                                        ``helpfulness``, ``correctness``, ``coherence``, ``complexity``,
                                        ``verbosity``: one integer 0..4 each (the released scores,
                                        ``train.jsonl.gz`` / ``validation.jsonl.gz``) or a list of integers,
                                        one per annotator (``disagreements/disagreements.jsonl.gz``).
:func:`load_multipref_aspects`          ``allenai/multipref``: one comparison, with lists
                                        ``normal_worker_annotations`` / ``expert_worker_annotations`` of dicts
                                        holding ``overall_pref``, ``helpful_pref``, ``truthful_pref``,
                                        ``harmless_pref`` (5 options, ``A-is-clearly-better`` ...
                                        ``B-is-clearly-better``) and a ``<aspect>_confidence`` for each.
:func:`load_summarize_axis`             ``openai/summarize_from_feedback`` ``axis``: one worker's ratings of one
                                        summary, with ``info`` (``id``, ``post``/``article``, ...), ``summary``
                                        (``text``, ``policy``, ``axes``: ``overall``, ``accuracy``,
                                        ``coverage``, ``coherence`` on a 1..7 Likert scale, ``compatible``),
                                        ``worker``.
======================================  ===================================================================

HelpSteer2 publishes no annotator ids: the k-th entry of each attribute's list is taken to be the k-th annotator of
that response (pseudo-annotator ``"<response_id>/<k>"``), which states honestly that raters cannot be linked
across responses. The released scores are loaded as one rating per response and attribute by the pseudo-annotator
``"published"``; ``published=`` joins them onto the individual ratings as ``item_published`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from accord.datasets.attributes import validate_attributes, warn_unrated
from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.ids import content_ids
from accord.datasets.loaders.generic import frame_or_file, require_columns
from accord.datasets.loaders.hub import (
    MULTIPREF_GROUPS,
    MULTIPREF_PREFERENCES,
    MULTIPREF_SCALE,
    MULTIPREF_TEXTS,
    SUMMARIZE_TEXTS,
    _as_list,
    _drop_identical_sides,
    _map_strings,
    _normalize_dicts,
    multipref_records,
    validate_naming_source_rows,
)

Source = pd.DataFrame | str | os.PathLike

HELPSTEER2_ATTRIBUTES: tuple[str, ...] = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER2_SCALE: tuple[int, int] = (0, 4)
MULTIPREF_ASPECTS: tuple[str, ...] = ("overall", "helpful", "truthful", "harmless")
SUMMARIZE_AXES: tuple[str, ...] = ("overall", "accuracy", "coverage", "coherence")
SUMMARIZE_SCALE: tuple[int, int] = (1, 7)


# -- HelpSteer2 ---------------------------------------------------------------------------------------------


def load_helpsteer2_ratings(
    source: Source,
    *,
    attributes: Sequence[str] = HELPSTEER2_ATTRIBUTES,
    published: Source | None = None,
) -> pd.DataFrame:
    """Load ``nvidia/HelpSteer2`` ratings of single responses as a multi-attribute table (scale 0..4).

    Parameters
    ----------
    source
        The released file (one integer per attribute) or the disagreements file (one list per attribute), as a
        path or a DataFrame. Which one it is comes from the cells: lists are individual ratings.
    attributes
        The attributes to keep (default all five).
    published
        With individual ratings: the released file, whose score of each response and attribute is added as
        ``item_published`` (matched on prompt and response text; NA where the released file lacks the response).

    Returns
    -------
    pandas.DataFrame
        ``response_id`` (``hs2r-`` + a hash of prompt and response), ``annotator``, ``attribute``, ``label``,
        ``prompt``, ``response``, ``scale_min``/``scale_max`` and, where given, ``item_split`` and
        ``item_published``.

    Raises
    ------
    ValidationError
        A missing column, a rating that is not an integer on 0..4 (naming the source row and attribute), or a row
        whose lists of ratings have different lengths (its annotators cannot be aligned across attributes).
    """
    frame, name = frame_or_file(source, texts=("prompt", "response", "split"))
    attributes = list(attributes)
    unknown = [a for a in attributes if a not in HELPSTEER2_ATTRIBUTES]
    if unknown or not attributes:
        raise AccordError(f"attributes must be a non-empty subset of {list(HELPSTEER2_ATTRIBUTES)}, got {attributes}")
    require_columns(frame, ("prompt", "response", *attributes), name, "HelpSteer2")
    frame = frame.reset_index(drop=True)
    response_id = content_ids(frame, ["prompt", "response"], "hs2r-")
    individual = frame[attributes].map(lambda v: isinstance(v, (list, np.ndarray, str))).to_numpy().any()
    parts = []
    for attribute in attributes:
        if individual:
            try:
                lists = frame[attribute].map(_as_list)
            except (TypeError, ValueError, SyntaxError) as exc:
                raise ValidationError(f"cannot read the list of ratings ({type(exc).__name__})", source=name,
                                      column=attribute) from None
            # the k-th entry is the k-th annotator: count positions before dropping a missing rating, or every
            # later annotator of the row took the place of the one before (and their ratings of the other
            # attributes were joined to someone else's)
            entries = lists.explode()
            position = entries.groupby(level=0).cumcount()[entries.notna().to_numpy()]
            ratings = entries.dropna()
            annotator = response_id.loc[ratings.index] + "/" + (position + 1).astype(str).to_numpy()
        else:
            ratings = frame[attribute].dropna()
            annotator = pd.Series("published", index=ratings.index)
        parts.append(pd.DataFrame({"_row": ratings.index, "annotator": annotator.to_numpy(),
                                   "attribute": attribute, "label": ratings.to_numpy()}))
    if individual:
        lengths = pd.DataFrame({a: frame[a].map(lambda v: len(_as_list(v))) for a in attributes})
        uneven = lengths.nunique(axis=1) > 1
        if uneven.any():
            row = int(np.flatnonzero(uneven.to_numpy())[0])
            raise ValidationError("lists of ratings of different lengths: annotators cannot be aligned across "
                                  "attributes", source=name, column=attributes[0], row=row,
                                  value=lengths.iloc[row].to_dict())
    long = pd.concat(parts, ignore_index=True)
    long = long.iloc[np.lexsort((pd.Index(attributes).get_indexer(long["attribute"]), long["_row"]))]
    rows = long["_row"].to_numpy()
    _check_ratings(long, HELPSTEER2_SCALE, name)
    table = pd.DataFrame({
        "response_id": response_id.to_numpy()[rows],
        "annotator": long["annotator"].to_numpy(),
        "attribute": long["attribute"].to_numpy(),
        "label": pd.to_numeric(long["label"]).to_numpy(),
        "scale_min": HELPSTEER2_SCALE[0],
        "scale_max": HELPSTEER2_SCALE[1],
        "prompt": frame["prompt"].to_numpy()[rows],
        "response": frame["response"].to_numpy()[rows],
    })
    table["_source_row"] = rows
    if "split" in frame.columns:
        table["item_split"] = frame["split"].to_numpy()[rows]
    if published is not None:
        released, released_name = frame_or_file(published, texts=("prompt", "response"))
        require_columns(released, ("prompt", "response", *attributes), released_name, "HelpSteer2")
        released = released.reset_index(drop=True)
        released["response_id"] = content_ids(released, ["prompt", "response"], "hs2r-").to_numpy()
        scores = released.melt(id_vars=["response_id"], value_vars=attributes, var_name="attribute",
                               value_name="item_published")
        table = table.merge(scores, on=["response_id", "attribute"], how="left", validate="many_to_one")
        table["item_published"] = pd.to_numeric(table["item_published"]).astype("Int64")
    scales = {a: HELPSTEER2_SCALE for a in attributes if a in set(table["attribute"])}
    warn_unrated([a for a in attributes if a not in scales], name)
    return validate_naming_source_rows(table, validate_attributes, item="response", scales=scales, source=name)


def _check_ratings(long: pd.DataFrame, scale: tuple[int, int], name: str) -> None:
    """Ratings must be integers on the scale: name the source row and attribute of the first that is not."""
    values = pd.to_numeric(long["label"], errors="coerce")
    bad = values.isna() | (values != values.round()) | (values < scale[0]) | (values > scale[1])
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(f"rating is not an integer on the scale {scale[0]}..{scale[1]}", source=name,
                              column=str(long["attribute"].iloc[position]), row=int(long["_row"].iloc[position]),
                              value=long["label"].iloc[position])


# -- MultiPref ----------------------------------------------------------------------------------------------


def load_multipref_aspects(
    source: Source,
    *,
    aspects: Sequence[str] = MULTIPREF_ASPECTS,
    groups: Sequence[str] = ("normal", "expert"),
    duplicates: str = "error",
) -> pd.DataFrame:
    """Load ``allenai/multipref`` as a multi-attribute table of pairs: the overall and per-aspect preferences.

    Each annotation gives up to four ratings of the pair on ``-2..2`` (negative: A better; ``clearly`` = 2,
    ``slightly`` = 1, as in :func:`~accord.datasets.loaders.hub.load_multipref`), one per aspect; an aspect the
    annotator left empty is no rating.

    Parameters
    ----------
    source
        A JSONL/JSON/Parquet file of the Hub schema, or that table as a DataFrame.
    aspects
        Which of ``overall``, ``helpful``, ``truthful``, ``harmless`` to keep.
    groups
        ``"normal"`` (crowdworkers) and/or ``"expert"`` (domain experts): kept in ``annotator_group``.
    duplicates
        Policy for one evaluator rating one comparison's aspect twice.

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (``comparison_id``), ``annotator`` (``evaluator``), ``attribute`` (the aspect), ``label``,
        ``scale_min``/``scale_max``, ``confidence`` (the annotator's ``<aspect>_confidence`` as published, e.g.
        ``"fairly-confident"``), ``annotator_group``, ``prompt``, ``response_a``/``response_b`` and the comparison's
        metadata as ``item_*`` (``item_model_a``, ``item_source``, ``item_category``, ...).
    """
    aspects = list(aspects)
    unknown = [a for a in aspects if a not in MULTIPREF_ASPECTS]
    if unknown or not aspects:
        raise AccordError(f"aspects must be a non-empty subset of {list(MULTIPREF_ASPECTS)}, got {aspects}")
    unknown = [g for g in groups if g not in MULTIPREF_GROUPS]
    if unknown or not groups:
        raise AccordError(f"groups must be a non-empty subset of {sorted(MULTIPREF_GROUPS)}, got {list(groups)}")
    frame, name = frame_or_file(source, texts=MULTIPREF_TEXTS)
    require_columns(frame, ("comparison_id", "text", "completion_a", "completion_b",
                            *(MULTIPREF_GROUPS[g] for g in groups)), name, "MultiPref")
    frame = frame.reset_index(drop=True)
    records = multipref_records(frame, groups, name)
    require_columns(records, ("evaluator",), name, "MultiPref annotation")
    parts = []
    for aspect in aspects:
        column = f"{aspect}_pref"
        if column not in records.columns:
            continue
        values = _map_strings(records[column], MULTIPREF_PREFERENCES, name, column, allow_missing=True)
        rated = values.notna().to_numpy()
        confidence_column = f"{aspect}_confidence"
        confidence = (records[confidence_column] if confidence_column in records.columns
                      else pd.Series(pd.NA, index=records.index, dtype=object))
        parts.append(pd.DataFrame({
            "_row": records.index[rated],
            "_order": records["_position"].to_numpy()[rated],
            "annotator": records["evaluator"].to_numpy()[rated],
            "annotator_group": records["annotator_group"].to_numpy()[rated],
            "attribute": aspect,
            "label": values.to_numpy()[rated].astype(np.int64),
            "confidence": confidence.to_numpy()[rated],
        }))
    if not parts:
        raise ValidationError(f"none of the aspects {aspects} is in the annotations", source=name,
                              column=f"{aspects[0]}_pref")
    long = pd.concat(parts, ignore_index=True)
    aspect_order = pd.Index(aspects).get_indexer(long["attribute"])
    group_order = pd.Index(list(groups)).get_indexer(long["annotator_group"])
    long = long.iloc[np.lexsort((aspect_order, long["_order"], group_order, long["_row"]))]
    rows = long["_row"].to_numpy()
    table = pd.DataFrame({
        "pair_id": frame["comparison_id"].to_numpy()[rows],
        "annotator": long["annotator"].to_numpy(),
        "attribute": long["attribute"].to_numpy(),
        "label": long["label"].to_numpy(),
        "scale_min": -MULTIPREF_SCALE,
        "scale_max": MULTIPREF_SCALE,
        "confidence": long["confidence"].to_numpy(),
        "annotator_group": long["annotator_group"].to_numpy(),
        "prompt": frame["text"].to_numpy()[rows],
        "response_a": frame["completion_a"].to_numpy()[rows],
        "response_b": frame["completion_b"].to_numpy()[rows],
    })
    for column in ("prompt_id", "model_a", "model_b", "source", "category", "subject_study",
                   "highest_level_degree"):
        if column in frame.columns:
            table[f"item_{column}"] = frame[column].to_numpy()[rows]
    table["_source_row"] = rows
    table = _drop_identical_sides(table, name)
    scales = {a: (-MULTIPREF_SCALE, MULTIPREF_SCALE) for a in aspects if a in set(table["attribute"])}
    warn_unrated([a for a in aspects if a not in scales], name)
    return validate_naming_source_rows(table, validate_attributes, item="pair", scales=scales, duplicates=duplicates,
                                       source=name)


# -- summarize from feedback: axis evaluations ---------------------------------------------------------------


def load_summarize_axis(
    source: Source,
    *,
    axes: Sequence[str] = SUMMARIZE_AXES,
    duplicates: str = "error",
) -> pd.DataFrame:
    """Load the ``axis`` evaluations of ``openai/summarize_from_feedback`` as a multi-attribute table of responses.

    Each row of the source is one worker's Likert ratings (1..7) of one summary on the axes ``overall``,
    ``accuracy``, ``coverage`` and ``coherence``; an axis left empty is no rating.

    Parameters
    ----------
    source
        A JSONL/JSON/Parquet file of the schema (the original ``axis_evals/*.json`` files are JSON Lines), or the
        table as a DataFrame.
    axes
        Which axes to keep.
    duplicates
        Policy for one worker rating one summary's axis twice.

    Returns
    -------
    pandas.DataFrame
        ``response_id`` (``s-`` + a hash of post id and summary text: the same id
        :func:`~accord.datasets.loaders.hub.load_summarize_from_feedback` gives the summary in comparisons),
        ``annotator`` (``worker``), ``attribute``, ``label``, ``scale_min``/``scale_max``, ``prompt``
        (``info.post``, or ``info.article`` for news), ``response`` (the summary), ``compatible`` (the worker's
        ``axes.compatible``), ``batch``, ``item_split``, ``item_post_id``, ``item_policy``, ``item_title``,
        ``item_subreddit``, ``item_site``.
    """
    axes = list(axes)
    unknown = [a for a in axes if a not in SUMMARIZE_AXES]
    if unknown or not axes:
        raise AccordError(f"axes must be a non-empty subset of {list(SUMMARIZE_AXES)}, got {axes}")
    frame, name = frame_or_file(source, texts=SUMMARIZE_TEXTS)
    require_columns(frame, ("info", "summary", "worker"), name, "summarize_from_feedback axis")
    frame = frame.reset_index(drop=True)
    info = _normalize_dicts(frame["info"], name, "info")
    require_columns(info, ("id",), name, "summarize_from_feedback info")
    summary = _normalize_dicts(frame["summary"], name, "summary")
    require_columns(summary, ("text", "axes"), name, "summarize_from_feedback summary")
    ratings = _normalize_dicts(summary["axes"], name, "summary.axes")
    post_id = info["id"].astype(str)
    text = summary["text"].astype(str)
    response_id = content_ids(pd.DataFrame({"post": post_id, "text": text}), ["post", "text"], "s-",
                              unique=False)
    parts = []
    for axis in axes:
        if axis not in ratings.columns:
            continue
        values = ratings[axis]
        rated = values.notna().to_numpy()
        parts.append(pd.DataFrame({"_row": np.flatnonzero(rated), "attribute": axis,
                                   "label": values.to_numpy()[rated]}))
    if not parts:
        raise ValidationError(f"none of the axes {axes} is rated", source=name, column="summary.axes")
    long = pd.concat(parts, ignore_index=True)
    long = long.iloc[np.lexsort((pd.Index(axes).get_indexer(long["attribute"]), long["_row"]))]
    _check_ratings(long, SUMMARIZE_SCALE, name)
    rows = long["_row"].to_numpy()
    prompt = info["post"] if "post" in info.columns else pd.Series(pd.NA, index=frame.index, dtype=object)
    if "article" in info.columns:
        prompt = prompt.where(prompt.notna(), info["article"])
    table = pd.DataFrame({
        "response_id": response_id.to_numpy()[rows],
        "annotator": frame["worker"].to_numpy()[rows],
        "attribute": long["attribute"].to_numpy(),
        "label": pd.to_numeric(long["label"]).to_numpy(),
        "scale_min": SUMMARIZE_SCALE[0],
        "scale_max": SUMMARIZE_SCALE[1],
        "prompt": prompt.to_numpy()[rows],
        "response": text.to_numpy()[rows],
    })
    if "compatible" in ratings.columns:
        table["compatible"] = ratings["compatible"].to_numpy()[rows]
    for column, target in (("batch", "batch"), ("split", "item_split")):
        if column in frame.columns:
            table[target] = frame[column].to_numpy()[rows]
    table["item_post_id"] = post_id.to_numpy()[rows]
    if "policy" in summary.columns:
        table["item_policy"] = summary["policy"].to_numpy()[rows]
    for column in ("title", "subreddit", "site"):
        if column in info.columns:
            table[f"item_{column}"] = info[column].to_numpy()[rows]
    table["_source_row"] = rows
    scales = {a: SUMMARIZE_SCALE for a in axes if a in set(table["attribute"])}
    warn_unrated([a for a in axes if a not in scales], name)
    return validate_naming_source_rows(table, validate_attributes, item="response", scales=scales,
                                       duplicates=duplicates, source=name)
