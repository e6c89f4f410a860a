#!/usr/bin/env python
"""GLAD and MACE against majority vote and crowd-kit on every development set and on a large sparse crowd.

For each set: accuracy against gold of majority vote (``argmax``: the first class wins a tied vote; ``split``: a
tied vote counts as the share of the tied classes that is right, the expected accuracy of a random tie-break),
accord's ``GLAD()`` and ``MACE()`` with their defaults, and crowd-kit 1.4.2's ``GLAD`` and ``MACE``; the gold NLL
of accord's models; the fit time of each; and whether accord's models reach majority vote (the larger of its two
accuracies).

Sets: VLDB'17 D_Product, d_sentiment, Duck and Dog (4 classes), Snow 2008 RTE, TEMP, WSD (``../shared/datasets``),
and a synthetic preference crowd of 100,000 judgments by about 5,000 raters whose workloads are log-normal (most
raters with fewer than 10 judgments, a few with hundreds; ``accord.datasets.make_synthetic``).

    python benchmarks/robustness.py                   # everything, one thread (minutes)
    python benchmarks/robustness.py --sets Duck,WSD --no-crowdkit

One torch thread (crowd-kit is single-threaded numpy); run it on an otherwise idle machine for the times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "datasets"

SPARSE = "sparse 100k"


def load_dog(folder: Path) -> pd.DataFrame:
    """VLDB'17 ``s4_Dog data`` (4 classes) as a validated categorical table with gold."""
    from accord.datasets import validate

    answers = pd.read_csv(folder / "answer.csv").set_axis(["pair_id", "annotator", "label"], axis=1)
    truth = pd.read_csv(folder / "truth.csv").set_axis(["pair_id", "gold"], axis=1)
    table = answers.merge(truth, on="pair_id", how="left", validate="many_to_one")
    return validate(table, form="categorical", classes=sorted(answers["label"].unique()))


def sparse_crowd(seed: int = 0) -> pd.DataFrame:
    """100,000 preference judgments, 20,000 pairs x 5, by about 5,000 raters with log-normal workloads."""
    from accord.datasets import make_synthetic, validate

    data = make_synthetic(n_pairs=20_000, n_annotators=5_650, judgments_per_pair=5, activity_skew=1.5,
                          with_text=False, seed=seed)
    return validate(data.judgments[["pair_id", "annotator", "label", "gold"]])


def datasets(names: list[str] | None) -> dict[str, Callable[[], pd.DataFrame]]:
    from accord.datasets.loaders import load_snow2008, load_vldb17

    sets: dict[str, Callable[[], pd.DataFrame]] = {}
    if DATA.exists():
        vldb, snow = DATA / "vldb17", DATA / "snow2008"
        sets.update({
            "D_Product": lambda: load_vldb17("product", vldb),
            "d_sentiment": lambda: load_vldb17("sentiment", vldb),
            "Duck": lambda: load_vldb17("duck", vldb),
            "Dog": lambda: load_dog(vldb / "s4_Dog data"),
            "RTE": lambda: load_snow2008("rte", snow),
            "TEMP": lambda: load_snow2008("temp", snow),
            "WSD": lambda: load_snow2008("wsd", snow),
        })
    else:
        print(f"(no shared datasets at {DATA}: only the synthetic set)")
    sets[SPARSE] = sparse_crowd
    unknown = sorted(set(names or ()) - set(sets))
    if unknown:
        raise SystemExit(f"--sets: unknown set(s) {', '.join(unknown)}; the sets are {', '.join(sets)}")
    return {name: load for name, load in sets.items() if names is None or name in names}


def crowdkit_probs(model: object, judgments: pd.DataFrame) -> pd.DataFrame:
    from accord.datasets import to_crowdkit

    frame = to_crowdkit(judgments)[["task", "worker", "label"]].reset_index(drop=True)
    return model.fit_predict_proba(frame)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated subset of the sets (default: all)")
    parser.add_argument("--no-crowdkit", action="store_true", help="leave out crowd-kit's GLAD and MACE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(int(os.environ.get("ACCORD_NUM_THREADS", "1")))
    from accord.aggregate import MajorityVote
    from accord.datasets import gold_labels
    from accord.metrics import accuracy, nll
    from accord.models.glad import GLAD
    from accord.models.mace import MACE

    methods: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
        "GLAD": lambda t: GLAD(seed=args.seed).fit(t).soft_labels_.probs,
        "MACE": lambda t: MACE(seed=args.seed).fit(t).soft_labels_.probs,
    }
    if not args.no_crowdkit:
        from crowdkit.aggregation import GLAD as CrowdKitGLAD
        from crowdkit.aggregation import MACE as CrowdKitMACE

        methods["crowd-kit GLAD"] = lambda t: crowdkit_probs(CrowdKitGLAD(), t)
        methods["crowd-kit MACE"] = lambda t: crowdkit_probs(CrowdKitMACE(random_state=args.seed), t)

    names = None if args.sets is None else [name for name in args.sets.split(",") if name.strip()]
    if names == []:  # an empty --sets ran every set (minutes), as if none had been given
        parser.error("--sets: no set named (leave --sets out for every set)")
    chosen = datasets(names)
    print(f"torch threads {torch.get_num_threads()}; CPUs {os.cpu_count()}; load avg {os.getloadavg()[0]:.2f}")
    header = (f"{'dataset':<13}{'n':>8}{'raters':>7}{'<10 j.':>7}{'MV argmax':>10}{'MV split':>9}"
              + "".join(f"{name:>16}" for name in methods) + f"{'GLAD nll':>9}{'MACE nll':>9}  reaches MV")
    print(header)
    shortfalls = []
    for name, load in chosen.items():
        table = load()
        gold = gold_labels(table)
        per_rater = table["annotator"].value_counts()
        mv = MajorityVote().fit(table).soft_labels_.probs
        mv_best = max(accuracy(mv, gold), accuracy(mv, gold, predicted_ties="split"))
        cells, nlls, verdict = [], {}, []
        for method, fit in methods.items():
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    probs = fit(table)
            except Exception as error:  # a peer's crash is reported, not fatal
                cells.append(f"{'error':>16}")
                print(f"  {method} on {name}: {type(error).__name__}: {error}", file=sys.stderr)
                continue
            seconds = time.perf_counter() - started
            acc = accuracy(probs, gold)
            cells.append(f"{acc:>9.4f} {seconds:>5.0f}s")
            if method in ("GLAD", "MACE"):
                nlls[method] = nll(probs, gold)
                ok = acc >= mv_best
                verdict.append(f"{method} {'yes' if ok else 'NO'}")
                if not ok:
                    shortfalls.append(f"{method} on {name}: {acc:.4f} < {mv_best:.4f}")
        print(f"{name:<13}{len(table):>8}{len(per_rater):>7}{(per_rater < 10).mean():>7.2f}"
              f"{accuracy(mv, gold):>10.4f}{accuracy(mv, gold, predicted_ties='split'):>9.4f}" + "".join(cells)
              + f"{nlls.get('GLAD', np.nan):>9.3f}{nlls.get('MACE', np.nan):>9.3f}  {', '.join(verdict)}",
              flush=True)
    print("accuracy below majority vote: " + ("; ".join(shortfalls) if shortfalls else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
