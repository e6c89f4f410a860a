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
OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)

judgments = load("ukpconvarg1")
if not FULL:
    debates = sorted(judgments["item_debate"].unique())[:3]
    judgments = judgments[judgments["item_debate"].isin(debates)].reset_index(drop=True)
print(f"{len(judgments):,} judgments, {judgments.pair_id.nunique():,} pairs, {judgments.annotator.nunique():,} workers")
judgments["label"].value_counts(normalize=True).round(3)

# %% [markdown]
# How many judgments does each worker give? A long tail of workers with one to five judgments is why we pool.

# %%
per_worker = judgments.groupby("annotator").size()
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(per_worker, bins=np.arange(1, per_worker.max() + 2) - 0.5 if per_worker.max() < 60 else 50)
ax.set_xlabel("judgments per worker")
ax.set_ylabel("number of workers")
ax.set_title("UKPConvArg1: workload per worker")
fig.tight_layout()

# %% [markdown]
# ## Fit three models
# - `DawidSkene` with closed-form variational Bayes (a full confusion matrix per worker);
# - `MACE` (closed-form VB): each worker answers at random with a learned spam probability;
# - `HierarchicalDawidSkene` (SVI, mean-field): worker confusions drawn from a learned population distribution.
#   On the subset we cap its SVI steps to keep the notebook quick; `FULL` runs it to convergence.

# %%
models = {
    "DS (vb)": DawidSkene(seed=0).fit(judgments),
    "MACE (vb)": MACE(inference="vb", seed=0).fit(judgments),
    "HDS (meanfield)": HierarchicalDawidSkene(max_steps=2000 if FULL else 300, seed=0).fit(judgments),
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
gibbs = DawidSkene(inference="gibbs", num_samples=300, num_warmup=200, num_chains=2, seed=0).fit(judgments)
idata_gibbs = gibbs.to_arviz()
az.summary(idata_gibbs, var_names=["pi"], kind="diagnostics")

# %%
axes = az.plot_trace(idata_gibbs, var_names=["pi"], figsize=(9, 3.5))
plt.gcf().suptitle("Gibbs trace of the class prior (two chains)")
plt.gcf().tight_layout()

# %%
axes = az.plot_rank(idata_gibbs, var_names=["pi"], figsize=(9, 3))
plt.gcf().suptitle("Rank plots: uniform bars mean the chains mix")
plt.gcf().tight_layout()

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
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, 1, 12)
ax.hist(np.concatenate(simulated), bins=bins, density=True, alpha=0.5, label="replicated (HDS)")
ax.hist(observed_a, bins=bins, density=True, histtype="step", linewidth=2, color="black", label="observed")
ax.set_xlabel('share of "A" votes in a pair')
ax.set_ylabel("density")
ax.set_title("Posterior predictive check of the vote distribution")
ax.legend()
fig.tight_layout()

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
ax.set_yticks(y, [f"{a} ({n})" for a, n in zip(table.index, table["n_judgments"])], fontsize=7)
ax.set_xlabel("reliability: P(report = true label), 90% interval")
ax.set_title("The 25 busiest workers (judgments in brackets)")
fig.tight_layout()

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
    heldout = compare([models["DS (vb)"], models["MACE (vb)"]], judgments, k=3, names=["DS (vb)", "MACE (vb)"])
    display_columns = ["heldout_loglik", "heldout_se", "heldout_diff", "heldout_dse"]
    print(heldout[display_columns].round(4).to_string())
