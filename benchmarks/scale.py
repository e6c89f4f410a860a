#!/usr/bin/env python
"""Scale benchmark: ten million judgments through ``accord aggregate`` on one small machine.

The script writes a synthetic judgments file with known truth (Parquet, written in chunks so that generating it
needs little memory), then runs the command line exactly as a user would::

    accord aggregate --input judgments.parquet --gold truth.parquet \
        --method hierarchical-dawid-skene --inference vb --output soft_labels.parquet

in a child process, and prints its wall time, its peak resident memory (the child's ``ru_maxrss``), and the
accuracy and NLL of the soft labels against the truth. Peak memory is what matters on a small machine: the
issue's bound is 8 GB for 10M judgments and 100k annotators on 2 cores.

Generative story (a Dawid-Skene world, three classes A / B / tie): each pair's true label is drawn from
``(0.45, 0.45, 0.10)``; annotators are reliable (65%; accuracy ~ Beta(8, 2), errors split between the other two
labels), spammers (25%; uniform answers) or position-biased (10%; "A" with probability 0.7, else reliable).
Workload is skewed (Zipf-like activity), so many annotators have few judgments and a few have thousands, as on
crowdsourcing platforms. Each pair gets ``--per-pair`` distinct annotators.

Examples::

    python benchmarks/scale.py                                   # 10M judgments, 100k annotators
    python benchmarks/scale.py --judgments 1000000 --annotators 25000
    python benchmarks/scale.py --judgments 100000000 --device cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = np.array(["A", "B", "tie"])
CLASS_PRIOR = np.array([0.45, 0.45, 0.10])
ANNOTATOR_MIX = {"reliable": 0.65, "spammer": 0.25, "position_biased": 0.10}


def annotator_confusions(n_annotators: int, rng: np.random.Generator) -> np.ndarray:
    """``[W, 3, 3]`` confusion matrices of reliable (type 0), spammer (1) and position-biased (2) annotators."""
    types = rng.choice(3, size=n_annotators, p=list(ANNOTATOR_MIX.values()))
    accuracy = rng.beta(8.0, 2.0, size=n_annotators)
    confusion = np.empty((n_annotators, 3, 3))
    for k in range(3):  # a loop over the three classes, not over annotators
        confusion[:, k, :] = ((1.0 - accuracy) / 2.0)[:, None]
        confusion[:, k, k] = accuracy
    confusion[types == 1] = 1.0 / 3.0
    biased = types == 2
    confusion[biased] *= 0.3
    confusion[biased, :, 0] += 0.7
    return confusion


def _distinct_annotators(n_pairs: int, per_pair: int, activity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[n_pairs, per_pair]`` annotator codes, distinct within each pair, drawn with probability ``activity``."""
    cumulative = np.cumsum(activity)
    chosen = np.searchsorted(cumulative, rng.random((n_pairs, per_pair)) * cumulative[-1])
    while True:  # redraw the (rare) rows that picked one annotator twice; vectorized over rows
        ordered = np.sort(chosen, axis=1)
        clash = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not clash.any():
            return chosen
        chosen[clash] = np.searchsorted(cumulative, rng.random((int(clash.sum()), per_pair)) * cumulative[-1])


def generate(directory: Path, n_judgments: int, n_annotators: int, per_pair: int, seed: int,
             chunk_pairs: int = 250_000) -> tuple[Path, Path]:
    """Write ``judgments.parquet`` (pair_id, annotator, label) and ``truth.parquet`` (pair_id, gold) in chunks."""
    rng = np.random.default_rng(seed)
    confusion = annotator_confusions(n_annotators, rng)
    cumulative_confusion = confusion.cumsum(-1)
    activity = 1.0 / np.arange(1, n_annotators + 1) ** 0.6  # Zipf-like workload
    rng.shuffle(activity)
    n_pairs = n_judgments // per_pair
    judgments_path, truth_path = directory / "judgments.parquet", directory / "truth.parquet"
    judgment_schema = pa.schema([("pair_id", pa.string()), ("annotator", pa.string()), ("label", pa.string())])
    truth_schema = pa.schema([("pair_id", pa.string()), ("gold", pa.string())])
    with pq.ParquetWriter(judgments_path, judgment_schema) as judgments_out, \
            pq.ParquetWriter(truth_path, truth_schema) as truth_out:
        for start in range(0, n_pairs, chunk_pairs):
            size = min(chunk_pairs, n_pairs - start)
            truth = rng.choice(3, size=size, p=CLASS_PRIOR)
            who = _distinct_annotators(size, per_pair, activity, rng)
            rows = cumulative_confusion[who, truth[:, None], :]  # [size, per_pair, 3]
            labels = (rng.random((size, per_pair, 1)) > rows).sum(-1).clip(max=2)
            pair_ids = np.char.add("pair", np.arange(start, start + size).astype(str))
            judgments_out.write_table(pa.table({
                "pair_id": np.repeat(pair_ids, per_pair),
                "annotator": np.char.add("w", who.ravel().astype(str)),
                "label": CLASSES[labels.ravel()],
            }, schema=judgment_schema))
            truth_out.write_table(pa.table({"pair_id": pair_ids, "gold": CLASSES[truth]}, schema=truth_schema))
    return judgments_path, truth_path


def run_aggregate(judgments: Path, truth: Path, output: Path, method: str, inference: str,
                  device: str) -> dict[str, float]:
    """Run ``accord aggregate`` in a child process; its wall time and peak resident memory."""
    command = [sys.executable, "-m", "accord.cli", "aggregate", "--input", str(judgments), "--gold", str(truth),
               "--method", method, "--inference", inference, "--output", str(output), "--quiet"]
    if device != "cpu":
        command += ["--device", device]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    sys.stdout.write(completed.stdout)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"accord aggregate failed with exit status {completed.returncode}")
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # kB on Linux
    return {"wall_s": wall, "peak_gb": peak_gb}


def score(output: Path, truth: Path) -> dict[str, float]:
    """Accuracy (pairs whose true label is a tie left out, as everywhere in accord), NLL and ECE of the written soft
    labels against the truth (:func:`accord.metrics.score`)."""
    from accord.metrics import score as accord_score

    soft = pd.read_parquet(output).set_index("pair_id")
    probs = soft[["p_A", "p_B", "p_tie"]].set_axis(list(CLASSES), axis=1)
    gold = pd.read_parquet(truth).set_index("pair_id")["gold"]
    return accord_score(probs, gold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=10_000_000)
    parser.add_argument("--annotators", type=int, default=100_000)
    parser.add_argument("--per-pair", type=int, default=5)
    parser.add_argument("--method", default="hierarchical-dawid-skene")
    parser.add_argument("--inference", default="vb",
                        help="closed-form VB with the population fitted by empirical Bayes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="where the data goes (default: a temporary folder)")
    args = parser.parse_args(argv)

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="accord-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    judgments, truth = work / "judgments.parquet", work / "truth.parquet"
    started = time.perf_counter()
    if not (judgments.exists() and truth.exists() and pq.ParquetFile(judgments).metadata.num_rows
            == args.judgments // args.per_pair * args.per_pair):
        judgments, truth = generate(work, args.judgments, args.annotators, args.per_pair, args.seed)
    size_mb = judgments.stat().st_size / 1e6
    print(f"data: {pq.ParquetFile(judgments).metadata.num_rows:,} judgments, {args.annotators:,} annotators, "
          f"{args.per_pair} per pair, {size_mb:.0f} MB Parquet ({time.perf_counter() - started:.0f} s to write)")
    output = work / "soft_labels.parquet"
    measured = run_aggregate(judgments, truth, output, args.method, args.inference, args.device)
    quality = score(output, truth)
    print()
    print(f"{'method':<34}{'judgments':>12}{'wall s':>9}{'peak GB':>9}{'accuracy':>10}{'NLL':>8}{'ECE':>8}")
    name = f"{args.method} ({args.inference})"
    print(f"{name:<34}{args.judgments:>12,}{measured['wall_s']:>9.0f}{measured['peak_gb']:>9.2f}"
          f"{quality['accuracy']:>10.3f}{quality['nll']:>8.3f}{quality['ece']:>8.3f}")
    print(f"machine: {os.cpu_count()} CPUs; device {args.device}; bound of the issue: 8 GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
