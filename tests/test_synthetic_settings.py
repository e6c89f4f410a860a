"""The synthetic generators refuse a setting they cannot honour with one AccordError naming it.

Each case here failed on the old main: a float count was truncated silently or failed deep in numpy (a raw
TypeError), an error named another setting than the one given, a text where a number belongs was a raw ValueError,
and a NaN attribute weight made an attribute's every rating the lowest grade.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets import make_synthetic, make_synthetic_attributes, make_synthetic_steps
from accord.datasets.errors import AccordError

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# what is not a count: fractions, texts, bools
NOT_A_COUNT = st.one_of(st.floats(0.5, 50.0).filter(lambda v: v != int(v)), st.sampled_from(["3", "5", True]))


def refused_naming(name: str, make, **kwargs) -> None:
    with pytest.raises(AccordError, match=rf"^{re.escape(name)}\b") as excinfo:
        make(**kwargs)
    assert "\n" not in str(excinfo.value)


@FAST
@given(value=NOT_A_COUNT, name=st.sampled_from(["n_problems", "candidates_per_problem", "labelled_per_problem",
                                                "min_operations", "max_operations", "n_annotators",
                                                "raters_per_solution", "seed"]))
def test_steps_counts_must_be_integers(value, name: str) -> None:
    refused_naming(name, make_synthetic_steps, **{"n_problems": 6, name: value})


def test_steps_seed_must_not_be_negative() -> None:
    refused_naming("seed", make_synthetic_steps, n_problems=6, seed=-1)


@pytest.mark.parametrize("name", ["held_out", "error_rate", "sloppy_share", "spammer_share"])
def test_steps_shares_must_be_numbers(name: str) -> None:
    refused_naming(name, make_synthetic_steps, **{"n_problems": 6, name: "0.1"})


@FAST
@given(value=NOT_A_COUNT)
def test_attributes_responses_per_prompt_is_named(value) -> None:
    # was: "n_pairs must be an integer >= 1, got 4.0", a setting the caller never gave
    refused_naming("n_responses_per_prompt", make_synthetic_attributes, n_responses=10, n_raters=5,
                   n_responses_per_prompt=value)


@FAST
@given(low=st.floats(1.1, 2.9), high=st.integers(3, 5))
def test_attributes_fractional_raters_per_response_is_refused(low: float, high: int) -> None:
    # was: truncated to int(low), drawing a count nobody asked for
    refused_naming("raters_per_response", make_synthetic_attributes, n_responses=10, n_raters=5,
                   raters_per_response=(low, high))


@pytest.mark.parametrize("scale", [(0.5, 4), (0, 4.5), ("0", "4"), (True, 4)])
def test_attributes_scale_must_be_integers(scale) -> None:
    # was: (0.5, 4) rated on 0..4, silently
    refused_naming("scale", make_synthetic_attributes, n_responses=10, n_raters=5, scale=scale)


@pytest.mark.parametrize("name", ["residual_sd", "noise", "activity_skew", "biased_share", "noisy_share",
                                  "missing_rate"])
def test_attributes_numbers_must_be_numbers(name: str) -> None:
    refused_naming(name, make_synthetic_attributes, **{"n_responses": 10, "n_raters": 5, name: "x"})


def test_attributes_seed_must_not_be_negative() -> None:
    refused_naming("seed", make_synthetic_attributes, n_responses=10, n_raters=5, seed=-1)


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), "1"])
def test_attributes_weights_must_be_finite_numbers(weight) -> None:
    with pytest.raises(AccordError, match="attribute 'x': feature weights must be finite numbers"):
        make_synthetic_attributes(n_responses=10, n_raters=5, attributes={"x": {"n_facts": weight}})


@pytest.mark.parametrize("kwargs, name", [
    ({"annotator_mix": "reliable"}, "annotator_mix"),
    ({"annotator_mix": {"reliable": "0.8", "spammer": 0.2}}, "annotator_mix"),
    ({"n_groups": 2, "group_shares": ["a", "b"]}, "group_shares"),
])
def test_synthetic_texts_where_numbers_belong_are_named(kwargs: dict, name: str) -> None:
    refused_naming(name, make_synthetic, n_pairs=20, n_annotators=10, with_text=False, **kwargs)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_held_out_prompts_and_candidates_name_a_bad_seed(seed) -> None:
    # was: numpy's raw "expected non-negative integer" / "seed must be integer"
    data = make_synthetic(n_pairs=30, n_annotators=10, with_text=False)
    refused_naming("seed", data.held_out_prompts, seed=seed)
    refused_naming("seed", data.sample_candidates, prompt_ids=["prompt0"], n=2, seed=seed)


def test_held_out_share_must_be_a_number() -> None:
    data = make_synthetic(n_pairs=30, n_annotators=10, with_text=False)
    refused_naming("share", data.held_out_prompts, share="0.2")
