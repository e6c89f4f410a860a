"""The cleaned multi-attribute dataset: per-response attribute scores and per-pair, per-attribute soft labels.

Two layouts, each one file (Parquet, or JSON Lines with a hidden ``.<file>.meta.json`` sidecar, as for
:mod:`accord.datasets.cleaned`), written atomically.

``attribute-responses``: one row per response.

==================  ==============================================================================================
``response_id``     the response's id in the judgments table
``prompt``          the prompt (empty string when the source has none)
``response``        the response text
``<a>_mean``        posterior mean of attribute ``a`` on its rating scale (a typical rater's average rating)
``<a>_sd``          its posterior standard deviation
``<a>_lower``       lower end of the central credible interval (``interval`` in the metadata, 0.9)
``<a>_upper``       upper end
``<a>_n``           number of ratings of ``a`` behind it (0: imputed from the item's other attributes; mask it)
``n``               number of ratings of the response, all attributes
==================  ==============================================================================================

``attribute-pairs``: one row per pair, a valid cleaned preference dataset (:data:`~accord.datasets.cleaned.
CLEANED_COLUMNS`, so :func:`~accord.datasets.cleaned.read_cleaned` and the single-head reward trainer read it,
the standard columns then describing the ``chosen_by`` attribute) plus, per attribute:

==================  ==============================================================================================
``p_chosen_<a>``    P(chosen better than rejected on ``a``); for preference attributes only
``weight_<a>``      training weight in [0, 1]: ``1 - posterior variance / prior variance`` of the latent gap on
                    ``a`` (how much the ratings pin the comparison down; 0 when they say nothing)
``n_<a>``           number of ratings behind it
``<a>_mean``        for *properties* of a pair (pair attributes on a scale that is not ``-S..S``, e.g. UKPConvArg2's
``<a>_sd``          0/1 reasons): posterior mean and sd on the scale, as in the responses layout, and ``<a>_n``
==================  ==============================================================================================

``chosen``/``rejected`` are the sides the ``chosen_by`` attribute prefers (``chosen_side``: ``"A"``/``"B"``;
``chosen_id``/``rejected_id`` when the responses have ids); every ``p_chosen_<a>`` refers to that orientation
(below 0.5 where the chosen response is worse on ``a``). Pairs built from rated responses put on side A the response
whose id comes first as text (``pair_id`` ``"<a>~<b>"``), whatever the order of the ratings. ``p_tie`` is 0 and ``uncertainty`` NaN (the soft labels
are posterior probabilities, not uncertain frequencies; ``weight_<a>`` carries the uncertainty).

Metadata (Parquet schema key ``accord``, or the sidecar): ``layout``, ``attributes``, ``scales``, ``interval``,
``method``, for pairs ``chosen_by``, ``preference_attributes`` and ``property_attributes``, plus the provenance of
:func:`~accord.datasets.cleaned.write_cleaned` (package, version, time, and whatever the caller adds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.cleaned import check_cleaned, read_with_provenance, write_with_provenance
from accord.datasets.errors import ValidationError

LAYOUTS: tuple[str, ...] = ("attribute-responses", "attribute-pairs")
RESPONSE_COLUMNS: tuple[str, ...] = ("response_id", "prompt", "response", "n")
RESPONSE_SUFFIXES: tuple[str, ...] = ("mean", "sd", "lower", "upper", "n")


def check_attribute_cleaned(frame: pd.DataFrame, meta: dict[str, Any], source: str | None = None) -> None:
    """Raise :class:`ValidationError` when ``frame`` does not match its layout (named in ``meta``)."""
    layout = meta.get("layout")
    if layout not in LAYOUTS:
        raise ValidationError(f"unknown or missing layout {layout!r} (expected one of {LAYOUTS})", source=source)
    if len(frame) == 0:
        raise ValidationError("the cleaned dataset is empty", source=source)
    scales = meta.get("scales") or {}
    attributes = list(meta.get("attributes") or [])
    if not attributes or set(attributes) != set(scales):
        raise ValidationError("the metadata must name the attributes and their scales", source=source)
    if layout == "attribute-responses":
        required = [*RESPONSE_COLUMNS, *(f"{a}_{s}" for a in attributes for s in RESPONSE_SUFFIXES)]
        _require(frame, required, source)
        _check_scores(frame, attributes, scales, source)
        return
    check_cleaned(frame, source=source)
    preference = list(meta.get("preference_attributes") or [])
    properties = list(meta.get("property_attributes") or [])
    _require(frame, [*(f"{p}_{a}" for a in preference for p in ("p_chosen", "weight", "n")),
                     *(f"{a}_{s}" for a in properties for s in ("mean", "sd", "n"))], source)
    for attribute in preference:
        for column in (f"p_chosen_{attribute}", f"weight_{attribute}"):
            _refuse_missing(frame, column, f"n_{attribute}", source)
    for column in (*(f"p_chosen_{a}" for a in preference), *(f"weight_{a}" for a in preference)):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < 0) | (values > 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("must be a probability in [0, 1]", source=source, column=column, row=row,
                                  value=frame[column].iloc[row])
    _check_scores(frame, properties, scales, source, suffixes=("mean",))


def write_attribute_cleaned(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    provenance: dict[str, Any] | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a cleaned multi-attribute dataset atomically; its layout and attributes come from
    ``frame.attrs["accord"]`` (set by the builders in :mod:`accord.aggregate.cleaned_attributes`), or from
    ``frame.attrs["provenance"]`` of a file :func:`read_attribute_cleaned` read (a file read, filtered and written
    again was refused for a missing layout).

    The frame is checked first: on any problem nothing is written.
    """
    meta = dict(frame.attrs.get("accord") or frame.attrs.get("provenance") or {})
    check_attribute_cleaned(frame, meta)
    return write_with_provenance(frame, path, {**meta, **(provenance or {})}, fmt)


def read_attribute_cleaned(path: str | os.PathLike, fmt: str | None = None) -> pd.DataFrame:
    """Read a cleaned multi-attribute dataset; its metadata is in ``frame.attrs["provenance"]``."""
    # the texts stay text; the ids keep their JSON type, as Parquet keeps the table's (7 stays a number, "007" text):
    # read as text, JSON Lines' response_id 7 became "7" while the pairs' chosen_id kept 7, and the files no longer
    # joined
    text_columns = ("prompt", "response", "chosen", "rejected")
    frame, meta = read_with_provenance(path, fmt, text_columns)
    check_attribute_cleaned(frame, meta, source=str(path))
    frame.attrs["provenance"] = meta
    return frame


def _require(frame: pd.DataFrame, columns: list[str], source: str | None) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ValidationError("missing required column of the cleaned multi-attribute dataset", source=source,
                                  column=column)


def _refuse_missing(frame: pd.DataFrame, column: str, count: str, source: str | None) -> None:
    """A missing value is its own error: plain tables mask a NaN label, and "must lie on the scale (value: nan)"
    did not say that these layouts mark an unrated attribute otherwise."""
    missing = frame[column].isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValidationError(f"missing (NaN): a cleaned multi-attribute dataset marks an attribute without a rating "
                              f"by {count} = 0 and an imputed value", source=source, column=column, row=row)


def _check_scores(frame: pd.DataFrame, attributes: list[str], scales: dict[str, Any], source: str | None,
                  suffixes: tuple[str, ...] = ("mean", "lower", "upper")) -> None:
    for attribute in attributes:
        low, high = scales[attribute]
        for suffix in (*suffixes, "sd"):
            _refuse_missing(frame, f"{attribute}_{suffix}", f"{attribute}_n", source)
        for suffix in suffixes:
            column = f"{attribute}_{suffix}"
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values) | (values < low - 1e-9) | (values > high + 1e-9)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValidationError(f"must lie on the attribute's scale {low}..{high}", source=source,
                                      column=column, row=row, value=frame[column].iloc[row])
        sd = pd.to_numeric(frame[f"{attribute}_sd"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(sd) | (sd < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("must be a finite standard deviation >= 0", source=source,
                                  column=f"{attribute}_sd", row=row, value=frame[f"{attribute}_sd"].iloc[row])
