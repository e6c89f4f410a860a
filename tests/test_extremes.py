"""Valid input at numerical extremes: raters that never err, pairs judged by every rater the same way, draws that
saturate in float32. Every output stays what its definition says: probabilities in [0, 1], finite, NaN-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets import validate
from accord.models import DawidSkene
from accord.models.base import confusion_columns

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = settings(max_examples=25, deadline=None, derandomize=True, database=None)

PROBABILITY_COLUMNS = ("reliability", "reliability_lower", "reliability_upper", "spam", "spam_lower", "spam_upper")


def _float32_simplex(generator: torch.Generator, shape: tuple[int, ...], concentration: float) -> torch.Tensor:
    """Dirichlet-like draws normalised in float32, as the models' draws are (their sums miss 1 by an ulp or two)."""
    gamma = torch.distributions.Gamma(torch.tensor(concentration), torch.tensor(1.0))
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        values = gamma.sample(shape).double().clamp_min(1e-30).float()
    return values / values.sum(-1, keepdim=True)


@QUICK
@given(st.integers(2, 7), st.sampled_from([0.01, 0.1, 1.0, 10.0]), st.booleans(), st.integers(0, 2**16))
def test_annotator_probabilities_stay_in_the_unit_interval_under_float32_draws(k, concentration, perfect, seed):
    """``reliability`` (``sum_k pi_k theta[k, k]``) and ``spam`` are probabilities; with float32 draws of ``pi``
    summing to a hair above 1 a perfect rater's reliability came out 1 + 1.2e-7."""
    generator = torch.Generator().manual_seed(seed)
    draws, raters = 64, 5
    pi = _float32_simplex(generator, (draws, k), concentration)
    theta = (torch.eye(k).expand(draws, raters, k, k).contiguous() if perfect
             else _float32_simplex(generator, (draws, raters, k, k), concentration))
    columns = confusion_columns(theta, pi, position_bias=k >= 2)
    for name in PROBABILITY_COLUMNS:
        assert np.isfinite(columns[name]).all(), name
        assert ((columns[name] >= 0.0) & (columns[name] <= 1.0)).all(), (name, columns[name].min(), columns[name].max())


def test_raters_who_all_give_the_lowest_grade_have_reliabilities_in_the_unit_interval():
    """Every rater of a graded table gives the lowest grade: Dawid-Skene's raters are perfect, and their reliability
    interval reached 1 + 1.2e-7 (the float32 class-prior draws summed above 1)."""
    rng = np.random.default_rng(0)
    pairs = np.repeat([f"p{i}" for i in range(200)], 3)
    raters = [f"w{j}" for j in np.argsort(rng.random((200, 15)), axis=1)[:, :3].ravel()]
    table = validate(pd.DataFrame({"pair_id": pairs, "annotator": raters, "label": -3}), scale=3)
    annotators = DawidSkene(seed=0).fit(table).annotators_
    for name in PROBABILITY_COLUMNS:
        values = annotators[name].to_numpy()
        assert np.isfinite(values).all() and ((values >= 0.0) & (values <= 1.0)).all(), (name, values.max())
