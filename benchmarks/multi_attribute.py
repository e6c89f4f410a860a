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
* ``sparse, 1..7``: ``missing_rate=0.3`` (about 24% of ratings missing: one rating per rater and response is
  always kept), a 1..7 scale, a heavier activity tail (``activity_skew=1``).

Metrics per attribute, averaged over seeds: ``spearman`` of the posterior means (model) or mean ratings (averaging)
with the truth, ``cover`` the share of true values inside the 90% intervals, ``rmse`` against the truth, and
``gain`` = 1 - rmse(model) / rmse(averaging).

Timing: one fit of 100k ratings (5,000 responses x 4 raters x 5 attributes, 200 raters) on ``--threads`` torch
threads, wall-clock and CPU seconds; the machine's load average is printed next to it, because other work on the
same cores slows the wall clock (the CPU seconds of a one-thread run are what it takes on one idle core).

Reward half (``--part reward``; the multi-attribute issue's item 2). The default synthetic data with text (3
responses per prompt, every pair of one prompt's responses), cleaned by the rater model into per-attribute soft
labels (``p_chosen_<a>``, ``weight_<a>``); a quarter of the prompts held out. An *overall* preference is made from
the true latent attribute gaps with known weights (:data:`OVERALL_WEIGHTS`, a mix in the style of Nemotron's
HelpSteer2 weights, verbosity negative) and three simulated votes per pair. Trained with the same backbone, steps,
batch, learning rate and frozen layers, in one run: one K-head model (``--task attributes``, K = 5), K single-head
models (one per attribute, ``p_chosen``/``weight`` of that attribute), and one single-head model on the overall
votes. Reported: each model's training-loop seconds (the K-head's against the sum of the K single heads'), the
accuracy of every attribute's pairwise order against the true latent gap on the held-out pairs, and the held-out
accuracy against the true overall order of the single overall head and of the K-head model's combinations fitted
on the training pairs' overall votes (fitted weights, with and without length decorrelation, and the gating
network), with the true weights as the oracle. Each of ``--seeds`` draws its own data, held-out prompts and votes and
trains every model with that seed (seed 0 is the single run of earlier versions); with two or more seeds the means
over seeds follow, with their standard errors and the targets checked on the means.

UKPConvArg2 half (``--part ukp``; item 3). UKPConvArg2's gold reasons per pair as 0/1 properties, one per reason
group (o5-o9), plus the preference (``convincing``); the UKPConvArg1Strict topic split of
``benchmarks/reward_quality.py`` (the last four topics in alphabetical order, 8 debate sides, held out; 24 sides
train). A single-head model on the preference against the K-head model (preference + 5 reason groups), same
settings: preference accuracy on the held-out sides, and per reason group the F1 of ``P(reason) >= 0.5`` with the
always-yes classifier's F1 (``2p / (1 + p)`` at prevalence ``p``), the majority class's (the training pairs' more
frequent answer: always-yes or 0) and a random guess's (yes at the training prevalence ``q``: ``2qp / (q + p)``) as
floors.

    python benchmarks/multi_attribute.py                       # every part
    python benchmarks/multi_attribute.py --part rater --quick  # 1 seed, default scenario, no timing
    python benchmarks/multi_attribute.py --part reward         # K heads vs K single heads, combinations, 3 seeds
    python benchmarks/multi_attribute.py --part ukp            # UKPConvArg2 topic split
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
from accord.step_metrics import auroc

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
    parser.add_argument("--part", choices=("rater", "reward", "ukp", "all"), default="all")
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="reward-model backbone")
    parser.add_argument("--reward-responses", type=int, default=3000, help="synthetic responses (reward part)")
    parser.add_argument("--steps", type=int, default=150, help="training steps of every synthetic reward model")
    parser.add_argument("--ukp-steps", type=int, default=300, help="training steps of every UKPConvArg2 model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--freeze-layers", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--ukp-test-pairs", type=int, default=0,
                        help="score a sample of the held-out pairs, the same share of every side (0: all)")
    parser.add_argument("--ukp-dir", help="the UKPConvArg2 CSV folder (default: the shared datasets folder)")
    parser.add_argument("--work-dir", default="multi_attribute_runs", help="where the reward models are written")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or len(set(seeds)) < len(seeds):  # a repeated seed's run counted twice: the SE over seeds shrank
        parser.error(f"--seeds: one or more distinct seeds, not {args.seeds!r}")
    if args.part in ("reward", "all"):
        reward_synthetic(args, seeds)
    if args.part in ("ukp", "all"):
        reward_ukp(args)
    if args.part not in ("rater", "all"):
        return
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


# -- the reward half -------------------------------------------------------------------------------------------------

#: Weights of the true latent attribute gaps in the synthetic overall preference.
OVERALL_WEIGHTS = {"helpfulness": 0.3, "correctness": 0.74, "coherence": 0.46, "complexity": 0.47, "verbosity": -0.33}
#: The UKPConvArg1Strict test topics of benchmarks/reward_quality.py (the last four in alphabetical order).
TEST_TOPICS = ("pro-choice-vs-pro-life", "should-physical-education-be-mandatory-in-schools-",
               "tv-is-better-than-books", "william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore")


def train_reward(args: argparse.Namespace, name: str, train: pd.DataFrame, steps: int, task: str = "pairwise",
                 seed: int = 0) -> tuple[str, float, float, float]:
    """Train one reward model; its folder, training-loop seconds, wall seconds and CPU seconds (these two with
    loading and tokenizing; CPU seconds depend less on other work on the machine than wall seconds do)."""
    from accord.reward import RewardConfig, train as train_model

    config = RewardConfig(model=args.model, output_dir=os.path.join(args.work_dir, name), task=task,
                          max_length=args.max_length, batch_size=args.batch_size, max_steps=steps,
                          learning_rate=args.learning_rate, freeze_layers=args.freeze_layers, seed=seed,
                          save_steps=None, logging_steps=50, stats_max_pairs=64, progress=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = train_model(config, train_data=train)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"  {name:24s} {steps} steps: loop {result.train_seconds:6.1f} s, wall {wall:6.1f} s, CPU {cpu:6.1f} s, "
          f"final loss {result.train_loss:.3f}", flush=True)
    return config.output_dir, result.train_seconds, wall, cpu


def oriented_gaps(pairs: pd.DataFrame, truth: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """The true latent gaps ``z(chosen) - z(rejected)`` of each cleaned pair (the truth is per (a, b) pair)."""
    forward = truth.rename(columns={"response_a_id": "chosen_id", "response_b_id": "rejected_id"})
    backward = truth.rename(columns={"response_a_id": "rejected_id", "response_b_id": "chosen_id"})
    gaps = [f"gap_{a}" for a in attributes]
    backward[gaps] = -backward[gaps]
    both = pd.concat([forward, backward])[["chosen_id", "rejected_id", *gaps]]
    merged = pairs[["chosen_id", "rejected_id"]].merge(both, on=["chosen_id", "rejected_id"], how="left")
    if merged[gaps].isna().any().any():
        raise SystemExit("a cleaned pair has no true gap")
    return merged[gaps].set_axis(attributes, axis=1)


def reward_synthetic(args: argparse.Namespace, seeds: list[int]) -> None:
    """The reward half on every seed, then (several seeds) the means over seeds with their standard errors."""
    runs = [reward_synthetic_seed(args, seed) for seed in seeds]
    if len(runs) < 2:
        return
    frame = pd.DataFrame(runs)

    def mean_se(column: str) -> str:
        values = frame[column].to_numpy(dtype=float)
        return f"{values.mean():.3f} (SE {values.std(ddof=1) / np.sqrt(len(values)):.3f})"

    frame["accuracy ratio"] = frame["k-head mean accuracy"] / frame["single-head mean accuracy"]
    frame["combination - overall head"] = frame["K-head, fitted weights"] - frame["single head on overall votes"]
    print(f"## Means over seeds {seeds} (standard error over seeds)\n\n| quantity | mean (SE) | per seed |\n|---|---|---|")
    for column in ("time ratio", "k-head mean accuracy", "single-head mean accuracy", "accuracy ratio",
                   *[c for c in runs[0] if c.startswith(("single head on", "K-head,"))], "combination - overall head"):
        per_seed = ", ".join(f"{v:.3f}" for v in frame[column])
        print(f"| {column} | {mean_se(column)} | {per_seed} |")
    print(f"\nTargets on the means: time ratio <= 0.4: {'OK' if frame['time ratio'].mean() <= 0.4 else 'MISS'}; "
          f"accuracy ratio >= 0.97: {'OK' if frame['accuracy ratio'].mean() >= 0.97 else 'MISS'}; fitted "
          f"combination at least as accurate as the overall head: "
          f"{'OK' if frame['combination - overall head'].mean() >= 0 else 'MISS'}\n", flush=True)


def reward_synthetic_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """One seed of the reward half (data, held-out prompts, simulated overall votes and training all seeded by it);
    returns the figures the summary over seeds reads."""
    from accord.aggregate.cleaned_attributes import clean_attributes
    from accord.reward import score
    from accord.reward.attribute_combination import FixedWeights, fit_combination, save_combination

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Multi-attribute reward model, seed {seed}: K heads vs K single-head models ({args.model}, {args.steps} "
          f"steps of {args.batch_size} pairs, {args.freeze_layers} lower layers frozen, max length {args.max_length}, "
          f"{args.threads} torch thread(s), load average {load:.1f} at the start)\n", flush=True)
    data = make_synthetic_attributes(n_responses=args.reward_responses, n_responses_per_prompt=3, seed=seed)
    attributes = list(data.truth.columns)
    pairs = clean_attributes(data.judgments).pairs
    gaps = oriented_gaps(pairs, data.pairs, attributes)
    rng = np.random.default_rng(seed)
    overall_gap = gaps.to_numpy() @ np.array([OVERALL_WEIGHTS[a] for a in attributes])
    p_true = 1.0 / (1.0 + np.exp(-3.0 * overall_gap / overall_gap.std()))
    votes = rng.binomial(3, p_true)
    prompts = pairs["prompt"].unique()
    test_prompts = set(rng.choice(prompts, size=len(prompts) // 4, replace=False))
    is_test = pairs["prompt"].isin(test_prompts).to_numpy()
    text = ["prompt", "chosen", "rejected"]
    train_pairs = pairs[~is_test].reset_index(drop=True)
    test_pairs = pairs[is_test].reset_index(drop=True)
    test_gaps, test_overall = gaps[is_test].reset_index(drop=True), overall_gap[is_test]
    print(f"{len(data.judgments):,} ratings of {len(data.truth):,} responses -> {len(pairs):,} pairs "
          f"({len(train_pairs):,} train, {len(test_pairs):,} held out)\n", flush=True)

    keep = text + [f"{p}_{a}" for a in attributes for p in ("p_chosen", "weight", "n")]
    multi = train_pairs[keep].copy()
    multi.attrs = {}  # a plain table: the attributes come from its p_chosen_<a> columns
    k_dir, k_loop, k_wall, k_cpu = train_reward(args, f"seed{seed}-k-heads", multi, args.steps, task="attributes",
                                                seed=seed)
    singles = {}
    for a in attributes:
        frame = train_pairs[text].assign(p_chosen=train_pairs[f"p_chosen_{a}"], weight=train_pairs[f"weight_{a}"])
        singles[a] = train_reward(args, f"seed{seed}-single-{a}", frame, args.steps, seed=seed)
    overall_train = train_pairs[text].assign(p_chosen=votes[~is_test] / 3.0)
    overall_dir = train_reward(args, f"seed{seed}-single-overall", overall_train, args.steps, seed=seed)[0]

    scored = score(k_dir, test_pairs[text])
    rows = []
    for a in attributes:
        truth = test_gaps[a].to_numpy() > 0
        k_acc = float(((scored[f"p_chosen_{a}_model"] > 0.5).to_numpy() == truth).mean())
        single = score(singles[a][0], test_pairs[text])
        s_acc = float(((single["p_chosen_model"] > 0.5).to_numpy() == truth).mean())
        rows.append({"attribute": a, "k-head accuracy": k_acc, "single-head accuracy": s_acc})
    table = pd.DataFrame(rows).set_index("attribute")
    print("\n| attribute | K-head accuracy | single-head accuracy |\n|---|---|---|")
    for a, row in table.iterrows():
        print(f"| {a} | {row['k-head accuracy']:.3f} | {row['single-head accuracy']:.3f} |")
    k_mean, s_mean = table["k-head accuracy"].mean(), table["single-head accuracy"].mean()
    s_loop = sum(v[1] for v in singles.values())
    s_wall = sum(v[2] for v in singles.values())
    s_cpu = sum(v[3] for v in singles.values())
    print(f"| **mean** | {k_mean:.3f} | {s_mean:.3f} |\n")
    print(f"Training loop: K-head {k_loop:.1f} s, {len(attributes)} single heads {s_loop:.1f} s in all: ratio "
          f"{k_loop / s_loop:.3f} (with loading and tokenizing: wall {k_wall:.1f} s vs {s_wall:.1f} s, ratio "
          f"{k_wall / s_wall:.3f}; CPU {k_cpu:.1f} s vs {s_cpu:.1f} s, ratio {k_cpu / s_cpu:.3f}). Targets: time "
          f"ratio <= 0.4: {'OK' if k_loop / s_loop <= 0.4 else 'MISS'}; mean accuracy ratio {k_mean / s_mean:.3f} "
          f">= 0.97: {'OK' if k_mean / s_mean >= 0.97 else 'MISS'}")

    truth = test_overall > 0
    single = score(overall_dir, test_pairs[text])
    results = {"single head on overall votes": float(((single["p_chosen_model"] > 0.5).to_numpy() == truth).mean())}
    fits = {"fitted weights": dict(method="fitted"), "fitted weights, length decorrelated":
            dict(method="fitted", decorrelate_length=True), "gating network": dict(method="gating")}
    for label, settings in fits.items():
        combination = fit_combination(k_dir, overall_train, **settings)
        save_combination(k_dir, combination)
        combined = score(k_dir, test_pairs[text])
        results[f"K-head, {label}"] = float(((combined["p_chosen_model"] > 0.5).to_numpy() == truth).mean())
        if label == "fitted weights":
            fitted = {a: round(float(w), 3) for a, w in zip(attributes, combination.coef_)}
    save_combination(k_dir, FixedWeights(OVERALL_WEIGHTS, attributes))
    oracle = score(k_dir, test_pairs[text])
    results["K-head, true weights (oracle)"] = float(((oracle["p_chosen_model"] > 0.5).to_numpy() == truth).mean())
    print(f"\nHeld-out overall preference ({len(test_pairs)} pairs, against the true overall order); fitted weights "
          f"{fitted} (true {OVERALL_WEIGHTS}, up to scale):\n\n| model | accuracy |\n|---|---|")
    for label, value in results.items():
        print(f"| {label} | {value:.3f} |")
    ok = results["K-head, fitted weights"] >= results["single head on overall votes"]
    print(f"\nTarget: the fitted weights at least as accurate as the single overall head: {'OK' if ok else 'MISS'}"
          "\n", flush=True)
    return {"time ratio": k_loop / s_loop, "k-head mean accuracy": k_mean, "single-head mean accuracy": s_mean,
            **results}


def reward_ukp(args: argparse.Namespace) -> None:
    from accord.aggregate.cleaned_attributes import clean_attributes
    from accord.datasets.loaders.ukp2 import load_ukpconvarg2
    from accord.reward import score

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table = load_ukpconvarg2(args.ukp_dir)
    pairs = clean_attributes(table, method="attribute-mean").pairs
    side = table.drop_duplicates("pair_id").set_index("pair_id")["item_debate"]
    topic = pairs["pair_id"].map(side).str.rsplit("_", n=1).str[0]
    is_test = topic.isin(TEST_TOPICS).to_numpy()
    groups = list(pairs.attrs["accord"]["property_attributes"])
    text = ["prompt", "chosen", "rejected"]
    train, test = pairs[~is_test].reset_index(drop=True), pairs[is_test].reset_index(drop=True)
    n_sides = pairs["pair_id"].map(side)
    if args.ukp_test_pairs and args.ukp_test_pairs < len(test):  # the same share of every held-out side
        share = args.ukp_test_pairs / len(test)
        sides = test["pair_id"].map(side)
        test = test.groupby(sides, group_keys=False).apply(
            lambda g: g.sample(n=max(1, round(len(g) * share)), random_state=0)).reset_index(drop=True)
    train.attrs = test.attrs = pairs.attrs
    print(f"# UKPConvArg2, UKPConvArg1Strict topic split: {len(train):,} training pairs on "
          f"{n_sides[~is_test].nunique()} sides, {len(test):,} of the {int(is_test.sum()):,} held-out pairs on "
          f"{n_sides[is_test].nunique()} sides "
          f"({args.model}, {args.ukp_steps} steps of {args.batch_size} pairs, {args.freeze_layers} lower layers "
          f"frozen, max length {args.max_length}, load average {load:.1f} at the start)\n", flush=True)
    k_dir = train_reward(args, "ukp-k-heads", train, args.ukp_steps, task="attributes")[0]
    single_dir = train_reward(args, "ukp-single", train[text].assign(p_chosen=1.0), args.ukp_steps)[0]
    k_scored = score(k_dir, test[text])
    single_scored = score(single_dir, test[text])
    print(f"\nPreference accuracy on the held-out sides: K-head {float((k_scored['p_chosen_model'] > 0.5).mean()):.3f}"
          f", single head {float((single_scored['p_chosen_model'] > 0.5).mean()):.3f}\n")
    print("| reason group | prevalence (test) | F1 (K-head) | F1 always-yes | F1 majority class | F1 random | "
          "accuracy (K-head) | ROC AUC (K-head) |\n|---|---|---|---|---|---|---|---|")
    f1s, aucs, baselines = [], [], []
    for g in groups:
        truth = test[f"{g}_mean"].to_numpy() > 0.5
        guess = (k_scored[f"p_{g}_model"] > 0.5).to_numpy()
        tp = float((truth & guess).sum())
        f1 = 2 * tp / max(float(truth.sum() + guess.sum()), 1.0)
        prevalence = float(truth.mean())
        f1s.append(f1)
        # the threshold-free ranking quality of P(reason); NaN where the test pairs hold no pair with (or without)
        # the reason (a small --ukp-test-pairs), which printed 0.000 and pulled the macro mean down
        auc = auroc(k_scored[f"p_{g}_model"].to_numpy(), truth)
        aucs.append(auc)
        always_yes = 2 * prevalence / (1 + prevalence)
        # majority class: always the more frequent answer of the training pairs; random: yes with the training
        # prevalence q, whose expected F1 is 2 q p / (q + p)
        q = float((train[f"{g}_mean"].to_numpy() > 0.5).mean())
        majority = always_yes if q > 0.5 else 0.0
        random_f1 = 2 * q * prevalence / max(q + prevalence, 1e-12)
        baselines.append((always_yes, majority, random_f1))
        print(f"| {g} | {prevalence:.3f} | {f1:.3f} | {always_yes:.3f} | {majority:.3f} | {random_f1:.3f} | "
              f"{float((truth == guess).mean()):.3f} | {auc:.3f} |")
    means = np.mean(baselines, axis=0)
    print(f"| **macro** | | {np.mean(f1s):.3f} | {means[0]:.3f} | {means[1]:.3f} | {means[2]:.3f} | | "
          f"{np.nanmean(aucs):.3f} |\n", flush=True)


if __name__ == "__main__":
    main()
