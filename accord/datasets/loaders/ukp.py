"""UKPConvArg1 (Habernal & Gurevych, ACL 2016): which of two web arguments is more convincing?

Two variants of the corpus are read:

``variant="full"`` (``UKPConvArg1-full-XML/``, 32 XML files, one per debate side)
    Every Mechanical Turk assignment as one judgment: 16,927 argument pairs, 84,445 judgments by 3,815 workers,
    labels ``a1``/``a2``/``equal`` mapped to ``"A"``/``"B"``/``"tie"``. Each row also carries the worker's free-text
    ``reason``, their own stance on the topic (``annotator_stance``: ``same``/``opposite``/``none``, missing for
    about half the assignments, where the XML has no ``workerStance``), the MACE competence and rank the corpus
    computed per worker (``annotator_competence``, ``annotator_rank``), HIT and assignment ids, accept/submit times,
    and ``gold``: the corpus' own MACE-estimated label (``goldLabel``). ``goldLabel`` is absent for 846 pairs;
    the remaining 16,081 are the "16,081 pairs" the corpus readme counts, so ``gold`` is missing (NA) there.

``variant="strict"`` (``UKPConvArg1Strict-CSV/``, 32 tab-separated files)
    The 11,650 pairs the authors kept after transitivity cleaning, each with one gold label (``a1``/``a2``; no
    ties) and no individual judgments. It is used as a reward-model training/evaluation set, so it is returned in
    the shape every accord stage accepts: a judgments table with **one judgment per pair by the pseudo-annotator**
    ``"gold"`` whose ``label`` equals ``gold``. Aggregating it is a no-op (every soft label is one-hot), and a
    pairs table is one ``drop(columns=["annotator", "label"])`` away. The CSV encodes line breaks as ``<br/>``;
    they are turned back into newlines.

Columns common to both: ``pair_id`` (``"<arg1 id>_<arg2 id>"``), ``prompt`` (the debate title; the strict CSV has no
title, so it comes from the table of the 16 debates below), ``response_a``/``response_b`` (argument texts),
``response_a_id``/``response_b_id`` (argument ids: one argument appears in many pairs), ``item_debate`` (the debate
side, i.e. the file stem) and ``item_topic`` (the debate, i.e. the stem before ``_``).

Oddities of the published files, measured on the copy at ``UKPLab/acl2016-convincing-arguments@ca9d24e4``: no worker
judged the same pair twice (0 repeats among 84,445; the loader still enforces ``duplicates=``); 190 pairs have 4
assignments instead of 5; 15 pairs compare two arguments with different ids but identical text; the file stems of
one debate side differ between variants by a typo (``...advancing-the-comnong-good`` in the XML,
``...advancing-the-commond-good`` in the CSV), so ``item_debate`` differs there while ``item_topic`` and
``pair_id`` agree; 8 of the 11,650 strict labels disagree with the full corpus' ``goldLabel`` (and one strict pair
has no ``goldLabel`` in the full XML).
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.loaders.generic import find_source_folder, read_table, require_cells
from accord.datasets.schema import validate

FOLDER = "ukp-convarg1"
FULL_SUBFOLDER = "UKPConvArg1-full-XML"
STRICT_SUBFOLDER = "UKPConvArg1Strict-CSV"
VARIANTS: tuple[str, ...] = ("full", "strict")

_LABELS: dict[str, str] = {"a1": "A", "a2": "B", "equal": "tie"}

#: Debate titles (``debateMetaData/title`` in the XML) by topic slug (the file stem before ``_``).
DEBATE_TITLES: dict[str, str] = {
    "ban-plastic-water-bottles": "Ban Plastic Water Bottles",
    "christianity-or-atheism-": "Christianity or Atheism?",
    "evolution-vs-creation": "Evolution vs. Creation",
    "firefox-vs-internet-explorer": "Firefox vs. Internet Explorer",
    "gay-marriage-right-or-wrong": "Gay Marriage: Right or Wrong",
    "human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-":
        "Human Growth and Development: Should parents use spanking as an option to discipline?",
    "if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-":
        "If your spouse committed murder and he or she confided in you, would you turn them in?",
    "india-has-the-potential-to-lead-the-world-": "INDIA HAS THE POTENTIAL TO LEAD THE WORLD...",
    "is-it-better-to-have-a-lousy-father-or-to-be-fatherless-":
        "Is it better to have a lousy father or to be fatherless?",
    "is-porn-wrong-": "Is porn wrong?",
    "is-the-school-uniform-a-good-or-bad-idea-": "Is the school uniform a good or bad idea?",
    "personal-pursuit-or-advancing-the-common-good-":
        "Which type of endeavor is better, a personal pursuit or advancing the common good?",
    "pro-choice-vs-pro-life": "Pro-Choice vs. Pro-Life",
    "should-physical-education-be-mandatory-in-schools-": "Should physical education be mandatory in schools?",
    "tv-is-better-than-books": "TV is better than Books",
    "william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore":
        "William Farquhar ought to be honoured as the rightful founder of Singapore",
}

# Fields of one <mTurkAssignment>, in the order the parse stores them.
_ASSIGNMENT_FIELDS: tuple[str, ...] = (
    "turkID", "value", "reason", "workerStance", "turkCompetence", "turkRank", "hitID", "assignmentId",
    "assignmentAcceptTime", "assignmentSubmitTime", "hitComment",
)
_PAIR_FIELDS: tuple[str, ...] = (
    "id", "arg1/id", "arg1/text", "arg2/id", "arg2/text", "arg1/stance", "debateMetaData/title", "goldLabel",
)


def load_ukpconvarg1(
    path: str | os.PathLike | None = None,
    *,
    variant: Literal["full", "strict"] = "full",
    duplicates: str = "error",
) -> pd.DataFrame:
    """Load UKPConvArg1 as a validated preference judgments table.

    Parameters
    ----------
    path
        The corpus folder (holding ``UKPConvArg1-full-XML/`` and/or ``UKPConvArg1Strict-CSV/``), one of those
        sub-folders, or a single ``.xml`` (full) / ``.csv`` (strict) file. ``None`` looks for ``ukp-convarg1/`` in
        ``$ACCORD_DATA_DIR``, the repository's ``../shared/datasets`` and the download cache.
    variant
        ``"full"``: every worker's judgment (see the module docstring); ``"strict"``: the cleaned pairs, one
        judgment per pair by the pseudo-annotator ``"gold"``.
    duplicates
        Policy for one worker judging one pair twice (see :func:`~accord.datasets.schema.validate`); the published
        corpus has none.

    Raises
    ------
    AccordError
        No local copy, or a file that is not well-formed (one line naming the file).
    """
    if variant not in VARIANTS:
        raise AccordError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "full":
        files = _files(path, FULL_SUBFOLDER, ".xml")
        parts = [_parse_xml(f) for f in files]
    else:
        files = _files(path, STRICT_SUBFOLDER, ".csv")
        parts = [_read_strict_csv(f) for f in files]
    table = pd.concat(parts, ignore_index=True)
    source = str(files[0].parent if len(files) > 1 else files[0])
    try:
        return validate(table, form="preference", duplicates=duplicates, source=source)
    except ValidationError as error:
        if error.row is None or len(files) == 1:
            raise
        # named at a row of all files' rows together, under the folder: name the file and the row there (an
        # assignment's place in its XML file, a pair's line in its CSV file), as the parse's own errors do
        starts = np.cumsum([0, *(len(part) for part in parts)])
        k = int(np.searchsorted(starts, error.row, side="right")) - 1
        fields = _XML_FIELDS if variant == "full" else _CSV_FIELDS
        place = " (row: the <mTurkAssignment>'s place in the file)" if variant == "full" else ""
        raise ValidationError(error.problem + place, source=str(files[k]), column=fields.get(error.column,
                              error.column), row=int(error.row - starts[k]), value=error.value) from None


# The file's own name of a column of the table, for errors named in a file.
_XML_FIELDS: dict[str | None, str] = {"pair_id": "id", "annotator": "turkID", "label": "value", "gold": "goldLabel"}
_CSV_FIELDS: dict[str | None, str] = {"pair_id": "#id", "annotator": "#id"}  # (the annotator is "gold": a pair twice)


def _files(path: str | os.PathLike | None, subfolder: str, suffix: str) -> list[Path]:
    base = find_source_folder(FOLDER, "ukpconvarg1") if path is None else Path(path)
    if base.is_file():
        return [base]
    if (base / subfolder).is_dir():
        base = base / subfolder
    if not base.is_dir():
        raise AccordError(f"file {base}: no such file or folder (expected the UKPConvArg1 folder or {subfolder}/)")
    files = sorted(base.glob(f"*{suffix}"))
    if not files:
        raise AccordError(f"file {base}: no {suffix} files here (expected {subfolder}/ of UKPConvArg1)")
    return files


def _parse_xml(file: Path) -> pd.DataFrame:
    """One row per <mTurkAssignment> of one debate-side file, with its pair's fields repeated."""
    pair_rows: list[tuple[str | None, ...]] = []
    assignment_rows: list[tuple[str | None, ...]] = []
    assignment_pair: list[int] = []
    try:
        # iterparse + clear keeps memory flat and parses the 89 MB corpus in about a second.
        for _, element in ET.iterparse(file, events=("end",)):
            if element.tag != "annotatedArgumentPair":
                continue
            pair_index = len(pair_rows)
            pair_rows.append(tuple(element.findtext(field) for field in _PAIR_FIELDS))
            for assignment in element.iterfind("mTurkAssignments/mTurkAssignment"):
                assignment_rows.append(tuple(assignment.findtext(field) for field in _ASSIGNMENT_FIELDS))
                assignment_pair.append(pair_index)
            element.clear()
    except ET.ParseError as exc:
        raise ValidationError(f"not well-formed XML ({exc}); is the file truncated?", source=str(file)) from None
    if not assignment_rows:
        raise ValidationError("no <mTurkAssignment> found (is this a UKPConvArg1 XML file?)", source=str(file))

    pairs = pd.DataFrame(pair_rows, columns=list(_PAIR_FIELDS))
    assignments = pd.DataFrame(assignment_rows, columns=list(_ASSIGNMENT_FIELDS))
    # named here, at the pair's or assignment's place in its file (validation later sees all files as one table)
    require_cells(pairs, ("id", "arg1/id", "arg1/text", "arg2/id", "arg2/text"), str(file),
                  "missing or empty element of an <annotatedArgumentPair> (row: its place in the file)")
    require_cells(assignments, ("turkID", "value"), str(file),
                  "missing or empty element of an <mTurkAssignment> (row: its place in the file)")
    joined = pairs.iloc[assignment_pair].reset_index(drop=True)
    debate = file.stem
    topic = debate.split("_", 1)[0]

    label = assignments["value"].map(_LABELS)
    _check_mapped(label, assignments["value"], file, "value")
    gold = joined["goldLabel"].map(_LABELS)
    _check_mapped(gold, joined["goldLabel"], file, "goldLabel")
    return pd.DataFrame(
        {
            "pair_id": joined["id"],
            "annotator": assignments["turkID"],
            "label": label,
            "gold": gold,
            "prompt": joined["debateMetaData/title"],
            "response_a": joined["arg1/text"],
            "response_b": joined["arg2/text"],
            "response_a_id": joined["arg1/id"],
            "response_b_id": joined["arg2/id"],
            "item_debate": debate,
            "item_topic": topic,
            "item_stance": joined["arg1/stance"],
            "reason": assignments["reason"],
            "annotator_stance": assignments["workerStance"],
            "annotator_competence": pd.to_numeric(assignments["turkCompetence"], errors="coerce"),
            "annotator_rank": pd.to_numeric(assignments["turkRank"], errors="coerce").astype("Int64"),
            "hit_id": assignments["hitID"],
            "assignment_id": assignments["assignmentId"],
            "accept_time": _times(assignments["assignmentAcceptTime"]),
            "submit_time": _times(assignments["assignmentSubmitTime"]),
            "comment": assignments["hitComment"],
        }
    )


def _times(values: pd.Series) -> pd.Series:
    # The corpus writes "2016-02-22 21:40:51.0 UTC"; the suffix is dropped and the times kept as UTC.
    return pd.to_datetime(values.str.removesuffix(" UTC"), format="%Y-%m-%d %H:%M:%S.%f", errors="coerce", utc=True)


def _check_mapped(mapped: pd.Series, raw: pd.Series, file: Path, column: str) -> None:
    bad = mapped.isna() & raw.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ValidationError(f"label is not one of {sorted(_LABELS)}", source=str(file), column=column, row=row,
                              value=raw.iloc[row])


def _read_strict_csv(file: Path) -> pd.DataFrame:
    # QUOTE_NONE: argument texts contain quote characters that are not CSV quoting.
    raw = read_table(file, fmt="tsv", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)
    expected = ["#id", "label", "a1", "a2"]
    if list(raw.columns) != expected:
        raise ValidationError(f"expected the columns {expected} of UKPConvArg1Strict-CSV, found {list(raw.columns)}",
                              source=str(file))
    if len(raw) == 0:
        raise ValidationError("no pairs (only the header line)", source=str(file))
    require_cells(raw, expected, str(file))
    label = raw["label"].map(_LABELS)
    _check_mapped(label, raw["label"], file, "label")
    ids = raw["#id"].str.split("_", n=1, expand=True).reindex(columns=[0, 1])
    unsplit = ids[1].isna() | ids[0].eq("") | ids[1].eq("")
    if unsplit.any():
        row = int(unsplit.to_numpy().nonzero()[0][0])
        raise ValidationError("pair id must be '<first argument id>_<second argument id>'", source=str(file),
                              column="#id", row=row, value=raw["#id"].iloc[row])
    debate = file.stem
    topic = debate.split("_", 1)[0]
    title = DEBATE_TITLES.get(topic) or topic.replace("-", " ").strip().capitalize()
    return pd.DataFrame(
        {
            "pair_id": raw["#id"],
            "annotator": "gold",
            "label": label,
            "gold": label,
            "prompt": title,
            "response_a": raw["a1"].str.replace("<br/>", "\n", regex=False),
            "response_b": raw["a2"].str.replace("<br/>", "\n", regex=False),
            "response_a_id": ids[0],
            "response_b_id": ids[1],
            "item_debate": debate,
            "item_topic": topic,
        }
    )
