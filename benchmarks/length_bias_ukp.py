"""Length bias among the UKPConvArg1 workers: per-worker pulls towards the longer argument, with 90% intervals,
and the population's, from :class:`accord.models.DebiasedBradleyTerry` with ``covariates=("length",)``.

What is printed:

* the raw picture: the share of non-tie votes that go to the longer argument of the pair (word count), overall and
  the quantiles of that share per worker;
* per worker with at least ``--min-judgments`` judgments: the pull ``length_effect`` (log-odds per standard deviation
  of the word difference, relative to the bulk of the workers: see the model's docstring for what the ratings can
  and cannot identify), how many workers' 90% intervals lie above zero and below zero, and the quantiles of the
  pulls;
* the population rows: the judgment-weighted mean pull, the pulls' scale ``tau`` and the shared component ``alpha``
  (a pull every worker shares, or quality that goes with length: the ratings cannot tell them apart);
* how far the debiased soft labels moved from crowd Bradley-Terry's, and the correlation of each with the length
  difference.

    python benchmarks/length_bias_ukp.py                    # the full corpus, about 85k judgments
    python benchmarks/length_bias_ukp.py --limit-pairs 3000 # a quick look
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
    parser.add_argument("--cleaned-out", type=Path, help="write both cleaned datasets (debiased.parquet, "
                        "crowd-bradley-terry.parquet) and the workers' table (annotators.parquet) into this folder")
    args = parser.parse_args(argv)

    import torch

    from accord.datasets.loaders.ukp import load_ukpconvarg1
    from accord.models import CrowdBradleyTerry, DebiasedBradleyTerry
    from accord.models.debiased_bradley_terry import covariate_values

    torch.set_num_threads(args.threads)
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
    above = int((busy["length_effect_lower"] > 0).sum())
    below = int((busy["length_effect_upper"] < 0).sum())
    print(f"\nworkers with >= {args.min_judgments} judgments: {len(busy):,}; 90% interval above 0: {above} "
          f"({above / len(busy):.1%}), below 0: {below} ({below / len(busy):.1%})")
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


if __name__ == "__main__":
    sys.exit(main())
