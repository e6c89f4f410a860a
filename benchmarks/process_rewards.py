#!/usr/bin/env python
"""Process reward models on synthetic arithmetic problems with known first errors.

Sections (``--sections``, comma-separated):

``aggregation``  step labels of several raters per solution, aggregated by per-step majority vote, per-step vote
                 fractions, Dawid-Skene over steps and the first-error model; against the truth: exact recovery
                 of the first wrong step (``tau``, "no error" included), ProcessBench's first-error F1 (harmonic
                 mean of the accuracy on solutions with and without an error), and per-step accuracy, ECE, NLL
                 of ``P(step correct)``. Mean and standard error over seeds, and the first-error model's gain
                 over majority vote with its paired standard error.
``reward``       process reward models against outcome-only ones, each trained on soft step labels (the first-error
                 model's) and on per-step majority labels, on the labelled candidates of the training problems; on
                 the held-out problems (``--test-problems`` of them, 16 candidates each, true labels): first-error
                 F1, best-of-16 accuracy (the solution scored by its weakest step, the product of its steps and its
                 last step), step AUROC and ECE against the truth. Mean and standard error over seeds, and paired
                 differences (process - outcome, soft - majority) with their paired standard errors.
``scaling``      one large synthetic set (``--scale-problems``, 4 candidates each, all of the training problems'
                 candidates labelled by 3 of 300 raters): wall time of the first-error model with and without
                 posterior draws, and of majority vote, and the process's peak resident memory.

Data: :func:`accord.datasets.steps.make_synthetic_steps` (3 raters per solution from a pool of careful and
sloppy raters and 10% spammers, ternary labels); ``--protocols flag,stop`` runs both labelling protocols (after a
flag a rater calls every later step wrong, or stops as in PRM800K's phase 2). Candidates differ in wording, drawn
per step independently of correctness, as sampled solutions do: a problem's right candidates agree in their
arithmetic, not as a rule in their text, so a scorer blind to correctness picks a right one about as often as a
random pick (until the generator varied the wording every right candidate of a problem was one text with one
score, and best-of-16 fell far below a random pick: the highest of the wrong texts' scores usually won).

Examples::

    python benchmarks/process_rewards.py                      # 5 seeds, both protocols (a few minutes on 2 cores)
    python benchmarks/process_rewards.py --seeds 0,1 --n-problems 300 --protocols flag
    python benchmarks/process_rewards.py --sections scaling      # about 1.2 million judgments
    python benchmarks/process_rewards.py --sections reward --seeds 0,1,2,3,4   # MiniLM, CPU-sized
    python benchmarks/process_rewards.py --sections reward --backbone tiny --reward-steps 3000 --seeds 1,2,3 \
        --output a.csv     # and --seeds 4,5 --output b.csv in parallel, then:
    python benchmarks/process_rewards.py --from-results a.reward.csv,b.reward.csv
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from accord.aggregate import StepMajorityVote, fit_step_method  # noqa: E402
from accord.datasets.io import atomic_path  # noqa: E402
from accord.datasets.steps import make_synthetic_steps  # noqa: E402
from accord.models import FirstErrorModel  # noqa: E402
from accord.step_metrics import first_error_scores, step_label_scores  # noqa: E402

METHODS: tuple[str, ...] = ("majority", "vote-fraction", "dawid-skene", "first-error")
COLUMNS: tuple[tuple[str, str], ...] = (
    ("recovery", "first error found"),
    ("f1", "first-error F1"),
    ("accuracy_erroneous", "acc. (with error)"),
    ("accuracy_correct", "acc. (no error)"),
    ("step_accuracy", "step accuracy"),
    ("step_ece", "step ECE"),
    ("step_nll", "step NLL"),
    ("seconds", "fit s"),
)


def aggregation_run(seed: int, n_problems: int, protocol: str, labels: str) -> list[dict]:
    data = make_synthetic_steps(n_problems=n_problems, protocol=protocol, labels=labels, seed=seed)
    n_steps = data.solutions.set_index("solution_id")["n_steps"]
    truth_steps, truth_first = data.step_truth(), data.first_error()
    rows = []
    for method in METHODS:
        start = time.perf_counter()
        model = fit_step_method(method, data.judgments)
        seconds = time.perf_counter() - start
        step_labels = model.step_labels_
        located = first_error_scores(step_labels.most_likely_first_error(), truth_first, n_steps)
        steps = step_label_scores(step_labels.p_correct, truth_steps)
        rows.append({"seed": seed, "method": method, **{k: located[k] for k in
                                                         ("recovery", "f1", "accuracy_erroneous",
                                                          "accuracy_correct")},
                     "step_accuracy": steps["accuracy"], "step_ece": steps["ece"], "step_nll": steps["nll"],
                     "seconds": seconds, "n_solutions": located["n"], "n_steps": steps["n"],
                     "n_judgments": len(data.judgments)})
    return rows


def mean_se(values: pd.Series, n_seeds: int, digits: int = 3) -> str:
    """``mean ± SE`` over the seeds with a value, and how many they are when some have none: a seed whose measure is
    NaN (a first-error F1 or step AUROC where its solutions are all of one kind) was left out of the mean without a
    word, while the standard error was divided by the square root of every seed."""
    known = values.dropna()
    se = known.std(ddof=1) / np.sqrt(len(known)) if len(known) > 1 else float("nan")
    cell = f"{known.mean() if len(known) else float('nan'):.{digits}f} ± {se:.{digits}f}"
    return cell + (f" ({len(known)} of {n_seeds} seeds)" if len(known) < n_seeds else "")


def summarise(results: pd.DataFrame) -> str:
    seeds = results["seed"].nunique()
    lines = ["| method | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for method in METHODS:
        part = results[results["method"] == method]
        cells = [f"{part[key].mean():.2f}" if key == "seconds" else mean_se(part[key], seeds) for key, _ in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_difference(better: pd.Series, worse: pd.Series) -> tuple[float, float, int, int]:
    """Mean of ``better - worse`` over the seeds where both have a value, its paired standard error, on how many of
    them ``better`` is ahead, and how many they are (a NaN seed counted in the seeds, not in the mean)."""
    diff = (better - worse).dropna()
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return float(diff.mean()) if len(diff) else float("nan"), float(se), int((diff > 0).sum()), len(diff)


def paired(results: pd.DataFrame, key: str, better: str, worse: str) -> tuple[float, float, int, int]:
    wide = results.pivot(index="seed", columns="method", values=key)
    return paired_difference(wide[better], wide[worse])


def aggregation_section(args: argparse.Namespace) -> None:
    for protocol in args.protocols:
        rows = []
        for seed in args.seeds:
            rows.extend(aggregation_run(seed, args.n_problems, protocol, args.labels))
        results = pd.DataFrame(rows)
        first = results[results["method"] == "first-error"].iloc[0]
        print(f"\n## Step-label aggregation: protocol '{protocol}', {args.labels} labels, seeds "
              f"{','.join(map(str, args.seeds))} ({args.n_problems} problems, {int(first['n_solutions'])} labelled "
              f"solutions, {int(first['n_steps'])} steps, {int(first['n_judgments'])} judgments per seed)\n")
        print(summarise(results))
        for key, what in (("recovery", "\nfirst-error model - majority vote, first error found"),
                          ("f1", "first-error model - majority vote, first-error F1")):
            gain, se, wins, n = paired(results, key, "first-error", "majority")
            print(f"{what}: {gain:+.3f} (paired SE {se:.3f}; better on {wins} of {n} seeds"
                  f"{'' if n == len(args.seeds) else f' with a value, of {len(args.seeds)}'})")
        ece = results.loc[results["method"] == "first-error", "step_ece"]
        print(f"first-error model step ECE: max over seeds {ece.max():.4f} (target <= 0.03: "
              f"{'met' if ece.max() <= 0.03 else 'NOT met'})")
        if args.output:
            path = Path(args.output)
            path.parent.mkdir(parents=True, exist_ok=True)
            results.assign(protocol=protocol, labels=args.labels).to_csv(
                path, mode="a", header=not path.exists(), index=False)


def scaling_section(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    data = make_synthetic_steps(n_problems=args.scale_problems, candidates_per_problem=4, labelled_per_problem=4,
                                n_annotators=300, seed=0)
    made = time.perf_counter() - start
    n_steps = data.solutions.set_index("solution_id")["n_steps"]
    print(f"\n## Scaling: {len(data.judgments):,} judgments, {data.judgments['solution_id'].nunique():,} solutions, "
          f"300 raters (generated in {made:.1f} s)\n")
    print("| method | fit s | iterations | first error found | step ECE |")
    print("|---|---|---|---|---|")
    runs = [("first-error, VB posterior", FirstErrorModel(num_samples=0)),
            ("first-error, 200 posterior draws", FirstErrorModel(num_samples=200)),
            ("majority", StepMajorityVote())]
    for name, model in runs:
        start = time.perf_counter()
        model.fit(data.judgments)
        seconds = time.perf_counter() - start
        labels = model.step_labels_
        found = first_error_scores(labels.most_likely_first_error(), data.first_error(), n_steps)["recovery"]
        ece = step_label_scores(labels.p_correct, data.step_truth())["ece"]
        iterations = getattr(model, "n_iter_", "-")
        print(f"| {name} | {seconds:.1f} | {iterations} | {found:.3f} | {ece:.4f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\npeak resident memory of the process: {peak:.2f} GB")


REWARD_MODELS: tuple[tuple[str, str, str], ...] = (
    ("process, soft labels", "steps", "first-error"),
    ("process, majority labels", "steps", "majority"),
    ("outcome, soft labels", "outcome", "first-error"),
    ("outcome, majority labels", "outcome", "majority"),
)
REWARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("first_error_f1", "first-error F1"),
    ("bon_min", "best-of-16 (min)"),
    ("bon_product", "best-of-16 (product)"),
    ("bon_last", "best-of-16 (last)"),
    ("step_auroc", "step AUROC"),
    ("step_ece", "step ECE"),
    ("seconds", "train s"),
)


def held_out_steps(data, n_problems: int) -> pd.DataFrame:
    """The held-out problems' candidates (the first ``n_problems`` test problems) as a step dataset with the true
    labels: every step before the first error is correct, the rest are not."""
    from accord.reward.steps import load_steps

    test = data.problems.loc[data.problems["split"] == "test", ["problem_id", "prompt"]].head(n_problems)
    solutions = data.solutions.merge(test, on="problem_id")
    n_steps = solutions["n_steps"].to_numpy()
    tau = solutions["first_error"].to_numpy()
    frame = pd.DataFrame({
        "solution_id": solutions["solution_id"], "problem_id": solutions["problem_id"],
        "prompt": solutions["prompt"], "completions": solutions["completions"].map(list),
        "labels": [(np.arange(t) < f).astype(float).tolist() for t, f in zip(n_steps, tau)],
        "is_correct": solutions["is_correct"],
    })
    table = load_steps(frame)
    table["first_error"] = tau  # the truth, equal to the labels' first zero
    return table


def reward_run(seed: int, args: argparse.Namespace, backbone: str) -> list[dict]:
    from accord.aggregate import build_cleaned_steps
    from accord.reward import RewardConfig, train

    data = make_synthetic_steps(n_problems=args.n_problems, seed=seed)
    backbone_is_tiny = backbone == "tiny"
    if backbone_is_tiny:  # a small random decoder, its tokenizer trained on the problems' texts
        from accord.reward.tiny import build_tiny_backbone

        texts = list(data.problems["prompt"]) + [" ".join(steps) for steps in data.solutions["completions"]]
        backbone = str(build_tiny_backbone(args.scratch / "tiny", "llama", texts=texts, seed=seed,
                                           hidden=args.tiny_hidden, layers=args.tiny_layers, heads=4))
    cleaned = {name: build_cleaned_steps(fit_step_method(name, data.judgments).step_labels_, data.judgments)
               for name in ("first-error", "majority")}
    test = held_out_steps(data, args.test_problems)
    rows = []
    for label, target, method in REWARD_MODELS:
        config = RewardConfig(model=backbone, task="steps", step_target=target, output_dir=str(args.scratch / "rm"),
                              max_steps=args.reward_steps, batch_size=args.reward_batch_size,
                              learning_rate=args.reward_learning_rate,
                              freeze_layers=0 if backbone_is_tiny else args.freeze_layers,
                              max_length=256, warmup_ratio=0.1, seed=seed, save_steps=None, progress=False,
                              logging_steps=args.reward_steps, stats_max_pairs=16)
        trained = train(config, train_data=cleaned[method], eval_data=test)
        seconds, result = trained.train_seconds, trained.eval_metrics
        rows.append({"seed": seed, "model": label, **{k: result.get(k, float("nan")) for k, _ in REWARD_COLUMNS
                                                       if k != "seconds"},
                     "bon_random": result["bon_random"], "bon_oracle": result["bon_oracle"], "seconds": seconds,
                     "n_train": len(cleaned[method]), "n_test": len(test)})
        print(f"  seed {seed} {label}: F1 {result['first_error_f1']:.3f}, best-of-16 min {result['bon_min']:.3f} "
              f"product {result['bon_product']:.3f} last {result['bon_last']:.3f}, step AUROC "
              f"{result['step_auroc']:.3f} ({seconds:.0f} s)", flush=True)
    return rows


def reward_section(args: argparse.Namespace) -> None:
    from accord.datasets import AccordError
    from accord.reward.model import resolve_model_path

    try:
        backbone = "tiny" if args.backbone == "tiny" else resolve_model_path(args.backbone)
    except AccordError:  # a hub name neither cached nor reachable: skipped, as a name it has no folder for
        backbone = args.backbone
    if backbone != "tiny" and not Path(backbone).exists():
        print(f"\n## Process reward models: skipped, backbone '{args.backbone}' is not a local folder")
        return
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="accord-prm-") as scratch:
        args.scratch = Path(scratch)
        for seed in args.seeds:
            rows.extend(reward_run(seed, args, backbone))
            if args.output:  # the seeds so far, replaced whole: a run stopped while writing keeps the last file
                with atomic_path(Path(args.output).with_suffix(".reward.csv")) as tmp:
                    pd.DataFrame(rows).to_csv(tmp, index=False)
    what = (f"a random decoder ({args.tiny_layers} layers, hidden size {args.tiny_hidden}, trained from scratch)"
            if backbone == "tiny" else f"{args.backbone} (embeddings and lower {args.freeze_layers} layers frozen)")
    summarize_rewards(pd.DataFrame(rows), f"{what}, {args.reward_steps} steps of {args.reward_batch_size} solutions")


def summarize_rewards(results: pd.DataFrame, what: str) -> None:
    """The reward section's tables: means and standard errors over seeds, then the paired differences."""
    repeated = results.duplicated(["seed", "model"])
    if repeated.any():  # runs of one seed in two files: the seed counted twice in every mean, then pivot failed
        raise SystemExit(f"seed {results.loc[repeated, 'seed'].iloc[0]} has more than one result per model "
                         f"({what}): give each seed's results once")
    seeds = results["seed"].nunique()
    first = results.iloc[0]
    print(f"\n## Process reward models: {what}, seeds {','.join(map(str, sorted(results['seed'].unique())))}; "
          f"{int(first['n_train'])} labelled training solutions, {int(first['n_test'])} held-out candidates "
          f"({int(first['n_test']) // 16} problems x 16)\n")
    lines = ["| model | " + " | ".join(label for _, label in REWARD_COLUMNS) + " |",
             "|---|" + "---|" * len(REWARD_COLUMNS)]
    for label, _, _ in REWARD_MODELS:
        part = results[results["model"] == label]
        cells = [f"{part[key].mean():.0f}" if key == "seconds" else mean_se(part[key], seeds)
                 for key, _ in REWARD_COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    print(f"\nbest-of-16 by a random pick {results['bon_random'].mean():.3f}, by an oracle "
          f"{results['bon_oracle'].mean():.3f}\n")
    wide = results.pivot(index="seed", columns="model")
    comparisons = [("process, soft labels", "outcome, soft labels"),
                   ("process, majority labels", "outcome, majority labels"),
                   ("process, soft labels", "process, majority labels"),
                   ("outcome, soft labels", "outcome, majority labels")]
    for key in ("first_error_f1", "bon_min", "bon_product", "bon_last"):
        for better, worse in comparisons:
            mean, se, ahead, n = paired_difference(wide[key][better], wide[key][worse])
            behind = int(((wide[key][better] - wide[key][worse]) < 0).sum())
            print(f"{key}: {better} - {worse}: {mean:+.3f} (paired SE {se:.3f}; ahead on {ahead}, behind on "
                  f"{behind} of {n} seeds{'' if n == seeds else f' with a value, of {seeds}'})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="aggregation", help="comma-separated: aggregation, scaling, reward")
    parser.add_argument("--seeds", default="0,1,2,3,4", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--n-problems", type=int, default=1000)
    parser.add_argument("--protocols", default="flag,stop", type=lambda s: s.split(","))
    parser.add_argument("--labels", default="ternary", choices=("ternary", "binary"))
    parser.add_argument("--scale-problems", type=int, default=25000)
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2",
                        help="reward section: the backbone, or 'tiny' for a small random decoder")
    parser.add_argument("--tiny-hidden", type=int, default=64)
    parser.add_argument("--tiny-layers", type=int, default=2)
    parser.add_argument("--freeze-layers", type=int, default=4, help="reward section: lower layers left untrained")
    parser.add_argument("--reward-steps", type=int, default=150, help="reward section: training steps per model")
    parser.add_argument("--reward-batch-size", type=int, default=16, help="reward section: solutions per step")
    parser.add_argument("--reward-learning-rate", type=float, default=3e-4)
    parser.add_argument("--test-problems", type=int, default=40, help="reward section: held-out problems scored")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", help="append the per-seed results to this CSV (the reward section's go to "
                                         "its name with .reward.csv, e.g. a.reward.csv for a.csv)")
    parser.add_argument("--from-results", metavar="CSV[,CSV...]",
                        help="reward section: print the tables of per-seed results written by --output (runs of "
                             "other seeds, e.g. in parallel) instead of training")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < len(args.seeds):  # ran a seed twice, then failed to pivot after all the work
        parser.error(f"--seeds: each seed once, not {','.join(map(str, args.seeds))}")
    if args.from_results:
        frames = [pd.read_csv(path) for path in args.from_results.split(",")]
        summarize_rewards(pd.concat(frames, ignore_index=True), f"per-seed results of {args.from_results}")
        return
    torch.set_num_threads(args.threads)
    print(f"# process_rewards.py: torch threads {args.threads}, {os.cpu_count()} cores visible")
    sections = args.sections.split(",")
    unknown = set(sections) - {"aggregation", "scaling", "reward"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)} (use aggregation, scaling, reward)")
    if "aggregation" in sections:
        aggregation_section(args)
    if "scaling" in sections:
        scaling_section(args)
    if "reward" in sections:
        reward_section(args)


if __name__ == "__main__":
    main()
