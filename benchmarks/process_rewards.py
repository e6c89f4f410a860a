#!/usr/bin/env python
"""Process reward models on synthetic arithmetic problems with known first errors.

Sections (``--sections``, comma-separated):

``aggregation``  step labels of several raters per solution, aggregated by per-step majority vote, per-step vote
                 fractions, Dawid-Skene over steps and the first-error model; against the truth: exact recovery
                 of the first wrong step (``tau``, "no error" included), ProcessBench's first-error F1 (harmonic
                 mean of the accuracy on solutions with and without an error), and per-step accuracy, ECE, NLL
                 of ``P(step correct)``. Mean and standard error over seeds, and the first-error model's gain
                 over majority vote with its paired standard error.
``scaling``      one large synthetic set (``--scale-problems``, 4 candidates each, all of the training problems'
                 candidates labelled by 3 of 300 raters): wall time of the first-error model with and without
                 posterior draws, and of majority vote, and the process's peak resident memory.

Data: :func:`accord.datasets.steps.make_synthetic_steps` (3 raters per solution from a pool of careful and
sloppy raters and 10% spammers, ternary labels); ``--protocols flag,stop`` runs both labelling protocols (after a
flag a rater calls every later step wrong, or stops as in PRM800K's phase 2).

Examples::

    python benchmarks/process_rewards.py                      # 5 seeds, both protocols (a few minutes on 2 cores)
    python benchmarks/process_rewards.py --seeds 0,1 --n-problems 300 --protocols flag
    python benchmarks/process_rewards.py --sections scaling      # about 1.2 million judgments
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


def summarise(results: pd.DataFrame) -> str:
    seeds = results["seed"].nunique()
    lines = ["| method | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for method in METHODS:
        part = results[results["method"] == method]
        cells = []
        for key, _ in COLUMNS:
            mean = part[key].mean()
            se = part[key].std(ddof=1) / np.sqrt(seeds) if seeds > 1 else float("nan")
            cells.append(f"{mean:.2f}" if key == "seconds" else f"{mean:.3f} ± {se:.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(results: pd.DataFrame, key: str, better: str, worse: str) -> tuple[float, float, int, int]:
    wide = results.pivot(index="seed", columns="method", values=key)
    diff = wide[better] - wide[worse]
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return float(diff.mean()), float(se), int((diff > 0).sum()), len(diff)


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
        gain, se, wins, n = paired(results, "recovery", "first-error", "majority")
        print(f"\nfirst-error model - majority vote, first error found: {gain:+.3f} (paired SE {se:.3f}; better on "
              f"{wins} of {n} seeds)")
        gain, se, wins, n = paired(results, "f1", "first-error", "majority")
        print(f"first-error model - majority vote, first-error F1: {gain:+.3f} (paired SE {se:.3f}; better on "
              f"{wins} of {n} seeds)")
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="aggregation", help="comma-separated: aggregation, scaling")
    parser.add_argument("--seeds", default="0,1,2,3,4", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--n-problems", type=int, default=1000)
    parser.add_argument("--protocols", default="flag,stop", type=lambda s: s.split(","))
    parser.add_argument("--labels", default="ternary", choices=("ternary", "binary"))
    parser.add_argument("--scale-problems", type=int, default=25000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", help="append the per-seed results to this CSV")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# process_rewards.py: torch threads {args.threads}, {os.cpu_count()} cores visible")
    sections = args.sections.split(",")
    unknown = set(sections) - {"aggregation", "scaling"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)} (the reward-model section is not written yet)")
    if "aggregation" in sections:
        aggregation_section(args)
    if "scaling" in sections:
        scaling_section(args)


if __name__ == "__main__":
    main()
