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
# # 03 · From posterior to a cleaned preference dataset
#
# The rater model's posterior becomes a cleaned preference dataset in the Hugging Face `prompt` / `chosen` /
# `rejected` layout, with a soft label `p_chosen`, `p_tie`, an `uncertainty` and a training `weight`. We compare it
# with the corpus' own gold label (MACE, computed by the corpus authors) and with UKPConvArg1Strict, the subset the
# authors kept after removing ties and intransitive pairs: how many pairs does the cleaning flip or drop, and why?
#
# Set `FULL = True` (or `ACCORD_FULL=1`) to use every debate; the default uses a subset.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accord import metrics
from accord.aggregate import MajorityVote, VoteFraction, build_cleaned
from accord.datasets import gold_labels, load, read_cleaned, write_cleaned
from accord.models import HierarchicalDawidSkene

FULL = os.environ.get("ACCORD_FULL", "0") == "1"
SMOKE = os.environ.get("ACCORD_SMOKE_TEST", "0") == "1"  # the test suite: every cell on a tiny subset
OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
# smoke mode: few SVI steps and draws for the fit (the same calls, so every code path still runs); full mode keeps
# the defaults
FIT = {"max_steps": 30, "num_samples": 40} if SMOKE else {}

judgments = load("ukpconvarg1")
strict = load("ukpconvarg1-strict")
if not FULL:
    debates = sorted(judgments["item_debate"].unique())[: 2 if SMOKE else 8]
    judgments = judgments[judgments["item_debate"].isin(debates)].reset_index(drop=True)
print(f"{judgments.pair_id.nunique():,} pairs, {len(judgments):,} judgments")

# %% [markdown]
# ## Fit, then build and write the cleaned dataset
# The file is written atomically (a crash leaves the old file or none) with its provenance in the Parquet metadata.

# %%
model = HierarchicalDawidSkene(seed=0, **FIT).fit(judgments)
cleaned = build_cleaned(model.soft_labels_, judgments)
path = write_cleaned(cleaned, OUTPUT / "ukp_cleaned.parquet",
                     provenance={"method": model.method, "source": "UKPConvArg1 full XML"})
back = read_cleaned(path)
print(back.attrs["provenance"])
back[["prompt", "chosen", "p_chosen", "p_tie", "uncertainty", "weight", "n_judgments"]].head()

# %% [markdown]
# ## Against the corpus' gold label
# Gold ties are left out of accuracy (it is about which side is better); NLL and ECE use every pair with gold.

# %%
gold = gold_labels(judgments)
rows = {}
for name, soft in {"majority": MajorityVote().fit(judgments).soft_labels_,
                   "vote fraction": VoteFraction().fit(judgments).soft_labels_,
                   "hierarchical DS": model.soft_labels_}.items():
    rows[name] = metrics.score(soft.probs, gold)
pd.DataFrame(rows).T.round(3)

# %% [markdown]
# ## Against UKPConvArg1Strict
# Strict keeps 11,650 pairs with a clear, transitive winner. For the pairs in both, how often does our chosen side
# agree with Strict's? Which pairs did Strict drop, and what do our soft labels say about them?

# %%
strict_label = strict.drop_duplicates("pair_id").set_index("pair_id")["gold"]
ours = cleaned.set_index("pair_id")
in_both = ours.index.intersection(strict_label.index)
agree = (ours.loc[in_both, "chosen_side"] == strict_label.loc[in_both]).mean()
dropped = ours.loc[ours.index.difference(strict_label.index)]
print(f"pairs in Strict: {len(in_both):,}; our chosen side agrees on {agree:.3f} of them")
print(f"pairs Strict dropped: {len(dropped):,}; of these, our most likely outcome is a tie for "
      f"{(dropped['p_tie'] > dropped['p_chosen']).mean():.2f}")

# %% [markdown]
# Our soft label for the chosen side, split by what Strict did with the pair. Look for the kept pairs piling up near
# 1 and the dropped ones spread out: a dropped pair near 0 is one whose most likely outcome is a tie.

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5))
bins = np.linspace(0, 1, 21)
ax.hist(ours.loc[in_both, "p_chosen"], bins=bins, alpha=0.6, density=True, label=f"kept by Strict ({len(in_both):,})")
ax.hist(dropped["p_chosen"], bins=bins, alpha=0.6, density=True, label=f"dropped by Strict ({len(dropped):,})")
ax.set_xlabel("p_chosen: posterior P(chosen response wins), hierarchical DS")
ax.set_ylabel("density (area 1 per group)")
ax.set_title("Strict drops pairs whose winner is uncertain")
ax.legend(loc="upper left", title="pairs")
fig.tight_layout()
fig.savefig(OUTPUT / "03_strict_vs_p_chosen.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# ## What the cleaning does
# With `drop_ties=True` and a confidence floor, the cleaned dataset drops pairs whose most likely outcome is a tie or
# whose winner is too uncertain; the flips are pairs where the posterior chooses a different side than the raw
# majority (a reliable minority outvotes unreliable raters).

# %%
majority_side = MajorityVote().fit(judgments).soft_labels_.hard()
strict_clean = build_cleaned(model.soft_labels_, judgments, drop_ties=True, min_p_chosen=0.6)
flipped = (cleaned.set_index("pair_id")["chosen_side"] != majority_side.reindex(cleaned["pair_id"]).to_numpy())
flipped &= majority_side.reindex(cleaned["pair_id"]).isin(["A", "B"]).to_numpy()
print(f"kept {len(strict_clean):,} of {len(cleaned):,} pairs with drop_ties=True, min_p_chosen=0.6")
print(f"pairs whose chosen side differs from the majority vote: {int(flipped.sum()):,}")
