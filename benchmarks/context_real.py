"""Context and rater-group analyses on real data: worker stance in UKPConvArg1, humans versus AI judges in PandaLM.

Run: ``OMP_NUM_THREADS=1 python benchmarks/context_real.py [--folds 3] [--quick]`` (reads ``../shared/datasets``).
Prints every number; nothing is written.

UKPConvArg1: what "own stance" means
------------------------------------
Every pair of UKPConvArg1 compares two arguments *for the same side* of a debate (each XML file is one debate side,
and both arguments of each pair come from it). ``workerStance`` says how the worker's own view relates to that
side: ``same`` (the worker holds the side both arguments argue for, i.e. both are of their own stance),
``opposite`` (both arguments argue against the worker's view) or ``none``. So "do workers find arguments of their
own stance more convincing?" cannot show up as a preference for A over B inside a pair: both arguments are equally
"own" or "other". What stance can change, and what the context model measures with 90% credible intervals, is

- ``preference_scale`` (``lambda - 1``): how strongly the stance group separates the better from the worse argument,
  relative to workers without a stance (0: as strongly, < 0: less, -2: the opposite ranking);
- ``tie``: whether the group calls the two arguments equally convincing more often (``equal`` answers);
- ``reliability``: whether the group's answers are honest reports of a preference more often (vs noise);

and the model comparison (k-fold held-out judgment log-likelihood, and PSIS-LOO with the pointwise conditional
log-likelihood of non-factorising models) says whether these stance terms predict held-out judgments better than
the same model without stance. Judgments without ``workerStance`` (about half) are left out.

PandaLM: three human annotators and two AI judges (gpt-3.5-turbo, PandaLM-7B) label the same 999 pairs; the two
kinds are the groups (reference: human).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import arviz as az
import pandas as pd
import torch

from accord.aggregate.pluralistic import decompose_disagreement
from accord.datasets import validate
from accord.datasets.loaders.pandalm import load_pandalm
from accord.datasets.loaders.ukp import load_ukpconvarg1
from accord.models import heldout_loglik
from accord.models.context import ContextPreference

HELDOUT = "meanfield"  # inference of the k-fold fits (--heldout-inference); MAP predictives overfit richer models
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def show_effects(model: ContextPreference) -> None:
    columns = ["effect", "group", "reference", "term", "mean", "lower", "upper", "p_positive"]
    print(model.group_effects_[columns].round(3).to_string(index=False))


def compare_heldout(make_plain, make_context, table: pd.DataFrame, folds: int) -> None:
    """k-fold held-out log predictive density per judgment of the two models, with the paired difference's SE."""
    start = time.perf_counter()
    plain = heldout_loglik(make_plain, table, folds=folds, seed=0)
    context = heldout_loglik(make_context, table, folds=folds, seed=0)
    diff = context - plain
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    print(f"{folds}-fold held-out log-lik per judgment ({HELDOUT} fits): without context {plain.mean():.4f}, "
          f"with context {context.mean():.4f}; difference {diff.mean():+.4f} (SE {se:.4f}, "
          f"z = {diff.mean() / se:+.1f}); total {diff.sum():+.1f} nats over {len(diff)} judgments "
          f"[{time.perf_counter() - start:.0f} s]")
    verdict = "supported" if diff.mean() > 2 * se else "not supported"
    print(f"-> the context model is {verdict} by held-out likelihood (criterion: difference > 2 SE)")


def loo_compare(models: dict[str, ContextPreference]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pareto-k warnings are summarised below
        data = {name: m.to_arviz() for name, m in models.items()}
        table = az.compare(data, ic="loo")
        for name, idata in data.items():
            loo = az.loo(idata, pointwise=True)
            bad = float((loo.pareto_k > 0.7).mean())
            print(f"PSIS-LOO {name}: elpd {loo.elpd_loo:.1f} (SE {loo.se:.1f}), p_loo {loo.p_loo:.1f}, "
                  f"share of pareto k > 0.7: {bad:.3f}")
    print(table[["rank", "elpd_loo", "elpd_diff", "dse", "weight"]].round(2).to_string())


def ukp(folds: int, quick: bool) -> None:
    section("UKPConvArg1: does the worker's stance change their judgment?")
    table = load_ukpconvarg1(SHARED / "ukp-convarg1")
    known = table[table["annotator_stance"].notna()].reset_index(drop=True)
    if quick:
        keep = known["item_topic"].isin(sorted(known["item_topic"].unique())[:4])
        known = known[keep].reset_index(drop=True)
    known = validate(known)
    print(f"{len(known)} judgments with workerStance (of {len(table)}), {known['pair_id'].nunique()} pairs, "
          f"{known['annotator'].nunique()} workers, {known['response_a_id'].nunique()} arguments")
    print("stance counts:", known["annotator_stance"].value_counts().to_dict())
    print("answer shares by stance:")
    print(pd.crosstab(known["annotator_stance"], known["label"], normalize="index").round(3).to_string())

    settings = dict(topic=None, covariates=None, seed=0)
    start = time.perf_counter()
    context = ContextPreference(group="annotator_stance", reference_group="none", inference="meanfield",
                                **settings).fit(known)
    print(f"\ncontext model (meanfield) fitted in {time.perf_counter() - start:.0f} s; stance effects "
          "(contrast vs 'none', 90% credible intervals):")
    show_effects(context)
    by_group = context.annotators_.groupby("group")[["reliability", "honest_share", "spam_share",
                                                     "adversarial_share"]].mean()
    print("\nmean annotator reliability (P(vote = the group's label)) and report shares by (majority) stance group:")
    print(by_group.round(3).to_string())
    split = decompose_disagreement(context)
    busy = split["total"] > 0.1
    print(f"\ndisagreement split over {int(busy.sum())} pairs with disagreement: genuine (between stance groups) "
          f"{split.loc[busy, 'disagreement'].mean():.3f}, noise {split.loc[busy, 'noise_share'].mean():.3f}")

    start = time.perf_counter()
    plain = ContextPreference(group=None, inference="meanfield", **settings).fit(known)
    print(f"\ncontext-free model fitted in {time.perf_counter() - start:.0f} s")
    loo_compare({"with stance": context, "without stance": plain})
    compare_heldout(
        lambda: ContextPreference(group=None, inference=HELDOUT, **settings),
        lambda: ContextPreference(group="annotator_stance", reference_group="none", inference=HELDOUT, **settings),
        known, folds,
    )


def human_majority(wide: pd.DataFrame, humans: list[str]) -> pd.Series:
    """Per pair (a row of ``wide``, one column per rater), the label more of the ``humans`` gave than any other;
    NaN where none did (a three-way split, or no human label): ``mode(axis=1)[0]`` gave a split to the first label
    in sorted order, "A"."""
    modes = wide[humans].mode(axis=1)
    return modes[0].where(modes.notna().sum(axis=1) == 1)


def majority_agreement(labels: pd.Series, majority: pd.Series) -> tuple[float, int]:
    """The share of the pairs with both a label in ``labels`` and a human ``majority`` on which the two agree, and
    how many such pairs there are: a pair the rater left unlabelled (25 of gpt-3.5-turbo's 999 in PandaLM) counted
    as a disagreement, where the kappa table beside it leaves such pairs out."""
    both = labels.notna() & majority.reindex(labels.index).notna()
    return float((labels[both] == majority.reindex(labels.index)[both]).mean()), int(both.sum())


def pandalm(folds: int) -> None:
    section("PandaLM: human annotators versus AI judges")
    table = load_pandalm(SHARED / "pandalm")
    print(f"{len(table)} judgments, {table['pair_id'].nunique()} pairs, raters:",
          table.groupby("annotator")["annotator_kind"].first().to_dict())
    wide = table.pivot(index="pair_id", columns="annotator", values="label")
    raters = list(wide.columns)
    print("\nraw agreement / Cohen's kappa between raters:")
    rows = []
    for i, a in enumerate(raters):
        for b in raters[i + 1:]:
            both = wide[[a, b]].dropna()
            agree = float((both[a] == both[b]).mean())
            expected = sum(both[a].eq(c).mean() * both[b].eq(c).mean() for c in ("A", "B", "tie"))
            rows.append({"rater_1": a, "rater_2": b, "agreement": agree,
                         "kappa": (agree - expected) / (1 - expected)})
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    humans = [r for r in raters if not table.loc[table["annotator"] == r, "annotator_is_ai"].iloc[0]]
    majority = human_majority(wide, humans)
    for r in raters:
        if r not in humans:
            share, n = majority_agreement(wide[r], majority)
            print(f"agreement of {r} with the human majority: {share:.3f} (on the {n} pairs it labelled that have "
                  f"a human majority, of {len(wide)})")

    model = ContextPreference(group="annotator_kind", reference_group="human", topic=None, covariates=None,
                              utilities=False, inference="meanfield", seed=0).fit(table)
    print("\nannotator reliability (P(vote = the group's label), 90% interval) and shares of honest, spam and "
          "adversarial reports:")
    columns = ["group", "n_judgments", "reliability", "reliability_lower", "reliability_upper", "honest_share",
               "spam_share", "adversarial_share", "spam_lean"]
    print(model.annotators_[columns].round(3).to_string())
    print("\nAI vs human effects (90% credible intervals):")
    show_effects(model)
    split = decompose_disagreement(model, "equal")
    busy = split["total"] > 0.1
    print(f"\nwith equal weight on humans and AI judges, over {int(busy.sum())} pairs with disagreement: "
          f"genuine (human vs AI) {split.loc[busy, 'disagreement'].mean():.3f}, noise "
          f"{split.loc[busy, 'noise_share'].mean():.3f}")
    labels = model.group_probabilities().consensus
    differ = (labels[:, 0, :].argmax(1) != labels[:, 1, :].argmax(1)).mean()
    print(f"pairs where the humans' and the AI judges' most likely label differ: {differ:.3f}")
    plain = ContextPreference(group=None, topic=None, covariates=None, utilities=False, inference="meanfield",
                              seed=0).fit(table)
    loo_compare({"human/AI groups": model, "one population": plain})
    compare_heldout(
        lambda: ContextPreference(group=None, topic=None, covariates=None, utilities=False, inference=HELDOUT),
        lambda: ContextPreference(group="annotator_kind", reference_group="human", topic=None, covariates=None,
                                  utilities=False, inference=HELDOUT),
        table, folds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="UKP on four debates only")
    parser.add_argument("--only", choices=["ukp", "pandalm"], default=None)
    parser.add_argument("--heldout-inference", choices=["map", "meanfield", "lowrank"], default="meanfield")
    args = parser.parse_args()
    global HELDOUT
    HELDOUT = args.heldout_inference
    torch.set_num_threads(1)
    pd.set_option("display.width", 160)
    if args.only in (None, "pandalm"):
        pandalm(args.folds)
    if args.only in (None, "ukp"):
        ukp(args.folds, args.quick)


if __name__ == "__main__":
    main()
