"""The cleaned multi-attribute dataset: per-response attribute scores and per-pair, per-attribute soft labels.

Two layouts, each one file (Parquet, or JSON Lines with a ``.meta.json`` sidecar, as for
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
(below 0.5 where the chosen response is worse on ``a``). ``p_tie`` is 0 and ``uncertainty`` NaN (the soft labels
are posterior probabilities, not uncertain frequencies; ``weight_<a>`` carries the uncertainty).

Metadata (Parquet schema key ``accord``, or the sidecar): ``layout``, ``attributes``, ``scales``, ``interval``,
``method``, for pairs ``chosen_by``, ``preference_attributes`` and ``property_attributes``, plus the provenance of
:func:`~accord.datasets.cleaned.write_cleaned` (package, version, time, and whatever the caller adds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from accord.datasets.cleaned import METADATA_KEY, _provenance, check_cleaned, infer_format
from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.io import atomic_path

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
    ``frame.attrs["accord"]`` (set by the builders in :mod:`accord.aggregate.cleaned_attributes`).

    The frame is checked first: on any problem nothing is written.
    """
    meta = dict(frame.attrs.get("accord") or {})
    check_attribute_cleaned(frame, meta)
    fmt = infer_format(path, fmt)
    target = Path(path)
    meta = _provenance({**meta, **(provenance or {})})
    frame = frame.reset_index(drop=True)
    frame.attrs = {}
    if fmt == "parquet":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        metadata = dict(table.schema.metadata or {})
        metadata[METADATA_KEY] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(metadata)
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp)
    else:
        sidecar = Path(str(target) + ".meta.json")
        with atomic_path(target) as tmp, atomic_path(sidecar) as tmp_meta:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
            tmp_meta.write_text(json.dumps(meta, indent=2))
    return target


def read_attribute_cleaned(path: str | os.PathLike, fmt: str | None = None) -> pd.DataFrame:
    """Read a cleaned multi-attribute dataset; its metadata is in ``frame.attrs["provenance"]``."""
    target = Path(path)
    if not target.exists():
        raise AccordError(f"file {target}: not found")
    fmt = infer_format(target, fmt)
    try:
        if fmt == "parquet":
            table = pq.read_table(target)
            raw = (table.schema.metadata or {}).get(METADATA_KEY)
            meta = json.loads(raw) if raw else {}
            frame = table.to_pandas()
        else:
            text_columns = {c: str for c in ("pair_id", "response_id", "prompt", "response", "chosen", "rejected")}
            frame = pd.read_json(target, lines=True, dtype=text_columns)
            sidecar = Path(str(target) + ".meta.json")
            meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    except (OSError, ValueError, pa.ArrowException) as err:
        raise AccordError(f"file {target}: cannot read as {fmt}: {str(err).splitlines()[0]}") from err
    check_attribute_cleaned(frame, meta, source=str(target))
    frame.attrs["provenance"] = meta
    return frame


def _require(frame: pd.DataFrame, columns: list[str], source: str | None) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ValidationError("missing required column of the cleaned multi-attribute dataset", source=source,
                                  column=column)


def _check_scores(frame: pd.DataFrame, attributes: list[str], scales: dict[str, Any], source: str | None,
                  suffixes: tuple[str, ...] = ("mean", "lower", "upper")) -> None:
    for attribute in attributes:
        low, high = scales[attribute]
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
