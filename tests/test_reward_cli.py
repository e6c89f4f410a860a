"""`accord train|evaluate|score` as a new user meets them: help for every flag, a line or a bar for every phase,
Ctrl-C that keeps a resumable checkpoint, and scoring that says when a model has no uncertainty head."""

from __future__ import annotations

import importlib
import json
import os
import re
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

from accord.cli import main as accord_main
from accord.datasets import AccordError
from accord.reward import RewardConfig, score, train
from accord.reward.tiny import build_tiny_backbone
from conftest import disk_full_while_writing

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
WORDS = "good helpful clear bad rude wrong the a answer question cat dog".split()


def pairs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "prompt": [" ".join(rng.choice(WORDS[6:], 3)) for _ in range(n)],
        "chosen": [" ".join(rng.choice(WORDS[:3] + WORDS[6:], 6)) for _ in range(n)],
        "rejected": [" ".join(rng.choice(WORDS[3:], 6)) for _ in range(n)],
        "p_chosen": rng.uniform(0.6, 1.0, n),
    })


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward-cli")
    bert = build_tiny_backbone(root / "bert", "bert", texts=[" ".join(WORDS)], seed=1)
    data = root / "pairs.jsonl"
    pairs(48).to_json(data, orient="records", lines=True)
    return {"root": root, "bert": str(bert), "data": str(data)}


def test_train_help_lists_every_flag_with_help_default_and_choices(capsys):
    with pytest.raises(SystemExit) as done:
        accord_main(["train", "-h"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: accord train ")
    for title in ("model:", "data:", "loss:", "optimisation:", "output, checkpoints and logging:"):
        assert f"\n{title}" in text
    entries = re.split(r"\n  (?=-)", text.split("\noptions:\n", 1)[1])
    # every RewardConfig field, besides --config and --quiet (another name of --no-progress)
    flags = [entry for entry in entries if entry.startswith("--") and not entry.startswith(("--config", "--quiet"))]
    assert len(flags) == len([f for f in RewardConfig.__dataclass_fields__])
    for entry in flags:
        spec, help_text = re.split(r"\s{2,}", entry.strip(), maxsplit=1)
        help_text = " ".join(help_text.split())
        assert len(re.sub(r"\(default: [^)]*\)", "", help_text).split()) >= 2, entry  # words beside the default
        assert "(default:" in help_text or spec.startswith("--model"), entry
    assert "{bradley_terry,davidson,label_smoothing,margin,soft_bce,weighted_soft_bce}" in text
    assert "{cosine,linear,constant}" in text


def test_every_phase_of_training_shows_a_bar_or_a_line(workspace, tmp_path, capsys):
    config = RewardConfig(model=workspace["bert"], train_path=workspace["data"], eval_path=workspace["data"],
                          output_dir=str(tmp_path / "rm"), batch_size=8, max_steps=2, save_steps=None, progress=True)
    train(config)
    err = capsys.readouterr().err
    assert "loading" in err and "tokenizing 48 training pairs" in err  # model loading and tokenizing
    for phase in ("training", "evaluating", "reward statistics"):
        assert f"{phase}:" in err, phase  # a tqdm bar names its phase
    quiet = RewardConfig(**{**config.to_dict(), "progress": False, "output_dir": str(tmp_path / "quiet")})
    train(quiet)
    assert capsys.readouterr().err == ""


def test_reward_statistics_use_a_seeded_sample_of_the_configured_size(workspace, tmp_path):
    config = RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(tmp_path / "rm"),
                          batch_size=8, max_steps=1, save_steps=None, progress=False, stats_max_pairs=10)
    train(config)
    stats = json.loads((tmp_path / "rm" / "reward_stats.json").read_text())
    assert stats["n"] == 2 * 10


def _wait_for(predicate, process: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert process.poll() is None, f"exited early: {process.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_saves_a_resumable_checkpoint_and_exits_130(workspace, tmp_path, signum):
    """Ctrl-C (SIGINT) and a scheduler's pre-emption (SIGTERM, which killed the run with no checkpoint) alike: the
    step ends, a checkpoint is saved, and the command exits with 128 + the signal (130, 143)."""
    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "accord.cli", "train", "--model", workspace["bert"], "--train-path",
               workspace["data"], "--output-dir", str(out), "--max-steps", "100000", "--batch-size", "8",
               "--logging-steps", "1", "--no-progress", "--save-steps", "1000000"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, process, "two steps")
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    err = err.decode()
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    match = re.fullmatch(r"interrupted at step (\d+) of 100000: saved a resumable checkpoint to (.+) \(continue "
                         r"with --resume-from latest\)", line)
    assert match, line
    step, checkpoint = int(match.group(1)), Path(match.group(2))
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == step
    # the checkpoint resumes: the run goes on from the step it stopped at, nothing doubled or lost in the log
    resumed = train(RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(out),
                                 max_steps=step + 2, batch_size=8, logging_steps=1, progress=False,
                                 resume_from="latest", stats_max_pairs=8))
    assert resumed.resumed_from == str(checkpoint) and resumed.global_step == step + 2
    steps = [json.loads(row)["step"] for row in metrics.read_text().splitlines()]
    assert steps == list(range(1, step + 3))


def _plain_model_and_responses(workspace, tmp_path) -> tuple[RewardConfig, Path]:
    """A reward model trained one step without an uncertainty head, and two responses to score."""
    plain = RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(tmp_path / "plain"),
                         batch_size=8, max_steps=1, save_steps=None, progress=False, stats_max_pairs=8)
    train(plain)
    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good clear answer", "rude wrong"]}).to_json(responses, orient="records", lines=True)
    return plain, responses


def test_score_says_when_the_model_has_no_uncertainty_head(workspace, tmp_path, capsys):
    plain, responses = _plain_model_and_responses(workspace, tmp_path)
    capsys.readouterr()
    # asking for a conservative reward the model cannot give: one line, exit 2, nothing written
    scored = tmp_path / "scored.csv"
    assert accord_main(["score", plain.output_dir, str(responses), "--k", "2", "--out", str(scored)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no uncertainty head" in err and "--uncertainty-head" in err
    assert not scored.exists()
    # without --k: the rewards, and a note that reward_sd and the conservative reward are not there
    assert accord_main(["score", plain.output_dir, str(responses), "--out", str(scored)]) == 0
    assert "no uncertainty head" in capsys.readouterr().err
    columns = list(pd.read_csv(scored).columns)
    assert "reward" in columns and "reward_sd" not in columns and "conservative_reward" not in columns
    # a model with the head gives both, without a note
    headed = RewardConfig(**{**plain.to_dict(), "output_dir": str(tmp_path / "headed"), "uncertainty_head": True})
    train(headed)
    capsys.readouterr()
    assert accord_main(["score", headed.output_dir, str(responses), "--k", "2", "--out", str(scored)]) == 0
    assert "no uncertainty head" not in capsys.readouterr().err
    table = pd.read_csv(scored)
    assert np.allclose(table["conservative_reward"], table["reward"] - 2 * table["reward_sd"])


def test_k_without_an_uncertainty_head_names_the_flag_on_the_command_line(workspace, tmp_path, capsys):
    """Was: 'k: rm has no uncertainty head ...; train with --uncertainty-head to use k', the library's keyword where
    the user typed --k. Now the command line names --k, the library k."""
    plain, responses = _plain_model_and_responses(workspace, tmp_path)
    capsys.readouterr()
    assert accord_main(["score", plain.output_dir, str(responses), "--k", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("accord: error: --k: ") and err.endswith("to use --k") and " k:" not in err, err
    with pytest.raises(AccordError, match=r"^k: .*to use k$"):
        score(plain.output_dir, responses, k=2.0)


@pytest.fixture(scope="module")
def plain_model(workspace):
    config = RewardConfig(model=workspace["bert"], train_path=workspace["data"],
                          output_dir=str(workspace["root"] / "plain-model"), batch_size=8, max_steps=1,
                          save_steps=None, progress=False, stats_max_pairs=8)
    train(config)
    return config.output_dir


@pytest.mark.parametrize("command", ["evaluate", "score", "calibrate"])
@pytest.mark.parametrize("flag", [("--batch-size", "0"), ("--max-length", "0"), ("--max-length", "-5")])
def test_a_batch_size_or_max_length_below_one_is_one_line(workspace, plain_model, capsys, command, flag):
    # --batch-size 0 ended in range()'s ValueError traceback; --max-length 0 was taken as "unset"
    capsys.readouterr()
    assert accord_main([command, plain_model, workspace["data"], *flag]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag[0] in err, err


@pytest.mark.parametrize("loss, flag, value", [("davidson", "--davidson-nu", "0"), ("davidson", "--davidson-nu", "-1"),
                                               ("label_smoothing", "--label-smoothing", "0.5"),
                                               ("label_smoothing", "--label-smoothing", "-0.1")])
def test_a_loss_setting_off_its_range_is_refused_naming_the_flag_before_anything_starts(workspace, tmp_path, capsys,
                                                                                      loss, flag, value):
    """Was: the loss refused it at the first training step, after the model had loaded and the output folder (with
    its reward_config.json) was started, in a line naming no flag ('the Davidson tie parameter nu must be positive').
    Now the config refuses it, naming the flag, and nothing is written."""
    out = tmp_path / "rm"
    capsys.readouterr()
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir",
                        str(out), "--max-steps", "1", "--batch-size", "8", "--quiet", "--loss", loss, flag,
                        value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"accord: error: {flag} ") and value in err, err
    assert not out.exists()
    with pytest.raises(AccordError, match=f"config: '{flag[2:].replace('-', '_')}'"):
        RewardConfig(model="m", loss=loss, **{flag[2:].replace("-", "_"): float(value)}).validate()


def test_a_negative_centring_coefficient_is_refused():
    # was: accepted, and the centring term -c (r_chosen + r_rejected)^2 then rewarded rewards running off to infinity
    with pytest.raises(AccordError, match="config: 'center_rewards_coefficient' must be 0 or more, got -0.01"):
        RewardConfig(model="m", center_rewards_coefficient=-0.01).validate()
    RewardConfig(model="m", center_rewards_coefficient=0.01).validate()


def test_score_refuses_a_missing_response_and_an_infinite_k(workspace, plain_model, tmp_path, capsys):
    # a missing response was scored as the empty text
    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good clear answer", None]}).to_json(responses, orient="records", lines=True)
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", plain_model, str(responses), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "column 'response', row 1: missing response text" in err
    assert not out.exists()
    # --k inf made every conservative reward -inf
    assert accord_main(["score", plain_model, workspace["data"], "--k", "inf"]) == 2
    assert "--k must be" in capsys.readouterr().err


def test_score_out_ndjson_is_json_lines(workspace, plain_model, tmp_path):
    # --out accepts .ndjson, and wrote Parquet bytes into it
    out = tmp_path / "scored.ndjson"
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(out)]) == 0
    assert len(pd.read_json(out, lines=True)) == 48


def test_score_out_tsv_is_written_as_aggregate_writes_tables(workspace, plain_model, tmp_path):
    # accord aggregate writes soft labels and annotator tables as .tsv; score refused it ("unknown suffix '.tsv'")
    out = tmp_path / "scored.tsv"
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out, sep="\t")
    assert len(table) == 48 and "reward_chosen" in table.columns


@pytest.mark.parametrize("name", ["scored.csv.gz", "scored.tsv.xz", "scored.csv.bz2"])
def test_score_out_takes_the_compressed_tables_aggregate_writes(workspace, plain_model, tmp_path, name):
    # accord aggregate --output soft.csv.gz is a compressed table; score --out refused it ("unknown suffix '.gz'")
    out = tmp_path / name
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out, sep="\t" if ".tsv" in name else ",")  # pandas infers the compression by the suffix
    assert len(table) == 48 and "reward_chosen" in table.columns


@pytest.mark.parametrize("name, suffix", [("scored.jsonl.gz", ".gz"), ("scored.txt", ".txt")])
def test_score_out_refuses_a_compressed_json_lines_file_before_scoring(workspace, plain_model, tmp_path, capsys, name,
                                                                       suffix):
    # as aggregate's --output: only .csv and .tsv tables are written compressed; the line names the flag, --out (it
    # said "file scored.txt: unknown suffix", where aggregate says "--output soft.txt: unknown file type")
    capsys.readouterr()
    out = tmp_path / name
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accord: error: --out {out}: unknown suffix '{suffix}'") and err.count("\n") == 1, err
    assert not out.exists()


def test_score_given_a_folder_says_so(workspace, plain_model, tmp_path, capsys):
    # it read "cannot read: [Errno 21] Is a directory"
    capsys.readouterr()
    assert accord_main(["score", plain_model, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"folder {tmp_path}: not a saved Hugging Face dataset" in err and err.count("\n") == 1


def test_score_and_evaluate_read_a_saved_hugging_face_dataset_as_train_does(workspace, plain_model, tmp_path):
    # train read a save_to_disk folder; score and evaluate had a reader of their own that refused every folder
    import datasets

    frame = pd.read_json(workspace["data"], lines=True)
    folder = tmp_path / "pairs-dataset"
    datasets.Dataset.from_pandas(frame).save_to_disk(str(folder))
    for command, suffix in (("score", ".jsonl"), ("evaluate", ".json")):
        from_file, from_folder = tmp_path / f"{command}-file{suffix}", tmp_path / f"{command}-folder{suffix}"
        assert accord_main([command, plain_model, workspace["data"], "--out", str(from_file)]) == 0
        assert accord_main([command, plain_model, str(folder), "--out", str(from_folder)]) == 0
        assert from_folder.read_text() == from_file.read_text()  # scores, or metrics, identical


def test_score_reads_the_one_split_of_a_saved_dataset_dict_whatever_its_name(workspace, plain_model, tmp_path,
                                                                            capsys):
    # score read a save_to_disk DatasetDict by its 'train' split and refused a folder of 'test' alone; scoring is not
    # evaluation, so a folder's one split is scored whatever its name, and a folder of several is one line naming
    # them and the folder of each (score reads one table)
    import datasets

    frame = pd.read_json(workspace["data"], lines=True)
    scored = tmp_path / "file.jsonl"
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(scored)]) == 0
    for name in ("test", "validation", "train"):
        folder = tmp_path / f"only-{name}"
        datasets.DatasetDict({name: datasets.Dataset.from_pandas(frame)}).save_to_disk(str(folder))
        out = tmp_path / f"{name}.jsonl"
        assert accord_main(["score", plain_model, str(folder), "--out", str(out)]) == 0
        assert out.read_text() == scored.read_text()
    both = tmp_path / "both"
    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(frame),
                          "test": datasets.Dataset.from_pandas(frame.head(5))}).save_to_disk(str(both))
    capsys.readouterr()
    assert accord_main(["score", plain_model, str(both), "--out", str(tmp_path / "both.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"folder {both}" in err and "'train'" in err and "'test'" in err
    assert str(both / "test") in err and not (tmp_path / "both.jsonl").exists()
    out = tmp_path / "split.jsonl"  # the way the line names: the split's own folder
    assert accord_main(["score", plain_model, str(both / "train"), "--out", str(out)]) == 0
    assert out.read_text() == scored.read_text()


def test_a_saved_dataset_dict_without_a_split_is_one_line_naming_the_folder(workspace, plain_model, tmp_path,
                                                                            capsys):
    # evaluate (and calibrate, eval_path) ended in IndexError: list index out of range on a DatasetDict saved with no
    # split, where train said "without a 'train' split ([])"
    import datasets

    folder = tmp_path / "no-splits"
    datasets.DatasetDict({}).save_to_disk(str(folder))
    for command in ("evaluate", "score", "calibrate"):
        capsys.readouterr()
        assert accord_main([command, plain_model, str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"folder {folder}: a DatasetDict without a split" in err, err


def test_score_refuses_an_empty_table(workspace, plain_model, tmp_path, capsys):
    # a header without rows was scored into an empty table, where evaluate says the data is empty
    empty = tmp_path / "empty.csv"
    empty.write_text("response\n")
    capsys.readouterr()
    assert accord_main(["score", plain_model, str(empty)]) == 2
    assert "empty" in capsys.readouterr().err


def test_evaluate_out_that_cannot_be_written_fails_before_evaluating(workspace, plain_model, tmp_path, capsys,
                                                                      monkeypatch):
    """``accord evaluate --out <folder>`` evaluated everything, then failed in the writer; so did an --out under a
    file."""
    evaluate_module = sys.modules["accord.reward.evaluate"]  # the package exports a function of that name

    def never(*_args, **_kwargs):
        raise AssertionError("evaluated although --out cannot be written")

    monkeypatch.setattr(evaluate_module, "evaluate", never)
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    for out in (tmp_path, tmp_path / "notes.txt" / "metrics.json"):
        assert accord_main(["evaluate", plain_model, workspace["data"], "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--out" in err and "before evaluating" in err


def test_score_out_under_a_file_fails_before_scoring(workspace, plain_model, tmp_path, capsys, monkeypatch):
    """``accord score M data --out notes.txt/scored.csv`` loaded the model and scored every response, then failed in
    the writer."""
    evaluate_module = sys.modules["accord.reward.evaluate"]

    def never(*_args, **_kwargs):
        raise AssertionError("scored although --out cannot be written")

    monkeypatch.setattr(evaluate_module, "score", never)
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    for out in (tmp_path / "notes.txt" / "scored.csv", tmp_path / "notes.txt" / "deeper" / "scored.parquet"):
        assert accord_main(["score", plain_model, workspace["data"], "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--out" in err and "notes.txt is a file" in err, err
        assert "before scoring" in err
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder\n"


def test_evaluate_out_creates_a_missing_folder_as_the_other_commands_do(workspace, plain_model, tmp_path, capsys):
    """``accord evaluate --out new/metrics.json`` was refused ('name a file in an existing folder') where aggregate,
    score and train create the folder of their output."""
    out = tmp_path / "new" / "deeper" / "metrics.json"
    assert accord_main(["evaluate", plain_model, workspace["data"], "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text()) == json.loads(capsys.readouterr().out)
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]  # no temporary file left beside it


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_an_out_that_is_the_data_file_is_refused(workspace, plain_model, tmp_path, capsys, command):
    """``accord score M pairs.jsonl --out pairs.jsonl`` wrote the scores (evaluate: the metrics JSON) over the
    pairs, exit 0."""
    data = tmp_path / "pairs.jsonl"
    data.write_bytes(Path(workspace["data"]).read_bytes())
    before = data.read_bytes()
    capsys.readouterr()
    assert accord_main([command, plain_model, str(data), "--out", str(tmp_path / "." / data.name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err and "data file" in err, err
    assert data.read_bytes() == before


@pytest.mark.parametrize("command", ["evaluate", "score", "calibrate"])
def test_quiet_silences_the_bars_of_evaluate_score_and_calibrate(workspace, plain_model, tmp_path, capfd, command):
    """Every other accord command takes --quiet; these refused it ('unrecognized arguments') and always drew bars."""
    model = tmp_path / "model"  # calibrate writes into the model's folder
    model.mkdir()
    for item in Path(plain_model).iterdir():
        (model / item.name).write_bytes(item.read_bytes())
    capfd.readouterr()
    assert accord_main([command, str(model), workspace["data"]]) == 0
    assert "%|" in capfd.readouterr().err  # a tqdm bar without --quiet
    assert accord_main([command, str(model), workspace["data"], "--quiet"]) == 0
    assert "%|" not in capfd.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "score", "calibrate"])
def test_no_progress_silences_the_bars_of_evaluate_score_and_calibrate_as_of_train(workspace, plain_model, tmp_path,
                                                                                    capfd, command):
    """Was: `accord train --no-progress` but evaluate and score (until they took it), and calibrate, refused it
    ('unrecognized arguments'), so a script that passed train's flag to them failed. Now they take
    --progress/--no-progress as train does (one helper), and --quiet with --progress is refused as train refuses it,
    before any work."""
    model = tmp_path / "model"  # calibrate writes into the model's folder
    model.mkdir()
    for item in Path(plain_model).iterdir():
        (model / item.name).write_bytes(item.read_bytes())
    capfd.readouterr()
    assert accord_main([command, str(model), workspace["data"], "--no-progress"]) == 0
    assert "%|" not in capfd.readouterr().err
    assert accord_main([command, str(model), workspace["data"], "--progress"]) == 0
    assert "%|" in capfd.readouterr().err
    before = (model / "reward_model.json").read_text()
    assert accord_main([command, str(model), workspace["data"], "--quiet", "--progress"]) == 2
    err = capfd.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--quiet and --progress" in err, err
    assert (model / "reward_model.json").read_text() == before


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_an_empty_file_says_it_is_empty(workspace, plain_model, tmp_path, capsys, command, suffix):
    """A 0-byte file read 'cannot read: No columns to parse from file' (CSV) or a Parquet/JSON parser's message,
    where aggregate says 'the file is empty (0 bytes)'."""
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    capsys.readouterr()
    assert accord_main([command, plain_model, str(empty), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"accord: error: file {empty}: the file is empty (0 bytes)", err


def test_score_k_with_the_minimum_of_an_ensemble_is_refused(plain_model, tmp_path, capsys):
    """``accord score A,B data --conservative min --k 2`` scored the members' minimum and ignored --k, exit 0."""
    import shutil

    twin = shutil.copytree(plain_model, tmp_path / "twin")  # a member counts once: the same folder twice is refused
    data = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good clear answer", "rude wrong"]}).to_json(data, orient="records", lines=True)
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", f"{plain_model},{twin}", str(data), "--conservative", "min", "--k", "2",
                        "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accord: error: --k: --conservative min"), err
    assert not out.exists()
    # without --k the minimum is scored
    assert accord_main(["score", f"{plain_model},{twin}", str(data), "--conservative", "min",
                        "--out", str(out), "--quiet"]) == 0
    assert len(pd.read_csv(out)) == 2


@pytest.mark.parametrize("shape", ["responses", "pairs"])
def test_score_stops_on_nan_rewards_naming_the_model_and_the_first(plain_model, tmp_path, capsys, monkeypatch,
                                                                      shape):
    """A model's NaN rewards were written as NaN rewards and normalised rewards, exit 0 (as evaluate now stops)."""
    evaluate_module = importlib.import_module("accord.reward.evaluate")  # the package exports a function so named

    n = 3
    nan_at = 1
    reward = np.linspace(-1.0, 1.0, n)
    reward[nan_at] = np.nan
    if shape == "responses":
        table = pd.DataFrame({"response": ["good clear answer", "rude wrong", "the cat"]})
        monkeypatch.setattr(evaluate_module, "predict_responses",
                            lambda *a, **k: (reward.copy(), np.full(n, np.nan)))
        name = "reward"
    else:
        table = pairs(n)
        monkeypatch.setattr(evaluate_module, "predict_pairs",
                            lambda *a, **k: {"reward_chosen": reward.copy(), "reward_rejected": np.zeros(n),
                                             "var_chosen": np.full(n, np.nan), "var_rejected": np.full(n, np.nan)})
        name = "reward_chosen"
    data, out = tmp_path / "data.jsonl", tmp_path / "scored.csv"
    table.to_json(data, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main(["score", plain_model, str(data), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"accord: error: {plain_model}: {name}: 1 of {n} ") and \
        f"the first at position {nan_at}" in err, err
    assert not out.exists()


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=8), st.data())
def test_reward_stats_refuse_nan_rewards(values, data):
    """A NaN training reward made reward_stats.json's mean NaN, so every normalised reward of the model was NaN."""
    from accord.datasets.errors import AccordError
    from accord.reward.evaluate import reward_stats

    rewards = np.array(values)
    at = data.draw(st.integers(0, len(rewards) - 1))
    rewards[at:] = np.nan
    with pytest.raises(AccordError, match=f"{len(rewards) - at} of {len(rewards)} rewards are NaN "
                                          f"\\(the first at position {at}\\)"):
        reward_stats(rewards)
    assert np.isfinite(reward_stats(np.nan_to_num(rewards))["mean"])


def test_score_refuses_a_model_whose_saved_statistics_are_nan(plain_model, tmp_path, capsys):
    """A model saved with a NaN mean (before reward_stats refused NaN rewards) scored every normalised reward NaN."""
    import shutil

    from accord.reward.model import STATS_FILE

    model = tmp_path / "model"
    shutil.copytree(plain_model, model)
    stats = json.loads((model / STATS_FILE).read_text())
    (model / STATS_FILE).write_text(json.dumps({**stats, "mean": float("nan")}))
    data, out = tmp_path / "responses.jsonl", tmp_path / "scored.csv"
    pd.DataFrame({"response": ["good clear answer"]}).to_json(data, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main(["score", str(model), str(data), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"accord: error: {model}: its {STATS_FILE} has mean nan"), err
    assert not out.exists()


@pytest.mark.parametrize("spelling", ["{m},", ",{m}", "{m},,"])
def test_score_reads_one_model_with_a_stray_comma_as_it_reads_several(plain_model, tmp_path, capsys, spelling):
    """``accord score rmA,`` said "folder rmA,: not a reward model" while ``A,B,`` was read as A and B."""
    data = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good clear answer", "rude wrong"]}).to_json(data, orient="records", lines=True)
    out, plain = tmp_path / "scored.csv", tmp_path / "plain.csv"
    assert accord_main(["score", plain_model, str(data), "--out", str(plain), "--quiet"]) == 0
    capsys.readouterr()
    assert accord_main(["score", spelling.format(m=plain_model), str(data), "--out", str(out), "--quiet"]) == 0, \
        capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(plain))


def test_score_with_only_commas_names_no_model(workspace, tmp_path, capsys):
    capsys.readouterr()
    assert accord_main(["score", ",", workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accord: error: model_dir ',': names no model"), err


@pytest.mark.parametrize("names", [{}, {"pair_id": "task", "annotator": "worker"}])
def test_training_on_the_judgments_themselves_says_to_aggregate_them_first(tmp_path, capsys, names):
    """The raters' judgments given to `accord train` said only "column 'chosen': missing required column of a
    preference dataset"; a new user was not told that `accord aggregate` makes one. Refused before a model loads."""
    from accord.datasets import make_synthetic

    judgments = tmp_path / "judgments.csv"
    make_synthetic(n_pairs=10, n_annotators=5, seed=0).judgments.rename(columns=names).to_csv(judgments, index=False)
    argv = ["train", "--model", str(tmp_path / "no-model-here"), "--train-path", str(judgments), "--output-dir",
            str(tmp_path / "rm")]
    assert accord_main(argv) == 2
    err = capsys.readouterr().err
    assert str(judgments) in err and "a judgments table" in err and "accord aggregate --input FILE" in err
    other = tmp_path / "other.csv"
    pd.DataFrame({"prompt": ["q"], "good": ["a"], "bad": ["b"]}).to_csv(other, index=False)
    assert accord_main([*argv[:4], str(other), *argv[5:]]) == 2
    assert ("column 'chosen': missing required column of a preference dataset (the table has: 'prompt', 'good', "
            "'bad')") in capsys.readouterr().err
    assert not (tmp_path / "rm").exists()


def test_training_on_soft_labels_says_they_hold_no_texts_and_how_to_write_the_cleaned_dataset(tmp_path, capsys):
    """`accord aggregate --output labels.csv` writes soft labels (ids and numbers) even from judgments with texts;
    given to `accord train` they said only "missing required column 'chosen'". Refused before a model loads."""
    from accord.datasets import make_synthetic

    judgments, labels = tmp_path / "judgments.csv", tmp_path / "labels.csv"
    make_synthetic(n_pairs=10, n_annotators=5, seed=0).judgments.to_csv(judgments, index=False)
    assert accord_main(["aggregate", "--input", str(judgments), "--output", str(labels), "--quiet"]) == 0
    capsys.readouterr()
    assert accord_main(["train", "--model", str(tmp_path / "no-model-here"), "--train-path", str(labels),
                        "--output-dir", str(tmp_path / "rm")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(labels) in err and "soft labels" in err and "--output cleaned.parquet" in err
    assert not (tmp_path / "rm").exists()


def test_training_steps_on_the_step_judgments_says_to_aggregate_them_first(tmp_path, capsys):
    """A step-judgments table given to `accord train --task steps` said "column 'completions': missing required
    column of a step dataset"; it now names the aggregation that makes one, before a model loads."""
    from accord.datasets import make_synthetic_steps

    path = tmp_path / "step_judgments.csv"
    make_synthetic_steps(n_problems=10, seed=0).judgments.to_csv(path, index=False)
    assert accord_main(["train", "--task", "steps", "--model", str(tmp_path / "no-model-here"), "--train-path",
                        str(path), "--output-dir", str(tmp_path / "prm")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "a step-judgments table" in err and "--method first-error" in err
    assert not (tmp_path / "prm").exists()


@pytest.mark.parametrize("task, entry", [("pairwise", "evaluate"), ("steps", "evaluate"), ("steps", "score"),
                                         ("attributes", "evaluate"), ("attributes", "score")])
def test_evaluate_and_score_read_the_data_before_a_model_loads(tmp_path, monkeypatch, task, entry):
    """Was: `accord evaluate` (every task) and `accord score` of a process or multi-attribute model loaded the model's
    weights first, so a missing or malformed data file was reported only after the load (minutes for a large
    model), where the pairwise `score` read the data first. Now each reads the data first."""
    from accord.reward.model import META_FILE

    # the modules (accord.reward's `evaluate` is the function of the same name)
    evaluate_module, steps_module = (importlib.import_module(f"accord.reward.{name}") for name in ("evaluate", "steps"))

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was read")

    for module in (evaluate_module, steps_module):
        monkeypatch.setattr(module, "load_model", loaded)
    model_dir = tmp_path / "rm"
    model_dir.mkdir()
    (model_dir / META_FILE).write_text(json.dumps({"task": task}))
    missing = tmp_path / "no-such-data.parquet"
    with pytest.raises(AccordError, match="no-such-data"):
        getattr(evaluate_module, entry)(model_dir, str(missing))


@pytest.mark.parametrize("table", ["other columns", "judgments"])
@pytest.mark.parametrize("task, members", [("pairwise", 1), ("pairwise", 2), ("attributes", 1)])
def test_score_of_a_table_without_what_it_scores_names_the_file_before_a_model_loads(tmp_path, monkeypatch, capsys,
                                                                                      table, task, members):
    """Was: `accord score` of a file with neither a 'response' column nor 'chosen' and 'rejected' (another layout,
    or the raters' judgments themselves) said what was missing without naming the file, and a pairwise or
    multi-attribute model's weights were loaded before it was found. Now it is one line naming the file, before any
    model loads."""
    from accord.reward.model import META_FILE

    evaluate_module = importlib.import_module("accord.reward.evaluate")

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(evaluate_module, "load_model", loaded)
    model_dirs = []
    for m in range(members):
        model_dir = tmp_path / f"rm{m}"
        model_dir.mkdir()
        (model_dir / META_FILE).write_text(json.dumps({"task": task}))
        model_dirs.append(str(model_dir))
    data = tmp_path / "to_score.csv"
    if table == "judgments":
        frame = pd.DataFrame({"pair_id": ["p1", "p1"], "annotator": ["a", "b"], "label": ["A", "B"],
                              "prompt": ["q", "q"], "response_a": ["good", "good"], "response_b": ["bad", "bad"]})
    else:
        frame = pd.DataFrame({"prompt": ["q"], "text": ["a good answer"]})
    frame.to_csv(data, index=False)
    capsys.readouterr()
    assert accord_main(["score", ",".join(model_dirs), str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(data) in err[0], err


@pytest.mark.parametrize("command", ["evaluate", "score"])
def test_the_evaluate_and_score_help_say_what_each_task_reads(command, capsys):
    """Was: `accord evaluate -h` spoke of preference pairs only and `accord score -h` of responses or pairs, while
    both read a process reward model's step dataset (prompt, completions) and a multi-attribute model's tables, and
    evaluate's vote metrics need columns the help did not name. Now the help names each task's data."""
    with pytest.raises(SystemExit) as done:
        accord_main([command, "-h"])
    assert done.value.code == 0
    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # argparse wraps after a hyphen
    assert "'completions'" in text and "step dataset" in text and "multi-attribute" in text
    if command == "evaluate":
        assert "votes_chosen" in text and "first-error F1" in text


@pytest.mark.parametrize("command", ["evaluate", "score", "calibrate"])
def test_a_max_length_past_the_backbone_names_the_flag_on_the_command_line(workspace, plain_model, capsys, command):
    """``accord evaluate M data --max-length N`` past the backbone's positions said 'set max_length to ...', the
    library's keyword, where the user typed --max-length. Now the command line names the flag; the library keeps
    naming its parameter."""
    from accord.reward.evaluate import evaluate
    from accord.reward.model import RewardModel

    limit = RewardModel.from_pretrained(plain_model).max_positions
    assert limit is not None  # a BERT learns one embedding per position
    capsys.readouterr()
    assert accord_main([command, plain_model, workspace["data"], "--max-length", str(limit + 1), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"set --max-length to {limit} or less" in err, err
    assert f"--max-length {limit + 1}:" in err and "max_length" not in err, err
    with pytest.raises(AccordError, match=f"max_length {limit + 1}: .*set max_length to {limit} or less"):
        evaluate(plain_model, workspace["data"], max_length=limit + 1, progress=False)


@pytest.mark.parametrize("command", ["evaluate", "score"])
def test_an_out_that_is_the_training_log_of_the_model_is_refused(plain_model, workspace, tmp_path, capsys, command):
    """``accord evaluate rm data --out rm/metrics.jsonl`` wrote the metrics over the trainer's log of the model
    (exit 0): the record of its training was lost. Now the log counts as a file of the model: one line naming
    --out and the log, and the folder is left as it was."""
    import shutil

    from accord.reward.trainer import METRICS_FILE

    model = shutil.copytree(plain_model, tmp_path / "rm")
    log = model / METRICS_FILE
    assert log.exists()  # train wrote it
    files = {path.name: path.read_bytes() for path in model.iterdir() if path.is_file()}
    capsys.readouterr()
    assert accord_main([command, str(model), workspace["data"], "--out", str(log), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {log}" in err and "file of the model" in err, err
    assert METRICS_FILE in err, err
    assert {path.name: path.read_bytes() for path in model.iterdir() if path.is_file()} == files


@pytest.mark.parametrize("flags, named", [
    (["--max-length", "4"], ["--max-length"]),
    (["--lora-r", "4"], ["--lora-r", "--lora"]),
    (["--freeze-layers", "1", "--lora"], ["--freeze-layers", "--lora"]),
    (["--label-smoothing", "0.2"], ["--label-smoothing", "--loss"]),
    (["--packing-capacity", "64", "--no-packing"], ["--packing-capacity", "--packing"]),
    (["--eval-steps", "1"], ["--eval-steps", "--eval-path"]),
    (["--warmup-ratio", "1"], ["--warmup-ratio"]),
    (["--pooling", "cls"], ["--pooling"]),
    (["--freeze-layers", "9"], ["--freeze-layers"]),
    (["--max-length", "4000"], ["--max-length"]),
])
def test_a_training_setting_that_cannot_work_names_the_flag_typed(workspace, tmp_path, capsys, flags, named):
    """``accord train ... --max-length 4`` said "config: 'max_length' must be at least 8" (and '--lora-r 4' "set
    lora"): the library's keywords, where the user typed flags. Now the command line names the flags; a value read
    from a --config file keeps the file's keyword; the library keeps its own."""
    decoder = build_tiny_backbone(workspace["root"] / "llama-short", "llama", texts=[" ".join(WORDS)], seed=1)
    model = workspace["bert"] if "--freeze-layers" in flags and "9" in flags or "4000" in flags else str(decoder)
    capsys.readouterr()
    assert accord_main(["train", "--model", model, "--train-path", workspace["data"], "--output-dir",
                        str(tmp_path / "rm"), "--max-steps", "1", "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(flag in err for flag in named), err
    words = re.sub(r"'[^']*'|\([^()]*\)", "", err.replace(str(tmp_path), ""))  # values and transformers' reasons
    assert "config:" not in err and not re.search(r"\b[a-z]+_[a-z_]+\b", words), err


def test_a_training_setting_read_from_the_config_file_keeps_its_keyword(workspace, tmp_path, capsys):
    config = tmp_path / "reward.json"
    config.write_text(json.dumps({"max_length": 4}))
    capsys.readouterr()
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--config",
                        str(config), "--output-dir", str(tmp_path / "rm")]) == 2
    assert "config: 'max_length' must be at least 8, got 4" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "score"])
def test_an_out_in_a_training_checkpoint_of_the_model_is_refused(workspace, tmp_path, capsys, command):
    """``accord evaluate rm data --out rm/checkpoints/step-N/trainer_state.json`` wrote over the checkpoint's state
    (exit 0): the run no longer resumed. Every file a training run with checkpoints writes now counts as a file of
    the model (is_model_file), and such an --out is one line, the checkpoint left as it was."""
    from accord.reward.model import is_model_file
    from accord.reward.trainer import CHECKPOINTS

    output = tmp_path / "rm"
    train(RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(output), batch_size=16,
                       max_steps=2, save_steps=1, save_total_limit=None, progress=False, stats_max_pairs=8))
    written = [path for path in output.rglob("*") if path.is_file()]
    assert any(CHECKPOINTS in path.parts for path in written)
    assert [path for path in written if not is_model_file(path, output)] == []
    checkpoint = sorted((output / CHECKPOINTS).iterdir())[0]
    files = {path: path.read_bytes() for path in checkpoint.iterdir()}
    capsys.readouterr()
    for name in files:
        assert accord_main([command, str(output), workspace["data"], "--out", str(name), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--out {name}" in err and "checkpoint" in err, err
    assert {path: path.read_bytes() for path in checkpoint.iterdir()} == files


@pytest.mark.parametrize("case", ["output_dir", "output_dir_under_a_file", "resume_from", "saved_head",
                                  "ensemble_heads"])
def test_a_training_folder_or_model_setting_that_cannot_work_names_the_flag(workspace, plain_model, tmp_path,
                                                                             capsys, case):
    """The trainer's own checks named output_dir, resume_from (as 'folder X: not a complete checkpoint', for a folder
    that did not exist), uncertainty_head or 'the config' where the user typed --output-dir, --resume-from,
    --uncertainty-head or --ensemble-heads. Now each names the flag."""
    (tmp_path / "a-file").write_text("x")
    flags = {"output_dir": ["--output-dir", str(tmp_path / "a-file")],
             "output_dir_under_a_file": ["--output-dir", str(tmp_path / "a-file" / "rm")],
             "resume_from": ["--resume-from", str(tmp_path / "nowhere")],
             "saved_head": ["--model", plain_model, "--uncertainty-head"],
             "ensemble_heads": ["--model", plain_model, "--ensemble-heads", "2"]}[case]
    named = {"output_dir_under_a_file": "--output-dir", "saved_head": "--uncertainty-head"}.get(
        case, "--" + case.replace("_", "-"))
    capsys.readouterr()
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir",
                        str(tmp_path / "rm"), "--max-steps", "1", "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    words = re.sub(r"'[^']*'", "", err.replace(str(tmp_path), "").replace(plain_model, ""))
    assert "config" not in words and not re.search(r"\b[a-z]+_[a-z_]+\b", words), err


@pytest.mark.parametrize("flag, value", [("--save-steps", None), ("--save-total-limit", None),
                                         ("--max-grad-norm", None), ("--save-steps", 7)])
def test_a_setting_set_by_default_can_be_unset_on_the_command_line(flag, value):
    """save_steps (500), save_total_limit (2) and max_grad_norm (1.0) say what unset does ('unset: none', 'unset:
    all'), but on the command line there was no way to unset them: '--save-steps 0' is refused (0 is no step count)
    and 'none' was argparse's 'invalid int value'. 'none' now unsets them; a number is taken as before."""
    from accord.reward.__main__ import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--model", "m", "--train-path", "t", flag,
                                      "none" if value is None else str(value)])
    config = config_from_args(args)
    assert getattr(config, flag[2:].replace("-", "_")) == value
    config.validate()  # unset is a value these settings take
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", flag, "never"])


def test_train_takes_quiet_as_the_other_commands_do(workspace, tmp_path, capfd):
    """`accord train --quiet` was "unrecognized arguments" (only --no-progress), where every other accord command
    takes --quiet. Now it is --no-progress's other name; asked together with --progress it is one line."""
    capfd.readouterr()
    base = ["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--max-steps", "1",
            "--batch-size", "16", "--stats-max-pairs", "8", "--save-steps", "none"]
    assert accord_main([*base, "--output-dir", str(tmp_path / "quiet"), "--quiet"]) == 0
    quiet = capfd.readouterr()
    assert accord_main([*base, "--output-dir", str(tmp_path / "silent"), "--no-progress"]) == 0
    silent = capfd.readouterr()
    assert quiet.err == silent.err == "", (quiet.err, silent.err)
    assert json.loads(quiet.out)["global_step"] == 1
    assert accord_main([*base, "--output-dir", str(tmp_path / "both"), "--quiet", "--progress"]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--quiet" in err and "--progress" in err, err
    assert not (tmp_path / "both").exists()


def test_score_quiet_leaves_out_the_note_on_the_uncertainty_head(workspace, plain_model, tmp_path, capsys):
    # "note: ... has no uncertainty head" was printed under --quiet too
    scored = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(scored)]) == 0
    assert "no uncertainty head" in capsys.readouterr().err  # the note, without --quiet
    assert accord_main(["score", plain_model, workspace["data"], "--out", str(scored), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_score_says_responses_were_cut_in_one_line_naming_the_flag(workspace, plain_model, tmp_path, capfd):
    """score's "responses cut" warning printed as Python's 'evaluate.py:383: UserWarning: ...' plus the source line,
    and named max_length where the user typed --max-length. Now it is one 'accord: warning:' line naming the flag;
    the library's warning keeps the keyword."""
    from accord.reward.evaluate import score

    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": [" ".join(WORDS * 3), "good"]}).to_json(responses, orient="records", lines=True)
    capfd.readouterr()
    assert accord_main(["score", plain_model, str(responses), "--max-length", "8", "--quiet",
                        "--out", str(tmp_path / "scored.csv")]) == 0
    err = capfd.readouterr().err
    # (and one for the training rewards' statistics, measured at the model's own max_length)
    cut = [line for line in err.splitlines() if "did not fit" in line]
    assert len(cut) == 1 and cut[0].startswith("accord: warning: score: 1 of the 2 responses"), err
    assert "--max-length 8" in err and "max_length" not in err and "UserWarning" not in err, err
    with pytest.warns(UserWarning, match="did not fit max_length 8"):
        score(plain_model, str(responses), max_length=8)


def test_calibrate_warnings_are_one_line_naming_the_flags(workspace, plain_model, tmp_path, capfd):
    """calibrate's warnings printed in Python's raw 'file:line: UserWarning' form and suggested objective='soft'
    where the user types --objective soft."""
    import shutil

    from accord.reward.evaluate import score

    model = shutil.copytree(plain_model, tmp_path / "rm")
    scored = score(str(model), workspace["data"])
    # labels that never weigh against the model's ranking: the temperature runs towards 0
    held_out = tmp_path / "held_out.jsonl"
    pairs(48).assign(p_chosen=(scored["reward_chosen"] > scored["reward_rejected"]).astype(float)).to_json(
        held_out, orient="records", lines=True)
    capfd.readouterr()
    assert accord_main(["calibrate", str(model), str(held_out), "--quiet"]) == 0
    warned = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert warned and all(line.startswith("accord: warning: calibration: ") for line in warned), warned
    text = "\n".join(warned)
    assert "temperature ran towards 0" in text and "--objective soft" in text and "objective=" not in text, text
    # and the temperature saved is the least confident one these labels do not reject, not the optimiser's stop
    # towards 0 (was T 9.1e-4 in reward_model.json on 40 held-out pairs of p_chosen 1, all ranked right)
    saved = json.loads((model / "reward_model.json").read_text())["calibration"]["temperature"]
    assert 0.0 < saved <= 1.0 and "keeps the least confident temperature" in text and f"T = {saved:.3g}" in text, text


def test_a_saved_model_conflict_names_the_switch_as_typed(workspace, plain_model, tmp_path, capsys):
    # was: "--uncertainty-head True (the saved model's: False)", a value given to a flag that takes none
    capsys.readouterr()
    assert accord_main(["train", "--model", plain_model, "--train-path", workspace["data"], "--output-dir",
                        str(tmp_path / "rm"), "--max-steps", "1", "--quiet", "--uncertainty-head"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--uncertainty-head (the saved model's: --no-uncertainty-head)" in err, err
    assert "True" not in err and "False" not in err, err


def test_a_resume_with_another_batch_size_names_the_flag(workspace, tmp_path, capsys):
    # was: "folder X: saved with 1 processes ... (resume needs the same data, batch size and processes)", naming no
    # flag; now it names --batch-size (batch_size in Python)
    from accord.reward.trainer import CHECKPOINTS

    output = tmp_path / "rm"
    train(RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(output), batch_size=16,
                       max_steps=2, save_steps=1, save_total_limit=None, progress=False, stats_max_pairs=8))
    checkpoint = sorted((output / CHECKPOINTS).iterdir())[0]
    capsys.readouterr()
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir",
                        str(output), "--max-steps", "3", "--batch-size", "8", "--resume-from", str(checkpoint),
                        "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--batch-size" in err and "batch size" not in err, err
    with pytest.raises(AccordError, match="same data, batch_size and number of processes"):
        train(RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(output),
                           batch_size=8, max_steps=3, save_steps=1, progress=False, stats_max_pairs=8,
                           resume_from=str(checkpoint)))


def test_a_max_length_nobody_gave_says_where_it_came_from(workspace, tmp_path, capsys):
    """A model whose reward_model.json records no max_length is read at 512 tokens; past a short backbone's
    positions the error said '--max-length 512', a flag the user never typed. Now it says it is the default."""
    short = build_tiny_backbone(tmp_path / "short", "bert", texts=[" ".join(WORDS)], seed=1, max_positions=64)
    output = tmp_path / "rm"
    train(RewardConfig(model=str(short), train_path=workspace["data"], output_dir=str(output), batch_size=16,
                       max_steps=1, max_length=32, save_steps=None, progress=False, stats_max_pairs=8))
    meta_path = output / "reward_model.json"
    meta = json.loads(meta_path.read_text())
    del meta["max_length"]
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert accord_main(["score", str(output), workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--max-length 512 (the default" in err and "records no length" in err, err
    assert accord_main(["score", str(output), workspace["data"], "--quiet", "--max-length", "32",
                        "--out", str(tmp_path / "scored.csv")]) == 0


def test_chat_responses_cut_to_their_role_say_so(workspace, tmp_path, capfd):
    """On an encoder without a chat template, messages are written 'assistant: text'; a --max-length that leaves
    room for little more than the role made both sides of a pair the same tokens, silently."""
    from accord.reward.data import PairEncoder, load_pairs
    from accord.reward.model import load_tokenizer

    rows = pairs(4)
    rows["chosen"] = [[{"role": "assistant", "content": text}] for text in rows["chosen"]]
    rows["rejected"] = [[{"role": "assistant", "content": text}] for text in rows["rejected"]]
    tokenizer = load_tokenizer(workspace["bert"], workspace["bert"])
    encoder = PairEncoder(tokenizer, 8, is_decoder=False, use_chat_template=False)
    with pytest.warns(UserWarning, match=r"4 of 4 pairs .* the same tokens by max_length 8 \(chat messages"):
        encoder.encode_pairs(load_pairs(rows))
    # room enough: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PairEncoder(tokenizer, 64, is_decoder=False, use_chat_template=False).encode_pairs(load_pairs(rows))


@pytest.mark.parametrize("command", ["evaluate", "score", "calibrate"])
def test_a_model_folder_that_is_a_file_or_missing_says_which(workspace, tmp_path, capsys, command):
    # the data named first (`accord score data.jsonl rm`) or a mistyped folder was 'folder X: not an accord reward
    # model (no reward_model.json)', as for a folder of other files
    capsys.readouterr()
    assert accord_main([command, workspace["data"], workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{workspace['data']}: is a file, not a reward model's folder" in err, err
    assert accord_main([command, str(tmp_path / "nowhere"), workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {tmp_path / 'nowhere'}: not found" in err, err


@pytest.mark.parametrize("shape, column", [("responses", "reward"), ("responses", "reward_normalised"),
                                           ("pairs", "reward_chosen"), ("pairs", "p_chosen_model"),
                                           ("ensemble", "reward_mean"), ("ensemble", "reward_1")])
def test_score_refuses_a_data_column_named_like_a_score_column(plain_model, tmp_path, capsys, shape, column):
    """Was: the score replaced an input column of its name without a word (a table with a 'reward' of its own, or
    one scored before, lost it); now one line naming the column and what to do, before any file is written."""
    import shutil

    if shape == "pairs":
        table = pd.DataFrame({"prompt": ["q", "q"], "chosen": ["good clear", "helpful"], "rejected": ["rude", "bad"]})
    else:
        table = pd.DataFrame({"prompt": ["q", "q"], "response": ["good clear answer", "rude wrong"]})
    table[column] = [7.0, 8.0]
    data = tmp_path / "data.jsonl"
    table.to_json(data, orient="records", lines=True)
    model = plain_model
    if shape == "ensemble":
        model = f"{plain_model},{shutil.copytree(plain_model, tmp_path / 'twin')}"
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", model, str(data), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"column '{column}'" in err and "rename or drop" in err, err
    assert not out.exists()


def test_an_ensemble_scores_data_with_a_reward_column_of_its_own(plain_model, tmp_path):
    # 'reward' is a column a member's own score writes, not one the ensemble writes: kept as it came
    import shutil

    from accord.reward.ensemble import score_ensemble

    twin = shutil.copytree(plain_model, tmp_path / "twin")
    table = pd.DataFrame({"response": ["good clear answer", "rude wrong"], "reward": [7.0, 8.0]})
    scored = score_ensemble([plain_model, str(twin)], table)
    assert scored["reward"].tolist() == [7.0, 8.0] and "reward_mean" in scored.columns


@pytest.mark.parametrize("flag, value, kind", [("--loss", "hinge", "loss"), ("--task", "ranking", "task")])
def test_an_unknown_loss_or_task_names_its_flag(workspace, tmp_path, capsys, flag, value, kind):
    """`accord train --loss hinge` said "unknown loss 'hinge'" and `--task ranking` "config: unknown task", naming
    no flag; both are refused before the model loads, naming the flag (and the keyword in Python)."""
    from accord.datasets.errors import SettingError

    out = tmp_path / "rm"
    capsys.readouterr()
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir",
                        str(out), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"accord: error: {flag}: unknown {kind} '{value}'"), err
    assert not out.exists()
    with pytest.raises(SettingError, match=f"'{kind}': unknown {kind} '{value}'"):
        RewardConfig(model=workspace["bert"], **{kind: value}).validate()


@pytest.mark.parametrize("argv, flag", [(["--conservative", "min"], "--conservative min"),
                                        (["--conservative", "sd"], "--conservative sd")])
def test_what_a_plain_model_cannot_give_names_the_flag_and_the_model(workspace, plain_model, tmp_path, capsys, argv,
                                                                        flag):
    """`--conservative` on one plain model said "an ensemble needs at least 2 reward models (got 1)", naming neither
    the flag nor the model (as `--k` on a model without an uncertainty head names both)."""
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", plain_model, workspace["data"], *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"accord: error: {flag}: {plain_model} "), err
    assert not out.exists()


def _train_under_umask(workspace, tmp_path, umask: int, max_steps: str, save_steps: str):
    """A short ``accord train`` run (batches of 8) with the process's umask set to ``umask``; its output folder."""
    out = tmp_path / "rm"
    before = os.umask(umask)
    try:
        assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir",
                            str(out), "--max-steps", max_steps, "--batch-size", "8", "--stats-max-pairs", "8",
                            "--save-steps", save_steps, "--quiet"]) == 0
    finally:
        os.umask(before)
    return out


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_file_of_a_trained_model_gets_the_umask_mode(workspace, tmp_path, capsys, umask):
    """safetensors wrote the backbone's model.safetensors private (0o600) while the head, metadata and tokenizer
    beside it got the umask's mode: a model saved for a group (a serving user) could not be loaded by it."""
    out = _train_under_umask(workspace, tmp_path, umask, max_steps="1", save_steps="none")
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in out.iterdir() if path.is_file()}
    assert "model.safetensors" in modes
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


@pytest.mark.parametrize("name", ["metrics.parquet", "metrics.csv", "metrics.jsonl"])
def test_evaluate_out_of_another_format_is_refused_before_evaluating(workspace, plain_model, tmp_path, capsys, name):
    """``accord evaluate --out metrics.parquet`` wrote the metrics as JSON text under a Parquet name (its reader then
    refused the file); the metrics are one JSON object, so --out names a .json file."""
    out = tmp_path / name
    capsys.readouterr()
    assert accord_main(["evaluate", plain_model, workspace["data"], "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accord: error: --out {out}: ") and ".json file" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_evaluate_prints_and_writes_its_counts_as_whole_numbers(workspace, plain_model, tmp_path, capsys):
    """``accord evaluate`` printed and wrote every count as a float ("n_pairs": 48.0, "truncated_responses": 0.0):
    a count is a whole number, written as one; the measures stay floats."""
    out = tmp_path / "metrics.json"
    capsys.readouterr()
    assert accord_main(["evaluate", plain_model, workspace["data"], "--out", str(out), "--quiet"]) == 0
    printed, written = json.loads(capsys.readouterr().out), json.loads(out.read_text())
    assert printed == written
    counts = ("n_pairs", "n_ties", "truncated_prompts", "truncated_responses", "sequences")
    for key in counts:
        assert type(written[key]) is int, (key, written[key])
    assert written["n_pairs"] == 48 and type(written["accuracy"]) is float
    assert re.search(r'"n_pairs": 48,\n', out.read_text())


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_file_of_a_training_checkpoint_gets_the_umask_mode(workspace, tmp_path, capsys, umask):
    """A checkpoint's model.safetensors (safetensors writes it private, 0o600) was unreadable to the group that can
    read the optimizer, scheduler and RNG states beside it and the saved model above it: a user of the group could
    not resume it. Every file of a checkpoint now gets the mode the umask gives, as the model's own files do."""
    out = _train_under_umask(workspace, tmp_path, umask, max_steps="2", save_steps="1")
    files = [path for path in (out / "checkpoints").rglob("*") if path.is_file()]
    modes = {str(path.relative_to(out)): oct(path.stat().st_mode & 0o777) for path in files}
    assert any(path.name == "model.safetensors" for path in files) and any("optimizer" in path.name for path in files)
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def test_a_hub_name_with_the_hub_unreachable_fails_at_once_or_loads_from_the_cache(workspace, tmp_path):
    """With the hub unreachable, `accord train --model org/name` waited ~25 s of huggingface_hub's retries before
    its error when the name was not in the cache, and minutes (every file's request retried) when it was. Now a name
    not in the cache is one line at once, and a cached one trains from its snapshot without a request."""
    import shutil
    import socket

    with socket.socket() as probe:  # a local port nothing listens on: the hub's connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = tmp_path / "hub"
    snapshot = cache / "models--someorg--tiny-bert" / "snapshots" / "abc123"
    shutil.copytree(workspace["bert"], snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    env = {key: value for key, value in os.environ.items()
           if key.lower() not in ("https_proxy", "http_proxy", "all_proxy", "hf_hub_offline", "transformers_offline")}
    env.update(PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=str(cache))
    common = ["--train-path", workspace["data"], "--max-steps", "1", "--batch-size", "8", "--stats-max-pairs", "8",
              "--save-steps", "none", "--quiet"]
    for name, code in (("someorg/not-cached", 2), ("someorg/tiny-bert", 0)):
        out = tmp_path / name.split("/")[1]
        done = subprocess.run([sys.executable, "-m", "accord.cli", "train", "--model", name, "--output-dir", str(out),
                               *common], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == code and "Retrying" not in done.stderr, done.stderr[-2000:]
        if code:
            err = done.stderr.strip()
            assert len(err.splitlines()) == 1 and err.startswith(f"accord: error: model {name}: "), err
            assert "cache" in err and "cannot be reached" in err and not out.exists(), err
        else:
            assert json.loads((out / "reward_model.json").read_text())["base_model"] == name


def test_a_warning_about_the_evaluation_pairs_says_they_are_the_evaluation_pairs(workspace, tmp_path, capsys):
    """`accord train --eval-path E --max-length 8` printed "N of 48 pairs of two different responses were cut to the
    same tokens by --max-length 8" twice, the second of the evaluation pairs, in words that could not be told from
    the first. A warning of the evaluation pairs now names --eval-path."""
    capsys.readouterr()
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--eval-path",
                        workspace["data"], "--output-dir", str(tmp_path / "rm"), "--max-steps", "1", "--batch-size",
                        "8", "--stats-max-pairs", "8", "--save-steps", "none", "--max-length", "8", "--quiet"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("accord: warning: ")]
    # of each data, the responses cut and the pairs cut to the same tokens
    assert len(warned) == 4 and len(set(warned)) == 4, warned
    assert sum(f"--eval-path {workspace['data']}" in line for line in warned) == 2, warned
    assert all("--max-length 8" in line for line in warned), warned


def test_reward_statistics_write_their_count_as_a_whole_number(workspace, tmp_path):
    """reward_stats.json wrote the number of rewards it was measured on as a float ("n": 16.0), for the model and
    each ensemble head: a count, written as one."""
    config = RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(tmp_path / "rm"),
                          batch_size=8, max_steps=1, save_steps=None, progress=False, stats_max_pairs=8,
                          ensemble_heads=2)
    train(config)
    stats = json.loads((tmp_path / "rm" / "reward_stats.json").read_text())
    assert [type(s["n"]) for s in [stats, *stats["heads"]]] == [int] * 3 and stats["n"] == 16, stats


def test_a_hub_name_out_of_reach_is_one_error_in_python_and_a_skipped_stage_in_the_demo(monkeypatch):
    """resolve_model_path refuses at once a hub name neither cached nor reachable; `accord demo`, which trains its
    reward models only on a backbone it has, skips that stage for such a name as for any other it lacks."""
    import huggingface_hub.constants

    import accord.reward.model as model
    from accord.cli import _local_backbone

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(model, "_hub_reachable", lambda endpoint: False)
    with pytest.raises(AccordError, match=r"^model someorg/not-cached: not a local folder nor in the Hugging Face "):
        model.resolve_model_path("someorg/not-cached")
    assert _local_backbone("someorg/not-cached") is None


def test_training_on_responses_that_max_length_cuts_says_how_many_in_one_line(workspace, tmp_path, capsys):
    """`accord train --max-length 8` cut every response with no warning: the count was only in the printed JSON. Now
    one 'accord: warning:' line names --max-length and counts the responses cut of all, as score's does."""
    capsys.readouterr()
    base = ["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--max-steps", "1",
            "--batch-size", "8", "--stats-max-pairs", "8", "--save-steps", "none", "--quiet"]
    assert accord_main([*base, "--output-dir", str(tmp_path / "cut"), "--max-length", "8"]) == 0
    done = capsys.readouterr()
    printed = json.loads(done.out)
    assert printed["truncated_responses"] > 0, printed
    cut = [line for line in done.err.splitlines() if "did not fit" in line]
    assert len(cut) == 1 and cut[0].startswith("accord: warning: "), done.err
    assert f"{printed['truncated_responses']} of the {printed['sequences']} responses" in cut[0], cut
    assert "--max-length 8" in cut[0] and "max_length" not in cut[0], cut
    # room enough: nothing said
    assert accord_main([*base, "--output-dir", str(tmp_path / "whole"), "--max-length", "64"]) == 0
    done = capsys.readouterr()
    assert json.loads(done.out)["truncated_responses"] == 0 and "did not fit" not in done.err, done.err


@pytest.mark.parametrize("command", ["evaluate", "calibrate", "combine"])
def test_a_command_of_one_model_given_several_says_it_takes_one(workspace, plain_model, capsys, command):
    """`accord evaluate rm1,rm2` (an ensemble, as score takes it) said "folder rm1,rm2: not found". Now one line says
    the command takes one model; a stray comma reads as the one model, as score reads it."""
    capsys.readouterr()
    given = f"{plain_model},{plain_model}"
    assert accord_main([command, given, workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"accord: error: model_dir {given}: "), err
    assert "takes one reward model" in err and "not found" not in err, err
    if command == "evaluate":
        assert accord_main([command, plain_model + ",", workspace["data"], "--quiet"]) == 0, capsys.readouterr().err
        assert "accuracy" in json.loads(capsys.readouterr().out)


def test_train_refuses_to_replace_a_finished_model_and_still_resumes(workspace, tmp_path, capsys):
    """`accord train` into a folder holding a finished model (no checkpoints: the last step saves none) replaced it
    without a word, and its training log and config from the first step: so did `--resume-from latest`, which
    found no checkpoint and started afresh. Now both are one line naming the folder and --overwrite-output-dir,
    and nothing is touched; --overwrite-output-dir replaces it, and resuming from a checkpoint still works."""
    base = ["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--batch-size", "16",
            "--stats-max-pairs", "8", "--quiet"]
    out = tmp_path / "rm"
    assert accord_main([*base, "--output-dir", str(out), "--max-steps", "1", "--save-steps", "none"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    for again in ([], ["--resume-from", "latest"]):
        assert accord_main([*base, "--output-dir", str(out), "--max-steps", "2", *again]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(out) in err and "--overwrite-output-dir" in err, err
        assert "finished reward model (trained to step 1)" in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert accord_main([*base, "--output-dir", str(out), "--max-steps", "2", "--overwrite-output-dir"]) == 0
    assert json.loads(capsys.readouterr().out)["global_step"] == 2
    assert json.loads((out / "reward_model.json").read_text())["global_step"] == 2
    # a finished model with a checkpoint to resume (the run saved one before its last step) goes on from it
    assert accord_main([*base, "--output-dir", str(out), "--max-steps", "3", "--save-steps", "1",
                        "--overwrite-output-dir"]) == 0
    capsys.readouterr()
    assert accord_main([*base, "--output-dir", str(out), "--max-steps", "4", "--save-steps", "1",
                        "--resume-from", "latest"]) == 0
    assert json.loads(capsys.readouterr().out)["global_step"] == 4


def test_evaluate_says_responses_were_cut_in_one_line_naming_the_flag(workspace, plain_model, tmp_path, capfd):
    """`accord evaluate --max-length 8` counted the responses it cut in its JSON alone, where train and score warn
    of them in one line: the metrics of responses read only from their beginning looked like any others. Now it
    warns once, as they do, naming the flag; the library names the keyword."""
    from accord.reward.evaluate import evaluate

    capfd.readouterr()
    assert accord_main(["evaluate", plain_model, workspace["data"], "--max-length", "8", "--quiet"]) == 0
    captured = capfd.readouterr()
    cut = [line for line in captured.err.splitlines() if "did not fit" in line]
    total = json.loads(captured.out)["truncated_responses"]
    assert total > 0 and len(cut) == 1, captured.err
    assert cut[0].startswith(f"accord: warning: evaluate: {total} of the 96 responses of the pairs did not fit "
                             "--max-length 8"), cut
    assert "max_length" not in cut[0], cut
    with pytest.warns(UserWarning, match="evaluate: .* did not fit max_length 8"):
        evaluate(plain_model, workspace["data"], max_length=8)


def test_calibrate_says_responses_were_cut_in_one_line_naming_the_flag(workspace, plain_model, tmp_path, capfd):
    """`accord calibrate --max-length 8` fitted the temperature it saves with the model to the log-odds of cut
    responses without a word, where evaluate and score warn of the responses they cut. Now it warns once, naming
    the flag."""
    import shutil

    model = shutil.copytree(plain_model, tmp_path / "rm")
    capfd.readouterr()
    assert accord_main(["calibrate", str(model), workspace["data"], "--max-length", "8", "--quiet"]) == 0
    cut = [line for line in capfd.readouterr().err.splitlines() if "did not fit" in line]
    assert len(cut) == 1 and cut[0].startswith("accord: warning: calibrate: ") and "--max-length 8" in cut[0], cut
    assert "of the 96 responses of the pairs" in cut[0] and "temperature" in cut[0], cut


@pytest.mark.parametrize("command", ["evaluate", "score", "calibrate"])
def test_a_training_checkpoint_given_as_the_model_says_what_it_is(workspace, tmp_path, capsys, command):
    """A checkpoint folder (checkpoints/step-N) given to evaluate, score or calibrate was 'not an accord reward
    model (no reward_model.json)', which left the user to guess why a folder the trainer wrote is none. Now the one
    line says it is a training checkpoint and how to get the model from it."""
    out = tmp_path / "rm"
    assert accord_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--batch-size", "16",
                        "--stats-max-pairs", "8", "--quiet", "--output-dir", str(out), "--max-steps", "2",
                        "--save-steps", "1"]) == 0
    checkpoint = out / "checkpoints" / "step-0000001"
    capsys.readouterr()
    assert accord_main([command, str(checkpoint), workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(checkpoint) in err and "a training checkpoint" in err, err
    assert f"the run's finished model is {out}" in err, err
    (out / "reward_model.json").unlink()  # as while the run is still going
    assert accord_main([command, str(checkpoint), workspace["data"], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--resume-from {checkpoint}" in err, err


def test_train_refuses_to_write_over_the_backbone_it_trains_from(workspace, tmp_path, capsys):
    """`accord train --model B --output-dir B` (B a backbone folder) wrote the reward model's backbone weights,
    config and tokenizer over B's without a word: the pretrained backbone was lost. Now it is one line naming both
    flags, before anything loads, and B is untouched; the library refuses it too."""
    import shutil

    backbone = shutil.copytree(workspace["bert"], tmp_path / "backbone")
    before = {p.name: p.read_bytes() for p in backbone.iterdir() if p.is_file()}
    capsys.readouterr()
    assert accord_main(["train", "--model", str(backbone), "--train-path", workspace["data"], "--batch-size", "16",
                        "--stats-max-pairs", "8", "--quiet", "--output-dir", str(backbone), "--max-steps", "1",
                        "--save-steps", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(backbone) in err and "--output-dir" in err and "--model" in err, err
    assert {p.name: p.read_bytes() for p in backbone.iterdir() if p.is_file()} == before
    with pytest.raises(AccordError, match="is the folder of the backbone 'model' names"):
        train(RewardConfig(model=str(backbone), train_path=workspace["data"], output_dir=str(backbone),
                           max_steps=1, progress=False))


def test_the_reward_statistics_record_their_max_length_and_scoring_at_another_warns_once(workspace, tmp_path,
                                                                                           capsys):
    """Was: reward_stats.json (the training rewards' mean and sd that reward_normalised divides by) kept no length,
    and `accord score --max-length 16` of a model trained at 24 normalised the other rewards by them without a word,
    as the calibration did before it recorded its length. Now the statistics record the length the rewards were read
    at, and scoring at another warns once, naming the flag; statistics saved before the length was recorded are
    taken as they are, unsaid."""
    import warnings

    from accord.reward.model import STATS_FILE

    config = RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(tmp_path / "rm"),
                          batch_size=8, max_steps=1, max_length=24, save_steps=None, progress=False,
                          stats_max_pairs=8)
    train(config)
    stats_path = tmp_path / "rm" / STATS_FILE
    assert json.loads(stats_path.read_text())["max_length"] == 24
    capsys.readouterr()
    assert accord_main(["score", config.output_dir, workspace["data"], "--max-length", "16", "--quiet"]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if STATS_FILE in line]
    assert len(said) == 1 and "--max-length 24" in said[0] and "--max-length 16" in said[0], said
    with warnings.catch_warnings():  # read as they were measured: nothing to say
        warnings.simplefilter("error")
        score(config.output_dir, workspace["data"])
    stats = json.loads(stats_path.read_text())
    del stats["max_length"]
    stats_path.write_text(json.dumps(stats))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score(config.output_dir, workspace["data"], max_length=16)


@pytest.mark.parametrize("command", ["evaluate", "score"])
def test_a_full_disk_while_writing_out_is_one_line_naming_the_file(workspace, tmp_path, monkeypatch, capsys, command):
    """Was: a full disk while `accord evaluate --out` or `accord score --out` wrote its file (after the whole model
    had run) was a pandas or pathlib traceback ending in "OSError: [Errno 28] No space left on device", naming no
    file; now it is one line naming --out and the file (nothing is left there: the write is atomic)."""
    import errno

    model = tmp_path / "rm"
    train(RewardConfig(model=workspace["bert"], train_path=workspace["data"], output_dir=str(model), max_steps=1,
                       batch_size=8, save_steps=None, progress=False, stats_max_pairs=8))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / ("metrics.json" if command == "evaluate" else "scored.csv")
    monkeypatch.setattr(Path, "write_text", no_space)
    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    capsys.readouterr()
    assert accord_main([command, str(model), workspace["data"], "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"accord: error: --out {out}: cannot write it: No space left on device", err
    assert not out.exists() and [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_full_disk_while_calibrate_rewrites_the_model_s_record_is_one_line_and_keeps_it(workspace, plain_model,
                                                                                           tmp_path, capsys,
                                                                                           monkeypatch):
    """Was: a full disk (ENOSPC) while `accord calibrate` rewrote the model's reward_model.json with the fitted
    temperature was a pathlib traceback ending in "OSError: [Errno 28] No space left on device". Now it is one line
    naming the file, exit 2; the file stays as it was (uncalibrated) and no temporary file is left."""
    import shutil

    model = tmp_path / "rm"
    shutil.copytree(plain_model, model)
    before = {path.name: path.read_bytes() for path in model.iterdir()}
    disk_full_while_writing(monkeypatch, "reward_model.json")
    capsys.readouterr()
    assert accord_main(["calibrate", str(model), workspace["data"], "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("accord: warning:")]
    assert err == [f"accord: error: file {model / 'reward_model.json'}: cannot write it: No space left on device"], err
    assert {path.name: path.read_bytes() for path in model.iterdir()} == before


def test_evaluate_and_calibrate_read_the_held_out_split_of_a_saved_dataset_dict(workspace, plain_model, tmp_path):
    # a save_to_disk DatasetDict was read by its 'train' split whatever the command: evaluate and calibrate (and the
    # trainer's eval_path) scored the training pairs of a {'train', 'test'} folder, and refused a {'test'} one
    import shutil
    import warnings

    import datasets

    from accord.reward import RewardTrainer, evaluate
    from accord.reward.calibration import calibrate

    test_file = tmp_path / "test.jsonl"
    pairs(12, seed=7).to_json(test_file, orient="records", lines=True)
    held_out = pd.read_json(test_file, lines=True)  # the file's numbers (to_json keeps 10 digits)
    split = {name: datasets.Dataset.from_pandas(frame) for name, frame in
             (("train", pd.read_json(workspace["data"], lines=True)), ("test", held_out))}
    both, test_only, train_only = tmp_path / "both", tmp_path / "test-only", tmp_path / "train-only"
    datasets.DatasetDict(split).save_to_disk(str(both))
    datasets.DatasetDict({"test": split["test"]}).save_to_disk(str(test_only))
    datasets.DatasetDict({"train": split["test"]}).save_to_disk(str(train_only))
    expected = evaluate(plain_model, test_file)
    assert evaluate(plain_model, both) == expected
    assert evaluate(plain_model, test_only) == expected
    with pytest.warns(UserWarning, match="no held-out split.*'train'"):  # the one split there is, said
        assert evaluate(plain_model, train_only) == expected
    for folder in (both, test_only):
        copy = tmp_path / f"calibrated-{folder.name}"
        shutil.copytree(plain_model, copy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert calibrate(copy, folder) == calibrate(shutil.copytree(plain_model, tmp_path / "c-file"), test_file)
        shutil.rmtree(tmp_path / "c-file")
    trainer = RewardTrainer(RewardConfig(model=workspace["bert"], train_path=str(both), eval_path=str(both),
                                         output_dir=str(tmp_path / "rm"), batch_size=8, max_steps=1, save_steps=None,
                                         progress=False))
    assert len(trainer.train_table) == 48 and len(trainer.eval_table) == 12
