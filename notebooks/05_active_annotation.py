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
# # 05 · Active annotation: where the next judgments go
#
# Judgments cost money. Instead of a fixed number of votes per item, a data team can ask the rater model which
# items are still uncertain, and which raters would settle them: `accord.aggregate.suggest` ranks every
# (item, rater) by the **expected information gain** about the item's label, per unit of cost, and plans a batch in
# which a second judgment of the same item counts for less than the first.
#
# The loop this notebook runs, on Snow et al.'s RTE crowd (800 sentence pairs, 10 Mechanical Turk votes each, expert
# gold), replaying the real votes: start from 2 votes per item, **fit**, **suggest** the next batch (only raters who
# really labelled an item can be sent to it, so their real vote can be revealed), **add** the new judgments,
# **refit** with `partial_fit`, and draw the **curve** of accuracy against votes used, next to the vendor's rule
# (every item gets its next vote in turn).
#
# The same on the command line: `accord suggest --input judgments.csv --method dawid-skene --budget 400
# --raters available.csv --output next_batch.csv`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accord import metrics
from accord.aggregate.suggest import expected_information_gain, suggest
from accord.datasets import gold_labels, load
from accord.models import DawidSkene

OUTPUT = Path(os.environ.get("ACCORD_NOTEBOOK_OUTPUT", "notebook-output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
ROUNDS = 5
BATCH = 400  # judgments per round: half a vote per item

votes = load("snow2008-rte")[["pair_id", "annotator", "label", "gold"]]
gold = gold_labels(votes)
rng = np.random.default_rng(0)
shuffled = votes.sample(frac=1.0, random_state=0)
start = shuffled.groupby("pair_id").head(2)  # what has been bought so far
print(f"{votes.pair_id.nunique()} items, {len(votes):,} votes in all; bought so far: {len(start):,}")

# %% [markdown]
# ## Fit, and look at what one more judgment is worth
# `expected_information_gain` gives, per item, the information (in nats) one judgment by a random rater would bring
# about the item's label; it is largest where the posterior is closest to a coin flip, and zero where the label is
# certain.

# %%
model = DawidSkene(num_samples=20, seed=0).fit(start)


def accuracy(fitted: DawidSkene) -> float:
    return metrics.score(fitted.soft_labels_.probs.loc[gold.index], gold)["accuracy"]


gains = expected_information_gain(model)
print(f"accuracy with 2 votes per item: {accuracy(model):.3f}")
gains.sort_values("crowd", ascending=False).head()

# %% [markdown]
# ## Suggest the next batch
# Each row is one judgment to buy: the item, the rater to ask, the expected gain of that judgment given the others
# planned for the same item, and the current most likely label with its probability. `allowed` lists who can still
# be asked about what (here: the raters whose votes are not bought yet); a plain list of raters (`raters=`) or
# nothing (a random rater of each pool) work too, and `pool_costs={"human": 1, "ai": 0.05}` weighs pools by price.

# %%
hidden = votes.drop(start.index)
batch = suggest(model, BATCH, allowed=hidden[["pair_id", "annotator"]], certainty=0.999)
print(f"{len(batch)} judgments on {batch.pair_id.nunique()} items; "
      f"{(batch.groupby('pair_id').size() > 1).sum()} items get more than one")
batch.head(8)

# %% [markdown]
# ## Add the judgments as they arrive, refit, repeat
# `partial_fit` adds the new judgments to the fitted model and refits from where it was (the previous posterior is
# the starting point): the result is that of a fit on everything, at a fraction of the cost on large data.
# The vendor's rule, for comparison, gives the items with the fewest votes their next one.


# %%
def reveal(batch: pd.DataFrame, hidden: pd.DataFrame) -> pd.DataFrame:
    """The real votes of the suggested (item, rater) pairs."""
    return hidden.merge(batch[["pair_id", "annotator"]], on=["pair_id", "annotator"])


def round_robin(bought: pd.DataFrame, hidden: pd.DataFrame, n: int) -> pd.DataFrame:
    """One more vote for the n items with the fewest votes (random rater among those left)."""
    counts = bought.groupby("pair_id").size()
    left = hidden.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).drop_duplicates("pair_id")
    left = left.assign(n=counts.reindex(left["pair_id"]).to_numpy()).sort_values("n", kind="stable")
    return left.head(n).drop(columns="n")


curves = {"accord": [(len(start), accuracy(model))], "round-robin": [(len(start), accuracy(model))]}
bought_active, hidden_active = start, hidden
bought_uniform, hidden_uniform = start, hidden
for round_ in range(ROUNDS):
    new = reveal(suggest(model, BATCH, allowed=hidden_active[["pair_id", "annotator"]], certainty=0.999),
                 hidden_active)
    model.partial_fit(new)  # add, refit
    bought_active = pd.concat([bought_active, new])
    hidden_active = hidden_active.drop(hidden_active.reset_index().merge(new, on=["pair_id", "annotator"])["index"])
    curves["accord"].append((len(bought_active), accuracy(model)))

    more = round_robin(bought_uniform, hidden_uniform, BATCH)
    bought_uniform = pd.concat([bought_uniform, more])
    hidden_uniform = hidden_uniform.drop(more.index)
    curves["round-robin"].append((len(bought_uniform), accuracy(DawidSkene(num_samples=20).fit(bought_uniform))))
    print(f"round {round_ + 1}: {len(bought_active):,} votes  accord {curves['accord'][-1][1]:.3f}  "
          f"round-robin {curves['round-robin'][-1][1]:.3f}")

everything = DawidSkene(num_samples=20).fit(votes)
print(f"Dawid-Skene on all {len(votes):,} votes: {accuracy(everything):.3f}")

# %% [markdown]
# ## The curve
# Accuracy against gold as votes are bought. `benchmarks/active.py` runs the same replay on five crowds with three
# seeds, vote-margin uncertainty sampling as a third strategy, and the areas under the curves.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name, points in curves.items():
    x, y = zip(*points)
    ax.plot(np.array(x) / len(votes), y, marker="o", label=name)
ax.axhline(accuracy(everything), color="grey", linestyle="--", label="Dawid-Skene, all votes")
ax.set_xlabel("share of the 8,000 votes bought")
ax.set_ylabel("accuracy against expert gold")
ax.legend()
fig.tight_layout()
fig.savefig(OUTPUT / "active_annotation_curve.png", dpi=110)
