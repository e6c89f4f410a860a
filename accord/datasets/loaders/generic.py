"""Reading judgments from any tabular file, and the helpers every source loader shares.

:func:`read_judgments` is the entry point for a user's own data: a CSV, TSV, JSON Lines, JSON or Parquet file (the
format comes from the suffix; ``.gz``/``.bz2``/``.xz``/``.zst`` compression is understood, ``.zst`` with the
zstandard package), with columns renamed onto accord's names and the result checked by
:func:`accord.datasets.schema.validate`.

Every way a file can fail to be read (missing, empty, truncated, wrong encoding, not the format its suffix claims)
becomes a :class:`~accord.datasets.errors.ValidationError` whose single line names the file, instead of a traceback
from deep inside pandas or pyarrow.

The module also holds what the source loaders (:mod:`.ukp`, :mod:`.pandalm`, ...) share: where a local copy of a
public data set is looked for (:func:`find_source_folder`), and stable content hashes for ids
(:func:`accord.datasets.ids.content_ids`).
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas._libs.parsers import STR_NA_VALUES  # the words read_csv reads as missing by default

import accord
from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.io import COMPRESSION_SUFFIXES, index_as_columns, infer_format, missing_package
from accord.datasets.schema import CROWDKIT_COLUMNS, Form, columns_note, validate

#: Environment variable naming a folder that holds the public data sets (one sub-folder per source).
ENV_DATA_DIR = "ACCORD_DATA_DIR"
#: Environment variable overriding the download cache (default ``~/.cache/accord``).
ENV_CACHE_DIR = "ACCORD_CACHE_DIR"

FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl", "json", "parquet")

# Where a (source) id column may be called, so CSV readers keep ids as text: "007" must not become 7 (nor the
# responses "01" and "1" one response). The items of per-attribute ratings (response_id) and of step judgments
# (solution_id), and the ids that group or name responses, are ids too; so is the name of a rated attribute ("007"
# and "7" are two attributes, "NA" one, not a missing name).
_ID_COLUMNS: tuple[str, ...] = ("pair_id", "annotator", *CROWDKIT_COLUMNS.keys(), "response_id", "solution_id",
                                "prompt_id", "problem_id", "response_a_id", "response_b_id", "attribute")
# Texts are read as written too: a response "1e3" stays that text, and "None", "N/A" or "NA" (a model's whole answer
# can be one) are texts, not missing values; only an empty cell is no text. So is the text of a rated response.
_TEXT_COLUMNS: tuple[str, ...] = ("prompt", "response_a", "response_b", "step_text", "response")
# Labels are read as written too, then as numbers only where every label is one (:func:`labels_as_written`): class
# names "01" and "02" stayed 1 and 2 (and "1.0" and "1" one class), and a class "None" or "NA" became missing labels.
# A gold file's column of gold labels may be called truth or true_label too (``--gold FILE``).
_GOLD_COLUMNS: tuple[str, ...] = ("gold", "truth", "true_label")
_LABEL_COLUMNS: tuple[str, ...] = ("label", *_GOLD_COLUMNS)
# a whole number as written back (no leading zero): "01" is no such spelling; a sign is ("+1" is how step labels
# {-1, 0, +1} are written; it read as text and was refused)
_PLAIN_INTEGER = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")


# -- reading files ------------------------------------------------------------------------------------------


def read_table(path: str | os.PathLike, *, fmt: str | None = None, **read_kwargs: Any) -> pd.DataFrame:
    """Read a CSV/TSV/JSON Lines/JSON/Parquet file into a DataFrame, turning every read failure into one line.

    Parameters
    ----------
    path
        The file. Its format comes from the suffix unless ``fmt`` is given.
    fmt
        One of ``"csv"``, ``"tsv"``, ``"jsonl"``, ``"json"``, ``"parquet"``.
    **read_kwargs
        Passed to the pandas reader (``pd.read_csv``, ``pd.read_json``, ``pd.read_parquet``), e.g. ``encoding=``.

    Raises
    ------
    ValidationError
        The file is missing, empty, not valid text in its encoding, truncated or corrupt, or not the format its
        suffix claims. The message names the file and, where known, the line.
    """
    file = Path(path).expanduser()  # "~/judgments.csv" is the home folder's, as pandas' readers read it
    source = path = str(file)
    require_file(file)
    if fmt is None:
        fmt = infer_format(file)
    elif fmt not in FORMATS:
        raise ValidationError(f"unknown format '{fmt}' (use one of {FORMATS})", source=source)
    if file.stat().st_size == 0:
        raise ValidationError("the file is empty (0 bytes)", source=source)
    _refuse_binary_under_text_suffix(file, fmt, source)
    try:
        table = _read(file, fmt, read_kwargs)
    except ValidationError:
        raise
    except UnicodeDecodeError as exc:
        encoding = read_kwargs.get("encoding", "utf-8")
        likely = _likely_encoding(file)
        raise ValidationError(
            f"not valid {encoding} text{_decode_error_place(file, encoding, exc)} (give the file's real encoding: "
            f"--encoding {likely} on the command line, encoding='{likely}' in Python)",
            source=source,
        ) from None
    except pd.errors.EmptyDataError:
        raise ValidationError("the file has no columns (empty or only blank lines)", source=source) from None
    except pd.errors.ParserError as exc:
        raise ValidationError(f"cannot parse as {fmt.upper()}: {first_line(exc)}", source=source) from None
    except EOFError as exc:
        raise ValidationError(f"the compressed file is truncated: {first_line(exc)}", source=source) from None
    except PermissionError as exc:
        raise ValidationError(f"cannot read: {exc.strerror}", source=source) from None
    except ImportError as exc:
        # a compression whose module is optional (.zst: zstandard) - was a traceback from the command line
        raise ValidationError(f"reading it needs {missing_package(exc)}", source=source) from None
    except (pa.ArrowException, OSError, zlib.error) as exc:
        # Truncated or corrupt binary/compressed data: expected, so reported without the reader's traceback.
        # pyarrow repeats the path in its message; it is already at the start of ours.
        detail = first_line(exc).replace(f" '{file}'", "")
        kind = "a readable Parquet file (truncated or corrupt?)" if fmt == "parquet" else "readable (corrupt data?)"
        raise ValidationError(f"not {kind}: {detail}", source=source) from None
    except Exception as exc:  # anything else is still one line naming the file (cause kept for debugging)
        kind = {"parquet": "a readable Parquet file (truncated or corrupt?)"}.get(fmt, f"readable {fmt.upper()}")
        raise ValidationError(f"not {kind}: {type(exc).__name__}: {first_line(exc)}", source=source) from exc
    if table.shape[1] == 0:
        raise ValidationError("the file holds no records (only blank lines?)", source=source)
    return table


# the first bytes of the binary files a text table is most often confused with (a bzip2 stream's block header too)
_BINARY_MAGIC = ((b"PAR1", "a Parquet file", None), (b"\x1f\x8b", "gzip-compressed", ".gz"),
                 (b"BZh", "bzip2-compressed", ".bz2"), (b"\xfd7zXZ\x00", "xz-compressed", ".xz"),
                 (b"\x28\xb5\x2f\xfd", "zstd-compressed", ".zst"), (b"PK\x03\x04", "a zip archive", ".zip"))


def _refuse_binary_under_text_suffix(file: Path, fmt: str, source: str) -> None:
    """A Parquet or compressed file under a plain text suffix (``x.csv`` holding Parquet or gzip) is named for what it
    is: read as text it failed as 'not valid utf-8 text', whose advice (--encoding latin-1) led to a parse error."""
    if fmt == "parquet" or (file.suffixes and file.suffixes[-1].lower() in COMPRESSION_SUFFIXES):
        return
    with open(file, "rb") as handle:
        start = handle.read(10)
    for magic, kind, suffix in _BINARY_MAGIC:
        if not start.startswith(magic) or (magic == b"BZh" and start[4:10] != b"1AY&SY"):
            continue
        rename = (f"name it {file.with_suffix('.parquet').name}" if suffix is None
                  else f"name it {file.name}{suffix} to read it decompressed")
        extra = " (an Excel workbook is one too: save it as CSV)" if magic == b"PK\x03\x04" else ""
        raise ValidationError(f"the file is {kind}{extra}, not {fmt.upper()} text: {rename}", source=source)


def _decode_error_place(file: Path, encoding: str, exc: UnicodeDecodeError) -> str:
    """Where the first undecodable byte is, as ``": line N, byte 0xXX"``.

    Readers decode in chunks, so the exception's offset is relative to a chunk; the whole file (decompressed: a
    compressed file's error named no line) is decoded once more (only on this error path) to name the true line.
    """
    from pandas.io.common import get_handle

    bad_byte = exc.object[exc.start] if exc.start < len(exc.object) else None
    try:
        with get_handle(file, "rb", compression="infer", is_text=False) as handle:
            data = handle.handle.read()
    except Exception:  # unreadable once more (a damaged archive): the error stands without its line
        return f": byte {bad_byte:#04x}" if bad_byte is not None else ""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as full:
        line = data.count(b"\n", 0, full.start) + 1
        return f": line {line}, byte {data[full.start]:#04x}"
    except LookupError:
        pass
    return f": byte {bad_byte:#04x}" if bad_byte is not None else ""


# bytes 0x80-0x9f: control characters in latin-1 (never text), curly quotes, dashes and the euro sign in cp1252
_C1_BYTES = re.compile(b"[\x80-\x9f]")


def _likely_encoding(file: Path) -> str:
    """The encoding to suggest for a file that is not valid UTF-8: UTF-16 where it starts with UTF-16's byte-order
    mark (Excel's "Unicode Text" export); cp1252 where it holds bytes 0x80-0x9f and cp1252 reads it (Excel's CSV on
    Windows: latin-1 read its curly quotes as invisible control characters, silently); else latin-1 (which reads
    any bytes). The file is read again, decompressed, only on this error path."""
    from pandas.io.common import get_handle

    try:
        with get_handle(file, "rb", compression="infer", is_text=False) as handle:
            data = handle.handle.read()
    except Exception:  # unreadable once more (a damaged archive): the reader's error stands with the usual advice
        return "latin-1"
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    if _C1_BYTES.search(data):
        try:
            data.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are no cp1252 character
            pass
    return "latin-1"


def text_encoding(encoding: str | None) -> str:
    """The encoding to read a text file with: UTF-8 (the default) is read as ``utf-8-sig``, so that a byte-order mark
    (Excel's "CSV UTF-8" and Windows tools write one) is skipped rather than read into the first column name or the
    first JSON value."""
    if encoding is None:
        return "utf-8-sig"
    try:
        return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    except LookupError:  # an unknown name: the reader reports it
        return encoding


def messages_as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (read from Parquet) with its columns of chat messages as written
    (:func:`accord.datasets.cleaned.written_messages`): Parquet gives each message the keys of every other of its
    column, None, so judgments whose response_a had a 'name' the response_b had not got other pair ids (hashed from
    the texts) and no shared prompt, where JSON Lines gave the messages as written. A column is told by its first
    cell, as Parquet holds one type per column."""
    from accord.datasets.cleaned import written_messages  # (the cleaned module imports this one)

    for column in frame.columns:
        cells = frame[column]
        first = cells.loc[cells.first_valid_index()] if cells.dtype == object and cells.notna().any() else None
        if isinstance(first, np.ndarray) and first.ndim == 1 and len(first):
            first = first[0]
        if isinstance(first, dict):  # a struct column, or a list of them (chat messages)
            frame[column] = cells.map(written_messages)
    return frame


#: The columns that may hold chat messages, which a CSV or TSV file can only hold written as JSON text
#: (:func:`messages_written_as_json`): a pair's texts, a rated response, a preference dataset's sides.
MESSAGE_COLUMNS: tuple[str, ...] = ("prompt", "response_a", "response_b", "response", "chosen", "rejected")


def messages_written_as_json(frame: pd.DataFrame, source: str | None,
                             columns: Iterable[str] = MESSAGE_COLUMNS) -> pd.DataFrame:
    """``frame`` (read from CSV or TSV) with each of ``columns`` whose every present cell is a JSON list of chat
    messages (``[{"role": ..., "content": ...}, ...]``; ``[]`` too) read as those lists: a text cell cannot hold a
    list, so such a file was read as the messages' JSON text where its JSON Lines or Parquet twin gave messages, and
    one dataset trained on two different texts by its file's format. A column where only some cells are messages
    stays text, with a warning naming the column and the first such row (its JSON Lines twin mixes messages and
    texts, which the reader refuses); a text that merely starts with ``[`` stays text."""
    for column in columns:
        if column in frame.columns:
            messages = _json_messages(frame[column], column, source)
            if messages is not None:
                frame[column] = messages
    return frame


def _json_messages(cells: pd.Series, column: str, source: str | None) -> pd.Series | None:
    """The messages of a column whose every present cell is chat messages written as JSON, else ``None``."""
    present = cells.notna().to_numpy()
    texts = cells[present]
    if not len(texts) or not (texts.dtype == object or pd.api.types.is_string_dtype(texts.dtype)):
        return None
    looks = texts.astype(str).str.lstrip().str.startswith("[").to_numpy(dtype=bool)  # in C: most columns stop here
    if not looks.any():
        return None
    # each distinct text parsed once (a response repeats over the judgments of its pair)
    parsed = {text: _parsed_messages(text) for text in pd.unique(texts[looks].astype(str).to_numpy(dtype=object))}
    is_messages = np.zeros(len(texts), dtype=bool)
    is_messages[looks] = [parsed[text] is not None for text in texts[looks].astype(str)]
    if is_messages.all():
        # (missing cells stay missing; a list of lists set into a Series came back as tuples)
        return cells.astype(object).map(lambda value: value if pd.isna(value) is True else parsed[str(value)])
    non_empty = np.zeros(len(texts), dtype=bool)
    non_empty[is_messages] = [bool(parsed[text]) for text in texts[is_messages].astype(str)]
    if non_empty.any():
        row = int(np.flatnonzero(present)[np.flatnonzero(non_empty)[0]])
        other = int(np.flatnonzero(present)[np.flatnonzero(~is_messages)[0]])
        where = ", ".join(part for part in (f"file {source}" if source else "", f"column '{column}'") if part)
        more = int((~is_messages).sum()) - 1
        warnings.warn(f"{where}: row {row} holds chat messages written as JSON, but row {other}"
                      f"{f' (and {more} more)' if more else ''} is plain text, so the whole column is read as text: "
                      "write every cell as a JSON list of {\"role\", \"content\"} messages, or the table as JSON "
                      "Lines or Parquet, to have messages read as messages", UserWarning, stacklevel=3)
    return None


def _parsed_messages(text: str) -> list | None:
    """``text`` as the list of chat messages it writes in JSON (each a dict with a ``role``), else ``None``."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    return None


def _read(file: Path, fmt: str, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    if fmt != "parquet":
        read_kwargs = {**read_kwargs, "encoding": text_encoding(read_kwargs.get("encoding"))}
    if fmt in ("csv", "tsv"):
        kwargs = {"sep": "," if fmt == "csv" else "\t", **read_kwargs}
        table = pd.read_csv(file, **kwargs)
        if kwargs.get("header", "infer") == "infer" and kwargs.get("names") is None:
            _check_header_names(file, kwargs)
        return table
    if fmt == "parquet":
        return messages_as_written(index_as_columns(pd.read_parquet(file, **read_kwargs)))
    _refuse_lone_surrogates(file, read_kwargs)  # pandas' reader drops some and fails on others, naming no line
    if fmt == "jsonl":
        return read_json_lines(file, read_kwargs)
    # ".json": a JSON array of records; files named .json that hold JSON Lines are common, so fall back to them.
    try:
        return pd.read_json(file, **read_kwargs)
    except ValueError as exc:
        if "Trailing data" not in str(exc):
            raise ValidationError(f"not valid JSON: {first_line(exc)}", source=str(file)) from None
        return read_json_lines(file, read_kwargs)


def _check_header_names(file: Path, kwargs: dict[str, Any]) -> None:
    """One error for a CSV/TSV header that names a column twice: pandas renames the second ``label`` to ``label.1``,
    and the table would then be read, silently, with the first one's values only."""
    header_kwargs = {k: v for k, v in kwargs.items() if k not in ("dtype", "na_values", "keep_default_na", "usecols",
                                                                   "nrows", "converters", "index_col", "parse_dates")}
    names = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False, **header_kwargs)
    names = [str(n) for n in names.iloc[0]] if len(names) else []
    seen: set[str] = set()
    for name in names:
        if name.strip() == "":  # blank names (a trailing delimiter) are pandas' 'Unnamed: k', never a clash
            continue
        if name in seen:
            raise ValidationError("the header names this column more than once (pandas would read the second as "
                                  f"'{name}.1'); rename one of them", source=str(file), column=name)
        seen.add(name)


#: how pandas' exact JSON parser (``precise_float=True``) starts its refusal of a number past a double's range
_EXACT_PARSER_RANGE = "Range error when decoding numeric as double"


def read_json_lines(file: Path, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    """``pd.read_json(file, lines=True, **read_kwargs)``, its failures one line naming the file and the broken line
    (the one JSON Lines reader of tables and cleaned datasets, so that both say the same of one file)."""
    try:
        return pd.read_json(file, lines=True, **read_kwargs)
    except UnicodeDecodeError:
        raise
    except ValueError as exc:
        if read_kwargs.get("precise_float") and first_line(exc).startswith(_EXACT_PARSER_RANGE):
            # the exact parser refuses a number past a double's normal range (a probability below 2.2e-308, as a
            # fit can write one: accord could not read its own cleaned file back); the fast one reads it (such a
            # number as 0 or inf, any other off at most in its last digit): read so, rather than refuse valid JSON
            return read_json_lines(file, {**read_kwargs, "precise_float": False})
        # pandas does not say which line is broken; find it (only on this error path) so the message can.
        line_no, problem = _first_bad_json_line(file, read_kwargs.get("encoding", "utf-8"),
                                                read_kwargs.get("compression", "infer"))
        if line_no == 0:  # every line is valid JSON: pandas' own limit (e.g. an integer beyond 64 bits)
            raise ValidationError(f"valid JSON that pandas cannot read: {first_line(exc)} (a number beyond 64-bit "
                                  "integers? write such ids as texts)", source=str(file)) from None
        raise ValidationError(f"line {line_no}: invalid JSON ({problem}); is the file truncated?",
                              source=str(file)) from None


# a \\uD800-\\uDFFF escape (half of a UTF-16 surrogate pair), found cheaply before the lines are parsed again
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_lone_surrogates(file: Path, read_kwargs: dict[str, Any]) -> None:
    """One error naming the column and the line (the row, in a JSON array) of the first text holding a lone UTF-16
    surrogate (``"\\ud800"`` without its other half, what a tool that cut a text between the two halves of an
    emoji writes): pandas' JSON reader dropped it without a word (``"x\\ud800y"`` read as ``"xy"``), where a CSV
    file's undecodable byte is refused; such a text is no Unicode text, and could not be written to Parquet or
    tokenized as given. A whole pair (``"\\ud83d\\ude00"``, an emoji) and an escaped backslash
    (``"\\\\ud800"``, the text ``\\ud800``) are text, read as JSON says."""
    from pandas.io.common import get_handle

    with get_handle(file, "r", encoding=text_encoding(read_kwargs.get("encoding")),
                    compression=read_kwargs.get("compression", "infer")) as handle:
        text = handle.handle.read()
    hits = SURROGATE_ESCAPE.finditer(text)
    first = next(hits, None)
    if first is None:  # so in almost every file: one pass of the pattern, in C
        return
    try:  # a JSON array of records (.json) parses whole
        records = json.loads(text)
    except json.JSONDecodeError:
        records = None
    if records is not None:
        for row, record in enumerate(records if isinstance(records, list) else [records]):
            for key, value in (record.items() if isinstance(record, dict) else [(None, record)]):
                _refuse_surrogate_in(value, file, key, row=row)
        return
    seen: set[int] = set()
    for match in (first, *hits):  # JSON Lines: only the lines with such an escape are parsed again
        start = text.rfind("\n", 0, match.start()) + 1
        if start in seen:
            continue
        seen.add(start)
        end = text.find("\n", match.end())
        try:
            record = json.loads(text[start:None if end < 0 else end])
        except json.JSONDecodeError:  # the reader names a line that is no JSON
            continue
        for key, value in (record.items() if isinstance(record, dict) else [(None, record)]):
            _refuse_surrogate_in(value, file, key, line=text.count("\n", 0, start) + 1)


def _refuse_surrogate_in(value: Any, file: Path, key: Any, *, line: int | None = None, row: int | None = None) -> None:
    escape = _first_lone_surrogate(value)
    if escape is not None:
        where = "" if line is None else f"line {line}: "
        raise ValidationError(f"{where}the text holds a lone UTF-16 surrogate ({escape} without its other half), "
                              "which is not Unicode text: mend the text or drop the escape", source=str(file),
                              column=None if key is None else str(key), row=row)


def _first_lone_surrogate(value: Any) -> str | None:
    """The escape (``\\ud800``) of the first lone surrogate in ``value`` (a JSON value: texts, lists, objects)."""
    if isinstance(value, str):
        for char in value:
            if "\ud800" <= char <= "\udfff":
                return f"\\u{ord(char):04x}"
        return None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        for item in value:
            found = _first_lone_surrogate(item)
            if found is not None:
                return found
    return None


def _first_bad_json_line(file: Path, encoding: str, compression: Any) -> tuple[int, str]:
    from pandas.io.common import get_handle

    with get_handle(file, "r", encoding=encoding, compression=compression) as handle:
        for number, line in enumerate(handle.handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return number, exc.msg
            if not isinstance(value, dict):
                return number, f"expected an object, got {type(value).__name__}"
    return 0, "unreadable JSON Lines"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (messages of pandas and pyarrow can span many lines)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def read_judgments(
    path: str | os.PathLike,
    *,
    columns: dict[str, str] | None = None,
    form: Form | None = None,
    scale: int | None = None,
    duplicates: str = "error",
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Read a judgments table from a file and validate it.

    Parameters
    ----------
    path
        A ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.json`` or ``.parquet`` file (optionally compressed,
        e.g. ``.csv.gz``).
    columns
        Renames ``{name in the file: accord name}``, e.g. ``{"item": "pair_id", "rater": "annotator",
        "choice": "label"}``. Columns not named keep their names.
    form, scale, duplicates
        As in :func:`accord.datasets.schema.validate` (``form`` defaults to ``"preference"``, or ``"graded"`` when
        ``scale`` is given; with crowd-kit's ``task``/``worker`` names, ``"categorical"`` unless every label is A, B
        or tie).
    **read_kwargs
        Passed to the pandas reader, e.g. ``encoding="latin-1"`` or ``sep=";"``. Without ``sep``, a CSV or TSV
        file whose header line lacks the usual delimiter but holds ``;``, a tab, ``|`` or ``,`` is read with that.
        An Excel ``sep=;`` line above the header declares the delimiter.
        In a CSV or TSV file, ids and texts (``prompt``, ``response_a``/``response_b``, ``response``) and attribute
        names are read as written:
        ``"007"``, ``"1e3"``, ``"NA"`` and ``"None"`` are ids, only an empty cell is missing; labels and gold are
        class names as written (``"01"``, ``"None"``) unless every label is a number (:func:`labels_as_written`);
        other columns read pandas' usual words (``NA``, ``null``...) as missing.

    Returns
    -------
    pandas.DataFrame
        The validated table (``attrs["accord"]`` records form and scale, ``attrs["source"]`` the file).

    Raises
    ------
    ValidationError
        One line naming the file (and column, row, value where they apply): unreadable, empty, truncated or
        wrongly encoded file, a renamed column that is not in the file, a missing required column, a label off
        the declared set or scale, a repeated judgment.

    Examples
    --------
    >>> table = read_judgments("ratings.csv", columns={"item": "pair_id", "rater": "annotator"})  # doctest: +SKIP
    """
    source = str(path)
    table = read_unvalidated(path, columns=columns, graded=form == "graded" or scale is not None, **read_kwargs)
    table = validate(table, form=form, scale=scale, duplicates=duplicates, source=source)
    table.attrs["source"] = source  # what build_cleaned records as the cleaned dataset's source
    return table


def read_unvalidated(path: str | os.PathLike, *, columns: dict[str, str] | None = None,
                     strip_header: bool = False, graded: bool = False, **read_kwargs: Any) -> pd.DataFrame:
    """A judgments file read and renamed as :func:`read_judgments` reads it (the delimiter recognised, ids kept as
    text, labels as :func:`labels_as_written` reads them, JSON's own types), not validated: for tables with a
    validation of their own (step judgments). ``strip_header``: names with spaces around them are read without (a
    gold or raters file, whose columns no ``--columns`` renames), where that gives no two columns one name.
    ``graded``: the labels are declared strengths on a scale (read as numbers wherever pandas reads a number)."""
    path = Path(path).expanduser()
    source = str(path)
    labels_read_as_written = False  # (only where this reader chose how to read the columns: no dtype given)
    text_sources: list[str] = []  # the file's columns of texts, where an empty text "" is told from a missing one
    if columns is not None and not isinstance(columns, dict):
        raise ValidationError("columns must be a dict {name in the file: accord name}", source=source)
    require_file(path)
    fmt = infer_format(path)
    read_kwargs = with_delimiter(path, fmt, read_kwargs)
    if fmt in ("csv", "tsv") and "dtype" not in read_kwargs:
        header = _csv_header(path, fmt, read_kwargs)
        mapped = {_file_column(src, pd.Index(sorted(header))): dst for src, dst in (columns or {}).items()}
        as_text = (*_ID_COLUMNS, *_TEXT_COLUMNS, *_LABEL_COLUMNS)
        renamed_ids = {src for src, dst in mapped.items() if dst in as_text}
        # a column renamed to something else is read as what it becomes: Snow 2008's label column is called
        # "response" (--columns response=label), and its labels were read as the texts "0"/"1"
        renamed_away = {src for src, dst in mapped.items() if dst not in as_text}
        labels_read_as_written = True
        # Ids are read as text so "007" stays "007"; only columns the file really has are named, which the
        # C parser requires (checked for real after reading).
        read_kwargs["dtype"] = {name: str for name in (*as_text, *renamed_ids) if name not in renamed_away}
        read_kwargs["dtype"] = {k: v for k, v in read_kwargs["dtype"].items() if k in header}
        text_sources = [name for name in read_kwargs["dtype"] if mapped.get(name, name) in _TEXT_COLUMNS]
        if header and "na_values" not in read_kwargs and "keep_default_na" not in read_kwargs:
            # An id or a text is what was written: "NA", "None", "null" and "nan" are ids (write_table writes them
            # as they are), only an empty cell is missing. Other columns keep pandas' missing-value words (R
            # writes NA for a missing gold).
            read_kwargs["keep_default_na"] = False
            read_kwargs["na_values"] = {name: [""] if name in read_kwargs["dtype"] else list(STR_NA_VALUES)
                                        for name in header}
    if fmt in ("json", "jsonl"):
        # JSON has types of its own: pandas' dtype guessing would turn the id "007" into 7 and the label "2" into 2
        read_kwargs.setdefault("dtype", False)
    table = read_table(path, fmt=fmt, **read_kwargs)
    if fmt in ("csv", "tsv"):
        with_empty_texts(table, path, text_sources, {**read_kwargs, "fmt": fmt})
        table = _without_trailing_empty_rows(table)
    if columns:
        table = table.rename(columns=checked_mapping(columns, table.columns, source))
    if fmt in ("csv", "tsv"):  # chat messages a text cell holds as JSON, as a JSON Lines file would hold them
        table = messages_written_as_json(table, source)
    if labels_read_as_written:
        labels_as_written(table, graded=graded or "attribute" in table.columns)
    if strip_header:
        stripped = [name.strip() if isinstance(name, str) else name for name in table.columns]
        if len(set(stripped)) == len(stripped):
            table.columns = stripped
    _refuse_spaced_optional_columns(table.columns, source)
    return table


def labels_as_written(table: pd.DataFrame, *, graded: bool = False) -> None:
    """The ``label`` and gold columns (``gold``; a gold file's ``truth``) of ``table`` (read from CSV or TSV as
    written: texts, only an empty cell missing) as their JSON Lines or Parquet twin holds them, in place. The labels
    are numbers where every one that is not a missing-value word ("NA", "None", "null", "nan"...) is a number as
    written back, a plus sign allowed ("2", "-1", "+1", "0.5"; not "01", nor "1" beside "1.0" or "+1"), and those
    words are then missing labels (R writes NA for one); else they are class names as written ("01", "1.0", "None" and "NA" among them), except
    in a table of A / B / tie, where such a word is no class. ``graded``: declared strengths, numbers wherever pandas
    reads a number ("+2" too). Gold is read in the labels' terms: numbers beside numbers, and a missing-value word
    is no gold unless it is one of the labels' classes."""
    classes: set[str] = set()
    numeric = graded
    if "label" in table.columns:
        table["label"], numeric, classes = _labels_from_text(table["label"], graded)
    for column in _GOLD_COLUMNS:
        if column not in table.columns:
            continue
        gold = table[column]
        words = _missing_words(gold) - classes
        gold = gold.where(~gold.isin(words)) if words else gold
        if numeric or "label" not in table.columns:
            gold = _numbers_where_written(gold, graded or "label" in table.columns)
        table[column] = gold


def _missing_words(cells: pd.Series) -> set[str]:
    """The missing-value words of pandas' CSV reader among ``cells``' distinct values."""
    return {value for value in pd.unique(cells.dropna().to_numpy(dtype=object)) if value in STR_NA_VALUES}


def _labels_from_text(cells: pd.Series, graded: bool) -> tuple[pd.Series, bool, set[str]]:
    """``cells`` as numbers or as the class names written (:func:`labels_as_written`), whether numbers, and the
    classes written (empty for numbers)."""
    distinct = [value for value in pd.unique(cells.dropna().to_numpy(dtype=object)) if isinstance(value, str)]
    words = {value for value in distinct if value in STR_NA_VALUES}
    others = [value for value in distinct if value not in words]
    if graded or (others and _written_as_numbers(others)):
        return _numbers_where_written(cells.where(~cells.isin(words)), True), True, set()
    if others and set(others) <= {"A", "B", "tie"}:  # a preference table has no class "NA": such a cell is empty
        return cells.where(~cells.isin(words)), False, set(others)
    return cells, False, set(distinct)


def _written_as_numbers(texts: list[str]) -> bool:
    """Every text is a finite number as written back (an integer without leading zero, or a float's shortest
    spelling; either with a plus sign) and no two name one number ("1" and "1.0", "1" and "+1")."""
    numbers = []
    for text in texts:  # (the distinct labels: a few)
        try:
            number = float(text)
        except ValueError:
            return False
        if not (np.isfinite(number) and (_PLAIN_INTEGER.fullmatch(text) or repr(number) == text.removeprefix("+"))):
            return False
        numbers.append(number)
    return len(set(numbers)) == len(numbers)


def _numbers_where_written(cells: pd.Series, lenient: bool) -> pd.Series:
    """``cells`` as numbers where each present cell reads as one (``lenient``: as pandas reads numbers; else as
    :func:`_written_as_numbers` says), else the texts as written (the validator names the one that is no number)."""
    present = cells.dropna()
    if not len(present):
        return cells
    numbers = pd.to_numeric(cells, errors="coerce")
    readable = numbers.notna() | cells.isna()
    if lenient and readable.all():
        return numbers
    if not lenient and readable.all() and _written_as_numbers(list(pd.unique(present.to_numpy(dtype=object)))):
        return numbers
    return cells


# columns accord reads when they are there, and passes over when they are not: under a name with spaces around it
# (Excel keeps a space typed after a header) they were passed over without a word
_OPTIONAL_COLUMNS: tuple[str, ...] = ("gold", "prompt", "response_a", "response_b", "response_a_id", "response_b_id",
                                      "response", "step_text", "pool", "capacity", "scale_min", "scale_max")


def _refuse_spaced_optional_columns(names: Iterable[Any], source: str) -> None:
    """One error naming a column whose name is one of :data:`_OPTIONAL_COLUMNS` with spaces around it ("gold "),
    where the table has no column of that name: read, its gold labels, texts or raters' capacities were ignored."""
    names = list(names)
    for name in names:
        if isinstance(name, str) and name != name.strip() and name.strip() in _OPTIONAL_COLUMNS \
                and name.strip() not in names:
            meant = name.strip()
            raise ValidationError(f"the name has spaces around it, so it is not read as '{meant}' (rename it in the "
                                  f"file, or --columns {meant}={meant} on the command line, columns={{{name!r}: "
                                  f"{meant!r}}} in Python)", source=source, column=name)


def checked_mapping(columns: dict[Any, Any], header: Iterable[Any], source: str | None) -> dict[Any, Any]:
    """A column mapping (the file's name -> accord's) with each source the file's own column (:func:`_file_column`);
    a source the file lacks, or two columns given one name, is an error naming the column (the streamed reader of a
    fit across processes asks too)."""
    header = pd.Index(list(header))
    columns = {_file_column(src, header): dst for src, dst in columns.items()}
    missing = [src for src in columns if src not in header]
    if missing:
        # annotator=rater for rater=annotator: the target is the file's column, the order reversed
        target = columns[missing[0]]
        reversed_ = (f"; '{target}' is, and the mapping goes from the file's name to accord's: "
                     f"{target}={missing[0]}" if target in header else "")
        raise ValidationError(f"the column mapping names a column the file does not have "
                              f"({columns_note(header)}{reversed_})", source=source, column=missing[0])
    targets = list(columns.values())
    clash = [t for t in targets if targets.count(t) > 1 or (t in header and t not in columns)]
    if clash:
        raise ValidationError("two columns would get the same name after renaming", source=source, column=clash[0])
    return columns


def _without_trailing_empty_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The table without the rows at its end whose every cell is empty: a spreadsheet exports rows it once
    formatted as ``;;;`` lines, which pandas reads as records (it skips only blank lines). Only trailing ones go, so
    that every other row keeps the number pandas gives it (errors name rows by it)."""
    filled = np.flatnonzero(table.notna().any(axis=1).to_numpy())
    end = int(filled[-1]) + 1 if len(filled) else 0
    return table.iloc[:end] if end < len(table) else table


def _file_column(name: Any, header: pd.Index) -> Any:
    """The file's column a mapping's source names: itself, else the one column whose name is it with spaces around
    (Excel's ``" annotator"``), which ``--columns`` cannot pass (its parts are stripped) and Python's user should
    not have to type."""
    if name in header or not isinstance(name, str):
        return name
    spaced = [column for column in header if isinstance(column, str) and column.strip() == name.strip()]
    return spaced[0] if len(spaced) == 1 else name


def with_delimiter(path: str | os.PathLike, fmt: str, read_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``read_kwargs`` with the delimiter of a CSV/TSV file whose header does not use the usual one (Excel's ``;``
    export, :func:`_guess_delimiter`), and an Excel ``sep=;`` line above the header skipped and obeyed; a ``sep``
    given is kept. Every reader of a user's table reads it so (the judgments, a gold or raters file, reward data)."""
    read_kwargs = dict(read_kwargs)
    if fmt not in ("csv", "tsv"):
        return read_kwargs
    directive = _sep_directive(path, read_kwargs.get("encoding", "utf-8"))
    if directive is not None and "skiprows" not in read_kwargs:  # the line above the header is no record
        read_kwargs["skiprows"] = 1
        if "sep" not in read_kwargs and "delimiter" not in read_kwargs:
            read_kwargs["sep"] = directive
    if "sep" not in read_kwargs and "delimiter" not in read_kwargs:
        guessed = _guess_delimiter(path, fmt, read_kwargs.get("encoding", "utf-8"))
        if guessed is not None:
            read_kwargs["sep"] = guessed
    return read_kwargs


def _first_text_line(path: str | os.PathLike, encoding: str) -> str | None:
    """The first line of a text file, decompressed (``None`` when it cannot be read: the read reports why)."""
    from pandas.io.common import get_handle

    try:
        with get_handle(path, "r", encoding=text_encoding(encoding), compression="infer", errors="replace") as handle:
            return handle.handle.readline()
    except (OSError, EOFError, ValueError, LookupError, ImportError):
        return None


def _sep_directive(path: str | os.PathLike, encoding: str) -> str | None:
    """The delimiter a first line ``sep=;`` declares (Excel writes and reads it above the header), else ``None``."""
    line = (_first_text_line(path, encoding) or "").rstrip("\r\n")
    return line[4:] if line.lower().startswith("sep=") and len(line) == 5 else None


def _guess_delimiter(path: str | os.PathLike, fmt: str, encoding: str) -> str | None:
    """The delimiter of a CSV/TSV file whose header line lacks the usual one (``,`` or tab) but has ``;``, tab,
    ``|`` or ``,``; ``None`` keeps the usual one (also when the first line cannot be read: the read reports why)."""
    usual = "," if fmt == "csv" else "\t"
    header = _first_text_line(path, encoding)
    if header is None or usual in header:
        return None
    counts = {d: header.count(d) for d in (";", "\t", "|", ",") if d != usual}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else None


def _csv_header(path: str | os.PathLike, fmt: str, read_kwargs: dict[str, Any]) -> set[str]:
    """Column names of a CSV/TSV file (empty when the header cannot be read; the full read then reports why)."""
    kwargs = {k: v for k, v in read_kwargs.items() if k not in ("dtype", "nrows")}
    kwargs.setdefault("sep", "," if fmt == "csv" else "\t")
    try:
        return {str(c) for c in pd.read_csv(path, nrows=0, **kwargs).columns}
    except Exception:  # noqa: BLE001 - read_table reports the real problem with the file
        return set()


# -- frames or files ----------------------------------------------------------------------------------------


def require_file(file: Path) -> None:
    """Refuse a path that is no file, naming it. What the path is comes before its suffix: a missing file or a
    folder without a suffix (a Hub download's folder) was reported as "cannot tell the format from the suffix ''"."""
    if not file.exists():
        raise ValidationError("no such file", source=str(file))
    if file.is_dir():
        raise ValidationError(_folder_problem(file), source=str(file))


def _folder_problem(folder: Path, shown: int = 3, looked_at: int = 10_000) -> str:
    """What to say of a folder given where a table file belongs: the data files it holds (by suffix, the first few
    in path order), so that the message says which to name; the walk stops after ``looked_at`` entries."""
    found: list[str] = []
    for count, path in enumerate(folder.rglob("*")):
        if count >= looked_at:
            break
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue  # .git, .cache/huggingface
        try:
            infer_format(path)
        except ValidationError:
            continue
        found.append(relative.as_posix())
    if not found:
        return "is a folder, not a file, and holds no table file (.csv, .tsv, .jsonl, .json or .parquet): name the file"
    found.sort()
    listed = ", ".join(found[:shown]) + (f" and {len(found) - shown} more" if len(found) > shown else "")
    return f"is a folder, not a file: name one of its table files ({listed})"


def with_texts_as_written(table: pd.DataFrame, path: str | os.PathLike, columns: list, **read_kwargs: Any) -> None:
    """Read ``columns`` of the CSV or TSV file ``path`` (already read into ``table``) again as written, in place: only
    an empty cell is missing, and pandas' guessing of "007" as 7, "1e3" as 1000.0 or "NA" / "None" as missing is
    undone. ``read_kwargs``: the file's delimiter and format, as ``table`` was read."""
    if columns:
        table[columns] = read_table(path, **{**read_kwargs, "usecols": columns, "dtype": str,
                                             "keep_default_na": False, "na_values": [""]})[columns]
        with_empty_texts(table, path, columns, read_kwargs)


def with_empty_texts(table: pd.DataFrame, path: str | os.PathLike, columns: Iterable[Any],
                     read_kwargs: dict[str, Any]) -> None:
    """The cells of ``columns`` (texts read as written) that the file writes ``""`` as the empty text, in place:
    pandas' reader reads a quoted empty field as it reads an empty one, missing, so an empty response (which
    :func:`accord.datasets.io.write_table` writes ``""``) came back missing from CSV where JSON Lines kept it. Only a
    table with missing texts is read again (by pyarrow's reader, which tells the two apart); a file it cannot read
    as pandas did keeps pandas' reading."""
    import pyarrow.csv as arrow_csv

    columns = [column for column in columns if column in table.columns and table[column].isna().any()]
    skip = read_kwargs.get("skiprows", 0)
    if not columns or not isinstance(skip, int) or read_kwargs.get("quoting", csv.QUOTE_MINIMAL) != csv.QUOTE_MINIMAL:
        return
    fmt = read_kwargs.get("fmt") or infer_format(path)
    delimiter = read_kwargs.get("sep") or read_kwargs.get("delimiter") or ("," if fmt == "csv" else "\t")
    encoding = text_encoding(read_kwargs.get("encoding"))
    try:
        read = arrow_csv.read_csv(
            str(path), read_options=arrow_csv.ReadOptions(skip_rows=skip, encoding="utf8" if encoding == "utf-8-sig"
                                                          else encoding),
            parse_options=arrow_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(
                include_columns=[str(column) for column in columns], null_values=[""], strings_can_be_null=True,
                quoted_strings_can_be_null=False, column_types={str(column): pa.string() for column in columns}))
    except (pa.ArrowException, OSError, ValueError, LookupError):
        return
    if read.num_rows != len(table):  # (blank lines or a cut-off tail read otherwise: pandas' reading stands)
        return
    for column in columns:
        empty = np.asarray(read.column(str(column)).to_pandas().eq("").fillna(False), dtype=bool)
        if empty.any():
            table.loc[empty & table[column].isna().to_numpy(), column] = ""


def frame_or_file(source: pd.DataFrame | str | os.PathLike, *, texts: Iterable[str] = (),
                  **read_kwargs: Any) -> tuple[pd.DataFrame, str]:
    """A DataFrame as given (copied), or the table read from a file; with a name for error messages. A JSON file's
    values keep JSON's types (a text id ``"007"`` stays that text). In a CSV or TSV file the columns named in
    ``texts`` (a source's texts and ids) are read as written, as :func:`read_judgments` reads its own: pandas'
    guessing read a response "N/A" or "None" as no response, "1e3" as 1000.0 and an id "007" as 7, so the same
    data gave other texts and other pair ids from CSV than from JSON Lines or Parquet; chat messages written as
    JSON are messages (:func:`messages_written_as_json`)."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), "<DataFrame>"
    if isinstance(source, (str, os.PathLike)):
        # (a missing file or a folder is read_table's to name, before any suffix)
        fmt = infer_format(source) if Path(source).is_file() else None
        if fmt in ("json", "jsonl"):
            # JSON has types of its own: pandas' guessing turned the judge "007" into 7, the same judge as "7"
            read_kwargs.setdefault("dtype", False)
        elif read_kwargs.get("dtype") is False:
            # dtype=False asks the JSON readers to keep JSON's own types; Parquet has them already, and its reader
            # would refuse the argument (which read_table then reports as a corrupt file)
            read_kwargs = {k: v for k, v in read_kwargs.items() if k != "dtype"}
        if fmt not in ("csv", "tsv"):
            return read_table(source, **read_kwargs), str(source)
        read_kwargs = with_delimiter(source, fmt, read_kwargs)
        table = read_table(source, fmt=fmt, **read_kwargs)
        with_texts_as_written(table, source, [column for column in dict.fromkeys(texts) if column in table.columns],
                              fmt=fmt, **read_kwargs)
        return messages_written_as_json(table, str(source)), str(source)
    raise AccordError(f"expected a file path or a pandas DataFrame, got {type(source).__name__}")


def require_columns(frame: pd.DataFrame, needed: Iterable[str], source: str, what: str) -> None:
    """Raise a one-line :class:`ValidationError` naming the first column of ``needed`` that ``frame`` lacks."""
    for column in needed:
        if column not in frame.columns:
            raise ValidationError(f"missing column of the {what} schema", source=source, column=column)


def require_cells(frame: pd.DataFrame, columns: Iterable[str], source: str,
                  problem: str = "missing or empty field (is the line cut short?)") -> None:
    """Raise a one-line :class:`ValidationError` naming the row and column of the first missing or blank cell of
    ``columns``: a line cut short (a truncated file, a lost tab) leaves its last fields missing, which a reader
    fills with NaN and a loader would otherwise pass on as a pair without its text."""
    columns = list(columns)
    cells = frame[columns]
    blank = cells.isna().to_numpy() | cells.astype(str).apply(lambda c: c.str.strip().eq("")).to_numpy()
    if blank.any():
        row, position = (int(i[0]) for i in np.nonzero(blank))
        raise ValidationError(problem, source=source, column=columns[position], row=row,
                              value=cells.iloc[row, position])


# -- where the public data sets live ------------------------------------------------------------------------


def repository_datasets_dir() -> Path:
    """The development copy of the public data: ``<repository root>/../shared/datasets``."""
    repo_root = Path(accord.__file__).resolve().parent.parent
    return repo_root.parent / "shared" / "datasets"


def default_cache_dir() -> Path:
    """Where downloads go: ``$ACCORD_CACHE_DIR``, else ``~/.cache/accord``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "accord"


def data_dir_candidates() -> list[Path]:
    """Folders searched for a local copy, in order: ``$ACCORD_DATA_DIR`` when set, else the repository's shared data;
    then the cache. A folder named by ``$ACCORD_DATA_DIR`` is never silently replaced by the shared copy."""
    env = os.environ.get(ENV_DATA_DIR)
    first = Path(env).expanduser() if env else repository_datasets_dir()
    return [first, default_cache_dir()]


def find_source_folder(folder: str, registry_name: str) -> Path:
    """The first of :func:`data_dir_candidates` that holds ``folder``; a one-line :class:`AccordError` otherwise."""
    for base in data_dir_candidates():
        if (base / folder).is_dir():
            return base / folder
    searched = ", ".join(str(p) for p in data_dir_candidates())
    raise AccordError(
        f"no local copy of '{folder}' (searched {searched}): set {ENV_DATA_DIR} (or --data-dir on the command line) "
        f"to a folder that holds {folder}/, pass path=... in Python, or run "
        f"accord.datasets.loaders.load('{registry_name}') to download it"
    )
