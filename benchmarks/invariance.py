"""How much a rater model's soft labels move when nothing about the judgments changes but their presentation.

The same judgments with the sides turned round (``swap_sides``: A and B exchanged, for models without a
position-bias term), with the rows in another order, or fitted with another seed should give the same soft labels
(mirrored for a swap): the first two are invariances of the model, the third is the fit's own randomness to
compare them with. For each model, number of rater groups and seed of a synthetic table (``make_synthetic``:
``--pairs`` pairs, ``--raters`` raters, ``n_groups`` groups), this prints the largest and the mean absolute
difference of the soft labels from the reference fit, then a summary per model and group count: on how many seeds
the largest difference exceeds 1e-3, and the median of the largest and of the mean differences.

    python benchmarks/invariance.py --models context --inference map --groups 2,3 --seeds 0,1,2,3,4,5
    python benchmarks/invariance.py --models context,mace,glad --inference map --groups 1,2

Nothing is written. One torch thread (set ``OMP_NUM_THREADS=1`` as well for repeatable timings).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import torch

from accord.aggregate import make_method
from accord.datasets import make_synthetic, swap_sides, validate

TRANSFORMS = ("swap", "shuffle", "seed")


def soft_labels(method: str, table: pd.DataFrame, seed: int, inference: str | None) -> pd.DataFrame:
    settings = {} if inference is None else {"inference": inference}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_method(method, seed=seed, progress=False, **settings).fit(validate(table))
    return model.soft_labels_.probs


def differences(method: str, table: pd.DataFrame, inference: str | None) -> dict[str, tuple[float, float]]:
    """``transform -> (largest, mean)`` absolute difference of the soft labels from the fit on ``table``."""
    reference = soft_labels(method, table, 0, inference)
    out = {}
    for name in TRANSFORMS:
        if name == "swap":
            probs = soft_labels(method, swap_sides(table), 0, inference).rename(columns={"A": "B", "B": "A"})
        elif name == "shuffle":
            probs = soft_labels(method, table.sample(frac=1.0, random_state=11).reset_index(drop=True), 0, inference)
        else:
            probs = soft_labels(method, table, 1, inference)
        gap = np.abs(probs.loc[reference.index, reference.columns].to_numpy() - reference.to_numpy())
        out[name] = (float(gap.max()), float(gap.mean()))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="context", help="comma-separated methods of `accord aggregate`")
    parser.add_argument("--inference", default=None, help="inference of every model (default: each model's own)")
    parser.add_argument("--groups", default="2,3", help="rater groups of the synthetic tables")
    parser.add_argument("--seeds", default="0,1,2,3,4,5", help="seeds of the synthetic tables")
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--raters", type=int, default=24)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or len(set(seeds)) < len(seeds):  # a repeated seed counted twice in 'on k of n seeds'
        parser.error(f"--seeds: one or more distinct seeds, not {args.seeds!r}")
    torch.set_num_threads(1)
    print(f"{'model':<14}{'groups':>7}{'seed':>5}" + "".join(f"{name + ' max/mean':>22}" for name in TRANSFORMS))
    for method in args.models.split(","):
        for groups in (int(g) for g in args.groups.split(",")):
            rows = []
            for seed in seeds:
                table = make_synthetic(n_pairs=args.pairs, n_annotators=args.raters, n_groups=groups,
                                       seed=seed).judgments.drop(columns=["gold"])
                result = differences(method, table, args.inference)
                rows.append(result)
                print(f"{method:<14}{groups:>7}{seed:>5}"
                      + "".join(f"{result[n][0]:>13.2g} / {result[n][1]:<6.4f}" for n in TRANSFORMS), flush=True)
            summary = []
            for name in TRANSFORMS:
                largest = np.array([r[name][0] for r in rows])
                mean = np.array([r[name][1] for r in rows])
                summary.append(f"{name}: > 1e-3 on {int((largest > 1e-3).sum())} of {len(rows)}, median largest "
                               f"{np.median(largest):.2g}, median mean {np.median(mean):.4f}")
            print(f"  {method}, {groups} group(s): " + "; ".join(summary), flush=True)


if __name__ == "__main__":
    main()
