"""Multi-attribute ratings: the rater model against per-attribute averaging, on synthetic data with known truth.

Claims measured (the multi-attribute issue, "What it must show", item 1): per-attribute response scores recovered
with Spearman >= 0.9 against the truth and 90% intervals covering 85-95% of the true values; the rater model
(:class:`~accord.models.MultiAttributeOrdinal`) beats per-attribute averaging
(:class:`~accord.aggregate.AttributeMean`) in RMSE against the truth by >= 10% when a third of the raters are
lenient or harsh on some attributes; and 100k ratings fit in under a minute on 2 cores.

Data: :func:`accord.datasets.make_synthetic_attributes`, five attributes (helpfulness, correctness, coherence,
complexity, verbosity) as known functions of the synthetic responses' features plus a residual, rated 0..4 by 3-5
raters per response (HelpSteer2's design). Raters: a third lenient or harsh (0.6-1.2 attribute sds) on a random
subset of the attributes, a tenth noisy (2.5 times) on a subset, the rest with small shifts and noise jitter.
The truth on the rating scale is the average rating of the typical rater (the raters' mean shift, their
geometric-mean noise), the reference any method can recover without gold labels.

Scenarios (every model setting at its default; nothing below was tuned on these data):

* ``default``: the generator's defaults (2,000 responses, 60 raters, 3-5 raters per response, no missing ratings);
* ``no biased raters``: the same with ``biased_share=0`` (how much of the gain is the rater effects);
* ``sparse, 1..7``: 30% of ratings missing, a 1..7 scale, a heavier activity tail (``activity_skew=1``).

Metrics per attribute, averaged over seeds: ``spearman`` of the posterior means (model) or mean ratings (averaging)
with the truth, ``cover`` the share of true values inside the 90% intervals, ``rmse`` against the truth, and
``gain`` = 1 - rmse(model) / rmse(averaging).

Timing: one fit of 100k ratings (5,000 responses x 4 raters x 5 attributes, 200 raters) on ``--threads`` torch
threads, wall-clock and CPU seconds; the machine's load average is printed next to it, because other work on the
same cores slows the wall clock (the CPU seconds of a one-thread run are what it takes on one idle core).

The reward-model half of the issue (K heads against K single-head models, fitted combinations) is measured by
``benchmarks/multi_attribute.py`` once the reward task lands; this script covers the rater model.

    python benchmarks/multi_attribute.py                       # 3 seeds x 3 scenarios + the 100k timing
    python benchmarks/multi_attribute.py --quick               # 1 seed, default scenario, no timing
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from accord.aggregate import AttributeMean
from accord.datasets import make_synthetic_attributes
from accord.models import MultiAttributeOrdinal

SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "no biased raters": {"biased_share": 0.0},
    "sparse, 1..7": {"missing_rate": 0.3, "scale": (1, 7), "activity_skew": 1.0},
}


def evaluate(scores: Any, truth: pd.DataFrame) -> pd.DataFrame:
    """Per attribute: Spearman, 90% coverage and RMSE of the scores against the truth."""
    truth = truth.reindex(scores.mean.index)
    rows = {}
    for attribute in truth.columns:
        estimate = scores.mean[attribute]
        inside = (scores.lower[attribute] <= truth[attribute]) & (truth[attribute] <= scores.upper[attribute])
        rows[attribute] = {
            "spearman": spearmanr(estimate, truth[attribute]).statistic,
            "cover": float(inside.mean()),
            "rmse": float(np.sqrt(((estimate - truth[attribute]) ** 2).mean())),
        }
    return pd.DataFrame(rows).T


def run_scenario(name: str, settings: dict[str, Any], seeds: list[int], n_responses: int, n_raters: int
                 ) -> pd.DataFrame:
    results = []
    for seed in seeds:
        data = make_synthetic_attributes(n_responses=n_responses, n_raters=n_raters, with_text=False, seed=seed,
                                         **settings)
        start = time.perf_counter()
        model = MultiAttributeOrdinal().fit(data.judgments)
        seconds = time.perf_counter() - start
        averaged = AttributeMean().fit(data.judgments)
        ours, theirs = evaluate(model.scores_, data.truth), evaluate(averaged.scores_, data.truth)
        frame = ours.add_prefix("model ").join(theirs.add_prefix("mean "))
        frame["gain"] = 1.0 - frame["model rmse"] / frame["mean rmse"]
        frame["seed"] = seed
        results.append(frame)
        print(f"  {name:18s} seed {seed}: {len(data.judgments):,} ratings, fit {seconds:.1f} s, {model.n_iter_} EM "
              f"rounds{'' if model.converged_ else ' (not converged)'}, mean gain {frame['gain'].mean():.3f}",
              flush=True)
    table = pd.concat(results).rename_axis("attribute").reset_index()
    return table.groupby("attribute", sort=False).mean(numeric_only=True).drop(columns="seed")


def print_table(title: str, table: pd.DataFrame) -> None:
    columns = ["model spearman", "mean spearman", "model cover", "mean cover", "model rmse", "mean rmse", "gain"]
    print(f"\n## {title}\n")
    print("| attribute | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for attribute, row in table.iterrows():
        print(f"| {attribute} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    mean = table[columns].mean()
    print("| **mean** | " + " | ".join(f"{mean[c]:.3f}" for c in columns) + " |")


def check_targets(table: pd.DataFrame) -> None:
    spearman_ok = bool((table["model spearman"] >= 0.9).all())
    cover_ok = bool(table["model cover"].between(0.85, 0.95).all())
    rmse_gain = 1.0 - table["model rmse"].pow(2).mean() ** 0.5 / table["mean rmse"].pow(2).mean() ** 0.5
    print(f"\nTargets: Spearman >= 0.9 on every attribute: {'OK' if spearman_ok else 'MISS'} "
          f"(min {table['model spearman'].min():.3f}); 90% coverage in [0.85, 0.95] on every attribute: "
          f"{'OK' if cover_ok else 'MISS'} (range {table['model cover'].min():.3f}-{table['model cover'].max():.3f}); "
          f"RMSE (all attributes) {rmse_gain:.1%} below averaging: {'OK' if rmse_gain >= 0.10 else 'MISS'} "
          f"(target >= 10%)")


def timing(threads: int) -> None:
    data = make_synthetic_attributes(n_responses=5000, n_raters=200, raters_per_response=4, with_text=False, seed=0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start, cpu_start = time.perf_counter(), time.process_time()
    model = MultiAttributeOrdinal().fit(data.judgments)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    AttributeMean().fit(data.judgments)
    baseline = time.perf_counter() - start
    print(f"\n## Timing\n\n{len(data.judgments):,} ratings ({data.judgments['response_id'].nunique():,} responses, "
          f"200 raters, 5 attributes) on {threads} torch thread(s), load average {load:.1f} when it started: "
          f"MultiAttributeOrdinal {seconds:.1f} s wall, {cpu:.1f} s CPU over all threads ({model.n_iter_} EM "
          f"rounds), AttributeMean {baseline:.2f} s. "
          f"Target: under 60 s on 2 cores: {'OK' if seconds < 60 else 'MISS'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--responses", type=int, default=2000)
    parser.add_argument("--raters", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="one seed, the default scenario, no timing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    scenarios = {"default": SCENARIOS["default"]} if args.quick else SCENARIOS
    print(f"# Multi-attribute rater model vs per-attribute averaging ({args.responses} responses, {args.raters} "
          f"raters, seeds {seeds})\n", flush=True)
    tables = {name: run_scenario(name, settings, seeds, args.responses, args.raters)
              for name, settings in scenarios.items()}
    for name, table in tables.items():
        print_table(f"Scenario: {name}", table)
    check_targets(tables["default"])
    if not args.quick:
        timing(args.threads)


if __name__ == "__main__":
    main()
