"""The step-judgments table: validation (one clear error naming column and row), encoding, StepLabels, and the
synthetic testbed's ground truth."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets import AccordError, ValidationError
from accord.datasets.steps import (
    StepLabels,
    encode_steps,
    make_synthetic_steps,
    step_table_info,
    validate_steps,
)
from accord.datasets.steps.labels import first_error_from_independent
from accord.step_metrics import best_of_n

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def small_table() -> pd.DataFrame:
    """Two solutions (3 and 2 steps), two raters; rater r2 stops after flagging step 1 of s1."""
    return pd.DataFrame({
        "solution_id": ["s1", "s1", "s1", "s1", "s1", "s2", "s2"],
        "step": [0, 1, 2, 0, 1, 0, 1],
        "annotator": ["r1", "r1", "r1", "r2", "r2", "r1", "r1"],
        "label": [1, 0, -1, 1, -1, 1, 1],
        "step_text": ["a", "b", "c", "a", "b", "x", "y"],
        "prompt": ["P1"] * 5 + ["P2"] * 2,
    })


def test_valid_table_is_kept_and_its_label_set_recorded() -> None:
    table = validate_steps(small_table())
    assert table.attrs["accord_steps"] == {"labels": "ternary"}
    assert len(table) == 7 and table["step"].dtype == np.int64
    binary = small_table().assign(label=[1, 1, 0, 1, 0, 1, 1])
    assert validate_steps(binary).attrs["accord_steps"]["labels"] == "binary"
    assert validate_steps(binary, labels="ternary").attrs["accord_steps"]["labels"] == "ternary"
    info = step_table_info(small_table())
    assert info["n_solutions"] == 2 and info["n_steps"] == 5 and info["label_counts"] == {-1: 2, 0: 1, 1: 4}


def test_encoding_lays_steps_out_flat() -> None:
    encoded = encode_steps(small_table())
    assert encoded.n_steps.tolist() == [3, 2]
    assert encoded.error_code == 0 and encoded.label_values == (-1, 0, 1)
    assert encoded.step_cells.tolist() == [0, 1, 2, 0, 1, 3, 4]
    assert list(encoded.step_index()) == [("s1", 0), ("s1", 1), ("s1", 2), ("s2", 0), ("s2", 1)]
    assert encoded.flags.tolist() == [False, False, True, False, True, False, False]


@pytest.mark.parametrize(
    "change, column, row, fragment",
    [
        (lambda t: t.assign(step=t["step"] + 1), "step", 0, "first step is 1"),
        (lambda t: t.drop(index=[1, 4]).reset_index(drop=True), "step", 1, "step 1 is missing"),
        (lambda t: t.assign(label=[1, 0, 2, 1, -1, 1, 1]), "label", 2, "outside the declared set"),
        (lambda t: t.assign(step=[0, 1, 2.5, 0, 1, 0, 1]), "step", 2, "non-negative integer"),
        (lambda t: t.assign(step=[0, 1, 2, 0, -1, 0, 1]), "step", 4, "non-negative integer"),
        (lambda t: t.assign(label=[1, 0, "bad", 1, -1, 1, 1]), "label", 2, "not text"),
        (lambda t: t.assign(label=[1, 0, None, 1, -1, 1, 1]), "label", 2, "missing label"),
        (lambda t: t.assign(annotator=["r1", None, "r1", "r2", "r2", "r1", "r1"]), "annotator", 1, "missing id"),
        (lambda t: t.assign(step_text=["a", "b", "c", "a", "B", "x", "y"]), "step_text", 4, "two different texts"),
        (lambda t: t.assign(prompt=["P1"] * 4 + ["P9", "P2", "P2"]), "prompt", 4, "two different prompts"),
        # best-of-n groups solutions by problem_id: the cleaned dataset kept the first of two, silently
        (lambda t: t.assign(problem_id=["q1"] * 4 + ["q2", "q3", "q3"]), "problem_id", 4,
         "two different problem_ids"),
        (lambda t: pd.concat([t, t.iloc[[3]]], ignore_index=True), "annotator", 7, "more than once"),
        (lambda t: t.drop(columns="step"), "step", None, "missing required column"),
    ],
)
def test_bad_input_gives_one_error_naming_column_and_row(change, column, row, fragment) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_steps(change(small_table()), source="steps.csv")
    message = str(caught.value)
    assert "\n" not in message and "file steps.csv" in message and f"column '{column}'" in message
    assert fragment in message
    if row is not None:
        assert f"row {row}" in message


@pytest.mark.parametrize("policy", ["first", "last"])
@pytest.mark.parametrize("conflict, column", [({"step_text": "B"}, "step_text"), ({"step": 4}, "step")])
def test_an_error_after_dropping_repeated_labels_names_the_input_row(policy: str, conflict: dict,
                                                                      column: str) -> None:
    # the rows were renumbered once the repeats were dropped: the error named a row one up from the one at fault
    table = small_table()
    table = pd.concat([table.iloc[[0]], table], ignore_index=True)  # rater r1 labelled step 0 of s1 twice
    for key, value in conflict.items():
        table.loc[5, key] = value  # (s1, step 1, r2)
    with pytest.raises(ValidationError, match=rf"column '{column}', row 5:"):
        validate_steps(table, duplicates=policy)


def test_a_word_among_labels_read_as_text_is_the_one_named(tmp_path) -> None:
    # one word in a CSV's label column makes pandas read every label of it as text: the error named row 0 and its
    # '1', not the row of the word
    path = tmp_path / "steps.csv"
    small_table().assign(label=["1", "0", "-1", "1", "wrong", "1", "+1"]).to_csv(path, index=False)
    table = pd.read_csv(path)
    assert table["label"].map(type).eq(str).all()
    with pytest.raises(ValidationError, match=r"column 'label', row 4: label must be a number .*\(value: 'wrong'\)"):
        validate_steps(table, source=str(path))


@pytest.mark.parametrize("method", ["majority", "vote-fraction", "dawid-skene", "first-error"])
def test_a_validated_table_filtered_to_a_gap_is_one_error_naming_the_step(method: str) -> None:
    # the filtered table kept the validated attrs, so nothing checked the numbering again: majority gave the
    # unlabelled step 0.5 and the first-error model a posterior, silently; the others said only "p_correct not
    # finite"
    from accord.aggregate import fit_step_method

    table = validate_steps(small_table())
    only_r2 = table[table["annotator"] == "r2"]  # a filter that leaves no gap: s1 keeps steps 0 and 1, s2 goes
    assert fit_step_method("majority", only_r2).step_labels_.n_steps.tolist() == [2]
    gap = table.drop(index=[1, 4])  # step 1 of s1 has no label left
    assert "accord_steps" in gap.attrs
    with pytest.raises(ValidationError, match="solution 's1' .* step 1 is missing"):
        fit_step_method(method, gap)
    repeated = validate_steps(pd.concat([small_table(), small_table().iloc[[0]]]), duplicates="keep")
    with pytest.raises(ValidationError, match="step 1 is missing"):  # the gap is named, not the allowed repeat
        fit_step_method(method, repeated[~repeated.index.isin([1, 4])])


@pytest.mark.parametrize("method", ["majority", "vote-fraction", "dawid-skene", "first-error"])
@settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, 6), value=st.sampled_from([-1, 2, 5]))
def test_a_label_changed_after_validation_to_one_off_its_set_is_one_error_naming_the_row(method: str, row: int,
                                                                                         value: int) -> None:
    # was: the table kept its validated attrs, so the label had no code (-1), which numpy read as the set's last label:
    # a binary table's 0 made -1 ("wrong" in the ternary set) was a correct step to every method, without a word
    from accord.aggregate import fit_step_method

    table = validate_steps(small_table().assign(label=[1, 0, 0, 1, 0, 1, 1]))  # binary: 0 is the error label
    assert table.attrs["accord_steps"]["labels"] == "binary"
    table.loc[row, "label"] = value
    with pytest.raises(ValidationError, match=f"column 'label', row {row}: label outside the declared set binary"):
        fit_step_method(method, table)


@pytest.mark.parametrize("method", ["majority", "vote-fraction", "dawid-skene", "first-error"])
@pytest.mark.parametrize("row", [0, 1, 4, 6])
def test_a_step_made_negative_after_validation_is_one_error_naming_the_row(method: str, row: int) -> None:
    # was: the table kept its validated attrs, so step -1 of a solution was laid out as offset - 1, the last step of
    # the solution before it: its label counted there (or, for the first solution, numpy's bincount error)
    from accord.aggregate import fit_step_method

    table = validate_steps(small_table())
    table.loc[row, "step"] = -1
    with pytest.raises(ValidationError, match=f"column 'step', row {row}: step must be a non-negative integer"):
        fit_step_method(method, table)


@pytest.mark.parametrize("method", ["majority", "vote-fraction", "dawid-skene", "first-error"])
@pytest.mark.parametrize("row", [0, 3, 6])
def test_an_annotator_made_missing_after_validation_is_one_error_naming_the_row(method: str, row: int) -> None:
    # was: the table kept its validated attrs and pandas codes a missing id -1, which numpy read as the last rater:
    # the label was fitted as that rater's, without a word
    from accord.aggregate import fit_step_method

    table = validate_steps(small_table())
    table.loc[row, "annotator"] = None
    with pytest.raises(ValidationError, match=f"column 'annotator', row {row}: missing id"):
        fit_step_method(method, table)


def test_declared_binary_rejects_minus_one_and_duplicates_policy() -> None:
    with pytest.raises(ValidationError, match=r"column 'label', row 2: label outside the declared set binary"):
        validate_steps(small_table(), labels="binary")
    doubled = pd.concat([small_table(), small_table().iloc[[2]].assign(label=1)], ignore_index=True)
    assert validate_steps(doubled, duplicates="first")["label"].tolist()[2] == -1
    assert validate_steps(doubled, duplicates="last").query("solution_id == 's1' and annotator == 'r1'")[
        "label"].tolist() == [1, 0, 1]
    assert len(validate_steps(doubled, duplicates="keep")) == 8


@st.composite
def step_tables(draw) -> pd.DataFrame:
    """Random valid tables: solutions of 1-6 steps, each labelled by 1-3 raters on a prefix of its steps
    (the longest prefix covers every step), labels from the ternary set."""
    rows = []
    for s in range(draw(st.integers(1, 6))):
        n_steps = draw(st.integers(1, 6))
        raters = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3, unique=True))
        for k, rater in enumerate(raters):
            length = n_steps if k == 0 else draw(st.integers(1, n_steps))
            for t in range(length):
                rows.append((f"s{s}", t, rater, draw(st.sampled_from([-1, 0, 1]))))
    table = pd.DataFrame(rows, columns=["solution_id", "step", "annotator", "label"])
    order = draw(st.permutations(range(len(table))))
    return table.iloc[list(order)].reset_index(drop=True)


@PROPERTY
@given(table=step_tables())
def test_any_valid_table_passes_and_encodes_its_lengths(table: pd.DataFrame) -> None:
    encoded = encode_steps(validate_steps(table, labels="ternary"))
    lengths = table.groupby("solution_id")["step"].max() + 1
    assert dict(zip(encoded.solution_index, encoded.n_steps)) == lengths.to_dict()
    cells = encoded.step_cells
    assert cells.min() == 0 and cells.max() == encoded.n_steps.sum() - 1
    assert len(np.unique(cells)) == encoded.n_steps.sum()


@PROPERTY
@given(table=step_tables(), data=st.data())
def test_any_misnumbered_solution_is_named(table: pd.DataFrame, data) -> None:
    solution = data.draw(st.sampled_from(sorted(table["solution_id"].unique())))
    rows = table["solution_id"] == solution
    n_steps = int(table.loc[rows, "step"].max()) + 1
    mode = data.draw(st.sampled_from(["shift", "gap"] if n_steps >= 3 else ["shift"]))
    if mode == "shift":  # numbered from 1
        table.loc[rows, "step"] += 1
    else:  # a step in the middle disappears from every rater
        gap = data.draw(st.integers(1, n_steps - 2))
        table = table[~(rows & (table["step"] == gap))].reset_index(drop=True)
    with pytest.raises(ValidationError) as caught:
        validate_steps(table)
    message = str(caught.value)
    assert f"solution {solution!r}" in message and "column 'step'" in message
    row = int(re.search(r"row (\d+)", message).group(1))
    assert table["solution_id"].iloc[row] == solution


@PROPERTY
@given(table=step_tables(), data=st.data())
def test_any_label_off_the_set_is_named(table: pd.DataFrame, data) -> None:
    row = data.draw(st.integers(0, len(table) - 1))
    bad = data.draw(st.sampled_from([2, -2, 5, 0.5]))
    table["label"] = table["label"].astype(object)
    table.loc[row, "label"] = bad
    with pytest.raises(ValidationError, match=rf"column 'label', row {row}:"):
        validate_steps(table, labels="ternary")


# -- StepLabels ----------------------------------------------------------------------------------------------------


@PROPERTY
@given(probs=st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=5), min_size=1, max_size=5))
def test_independent_first_error_distribution(probs: list[list[float]]) -> None:
    index = pd.MultiIndex.from_tuples([(f"s{i}", t) for i, p in enumerate(probs) for t in range(len(p))],
                                      names=["solution_id", "step"])
    flat = pd.Series([v for p in probs for v in p], index=index)
    labels = StepLabels.from_independent_steps(flat, flat * np.nan, flat * 0 + 1, "test")
    sums = labels.first_error["p_first_error"].groupby(level="solution_id").sum()
    assert np.allclose(sums, 1.0)
    for i, p in enumerate(probs):
        expected = [np.prod(p[:t]) * (1 - p[t]) for t in range(len(p))] + [np.prod(p)]
        assert np.allclose(labels.first_error.loc[f"s{i}", "p_first_error"].to_numpy(), expected)
    assert np.allclose(labels.p_all_correct.to_numpy(), [np.prod(p) for p in probs])


def test_step_labels_reject_incoherent_first_error() -> None:
    index = pd.MultiIndex.from_tuples([("s", 0)], names=["solution_id", "step"])
    steps = pd.DataFrame({"p_correct": [0.5], "uncertainty": [np.nan], "n_judgments": [1]}, index=index)
    positions = pd.MultiIndex.from_tuples([("s", 0), ("s", 1)], names=["solution_id", "position"])
    with pytest.raises(AccordError, match="sum to 1"):
        StepLabels(steps, pd.DataFrame({"p_first_error": [0.5, 0.6], "uncertainty": np.nan}, index=positions), "m")
    with pytest.raises(AccordError, match="positions 0..T"):
        StepLabels(steps, pd.DataFrame({"p_first_error": [1.0], "uncertainty": np.nan}, index=positions[:1]), "m")


@pytest.mark.parametrize("order, message", [
    ([("s", 1), ("s", 0), ("t", 0)], "solution 's' lists its steps as 1, 0"),  # reversed
    ([("s", 0), ("s", 2), ("t", 0)], "solution 's' lists its steps as 0, 2"),  # a gap
    ([("s", 0), ("t", 0), ("s", 1)], "solution 's' has its steps apart"),  # not together
])
def test_step_labels_need_each_solutions_steps_together_and_in_order(order, message) -> None:
    # was: steps listed in another order were kept, and the cleaned step dataset wrote the solution's step texts and
    # labels in that order (['second', 'first']) beside a first-error distribution read by position; a gap named
    # a step with no text only later
    index = pd.MultiIndex.from_tuples(order, names=["solution_id", "step"])
    steps = pd.DataFrame({"p_correct": [0.9, 0.2, 0.5], "uncertainty": np.nan, "n_judgments": 1}, index=index)
    first_error = first_error_from_independent(pd.Series([0.9, 0.2, 0.5], index=pd.MultiIndex.from_tuples(
        [("s", 0), ("s", 1), ("t", 0)], names=["solution_id", "step"])))
    with pytest.raises(AccordError, match=message):
        StepLabels(steps, first_error, "m")


# -- the synthetic testbed -----------------------------------------------------------------------------------------

_EQUATION = re.compile(r": (-?[\d.]+) ([-+*/]) (\d+) = (-?[\d.]+)\.$")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic_steps(n_problems=80, seed=3)


def test_synthetic_truth_is_consistent(synthetic) -> None:
    solutions = synthetic.solutions
    assert (solutions["is_correct"] == (solutions["first_error"] == solutions["n_steps"])).all()
    assert set(solutions["error_kind"]) <= {"", "operation", "arithmetic", "answer"}
    right = solutions[solutions["is_correct"]].merge(synthetic.problems, on="problem_id")
    assert np.allclose(right["final_answer"], right["answer"])
    # every arithmetic statement is true, except the first wrong step of an arithmetic slip
    for _, solution in solutions.iterrows():
        for t, text in enumerate(solution["completions"][:-1]):
            a, op, b, c = _EQUATION.search(text).groups()
            value = {"+": float(a) + float(b), "-": float(a) - float(b), "*": float(a) * float(b),
                     "/": float(a) / float(b)}[op]
            slip = solution["error_kind"] == "arithmetic" and t == solution["first_error"]
            true_statement = abs(value - float(c)) <= 0.005 + 1e-9  # two decimals as written; slips are >= 1
            assert true_statement != slip, (solution["solution_id"], t, text)
        assert solution["completions"][-1] == f"The answer is {solution['final_answer']:g}."


def _lead(step: str) -> str:
    lead = step.split(": ")[0]
    return ("then" if lead.startswith("Then ") else "after" if lead.startswith("After ")
            else "gerund" if lead.endswith(" gives") else "plain")


def test_synthetic_right_candidates_differ_in_wording_not_arithmetic(synthetic) -> None:
    solutions = synthetic.solutions
    right = solutions[solutions["is_correct"]]
    texts = right["completions"].map(" ".join)
    distinct = texts.groupby(right["problem_id"]).nunique()
    several = right.groupby("problem_id").size() >= 4
    assert (distinct[several] >= 2).mean() > 0.9  # sampled solutions vary in wording, not one text per problem
    sums = right["completions"].map(lambda steps: tuple(step.split(": ")[-1] for step in steps))
    assert (sums.groupby(right["problem_id"]).nunique() == 1).all()  # the same arithmetic and answer
    # the wording says nothing of correctness: each lead-in is as common in right as in wrong candidates' steps
    steps = solutions[["is_correct", "completions"]].explode("completions")
    steps = steps[~steps["completions"].str.startswith("The answer is")]
    shares = pd.crosstab(steps["completions"].map(_lead), steps["is_correct"], normalize="columns")
    assert len(shares) == 4 and (shares[True] - shares[False]).abs().max() < 0.05


def test_synthetic_best_of_n_blind_scorer_matches_a_random_pick(synthetic) -> None:
    # a scorer blind to correctness (one random score per distinct text) picks a right candidate about as often as
    # a uniformly random pick; were every right candidate one text, it would lose to the max over the wrong texts
    solutions = synthetic.solutions
    code = pd.factorize(solutions["completions"].map(" ".join))[0]
    rng = np.random.default_rng(0)
    picks = [best_of_n(rng.random(code.max() + 1)[code], solutions["is_correct"], solutions["problem_id"])
             for _ in range(50)]
    blind = np.mean([pick["accuracy"] for pick in picks])
    assert abs(blind - picks[0]["random"]) < 0.08, (blind, picks[0]["random"])


def test_synthetic_labels_follow_the_protocol(synthetic) -> None:
    judgments = synthetic.judgments
    assert judgments.attrs["accord_steps"]["labels"] == "ternary"
    labelled = synthetic.solutions[synthetic.solutions["labelled"]]
    assert set(judgments["solution_id"]) == set(labelled["solution_id"])
    assert (judgments.groupby("solution_id")["annotator"].nunique() == 3).all()
    stop = make_synthetic_steps(n_problems=80, seed=3, protocol="stop", labels="binary")
    table = stop.judgments
    first_flag = table[table["label"] == 0].groupby(["solution_id", "annotator"])["step"].min()
    last = table.groupby(["solution_id", "annotator"])["step"].max()
    assert (last.reindex(first_flag.index) == first_flag).all()  # nobody labels past its first flag
    assert set(table["label"]) <= {0, 1}


def test_synthetic_raters_flag_at_their_rates() -> None:
    data = make_synthetic_steps(n_problems=600, n_annotators=20, spammer_share=0.0, seed=5)
    truth = data.first_error()
    table = data.judgments.assign(tau=lambda t: truth.reindex(t["solution_id"]).to_numpy())
    # a rater's labels up to its first flag: flag rate on the first wrong step estimates its sensitivity
    first_flag = table[table["label"] == -1].groupby(["solution_id", "annotator"])["step"].min()
    table["first_flag"] = first_flag.reindex(pd.MultiIndex.from_frame(table[["solution_id", "annotator"]])).fillna(
        99).to_numpy()
    at_error = table[(table["step"] == table["tau"]) & (table["step"] <= table["first_flag"])]
    rate = at_error.groupby("annotator")["label"].apply(lambda s: (s == -1).mean())
    expected = data.annotators["sensitivity"].reindex(rate.index)
    assert np.corrcoef(rate, expected)[0, 1] > 0.8
    assert abs(rate.mean() - expected.mean()) < 0.05


def test_synthetic_is_seeded() -> None:
    a, b = make_synthetic_steps(n_problems=20, seed=1), make_synthetic_steps(n_problems=20, seed=1)
    pd.testing.assert_frame_equal(a.judgments, b.judgments)
    c = make_synthetic_steps(n_problems=20, seed=2)
    assert not a.judgments["label"].equals(c.judgments["label"])


@pytest.mark.parametrize("settings_", [{"protocol": "later"}, {"labels": "graded"}, {"error_rate": 1.5},
                                       {"raters_per_solution": 99}, {"held_out": 1.0}])
def test_synthetic_settings_are_checked(settings_) -> None:
    with pytest.raises(AccordError):
        make_synthetic_steps(n_problems=10, **settings_)


@pytest.mark.parametrize("share", ["sloppy_share", "spammer_share"])
def test_a_nan_rater_share_is_refused_naming_it(share) -> None:
    # NaN passed 'share < 0 or sum > 1' and failed later as "cannot convert float NaN to integer"
    with pytest.raises(AccordError, match="sloppy_share and spammer_share"):
        make_synthetic_steps(n_problems=10, **{share: float("nan")})


def test_a_repeated_column_name_is_one_line_naming_it() -> None:
    table = small_table()
    with pytest.raises(ValidationError, match="column 'label': the column appears more than once"):
        validate_steps(pd.concat([table, table[["label"]]], axis=1))


def test_solution_ids_mixing_texts_and_numbers_are_refused() -> None:
    table = small_table().astype({"solution_id": object})
    table.loc[5:, "solution_id"] = 2
    with pytest.raises(ValidationError, match="column 'solution_id', row 5: ids mix texts and numbers"):
        validate_steps(table)


@given(st.permutations(list(small_table().columns)))
@settings(max_examples=10, deadline=None)
def test_crowdkit_worker_column_is_read_as_the_annotator(order: list[str]) -> None:
    """validate and validate_attributes accept crowd-kit's ``worker`` for ``annotator``; validate_steps said
    'missing required column' for it. Now it reads it as the annotator (in any column order), leaves the input as
    it is, and refuses a table with both names, naming the column."""
    ours = small_table()[order]
    theirs = ours.rename(columns={"annotator": "worker"})
    before = theirs.copy()
    pd.testing.assert_frame_equal(validate_steps(theirs), validate_steps(ours))
    pd.testing.assert_frame_equal(theirs, before)
    with pytest.raises(ValidationError, match="'worker'.*'annotator'") as caught:
        validate_steps(theirs.assign(annotator=ours["annotator"]))
    assert caught.value.column == "worker"


def test_a_chat_prompt_read_from_parquet_is_one_prompt_per_solution(tmp_path) -> None:
    """Parquet reads a prompt of chat messages as a numpy array of dicts: the check that a solution has one prompt
    compared two such arrays with '!=' and failed with numpy's 'truth value of an array with more than one element
    is ambiguous' (any conversation of two or more messages), a traceback from `accord aggregate`. Two different
    conversations for one solution are still refused, naming the row."""
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is 2+2"}]
    other = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is 3+3"}]
    table = pd.DataFrame({"solution_id": ["s", "s", "t"], "step": [0, 1, 0], "annotator": ["a", "a", "a"],
                          "label": [1, 0, 1], "step_text": ["x", "y", "z"], "prompt": [messages, messages, other]})
    table.to_parquet(tmp_path / "steps.parquet")
    read = pd.read_parquet(tmp_path / "steps.parquet")
    assert isinstance(read.at[0, "prompt"], np.ndarray)
    assert len(validate_steps(read)) == 3
    table.at[1, "prompt"] = other
    table.to_parquet(tmp_path / "two.parquet")
    with pytest.raises(ValidationError, match="column 'prompt', row 1: one solution has two different prompts"):
        validate_steps(pd.read_parquet(tmp_path / "two.parquet"))


@pytest.mark.parametrize("column", ["step", "label"])
@pytest.mark.parametrize("cell", [np.array(1), np.array([1]), np.array([1, 0]), [1]])
def test_a_step_or_label_that_is_an_array_or_a_list_is_one_error_naming_its_row(column: str, cell) -> None:
    # a 0-d numpy array was pandas' raw "TypeError: len() of unsized object", and a 1-element array was read as the
    # number it holds (a list of one was refused): one value per cell, as the pairwise table's labels
    table = small_table()
    table[column] = table[column].astype(object)
    table.at[2, column] = cell
    with pytest.raises(ValidationError, match=f"column '{column}', row 2"):
        validate_steps(table, source="steps.parquet")


@pytest.mark.parametrize("cell, fragment", [(1, "ids mix texts and numbers"), (["q1"], "single value"),
                                            (float("inf"), "not finite")])
def test_a_problem_id_that_is_no_single_id_is_one_error_naming_its_row(cell, fragment) -> None:
    # best-of-n groups candidates by the text of problem_id: the number 1 beside the text '1' merged two problems,
    # and a list or an infinite id passed into the cleaned dataset. A missing problem_id (no problem) stays allowed
    table = small_table().assign(problem_id=["1"] * 4 + [None] * 3)
    assert validate_steps(table)["problem_id"].isna().sum() == 3
    table["problem_id"] = table["problem_id"].astype(object)
    table.at[5, "problem_id"] = cell
    table.at[6, "problem_id"] = cell
    with pytest.raises(ValidationError, match=f"column 'problem_id', row 5: .*{fragment}"):
        validate_steps(table, source="steps.jsonl")


@pytest.mark.parametrize("broken", [[{"content": "what is 2+2"}], [{"role": "user"}],
                                    [{"role": "user", "content": "what is 2+2"}, "and 3+3?"]])
def test_a_chat_prompt_without_a_role_or_a_content_is_one_error_naming_its_row(broken) -> None:
    """A prompt of chat messages lacking a 'role' or a 'content' passed validation and failed after the fit, in
    build_cleaned_steps (`accord aggregate`), as Python's KeyError or TypeError; now validate_steps names the row of
    the input (a duplicate dropped before it), and building the cleaned dataset gives the same error."""
    from accord.aggregate import StepMajorityVote, build_cleaned_steps

    fine = [{"role": "user", "content": "what is 2+2"}]
    table = pd.DataFrame({"solution_id": ["s", "s", "s", "t"], "step": [0, 0, 1, 0], "annotator": ["a"] * 4,
                          "label": [1, 1, -1, 1], "step_text": ["x", "x", "y", "z"],
                          "prompt": [fine, fine, fine, broken]})
    with pytest.raises(ValidationError, match=r"steps.jsonl, column 'prompt', row 3: chat messages") as caught:
        validate_steps(table, duplicates="first", source="steps.jsonl")
    assert "\n" not in str(caught.value)
    once = table.drop_duplicates(["solution_id", "step"]).reset_index(drop=True)
    labels = StepMajorityVote().fit(once.drop(columns="prompt")).step_labels_
    with pytest.raises(ValidationError, match="column 'prompt', row 2: chat messages"):
        build_cleaned_steps(labels, once)


def test_step_labels_written_with_a_plus_sign_in_a_csv_are_numbers(tmp_path) -> None:
    # labels read as written (class names "01" stay names) took "+1", how {-1, 0, +1} is written, for a class name:
    # the step table was refused at its validation
    from accord.datasets.loaders.generic import read_unvalidated

    path = tmp_path / "steps.csv"
    small_table().assign(label=["+1", "0", "-1", "+1", "+1", "0", "-1"]).to_csv(path, index=False)
    table = read_unvalidated(path)
    assert table["label"].tolist() == [1, 0, -1, 1, 1, 0, -1]
    assert validate_steps(table, source=str(path))["label"].tolist() == [1, 0, -1, 1, 1, 0, -1]
    small_table().assign(label=["+1", "1", "-1", "1", "1", "0", "-1"]).to_csv(path, index=False)
    assert read_unvalidated(path)["label"].map(type).eq(str).all()  # "+1" beside "1": two spellings, kept as written
