"""Four sets of the truth-inference benchmark of Zheng et al. (VLDB 2017).

From ``crowd_truth_inference/datasets.zip`` of ``zhydhkcws/zhydhkcws.github.io``; each set is a folder with
``answer.csv`` (question, worker, answer) and ``truth.csv`` (question, truth). The header names differ between sets
(``d_sentiment`` calls the question ``id`` in one file and ``q`` in the other), so columns are taken by position.

================================  =======  =======  ========  ===========================================
folder (short alias)              items    workers  answers   task
================================  =======  =======  ========  ===========================================
``d_jn-product`` (product)        8,315    176      24,945    are two product records the same product?
``d_sentiment`` (sentiment)       1,000    85       20,000    is a tweet's sentiment positive?
``d_Duck Identification`` (duck)  108      39       4,212     is there a duck in the picture (Bluebirds)?
``s4_Dog data`` (dog)             807      109      8,070     which of four dog breeds (classes 0-3)?
================================  =======  =======  ========  ===========================================

The first three sets' answers are binary (0/1), Dog's are 0-3; every item has a truth. A copy whose ``truth.csv``
has gaps still loads: the items without a truth get an empty ``gold``, with one warning counting them (evaluation
against gold then covers fewer items); truths of items that no answer names are left out, with one warning counting
them. ``d_jn-product`` also ships
``Copy of answer.csv`` (the same 24,945 rows plus 16 more: a stray editing copy); it is ignored. ``d_sentiment`` also
ships a qualification test (``quali.csv``/``quali_truth.csv``), not loaded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.loaders.generic import find_source_folder, read_table
from accord.datasets.schema import validate

FOLDER = "vldb17"
SETS: tuple[str, ...] = ("d_jn-product", "d_sentiment", "d_Duck Identification", "s4_Dog data")
ALIASES: dict[str, str] = {
    "product": "d_jn-product",
    "d_product": "d_jn-product",
    "jn-product": "d_jn-product",
    "sentiment": "d_sentiment",
    "possent": "d_sentiment",
    "d_possent": "d_sentiment",
    "duck": "d_Duck Identification",
    "duck identification": "d_Duck Identification",
    "bluebirds": "d_Duck Identification",
    "dog": "s4_Dog data",
}
CLASSES: tuple[int, ...] = (0, 1)
#: sets whose answers are not binary
SET_CLASSES: dict[str, tuple[int, ...]] = {"s4_Dog data": (0, 1, 2, 3)}


def resolve_name(name: str) -> str:
    """The folder name of a set given its folder name (any case) or a short alias."""
    by_lower = {s.lower(): s for s in SETS}
    key = str(name).strip().lower()
    if key in by_lower:
        return by_lower[key]
    if key in ALIASES:
        return ALIASES[key]
    raise AccordError(f"unknown VLDB 2017 set {name!r}: use one of {list(SETS)} or {sorted(set(ALIASES))}")


def load_vldb17(name: str, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load one VLDB 2017 benchmark set as a validated categorical judgments table with ``gold``.

    Parameters
    ----------
    name
        ``"d_jn-product"``, ``"d_sentiment"``, ``"d_Duck Identification"``, ``"s4_Dog data"`` or the aliases
        ``"product"``, ``"sentiment"``, ``"duck"``, ``"dog"``.
    path
        The ``vldb17`` folder (holding one sub-folder per set), the set's own folder, or its ``answer.csv`` or
        ``truth.csv`` (the folder is read). ``None`` looks for
        ``vldb17/`` in ``$ACCORD_DATA_DIR``, the repository's ``../shared/datasets`` and the download cache.
    """
    folder_name = resolve_name(name)
    short = {v: k for k, v in ALIASES.items() if k in ("product", "sentiment", "duck", "dog")}[folder_name]
    classes = SET_CLASSES.get(folder_name, CLASSES)
    base = find_source_folder(FOLDER, f"vldb17-{short}") if path is None else Path(path)
    if base.is_file() and base.name in ("answer.csv", "truth.csv"):
        base = base.parent  # one of the set's files: its folder (they were looked for inside it, '.../answer.csv/...')
    elif base.is_file():
        raise AccordError(f"file {base}: is a file, not a VLDB 2017 folder (name the vldb17 folder or the set's own, "
                          "which holds answer.csv and truth.csv)")
    folder = base / folder_name if (base / folder_name).is_dir() else base
    _refuse_another_set(folder, folder_name)
    answers = _read_pairs(folder / "answer.csv", 3, ("pair_id", "annotator", "label"), classes)
    truth = _read_pairs(folder / "truth.csv", 2, ("pair_id", "gold"), classes)
    source = str(folder / "answer.csv")

    repeated = truth["pair_id"].duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise ValidationError("item has two truths", source=str(folder / "truth.csv"), column="question", row=row,
                              value=truth["pair_id"].iloc[row])
    table = answers.merge(truth, on="pair_id", how="left", validate="many_to_one")
    _warn_about_gaps(answers["pair_id"], truth["pair_id"], folder)
    return validate(table, form="categorical", classes=list(classes), source=source)


def _refuse_another_set(folder: Path, folder_name: str) -> None:
    """Refuse the folder of another published set: every set has the same two files, and the binary sets' classes
    fit Dog's, so ``load_vldb17("duck", ".../d_sentiment")`` returned the sentiment answers as Duck, without a word.
    A folder of any other name (a copy of one set, renamed) is read as the set asked for."""
    other = {s.lower(): s for s in SETS}.get(folder.name.strip().lower())
    if other is not None and other != folder_name:
        raise AccordError(f"file {folder}: this is the VLDB 2017 set '{other}', not '{folder_name}' (name the vldb17 "
                          f"folder, or the folder of the set asked for)")


def _warn_about_gaps(answered: pd.Series, known: pd.Series, folder: Path) -> None:
    """One warning each for items answered but without a truth, and truths of items nobody answered: both pass a
    left join silently, and either shrinks what an accuracy against gold measures."""
    items = pd.unique(answered)
    without = int((~pd.Index(items).isin(known)).sum())
    if without:
        warnings.warn(f"{folder / 'truth.csv'}: {without} of {len(items)} answered items have no truth; their gold is "
                      "left empty (accuracy against gold covers the others only)", stacklevel=3)
    unanswered = int((~known.isin(items)).sum())
    if unanswered:
        warnings.warn(f"{folder / 'truth.csv'}: {unanswered} truths name items that no row of answer.csv answers; "
                      "they are left out", stacklevel=3)


def _read_pairs(file: Path, width: int, names: tuple[str, ...], classes: tuple[int, ...]) -> pd.DataFrame:
    if not file.exists():
        raise AccordError(f"file {file}: not found (a VLDB 2017 set folder holds answer.csv and truth.csv)")
    raw = read_table(file, fmt="csv", dtype=str, keep_default_na=False)
    if raw.shape[1] != width:
        raise ValidationError(f"expected {width} columns, found {raw.shape[1]}", source=str(file))
    table = raw.set_axis(list(names), axis=1)
    label_column = names[-1]
    values = pd.to_numeric(table[label_column], errors="coerce")
    bad = ~values.isin(classes)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(f"label outside the classes {list(classes)}", source=str(file),
                              column=str(raw.columns[-1]), row=row, value=table[label_column].iloc[row])
    table[label_column] = values.astype("int64")
    return table
