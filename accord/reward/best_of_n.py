r"""Best-of-n against a reward model: the expected true utility of the candidate a proxy reward picks among ``n``.

For ``N`` candidates with proxy rewards and true utilities, choose ``n`` of them at random (without replacement)
and keep the one with the highest proxy reward. Candidate ``i``, of proxy rank ``r_i`` (1 = lowest), is the one kept
with probability :math:`\binom{r_i - 1}{n - 1} / \binom{N}{n}`, so the expected true utility of best-of-n is the
exact, unbiased average over every n-subset of the pool (the estimator of Nakano et al. 2021 and Gao et al. 2023),
with no Monte Carlo noise from drawing subsets. The KL divergence of the best-of-n distribution from the sampling
distribution is :math:`\log n - (n - 1)/n` (Stiennon et al. 2020).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np

from accord.datasets.errors import AccordError


def best_of_n_kl(n: int) -> float:
    """KL (nats) of best-of-n from the sampling distribution: ``log n - (n - 1) / n``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise AccordError(f"n must be a whole number >= 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_of_n_expectation(proxy: np.ndarray, utility: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    """Expected ``utility`` of the highest-``proxy`` candidate among ``n`` drawn without replacement from the pool,
    for each ``n`` in ``ns``; a tie for the highest proxy is broken at random (each tied candidate equally likely),
    so the result does not depend on the order of the pool and a constant proxy is no better than a random pick.
    Returns one value per n, in the order of ``ns`` (for a single n, pass ``[n]``)."""
    from scipy.special import gammaln

    proxy, utility = np.asarray(proxy, dtype=float), np.asarray(utility, dtype=float)
    if proxy.shape != utility.shape or proxy.ndim != 1 or len(proxy) == 0:
        raise AccordError(f"proxy and utility must be two 1-d arrays of one length, got {proxy.shape} and "
                          f"{utility.shape}")
    for name, values in (("proxy", proxy), ("utility", utility)):
        if not np.isfinite(values).all():
            raise AccordError(f"{name}: candidate {int(np.flatnonzero(~np.isfinite(values))[0])} has no finite value")
    big_n = len(proxy)
    if isinstance(ns, (str, bytes)) or not isinstance(ns, Iterable) or np.ndim(ns) == 0 and hasattr(ns, "shape"):
        # one value per n in ns: a bare n (or a string) is no list of them and failed with list()'s TypeError
        raise AccordError(f"ns must be a sequence of candidate counts, one result per n (e.g. [{ns}]), not "
                          f"the {type(ns).__name__} {ns!r}")
    ns = list(ns)  # a generator was used up by the checks below, leaving nothing to compute
    if any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in ns):
        raise AccordError(f"every n must be a whole number, got {list(ns)}")
    if any(not 1 <= n <= big_n for n in ns):
        raise AccordError(f"every n must be in 1..{big_n} (the pool), got {list(ns)}")
    order = np.argsort(proxy, kind="stable")
    u = utility[order]
    # the candidates of one proxy value fill a run of ranks in random order: each rank of the run then holds the
    # run's mean utility (breaking ties by position made the result depend on the order of the rows)
    ranked = proxy[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    sizes = np.diff(np.r_[starts, big_n])
    u = np.repeat(np.add.reduceat(u, starts) / sizes, sizes)
    rank = np.arange(1, big_n + 1)
    log_total = gammaln(big_n + 1)
    out = []
    for n in ns:  # a handful of n: the work per n is vectorised over the pool
        r = rank[n - 1:]
        log_p = gammaln(r) - gammaln(n) - gammaln(r - n + 1) - (log_total - gammaln(n + 1) - gammaln(big_n - n + 1))
        out.append(float((np.exp(log_p) * u[n - 1:]).sum()))
    return np.array(out)
