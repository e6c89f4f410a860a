"""Loaders of step-level data on hand-written fixtures in the published layouts: PRM800K (phase 1 and 2) and
Math-Shepherd."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.datasets import AccordError, ValidationError
from accord.datasets.ids import content_ids
from accord.datasets.loaders import load_math_shepherd, load_prm800k
from accord.datasets.steps import validate_steps

FIXTURES = Path(__file__).parent / "fixtures" / "steps"
PHASE1 = FIXTURES / "prm800k_phase1.jsonl"
PHASE2 = FIXTURES / "prm800k_phase2.jsonl"
SHEPHERD = FIXTURES / "math_shepherd.jsonl"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_records(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- PRM800K --------------------------------------------------------------------------------------------------------


def test_prm800k_phase2_keeps_labelers_and_marks_quality_control() -> None:
    table = load_prm800k(PHASE2)
    assert table.attrs["accord_steps"]["labels"] == "ternary"
    assert set(table["annotator"]) == {"lab-a", "lab-b", "lab-c"}
    qc = table[table["quality_control"]]
    # the quality-control solution was served to two labelers: one solution id, both labelers' ratings
    assert qc["solution_id"].nunique() == 1 and set(qc["annotator"]) == {"lab-a", "lab-b"}
    by_labeler = qc.pivot(index="step", columns="annotator", values="label")
    assert by_labeler["lab-a"].tolist()[:3] == [1, 0, -1] and pd.isna(by_labeler["lab-a"].iloc[3])
    assert by_labeler["lab-b"].tolist() == [1, 1, 1, 1]
    assert qc["step_text"].iloc[0].startswith("Multiplication comes first")
    assert set(qc.loc[qc["annotator"] == "lab-a", "finish_reason"]) == {"found_error"}
    screening = table[table["initial_screening"]]
    # its second step has no rating (flagged): the solution ends before it
    assert screening["step"].tolist() == [0] and set(screening["generation"]) == {-1}
    assert (table["phase"] == 2).all() and not table["alternative"].any()
    assert table["prompt"].str.len().gt(0).all()


def test_prm800k_phase1_follows_the_chosen_path() -> None:
    table = load_prm800k(PHASE1)
    path = table[table["annotator"] == "lab-d"].sort_values("step")
    assert path["step_text"].tolist() == ["Subtract 3 from both sides.", "So $x = 10 - 3$.", "So $x = 7$.",
                                          "# Answer\n\n7"]
    assert path["label"].tolist() == [1, 1, 1, 1]
    assert path["step_source"].tolist() == ["model", "model", "human", "model"]
    single = table[table["annotator"] == "lab-e"]
    assert single["label"].tolist() == [-1] and (table["phase"] == 1).all()


def test_prm800k_alternatives_become_solutions_of_their_own() -> None:
    table = load_prm800k(PHASE1, alternatives=True)
    alternatives = table[table["alternative"]]
    assert alternatives["solution_id"].nunique() == 3  # "Let us guess." at step 0; two wrong steps at step 2
    ends = alternatives.sort_values("step").groupby("solution_id").tail(1)
    assert sorted(ends["step_text"]) == ["Let us guess.", "So $x = 13$.", "So $x = 6$."]
    assert sorted(ends["label"]) == [-1, -1, 0]
    prefix = alternatives[(alternatives["step"] < 2) & alternatives["solution_id"].isin(
        ends.loc[ends["step"] == 2, "solution_id"])]
    assert set(prefix["step_text"]) == {"Subtract 3 from both sides.", "So $x = 10 - 3$."}
    assert len(table[~table["alternative"]]) == len(load_prm800k(PHASE1))
    phase2 = load_prm800k(PHASE2, alternatives=True)
    assert sorted(phase2.loc[phase2["alternative"] & (phase2["step"] == 2), "step_text"]) == [
        "$2 + 12 = 14$.", "Add them."]


def test_prm800k_reads_a_dataframe_like_the_file() -> None:
    from_file = load_prm800k(PHASE2)
    from_frame = load_prm800k(pd.DataFrame(records(PHASE2)))
    pd.testing.assert_frame_equal(from_file.drop(columns="timestamp"), from_frame.drop(columns="timestamp"))


def test_prm800k_duplicate_labels_keep_the_earliest(tmp_path: Path) -> None:
    rows = records(PHASE2)
    again = json.loads(json.dumps(rows[0]))
    again["timestamp"] = "2023-01-09T00:00:00"  # earlier than the first copy
    again["label"]["steps"][1]["completions"][0]["rating"] = 1
    path = write_records(tmp_path / "phase2.jsonl", [*rows, again])
    table = load_prm800k(path)
    step1 = table[(table["annotator"] == "lab-a") & table["quality_control"] & (table["step"] == 1)]
    assert step1["label"].tolist() == [1]
    # the error named a row of the table built from the file, and its column 'annotator': now one of the two lines
    with pytest.raises(ValidationError, match=r"column 'labeler', row [04]: annotator labelled this step more than"):
        load_prm800k(path, duplicates="error")


def test_prm800k_fields_some_lines_lack_are_null(tmp_path: Path) -> None:
    # pandas reads a field that some lines lack as NaN: a line without is_quality_control_question was marked a
    # quality-control solution (NaN is true), and one without a timestamp was refused ('must be a text or null')
    rows = records(PHASE2)
    rows[2].pop("is_quality_control_question")
    rows[3].pop("is_initial_screening_question")
    rows[1].pop("timestamp")
    table = load_prm800k(write_records(tmp_path / "phase2.jsonl", rows))
    flags = table.groupby("source_row")[["quality_control", "initial_screening"]].first()
    assert flags["quality_control"].tolist() == [True, True, False, False]
    assert flags["initial_screening"].tolist() == [False, False, False, False]
    assert table.loc[table["source_row"] == 1, "timestamp"].isna().all()
    assert table.loc[table["source_row"] == 0, "timestamp"].notna().all()


@pytest.mark.parametrize("missing", [lambda r: r.pop("labeler"), lambda r: r.update(labeler=None)])
def test_prm800k_a_line_without_labeler_is_named(tmp_path: Path, missing) -> None:
    # it was named as column 'annotator' of a row of the table built from the file (row 0 or 1, not line 3)
    rows = records(PHASE2)
    missing(rows[3])
    path = write_records(tmp_path / "phase2.jsonl", rows)
    with pytest.raises(ValidationError, match=r"column 'labeler', row 3: missing labeler"):
        load_prm800k(path)


@pytest.mark.parametrize(
    "edit, column, fragment",
    [
        (lambda r: r["label"]["steps"][0]["completions"][0].update(rating=2), "label.steps[0].completions[0].rating",
         "rating outside -1/0/+1"),
        (lambda r: r["label"]["steps"][1].update(chosen_completion=5), "label.steps[1].chosen_completion",
         "does not exist"),
        # a JSON true was read as completion 1 (Python counts a bool as an int)
        (lambda r: r["label"]["steps"][0].update(chosen_completion=True), "label.steps[0].chosen_completion",
         "does not exist"),
        (lambda r: r["question"].pop("problem"), "question.problem", "missing problem"),
        (lambda r: r["label"].update(steps="none"), "label.steps", "missing list"),
    ],
)
def test_prm800k_bad_records_name_field_and_row(tmp_path: Path, edit, column, fragment) -> None:
    rows = records(PHASE1)
    edit(rows[1] if column == "question.problem" else rows[0])
    path = write_records(tmp_path / "phase1.jsonl", rows)
    with pytest.raises(ValidationError) as caught:
        load_prm800k(path)
    message = str(caught.value)
    row = 1 if column == "question.problem" else 0
    assert f"file {path}" in message and f"column '{column}'" in message and f"row {row}" in message
    assert fragment in message and "\n" not in message


def test_prm800k_a_null_step_text_is_no_text(tmp_path: Path) -> None:
    """A completion (or a pre-generated step) whose text is null was the step text 'None'; then a step of text ''
    (which stopped accord aggregate). Now the solution ends before it: here at its first step, so the line gives no
    solution, and a warning counts it."""
    rows = records(PHASE2)
    for step in rows[0]["label"]["steps"]:
        for completion in step["completions"]:
            if completion["text"] == rows[0]["question"]["pre_generated_steps"][0]:
                completion["text"] = None
    rows[0]["question"]["pre_generated_steps"][0] = None
    with pytest.warns(UserWarning, match="1 solution\\(s\\) end before a step without text"):
        table = load_prm800k(write_records(tmp_path / "phase2.jsonl", rows))
    assert "None" not in set(table["step_text"]) and "" not in set(table["step_text"])
    assert not (table["source_row"] == 0).any()


def test_prm800k_phase_mismatch_and_missing_fields(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"column 'question', row 0: a phase-2 record where phase 1"):
        load_prm800k(PHASE2, phase=1)
    with pytest.raises(ValidationError, match="column 'labeler'"):
        load_prm800k(pd.DataFrame([{"question": {}, "label": {}}]))
    with pytest.raises(AccordError, match="phase must be"):
        load_prm800k(PHASE2, phase=3)


# -- Math-Shepherd --------------------------------------------------------------------------------------------------


def test_math_shepherd_splits_problem_and_steps() -> None:
    table = load_math_shepherd(SHEPHERD)
    assert table.attrs["accord_steps"]["labels"] == "binary"
    first = table[table["source_row"] == 0]
    assert first["prompt"].iloc[0] == ("Tom has 3 bags with 4 apples each. He eats 2 apples. How many apples are "
                                       "left?")
    assert first["step_text"].tolist() == ["Step 1: 3 * 4 = 12 apples.", "Step 2: 12 - 2 = 10 apples.",
                                           "Step 3: The answer is: 10"]
    assert first["label"].tolist() == [1, 1, 1] and set(table["annotator"]) == {"math-shepherd"}
    lower = table[table["source_row"] == 1]
    assert lower["label"].tolist() == [0, 0] and lower["task"].iloc[0] == "MATH"
    # a step tag inside the problem text is dropped with its label
    slip = table[table["source_row"] == 2]
    assert slip["prompt"].iloc[0] == "Ann reads 5 pages a day for 4 days. How many pages?"
    assert slip["step"].tolist() == [0, 1] and slip["label"].tolist() == [1, 1]


def test_math_shepherd_bad_rows(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in SHEPHERD.read_text().splitlines()]
    rows[1]["label"] = rows[1]["label"].replace("$. -", "$. ?")
    path = tmp_path / "ms.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    with pytest.raises(ValidationError, match=r"column 'input', row 1: label is not the input with each step tag"):
        load_math_shepherd(path)
    with pytest.warns(UserWarning, match="dropped 1 row"):
        table = load_math_shepherd(path, invalid="drop")
    assert set(table["source_row"]) == {0, 2}
    no_step = pd.DataFrame([{"input": "A problem. First we add. ки", "label": "A problem. First we add. +"}])
    with pytest.raises(ValidationError, match="no 'Step 1:'"):
        load_math_shepherd(no_step)


def test_math_shepherd_a_solution_twice_names_the_later_row() -> None:
    # validate_steps named a row of the table of steps (row 3 here) and its column 'annotator'
    frame = pd.DataFrame({"input": ["P Step 1: a ки", "Q Step 1: b ки\nStep 2: c ки", "P Step 1: a ки"],
                          "label": ["P Step 1: a +", "Q Step 1: b +\nStep 2: c -", "P Step 1: a -"]})
    with pytest.raises(ValidationError, match=r"column 'input', row 2: the solution appears twice"):
        load_math_shepherd(frame, duplicates="error")
    assert load_math_shepherd(frame, duplicates="last")["source_row"].tolist() == [1, 1, 2]


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    problem=st.text(st.characters(codec="utf-8", exclude_characters="ки\r"), min_size=1, max_size=40).filter(
        lambda s: s.strip() and "step" not in s.lower()),
    steps=st.lists(st.text(st.characters(codec="utf-8", exclude_characters="ки\r"), min_size=1, max_size=30).filter(
        lambda s: s.strip() and s == s.strip()), min_size=1, max_size=6),
    signs=st.lists(st.sampled_from("+-"), min_size=6, max_size=6),
)
def test_math_shepherd_round_trip(problem: str, steps: list[str], signs: list[str]) -> None:
    texts = [f"Step {t + 1}: {s}" for t, s in enumerate(steps)]
    body_in = "\n".join(f"{s} ки" for s in texts)
    body_label = "\n".join(f"{s} {signs[t]}" for t, s in enumerate(texts))
    frame = pd.DataFrame([{"input": f"{problem.strip()} {body_in}", "label": f"{problem.strip()} {body_label}"}])
    table = load_math_shepherd(frame)
    assert table["step_text"].tolist() == texts
    assert table["label"].tolist() == [1 if sign == "+" else 0 for sign in signs[: len(steps)]]
    assert table["prompt"].iloc[0] == problem.strip()


# -- Math-Shepherd: the vectorised parser against the row-by-row one it replaced --------------------------------

_OLD_LABELS = {"+": 1, "-": 0}


def _old_split(text, labelled, tag):
    """The row-by-row parser of accord <= session 36, kept as the oracle (verbatim but for its name)."""
    if not isinstance(text, str) or not isinstance(labelled, str):
        raise ValueError("input and label must be texts")
    pieces = text.split(tag)
    if len(pieces) < 2:
        raise ValueError(f"no step tag {tag!r} in the input")
    marks, position = [], 0
    for piece in pieces[:-1]:
        position += len(piece)
        marks.append(labelled[position] if position < len(labelled) else "")
        position += 1
    rebuilt = "".join(piece + mark for piece, mark in zip(pieces, [*marks, ""]))
    if any(mark not in _OLD_LABELS for mark in marks) or rebuilt != labelled:
        raise ValueError("label is not the input with each step tag replaced by + or -")
    if pieces[-1].strip():
        raise ValueError(f"text after the last step tag {tag!r} has no label")
    start = re.compile(r"step\s*1\s*:", re.IGNORECASE).search(text)
    if start is None:
        raise ValueError("cannot tell where the problem ends (no 'Step 1:')")
    ends, first = [], 0
    position = 0
    for piece in pieces[:-1]:
        position += len(piece) + len(tag)
        ends.append(position)
    first = sum(end <= start.start() for end in ends)
    prompt = re.sub(r"\s*" + re.escape(tag), "", text[: start.start()]).strip()
    first_piece_start = start.start() - (ends[first - 1] if first else 0)
    steps = [pieces[first][first_piece_start:].strip(), *(p.strip() for p in pieces[first + 1:-1])]
    labels = [_OLD_LABELS[m] for m in marks[first:]]
    if not steps or any(not s for s in steps):
        raise ValueError("an empty step between two step tags")
    return prompt, steps, labels


def _old_load(frame: pd.DataFrame, tag: str, invalid: str) -> pd.DataFrame:
    name = "<DataFrame>"
    frame = frame.reset_index(drop=True)
    tasks = frame["task"] if "task" in frame.columns else pd.Series(pd.NA, index=frame.index)
    parts = {k: [] for k in ("source_row", "step", "label", "prompt", "step_text", "input")}
    dropped = 0
    for row, (text, labelled) in enumerate(zip(frame["input"], frame["label"])):
        try:
            prompt, steps, labels = _old_split(text, labelled, tag)
        except ValueError as problem:
            if invalid == "error":
                raise ValidationError(str(problem), source=name, column="input", row=row,
                                      value=text if isinstance(text, str) else None) from None
            dropped += 1
            continue
        for t, (step_text, label) in enumerate(zip(steps, labels)):
            for key, value in zip(parts, (row, t, label, prompt, step_text, text)):
                parts[key].append(value)
    if dropped:
        warnings.warn(f"{name}: dropped {dropped} row(s) that could not be split into problem and labelled steps",
                      stacklevel=2)
    if not parts["step"]:
        raise ValidationError("no labelled steps in the table", source=name)
    table = pd.DataFrame(parts)
    table.insert(0, "solution_id", content_ids(table, ["input"], "ms-", unique=False).to_numpy())
    table.insert(2, "annotator", "math-shepherd")
    table["task"] = tasks.to_numpy()[table["source_row"].to_numpy()]
    table = table.drop(columns="input")[["solution_id", "step", "annotator", "label", "prompt", "step_text", "task",
                                         "source_row"]]
    return validate_steps(table, labels="binary", duplicates="first", source=name)


_TAGS = ("ки", "<s>", "\n\n")
_PIECES = ("a", "7", " ", "\n", "+", "-", "é", "中", "🙂", "\t", "\u2003", "Step 1:", "step 2:", "STEP  1 :",
           "ſtep 1:", "ки")


@st.composite
def shepherd_rows(draw, tag: str) -> dict:
    """A Math-Shepherd row: usually well formed (a problem, then 'Step i: ...' steps each ending in the tag), with
    edge cases (empty steps, tags in the problem, unicode, signs in the text, text after the last tag) and labels
    that are the input with its tags replaced by signs, now and then spoilt."""
    text = st.lists(st.sampled_from((*_PIECES, tag)), max_size=8).map("".join)
    if draw(st.integers(0, 4)) == 0:  # free text: no tag, no 'Step 1:', a tag at the very end...
        source = draw(text)
    else:
        steps = draw(st.lists(text, min_size=1, max_size=5))
        ends = draw(st.lists(st.sampled_from(["", "\n", " "]), min_size=len(steps), max_size=len(steps)))
        heads = [draw(st.sampled_from(["Step 1:", "STEP1 :", "Part 1:"])), *(f"Step {t}:" for t in range(2, 6))]
        body = "".join(f"{head}{s} {tag}{end}" for head, s, end in zip(heads, steps, ends))
        after = draw(st.sampled_from(["", " ", "\n", "", "x"]))  # after the last tag
        source = f"{draw(text)} {body}{after}"
    pieces = source.split(tag)
    signs = draw(st.lists(st.sampled_from("+-"), min_size=len(pieces) - 1, max_size=len(pieces) - 1))
    label = "".join(p + s for p, s in zip(pieces, [*signs, ""]))
    spoil = draw(st.sampled_from(range(12)))
    if spoil == 0 and label:
        at = draw(st.integers(0, len(label) - 1))
        label = label[:at] + draw(st.sampled_from("+-?ки")) + label[at + 1:]
    elif spoil == 1:
        label += draw(st.sampled_from(["+", " ", ""]))
    elif spoil == 2:
        label = label[:-1]
    row = {"input": source, "label": label, "task": draw(st.sampled_from(["GSM8K", "MATH", None]))}
    if draw(st.sampled_from(range(30))) == 7:
        row[draw(st.sampled_from(["input", "label"]))] = draw(st.sampled_from([None, 3, float("nan")]))
    return row


def _outcome(load):
    """What a load gives: its table, or its error; and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = load()
        except ValidationError as error:
            result = str(error)
    return result, [str(w.message) for w in caught]


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(data=st.data(), tag=st.sampled_from(_TAGS), invalid=st.sampled_from(["error", "drop"]))
def test_math_shepherd_parses_as_the_row_by_row_parser(data, tag: str, invalid: str) -> None:
    frame = pd.DataFrame(data.draw(st.lists(shepherd_rows(tag), min_size=1, max_size=4)))
    new, new_warnings = _outcome(lambda: load_math_shepherd(frame, step_tag=tag, invalid=invalid))
    old, old_warnings = _outcome(lambda: _old_load(frame, tag, invalid))
    assert new_warnings == old_warnings
    if isinstance(old, str):
        assert new == old
    else:
        pd.testing.assert_frame_equal(new, old)


def test_prm800k_steps_without_text_end_the_solution_and_the_pipeline_runs(tmp_path: Path, capsys) -> None:
    """PRM800K holds completions whose text is null. Such a step was read as the text '' and `accord aggregate`
    stopped on it ("step 1 of solution ... has no text"), and a human completion of null text stopped the loader
    ("human completion without text"). Now a solution ends before its first step without text (its earlier steps
    kept with their labels), an alternative without text is left out, one warning naming the file counts both, and
    the table aggregates."""
    from accord.cli import main as accord_main

    rows = records(PHASE1)
    steps = rows[0]["label"]["steps"]  # lab-d: steps 0 and 1 chosen, step 2 written by the labeler
    steps[0]["completions"][0]["text"] = None  # the alternative "Let us guess."
    steps[1]["completions"][0]["text"] = None  # the chosen step 1
    path = write_records(tmp_path / "phase1_train.jsonl", rows)
    with pytest.warns(UserWarning) as caught:
        table = load_prm800k(path, alternatives=True)
    said = [str(w.message) for w in caught if "without text" in str(w.message)]
    assert said == [f"{path}: 1 solution(s) end before a step without text (its later steps left out) and 1 "
                    "alternative completion(s) without text left out: a step of no text cannot be trained on or "
                    "scored"]
    lab_d = table[table["annotator"] == "lab-d"]
    assert lab_d["step"].tolist() == [0] and lab_d["step_text"].tolist() == ["Subtract 3 from both sides."]
    assert table["step_text"].str.strip().ne("").all()
    # a human completion whose text is null ends the path as well (it stopped the loader)
    steps[1]["completions"][0]["text"] = "So $x = 10 - 3$."
    steps[2]["human_completion"]["text"] = None
    with pytest.warns(UserWarning, match="1 solution\\(s\\) end before a step without text"):
        table = load_prm800k(write_records(tmp_path / "human.jsonl", rows))
    assert table.loc[table["annotator"] == "lab-d", "step"].tolist() == [0, 1]
    # the table goes through accord aggregate (a step of no text stopped it)
    judgments = tmp_path / "judgments.csv"
    table.to_csv(judgments, index=False)
    out = tmp_path / "steps.parquet"
    code = accord_main(["aggregate", "--input", str(judgments), "--step-labels", "ternary", "--method",
                        "vote-fraction", "--output", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.exists()
