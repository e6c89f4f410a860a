# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Fitting rater models to UKPConvArg1
#
# UKPConvArg1 (Habernal & Gurevych, ACL 2016) asks Mechanical Turk workers which of two web arguments is more
# convincing: 16,927 pairs, 84,445 judgments by 3,815 workers, with ties. Most workers give only a few judgments,
# which is where a hierarchical model's partial pooling matters.
#
# This notebook fits several rater models, checks them with ArviZ (trace and rank plots, r_hat, ESS), runs a
# posterior predictive check of the vote distribution, draws annotator reliability as a forest plot, and compares
# the models with `az.compare`.
#
# **Data path.** The corpus is read from `ACCORD_DATA_DIR` (or the repository's `../shared/datasets`). Set
# `FULL = True` to use every debate; the default uses a subset of debates so the notebook runs in a minute or two.

# %%
import os
from pathlib import Path

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accord.datasets import load
from accord.models import MACE, DawidSkene, HierarchicalDawidSkene, compare

FULL = os.environ.get("ACCORD_FULL", "0") == "1"
SMOKE = os.environ.get("ACCORD_SMOKE_TEST", "0") == "1"  # the test suite: every cell on a tiny subset
OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
# smoke mode: fewer posterior draws per fit (the same calls, so every code path still runs; PSIS-LOO in compare
# costs judgments x draws); full mode keeps the default 200
DRAWS = {"num_samples": 40} if SMOKE else {}

judgments = load("ukpconvarg1")
if not FULL:
    debates = sorted(judgments["item_debate"].unique())[: 1 if SMOKE else 2]
    judgments = judgments[judgments["item_debate"].isin(debates)].reset_index(drop=True)
print(f"{len(judgments):,} judgments, {judgments.pair_id.nunique():,} pairs, {judgments.annotator.nunique():,} workers")
judgments["label"].value_counts(normalize=True).round(3)

# %% [markdown]
# How many judgments does each worker give? Both axes are logarithmic: look for the tall bars at one to five
# judgments (most workers) and the thin tail of a few busy workers. That long tail is why we pool.

# %%
per_worker = judgments.groupby("annotator").size()
fig, ax = plt.subplots(figsize=(6, 3.5))
edges = np.unique(np.round(np.geomspace(1, per_worker.max() + 1, 25)))  # [1, 2), [2, 3), ...: whole counts
ax.hist(per_worker, bins=edges, edgecolor="white")
ax.set_xscale("log")
ax.set_yscale("log")
ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= per_worker.max()]
ax.set_xticks(ticks, [str(t) for t in ticks])
ax.minorticks_off()
ax.set_xlabel("judgments per worker (log scale)")
ax.set_ylabel("number of workers (log scale)")
ax.set_title(f"UKPConvArg1{'' if FULL else ' (subset)'}: workload per worker, median {per_worker.median():.0f}")
fig.tight_layout()
fig.savefig(OUTPUT / "01_workload.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# ## Fit three models
# - `DawidSkene` with closed-form variational Bayes (a full confusion matrix per worker);
# - `MACE` (closed-form VB): each worker answers at random with a learned spam probability;
# - `HierarchicalDawidSkene` (SVI, mean-field): worker confusions drawn from a learned population distribution.
#   On the subset we cap its SVI steps to keep the notebook quick; `FULL` runs it to convergence.

# %%
models = {
    "DS (vb)": DawidSkene(seed=0, **DRAWS).fit(judgments),
    "MACE (vb)": MACE(inference="vb", seed=0, **DRAWS).fit(judgments),
    "HDS (meanfield)": HierarchicalDawidSkene(max_steps=2000 if FULL else 15 if SMOKE else 300, seed=0,
                                              **DRAWS).fit(judgments),
}
summary = pd.DataFrame(
    {name: m.soft_labels_.probs.mean() for name, m in models.items()}
).T.round(3)
summary

# %% [markdown]
# ## Diagnostics with ArviZ
# Every fitted model exports an `InferenceData` with named dimensions and a per-judgment `log_likelihood` group.
# MCMC diagnostics (r_hat, ESS, trace and rank plots) need Markov chains: `DawidSkene(inference="gibbs")` runs a
# blocked Gibbs sampler of the same model (exact posterior draws, several chains), fast enough for the whole subset.
# `inference="nuts"` runs Pyro's NUTS with the true label enumerated out; it is exact too but slow, so it is for
# small sets (see `benchmarks/aggregation.py --sections nuts`: Snow TEMP, r_hat < 1.01).

# %%
gibbs = DawidSkene(inference="gibbs", num_samples=20 if SMOKE else 300, num_warmup=10 if SMOKE else 200, num_chains=2,
                   seed=0).fit(judgments)
idata_gibbs = gibbs.to_arviz()
az.summary(idata_gibbs, var_names=["pi"], kind="diagnostics")

# %% [markdown]
# The trace plot shows the class prior `pi` (the share of pairs whose true label is A, B or a tie). Look for the
# two chains (solid and dotted) giving the same density on the left and, on the right, flat, well-mixed traces
# with no trend or stuck stretches.

# %%
axes = az.plot_trace(idata_gibbs, var_names=["pi"], figsize=(11, 3.5), legend=True)
fig = axes[0, 0].figure
axes[0, 0].set_title("posterior density of pi")
axes[0, 0].set_xlabel("class prior pi (share of pairs)")
axes[0, 0].set_ylabel("density")
axes[0, 1].set_title("trace of pi")
axes[0, 1].set_xlabel("draw (after warm-up)")
axes[0, 1].set_ylabel("class prior pi")
for ax in axes[0]:  # move arviz's legends (class colours, chain line styles) off the data
    legend = ax.get_legend()
    if legend is not None:
        ax.legend(legend.legend_handles, [t.get_text() for t in legend.get_texts()],
                  title=legend.get_title().get_text().replace("true_class", "class"), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
fig.suptitle("DawidSkene Gibbs sampler: class prior pi, two chains")
fig.tight_layout()
fig.savefig(OUTPUT / "01_trace.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# Rank plots: each chain's draws ranked among all draws. Look for roughly flat bars around the dashed line in every
# chain; a chain whose bars slope or pile up at one end has not mixed with the others.

# %%
axes = az.plot_rank(idata_gibbs, var_names=["pi"], figsize=(10, 3))
fig = np.ravel(axes)[0].figure
pi = idata_gibbs.posterior["pi"]
for ax, cls in zip(np.ravel(axes), pi.coords[pi.dims[-1]].values):
    ax.set_title(f"pi[{cls}]", fontsize=11)
    ax.set_xlabel("rank of the draw among all chains", fontsize=9)
    ax.set_ylabel("chain", fontsize=9)
    ax.tick_params(labelsize=8)
fig.suptitle("Rank plots of the class prior: flat bars mean the chains mix")
fig.tight_layout()
fig.savefig(OUTPUT / "01_rank.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# ## Posterior predictive check of the vote distribution
# For each pair, how many of its judgments said A? We simulate judgments from the fitted hierarchical model (true
# label from the pair's posterior, each judgment from its worker's confusion) and compare the distribution of the
# share of "A" votes with the observed one.

# %%
hds = models["HDS (meanfield)"]
enc = hds.encoded_
rng = np.random.default_rng(0)
z_probs = hds.soft_labels_.probs.to_numpy()
confusion = hds.confusion_  # [workers, true class, reported class]
observed_a = np.bincount(enc.items, weights=(enc.labels == 0), minlength=enc.n_items) / np.bincount(enc.items)
simulated = []
for _ in range(20):  # 20 replicated data sets, vectorised over judgments
    z = (rng.random(enc.n_items)[:, None] > np.cumsum(z_probs, axis=1)).sum(axis=1)
    p = confusion[enc.workers, z[enc.items]]
    y = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    simulated.append(np.bincount(enc.items, weights=(y == 0), minlength=enc.n_items) / np.bincount(enc.items))
bins = np.linspace(-0.1, 1.1, 7)  # centred on 0, 0.2, ..., 1 (most pairs have five judgments)
centres = (bins[:-1] + bins[1:]) / 2
replicated = np.array([np.histogram(s, bins=bins)[0] / len(s) for s in simulated])
fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.bar(centres - 0.04, replicated.mean(axis=0), width=0.08, alpha=0.7,
       yerr=[replicated.mean(axis=0) - replicated.min(axis=0), replicated.max(axis=0) - replicated.mean(axis=0)],
       capsize=2, label=f"replicated by HDS (mean, range of {len(simulated)})")
ax.bar(centres + 0.04, np.histogram(observed_a, bins=bins)[0] / len(observed_a), width=0.08, color="black",
       label="observed")
ax.set_xticks(centres, [f"{c:.1f}" for c in centres])
ax.set_xlabel("share of a pair's judgments that say 'A'")
ax.set_ylabel("share of pairs")
ax.set_title("Posterior predictive check of the vote distribution")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUTPUT / "01_ppc.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# Look for black bars that sit within the whiskers of their blue neighbours: where they do not, the model gets the
# way votes split wrong (for example too few unanimous pairs, or too many 2-to-3 splits).

# %% [markdown]
# ## Annotator reliability
# The workers with the most judgments, with 90% credible intervals. Reliability is the posterior probability that a
# worker reports the true label.

# %%
table = hds.annotators_.sort_values("n_judgments", ascending=False).head(25).sort_values("reliability")
fig, ax = plt.subplots(figsize=(6, 6))
y = np.arange(len(table))
ax.errorbar(table["reliability"], y, xerr=[table["reliability"] - table["reliability_lower"],
            table["reliability_upper"] - table["reliability"]], fmt="o", capsize=2)
ax.set_yticks(y, [f"{a} ({n})" for a, n in zip(table.index, table["n_judgments"])], fontsize=8)
ax.set_xlabel("reliability: P(report = true label), 90% interval")
ax.set_ylabel("worker id (number of judgments)")
ax.set_title("Reliability of the 25 busiest workers (HDS)")
ax.grid(axis="x", alpha=0.3)
fig.tight_layout()
fig.savefig(OUTPUT / "01_reliability.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# Look for workers whose whole interval sits to the left of the others: they are the ones the model down-weights.
# Busy workers have narrow intervals; a worker with few judgments would have a wide one, pulled toward the population.

# %% [markdown]
# ## Model comparison
# `accord.models.compare` runs `az.compare` (PSIS-LOO over judgments) and, with `k >= 2`, a k-fold held-out
# judgment log-likelihood (each model refitted k times). Higher is better in both. On the subset we run the k-fold
# part for the two closed-form models only, which refit in a second.

# %%
comparison = compare(list(models.values()), judgments, k=5 if FULL else 0, names=list(models))
comparison[["loo_rank", "elpd_loo", "elpd_diff", "loo_dse", "weight", "loo_warning"]]

# %%
if not FULL:
    heldout = compare([models["DS (vb)"], models["MACE (vb)"]], judgments, k=2 if SMOKE else 3,
                      names=["DS (vb)", "MACE (vb)"])
    display_columns = ["heldout_loglik", "heldout_se", "heldout_diff", "heldout_dse"]
    print(heldout[display_columns].round(4).to_string())

# %% [markdown]
# ### Why the two views can rank the models differently, and what `loo_warning` means
#
# **`loo_warning = True`** is ArviZ saying that its Pareto-smoothed importance sampling (PSIS) could not estimate
# some judgments' leave-one-out predictions: their Pareto k exceeds 0.7, meaning the posterior moves a lot when that
# one judgment is left out. Here that is expected for every model: most workers give only a few judgments, so a
# worker's parameters (and a pair's label) lean heavily on each of them. When the warning is on, `elpd_loo` is an
# optimistic and noisy estimate, and its ranking should not be trusted.
#
# **k-fold** does not approximate: it refits each model without each fold and scores the judgments it never saw.
# It costs k fits but stays valid where PSIS breaks down, so when the two views disagree and `loo_warning` is on,
# believe the k-fold ranking (and its paired standard error `heldout_dse`: a difference within about two of them is
# no difference). A further reason they can disagree: PSIS-LOO works from the posterior draws, so a model whose
# posterior is too narrow (closed-form VB is narrower than the exact posterior) looks better or worse to it than
# its held-out predictions warrant, while k-fold only looks at the predictions.
