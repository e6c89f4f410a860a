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
# # 06 · Multi-objective reward models: per-attribute ratings to per-attribute rewards
#
# Raters score every response on five attributes (helpfulness, correctness, coherence, complexity, verbosity; 0-4,
# HelpSteer2's design), and a third of them are lenient or harsh on some attributes. The path:
#
# 1. the multi-attribute rater model turns the ratings into a posterior per response and attribute, and into
#    per-attribute soft preferences for the pairs of responses to one prompt (`accord aggregate` does the same);
# 2. one reward model with five heads learns all five attributes from one forward pass per response
#    (`accord train --task attributes`);
# 3. its attributes are combined into one reward, with weights fitted to overall preferences (`accord combine`);
# 4. `accord score` reports every attribute and the combined reward.
#
# The synthetic data know the truth, so every step is checked against it. `FULL = True` (or `ACCORD_FULL=1`) uses
# more responses and trains longer.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accord.aggregate import AttributeMean
from accord.aggregate.cleaned_attributes import clean_attributes
from accord.datasets import make_synthetic_attributes
from accord.reward import RewardConfig, score, train
from accord.reward.attribute_combination import fit_combination, save_combination

FULL = os.environ.get("ACCORD_FULL", "0") == "1"
SMOKE = os.environ.get("ACCORD_SMOKE_TEST", "0") == "1"  # the test suite: every cell on a tiny subset
OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
STEPS = 150 if FULL else 2 if SMOKE else 12
# smoke mode: the end-of-training reward statistics on 16 training pairs (default 256; the same calls)
STATS = {"stats_max_pairs": 16} if SMOKE else {}

data = make_synthetic_attributes(n_responses=1500 if FULL else 60 if SMOKE else 300, n_responses_per_prompt=3, seed=0)
attributes = list(data.truth.columns)
print(f"{len(data.judgments):,} ratings of {len(data.truth):,} responses by {data.judgments.annotator.nunique()} "
      f"raters on {len(attributes)} attributes")
data.judgments.head()

# %% [markdown]
# ## 1. Ratings to per-attribute scores
# `clean_attributes` fits the rater model and returns both cleaned layouts: per response `<a>_mean`, `<a>_sd` and a
# 90% interval; per pair `p_chosen_<a>` and `weight_<a>` (how much the ratings pin the comparison down). Against the
# truth, the rater model's means are compared with plain per-attribute averages.

# %%
fit_settings = {"max_iter": 3} if SMOKE else {}  # smoke mode: a few EM rounds (the same calls; full mode to tol)
cleaned = clean_attributes(data.judgments, **fit_settings)
averaged = AttributeMean().fit(data.judgments).scores_
truth = data.truth.reindex(cleaned.scores.mean.index)
pd.DataFrame({
    "rater model RMSE": ((cleaned.scores.mean - truth) ** 2).mean() ** 0.5,
    "averaging RMSE": ((averaged.mean.reindex(truth.index) - truth) ** 2).mean() ** 0.5,
    "90% interval coverage": ((cleaned.scores.lower <= truth) & (truth <= cleaned.scores.upper)).mean(),
}).round(3)

# %%
pairs = cleaned.pairs
pairs[["chosen", "rejected", *[f"p_chosen_{a}" for a in attributes[:3]], "weight_helpfulness"]].head()

# %% [markdown]
# ## 2. One backbone, five heads
# The pairs layout trains one pairwise head per attribute; a quarter of the prompts is held out. The overall
# preference (used only in step 3) is made from the true attribute gaps with known weights.

# %%
rng = np.random.default_rng(0)
gaps = data.pairs.set_index(["response_a_id", "response_b_id"])[[f"gap_{a}" for a in attributes]]
forward = gaps.reindex(pd.MultiIndex.from_arrays([pairs["chosen_id"], pairs["rejected_id"]])).to_numpy()
backward = -gaps.reindex(pd.MultiIndex.from_arrays([pairs["rejected_id"], pairs["chosen_id"]])).to_numpy()
true_gaps = np.where(np.isnan(forward), backward, forward)  # z(chosen) - z(rejected) per attribute
true_weights = np.array([0.3, 0.74, 0.46, 0.47, -0.33])
overall = true_gaps @ true_weights
votes = rng.binomial(3, 1 / (1 + np.exp(-3 * overall / overall.std())))
held_prompts = set(rng.choice(pairs["prompt"].unique(), size=pairs["prompt"].nunique() // 4, replace=False))
test = pairs["prompt"].isin(held_prompts).to_numpy()
train_pairs = pairs[~test].reset_index(drop=True)
train_pairs.attrs = pairs.attrs  # the cleaned dataset's metadata: which attributes are preferences
config = RewardConfig(model="all-MiniLM-L6-v2", task="attributes", output_dir=str(OUTPUT / "06_k_heads"),
                      max_steps=STEPS, batch_size=8, max_length=96, learning_rate=3e-4, freeze_layers=4, seed=0,
                      save_steps=None, progress=False, **STATS)
model_dir = train(config, train_data=train_pairs).output_dir
text = pairs.loc[test, ["prompt", "chosen", "rejected"]].reset_index(drop=True)
scored = score(model_dir, text)
pd.Series({a: float(((scored[f"p_chosen_{a}_model"] > 0.5) == (true_gaps[test, k] > 0)).mean())
           for k, a in enumerate(attributes)}, name="held-out accuracy against the true order").round(3)

# %% [markdown]
# ## 3. Combining the attributes into one reward
# Weights fitted to the overall votes of the training pairs (a logistic regression on the attribute reward
# differences), saved with the model. The fitted weights are compared with the true ones (up to scale).

# %%
overall_train = pairs.loc[~test, ["prompt", "chosen", "rejected"]].assign(p_chosen=votes[~test] / 3)
combination = fit_combination(model_dir, overall_train, "fitted")
save_combination(model_dir, combination)
fig, ax = plt.subplots(figsize=(5, 3.5))
x = np.arange(len(attributes))
ax.bar(x - 0.2, true_weights / np.abs(true_weights).sum(), width=0.4, label="true (normalised)")
ax.bar(x + 0.2, combination.coef_ / np.abs(combination.coef_).sum(), width=0.4, label="fitted (normalised)")
ax.set_xticks(x, attributes, rotation=30)
ax.axhline(0, color="grey", linewidth=0.8)
ax.legend(fontsize=8)
ax.set_title("Combination weights")
fig.tight_layout()
fig.savefig(OUTPUT / "06_combination_weights.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# ## 4. Scoring new responses
# Every attribute's reward and the combined reward (`reward`, and `reward_normalised` by its statistics on the
# fitting pairs); on pairs, `p_chosen_model` comes from the combined reward.

# %%
responses = pd.DataFrame({"prompt": text["prompt"].head(4), "response": text["chosen"].head(4)})
print("held-out accuracy of the combined reward against the true overall order:",
      round(float(((score(model_dir, text)["p_chosen_model"] > 0.5) == (overall[test] > 0)).mean()), 3))
score(model_dir, responses).drop(columns=["prompt", "response"]).round(3)
