"""Loaders for public per-annotator preference sets in the schemas they have on the Hugging Face Hub.

accord never downloads these: the user gets the file (``huggingface-cli download``, ``datasets``) and passes its
path (JSON Lines, JSON or Parquet; ``.gz`` is fine) or a DataFrame (e.g. ``datasets.Dataset.to_pandas()``).
Nested fields may arrive as Python lists, numpy arrays (Parquet) or JSON text; all are accepted.

================================  =========================================================================
loader                            source schema (one row = ...)
================================  =========================================================================
:func:`load_multipref`            ``allenai/multipref``: one comparison, with ``text`` (the prompt),
                                  ``completion_a``/``completion_b`` and lists ``normal_worker_annotations``,
                                  ``expert_worker_annotations`` of dicts with ``evaluator`` and ``overall_pref``
                                  (``A-is-clearly-better`` ... ``Tie`` ... ``B-is-clearly-better``).
:func:`load_helpsteer2_preference` ``nvidia/HelpSteer2`` ``preference/``: one pair, with ``prompt``,
                                  ``response_1``/``response_2``, ``preference_strength`` (-3..3) and
                                  ``all_preferences_unprocessed`` (dicts ``strength``, ``justification``).
:func:`load_helpsteer3_preference` ``nvidia/HelpSteer3`` ``preference``: one pair, with ``context`` (chat turns),
                                  ``response1``/``response2``, ``overall_preference`` (-3..3) and
                                  ``individual_preference`` (dicts ``score``, ``reasoning``).
:func:`load_summarize_from_feedback` ``openai/summarize_from_feedback`` ``comparisons``: one judgment, with
                                  ``info`` (``id``, ``post``/``article``, ``title``, ``subreddit``),
                                  ``summaries`` (two dicts with ``text``, ``policy``), ``choice`` (0/1), ``worker``.
================================  =========================================================================

Graded sources return the graded form (negative: A better): HelpSteer2/3 on their own -3..3 scale (``scale=3``);
MultiPref's five options on -2..2 (``scale=2``: ``clearly`` = 2, ``slightly`` = 1; stretching them onto -3..3
would invent a level). ``form="preference"`` collapses any graded label to A/B/tie by its sign.

HelpSteer2 and HelpSteer3 publish no annotator ids. Their judgments get pseudo-annotators ``"<pair_id>/<k>"``
(k-th rating of that pair), which states honestly that raters cannot be linked across pairs; annotator models then
see one judgment per rater. The publishers' own aggregate is kept as ``item_published_preference`` (same form as
``label``), not as ``gold``: it is computed from the same ratings, so it is no independent truth.

Rows whose two responses are the same text are dropped with a warning (the schema forbids such pairs), as are
ratings outside the scale when ``invalid="drop"`` (HelpSteer's sentinel values such as -100).
"""

from __future__ import annotations

import ast
import io
import json
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.ids import content_ids
from accord.datasets.loaders.generic import first_line, frame_or_file, require_columns
from accord.datasets.schema import validate

HubForm = Literal["graded", "preference"]
Source = pd.DataFrame | str | os.PathLike

MULTIPREF_SCALE = 2
MULTIPREF_PREFERENCES: dict[str, int] = {
    "A-is-clearly-better": -2,
    "A-is-slightly-better": -1,
    "Tie": 0,
    "B-is-slightly-better": 1,
    "B-is-clearly-better": 2,
}
MULTIPREF_GROUPS: dict[str, str] = {"normal": "normal_worker_annotations", "expert": "expert_worker_annotations"}
HELPSTEER_SCALE = 3
#: The columns of MultiPref and of summarize_from_feedback that hold texts or ids, read as written from CSV or TSV
#: (:func:`~accord.datasets.loaders.generic.frame_or_file`; the nested ones are JSON text there)
MULTIPREF_TEXTS: tuple[str, ...] = ("comparison_id", "text", "completion_a", "completion_b", "model_a", "model_b",
                                    "source", "category", "subject_study", "highest_level_degree")
SUMMARIZE_TEXTS: tuple[str, ...] = ("info", "summaries", "summary", "worker", "batch", "split", "extra")


# -- MultiPref ----------------------------------------------------------------------------------------------


def load_multipref(
    source: Source,
    *,
    groups: Sequence[str] = ("normal", "expert"),
    form: HubForm = "graded",
    duplicates: str = "error",
) -> pd.DataFrame:
    """Load ``allenai/multipref`` (one row per comparison) as a judgments table, one row per annotation.

    Parameters
    ----------
    source
        A JSONL/JSON/Parquet file of the Hub schema, or that table as a DataFrame.
    groups
        Which annotations to keep: ``"normal"`` (crowdworkers) and/or ``"expert"`` (domain experts); the group is
        kept in ``annotator_group``.
    form
        ``"graded"`` (-2..2, ``scale=2``) or ``"preference"`` (A/B/tie).
    duplicates
        Policy for one evaluator annotating one comparison twice (see :func:`~accord.datasets.schema.validate`).

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (``comparison_id``), ``annotator`` (``evaluator``), ``label`` (``overall_pref``), ``prompt``
        (``text``), ``response_a``/``response_b``, ``annotator_group``, ``confidence`` (``overall_confidence``),
        ``label_helpful``/``label_truthful``/``label_harmless`` (the aspect preferences, same form as ``label``),
        ``time_spent``, ``timestamp`` and ``item_*`` for the comparison's metadata (models, source, category...).
    """
    _check_form(form)
    unknown = [g for g in groups if g not in MULTIPREF_GROUPS]
    if unknown or not groups:
        raise AccordError(f"groups must be a non-empty subset of {sorted(MULTIPREF_GROUPS)}, got {list(groups)}")
    frame, name = frame_or_file(source, texts=MULTIPREF_TEXTS)
    require_columns(frame, ("comparison_id", "text", "completion_a", "completion_b",
                            *(MULTIPREF_GROUPS[g] for g in groups)), name, "MultiPref")
    frame = frame.reset_index(drop=True)
    records = multipref_records(frame, groups, name)
    require_columns(records, ("evaluator", "overall_pref"), name, "MultiPref annotation")

    rows = frame.loc[records.index]
    label = _map_strings(records["overall_pref"], MULTIPREF_PREFERENCES, name, "overall_pref")
    table = pd.DataFrame(
        {
            "pair_id": rows["comparison_id"].to_numpy(),
            "annotator": records["evaluator"].to_numpy(),
            "label": _to_form(label, form).to_numpy(),
            "prompt": rows["text"].to_numpy(),
            "response_a": rows["completion_a"].to_numpy(),
            "response_b": rows["completion_b"].to_numpy(),
            "annotator_group": records["annotator_group"].to_numpy(),
        }
    )
    for aspect in ("helpful", "truthful", "harmless"):
        column = f"{aspect}_pref"
        if column in records.columns:
            values = _map_strings(records[column], MULTIPREF_PREFERENCES, name, column, allow_missing=True)
            table[f"label_{aspect}"] = _to_form(values, form).to_numpy()
    for source_column, column in (("overall_confidence", "confidence"), ("time_spent", "time_spent"),
                                  ("timestamp", "timestamp")):
        if source_column in records.columns:
            table[column] = records[source_column].to_numpy()
    for column in ("prompt_id", "model_a", "model_b", "source", "category", "subject_study",
                   "highest_level_degree"):
        if column in rows.columns:
            table[f"item_{column}"] = rows[column].to_numpy()
    table["_source_row"] = records.index.to_numpy()
    table = _drop_identical_sides(table, name)
    return validate_naming_source_rows(table, form=form, scale=MULTIPREF_SCALE if form == "graded" else None,
                                       duplicates=duplicates, source=name)


def multipref_records(frame: pd.DataFrame, groups: Sequence[str], name: str) -> pd.DataFrame:
    """One row per annotation of the ``groups`` (``annotator_group``), indexed by the source row. A group whose
    lists are all empty adds none (a file of comparisons no expert rated was refused as a whole); only no
    annotation in any group is an error."""
    columns = [MULTIPREF_GROUPS[g] for g in groups]
    parts = [_explode_records(frame, column, name, empty_ok=True).assign(annotator_group=group)
             for group, column in zip(groups, columns)]
    records = pd.concat([part for part in parts if len(part)] or parts[:1])
    if records.empty:
        raise ValidationError("no annotations in any row", source=name, column=" / ".join(columns))
    return records


# -- HelpSteer2 / HelpSteer3 --------------------------------------------------------------------------------


def load_helpsteer2_preference(
    source: Source,
    *,
    ratings: Literal["all", "three_most_similar"] = "all",
    form: HubForm = "graded",
    invalid: Literal["drop", "error"] = "drop",
) -> pd.DataFrame:
    """Load the ``preference`` subset of ``nvidia/HelpSteer2`` as a judgments table, one row per individual rating.

    Parameters
    ----------
    source
        ``preference.jsonl.gz`` (or any JSONL/JSON/Parquet copy), or that table as a DataFrame.
    ratings
        ``"all"``: every rating (``all_preferences_unprocessed``, the publishers' "in case someone finds them
        helpful" list); ``"three_most_similar"``: the three the publishers kept to filter outliers.
    form
        ``"graded"`` (-3..3, ``scale=3``; negative: response 1 better) or ``"preference"`` (A/B/tie).
    invalid
        Ratings off -3..3: ``"drop"`` them with a warning, or raise (``"error"``).

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (``hs2-`` + a hash of prompt and both responses), ``annotator`` (pseudo, ``"<pair_id>/<k>"``),
        ``label``, ``prompt``, ``response_a``/``response_b`` (``response_1``/``response_2``), ``reason``
        (justification, or statement and elaboration), ``item_split`` and ``item_published_preference``
        (``preference_strength``).
    """
    _check_form(form)
    choices = {"all": "all_preferences_unprocessed", "three_most_similar": "three_most_similar_preferences"}
    if ratings not in choices:
        raise AccordError(f"ratings must be one of {sorted(choices)}, got {ratings!r}")
    frame, name = frame_or_file(source, texts=("prompt", "response_1", "response_2", "split"))
    list_column = choices[ratings]
    # Some re-uploads call the list "individual_preference" (HelpSteer3's name); accept it as the same thing.
    if list_column not in frame.columns and "individual_preference" in frame.columns:
        list_column = "individual_preference"
    require_columns(frame, ("prompt", "response_1", "response_2", list_column), name, "HelpSteer2 preference")
    frame = frame.reset_index(drop=True)
    frame["_pair_id"] = content_ids(frame, ["prompt", "response_1", "response_2"], "hs2-")
    records = _explode_records(frame, list_column, name)
    require_columns(records, ("strength",), name, f"HelpSteer2 {list_column} entry")
    empty = pd.Series(pd.NA, index=records.index, dtype=object)
    if "justification" in records.columns:
        reason = records["justification"]
    elif "statement" in records.columns:  # three_most_similar_preferences: statement + elaboration
        elaboration = records["elaboration"] if "elaboration" in records.columns else empty
        reason = (records["statement"].fillna("") + " " + elaboration.fillna("")).str.strip()
    else:
        reason = empty
    published = frame["preference_strength"] if "preference_strength" in frame.columns else None
    extra = {"item_split": frame["split"]} if "split" in frame.columns else {}
    return _graded_pairs(frame, records, records["strength"], reason, name, form, invalid,
                         prompt=frame["prompt"], response_a=frame["response_1"], response_b=frame["response_2"],
                         published=published, extra=extra, label_column="strength")


def load_helpsteer3_preference(
    source: Source,
    *,
    form: HubForm = "graded",
    invalid: Literal["drop", "error"] = "drop",
) -> pd.DataFrame:
    """Load the ``preference`` subset of ``nvidia/HelpSteer3`` as a judgments table, one row per individual rating.

    Parameters
    ----------
    source
        ``preference/train.jsonl.gz`` or ``validation.jsonl.gz`` (or any JSONL/JSON/Parquet copy), or a DataFrame.
    form
        ``"graded"`` (-3..3, ``scale=3``; negative: response 1 better) or ``"preference"`` (A/B/tie).
    invalid
        Ratings off -3..3: ``"drop"`` them with a warning, or raise (``"error"``).

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (``hs3-`` + a hash of context and both responses), ``annotator`` (pseudo,
        ``"<pair_id>/<k>"``), ``label`` (``score``), ``prompt`` (the context: a single user turn as is, several
        turns as ``"<role>: <content>"`` blocks), ``response_a``/``response_b``, ``reason`` (``reasoning``),
        ``item_domain``, ``item_language`` and ``item_published_preference`` (``overall_preference``).
    """
    _check_form(form)
    frame, name = frame_or_file(source, texts=("context", "response1", "response2", "domain", "language"))
    require_columns(frame, ("context", "response1", "response2", "individual_preference"), name,
                    "HelpSteer3 preference")
    frame = frame.reset_index(drop=True)
    try:
        frame["_prompt"] = frame["context"].map(_render_context)  # per pair, not per judgment
    except (TypeError, ValueError, SyntaxError) as exc:
        raise ValidationError(f"cannot read the chat context ({type(exc).__name__}: {first_line(exc)})",
                              source=name, column="context") from None
    frame["_pair_id"] = content_ids(frame, ["_prompt", "response1", "response2"], "hs3-")
    records = _explode_records(frame, "individual_preference", name)
    require_columns(records, ("score",), name, "HelpSteer3 individual_preference entry")
    reason = records["reasoning"] if "reasoning" in records.columns else pd.Series(pd.NA, index=records.index)
    published = frame["overall_preference"] if "overall_preference" in frame.columns else None
    extra = {f"item_{c}": frame[c] for c in ("domain", "language") if c in frame.columns}
    return _graded_pairs(frame, records, records["score"], reason, name, form, invalid,
                         prompt=frame["_prompt"], response_a=frame["response1"], response_b=frame["response2"],
                         published=published, extra=extra, label_column="score")


def _graded_pairs(
    frame: pd.DataFrame,
    records: pd.DataFrame,
    strength: pd.Series,
    reason: pd.Series,
    name: str,
    form: str,
    invalid: str,
    *,
    prompt: pd.Series,
    response_a: pd.Series,
    response_b: pd.Series,
    published: pd.Series | None,
    extra: dict[str, pd.Series],
    label_column: str,
) -> pd.DataFrame:
    """The judgments table shared by the HelpSteer loaders: pseudo-annotators, scale check, collapse to a form."""
    if invalid not in ("drop", "error"):
        raise AccordError(f"invalid must be 'drop' or 'error', got {invalid!r}")
    values = pd.to_numeric(strength, errors="coerce")
    off_scale = values.isna() | (values != values.round()) | (values.abs() > HELPSTEER_SCALE)
    if off_scale.any():
        position = int(np.flatnonzero(off_scale.to_numpy())[0])
        if invalid == "error":
            raise ValidationError(f"rating outside the scale -{HELPSTEER_SCALE}..{HELPSTEER_SCALE}", source=name,
                                  column=label_column, row=int(records.index[position]),
                                  value=strength.iloc[position])
        warnings.warn(
            f"{name}: dropped {int(off_scale.sum())} rating(s) outside -{HELPSTEER_SCALE}..{HELPSTEER_SCALE} "
            f"(first: source row {int(records.index[position])}, value {strength.iloc[position]})",
            stacklevel=3,
        )
        records, values, reason = records[~off_scale], values[~off_scale], reason[~off_scale]
    rows = records.index
    pair_id = frame.loc[rows, "_pair_id"]
    table = pd.DataFrame(
        {
            "pair_id": pair_id.to_numpy(),
            "annotator": (pair_id + "/" + (records["_position"] + 1).astype(str)).to_numpy(),
            "label": _to_form(values.astype("int64"), form).to_numpy(),
            "prompt": prompt.loc[rows].to_numpy(),
            "response_a": response_a.loc[rows].to_numpy(),
            "response_b": response_b.loc[rows].to_numpy(),
            "reason": reason.to_numpy(),
        }
    )
    for column, values_by_pair in extra.items():
        table[column] = values_by_pair.loc[rows].to_numpy()
    if published is not None:
        overall = pd.to_numeric(published.loc[rows], errors="coerce")
        # a published preference off the scale or fractional is unknown (NA), as an off-scale one always was
        overall = overall.where((overall.abs() <= HELPSTEER_SCALE) & (overall == overall.round())).astype("Int64")
        table["item_published_preference"] = _to_form(overall, form).to_numpy()
    table["_source_row"] = rows.to_numpy()
    table = _drop_identical_sides(table, name)
    return validate_naming_source_rows(table, form=form, scale=HELPSTEER_SCALE if form == "graded" else None,
                                       source=name)


def _render_context(context: Any) -> str:
    """A chat context as one prompt string: a lone user turn as is, several turns as ``role: content`` blocks."""
    turns = _as_list(context)
    if isinstance(context, str) and not turns:
        return context
    if len(turns) == 1 and isinstance(turns[0], dict):
        return str(turns[0].get("content", ""))
    return "\n\n".join(
        f"{t.get('role', 'user')}: {t.get('content', '')}" if isinstance(t, dict) else str(t) for t in turns
    )


# -- summarize from feedback --------------------------------------------------------------------------------


def load_summarize_from_feedback(source: Source, *, duplicates: str = "error") -> pd.DataFrame:
    """Load the ``comparisons`` of ``openai/summarize_from_feedback`` (one row per judgment) as a judgments table.

    The same two summaries of a post were often shown to several workers, sometimes in the other order. To make
    those one pair, the sides are put in a canonical order (by a hash of the text): ``pair_id`` is the same for
    every judgment of the pair, ``label`` refers to the canonical sides, and ``presented_swapped`` records that the
    worker saw them the other way round (for position-bias checks).

    Parameters
    ----------
    source
        A JSONL/JSON/Parquet file of the schema (the original ``comparisons/batch*.json`` files are JSON Lines), or
        the table as a DataFrame.
    duplicates
        Policy for one worker judging one pair twice (see :func:`~accord.datasets.schema.validate`).

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (``<info.id>/`` + hash), ``annotator`` (``worker``), ``label`` (A/B), ``prompt`` (``info.post``,
        or ``info.article`` for news), ``response_a``/``response_b``, ``response_a_id``/``response_b_id`` (hash of
        post id and text: one summary appears in many pairs), ``presented_swapped``, ``confidence``
        (``extra.confidence``), ``batch``, ``item_split``, ``item_post_id``, ``item_title``, ``item_subreddit``,
        ``item_site``, ``item_policy_a``/``item_policy_b``.
    """
    frame, name = frame_or_file(source, texts=SUMMARIZE_TEXTS)
    require_columns(frame, ("info", "summaries", "choice", "worker"), name, "summarize_from_feedback comparisons")
    frame = frame.reset_index(drop=True)
    info = _normalize_dicts(frame["info"], name, "info")
    require_columns(info, ("id",), name, "summarize_from_feedback info")
    summaries = _explode_records(frame, "summaries", name)
    require_columns(summaries, ("text",), name, "summarize_from_feedback summary")
    counts = summaries.groupby(level=0).size().reindex(frame.index, fill_value=0)
    if (counts != 2).any():
        row = int(np.flatnonzero((counts != 2).to_numpy())[0])
        raise ValidationError("expected exactly two summaries", source=name, column="summaries", row=row,
                              value=int(counts.iloc[row]))
    first = summaries[summaries["_position"] == 0].reindex(frame.index)
    second = summaries[summaries["_position"] == 1].reindex(frame.index)

    choice = pd.to_numeric(frame["choice"], errors="coerce")
    bad = ~choice.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError("choice must be 0 or 1", source=name, column="choice", row=row,
                              value=frame["choice"].iloc[row])

    text_0, text_1 = first["text"].astype(str), second["text"].astype(str)
    hash_0 = pd.util.hash_pandas_object(text_0, index=False).to_numpy(np.uint64)
    hash_1 = pd.util.hash_pandas_object(text_1, index=False).to_numpy(np.uint64)
    swapped = hash_0 > hash_1
    text_a = text_0.where(~swapped, text_1)
    text_b = text_1.where(~swapped, text_0)
    chose_first = (choice == 0).to_numpy()
    label = np.where(chose_first != swapped, "A", "B")

    post_id = info["id"].astype(str)
    keyed = pd.DataFrame({"post": post_id, "a": text_a, "b": text_b})
    prompt = info["post"] if "post" in info.columns else pd.Series(pd.NA, index=frame.index)
    if "article" in info.columns:
        prompt = prompt.where(prompt.notna(), info["article"])
    table = pd.DataFrame(
        {
            "pair_id": (post_id + "/" + content_ids(keyed, ["a", "b"], "", unique=False)).to_numpy(),
            "annotator": frame["worker"].to_numpy(),
            "label": label,
            "prompt": prompt.to_numpy(),
            "response_a": text_a.to_numpy(),
            "response_b": text_b.to_numpy(),
            "response_a_id": content_ids(keyed, ["post", "a"], "s-", unique=False).to_numpy(),
            "response_b_id": content_ids(keyed, ["post", "b"], "s-", unique=False).to_numpy(),
            "presented_swapped": swapped,
            "item_post_id": post_id.to_numpy(),
        }
    )
    if "extra" in frame.columns:
        extra = _normalize_dicts(frame["extra"], name, "extra")
        if "confidence" in extra.columns:
            confidence = pd.to_numeric(extra["confidence"], errors="coerce")
            # whole levels (1..9); anything else is unknown, as text already was (Int64 refuses fractions)
            whole = np.isfinite(confidence.to_numpy(dtype=float, na_value=np.nan)) & (confidence == confidence.round())
            table["confidence"] = confidence.where(whole).astype("Int64").array
    for column, target in (("batch", "batch"), ("split", "item_split")):
        if column in frame.columns:
            table[target] = frame[column].to_numpy()
    for column in ("title", "subreddit", "site"):
        if column in info.columns:
            table[f"item_{column}"] = info[column].to_numpy()
    if "policy" in summaries.columns:
        table["item_policy_a"] = first["policy"].where(~swapped, second["policy"]).to_numpy()
        table["item_policy_b"] = second["policy"].where(~swapped, first["policy"]).to_numpy()
    table["_source_row"] = np.arange(len(table))
    table = _drop_identical_sides(table, name)
    return validate_naming_source_rows(table, form="preference", duplicates=duplicates, source=name)


# -- shared helpers -----------------------------------------------------------------------------------------


def _check_form(form: str) -> None:
    if form not in ("graded", "preference"):
        raise AccordError(f"form must be 'graded' or 'preference', got {form!r}")


def _to_form(graded: pd.Series, form: str) -> pd.Series:
    """Graded strengths as they are, or collapsed to A/B/tie by sign (missing stays missing)."""
    if form == "graded":
        return graded
    numeric = pd.to_numeric(graded, errors="coerce").astype("Float64")
    collapsed = np.select([numeric < 0, numeric > 0, numeric == 0], ["A", "B", "tie"], default="")
    return pd.Series(collapsed, index=graded.index, dtype=object).where(numeric.notna().to_numpy(), None)


def _map_strings(values: pd.Series, mapping: dict[str, int], name: str, column: str,
                 allow_missing: bool = False) -> pd.Series:
    # looked up cell by cell: a JSON object or list where a verdict belongs is not a key (pandas' map would raise)
    mapped = values.map(lambda v: mapping.get(v) if isinstance(v, str) else None).astype(object)
    bad = mapped.isna() & (values.notna() | (not allow_missing))
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(f"value is not one of {list(mapping)}", source=name, column=column,
                              row=int(values.index[position]), value=values.iloc[position])
    return mapped.astype("Int64")


def _as_list(value: Any) -> list[Any]:
    """A nested list cell as a Python list, whether it came as a list, a numpy array (Parquet) or JSON text."""
    if isinstance(value, list):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            # HelpSteer2's list is sometimes written as a Python repr (single quotes).
            parsed = ast.literal_eval(text)
        return _as_list(parsed)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    raise TypeError(f"expected a list, got {type(value).__name__}")


def _explode_records(frame: pd.DataFrame, column: str, name: str, *, empty_ok: bool = False) -> pd.DataFrame:
    """One row per dict in the list cells of ``column``; indexed by the source row, with ``_position`` in the list.
    A column whose every list is empty is an error, or with ``empty_ok`` no rows (one of several columns)."""
    # Cells may mix lists, numpy arrays and JSON/repr text even within one file, so each cell is normalized
    # (one cheap call per source row); the annotations themselves are then handled column-wise.
    try:
        values = frame[column].map(_as_list)
    except (TypeError, ValueError, SyntaxError) as exc:
        raise ValidationError(f"cannot read the list of annotations ({type(exc).__name__}: {first_line(exc)})",
                              source=name, column=column) from None
    exploded = values.explode().dropna()
    if exploded.empty:
        if empty_ok:
            return pd.DataFrame({"_position": pd.Series(dtype=np.int64)})
        raise ValidationError("no annotations in any row", source=name, column=column)
    try:
        records = pd.json_normalize(exploded.tolist(), max_level=0)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValidationError(f"annotations must be objects ({type(exc).__name__})", source=name,
                              column=column) from None
    if len(records) != len(exploded):
        raise ValidationError("annotations must be objects", source=name, column=column)
    records.index = exploded.index
    records["_position"] = exploded.groupby(level=0).cumcount().to_numpy()
    return records


def _normalize_dicts(values: pd.Series, name: str, column: str) -> pd.DataFrame:
    """A column of dicts (or JSON text of dicts) as one column per key, aligned with ``values``."""
    present = values.dropna()
    if len(present) and isinstance(present.iloc[0], str):
        # JSON text: let the C JSON Lines parser read all rows at once.
        try:
            normalized = pd.read_json(io.StringIO("\n".join(present.astype(str))), lines=True, dtype=False)
        except ValueError as exc:
            raise ValidationError(f"invalid JSON ({first_line(exc)})", source=name, column=column) from None
    else:
        try:
            normalized = pd.json_normalize(present.tolist(), max_level=0)
        except (AttributeError, TypeError) as exc:
            raise ValidationError(f"entries must be objects ({type(exc).__name__})", source=name,
                                  column=column) from None
    if len(normalized) != len(present):
        raise ValidationError("entries must be objects", source=name, column=column)
    normalized.index = present.index
    return normalized.reindex(values.index)


def validate_naming_source_rows(table: pd.DataFrame, check: Callable[..., pd.DataFrame] = validate,
                                **validate_kwargs: Any) -> pd.DataFrame:
    """``check`` (:func:`~accord.datasets.schema.validate`, or ``validate_attributes``) of a loader's judgments, whose
    column ``_source_row`` (dropped here) holds each judgment's row of the source: an error is named at that row, as
    the loader's own errors are. The table's rows are judgments: one source row may hold several (MultiPref's
    annotations) or have lost some to :func:`_drop_identical_sides`, and the check's row (MultiPref's row 7 for the
    file's row 2) was in no file."""
    source_rows = table.pop("_source_row").to_numpy()
    try:
        return check(table, **validate_kwargs)
    except ValidationError as error:
        if error.row is None:
            raise
        raise ValidationError(error.problem, source=error.source, column=error.column,
                              row=int(source_rows[error.row]), value=error.value) from None


def _drop_identical_sides(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Drop (with a warning) judgments of a pair whose two responses are the same text, which the schema forbids."""
    # element-wise on objects: a cell that is not text (a number, a list) compares unequal instead of raising
    same = np.fromiter((isinstance(a, str) and a == b for a, b in zip(table["response_a"], table["response_b"])),
                       dtype=bool, count=len(table))
    if same.any():
        pairs = table.loc[same, "pair_id"].nunique()
        warnings.warn(f"{name}: dropped {int(same.sum())} judgment(s) of {pairs} pair(s) whose two responses are "
                      f"identical", stacklevel=3)
        table = table[~same].reset_index(drop=True)
    return table
