"""The step-judgments table: one row per label a rater gave to one step of one solution.

Columns
-------
Required:

``solution_id``
    The solution (a chain of steps answering one prompt).
``step``
    The step's position in its solution: the steps of a solution are numbered ``0..T-1`` (every number present
    in at least one row; a rater may label only a prefix, as PRM800K's labelers stop at the first error).
``annotator``
    Who gave the label (a human rater, an AI judge or an automatic labeller).
``label``
    One of two declared *label sets*, fixed for the whole table:

    - ``"ternary"``: ``-1`` (the step is wrong), ``0`` (neutral: not wrong, no progress), ``+1`` (correct and
      useful), as in PRM800K;
    - ``"binary"``: ``0`` (wrong) or ``1`` (correct), as in Math-Shepherd.

    Either way exactly one value says "this step is wrong" (the *error label*: ``-1`` or ``0``).

Optional: ``prompt`` (the problem; one per solution), ``step_text`` (one per solution and step), ``problem_id``
(solutions to one problem, e.g. best-of-n candidates) and any further columns, which are kept as they are.

:func:`validate_steps` checks a table and returns a clean copy whose ``attrs["accord_steps"]`` records the label
set; :func:`encode_steps` turns it into integer codes for the step-level rater models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from accord.datasets.cleaned import check_messages
from accord.datasets.errors import ValidationError
from accord.datasets.schema import (_SCALAR_KINDS, CROWDKIT_COLUMNS, INT64_LIMIT, Checked, _check_hashable,
                                    check_flat_columns, check_ids, checked_info, codes_comparable, decode_dictionaries,
                                    object_kind, plain_values, rows_of_input)

STEP_COLUMNS: tuple[str, ...] = ("solution_id", "step", "annotator", "label")
#: label set name -> its values, in code order
STEP_LABEL_SETS: dict[str, tuple[int, ...]] = {"ternary": (-1, 0, 1), "binary": (0, 1)}
#: the value of each label set that says "this step is wrong"
ERROR_LABEL: dict[str, int] = {"ternary": -1, "binary": 0}
DUPLICATE_POLICIES: tuple[str, ...] = ("error", "first", "last", "keep")
ATTRS_KEY = "accord_steps"

LabelSet = Literal["ternary", "binary"]


@dataclass(frozen=True)
class EncodedSteps:
    """Integer codes of a validated step-judgments table, the input of the step-level rater models.

    Judgment ``j`` is the label ``label_values[labels[j]]`` that annotator ``worker_index[workers[j]]`` gave to step
    ``steps[j]`` of solution ``solution_index[solutions[j]]``. ``n_steps[i]`` is the number of steps ``T_i`` of
    solution ``i``; ``error_code`` is the code of the label that says "wrong".
    """

    solutions: np.ndarray
    steps: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    n_steps: np.ndarray
    solution_index: pd.Index
    worker_index: pd.Index
    label_set: str

    @property
    def label_values(self) -> tuple[int, ...]:
        return STEP_LABEL_SETS[self.label_set]

    @property
    def error_code(self) -> int:
        return self.label_values.index(ERROR_LABEL[self.label_set])

    @property
    def n_solutions(self) -> int:
        return len(self.solution_index)

    @property
    def n_workers(self) -> int:
        return len(self.worker_index)

    @property
    def n_labels(self) -> int:
        return len(self.label_values)

    @property
    def n_judgments(self) -> int:
        return len(self.labels)

    @property
    def flags(self) -> np.ndarray:
        """Whether each judgment says "this step is wrong"."""
        return self.labels == self.error_code

    @property
    def step_offsets(self) -> np.ndarray:
        """Start of each solution in the flat list of all steps (solution ``i``'s steps are
        ``step_offsets[i] .. step_offsets[i] + n_steps[i] - 1``)."""
        return np.concatenate([[0], np.cumsum(self.n_steps)[:-1]]).astype(np.int64)

    @property
    def step_cells(self) -> np.ndarray:
        """Each judgment's index in the flat list of all steps."""
        return self.step_offsets[self.solutions] + self.steps

    def step_index(self) -> pd.MultiIndex:
        """``(solution_id, step)`` of every step in the flat order of :attr:`step_cells`."""
        solution = np.repeat(np.arange(self.n_solutions), self.n_steps)
        step = np.arange(len(solution)) - np.repeat(self.step_offsets, self.n_steps)
        return pd.MultiIndex.from_arrays([self.solution_index[solution], step], names=["solution_id", "step"])


def validate_steps(
    judgments: pd.DataFrame,
    *,
    labels: LabelSet | None = None,
    duplicates: str = "error",
    source: str | None = None,
) -> pd.DataFrame:
    """Check a step-judgments table and return a validated copy (never modifies the input).

    Parameters
    ----------
    judgments
        One row per label: ``solution_id``, ``step``, ``annotator``, ``label`` and optional columns. crowd-kit's
        ``worker`` is accepted for ``annotator``.
    labels
        The declared label set, ``"ternary"`` (-1/0/+1) or ``"binary"`` (0/1). Inferred when omitted: ternary when
        some label is -1, else binary (so a table of 0/1 labels reads 0 as "wrong": declare ``"ternary"`` for
        PRM800K-style data that happens to hold no -1).
    duplicates
        What to do when one annotator labelled one step of one solution more than once: ``"error"`` (default),
        keep the ``"first"`` or ``"last"`` label, or ``"keep"`` them all.
    source
        Where the table came from (a file name), used in error messages.

    Raises
    ------
    ValidationError
        One line naming the file, column, row and value: a missing column or id, a step that is not a
        non-negative integer, the steps of a solution not numbered ``0..T-1``, a label outside the declared set,
        two texts for one step (or two prompts or problem ids for one solution), a repeated label.
    """
    if not isinstance(judgments, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(judgments).__name__}", source=source)
    if labels is not None and labels not in STEP_LABEL_SETS:
        raise ValidationError(f"labels must be one of {tuple(STEP_LABEL_SETS)}", source=source, value=labels)
    if duplicates not in DUPLICATE_POLICIES:
        raise ValidationError(f"duplicates must be one of {DUPLICATE_POLICIES}", source=source, value=duplicates)
    repeated = judgments.columns[judgments.columns.duplicated()]
    if len(repeated):
        raise ValidationError("the column appears more than once", source=source, column=repeated[0])
    check_flat_columns(judgments, source)
    # crowd-kit's name of the rater, accepted as validate and validate_attributes accept it (crowd-kit has no name
    # for a solution or a step: its ``task`` would not say which of the two it means)
    worker = next(crowdkit for crowdkit, ours in CROWDKIT_COLUMNS.items() if ours == "annotator")
    if worker in judgments.columns:
        if "annotator" in judgments.columns:
            raise ValidationError(f"both crowd-kit's '{worker}' and accord's 'annotator' columns are present",
                                  source=source, column=worker)
        judgments = judgments.rename(columns={worker: "annotator"})  # a renamed copy: the input is left as it is
    for column in STEP_COLUMNS:
        if column not in judgments.columns:
            raise ValidationError("missing required column of the step-judgments table", source=source,
                                  column=column)
    if len(judgments) == 0:
        raise ValidationError("the step-judgments table is empty", source=source)
    table = decode_dictionaries(judgments.reset_index(drop=True).copy())
    table.attrs = {}
    for column in STEP_COLUMNS:
        table[column] = plain_values(table[column])

    for column in ("solution_id", "annotator"):
        check_ids(table[column], column, source)
    for column in ("step", "label"):  # one value per cell, as a pairwise label: a 0-d array was a raw TypeError,
        _check_hashable(table[column], column, source)  # a 1-element one read as the number it holds
    if "problem_id" in table.columns:
        # an id where present (missing: no problem): best-of-n groups by its text, so the number 1 beside the text
        # '1' merged two problems, and a list or an infinite id passed on into the cleaned dataset
        given = np.flatnonzero(table["problem_id"].notna().to_numpy())
        with rows_of_input(given):
            check_ids(plain_values(table["problem_id"]).iloc[given].reset_index(drop=True), "problem_id", source)
    table["step"] = _integral_steps(table["step"], source)
    table["label"] = _labels(table["label"], source)
    label_set = labels or ("ternary" if (table["label"] == -1).any() else "binary")
    allowed = STEP_LABEL_SETS[label_set]
    bad = ~table["label"].isin(allowed)
    if bad.any():
        row = _first(bad)
        raise ValidationError(f"label outside the declared set {label_set} {allowed}", source=source,
                              column="label", row=row, value=judgments["label"].iloc[row])

    given = len(table)
    table = _apply_duplicate_policy(table, duplicates, source)
    positions = table.index  # of the rows kept, in the table given
    table = table.reset_index(drop=True)
    codes = pd.factorize(table["solution_id"], sort=False)[0]
    with rows_of_input(positions):
        _check_numbering(table, codes, source)
        if "step_text" in table.columns:
            _check_one_value(table, codes, "step_text", "one step has two different texts", source, by_step=True)
        for column in ("prompt", "problem_id"):  # (the cleaned dataset keeps one of each per solution)
            if column in table.columns:
                _check_one_value(table, codes, column, f"one solution has two different {column}s", source,
                                 by_step=False)
        if "prompt" in table.columns:  # chat messages without a role or a content: a KeyError in the cleaned dataset
            # (build_cleaned_steps), after the fit. One prompt per solution (checked above): its first row's is read
            firsts = np.sort(np.unique(codes, return_index=True)[1])
            with rows_of_input(firsts):
                check_messages(table["prompt"].iloc[firsts].reset_index(drop=True), source)
    table.attrs[ATTRS_KEY] = record = Checked(labels=label_set)
    record.dropped = given - len(table)  # rows the duplicate policy left out (duplicates_dropped reads it)
    return table


def step_label_set(judgments: pd.DataFrame) -> str:
    """The label set recorded by :func:`validate_steps` (validating again when it is missing)."""
    info = checked_info(judgments, ATTRS_KEY)
    if info is None:
        info = validate_steps(judgments).attrs[ATTRS_KEY]
    return info["labels"]


def encode_steps(judgments: pd.DataFrame) -> EncodedSteps:
    """Integer codes for a step-judgments table (validated first when it was not)."""
    if (checked_info(judgments, ATTRS_KEY) is None  # validate_steps names what is wrong with a non-table
            or len(judgments) == 0):  # a validated table filtered to no rows keeps its
        judgments = validate_steps(judgments)  # attrs: validating again names the problem before torch trips on it
    label_set = judgments.attrs[ATTRS_KEY]["labels"]
    solutions, solution_index = pd.factorize(judgments["solution_id"], sort=False)
    workers, worker_index = pd.factorize(judgments["annotator"], sort=False)
    steps = judgments["step"].to_numpy(dtype=np.int64)
    # a validated table changed afterwards keeps its attrs: an id made missing has code -1, which numpy reads as the
    # last solution or rater, and step -1 was laid out as offset - 1, the last step of the solution before. Validating
    # again names the row (every label is kept: the first validation allowed its repeats)
    if (solutions < 0).any() or (workers < 0).any() or (steps < 0).any():
        validate_steps(judgments, labels=label_set, duplicates="keep")
    n_steps = np.zeros(len(solution_index), dtype=np.int64)
    np.maximum.at(n_steps, solutions, steps + 1)
    # a validated table filtered afterwards (a rater's rows dropped) keeps its attrs, yet may leave a step of a
    # solution with no label: validating it again names the solution and the missing step
    offsets = np.cumsum(n_steps) - n_steps
    if (np.bincount(offsets[solutions] + steps, minlength=int(n_steps.sum())) == 0).any():
        judgments = validate_steps(judgments, labels=label_set, duplicates="keep")
    label_codes = pd.Index(STEP_LABEL_SETS[label_set]).get_indexer(judgments["label"])
    if (label_codes < 0).any():
        # a label changed after validation (a binary table's 0 made -1) has no code: -1, which numpy reads as the
        # set's last label, "correct". Validating again with the recorded set names the row and the label (and reads
        # what it can, true/false as 1/0, in the same row order: every label is kept)
        judgments = validate_steps(judgments, labels=label_set, duplicates="keep")
        label_codes = pd.Index(STEP_LABEL_SETS[label_set]).get_indexer(judgments["label"])
    return EncodedSteps(
        solutions=solutions.astype(np.int64),
        steps=steps,
        workers=workers.astype(np.int64),
        labels=label_codes.astype(np.int64),
        n_steps=n_steps,
        solution_index=pd.Index(solution_index, name="solution_id"),
        worker_index=pd.Index(worker_index, name="annotator"),
        label_set=label_set,
    )


# -- checks -------------------------------------------------------------------------------------------------


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _integral_steps(values: pd.Series, source: str | None) -> pd.Series:
    """Steps as int64; one error naming the first step that is missing, not a number, fractional or negative."""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise ValidationError("step must be a non-negative integer, not true/false", source=source, column="step",
                              row=0, value=values.iloc[0])
    numeric = pd.to_numeric(values, errors="coerce")
    as_float = numeric.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        # from 2**63 on a step would wrap round to a negative number when cast, and be reported as that number
        bad = ~np.isfinite(as_float) | (as_float < 0) | (as_float != np.round(as_float)) | (as_float >= INT64_LIMIT)
    if values.dtype == object:
        bad |= values.map(lambda v: isinstance(v, (bool, np.bool_, str))).to_numpy()
    if bad.any():
        row = _first(bad)
        raise ValidationError("step must be a non-negative integer (steps are numbered 0..T-1)", source=source,
                              column="step", row=row, value=values.iloc[row])
    return pd.Series(as_float.astype(np.int64), index=values.index, name="step")


def _labels(values: pd.Series, source: str | None) -> pd.Series:
    """Labels as int64 (true/false read as 1/0); strings, fractions and missing values are errors."""
    # missing first: a nullable boolean column (pandas' "boolean", Arrow's bool) holds pd.NA, which the cast of
    # true/false below met as pandas' own ValueError or TypeError, not as a missing label
    present = values.notna().to_numpy()
    if not present.all():
        row = _first(~present)
        raise ValidationError("missing label", source=source, column="label", row=row, value=values.iloc[row])
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(np.int64)
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.map(lambda v: isinstance(v, str)).to_numpy()
        if text.any():
            # one word in a CSV column reads every label of it as text ("1", "0"): name the word, not row 0's "1"
            word = text & pd.to_numeric(values.where(text), errors="coerce").isna().to_numpy()
            row = _first(word if word.any() else text)
            raise ValidationError("label must be a number (-1, 0, 1 or 0, 1), not text", source=source,
                                  column="label", row=row, value=values.iloc[row])
        values = values.map(lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v)
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numeric) | (numeric != np.round(numeric))
    if bad.any():
        row = _first(bad)
        raise ValidationError("label must be an integer (-1, 0, 1 or 0, 1)", source=source, column="label",
                              row=row, value=values.iloc[row])
    return pd.Series(numeric.astype(np.int64), index=values.index, name="label")


def _apply_duplicate_policy(table: pd.DataFrame, policy: str, source: str | None) -> pd.DataFrame:
    keys = ["solution_id", "step", "annotator"]
    if policy == "keep":
        return table
    repeated = table.duplicated(keys, keep="first")
    if not repeated.any():
        return table
    if policy == "error":
        row = _first(repeated)
        raise ValidationError(
            "annotator labelled this step more than once (to allow it: --duplicates first, last or keep on the "
            "command line, duplicates='first', 'last' or 'keep' in Python)",
            source=source, column="annotator", row=row,
            value=(table["solution_id"].iloc[row], int(table["step"].iloc[row]), table["annotator"].iloc[row]),
        )
    return table.drop_duplicates(keys, keep=policy)  # the kept rows' positions as the index


def _check_numbering(table: pd.DataFrame, codes: np.ndarray, source: str | None) -> None:
    """Every solution's steps are exactly ``0..T-1``: first step 0 and no gap (vectorized over solutions)."""
    steps = table["step"].to_numpy()
    n_solutions = int(codes.max()) + 1
    lowest = np.full(n_solutions, np.iinfo(np.int64).max)
    highest = np.zeros(n_solutions, dtype=np.int64)
    np.minimum.at(lowest, codes, steps)
    np.maximum.at(highest, codes, steps)
    distinct = pd.DataFrame({"s": codes, "t": steps}).drop_duplicates()
    n_distinct = np.bincount(distinct["s"].to_numpy(), minlength=n_solutions)
    bad = (lowest != 0) | (n_distinct != highest + 1)
    if not bad.any():
        return
    # the first offending solution in row order
    bad_rows = bad[codes]
    solution = codes[_first(bad_rows)]
    rows = np.flatnonzero(codes == solution)
    present = np.unique(steps[rows])
    solution_id = table["solution_id"].iloc[rows[0]]
    if present[0] != 0:
        row = int(rows[np.argmin(steps[rows])])
        problem = (f"the steps of solution {solution_id!r} must be numbered 0..T-1, but its first step is "
                   f"{present[0]}")
    else:
        missing = int(np.flatnonzero(np.arange(len(present)) != present)[0])
        after = present[present > missing].min()
        row = int(rows[np.flatnonzero(steps[rows] == after)[0]])
        problem = (f"the steps of solution {solution_id!r} must be numbered 0..T-1, but step {missing} is missing "
                   f"(steps present: {_short_list(present)})")
    raise ValidationError(problem, source=source, column="step", row=row, value=int(steps[row]))


def _check_one_value(table: pd.DataFrame, codes: np.ndarray, column: str, problem: str, source: str | None,
                     *, by_step: bool) -> None:
    keys = pd.DataFrame({"s": codes, "t": table["step"].to_numpy()}) if by_step else pd.DataFrame({"s": codes})
    cells = table[column].reset_index(drop=True)
    present = cells.notna().to_numpy()
    keys = keys[present]
    # Parquet reads a list (chat messages) as a numpy array, which '!=' compares entry by entry: numpy's "truth value
    # of an array is ambiguous" for a conversation of two messages. Such cells are compared as plain lists
    if codes_comparable(cells):  # texts or plain numbers: compared by codes, at C speed (Arrow texts to objects
        # and an object comparison of every cell took about a second per column at 600k step judgments)
        group = keys.groupby([keys[c] for c in keys.columns], sort=False).ngroup().to_numpy()
        value = pd.factorize(cells[present])[0]
        _, first_at = np.unique(group, return_index=True)  # each group's first value (groups numbered in order)
        differs = value != value[first_at[group]]
    else:
        values = cells if cells.dtype != object or object_kind(cells) in _SCALAR_KINDS else cells.map(_plain_cell)
        first = values[present].groupby([keys[c] for c in keys.columns], sort=False).transform("first")
        differs = first.to_numpy() != values[present].to_numpy()
    if differs.any():
        row = int(np.flatnonzero(present)[_first(differs)])
        raise ValidationError(problem, source=source, column=column, row=row,
                              value=cells.iloc[row])


def _plain_cell(value: Any) -> Any:
    """A cell with its numpy arrays as lists, at every depth (what '==' compares as one value)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()  # (an object array's entries stay as they are: read below)
    if isinstance(value, (list, tuple)):
        return [_plain_cell(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_cell(v) for k, v in value.items()}
    return value


def _short_list(values: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def step_table_info(judgments: pd.DataFrame) -> dict[str, Any]:
    """Counts of a step-judgments table: solutions, steps, judgments, annotators, the label distribution."""
    encoded = encode_steps(judgments)
    values = np.asarray(encoded.label_values)[encoded.labels]
    return {
        "labels": encoded.label_set,
        "n_solutions": encoded.n_solutions,
        "n_steps": int(encoded.n_steps.sum()),
        "n_judgments": encoded.n_judgments,
        "n_annotators": encoded.n_workers,
        "label_counts": {int(k): int(v) for k, v in zip(*np.unique(values, return_counts=True))},
    }
