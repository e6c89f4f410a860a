"""Files: atomic writing (a crash leaves the old file or none, never half a file) and a table's format from its name."""

from __future__ import annotations

import contextlib
import contextvars
import csv
import gc
import json
import math
import numbers
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from accord.datasets.errors import AccordError, ValidationError

#: File suffix -> table format, for every file accord reads or writes.
SUFFIX_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSION_SUFFIXES: frozenset[str] = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip"})
#: Compression suffix -> the name pandas' writers give the method (the temporary file's name has no suffix to infer).
COMPRESSION_METHODS: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
#: Decimals of a number in a JSON file (pandas writes at most 15; its default 10 read 1/3 back as 0.3333333333 and a
#: probability of 3e-11 as 0): a JSON table then matches its Parquet or CSV twin to 1e-15.
JSON_DECIMALS = 15
#: the (temporary, target) files of the :func:`written_together` block being run (None: outside one)
#: (a temporary file of None: a file to remove, :func:`remove_with_writes`)
_PENDING: contextvars.ContextVar[list[tuple[Path | None, Path]] | None] = contextvars.ContextVar(
    "accord_pending_writes", default=None)
#: how many :func:`atomic_path` blocks enclose the running code: only the outermost turns an OSError into a
#: :class:`WriteError` (one naming the file the command was asked to write: a table's, not its sidecar's)
_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("accord_atomic_depth", default=0)
#: Compressions a .csv or .tsv table output may add (write_table compresses by the last suffix, the readers look
#: through it); a compressed .jsonl would be soft labels where the plain one is a cleaned dataset, so it is not one
TABLE_COMPRESSIONS: tuple[str, ...] = (".gz", ".bz2", ".xz")


class WriteError(ValidationError):
    """An output that could not be written (a full disk, no permission), in one line naming the file; the OSError is
    its ``__cause__``. The earlier file stays as it was (:func:`atomic_path`)."""

    def __init__(self, target: str | os.PathLike, err: OSError) -> None:
        super().__init__(f"cannot write it: {_reason(err)}", source=str(target))
        self.reason = err


def _reason(err: OSError) -> str:
    """Why an OSError happened, in words (its strerror: "No space left on device"), without the temporary file's
    name that ``str(err)`` would give."""
    return err.strerror or str(err) or type(err).__name__


def table_suffix(path: str | os.PathLike) -> str:
    """The table suffix of an output, a compression (``x.csv.gz``) looked through for .csv and .tsv only."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if len(suffixes) > 1 and suffixes[-1] in TABLE_COMPRESSIONS and suffixes[-2] in (".csv", ".tsv"):
        return suffixes[-2]
    return Path(path).suffix.lower()


def infer_format(path: str | os.PathLike) -> str:
    """The table format of ``path`` from its suffix (a compression suffix such as ``.gz`` is looked through)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    fmt = SUFFIX_FORMATS.get(suffix)
    if fmt is None:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise ValidationError(f"cannot tell the format from the suffix '{suffix}' (use one of {known})",
                              source=str(path))
    return fmt


def index_as_columns(frame: Any) -> Any:
    """A DataFrame read from Parquet with its named index levels turned back into columns: pandas stores a frame's
    index beside its columns (``to_parquet`` after ``set_index("pair_id")``; crowd-kit's gold, a Series indexed by
    ``task``) and reads it back as the index, where accord looks for columns; the streamed reader, which reads the
    file with pyarrow, sees them as columns. An unnamed index (a filtered frame's row numbers) stays the index."""
    names = [name for name in frame.index.names if name is not None and name not in frame.columns]
    return frame.reset_index(level=names) if names else frame


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The file that stands where a folder above ``path`` should be (``notes.txt`` of ``notes.txt/out.csv``), or
    ``None``: an output there cannot be made (its missing folders are created when it is written)."""
    # the nearest part of the path that exists must be a folder (a relative path ends in '.', which exists)
    existing = next((parent for parent in Path(path).parents if parent.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def unwritable(path: str | os.PathLike) -> OSError | None:
    """Why no file can be made where ``path`` is to be written (no write permission, a read-only file system), found
    by making and removing a file in the nearest folder above it that exists; ``None`` where one can. A command asks
    before its work: :func:`atomic_path` found it only when it wrote, after the fit."""
    target = Path(path).expanduser()
    if target.is_symlink():  # written through, in the folder of the file it points to (atomic_path)
        target = Path(os.path.realpath(target))
    existing = next((parent for parent in target.absolute().parents if parent.exists()), None)
    if existing is None or not existing.is_dir():  # a file in the way: check_output_path says so
        return None
    try:
        handle, name = tempfile.mkstemp(prefix=".accord-", suffix=".partial", dir=existing)
    except OSError as err:
        return err
    os.close(handle)
    os.unlink(name)
    return None


def check_output_path(path: str | os.PathLike) -> None:
    """Refuse an output path that :func:`atomic_path` could not write, before any work: an existing folder, or a
    path under a file (``notes.txt/out.csv``). Missing folders are fine: they are created when the file is written."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValidationError("is a folder; name a file to write", source=str(target))
    blocking = file_in_the_way(target)
    if blocking is not None:
        raise ValidationError(f"cannot write it: {blocking} is a file, not a folder", source=str(target))


def check_output_folder(path: str | os.PathLike, name: str, what: str) -> None:
    """Refuse an output folder that cannot be made, before any work: ``path`` is a file, or a file stands where a
    folder above it should be (mkdir's NotADirectoryError came at the first write, after the fits or the training).
    ``name`` is the flag or setting, ``what`` what the folder holds (in the message)."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise AccordError(f"{name} {path}: is a file; {what} is a folder")
    blocking = file_in_the_way(target)
    if blocking is not None:
        raise AccordError(f"{name} {path}: cannot be made: {blocking} is a file, not a folder")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically, on error it is removed.

    The temporary file lives in the target's folder so that the final ``os.replace`` is a rename on one file system.
    The file gets the mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask for a new file, the
    file's own for one written over): ``mkstemp`` creates it private (``0o600``), and the rename would otherwise
    carry that mode to the target. A ``path`` naming an
    existing folder, or under a file, is refused before anything is written (:func:`check_output_path`); missing
    folders are created. A ``path`` that is a symbolic link is written through:
    the file it points to is replaced and the link stays (as ``open(path, "w")`` and pandas' writers do; replacing
    the link itself would leave its target stale).
    """
    target = Path(path).expanduser()  # "~/out.csv" is the home folder's, as pandas' writers read it
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    check_output_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as err:  # no permission, a read-only file system: one line naming the file, not a traceback
        raise ValidationError(f"cannot write it: {err.strerror or err}", source=str(target)) from err
    os.close(fd)
    tmp = Path(tmp_name)
    depth = _DEPTH.set(_DEPTH.get() + 1)
    try:
        try:
            yield tmp
        finally:
            _DEPTH.reset(depth)
        # a file written over keeps its mode, as open(path, "w") keeps it: a private (0o600) output rewritten became
        # readable by all (0o644 under the usual umask)
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.is_file() else 0o666 & ~current_umask())
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        pending = _PENDING.get()
        if pending is None:
            os.replace(tmp, target)
        else:  # inside written_together: it lands with the others
            pending.append((tmp, target))
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        # a full disk (ENOSPC) mid-write was a pandas, pyarrow or pathlib traceback naming no file (or the temporary
        # one): one line naming the file, whose earlier content is kept
        if isinstance(err, OSError) and _DEPTH.get() == 0:
            raise WriteError(target, err) from err
        raise


@contextlib.contextmanager
def written_together() -> Iterator[None]:
    """Every :func:`atomic_path` in the block lands only once the whole block has succeeded, so that the outputs of
    one command are all written or none is: ``accord aggregate --annotators`` interrupted while writing the annotator
    table left the soft labels written without it. The files are renamed into place one after the other at the end
    (each rename atomic); on an error none is, and the temporary files are removed."""
    pending: list[tuple[Path | None, Path]] = []
    token = _PENDING.set(pending)
    try:
        try:
            yield
        finally:
            _PENDING.reset(token)
        for tmp, target in pending:
            try:
                if tmp is None:  # a file the block's writes make stale (:func:`remove_with_writes`)
                    target.unlink(missing_ok=True)
                else:
                    os.replace(tmp, target)  # a file already renamed is gone from tmp: the unlink below skips it
            except OSError as err:
                raise WriteError(target, err) from err
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                if tmp is not None:
                    tmp.unlink()
        raise


def remove_with_writes(path: Path) -> None:
    """Remove ``path`` now, or inside :func:`written_together` once the block's files land (an error there keeps
    it, beside the earlier files it belongs to)."""
    pending = _PENDING.get()
    if pending is None:
        path.unlink(missing_ok=True)
    else:
        pending.append((None, path))


def json_text(value: Any, **kwargs: Any) -> str:
    """``value`` as JSON, NaN and infinities as null: json's default wrote them as bare NaN tokens, which are no
    JSON (jq, JavaScript and strict parsers refused `accord evaluate --out` of a step dataset where one class is
    absent: step_auroc NaN; the trainer's metrics.jsonl of such evaluation data). numpy numbers are written as
    numbers, true and false as themselves."""
    def clean(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: clean(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(inner) for inner in item]
        if isinstance(item, bool):  # a bool is a Real too: it came out as 1.0
            return item
        if isinstance(item, numbers.Integral):
            return int(item)
        if isinstance(item, numbers.Real):
            return float(item) if math.isfinite(item) else None
        return item

    return json.dumps(clean(value), allow_nan=False, **kwargs)


def write_table(frame: Any, path: str | os.PathLike) -> Path:
    """Write a plain table atomically, the format from the suffix as :func:`infer_format` reads it (``.csv``,
    ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``, ``.json``; compressed by a ``.gz``, ``.bz2``... suffix), else Parquet."""
    target = Path(path).expanduser()
    try:
        fmt = infer_format(target)
    except ValidationError:
        fmt = "parquet"
    compression = COMPRESSION_METHODS.get(target.suffix.lower())
    with atomic_path(target) as tmp, _compression_package_named(target):
        if fmt in ("csv", "tsv"):
            # pandas quotes a field that holds "\n" but not one that holds a lone "\r", which every CSV reader
            # takes for a line end: such a text would come back split over two rows. Quoting every field keeps it
            # one field (only then, so that ordinary files stay as plain as before).
            quoting = csv.QUOTE_ALL if _holds_carriage_return(frame) else csv.QUOTE_MINIMAL
            frame = _lists_as_json(frame)
            empty = _empty_text_cells(frame)
            if empty is None:
                frame.to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",", compression=compression,
                             quoting=quoting)
            else:
                _write_csv_with_empty_texts(frame, empty, tmp, "\t" if fmt == "tsv" else ",", compression, quoting)
        elif fmt in ("jsonl", "json"):
            frame.to_json(tmp, orient="records", lines=fmt == "jsonl", force_ascii=False, compression=compression,
                          double_precision=JSON_DECIMALS)
        else:
            try:
                frame.to_parquet(tmp, index=False)
            except Exception as err:  # pyarrow's ArrowTypeError traceback (a column of texts and true/false)
                column = _unwritable_column(frame)
                if column is None:
                    raise
                raise ValidationError(f"cannot write as Parquet: {err.args[0] if err.args else err} (a column "
                                      "mixing texts with numbers or true/false: write its cells as texts, or name a "
                                      ".csv or .jsonl file)", source=str(target), column=column) from None
    if fmt in ("jsonl", "json"):
        # the provenance sidecar of a cleaned dataset this file replaced (accord.datasets.cleaned.sidecar_path, and
        # its earlier visible name): left there, it gave the new table the old one's method and source
        for sidecar in (target.with_name(f".{target.name}.meta.json"), Path(f"{target}.meta.json")):
            remove_with_writes(sidecar)
    return target


@contextlib.contextmanager
def _compression_package_named(target: Path) -> Iterator[None]:
    """Turn pandas' ImportError for an optional compression package (``.zst``: zstandard, not a dependency) into
    one line naming the file and the package, as the readers do."""
    try:
        yield
    except ImportError as exc:
        raise ValidationError(f"writing it needs {missing_package(exc)}", source=str(target)) from None


def missing_package(exc: ImportError) -> str:
    """What an ImportError from pandas' optional compression support asks the user to install, in words."""
    missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
    if missing:
        return f"the Python package '{missing}' (pip install {missing})"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unwritable_column(frame: Any) -> Any:
    """The first column of ``frame`` that Arrow cannot convert (``None`` when each converts alone): only on the path
    of a failed Parquet write, which names it."""
    import pyarrow as pa

    for column in frame.columns:
        try:
            pa.array(frame[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return column
    return None


def _lists_as_json(frame: Any) -> Any:
    """``frame`` with the lists and dicts of its cells (chat messages; numpy arrays, as Parquet reads lists) written
    as JSON text, which the CSV reader reads back as the messages they are (``messages_written_as_json`` of
    :mod:`accord.datasets.loaders.generic`): pandas wrote Python's repr (``[{'role': ...}]``), which no reader
    parses, so messages written to .csv came back as a text of their repr. Other cells stay as they are."""
    import numpy as np
    import pandas as pd

    from accord.datasets.schema import TEXTLESS_KINDS, object_kind

    out = None
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if values.dtype != object or object_kind(values) in (*TEXTLESS_KINDS, "string"):
            continue
        nested = values.map(lambda v: isinstance(v, (list, dict, np.ndarray))).to_numpy(dtype=bool)
        if not nested.any():
            continue
        if out is None:
            out = frame.copy()
        out.iloc[:, position] = pd.Series(np.where(nested, values.map(_json_cell), values), index=frame.index,
                                          dtype=object)
    return frame if out is None else out


def _json_cell(value: Any) -> Any:
    """A list or dict cell as JSON text (numpy arrays as lists, numpy numbers as numbers); others as they are."""
    import numpy as np

    def plain(item: Any) -> Any:
        if isinstance(item, np.ndarray):
            return [plain(v) for v in item.tolist()]
        if isinstance(item, (list, tuple)):
            return [plain(v) for v in item]
        if isinstance(item, dict):
            return {str(k): plain(v) for k, v in item.items()}
        return item.item() if isinstance(item, np.generic) else item

    if not isinstance(value, (list, dict, np.ndarray)):
        return value
    return json.dumps(plain(value), ensure_ascii=False, default=str)


#: stand-ins for an empty text and a missing cell while a CSV holding empty texts is written (private-use
#: characters: no text of a table holds them, which :func:`_write_csv_with_empty_texts` checks)
_EMPTY_TEXT, _MISSING_CELL = "\ue000accord-empty-text\ue000", "\ue000accord-missing\ue000"


def _empty_text_cells(frame: Any) -> Any:
    """A boolean frame of the cells of ``frame`` that are the empty text ``""`` (``None`` when there is none): in CSV
    an empty text and a missing cell were both an empty field, so an empty response (PandaLM has 270) came back
    missing where JSON Lines and Parquet kept it."""
    import pandas as pd

    found = None
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            try:  # compared in C, not a Python call per cell (a cell equal to "" is a text)
                empty = values.eq("").fillna(False).astype(bool)
            except (TypeError, ValueError):  # a cell that compares otherwise (an array): one at a time
                empty = values.map(lambda v: isinstance(v, str) and v == "").astype(bool)
            if empty.any():
                found = pd.DataFrame(False, index=frame.index, columns=range(frame.shape[1])) if found is None \
                    else found
                found[position] = empty.to_numpy()
    return found


def _write_csv_with_empty_texts(frame: Any, empty: Any, target: Path, sep: str, compression: str | None,
                                quoting: int) -> None:
    """``frame`` as CSV with each empty text written ``""`` (quoted) and each missing cell as an empty field, which
    the readers tell apart (:func:`accord.datasets.loaders.generic.with_empty_texts`): written first with stand-ins,
    which are then replaced as the file is copied to ``target`` (compressed there as its name says)."""
    from pandas.io.common import get_handle

    for value in (_EMPTY_TEXT, _MISSING_CELL):
        if frame.astype(str).apply(lambda column: column.str.contains(value, regex=False)).to_numpy().any():
            raise AccordError("a text of the table holds accord's stand-in for an empty text")
    cells = frame.copy()
    cells.columns = range(frame.shape[1])
    cells = cells.astype(object).mask(empty.to_numpy(), _EMPTY_TEXT)
    cells.columns = frame.columns
    quote = '"' if quoting == csv.QUOTE_ALL else ""
    plain = target.with_name(target.name + ".plain")
    try:
        cells.to_csv(plain, index=False, sep=sep, quoting=quoting, na_rep=_MISSING_CELL)
        with open(plain, encoding="utf-8", newline="") as source, \
                get_handle(target, "w", encoding="utf-8", compression=compression) as out:
            for line in source:
                out.handle.write(line.replace(f"{quote}{_EMPTY_TEXT}{quote}", '""')
                                 .replace(f"{quote}{_MISSING_CELL}{quote}", ""))
    finally:
        plain.unlink(missing_ok=True)


def _holds_carriage_return(frame: Any) -> bool:
    """Whether a text cell (or a column name) of ``frame`` holds a carriage return."""
    import pandas as pd

    if any("\r" in str(name) for name in frame.columns):
        return True
    from accord.datasets.schema import TEXTLESS_KINDS, object_kind

    for column in range(frame.shape[1]):
        values = frame.iloc[:, column]
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            kind = object_kind(values) if values.dtype == object else "string"
            if kind in TEXTLESS_KINDS:
                continue
            if kind != "string":  # texts among other values (lists, numbers): cell by cell
                texts = values.map(lambda v: isinstance(v, str) and "\r" in v).astype(bool)
            else:  # texts and missing cells only: searched in C, not a Python call for each cell
                texts = values.str.contains("\r", regex=False).fillna(False).astype(bool)
            if texts.any():
                return True
    return False


def refuse_writing_over_inputs(output_flag: str, output: Any, inputs: dict[str, Any]) -> None:
    """One error when the file ``output`` (given as ``output_flag``) is one of the files ``inputs`` (flag -> path): a
    command would write over what it reads. Checked before any work; paths that are not existing files are skipped."""
    if not isinstance(output, (str, os.PathLike)) or not Path(output).is_file():
        return
    for flag, path in inputs.items():
        if isinstance(path, (str, os.PathLike)) and Path(path).is_file() and os.path.samefile(output, path):
            raise AccordError(f"{output_flag} {output}: is the {flag} file; writing it would destroy the input (name "
                              "another file)")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while many lists of ints, floats or texts are built (token ids, a step
    dataset's lists): such lists make no cycles, yet each collection walked every list built so far (most of the
    time of laying pairs out)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
