"""Snow et al. (EMNLP 2008) Mechanical Turk labels with expert gold: RTE, TEMP and WSD.

The files are the standardized copies in ``edwinrobots/bayesian_combination_tutorial2`` (``all_collected_data/``):
tab-separated with the columns ``!amt_annotation_ids`` (the HIT id: shared by the judgments of one HIT),
``!amt_worker_ids``, ``orig_id`` (the item), ``response`` and ``gold`` (the expert label, repeated on every row of
an item).

=====  ======  =======  ========  ==============================================================
name   items   workers  labels    classes
=====  ======  =======  ========  ==============================================================
rte    800     164      8,000     0/1 (does the text entail the hypothesis?)
temp   462     76       4,620     1/2 (temporal order of two events)
wsd    177     34       1,770     1/2/3 (sense of "president")
=====  ======  =======  ========  ==============================================================

The tables are categorical (crowd-kit's convention; labels kept as the integers of the files) with ``gold``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.loaders.generic import find_source_folder, read_table, require_columns
from accord.datasets.schema import validate

FOLDER = "snow2008"
#: Set name -> (file name, the classes its labels use).
SETS: dict[str, tuple[str, tuple[int, ...]]] = {
    "rte": ("rte.standardized.tsv", (0, 1)),
    "temp": ("temp.standardized.tsv", (1, 2)),
    "wsd": ("wsd.standardized.tsv", (1, 2, 3)),
}
_COLUMNS: dict[str, str] = {
    "orig_id": "pair_id",
    "!amt_worker_ids": "annotator",
    "response": "label",
    "gold": "gold",
    "!amt_annotation_ids": "hit_id",
}


def load_snow2008(name: str, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load one of the Snow et al. 2008 sets as a validated categorical judgments table with ``gold``.

    Parameters
    ----------
    name
        ``"rte"``, ``"temp"`` or ``"wsd"``.
    path
        The folder holding ``<name>.standardized.tsv``, or that file itself. ``None`` looks for ``snow2008/`` in
        ``$ACCORD_DATA_DIR``, the repository's ``../shared/datasets`` and the download cache.

    Raises
    ------
    AccordError
        Unknown name, no local copy, or a file that breaks the format (one line naming file, column, row).
    """
    key = str(name).lower()
    if key not in SETS:
        raise AccordError(f"unknown Snow 2008 set {name!r}: use one of {sorted(SETS)}")
    file_name, classes = SETS[key]
    base = find_source_folder(FOLDER, f"snow2008-{key}") if path is None else Path(path)
    file = base if base.is_file() else base / file_name
    source = str(file)
    # another set's published file: TEMP's classes 1/2 fit WSD's, so load_snow2008("wsd", ".../temp.standardized.tsv")
    # returned TEMP's labels as WSD without a word (a file of any other name is read as the set asked for)
    other = next((k for k, (f, _) in SETS.items() if f == file.name.lower()), key)
    if other != key:
        raise AccordError(f"file {file}: this is the Snow 2008 set '{other}', not '{key}' (name the snow2008 folder, "
                          f"or the file {file_name})")
    raw = read_table(file, fmt="tsv", dtype={"orig_id": str, "!amt_worker_ids": str, "!amt_annotation_ids": str})
    require_columns(raw, _COLUMNS, source, "Snow 2008 standardized TSV")
    table = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    for column in ("label", "gold"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValidationError("label is not an integer class", source=source, column=column, row=row,
                                  value=table[column].iloc[row])
        table[column] = values.astype("int64")
    # gold is the item's expert label, repeated on each of its rows: rows that disagree leave no one gold
    differs = table["gold"] != table.groupby("pair_id", sort=False)["gold"].transform("first")
    if differs.any():
        row = int(np.flatnonzero(differs.to_numpy())[0])
        raise ValidationError("item has two gold labels", source=source, column="gold", row=row,
                              value=(table["pair_id"].iloc[row], table["gold"].iloc[row]))
    return validate(table, form="categorical", classes=list(classes), source=source)
