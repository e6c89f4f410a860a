"""``StepLabels``: the one result type every step-level aggregator returns.

Per step: the probability that the step is correct, its uncertainty and the number of labels behind it. Per
solution: the distribution of the position of the first wrong step, ``tau`` in ``0..T`` (``tau = T``: no step is
wrong), from which a process reward model's training targets and a best-of-n or first-error evaluation are read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError


@dataclass(frozen=True)
class StepLabels:
    """Soft step labels of one aggregation method.

    Attributes
    ----------
    steps
        Index ``(solution_id, step)``; columns ``p_correct`` (P(the step is correct)), ``uncertainty`` (its
        posterior standard deviation, NaN when the method has none) and ``n_judgments``.
    first_error
        Index ``(solution_id, position)`` with positions ``0..T`` for a solution of ``T`` steps; column
        ``p_first_error`` (P(the first wrong step is ``position``); ``position = T``: no step is wrong), and
        ``uncertainty`` (posterior standard deviation, NaN when the method has none).
    method
        The method's name (``"majority"``, ``"first-error"``, ...).
    """

    steps: pd.DataFrame
    first_error: pd.DataFrame
    method: str

    def __post_init__(self) -> None:
        self._check_step_order()
        for name, column in (("steps", "p_correct"), ("first_error", "p_first_error")):
            values = getattr(self, name)[column].to_numpy(dtype=float)
            if not np.isfinite(values).all() or (values < -1e-9).any() or (values > 1 + 1e-9).any():
                raise AccordError(f"StepLabels from '{self.method}': {column} outside [0, 1] or not finite")
        n_steps = self.n_steps
        positions = self.first_error.groupby(level="solution_id", sort=False).size()
        if not positions.reindex(n_steps.index).eq(n_steps + 1).all():
            raise AccordError(f"StepLabels from '{self.method}': first_error needs positions 0..T for each solution")
        totals = self.first_error["p_first_error"].groupby(level="solution_id", sort=False).sum()
        if not np.allclose(totals.to_numpy(), 1.0, atol=1e-6):
            raise AccordError(f"StepLabels from '{self.method}': P(first error) does not sum to 1 over positions")

    def _check_step_order(self) -> None:
        """Each solution's steps together, numbered 0..T-1 in order: the cleaned step dataset writes the step texts
        and labels in the rows' order (steps listed 1, 0 were written so, beside a first-error distribution read by
        position)."""
        solution = self.steps.index.get_level_values("solution_id")
        step = self.steps.index.get_level_values("step").to_numpy()
        codes = pd.factorize(solution, sort=False)[0]  # in order of first appearance: together iff non-decreasing
        apart = np.flatnonzero(np.diff(codes) < 0)
        if len(apart):
            name = _plain(solution[apart[0] + 1])
            raise AccordError(f"StepLabels from '{self.method}': solution {name!r} has its steps apart (list each "
                              "solution's steps together, numbered 0..T-1 in order)")
        n_steps = np.bincount(codes)
        off = step != np.arange(len(codes)) - (np.cumsum(n_steps) - n_steps)[codes]
        if off.any():
            code = codes[int(np.flatnonzero(off)[0])]
            listed = step[codes == code]
            shown = ", ".join(str(s) for s in listed[:8]) + (", ..." if len(listed) > 8 else "")
            name = _plain(solution[codes == code][0])
            raise AccordError(f"StepLabels from '{self.method}': solution {name!r} lists its steps as {shown} (steps "
                              "0..T-1, in order)")

    @classmethod
    def from_independent_steps(
        cls,
        p_correct: pd.Series,
        uncertainty: pd.Series,
        n_judgments: pd.Series,
        method: str,
    ) -> "StepLabels":
        """Step labels of a method that treats steps independently, with the first-error distribution they imply.

        ``P(tau = t) = (1 - p_t) prod_{s<t} p_s`` and ``P(tau = T) = prod_s p_s``: the chance that step ``t`` is
        the first wrong one if the steps were wrong independently with the given probabilities. ``p_correct`` is
        indexed by ``(solution_id, step)`` in solution order with steps ``0..T-1``; no uncertainty is given for
        these positions (NaN).
        """
        steps = pd.DataFrame({"p_correct": p_correct.to_numpy(dtype=float),
                              "uncertainty": uncertainty.to_numpy(dtype=float),
                              "n_judgments": n_judgments.to_numpy(dtype=np.int64)}, index=p_correct.index)
        return cls(steps=steps, first_error=first_error_from_independent(steps["p_correct"]), method=method)

    @property
    def p_correct(self) -> pd.Series:
        return self.steps["p_correct"]

    @property
    def solution_ids(self) -> pd.Index:
        return self.steps.index.get_level_values("solution_id").unique()

    @property
    def n_steps(self) -> pd.Series:
        """Number of steps ``T`` of each solution."""
        return self.steps.groupby(level="solution_id", sort=False).size().rename("n_steps")

    @property
    def p_all_correct(self) -> pd.Series:
        """P(no step is wrong) per solution: the last position of :attr:`first_error`."""
        last = self.first_error.groupby(level="solution_id", sort=False).tail(1)
        return pd.Series(last["p_first_error"].to_numpy(), index=last.index.get_level_values("solution_id"),
                         name="p_all_correct")

    def most_likely_first_error(self) -> pd.Series:
        """The most probable first-error position per solution (``T`` = no error; the earliest on exact ties)."""
        frame = self.first_error["p_first_error"]
        solution = frame.index.get_level_values("solution_id")
        position = frame.index.get_level_values("position").to_numpy()
        order = pd.DataFrame({"s": solution, "p": frame.to_numpy(), "t": position})
        best = order.sort_values(["p", "t"], ascending=[False, True], kind="stable").drop_duplicates("s")
        return best.set_index("s")["t"].reindex(self.solution_ids).rename("first_error")

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return (f"StepLabels(method={self.method!r}, solutions={len(self.solution_ids)}, "
                f"steps={len(self.steps)})")


def first_error_from_independent(p_correct: pd.Series) -> pd.DataFrame:
    """The ``first_error`` table implied by independent per-step probabilities (see ``from_independent_steps``).

    ``p_correct`` holds each solution's steps ``0..T-1`` next to each other, in order.
    """
    solution = p_correct.index.get_level_values("solution_id")
    codes, uniques = pd.factorize(solution, sort=False)
    if (np.diff(codes) < 0).any():
        raise AccordError("step probabilities must list each solution's steps together, in order")
    p = p_correct.to_numpy(dtype=float)
    # P(all steps before t correct) by a cumulative product within each solution (vectorized over solutions)
    survive = pd.Series(p).groupby(codes).cumprod().to_numpy()
    before = np.where(_is_first(codes), 1.0, np.roll(survive, 1))
    n_steps = np.bincount(codes)
    step_offsets = np.concatenate([[0], np.cumsum(n_steps)[:-1]])
    cell_offsets = step_offsets + np.arange(len(n_steps))  # each solution has T + 1 positions
    positions = np.arange(len(p)) - np.repeat(step_offsets, n_steps)
    values = np.empty(len(p) + len(n_steps))
    values[cell_offsets[codes] + positions] = before * (1.0 - p)
    values[cell_offsets + n_steps] = survive[step_offsets + n_steps - 1]
    index = position_index(pd.Index(uniques), n_steps)
    return pd.DataFrame({"p_first_error": values, "uncertainty": np.nan}, index=index)


def _plain(value: object) -> object:
    """An id as written (7, not numpy's np.int64(7))."""
    return value.item() if isinstance(value, np.generic) else value


def _is_first(codes: np.ndarray) -> np.ndarray:
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    return first


def position_index(solution_index: pd.Index, n_steps: np.ndarray) -> pd.MultiIndex:
    """``(solution_id, position)`` for positions ``0..T_i`` of each solution, in solution order."""
    total = n_steps + 1
    offsets = np.concatenate([[0], np.cumsum(total)[:-1]])
    position = np.arange(int(total.sum())) - np.repeat(offsets, total)
    return pd.MultiIndex.from_arrays([np.repeat(np.asarray(solution_index), total), position],
                                     names=["solution_id", "position"])
