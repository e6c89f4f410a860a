"""The cleaned step dataset: built from step labels, written atomically (Parquet and JSONL), read back and checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.aggregate import StepVoteFraction, build_cleaned_steps
from accord.datasets import AccordError, ValidationError
from accord.datasets.steps import (
    STEP_CLEANED_COLUMNS,
    StepLabels,
    make_synthetic_steps,
    read_cleaned_steps,
    validate_steps,
    write_cleaned_steps,
)
from accord.models import FirstErrorModel


@pytest.fixture(scope="module")
def data():
    return make_synthetic_steps(n_problems=40, seed=4)


@pytest.fixture(scope="module")
def cleaned(data):
    labels = FirstErrorModel(num_samples=50).fit(data.judgments).step_labels_
    return build_cleaned_steps(labels, data.judgments), labels


def test_one_row_per_solution_with_its_steps_in_order(data, cleaned) -> None:
    frame, labels = cleaned
    assert tuple(frame.columns[: len(STEP_CLEANED_COLUMNS)]) == STEP_CLEANED_COLUMNS
    assert "problem_id" in frame.columns
    solutions = data.solutions.set_index("solution_id")
    assert set(frame["solution_id"]) == set(solutions.index[solutions["labelled"]])
    for row in frame.itertuples():
        assert row.completions == solutions.loc[row.solution_id, "completions"]
        assert len(row.labels) == len(row.label_weights) == len(row.label_uncertainty) == row.n_steps
        assert len(row.p_first_error) == row.n_steps + 1
        assert row.p_all_correct == pytest.approx(row.p_first_error[-1])
        assert row.first_error == int(np.argmax(row.p_first_error))
        assert row.labels == pytest.approx(labels.p_correct.loc[row.solution_id].tolist())
        assert row.prompt == data.problems.set_index("problem_id").loc[row.problem_id, "prompt"]
    assert (frame["n_annotators"] == 3).all()
    assert frame["n_judgments"].sum() == len(data.judgments)
    weights = np.concatenate(frame["label_weights"].map(np.asarray).to_numpy())
    assert ((weights >= 0) & (weights <= 1)).all() and (weights < 1).any()


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip_with_provenance(tmp_path: Path, cleaned, suffix: str) -> None:
    frame, _ = cleaned
    path = write_cleaned_steps(frame, tmp_path / f"steps{suffix}", provenance={"method": "first-error"})
    back = read_cleaned_steps(path)
    assert back.attrs["provenance"]["method"] == "first-error"
    assert back.attrs["provenance"]["kind"] == "steps"
    assert back["completions"].tolist() == frame["completions"].tolist()
    for column in ("labels", "label_weights", "p_first_error"):
        assert all(np.allclose(a, b) for a, b in zip(back[column], frame[column]))
    assert back["solution_id"].tolist() == frame["solution_id"].tolist()
    if suffix == ".jsonl":
        assert json.loads(path.with_name(f".{path.name}.meta.json").read_text())["package"] == "accord"


def test_vote_methods_have_no_uncertainty(data) -> None:
    frame = build_cleaned_steps(StepVoteFraction().fit(data.judgments).step_labels_, data.judgments)
    assert all(np.isnan(u).all() for u in frame["label_uncertainty"])
    assert all(np.allclose(w, 1.0) for w in frame["label_weights"]) and (frame["outcome_weight"] == 1.0).all()


@pytest.mark.parametrize(
    "change, column",
    [
        (lambda f: f.assign(labels=f["labels"].map(lambda v: v[:-1])), "labels"),
        (lambda f: f.assign(p_first_error=f["p_first_error"].map(lambda v: [*v, 0.0])), "p_first_error"),
        (lambda f: f.assign(label_weights=f["label_weights"].map(lambda v: [1.5] * len(v))), "label_weights"),
        (lambda f: f.assign(p_all_correct=-0.1), "p_all_correct"),
        # the first-error metrics' truth: a missing or impossible position passed, and was scored as no error
        (lambda f: f.assign(first_error=f["n_steps"] + 1), "first_error"),
        (lambda f: f.assign(first_error=np.nan), "first_error"),
        (lambda f: f.assign(first_error=f["first_error"] - 0.5), "first_error"),
        (lambda f: f.assign(n_steps=f["n_steps"] + 0.5), "n_steps"),  # was blamed on 'completions'
        (lambda f: f.drop(columns="completions"), "completions"),
    ],
)
def test_bad_frame_is_refused_and_nothing_written(tmp_path: Path, cleaned, change, column: str) -> None:
    frame, _ = cleaned
    target = tmp_path / "steps.parquet"
    write_cleaned_steps(frame, target)
    before = target.read_bytes()
    with pytest.raises(ValidationError, match=f"column '{column}'"):
        write_cleaned_steps(change(frame), target)
    assert target.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["steps.parquet"]  # no partial file left behind


def test_first_error_probabilities_must_sum_to_one_per_solution(tmp_path: Path, cleaned) -> None:
    # a list of the right length that is no distribution (the 'no error' entry left out, or unnormalised) was kept
    frame, _ = cleaned
    bad = frame.copy()
    bad.at[3, "p_first_error"] = [0.0] * frame.at[3, "n_steps"] + [0.5]
    with pytest.raises(ValidationError, match=r"column 'p_first_error', row 3: must sum to 1 .* sums to 0.5"):
        write_cleaned_steps(bad, tmp_path / "bad.parquet")
    bad.to_parquet(tmp_path / "theirs.parquet")  # a file written by other code is read back with the same check
    with pytest.raises(ValidationError, match=r"theirs.parquet, column 'p_first_error', row 3: must sum to 1"):
        read_cleaned_steps(tmp_path / "theirs.parquet")
    # what accord writes passes, and so does the same file with the probabilities stored as float32
    float32 = frame.assign(p_first_error=frame["p_first_error"].map(lambda v: np.asarray(v, dtype=np.float32)))
    float32.to_parquet(tmp_path / "float32.parquet")
    assert len(read_cleaned_steps(write_cleaned_steps(frame, tmp_path / "ok.jsonl"))) == len(frame)
    assert len(read_cleaned_steps(tmp_path / "float32.parquet")) == len(frame)


def test_builder_needs_step_texts(data) -> None:
    judgments = validate_steps(data.judgments.drop(columns="step_text"))
    labels = StepVoteFraction().fit(judgments).step_labels_
    with pytest.raises(AccordError, match="column 'step_text'"):
        build_cleaned_steps(labels, judgments)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5), data=st.data())
def test_any_step_labels_round_trip(tmp_path_factory, lengths: list[int], data) -> None:
    rows = [(f"s{i}", t, "r", data.draw(st.sampled_from([0, 1])), f"text {i}.{t} ü") for i, n in enumerate(lengths)
            for t in range(n)]
    judgments = validate_steps(pd.DataFrame(rows, columns=["solution_id", "step", "annotator", "label",
                                                           "step_text"]), labels="binary")
    labels = StepVoteFraction().fit(judgments).step_labels_
    assert isinstance(labels, StepLabels)
    frame = build_cleaned_steps(labels, judgments)
    folder = tmp_path_factory.mktemp("round")
    for suffix in (".parquet", ".jsonl"):
        back = read_cleaned_steps(write_cleaned_steps(frame, folder / f"c{suffix}"))
        assert back["completions"].tolist() == frame["completions"].tolist()
        assert back["n_steps"].tolist() == lengths
        assert all(np.allclose(a, b) for a, b in zip(back["labels"], frame["labels"]))


def test_jsonl_round_trip_keeps_problem_ids_as_text_and_floats_as_floats(tmp_path: Path) -> None:
    # JSON Lines read "001" back as 1 and p_all_correct 1.0 / outcome_weight 1.0 as integers
    judgments = pd.DataFrame({"solution_id": ["s1", "s1", "s2"], "step": [0, 1, 0], "annotator": ["a", "a", "a"],
                              "label": [1, 1, 1], "step_text": ["x", "y", "z"], "problem_id": ["001", "001", "002"]})
    frame = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    back = read_cleaned_steps(write_cleaned_steps(frame, tmp_path / "steps.jsonl"))
    assert back["problem_id"].tolist() == ["001", "002"]
    assert back["p_all_correct"].dtype == "float64" and back["outcome_weight"].dtype == "float64"


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_solution_ids_that_are_numbers_read_back_as_the_judgments_have_them(tmp_path: Path, suffix: str) -> None:
    # JSON Lines turned the solution ids 7 and 8 into the texts '7' and '8' (Parquet kept the numbers), so the cleaned
    # step dataset no longer joined the judgments it came from
    judgments = pd.DataFrame({"solution_id": [7, 7, 8], "step": [0, 1, 0], "annotator": ["a", "a", "a"],
                              "label": [1, 1, 1], "step_text": ["x", "y", "z"]})
    frame = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    back = read_cleaned_steps(write_cleaned_steps(frame, tmp_path / f"steps{suffix}"))
    assert back["solution_id"].tolist() == [7, 8]
    assert len(back.merge(judgments, on="solution_id")) == len(judgments)


@pytest.mark.parametrize("labels", [[1.0, "bad"], [1.0, [0.5]]])
def test_a_step_value_that_is_not_a_number_is_one_line(cleaned, labels) -> None:
    # np.asarray's ValueError came out as a traceback
    frame = cleaned[0].head(1).copy()
    frame.at[frame.index[0], "n_steps"] = 2
    for column in ("completions", "labels", "label_uncertainty", "label_weights"):
        frame.at[frame.index[0], column] = ["a", "b"] if column == "completions" else [1.0, 1.0]
    frame.at[frame.index[0], "p_first_error"] = [0.0, 0.0, 1.0]
    frame.at[frame.index[0], "labels"] = labels
    with pytest.raises(ValidationError, match="column 'labels', row 0"):
        write_cleaned_steps(frame, "unused.parquet")


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_step_that_is_a_number_is_written_as_its_text(tmp_path: Path, suffix: str) -> None:
    # a JSON input's "step_text": 42 was refused as "every step must be a text" when written, after the fit (the
    # pairwise dataset writes such a response as its text)
    judgments = pd.DataFrame({"solution_id": ["s1", "s1", "s2"], "step": [0, 1, 0], "annotator": ["a", "a", "a"],
                              "label": [1, 1, 1], "step_text": ["x = 6 * 7", 42, 3.5]})
    frame = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    back = read_cleaned_steps(write_cleaned_steps(frame, tmp_path / f"steps{suffix}"))
    assert back["completions"].map(list).tolist() == [["x = 6 * 7", "42"], ["3.5"]]


def test_a_method_without_uncertainty_writes_float_lists_that_load_beside_another_methods(
        tmp_path: Path, data, cleaned) -> None:
    """label_uncertainty of NaN only (vote methods) was list<null> in Parquet: Hugging Face datasets read None, and
    refused to load the file beside one from the first-error model ("Couldn't cast array of type double to null")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    votes = build_cleaned_steps(StepVoteFraction().fit(data.judgments).step_labels_, data.judgments)
    paths = [write_cleaned_steps(votes, tmp_path / "votes.parquet"),
             write_cleaned_steps(cleaned[0], tmp_path / "first_error.parquet")]
    for column in ("labels", "label_uncertainty", "label_weights", "p_first_error"):
        assert pq.read_schema(paths[0]).field(column).type == pa.list_(pa.float64()), column
    back = read_cleaned_steps(paths[0])
    assert all(np.isnan(u).all() for u in back["label_uncertainty"])
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=[str(p) for p in paths], split="train",
                                   cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == len(votes) + len(cleaned[0])


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_the_method_is_recorded_without_being_told_and_kept_when_a_file_is_written_again(
        tmp_path: Path, data, suffix: str) -> None:
    """The README's provenance "as for the cleaned preference dataset": write_cleaned_steps recorded the method of
    build_cleaned_steps' output only when told, and a file read and written again lost its method and source."""
    frame = build_cleaned_steps(StepVoteFraction().fit(data.judgments).step_labels_, data.judgments)
    first = read_cleaned_steps(write_cleaned_steps(frame, tmp_path / f"first.{suffix}"))
    assert first.attrs["provenance"]["method"] == "vote-fraction"
    told = write_cleaned_steps(frame, tmp_path / f"told.{suffix}", provenance={"source": "unit"})
    again = read_cleaned_steps(write_cleaned_steps(read_cleaned_steps(told).iloc[:2], tmp_path / f"again.{suffix}"))
    assert {k: again.attrs["provenance"][k] for k in ("method", "source", "kind")} == {
        "method": "vote-fraction", "source": "unit", "kind": "steps"}


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_chat_prompt_is_written_as_messages_the_step_trainer_renders(tmp_path: Path, suffix: str) -> None:
    """Was: a prompt of chat messages was written as its Python repr ("[{'role': 'user', ...}]"), then as 'role:
    content' lines, which a chat-template backbone read as another text than the same messages elsewhere. Now the
    messages stay messages (one dict a list of one; a text prompt beside them the user's turn), read back as written,
    and rendered as a stepwise table of the same messages is (render_prompts, the one rendering). A column of
    plain-text prompts stays text."""
    from accord.datasets.cleaned import render_prompts
    from accord.reward.steps import load_steps

    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is 2+2"}]
    judgments = pd.DataFrame({"solution_id": ["s1", "s1", "s2", "s3"], "step": [0, 1, 0, 0],
                              "annotator": ["a", "a", "a", "a"], "label": [1, 1, 1, 1],
                              "step_text": ["x", "y", "z", "w"],
                              "prompt": [messages, messages, "plain problem", None]})
    frame = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    user = [{"role": "user", "content": "plain problem"}]
    assert frame["prompt"].tolist() == [messages, user, []]
    back = read_cleaned_steps(write_cleaned_steps(frame, tmp_path / f"steps{suffix}"))
    assert [[dict(m) for m in p] for p in back["prompt"]] == frame["prompt"].tolist()
    stepwise = pd.DataFrame({"prompt": [messages, user, None], "completions": [["x", "y"], ["z"], ["w"]],
                             "labels": [[1, 1], [1], [1]]})
    assert render_prompts(load_steps(stepwise)["prompt"]) == render_prompts(load_steps(back)["prompt"])
    texts = judgments.assign(prompt=["p1", "p1", "p2", None])
    assert build_cleaned_steps(StepVoteFraction().fit(texts).step_labels_, texts)["prompt"].tolist() == [
        "p1", "p2", ""]


@settings(max_examples=20, deadline=None)
@given(st.randoms())
def test_first_error_rows_in_another_order_of_solutions_are_read_by_solution(data, cleaned, shuffle) -> None:
    # was: p_first_error was cut from StepLabels.first_error in its own row order, so a StepLabels listing the
    # solutions there in another order than in its steps gave each solution another's distribution (beside its own
    # p_all_correct and first_error)
    frame, labels = cleaned
    order = list(labels.solution_ids)
    shuffle.shuffle(order)
    first_error = labels.first_error.loc[order]  # each solution's positions together, the solutions reordered
    reordered = StepLabels(steps=labels.steps, first_error=first_error, method=labels.method)
    again = build_cleaned_steps(reordered, data.judgments)
    for column in ("p_first_error", "p_all_correct", "outcome_weight", "first_error", "labels"):
        assert again[column].tolist() == frame[column].tolist(), column
    assert np.allclose([p[-1] for p in again["p_first_error"]], again["p_all_correct"])


def test_p_all_correct_must_be_the_last_entry_of_p_first_error(tmp_path: Path, cleaned) -> None:
    """The layout gives both as P(no step is wrong), yet a file whose p_all_correct (the outcome-only model's label)
    disagreed with its own p_first_error was written and read: the outcome model trained on another number than
    the one the first-error distribution said. Now refused naming the row and the solution; float32 storage of the
    list still passes."""
    frame, _ = cleaned
    bad = frame.copy()
    row = 5
    bad.at[row, "p_all_correct"] = (frame.at[row, "p_first_error"][-1] + 0.5) % 1.0  # a probability, 0.5 off
    solution = frame.at[row, "solution_id"]
    with pytest.raises(ValidationError, match=rf"column 'p_all_correct', row {row}: .*solution {solution!r}"):
        write_cleaned_steps(bad, tmp_path / "bad.parquet")
    bad.to_parquet(tmp_path / "theirs.parquet")
    with pytest.raises(ValidationError, match=r"theirs.parquet, column 'p_all_correct', row 5"):
        read_cleaned_steps(tmp_path / "theirs.parquet")
    float32 = frame.assign(p_first_error=frame["p_first_error"].map(lambda v: np.asarray(v, dtype=np.float32)),
                           p_all_correct=frame["p_all_correct"].astype(np.float32))
    float32.to_parquet(tmp_path / "float32.parquet")
    assert len(read_cleaned_steps(tmp_path / "float32.parquet")) == len(frame)


def test_a_solution_given_two_rows_is_one_error_naming_both(tmp_path: Path, cleaned) -> None:
    """The layout has one row per solution, yet a file listing a solution twice (two sets of step labels, perhaps
    from two fits concatenated) was written and read, and trained on twice. Now one error naming the repeated row,
    the solution and its first row; an id that is no single value (a list) is named too, not a raw TypeError."""
    frame, _ = cleaned
    twice = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    solution = frame.at[2, "solution_id"]
    where = rf"column 'solution_id', row {len(frame)}: solution {solution!r} .*row 2"
    with pytest.raises(ValidationError, match=where):
        write_cleaned_steps(twice, tmp_path / "twice.parquet")
    twice.to_parquet(tmp_path / "theirs.parquet")  # a file written by other code is read back with the same check
    with pytest.raises(ValidationError, match="theirs.parquet, " + where):
        read_cleaned_steps(tmp_path / "theirs.parquet")
    listed = frame.assign(solution_id=frame["solution_id"].astype(object))
    listed.at[4, "solution_id"] = ["a", "b"]
    with pytest.raises(ValidationError, match=r"column 'solution_id', row 4: must be one id"):
        write_cleaned_steps(listed, tmp_path / "listed.parquet")


@pytest.mark.parametrize("column", ["n_judgments", "n_annotators"])
@pytest.mark.parametrize("value", [-1, 2.5, np.nan, "three"])
def test_a_count_that_is_no_whole_number_is_one_error_naming_the_solution(tmp_path: Path, cleaned, column,
                                                                          value) -> None:
    """n_judgments and n_annotators count labels and raters, yet -1, 2.5, a missing count or a text were written and
    read without a word. Now one error naming the column, the row and the solution."""
    frame, _ = cleaned
    bad = frame.assign(**{column: frame[column].astype(object)})
    bad.at[3, column] = value
    solution = frame.at[3, "solution_id"]
    with pytest.raises(ValidationError, match=rf"column '{column}', row 3: solution {solution!r}: must be a whole"):
        write_cleaned_steps(bad, tmp_path / "bad.jsonl")


def test_label_weights_must_be_one_minus_twice_the_uncertainty(tmp_path: Path, data, cleaned) -> None:
    """The layout promises label_weights = 1 - 2 * label_uncertainty (clipped to [0, 1]; 1 where the uncertainty is
    unknown), which the step trainer weighs each step's loss by; a file whose weights said otherwise (all 1 beside
    uncertain labels, or down-weighted labels of a method without uncertainty) was written and read. Now one error
    naming the row, the solution and the step; float32 storage of both lists still passes."""
    frame, _ = cleaned
    row = int(np.flatnonzero([np.nanmax(u) > 0.01 for u in frame["label_uncertainty"]])[0])
    step = int(np.nanargmax(frame.at[row, "label_uncertainty"]))
    bad = frame.copy()
    bad.at[row, "label_weights"] = [1.0 if t == step else w for t, w in enumerate(frame.at[row, "label_weights"])]
    solution = frame.at[row, "solution_id"]
    where = rf"column 'label_weights', row {row}: solution {solution!r}, step {step}: must be 1 - 2 \* label_unc"
    with pytest.raises(ValidationError, match=where):
        write_cleaned_steps(bad, tmp_path / "bad.parquet")
    bad.to_parquet(tmp_path / "theirs.parquet")
    with pytest.raises(ValidationError, match="theirs.parquet, " + where):
        read_cleaned_steps(tmp_path / "theirs.parquet")
    votes = build_cleaned_steps(StepVoteFraction().fit(data.judgments).step_labels_, data.judgments)
    votes.at[0, "label_weights"] = [0.5] * votes.at[0, "n_steps"]  # no uncertainty: every weight is 1
    with pytest.raises(ValidationError, match=r"column 'label_weights', row 0: solution .*, step 0: must be 1 - 2"):
        write_cleaned_steps(votes, tmp_path / "votes.jsonl")
    float32 = frame.assign(**{c: frame[c].map(lambda v: np.asarray(v, dtype=np.float32))
                              for c in ("label_uncertainty", "label_weights")})
    float32.to_parquet(tmp_path / "float32.parquet")
    assert len(read_cleaned_steps(tmp_path / "float32.parquet")) == len(frame)


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(data=st.data(), method=st.sampled_from(["majority", "vote-fraction", "dawid-skene", "first-error"]))
def test_every_step_file_accord_writes_passes_its_check(tmp_path_factory, data, method) -> None:
    """What build_cleaned_steps makes of a random step-judgments table, by each of the four methods, is written and
    read back as Parquet and JSONL: the checks of the weights, counts and ids refuse none of accord's own files."""
    from accord.aggregate import fit_step_method

    n_solutions = data.draw(st.integers(1, 6))
    rows = []
    for i in range(n_solutions):
        raters = data.draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=4, unique=True))
        for t in range(data.draw(st.integers(1, 5))):
            rows += [(f"s{i}", t, r, data.draw(st.sampled_from([-1, 0, 1])), f"step {t}") for r in raters]
    judgments = pd.DataFrame(rows, columns=["solution_id", "step", "annotator", "label", "step_text"])
    settings_ = {"num_samples": 20} if method == "first-error" else {}
    labels = fit_step_method(method, validate_steps(judgments, labels="ternary"), **settings_).step_labels_
    frame = build_cleaned_steps(labels, judgments)
    folder = tmp_path_factory.mktemp("own")
    for suffix in (".parquet", ".jsonl"):
        back = read_cleaned_steps(write_cleaned_steps(frame, folder / f"c{suffix}"))
        assert back["solution_id"].tolist() == frame["solution_id"].tolist()
        assert back["n_judgments"].tolist() == frame["n_judgments"].tolist()


@pytest.mark.parametrize("value", [-0.1, float("inf")])
def test_a_label_uncertainty_that_is_no_standard_deviation_is_refused(tmp_path: Path, cleaned, value) -> None:
    """label_uncertainty is each label's posterior sd (NaN when the method has none), yet a negative or infinite
    one (whose weight, 1 - 2 * uncertainty clipped, is 1 and passed the weight check) was written and read without
    a word. Now one error naming the row, the solution and the step."""
    frame, _ = cleaned
    bad = frame.copy()
    bad.at[2, "label_uncertainty"] = [value if t == 1 else u for t, u in enumerate(frame.at[2, "label_uncertainty"])]
    bad.at[2, "label_weights"] = [float(np.clip(1 - 2 * value, 0, 1)) if t == 1 else w
                                  for t, w in enumerate(frame.at[2, "label_weights"])]
    where = rf"column 'label_uncertainty', row 2: solution {frame.at[2, 'solution_id']!r}, step 1: must be a standard"
    with pytest.raises(ValidationError, match=where):
        write_cleaned_steps(bad, tmp_path / "bad.jsonl")
    assert list(tmp_path.iterdir()) == []
    bad.to_parquet(tmp_path / "theirs.parquet")
    with pytest.raises(ValidationError, match="theirs.parquet, " + where):
        read_cleaned_steps(tmp_path / "theirs.parquet")


def test_first_error_must_be_the_most_probable_position_of_p_first_error(tmp_path: Path, cleaned) -> None:
    """The layout gives first_error as the most probable first-error position (the truth of the first-error
    metrics), yet a file whose first_error was another position than p_first_error's most probable one was written
    and read. Now one error naming the row, the solution and the position expected; a tie within float32 storage
    may name either position."""
    frame, _ = cleaned
    row = 4
    p = np.asarray(frame.at[row, "p_first_error"])
    bad = frame.copy()
    bad.at[row, "first_error"] = int(np.argmin(p))
    where = (rf"column 'first_error', row {row}: solution {frame.at[row, 'solution_id']!r}: must be the most "
             rf"probable position of p_first_error, {int(np.argmax(p))}")
    with pytest.raises(ValidationError, match=where):
        write_cleaned_steps(bad, tmp_path / "bad.parquet")
    bad.to_parquet(tmp_path / "theirs.parquet")
    with pytest.raises(ValidationError, match="theirs.parquet, " + where):
        read_cleaned_steps(tmp_path / "theirs.parquet")
    tied = frame.copy()
    n = frame.at[row, "n_steps"] + 1
    tied.at[row, "p_first_error"] = [0.5 + 1e-9 if t == 0 else 0.5 if t == n - 1 else 0.0 for t in range(n)]
    tied.at[row, "p_all_correct"] = 0.5
    tied.at[row, "first_error"] = n - 1
    assert len(read_cleaned_steps(write_cleaned_steps(tied, tmp_path / "tied.parquet"))) == len(frame)


def _cells(frame: pd.DataFrame) -> dict[str, Any]:
    """Everything a frame holds, compared strictly: column order, dtypes, each cell's repr and type (1 is not 1.0,
    a list not an array; NaN equals NaN), attrs."""
    return {"columns": list(frame.columns), "dtypes": [str(t) for t in frame.dtypes], "attrs": frame.attrs,
            "cells": {c: [f"{type(v).__name__}:{v!r}" for v in frame[c]] for c in frame.columns}}


def _outcome(read: Callable[[], pd.DataFrame]) -> Any:
    try:
        return _cells(read())
    except AccordError as err:
        return type(err).__name__, str(err)


def _readable(x: float) -> float:
    """``x``, or 0 where pandas' JSON parser could not read it back: a number written below about 2.2e-308 (its 15
    digits may put the smallest normal float there) is its "Range error", which Arrow reads (see
    test_a_probability_near_the_smallest_float_reads_back_from_jsonl)."""
    return x if abs(x) > 1e-300 else 0.0


_FLOATS = st.floats(0, 1).map(_readable)
#: JSON values a line of a cleaned step file may be given in place of what the writer wrote
_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.just(2**64 - 1), st.floats(-2, 2).map(_readable),
    st.sampled_from(["", "007", "2020-01-01", "2021-02-03 10:00:00", "x"]),
    st.lists(st.one_of(st.none(), _FLOATS, st.integers(0, 1), st.just("a")), max_size=4),
    st.lists(st.dictionaries(st.sampled_from(["role", "content"]), st.just("hi"), min_size=1), max_size=2),
)


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(lengths=st.lists(st.integers(1, 4), min_size=1, max_size=5), data=st.data())
def test_jsonl_read_by_arrow_as_pandas_reads_it(tmp_path_factory, lengths: list[int], data) -> None:
    """A cleaned step file in JSON Lines is read by Arrow (load_steps read 64k solutions in 3 s of CPU through pandas'
    JSON parser, in 0.9 s through Arrow's): the frame read, or the error, is exactly the one pandas' reader gives,
    for files as written (text and number ids, NaN and other uncertainties, date-like and unicode texts, extra
    columns) and with a value of a line changed, a key dropped or added."""
    from accord.datasets.steps import cleaned as steps_cleaned
    from accord.reward.steps import load_steps

    n = len(lengths)
    texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6) | st.sampled_from(
        ["2020-01-01", "1", "a\nb", '"q"', "ü"])
    ids = data.draw(st.sampled_from(["text", "number"]))
    rows = []
    for i, t in enumerate(lengths):
        p = np.asarray(data.draw(st.lists(st.floats(0.01, 1), min_size=t + 1, max_size=t + 1)))
        p = (p / p.sum()).tolist()
        sd = data.draw(st.sampled_from(["none", "some"]))
        uncertainty = [np.nan] * t if sd == "none" else data.draw(
            st.lists(st.floats(0, 0.6).map(_readable) | st.just(np.nan), min_size=t, max_size=t))
        rows.append({"solution_id": f"s{i}" if ids == "text" else 10 * i, "prompt": data.draw(texts),
                     # (a step of no text is refused by every reader: steps have one)
                     "completions": data.draw(st.lists(texts.filter(str.strip), min_size=t, max_size=t)),
                     "labels": data.draw(st.lists(_FLOATS, min_size=t, max_size=t)),
                     "label_uncertainty": uncertainty,
                     "label_weights": [1.0 if np.isnan(u) else float(np.clip(1 - 2 * u, 0, 1)) for u in uncertainty],
                     "p_first_error": p, "p_all_correct": p[-1], "outcome_weight": 1.0,
                     "first_error": int(np.argmax(p)), "n_steps": t, "n_judgments": 3 * t, "n_annotators": 3})
    frame = pd.DataFrame(rows)
    if data.draw(st.booleans()):
        frame["problem_id"] = data.draw(st.lists(st.sampled_from(["001", "p1", "2020-01-01"]), min_size=n,
                                                 max_size=n))
    if data.draw(st.booleans()):
        frame["extra"] = data.draw(st.lists(_JSON_VALUES, min_size=n, max_size=n))
    path = write_cleaned_steps(frame, tmp_path_factory.mktemp("arrow") / "steps.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
    for _ in range(data.draw(st.integers(0, 2))):
        line = lines[data.draw(st.integers(0, n - 1))]
        key = data.draw(st.sampled_from([*line, "added"]))
        if data.draw(st.booleans()) and key in line:
            del line[key]
        else:
            line[key] = data.draw(_JSON_VALUES)
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")

    new = _outcome(lambda: read_cleaned_steps(path)), _outcome(lambda: load_steps(path))
    with pytest.MonkeyPatch.context() as patch:  # the reader as it was: pandas' alone
        patch.setattr(steps_cleaned, "_arrow_json_lines", lambda _: None)
        old = _outcome(lambda: read_cleaned_steps(path)), _outcome(lambda: load_steps(path))
    assert new == old


def test_a_written_jsonl_file_is_read_without_pandas_json_parser(tmp_path: Path, cleaned, monkeypatch) -> None:
    """load_steps took 3 s of CPU to read a cleaned step file of 64k solutions through pandas' JSON parser (Parquet:
    0.6 s): a file as written is now read by Arrow (0.9 s), to the same frame."""
    from accord.reward.steps import load_steps

    frame, _ = cleaned
    path = write_cleaned_steps(frame, tmp_path / "steps.jsonl")
    before = read_cleaned_steps(path), load_steps(path)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pandas' JSON parser read the file")

    monkeypatch.setattr(pd, "read_json", refused)
    assert [_cells(read) for read in (read_cleaned_steps(path), load_steps(path))] == [_cells(f) for f in before]


@pytest.mark.parametrize("tiny", [2.2250738585072014e-308, 1e-310, 5e-324])
def test_a_probability_near_the_smallest_float_reads_back_from_jsonl(tmp_path: Path, cleaned, tiny: float) -> None:
    """A JSON Lines file accord wrote could not be read back when a probability in it was the smallest normal float
    or below (a first-error posterior that far out): pandas' JSON parser refused the number ("Range error when
    decoding numeric as double"), read_cleaned_steps and load_steps failed on their own file. Arrow's reads it."""
    from accord.reward.steps import load_steps

    frame = cleaned[0].head(3).copy()
    n = int(frame.at[1, "n_steps"])
    frame.at[1, "labels"] = [tiny] * n
    path = write_cleaned_steps(frame, tmp_path / "steps.jsonl")
    for back in (read_cleaned_steps(path), load_steps(path)):  # (as written, to 15 digits)
        assert len(back) == 3 and np.allclose(back.at[1, "labels"], tiny, rtol=1e-6, atol=1e-323)


@pytest.mark.parametrize("tiny", [1e-310, 5e-324])
def test_a_tiny_probability_reads_back_beside_chat_prompts(tmp_path: Path, cleaned, tiny: float) -> None:
    """A cleaned step file whose prompts are chat messages is read by pandas (Arrow fills every message with the
    keys of every other), whose exact JSON parser refused a probability below the smallest normal float: accord
    could not read back a file it wrote ("valid JSON that pandas cannot read: Range error..."). It reads now."""
    from accord.reward.steps import load_steps

    frame = cleaned[0].head(3).copy()
    frame["prompt"] = [[{"role": "user", "content": f"problem {i}"}] for i in range(3)]
    n = int(frame.at[1, "n_steps"])
    frame.at[1, "labels"] = [tiny] * n
    path = write_cleaned_steps(frame, tmp_path / "steps.jsonl")
    for back in (read_cleaned_steps(path), load_steps(path)):
        assert len(back) == 3 and np.allclose(back.at[1, "labels"], tiny, rtol=1e-6, atol=1e-323)
        assert list(back.at[2, "prompt"]) == [{"role": "user", "content": "problem 2"}]


@pytest.mark.parametrize("column", ["p_all_correct", "outcome_weight", "first_error", "n_steps", "n_judgments",
                                    "n_annotators"])
def test_a_number_that_is_a_0d_array_is_read_as_its_value(cleaned, column: str) -> None:
    """A 0-d numpy array holds one value: as p_all_correct or outcome_weight it was pandas' raw TypeError ("len() of
    unsized object") from the check of a cleaned step dataset (load_steps, write_cleaned_steps), where the other
    columns read it as its value. Now every number column reads it so, and one out of range is one error naming
    the row."""
    from accord.reward.steps import load_steps

    frame = cleaned[0].head(3).copy()
    odd = frame.copy()
    odd[column] = odd[column].astype(object)
    odd.at[1, column] = np.array(frame.at[1, column])
    assert load_steps(odd)[column].tolist() == load_steps(frame)[column].tolist()
    odd.at[1, column] = np.array(-1)
    with pytest.raises(ValidationError, match=f"column '{column}', row 1"):
        load_steps(odd)


def test_a_cleaned_step_file_whose_prompts_are_single_message_dicts_reads_them_as_messages(tmp_path: Path) -> None:
    """A JSON Lines cleaned step dataset whose every prompt is one chat message dict ({"role", "content"}, Hugging
    Face's single turn) was read with the prompt column cast to text: each dict became its Python repr, which the step
    trainer tokenized. Now the reader keeps them as messages (as it kept lists of them), which load_steps reads as one
    turn each."""
    from accord.datasets.cleaned import render_prompts
    from accord.reward.steps import load_steps

    judgments = pd.DataFrame({"solution_id": ["s1", "s1", "s2"], "step": [0, 1, 0], "annotator": ["a", "a", "a"],
                              "label": [1, 1, 1], "step_text": ["x", "y", "z"]})
    frame = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    frame["prompt"] = [{"role": "user", "content": "what is 2+2"}, {"role": "user", "content": "and 3+3"}]
    path = tmp_path / "steps.jsonl"
    frame.to_json(path, orient="records", lines=True)
    prompts = load_steps(path)["prompt"]
    assert render_prompts(prompts) == ["user: what is 2+2", "user: and 3+3"]


def test_a_chat_prompt_whose_content_is_a_list_of_parts_is_written_as_its_text() -> None:
    """A message whose content is a list of parts (the OpenAI / Hugging Face multimodal layout, ``[{"type": "text",
    "text": ...}]``) was written as the list's Python repr ("user: [{'type': 'text', ...}]") in the 'role: content'
    lines the step trainer reads without a chat template, and in the cleaned step dataset. Now its text parts, in
    order, one line each; a part that is not text (an image) is one error naming the column and the row (accord
    reads text only)."""
    from accord.datasets.cleaned import cleaned_step_prompts, render_prompts
    from accord.reward.steps import load_steps

    parts = [{"role": "system", "content": "be brief"},
             {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "text", "text": "2+2"}]}]
    stepwise = pd.DataFrame({"prompt": ["plain problem", parts], "completions": [["z"], ["x", "y"]],
                             "labels": [[1], [1, 1]]})
    expected = ["plain problem", "system: be brief\nuser: what is\n2+2"]
    assert render_prompts(load_steps(stepwise)["prompt"]) == expected
    assert render_prompts(cleaned_step_prompts(stepwise["prompt"])) == ["user: plain problem", expected[1]]
    image = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                          {"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}]
    stepwise["prompt"] = pd.Series(["plain problem", image], dtype=object)
    for read in (load_steps, lambda frame: cleaned_step_prompts(frame["prompt"])):
        with pytest.raises(ValidationError, match=r"column 'prompt', row 1: .*'image_url'.*text only"):
            read(stepwise)
