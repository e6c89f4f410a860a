"""PandaLM human test set (WeOpenML/PandaLM, ``data/``): 999 pairs of LLM responses, three human raters each.

``testset-v1.json`` holds, per item ``idx``, an instruction (and optional input), two responses from two of five 7B
models (``cmp_key`` names them, ``"bloom-7b_llama-7b"``), and the verdicts of the same three human annotators
(``annotator1..3``: ``0`` tie, ``1`` response 1 better, ``2`` response 2 better). Two AI judges rated the same
items: ``gpt-3.5-turbo-testset-v1.json`` (``gpt_result``: the strings ``"1"``, ``"2"``, ``"Tie"`` and, for 25
items, ``"garbage"``: an unparseable verdict) and ``pandalm-7b-testset-v1.json`` (``pandalm_result``: 0/1/2).

The loader returns one judgment per (item, rater): 2,997 human judgments, plus 999 by ``pandalm-7b`` and 974 by
``gpt-3.5-turbo`` (its 25 ``"garbage"`` verdicts are not judgments and are dropped, with one warning counting them)
when AI judges are included.
``annotator_is_ai`` and ``annotator_kind`` (``"human"``/``"ai"``) tell them apart; the judges' explanations are in
``reason``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.loaders.generic import find_source_folder, read_table, require_columns
from accord.datasets.schema import check_ids, validate

FOLDER = "pandalm"
HUMAN_FILE = "testset-v1.json"
HUMAN_ANNOTATORS: tuple[str, ...] = ("annotator1", "annotator2", "annotator3")
#: AI judge name -> (file, verdict column, explanation column).
AI_JUDGES: dict[str, tuple[str, str, str]] = {
    "gpt-3.5-turbo": ("gpt-3.5-turbo-testset-v1.json", "gpt_result", "gpt_reason"),
    "pandalm-7b": ("pandalm-7b-testset-v1.json", "pandalm_result", "pandalm_reason"),
}
# Verdicts as text (the GPT file stores strings, the others integers): 0/"Tie" tie, 1 response 1, 2 response 2.
_VERDICTS: dict[str, str] = {"0": "tie", "1": "A", "2": "B", "tie": "tie"}
# Verdicts the GPT judge could not give; they are dropped rather than treated as errors.
_NON_VERDICTS: frozenset[str] = frozenset({"garbage"})


def load_pandalm(path: str | os.PathLike | None = None, *, include_ai_judges: bool = True) -> pd.DataFrame:
    """Load the PandaLM human test set as a validated preference judgments table.

    Parameters
    ----------
    path
        The folder holding ``testset-v1.json`` (and the two AI-judge files), or one of those files (its folder is
        read). ``None`` looks for ``pandalm/`` in
        ``$ACCORD_DATA_DIR``, the repository's ``../shared/datasets`` and the download cache.
    include_ai_judges
        Add the verdicts of ``gpt-3.5-turbo`` and ``pandalm-7b`` as two more annotators (``annotator_is_ai``).

    Returns
    -------
    pandas.DataFrame
        ``pair_id`` (the source ``idx``), ``annotator``, ``label`` (A/B/tie), ``prompt`` (instruction, then the
        input after a blank line when there is one), ``response_a``/``response_b``, ``annotator_is_ai``,
        ``annotator_kind``, ``item_motivation_app``, ``item_model_a``/``item_model_b`` and ``reason`` (AI only).
    """
    folder = find_source_folder(FOLDER, "pandalm") if path is None else Path(path)
    if folder.is_file() and folder.name in (HUMAN_FILE, *(f for f, _, _ in AI_JUDGES.values())):
        # one of the set's files: its folder (the files were looked for inside the file, '.../testset-v1.json/...')
        folder = folder.parent
    elif folder.is_file():
        raise AccordError(f"file {folder}: is a file, not the PandaLM folder (name the folder that holds {HUMAN_FILE} "
                          "and the AI-judge files)")
    items = _read_json(folder / HUMAN_FILE)
    source = str(folder / HUMAN_FILE)
    require_columns(items, ("idx", "instruction", "input", "response1", "response2", *HUMAN_ANNOTATORS),
                    source, "PandaLM test set")
    _check_unique_items(items, source)
    _check_texts(items, source)

    # Each judgment keeps its file and row there, so that a bad verdict is named where it is.
    humans = items.assign(_row=np.arange(len(items))).melt(
        id_vars=["idx", "_row"], value_vars=list(HUMAN_ANNOTATORS), var_name="annotator", value_name="raw")
    humans["_source"] = source
    humans["annotator_is_ai"] = False
    humans["reason"] = pd.NA
    parts = [humans]
    if include_ai_judges:
        for judge, (file_name, verdict, reason) in AI_JUDGES.items():
            judged = _read_json(folder / file_name)
            require_columns(judged, ("idx", verdict), str(folder / file_name), f"PandaLM {judge} file")
            _check_unique_items(judged, str(folder / file_name))
            part = judged[["idx", verdict]].rename(columns={verdict: "raw"})
            part["_row"] = np.arange(len(judged))
            part["_source"] = str(folder / file_name)
            part["reason"] = judged[reason] if reason in judged.columns else pd.NA
            part["annotator"] = judge
            part["annotator_is_ai"] = True
            unknown = ~part["idx"].isin(items["idx"])
            if unknown.any():
                row = int(np.flatnonzero(unknown.to_numpy())[0])
                raise ValidationError("item not in the human test set", source=str(folder / file_name),
                                      column="idx", row=row, value=part["idx"].iloc[row])
            parts.append(part)
    judgments = pd.concat(parts, ignore_index=True)

    verdict_text = judgments["raw"].map(_verdict_text)
    keep = ~verdict_text.isin(_NON_VERDICTS)
    # one warning per file counting them, as the other loaders say what they leave out (4,970 of 4,995 judgments
    # were returned without a word)
    for (file, judge), group in judgments.groupby(["_source", "annotator"], sort=False):
        dropped = int((~keep[group.index]).sum())
        if dropped:
            warnings.warn(f"{file}: dropped {dropped} of {len(group)} verdicts of {judge} that are no judgment "
                          f"({', '.join(repr(v) for v in sorted(_NON_VERDICTS))})", stacklevel=2)
    judgments, verdict_text = judgments[keep], verdict_text[keep]
    judgments["label"] = verdict_text.map(_VERDICTS)
    bad = judgments["label"].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        first = judgments.iloc[row]
        column = first["annotator"] if not first["annotator_is_ai"] else AI_JUDGES[first["annotator"]][1]
        raise ValidationError("verdict is not 0/1/2 or Tie", source=first["_source"], column=column,
                              row=int(first["_row"]), value=first["raw"])

    has_input = items["input"].fillna("").astype(str).str.strip() != ""
    prompt = items["instruction"].astype(str).where(~has_input, items["instruction"] + "\n\n" + items["input"])
    models = items["cmp_key"].str.split("_", n=1, expand=True).reindex(columns=[0, 1]) if "cmp_key" in items \
        else pd.DataFrame({0: pd.NA, 1: pd.NA}, index=items.index)
    item_columns = pd.DataFrame(
        {
            "idx": items["idx"],
            "prompt": prompt,
            "response_a": items["response1"],
            "response_b": items["response2"],
            "item_motivation_app": items.get("motivation_app"),
            "item_model_a": models[0],
            "item_model_b": models[1],
        }
    )
    table = judgments.merge(item_columns, on="idx", how="left", validate="many_to_one")
    table = table.rename(columns={"idx": "pair_id"})
    table["annotator_kind"] = np.where(table["annotator_is_ai"], "ai", "human")
    ordered = ["pair_id", "annotator", "label", "prompt", "response_a", "response_b", "annotator_is_ai",
               "annotator_kind", "item_motivation_app", "item_model_a", "item_model_b", "reason"]
    table = table.sort_values(["pair_id", "annotator_is_ai"], kind="stable", ignore_index=True)
    try:
        return validate(table[ordered], form="preference", source=str(folder))
    except ValidationError as error:
        if error.row is None:
            raise
        raise _in_its_file(error, table, items, source) from None


# The human file's field of each item column of the table (an error in one names the item's row there).
_ITEM_FIELDS: dict[str, str] = {"pair_id": "idx", "prompt": "instruction", "response_a": "response1",
                                "response_b": "response2", "item_motivation_app": "motivation_app",
                                "item_model_a": "cmp_key", "item_model_b": "cmp_key"}


def _in_its_file(error: ValidationError, table: pd.DataFrame, items: pd.DataFrame, human: str) -> ValidationError:
    """``error``, named at a row of the table built here (its judgments sorted by item, under the folder), named
    instead at the file, field and row it comes from: an item's field at the item's row of the human file, anything
    else at the judgment's own file and row."""
    judgment = table.iloc[error.row]
    if error.column in _ITEM_FIELDS:
        row = int(np.flatnonzero((items["idx"] == judgment["pair_id"]).to_numpy())[0])
        return ValidationError(error.problem, source=human, column=_ITEM_FIELDS[error.column], row=row,
                               value=error.value)
    column = error.column
    if error.column == "label":  # a verdict is its rater's column, or the AI judge's verdict field
        column = AI_JUDGES[judgment["annotator"]][1] if judgment["annotator_is_ai"] else judgment["annotator"]
    return ValidationError(error.problem, source=judgment["_source"], column=column, row=int(judgment["_row"]),
                           value=error.value)


def _verdict_text(raw: object) -> str:
    """A verdict as text: 2, 2.0 (a JSON column with a gap is read as floats) and "2" are all "2"; a missing verdict
    is "", which no verdict matches, so the error names its own row rather than the first float of the column."""
    if raw is None or raw is pd.NA or isinstance(raw, float) and np.isnan(raw):
        return ""
    if isinstance(raw, (float, np.floating)) and float(raw).is_integer():
        raw = int(raw)
    if isinstance(raw, (bool, np.bool_)):
        return str(raw).lower()  # never 0/1: true/false is not a verdict
    return str(raw).strip().lower()


def _check_texts(items: pd.DataFrame, source: str) -> None:
    """The instruction and both responses are present single values, and the input is one or empty: a null
    instruction would become the prompt "None", a list in a JSON field would reach string concatenation. (The file
    itself stores a few one-word responses as JSON booleans, ``true``; those are kept as they are.)"""
    for column, required in (("instruction", True), ("response1", True), ("response2", True), ("input", False)):
        values = items[column]
        nested = values.map(lambda v: isinstance(v, (list, dict, tuple, set, np.ndarray))).to_numpy(dtype=bool)
        missing = values.isna().to_numpy(dtype=bool) & ~nested if required else np.zeros(len(values), dtype=bool)
        bad = nested | missing
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            problem = "missing text" if missing[row] else "must be a text, not a list or object"
            raise ValidationError(problem, source=source, column=column, row=row, value=values.iloc[row])


def _check_unique_items(frame: pd.DataFrame, source: str) -> None:
    """One error naming the file and row of the first item (``idx``) that is missing, of another kind than the others
    (the text "3" among numbers would match no judge's 3), or repeated."""
    check_ids(frame["idx"], "idx", source)
    repeated = frame["idx"].duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ValidationError("repeated item", source=source, column="idx", row=row, value=frame["idx"].iloc[row])


def _read_json(file: Path) -> pd.DataFrame:
    if not file.exists():
        raise AccordError(f"file {file}: not found (the PandaLM folder must hold {HUMAN_FILE} and the AI-judge files)")
    return read_table(file, fmt="json", dtype=False)
