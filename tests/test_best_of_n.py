"""Best-of-n's expected true utility, exact over every n-subset, against brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets import AccordError
from accord.reward.best_of_n import best_of_n_expectation, best_of_n_kl


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_expectation_equals_the_average_over_every_subset(size, seed):
    rng = np.random.default_rng(seed)
    proxy, utility = rng.normal(size=size), rng.normal(size=size)
    ns = list(range(1, size + 1))
    expected = [np.mean([utility[list(s)][np.argmax(proxy[list(s)])] for s in itertools.combinations(range(size), n)])
                for n in ns]
    np.testing.assert_allclose(best_of_n_expectation(proxy, utility, ns), expected, rtol=1e-9, atol=1e-12)


def test_limits_and_bad_input():
    utility = np.arange(10.0)
    assert best_of_n_expectation(utility, utility, [1])[0] == pytest.approx(utility.mean())
    assert best_of_n_expectation(utility, utility, [10])[0] == pytest.approx(9.0)
    assert best_of_n_expectation(-utility, utility, [10])[0] == pytest.approx(0.0)  # a proxy that is wrong
    assert best_of_n_kl(1) == 0.0 and best_of_n_kl(256) == pytest.approx(math.log(256) - 255 / 256)
    # ns as a generator (a Sequence is documented; an iterable is what people pass) was used up by the checks
    np.testing.assert_allclose(best_of_n_expectation(utility, utility, (2 ** k for k in range(3))),
                               best_of_n_expectation(utility, utility, [1, 2, 4]))
    with pytest.raises(AccordError, match="1..3"):
        best_of_n_expectation(np.ones(3), np.ones(3), [4])
    with pytest.raises(AccordError, match="one length"):
        best_of_n_expectation(np.ones(3), np.ones(2), [1])


def test_a_missing_reward_or_a_fractional_n_is_refused():
    # argsort puts NaN last, so a candidate the proxy could not score counted as the best one
    with pytest.raises(AccordError, match="proxy"):
        best_of_n_expectation(np.array([1.0, np.nan, 0.0]), np.array([0.0, 5.0, 1.0]), [3])
    with pytest.raises(AccordError, match="utility"):
        best_of_n_expectation(np.array([1.0, 2.0, 0.0]), np.array([0.0, np.nan, 1.0]), [1])
    with pytest.raises(AccordError, match="whole"):  # was a TypeError from slicing
        best_of_n_expectation(np.arange(3.0), np.arange(3.0), [2.5])
    with pytest.raises(AccordError, match="whole"):
        best_of_n_kl(1.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(-5, 5)), min_size=1, max_size=7), st.randoms())
def test_tied_proxies_are_broken_at_random_not_by_position(rows, shuffle):
    # was: ties went to the later row, so a constant proxy "beat" a random pick when the good candidates came last
    proxy, utility = (np.array(column, dtype=float) for column in zip(*rows))
    size = len(proxy)
    ns = list(range(1, size + 1))

    def pick(subset: tuple[int, ...]) -> float:  # mean utility of the subset's candidates tied for the top proxy
        top = [i for i in subset if proxy[i] == max(proxy[list(subset)])]
        return float(np.mean(utility[top]))

    expected = [np.mean([pick(s) for s in itertools.combinations(range(size), n)]) for n in ns]
    np.testing.assert_allclose(best_of_n_expectation(proxy, utility, ns), expected, rtol=1e-9, atol=1e-9)
    permutation = list(range(size))
    shuffle.shuffle(permutation)
    np.testing.assert_allclose(best_of_n_expectation(proxy[permutation], utility[permutation], ns), expected,
                               rtol=1e-9, atol=1e-9)


def test_a_constant_proxy_is_a_random_pick():
    utility = np.arange(6.0)
    np.testing.assert_allclose(best_of_n_expectation(np.zeros(6), utility, [1, 3, 6]), utility.mean())


@given(st.integers(1, 6), st.sampled_from([int, np.int64, np.array, str]))
@settings(max_examples=20, deadline=None)
def test_a_bare_n_is_one_error_saying_ns_is_a_sequence(n, kind):
    """The docstring gives one result per n in ``ns``; a bare n (best_of_n_expectation(p, u, 4)) failed with
    list()'s TypeError ('int' object is not iterable), a numeric string was read digit by digit. Now it is one
    error naming ns, and the same n in a list is computed."""
    proxy = np.arange(6.0)
    with pytest.raises(AccordError, match=r"ns must be a sequence of candidate counts.*\[" + str(n)):
        best_of_n_expectation(proxy, proxy, kind(n))
    assert best_of_n_expectation(proxy, proxy, [n]).shape == (1,)
