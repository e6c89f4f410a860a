"""Fit time of every aggregation method on a 100-judgment table, on an idle or a deliberately busy machine.

A new user's first table is small. This times ``fit`` (imports done beforehand, as ``accord aggregate`` reports it)
of every method ``accord aggregate --method`` knows, on a 100-judgment synthetic preference table (34 pairs with 3
judgments each, 12 raters; the ordinal model gets the same judgments as graded strengths on -2..2), with the torch
thread count the command line would choose (one thread below its small-data limit; ``ACCORD_NUM_THREADS`` wins).

Each row also gives the SVI steps the fit took (``-`` for closed forms) and whether its convergence rule stopped it.

``--coverage`` adds a second table: on a synthetic table where most raters have 3-6 judgments
(``make_synthetic``, 400 pairs x 4 judgments, 300 raters), the share of the 90% reliability intervals of the raters
with at most 6 judgments that cover their true reliability (``sum_k pi_k M_j[k, k]``), the intervals' mean width,
the soft labels' accuracy and ECE against the true labels (the baselines' too), and the coverage by rater type (the
adversarial raters' reliability lies below what a model without an adversarial mode can express).

``--gold`` compares settings of the pairwise models (``--grid``, JSON ``{label: settings}``; by default the SVI
convergence window, 50 or 25 steps) on 100-judgment tables with gold, ``--tables`` per source: UKPConvArg1 (the
judgments of gold pairs of one debate each) and the synthetic generator; per source, the mean accuracy and NLL
against gold and the SVI steps, and the setting with the lowest mean NLL on the other sources scored on it
(leave-one-source-out).

The imports that the first Pyro fit of a process would pay inside its fit (Pyro itself, and ``torch._dynamo``,
which torch imports when a process builds its first optimizer: about 1.3 s of CPU on a quiet machine) are done
before the timed fits and reported on their own line; a one-off ``accord aggregate`` pays them once.

``--busy N`` starts N CPU-bound processes (``while True: pass``) beside the fits for the whole run, as other work on
a laptop would, and stops them at the end; the one-minute load average is printed with each row, and the CPU time of
the fit (all its threads), which other work on the machine changes much less than the wall time. ``--repeat`` fits
each method that many times and reports the median.

    python benchmarks/small_fits.py                  # quiet machine
    python benchmarks/small_fits.py --busy 2         # both cores of a 2-core machine kept busy
    python benchmarks/small_fits.py --coverage --methods mace,glad
    python benchmarks/small_fits.py --gold --methods bradley-terry
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

N_JUDGMENTS = 100


def tables(seed: int):
    """The 100-judgment preference table and the same judgments as graded strengths."""
    import numpy as np

    from accord.datasets import make_synthetic, validate

    data = make_synthetic(n_pairs=34, n_annotators=12, judgments_per_pair=3, seed=seed)
    judgments = data.judgments.iloc[:N_JUDGMENTS].drop(columns=["gold"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    strength = rng.integers(1, 3, size=len(judgments))
    graded = judgments.assign(label=np.select([judgments["label"] == "A", judgments["label"] == "B"],
                                              [-strength, strength], 0))
    return validate(judgments), validate(graded, scale=2)


def coverage(names: list[str], seed: int) -> None:
    """Coverage of the 90% reliability intervals of raters with at most 6 judgments (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from accord import metrics
    from accord.aggregate import make_method
    from accord.cli import BASELINES
    from accord.datasets import make_synthetic

    data = make_synthetic(n_pairs=400, n_annotators=300, judgments_per_pair=4, activity_skew=0.5, with_text=False,
                          seed=seed + 3)
    table = data.judgments.drop(columns=["gold"])
    prior = data.true_label.value_counts(normalize=True).reindex(["A", "B", "tie"]).fillna(0.0).to_numpy()
    truth = pd.Series((np.diagonal(data.confusion, axis1=1, axis2=2) * prior).sum(1), index=data.annotators.index)
    kinds = data.annotators["type"].astype(str)
    print(f"\n90% reliability intervals of raters with <= 6 judgments ({len(table)} judgments, "
          f"{table['annotator'].nunique()} raters)")
    print(f"{'method':<26}{'acc':>6}{'ECE':>6}{'raters':>7}{'coverage':>9}{'width':>7}  coverage by type")
    for name in names:
        if name == "ordinal":  # graded labels: not this table
            continue
        if name == "debiased-bradley-terry":  # its length covariate needs response texts, which this table has not;
            continue                           # its intervals are checked in benchmarks/debias_synthetic.py
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = (make_method(name) if name in BASELINES else make_method(name, seed=seed, progress=False)).fit(table)
        labels = metrics.score(fitted.soft_labels_.probs, data.true_label)
        soft = f"{name:<26}{labels['accuracy']:>6.3f}{labels['ece']:>6.3f}"
        if name in BASELINES:
            print(soft, flush=True)
            continue
        raters = fitted.annotators_
        few = raters[raters["n_judgments"] <= 6]
        if "reliability_lower" not in few or few["reliability_lower"].isna().all():
            print(f"{soft}{len(few):>7}  no reliability interval", flush=True)
            continue
        if float((few["reliability_upper"] - few["reliability_lower"]).max()) == 0.0:
            print(f"{soft}{len(few):>7}  point estimates (its default inference is MAP): no interval", flush=True)
            continue
        true = truth.loc[few.index]
        covered = (few["reliability_lower"] <= true) & (true <= few["reliability_upper"])
        by_type = covered.groupby(kinds.loc[few.index]).mean()
        print(f"{soft}{len(few):>7}{covered.mean():>9.3f}"
              f"{(few['reliability_upper'] - few['reliability_lower']).mean():>7.3f}  "
              + ", ".join(f"{kind} {value:.2f}" for kind, value in by_type.items()), flush=True)


def small_gold_tables(seed: int, n_tables: int) -> dict[str, list]:
    """100-judgment preference tables with gold, by source: UKPConvArg1 (per debate, the judgments of gold pairs in
    a random order of pairs, cut at 100 judgments) and the synthetic generator (gold = the true label)."""
    from pathlib import Path

    import numpy as np

    from accord.datasets import make_synthetic, validate

    sources: dict[str, list] = {"synthetic": []}
    for k in range(n_tables):
        data = make_synthetic(n_pairs=34, n_annotators=12, judgments_per_pair=3, seed=seed + 100 + k)
        sources["synthetic"].append(validate(data.judgments.iloc[:N_JUDGMENTS].reset_index(drop=True)))
    path = Path(os.environ.get("ACCORD_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    if (path / "ukp-convarg1").exists():
        from accord.datasets.loaders.ukp import load_ukpconvarg1

        ukp = load_ukpconvarg1(path / "ukp-convarg1")
        ukp = ukp[ukp["gold"].notna()]
        rng = np.random.default_rng(seed)
        debates = rng.permutation(ukp["item_debate"].unique())[:n_tables]
        sources["UKPConvArg1"] = []
        for debate in debates:
            rows = ukp[ukp["item_debate"] == debate]
            pairs = rng.permutation(rows["pair_id"].unique())
            rows = rows.set_index("pair_id").loc[pairs].reset_index().iloc[:N_JUDGMENTS]
            sources["UKPConvArg1"].append(validate(rows[["pair_id", "annotator", "label", "gold", "prompt",
                                                        "response_a", "response_b", "response_a_id",
                                                        "response_b_id"]].reset_index(drop=True)))
    return sources


def gold_check(names: list[str], settings: dict[str, dict], seed: int, n_tables: int) -> None:
    """Accuracy and NLL against gold of each setting on the small gold tables of each source, and the setting
    chosen on the other sources (lowest mean NLL) scored on each: leave-one-source-out."""
    import numpy as np

    from accord.aggregate import make_method
    from accord.datasets import gold_labels
    from accord.metrics import score

    sources = small_gold_tables(seed, n_tables)
    counts = ", ".join(f"{name} {len(tables)}" for name, tables in sources.items())
    print(f"\nSmall tables with gold ({N_JUDGMENTS} judgments each; {counts}): mean accuracy / NLL against gold, "
          "SVI steps")
    for name in names:
        results: dict[tuple[str, str], tuple[float, float, float]] = {}
        for label, extra in settings.items():
            for source, tables in sources.items():
                rows = []
                for table in tables:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = make_method(name, seed=seed, progress=False, **extra).fit(table)
                    metrics = score(model.soft_labels_.probs, gold_labels(table))
                    rows.append((metrics["accuracy"], metrics["nll"], model.svi_.n_steps))
                results[label, source] = tuple(np.mean(rows, axis=0))
                acc, nll, steps = results[label, source]
                print(f"  {name:<24}{label:<22}{source:<13} acc {acc:.4f}  NLL {nll:.4f}  steps {steps:.0f}",
                      flush=True)
        for source in sources:
            others = [s for s in sources if s != source]
            chosen = min(settings, key=lambda label: np.mean([results[label, s][1] for s in others]))
            acc, nll, _ = results[chosen, source]
            print(f"  {name:<24}LOSO on {source:<13} chosen on the others: {chosen}; acc {acc:.4f}  NLL {nll:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside the fits")
    parser.add_argument("--repeat", type=int, default=1, help="fits per method (the median is reported)")
    parser.add_argument("--methods", help="comma-separated subset (default: every method)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coverage", action="store_true", help="also check reliability intervals of raters "
                        "with few judgments")
    parser.add_argument("--gold", action="store_true", help="only compare settings of the pairwise models (by "
                        "default the SVI window, 50 or 25 steps) on small tables with gold (UKPConvArg1, synthetic)")
    parser.add_argument("--tables", type=int, default=6, help="--gold: tables per source")
    parser.add_argument("--grid", help="--gold: JSON {label: settings} to compare instead of the two windows")
    args = parser.parse_args()
    # no fit to take the median of (statistics' 'no median for empty data' after the set-up), no table to average
    # over (NaN accuracies and NLLs, printed as results)
    for option, value in (("--repeat", args.repeat), ("--tables", args.tables)):
        if value < 1:
            parser.error(f"{option}: at least 1, not {value}")
    if args.gold:
        import json

        names = args.methods.split(",") if args.methods else ["bradley-terry", "debiased-bradley-terry"]
        windows = {"patience 50": {"patience": 50}, "patience 25": {"patience": 25}}
        grid = json.loads(args.grid) if args.grid else windows
        gold_check(names, grid, args.seed, args.tables)
        return 0

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line sets it
    from accord.aggregate import METHODS, make_method
    from accord.cli import BASELINES, free_cores, torch_threads, use_threads

    cores_free = free_cores()
    preference, graded = tables(args.seed)
    threads = torch_threads(N_JUDGMENTS, cores_free)
    use_threads(threads)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(3 if burners else 0)  # let the burners take the cores
        print(f"{N_JUDGMENTS} judgments; torch threads {threads}; busy processes beside: {args.busy}; "
              f"CPUs {os.cpu_count()}")
        # imports that the first SVI fit of a process would otherwise pay inside its fit: Pyro, and torch._dynamo,
        # which torch imports when the first optimizer of the process is built (torch.optim.Optimizer.__init__)
        started, cpu_started = time.perf_counter(), time.process_time()
        import pyro  # noqa: F401
        import torch._dynamo  # noqa: F401
        print(f"one-time imports before the first fit (pyro, torch._dynamo): {time.perf_counter() - started:.2f} s, "
              f"CPU {time.process_time() - cpu_started:.2f} s; every new process pays them once")
        print(f"{'method':<26}{'fit s (median)':>15}{'CPU s':>8}{'load avg':>10}{'steps':>7}  converged")
        names = args.methods.split(",") if args.methods else list(METHODS)
        for name in names:
            table = graded if name == "ordinal" else preference
            settings = {} if name in BASELINES else {"seed": args.seed, "progress": False}
            seconds, cpu, steps = [], [], "-"
            for _ in range(args.repeat):
                estimator = make_method(name, **settings)  # the model's module is imported here, off the clock
                started, cpu_started = time.perf_counter(), time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    estimator.fit(table)
                seconds.append(time.perf_counter() - started)
                cpu.append(time.process_time() - cpu_started)
                svi = getattr(estimator, "svi_", None)
                steps = f"{svi.n_steps:>7}  {svi.converged}" if svi is not None else f"{'-':>7}"
            print(f"{name:<26}{statistics.median(seconds):>15.2f}{statistics.median(cpu):>8.2f}"
                  f"{os.getloadavg()[0]:>10.2f}{steps}", flush=True)
        if args.coverage:
            coverage(names, args.seed)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
