"""Multi-attribute judgments: one row per rater x item x attribute (long form), its schema, validation and codes.

A judgments table with an ``attribute`` column holds ratings of several aspects at once: graded ratings of single
responses (HelpSteer2's helpfulness, correctness, coherence, complexity, verbosity on 0..4; summarize-from-feedback's
axes on 1..7) or per-aspect judgments of pairs (MultiPref's overall, helpful, truthful and harmless preferences on
-2..2; UKPConvArg2's reasons as 0/1 properties of a pair).

Columns
-------
``response_id`` or ``pair_id``
    The rated item: a single response (*response items*) or a compared pair (*pair items*). A table has one kind.
``annotator``
    Who gave the rating.
``attribute``
    The rated aspect (text; it becomes part of column names such as ``helpfulness_mean``).
``label``
    An integer on the attribute's declared scale ``low..high``. On pair items a scale symmetric around 0
    (``-S..S``) is a *preference* (negative: A better, 0: tie, as in the graded form of the single-attribute
    table); plain ``"A"``/``"B"``/``"tie"`` labels of a pair attribute are read as ``-1``/``1``/``0`` on ``-1..1``.
    Any other scale on pair items (e.g. ``0..1``) is a *property* of the pair.

Optional: ``prompt``, ``response`` (response items); ``prompt``, ``response_a``, ``response_b``, ``response_a_id``,
``response_b_id`` (pair items); ``scale_min`` / ``scale_max`` (each row's declared scale, so that tables from
different sources keep their scales when concatenated); ``annotator_*`` and ``item_*`` covariates; ``confidence``.

The scale of every attribute must be declared, by ``scales=`` or by the ``scale_min``/``scale_max`` columns (or
both, which must agree). :func:`validate_attributes` rejects, with one line naming the file, column, row and
value: a missing attribute, a rating that is not an integer or lies outside its attribute's scale, two scales in
one attribute, an attribute without a declared scale, a repeated rating (same item, rater and attribute) and a pair
whose two sides are the same response. :func:`encode_attributes` gives the integer codes the models work on;
:func:`select_attribute` gives one attribute as a single-attribute judgments table for accord's other models;
:func:`attributes_from_wide` turns one column per attribute into the long form.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.schema import (INT64_LIMIT, check_flat_columns, check_ids, checked, checked_info,
                                    decode_dictionaries, dropped_before, first_bad_rating, input_rows, plain_values,
                                    rows_of_input, string_mask, user_rows)

ATTRIBUTE_COLUMN = "attribute"
ITEM_KINDS: dict[str, str] = {"response": "response_id", "pair": "pair_id"}
SCALE_COLUMNS: tuple[str, str] = ("scale_min", "scale_max")
PREFERENCE_CODES: dict[str, int] = {"A": -1, "tie": 0, "B": 1}
ATTRIBUTE_FORM = "attribute"

ItemKind = Literal["response", "pair"]
Scale = tuple[int, int]
ScalesArg = Scale | Mapping[str, Scale] | int | None


@dataclass(frozen=True)
class AttributeCodes:
    """Integer codes of a validated multi-attribute table.

    ``items[n]``, ``workers[n]``, ``attributes[n]`` are the item, rater and attribute codes of rating ``n`` and
    ``levels[n]`` its level counted from the bottom of its attribute's scale (``label - low``);
    ``item_index`` / ``worker_index`` / ``attribute_names`` map codes back; ``lows[a]``, ``highs[a]`` are the
    scale of attribute ``a``.
    """

    items: np.ndarray
    workers: np.ndarray
    attributes: np.ndarray
    levels: np.ndarray
    item_index: pd.Index
    worker_index: pd.Index
    attribute_names: tuple[str, ...]
    lows: np.ndarray
    highs: np.ndarray
    item_kind: str

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @property
    def n_workers(self) -> int:
        return len(self.worker_index)

    @property
    def n_attributes(self) -> int:
        return len(self.attribute_names)

    @property
    def n_ratings(self) -> int:
        return len(self.levels)

    @property
    def n_levels(self) -> np.ndarray:
        """Number of levels of each attribute's scale (``high - low + 1``)."""
        return self.highs - self.lows + 1

    def counts(self) -> np.ndarray:
        """``[n_items, n_attributes]``: how many ratings each item has on each attribute."""
        flat = self.items * self.n_attributes + self.attributes
        return np.bincount(flat, minlength=self.n_items * self.n_attributes).reshape(self.n_items, -1)


def is_attribute_table(judgments: pd.DataFrame) -> bool:
    """Whether a table is in the multi-attribute (long) form."""
    return ATTRIBUTE_COLUMN in judgments.columns


def attribute_info(table: pd.DataFrame) -> dict[str, Any]:
    """What :func:`validate_attributes` recorded: ``item`` kind, ``attributes`` and their ``scales``."""
    info = checked_info(table)
    if info is None or info.get("form") != ATTRIBUTE_FORM:
        info = validate_attributes(table).attrs["accord"]
    return info


def validate_attributes(
    judgments: pd.DataFrame,
    *,
    scales: ScalesArg = None,
    item: ItemKind | None = None,
    duplicates: str = "error",
    source: str | None = None,
) -> pd.DataFrame:
    """Check a multi-attribute table and return a validated copy (never modifies the input).

    Parameters
    ----------
    judgments
        The long-form table (see the module docstring). crowd-kit's ``worker`` is accepted for ``annotator`` and
        ``task`` for the item column.
    scales
        The declared scales: ``{attribute: (low, high)}``, one ``(low, high)`` for every attribute, or an int ``S``
        for ``-S..S``. May be omitted when the table has ``scale_min``/``scale_max`` columns (and must agree with
        them when both are given).
    item
        ``"response"`` or ``"pair"``; inferred from which of ``response_id`` / ``pair_id`` the table has.
    duplicates
        One rater rating one item on one attribute twice: ``"error"`` (default), keep the ``"first"`` or
        ``"last"``, or ``"keep"`` them all.
    source
        Where the table came from (a file name), used in error messages.

    Returns
    -------
    pandas.DataFrame
        The table with integer ``label`` and ``attrs["accord"] = {"form": "attribute", "item": ..., "attributes":
        [...], "scales": {attribute: [low, high]}}`` (attributes in the order declared, else of first appearance).
    """
    if not isinstance(judgments, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(judgments).__name__}", source=source)
    if duplicates not in ("error", "first", "last", "keep"):
        raise ValidationError("duplicates must be one of ('error', 'first', 'last', 'keep')", value=duplicates)
    repeated = judgments.columns[judgments.columns.duplicated()]
    if len(repeated):
        raise ValidationError("the column appears more than once", source=source, column=repeated[0])
    check_flat_columns(judgments, source)
    given_rows = input_rows(judgments)  # a validated table validated again keeps the user's rows
    table = decode_dictionaries(judgments.copy())
    table.attrs = {}
    if "worker" in table.columns:
        if "annotator" in table.columns:
            raise ValidationError("both 'worker' and 'annotator' columns are present", source=source,
                                  column="worker")
        table = table.rename(columns={"worker": "annotator"})
    kind = _item_kind(table, item, source)
    item_column = ITEM_KINDS[kind]
    if "task" in table.columns:
        if item_column in table.columns:
            raise ValidationError(f"both 'task' and '{item_column}' columns are present", source=source,
                                  column="task")
        table = table.rename(columns={"task": item_column})
    for column in (item_column, "annotator", ATTRIBUTE_COLUMN, "label"):
        if column not in table.columns:
            raise ValidationError("missing required column of a multi-attribute table", source=source,
                                  column=column)
    if len(table) == 0:
        raise ValidationError("the judgments table is empty", source=source)
    table = table.reset_index(drop=True)
    for column in (item_column, "annotator", ATTRIBUTE_COLUMN, "label"):
        table[column] = plain_values(table[column])

    for column in (item_column, "annotator"):
        check_ids(table[column], column, source)
    table[ATTRIBUTE_COLUMN] = _check_attribute_names(table[ATTRIBUTE_COLUMN], source)
    names = list(pd.unique(table[ATTRIBUTE_COLUMN]))
    table["label"], text_attributes = _labels_as_integers(table, kind, source)
    declared = _declared_scales(table, scales, names, text_attributes, source)
    order = names
    if isinstance(scales, Mapping):  # the declared order first, then any attribute declared by the scale columns
        order = [str(a) for a in scales if str(a) in set(names)] + [a for a in names if a not in scales]
        warn_unrated([str(a) for a in scales if str(a) not in set(names)], source)
    _check_on_scale(table, declared, source)
    given = len(table)
    table = _apply_duplicates(table, item_column, duplicates, source)
    positions = user_rows(table.index, given_rows)
    table = table.reset_index(drop=True)
    if kind == "pair":
        with rows_of_input(positions):
            _check_distinct_sides(table, source)
    table["label"] = table["label"].astype("int64")
    return checked(table, {
        "form": ATTRIBUTE_FORM,
        "item": kind,
        "attributes": order,
        "scales": {a: [int(declared[a][0]), int(declared[a][1])] for a in order},
    }, positions, dropped_before(judgments, given_rows) + given - len(table))


def encode_attributes(table: pd.DataFrame) -> AttributeCodes:
    """Integer codes of a multi-attribute table (validated first when it was not)."""
    info = checked_info(table)
    if info is None or info.get("form") != ATTRIBUTE_FORM or len(table) == 0:  # (filtered to no rows: the error)
        table = validate_attributes(table)
        info = table.attrs["accord"]
    item_column = ITEM_KINDS[info["item"]]
    present = set(pd.unique(table[ATTRIBUTE_COLUMN]))  # a filtered table keeps its attrs, maybe not every attribute
    names = tuple(a for a in info["attributes"] if a in present)
    item_codes, item_index = pd.factorize(table[item_column], sort=False)
    worker_codes, worker_index = pd.factorize(table["annotator"], sort=False)
    attribute_codes = pd.Index(names).get_indexer(table[ATTRIBUTE_COLUMN])
    lows = np.array([info["scales"][a][0] for a in names], dtype=np.int64)
    highs = np.array([info["scales"][a][1] for a in names], dtype=np.int64)
    # pandas carries attrs through assign/copy: a table changed since it was validated (an attribute renamed, a
    # rating moved off its scale) failed in the fit on numpy's "'list' argument must have no negative elements"
    stale = "; the table changed since it was validated: validate it again"
    unknown = attribute_codes < 0
    if unknown.any():
        row = _first(unknown)
        raise ValidationError(f"attribute not among the validated attributes {list(names)}{stale}",
                              column=ATTRIBUTE_COLUMN, row=row, value=table[ATTRIBUTE_COLUMN].iloc[row])
    labels = pd.to_numeric(table["label"], errors="coerce").to_numpy(dtype=float)
    off = ~((labels >= lows[attribute_codes]) & (labels <= highs[attribute_codes]) & (labels == np.round(labels)))
    if off.any():
        row = _first(off)
        raise ValidationError(f"rating outside the validated scale {lows[attribute_codes[row]]}.."
                              f"{highs[attribute_codes[row]]}{stale}", column="label", row=row,
                              value=table["label"].iloc[row])
    levels = labels.astype(np.int64) - lows[attribute_codes]
    return AttributeCodes(
        items=item_codes.astype(np.int64),
        workers=worker_codes.astype(np.int64),
        attributes=attribute_codes.astype(np.int64),
        levels=levels,
        item_index=pd.Index(item_index, name=item_column),
        worker_index=pd.Index(worker_index, name="annotator"),
        attribute_names=names,
        lows=lows,
        highs=highs,
        item_kind=info["item"],
    )


def is_preference_scale(scale: Sequence[int]) -> bool:
    """A pair attribute on ``-S..S`` is a preference (negative: A better)."""
    return int(scale[0]) == -int(scale[1]) and int(scale[1]) >= 1


def refuse_shared_columns(columns: Iterable[tuple[str, str]], table: str) -> None:
    """One error where two of ``columns`` (``(column name, what it holds)`` in order) have one name: the per-attribute
    columns are named from the attribute (``n_<a>``), so an attribute 'judgments' gave ``n_judgments`` beside the
    total's, and the later silently replaced the earlier in ``table``."""
    owners: dict[str, str] = {}
    for column, what in columns:
        if column in owners and owners[column] != what:
            raise AccordError(f"{owners[column]} and {what} both give the column '{column}' of {table}: rename the "
                              "attribute")
        owners[column] = what


def warn_unrated(attributes: Iterable[str], source: str | None, stacklevel: int = 3) -> None:
    """A warning naming the ``attributes`` asked for (by name, by default or by a declared scale) that no rating of
    the table rates (every rater skipped them): they were left out of the table without a word, so the cleaned dataset
    and a reward model trained on it lacked them, and a combination weighting one said only that the model has no
    such attribute."""
    names = list(dict.fromkeys(attributes))
    if not names:
        return
    what, it = ("attribute ", "it") if len(names) == 1 else ("attributes ", "them")
    warnings.warn(f"{source or 'the table'}: no rating of the {what}{', '.join(repr(a) for a in names)} (every rating "
                  f"of {it} is missing): left out of the table, so the cleaned dataset and a reward model trained on "
                  f"it have none", UserWarning, stacklevel=stacklevel)


def select_attribute(table: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """One attribute as a single-attribute judgments table that accord's other models accept.

    A preference attribute of pairs becomes the preference form (``A``/``B``/``tie``) when its scale is ``-1..1``
    and the graded form (``scale=S``) when it is ``-S..S``; any other attribute becomes the categorical form, its
    classes the levels of the scale and its items (responses or pairs) in ``pair_id``.
    """
    from accord.datasets.schema import validate

    info = attribute_info(table)
    if attribute not in info["scales"]:
        raise ValidationError(f"no such attribute (the table has {info['attributes']})", column=ATTRIBUTE_COLUMN,
                              value=attribute)
    low, high = info["scales"][attribute]
    rows = table[table[ATTRIBUTE_COLUMN] == attribute].drop(columns=[ATTRIBUTE_COLUMN, *SCALE_COLUMNS],
                                                            errors="ignore")
    rows.attrs = {}
    if info["item"] == "pair" and is_preference_scale((low, high)):
        if high == 1:
            rows["label"] = rows["label"].map({-1: "A", 0: "tie", 1: "B"}).astype(object)
            return validate(rows, form="preference")
        return validate(rows, form="graded", scale=high)
    if info["item"] == "response":
        rows = rows.rename(columns={"response_id": "pair_id"})
    return validate(rows, form="categorical", classes=list(range(low, high + 1)))


def attributes_from_wide(
    frame: pd.DataFrame,
    attributes: Sequence[str] | Mapping[str, str],
    *,
    scales: ScalesArg,
    keep: Sequence[str] = (),
    source: str | None = None,
) -> pd.DataFrame:
    """Turn one column per attribute into the long form (one row per rater x item x attribute), validated.

    ``attributes`` names the rating columns (or maps ``{column: attribute name}``); ``keep`` names the columns
    repeated on every row (at least the item column and ``annotator``). Missing cells (NaN, None) are not
    ratings and are dropped.
    """
    for name, given in (("attributes", attributes), ("keep", keep)):
        if isinstance(given, str):  # a lone name would be read letter by letter
            raise ValidationError(f"{name} must be a list of column names, e.g. {name}=[{given!r}]", value=given)
    mapping = dict(attributes) if isinstance(attributes, Mapping) else {a: a for a in attributes}
    for column in (*mapping, *keep):
        if column not in frame.columns:
            raise ValidationError("missing column", source=source, column=column)
    both = [column for column in mapping if column in set(keep)]
    if both:
        raise ValidationError("the column is both a rating column (attributes) and a kept column (keep)",
                              source=source, column=both[0])
    made = [column for column in keep if column in (ATTRIBUTE_COLUMN, "label")]
    if made:  # was pandas' "melt output columns cannot contain duplicate names" (or "value_name ... cannot match")
        raise ValidationError(f"a kept column cannot be called {made[0]!r}: the long form makes its own "
                              f"{ATTRIBUTE_COLUMN!r} and 'label' columns (rename it, or leave it out of keep)",
                              source=source, column=made[0])
    unnamed = [column for column, name in mapping.items() if not isinstance(name, str)]
    if unnamed:  # was "column 'attribute', row 0: attribute must be a name", a column and row of no table given
        raise ValidationError(f"the attribute of this rating column must be a name (text), not "
                              f"{mapping[unnamed[0]]!r}: map the column to a name, e.g. "
                              f"attributes={{{unnamed[0]!r}: {str(mapping[unnamed[0]])!r}}}",
                              source=source, column=unnamed[0])
    names = list(mapping.values())
    repeated = [column for column, name in mapping.items() if names.count(name) > 1]
    if repeated:  # one rater would rate one item twice on one attribute, in one row
        raise ValidationError(f"two rating columns give the attribute {mapping[repeated[0]]!r} "
                              f"({', '.join(map(repr, repeated))}); give each attribute one column",
                              source=source, column=repeated[1])
    # the rows' positions as the index: ``_row`` below orders by it, and a frame's own index (a string index, a
    # sorted or filtered frame's, a repeated one) put the long rows in the order of its labels, not of the rows
    # melted into a name no column has: a rating column called 'label' clashed with the long form's label (pandas'
    # "value_name (label) cannot match an element in the DataFrame columns")
    value = "label"
    while value in frame.columns:
        value = f"_{value}"
    long = frame[[*keep, *mapping]].reset_index(drop=True).melt(
        id_vars=list(keep), value_vars=list(mapping), var_name=ATTRIBUTE_COLUMN, value_name=value, ignore_index=False)
    long = long.rename(columns={value: "label"})
    long["_column"] = long[ATTRIBUTE_COLUMN]
    long[ATTRIBUTE_COLUMN] = long[ATTRIBUTE_COLUMN].map(mapping)
    long = long[long["label"].notna()]
    # source row order, then attribute order: one item's ratings stay together
    long["_row"] = long.index
    long["_attr"] = pd.Index(list(mapping.values())).get_indexer(long[ATTRIBUTE_COLUMN])
    long = long.sort_values(["_row", "_attr"], kind="stable").reset_index(drop=True)
    rows, columns = long.pop("_row").to_numpy(), long.pop("_column").to_numpy()
    long = long.drop(columns=["_attr"])
    rated = set(long[ATTRIBUTE_COLUMN])
    warn_unrated([name for name in mapping.values() if name not in rated], source)
    declared = scales
    if isinstance(scales, Mapping):  # (the attributes without a rating named above, once)
        declared = {mapping.get(k, k): v for k, v in scales.items()}
        declared = {k: v for k, v in declared.items() if k in rated or k not in set(mapping.values())}
    try:
        return validate_attributes(long, scales=declared, source=source)
    except ValidationError as error:
        # "missing required column" of a column the frame has (or of response_id where it has pair_id): it was left
        # out of keep
        wanted = [*ITEM_KINDS.values()] if error.column in ITEM_KINDS.values() else [error.column]
        left_out = [c for c in wanted if c in set(frame.columns) - set(keep) - set(mapping)]
        if error.row is None and left_out:
            raise ValidationError(f"the long form needs this column on every rating, and keep leaves it out: "
                                  f"keep={[*keep, left_out[0]]!r}", source=source, column=left_out[0]) from None
        if error.row is None:
            raise
        # the cell of the frame given: its row, and the rating column for a rating or its attribute (the long table's
        # row and its 'label' column were of a table the caller never saw)
        row = int(error.row)
        column = columns[row] if error.column in ("label", ATTRIBUTE_COLUMN) else error.column
        raise ValidationError(error.problem, source=source, column=column, row=int(rows[row]),
                              value=error.value) from None


# -- checks -------------------------------------------------------------------------------------------------


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _item_kind(table: pd.DataFrame, item: str | None, source: str | None) -> str:
    if item is not None:
        if item not in ITEM_KINDS:
            raise ValidationError(f"item must be one of {sorted(ITEM_KINDS)}", value=item)
        return item
    has = [kind for kind, column in ITEM_KINDS.items() if column in table.columns]
    if len(has) == 2:
        raise ValidationError("both 'response_id' and 'pair_id' are present: say which is rated (item='response' "
                              "or item='pair')", source=source, column="response_id")
    if has:
        return has[0]
    return "pair" if "response_a" in table.columns else "response"


def _check_attribute_names(values: pd.Series, source: str | None) -> pd.Series:
    missing = values.isna()
    if missing.any():
        row = _first(missing)
        raise ValidationError("attribute missing from this row (every rating must name its attribute)",
                              source=source, column=ATTRIBUTE_COLUMN, row=row, value=values.iloc[row])
    is_text = values.map(lambda v: isinstance(v, str)) if not pd.api.types.is_string_dtype(values) else None
    if is_text is not None and not is_text.all():
        row = _first(~is_text)
        raise ValidationError("attribute must be a name (text)", source=source, column=ATTRIBUTE_COLUMN, row=row,
                              value=values.iloc[row])
    text = values.astype(str)
    blank = text.str.strip().eq("")
    if blank.any():
        row = _first(blank)
        raise ValidationError("attribute missing from this row (empty name)", source=source,
                              column=ATTRIBUTE_COLUMN, row=row, value=values.iloc[row])
    return text.astype(object)


def _labels_as_integers(table: pd.DataFrame, kind: str, source: str | None) -> tuple[pd.Series, set[str]]:
    """Labels as integers: numbers that are whole, or A/B/tie on pair items (per attribute, never mixed); and the
    attributes whose labels were A/B/tie."""
    values = table["label"]
    missing = values.isna()
    if missing.any():
        row = _first(missing)
        raise ValidationError("missing rating", source=source, column="label", row=row, value=values.iloc[row])
    if pd.api.types.is_bool_dtype(values):
        raise ValidationError("ratings must be integers, not booleans", source=source, column="label", row=0,
                              value=values.iloc[0])
    if pd.api.types.is_integer_dtype(values):
        _check_int64_range(values, source)
        return values.astype("int64"), set()
    if pd.api.types.is_float_dtype(values):
        numeric = values.to_numpy(dtype=float)
        bad = ~np.isfinite(numeric) | (numeric != np.round(numeric))
        if bad.any():
            row = _first(bad)
            raise ValidationError("rating is not an integer", source=source, column="label", row=row,
                                  value=values.iloc[row])
        _check_int64_range(values, source)
        return pd.Series(numeric.astype(np.int64), index=values.index), set()
    is_text = string_mask(values)
    text_attrs: set[str] = set()
    if is_text.any():
        if kind != "pair":
            row = first_bad_rating(values, is_text)
            raise ValidationError("ratings of responses must be integers on the attribute's scale", source=source,
                                  column="label", row=row, value=values.iloc[row])
        # first: a text that is no A/B/tie among numbers was called "both A/B/tie labels and numbers" at a number
        unknown = is_text & ~values.isin(list(PREFERENCE_CODES))
        if unknown.any():
            row = first_bad_rating(values, unknown)
            raise ValidationError("text labels of pairs must be 'A', 'B' or 'tie'", source=source, column="label",
                                  row=row, value=values.iloc[row])
        # A/B/tie and numbers must not share an attribute: that would be two scales in one attribute
        text_attrs = set(table.loc[is_text, ATTRIBUTE_COLUMN])
        mixed = ~is_text & table[ATTRIBUTE_COLUMN].isin(text_attrs)
        if mixed.any():
            row = _first(mixed)
            raise ValidationError(
                f"two scales in one attribute: attribute '{table[ATTRIBUTE_COLUMN].iloc[row]}' has both A/B/tie "
                f"labels and numbers", source=source, column="label", row=row, value=values.iloc[row])
        if is_text.all():  # A/B/tie only (checked above): their codes, looked up for the column at once
            return values.map(PREFERENCE_CODES).astype("int64"), text_attrs
    integral = values.map(lambda v: isinstance(v, str) or _is_whole(v))
    if not integral.all():
        row = _first(~integral)
        raise ValidationError("rating is not an integer", source=source, column="label", row=row,
                              value=values.iloc[row])
    codes = values.map(lambda v: PREFERENCE_CODES[v] if isinstance(v, str) else int(v))
    _check_int64_range(codes, source, shown=values)
    return codes.astype("int64"), text_attrs


def _check_int64_range(values: pd.Series, source: str | None, shown: pd.Series | None = None) -> None:
    """Whole ratings beyond 64-bit integers (2**70 in a JSON file, a uint64 column) would overflow, or wrap round to
    another number that may even lie on the scale; no scale reaches them, so they are named as off every scale."""
    if values.dtype == object:  # Python ints of any size, compared exactly (as floats, -2**63-1 is -2**63)
        outside = values.map(lambda v: _is_whole(v) and not -INT64_LIMIT <= int(v) < INT64_LIMIT).to_numpy(bool)
    else:  # a uint64 column
        with np.errstate(invalid="ignore"):
            outside = values.to_numpy(dtype=float, na_value=np.nan) >= INT64_LIMIT
    if outside.any():
        row = _first(outside)
        raise ValidationError("rating beyond any scale (not a 64-bit integer)", source=source, column="label",
                              row=row, value=(values if shown is None else shown).iloc[row])


def _is_whole(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value) and float(value).is_integer())
    return False


def _scale_tuple(value: Any, where: str) -> Scale:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 1 or value >= INT64_LIMIT:
            raise ValidationError(f"scale of {where} must be a positive integer S (for -S..S) or (low, high)",
                                  value=value)
        return (-int(value), int(value))
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = value
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and -INT64_LIMIT <= v < INT64_LIMIT
               for v in (low, high)) and low < high:
            return (int(low), int(high))
    raise ValidationError(f"scale of {where} must be (low, high) with integers low < high", value=value)


def _declared_scales(table: pd.DataFrame, scales: ScalesArg, names: list[str], text_attributes: set[str],
                     source: str | None) -> dict[str, Scale]:
    declared: dict[str, Scale] = {}
    if isinstance(scales, Mapping):
        declared = {str(a): _scale_tuple(s, f"attribute '{a}'") for a, s in scales.items()}
    elif scales is not None:
        one = _scale_tuple(scales, "every attribute")
        declared = {a: one for a in names}
    from_columns = _scales_from_columns(table, source)
    for attribute, scale in from_columns.items():
        if attribute in declared and declared[attribute] != scale:
            row = _first(table[ATTRIBUTE_COLUMN] == attribute)
            raise ValidationError(
                f"two scales in one attribute: '{attribute}' is declared {declared[attribute][0]}.."
                f"{declared[attribute][1]} but its rows say {scale[0]}..{scale[1]}",
                source=source, column=SCALE_COLUMNS[0], row=row)
        declared.setdefault(attribute, scale)
    for attribute in sorted(text_attributes):  # A/B/tie labels imply -1..1 when nothing else is declared
        scale = declared.setdefault(attribute, (-1, 1))
        if not is_preference_scale(scale):
            row = _first(table[ATTRIBUTE_COLUMN] == attribute)
            raise ValidationError(
                f"two scales in one attribute: '{attribute}' has A/B/tie labels but is declared {scale[0]}..{scale[1]}",
                source=source, column="label", row=row, value=table["label"].iloc[row])
    undeclared = [a for a in names if a not in declared]
    if undeclared:
        row = _first(table[ATTRIBUTE_COLUMN] == undeclared[0])
        raise ValidationError(
            f"no declared scale for attribute '{undeclared[0]}' (give scale_min/scale_max columns, or pass "
            f"scales={{'{undeclared[0]}': (low, high)}} in Python; --scale S on the command line declares -S..S for "
            "every attribute)", source=source, column=ATTRIBUTE_COLUMN, row=row,
            value=undeclared[0])
    return declared


def _scales_from_columns(table: pd.DataFrame, source: str | None) -> dict[str, Scale]:
    present = [c for c in SCALE_COLUMNS if c in table.columns]
    if not present:
        return {}
    if len(present) == 1:
        missing = [c for c in SCALE_COLUMNS if c not in table.columns][0]
        raise ValidationError(f"'{present[0]}' needs its partner column", source=source, column=missing)
    bounds = {}
    for column in SCALE_COLUMNS:
        numeric = pd.to_numeric(table[column], errors="coerce")
        as_float = numeric.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):  # beyond 64 bits a bound would wrap round to another number
            beyond = (as_float >= INT64_LIMIT) | (as_float < -INT64_LIMIT)
        bad = numeric.isna() | (numeric != numeric.round()) | beyond
        if bad.any():
            row = _first(bad)
            raise ValidationError("scale bound must be a (64-bit) integer", source=source, column=column, row=row,
                                  value=table[column].iloc[row])
        bounds[column] = numeric.astype("int64")
    low, high = bounds["scale_min"], bounds["scale_max"]
    bad = low >= high
    if bad.any():
        row = _first(bad)
        raise ValidationError("scale_min must be below scale_max", source=source, column="scale_max", row=row,
                              value=(int(low.iloc[row]), int(high.iloc[row])))
    frame = pd.DataFrame({"attribute": table[ATTRIBUTE_COLUMN], "low": low, "high": high})
    first = frame.drop_duplicates(ATTRIBUTE_COLUMN).set_index(ATTRIBUTE_COLUMN)
    expected = first.reindex(frame[ATTRIBUTE_COLUMN])
    differs = (expected["low"].to_numpy() != low.to_numpy()) | (expected["high"].to_numpy() != high.to_numpy())
    if differs.any():
        row = _first(differs)
        attribute = frame[ATTRIBUTE_COLUMN].iloc[row]
        raise ValidationError(
            f"two scales in one attribute: '{attribute}' is {first.loc[attribute, 'low']}.."
            f"{first.loc[attribute, 'high']} in its first row and {low.iloc[row]}..{high.iloc[row]} here",
            source=source, column="scale_max" if low.iloc[row] == first.loc[attribute, "low"] else "scale_min",
            row=row)
    return {a: (int(r["low"]), int(r["high"])) for a, r in first.iterrows()}


def _check_on_scale(table: pd.DataFrame, declared: dict[str, Scale], source: str | None) -> None:
    attribute = table[ATTRIBUTE_COLUMN]
    low = attribute.map({a: s[0] for a, s in declared.items()}).to_numpy(dtype=np.int64)
    high = attribute.map({a: s[1] for a, s in declared.items()}).to_numpy(dtype=np.int64)
    labels = table["label"].to_numpy(dtype=np.int64)
    outside = (labels < low) | (labels > high)
    if outside.any():
        row = _first(outside)
        raise ValidationError(
            f"rating outside the declared scale {low[row]}..{high[row]} of attribute '{attribute.iloc[row]}'",
            source=source, column="label", row=row, value=labels[row])


def _apply_duplicates(table: pd.DataFrame, item_column: str, policy: str, source: str | None) -> pd.DataFrame:
    if policy == "keep":
        return table
    key = [item_column, "annotator", ATTRIBUTE_COLUMN]
    repeated = table.duplicated(key, keep="first")
    if not repeated.any():
        return table
    if policy == "error":
        row = _first(repeated)
        raise ValidationError(
            "annotator rated this item on this attribute more than once (pass duplicates='first', 'last' or "
            "'keep' to allow it)", source=source, column="annotator", row=row,
            value=tuple(table[k].iloc[row] for k in key))
    return table.drop_duplicates(key, keep=policy)  # the kept rows' positions as the index


def _check_distinct_sides(table: pd.DataFrame, source: str | None) -> None:
    for left, right in (("response_a_id", "response_b_id"), ("response_a", "response_b")):
        if left in table.columns and right in table.columns:
            a, b = table[left], table[right]
            same = (a.astype(str) == b.astype(str)) & a.notna() & b.notna()
            if same.any():
                row = _first(same)
                raise ValidationError("both sides of the pair are the same response", source=source, column=right,
                                      row=row, value=b.iloc[row])
            return
