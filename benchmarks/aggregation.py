#!/usr/bin/env python
"""Aggregation benchmark: accord's rater models against crowd-kit, side by side, in one run.

Sections (``--sections``, comma-separated; default: all):

``gold``      every gold set in ``../shared/datasets`` (VLDB'17 D_Product, d_sentiment, Duck; Snow 2008 RTE, TEMP,
              WSD): accuracy, gold NLL, ECE, wall time, peak memory per method, then the issue's targets checked.
``synthetic`` ``accord.datasets.synthetic.make_synthetic`` data with known truth: the same columns plus, for accord's
              models, Spearman between estimated and true annotator reliability (annotators with >= 20 judgments)
              and the coverage of the 90% reliability intervals; crowd-kit BradleyTerry / NoisyBradleyTerry run on
              its pairwise form (responses shared across pairs).
``ukp``       UKPConvArg1 (full XML, every worker): ``accord.models.compare`` (ArviZ LOO and 5-fold held-out
              judgment log-likelihood) of hierarchical DS, DS (VB, Gibbs), crowd-kit's EM Dawid-Skene and accord's
              crowd Bradley-Terry when it is importable.
``nuts``      NUTS on Snow TEMP: r_hat of the annotator parameters.
``loso``      (also ``--loso``) every candidate default of DawidSkene (prior, item temperature, shrinkage towards
              vote fractions) on every gold set (the six above and the four-class Dog); per set, the setting chosen
              on all the other sets (most targets met, then mean gold NLL) is scored on it.
``loso-glad`` (also in ``loso``) GLAD's candidate defaults (class offsets of ability, learned class prior) on the
              same sets, chosen leave-one-dataset-out against majority vote's accuracy; MACE() beside it.
``speed``     DawidSkene() with its intervals against crowd-kit DawidSkene at 1M judgments (``--sizes`` last
              value): the scaling section's set and a crowd with log-normal activity (70% reliable, 20% spammers,
              10% adversarial); the time ratio, and the 90% interval coverage of the true reliabilities and of the
              oracle item posterior.
``scaling``   synthetic binary data from 10k to 1M judgments (25k annotators at 1M): time and peak memory per
              method, and the ratio of accord's posterior-uncertainty fit time to crowd-kit DawidSkene's.

Examples::

    python benchmarks/aggregation.py                      # everything (tens of minutes on 2 cores)
    python benchmarks/aggregation.py --quick              # gold + synthetic + scaling to 100k, fast settings
    python benchmarks/aggregation.py --sections scaling --sizes 10000,1000000

Timing: torch runs with ``--threads`` threads (default 1: crowd-kit is single-threaded numpy/pandas, so one
thread each is the fair comparison); every method is fitted in this one process, one after another, so run it on
an otherwise idle machine. Peak memory is the process's peak resident set size during the fit (``VmHWM`` after
resetting it through ``/proc/self/clear_refs``), i.e. including the data already loaded; ``Δmem`` is the increase
over the resident size just before the fit.

Known crowd-kit limits, reported rather than worked around: ``Wawa`` and ``ZeroBasedSkill`` crash against
scikit-learn >= 1.6 (``__sklearn_tags__``); BradleyTerry builds dense responses x responses matrices (out of memory
at scale) and NoisyBradleyTerry's gradient is a Python loop (minutes at 100k judgments), so both are limited by
``--max-bt`` judgments.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from accord.aggregate import MajorityVote, VoteFraction  # noqa: E402
from accord.datasets import encode, gold_labels, to_crowdkit  # noqa: E402
from accord.metrics import accuracy, score  # noqa: E402
from accord.models.base import RaterModel, summarize_draws  # noqa: E402
from accord.models.dawid_skene import DawidSkene  # noqa: E402
from accord.models.hierarchical_dawid_skene import HierarchicalDawidSkene  # noqa: E402

DATA = REPO.parent / "shared" / "datasets"
BINARY_MIX = {"reliable": 0.70, "spammer": 0.12, "position_biased": 0.10, "adversarial": 0.08}
# crowd-kit 1.4.2 accuracies quoted by the issue (shared/datasets/README.md)
CROWDKIT_REFERENCE = {"D_Product": 0.940, "d_sentiment": 0.960, "RTE": 0.927, "TEMP": 0.942, "WSD": 0.994,
                      "Duck": 0.889}

warnings.filterwarnings("ignore")


# -- measuring --------------------------------------------------------------------------------------------------


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


@dataclass
class Result:
    probs: pd.DataFrame | None = None
    seconds: float = float("nan")
    peak_mb: float = float("nan")
    delta_mb: float = float("nan")
    model: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def measure(fit: Callable[[], tuple[pd.DataFrame, Any]]) -> Result:
    """Run ``fit`` (returning class probabilities and the fitted object) and record time and peak memory."""
    gc.collect()
    before = _status_mb("VmRSS")
    resettable = _reset_peak()
    start = time.perf_counter()
    try:
        probs, model = fit()
    except Exception as error:  # noqa: BLE001 - a benchmark reports failures and goes on
        return Result(error=f"{type(error).__name__}: {str(error).splitlines()[0][:90]}")
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM") if resettable else float("nan")
    return Result(probs=probs, seconds=seconds, peak_mb=peak, delta_mb=peak - before, model=model)


# -- methods -------------------------------------------------------------------------------------------------------


@dataclass
class Method:
    name: str
    family: str  # "accord", "crowd-kit", "baseline"
    run: Callable[[pd.DataFrame], tuple[pd.DataFrame, Any]]
    pairwise_only: bool = False
    max_judgments: int | None = None  # skip above this size (documented limits)
    # False: the method's probabilities have no tie class (crowd-kit's pairwise aggregators), so it is scored on the
    # pairs whose gold is a side; a method that models ties (accord's crowd Bradley-Terry) is scored on every pair
    models_ties: bool = True


def accord_method(name: str, factory: Callable[[], RaterModel], max_judgments: int | None = None,
                  pairwise_only: bool = False) -> Method:
    def run(judgments: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        model = factory().fit(judgments)
        return model.soft_labels_.probs, model

    return Method(name, "accord", run, pairwise_only, max_judgments)


def baseline_method(name: str, cls: type) -> Method:
    def run(judgments: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        model = cls().fit(judgments)
        return model.soft_labels_.probs, model

    return Method(name, "baseline", run)


def crowdkit_method(name: str, factory: Callable[[], Any], max_judgments: int | None = None) -> Method:
    def run(judgments: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        frame = _CROWDKIT_FORM[id(judgments)]
        model = factory()
        probs = model.fit_predict_proba(frame)
        return _align_probs(probs, judgments), model

    return Method(name, "crowd-kit", run, False, max_judgments)


def crowdkit_pairwise(name: str, factory: Callable[[], Any], max_judgments: int | None) -> Method:
    """crowd-kit's pairwise aggregators rank responses; P(A > B) per pair is read off the scores (ties dropped:
    they have no tie model): BradleyTerry ``p_a / (p_a + p_b)``, NoisyBradleyTerry ``sigmoid(u_a - u_b)`` with
    ``u = logit(score)``."""

    def run(judgments: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        table = judgments[judgments.label != "tie"]
        frame = pd.DataFrame({
            "worker": table.annotator.to_numpy(),
            "left": table.response_a_id.to_numpy(),
            "right": table.response_b_id.to_numpy(),
            "label": np.where(table.label == "A", table.response_a_id, table.response_b_id),
        })
        model = factory()
        scores = model.fit(frame).scores_
        pairs = judgments.drop_duplicates("pair_id").set_index("pair_id")
        a = scores.reindex(pairs.response_a_id).to_numpy(dtype=float)
        b = scores.reindex(pairs.response_b_id).to_numpy(dtype=float)
        if "Noisy" in type(model).__name__:
            logit = lambda p: np.log(np.clip(p, 1e-12, 1)) - np.log(np.clip(1 - p, 1e-12, 1))  # noqa: E731
            p_a = 1.0 / (1.0 + np.exp(-(logit(a) - logit(b))))
        else:
            p_a = a / (a + b)
        p_a = np.where(np.isfinite(p_a), p_a, 0.5)
        classes = list(encode(judgments).classes)
        probs = pd.DataFrame(0.0, index=pairs.index, columns=classes)
        probs["A"], probs["B"] = p_a, 1.0 - p_a
        return probs, model

    return Method(name, "crowd-kit", run, True, max_judgments, models_ties=False)


def _align_probs(probs: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    classes = list(encode(judgments).classes)
    probs = probs.reindex(columns=classes, fill_value=0.0).fillna(0.0)
    probs.index = probs.index.rename("pair_id")
    return probs.div(probs.sum(axis=1), axis=0)


def optional_accord_models() -> list[Method]:
    """Other accord models written concurrently: included when importable."""
    found: list[Method] = []
    for module, cls, kwargs, label, pairwise, cap in [
        ("accord.models.mace", "MACE", {"inference": "vb"}, "accord MACE (vb)", False, None),
        ("accord.models.mace", "MACE", {}, "accord MACE (meanfield)", False, 200_000),
        ("accord.models.glad", "GLAD", {}, "accord GLAD (meanfield)", False, 200_000),
        ("accord.models.bradley_terry", "CrowdBradleyTerry", {}, "accord crowd BT (meanfield)", True, 200_000),
    ]:
        try:
            model_cls = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):
            continue
        if "inference" in kwargs and kwargs["inference"] not in getattr(model_cls, "supported_inference", ()):
            continue
        found.append(accord_method(label, lambda c=model_cls, k=kwargs: c(**k), cap, pairwise))
    return found


def all_methods(quick: bool, max_bt: int) -> list[Method]:
    from crowdkit.aggregation import GLAD, MACE, BradleyTerry, MajorityVote as CKMajority, NoisyBradleyTerry
    from crowdkit.aggregation import DawidSkene as CKDawidSkene

    svi = {"max_steps": 400} if quick else {}
    return [
        baseline_method("vote fractions", VoteFraction),
        baseline_method("majority vote", MajorityVote),
        accord_method("accord DS (vb)", lambda: DawidSkene()),
        accord_method("accord DS (vb, prior 2/1, untempered)",
                      lambda: DawidSkene(empirical_prior=False, item_correlation=0)),
        accord_method("accord DS (vb, 100 draws)", lambda: DawidSkene(num_samples=100)),
        accord_method("accord DS (gibbs)", lambda: DawidSkene(inference="gibbs")),
        accord_method("accord DS (gibbs, 1 chain 50+100)",
                      lambda: DawidSkene(inference="gibbs", num_chains=1, num_warmup=50, num_samples=100)),
        accord_method("accord DS (meanfield)", lambda: DawidSkene(inference="meanfield", **svi), 200_000),
        accord_method("accord HDS (meanfield)", lambda: HierarchicalDawidSkene(**svi), 200_000),
        accord_method("accord HDS (vb)", lambda: HierarchicalDawidSkene(inference="vb")),
        *optional_accord_models(),
        crowdkit_method("crowd-kit MajorityVote", lambda: CKMajority()),
        crowdkit_method("crowd-kit DawidSkene", lambda: CKDawidSkene(n_iter=100)),
        crowdkit_method("crowd-kit GLAD", lambda: GLAD(), 30_000),  # 585 s at 100k judgments here
        crowdkit_method("crowd-kit MACE", lambda: MACE(), 200_000),
        crowdkit_pairwise("crowd-kit BradleyTerry", lambda: BradleyTerry(n_iter=100), max_bt),
        crowdkit_pairwise("crowd-kit NoisyBradleyTerry", lambda: NoisyBradleyTerry(n_iter=100), max_bt),
    ]


# -- data ----------------------------------------------------------------------------------------------------------


def gold_sets() -> dict[str, pd.DataFrame]:
    from accord.datasets.loaders import load_snow2008, load_vldb17

    if not DATA.exists():
        print(f"(no shared datasets at {DATA}: gold section skipped)")
        return {}
    sets = {
        "D_Product": load_vldb17("product", DATA / "vldb17"),
        "d_sentiment": load_vldb17("sentiment", DATA / "vldb17"),
        "Duck": load_vldb17("duck", DATA / "vldb17"),
        "RTE": load_snow2008("rte", DATA / "snow2008"),
        "TEMP": load_snow2008("temp", DATA / "snow2008"),
        "WSD": load_snow2008("wsd", DATA / "snow2008"),
    }
    if (DATA / "vldb17" / "s4_Dog data").exists():
        sets["Dog"] = load_vldb17("dog", DATA / "vldb17")
    return sets


_CROWDKIT_FORM: dict[int, pd.DataFrame] = {}


def with_crowdkit(judgments: pd.DataFrame) -> pd.DataFrame:
    """Build the crowd-kit form once, outside the timed fits (kept aside: pandas deep-copies ``attrs``)."""
    _CROWDKIT_FORM.clear()
    _CROWDKIT_FORM[id(judgments)] = to_crowdkit(judgments)[["task", "worker", "label"]].reset_index(drop=True)
    return judgments


# -- printing ------------------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, int]], title: str) -> None:
    print(f"\n## {title}\n")
    header = "| " + " | ".join(label for _, label, _ in columns) + " |"
    print(header)
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(fmt(row.get(key), digits) for key, _, digits in columns) + " |")
    sys.stdout.flush()


# -- sections ------------------------------------------------------------------------------------------------------


SCALING_ONLY = {"accord DS (vb, 100 draws)", "accord DS (gibbs, 1 chain 50+100)"}


def run_on(judgments: pd.DataFrame, methods: list[Method], gold: pd.Series, dataset: str,
           pairwise: bool, scaling: bool = False) -> list[dict[str, Any]]:
    rows = []
    if not scaling:
        methods = [m for m in methods if m.name not in SCALING_ONLY]
    n = len(judgments)
    for method in methods:
        if method.pairwise_only and not pairwise:
            continue
        row: dict[str, Any] = {"dataset": dataset, "method": method.name, "family": method.family}
        if method.max_judgments is not None and n > method.max_judgments:
            row["note"] = f"skipped (> {method.max_judgments} judgments)"
            rows.append(row)
            continue
        result = measure(lambda m=method: m.run(judgments))
        if result.error:
            row["note"] = result.error
            rows.append(row)
            print(f"  {dataset:12s} {method.name:30s} FAILED {result.error}", flush=True)
            continue
        probs = result.probs
        metrics = score(probs, gold)
        if not method.models_ties and (gold == "tie").any():  # no tie model: score the pairs whose gold is a side
            metrics = score(probs, gold[gold != "tie"])
            row["note"] = "NLL/ECE on non-tie gold"
        row.update(accuracy=metrics["accuracy"], nll=metrics["nll"], ece=metrics["ece"], seconds=result.seconds,
                   peak_mb=result.peak_mb, delta_mb=result.delta_mb)
        row["_model"] = result.model
        rows.append(row)
        print(f"  {dataset:12s} {method.name:30s} acc={metrics['accuracy']:.4f} nll={metrics['nll']:.4f} "
              f"ece={metrics['ece']:.4f} {result.seconds:.2f}s", flush=True)
    return rows


TABLE_COLUMNS = [("dataset", "dataset", 0), ("method", "method", 0), ("accuracy", "accuracy", 4),
                 ("nll", "gold NLL", 4), ("ece", "ECE", 4), ("seconds", "wall s", 2), ("peak_mb", "peak MB", 0),
                 ("delta_mb", "Δmem MB", 0), ("note", "note", 0)]


def section_gold(methods: list[Method]) -> list[dict[str, Any]]:
    print("\n# Gold sets", flush=True)
    rows: list[dict[str, Any]] = []
    for name, judgments in gold_sets().items():
        with_crowdkit(judgments)
        rows += run_on(judgments, methods, gold_labels(judgments), name, pairwise=False)
    print_table(rows, TABLE_COLUMNS, "Gold sets: accuracy, NLL and ECE against gold, wall time, peak memory")
    print("\nFitted (gold-free) calibration of accord DS: empirical prior (a, b) and intra-item correlation rho")
    for row in rows:
        model = row.get("_model")
        if isinstance(model, DawidSkene) and hasattr(model, "item_correlation_"):
            print(f"- {row['dataset']:12s} {row['method']:38s} prior {model.prior_correct_:.2f}/"
                  f"{model.prior_error_:.2f}, rho {model.item_correlation_:.3f}")
    side_by_side(rows)
    check_gold_targets(rows)
    return rows


def side_by_side(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame([r for r in rows if "accuracy" in r])
    if frame.empty:
        return
    sets = list(dict.fromkeys(frame.dataset))
    table = []
    for method, group in frame.groupby("method", sort=False):
        row = {"method": method}
        for _, r in group.iterrows():
            row[r.dataset] = f"{r.accuracy:.3f} / {r.nll:.3f}"
        table.append(row)
    print_table(table, [("method", "method (accuracy / gold NLL)", 0)] + [(s, s, 0) for s in sets],
                "Side by side: accuracy / gold NLL per set")


def check_gold_targets(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame([r for r in rows if "accuracy" in r])
    if frame.empty:
        return
    if not {"accord", "crowd-kit"} <= set(frame.family):
        print("\n(targets not checked: they compare accord's methods with crowd-kit's; --methods left one side out)")
        return
    print("\n## Targets (issue 3, 'What it must show' 1-2)\n")
    nll_beats_ds = {}
    nll_beats_vf = {}
    for dataset, group in frame.groupby("dataset", sort=False):
        by = group.set_index("method")
        accord = by[by.family == "accord"]
        crowdkit = by[by.family == "crowd-kit"]
        best_accord = accord.accuracy.max()
        best_ck = crowdkit.accuracy.max()
        hds = by.accuracy.get("accord HDS (meanfield)", np.nan)
        ck_ds = by.accuracy.get("crowd-kit DawidSkene", np.nan)
        ok1 = best_accord >= best_ck - 0.005
        ok2 = hds >= ck_ds - 0.005
        hds_check = (f"HDS {hds:.4f} vs crowd-kit DS {ck_ds:.4f}: {'OK' if ok2 else 'MISS'}"
                     if np.isfinite(hds) and np.isfinite(ck_ds) else
                     "HDS vs crowd-kit DS: not checked (--methods left out accord HDS (meanfield) or crowd-kit DS)")
        # a set where every fit of one side failed has no best of it (idxmax of nothing failed after every fit)
        best_check = (f"best accord accuracy {best_accord:.4f} ({accord.accuracy.idxmax()}) vs crowd-kit best "
                      f"{best_ck:.4f} ({crowdkit.accuracy.idxmax()}): {'OK' if ok1 else 'MISS'}"
                      if len(accord) and len(crowdkit) else
                      f"best accord vs crowd-kit accuracy: not checked (no {'accord' if crowdkit.size else 'crowd-kit'}"
                      " method fitted on the set)")
        reference = CROWDKIT_REFERENCE.get(dataset)
        print(f"- {dataset}: {best_check}; {hds_check}; reference crowd-kit DS"
              + (f" {reference:.3f}" if reference is not None else ": none quoted"))
        # a set where a reference did not run (left out by --methods, or failed) is not counted: read as an NLL of
        # infinity, it was beaten by every accord method, and the target met against a method never fitted
        ds_nll, vf_nll = by.nll.get("crowd-kit DawidSkene", np.nan), by.nll.get("vote fractions", np.nan)
        for method in accord.index:
            nll = accord.nll[method]
            nll_beats_ds.setdefault(method, [])
            nll_beats_vf.setdefault(method, [])
            if np.isfinite(ds_nll):
                nll_beats_ds[method].append(nll < ds_nll)
            if np.isfinite(vf_nll):
                nll_beats_vf[method].append(nll < vf_nll)
    print()
    for method in nll_beats_ds:
        beats_ds, beats_vf = nll_beats_ds[method], nll_beats_vf[method]
        if not beats_ds or not beats_vf:
            missing = " and ".join(name for name, beats in (("crowd-kit DawidSkene", beats_ds),
                                                             ("vote fractions", beats_vf)) if not beats)
            print(f"- gold NLL of {method}: not checked ({missing} not fitted on any set: --methods left it out, or "
                  "it failed)")
            continue
        verdict = "OK" if sum(beats_ds) >= 5 and sum(beats_vf) >= 4 else "MISS"
        print(f"- gold NLL of {method}: below crowd-kit DS on {sum(beats_ds)}/{len(beats_ds)} sets (target 5), below "
              f"vote fractions on {sum(beats_vf)}/{len(beats_vf)} (target 4): {verdict}")
    sys.stdout.flush()


# -- the cost of posterior uncertainty at 1M judgments -----------------------------------------------------------


@dataclass
class CrowdSet:
    judgments: pd.DataFrame
    truth: pd.Series
    accuracy: pd.Series  # per annotator: P(vote == truth), which is its reliability
    oracle: pd.DataFrame  # per item: p(z | votes) under the true accuracies and class prior


def crowd_set(n_items: int = 200_000, votes: int = 5, n_annotators: int = 25_000, seed: int = 0) -> CrowdSet:
    """Binary labels from a crowd with log-normal activity (``exp N(0, 1)`` weights): 70% reliable annotators
    (accuracy ``U(0.7, 0.95)``), 20% spammers (a coin), 10% adversarial (accuracy ``U(0.1, 0.3)``); each item gets
    ``votes`` distinct annotators drawn by activity, true labels a fair coin."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, n_annotators)
    activity /= activity.sum()
    kind = rng.choice(3, size=n_annotators, p=[0.7, 0.2, 0.1])
    accuracy = np.where(kind == 0, rng.uniform(0.7, 0.95, n_annotators),
                        np.where(kind == 1, 0.5, rng.uniform(0.1, 0.3, n_annotators)))
    truth = (rng.random(n_items) < 0.5).astype(np.int64)
    raters = rng.choice(n_annotators, size=(n_items, votes), p=activity)
    while True:  # redraw the items that got an annotator twice
        ordered = np.sort(raters, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not repeated.any():
            break
        raters[repeated] = rng.choice(n_annotators, size=(int(repeated.sum()), votes), p=activity)
    right = rng.random((n_items, votes)) < accuracy[raters]
    labels = np.where(right, truth[:, None], 1 - truth[:, None])
    log_odds = ((2 * labels - 1) * np.log(accuracy[raters] / (1 - accuracy[raters]))).sum(1)
    items = np.array([f"i{i}" for i in range(n_items)], dtype=object)
    workers = np.array([f"w{w}" for w in range(n_annotators)], dtype=object)
    table = pd.DataFrame({"pair_id": np.repeat(items, votes), "annotator": workers[raters.ravel()],
                          "label": labels.ravel()})
    from accord.datasets import validate

    p1 = 1.0 / (1.0 + np.exp(-log_odds))
    return CrowdSet(validate(table, form="categorical", classes=[0, 1]), pd.Series(truth, index=items),
                    pd.Series(accuracy, index=workers), pd.DataFrame({0: 1 - p1, 1: p1}, index=items))


def interval_coverage(model: RaterModel, accuracy: pd.Series, oracle: pd.DataFrame | None) -> dict[str, float]:
    """Share of annotators whose 90% reliability interval holds the true reliability (all; >= 20 judgments) and,
    with ``oracle``, of items whose 90% interval of the top class's probability holds the oracle posterior's."""
    table = model.annotators_.join(accuracy.rename("truth"), how="inner")
    covered = (table.reliability_lower <= table.truth) & (table.truth <= table.reliability_upper)
    out = {"rel_cov": float(covered.mean()), "rel_cov20": float(covered[table.n_judgments >= 20].mean())}
    labels = model.soft_labels_
    if oracle is not None and labels.interval is not None:
        probs = labels.probs
        top = probs.to_numpy().argmax(1)
        truth = oracle.reindex(probs.index).to_numpy()[np.arange(len(top)), top]
        inside = (labels.interval.lower.to_numpy() <= truth) & (truth <= labels.interval.upper.to_numpy())
        out["item_cov"] = float(inside.mean())
    return out


def section_speed(size: int = 1_000_000) -> None:
    """DawidSkene() with its intervals against crowd-kit DawidSkene, one thread each, on two sets of ``size``
    judgments (1M by default)."""
    from crowdkit.aggregation import DawidSkene as CKDawidSkene

    from accord.datasets.synthetic import make_synthetic

    print(f"\n# Cost of posterior uncertainty: DawidSkene() (with intervals) against crowd-kit DawidSkene at "
          f"{size:,} judgments, torch threads {torch.get_num_threads()}", flush=True)
    crowd = crowd_set(n_items=size // 5, n_annotators=max(size // 40, 10))
    synthetic = make_synthetic(size // 3, max(size // 40, 10), 3, annotator_mix=BINARY_MIX, tie_rate=0.0,
                               with_text=False, seed=0)
    cases = [("scaling set (make_synthetic, 3 votes)", synthetic.judgments, synthetic.true_label,
              synthetic.annotators.accuracy, None),
             # the items it holds: "200k x 5" was printed whatever --sizes made it
             (f"crowd set ({len(crowd.truth):,} x 5, log-normal activity)", crowd.judgments, crowd.truth,
              crowd.accuracy, crowd.oracle)]
    rows = []
    for name, judgments, truth, accuracy, oracle in cases:
        with_crowdkit(judgments)
        ck = measure(lambda: crowdkit_method("ck", lambda: CKDawidSkene(n_iter=100)).run(judgments))
        ours = measure(lambda: (lambda m: (m.soft_labels_.probs, m))(DawidSkene().fit(judgments)))
        if ck.error or ours.error:
            print(f"  {name}: failed ({ck.error or ours.error})")
            continue
        metrics = score(ours.probs, truth)
        row = {"set": name, "ck_s": ck.seconds, "accord_s": ours.seconds, "ratio": ours.seconds / ck.seconds,
               "ck_acc": score(ck.probs, truth)["accuracy"], "acc": metrics["accuracy"], "ece": metrics["ece"],
               **interval_coverage(ours.model, accuracy, oracle)}
        rows.append(row)
        print(f"  {name}: crowd-kit {ck.seconds:.2f} s, accord {ours.seconds:.2f} s", flush=True)
    print_table(rows, [("set", "set", 0), ("ck_s", "crowd-kit DS s", 2), ("accord_s", "DawidSkene() s", 2),
                       ("ratio", "ratio", 3), ("ck_acc", "crowd-kit acc", 4), ("acc", "accord acc", 4),
                       ("ece", "accord ECE", 4), ("rel_cov", "reliability 90% coverage", 3),
                       ("rel_cov20", "(>= 20 judgments)", 3), ("item_cov", "item 90% coverage (oracle)", 3)],
                "DawidSkene() with intervals vs crowd-kit DawidSkene (target: ratio <= 0.25)")
    sys.stdout.flush()


# -- leave-one-dataset-out choice of DawidSkene's defaults -------------------------------------------------------

#: candidate default settings of DawidSkene: the prior (two-valued empirical, full empirical, fixed 2/1), the item
#: temperature (chosen from the votes, or off) and the shrinkage towards vote fractions (chosen from the votes, off,
#: or a fixed 0.1).
LOSO_GRID: list[dict[str, Any]] = [
    {"empirical_prior": prior, "item_correlation": rho, "vote_shrinkage": shrink}
    for prior in (True, "full", False) for rho in ("auto", 0) for shrink in ("auto", 0, 0.1)
]


def setting_name(setting: dict[str, Any]) -> str:
    prior = {True: "EB", "full": "EB-full", False: "2/1"}[setting["empirical_prior"]]
    return f"prior {prior}, rho {setting['item_correlation']}, shrink {setting['vote_shrinkage']}"


def targets_met(row: pd.Series) -> int:
    """How many of the three per-set targets a row meets: accuracy >= crowd-kit DS - 0.003, gold NLL below both
    crowd-kit DS and vote fractions, ECE <= vote fractions' + 0.02."""
    return int(row.accuracy >= row.ck_accuracy - 0.003) + int(row.nll < min(row.ck_nll, row.vf_nll)) + int(
        row.ece <= row.vf_ece + 0.02)


def choose_setting(results: pd.DataFrame, exclude: str | None = None) -> str:
    """The setting chosen on every set but ``exclude``: most targets met over those sets, then the lowest mean
    gold NLL, then the grid's order. ``results`` has one row per (``dataset``,
    ``setting``) with ``accuracy``, ``nll``, ``ece`` and the set's references ``ck_accuracy``, ``ck_nll``,
    ``vf_nll``, ``vf_ece``; the rows of ``exclude`` are dropped before anything is computed."""
    train = results[results.dataset != exclude].copy()
    if train.empty:
        raise ValueError("no development set left to choose on")
    train["met"] = train.apply(targets_met, axis=1)
    order = {name: i for i, name in enumerate(dict.fromkeys(train.setting))}
    summary = train.groupby("setting", sort=False).agg(met=("met", "sum"), nll=("nll", "mean"))
    summary["order"] = [order[name] for name in summary.index]
    summary = summary.sort_values(["met", "nll", "order"], ascending=[False, True, True])
    return str(summary.index[0])


def section_loso() -> pd.DataFrame:
    """Every candidate setting of DawidSkene on every development set; the setting chosen without each set is
    scored on it."""
    from crowdkit.aggregation import DawidSkene as CKDawidSkene

    sets = gold_sets()
    if not sets:
        return pd.DataFrame()
    print(f"\n# Leave-one-dataset-out choice of DawidSkene's defaults: {len(LOSO_GRID)} settings x {len(sets)} sets",
          flush=True)
    rows = []
    for name, judgments in sets.items():
        gold = gold_labels(judgments)
        with_crowdkit(judgments)
        ck = score(crowdkit_method("ck", lambda: CKDawidSkene(n_iter=100)).run(judgments)[0], gold)
        vf = score(VoteFraction().fit(judgments).soft_labels_.probs, gold)
        refs = {"ck_accuracy": ck["accuracy"], "ck_nll": ck["nll"], "vf_nll": vf["nll"], "vf_ece": vf["ece"],
                "vf_accuracy": vf["accuracy"]}
        for setting in LOSO_GRID:
            model = DawidSkene(**setting).fit(judgments)
            metrics = score(model.soft_labels_.probs, gold)
            rows.append({"dataset": name, "setting": setting_name(setting), **refs, "accuracy": metrics["accuracy"],
                         "nll": metrics["nll"], "ece": metrics["ece"], "rho": model.item_correlation_,
                         "shrinkage": model.vote_shrinkage_})
        print(f"  {name}: done", flush=True)
    results = pd.DataFrame(rows)
    everywhere = choose_setting(results)
    default_name = setting_name({key: getattr(DawidSkene(), key) for key in LOSO_GRID[0]})
    print(f"\nSetting chosen on all sets: {everywhere}; DawidSkene()'s defaults: {default_name}"
          f"{'' if everywhere == default_name else ' (DIFFERENT)'}")
    table = []
    for name in sets:
        own = results[results.dataset == name].set_index("setting")
        chosen = choose_setting(results, exclude=name)
        default, held = own.loc[default_name], own.loc[chosen]
        row = {"dataset": name, "ck_accuracy": default.ck_accuracy, "vf_nll": default.vf_nll,
               "vf_ece": default.vf_ece, "ck_nll": default.ck_nll, "acc": default.accuracy, "nll": default.nll,
               "ece": default.ece, "loso_acc": held.accuracy, "loso_nll": held.nll, "loso_ece": held.ece,
               "loso_setting": chosen, "rho": held.rho, "shrinkage": held.shrinkage}
        row["met"] = f"{targets_met(held)}/3"
        table.append(row)
    print_table(table, [("dataset", "set", 0), ("ck_accuracy", "crowd-kit DS acc", 4),
                        ("ck_nll", "crowd-kit DS NLL", 3), ("vf_nll", "vote-fraction NLL", 3),
                        ("vf_ece", "vote-fraction ECE", 3),
                        ("acc", "default acc", 4), ("nll", "default NLL", 3), ("ece", "default ECE", 3),
                        ("loso_acc", "LOSO acc", 4), ("loso_nll", "LOSO NLL", 3), ("loso_ece", "LOSO ECE", 3),
                        ("rho", "rho", 2), ("shrinkage", "shrink", 2), ("met", "LOSO targets", 0),
                        ("loso_setting", "setting chosen without the set", 0)],
                "DawidSkene: defaults chosen on all sets, and chosen leave-one-dataset-out (targets: acc >= crowd-kit "
                "DS - 0.003, NLL < crowd-kit DS and vote fractions, ECE <= vote fractions + 0.02)")
    print("\nTargets met per setting (of 3 per set) and mean gold NLL:")
    results["met"] = results.apply(targets_met, axis=1)
    for setting, group in results.groupby("setting", sort=False):
        print(f"- {setting:44s} {int(group.met.sum())}/{3 * len(group)}  NLL {group.nll.mean():.4f}  "
              f"ECE {group.ece.mean():.4f}  acc {group.accuracy.mean():.4f}")
    sys.stdout.flush()
    return results


#: candidate defaults of GLAD: the prior scale of the class offsets of ability (0: Whitehill et al.'s symmetric
#: errors) and the class prior (None: fixed uniform; 1.0: learned, Dirichlet(1)). Class offsets come only with a
#: learned class prior: with a fixed uniform one, a skewed class balance is read as annotators favouring a class.
GLAD_GRID: list[dict[str, Any]] = [{"class_ability_scale": 0.0, "class_prior": None}] + [
    {"class_ability_scale": scale, "class_prior": 1.0} for scale in (0.0, 0.5, 1.0, 2.0, 4.0)
]


def glad_setting_name(setting: dict[str, Any]) -> str:
    prior = "uniform" if setting["class_prior"] is None else f"Dir({setting['class_prior']:g})"
    return f"class offsets {setting['class_ability_scale']:g}, prior {prior}"


def majority_accuracy(judgments: pd.DataFrame, gold: pd.Series) -> float:
    """Majority vote's accuracy, the larger of two tie rules: the first class wins a tie, or a tie counts as the
    share of the tied classes that is right (a random tie-break's expected accuracy)."""
    probs = MajorityVote().fit(judgments).soft_labels_.probs
    return max(accuracy(probs, gold), accuracy(probs, gold, predicted_ties="split"))


def section_loso_glad() -> pd.DataFrame:
    """GLAD's candidate defaults on every development set; per set, the setting chosen on the others is scored on
    it. The target is a floor on every set, so the choice is: most sets where accuracy reaches majority vote, then
    the largest worst-set margin (accuracy minus majority vote's), then the lowest mean gold NLL, then the grid's
    order. MACE() with its defaults beside it."""
    from accord.models.glad import GLAD
    from accord.models.mace import MACE

    sets = gold_sets()
    if not sets:
        return pd.DataFrame()
    print(f"\n# Leave-one-dataset-out choice of GLAD's defaults: {len(GLAD_GRID)} settings x {len(sets)} sets",
          flush=True)
    rows, mace = [], {}
    for name, judgments in sets.items():
        gold = gold_labels(judgments)
        mv = majority_accuracy(judgments, gold)
        for setting in GLAD_GRID:
            metrics = score(GLAD(seed=0, **setting).fit(judgments).soft_labels_.probs, gold)
            rows.append({"dataset": name, "setting": glad_setting_name(setting), "mv_accuracy": mv,
                         "accuracy": metrics["accuracy"], "nll": metrics["nll"], "ece": metrics["ece"]})
        mace[name] = score(MACE(seed=0).fit(judgments).soft_labels_.probs, gold)
        print(f"  {name}: done", flush=True)
    results = pd.DataFrame(rows)
    results["met"] = (results.accuracy >= results.mv_accuracy).astype(int)
    results["margin"] = results.accuracy - results.mv_accuracy
    pivot = results.pivot(index="setting", columns="dataset", values=["accuracy", "nll"]).reindex(
        list(dict.fromkeys(results.setting)))
    print_table([{"setting": setting, **{name: f"{pivot.loc[setting, ('accuracy', name)]:.4f} / "
                                               f"{pivot.loc[setting, ('nll', name)]:.3f}" for name in sets}}
                 for setting in pivot.index], [("setting", "GLAD setting (accuracy / gold NLL)", 0)]
                + [(name, name, 0) for name in sets], "GLAD: every candidate setting on every set")

    def choose(exclude: str | None) -> str:
        train = results[results.dataset != exclude]
        order = {name: i for i, name in enumerate(dict.fromkeys(train.setting))}
        summary = train.groupby("setting", sort=False).agg(met=("met", "sum"), worst=("margin", "min"),
                                                           nll=("nll", "mean"))
        summary["order"] = [order[name] for name in summary.index]
        return str(summary.sort_values(["met", "worst", "nll", "order"],
                                       ascending=[False, False, True, True]).index[0])

    default = glad_setting_name({key: getattr(GLAD(), key) for key in GLAD_GRID[0]})
    everywhere = choose(None)
    print(f"\nSetting chosen on all sets: {everywhere}; GLAD()'s defaults: {default}"
          f"{'' if everywhere == default else ' (DIFFERENT)'}")
    table = []
    for name in sets:
        own = results[results.dataset == name].set_index("setting")
        chosen = choose(name)
        held, plain = own.loc[chosen], own.loc[default]
        table.append({"dataset": name, "mv": plain.mv_accuracy, "acc": plain.accuracy, "nll": plain.nll,
                      "loso_acc": held.accuracy, "loso_nll": held.nll, "loso_ece": held.ece,
                      "met": "yes" if held.accuracy >= held.mv_accuracy else "NO", "setting": chosen,
                      "mace_acc": mace[name]["accuracy"], "mace_nll": mace[name]["nll"],
                      "mace_met": "yes" if mace[name]["accuracy"] >= held.mv_accuracy else "NO"})
    print_table(table, [("dataset", "set", 0), ("mv", "majority vote acc", 4), ("acc", "GLAD() acc", 4),
                        ("nll", "GLAD() NLL", 3), ("loso_acc", "LOSO acc", 4), ("loso_nll", "LOSO NLL", 3),
                        ("loso_ece", "LOSO ECE", 3), ("met", "LOSO >= MV", 0),
                        ("setting", "setting chosen without the set", 0), ("mace_acc", "MACE() acc", 4),
                        ("mace_nll", "MACE() NLL", 3), ("mace_met", "MACE >= MV", 0)],
                "GLAD: defaults, and defaults chosen leave-one-dataset-out (target: accuracy >= majority vote); "
                "MACE() beside it")
    print("\nSets where accuracy reaches majority vote, per GLAD setting, and mean gold NLL / accuracy:")
    for setting, group in results.groupby("setting", sort=False):
        print(f"- {setting:36s} {int(group.met.sum())}/{len(group)}  worst margin {group.margin.min():+.4f}  "
              f"NLL {group.nll.mean():.4f}  "
              f"acc {group.accuracy.mean():.4f}  below MV on: "
              + (", ".join(group.dataset[group.met == 0]) or "none"))
    sys.stdout.flush()
    return results


def section_synthetic(methods: list[Method], quick: bool) -> None:
    from scipy.stats import spearmanr

    from accord.datasets.synthetic import make_synthetic

    n_pairs, n_annotators = (2000, 80) if quick else (6000, 200)
    print(f"\n# Synthetic: make_synthetic({n_pairs} pairs, {n_annotators} annotators, 5 judgments per pair, default "
          "annotator mix and 10% true ties, seed 0)", flush=True)
    data = make_synthetic(n_pairs, n_annotators, 5, with_text=False, seed=0)
    judgments = with_crowdkit(data.judgments)
    rows = run_on(judgments, methods, data.true_label, "synthetic", pairwise=True)
    for row in rows:
        model = row.pop("_model", None)
        if not isinstance(model, RaterModel) or not hasattr(model, "annotators_"):
            continue
        table = model.annotators_.join(data.annotators[["accuracy"]])
        if "reliability" not in table or "reliability_lower" not in table:
            continue
        busy = table[table.n_judgments >= 20]
        row["spearman"] = spearmanr(busy.reliability, busy.accuracy).statistic
        covered = (table.reliability_lower <= table.accuracy) & (table.accuracy <= table.reliability_upper)
        row["coverage"] = covered.mean()
        row["coverage20"] = covered[table.n_judgments >= 20].mean()
    columns = TABLE_COLUMNS[:5] + [("spearman", "Spearman rel. (>=20)", 3), ("coverage", "90% CI coverage", 3),
                                   ("coverage20", "coverage (>=20)", 3)] + TABLE_COLUMNS[5:]
    print_table(rows, columns, "Synthetic data (truth known): soft labels against the true label; annotator "
                               "reliability against the true accuracy")
    print("\nTargets (3): Spearman >= 0.9, ECE <= 0.03, coverage in [0.85, 0.95]:")
    for row in rows:
        if "spearman" in row:
            ok = row["spearman"] >= 0.9 and row["ece"] <= 0.03 and 0.85 <= row["coverage"] <= 0.95
            print(f"- {row['method']}: Spearman {row['spearman']:.3f}, ECE {row['ece']:.4f}, coverage "
                  f"{row['coverage']:.3f}: {'OK' if ok else 'MISS'}")
    # fixed priors for comparison with the default empirical (type-II ML) prior
    for label, kwargs in [("accord DS (gibbs), fixed prior 2/1", dict(inference="gibbs", empirical_prior=False)),
                          ("accord DS (gibbs), fixed prior 1/0.5", dict(inference="gibbs", prior_correct=1.0,
                                                                        prior_error=0.5, empirical_prior=False)),
                          ("accord DS (vb), fixed prior 1/0.5", dict(prior_correct=1.0, prior_error=0.5,
                                                                     empirical_prior=False))]:
        model = DawidSkene(**kwargs).fit(judgments)
        table = model.annotators_.join(data.annotators[["accuracy"]])
        busy = table[table.n_judgments >= 20]
        covered = ((table.reliability_lower <= table.accuracy) & (table.accuracy <= table.reliability_upper)).mean()
        metrics = score(model.soft_labels_.probs, data.true_label)
        print(f"- {label}: Spearman {spearmanr(busy.reliability, busy.accuracy).statistic:.3f}, ECE "
              f"{metrics['ece']:.4f}, accuracy {metrics['accuracy']:.4f}, coverage {covered:.3f}")
    fitted = DawidSkene().fit(judgments)
    print(f"- default accord DS: empirical prior {fitted.prior_correct_:.2f}/{fitted.prior_error_:.2f}, "
          f"rho {fitted.item_correlation_:.3f}")
    sys.stdout.flush()


class CrowdKitEM(RaterModel):
    """crowd-kit's EM Dawid-Skene as a point-estimate RaterModel, so ``compare`` can score its held-out
    judgments: ``p(y | train) = sum_k p(z_i = k | train) e_w[y, k]`` (unseen pair: the class priors; unseen worker:
    the workers' mean error matrix; probabilities floored at crowd-kit's own 1e-10)."""

    method = "crowd-kit-em-dawid-skene"
    supported_inference = ("map",)
    inference: str = "map"
    n_iter: int = 100

    def _fit(self, encoded: Any) -> None:
        from crowdkit.aggregation import DawidSkene as CKDawidSkene

        classes = list(encoded.classes)
        frame = pd.DataFrame({"task": encoded.item_index[encoded.items],
                              "worker": encoded.worker_index[encoded.workers],
                              "label": np.asarray(classes, dtype=object)[encoded.labels]})
        model = CKDawidSkene(n_iter=self.n_iter).fit(frame)
        probs = model.probas_.reindex(index=encoded.item_index, columns=classes, fill_value=0.0).fillna(0.0)
        self._ck = model
        self._item_summary = summarize_draws(probs.to_numpy()[None])
        self._posterior = {"pi": (model.priors_.reindex(classes).to_numpy()[None, None], ["true_class"])}
        self._loglik = np.zeros((1, 1, encoded.n_judgments))

    def _annotator_table(self) -> pd.DataFrame:
        return pd.DataFrame(index=self.encoded_.worker_index)

    def _heldout_loglik(self, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        from accord.models._data import encode_with_classes, shared_classes

        classes = list(shared_classes(train, test))
        model = self.clone().fit_encoded(encode_with_classes(train, classes))
        ck = model._ck
        errors = ck.errors_.reindex(columns=classes, fill_value=0.0)  # index (worker, label), columns true class
        priors = ck.priors_.reindex(classes).fillna(0.0).to_numpy()
        post = ck.probas_.reindex(columns=classes, fill_value=0.0)
        mean_errors = errors.groupby(level="label").mean().reindex(classes, fill_value=0.0)
        item_post = post.reindex(test.pair_id).to_numpy()
        item_post = np.where(np.isnan(item_post).any(1, keepdims=True), priors[None], item_post)
        index = pd.MultiIndex.from_arrays([test.annotator.to_numpy(), test.label.to_numpy()])
        conf = errors.reindex(index).to_numpy()
        fallback = mean_errors.reindex(test.label.to_numpy()).to_numpy()
        conf = np.where(np.isnan(conf).any(1, keepdims=True), fallback, conf)
        return np.log(np.clip((item_post * conf).sum(1), 1e-10, 1.0))


def section_ukp(quick: bool) -> None:
    from accord.datasets.loaders import load_ukpconvarg1
    from accord.models import compare

    path = DATA / "ukp-convarg1"
    if not path.exists():
        print("(no UKPConvArg1: section skipped)")
        return
    judgments = load_ukpconvarg1(path)
    print(f"\n# UKPConvArg1: {len(judgments)} judgments, {judgments.pair_id.nunique()} pairs, "
          f"{judgments.annotator.nunique()} workers; 5-fold held-out judgment log-likelihood", flush=True)
    models: list[RaterModel] = [
        HierarchicalDawidSkene(max_steps=600 if quick else 1500),
        DawidSkene(),
        DawidSkene(inference="gibbs"),
        CrowdKitEM(),
        DawidSkene(inference="map", max_steps=600 if quick else 2000),
    ]
    names = ["accord HDS (meanfield)", "accord DS (vb)", "accord DS (gibbs)", "crowd-kit EM DS", "accord DS (map)"]
    try:
        from accord.models.bradley_terry import CrowdBradleyTerry

        models.append(CrowdBradleyTerry())
        names.append("accord crowd BT (meanfield)")
    except ImportError:
        pass
    start = time.perf_counter()
    table = compare(models, judgments, k=5, seed=0, names=names)
    seconds = time.perf_counter() - start
    rows = table.reset_index().to_dict("records")
    print_table(rows, [("model", "model", 0), ("loo_rank", "LOO rank", 0), ("elpd_loo", "elpd_loo", 1),
                       ("loo_se", "se", 1), ("elpd_diff", "elpd_diff", 1), ("weight", "weight", 3),
                       ("loo_warning", "Pareto-k warning", 0), ("heldout_loglik", "held-out loglik/judgment", 4),
                       ("heldout_se", "se", 4), ("heldout_diff", "diff to best", 4), ("heldout_dse", "paired se", 4)],
                f"UKPConvArg1: az.compare (LOO) and 5-fold held-out judgment log-likelihood ({seconds:.0f} s)")
    hds = table.loc["accord HDS (meanfield)", "heldout_loglik"]
    em = table.loc["crowd-kit EM DS", "heldout_loglik"]
    print(f"\nTarget (4): HDS held-out {hds:.4f} vs EM Dawid-Skene {em:.4f}: {'OK' if hds > em else 'MISS'}; "
          f"models ranked by az.compare: {int(table.loo_rank.notna().sum())} (target >= 3)")
    sys.stdout.flush()


def section_nuts(quick: bool, draws: int | None = None) -> None:
    import arviz as az

    from accord.datasets.loaders import load_snow2008

    if not (DATA / "snow2008").exists():
        print("(no Snow 2008 data: NUTS section skipped)")
        return
    judgments = load_snow2008("temp", DATA / "snow2008")
    samples, warmup, chains = (200, 200, 2) if quick else (600, 400, 4)
    samples = draws if draws is not None else samples
    print(f"\n# NUTS on Snow TEMP ({chains} chains x {warmup} warmup + {samples} draws, z enumerated)", flush=True)
    result = measure(lambda: (lambda m: (m.soft_labels_.probs, m))(
        DawidSkene(inference="nuts", num_samples=samples, num_warmup=warmup, num_chains=chains).fit(judgments)))
    if result.error:
        print(f"NUTS failed: {result.error}")
        return
    model = result.model
    idata = model.to_arviz()
    rhat = az.rhat(idata, var_names=["theta", "pi"])
    ess = az.ess(idata, var_names=["theta"])
    theta_rhat = rhat["theta"].to_numpy()
    # each row of a 2-class confusion has one free parameter: P(label 0 | true k)
    free = theta_rhat[..., 0]
    metrics = score(model.soft_labels_.probs, gold_labels(judgments))
    print(f"InferenceData groups: {list(idata.groups())}; {result.seconds:.0f} s; divergences {model.n_divergences_}")
    print(f"r_hat of annotator confusions: max {np.nanmax(free):.4f}, share < 1.01: {(free < 1.01).mean():.3f} "
          f"({free.size} free parameters); r_hat of pi: {float(rhat['pi'].max()):.4f}; min bulk ESS "
          f"{float(ess['theta'].min()):.0f}; accuracy {metrics['accuracy']:.4f}, gold NLL {metrics['nll']:.4f}")
    print(f"Target (6): r_hat < 1.01 for annotator parameters: {'OK' if np.nanmax(free) < 1.01 else 'MISS'}")
    sys.stdout.flush()


def section_scaling(methods: list[Method], sizes: list[int]) -> None:
    from accord.datasets.synthetic import make_synthetic

    print("\n# Scaling: synthetic binary preference data (mix " + ", ".join(f"{k} {v}" for k, v in BINARY_MIX.items())
          + "; 3 judgments per pair; annotators = judgments / 40)", flush=True)
    keep = {"majority vote", "accord DS (vb)", "accord DS (vb, 100 draws)", "accord DS (gibbs)",
            "accord DS (gibbs, 1 chain 50+100)", "accord DS (meanfield)", "accord HDS (meanfield)",
            "accord HDS (vb)", "accord MACE (vb)", "accord GLAD (meanfield)", "crowd-kit MajorityVote",
            "crowd-kit DawidSkene", "crowd-kit GLAD", "crowd-kit MACE", "crowd-kit BradleyTerry",
            "crowd-kit NoisyBradleyTerry"}
    chosen = [m for m in methods if m.name in keep]
    rows: list[dict[str, Any]] = []
    for size in sizes:
        n_pairs = size // 3
        n_annotators = max(size // 40, 10)
        data = make_synthetic(n_pairs, n_annotators, 3, annotator_mix=BINARY_MIX, tie_rate=0.0, with_text=False,
                              seed=0)
        judgments = with_crowdkit(data.judgments)
        print(f"  size {len(judgments)} judgments, {n_annotators} annotators", flush=True)
        for row in run_on(judgments, chosen, data.true_label, f"{len(judgments):,}", pairwise=True, scaling=True):
            row.pop("_model", None)
            row["n"] = len(judgments)
            rows.append(row)
        del data, judgments
        gc.collect()
    print_table(rows, [("dataset", "judgments", 0), ("method", "method", 0), ("seconds", "wall s", 2),
                       ("peak_mb", "peak MB", 0), ("delta_mb", "Δmem MB", 0), ("accuracy", "accuracy", 4),
                       ("ece", "ECE", 4), ("note", "note", 0)], "Scaling: time and memory per method")
    frame = pd.DataFrame(rows)
    largest = frame.n.max()
    at = frame[frame.n == largest].set_index("method")
    # a method skipped, failed or left out by --methods has no time (nor any column, when none was timed)
    timed, peaks = (at[column] if column in at else pd.Series(dtype=float) for column in ("seconds", "peak_mb"))
    ck = timed.get("crowd-kit DawidSkene", np.nan)
    print(f"\nAt {largest:,} judgments (torch threads: {torch.get_num_threads()}):")
    for name in ("accord DS (vb)", "accord DS (vb, 100 draws)", "accord HDS (vb)", "accord DS (gibbs)",
                 "accord DS (gibbs, 1 chain 50+100)"):
        seconds = timed.get(name, np.nan)
        peak = peaks.get(name, np.nan)
        if not (np.isfinite(seconds) and np.isfinite(ck)):  # was a MISS of a method never timed
            missing = " and ".join(m for m, t in ((name, seconds), ("crowd-kit DawidSkene", ck)) if not np.isfinite(t))
            print(f"- ratio of {name} fit time to crowd-kit DawidSkene's: not measured ({missing} not timed at "
                  f"{largest:,} judgments: left out by --methods, skipped or failed)")
            continue
        verdict = "OK" if seconds <= ck and peak <= 4096 else "MISS"
        print(f"- ratio of {name} fit time to crowd-kit DawidSkene's: {seconds / ck:.2f} ({seconds:.2f} s vs "
              f"{ck:.2f} s), peak memory {peak:.0f} MB: {verdict} (target: ratio <= 1, peak <= 4096 MB)")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="gold,synthetic,ukp,nuts,scaling")
    parser.add_argument("--loso", action="store_true", help="only the leave-one-dataset-out choice of DawidSkene's "
                        "defaults (the same as --sections loso)")
    parser.add_argument("--quick", action="store_true", help="fewer SVI steps and NUTS draws, sizes up to 100k")
    parser.add_argument("--sizes", default=None, help="scaling sizes in judgments (default 10000,100000,1000000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--nuts-draws", type=int, default=None, help="NUTS draws per chain (default 600; quick 200)")
    parser.add_argument("--max-bt", type=int, default=30_000,
                        help="largest data given to crowd-kit BradleyTerry / NoisyBradleyTerry")
    parser.add_argument("--methods", default=None, help="comma-separated substrings: only methods whose name has one")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sections = ["loso"] if args.loso else [s.strip() for s in args.sections.split(",") if s.strip()]
    known = {"gold", "loso", "loso-glad", "speed", "synthetic", "ukp", "nuts", "scaling"}
    if set(sections) - known:
        parser.error(f"--sections: unknown {', '.join(sorted(set(sections) - known))} (use {', '.join(sorted(known))})")
    if not sections:  # ran nothing and exited 0, as if every section had passed
        parser.error(f"--sections: no section named (use one or more of {', '.join(sorted(known))})")
    sizes = None if args.sizes is None else [s.strip() for s in args.sizes.split(",") if s.strip()]
    # a size given twice was fitted twice, and its duplicate rows failed the ratios after every fit ("Can only
    # compare identically-labeled Series"); an empty --sizes ran the default sizes, up to 1M judgments, and "," failed
    # on int('')
    if sizes is not None:
        if not sizes or not all(s.isdigit() for s in sizes) or len(set(map(int, sizes))) < len(sizes) or min(
                map(int, sizes)) < 3:
            parser.error(f"--sizes: one or more distinct numbers of judgments, each at least 3, not {args.sizes!r}")
        sizes = [int(s) for s in sizes]
    if args.nuts_draws is not None and args.nuts_draws < 1:  # 0 was read as no --nuts-draws: the default's 600
        parser.error(f"--nuts-draws: at least 1 draw per chain, not {args.nuts_draws}")
    methods = all_methods(args.quick, args.max_bt)
    if args.methods:
        wanted = [w.strip().lower() for w in args.methods.split(",")]
        methods = [m for m in methods if any(w in m.name.lower() for w in wanted)]
        if not methods:
            parser.error(f"--methods {args.methods}: no method's name has any of these")
    print(f"accord aggregation benchmark: sections {sections}; torch {torch.__version__}, {args.threads} thread(s); "
          f"{os.cpu_count()} CPUs; methods: {', '.join(m.name for m in methods)}")
    print("crowd-kit Wawa and ZeroBasedSkill are not run: they crash against scikit-learn >= 1.6 "
          "(__sklearn_tags__).")
    started = time.perf_counter()
    try:
        if "gold" in sections:
            for row in section_gold(methods):
                row.pop("_model", None)
        if "loso" in sections:
            section_loso()
        if "loso-glad" in sections or "loso" in sections:
            section_loso_glad()
        if "speed" in sections:
            section_speed(sizes[-1] if sizes else 1_000_000)
        if "synthetic" in sections:
            section_synthetic(methods, args.quick)
        if "ukp" in sections:
            section_ukp(args.quick)
        if "nuts" in sections:
            section_nuts(args.quick, args.nuts_draws)
        if "scaling" in sections:
            sizes = sizes or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
            section_scaling(methods, sizes)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return 1
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
