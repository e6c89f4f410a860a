"""Invariances of the rater models: what a model's output must not depend on.

The order of the judgments' rows, the names of pairs and annotators, which response is shown as A (for models without
a position-bias term), unused extra columns and crowd-kit's column names must not change a fit beyond what the
model's own randomness does. The closed-form fits are checked to 1e-6; the fits with random draws or SVI are checked
where a difference would be more than a change of seed gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accord.datasets import make_synthetic, validate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tied_groups() -> pd.DataFrame:
    """Two annotator groups with exactly as many judgments each; group "y" is the first to appear."""
    rng = np.random.default_rng(0)
    pairs = [f"p{i:02d}" for i in range(12)]
    raters = {"r1": "y", "r2": "y", "r3": "x", "r4": "x"}
    rows = [(p, r, g) for p in pairs for r, g in raters.items()]
    table = pd.DataFrame(rows, columns=["pair_id", "annotator", "annotator_group"])
    table["label"] = rng.choice(["A", "B"], size=len(table), p=[0.7, 0.3])
    return table


def test_context_reference_group_of_equal_groups_does_not_depend_on_row_order():
    """Of two groups with equal judgment counts, the reference (the group every effect is a contrast against) was
    the one whose rows came first: reversing the rows turned every group effect around."""
    from accord.models import ContextPreference

    table = _tied_groups()
    fits = [ContextPreference(group="annotator_group", topic=None, covariates=None, inference="map", max_steps=30,
                              seed=0).fit(t) for t in (table, table.iloc[::-1].reset_index(drop=True))]
    assert fits[0].design_.group_names == fits[1].design_.group_names == ("x", "y")
    assert set(fits[0].group_effects_["reference"]) == set(fits[1].group_effects_["reference"]) == {"x"}
