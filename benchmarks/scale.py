#!/usr/bin/env python
"""Scale benchmark: ten million judgments through ``accord aggregate`` on one small machine, in one process or several.

The script writes a synthetic judgments file with known truth (Parquet, written in chunks so that generating it
needs little memory), then runs the command line exactly as a user would, for each method of ``--methods``::

    accord aggregate --input judgments.parquet --gold truth.parquet \
        --method hierarchical-dawid-skene --inference vb --output soft_labels.parquet

in a child process, or with ``--ranks N``::

    accord aggregate --distributed N --input judgments.parquet --method ... --inference vb --output ...

(torchrun with N processes, each streaming its own pairs of the Parquet file; ``--ranks 1`` is the same streaming fit
in one process). It prints the fit time the command reports, the wall time, the peak resident memory (the child's
``ru_maxrss``; with ``--ranks``, each rank's own peak as it reports it), memory per judgment, and the accuracy, NLL and
ECE of the soft labels against the truth, with the machine's load average before and after each run (the machine may
be shared: read the times with it).

Generative story (a Dawid-Skene world, three classes A / B / tie): each pair's true label is drawn from
``(0.45, 0.45, 0.10)``; annotators are reliable (65%; accuracy ~ Beta(8, 2), errors split between the other two
labels), spammers (25%; uniform answers) or position-biased (10%; "A" with probability 0.7, else reliable).
Workload is skewed (Zipf-like activity), so many annotators have few judgments and a few have thousands, as on
crowdsourcing platforms. Each pair gets ``--per-pair`` distinct annotators.

Examples::

    python benchmarks/scale.py                                   # 10M judgments, 100k annotators, both methods
    python benchmarks/scale.py --ranks 2                         # the same on two processes (torchrun, gloo)
    python benchmarks/scale.py --judgments 1000000 --annotators 25000 --methods dawid-skene
    python benchmarks/scale.py --judgments 100000000 --device cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
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


#: the key in both files' Parquet metadata under which the settings they were generated with are kept
SETTINGS_KEY = b"accord_scale_settings"


def generate(directory: Path, n_judgments: int, n_annotators: int, per_pair: int, seed: int,
             chunk_pairs: int = 250_000) -> tuple[Path, Path]:
    """Write ``judgments.parquet`` (pair_id, annotator, label) and ``truth.parquet`` (pair_id, gold) in chunks, each
    with the settings it was generated with in its metadata (:func:`generated_with`)."""
    settings = {SETTINGS_KEY: json.dumps(data_settings(n_judgments, n_annotators, per_pair, seed)).encode()}
    rng = np.random.default_rng(seed)
    confusion = annotator_confusions(n_annotators, rng)
    cumulative_confusion = confusion.cumsum(-1)
    activity = 1.0 / np.arange(1, n_annotators + 1) ** 0.6  # Zipf-like workload
    rng.shuffle(activity)
    n_pairs = n_judgments // per_pair
    judgments_path, truth_path = directory / "judgments.parquet", directory / "truth.parquet"
    judgment_schema = pa.schema([("pair_id", pa.string()), ("annotator", pa.string()), ("label", pa.string())],
                                metadata=settings)
    truth_schema = pa.schema([("pair_id", pa.string()), ("gold", pa.string())], metadata=settings)
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


def data_settings(n_judgments: int, n_annotators: int, per_pair: int, seed: int) -> dict[str, int]:
    """What the generated data depends on."""
    return {"judgments": n_judgments, "annotators": n_annotators, "per_pair": per_pair, "seed": seed}


def generated_with(path: Path) -> dict[str, int] | None:
    """The settings a file of :func:`generate` was written with; None for a missing file, one without them, or one a
    stopped run left unfinished (no Parquet footer)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    return json.loads(metadata[SETTINGS_KEY]) if SETTINGS_KEY in metadata else None


def run_aggregate(judgments: Path, truth: Path, output: Path, method: str, inference: str, device: str,
                  ranks: int) -> dict[str, float]:
    """Run ``accord aggregate`` in a child process; the fit time it reports, its wall time and peak memory."""
    command = [sys.executable, "-m", "accord", "aggregate", "--input", str(judgments), "--method", method,
               "--inference", inference, "--output", str(output), "--quiet"]
    command += ["--distributed", str(ranks)] if ranks else ["--gold", str(truth)]
    if device != "cpu":
        command += ["--device", device]
    print("$ python " + shlex.join(command[1:]), flush=True)  # as a reader would type it
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage (its peak memory)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    sys.stdout.write(stdout)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(stderr)
        raise SystemExit(f"accord aggregate failed with exit status {os.waitstatus_to_exitcode(status)}")
    fit = float(re.search(r"fit: ([0-9.]+)s", stdout).group(1))
    per_rank = re.search(r"peak memory per rank \(GB\): ([0-9. ]+)", stdout)
    if per_rank:
        peak_gb = max(float(v) for v in per_rank.group(1).split())
    else:
        peak_gb = usage.ru_maxrss / 1024**2  # kB on Linux
    return {"fit_s": fit, "wall_s": wall, "peak_gb": peak_gb, "load_before": load_before,
            "load_after": os.getloadavg()[0]}


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
    parser.add_argument("--methods", default="dawid-skene,hierarchical-dawid-skene")
    parser.add_argument("--inference", default="vb",
                        help="closed-form VB (the hierarchical model's population fitted by empirical Bayes)")
    parser.add_argument("--ranks", type=int, default=0,
                        help="N >= 1: accord aggregate --distributed N (N processes, each streaming its pairs); "
                             "0 (default): one process reading the whole table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="where the data goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    # each pair's raters are distinct (drawn again until they are): more per pair than annotators never ended
    if not 1 <= args.per_pair <= args.annotators:
        parser.error(f"--per-pair {args.per_pair}: distinct annotators per pair, 1 to --annotators "
                     f"({args.annotators})")
    if args.judgments < args.per_pair:  # no pair: an empty file, which the fit refuses
        parser.error(f"--judgments {args.judgments}: at least one pair's worth (--per-pair {args.per_pair})")

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="accord-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    judgments, truth = work / "judgments.parquet", work / "truth.parquet"
    started = time.perf_counter()
    # the data of an earlier run in --work-dir is reused only when it was generated with these settings: by its
    # number of rows alone, data of another --seed, --annotators or --per-pair was measured and printed as these
    wanted = data_settings(args.judgments, args.annotators, args.per_pair, args.seed)
    if not generated_with(judgments) == generated_with(truth) == wanted:
        judgments, truth = generate(work, args.judgments, args.annotators, args.per_pair, args.seed)
    size_mb = judgments.stat().st_size / 1e6
    n_rows = pq.ParquetFile(judgments).metadata.num_rows
    print(f"data: {n_rows:,} judgments, {args.annotators:,} annotators, "
          f"{args.per_pair} per pair, {size_mb:.0f} MB Parquet ({time.perf_counter() - started:.0f} s to write)")
    rows = []
    for method in args.methods.split(","):
        output = work / f"soft_labels-{method}.parquet"
        measured = run_aggregate(judgments, truth, output, method, args.inference, args.device, args.ranks)
        rows.append((method, measured, score(output, truth)))
    print()
    print(f"{'method':<34}{'ranks':>6}{'judgments':>12}{'fit s':>8}{'wall s':>8}{'peak GB':>9}{'B/judgment':>11}"
          f"{'accuracy':>10}{'NLL':>8}{'ECE':>8}{'load':>11}")
    for method, measured, quality in rows:
        name = f"{method} ({args.inference})"
        per_judgment = measured["peak_gb"] * 1024**3 / n_rows
        print(f"{name:<34}{max(args.ranks, 1):>6}{n_rows:>12,}{measured['fit_s']:>8.1f}{measured['wall_s']:>8.1f}"
              f"{measured['peak_gb']:>9.2f}{per_judgment:>11.0f}{quality['accuracy']:>10.3f}{quality['nll']:>8.3f}"
              f"{quality['ece']:>8.3f}{measured['load_before']:>5.1f}->{measured['load_after']:<5.1f}")
    print(f"machine: {os.cpu_count()} CPUs; device {args.device}; peak GB is per rank with --ranks; "
          "load: the one-minute load average before -> after each run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
