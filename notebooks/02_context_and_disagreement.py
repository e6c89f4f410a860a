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
# # 02 · Noise or genuine disagreement?
#
# Raters disagree for two reasons: some are noisy, and some genuinely prefer differently because of who they are.
# `ContextPreference` lets preference and reliability depend on annotator groups (with hierarchical priors, so
# small groups shrink toward the population); `RaterTypes` finds groups nobody labelled; the pluralistic soft labels
# give P(A > B) per group and split each pair's disagreement into noise and between-group disagreement.
#
# Three data sets: synthetic data with a known answer (sections 1 and 2), UKPConvArg1's worker stance (section 3),
# and humans versus AI judges on PandaLM (section 4). Set `FULL = True` (or `ACCORD_FULL=1`) for the full UKPConvArg1 corpus.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accord import metrics
from accord.aggregate.pluralistic import decompose_disagreement, pluralistic_soft_labels
from accord.datasets import load, make_synthetic
from accord.datasets.synthetic import TOPICS
from accord.models import ContextPreference, RaterTypes

FULL = os.environ.get("ACCORD_FULL", "0") == "1"
SMOKE = os.environ.get("ACCORD_SMOKE_TEST", "0") == "1"  # the test suite: every cell on a tiny subset
OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))  # figures are saved here too
OUTPUT.mkdir(parents=True, exist_ok=True)
# smoke mode: few SVI steps per fit (the same calls, so every code path still runs); full mode keeps the defaults
STEPS = {"max_steps": 30, "posterior_steps": 10} if SMOKE else {}

# %% [markdown]
# ## 1. Synthetic: two groups that disagree on contested topics
# Group `g1` prefers the opposite side on two contested topics and agrees with `g0` elsewhere.

# %%
data = make_synthetic(n_pairs=80 if SMOKE else 600, n_annotators=20 if SMOKE else 80, judgments_per_pair=8, n_groups=2, contested_topics=2,
                      annotator_mix={"reliable": 0.85, "spammer": 0.15}, n_responses_per_prompt=6, seed=0)
judgments = data.judgments
model = ContextPreference(group="annotator_group", seed=0, **STEPS).fit(judgments)
model.group_effects_[["effect", "group", "term", "mean", "lower", "upper"]].round(2)

# %% [markdown]
# Per-group soft labels against the true per-group probabilities, and the noise / genuine split per pair.

# %%
plural = pluralistic_soft_labels(model, weights="share")
extra = plural.extra
rows = []
for group in data.true_p_a_by_group.columns:
    truth = data.true_p_a_by_group[group].reindex(extra.index)
    rows.append({"group": group, "ECE vs true P(A>B | group)":
                 metrics.calibration_error(extra[f"p_a_{group}"].to_numpy(), truth.to_numpy())})
display_table = pd.DataFrame(rows)
display_table

# %%
contested_topics = list(TOPICS)[: data.params["contested_topics"]]  # an integer k means the first k topics
topic = judgments.drop_duplicates("pair_id").set_index("pair_id")["item_topic"].reindex(extra.index)
is_contested = topic.isin(contested_topics).to_numpy()
print("contested topics:", contested_topics)
fig, ax = plt.subplots(figsize=(6.5, 3.5))
bins = np.linspace(0, 1, 21)  # the same bins for both groups of pairs
ax.hist(extra.loc[~is_contested, "disagreement"], bins=bins, alpha=0.6,
        label=f"agreed topics ({(~is_contested).sum()} pairs)")
ax.hist(extra.loc[is_contested, "disagreement"], bins=bins, alpha=0.6,
        label=f"contested topics ({is_contested.sum()} pairs)")
ax.legend(loc="upper center")
ax.set_xlabel("share of the pair's disagreement that is genuine (between groups)")
ax.set_ylabel("number of pairs")
ax.set_title("Synthetic data: genuine disagreement sits on the contested topics")
fig.tight_layout()
fig.savefig(OUTPUT / "02_genuine_disagreement.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# Look for the two colours at opposite ends: pairs on agreed topics near 0 (their disagreement is rater noise),
# pairs on contested topics near 1 (the groups genuinely prefer different sides).

# %% [markdown]
# ## 2. Rater types: groups nobody labelled
# The same data without the group column: the number of types is chosen by held-out likelihood.

# %%
type_steps = {"max_steps": 30, "candidates": (1, 2)} if SMOKE else {}  # smoke mode: two candidates, few steps
types = RaterTypes(n_types="auto", seed=0, **type_steps).fit(judgments.drop(columns=["annotator_group"]))
print("chosen number of types:", types.n_types_)
assigned = types.annotators_["type"]
truth = data.annotators["group"].reindex(assigned.index).astype(str)
pd.crosstab(truth, assigned, rownames=["true group"], colnames=["assigned type"])

# %% [markdown]
# ## 3. UKPConvArg1: does the worker's stance change the judgment?
# Both arguments of a pair argue for the same debate side, so "own stance" cannot favour A over B within a pair;
# what stance can change is how sharply a worker separates the arguments, how often they answer "equal", and how
# reliable they are. Workers without a recorded stance are left out.

# %%
ukp = load("ukpconvarg1")
ukp = ukp[ukp["annotator_stance"].notna()].reset_index(drop=True)
if not FULL:
    ukp = ukp[ukp["item_topic"].isin(sorted(ukp["item_topic"].unique())[: 1 if SMOKE else 2])].reset_index(drop=True)
stance = ContextPreference(group="annotator_stance", reference_group="none", topic=None, covariates=None,
                           inference="meanfield", seed=0, **STEPS).fit(ukp)
effects = stance.group_effects_[["effect", "group", "mean", "lower", "upper"]]
effects.round(3)

# %% [markdown]
# Each effect is a contrast with workers who recorded no stance, so 0 (grey line) means "no difference": look for
# intervals that do not cross it. `preference_scale` is lambda - 1 (> 0: separates the arguments more sharply),
# `reliability` shifts the log-odds of an honest report, `tie` shifts the tie threshold (> 0: more "equal" answers).

# %%
names = {"preference_scale": "preference scale", "reliability": "reliability", "tie": "tie threshold"}
fig, ax = plt.subplots(figsize=(7, 3.5))
labels = [f"{names.get(e, e)}: {g} stance" for e, g in zip(effects["effect"], effects["group"])]
y = np.arange(len(effects))
ax.errorbar(effects["mean"], y, xerr=[effects["mean"] - effects["lower"], effects["upper"] - effects["mean"]],
            fmt="o", capsize=3)
ax.axvline(0, color="grey", linewidth=1)
ax.set_yticks(y, labels)
ax.invert_yaxis()  # same order as the table above
ax.set_xlabel("effect vs workers without a stance (posterior mean, 90% interval)")
ax.set_title("UKPConvArg1: does the worker's own stance matter?")
fig.tight_layout()
fig.savefig(OUTPUT / "02_stance_effects.png", dpi=120, bbox_inches="tight")

# %% [markdown]
# ## 4. PandaLM: human annotators versus AI judges
# Three humans and two AI judges label the same 999 pairs. Each rater's reliability, and the two groups' effects.

# %%
panda = load("pandalm")
if SMOKE:
    panda = panda[panda["pair_id"].isin(panda["pair_id"].unique()[:100])].reset_index(drop=True)
judges = ContextPreference(group="annotator_kind", reference_group="human", topic=None, covariates=None,
                           utilities=False, inference="meanfield", seed=0, **STEPS).fit(panda)
judges.annotators_[["group", "n_judgments", "reliability", "reliability_lower", "reliability_upper"]].round(3)

# %%
split = decompose_disagreement(judges, "equal")
busy = split[split["total"] > 0.1]
print(f"pairs with disagreement: {len(busy)}; genuine (human vs AI) share {busy['disagreement'].mean():.2f}, "
      f"noise share {busy['noise_share'].mean():.2f}")
busy.sort_values("disagreement", ascending=False).head(10).round(3)
