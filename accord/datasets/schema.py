"""The judgments table: one row per judgment, its schema, validation at the boundary, and integer encoding.

Columns
-------
Required (accord's names; crowd-kit's ``task``/``worker``/``label`` are accepted as input and renamed):

``pair_id``
    The compared pair (for classification data: the item). When a preference table has no ``pair_id`` but has
    ``response_a`` and ``response_b``, it is derived from the texts (:func:`accord.datasets.ids.derive_pair_ids`:
    a stable hash of the prompt and the two responses, whichever was shown first).
``annotator``
    Who gave the judgment (a human rater or an AI judge).
``label``
    One of three *forms*, fixed for the whole table:

    - ``"preference"``: ``"A"`` (response A better), ``"B"`` or ``"tie"``;
    - ``"graded"``: an integer strength on a declared symmetric scale ``-scale..scale``; negative means A better,
      0 is a tie (declare it with ``scale=``);
    - ``"categorical"``: any K class labels (crowdsourced classification; crowd-kit's convention).

Optional: ``prompt``, ``response_a``, ``response_b``, ``response_a_id``, ``response_b_id`` (one response may appear in
many pairs), annotator covariates ``annotator_*`` (e.g. ``annotator_group``, ``annotator_is_ai``), item covariates
``item_*`` (e.g. ``item_topic``), and ``gold`` (the pair's true label, where known, in the same form as ``label``;
only scored against, never fitted: a model's classes are the labels' and those declared, not gold's).
A table with an ``attribute`` column is a multi-attribute table (one row per rater x item x attribute) and is
validated by :func:`accord.datasets.attributes.validate_attributes`.

:func:`validate` checks a table and returns a clean copy whose ``attrs["accord"]`` records the form (and scale);
:func:`encode` turns it into integer codes for the models; :func:`to_crowdkit` / :func:`from_crowdkit` convert
between accord's and crowd-kit's column conventions.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError, _short_repr
from accord.datasets.ids import derive_pair_ids

PREFERENCE_LABELS: tuple[str, ...] = ("A", "B", "tie")
REQUIRED_COLUMNS: tuple[str, ...] = ("pair_id", "annotator", "label")
CROWDKIT_COLUMNS: dict[str, str] = {"task": "pair_id", "worker": "annotator"}
DUPLICATE_POLICIES: tuple[str, ...] = ("error", "first", "last", "keep")
#: 2**63: whole numbers from here on (JSON's big integers, uint64 columns) do not fit the int64 codes of labels,
#: ratings and steps; cast, they would wrap round to other numbers
INT64_LIMIT = float(2**63)

Form = Literal["preference", "graded", "categorical"]
FORMS: tuple[str, ...] = ("preference", "graded", "categorical")


@dataclass(frozen=True)
class Encoded:
    """Integer codes of a validated judgments table, the input every model works on.

    ``items[j]``, ``workers[j]`` and ``labels[j]`` are the pair, annotator and class codes of judgment ``j``;
    ``item_index`` / ``worker_index`` map codes back to ids, ``classes[k]`` to the label value.
    """

    items: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    item_index: pd.Index
    worker_index: pd.Index
    classes: tuple[Any, ...]
    form: str
    scale: int | None = None
    #: False only for categorical classes read off the labels (none declared): ``partial_fit`` grows those with a
    #: later batch's new class, and refuses a label outside declared ones. True by default, so that codes made
    #: elsewhere, and those of a model pickled before this field, keep refusing it as they did
    classes_declared: bool = True

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @property
    def n_workers(self) -> int:
        return len(self.worker_index)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_judgments(self) -> int:
        return len(self.labels)

    def vote_counts(self) -> np.ndarray:
        """``[n_items, n_classes]`` array: how many judgments gave each class to each item."""
        flat = self.items * self.n_classes + self.labels
        counts = np.bincount(flat, minlength=self.n_items * self.n_classes)
        return counts.reshape(self.n_items, self.n_classes).astype(np.float64)


def check_two_classes(encoded: Encoded) -> None:
    """One error when the table knows one class only: no model or baseline has anything to tell apart."""
    if encoded.n_classes == 1:
        raise AccordError(
            f"column 'label': every judgment has the label {encoded.classes[0]!r} and no other class is known: "
            "declare the label set (validate(judgments, classes=[...])) so that the model has something to tell "
            "apart"
        )


class Checked(dict):
    """What a validator records in a table's ``attrs`` (form, scale, label set): a dict of its own type, so that only
    a table checked in this session passes for checked. pandas writes ``attrs`` into a Parquet file's metadata as
    JSON and reads them back as plain dicts: a validated table written, edited and read back skipped validation.

    ``input_rows``, where a duplicate policy dropped rows, holds each kept row's position in the table given to the
    validator (:func:`input_row` reads it), and ``rows_order`` the order of the rows it describes; ``dropped`` how
    many rows of the user's table the policy left out (:func:`duplicates_dropped`). Attributes, not entries, so that
    the JSON written to Parquet stays small and holds no array."""

    input_rows: np.ndarray | None = None
    rows_order: str | None = None  # row_order of the table when input_rows was recorded
    dropped: int = 0


def row_order(table: pd.DataFrame) -> str:
    """A digest of the order of ``table``'s judgments (their pair, rater, item and attribute ids): a table sorted
    and numbered afresh keeps the recorded rows in its ``attrs`` and a RangeIndex, yet its rows are no longer those
    rows. Computed where rows are recorded and on an error's path, never per fit."""
    keys = [c for c in ("pair_id", "response_id", "annotator", "attribute") if c in table.columns]
    hashed = pd.util.hash_pandas_object(table[keys], index=False).to_numpy() if keys else np.zeros(0)
    return hashlib.blake2b(hashed.tobytes(), digest_size=16).hexdigest()


def _record_rows(record: Checked, table: pd.DataFrame, rows: np.ndarray) -> None:
    record.input_rows = rows
    record.rows_order = row_order(table)


def duplicates_dropped(table: Any, key: str = "accord") -> int:
    """How many rows of the user's table a duplicate policy ('first', 'last') left out of the validated ``table``
    (a table validated again, gold attached, keeps the first count); 0 for a table no validator returned. ``key``:
    where the validator records its checks (``"accord_steps"`` for step judgments)."""
    info = checked_info(table, key)
    return 0 if info is None else info.dropped


def input_row(table: pd.DataFrame, position: int) -> int:
    """The row of the user's table that row ``position`` of the validated ``table`` came from, for an error raised
    after validation: a duplicate policy ('first', 'last') drops rows, and such an error named the row of the table
    without them (a pair's texts in the file's row 3 reported as row 2 after one earlier repeat was dropped).
    ``position`` itself where nothing was dropped, or where ``table`` is no longer the validated table's rows in
    their order (filtered or sorted), whose positions cannot be told."""
    rows = input_rows(table)
    return int(position) if rows is None else int(rows[position])


def keep_rows(table: pd.DataFrame, mask: np.ndarray | pd.Series) -> pd.DataFrame:
    """The rows of the validated ``table`` where ``mask`` holds, numbered afresh, still knowing each one's row in the
    user's table (:func:`input_row`): a check after a filter (``accord report --limit-pairs``) named the row of the
    filtered table."""
    mask = np.asarray(mask, dtype=bool)
    rows = input_rows(table)
    kept = table[mask].reset_index(drop=True)
    info = checked_info(table)
    if info is not None:
        kept.attrs["accord"] = record = Checked(info)
        _record_rows(record, kept, (np.arange(len(table)) if rows is None else rows)[mask])
    return kept


def input_rows(table: Any) -> np.ndarray | None:
    """The recorded positions in the user's table of ``table``'s rows, where they still describe its rows."""
    info = checked_info(table)
    rows = None if info is None else info.input_rows
    if rows is None or not table.index.equals(pd.RangeIndex(len(rows))) or row_order(table) != info.rows_order:
        return None
    return rows


def checked_info(table: Any, key: str = "accord") -> dict[str, Any] | None:
    """What a validator recorded under ``attrs[key]`` of a table it returned (copies, which pandas gives the same
    attrs, included); ``None`` for anything else, a table read back from a file among them."""
    info = table.attrs.get(key) if isinstance(table, pd.DataFrame) else None
    return info if isinstance(info, Checked) else None


def table_info(judgments: pd.DataFrame) -> dict[str, Any]:
    """The form and scale recorded by :func:`validate` (validating again when they are missing)."""
    info = checked_info(judgments)
    if info is None:
        info = validate(judgments).attrs["accord"]
    return info


def validate(
    judgments: pd.DataFrame,
    *,
    form: Form | None = None,
    scale: int | None = None,
    classes: list[Any] | None = None,
    duplicates: str = "error",
    source: str | None = None,
) -> pd.DataFrame:
    """Check a judgments table and return a validated copy (never modifies the input).

    Parameters
    ----------
    judgments
        The table, with accord's or crowd-kit's column names.
    form
        ``"preference"``, ``"graded"`` or ``"categorical"``. Inferred when omitted: ``"graded"`` when ``scale`` is
        given; with crowd-kit names, ``"preference"`` when every label is A/B/tie and ``"categorical"`` otherwise;
        with accord names, ``"preference"``.
    scale
        For graded labels, the largest strength: labels must be integers in ``-scale..scale``.
    classes
        For categorical labels, the allowed label set (optional; inferred from the data when omitted).
    duplicates
        What to do when one annotator judged one pair more than once: ``"error"`` (default), keep the
        ``"first"`` or ``"last"`` judgment, or ``"keep"`` them all.
    source
        Where the table came from (a file name), used in error messages.

    Raises
    ------
    ValidationError
        One line naming the file, column, row and value: missing required column, empty table, missing pair or
        annotator id, label outside the declared set or scale, mixed label forms, a duplicated judgment, or a pair
        whose two sides are the same response.
    """
    if not isinstance(judgments, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(judgments).__name__}", source=source)
    repeated = judgments.columns[judgments.columns.duplicated()]
    if len(repeated):
        raise ValidationError("the column appears more than once", source=source, column=repeated[0])
    check_flat_columns(judgments, source)
    if "attribute" in judgments.columns:  # multi-attribute (long-form) table: its own schema
        from accord.datasets.attributes import validate_attributes

        return validate_attributes(judgments, scales=scale, duplicates=duplicates, source=source)
    if duplicates not in DUPLICATE_POLICIES:
        raise ValidationError(f"duplicates must be one of {DUPLICATE_POLICIES}", value=duplicates)
    if form is not None and form not in FORMS:
        raise ValidationError(f"form must be one of {FORMS}", value=form)
    if classes is not None:
        classes = _checked_classes(classes)

    given_rows = input_rows(judgments)  # a validated table validated again (gold attached) keeps the user's rows
    table = with_required_columns(judgments, form=form, scale=scale, source=source)
    crowdkit_names = "task" in judgments.columns or "worker" in judgments.columns
    if len(table) == 0:
        raise ValidationError("the judgments table is empty", source=source)
    table = table.reset_index(drop=True)
    for column in (*REQUIRED_COLUMNS, *(["gold"] if "gold" in table.columns else [])):
        table[column] = plain_values(table[column])

    for column in ("pair_id", "annotator"):
        check_ids(table[column], column, source)
    for column in ("label", *(["gold"] if "gold" in table.columns else [])):
        _check_hashable(table[column], column, source)

    if form is None:
        if scale is not None:
            form = "graded"
        elif crowdkit_names:
            present = table["label"].dropna()
            is_preference = string_mask(present).astype(bool).all() and present.isin(PREFERENCE_LABELS).all()
            form = "preference" if is_preference else "categorical"
        else:
            form = "preference"
    if form == "graded" and scale is None:
        raise ValidationError("graded labels need a declared scale (e.g. scale=3 for -3..3)", source=source,
                              column="label")
    if form != "graded" and scale is not None:
        raise ValidationError(f"scale is only meaningful for graded labels, not for form '{form}'", source=source,
                              value=scale)

    _check_labels(table["label"], "label", form, scale, classes, source)
    if "gold" in table.columns:
        _check_labels(table["gold"], "gold", form, scale, classes, source, allow_missing=True)
        if form == "categorical":
            _check_gold_kind(table["label"], table["gold"], source)
    if form == "graded":  # whole floats such as 1.0 become the integers they hold
        table["label"] = table["label"].astype("int64")
        if "gold" in table.columns and pd.api.types.is_float_dtype(table["gold"].dtype):
            table["gold"] = _as_integers(table["gold"])
    elif form == "categorical" and "gold" in table.columns and _whole_float_gold(table["label"], table["gold"]):
        # a gap in a gold column of whole numbers makes it float (numpy has no missing integer): the classes were
        # then the floats 0.0, 1.0, 2.0 for integer labels, where a nullable Int64 gold gave 0, 1, 2
        table["gold"] = _as_integers(table["gold"])

    given = len(table)
    table = _apply_duplicate_policy(table, duplicates, source)
    positions = user_rows(table.index, given_rows)
    table = table.reset_index(drop=True)
    with rows_of_input(positions):
        _check_distinct_sides(table, source)

    info: dict[str, Any] = {"form": form, "scale": scale}
    if form == "categorical" and classes is not None:
        info["classes"] = list(classes)
    return checked(table, info, positions, dropped_before(judgments, given_rows) + given - len(table))


def user_rows(kept: pd.Index, given_rows: np.ndarray | None) -> np.ndarray:
    """The positions in the user's table of the rows ``kept`` (their positions in the table given to the validator,
    which ``given_rows`` maps to the user's when that table was itself validated with rows dropped)."""
    positions = kept.to_numpy(dtype=np.int64)
    return positions if given_rows is None else given_rows[positions]


def checked(table: pd.DataFrame, info: dict[str, Any], positions: np.ndarray, dropped: int = 0) -> pd.DataFrame:
    """``table`` marked validated with ``info``, recording its rows' ``positions`` in the user's table where they
    are not simply 0..n-1 (rows were dropped) and how many of the user's rows a duplicate policy ``dropped``."""
    record = Checked(info)
    record.dropped = int(dropped)
    # (also where only the last rows were dropped: a table validated again then still knows it is these rows)
    if dropped or not np.array_equal(positions, np.arange(len(table))):
        _record_rows(record, table, positions)
    table.attrs["accord"] = record
    return table


def dropped_before(judgments: pd.DataFrame, given_rows: np.ndarray | None) -> int:
    """The rows of the user's table that an earlier validation of ``judgments`` dropped as duplicates, where it is
    still that validation's table (``given_rows``: :func:`input_rows` of it); 0 otherwise."""
    return duplicates_dropped(judgments) if given_rows is not None else 0


def with_required_columns(judgments: pd.DataFrame, *, form: Form | None = None, scale: int | None = None,
                          source: str | None = None) -> pd.DataFrame:
    """A copy of ``judgments`` under accord's names (crowd-kit's ``task``/``worker`` renamed; ``pair_id`` derived
    from ``response_a``/``response_b`` where it is missing and the form allows), refused with one line naming a
    required column it still lacks: the first check of :func:`validate`, and all there is to check of a table with
    no rows (an empty batch given to ``partial_fit``)."""
    table = decode_dictionaries(judgments.copy())
    if "task" in table.columns or "worker" in table.columns:
        clash = [c for c in CROWDKIT_COLUMNS.values() if c in table.columns]
        if clash:
            no_label = [] if "label" in table.columns else ["label"]
            raise ValidationError(
                "both crowd-kit (task/worker) and accord (pair_id/annotator) column names are present"
                f"{missing_too(no_label)}",
                source=source,
                column=clash[0],
            ).missing_too(no_label)
        table = table.rename(columns=CROWDKIT_COLUMNS)
    derivable_form = form or ("graded" if scale is not None else "preference")
    if "pair_id" not in table.columns and {"response_a", "response_b"} <= set(table.columns) \
            and derivable_form != "categorical":
        for column in ("response_a", "response_b"):  # the id is a hash of the texts
            missing = table[column].isna().to_numpy()
            if missing.any():
                raise ValidationError("missing response text (the pair id is derived from the texts)",
                                      source=source, column=column, row=int(np.flatnonzero(missing)[0]))
        table = derive_pair_ids(table, derivable_form)
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        hint = _missing_column_hint(table, missing[0], judgments.columns)
        raise ValidationError(f"missing required column{hint}{missing_too(missing[1:])}", source=source,
                              column=missing[0]).missing_too(missing[1:])
    return table


def encode(judgments: pd.DataFrame) -> Encoded:
    """Integer codes for a judgments table (validated first when it was not)."""
    if not is_validated(judgments) or len(judgments) == 0:  # a validated table filtered to no rows, too
        judgments = validate(judgments)
    info = judgments.attrs["accord"]
    form = info["form"]
    if form == "attribute":
        raise AccordError("a multi-attribute table: use accord.datasets.attributes.encode_attributes, or pick one "
                          "attribute with select_attribute()")
    # pandas carries attrs through assign/rename/copy: a table changed since it was validated is refused by name
    stale = "; the table changed since it was validated: validate it again"
    for column in REQUIRED_COLUMNS:
        if column not in judgments.columns:
            raise ValidationError(f"missing required column{stale}", column=column)
    item_codes, item_index = pd.factorize(judgments["pair_id"], sort=False)
    worker_codes, worker_index = pd.factorize(judgments["annotator"], sort=False)
    labels = judgments["label"]
    # the classes come from the labels (and the classes declared), never from gold: a gold class no rater gave made
    # the model fit one more class (moving every soft label); gold is scored against these classes apart
    # (accord.metrics.with_gold_classes: such a gold class is never predicted)
    if form == "preference":
        classes: tuple[Any, ...] = ("A", "B", "tie") if (labels == "tie").any() else ("A", "B")
    elif form == "graded":
        scale = int(info["scale"])
        classes = tuple(range(-scale, scale + 1))
    else:
        observed = pd.unique(labels)
        declared = info.get("classes")
        classes = tuple(declared) if declared is not None else tuple(_sorted_labels(observed))
    class_codes = pd.Index(classes).get_indexer(labels)
    if (class_codes < 0).any():
        row = int(np.flatnonzero(class_codes < 0)[0])
        raise ValidationError(f"label outside the {form} classes {list(classes)}{stale}", column="label", row=row,
                              value=labels.iloc[row])
    return Encoded(
        items=item_codes.astype(np.int64),
        workers=worker_codes.astype(np.int64),
        labels=class_codes.astype(np.int64),
        item_index=pd.Index(item_index, name="pair_id"),
        worker_index=pd.Index(worker_index, name="annotator"),
        classes=classes,
        form=form,
        scale=info.get("scale"),
        classes_declared=form != "categorical" or info.get("classes") is not None,
    )


def is_validated(judgments: Any) -> bool:
    """Whether ``judgments`` is a table :func:`validate` returned (its checks are not repeated); anything else goes
    through :func:`validate`, which names what is wrong (a list of records was an AttributeError on ``.attrs``)."""
    return checked_info(judgments) is not None


def labels_as_classes(judgments: pd.DataFrame, classes: Any, labels: pd.Series) -> pd.Series:
    """``labels`` of ``judgments`` (its votes or gold) in the terms of a model's ``classes``: in a graded table, grades
    read by a model over A/B/tie (the ordinal model) become their side (negative: A, 0: tie, positive: B; missing:
    ``None``); else as they are. Compared as they were, no grade matched a class."""
    graded = (checked_info(judgments) or {}).get("form") == "graded"
    if graded and set(classes) <= {"A", "B", "tie"}:
        grade = pd.to_numeric(labels).to_numpy(dtype=float)
        sides = np.select([grade < 0, grade > 0, grade == 0], ["A", "B", "tie"], None)  # NaN: no label
        return pd.Series(sides, index=labels.index, name=labels.name)
    return labels


def gold_labels(judgments: pd.DataFrame) -> pd.Series:
    """The gold label of each pair that has one, indexed by ``pair_id`` (empty when the table has no gold)."""
    if "gold" not in judgments.columns:
        return pd.Series(dtype=object, name="gold")
    known = judgments.loc[judgments["gold"].notna(), ["pair_id", "gold"]]
    return known.drop_duplicates("pair_id").set_index("pair_id")["gold"]


def to_crowdkit(judgments: pd.DataFrame) -> pd.DataFrame:
    """The table in crowd-kit's convention: columns ``task``, ``worker``, ``label`` (other columns kept)."""
    if "accord_steps" in judgments.attrs or ("pair_id" not in judgments.columns
                                            and {"solution_id", "step"} <= set(judgments.columns)):
        # a step table was refused as 'missing required column pair_id', as if a column were misnamed
        raise AccordError("to_crowdkit: a step table (solution_id, step) has no crowd-kit layout (task, worker, "
                          "label rate one item per row): fit it with accord's step models (StepDawidSkene, "
                          "FirstErrorModel)")
    table = validate(judgments) if not is_validated(judgments) else judgments
    names = {v: k for k, v in CROWDKIT_COLUMNS.items()}
    if table.attrs["accord"].get("item") == "response":  # a multi-attribute table rating responses: they are the
        names = {"response_id": "task", "annotator": "worker"}  # tasks (its response_id was kept, with no task)
    out = table.rename(columns=names)
    out.attrs = {}
    return out


def from_crowdkit(frame: pd.DataFrame, **validate_kwargs: Any) -> pd.DataFrame:
    """A crowd-kit style frame (``task``, ``worker``, ``label``) as a validated accord judgments table."""
    if "task" not in frame.columns or "worker" not in frame.columns:
        missing = "task" if "task" not in frame.columns else "worker"
        raise ValidationError("missing required crowd-kit column", column=missing)
    return validate(frame, **validate_kwargs)


def annotator_columns(judgments: pd.DataFrame) -> list[str]:
    """Names of the annotator covariate columns (``annotator_*``)."""
    return columns_named(judgments, prefix="annotator_")


def item_columns(judgments: pd.DataFrame) -> list[str]:
    """Names of the item covariate columns (``item_*``)."""
    return columns_named(judgments, prefix="item_")


def columns_named(frame: pd.DataFrame, *, prefix: str = "", suffix: str = "") -> list[str]:
    """The names of ``frame``'s columns that start with ``prefix`` and end with ``suffix``. A column whose name is
    not a text (``0`` from ``read_csv(header=None)`` or an unnamed Series put beside the table, ``NaN`` from
    ``frame[None] = ...``) is no such column: reading its name as a text was an AttributeError ('int' object has no
    attribute 'startswith')."""
    return [c for c in frame.columns if isinstance(c, str) and c.startswith(prefix) and c.endswith(suffix)]


# -- checks -------------------------------------------------------------------------------------------------


def check_flat_columns(judgments: pd.DataFrame, source: str | None) -> None:
    """Column names must be single names: a frame with a MultiIndex header (from a pivot, or ``read_csv(header=[0,
    1])``) has no column ``label``, only ``("label", ...)`` tuples, and pandas' own look-ups fail in ways that name
    nothing."""
    if isinstance(judgments.columns, pd.MultiIndex):
        raise ValidationError("the table has a header of several levels (a MultiIndex); flatten it to one name per "
                              "column (e.g. frame.columns = ['_'.join(map(str, c)) for c in frame.columns])",
                              source=source, column=judgments.columns[0])


@contextmanager
def rows_of_input(positions: pd.Index | np.ndarray) -> Iterator[None]:
    """Errors raised in the block name the row of the table given: ``positions`` holds each checked row's position
    there. The checks after a duplicate policy ('first', 'last') read the table without the dropped rows, whose
    positions named another row of the input (its row 3 reported as row 2 after one earlier row was dropped)."""
    try:
        yield
    except ValidationError as error:
        if error.row is None:
            raise
        raise ValidationError(error.problem, source=error.source, column=error.column,
                              row=int(positions[error.row]), value=error.value) from None


def decode_dictionaries(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each Arrow dictionary column (what ``pd.read_parquet(..., dtype_backend="pyarrow")`` gives for
    a file written from categorical columns) as the Arrow values it holds. pandas numbers such a column's values in
    the order of its dictionary, unused entries included: a filtered table gave a rater or a pair without judgments
    (a uniform soft label for a pair nobody judged), and the raters in another order than a plain column's; and its
    ``isin`` refuses plain values (pyarrow's 'Array type doesn't match type of values set')."""
    decoded = {}
    for column, dtype in table.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype):
            import pyarrow as pa  # an Arrow column: pyarrow is there

            if pa.types.is_dictionary(dtype.pyarrow_dtype):
                decoded[column] = pd.ArrowDtype(dtype.pyarrow_dtype.value_type)
    return table.astype(decoded) if decoded else table


def plain_values(values: pd.Series) -> pd.Series:
    """A categorical column as the values it holds (other columns as they are). Every check below reads cells one by
    one, or compares them with numbers; a categorical answers neither (its mapped masks are categoricals again, which
    cannot be summed or combined with ``&``), and its categories could hide a blank id, an infinite id or ids that mix
    texts and numbers from the checks of object columns."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return pd.Series(np.asarray(values, dtype=object), index=values.index, name=values.name)
    return values


def _checked_classes(classes: Any) -> list[Any]:
    """The declared categorical classes as a list: distinct, present, single values (a duplicated class would give
    two codes to one label, and pandas refuses to index by it)."""
    if isinstance(classes, (str, bytes)) or not pd.api.types.is_list_like(classes):
        raise ValidationError("classes must be a list of the class labels, e.g. classes=[0, 1, 2]", value=classes)
    listed = list(classes)
    for position, value in enumerate(listed):
        if not _hashable(value) or pd.api.types.is_list_like(value):
            raise ValidationError(f"classes[{position}] must be a single value (text or number)", value=value)
        if pd.isna(value):
            raise ValidationError(f"classes[{position}] is missing (NaN/None is not a class)", value=value)
    repeated = pd.Index(listed).duplicated()
    if repeated.any():
        position = int(np.flatnonzero(repeated)[0])
        raise ValidationError(f"classes[{position}] repeats a class (each class once)", value=listed[position])
    return listed


def _first_bad(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def first_bad_rating(values: pd.Series, mask: pd.Series | np.ndarray) -> int:
    """The first row of ``mask``, preferring a cell that is not a whole number written as text: a CSV column of
    ratings with one bad cell ('x') is read as text throughout, and its first row ('1', a good rating) was named
    instead of the cell to fix."""
    mask = np.asarray(mask, dtype=bool)
    text = pd.Series(np.asarray(values, dtype=object)).map(lambda v: v.strip() if isinstance(v, str) else None)
    numeric = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    whole = np.isfinite(numeric) & (numeric == np.round(numeric))
    return _first_bad(mask & ~whole) if (mask & ~whole).any() else _first_bad(mask)


def _check_hashable(values: pd.Series, column: str, source: str | None) -> None:
    """Ids and labels must be single values: JSON inputs can hold lists or objects, which pandas cannot group."""
    if values.dtype != object or object_kind(values) in _SCALAR_KINDS:
        return
    bad = values.map(lambda v: isinstance(v, (list, dict, set, np.ndarray)) or not _hashable(v))
    if bad.any():
        row = _first_bad(bad)
        raise ValidationError("must be a single value (text or number), not a list or object", source=source,
                              column=column, row=row, value=values.iloc[row])


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


#: the problems of an id column that mixes kinds (:func:`check_ids`; the streamed reader's folder whose files differ)
MIXED_TEXT_IDS = ("ids mix texts and numbers (a text and a number are two ids even where they read alike): make them "
                  "all text")


def mixed_ids_problem(first: Any, here: Any) -> str:
    """:data:`MIXED_TEXT_IDS` with the column's own values as written (its first id and the row's): the example
    '7' of the message read as the file's '007' turned into 7, where the text was kept as written."""
    def kind(value: Any) -> str:
        return f"the text {_short_repr(value)}" if isinstance(value, str) else f"the number {_short_repr(value)}"

    return (f"ids mix texts and numbers (the column's first id is {kind(first)}, this row's {kind(here)}; a text and "
            "a number are two ids even where they read alike): make them all text")


MIXED_BOOLEAN_IDS = "ids mix true/false and numbers (true and the number 1 would be one id): make them all text"
#: labels that are texts in some rows and numbers in others (one form per column)
MIXED_LABELS = "mixed label forms (strings and numbers in one column)"


def check_ids(values: pd.Series, column: str, source: str | None) -> None:
    """The rules every id column of every table follows (judgments, per-attribute ratings, step judgments): present
    and not blank, a single value, finite, and all texts or all numbers (the text '7' and the number 7 would be two
    ids)."""
    missing = values.isna()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        missing |= values.astype(str).str.strip().eq("") & values.notna()
    if missing.any():
        row = _first_bad(missing)
        raise ValidationError("missing id", source=source, column=column, row=row, value=values.iloc[row])
    _check_spaced_ids(values, column, source)
    if values.dtype == object and object_kind(values) in ("string", "integer", "boolean"):
        return  # (nothing missing) one kind of single, finite values: the checks below would pass every cell
    _check_hashable(values, column, source)
    if pd.api.types.is_float_dtype(values) or values.dtype == object:
        if values.dtype == object:  # e.g. JSON's Infinity among text ids
            bad = values.map(lambda v: isinstance(v, (float, np.floating)) and not np.isfinite(v)).to_numpy()
        else:
            bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            row = _first_bad(bad)
            raise ValidationError("id is not finite", source=source, column=column, row=row, value=values.iloc[row])
    if values.dtype == object:
        is_text = values.map(lambda v: isinstance(v, str)).to_numpy()
        if is_text.any() and not is_text.all():
            row = _first_bad(is_text != is_text[0])
            raise ValidationError(mixed_ids_problem(values.iloc[0], values.iloc[row]), source=source, column=column,
                                  row=row, value=values.iloc[row])
        is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy()
        if is_bool.any() and not is_bool.all():
            row = _first_bad(is_bool != is_bool[0])
            raise ValidationError(MIXED_BOOLEAN_IDS, source=source, column=column, row=row, value=values.iloc[row])


def _check_spaced_ids(values: pd.Series, column: str, source: str | None) -> None:
    """Two ids that differ only in spaces around them ('p1' and Excel's 'p1 ') are refused naming both rows: they
    were two pairs (or raters) without a word, where a gold file matches ids with the spaces cut."""
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object and object_kind(values) == "string"):
        return  # numbers (and a mix of kinds, refused below) have no spaces to differ in
    distinct = pd.Series(pd.unique(values.to_numpy()), dtype=object)  # each id once: the strip reads no row twice
    stripped = distinct.str.strip()  # NaN for a cell that is no text
    if stripped.eq(distinct).all() or not (near := stripped.notna() & stripped.duplicated(keep=False)).any():
        return
    spelled = distinct[near & stripped.eq(stripped[near].iloc[0])].iloc[:2]
    first, second = (_first_bad(values.eq(v).to_numpy()) for v in spelled)
    raise ValidationError(f"id {spelled.iloc[1]!r} differs from {spelled.iloc[0]!r} (row {first}) only in spaces "
                          "around it, so the two were read as two ids: write the id one way", source=source,
                          column=column, row=second, value=spelled.iloc[1])


#: kinds of :func:`object_kind` whose values are all single (hashable) values
_SCALAR_KINDS: tuple[str, ...] = ("empty", "string", "bytes", "integer", "floating", "mixed-integer-float", "boolean")
#: kinds of :func:`object_kind` without a text among their values
TEXTLESS_KINDS: tuple[str, ...] = ("empty", "bytes", "integer", "floating", "mixed-integer-float", "boolean")


def object_kind(values: pd.Series) -> str:
    """pandas' inferred kind of an object column (``"string"``, ``"integer"``, ``"mixed"``...), skipping ``None``,
    float NaN and ``pd.NA`` only (``NaT`` or a Decimal NaN make it ``"mixed"``). One pass in C: the checks below read
    it to pass a column of one plain kind without calling Python for each of its cells (1M cells: seconds)."""
    return pd.api.types.infer_dtype(values, skipna=True)


def codes_comparable(values: pd.Series) -> bool:
    """Whether equal cells of ``values`` are equal codes of ``pd.factorize`` and a take of its array gives the
    missing value ``groupby.first`` gives: texts (pandas' string dtypes, or objects that are all texts) and plain
    numbers. Other columns (chat messages, mixed objects, categoricals) keep the per-cell comparison."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return True
    if dtype == object:
        return object_kind(values) == "string"
    return isinstance(dtype, np.dtype) and dtype.kind in "biuf"


def string_mask(values: pd.Series) -> pd.Series:
    """Which entries are strings (cheap for numeric columns, which hold none; for a string column, the present cells;
    for an object column of one kind, from its kind)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(False, index=values.index)
    if isinstance(values.dtype, pd.StringDtype):
        return values.notna().astype(bool)
    if values.dtype == object:
        kind = object_kind(values)
        if kind == "string":  # every cell but the skipped None/NaN/NA is a text (any other missing value, NaT
            return values.notna()  # or a Decimal NaN, would have made the kind "mixed")
        if kind in TEXTLESS_KINDS:
            return pd.Series(False, index=values.index)
    return values.map(lambda v: isinstance(v, str))


def _is_integral(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):  # 1.0 from a float column (a CSV with a gap, Parquet floats)
        return bool(np.isfinite(value) and float(value).is_integer())
    return False


def integral_mask(values: pd.Series) -> pd.Series:
    """Which cells are whole numbers (:func:`_is_integral` of each cell: no bool, text or missing value), told at C
    speed for a column of integers or floats (graded labels read from Parquet or a CSV with a gap are floats: 600k
    of them took 3 s one by one) and for an object column of one numeric kind."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.notna()
    kind = object_kind(values) if values.dtype == object else None
    if kind == "integer":  # ints (no bool among them: that kind is "mixed-integer")
        return values.notna()
    if kind == "floating" or (kind is None and pd.api.types.is_float_dtype(values.dtype)):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return pd.Series(np.isfinite(numbers) & (numbers == np.floor(numbers)), index=values.index)
    return values.map(_is_integral)


def _respelt(value: Any) -> str | None:
    """The preference label ``value`` spells otherwise ("a", "Tie", "B "), else None."""
    return {label.casefold(): label for label in PREFERENCE_LABELS}.get(
        value.strip().casefold() if isinstance(value, str) else None)


def respelt_label_problem(value: Any, others: Any = ()) -> str | None:
    """The problem with a label that is a preference label in another spelling ("a", "Tie", "B "), for which
    another form is the wrong remedy (it would make "b" a class beside "B"); None for any other value. ``others``
    (the column's other distinct labels off the set) are named too where they are respelt: told one spelling at a
    time, a/b/Tie took three runs."""
    meant = _respelt(value)
    if meant is None:
        return None
    respelt = {value: meant}
    for other in others:
        if len(respelt) < 6 and other not in respelt and _respelt(other) is not None:
            respelt[other] = _respelt(other)
    fixes = ", ".join(f"{right!r} for {written!r}" for written, right in respelt.items())
    return (f"label outside the declared set {{'A', 'B', 'tie'}}: labels are matched exactly (case and spaces "
            f"count): write {fixes} in every such cell")


def numbered_preference_problem(labels: Any) -> str | None:
    """The problem with preference labels written as the numbers 0, 1 and 0.5 (a tie), a common export, given the
    column's distinct labels; None for other labels. Declaring them categorical (the advice for other labels) makes
    the three numbers classes, with no cleaned preference dataset."""
    numbers = [label for label in labels if isinstance(label, (int, float, np.integer, np.floating))
               and not isinstance(label, (bool, np.bool_))]
    if len(numbers) != len(labels) or not set(numbers) <= {0, 0.5, 1} or 0.5 not in set(numbers):
        return None
    return ("label outside the declared set {'A', 'B', 'tie'}: the numbers 0, 1 and 0.5 read as a preference with "
            "ties: write them as 'A', 'B' and 'tie' (0.5 the tie; which of 0 and 1 means A is your data's "
            "convention), or keep them as three classes with --form categorical on the command line, "
            "form='categorical' in Python")


def blank_label_problem(column: str) -> str:
    """The problem with a label cell of blank text, as the single-process and the streamed readers give it. A gold
    cell may be left empty (no gold for that pair); a judgment's label may not, as an empty cell is a missing label,
    refused too: saying "leave the cell empty for no label" sent the user from one error to the next."""
    if column == "gold":
        return "blank label (leave the cell empty for no gold label, or give a class)"
    return "blank label (give a class, or remove the row: a judgment needs a label)"


def _check_labels(
    values: pd.Series,
    column: str,
    form: str,
    scale: int | None,
    classes: list[Any] | None,
    source: str | None,
    allow_missing: bool = False,
) -> None:
    present = values.notna()
    if not allow_missing and not present.all():
        row = _first_bad(~present)
        raise ValidationError("missing label", source=source, column=column, row=row, value=values.iloc[row])
    if form == "preference":
        # isin matches exact values only: the number 1 or the string "a" never pass for a label
        bad = present & ~values.isin(PREFERENCE_LABELS)
        if bad.any():
            is_str = string_mask(values)
            row = _first_bad(bad)
            value = values.iloc[row]
            mixed = is_str.any() and (present & ~is_str).any()
            respelt = respelt_label_problem(value, pd.unique(values[bad & is_str]))  # texts: hashable
            numbered = (numbered_preference_problem(pd.unique(values[present]))
                        if pd.api.types.is_numeric_dtype(values.dtype) else None)
            problem = (
                MIXED_LABELS
                if mixed
                else respelt
                if respelt is not None
                else numbered
                if numbered is not None
                # a table of other labels needs its form declared; without a word on how, a Python user was stuck
                else "label outside the declared set {'A', 'B', 'tie'} (for other labels: --form categorical, or "
                     "--form graded --scale S for signed strengths, on the command line; form='categorical', or "
                     "form='graded', scale=S, in validate or read_judgments in Python)"
            )
            raise ValidationError(problem, source=source, column=column, row=row, value=value)
        return
    is_str = string_mask(values)
    if form == "graded":
        assert scale is not None
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ValidationError("scale must be a positive integer", column=column, value=scale)
        integral = integral_mask(values)
        if (present & is_str).any() and (present & ~is_str).any():
            row = _first_bad(present & is_str)
            raise ValidationError(
                MIXED_LABELS,
                source=source, column=column, row=row, value=values.iloc[row],
            )
        bad = present & ~integral
        if bad.any():
            row = first_bad_rating(values, bad)
            raise ValidationError(
                f"graded label is not an integer on the scale -{scale}..{scale}",
                source=source, column=column, row=row, value=values.iloc[row],
            )
        numeric = pd.to_numeric(values.where(present), errors="coerce")
        out = present & ((numeric < -scale) | (numeric > scale))
        if out.any():
            row = _first_bad(out)
            raise ValidationError(
                f"label outside the declared scale -{scale}..{scale}",
                source=source, column=column, row=row, value=values.iloc[row],
            )
    else:
        if classes is not None:
            bad = present & ~values.isin(list(classes))
            if bad.any():
                row = _first_bad(bad)
                raise ValidationError(
                    f"label outside the declared classes {list(classes)}",
                    source=source, column=column, row=row, value=values.iloc[row],
                )
        if (present & is_str).any() and (present & ~is_str).any():
            row = _first_bad(present & ~is_str)
            raise ValidationError(
                MIXED_LABELS,
                source=source, column=column, row=row, value=values.iloc[row],
            )
        if pd.api.types.is_float_dtype(values.dtype):
            bad = present & ~np.isfinite(values.to_numpy(dtype=float, na_value=0.0))
        else:  # an object column (JSON's Infinity among whole numbers) is held to the same rule as a float one
            bad = _object_mask(values, present, lambda v: isinstance(v, (float, np.floating)) and not np.isfinite(v))
        if bad.any():
            row = _first_bad(bad)
            raise ValidationError("label is not finite", source=source, column=column, row=row,
                                  value=values.iloc[row])
        # a blank text is an answer left empty (JSON keeps "" where a CSV reader sees a gap), not a class of its own
        blank = present & is_str & values.astype(str).str.strip().eq("")
        if blank.any():
            row = _first_bad(blank)
            raise ValidationError(blank_label_problem(column), source=source, column=column, row=row,
                                  value=values.iloc[row])
        if values.dtype == object:  # True == 1 in Python: true/false among numbers would merge with the classes 1/0
            is_bool = _object_mask(values, present, lambda v: isinstance(v, (bool, np.bool_)))
            if is_bool.any() and (present & ~is_bool).any():
                row = _first_bad(present & (is_bool != is_bool.iloc[_first_bad(present)]))
                raise ValidationError("mixed label forms (true/false and other values in one column)",
                                      source=source, column=column, row=row, value=values.iloc[row])


def _as_integers(values: pd.Series) -> pd.Series:
    """A float column of whole numbers as the integers it holds (an object column; missing cells stay missing)."""
    return values.astype(object).where(values.isna(), values.fillna(0).astype("int64").astype(object))


def _whole_float_gold(labels: pd.Series, gold: pd.Series) -> bool:
    """Categorical labels that are integers beside a float gold column whose cells are all whole numbers."""
    integer_labels = pd.api.types.is_integer_dtype(labels.dtype) or (labels.dtype == object
                                                                     and object_kind(labels) == "integer")
    if not integer_labels or not pd.api.types.is_float_dtype(gold.dtype):
        return False
    present = gold.dropna().to_numpy(dtype=float)
    return bool(((present == np.round(present)) & (np.abs(present) < INT64_LIMIT)).all())


def _object_mask(values: pd.Series, present: pd.Series, predicate: Any) -> pd.Series:
    """``predicate`` (of a float or a boolean) of each present cell of an object column, as a boolean Series (false
    where ``present`` is false); all false for a typed column (numbers, booleans, a string dtype), which holds no Python
    objects of another kind, and for an object column of texts or whole numbers, which hold no float or boolean."""
    if values.dtype != object or object_kind(values) in ("empty", "string", "integer"):
        return pd.Series(False, index=values.index)
    return present & values.map(predicate).astype(bool)


def _check_gold_kind(labels: pd.Series, gold: pd.Series, source: str | None) -> None:
    """Gold in the labels' kind: the gold text '1' beside the label 1 (a JSON file, one column quoted) would be a class
    of its own that no judgment gives, and no pair's gold would ever match its labels."""
    label_text = string_mask(labels)
    present = gold.notna()
    gold_text = string_mask(gold)
    expect_text = bool(label_text.iloc[_first_bad(labels.notna())]) if labels.notna().any() else None
    if expect_text is None:
        return
    bad = present & (gold_text != expect_text)
    if bad.any():
        row = _first_bad(bad)
        kinds = "texts" if expect_text else "numbers"
        raise ValidationError(f"gold is not of the labels' kind (the labels are {kinds})", source=source,
                              column="gold", row=row, value=gold.iloc[row])


def missing_too(columns: list[str]) -> str:
    """``; 'label' is missing too``: the required columns an error about another one names as well (empty if none)."""
    if not columns:
        return ""
    return f"; {' and '.join(map(repr, columns))} {'is' if len(columns) == 1 else 'are'} missing too"


def columns_note(names: Any) -> str:
    """``the table has: 'a', 'b', 'c'`` (the first 12): what an error about a missing column shows of the columns,
    quoted so that a space around a name (``pair_id, annotator`` in a CSV header) shows."""
    names = [repr(str(name)) for name in names]
    return f"the table has: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}"


def _missing_column_hint(table: pd.DataFrame, column: str, given: pd.Index) -> str:
    """Why a required column may be missing: a file split on the wrong delimiter, or a pair id to derive."""
    if table.shape[1] == 1:
        header = str(table.columns[0])
        for delimiter, name in ((";", "';'"), ("\t", "'\\t'"), ("|", "'|'"), (",", "','")):
            if delimiter in header:
                return (f" (the file was read as one column '{header[:60]}': is it delimited by {name}? "
                        f"--sep {name} on the command line, sep={name} in Python)")
    # the columns it was given (before crowd-kit's names were read), so that a table of item/rater/vote says what
    # there is to rename, as --columns does
    has = columns_note(given)
    # Excel's quoted " annotator", or "Label": the column is there, under a name that differs only in spaces or case
    names = [name for name in given if isinstance(name, str)]
    close = [name for name in names if name.strip().casefold() == column.casefold()]
    if close:
        has += f"; {str(close[0])!r} differs from '{column}' only in spaces or case"
    else:  # a misspelt header or --columns target ("annotater"): the error named the column but not the slip
        folded = {name.strip().casefold(): name for name in reversed(names)}  # the first of equal foldings
        spelt = difflib.get_close_matches(column, list(folded), n=1, cutoff=0.8)
        if spelt:
            has += f"; {folded[spelt[0]]!r} looks like a misspelt '{column}'"
    if column == "pair_id":
        # a step table's or per-attribute ratings' own column under Excel's spaces ("step ") made the table read as
        # pairwise judgments, and the error named only pair_id
        kinds = {"attribute": "per-attribute ratings", "step": "a step-judgments table",
                 "solution_id": "a step-judgments table"}
        other = [(name, key) for name in names for key in kinds if name != key and name.strip().casefold() == key]
        if other:
            name, key = other[0]
            has += f"; {name!r} differs from '{key}' only in spaces or case (the column of {kinds[key]})"
        return f" (or give response_a and response_b, and the pair id is derived from the texts; {has})"
    return f" ({has})"


def _apply_duplicate_policy(table: pd.DataFrame, policy: str, source: str | None) -> pd.DataFrame:
    if policy == "keep":
        return table
    repeated = table.duplicated(["pair_id", "annotator"], keep=False)
    if not repeated.any():
        return table
    if policy == "error":
        row = int(np.flatnonzero(table.duplicated(["pair_id", "annotator"], keep="first").to_numpy())[0])
        raise ValidationError(
            "annotator judged this pair more than once (to allow it: --duplicates first, last or keep on the "
            "command line, duplicates='first', 'last' or 'keep' in Python)",
            source=source,
            column="annotator",
            row=row,
            value=(table["pair_id"].iloc[row], table["annotator"].iloc[row]),
        )
    return table.drop_duplicates(["pair_id", "annotator"], keep=policy)  # the kept rows' positions as the index


def _check_distinct_sides(table: pd.DataFrame, source: str | None) -> None:
    for left, right in (("response_a_id", "response_b_id"), ("response_a", "response_b")):
        if left in table.columns and right in table.columns:
            a, b = table[left], table[right]
            same = same_cells(a, b)
            if same.any():
                row = _first_bad(same)
                raise ValidationError(
                    "both sides of the pair are the same response",
                    source=source, column=right, row=row, value=b.iloc[row],
                )
            return  # ids decide when present; texts only when there are no ids


def same_cells(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise: both cells present and equal; cells of different types (text and a number) never are. Columns
    of one type are compared in one vectorised step (a Python loop over a million Arrow strings took 2 s, nine
    tenths of validating the table); only columns that mix types go cell by cell."""
    present = a.notna().to_numpy() & b.notna().to_numpy()
    try:
        if a.dtype == b.dtype and a.dtype != object:
            equal = a.eq(b).fillna(False).to_numpy(dtype=bool)
            return pd.Series(equal & present, index=a.index, dtype=bool)
        kind = pd.api.types.infer_dtype(a, skipna=True)
        if kind in ("string", "integer") and pd.api.types.infer_dtype(b, skipna=True) == kind:
            equal = a.to_numpy(dtype=object) == b.to_numpy(dtype=object)  # numpy's loop, in C
            return pd.Series(np.asarray(equal, dtype=bool) & present, index=a.index, dtype=bool)
    except (TypeError, ValueError):  # e.g. categoricals of different categories
        pass
    return pd.Series([_same(x, y) for x, y in zip(a, b)], index=a.index, dtype=bool)


def _same(x: Any, y: Any) -> bool:
    """Two cells hold the same (present) value; cells of different types never do."""
    if type(x) is not type(y) or x is None or x is pd.NA:
        return False
    try:
        return bool(x == y)
    except (TypeError, ValueError):  # e.g. arrays, whose == is element-wise
        return False


def _sorted_labels(values: np.ndarray) -> list[Any]:
    try:
        return sorted(values.tolist())
    except TypeError:
        return sorted(values.tolist(), key=str)
