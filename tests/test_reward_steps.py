"""The process reward task (``--task steps``) on tiny random backbones: separator positions, packed against padded
step scores, the loss's step arithmetic, training, exact resume after SIGKILL, scoring, and bad input on the command
line; the step metrics against hand-computed values."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from conftest import logged_sums
from accord.cli import main as accord_main
from accord.datasets import AccordError, ValidationError
from accord.datasets.errors import SettingError
from accord.datasets.steps import read_cleaned_steps, write_cleaned_steps
from accord.reward import RewardConfig, RewardModel, RewardTrainer, evaluate, score, train
from accord.reward.data import PairCollator
from accord.reward.steps import StepCollator, StepEncoder, StepTask, load_steps, separator_token
from accord.reward.tiny import build_tiny_backbone
from accord.step_metrics import auroc, best_of_n, first_flagged_step, solution_scores

torch.set_num_threads(1)

WORKER = Path(__file__).parent / "fixtures" / "reward" / "train_worker.py"
RIGHT = "so it adds up and checks out fine".split()
WRONG = "wrong mistake error".split()
FILLER = "the a answer question cat dog sat on mat water".split()
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def toy_steps(n: int, seed: int = 0, max_steps: int = 5, max_words: int = 8) -> pd.DataFrame:
    """A cleaned step dataset: solutions of 1..max_steps steps; from a random first error on, steps hold a 'wrong'
    word; soft labels near the truth, with weights; four candidates per problem."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = int(rng.integers(1, max_steps + 1))
        tau = int(rng.integers(0, t + 1)) if rng.random() < 0.6 else t
        steps = []
        for s in range(t):
            words = list(rng.choice(FILLER, int(rng.integers(1, max_words))))
            words.append(str(rng.choice(WRONG if s >= tau else RIGHT)))
            steps.append(" ".join(rng.permutation(words)))
        truth = (np.arange(t) < tau).astype(float)
        labels = np.clip(truth + rng.uniform(-0.2, 0.2, t) * np.where(truth > 0, -1, 1), 0, 1)
        sd = rng.uniform(0.0, 0.3, t)
        p_first = np.zeros(t + 1)
        p_first[tau] = 1.0
        rows.append({"solution_id": f"s{seed}-{i}", "prompt": " ".join(rng.choice(FILLER, 4)), "completions": steps,
                     "labels": labels.tolist(), "label_uncertainty": sd.tolist(),
                     "label_weights": (1 - 2 * sd).tolist(),
                     "p_first_error": p_first.tolist(), "p_all_correct": float(tau == t),
                     "outcome_weight": float(rng.uniform(0.5, 1.0)), "first_error": tau, "n_steps": t,
                     "n_judgments": 3 * t, "n_annotators": 3, "problem_id": f"q{i // 4}"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward-steps")
    words = [" ".join(RIGHT + WRONG + FILLER)]
    backbones = {kind: str(build_tiny_backbone(root / kind, kind, texts=words, seed=1))
                 for kind in ("llama", "qwen2", "bert")}
    data = write_cleaned_steps(toy_steps(48), root / "steps.parquet")
    return {"root": root, **backbones, "data": str(data)}


def config(workspace, name: str, **overrides) -> RewardConfig:
    values = dict(model=workspace["llama"], task="steps", train_path=workspace["data"],
                  output_dir=str(workspace["root"] / name), batch_size=8, max_steps=4, learning_rate=2e-3,
                  save_steps=None, logging_steps=1, progress=False, stats_max_pairs=16)
    values.update(overrides)
    return RewardConfig(**values)


def _encoded(workspace, kind: str, max_length: int = 96, frame: pd.DataFrame | None = None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(workspace[kind])
    model = RewardModel.from_backbone(workspace[kind], attn_implementation="sdpa", uncertainty_head=True).eval()
    _, sep = separator_token(tokenizer, None)
    table = load_steps(frame if frame is not None else toy_steps(10, seed=3))
    return tokenizer, model, sep, StepEncoder(tokenizer, max_length, model.is_decoder, sep).encode(table)


# ----------------------------------------------------------------------------------------------------------------------
# encoding and batches
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["llama", "qwen2", "bert"])
def test_packed_and_padded_step_scores_agree(workspace, kind):
    tokenizer, model, sep, data = _encoded(workspace, kind)
    indices = np.arange(len(data))
    out = {}
    for packing in (False, True):
        batch = StepCollator(PairCollator(tokenizer.pad_token_id, packing=packing, pooling="last"))(data, indices)
        assert "token_seq" not in batch
        assert len(batch["pool_index"]) == int(data.n_steps.sum())  # one score per step
        assert (batch["input_ids"].view(-1)[batch["pool_index"]] == sep).all()  # read at the separators
        if packing:
            assert batch["input_ids"].shape[0] < len(indices)  # really packed
        with torch.no_grad():
            out[packing] = model(**{k: v for k, v in batch.items() if k in RewardModel.INPUTS})
    assert out[True].reward.dtype == torch.float32
    assert torch.allclose(out[True].reward, out[False].reward, atol=1e-4)
    assert torch.allclose(out[True].log_var, out[False].log_var, atol=1e-4)


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_step_scoring_that_stops_leaves_a_training_model_in_training_mode(workspace, stop):
    # was: predict_steps put the model in eval mode and back only when it finished, so a failure or a Ctrl-C in the
    # trainer's evaluation left a training model with its dropout off for the rest of training
    from accord.reward.steps import predict_steps

    tokenizer, model, _, data = _encoded(workspace, "llama")
    model.train()
    calls = []

    def stop_at_second_batch(module, args, kwargs):
        calls.append(module.training)
        if len(calls) == 2:
            raise stop("stopped")

    hook = model.register_forward_pre_hook(stop_at_second_batch, with_kwargs=True)
    try:
        with pytest.raises(stop):
            predict_steps(model, data, pad_token_id=tokenizer.pad_token_id, batch_size=2)
    finally:
        hook.remove()
    assert calls == [False, False] and model.training


def test_a_decoder_scores_each_step_from_its_prefix(workspace):
    frame = toy_steps(6, seed=4, max_steps=4)
    frame = frame[frame["n_steps"] >= 2].reset_index(drop=True)
    changed = frame.copy()
    changed["completions"] = [steps[:-1] + ["cat cat wrong dog"] for steps in frame["completions"]]
    tokenizer, model, sep, _ = _encoded(workspace, "llama")
    scores = []
    for table in (frame, changed):
        data = StepEncoder(tokenizer, 96, True, sep).encode(load_steps(table))
        batch = StepCollator(PairCollator(tokenizer.pad_token_id, packing=True))(data, np.arange(len(data)))
        with torch.no_grad():
            scores.append(model(**{k: v for k, v in batch.items() if k in RewardModel.INPUTS}).reward)
    last = np.cumsum(data.n_steps) - 1
    earlier = np.setdiff1d(np.arange(len(scores[0])), last)
    assert torch.allclose(scores[0][earlier], scores[1][earlier], atol=1e-5)  # a later step cannot change them
    assert not torch.allclose(scores[0][last], scores[1][last], atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5), prompt_words=st.integers(0, 12),
       max_length=st.integers(8, 40))
def test_separators_follow_every_kept_step_within_max_length(workspace, lengths, prompt_words, max_length):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(workspace["bert"])
    _, sep = separator_token(tokenizer, "[SEP]")
    frame = pd.DataFrame({"prompt": [" ".join(["cat"] * prompt_words)],
                          "completions": [[" ".join(["dog"] * n) for n in lengths]],
                          "labels": [[1.0] * len(lengths)]})
    data = StepEncoder(tokenizer, max_length, False, sep).encode(load_steps(frame))
    ids, ends = data.ids[0], data.separators[0]
    assert len(ids) <= max_length
    assert 1 <= data.n_steps[0] <= len(lengths) and len(ends) == data.n_steps[0]
    assert all(ids[e] == sep for e in ends)
    kept_words = [sum(1 for t in ids[a + 1:b] if t != sep) for a, b in zip(np.r_[-1, ends[:-1]], ends)]
    # whole steps are kept in order (a first step longer than the budget is cut, never a later one)
    assert kept_words[1:] == lengths[1:data.n_steps[0]]
    assert data.truncated_steps >= len(lengths) - data.n_steps[0]


def test_outcome_mode_labels_only_each_solutions_last_step(workspace):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(workspace["llama"])
    table = load_steps(toy_steps(12, seed=5))
    _, sep = separator_token(tokenizer, None)
    data = StepEncoder(tokenizer, 128, True, sep, target="outcome").encode(table)
    last = np.cumsum(data.n_steps) - 1
    assert np.flatnonzero(data.labelled).tolist() == last.tolist()
    assert np.allclose(data.target[last], table["p_all_correct"].to_numpy())
    assert np.allclose(data.weight[last], table["outcome_weight"].to_numpy())


def test_outcome_mode_leaves_out_solutions_whose_steps_are_cut(workspace):
    """The outcome is about the whole solution: read at the last step of a solution that max_length cut, it would
    train the model to tell the outcome from steps it never reads. Such a solution is left out of the outcome loss,
    with a warning counting them; the step labels of the kept steps are still there for the metrics."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(workspace["llama"])
    table = load_steps(toy_steps(16, seed=7, max_steps=5, max_words=8))
    _, sep = separator_token(tokenizer, None)
    whole = StepEncoder(tokenizer, 512, True, sep, target="outcome").encode(table)
    with pytest.warns(UserWarning, match=r"max_length=24 cuts the steps of \d+ of 16 solutions") as caught:
        data = StepEncoder(tokenizer, 24, True, sep, target="outcome").encode(table)
    complete = (data.n_steps == whole.n_steps) & (data.lengths == whole.lengths)
    assert 0 < complete.sum() < len(table) and data.outcomes_left_out == (~complete).sum()
    assert f"the steps of {(~complete).sum()} of 16" in str(caught[0].message)
    last = np.cumsum(data.n_steps) - 1
    assert np.flatnonzero(data.labelled).tolist() == last[complete].tolist()
    assert np.allclose(data.target[last[complete]], table["p_all_correct"].to_numpy()[complete])
    # an optimisation step of cut solutions only has no outcome to learn: its loss is 0, not NaN
    step_task = StepTask(config(workspace, "cut-outcomes", step_target="outcome"))
    model = RewardModel.from_backbone(workspace["llama"], attn_implementation="sdpa")
    step_task.bind(tokenizer, model)
    cut = np.flatnonzero(~complete)
    context = step_task.step_context(data, cut)
    loss, sums = step_task.compute_loss(model, StepCollator(PairCollator(tokenizer.pad_token_id))(data, cut), context)
    assert loss.item() == 0.0 and all(np.isfinite(v.item()) for v in sums.values())
    loss.backward()  # and it backpropagates (a zero gradient)


@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_cleaned_solution_without_a_prompt_is_read_as_no_prompt(workspace, missing):
    # a null prompt in a cleaned step dataset reached the encoder as str(nan): the model read "nan" as the problem
    frame = toy_steps(3, seed=8)
    frame["prompt"] = frame["prompt"].astype(object)
    none, empty = frame.copy(), frame.copy()
    none.loc[0, "prompt"], empty.loc[0, "prompt"] = missing, ""
    assert load_steps(none)["prompt"].tolist() == load_steps(empty)["prompt"].tolist()
    assert _encoded(workspace, "bert", frame=none)[3].ids == _encoded(workspace, "bert", frame=empty)[3].ids


# ----------------------------------------------------------------------------------------------------------------------
# training through the core
# ----------------------------------------------------------------------------------------------------------------------


def test_gradient_accumulation_matches_one_large_batch(workspace):
    frame = toy_steps(16, seed=6)
    states = []
    for name, batch, accumulate in (("one", 8, 1), ("accumulated", 2, 4)):
        trainer = RewardTrainer(config(workspace, name, batch_size=batch, gradient_accumulation_steps=accumulate,
                                       max_steps=2, group_by_length=False), train_data=frame)
        trainer.train()
        states.append({k: v.detach().clone() for k, v in trainer.unwrapped().state_dict().items()})
    # 1e-5, not 1e-6: Adam divides by sqrt(v), so float32 rounding of a near-zero gradient's sum (four micro-batches
    # or one batch) reaches the weights amplified; measured up to 1.7e-06 on an AMD EPYC after two steps. A wrong
    # average over the micro-batches moves weights by the learning rate's order (2e-3 here), far above this.
    for key in states[0]:
        assert torch.allclose(states[0][key], states[1][key], atol=1e-5), key


@pytest.mark.parametrize("target", ["steps", "outcome"])
def test_training_learns_the_step_labels(workspace, target):
    cfg = config(workspace, f"learn-{target}", model=workspace["bert"], step_target=target, max_steps=None,
                 num_epochs=12, eval_path=workspace["data"], learning_rate=3e-3, logging_steps=6)
    result = train(cfg)
    metrics = result.eval_metrics
    records = [json.loads(line) for line in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    if target == "steps":
        assert metrics["step_accuracy"] >= 0.9 and metrics["step_auroc"] >= 0.9
        assert metrics["first_error_f1"] >= 0.6
    assert {"bon_min", "bon_product", "bon_last", "bon_random", "step_ece"} <= set(metrics)
    assert metrics["bon_min"] > metrics["bon_random"]  # best-of-4 picks right solutions more often than chance
    # a saved model evaluates as the trainer did, and scores every step
    again = evaluate(cfg.output_dir, workspace["data"])
    assert again["step_accuracy"] == pytest.approx(metrics["step_accuracy"])
    scored = score(cfg.output_dir, workspace["data"])
    assert len(scored) == int(pd.read_parquet(workspace["data"])["n_steps"].sum())
    assert scored["p_correct"].between(0, 1).all()


def test_sigkill_then_resume_equals_an_uninterrupted_run(workspace):
    root = workspace["root"]
    common = dict(max_steps=6, save_steps=2, save_total_limit=3, logging_steps=1)
    straight = config(workspace, "straight", **common)
    killed = config(workspace, "killed", resume_from="latest", **common)
    killed.save(root / "killed.json")
    marker = root / "killed.marker"
    victim = _worker(root / "killed.json", "--hang-after", "3", "--marker", str(marker))
    RewardTrainer(straight).train()  # in this process, while the other one starts
    deadline = time.time() + 180
    while not marker.exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the training process never reached step 3"
        time.sleep(0.1)
    os.kill(victim.pid, signal.SIGKILL)  # step 3 is done, its weights are not saved anywhere
    victim.wait()
    out = Path(killed.output_dir)
    assert not (out / "model.safetensors").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000002"]
    RewardTrainer(RewardConfig.load(root / "killed.json")).train()  # resume_from="latest": continues from step 2
    a, b = _final_weights(straight.output_dir), _final_weights(killed.output_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))


def _final_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    weights = load_file(str(Path(directory) / "model.safetensors"))
    weights.update({f"head.{k}": v for k, v in load_file(str(Path(directory) / "reward_head.safetensors")).items()})
    return weights


def _worker(config_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(config_path), *extra], env=SUBPROCESS_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ----------------------------------------------------------------------------------------------------------------------
# bad input: one clear error, exit 2, nothing written
# ----------------------------------------------------------------------------------------------------------------------


def _judgments(tmp_path: Path, **change) -> Path:
    rows = [("a", 0, "r1", 1, "x"), ("a", 1, "r1", -1, "y"), ("a", 0, "r2", 1, "x"), ("a", 1, "r2", 1, "y"),
            ("b", 0, "r1", 1, "z"), ("b", 1, "r1", 1, "w"), ("b", 0, "r2", 0, "z"), ("b", 1, "r2", 1, "w")]
    frame = pd.DataFrame(rows, columns=["solution_id", "step", "annotator", "label", "step_text"])
    frame["prompt"] = "q"
    for row, values in change.items():
        for column, value in values.items():
            frame.loc[int(row[1:]), column] = value
    path = tmp_path / "judgments.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_command_line_goes_from_step_labels_to_step_scores(workspace, tmp_path, capsys):
    judgments = _judgments(tmp_path)
    cleaned = tmp_path / "cleaned.parquet"
    assert accord_main(["aggregate", "--input", str(judgments), "--method", "first-error", "--output",
                        str(cleaned)]) == 0
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", str(cleaned),
                        "--output-dir", str(model), "--batch-size", "2", "--max-steps", "1", "--no-progress"]) == 0
    assert RewardModel.read_meta(model)["step_separator"] == "</s>"
    assert accord_main(["score", str(model), str(cleaned), "--out", str(tmp_path / "scores.csv")]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns[:3]) == ["solution_id", "step", "step_text"] and len(scores) == 4
    assert "note:" not in capsys.readouterr().err


@pytest.mark.parametrize("problem, change, extra, message", [
    ("steps not numbered 0..T-1", {"r1": {"step": 2}, "r3": {"step": 2}}, [], "step 1 is missing"),
    ("a label outside the declared set", {"r4": {"label": -1}}, ["--step-labels", "binary"],
     "label outside the declared set binary"),
    ("a label outside any set", {"r3": {"label": 2}}, [], "label outside the declared set"),
    # the way out was named as Python's duplicates='first', not as the command line's --duplicates
    ("a step labelled twice by one rater", {"r2": {"annotator": "r1"}}, [],
     "more than once (to allow it: --duplicates first, last or keep on the command line"),
])
def test_bad_step_judgments_exit_2_and_write_nothing(tmp_path, capsys, problem, change, extra, message):
    judgments = _judgments(tmp_path, **change)
    out = tmp_path / "cleaned.parquet"
    code = accord_main(["aggregate", "--input", str(judgments), "--method", "first-error", "--output", str(out),
                        *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, problem
    assert message in err[0] and "judgments.csv" in err[0] and "column" in err[0], err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judgments.csv"]


def test_a_separator_missing_from_the_tokenizer_exits_2_and_writes_nothing(workspace, tmp_path, capsys):
    out = tmp_path / "prm"
    code = accord_main(["train", "--task", "steps", "--model", workspace["bert"], "--train-path", workspace["data"],
                        "--output-dir", str(out), "--step-separator", "ки", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    # the flag typed, not the config's keyword ('config: step_separator ...' before)
    assert "--step-separator 'ки' is not a single token" in err[0] and "'[SEP]'" in err[0]
    assert "config" not in err[0] and "step_separator" not in err[0], err[0]
    assert not out.exists()


def test_a_separator_the_embeddings_lack_is_one_error_naming_it(workspace):
    # was: a step token added to the tokenizer without resizing the embeddings was taken, and training failed at
    # the first batch with "IndexError: index out of range in self" deep in the embedding
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(workspace["llama"])
    tokenizer.add_tokens(["<step>"])
    with pytest.raises(AccordError, match=r"config: the tokenizer's step_separator '<step>' \(id \d+\) has no row"):
        RewardTrainer(config(workspace, "added-separator", step_separator="<step>"), tokenizer=tokenizer)


def test_a_separator_the_embeddings_lack_names_the_flag_on_the_command_line(workspace, tmp_path, capsys):
    # the command line said "config: the tokenizer's step_separator ...", where the user typed --step-separator
    import shutil

    from transformers import AutoTokenizer

    model = shutil.copytree(workspace["llama"], tmp_path / "llama")
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    tokenizer.add_tokens(["<step>"])
    tokenizer.save_pretrained(str(model))
    out = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", str(model), "--train-path", workspace["data"],
                        "--output-dir", str(out), "--step-separator", "<step>", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the tokenizer's --step-separator '<step>'" in err, err
    assert "config" not in err and not out.exists(), err


def test_stepwise_layout_is_read_and_checked(tmp_path):
    frame = pd.DataFrame({"prompt": ["q", "r"], "completions": [["a", "b", "c"], ["d"]],
                          "labels": [[True, True, False], [True]], "problem_id": ["p", "p"]})
    table = load_steps(frame)
    assert table["first_error"].tolist() == [2, 1] and table["p_all_correct"].tolist() == [0.0, 1.0]
    assert table["problem_id"].tolist() == ["p", "p"]
    with pytest.raises(ValidationError, match="column 'labels'.*row 1"):
        load_steps(frame.assign(labels=[[1, 1, 0], [1, 0]]))
    with pytest.raises(ValidationError, match="column 'labels'.*row 0"):
        load_steps(frame.assign(labels=[[1, 1, 2], [1]]))
    with pytest.raises(ValidationError, match="column 'completions'.*row 1"):
        load_steps(frame.assign(completions=[["a", "b", "c"], []]))
    with pytest.raises(AccordError, match="not found"):
        load_steps(tmp_path / "missing.parquet")


# ----------------------------------------------------------------------------------------------------------------------
# step metrics
# ----------------------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=2, max_size=30))
def test_auroc_matches_sklearn_with_tied_scores(rows):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    score, outcome = (np.array(column) for column in zip(*rows))
    if outcome.all() or not outcome.any():
        assert np.isnan(auroc(score.astype(float), outcome))
    else:
        assert auroc(score.astype(float), outcome) == pytest.approx(sklearn_metrics.roc_auc_score(outcome, score))


@pytest.mark.parametrize("name", ["score", "outcome"])
def test_auroc_names_a_nan_input(name):
    # was: a NaN score gave a NaN AUROC, a NaN outcome counted as a positive (NaN is True to astype(bool))
    arrays = {"score": np.array([0.1, 0.4, 0.35, 0.8]), "outcome": np.array([0.0, 0.0, 1.0, 1.0])}
    arrays[name][2] = np.nan
    with pytest.raises(AccordError, match=f"{name}: 1 of 4 values are NaN \\(the first at position 2\\)"):
        auroc(arrays["score"], arrays["outcome"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 1.0, 0.2, 0.5, 0.9, 2.0])), min_size=2,
                max_size=20))
def test_auroc_refuses_an_outcome_that_is_not_true_or_false(rows):
    # was: astype(bool) read a soft outcome (a step label of 0.2) as a positive, so the AUROC of soft labels was NaN
    # (every step positive) or that of "label > 0", without a word
    score, outcome = (np.array(column, dtype=float) for column in zip(*rows))
    soft = ~np.isin(outcome, (0.0, 1.0))
    if soft.any():
        first = np.flatnonzero(soft)[0]
        with pytest.raises(AccordError, match=f"outcome: must be True/False or 1/0.*position {first}"):
            auroc(score, outcome)
    else:  # 1/0 and True/False are one outcome
        assert auroc(score, outcome) == pytest.approx(auroc(score, outcome == 1.0), nan_ok=True)


def test_step_metrics_match_hand_values():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert np.isnan(auroc(np.array([0.2, 0.3]), np.array([1, 1])))
    p = np.array([0.9, 0.4, 0.8, 0.7, 0.6, 0.2])
    n = np.array([3, 2, 1])
    assert first_flagged_step(p, n).tolist() == [1, 2, 0]
    assert np.allclose(solution_scores(p, n, "min"), [0.4, 0.6, 0.2])
    assert np.allclose(solution_scores(p, n, "last"), [0.8, 0.6, 0.2])
    assert np.allclose(np.exp(solution_scores(p, n, "product")), [0.9 * 0.4 * 0.8, 0.42, 0.2])
    picked = best_of_n(np.array([0.3, 0.9, 0.5, 0.1]), np.array([1, 0, 1, 0]), np.array(["a", "a", "b", "b"]))
    assert picked["accuracy"] == 0.5 and picked["random"] == 0.5 and picked["oracle"] == 1.0
    # a candidate without a problem was one problem to the pick and none to the random and oracle columns
    with pytest.raises(AccordError, match="1 candidates have no problem"):
        best_of_n(np.array([0.3, 0.9, 0.5]), np.array([1, 0, 1]), np.array(["a", "a", None], dtype=object))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=6), st.integers(0, 5), st.sampled_from(["empty", "fewer",
                                                                                                 "more"]))
def test_step_counts_that_do_not_lay_out_the_scores_are_one_error_naming_n_steps(n_steps, at, problem):
    # was: a solution of 0 steps took its neighbour's score (reduceat reads an empty segment as the next value) and
    # counts adding up to fewer steps than the scores left the rest out ('last' gave a score per counted solution),
    # each without a word; first_flagged_step failed with numpy's broadcast error
    p = np.linspace(0.05, 0.95, sum(n_steps))
    counts = list(n_steps)
    if problem == "empty":
        counts.insert(at % (len(counts) + 1), 0)
        message = "n_steps: every solution has a whole number of steps >= 1"
    else:
        counts[at % len(counts)] += -1 if problem == "fewer" else 1
        message = "n_steps: the .* solutions have .* steps in all, but p_correct holds"
    if problem == "fewer" and counts[at % len(counts)] == 0:
        message = "n_steps: every solution has a whole number of steps >= 1"
    for call in [lambda: first_flagged_step(p, np.array(counts))] + [
            lambda how=how: solution_scores(p, np.array(counts), how) for how in ("min", "product", "last")]:
        with pytest.raises(AccordError, match=message):
            call()
    # the counts that do lay the scores out give one value per solution
    assert len(first_flagged_step(p, np.array(n_steps))) == len(n_steps)
    assert all(len(solution_scores(p, np.array(n_steps), how)) == len(n_steps) for how in ("min", "product", "last"))


@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.5])
def test_a_step_score_that_is_no_probability_is_one_error_naming_p_correct(bad):
    # was read on without a word: a NaN step was never the first flagged one (the solution predicted to have no
    # error), 'last' gave a solution the score 1.5, 'product' clipped it to 1 while 'min' kept it
    p = np.array([0.9, bad, 0.8])
    for call in [lambda: first_flagged_step(p, np.array([2, 1]))] + [
            lambda how=how: solution_scores(p, np.array([2, 1]), how) for how in ("min", "product", "last")]:
        with pytest.raises(AccordError, match=r"p_correct: .*step 1 of solution 0"):
            call()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=3), min_size=2, max_size=5))
def test_the_product_of_steps_ranks_solutions_as_the_product_does(exponents):
    # was: each step clipped at 1e-12 before its log, so a solution whose weakest step was 1e-15 tied with one at
    # 1e-30 (both log(1e-12)): best-of-n by product counted the two as a tie where the product (and min) ranks them
    p = np.array([10.0 ** -k for steps in exponents for k in steps])
    n_steps = np.array([len(steps) for steps in exponents])
    product = np.array([sum(steps) for steps in exponents])  # -log10 of each solution's product, exactly
    scores = solution_scores(p, n_steps, "product")
    assert np.allclose(scores, -product * np.log(10.0))
    picked = best_of_n(scores, product == product.min(), np.zeros(len(exponents)))
    assert picked["accuracy"] == 1.0  # the highest product is the one picked, whichever it is
    assert solution_scores(np.array([0.0, 0.5, 0.0]), np.array([2, 1]), "product")[0] == -np.inf  # a product of 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([0.2, 1.0, 1.0]), st.booleans()), min_size=1,
                max_size=15), st.randoms())
def test_best_of_n_breaks_a_tie_at_random_not_by_row_order(rows, shuffle):
    # was: the first of tied candidates was picked, so with saturated scores (sigmoid = 1) the accuracy depended on
    # the order of the rows
    group, score, correct = (np.array(column) for column in zip(*rows))
    expected = np.mean([correct[(group == g) & (score == score[group == g].max())].mean() for g in np.unique(group)])
    assert best_of_n(score, correct, group)["accuracy"] == pytest.approx(expected)
    order = list(range(len(rows)))
    shuffle.shuffle(order)
    assert best_of_n(score[order], correct[order], group[order])["accuracy"] == pytest.approx(expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.floats(0, 1), st.booleans()), min_size=1, max_size=10),
       st.integers(0, 9), st.sampled_from([np.nan, None, 0.5, "False"]))
def test_best_of_n_refuses_a_correctness_that_is_not_true_or_false(rows, at, bad):
    # was: a missing correctness (NaN, None) was skipped by the means, so its group's pick counted as no group in
    # the accuracy yet as one in n_groups; a text was numpy's ValueError
    group, score, correct = (np.array(column) for column in zip(*rows))
    assert best_of_n(score, correct.astype(int), group) == best_of_n(score, correct, group)  # 1/0 as True/False
    flags = correct.astype(object)
    flags[at % len(rows)] = bad
    with pytest.raises(AccordError, match=f"correct: must be True/False or 1/0.*position {at % len(rows)}"):
        best_of_n(score, flags, group)


def test_best_of_n_names_a_nan_score():
    with pytest.raises(AccordError, match="score: 1 candidates have a NaN score \\(the first at position 1\\)"):
        best_of_n(np.array([0.3, np.nan, 0.5]), np.array([1, 0, 1]), np.array(["a", "a", "b"]))


def test_solutions_without_a_problem_are_left_out_of_best_of_n():
    # their problem ids read as the text "nan" made one more problem of unrelated solutions
    from accord.reward.steps import step_reward_metrics

    class Steps:  # what the metrics read of tokenized steps: the flat step labels and each solution's step count
        label = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
        n_steps = np.array([2, 1, 1, 1, 1])

        def __len__(self) -> int:
            return 5

    table = pd.DataFrame({"solution_id": list("abcde"), "n_steps": [2, 1, 1, 1, 1], "first_error": [2, 0, 1, 1, 0],
                          "is_correct": [True, False, True, True, False],
                          "problem_id": ["p1", "p1", None, None, "p2"]})
    table["problem_id"] = table["problem_id"].astype(object)
    metrics = step_reward_metrics(np.array([2.0, 1.0, -1.0, 0.5, 0.5, -1.0]), Steps(), table)
    # p1 (two solutions); p2 (one) has nothing to choose between and is left out, counted
    assert metrics["bon_problems"] == 1 and metrics["bon_n"] == 2 and metrics["bon_single_left_out"] == 1


@pytest.mark.parametrize("flag", [np.nan, "False", "yes", 2])
def test_an_is_correct_that_is_no_boolean_is_one_error_naming_its_row(flag):
    # was: astype(bool) made NaN and the text "False" True, so the pick of an unknown or wrong solution counted right
    from accord.reward.steps import step_reward_metrics

    class Steps:
        label = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
        n_steps = np.array([1, 1, 1, 1, 1])

        def __len__(self) -> int:
            return 5

    table = pd.DataFrame({"solution_id": list("abcde"), "n_steps": 1, "first_error": [1, 1, 0, 1, 1],
                          "is_correct": pd.Series([True, False, False, True, None], dtype=object),
                          "problem_id": ["p1", "p1", "p2", "p2", None]})
    logit = np.array([-1.0, 2.0, 1.0, -2.0, 0.0])
    clean = step_reward_metrics(logit, Steps(), table)  # e has no problem: its missing flag is not read
    assert clean["bon_problems"] == 2 and clean["bon_min"] == 0.0  # both picks are the wrong solution
    table.loc[1, "is_correct"] = flag
    with pytest.raises(ValidationError, match="column 'is_correct', row 1.*True or False"):
        step_reward_metrics(logit, Steps(), table)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".tsv", ".csv.gz", ".jsonl.gz", ".tsv.bz2", ".json"])
def test_aggregate_recognises_a_step_table_in_every_input_format(tmp_path, capsys, suffix):
    """The step table is recognised from the file's header; a JSONL header line was handed to pandas.read_json as
    a literal, which pandas 3 reads as a path, so a .jsonl step table was taken for pairwise judgments ('missing
    required column pair_id'). Compressed files (which every reader takes) and JSON arrays were not looked at."""
    frame = pd.read_csv(_judgments(tmp_path))
    path = tmp_path / f"steps{suffix}"
    if suffix.startswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if suffix.startswith(".tsv") else ",", index=False)
    out = tmp_path / "cleaned.parquet"
    assert accord_main(["aggregate", "--input", str(path), "--method", "first-error", "--output", str(out)]) == 0, \
        capsys.readouterr().err
    assert len(pd.read_parquet(out)) == 2


def test_aggregate_passes_its_seed_to_the_first_error_model(tmp_path):
    """``--seed`` was not handed to the step model: first-error's outcome columns come from posterior draws, and
    every seed gave the seed-0 dataset."""
    from accord.datasets.steps.synthetic import make_synthetic_steps

    path = tmp_path / "steps.csv"
    make_synthetic_steps(20, candidates_per_problem=2, labelled_per_problem=2, n_annotators=6, seed=0).judgments.to_csv(
        path, index=False)
    frames = {}
    for seed in ("0", "5"):
        out = tmp_path / f"cleaned{seed}.parquet"
        assert accord_main(["aggregate", "--input", str(path), "--method", "first-error", "--seed", seed, "--output",
                            str(out), "--quiet"]) == 0
        frames[seed] = pd.read_parquet(out)
    assert not np.allclose(frames["0"]["p_all_correct"], frames["5"]["p_all_correct"])


@pytest.mark.parametrize("labels", [["yes", "no"], [{"a": 1}, 1], [[1], [0]]])
def test_step_labels_that_are_not_numbers_are_one_line(labels):
    # np.asarray's ValueError / TypeError / IndexError came out as a traceback
    from accord.reward.steps import load_steps

    with pytest.raises(ValidationError, match="column 'labels', row 1"):
        load_steps(pd.DataFrame({"completions": [["s1", "s2"], ["s1", "s2"]], "labels": [[1, 0], labels]}))


@pytest.mark.parametrize("column, cell", [("completions", np.array("s1")), ("completions", np.array(0.5)),
                                          ("labels", np.array(1.0)), ("labels", np.array([[1.0, 0.0]]))])
def test_a_step_list_that_is_a_0d_or_2d_array_is_one_line(column, cell):
    # a 0-d numpy array is no list of steps (nor of labels): iterating it was Python's raw "TypeError: iteration over
    # a 0-d array" from load_steps
    frame = pd.DataFrame({"completions": [["s1", "s2"], ["s1", "s2"]], "labels": [[1, 0], [1, 1]]})
    frame[column] = frame[column].astype(object)
    frame.at[1, column] = cell
    with pytest.raises(ValidationError, match=f"column '{column}', row 1"):
        load_steps(frame)


def test_a_prompt_that_is_a_0d_array_is_read_as_its_value():
    # a 0-d numpy array holds one value, here the problem's text: the check for chat messages iterated it, Python's
    # raw "TypeError: iteration over a 0-d array"
    frame = pd.DataFrame({"prompt": [np.array("what is 2+2"), "q"], "completions": [["s1"], ["s2"]],
                          "labels": [[1], [0]]})
    assert load_steps(frame)["prompt"].tolist() == ["what is 2+2", "q"]


def test_a_step_dataset_that_repeats_a_solution_id_is_one_error_naming_both_rows(workspace, tmp_path, capsys):
    # was: a stepwise table listing one solution_id on two rows (two solutions under one id) was read, trained on and
    # scored: `accord score` wrote two rows for each (solution_id, step), which no join back to the solutions can
    # tell apart, while the cleaned step dataset refuses the same repeat ("one row per solution")
    frame = pd.DataFrame({"solution_id": ["x", "y", "x"], "completions": [["a", "b"], ["d"], ["c"]],
                          "labels": [[1, 0], [1], [1]], "problem_id": ["p", "p", "p"]})
    with pytest.raises(ValidationError, match=r"column 'solution_id', row 2: solution 'x' again, first at row 0"):
        load_steps(frame)
    with pytest.raises(ValidationError, match="row 2"):
        load_steps(frame.drop(columns="labels"), need_labels=False)  # scoring's read
    # ids that would be one id once read as text (the number 7 and the text '7'): refused as every id column's are
    with pytest.raises(ValidationError, match="column 'solution_id', row 1: ids mix texts and numbers"):
        load_steps(frame.assign(solution_id=pd.Series([7, "y", "7"], dtype=object)))
    # a table load_steps gave, read again, is checked the same way
    own = load_steps(frame.assign(solution_id=["x", "y", "z"])).assign(solution_id=["x", "y", "x"])
    with pytest.raises(ValidationError, match="row 2"):
        load_steps(own)
    # the command line: one line naming the file, and nothing written
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", workspace["data"],
                        "--output-dir", str(model), "--batch-size", "4", "--max-steps", "1", "--no-progress"]) == 0
    data = tmp_path / "steps.jsonl"
    frame.to_json(data, orient="records", lines=True)
    capsys.readouterr()
    for argv in (["score", str(model), str(data), "--out", str(tmp_path / "scores.csv")],
                 ["evaluate", str(model), str(data)]):
        assert accord_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "steps.jsonl" in err and "solution 'x' again" in err, err
    assert not (tmp_path / "scores.csv").exists()
    # one id per solution: read as before
    assert load_steps(frame.assign(solution_id=["x", "y", "z"]))["solution_id"].tolist() == ["x", "y", "z"]


@pytest.mark.parametrize("layout", ["stepwise", "cleaned"])
@pytest.mark.parametrize("ids, problem", [([None, "a", "b"], "row 0: missing id"),
                                          (["a", "  ", "b"], "row 1: missing id"),
                                          (["a", " a", "b"], "column 'solution_id'"),
                                          ([7, "a", "b"], "mix texts and numbers")])
def test_a_step_dataset_whose_solution_id_is_missing_or_blank_is_one_error(tmp_path, layout, ids, problem):
    # was: a missing id was read as the solution "nan" (or None), a blank one as "", and 'a' beside Excel's 'a ' as two
    # solutions: scored rows that no join back names, as every other table's ids (check_ids) refuse them
    frame = toy_steps(3) if layout == "cleaned" else pd.DataFrame({"completions": [["x"], ["y", "z"], ["w"]],
                                                                     "labels": [[1], [1, 0], [0]]})
    frame = frame.assign(solution_id=pd.Series(ids, dtype=object))
    with pytest.raises(ValidationError, match=problem):
        load_steps(frame)
    path = tmp_path / "steps.jsonl"
    frame.to_json(path, orient="records", lines=True)
    with pytest.raises(ValidationError, match=f"steps.jsonl, column 'solution_id'"):
        load_steps(path)
    if layout == "cleaned":  # the cleaned reader itself, as the step dataset's every reader
        with pytest.raises(ValidationError, match="column 'solution_id'"):
            read_cleaned_steps(path)
    # ids present, one kind: read as before
    assert load_steps(frame.assign(solution_id=["a", "b", "c"]))["solution_id"].tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("blank", ["", "   ", "\n\t", "\u3000"])
def test_a_step_whose_text_is_empty_or_only_spaces_is_one_error_in_every_step_reader(tmp_path, blank):
    # was: a step of no text (a split on "\n\n" that leaves an empty piece) was read, trained on with its label and
    # scored at a separator right after the step before, as the Math-Shepherd loader refuses it ("an empty step"):
    # now the stepwise layout, the cleaned step dataset and the judgments an aggregation writes it from all refuse it,
    # naming the column, the row and the step
    stepwise = pd.DataFrame({"completions": [["x", "y"], ["z", blank, "w"]], "labels": [[1, 1], [1, 0, 0]]})
    for need_labels in (True, False):  # training's and scoring's read
        with pytest.raises(ValidationError, match=r"column 'completions', row 1: step 1 has no text"):
            load_steps(stepwise, need_labels=need_labels)
    path = tmp_path / "steps.jsonl"
    stepwise.to_json(path, orient="records", lines=True)
    with pytest.raises(ValidationError, match=r"steps.jsonl, column 'completions', row 1: step 1 has no text"):
        load_steps(path)
    # the cleaned step dataset
    cleaned = toy_steps(3)
    cleaned.at[2, "completions"] = [blank, *cleaned.at[2, "completions"][1:]]
    with pytest.raises(ValidationError, match=r"column 'completions', row 2: step 0 has no text"):
        load_steps(cleaned)
    cleaned.to_json(path, orient="records", lines=True)
    for read in (load_steps, read_cleaned_steps):
        with pytest.raises(ValidationError, match=r"steps.jsonl, column 'completions', row 2: step 0 has no text"):
            read(path)
    # the judgments the cleaned dataset is written from: refused before the fit, naming the row
    from accord.aggregate import StepVoteFraction, build_cleaned_steps
    from accord.aggregate.steps import check_step_texts
    from accord.datasets.steps import validate_steps

    judgments = validate_steps(pd.DataFrame({"solution_id": ["s", "s", "t"], "step": [0, 1, 0],
                                             "annotator": ["a", "a", "a"], "label": [1, 0, 1],
                                             "step_text": ["x", blank, "z"]}))
    with pytest.raises(ValidationError, match=r"column 'step_text', row 1: step 1 of solution 's' has no text"):
        check_step_texts(judgments)
    with pytest.raises(AccordError, match="step 1 of solution 's' has no text"):
        build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    # a text with spaces around it is a text: read as before
    assert load_steps(stepwise.assign(completions=[["x", "y"], ["z", " v ", "w"]]))["n_steps"].tolist() == [2, 3]


@pytest.mark.parametrize("dropped", ["n_annotators", "label_uncertainty", "outcome_weight"])
def test_a_cleaned_step_dataset_missing_a_column_is_refused_not_read_as_the_stepwise_layout(tmp_path, dropped):
    # was: without every cleaned column the file was read as TRL's stepwise layout, silently: its label weights became
    # 1, its p_all_correct the product of the step labels and its outcome weight 1, all trained on without a word
    judgments = pd.DataFrame({"solution_id": ["s", "s", "t"], "step": [0, 1, 0], "annotator": ["a", "b", "a"],
                              "label": [1, 0, 1], "step_text": ["x", "y", "z"]})
    from accord.aggregate import StepVoteFraction, build_cleaned_steps

    frame = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments).drop(columns=dropped)
    with pytest.raises(ValidationError, match=f"column '{dropped}'"):
        load_steps(frame)
    frame.to_parquet(tmp_path / "steps.parquet")
    with pytest.raises(ValidationError, match=f"steps.parquet, column '{dropped}'"):
        load_steps(tmp_path / "steps.parquet")
    # TRL's stepwise layout itself (no column only the cleaned dataset has) is read as before
    assert load_steps(frame[["prompt", "completions", "labels"]])["label_weights"].tolist() == [[1.0, 1.0], [1.0]]


STEPWISE_ODD = [None, np.nan, "0.5", b"x", True, 2, 1.5, [0.5], {"a": 1}, (0.5,), [], [None], np.array(0.5),
                np.array("a"), np.array([]), np.array([[0.5, 0.5]]), np.array(["a"], dtype=object), [np.str_("a")],
                # chat messages without a role or a content, or beside a text: a prompt's were a raw KeyError/TypeError
                [{"content": "q"}], [{"role": "user"}], [{"role": "user", "content": "q"}, "a"],
                np.array([{"content": "q"}], dtype=object)]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.data(), lengths=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       column=st.sampled_from(["completions", "labels", "prompt"]), need_labels=st.booleans())
def test_a_stepwise_table_with_one_odd_cell_is_read_or_refused_in_one_line(data, lengths, column, need_labels):
    # one cell of the stepwise layout made odd: load_steps reads it or raises AccordError naming the column and row,
    # never Python's or numpy's own error (a 0-d array was "iteration over a 0-d array" from three places)
    frame = pd.DataFrame({"prompt": "q", "completions": [[f"s{t}" for t in range(n)] for n in lengths],
                          "labels": [[1.0] * n for n in lengths]})
    row = data.draw(st.integers(0, len(lengths) - 1))
    frame[column] = frame[column].astype(object)
    frame.at[row, column] = data.draw(st.sampled_from(STEPWISE_ODD))
    try:
        table = load_steps(frame, need_labels=need_labels)
    except AccordError as error:
        # (a list of steps of another length is the labels' fault: they no longer match it)
        named = [f"column '{c}', row {row}" for c in {column, "labels"}]
        assert "\n" not in str(error) and any(n in str(error) for n in named), str(error)
        return
    assert table["n_steps"].tolist() == [len(c) for c in table["completions"]]
    assert all(isinstance(s, str) for c in table["completions"] for s in c)
    assert all(isinstance(p, str) for p in table["prompt"])


def test_calibrating_a_process_reward_model_is_one_error_and_writes_nothing(workspace, tmp_path, capsys):
    # `accord calibrate` fitted a temperature to the pairwise logits of a step model and saved it, though neither
    # evaluate nor score of a step model applies one
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", workspace["data"],
                        "--output-dir", str(model), "--batch-size", "4", "--max-steps", "1", "--no-progress"]) == 0
    pairs = tmp_path / "pairs.jsonl"
    pd.DataFrame({"chosen": ["right answer", "cat sat"] * 3, "rejected": ["wrong mistake", "error dog"] * 3,
                  "p_chosen": 0.8}).to_json(pairs, orient="records", lines=True)
    before = (model / "reward_model.json").read_text()
    capsys.readouterr()
    assert accord_main(["calibrate", str(model), str(pairs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task 'steps'" in err
    assert (model / "reward_model.json").read_text() == before


def test_an_ensemble_of_process_reward_models_is_one_error(workspace, tmp_path, capsys):
    # score_ensemble read each member's 'reward_normalised', which step scores do not have: a KeyError traceback
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", workspace["data"],
                        "--output-dir", str(model), "--batch-size", "4", "--max-steps", "1", "--no-progress"]) == 0
    responses, out = tmp_path / "responses.jsonl", tmp_path / "scored.csv"
    pd.DataFrame({"response": ["right answer", "wrong mistake"]}).to_json(responses, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main(["score", f"{model},{model}", str(responses), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task 'steps'" in err and not out.exists()


def test_scoring_and_evaluating_steps_refuse_a_nan_score_of_a_step_read_not_of_a_truncated_one(workspace,
                                                                                                 monkeypatch):
    """A step cut off by max_length has NaN scores by design; a NaN score of a step the model read (a diverged
    model) was written on as a score by score_steps and passed on as NaN metrics by evaluate_steps. Each is now one
    error naming the model and the first such step; cut steps are no error."""
    import accord.reward.steps as steps_module

    cfg = config(workspace, "nan-scores", max_steps=1)
    train(cfg)
    frame = toy_steps(6, seed=7)
    n_steps = int(frame["n_steps"].sum())
    assert score(cfg.output_dir, frame)["reward"].notna().all()
    truncated = score(cfg.output_dir, frame, max_length=24)
    read = np.flatnonzero(truncated["reward"].notna().to_numpy())
    assert 2 < len(read) < n_steps  # cut steps: NaN, and no error
    assert evaluate(cfg.output_dir, frame, max_length=24)["n_steps"] == len(read)
    real = steps_module.predict_steps
    nan_at = 2  # of the steps the model reads

    def nan_step(*args, **kwargs):
        pred = real(*args, **kwargs)
        pred["reward"][nan_at] = np.nan
        pred["logit"][nan_at] = np.nan
        return pred

    monkeypatch.setattr(steps_module, "predict_steps", nan_step)
    for function in (score, evaluate):
        for max_length, row in ((None, nan_at), (24, read[nan_at])):
            with pytest.raises(AccordError, match=f"^{cfg.output_dir}: reward: 1 of {n_steps} steps are NaN \\(the "
                                                  f"first at position {row}\\)"):
                function(cfg.output_dir, frame, max_length=max_length)


def test_the_trainer_s_evaluation_refuses_a_nan_step_score_as_accord_evaluate_does(workspace, monkeypatch):
    """Was: the in-trainer evaluation of the steps task passed a NaN step score on as NaN or wrong metrics, while
    accord evaluate (evaluate_steps) refused it. Now it is the same error, naming the first such step by its position
    among all the evaluation data's steps."""
    import accord.reward.steps as steps_module

    frame = toy_steps(6, seed=7)
    trainer = RewardTrainer(config(workspace, "nan-eval", max_steps=1), eval_data=frame)
    real = steps_module.predict_steps
    nan_at = 2

    def nan_step(*args, **kwargs):
        pred = real(*args, **kwargs)
        pred["reward"][nan_at] = np.nan
        pred["logit"][nan_at] = np.nan
        return pred

    assert np.isfinite(trainer.evaluate()["step_nll"])
    monkeypatch.setattr(steps_module, "predict_steps", nan_step)
    n_steps = int(frame["n_steps"].sum())
    with pytest.raises(AccordError, match=f"^evaluation data: reward: 1 of {n_steps} steps are NaN \\(the first at "
                                          f"position {nan_at}\\)"):
        trainer.evaluate()


@pytest.mark.parametrize("target", ["steps", "outcome"])
def test_training_steps_whose_weights_are_all_zero_are_refused_before_loading(workspace, tmp_path, target):
    """Was: the weighted loss was 0 at every step (its weights normalised by a mean of 0), so the steps task trained
    a model that never moved, without a word, where the pairwise task refuses such data. Now it is one error naming
    the file and the column, before a model is loaded; a loss that ignores weights still trains."""
    frame = toy_steps(8, seed=4)
    frame["label_uncertainty"] = frame["label_uncertainty"].map(lambda u: [0.5] * len(u))  # 1 - 2 * 0.5 = 0
    frame["label_weights"] = frame["label_weights"].map(lambda w: [0.0] * len(w))
    frame["outcome_weight"] = 0.0
    path = write_cleaned_steps(frame, tmp_path / "zero.parquet")
    column = "outcome_weight" if target == "outcome" else "label_weights"
    absent = str(tmp_path / "no-model")
    with pytest.raises(AccordError, match=f"zero.parquet, column '{column}': every training .* has weight 0"):
        RewardTrainer(config(workspace, f"zero-{target}", model=absent, train_path=str(path), step_target=target))
    RewardTrainer(config(workspace, f"zero-{target}-unweighted", train_path=str(path), step_target=target,
                         loss="soft_bce"))


def test_a_step_scored_exactly_even_counts_in_training_as_the_evaluation_counts_it(workspace):
    """Was: the training log's step_accuracy took a step scored exactly even (d = 0, P = 1/2) for 'judged wrong'
    (d > 0), while the evaluation's step_accuracy (P >= 1/2) and first-error location (P < 1/2 flagged) take it for
    'judged correct', so the two disagreed on the same model and steps. Now both use one rule (step_hits)."""
    frame = toy_steps(12, seed=8)
    labels = np.concatenate(frame["labels"].to_numpy())
    assert (labels >= 0.5).any() and (labels < 0.5).any()
    trainer = RewardTrainer(config(workspace, "even-steps", max_steps=1), train_data=frame, eval_data=frame)
    logged = logged_sums(trainer, even=True)["step_accuracy"]  # every step scored exactly even
    evaluated = trainer.evaluate()["step_accuracy"]
    assert evaluated == pytest.approx(float((labels >= 0.5).mean()))
    assert logged == pytest.approx(evaluated)


def test_evaluate_out_of_a_step_dataset_without_a_wrong_step_is_valid_json(workspace, tmp_path, capsys):
    """Where every held-out step is right, step_auroc (and the first-error F1) are undefined: `accord evaluate prm
    steps --out m.json` wrote them as bare NaN tokens, which are no JSON (jq, JavaScript and strict parsers refuse
    the file). They are now null, in the file and in what is printed."""
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", workspace["data"],
                        "--output-dir", str(model), "--batch-size", "4", "--max-steps", "1", "--no-progress"]) == 0
    right = tmp_path / "right.jsonl"
    rows = [{"prompt": "q", "completions": ["so it adds", "checks out"], "labels": [True, True]},
            {"prompt": "r", "completions": ["fine"], "labels": [True]}]
    right.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "metrics.json"
    capsys.readouterr()
    assert accord_main(["evaluate", str(model), str(right), "--out", str(out), "--quiet"]) == 0

    def no_bare_constants(token):
        raise ValueError(f"{token} is no JSON")

    for text in (out.read_text(), capsys.readouterr().out):
        metrics = json.loads(text, parse_constant=no_bare_constants)
        assert metrics["step_auroc"] is None and metrics["n_steps"] == 3


def test_a_bad_saved_separator_names_the_model_folder_and_its_file(workspace, tmp_path, capsys):
    """Was: ``config: 'step_separator' ... is not a single token`` at score time, a setting the user of `accord score`
    cannot give; now one line naming the model's folder, its reward_model.json and what to set there."""
    cfg = config(workspace, "bad-separator", max_steps=1, output_dir=str(tmp_path / "model"))
    train(cfg)
    meta_path = Path(cfg.output_dir) / "reward_model.json"
    meta = json.loads(meta_path.read_text())
    meta["step_separator"] = "checks out fine"  # three tokens
    meta_path.write_text(json.dumps(meta))
    out = tmp_path / "scores.csv"
    capsys.readouterr()
    assert accord_main(["score", cfg.output_dir, workspace["data"], "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {cfg.output_dir}" in err and "reward_model.json" in err, err
    assert "config:" not in err and "'checks out fine'" in err and not out.exists(), err
    with pytest.raises(AccordError, match="reward_model.json"):
        score(cfg.output_dir, workspace["data"])


def test_step_metrics_give_their_counts_as_whole_numbers(workspace):
    """`accord evaluate` of a process reward model wrote n_solutions, n_steps and the truncation counts as floats
    (3.0): counts are ints, in the printed and the written JSON alike."""
    from accord.reward.steps import evaluate_steps

    cfg = config(workspace, "counts", max_steps=1)
    train(cfg)
    metrics = evaluate_steps(cfg.output_dir, workspace["data"])
    counts = [key for key in metrics if key.startswith(("n_", "truncated_"))]
    assert {"n_solutions", "n_steps"} <= set(counts)
    assert all(type(metrics[key]) is int for key in counts), {key: metrics[key] for key in counts}


@pytest.mark.parametrize("target", ["steps", "outcome"])
def test_training_and_evaluating_steps_say_once_how_many_steps_max_length_cut(workspace, tmp_path, target, capsys):
    """Was: a process reward model trained (and evaluated) on steps --max-length left out without a word: the
    count was in the printed JSON alone, where the pairwise task warns in one line. Now the step target warns as
    the pairwise path does, counting the steps; the outcome target keeps its one warning of the solutions it
    leaves out (not a second); `accord evaluate` says it once too."""
    import warnings

    table = load_steps(workspace["data"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = RewardTrainer(config(workspace, f"cut-{target}", max_length=24, max_steps=1, step_target=target))
    said = [str(w.message) for w in caught if "max_length" in str(w.message)]
    assert len(said) == 1, said
    if target == "steps":
        cut = trainer.train_data.truncated_steps
        assert 0 < cut < table["n_steps"].sum()
        assert said[0].startswith(f"{cut} of the {table['n_steps'].sum()} steps did not fit max_length 24"), said
    else:
        assert "cuts the steps of" in said[0], said
    if target == "outcome":
        return
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", workspace["data"],
                        "--output-dir", str(model), "--batch-size", "8", "--max-steps", "1", "--max-length", "24",
                        "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("accord: warning: ") and "--max-length 24" in err[0], err
    assert accord_main(["evaluate", str(model), workspace["data"], "--quiet"]) == 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    metrics = json.loads(captured.out)
    assert len(err) == 1 and err[0].startswith(f"accord: warning: evaluate: {metrics['truncated_steps']} of the "
                                               f"{table['n_steps'].sum()} steps did not fit --max-length 24"), err


def test_scoring_steps_says_once_how_many_steps_max_length_cut(workspace, tmp_path, capsys):
    """Was: `accord score` of a process reward model gave the steps --max-length cut off NaN scores without a word,
    where the pairwise score warns of the responses it cuts. Now it warns once, naming the flag."""
    model = tmp_path / "prm"
    assert accord_main(["train", "--task", "steps", "--model", workspace["llama"], "--train-path", workspace["data"],
                        "--output-dir", str(model), "--batch-size", "8", "--max-steps", "1", "--no-progress"]) == 0
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", str(model), workspace["data"], "--max-length", "24", "--quiet",
                        "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    scored = pd.read_csv(out)
    assert len(err) == 1 and err[0].startswith("accord: warning: score: "), err
    assert f"of the {len(scored)} steps did not fit --max-length 24" in err[0] and "NaN scores" in err[0], err
    assert scored["reward"].isna().sum() > 0


def test_the_training_log_is_json_where_an_evaluation_measure_is_undefined(workspace):
    """Was: metrics.jsonl held bare NaN tokens (eval_step_auroc of evaluation data whose steps are all correct), no
    JSON: jq, JavaScript and strict parsers refused the trainer's log, as they refused `accord evaluate --out` before
    it wrote null. Now an undefined measure is null there too."""
    frame = toy_steps(48)
    right = frame[frame["first_error"] == frame["n_steps"]].reset_index(drop=True)  # one class of steps only
    eval_path = write_cleaned_steps(right, workspace["root"] / "all-right.parquet")
    cfg = config(workspace, "undefined-auroc", max_steps=1, eval_path=str(eval_path))
    train(cfg)

    def refuse(token):
        raise ValueError(f"{token} is no JSON")

    records = [json.loads(line, parse_constant=refuse)
               for line in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    evaluated = [record for record in records if "eval_step_auroc" in record]
    assert evaluated and evaluated[-1]["eval_step_auroc"] is None
    assert isinstance(records[0]["loss"], float) and records[0]["step"] == 1


@pytest.mark.parametrize("setting, value", [("pooling", "cls"), ("pooling", "mean"), ("pooling", "last"),
                                            ("loss", "bradley_terry"), ("loss", "label_smoothing"), ("loss", "margin")])
def test_a_setting_the_steps_task_cannot_honour_is_refused_before_loading(workspace, tmp_path, capsys, setting,
                                                                          value):
    """Was: --task steps accepted and ignored --pooling cls, mean or last (it reads one score at each step separator
    whatever the pooling: the same loss for all three), recorded in the saved model as if it had been used; and it
    took --loss bradley_terry, label_smoothing or margin, losses of d alone (a pair's chosen side as the winner) that
    read no step label: every step was trained as correct, the wrong ones too, without a word. Now each is one error
    naming the setting, before a model is loaded; pooling auto and the losses soft_bce and weighted_soft_bce train
    as before."""
    absent = str(tmp_path / "no-model")
    match = "pooling.*'steps' task" if setting == "pooling" else f"loss '{value}'.*step label"
    with pytest.raises(SettingError, match=match):
        RewardTrainer(config(workspace, f"{setting}-{value}", model=absent, **{setting: value}))
    out = tmp_path / "prm"
    capsys.readouterr()
    model = workspace["bert"] if setting == "pooling" else workspace["llama"]
    assert accord_main(["train", "--task", "steps", "--model", model, "--train-path", workspace["data"],
                        "--output-dir", str(out), "--max-steps", "1", f"--{setting}", value, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--{setting}" in err and not out.exists()
    for good in (("auto",) if setting == "pooling" else ("soft_bce", "weighted_soft_bce")):
        RewardTrainer(config(workspace, f"{setting}-{good}", **{setting: good}))


def test_a_step_without_a_text_is_refused_before_the_fit_naming_its_row(tmp_path, capsys, monkeypatch):
    """Was: a step whose rows all lack a step_text was found by build_cleaned_steps, after the whole fit (24 s of the
    first-error model's at a million judgments), in a line naming the solution and the step but no row. Now it is
    refused before the fit, in one line naming the file, the column and the first row of the step."""
    import accord.aggregate

    judgments = _judgments(tmp_path, r5={"step_text": np.nan}, r7={"step_text": np.nan})
    fits = []  # the models made for a fit: the command makes its model, then times its fit
    make = accord.aggregate.make_step_method
    monkeypatch.setattr(accord.aggregate, "make_step_method", lambda *a, **k: fits.append(1) or make(*a, **k))
    out = tmp_path / "cleaned.parquet"
    assert accord_main(["aggregate", "--input", str(judgments), "--method", "first-error", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "judgments.csv" in err[0] and "column 'step_text', row 5" in err[0], err
    assert "step 1 of solution 'b'" in err[0] and not fits and not out.exists()
    # a step with its text in one of its rows is written
    judgments = _judgments(tmp_path, r5={"step_text": np.nan})
    assert accord_main(["aggregate", "--input", str(judgments), "--method", "first-error", "--output", str(out)]) == 0
    assert fits and pd.read_parquet(out)["completions"].map(list).tolist() == [["x", "y"], ["z", "w"]]


def test_a_cleaned_step_dataset_saved_as_a_datasets_folder_or_a_json_array_is_read(workspace, tmp_path):
    """Was: train, evaluate and score read a `datasets` folder (save_to_disk) and a JSON array as they say, but one
    holding a cleaned step dataset was handed to the cleaned file reader, which refused the folder ("cannot tell the
    format from the suffix ''") and read the array as JSON Lines ("missing required column ... 'solution_id'"). Now
    each is read and checked as the Parquet file is (as load_pairs reads a cleaned preference dataset), its rows
    the same."""
    import datasets

    frame = toy_steps(6, seed=5)
    path = write_cleaned_steps(frame, tmp_path / "steps.parquet")
    folder, array = tmp_path / "steps_folder", tmp_path / "steps.json"
    datasets.Dataset.from_pandas(pd.read_parquet(path)).save_to_disk(str(folder))
    read_cleaned_steps(path).to_json(array, orient="records")
    from_file = load_steps(path)
    for other in (folder, array):
        pd.testing.assert_frame_equal(load_steps(other)[from_file.columns].reset_index(drop=True),
                                      from_file.reset_index(drop=True), check_dtype=False)
    broken = tmp_path / "broken_folder"  # a folder is checked as the file is: the missing column named
    datasets.Dataset.from_pandas(pd.read_parquet(path).drop(columns="label_weights")).save_to_disk(str(broken))
    with pytest.raises(ValidationError, match="column 'label_weights'"):
        load_steps(broken)


@pytest.mark.parametrize("method", ["vote-fraction", "first-error"])
def test_a_model_that_reproduces_the_soft_step_labels_finds_every_first_error(method):
    # was: the truth of a cleaned step dataset was its first_error column (the most probable position, the argmax of
    # p_first_error) while the prediction is the first step scored below 1/2 (ProcessBench's rule): a model scoring
    # every step exactly as its label found 0.78 (vote-fraction) or 0.98 (first-error) of the first errors, and the
    # same labels in TRL's stepwise layout (truth: the first label below 1/2) scored 1. One rule now on both sides.
    from scipy.special import logit

    from accord.aggregate import build_cleaned_steps, fit_step_method
    from accord.datasets.steps.synthetic import make_synthetic_steps
    from accord.reward.steps import TokenizedSteps, step_reward_metrics

    data = make_synthetic_steps(n_problems=60, seed=0)
    cleaned = load_steps(build_cleaned_steps(fit_step_method(method, data.judgments).step_labels_, data.judgments))
    n = cleaned["n_steps"].to_numpy()
    label = np.concatenate(cleaned["labels"].map(np.asarray).to_list())
    # the case in point is there: solutions whose most probable first error is not the first step labelled below 1/2
    assert (cleaned["first_error"].to_numpy() != first_flagged_step(label, n)).any()
    steps = TokenizedSteps(ids=[[1]] * len(n), type_ids=None, separators=[np.arange(k) for k in n], n_steps=n,
                           label=label, target=label, weight=np.ones(len(label)), labelled=np.ones(len(label), bool))
    scores = logit(np.clip(label, 1e-9, 1 - 1e-9))
    out = step_reward_metrics(scores, steps, cleaned)
    assert out["first_error_found"] == 1.0 and out["first_error_f1"] == 1.0
    stepwise = load_steps(cleaned[["solution_id", "prompt", "completions", "labels"]])
    assert step_reward_metrics(scores, steps, stepwise)["first_error_found"] == 1.0


@pytest.mark.parametrize("kind", ["stepwise", "cleaned"])
def test_a_table_load_steps_returned_is_read_again_with_its_own_weights(tmp_path, kind):
    """load_steps' own table (its weights and outcome labels filled in) was refused as a cleaned step dataset
    missing 'label_uncertainty', so that a table it returned could not be trained or evaluated on: `python
    benchmarks/process_rewards.py --sections reward` failed so at its first model. Now it reads as it is, its own
    label weights, outcome labels and first errors kept, and one out of range is one error naming the row; a cleaned
    dataset's table reads again as it did."""
    from accord.aggregate import StepVoteFraction, build_cleaned_steps

    if kind == "stepwise":
        source = pd.DataFrame({"prompt": ["q", "r"], "completions": [["a", "b"], ["c"]], "labels": [[1, 0], [0.7]],
                               "problem_id": ["p", "p"]})
    else:
        judgments = pd.DataFrame({"solution_id": ["s", "s", "s", "t"], "step": [0, 1, 1, 0],
                                  "annotator": ["a", "a", "b", "a"], "label": [1, 0, 1, 1],
                                  "step_text": ["x", "y", "y", "z"]})
        cleaned = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
        source = write_cleaned_steps(cleaned, tmp_path / "steps.parquet")
    table = load_steps(source)
    pd.testing.assert_frame_equal(load_steps(table), table)
    if kind == "cleaned":  # (a cleaned dataset's weights are 1 - 2 * uncertainty, checked as such)
        return
    changed = table.copy()
    changed.at[1, "label_weights"] = [0.25] * int(table.at[1, "n_steps"])
    changed.at[1, "p_all_correct"], changed.at[1, "first_error"] = 0.125, 0
    again = load_steps(changed)
    assert again.at[1, "label_weights"] == [0.25] * int(table.at[1, "n_steps"])
    assert (again.at[1, "p_all_correct"], again.at[1, "first_error"]) == (0.125, 0)
    for column, value in (("p_all_correct", 1.5), ("first_error", 7), ("label_weights", [2.0])):
        bad = table.copy()
        bad[column] = bad[column].astype(object)
        bad.at[1, column] = value
        with pytest.raises(ValidationError, match=f"column '{column}', row 1"):
            load_steps(bad)


def _texts_encoded(monkeypatch) -> list[str]:
    """The list every text the pair encoder tokenizes is added to from now on."""
    from accord.reward.data import PairEncoder

    seen: list[str] = []
    real = PairEncoder._plain_ids

    def spy(self, texts):
        seen.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(PairEncoder, "_plain_ids", spy)
    return seen


CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the cat sat"}]


def test_a_chat_prompt_reaches_the_step_encoder_through_one_rendering_on_every_path(workspace, tmp_path,
                                                                                    monkeypatch, capsys):
    """Was: a step prompt given as one message dict (Hugging Face's chat layout, a single turn) reached the encoder
    as its Python repr ("{'role': 'user', ...}"), and a list of messages always as 'role: content' lines, the
    tokenizer's chat template never read. Now encoding, `accord train --task steps`, evaluate and score render them
    with one function: the tokenizer's chat template with the generation prompt when it has one (the tiny decoder's),
    else one 'role: content' line per message (the tiny BERT's, and the cleaned step dataset's); no repr reaches the
    tokenizer."""
    from transformers import AutoTokenizer

    seen = _texts_encoded(monkeypatch)
    frame = pd.DataFrame({"prompt": [CHAT, CHAT[1], np.array(CHAT, dtype=object), "plain problem"],
                          "completions": [["the answer", "so it adds up"], ["wrong"], ["cat sat"], ["dog"]],
                          "labels": [[1, 1], [0], [1], [1]], "problem_id": ["q", "q", "r", "r"]})
    for kind in ("llama", "bert"):
        tokenizer = AutoTokenizer.from_pretrained(workspace[kind])
        templated = bool(tokenizer.chat_template)
        assert templated == (kind == "llama")
        expected = ([tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                     for m in (CHAT, [CHAT[1]])] if templated
                    else ["system: be brief\nuser: the cat sat", "user: the cat sat"])
        seen.clear()
        _, sep = separator_token(tokenizer, None)
        StepEncoder(tokenizer, 96, kind != "bert", sep).encode(load_steps(frame))
        assert set(expected) <= set(seen) and "plain problem" in seen, (kind, seen)
        assert not [t for t in seen if "{'role'" in t or "[{" in t or "'content'" in t], (kind, seen)
    # the command line: train (with evaluation), evaluate, score of a JSON Lines file of such prompts
    data = tmp_path / "chat.jsonl"
    frame.assign(prompt=[CHAT, CHAT[1], CHAT, "plain problem"]).to_json(data, orient="records", lines=True)
    tokenizer = AutoTokenizer.from_pretrained(workspace["llama"])
    expected = tokenizer.apply_chat_template([CHAT[1]], tokenize=False, add_generation_prompt=True)
    model = tmp_path / "prm"
    for argv in (["train", "--task", "steps", "--model", workspace["llama"], "--train-path", str(data),
                  "--eval-path", str(data), "--output-dir", str(model), "--batch-size", "2", "--max-steps", "1",
                  "--no-progress"],
                 ["evaluate", str(model), str(data)],
                 ["score", str(model), str(data), "--out", str(tmp_path / "scores.csv")]):
        seen.clear()
        assert accord_main(argv) == 0, capsys.readouterr().err
        assert expected in seen, (argv[0], seen)
        assert not [t for t in seen if "{'role'" in t or "[{" in t or "'content'" in t], (argv[0], seen)
    # the cleaned step dataset keeps them as messages (one message dict a list of one), rendered by its reader
    from accord.aggregate import StepVoteFraction, build_cleaned_steps

    judgments = pd.DataFrame({"solution_id": ["s", "t"], "step": [0, 0], "annotator": ["a", "a"], "label": [1, 1],
                              "step_text": ["x", "y"], "prompt": [CHAT[1], CHAT]})
    cleaned = build_cleaned_steps(StepVoteFraction().fit(judgments).step_labels_, judgments)
    assert cleaned["prompt"].tolist() == [[CHAT[1]], CHAT]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_chat_prompt_aggregated_to_a_cleaned_step_dataset_reads_as_the_same_chat_template_text(
        workspace, tmp_path, monkeypatch, capsys, suffix):
    """Was: `accord aggregate` wrote a step-judgments table's chat-message prompts into the cleaned step dataset as
    'role: content' lines, so a chat-template backbone trained on that file read another text ("system: be brief\n
    user: ...") than evaluating or scoring the same solutions as a stepwise table of the messages reads (the
    template's "<|system|>be brief</s>..."): a train/score template mismatch. Now the file keeps the messages (lists
    of role/content dicts in Parquet and JSON Lines, as the pairwise cleaned dataset keeps a conversational prompt)
    and training, evaluation and scoring render both files alike; a text prompt beside them is the user's turn."""
    from transformers import AutoTokenizer

    from accord.datasets.cleaned import render_prompts

    judgments = tmp_path / "judgments.jsonl"
    pd.DataFrame({"solution_id": ["s", "s", "t", "u"], "step": [0, 1, 0, 0], "annotator": ["a", "a", "a", "a"],
                  "label": [1, 0, 1, 1], "step_text": ["the answer", "so it adds up", "wrong", "dog"],
                  "prompt": [CHAT, CHAT, CHAT[1], "plain problem"]}).to_json(judgments, orient="records", lines=True)
    cleaned = tmp_path / f"steps{suffix}"
    assert accord_main(["aggregate", "--input", str(judgments), "--output", str(cleaned), "--quiet"]) == 0
    written = (pd.read_parquet(cleaned) if suffix == ".parquet" else pd.read_json(cleaned, lines=True))["prompt"]
    users = [{"role": "user", "content": "plain problem"}]
    assert [p if isinstance(p, str) else [dict(m) for m in p] for p in written] == [CHAT, [CHAT[1]], users]
    tokenizer = AutoTokenizer.from_pretrained(workspace["llama"])
    expected = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                for m in (CHAT, [CHAT[1]], users)]
    assert render_prompts(load_steps(cleaned)["prompt"], tokenizer) == expected
    # trained on the cleaned file, scored on a stepwise file of the same messages: the encoder reads one text
    seen = _texts_encoded(monkeypatch)
    stepwise = tmp_path / "stepwise.jsonl"
    pd.DataFrame({"prompt": [CHAT, CHAT[1]], "completions": [["the answer", "so it adds up"], ["wrong"]],
                  "labels": [[1, 0], [1]]}).to_json(stepwise, orient="records", lines=True)
    model = tmp_path / "prm"
    texts = {}
    for argv in (["train", "--task", "steps", "--model", workspace["llama"], "--train-path", str(cleaned),
                  "--output-dir", str(model), "--batch-size", "2", "--max-steps", "1", "--no-progress"],
                 ["score", str(model), str(stepwise), "--out", str(tmp_path / "scores.csv"), "--quiet"]):
        seen.clear()
        assert accord_main(argv) == 0, capsys.readouterr().err
        texts[argv[0]] = set(seen)
    assert set(expected[:2]) <= texts["train"] & texts["score"], texts
    assert not [t for t in texts["train"] if t.startswith("system: ")], texts["train"]


def test_a_step_model_records_whether_chat_prompts_went_through_the_chat_template(workspace, tmp_path,
                                                                                 monkeypatch):
    """A step model's reward_model.json said use_chat_template false whatever it was trained on, and 'off' had no
    effect on a step prompt. Now it records whether chat-message prompts went through the tokenizer's chat template
    (unset: when it has one), 'off' writes them as 'role: content' lines, and evaluating and scoring render them as
    training did: a model saved before this choice (no record, or false) reads 'role: content' lines, as it was
    trained on."""
    seen = _texts_encoded(monkeypatch)
    data = tmp_path / "chat.jsonl"
    pd.DataFrame({"prompt": [CHAT, CHAT[1]], "completions": [["the answer", "so it adds up"], ["wrong"]],
                  "labels": [[1, 1], [0]]}).to_json(data, orient="records", lines=True)
    plain = "system: be brief\nuser: the cat sat"
    folders = {}
    for setting in (None, False):
        cfg = config(workspace, f"chat-record-{setting}", train_path=str(data), batch_size=2, max_steps=1,
                     use_chat_template=setting)
        folders[setting] = cfg.output_dir
        seen.clear()
        train(cfg)
        assert RewardModel.read_meta(cfg.output_dir)["use_chat_template"] is (setting is None)
        assert (plain in seen) is (setting is False) and not [t for t in seen if "{'role'" in t]
        seen.clear()
        score(cfg.output_dir, data)
        assert (plain in seen) is (setting is False)
    # a model saved before the record (the tokenizer's chat template then unread): as it was trained, 'role: content'
    meta_file = Path(folders[None]) / "reward_model.json"
    meta = json.loads(meta_file.read_text())
    del meta["use_chat_template"]
    meta_file.write_text(json.dumps(meta))
    seen.clear()
    evaluate(folders[None], data)
    assert plain in seen


def _llama_refusing_system_prompts(workspace: dict, tmp_path: Path) -> Path:
    """The tiny Llama with a chat template that refuses a conversation opening with a system message (as some
    real templates do), saved under ``tmp_path``."""
    from transformers import AutoTokenizer

    from accord.reward.tiny import CHAT_TEMPLATE

    backbone = tmp_path / "no-system"
    shutil.copytree(workspace["llama"], backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    tokenizer.chat_template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                               "supported') }}{% endif %}" + CHAT_TEMPLATE)
    tokenizer.save_pretrained(backbone)
    return backbone


def test_a_chat_prompt_the_chat_template_refuses_is_one_error_naming_its_row(workspace, tmp_path, capsys):
    """A chat template that refuses a conversation (many raise on a system turn: "System role not supported") stopped
    `accord train --task steps` with jinja's TemplateError traceback. Now it is one line naming the column and the
    row of the first prompt it refuses, and why (exit status 2; nothing written)."""
    backbone = _llama_refusing_system_prompts(workspace, tmp_path)
    data = tmp_path / "chat.jsonl"
    pd.DataFrame({"prompt": [CHAT[1], "plain problem", CHAT], "completions": [["the answer"], ["wrong"], ["cat"]],
                  "labels": [[1], [0], [1]]}).to_json(data, orient="records", lines=True)
    out = tmp_path / "prm"
    code = accord_main(["train", "--task", "steps", "--model", str(backbone), "--train-path", str(data),
                        "--output-dir", str(out), "--max-steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "column 'prompt', row 2: the tokenizer's chat template cannot write" in err[0], err[0]
    assert "System role not supported" in err[0]
    assert not out.exists()


def test_a_chat_prompt_the_chat_template_refuses_names_the_file_that_holds_it(workspace, tmp_path, capsys):
    """Was: the chat template's refusal of a prompt named its column and row but no file, so `accord train --task
    steps --train-path A --eval-path B` could not tell which file's row it was (nor evaluate and score name their
    data). Now the line names the file too, the evaluation file's when it is that one (exit 2, nothing written)."""
    backbone = _llama_refusing_system_prompts(workspace, tmp_path)
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    frame = pd.DataFrame({"prompt": [[CHAT[1]], [CHAT[1]]], "completions": [["the answer"], ["wrong"]],
                          "labels": [[1], [0]]})
    frame.to_json(good, orient="records", lines=True)
    frame.assign(prompt=[[CHAT[1]], CHAT]).to_json(bad, orient="records", lines=True)
    model = tmp_path / "prm"
    base = ["train", "--task", "steps", "--model", str(backbone), "--max-steps", "1", "--no-progress"]
    assert accord_main([*base, "--train-path", str(good), "--output-dir", str(model)]) == 0
    out = tmp_path / "out"
    for argv in ([*base, "--train-path", str(bad), "--output-dir", str(out)],
                 [*base, "--train-path", str(good), "--eval-path", str(bad), "--output-dir", str(out)],
                 ["evaluate", str(model), str(bad), "--quiet", "--out", f"{out}.json"],
                 ["score", str(model), str(bad), "--quiet", "--out", f"{out}.csv"]):
        capsys.readouterr()
        assert accord_main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"file {bad}, column 'prompt', row 1: the tokenizer's chat template" in err[0], err
        assert not list(tmp_path.glob("out*")), argv


@pytest.mark.parametrize("message", [{"role": "user", "content": None}, {"role": "user"},
                                     {"role": None, "content": "q"}, {"content": "q"}, {"role": "user", "content": 5}],
                         ids=["null-content", "no-content", "null-role", "no-role", "number-content"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_step_prompt_message_without_a_text_role_or_content_is_refused_as_on_the_pairwise_path(tmp_path, message,
                                                                                                   suffix):
    """A step prompt's message whose content was null (or missing in Parquet, which fills it with null) or whose role
    was null was trained on as "user: None" (or an empty turn through a chat template, "<||>" for the role), and a
    number as its text; the pairwise path refuses each ("must be a text or a list of chat messages"). Now one error
    naming the file, column and row, in both formats (missing keys were refused in JSON Lines alone)."""
    frame = pd.DataFrame({"prompt": [[{"role": "user", "content": "fine"}], [message]], "completions": [["a"], ["b"]],
                          "labels": [[1], [0]]})
    data = tmp_path / f"steps{suffix}"
    try:
        frame.to_json(data, orient="records", lines=True) if suffix == ".jsonl" else frame.to_parquet(data)
    except Exception:  # noqa: BLE001 - a column Parquet cannot hold (a number beside texts): nothing to read
        pytest.skip("Parquet cannot hold this column")
    with pytest.raises(ValidationError, match=rf"file {data}, column 'prompt', row 1: chat messages must each"):
        load_steps(str(data))


@pytest.mark.parametrize("with_labels", [True, False])
def test_loading_a_stepwise_table_builds_no_list_per_solution_under_the_collector(with_labels):
    # was: the label weights (and, without labels, the NaN labels) were built by a Python list per solution, each
    # allocation counted by the cyclic collector, which walked every list of texts made so far: 1.2 s of the 6.5 s of
    # loading 128k solutions. Now sliced from one list with the collector paused, as the other list columns are
    import gc

    lengths = np.random.default_rng(0).integers(1, 9, 20000)
    frame = pd.DataFrame({"completions": [[f"s{t}" for t in range(k)] for k in lengths]})
    if with_labels:
        frame["labels"] = [[1.0] * k for k in lengths]
    runs = []

    def count(phase, info):
        runs.append(phase == "start")

    gc.callbacks.append(count)
    try:
        table = load_steps(frame, need_labels=False)
    finally:
        gc.callbacks.remove(count)
    assert sum(runs) < 10, sum(runs)  # was 30 with labels (20k solutions: one run per ~700 lists)
    weights = table["label_weights"]
    assert [len(w) for w in weights] == lengths.tolist() and {v for w in weights for v in w} == {1.0}
    assert weights.iloc[0] is not weights.iloc[1]  # each solution its own list
    if not with_labels:
        assert all(np.isnan(v) for cell in table["labels"] for v in cell)


@pytest.mark.parametrize("columns, named", [({"chosen": ["a"], "rejected": ["b"]}, "'chosen' and 'rejected'"),
                                            ({"prompt": ["q"], "response": ["a"]}, "'response'")])
def test_pairs_or_responses_given_to_a_step_reader_say_what_they_are(tmp_path, columns, named):
    # was: "column 'completions': missing required column of a step dataset", which named a column the user never
    # meant to have, not that preference pairs (or responses) were given where a process reward model reads steps
    with pytest.raises(ValidationError, match=rf"column 'completions': .*{named}.*not a step dataset"):
        load_steps(pd.DataFrame(columns), need_labels=False)


def test_evaluate_and_eval_path_read_the_held_out_split_of_a_saved_dataset_dict(workspace, tmp_path):
    """A save_to_disk DatasetDict was read by its 'train' split by the steps task whatever the command: accord
    evaluate and the trainer's eval_path scored the training solutions of a {'train', 'test'} folder and refused a
    {'test'} one, where the pairwise task reads the held-out split. Now they read it as the pairwise task does."""
    from conftest import saved_train_and_test

    cfg = config(workspace, "held-out-split", max_steps=1)
    train(cfg)
    train_frame, test_frame = toy_steps(12, seed=5), toy_steps(6, seed=7)
    both, test_only = saved_train_and_test(tmp_path, train_frame, test_frame)
    expected = evaluate(cfg.output_dir, test_frame)
    assert evaluate(cfg.output_dir, both) == expected
    assert evaluate(cfg.output_dir, test_only) == expected
    trainer = RewardTrainer(config(workspace, "held-out-split-trainer", train_path=str(both), eval_path=str(both)))
    assert len(trainer.train_table) == 12 and len(trainer.eval_table) == 6


def test_score_reads_the_one_split_of_a_saved_dataset_dict_whatever_its_name(workspace, tmp_path):
    """score_steps read a save_to_disk DatasetDict by its 'train' split and refused a folder of 'test' alone; a
    folder's one split is now scored whatever its name, and several are one error naming them."""
    import datasets

    cfg = config(workspace, "score-split", max_steps=1)
    train(cfg)
    frame = toy_steps(6, seed=7)
    expected = score(cfg.output_dir, frame)
    folder = tmp_path / "test-only"
    datasets.DatasetDict({"test": datasets.Dataset.from_pandas(frame)}).save_to_disk(str(folder))
    pd.testing.assert_frame_equal(score(cfg.output_dir, folder), expected)
    both = tmp_path / "both"
    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(toy_steps(4, seed=2)),
                          "test": datasets.Dataset.from_pandas(frame)}).save_to_disk(str(both))
    with pytest.raises(AccordError, match=f"folder {both}: .*'train'.*'test'"):
        score(cfg.output_dir, both)


def test_best_of_n_leaves_out_problems_of_one_candidate_and_counts_them():
    """Was: a problem with a single candidate counted in best-of-n as a problem whose pick was that candidate, so
    each such right solution raised bon_min (and each wrong one lowered it) with nothing chosen: here 0.5 where the
    one problem with a choice picks wrong. Now they are left out of the figure and counted in
    bon_single_left_out."""
    from accord.reward.steps import step_reward_metrics

    class Steps:  # one step per solution
        label = np.array([1.0, 0.0, 1.0, 1.0])
        n_steps = np.array([1, 1, 1, 1])

        def __len__(self) -> int:
            return 4

    table = pd.DataFrame({"solution_id": list("abcd"), "n_steps": [1] * 4, "first_error": [1, 0, 1, 1],
                          "is_correct": [True, False, True, True], "problem_id": ["p1", "p1", "p2", "p3"]})
    metrics = step_reward_metrics(np.array([-1.0, 2.0, 0.5, 0.5]), Steps(), table)  # p1 picks its wrong solution
    assert metrics["bon_problems"] == 1 and metrics["bon_single_left_out"] == 2
    assert metrics["bon_min"] == metrics["bon_product"] == metrics["bon_last"] == 0.0
    assert metrics["bon_random"] == 0.5 and metrics["bon_oracle"] == 1.0
    # every problem of one candidate: no best-of-n figure at all, the count said
    single = step_reward_metrics(np.array([-1.0, 2.0, 0.5, 0.5]), Steps(), table.assign(problem_id=list("wxyz")))
    assert "bon_min" not in single and single["bon_single_left_out"] == 4


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
@pytest.mark.parametrize("writes_bos", [False, True])
def test_a_templated_prompt_has_the_same_tokens_on_the_step_and_the_pairwise_tasks(workspace, kind, writes_bos):
    """Was: the step task put the tokenizer's start token (the tiny Llama's <s>) before a prompt the chat template
    wrote, where the pairwise task tokenizes the template's output as it is: one prompt, two token sequences (the
    step model read "<s><|system|>..." where the pairwise model read "<|system|>..."). Now both read the template's
    tokens alone, a template that writes {{ bos_token }} gives one start token on each, and a templated prompt cut
    from the left keeps the template's start on both."""
    from transformers import AutoTokenizer

    from accord.reward.data import PairEncoder

    tokenizer = AutoTokenizer.from_pretrained(workspace[kind])
    if writes_bos:
        tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    prompts = [CHAT, [CHAT[1]]]
    pair_encoder = PairEncoder(tokenizer, 96, True)
    pairs = pair_encoder.encode(prompts, ["the answer", "so it adds up"])
    _, sep = separator_token(tokenizer, None)
    frame = pd.DataFrame({"prompt": prompts, "completions": [["the answer"], ["so it adds up", "wrong"]],
                          "labels": [[1], [1, 0]]})
    steps = StepEncoder(tokenizer, 96, True, sep).encode(load_steps(frame))
    bos = tokenizer.bos_token_id
    for i, messages in enumerate(prompts):
        n = int(pairs.prompt_lengths[i])
        written = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
                            add_special_tokens=False)["input_ids"]
        assert pairs.ids[i][:n] == written
        assert steps.ids[i][:n] == pairs.ids[i][:n], (kind, writes_bos, i)
        assert steps.ids[i][n] != bos and steps.ids[i].count(bos) == (1 if writes_bos and bos is not None else 0)
    # cut from the left, the prompt keeps the template's start (<s>, the turn's header), as the pairwise layout does
    head = pair_encoder.chat_head
    long = frame.assign(prompt=[[{"role": "user", "content": " ".join(["the cat sat"] * 30)}], [CHAT[1]]])
    cut = StepEncoder(tokenizer, 24, True, sep).encode(load_steps(long))
    assert cut.truncated_prompts == 1 and cut.ids[0][:len(head)] == head and len(cut.ids[0]) <= 24
