"""Length bias among the UKPConvArg1 workers: per-worker pulls towards the longer argument, with 90% intervals,
and the population's, from :class:`accord.models.DebiasedBradleyTerry` with ``covariates=("length",)``.

What is printed:

* the raw picture: the share of non-tie votes that go to the longer argument of the pair (word count), overall and
  the quantiles of that share per worker;
* per worker with at least ``--min-judgments`` judgments: the pull ``length_effect`` (log-odds per standard deviation
  of the word difference, relative to the bulk of the workers: see the model's docstring for what the ratings can
  and cannot identify), how many workers' 90% intervals lie above zero and below zero, how many have a pull at all
  by adaptive shrinkage (``p_length_effect_nonzero >= 0.5``), and the quantiles of the pulls;
* the population rows: the judgment-weighted mean pull, the pulls' scale ``tau`` and the shared component ``alpha``
  (a pull every worker shares, or quality that goes with length: the ratings cannot tell them apart);
* how far the debiased soft labels moved from crowd Bradley-Terry's, and the correlation of each with the length
  difference.

    python benchmarks/length_bias_ukp.py                    # the full corpus, about 85k judgments
    python benchmarks/length_bias_ukp.py --limit-pairs 3000 # a quick look

With ``--cleaned-out DIR`` both models' cleaned datasets are written; ``--rewards DIR`` then trains reward models on
them on the UKPConvArg1Strict topic split (the 24 / 8 debate sides of ``benchmarks/reward_quality.py``: the Strict
pairs of the 24 training sides with each model's soft labels, weighted soft loss) and reports, on the 8 held-out
sides, pairwise accuracy and NLL against the Strict gold label, and the Spearman correlation of the reward with the
argument's length in characters and in words over the held-out arguments. The recipe is that of
``benchmarks/overoptimization.py``: MiniLM frozen entirely, each argument's pooled embedding computed once, only the
linear head trained, by :class:`accord.reward.RewardTrainer`.

    python benchmarks/length_bias_ukp.py --cleaned-out ukp_labels
    python benchmarks/length_bias_ukp.py --rewards ukp_labels --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-pairs", type=int, help="use only the first N pairs")
    parser.add_argument("--min-judgments", type=int, default=20, help="workers reported (at least this many)")
    parser.add_argument("--inference", default="meanfield")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rewards", type=Path, help="train and compare reward models on the cleaned datasets in "
                        "this folder (written by --cleaned-out) on the UKPConvArg1Strict topic split; fit nothing")
    parser.add_argument("--seeds", default="0", help="reward-model seeds (with --rewards)")
    parser.add_argument("--steps", type=int, default=600, help="reward-model steps (with --rewards)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="3e-3 suits a head alone")
    parser.add_argument("--max-length", type=int, default=256, help="the longest argument has about 150 tokens")
    parser.add_argument("--cleaned-out", type=Path, help="write both cleaned datasets (debiased.parquet, "
                        "crowd-bradley-terry.parquet) and the workers' table (annotators.parquet) into this folder")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.rewards and (not seeds or len(set(seeds)) < len(seeds)):  # failed in pivot after training every model
        parser.error(f"--seeds: one or more distinct seeds, not {args.seeds!r}")
    if args.limit_pairs is not None and args.limit_pairs < 1:  # 0 read as no limit (the whole corpus), -5 cut 5
        parser.error(f"--limit-pairs: at least 1 pair, not {args.limit_pairs}")

    import torch

    from accord.datasets.loaders.ukp import load_ukpconvarg1
    from accord.models import CrowdBradleyTerry, DebiasedBradleyTerry
    from accord.models.debiased_bradley_terry import covariate_values

    torch.set_num_threads(args.threads)
    if args.rewards:
        return compare_rewards(args)
    judgments = load_ukpconvarg1(variant="full")
    if args.limit_pairs:
        keep = judgments["pair_id"].drop_duplicates().iloc[: args.limit_pairs]
        judgments = judgments[judgments["pair_id"].isin(keep)].reset_index(drop=True)
    words = covariate_values(judgments, "length")
    side = judgments["label"].astype(str).to_numpy()
    decided = (side != "tie") & (words != 0)
    longer = np.where(words > 0, "A", "B")
    print(f"UKPConvArg1: {len(judgments):,} judgments, {judgments['pair_id'].nunique():,} pairs, "
          f"{judgments['annotator'].nunique():,} workers; word difference sd {words.std():.1f}")
    print(f"raw: {np.mean(side[decided] == longer[decided]):.3f} of the non-tie votes on pairs of unequal length go "
          f"to the longer argument ({decided.sum():,} votes)")
    per_worker = pd.DataFrame({"worker": judgments["annotator"].to_numpy()[decided],
                               "longer": side[decided] == longer[decided]}).groupby("worker")["longer"].agg(["mean",
                                                                                                          "size"])
    per_worker = per_worker[per_worker["size"] >= args.min_judgments]
    print(f"raw, per worker with >= {args.min_judgments} such votes ({len(per_worker)}): share to the longer "
          + "  ".join(f"{q:.0%} {v:.3f}" for q, v in per_worker["mean"].quantile([0.05, 0.5, 0.95]).items()))

    started = time.perf_counter()
    model = DebiasedBradleyTerry(covariates=("length",), inference=args.inference, seed=args.seed).fit(judgments)
    print(f"fit: {time.perf_counter() - started:.0f}s")
    table = model.annotators_
    busy = table[table["n_judgments"] >= args.min_judgments]
    if busy.empty:  # a quick look (--limit-pairs) or a high --min-judgments: was a ZeroDivisionError after the fit
        print(f"\nno worker has >= {args.min_judgments} judgments (the most: {int(table['n_judgments'].max())}); "
              "lower --min-judgments to see the workers' pulls")
    else:
        above = int((busy["length_effect_lower"] > 0).sum())
        below = int((busy["length_effect_upper"] < 0).sum())
        print(f"\nworkers with >= {args.min_judgments} judgments: {len(busy):,}; 90% interval above 0: {above} "
              f"({above / len(busy):.1%}), below 0: {below} ({below / len(busy):.1%})")
        pulled = busy["p_length_effect_nonzero"] >= 0.5
        print(f"adaptive shrinkage: P(pull) >= 0.5 for {int(pulled.sum())} of them ({pulled.mean():.1%}; "
              f"{int((pulled & (busy['length_effect_median'] > 0)).sum())} towards the longer argument); fitted share "
              f"of workers without a pull {model.population_.loc['length_effect_null_share', 'mean']:.3f}")
        quantiles = busy["length_effect"].quantile([0.05, 0.25, 0.5, 0.75, 0.95])
        print("length_effect quantiles (log-odds per sd of the word difference): "
              + "  ".join(f"{q:.0%} {v:+.3f}" for q, v in quantiles.items()))
        print("\nstrongest pulls:")
        with pd.option_context("display.width", 160):
            columns = ["n_judgments", "length_effect", "length_effect_lower", "length_effect_upper", "sharpness"]
            strongest = busy.sort_values("length_effect", ascending=False)[columns].head(8)
            print(strongest.to_string(float_format="{:+.3f}".format))
    print("\npopulation:")
    print(model.population_.astype(float).to_string(float_format="{:+.3f}".format))
    identified = getattr(model, "identified_", {})
    print(f"identified_: {identified}")

    plain = CrowdBradleyTerry(inference=args.inference, seed=args.seed).fit(judgments)
    first = judgments.drop_duplicates("pair_id").set_index("pair_id")
    pair_words = pd.Series(covariate_values(first.reset_index(), "length"), index=first.index)
    debiased_a = model.soft_labels_.probs["A"].reindex(first.index)
    plain_a = plain.soft_labels_.probs["A"].reindex(first.index)
    print(f"\nsoft P(A): mean |debiased - crowd Bradley-Terry| {np.abs(debiased_a - plain_a).mean():.3f}; "
          f"correlation with the word difference: debiased {np.corrcoef(debiased_a, pair_words)[0, 1]:+.3f}, "
          f"crowd Bradley-Terry {np.corrcoef(plain_a, pair_words)[0, 1]:+.3f}")
    if args.cleaned_out:
        write_outputs(args.cleaned_out, judgments, model, plain)
    return 0


def write_outputs(folder: Path, judgments: pd.DataFrame, debiased, plain) -> None:
    """Both models' cleaned datasets and the debiased model's workers' table, for training reward models on them
    (``python benchmarks/length_bias_ukp.py --rewards DIR``)."""
    from accord.aggregate import build_cleaned
    from accord.datasets import write_cleaned
    from accord.datasets.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    for name, model in (("debiased", debiased), ("crowd-bradley-terry", plain)):
        write_cleaned(build_cleaned(model.soft_labels_, judgments), folder / f"{name}.parquet",
                      provenance={"source": "UKPConvArg1 full corpus"})
    with atomic_path(folder / "annotators.parquet") as path:
        debiased.annotators_.to_parquet(path)
    print(f"wrote {folder}/debiased.parquet, crowd-bradley-terry.parquet, annotators.parquet")


def compare_rewards(args: argparse.Namespace) -> int:
    """Reward models on crowd Bradley-Terry's and on the debiased soft labels, UKPConvArg1Strict topic split."""
    import tempfile

    from overoptimization import PooledCache, cached_model_class, embed_candidates
    from reward_quality import TEST_TOPICS
    from safetensors.numpy import load_file
    from scipy.stats import spearmanr
    from transformers.utils import logging as hf_logging

    from accord.datasets import read_cleaned
    from accord.datasets.loaders.ukp import load_ukpconvarg1
    from accord.reward import RewardConfig, RewardTrainer
    from accord.reward.model import HEAD_FILE, resolve_model_path
    from accord.reward.trainer import seed_everything

    hf_logging.disable_progress_bar()
    strict = load_ukpconvarg1(variant="strict")
    is_test = strict["item_topic"].isin(TEST_TOPICS).to_numpy()
    assert strict.loc[~is_test, "item_debate"].nunique() == 24 and strict.loc[is_test, "item_debate"].nunique() == 8
    test = strict[is_test].reset_index(drop=True)
    train_ids = set(strict.loc[~is_test, "pair_id"])
    labels = {name: read_cleaned(args.rewards / f"{name}.parquet") for name in ("crowd-bradley-terry", "debiased")}
    labels = {name: frame[frame["pair_id"].isin(train_ids)].reset_index(drop=True) for name, frame in labels.items()}
    # held-out arguments, each once, with the prompt it is scored under
    arguments = pd.concat([test[["response_a_id", "prompt", "response_a"]].set_axis(["id", "prompt", "text"], axis=1),
                           test[["response_b_id", "prompt", "response_b"]].set_axis(["id", "prompt", "text"], axis=1)])
    arguments = arguments.drop_duplicates("id").reset_index(drop=True)
    chars = arguments["text"].str.len().to_numpy()
    words = arguments["text"].str.count(r"\S+").to_numpy()
    position = pd.Series(np.arange(len(arguments)), index=arguments["id"])
    side_a, side_b = position[test["response_a_id"]].to_numpy(), position[test["response_b_id"]].to_numpy()
    gold_a = (test["label"] == "A").to_numpy()
    longer = np.sign(words[side_a] - words[side_b])
    print("UKPConvArg1Strict topic split: training pairs with labels "
          + ", ".join(f"{name} {len(frame):,}" for name, frame in labels.items())
          + f" (of {len(train_ids):,}); {len(test):,} held-out pairs on 8 sides, {len(arguments)} held-out arguments")
    print(f"the longer argument (words) is the gold one in {np.mean((longer > 0) == gold_a)[()]:.4f} of the held-out "
          f"pairs ({np.mean(longer == 0):.4f} of equal length counted as B)")
    for name, frame in labels.items():
        p_a = np.where(frame["chosen_side"] == "A", frame["p_chosen"], 1 - frame["p_chosen"] - frame["p_tie"])
        print(f"  {name} training labels: mean p_chosen {frame['p_chosen'].mean():.4f}, mean weight "
              f"{frame['weight'].mean():.4f}, mean P(A) {p_a.mean():.4f}")

    backbone = resolve_model_path("all-MiniLM-L6-v2")
    cache = PooledCache(backbone)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ukp_rewards_") as tmp:
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            for name, frame in labels.items():
                config = RewardConfig(model=backbone, output_dir=f"{tmp}/{name}-{seed}", loss="weighted_soft_bce",
                                      max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                                      learning_rate=args.learning_rate, warmup_ratio=0.1, seed=seed, save_steps=None,
                                      logging_steps=100, stats_max_pairs=256, freeze_layers=6, progress=False)
                seed_everything(seed)
                model = cached_model_class(cache).from_backbone(backbone)
                started = time.perf_counter()
                out = str(RewardTrainer(config, model=model, train_data=frame).train().output_dir)
                seconds = time.perf_counter() - started
                head = load_file(str(Path(out) / HEAD_FILE))
                reward = embed_candidates(cache, out, arguments) @ head["weight"][0] + head["bias"][0]
                gap = np.where(gold_a, 1.0, -1.0) * (reward[side_a] - reward[side_b])  # gold side minus the other
                rows.append({"seed": seed, "labels": name, "accuracy": float(np.mean(gap > 0)),
                             "gold NLL": float(np.mean(np.logaddexp(0.0, -gap))),
                             "Spearman(reward, chars)": spearmanr(reward, chars)[0],
                             "Spearman(reward, words)": spearmanr(reward, words)[0],
                             "train s": seconds})
                print(f"  seed {seed} {name}: " + "  ".join(f"{k} {v:.4f}" for k, v in rows[-1].items()
                                                            if k not in ("seed", "labels")), flush=True)
    table = pd.DataFrame(rows)
    print("\nmean over seeds:")
    print(table.drop(columns="seed").groupby("labels", sort=False).mean().to_string(float_format="{:.4f}".format))
    if table["seed"].nunique() > 1:
        wide = table.pivot(index="seed", columns="labels")
        for metric in ("accuracy", "gold NLL", "Spearman(reward, chars)"):
            diff = wide[(metric, "debiased")] - wide[(metric, "crowd-bradley-terry")]
            print(f"debiased - crowd Bradley-Terry, {metric}: {diff.mean():+.4f} (sd over seeds {diff.std():.4f}, "
                  f"per seed {', '.join(f'{d:+.4f}' for d in diff)})")
    print(f"MiniLM pooled embeddings computed: {cache.computed:,} (each once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
