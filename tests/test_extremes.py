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
from accord.models import DawidSkene, HierarchicalDawidSkene
from accord.models._vb import fit_population_prior
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


def _nearly_all_one_class(n_pairs: int = 300, seed: int = 0) -> pd.DataFrame:
    """Perfect raters, three per pair, every pair A but one, which a single rater calls B."""
    rng = np.random.default_rng(seed)
    raters = [f"w{j}" for j in np.argsort(rng.random((n_pairs, 8)), axis=1)[:, :3].ravel()]
    labels = np.full(3 * n_pairs, "A", dtype=object)
    labels[0] = "B"
    return pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(n_pairs)], 3), "annotator": raters,
                         "label": labels})


@pytest.mark.parametrize("model", [DawidSkene(empirical_prior="full"), HierarchicalDawidSkene(inference="vb")],
                         ids=["dawid-skene-full-prior", "hierarchical-vb"])
def test_a_rare_class_does_not_turn_unanimous_pairs_into_coin_flips(model):
    """299 of 300 pairs are A by every vote: the full population prior's row of the rare class B crept, one VB-EM
    step at a time, to 'raters answer A whatever the truth' ([1000, 2.4]), the class prior to 0.52 / 0.48, and every
    unanimous pair ended at P(A) = 0.53 after 2,000 unconverged iterations. A row of the fitted prior keeps its
    diagonal the largest value, as the evidence step's rows do."""
    table = _nearly_all_one_class()
    fitted = model.fit(table)
    probs = fitted.soft_labels_.probs
    unanimous = table.groupby("pair_id").label.agg(lambda votes: (votes == "A").all()).reindex(probs.index)
    assert (probs.loc[unanimous, "A"] > 0.99).all(), probs.loc[unanimous, "A"].min()
    assert fitted.converged_


@QUICK
@given(st.integers(2, 4), st.integers(1, 6), st.floats(0.0, 0.2), st.integers(0, 2**16))
def test_the_population_prior_step_keeps_each_row_diagonal_dominant(k, n_raters, rare, seed):
    """Whatever the expected counts (here: raters who see the rare classes seldom and answer the common one), a
    starting prior whose rows have their largest value on the diagonal keeps it so."""
    rng = np.random.default_rng(seed)
    counts = rng.gamma(0.5, 1.0, (n_raters, k, k))
    counts[:, 1:, 0] += 5.0  # the rare classes' rows lean towards the common class's label
    counts[:, 1:] *= rare
    prior = torch.full((k, k), 1.0, dtype=torch.float64) + torch.eye(k, dtype=torch.float64)
    new = fit_population_prior(torch.as_tensor(counts) + prior, prior)
    assert (new.diagonal()[:, None] >= new).all()
