"""Judgments read as a stream of Parquet record batches, keeping one shard of the pairs.

A fit across ``world_size`` processes gives each process (rank) the pairs whose id hashes to it, so that every
judgment of a pair lands on one rank and no rank ever holds the whole table: :func:`read_judgment_shard` walks the
file (or folder of files) one record batch at a time with ``pyarrow.dataset``, keeps the rows of its own pairs in
Arrow's compact columns, and encodes them at the end. Memory grows with the shard, not with the file.

What the shard keeps besides the codes is what lets the ranks agree on one encoding without exchanging the
judgments: the row at which each local pair and annotator first appears in the file (a single process numbers pairs
and annotators in order of first appearance; the ranks reproduce that order from these rows) and the distinct labels.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.schema import (CROWDKIT_COLUMNS, MIXED_BOOLEAN_IDS, MIXED_LABELS, MIXED_TEXT_IDS,
                                     PREFERENCE_LABELS, REQUIRED_COLUMNS, blank_label_problem, columns_note,
                                     missing_too, numbered_preference_problem,
                                     respelt_label_problem)

#: rows per record batch read from the file (a batch never spans two Parquet row groups)
BATCH_ROWS = 1 << 16
#: the characters Python's ``str.strip`` cuts (what :func:`accord.datasets.schema.check_ids` compares ids without;
#: written out: finding them among all code points takes 0.1 s)
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


@dataclass
class JudgmentShard:
    """The judgments of one rank's pairs, encoded locally.

    ``items``, ``workers``, ``labels`` are local codes into ``item_ids``, ``annotator_ids``, ``label_values``
    (each in order of first appearance in the file); ``item_first_row`` / ``annotator_first_row`` the row of the
    whole file where each first appears; ``rows`` the file row of each judgment; ``n_rows`` the file's row count;
    ``columns`` the file's name of each accord column; ``files`` where each file of a folder starts among the rows.
    """

    items: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    item_ids: pd.Index
    annotator_ids: pd.Index
    label_values: list
    item_first_row: np.ndarray
    annotator_first_row: np.ndarray
    n_rows: int
    source: str
    columns: dict[str, str] = field(default_factory=dict)
    files: list[tuple[int, str]] = field(default_factory=list)
    #: the gold label of each local pair that has one (its first in the file, as ``gold_labels`` takes it), indexed
    #: by pair id; None where the input has no gold column
    gold: pd.Series | None = None
    #: where the labels' form is left to the labels (crowd-kit's names), the first gold cell that is not A / B / tie,
    #: as validate would refuse it were they read as A / B / tie (:func:`check_preference_gold`)
    gold_outside: ValidationError | None = None


def shard_of(ids: np.ndarray, world_size: int) -> np.ndarray:
    """The rank that owns each pair id: a hash that is the same in every process (Python's ``hash`` is salted per
    process; pandas' ``hash_array`` is not). :func:`read_judgment_shard` hashes text ids with the spaces around them
    cut (:func:`trimmed`), so that ids differing only in them meet on one rank, which refuses them."""
    hashed = pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)
    return (hashed % np.uint64(world_size)).astype(np.int64)


def _column_names(schema_names: list[str], columns: dict[str, str] | None,
                  source: str) -> tuple[dict[str, str], bool]:
    """accord column -> the file's column, and whether the names are crowd-kit's: the file's columns named as the
    single-process reader names them, the ``source=target`` mapping applied first (its target may be crowd-kit's
    task/worker, which was not followed, and ``q=pair_id`` made accord's names read as crowd-kit's)."""
    from accord.datasets.loaders.generic import checked_mapping

    # a mapping from a column the file lacks was passed over (the file's pair_id read instead), where the
    # single-process reader refuses it
    mapping = checked_mapping(columns or {}, schema_names, source)
    renamed = {mapping.get(name, name): name for name in schema_names}  # name after renaming -> the file's
    crowdkit = "task" in renamed or "worker" in renamed
    if crowdkit:
        clash = [c for c in CROWDKIT_COLUMNS.values() if c in renamed]
        if clash:  # validate's rule: one convention or the other (the accord column was read without a word)
            no_label = [] if "label" in renamed else ["label"]
            raise ValidationError("both crowd-kit (task/worker) and accord (pair_id/annotator) column names are "
                                  f"present{missing_too(no_label)}", source=source,
                                  column=renamed[clash[0]]).missing_too(no_label)
    ours = {v: k for k, v in CROWDKIT_COLUMNS.items()} if crowdkit else {}
    missing = [column for column in REQUIRED_COLUMNS if ours.get(column, column) not in renamed]
    if missing:
        raise ValidationError(f"missing required column ({columns_note(schema_names)}){missing_too(missing[1:])}",
                              source=source, column=missing[0]).missing_too(missing[1:])
    found = {column: renamed[ours.get(column, column)] for column in REQUIRED_COLUMNS}
    return found, crowdkit


def trimmed(values: Any) -> Any:
    """An Arrow column with the :data:`WHITESPACE` around each text cut (other columns as they are)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.utf8_trim(values, characters=WHITESPACE)
    return values


def check_spaced_ids(ids: Any, first_rows: np.ndarray, files: list[tuple[int, str]], name: str) -> None:
    """Refuse two distinct ids that differ only in spaces around them (``'p1'`` and Excel's ``'p1 '``) as
    :func:`accord.datasets.schema.check_ids` refuses them: the one first used second, naming the other's first row.
    ``ids``: an Arrow array of distinct ids, ``first_rows`` the row of the input where each is first used, ``name``
    the file's column. Only the ids with spaces around them, and those they may equal, are looked at."""
    import pyarrow.compute as pc

    cut = trimmed(ids)
    if cut is ids or len(ids) == 0 or pc.all(pc.equal(cut, ids)).as_py():
        return  # no text differs from itself cut, so no two cut texts are equal
    spaced = pc.unique(cut.filter(pc.not_equal(cut, ids)))
    near = np.asarray(pc.is_in(cut, value_set=spaced), dtype=bool)
    found = pd.DataFrame({"id": ids.filter(near).to_pylist(), "cut": cut.filter(near).to_pylist(),
                          "row": first_rows[near]}).sort_values("row", kind="stable")
    found = found[found["cut"].duplicated(keep=False)]
    if found.empty:
        return
    first, second = found[found["cut"] == found["cut"].iloc[0]].iloc[:2].itertuples(index=False)
    first_file, first_row = _in_file(files, int(first.row))
    file, row = _in_file(files, int(second.row))
    earlier = f"row {first_row}" if first_file == file else f"file {first_file}, row {first_row}"
    raise ValidationError(f"id {second.id!r} differs from {first.id!r} ({earlier}) only in spaces around it, so the "
                          "two were read as two ids: write the id one way", source=file, column=name, row=row,
                          value=second.id)


def _decoded(values: Any) -> Any:
    """An Arrow column with a dictionary-encoded column decoded to its values."""
    import pyarrow as pa

    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _check_cells(values: Any, column: str, name: str, source: str, offset: int, preference: bool) -> None:
    """The cell rules of :func:`accord.datasets.schema.validate` that a batch can check alone, in its order: a cell
    is present (not empty, not NaN; an id not blank), a single value; an id is not infinite; a label is not a blank
    text and, unless ``preference`` (every number is outside A / B / tie: the set check after the scan names the
    first), not infinite."""
    import pyarrow as pa
    import pyarrow.compute as pc

    what = "label" if column == "label" else "id"
    floating = pa.types.is_floating(values.type)
    text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    # read_judgments reads NaN as an empty cell ("missing id", not "id is not finite"), and a blank id too
    missing = np.asarray(values.is_null())
    if floating:
        missing = missing | np.isnan(values.to_numpy(zero_copy_only=False))
    elif text and what == "id":
        missing = missing | np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), False))
    if missing.any():
        at = int(np.flatnonzero(missing)[0])
        raise ValidationError(f"missing {what}", source=source, column=name, row=offset + at,
                              value=values[at].as_py())
    if pa.types.is_nested(values.type):  # lists or structs (JSON-derived tables): Arrow's dictionary_encode below
        # had no kernel for them (an ArrowNotImplementedError traceback); read_judgments' message
        raise ValidationError("must be a single value (text or number), not a list or object", source=source,
                              column=name, row=offset, value=values[0].as_py())
    bad, problem = None, ""
    if text and what == "label":
        bad = np.asarray(pc.equal(pc.utf8_trim_whitespace(values), ""))
        problem = blank_label_problem("label")
    elif floating and not (what == "label" and preference):
        bad = np.isinf(values.to_numpy(zero_copy_only=False))
        problem = f"{what} is not finite"
    if bad is not None and bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise ValidationError(problem, source=source, column=name, row=offset + at, value=values[at].as_py())


def _id_kind(arrow_type: Any) -> str | None:
    """An id column's kind as :func:`accord.datasets.schema.check_ids` tells them apart: texts, true/false, or
    numbers (a dictionary column by its values); None for a column of nothing but empty cells (Arrow's null type),
    which the scan reads as missing ids or labels."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_null(arrow_type):
        return None
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "texts"
    return "true/false" if pa.types.is_boolean(arrow_type) else "numbers"


def _check_files(dataset: Any, names: dict[str, str]) -> None:
    """Each file of a folder has the required columns, and ids (and text or other labels) of the kind of the first
    file's (whose schema Arrow reads the folder in). A file without a column had it read as empty ("missing id, row
    0"); one whose ids were numbers where the first file's are texts had them cast to texts without a word (the
    number 7 of one file and the text '7' of another one id), where the single-process reader refuses ids that mix
    kinds (and labels that mix texts and numbers). Only each file's footer is read."""
    import pyarrow as pa

    first = {column: _id_kind(dataset.schema.field(names[column]).type) for column in REQUIRED_COLUMNS}
    for fragment in dataset.get_fragments():
        try:
            schema = fragment.physical_schema
        except (pa.ArrowException, OSError):
            continue  # a damaged file: the scan names it (_batches)
        for column in REQUIRED_COLUMNS:
            if names[column] not in schema.names:
                raise ValidationError(f"missing required column ({columns_note(schema.names)})",
                                      source=fragment.path, column=names[column])
        for column, kind in first.items():
            own = _id_kind(schema.field(names[column]).type)
            if own is None or kind is None or own == kind:
                continue  # a column of empty cells: the scan names its first row
            if column == "label":  # validate's rule for labels: texts and numbers do not mix (true/false may)
                if "texts" in (own, kind):
                    raise ValidationError(f"{MIXED_LABELS} (this file's labels are {own}, those of the folder's "
                                          f"first file {kind})", source=fragment.path, column=names[column])
                continue
            problem = MIXED_TEXT_IDS if "texts" in (own, kind) else MIXED_BOOLEAN_IDS
            raise ValidationError(f"{problem} (this file's ids are {own}, those of the folder's first file "
                                  f"{kind})", source=fragment.path, column=names[column])


def read_judgment_shard(path: str | os.PathLike, rank: int = 0, world_size: int = 1, *,
                        columns: dict[str, str] | None = None, form: str | None = None,
                        batch_rows: int = BATCH_ROWS) -> JudgmentShard:
    """Stream a Parquet file or folder and keep the judgments of the pairs that hash to ``rank``.

    ``columns`` renames the file's columns (``{"question": "pair_id", ...}``); crowd-kit's ``task`` / ``worker``
    are understood. ``form``: ``"preference"`` (labels A / B / tie; the default with accord's column names) or
    ``"categorical"`` (any labels; the default with crowd-kit's names unless every label is A / B / tie, decided
    once the shards are joined). A missing id or label is an error naming the file, column and row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    path = Path(path).expanduser()  # "~/judgments.parquet" is the home folder's, as read_judgments reads it
    source = str(path)
    if not path.exists():
        raise AccordError(f"file {source}: not found")
    if form not in (None, "preference", "categorical"):
        raise AccordError(f"a sharded fit reads preference or categorical labels, not form {form!r}")
    if not 0 <= rank < world_size:
        raise AccordError(f"rank {rank} of {world_size} processes: a rank is 0 .. world_size - 1")
    try:
        dataset = ds.dataset(source, format="parquet")
    except (pa.ArrowInvalid, OSError) as err:
        raise AccordError(f"file {source}: not readable as Parquet ({err})") from err
    if not dataset.files:  # was "missing required column (the table has: )"
        raise AccordError(f"file {source}: a folder without Parquet files")
    renamed = {c: (columns or {}).get(c, c) for c in dataset.schema.names}  # a source the file lacks: refused below
    if {"solution_id", "step"} <= set(renamed.values()):  # was "missing pair_id; --columns NAME=pair_id": renamed,
        # one label per rater and solution was read, the 'step' column unread (steps pooled without a word)
        raise AccordError(f"file {source}: a step-judgments table (columns 'solution_id' and 'step'): a fit across "
                          "processes (--distributed) reads one label per rater and pair; fit it in one process "
                          "(accord aggregate without --distributed), whose step methods label each step")
    # before the column check: ratings of responses (response_id) were told to rename a column to pair_id
    if "attribute" in renamed.values():  # its ratings were pooled into one label per pair, the attribute unread
        raise AccordError(f"file {source}: per-attribute ratings (an 'attribute' column): a fit across processes "
                          "reads one label per rater and pair; fit them in one process (accord aggregate without "
                          "--distributed), which fits each attribute")
    names, crowdkit = _column_names(dataset.schema.names, columns, source)
    if path.is_dir():
        _check_files(dataset, names)
    # the pairs' gold labels, scored against as one process scores them: one value a pair is kept, not a column
    gold_name = next((c for c, accord in renamed.items() if accord == "gold"), None)
    preference = form == "preference" or (form is None and not crowdkit)  # the labels' form, as checked below
    kept: dict[str, list] = {"pair_id": [], "annotator": [], "label": [], "row": [], "gold": []}
    gold_outside: ValidationError | None = None
    offset = 0
    # (row of the whole input where it starts, name) of each file read: an error in a folder's file names that file
    # and its own row (it named the folder and the row counted over all of its files)
    files: list[tuple[int, str]] = []
    folder = path.is_dir()
    scanner = dataset.scanner(columns=[names[c] for c in REQUIRED_COLUMNS] + ([gold_name] if gold_name else []),
                              batch_size=batch_rows)
    for tagged in _batches(scanner, source, dataset if folder else None, names):
        batch = tagged.record_batch
        n = batch.num_rows
        if n == 0:
            continue
        name = tagged.fragment.path if folder else source
        if not files or files[-1][1] != name:
            files.append((offset, name))
        start = offset - files[-1][0]  # the batch's first row in its file
        # a pandas categorical is stored dictionary-encoded: its values, not its dictionary, are the ids (each
        # rank's dictionary would otherwise list every pair of the file, and the blank check below see none)
        columns_now = {c: _decoded(batch.column(names[c])) for c in REQUIRED_COLUMNS}
        for column in REQUIRED_COLUMNS:
            _check_cells(columns_now[column], column, names[column], name, start, preference)
        if gold_name:
            gold_now = _decoded(batch.column(gold_name))
            outside = _check_gold_cells(gold_now, columns_now["label"], gold_name, name, start, preference,
                                        undecided=form is None and crowdkit)
            gold_outside = gold_outside or outside
        mine = shard_of(trimmed(columns_now["pair_id"]).to_numpy(zero_copy_only=False), world_size) == rank
        if mine.any():
            where = pa.array(mine)
            for column in REQUIRED_COLUMNS:
                kept[column].append(pc.filter(columns_now[column], where))
            kept["row"].append(offset + np.flatnonzero(mine))
            if gold_name:
                kept["gold"].append(pc.filter(gold_now, where))
        offset += n
    if offset == 0:
        raise ValidationError("the judgments table is empty", source=source)
    rows = np.concatenate(kept["row"]) if kept["row"] else np.zeros(0, dtype=np.int64)

    def encode(column: str) -> tuple[np.ndarray, pd.Index, np.ndarray]:
        """Codes in order of first appearance, the distinct values, and the file row of each value's first use."""
        if not kept[column]:
            return np.zeros(0, dtype=np.int64), pd.Index([]), np.zeros(0, dtype=np.int64)
        encoded = pc.dictionary_encode(pa.chunked_array(kept[column]).combine_chunks())
        codes = encoded.indices.to_numpy().astype(np.int64)
        first = np.empty(len(encoded.dictionary), dtype=np.int64)
        first[codes[::-1]] = rows[::-1]  # the last write for each code is its earliest row
        if column == "pair_id":  # every spelling of a pair id is on this rank (hashed cut: trimmed)
            check_spaced_ids(encoded.dictionary, first, files, names[column])
        return codes, pd.Index(encoded.dictionary.to_pylist()), first

    items, item_ids, item_first = encode("pair_id")
    workers, annotator_ids, annotator_first = encode("annotator")
    labels, label_values, _ = encode("label")
    gold = _first_gold(kept["gold"], items, item_ids) if gold_name else None
    kept.clear()
    label_list = label_values.tolist()
    if preference:
        bad = [value for value in label_list if value not in PREFERENCE_LABELS]
        if bad:
            file, row = _in_file(files, int(rows[np.flatnonzero(labels == label_list.index(bad[0]))[0]]))
            # "b" for "B": another form was suggested, which makes it a class of its own (validate's message)
            problem = (respelt_label_problem(bad[0], bad) or numbered_preference_problem(label_list)
                       or ("label outside the declared set {'A', 'B', 'tie'} (for other labels: --form categorical "
                           "on the command line, form='categorical' in Python)"))
            raise ValidationError(problem, source=file, column=names["label"], row=row, value=bad[0])
    if len(items):
        key = items * max(len(annotator_ids), 1) + workers
        order = np.argsort(key, kind="stable")
        repeated = np.flatnonzero(key[order][1:] == key[order][:-1])
        if len(repeated):
            file, row = _in_file(files, int(rows[order[repeated[0] + 1]]))
            raise ValidationError("an annotator judged this pair more than once (a fit across processes takes one "
                                  "judgment per rater and pair: remove the repeats, or fit in one process, where "
                                  "--duplicates first, last or keep allows them)", source=file,
                                  column=names["annotator"], row=row, value=annotator_ids[workers[order[repeated[0]]]])
    return JudgmentShard(items=items, workers=workers, labels=labels, rows=rows, item_ids=item_ids,
                         annotator_ids=annotator_ids, label_values=label_list, item_first_row=item_first,
                         annotator_first_row=annotator_first, n_rows=offset, source=source,
                         columns={**names, **({"gold": gold_name} if gold_name else {})}, files=files, gold=gold,
                         gold_outside=gold_outside)


def check_preference_gold(shard: JudgmentShard) -> None:
    """Refuse the shard's gold once its labels were read as A / B / tie: with crowd-kit's names the form is the
    labels' (decided when the shards are joined), and a gold 'C' beside A / B labels, which validate refuses, was
    scored as a class no pair is given. Every rank scans every row, so every rank names the same cell."""
    if shard.gold_outside is not None:
        raise shard.gold_outside


def _check_gold_cells(gold: Any, labels: Any, name: str, source: str, offset: int, preference: bool,
                      undecided: bool) -> ValidationError | None:
    """:func:`accord.datasets.schema.validate`'s rules for a gold cell (it may be empty; present, a label of the
    labels' form and kind), on one batch, its row named in its file. ``undecided``: the labels may yet be read as
    A / B / tie (crowd-kit's names): the error those would give the batch is returned, not raised."""
    from accord.datasets.schema import _check_gold_kind, _check_labels

    values = gold.to_pandas()

    def named(err: ValidationError) -> ValidationError:
        row = None if err.row is None else offset + int(err.row)
        return ValidationError(err.problem, source=source, column=name, row=row, value=err.value)

    try:
        _check_labels(values, "gold", "preference" if preference else "categorical", None, None, source,
                      allow_missing=True)
        if not preference:
            _check_gold_kind(labels.to_pandas(), values, source)
    except ValidationError as err:
        raise named(err) from err
    if undecided:
        try:
            _check_labels(values, "gold", "preference", None, None, source, allow_missing=True)
        except ValidationError as err:
            return named(err)
    return None


def _first_gold(chunks: list, items: np.ndarray, item_ids: pd.Index) -> pd.Series:
    """The first gold label in the file of each pair that has one (``chunks``: the gold cells of the kept rows, in
    the order of ``items``), indexed by pair id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not chunks:
        return pd.Series(dtype=object, name="gold", index=pd.Index([], name="pair_id"))
    values = pa.chunked_array(chunks).combine_chunks()
    present = np.asarray(values.is_valid())
    if pa.types.is_floating(values.type):  # NaN is an empty cell, as pandas reads it
        present &= ~np.isnan(values.to_numpy(zero_copy_only=False))
    at = np.flatnonzero(present)
    pairs, first = np.unique(items[at], return_index=True)  # the kept rows are in file order
    gold = pc.take(values, pa.array(at[first])).to_pandas()
    gold.index = pd.Index(item_ids[pairs], name="pair_id")
    return gold.rename("gold")


def _batches(scanner: Any, source: str, folder: Any = None, names: dict[str, str] | None = None) -> Iterator[Any]:
    """The scanner's tagged record batches; a file Arrow cannot read (damaged, not Parquet) is an error, where it was
    Arrow's traceback (the folder's first file alone is read before the scan). In a ``folder`` (the dataset), a
    file whose numbers do not fit the first file's type names that file, its column and row (:func:`_uncast`)."""
    import pyarrow as pa

    batches = scanner.scan_batches()
    while True:
        try:
            tagged = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as err:
            if folder is not None and names is not None:
                _uncast(folder, names)
            raise AccordError(f"file {source}: not readable as Parquet ({err})") from err
        yield tagged


def _uncast(dataset: Any, names: dict[str, str]) -> None:
    """Refuse the first file of a folder whose numbers do not cast to the type Arrow reads the folder in (its first
    file's): a 3.5 beside the first file's integer ids, or an id too large for its int32, was "file <folder>: not
    readable as Parquet (Float value 3.500000 was truncated converting to int64)", naming neither file nor column.
    Read only once the scan has failed, and only the files whose column types differ from the first file's."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for fragment in dataset.get_fragments():
        try:
            schema = fragment.physical_schema
        except (pa.ArrowException, OSError):
            continue  # a damaged file: Arrow's own reason is the message
        for column in REQUIRED_COLUMNS:
            name = names[column]
            target = _decoded_type(dataset.schema.field(name).type)
            if _decoded_type(schema.field(name).type) == target:
                continue
            try:
                values = _decoded(fragment.to_table(columns=[name], schema=schema).column(name).combine_chunks())
            except (pa.ArrowException, OSError):
                continue  # unreadable: Arrow's own reason is the message
            try:
                pc.cast(values, target)
                continue
            except pa.ArrowInvalid:
                pass  # a value that does not fit: found below
            except pa.ArrowException:
                continue
            # the rows that change in a cast that does not check, and back: a fraction cut, a number wrapped
            back = pc.cast(pc.cast(values, target, safe=False), values.type, safe=False)
            changed = np.flatnonzero(np.asarray(pc.fill_null(pc.not_equal(back, values), False)))
            row = int(changed[0]) if len(changed) else None
            what = "labels" if column == "label" else "ids"
            raise ValidationError(f"{what} of type {values.type} that do not fit the type {target} of the folder's "
                                  f"first file (Arrow reads a folder in its first file's types): write the {what} of "
                                  "every file in one type", source=fragment.path, column=name, row=row,
                                  value=None if row is None else values[row].as_py())


def _decoded_type(arrow_type: Any) -> Any:
    """A column's type, a dictionary column's by its values."""
    import pyarrow as pa

    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _in_file(files: list[tuple[int, str]], row: int) -> tuple[str, int]:
    """The file and its own row of ``row`` of the whole input (``files``: where each file starts, in reading
    order)."""
    at = bisect.bisect_right([first for first, _ in files], row) - 1
    return files[at][1], row - files[at][0]
