"""Synthetic step-level data with known truth: arithmetic word problems, solutions with errors at known steps, and
raters who miss errors or flag correct steps.

Each problem is a start value and a chain of 2-6 operations told in words ("Mia has 12 marbles. She gets 7 more.
She gives 4 away. She doubles them. How many marbles does Mia have at the end?"). A solution has one step per
operation ("She gets 7 more: 12 + 7 = 19.") and a final step stating the answer. As sampled solutions do, the
candidates differ in wording: each operation step is told in one of :data:`WORDINGS` ("Then she gets 7 more:
12 + 7 = 19.", "After getting 7 more, she has: 12 + 7 = 19.", ...), drawn per step and candidate independently of
its correctness, so the right candidates of a problem agree in their arithmetic but not, as a rule, in their text
(with one fixed wording every right candidate of a problem would be the same text). Each problem gets several
candidate solutions (for best-of-n); in each candidate every step goes wrong with the problem's own per-step error
probability (harder problems fail more often), and the first wrong step ``tau`` is one of

- a *wrong operation* (``12 - 7 = 5`` where the problem says "gets 7 more"),
- an *arithmetic slip* (``12 + 7 = 18``),
- a *misstated answer* on the final step;

every later step computes correctly from the wrong value, so it is wrong in consequence (a carried mistake) and
the final answer is wrong. ``tau = T`` (the number of steps) means the solution is right.

Raters label the steps of the *labelled* candidates (the first ``labelled_per_problem`` candidates of each
training problem). A rater reads a solution in order; at each step it flags an error with probability
``sensitivity`` on the first wrong step, ``sensitivity_after`` on a step wrong in consequence and
``1 - specificity`` on a correct step; its other labels are +1, or 0 (neutral) with its ``neutral_rate``. With
``protocol="flag"`` a rater who has flagged a step labels every later step wrong; with ``protocol="stop"`` it stops
there (PRM800K's phase-2 protocol). Rater kinds: ``careful``, ``sloppy`` (misses many errors) and ``spammer``
(flags each step at its own fixed rate, whatever the truth, and does not call the steps after its flag wrong).
Everything is drawn from one seed; the raters' labels are drawn for all (solution, rater, step) cells at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError
from accord.datasets.steps.schema import ERROR_LABEL, LabelSet, validate_steps
from accord.datasets.synthetic import check_int, check_real

NAMES: tuple[tuple[str, str], ...] = (
    ("Mia", "She"), ("Leo", "He"), ("Ava", "She"), ("Omar", "He"), ("Zoe", "She"), ("Ken", "He"),
    ("Ines", "She"), ("Raj", "He"), ("Lena", "She"), ("Tom", "He"), ("Sara", "She"), ("Ivan", "He"),
)
ITEMS: tuple[str, ...] = ("marbles", "apples", "stickers", "coins", "books", "shells", "cards", "pencils")
OPERATIONS: tuple[str, ...] = ("add", "sub", "mul", "div")
_OPERATION_P = np.array([0.35, 0.30, 0.20, 0.15])
_SYMBOL = np.array(["+", "-", "*", "/"])
_SLIPS = np.array([-10, -2, -1, 1, 2, 10])
PROTOCOLS: tuple[str, ...] = ("flag", "stop")
#: How an operation step may be told: "{Pronoun} {verb phrase}: {sum}.", "Then {pronoun} {verb phrase}: {sum}.",
#: "After {gerund phrase}, {pronoun} has: {sum}." and "{Gerund phrase} gives: {sum}."
WORDINGS: tuple[str, ...] = ("plain", "then", "after", "gerund")
#: kind -> (Beta parameters of sensitivity, of specificity); spammers flag at a uniform rate in [0.1, 0.5]
RATER_KINDS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "careful": ((12.0, 2.0), (40.0, 1.5)),
    "sloppy": ((4.0, 4.0), (15.0, 2.0)),
}


@dataclass(frozen=True)
class SyntheticSteps:
    """A synthetic process-supervision set with its ground truth.

    Attributes
    ----------
    problems
        ``problem_id``, ``prompt``, ``answer``, ``n_operations``, ``split`` (``"train"`` or ``"test"``: held-out
        problems have no rater labels).
    solutions
        Every candidate: ``solution_id``, ``problem_id``, ``completions`` (list of step texts), ``n_steps`` (T),
        ``first_error`` (tau; T when the solution is right), ``error_kind`` (``"operation"``, ``"arithmetic"``,
        ``"answer"`` or ``""``), ``final_answer``, ``is_correct``, ``labelled``.
    judgments
        The raters' labels of the labelled candidates: a validated step-judgments table with ``prompt``,
        ``step_text`` and ``problem_id``.
    annotators
        Indexed by ``annotator``: ``kind``, ``sensitivity``, ``sensitivity_after``, ``specificity``,
        ``neutral_rate``, ``n_judgments`` (spammers: sensitivity = sensitivity_after = 1 - specificity = their
        flag rate), ``activity`` (relative share of the labelling work).
    """

    problems: pd.DataFrame
    solutions: pd.DataFrame
    judgments: pd.DataFrame
    annotators: pd.DataFrame
    seed: int

    def step_truth(self) -> pd.Series:
        """Whether each step of every candidate is correct, indexed by ``(solution_id, step)``."""
        n_steps = self.solutions["n_steps"].to_numpy()
        step = np.arange(n_steps.sum()) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
        tau = np.repeat(self.solutions["first_error"].to_numpy(), n_steps)
        index = pd.MultiIndex.from_arrays([np.repeat(self.solutions["solution_id"].to_numpy(), n_steps), step],
                                          names=["solution_id", "step"])
        return pd.Series(step < tau, index=index, name="correct")

    def first_error(self) -> pd.Series:
        """The true first-error position of every candidate (``n_steps`` = no error), by ``solution_id``."""
        return self.solutions.set_index("solution_id")["first_error"]


def make_synthetic_steps(
    n_problems: int = 400,
    *,
    candidates_per_problem: int = 16,
    labelled_per_problem: int = 4,
    held_out: float = 0.2,
    min_operations: int = 2,
    max_operations: int = 6,
    error_rate: float = 0.1,
    n_annotators: int = 60,
    raters_per_solution: int = 3,
    sloppy_share: float = 0.3,
    spammer_share: float = 0.1,
    labels: LabelSet = "ternary",
    protocol: str = "flag",
    seed: int = 0,
) -> SyntheticSteps:
    """Draw a synthetic process-supervision set (see the module docstring for the generative story).

    Parameters
    ----------
    n_problems, held_out
        Word problems, and the share of them (rounded) that forms the test split, which gets no rater labels.
    candidates_per_problem, labelled_per_problem
        Candidate solutions per problem (best-of-n pools), and how many of a training problem's candidates the
        raters label.
    min_operations, max_operations
        Range of the number of operations per problem; a solution has one more step (the answer).
    error_rate
        Mean per-step probability that a step goes wrong (each problem draws its own from a Beta with this mean).
    n_annotators, raters_per_solution
        The rater pool and how many distinct raters label each labelled solution (busier raters label more).
    sloppy_share, spammer_share
        Shares of sloppy raters and of spammers in the pool; the rest are careful.
    labels
        ``"ternary"`` (-1/0/+1, with neutral labels) or ``"binary"`` (0/1).
    protocol
        ``"flag"``: after its first flag a rater labels every later step wrong; ``"stop"``: it stops labelling.
    seed
        Seed of every random draw.
    """
    # counts and shares by name first: a float count or a text share failed deep in numpy (a raw TypeError)
    for name, value, minimum in (("n_problems", n_problems, 1), ("candidates_per_problem", candidates_per_problem, 1),
                                 ("labelled_per_problem", labelled_per_problem, 0),
                                 ("min_operations", min_operations, 1), ("max_operations", max_operations, 1),
                                 ("n_annotators", n_annotators, 1), ("raters_per_solution", raters_per_solution, 1),
                                 ("seed", seed, 0)):
        check_int(name, value, minimum)
    for name, value in (("held_out", held_out), ("error_rate", error_rate), ("sloppy_share", sloppy_share),
                        ("spammer_share", spammer_share)):
        check_real(name, value)
    _check_settings(n_problems, candidates_per_problem, labelled_per_problem, held_out, min_operations,
                    max_operations, error_rate, n_annotators, raters_per_solution, sloppy_share, spammer_share,
                    labels, protocol)
    rng = np.random.default_rng(seed)
    problems, ops = _problems(rng, n_problems, min_operations, max_operations, held_out)
    solutions, step_rows = _candidates(rng, problems, ops, candidates_per_problem, labelled_per_problem, error_rate)
    annotators = _annotators(rng, n_annotators, sloppy_share, spammer_share)
    judgments = _rate(rng, solutions, step_rows, problems, annotators, raters_per_solution, labels, protocol)
    annotators["n_judgments"] = judgments["annotator"].value_counts().reindex(annotators.index, fill_value=0)
    judgments = validate_steps(judgments, labels=labels, source="synthetic steps")
    return SyntheticSteps(problems=problems.drop(columns="_name"), solutions=solutions, judgments=judgments,
                          annotators=annotators, seed=seed)


# -- problems -------------------------------------------------------------------------------------------------


@dataclass
class _Operations:
    kind: np.ndarray  # [P, K] operation codes (index into OPERATIONS); -1 beyond the problem's length
    operand: np.ndarray  # [P, K]
    values: np.ndarray  # [P, K + 1] the correct running value
    n: np.ndarray  # [P] number of operations


def _problems(rng: np.random.Generator, n_problems: int, low: int, high: int,
              held_out: float) -> tuple[pd.DataFrame, _Operations]:
    n_ops = rng.integers(low, high + 1, size=n_problems)
    kind = np.full((n_problems, high), -1)
    operand = np.zeros((n_problems, high), dtype=np.int64)
    values = np.zeros((n_problems, high + 1), dtype=np.int64)
    values[:, 0] = rng.integers(5, 61, size=n_problems)
    for j in range(high):  # a loop over operation positions (at most max_operations), vectorized over problems
        v = values[:, j]
        chosen = rng.choice(4, size=n_problems, p=_OPERATION_P)
        # operands for every kind, then keep the chosen one where it is valid (else fall back to "add")
        add_x = rng.integers(2, 31, size=n_problems)
        sub_x = 1 + (rng.random(n_problems) * np.clip(np.minimum(v - 1, 30), 1, None)).astype(np.int64)
        mul_k = rng.integers(2, 4, size=n_problems)
        divisors = np.array([2, 3, 4, 5])
        valid = (v[:, None] % divisors == 0) & (v[:, None] >= 2 * divisors)
        priority = np.where(valid, rng.random((n_problems, 4)), -1.0)
        div_k = divisors[priority.argmax(axis=1)]
        ok = np.select([chosen == 1, chosen == 2, chosen == 3], [v >= 2, v <= 60, valid.any(axis=1)], True)
        chosen = np.where(ok, chosen, 0)
        x = np.choose(chosen, [add_x, sub_x, mul_k, div_k])
        result = np.choose(chosen, [v + x, v - x, v * x, v // np.maximum(x, 1)])
        active = j < n_ops
        kind[:, j] = np.where(active, chosen, -1)
        operand[:, j] = np.where(active, x, 0)
        values[:, j + 1] = np.where(active, result, v)
    names = rng.integers(0, len(NAMES), size=n_problems)
    items = rng.integers(0, len(ITEMS), size=n_problems)
    test = np.zeros(n_problems, dtype=bool)
    test[rng.permutation(n_problems)[: int(round(held_out * n_problems))]] = True
    prompts = []
    for p in range(n_problems):  # text assembly: one string per problem
        name, pronoun = NAMES[names[p]]
        item = ITEMS[items[p]]
        sentences = [f"{name} has {values[p, 0]} {item}."]
        sentences += [f"{pronoun} {_phrase(kind[p, j], operand[p, j])}." for j in range(n_ops[p])]
        sentences.append(f"How many {item} does {name} have at the end?")
        prompts.append(" ".join(sentences))
    problem_ids = pd.Series(np.arange(n_problems)).map("p{:05d}".format).to_numpy()
    frame = pd.DataFrame({
        "problem_id": problem_ids,
        "prompt": prompts,
        "answer": values[np.arange(n_problems), n_ops],
        "n_operations": n_ops,
        "split": np.where(test, "test", "train"),
        "_name": names,
    })
    return frame, _Operations(kind=kind, operand=operand, values=values, n=n_ops)


def _phrase(kind: int, x: int) -> str:
    if kind == 0:
        return f"gets {x} more"
    if kind == 1:
        return f"gives {x} away"
    if kind == 2:
        return "doubles them" if x == 2 else "triples them"
    return f"splits them into {x} equal piles and keeps one pile"


# -- candidate solutions --------------------------------------------------------------------------------------


def _candidates(rng: np.random.Generator, problems: pd.DataFrame, ops: _Operations, n_candidates: int,
                n_labelled: int, error_rate: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_problems, max_ops = ops.kind.shape
    problem = np.repeat(np.arange(n_problems), n_candidates)
    n = len(problem)
    n_ops = ops.n[problem]
    n_steps = n_ops + 1
    # per-problem step error probability: Beta(2, b) with mean error_rate
    hazard = rng.beta(2.0, 2.0 / error_rate - 2.0, size=n_problems)[problem]
    fails = (rng.random((n, max_ops + 1)) < hazard[:, None]) & (np.arange(max_ops + 1) < n_steps[:, None])
    tau = np.where(fails.any(axis=1), fails.argmax(axis=1), n_steps)
    wrong_op = rng.random(n) < 0.5
    slip = rng.choice(_SLIPS, size=n)

    kind = ops.kind[problem]
    operand = ops.operand[problem]
    shown_kind = kind.copy()
    swapped_at_tau = np.zeros(n, dtype=bool)
    values = np.zeros((n, max_ops + 1))
    values[:, 0] = ops.values[problem, 0]
    for j in range(max_ops):  # at most max_operations passes, vectorized over candidates
        v = values[:, j]
        x = operand[:, j].astype(float)
        right = _apply(kind[:, j], v, x)
        swapped = np.choose(np.maximum(kind[:, j], 0), [1, 0, 0, 2])  # add<->sub, mul->add, div->mul
        as_swapped = _apply(swapped, v, x)
        here = (tau == j) & (j < n_ops)
        use_swap = here & wrong_op & (as_swapped != right)
        swapped_at_tau |= use_swap
        value = np.where(use_swap, as_swapped, np.where(here & ~use_swap, right + slip, right))
        shown_kind[:, j] = np.where(use_swap, swapped, kind[:, j])
        values[:, j + 1] = np.where(j < n_ops, np.round(value, 2), v)  # carried as written: two decimals
    final = values[np.arange(n), n_ops]
    stated = np.where(tau == n_ops, final + slip, final)
    error_kind = np.select([tau == n_steps, tau == n_ops, swapped_at_tau], ["", "answer", "operation"], "arithmetic")
    answer = problems["answer"].to_numpy()[problem]
    pronoun = np.array([p for _, p in NAMES])[problems["_name"].to_numpy()[problem]]

    # one row per step: its text
    row = np.repeat(np.arange(n), n_steps)
    step = np.arange(len(row)) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
    is_answer = step == n_ops[row]
    j = np.minimum(step, max_ops - 1)
    # the wording of each step, from a child generator so that every other draw of the seed is unchanged
    wording = rng.spawn(1)[0].integers(0, len(WORDINGS), size=len(row))
    texts = _step_texts(pronoun[row], kind[row, j], shown_kind[row, j], operand[row, j], values[row, j],
                        values[row, j + 1], stated[row], is_answer, wording)
    candidate = np.tile(np.arange(n_candidates), n_problems)
    problem_ids = problems["problem_id"].to_numpy()[problem]
    solution_ids = problem_ids + pd.Series(candidate).map("-c{:02d}".format).to_numpy()
    labelled = (candidate < n_labelled) & (problems["split"].to_numpy()[problem] == "train")
    completions = pd.Series(texts).groupby(row).agg(list).to_numpy()
    solutions = pd.DataFrame({
        "solution_id": solution_ids,
        "problem_id": problem_ids,
        "completions": completions,
        "n_steps": n_steps,
        "first_error": tau,
        "error_kind": error_kind,
        "final_answer": stated,
        "is_correct": np.isclose(stated, answer),
        "labelled": labelled,
    })
    steps = pd.DataFrame({"row": row, "step": step, "step_text": texts})
    return solutions, steps


def _apply(kind: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.choose(np.maximum(kind, 0), [v + x, v - x, v * x, v / np.maximum(x, 1)])


def _number(values: np.ndarray) -> np.ndarray:
    """Integers without a decimal point, other values with at most two decimals."""
    rounded = np.round(values, 2)
    integral = rounded == np.round(rounded)
    as_int = pd.Series(np.round(rounded).astype(np.int64)).astype(str).to_numpy()
    as_float = pd.Series(rounded).map("{:g}".format).to_numpy()
    return np.where(integral, as_int, as_float)


def _step_texts(pronoun: np.ndarray, kind: np.ndarray, shown: np.ndarray, operand: np.ndarray, before: np.ndarray,
                after: np.ndarray, stated: np.ndarray, is_answer: np.ndarray, wording: np.ndarray) -> np.ndarray:
    x = pd.Series(operand).astype(str)
    n = len(x)
    cases = [kind == 0, kind == 1, (kind == 2) & (operand == 2), kind == 2, np.ones(n, dtype=bool)]
    phrase = pd.Series(np.select(cases, [
        ("gets " + x + " more").to_numpy(), ("gives " + x + " away").to_numpy(), np.full(n, "doubles them"),
        np.full(n, "triples them"), ("keeps one of " + x + " equal piles").to_numpy()]))
    gerund = pd.Series(np.select(cases, [
        ("getting " + x + " more").to_numpy(), ("giving " + x + " away").to_numpy(), np.full(n, "doubling them"),
        np.full(n, "tripling them"), ("keeping one of " + x + " equal piles").to_numpy()]))
    sum_text = (pd.Series(_number(before)) + " " + pd.Series(_SYMBOL[np.maximum(shown, 0)]) + " " + x + " = "
                + pd.Series(_number(after)))
    subject = pd.Series(pronoun)
    lower = subject.str.lower()
    lead = pd.Series(np.select([wording == 0, wording == 1, wording == 2], [
        (subject + " " + phrase).to_numpy(), ("Then " + lower + " " + phrase).to_numpy(),
        ("After " + gerund + ", " + lower + " has").to_numpy()], (gerund.str.capitalize() + " gives").to_numpy()))
    op_text = lead + ": " + sum_text + "."
    answer_text = "The answer is " + pd.Series(_number(stated)) + "."
    return np.where(is_answer, answer_text, op_text)


# -- raters ---------------------------------------------------------------------------------------------------


def _annotators(rng: np.random.Generator, n: int, sloppy_share: float, spammer_share: float) -> pd.DataFrame:
    n_spam = int(round(spammer_share * n))
    n_sloppy = int(round(sloppy_share * n))
    kind = np.array(["careful"] * (n - n_spam - n_sloppy) + ["sloppy"] * n_sloppy + ["spammer"] * n_spam)
    kind = kind[rng.permutation(n)]
    sensitivity = np.empty(n)
    specificity = np.empty(n)
    for name, ((a_sens, b_sens), (a_spec, b_spec)) in RATER_KINDS.items():
        mask = kind == name
        sensitivity[mask] = rng.beta(a_sens, b_sens, size=mask.sum())
        specificity[mask] = rng.beta(a_spec, b_spec, size=mask.sum())
    spam = kind == "spammer"
    flag_rate = rng.uniform(0.1, 0.5, size=n)
    sensitivity[spam] = flag_rate[spam]
    specificity[spam] = 1.0 - flag_rate[spam]
    after = np.where(spam, flag_rate, sensitivity * rng.uniform(0.5, 1.0, size=n))
    ids = pd.Series(np.arange(n)).map("r{:03d}".format).to_numpy()
    return pd.DataFrame({
        "kind": kind,
        "sensitivity": sensitivity,
        "sensitivity_after": after,
        "specificity": specificity,
        "neutral_rate": rng.beta(1.0, 8.0, size=n),
        "activity": rng.gamma(2.0, 1.0, size=n),
    }, index=pd.Index(ids, name="annotator"))


def _rate(rng: np.random.Generator, solutions: pd.DataFrame, step_rows: pd.DataFrame, problems: pd.DataFrame,
          annotators: pd.DataFrame, k: int, labels: str, protocol: str) -> pd.DataFrame:
    labelled = np.flatnonzero(solutions["labelled"].to_numpy())
    if len(labelled) == 0:
        raise AccordError("no labelled solutions: raise labelled_per_problem or lower held_out")
    n_workers = len(annotators)
    # k distinct raters per solution, busier raters more often: Gumbel top-k on log activity
    keys = np.log(annotators["activity"].to_numpy())[None, :] + rng.gumbel(size=(len(labelled), n_workers))
    raters = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    solution = np.repeat(labelled, k)
    worker = raters.ravel()
    n_steps = solutions["n_steps"].to_numpy()[solution]
    tau = solutions["first_error"].to_numpy()[solution]
    max_steps = int(n_steps.max())
    step = np.arange(max_steps)[None, :]
    active = step < n_steps[:, None]
    sens = annotators["sensitivity"].to_numpy()[worker][:, None]
    after = annotators["sensitivity_after"].to_numpy()[worker][:, None]
    spec = annotators["specificity"].to_numpy()[worker][:, None]
    p_flag = np.where(step < tau[:, None], 1.0 - spec, np.where(step == tau[:, None], sens, after))
    flag = (rng.random(p_flag.shape) < p_flag) & active
    spammer = (annotators["kind"].to_numpy() == "spammer")[worker]
    first_flag = np.where(flag.any(axis=1), flag.argmax(axis=1), max_steps)
    consistent = step >= first_flag[:, None]  # a rater who flagged a step calls every later step wrong
    says_wrong = np.where(spammer[:, None], flag, flag | consistent)
    keep = active & ((step <= first_flag[:, None]) | (protocol == "flag"))
    neutral = rng.random(p_flag.shape) < annotators["neutral_rate"].to_numpy()[worker][:, None]
    if labels == "ternary":
        value = np.where(says_wrong, -1, np.where(neutral, 0, 1))
    else:
        value = np.where(says_wrong, ERROR_LABEL["binary"], 1)
    pair, position = np.nonzero(keep)
    sol = solution[pair]
    text_offsets = np.cumsum(solutions["n_steps"].to_numpy()) - solutions["n_steps"].to_numpy()
    problem_of = pd.Index(problems["problem_id"]).get_indexer(solutions["problem_id"].to_numpy()[sol])
    return pd.DataFrame({
        "solution_id": solutions["solution_id"].to_numpy()[sol],
        "step": position,
        "annotator": annotators.index.to_numpy()[worker[pair]],
        "label": value[pair, position],
        "prompt": problems["prompt"].to_numpy()[problem_of],
        "step_text": step_rows["step_text"].to_numpy()[text_offsets[sol] + position],
        "problem_id": solutions["problem_id"].to_numpy()[sol],
    })


def _check_settings(n_problems: int, candidates: int, labelled: int, held_out: float, low: int, high: int,
                    error_rate: float, n_annotators: int, k: int, sloppy: float, spam: float, labels: str,
                    protocol: str) -> None:
    if n_problems < 1 or candidates < 1 or not 0 <= labelled <= candidates:
        raise AccordError("need n_problems >= 1, candidates_per_problem >= 1 and 0 <= labelled_per_problem <= "
                          "candidates_per_problem")
    if not 0 <= held_out < 1:
        raise AccordError(f"held_out must be in [0, 1), got {held_out}")
    if not 1 <= low <= high:
        raise AccordError(f"need 1 <= min_operations <= max_operations, got {low} and {high}")
    if not 0 < error_rate < 1:
        raise AccordError(f"error_rate must be in (0, 1), got {error_rate}")
    if not 1 <= k <= n_annotators:
        raise AccordError(f"need 1 <= raters_per_solution <= n_annotators, got {k} and {n_annotators}")
    if not (0 <= sloppy and 0 <= spam and sloppy + spam <= 1):  # so written that a NaN share fails it too
        raise AccordError(f"sloppy_share and spammer_share must be >= 0 and sum to at most 1, got {sloppy} and {spam}")
    if labels not in ("ternary", "binary"):
        raise AccordError(f"labels must be 'ternary' or 'binary', got {labels!r}")
    if protocol not in PROTOCOLS:
        raise AccordError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
