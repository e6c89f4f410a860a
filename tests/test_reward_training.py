"""Training tests of accord.reward on tiny random backbones: learning, weight and accumulation invariance, exact resume
after SIGKILL, two-process DDP, LoRA, scoring and the command line."""

from __future__ import annotations

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
from safetensors.torch import load_file

from conftest import logged_sums
from accord.datasets import AccordError, write_cleaned
from accord.reward import RewardConfig, RewardModel, RewardTrainer, evaluate, score, train
from accord.reward.__main__ import main as cli_main
from accord.reward.evaluate import predict_pairs
from accord.reward.model import load_tokenizer
from accord.reward.task import model_inputs
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)

WORKER = Path(__file__).parent / "fixtures" / "reward" / "train_worker.py"
GOOD = "good helpful correct clear kind".split()
BAD = "bad harmful wrong rude vague".split()
NEUTRAL = "the a answer question cat dog sat on mat water".split()
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


class Stop(Exception):
    """Raised by a :func:`stop_at` callback: a run killed at a step."""


def stop_at(step: int):
    """A trainer callback that kills the run (raises :class:`Stop`) once it has done ``step`` steps."""
    def stop(trainer, state):
        if state["step"] >= step:
            raise Stop
    return stop


def synthetic_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """Chosen responses use 'good' words, rejected ones 'bad' words; soft labels and weights vary."""
    rng = np.random.default_rng(seed)

    def text(words: list[str]) -> str:
        return " ".join(rng.choice(words + NEUTRAL, int(rng.integers(3, 16))))

    uncertainty = rng.uniform(0.0, 0.3, n)
    return pd.DataFrame({
        "pair_id": [f"s{seed}-{i}" for i in range(n)],
        "prompt": [text(NEUTRAL) for _ in range(n)],
        "chosen": [text(GOOD) for _ in range(n)],
        "rejected": [text(BAD) for _ in range(n)],
        "p_chosen": rng.uniform(0.6, 1.0, n),
        "p_tie": 0.0,
        "uncertainty": uncertainty,
        "weight": 1.0 - 2.0 * uncertainty,
        "n_judgments": 5,
    })


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward-train")
    words = [" ".join(GOOD + BAD + NEUTRAL)]
    llama = build_tiny_backbone(root / "llama", "llama", texts=words, seed=1, attention_dropout=0.1)
    bert = build_tiny_backbone(root / "bert", "bert", texts=words, seed=1)
    data = write_cleaned(synthetic_pairs(64), root / "train.parquet")
    return {"root": root, "llama": str(llama), "bert": str(bert), "data": str(data)}


def final_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    directory = Path(directory)
    weights = load_file(str(directory / "model.safetensors"))
    weights.update({f"head.{k}": v for k, v in load_file(str(directory / "reward_head.safetensors")).items()})
    return weights


def trained_state(trainer: RewardTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.unwrapped().state_dict().items()}


def config(workspace, name: str, **overrides) -> RewardConfig:
    values = dict(model=workspace["llama"], train_path=workspace["data"], output_dir=str(workspace["root"] / name),
                  batch_size=8, max_steps=4, learning_rate=2e-3, save_steps=None, logging_steps=1, progress=False,
                  stats_max_pairs=16)
    values.update(overrides)
    return RewardConfig(**values)


def test_training_learns_and_writes_its_outputs(workspace):
    cfg = config(workspace, "learn", model=workspace["bert"], max_steps=None, num_epochs=4, eval_path=workspace["data"],
                 logging_steps=4)
    result = train(cfg)
    assert result.global_step == 4 * 8 and result.eval_metrics["accuracy"] >= 0.9
    out = Path(cfg.output_dir)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    assert {"step", "loss", "accuracy", "lr", "tokens_per_s"} <= set(records[0])
    stats = json.loads((out / "reward_stats.json").read_text())
    assert stats["sd"] > 0 and stats["n"] == 2 * 16
    # evaluate() on the saved folder reproduces the trainer's final evaluation
    metrics = evaluate(out, workspace["data"])
    assert metrics["accuracy"] == pytest.approx(result.eval_metrics["accuracy"])
    assert metrics["soft_nll"] == pytest.approx(result.eval_metrics["soft_nll"], rel=1e-5)


def test_every_loss_trains(workspace):
    frame = synthetic_pairs(16, seed=3)
    frame["p_tie"] = 0.1 * (1 - frame["p_chosen"])
    for loss in ("bradley_terry", "label_smoothing", "soft_bce", "weighted_soft_bce", "davidson", "margin"):
        trainer = RewardTrainer(config(workspace, f"loss-{loss}", loss=loss, max_steps=1), train_data=frame)
        result = trainer.train()
        assert np.isfinite(result.train_loss), loss
    shared = RewardTrainer(config(workspace, "shared", share_prompt=True, max_steps=1), train_data=frame).train()
    plain = RewardTrainer(config(workspace, "unshared", max_steps=1), train_data=frame).train()
    assert shared.train_loss == pytest.approx(plain.train_loss, abs=1e-5) and shared.tokens < plain.tokens


def test_weight_scale_does_not_change_training(workspace):
    frame = synthetic_pairs(32, seed=5)
    scaled = frame.assign(weight=frame["weight"] / 4)
    states = []
    for name, data in (("w1", frame), ("w4", scaled)):
        trainer = RewardTrainer(config(workspace, name, max_steps=3), train_data=data)
        trainer.train()
        states.append(trained_state(trainer))
    for key in states[0]:
        assert torch.allclose(states[0][key], states[1][key], atol=1e-6), key


def test_gradient_accumulation_matches_one_large_batch(workspace):
    frame = synthetic_pairs(32, seed=6)
    common = dict(max_steps=2, group_by_length=False, adam_epsilon=1.0)  # large eps: updates linear in the gradient
    big = RewardTrainer(config(workspace, "big", batch_size=8, **common), train_data=frame)
    small = RewardTrainer(config(workspace, "small", batch_size=4, gradient_accumulation_steps=2, **common),
                          train_data=frame)
    big.train()
    small.train()
    a, b = trained_state(big), trained_state(small)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_gradient_checkpointing_does_not_change_training(workspace):
    frame = synthetic_pairs(16, seed=8)
    states = []
    for name, checkpointing in (("gc-off", False), ("gc-on", True)):
        trainer = RewardTrainer(config(workspace, name, max_steps=2, adam_epsilon=1.0,
                                       gradient_checkpointing=checkpointing), train_data=frame)
        backbone = trainer.unwrapped().backbone
        active = getattr(backbone, "is_activation_checkpointing", None)
        assert (active if active is not None else backbone.is_gradient_checkpointing) == checkpointing
        trainer.train()
        states.append(trained_state(trainer))
    for key in states[0]:
        assert torch.allclose(states[0][key], states[1][key], atol=1e-6), key


def _worker(config_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(config_path), *extra], env=SUBPROCESS_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen, timeout: float = 180) -> None:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode()[-2000:]


def test_sigkill_then_resume_equals_an_uninterrupted_run(workspace):
    root = workspace["root"]
    # dropout on (attention_dropout 0.1): the resumed run must also restore the RNG states
    common = dict(max_steps=8, save_steps=2, save_total_limit=3, disable_dropout=False, logging_steps=1)
    straight = config(workspace, "straight", **common)
    killed = config(workspace, "killed", resume_from="latest", **common)
    killed.save(root / "killed.json")
    marker = root / "killed.marker"

    # only the run to be killed needs a process of its own; the reference run and the resume run in this one, which
    # also means the resume cannot lean on a fresh process's RNG state (each new Python process costs ~15 s of imports)
    victim = _worker(root / "killed.json", "--hang-after", "5", "--marker", str(marker))
    RewardTrainer(straight).train()
    deadline = time.time() + 180
    while not marker.exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the training process never reached step 5"
        time.sleep(0.1)
    os.kill(victim.pid, signal.SIGKILL)  # mid-run: step 5 is done, its weights are not saved anywhere
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    out = Path(killed.output_dir)
    assert not (out / "model.safetensors").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]

    assert RewardTrainer(killed).train().resumed_from == str(out / "checkpoints" / "step-0000004")
    a, b = final_weights(straight.output_dir), final_weights(killed.output_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))  # the killed run's step-5 line was dropped on resume, nothing is doubled


# the runs under two gloo processes on the CPU, one launch for all (each launch costs ~45 s of imports on a small
# machine): name -> (train_worker.py options, config overrides)
TWO_PROCESS_RUNS = {
    "ddp": ([], {"adam_epsilon": 1.0, "save_steps": 2}),
    "ddp-late-sigterm": (["--sigterm-at", "3", "--rank", "1"], {}),
    **{f"ddp-sigterm-{phase}": ([*(["--sigterm-at", "3"] if phase == "step" else ["--sigterm-in", phase]), "--rank",
                                 "1"], {"eval_path": "data"}) for phase in ("step", "eval", "save")},
}


@pytest.fixture(scope="module")
def two_process_runs(workspace) -> dict[str, tuple[Path, Path]]:
    """Every run of ``TWO_PROCESS_RUNS`` trained one after another (train_worker.py ``--then``) in one
    ``accelerate launch`` of two gloo processes: each run's output folder and the folder where each process wrote
    its weights or how it stopped."""
    root, argv, folders = workspace["root"], [], {}
    for name, (options, overrides) in TWO_PROCESS_RUNS.items():
        overrides = {key: workspace[value] if key == "eval_path" else value for key, value in overrides.items()}
        settings = {"max_steps": 3, "batch_size": 4, "logging_steps": 1, **overrides}
        cfg = config(workspace, name, **settings)
        cfg.save(root / f"{name}.json")
        dump = root / f"{name}-dump"
        dump.mkdir()
        argv += [*(["--then"] if argv else []), str(root / f"{name}.json"), "--dump-dir", str(dump), *options]
        folders[name] = (Path(cfg.output_dir), dump)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(29500 + os.getpid() % 1000), str(WORKER), *argv]
    done = subprocess.run(command, env={**SUBPROCESS_ENV, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return folders


def test_two_process_ddp_ranks_hold_identical_weights(workspace, two_process_runs):
    out, dump = two_process_runs["ddp"]
    rank0, rank1 = torch.load(dump / "rank0.pt"), torch.load(dump / "rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # both processes' RNG states are in the checkpoint
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {
        p.name for p in (out / "checkpoints" / "step-0000002").iterdir()}
    # two processes x batch 4 is one process x batch 4 x accumulation 2
    single = RewardTrainer(config(workspace, "ddp-single", gradient_accumulation_steps=2, max_steps=3, batch_size=4,
                                  adam_epsilon=1.0, save_steps=2))
    single.train()
    expected = trained_state(single)
    for key in rank0:
        assert torch.allclose(rank0[key], expected[key], atol=1e-6), key


def test_a_sigterm_at_the_last_step_of_two_processes_is_honoured_by_both(two_process_runs):
    """Was: with several processes a stop asked while the last step ran its callbacks (or evaluated, saved, logged
    after the processes agreed) was dropped: they meet to agree only at logging steps, and there was none after the
    last, so the run evaluated, saved the model and said it had finished (one process honours it). Now the processes
    agree once more after the loop: both stop with a checkpoint of the last step and no model, as one process does,
    though only one of them was signalled."""
    out, dump = two_process_runs["ddp-late-sigterm"]
    for rank in (0, 1):
        said = (dump / f"interrupted{rank}.txt")
        assert said.is_file(), f"process {rank} finished the run"
        assert said.read_text().startswith("interrupted after the last training step: saved a resumable checkpoint")
    assert (out / "checkpoints" / "step-0000003").is_dir()
    assert not (out / "reward_model.json").exists()


@pytest.mark.parametrize("phase", ["step", "eval", "save"])
def test_a_sigterm_to_one_of_two_processes_after_training_stops_both_with_its_reason(two_process_runs, phase):
    """Was: a SIGTERM to one of two processes in the final evaluation or save raised a bare KeyboardInterrupt there
    (no checkpoint; the other was left in a collective), and at the last step the process not signalled said
    SIGINT (exit 130) while the signalled one said SIGTERM (143). Now both save the last step's checkpoint and
    stop with the same line and the same signal, as one process does; none hangs."""
    out, dump = two_process_runs[f"ddp-sigterm-{phase}"]
    for rank in (0, 1):
        said = dump / f"interrupted{rank}.txt"
        assert said.is_file(), f"process {rank} finished the run"
        assert said.read_text().startswith("interrupted after the last training step: saved a resumable checkpoint")
        assert int((dump / f"signum{rank}.txt").read_text()) == signal.SIGTERM, f"process {rank}"
    assert (out / "checkpoints" / "step-0000003").is_dir()


def test_lora_model_is_saved_merged(workspace):
    pytest.importorskip("peft")
    cfg = config(workspace, "lora", lora=True, lora_r=4, lora_alpha=8, max_steps=2, learning_rate=1e-2)
    trainer = RewardTrainer(cfg)
    trained = [n for n, p in trainer.unwrapped().named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in trained) and any(n.startswith("head.") for n in trained)
    assert not any("lora_" not in n and not n.startswith("head.") for n in trained)  # the backbone is frozen
    trainer.train()
    loaded = RewardModel.from_pretrained(cfg.output_dir)
    assert not hasattr(loaded.backbone, "peft_config")
    before = RewardModel.from_backbone(workspace["llama"])
    changed = any(not torch.equal(p, before.backbone.state_dict()[k]) for k, p in loaded.backbone.state_dict().items())
    assert changed  # the adapters were merged into the saved weights


def test_score_reports_uncertainty_and_conservative_reward(workspace):
    cfg = config(workspace, "uncertain", uncertainty_head=True, max_steps=3)
    train(cfg)
    responses = pd.DataFrame({"prompt": ["the question", ""], "response": ["good clear answer", "bad rude"]})
    scored = score(cfg.output_dir, responses, k=2.0)
    assert (scored["reward_sd"] > 0).all()
    assert np.allclose(scored["conservative_reward"], scored["reward"] - 2.0 * scored["reward_sd"])
    stats = json.loads((Path(cfg.output_dir) / "reward_stats.json").read_text())
    assert np.allclose(scored["reward_normalised"], (scored["reward"] - stats["mean"]) / stats["sd"])
    pairs = score(cfg.output_dir, synthetic_pairs(3, seed=9))
    same = score(cfg.output_dir, pd.DataFrame({"prompt": pairs["prompt"], "response": pairs["chosen"]}))
    assert np.allclose(same["reward"], pairs["reward_chosen"], atol=1e-5)  # both layouts score a response alike
    p = 1 / (1 + np.exp(-(pairs["reward_chosen"] - pairs["reward_rejected"]) /
                        np.sqrt(1 + np.pi / 8 * (pairs["reward_sd_chosen"] ** 2 + pairs["reward_sd_rejected"] ** 2))))
    assert np.allclose(pairs["p_chosen_model"], p, atol=1e-6)


def test_command_line_trains_evaluates_scores_and_reports_errors(workspace, capsys, tmp_path):
    out = tmp_path / "cli-rm"
    code = cli_main(["--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir", str(out),
                     "--max-steps", "2", "--batch-size", "8", "--no-progress", "--save-steps", "1",
                     "--stats-max-pairs", "8"])
    assert code == 0 and (out / "reward_head.safetensors").exists()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["global_step"] == 2
    assert cli_main(["evaluate", str(out), workspace["data"], "--out", str(tmp_path / "m.json")]) == 0
    assert "accuracy" in json.loads((tmp_path / "m.json").read_text())
    capsys.readouterr()
    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good answer", "bad answer"]}).to_json(responses, orient="records", lines=True)
    assert cli_main(["score", str(out), str(responses), "--out", str(tmp_path / "scored.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "scored.csv").columns)[:2] == ["response", "reward"]
    capsys.readouterr()
    # input problems: one line on stderr, exit status 2
    code = cli_main(["--model", workspace["bert"], "--train-path", str(tmp_path / "missing.parquet"),
                     "--output-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"accord: error: file {tmp_path / 'missing.parquet'}: not found"
    assert cli_main(["--model", workspace["bert"], "--train-path", workspace["data"], "--loss", "hinge"]) == 2
    assert "unknown loss" in capsys.readouterr().err


@pytest.mark.parametrize("modules", ["nope_proj", ""])
def test_lora_modules_the_backbone_lacks_are_one_line_naming_the_setting(workspace, modules):
    # peft's NoMatchingPeftModuleError came out as a traceback
    pytest.importorskip("peft")
    with pytest.raises(AccordError, match="lora_target_modules"):
        RewardTrainer(config(workspace, f"lora-{modules}", lora=True, lora_target_modules=modules))


def test_an_output_dir_that_is_a_file_is_refused_before_loading(workspace, tmp_path):
    # mkdir's FileExistsError came out as a traceback after the data was read and the model loaded
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    with pytest.raises(AccordError, match="is a file"):
        RewardTrainer(config(workspace, "unused", output_dir=str(taken)))
    assert taken.read_text() == "not a folder"


def test_a_tokenizer_with_nothing_to_pad_with_is_a_clear_error(workspace, tmp_path):
    # without a pad, end-of-sequence or unknown token the collator failed with "TypeError: full(): argument
    # 'fill_value' must be Number, not NoneType"
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path / "no-pad"
    shutil.copytree(workspace["llama"], folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.eos_token = tokenizer.unk_token = None
    with pytest.raises(AccordError, match="no-pad: its tokenizer has no pad, end-of-sequence or unknown token"):
        RewardTrainer(config(workspace, "no-pad", model=str(folder)), tokenizer=tokenizer)
    tokenizer.eos_token = "</s>"  # the end-of-sequence token pads
    trainer = RewardTrainer(config(workspace, "eos-pad", model=str(folder)), tokenizer=tokenizer)
    assert trainer.tokenizer.pad_token_id == tokenizer.convert_tokens_to_ids("</s>")


def test_a_pad_token_the_embeddings_lack_is_one_error_and_a_resized_model_round_trips(workspace):
    # was: a pad token added to a decoder's tokenizer (Llama's has none) without resizing the embeddings trained
    # until the first batch, then failed with "IndexError: index out of range in self" deep in the embedding
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(workspace["llama"])
    tokenizer.pad_token = None
    tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    frame = synthetic_pairs(8, seed=5)
    with pytest.raises(AccordError, match=r"pad token '\[PAD\]' \(id \d+\) has no row in the backbone's \d+ token "
                                          r"embeddings.*resize_token_embeddings"):
        RewardTrainer(config(workspace, "added-pad"), tokenizer=tokenizer, train_data=frame)
    model = RewardModel.from_backbone(workspace["llama"])
    model.backbone.resize_token_embeddings(len(tokenizer))
    trainer = RewardTrainer(config(workspace, "added-pad", max_steps=1), model=model, tokenizer=tokenizer,
                            train_data=frame)
    trainer.train()
    # the saved model (new pad row and all) gives the rewards it had in memory, its pad token kept
    pred = predict_pairs(trainer.unwrapped(), trainer.train_data, pad_token_id=tokenizer.pad_token_id)
    scored = score(trainer.output_dir, frame[["prompt", "chosen", "rejected"]])
    assert np.allclose(scored["reward_chosen"], pred["reward_chosen"], atol=1e-5)
    assert AutoTokenizer.from_pretrained(trainer.output_dir).pad_token == "[PAD]"


def test_a_model_folder_without_its_tokenizer_is_one_error_naming_it(workspace, tmp_path, capsys):
    # was: a transformers traceback ("ValueError: Couldn't instantiate the backend tokenizer from one of: ...") from
    # accord train on a folder of weights alone, and from accord score on a model saved without its tokenizer
    import shutil

    weights = tmp_path / "weights-only"
    weights.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(workspace["llama"]) / name, weights / name)
    out = tmp_path / "rm"
    code = cli_main(["train", "--model", str(weights), "--train-path", workspace["data"], "--output-dir", str(out),
                     "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"model {weights}: cannot load its tokenizer" in err[0], err
    assert not out.exists()
    RewardModel.from_backbone(workspace["llama"]).save_pretrained(out)  # no tokenizer given
    with pytest.raises(AccordError, match=f"model {out}: cannot load its tokenizer"):
        score(out, pd.DataFrame({"response": ["a good answer"]}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's flex attention")
@pytest.mark.parametrize("kind, setting", [("llama", {}), ("llama", {"share_prompt": True}), ("bert", {})])
def test_flex_attention_on_the_cpu_is_one_error_not_a_traceback_or_a_crash(workspace, kind, setting):
    # was: torch's "NotImplementedError: FlexAttention does not support backward on CPU" at the first step; and a
    # shared-prompt batch (or a packed encoder one) reached flex attention on the CPU as a dense mask, which corrupted
    # memory ("double free or corruption") and killed the process in the first forward pass, without a word
    cfg = config(workspace, f"flex-{kind}", model=workspace[kind], attn_implementation="flex_attention", **setting)
    with pytest.raises(AccordError, match="config: attn_implementation 'flex_attention' trains on a GPU only"):
        RewardTrainer(cfg, train_data=synthetic_pairs(8, seed=2))
    # scoring such a batch with a flex model is refused by the model itself
    model = RewardModel.from_backbone(workspace[kind], attn_implementation="flex_attention")
    rows = torch.zeros((1, 4), dtype=torch.long)
    batch = {"dense_mask": torch.ones((1, 4, 4), dtype=torch.bool)} if kind == "llama" else {"segment_ids": rows}
    with pytest.raises(AccordError, match="'flex_attention' cannot take the dense attention mask .* on the CPU"):
        model(input_ids=rows, pool_index=torch.tensor([3]), position_ids=rows, **batch)


def test_eval_steps_without_evaluation_data_is_refused(workspace):
    # eval_steps was silently ignored: no evaluation ever ran
    with pytest.raises(AccordError, match="eval_steps.*eval_path"):
        RewardTrainer(config(workspace, "no-eval", eval_steps=1))


@pytest.mark.parametrize("setting", [{"step_target": "outcome"}, {"step_separator": "</s>"}])
def test_settings_of_the_steps_task_are_refused_for_another_task(setting):
    # `accord train --step-target outcome` without --task steps trained a pairwise model without a word
    with pytest.raises(AccordError, match=f"'{next(iter(setting))}'.*'steps' task"):
        RewardConfig(model="m", **setting).validate()


@pytest.mark.parametrize("setting, owner", [({"label_smoothing": 0.2}, "'label_smoothing' loss"),
                                            ({"davidson_nu": 2.0}, "'davidson' loss"),
                                            ({"margin": 1.0}, "'margin' loss"),
                                            ({"loss": "davidson", "label_smoothing": 0.2}, "'label_smoothing' loss"),
                                            ({"lora_r": 4}, "LoRA"), ({"lora_dropout": 0.2}, "LoRA"),
                                            ({"lora_target_modules": "q_proj"}, "LoRA"),
                                            ({"packing": False, "packing_capacity": 512}, "packing"),
                                            ({"task": "attributes", "share_prompt": True}, "'pairwise' task"),
                                            ({"task": "steps", "center_rewards_coefficient": 0.01},
                                             "'pairwise' task")])
def test_a_setting_of_another_loss_or_of_lora_when_off_is_refused(setting, owner):
    """``accord train --label-smoothing 0.2`` (the default loss is weighted_soft_bce), ``--davidson-nu`` or
    ``--margin`` with another loss, ``--lora-r`` without ``--lora``, ``--packing-capacity`` with ``--no-packing``, and
    ``--share-prompt`` or ``--center-rewards-coefficient`` with a task that is not pairwise trained without the setting
    and without a word; each is refused as a step setting without the steps task is."""
    name = next(name for name in setting if name not in ("loss", "task", "packing"))
    with pytest.raises(AccordError, match=f"config: '{name}' is a setting of (the )?{owner}"):
        RewardConfig(model="m", **setting).validate()


@pytest.mark.parametrize("setting", [{"loss": "label_smoothing", "label_smoothing": 0.2},
                                     {"loss": "davidson", "davidson_nu": 2.0}, {"loss": "margin", "margin": 1.0},
                                     {"lora": True, "lora_r": 4, "lora_dropout": 0.2},
                                     {"packing": True, "packing_capacity": 512},
                                     {"share_prompt": True, "center_rewards_coefficient": 0.01}, {}])
def test_a_setting_of_the_chosen_loss_or_of_lora_when_on_is_taken(setting):
    RewardConfig(model="m", **setting).validate()


def test_an_output_dir_under_a_file_is_refused_before_loading(workspace, tmp_path, capsys):
    """``accord train --output-dir notes.txt/rm`` loaded the model, tokenized and trained, then ended in mkdir's
    NotADirectoryError traceback (exit 1); it is refused first, in one line naming output_dir."""
    (tmp_path / "notes.txt").write_text("a file\n")
    output = tmp_path / "notes.txt" / "rm"
    with pytest.raises(AccordError, match=r"output_dir .*notes.txt/rm: cannot be made: .*notes.txt is a file"):
        RewardTrainer(config(workspace, "under-a-file", model=str(tmp_path / "no-model"), output_dir=str(output)))
    capsys.readouterr()
    assert cli_main(["train", "--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir",
                     str(output), "--max-steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accord: error: --output-dir"), err  # the flag typed


def test_training_data_whose_weights_are_all_zero_is_refused_before_loading(workspace, tmp_path):
    # the weighted loss was 0 at every step: a model that never moved, trained without a word
    path = write_cleaned(synthetic_pairs(16, seed=2).assign(weight=0.0), tmp_path / "zero.parquet")
    absent = str(tmp_path / "no-model")  # the data is refused before a model is loaded
    with pytest.raises(AccordError, match=r"zero.parquet, column 'weight': every training pair has weight 0.*soft_bce"):
        RewardTrainer(config(workspace, "zero", model=absent, train_path=str(path)))
    assert cli_main(["train", "--model", absent, "--train-path", str(path), "--output-dir", str(tmp_path / "out"),
                     "--no-progress"]) == 2
    # a loss that ignores weights learns from the same pairs; one pair of weight > 0 is enough for the weighted loss
    RewardTrainer(config(workspace, "zero-unweighted", model=workspace["bert"], train_path=str(path), loss="soft_bce"))
    some = synthetic_pairs(16, seed=2).assign(weight=[0.5] + [0.0] * 15)
    RewardTrainer(config(workspace, "one-weighted", model=workspace["bert"], train_path=None), train_data=some)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_asked_on_the_cpu_warns_that_float32_runs(workspace, monkeypatch, precision):
    # bf16/fp16 on the CPU trained in float32 without a word
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match=f"mixed_precision='{precision}' needs a GPU: on the CPU training runs in "
                                         "float32") as caught:
        trainer = RewardTrainer(config(workspace, f"cpu-{precision}", model=workspace["bert"],
                                       mixed_precision=precision))
    assert sum("mixed_precision" in str(w.message) for w in caught) == 1
    assert trainer.accelerator.mixed_precision == "no"  # what runs is unchanged: float32


def test_frozen_lower_layers_do_not_train(workspace):
    cfg = config(workspace, "frozen", model=workspace["bert"], freeze_layers=1, max_steps=2)
    trainer = RewardTrainer(cfg)
    before = trained_state(trainer)
    trainer.train()
    after = trained_state(trainer)
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith(("backbone.encoder.layer.1.", "head.")) for key in changed), changed
    assert any(key.startswith("backbone.encoder.layer.1.") for key in changed)
    with pytest.raises(AccordError, match="freeze_layers"):
        RewardTrainer(config(workspace, "frozen-too-deep", model=workspace["bert"], freeze_layers=3))


def test_gradient_checkpointing_with_frozen_layers_does_not_run_back_through_them(workspace):
    # was: transformers made the embeddings' output require a gradient when checkpointing was switched on, so the
    # backward pass went through the frozen layers of a decoder again (recomputing each) instead of stopping above
    trainer = RewardTrainer(config(workspace, "frozen-checkpointed", freeze_layers=1, gradient_checkpointing=True),
                            train_data=synthetic_pairs(8, seed=3))
    model = trainer.unwrapped().train()
    model.packs_by_position()  # the model's one-time probe of packed rows runs the layers forward: not counted here
    calls = {0: 0, 1: 0}
    for index in calls:
        mlp = model.backbone.layers[index].mlp
        forward = mlp.forward

        def counting(*args, _index=index, _forward=forward, **kwargs):
            calls[_index] += 1
            return _forward(*args, **kwargs)

        mlp.forward = counting
    batch = trainer.task.collate(trainer.train_data, np.arange(8))
    model(**model_inputs(batch)).reward.sum().backward()
    assert calls == {0: 1, 1: 2}  # the trained layer is recomputed in the backward pass, the frozen one is not
    assert all(p.grad is None for p in model.backbone.layers[0].parameters())


@pytest.mark.parametrize("setting", [
    # a raw TypeError/ValueError from the batch sampler, the trainer, AdamW or peft at the first step
    {"batch_size": 2.5}, {"batch_size": "8"}, {"gradient_accumulation_steps": 1.5}, {"max_length": None},
    {"learning_rate": float("nan")}, {"num_epochs": float("nan")}, {"adam_beta1": 1.5}, {"lora_r": 0},
    # trained without a word: a NaN loss, gradient ascent (negative clipping norm), or a setting taken as unset
    {"learning_rate": float("inf")}, {"davidson_nu": float("nan")}, {"margin": float("nan")},
    {"center_rewards_coefficient": float("nan")}, {"max_grad_norm": -1.0}, {"weight_decay": -1.0},
    {"warmup_steps": -3}, {"ensemble_heads": 2.5}, {"pad_to_multiple_of": 0}, {"packing_capacity": 0},
    {"save_total_limit": 0}, {"lora_dropout": 1.5}, {"adam_epsilon": -1.0},
    # numpy's 'ValueError: expected non-negative integer' when the trainer draws the batch order
    {"seed": -1},
])
def test_config_refuses_a_setting_that_cannot_work_by_name(setting):
    name = next(iter(setting))
    with pytest.raises(AccordError, match=f"config: '{name}'"):
        RewardConfig(model="m", **setting).validate()


def test_the_margin_loss_reads_each_pair_s_margin_from_the_data(workspace):
    """A cleaned dataset from graded judgments carries ``margin`` (the expected strength towards chosen): the margin
    loss must read it per pair - a larger margin is a larger loss on the same model and data."""
    frame = synthetic_pairs(16, seed=3)
    losses = []
    for name, margin in (("m0", 0.0), ("m2", 2.0)):
        trainer = RewardTrainer(config(workspace, f"margin-{name}", loss="margin", max_steps=1),
                                train_data=frame.assign(margin=margin))
        losses.append(trainer.train().train_loss)
    assert losses[1] > losses[0] + 0.5


def test_resume_between_logging_steps_logs_what_an_uninterrupted_run_logs(workspace):
    """Was: a checkpoint kept nothing of the logging window it was written in, so a run resumed between two log
    lines logged the mean of the steps after the checkpoint only (and gave callbacks a NaN loss until then). Now
    every log line and callback state of the resumed run equals the uninterrupted run's."""
    frame = synthetic_pairs(40, seed=11)
    common = dict(batch_size=4, gradient_accumulation_steps=2, max_steps=6, save_steps=3, logging_steps=2)

    stop_at_checkpoint = stop_at(3)  # after step 3's checkpoint, mid logging window

    def record(seen):
        return lambda trainer, state: seen.append((state["step"], state["loss"]))

    straight_seen, resumed_seen = [], []
    RewardTrainer(config(workspace, "window-straight", **common), train_data=frame,
                  callbacks=[record(straight_seen)]).train()
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, "window-resumed", **common), train_data=frame,
                      callbacks=[stop_at_checkpoint]).train()
    RewardTrainer(config(workspace, "window-resumed", resume_from="latest", **common), train_data=frame,
                  callbacks=[record(resumed_seen)]).train()

    def logged(name):
        lines = (workspace["root"] / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k in ("step", "loss", "accuracy", "lr", "grad_norm")}
                for line in lines]

    assert logged("window-resumed") == logged("window-straight")
    assert resumed_seen == straight_seen[3:]
    a, b = final_weights(workspace["root"] / "window-straight"), final_weights(workspace["root"] / "window-resumed")
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("change", ["seed", "data"])
def test_resume_with_another_seed_or_training_data_is_refused_naming_it(workspace, change):
    """Was: a checkpoint resumed with another seed, or other training data of as many steps per epoch, skipped the
    batches done and went on through batches of another order, without a word. Now it is one error naming the
    checkpoint and what differs."""
    frame = synthetic_pairs(40, seed=12)
    common = dict(batch_size=8, max_steps=4, save_steps=2)

    stop = stop_at(2)

    with pytest.raises(Stop):
        RewardTrainer(config(workspace, f"resume-{change}", **common), train_data=frame, callbacks=[stop]).train()
    checkpoint = workspace["root"] / f"resume-{change}" / "checkpoints" / "step-0000002"
    if change == "seed":
        trainer = RewardTrainer(config(workspace, f"resume-{change}", resume_from="latest", seed=1, **common),
                                train_data=frame)
        message = "saved with seed 0; this run has seed 1"
    else:  # one pair more: still 5 batches of 8, as many steps per epoch
        trainer = RewardTrainer(config(workspace, f"resume-{change}", resume_from="latest", **common),
                                train_data=synthetic_pairs(39, seed=12))
        message = "saved from 40 training pairs; this run has 39"
    with pytest.raises(AccordError, match=f"^folder {checkpoint}: {message}"):
        trainer.train()


@pytest.mark.parametrize("change, message", [
    ({"max_length": 12}, "saved with max_length=512; this run has max_length=12 (resume needs the same max_length"),
    ({"group_by_length": False}, "saved with group_by_length=True; this run has group_by_length=False"),
    ({"packing": False}, "saved with packing=True; this run has packing=False"),
    ({"batch_size": 9}, "saved with batch_size=8; this run has batch_size=9"),  # 40 pairs: 5 batches either way
    ({"data": True}, "saved with another batch order of its 40 training pairs")])
def test_resume_with_settings_that_reorder_the_batches_is_refused_naming_them(workspace, change, message):
    """Was: a checkpoint resumed with another max_length, group_by_length or packing (or a batch size of as many
    steps per epoch, or other data of as many pairs) recomputed another batch order, skipped as many batches as were
    done and went on through the rest: some pairs were trained on twice in the epoch and others never, without a
    word. Now the checkpoint records its batch order, and a resumed run whose order differs is one error naming the
    checkpoint and the settings that differ (or the data). A checkpoint saved before the order was recorded resumes
    as before."""
    frame = synthetic_pairs(40, seed=12)
    name = "reorder-" + next(iter(change))
    common = dict(batch_size=8, max_steps=4, save_steps=2)
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, **common), train_data=frame, callbacks=[stop_at(2)]).train()
    checkpoint = workspace["root"] / name / "checkpoints" / "step-0000002"
    data = frame
    if "data" in change:  # as many pairs, other lengths
        data = frame.assign(chosen=frame["chosen"].str.cat(frame["chosen"].iloc[::-1].to_numpy(), sep=" "))
    settings = {**common, **{key: value for key, value in change.items() if key != "data"}}
    with pytest.raises(AccordError, match=f"^folder {checkpoint}: {re.escape(message)}"):
        RewardTrainer(config(workspace, name, resume_from="latest", **settings), train_data=data).train()
    # recorded before: the same run resumes, and a checkpoint without the record resumes as before
    state_path = checkpoint / "trainer_state.json"
    state = json.loads(state_path.read_text())
    resumed = RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame).train()
    assert resumed.global_step == 4
    del state["batch_order"], state["batch_settings"]
    state_path.write_text(json.dumps(state))
    RewardTrainer(config(workspace, name, resume_from=str(checkpoint), **settings), train_data=data).train()


def test_an_interrupt_while_the_checkpoint_loads_leaves_the_folder_as_it_was(workspace, monkeypatch):
    """Was: Ctrl-C while a checkpoint loaded (resume_from, which takes long for a large model) said "interrupted
    before the first training step: nothing written", but the output folder had been started by then: the log
    trimmed to the checkpoint's step and the later checkpoints of the run removed. Now an interrupt asked before the
    folder is started leaves it as it was."""
    from accord.reward.trainer import TrainingInterrupted

    frame = synthetic_pairs(40, seed=12)
    name = "interrupted-loading"
    common = dict(batch_size=8, max_steps=5, save_steps=2)
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, **common), train_data=frame, callbacks=[stop_at(4)]).train()
    out = workspace["root"] / name
    checkpoints = sorted(path.name for path in (out / "checkpoints").iterdir())
    log = (out / "metrics.jsonl").read_bytes()
    assert checkpoints == ["step-0000002", "step-0000004"]
    real = RewardTrainer._maybe_resume

    def interrupted_while_loading(self):
        real(self)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the handler only asks to stop

    monkeypatch.setattr(RewardTrainer, "_maybe_resume", interrupted_while_loading)
    trainer = RewardTrainer(config(workspace, name, resume_from=str(out / "checkpoints" / "step-0000002"), **common),
                            train_data=frame)
    with pytest.raises(TrainingInterrupted, match="nothing written"):
        trainer.train()
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == checkpoints
    assert (out / "metrics.jsonl").read_bytes() == log


def test_a_checkpoint_saved_before_the_first_log_line_is_json_and_resumes(workspace):
    """Was: a checkpoint saved before the run's first log line (save_steps below logging_steps) wrote "last_loss":
    NaN into trainer_state.json, a bare token that is no JSON (jq, strict parsers). Now it is null, and the resumed
    run reads it back as no loss logged yet."""
    import math

    frame = synthetic_pairs(40, seed=13)
    common = dict(batch_size=8, max_steps=3, save_steps=1, logging_steps=3)
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, "unlogged", **common), train_data=frame, callbacks=[stop_at(1)]).train()

    def refuse(token):
        raise ValueError(f"{token} is no JSON")

    state_path = workspace["root"] / "unlogged" / "checkpoints" / "step-0000001" / "trainer_state.json"
    assert json.loads(state_path.read_text(), parse_constant=refuse)["last_loss"] is None
    seen = []
    result = RewardTrainer(config(workspace, "unlogged", resume_from="latest", **common), train_data=frame,
                           callbacks=[lambda trainer, state: seen.append(state["loss"])]).train()
    assert result.global_step == 3 and math.isnan(seen[0]) and math.isfinite(seen[-1])


def _stopped_after_one_step(workspace, name: str):
    """A run of 3 steps stopped after its first, checkpointed: the data, the settings and the checkpoint."""
    frame = synthetic_pairs(40, seed=12)
    common = dict(model=workspace["bert"], batch_size=8, max_steps=3, save_steps=1)
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, **common), train_data=frame, callbacks=[stop_at(1)]).train()
    return frame, common, workspace["root"] / name / "checkpoints" / "step-0000001"


@pytest.mark.parametrize("change, message", [
    ({"uncertainty_head": True}, "saved with uncertainty_head=False; this run has uncertainty_head=True"),
    ({"ensemble_heads": 3}, "saved with ensemble_heads=None; this run has ensemble_heads=3"),
    ({"pooling": "cls"}, "saved with pooling='auto'; this run has pooling='cls'")])
def test_resume_into_another_model_is_one_error_naming_the_settings(workspace, change, message):
    """Was: a checkpoint resumed with another head (uncertainty_head, ensemble_heads) or adapters ended in torch's
    "Error(s) in loading state_dict for RewardModel" traceback, and with another pooling it went on training what
    the saved head had learned to read elsewhere, without a word. Now the checkpoint records the settings that shape
    the model, and a run that gives them otherwise is one error naming them; a checkpoint saved before the record
    whose states do not fit is one line naming the checkpoint."""
    name = "reshaped-" + next(iter(change))
    frame, common, checkpoint = _stopped_after_one_step(workspace, name)
    with pytest.raises(AccordError, match=f"^folder {checkpoint}: {re.escape(message)}"):
        RewardTrainer(config(workspace, name, resume_from="latest", **common, **change), train_data=frame).train()
    if "pooling" in change:
        return  # the states fit: nothing else to say
    state_path = checkpoint / "trainer_state.json"
    state = json.loads(state_path.read_text())
    del state["model_settings"]
    state_path.write_text(json.dumps(state))
    with pytest.raises(AccordError, match=f"^folder {checkpoint}: its states do not fit this run's model") as caught:
        RewardTrainer(config(workspace, name, resume_from="latest", **common, **change), train_data=frame).train()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("change, message", [
    ({"learning_rate": 5e-4}, "saved with learning_rate=0.002; this run has learning_rate=0.0005"),
    ({"loss": "bradley_terry"}, "saved with loss='weighted_soft_bce'; this run has loss='bradley_terry'"),
    ({"weight_decay": 0.5, "adam_beta2": 0.99}, "saved with weight_decay=0.0, adam_beta2=0.999; this run has "
                                                "weight_decay=0.5, adam_beta2=0.99")])
def test_resume_with_another_loss_or_optimiser_is_one_error_naming_the_settings(workspace, change, message):
    """Was: a checkpoint resumed with another learning_rate (or weight decay, Adam's settings) trained on at the
    checkpoint's, which its optimiser state holds, and with another loss trained the rest of the run towards another
    objective, while reward_config.json recorded this run's settings alone. Now the checkpoint records them, and a run
    that gives them otherwise is one error naming them; a checkpoint saved before the record resumes as before."""
    name = "retrained-" + "-".join(change)
    frame, common, checkpoint = _stopped_after_one_step(workspace, name)
    with pytest.raises(AccordError, match=f"^folder {checkpoint}: {re.escape(message)} \\(resume goes on with"):
        RewardTrainer(config(workspace, name, resume_from="latest", **common, **change), train_data=frame).train()
    state_path = checkpoint / "trainer_state.json"
    state = json.loads(state_path.read_text())
    del state["training_settings"]
    state_path.write_text(json.dumps(state))
    resumed = RewardTrainer(config(workspace, name, resume_from="latest", **common, **change), train_data=frame)
    assert resumed.train().global_step == 3


def test_a_run_killed_while_replacing_a_checkpoint_resumes_from_a_complete_one(workspace, monkeypatch):
    """Was: a checkpoint saved again at its step (a resumed run reaching it once more) first deleted the old folder
    file by file, trainer_state.json among the last, so a run killed half-way left a folder without its weights that
    'latest' still took for a complete checkpoint. Now trainer_state.json goes first and 'latest' passes the folder
    by."""
    import accord.reward.trainer as trainer_module

    trainer = RewardTrainer(config(workspace, "replace-checkpoint", save_steps=1), train_data=synthetic_pairs(16))
    trainer.global_step = 1
    first = trainer.save_checkpoint()
    trainer.global_step = 2
    second = trainer.save_checkpoint()
    assert trainer.latest_checkpoint() == second
    real_rmtree = trainer_module.shutil.rmtree

    def killed_half_way(path, *args, **kwargs):
        if Path(path) == second:  # the weights go, then the process dies
            for weights in Path(path).glob("*.safetensors"):
                weights.unlink()
            raise KeyboardInterrupt
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(trainer_module.shutil, "rmtree", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint()
    assert trainer.latest_checkpoint() == first


def test_a_max_length_beyond_the_backbone_s_position_table_is_one_error_naming_it(workspace, tmp_path):
    """Was: a max_length longer than a BERT-style backbone's learned position table (MiniLM reads 512) crashed on the
    first long sequence with torch's 'IndexError: index out of range in self', in training, evaluate and score.
    Now each is one error naming max_length and the backbone's limit; within it the model trains and scores."""
    words = [" ".join(GOOD + BAD + NEUTRAL)]
    short = build_tiny_backbone(tmp_path / "short-bert", "bert", texts=words, seed=1, max_positions=16)
    frame = synthetic_pairs(8, seed=13)
    with pytest.raises(AccordError, match="^config: max_length 64: the backbone .*short-bert.* reads at most 16 token "
                                          "positions"):
        RewardTrainer(config(workspace, "too-long", model=str(short), max_length=64, max_steps=1), train_data=frame)
    cfg = config(workspace, "fits", model=str(short), max_length=16, max_steps=1)
    RewardTrainer(cfg, train_data=frame).train()
    assert np.isfinite(evaluate(cfg.output_dir, frame)["soft_nll"])
    for function in (evaluate, score):
        with pytest.raises(AccordError, match="^max_length 64: .* reads at most 16 token positions"):
            function(cfg.output_dir, frame, max_length=64)


def test_packed_rows_wider_than_the_backbone_s_positions_train_and_score(workspace, tmp_path):
    """Was: the padding at a packed row's end took positions 0, 1, 2... to the row's width, so a row wider than a
    BERT-style backbone's position table (packing_capacity 1024 for MiniLM's 512, to fit two long sequences a row)
    crashed with torch's 'index out of range' whenever a row was less than half full, though every sequence fitted
    max_length; so did pad_to_multiple_of rounding a row past it (24 for a table of 16). Now the padding's
    positions restart within the batch's longest sequence."""
    words = [" ".join(GOOD + BAD + NEUTRAL)]
    short = build_tiny_backbone(tmp_path / "short-bert", "bert", texts=words, seed=1, max_positions=16)
    frame = synthetic_pairs(16, seed=14)
    cfg = config(workspace, "wide-rows", model=str(short), max_length=16, max_steps=2, packing_capacity=48)
    trainer = RewardTrainer(cfg, train_data=frame)
    trainer.train()
    model, data = trainer.unwrapped(), trainer.train_data
    wide = predict_pairs(model, data, pad_token_id=trainer.tokenizer.pad_token_id, packing=True)
    narrow = predict_pairs(model, data, pad_token_id=trainer.tokenizer.pad_token_id, packing=False)
    np.testing.assert_allclose(wide["reward_chosen"], narrow["reward_chosen"], atol=1e-5)
    collator = trainer.task.collator
    batch = collator(data, np.arange(len(data)))
    assert batch["input_ids"].shape[1] > 16 and int(batch["position_ids"].max()) < 16  # wide rows, positions in
    # rows padded to a multiple past the table, packed or one per sequence, the same
    for packing in (True, False):
        padded = config(workspace, f"multiple-{packing}", model=str(short), max_length=16, max_steps=1,
                        packing=packing, pad_to_multiple_of=24)
        RewardTrainer(padded, train_data=frame).train()
        assert np.isfinite(evaluate(padded.output_dir, frame)["soft_nll"])


def test_a_config_write_that_fails_half_way_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    """Was: RewardConfig.save wrote reward_config.json in place, so a write that died half-way (a full disk, a kill)
    left a truncated file where the earlier run's config had been. Now it is written atomically: the earlier file
    stays as it was and no temporary file is left beside it."""
    path = tmp_path / "reward_config.json"
    earlier = RewardConfig(model="earlier", seed=3)
    earlier.save(path)
    before = path.read_text()
    real_write_text = Path.write_text

    def dies_half_way(self, text, *args, **kwargs):
        real_write_text(self, text[:len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", dies_half_way)
    with pytest.raises(AccordError, match=f"^file {re.escape(str(path))}: cannot write it: No space left on device$"):
        RewardConfig(model="later", seed=4).save(path)
    monkeypatch.undo()
    assert path.read_text() == before
    assert RewardConfig.load(path) == earlier
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def _model_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


@pytest.mark.parametrize("dies", ["head", "backbone", "tokenizer"])
def test_overwriting_a_finished_model_cut_short_leaves_the_earlier_model_whole(workspace, monkeypatch, dies):
    """Was: train with overwrite_output_dir over a finished model wrote the new run's reward_config.json at its start
    (a run cut short left the earlier weights beside the new settings, a model that loaded with another run's
    record), and its save removed the earlier reward_model.json first and then wrote file by file, so a save cut
    short (here in the head's, the backbone's or the tokenizer's save, as a full disk or a kill would) left neither
    model. Now the new model's files, its config among them, land together once all are written: the earlier model
    stays as it was, byte for byte, and loads; a save that completes replaces it whole."""
    import safetensors.torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    first = config(workspace, f"overwritten-{dies}", model=workspace["bert"], max_steps=1, seed=1)
    train(first)
    out = Path(first.output_dir)
    earlier = _model_files(out)
    assert {"reward_model.json", "reward_config.json", "model.safetensors", "reward_head.safetensors"} <= set(earlier)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    target = {"head": (safetensors.torch, "save_file"), "backbone": (PreTrainedModel, "save_pretrained"),
              "tokenizer": (PreTrainedTokenizerBase, "save_pretrained")}[dies]
    second = config(workspace, f"overwritten-{dies}", model=workspace["bert"], max_steps=2, seed=2,
                    learning_rate=5e-3, overwrite_output_dir=True)
    with monkeypatch.context() as patched:
        patched.setattr(*target, no_space)
        with pytest.raises(AccordError, match="cannot save the reward model .*No space left"):
            train(second)
    kept = {name: data for name, data in _model_files(out).items() if name != "metrics.next.jsonl"}
    assert kept == earlier  # its log too (the new run's is kept aside until its model lands)
    assert RewardConfig.load(out / "reward_config.json").seed == 1
    assert RewardModel.from_pretrained(out).meta["global_step"] == 1
    assert [path.name for path in out.iterdir() if path.name.startswith(".")] == []  # no staging folder left
    train(second)  # completes: the new model, its config with it
    assert RewardModel.from_pretrained(out).meta["global_step"] == 2
    assert RewardConfig.load(out / "reward_config.json").seed == 2
    assert [path.name for path in out.iterdir() if path.name.startswith(".")] == []


def test_a_model_saved_over_another_keeps_none_of_its_files(workspace, tmp_path):
    """The earlier model's files that the new one lacks go when the new one lands: its statistics (a model saved
    without them was normalised by another model's rewards), a combination fitted to its rewards, weights of another
    name; the trainer's log and other files stay. A folder saved before the model recorded its files (here: the
    record taken out) loses the files named as a model's are."""
    folder = tmp_path / "rm"
    RewardModel.from_backbone(workspace["bert"]).save_pretrained(folder, stats={"mean": 0.5, "sd": 2.0, "n": 8})
    meta = json.loads((folder / "reward_model.json").read_text())
    meta.pop("saved_files", None)
    (folder / "reward_model.json").write_text(json.dumps(meta))
    for name in ("reward_combination.json", "pytorch_model.bin", "vocab.txt"):
        (folder / name).write_text("{}")
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    (folder / "notes.txt").write_text("mine")
    RewardModel.from_backbone(workspace["bert"], pooling="cls").save_pretrained(folder)
    names = {path.name for path in folder.iterdir()}
    assert not names & {"reward_stats.json", "reward_combination.json", "pytorch_model.bin", "vocab.txt"}, names
    assert {"metrics.jsonl", "notes.txt", "reward_model.json", "model.safetensors"} <= names
    assert RewardModel.from_pretrained(folder).pooling == "cls"


def test_a_model_saved_over_another_removes_only_the_files_the_earlier_model_wrote(workspace, tmp_path):
    """Was: the earlier model's files that the new one lacks were found by their names' patterns (*.bin,
    *.safetensors, config.json, vocab.txt...), so a user's own file in the folder that matched one (notes.bin,
    an export.safetensors) was deleted with them. Now the files a model writes are recorded in its
    reward_model.json, and only those (and accord's own reward_*.json beside it) go: the user's files stay."""
    folder = tmp_path / "rm"
    tokenizer = load_tokenizer(workspace["bert"], "bert")
    RewardModel.from_backbone(workspace["bert"]).save_pretrained(folder, tokenizer=tokenizer,
                                                                 stats={"mean": 0.5, "sd": 2.0, "n": 8})
    tokenizer_files = {path.name for path in folder.iterdir()} - {
        "config.json", "model.safetensors", "reward_head.safetensors", "reward_model.json", "reward_stats.json"}
    assert tokenizer_files
    mine = {"notes.bin": b"mine", "export.safetensors": b"mine too", "tokenizer.model": b"and mine"}
    for name, data in mine.items():
        (folder / name).write_bytes(data)
    (folder / "reward_combination.json").write_text("{}")  # accord combine's, fitted to the earlier model
    RewardModel.from_backbone(workspace["bert"], pooling="cls").save_pretrained(folder)
    names = {path.name for path in folder.iterdir()}
    assert not names & ({"reward_stats.json", "reward_combination.json"} | tokenizer_files), names
    assert {name: (folder / name).read_bytes() for name in mine} == mine
    assert RewardModel.from_pretrained(folder).pooling == "cls"
    # and a model saved over this one, too: the record is of the files this one wrote
    RewardModel.from_backbone(workspace["bert"]).save_pretrained(folder, stats={"mean": 0.0, "sd": 1.0, "n": 8})
    assert {name: (folder / name).read_bytes() for name in mine} == mine
    assert RewardModel.from_pretrained(folder).pooling != "cls"


def test_a_save_killed_while_its_files_landed_leaves_nothing_the_next_save_keeps(workspace, tmp_path):
    """Was: a save killed outright (SIGKILL, the OOM killer) while its files landed - each moved beside the model
    under a hidden temporary name and flushed to disk, seconds for large weights - left those hidden files
    (".model.safetensors.<random>.partial", as large as the weights) beside the earlier model, and every later save
    kept them: only the staging folder was cleared. Now the next save removes the temporary files of the files it
    lands; the earlier model loaded meanwhile, and a file of the user's is kept."""
    import tempfile

    folder = tmp_path / "rm"
    tokenizer = load_tokenizer(workspace["bert"], "bert")
    RewardModel.from_backbone(workspace["bert"]).save_pretrained(folder, tokenizer=tokenizer)
    # what the kill leaves: the temporary files atomic_path makes beside each file it lands
    left = [Path(tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)[1])
            for name in ("model.safetensors", "reward_head.safetensors", "tokenizer.json", "reward_model.json")]
    (folder / ".notes.partial").write_text("mine")
    assert RewardModel.from_pretrained(folder).pooling != "cls"  # the earlier model loads meanwhile
    RewardModel.from_backbone(workspace["bert"], pooling="cls").save_pretrained(folder, tokenizer=tokenizer)
    assert [path.name for path in left if path.exists()] == []
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".")) == [".notes.partial"]
    assert RewardModel.from_pretrained(folder).pooling == "cls"


def test_resuming_an_older_checkpoint_removes_the_abandoned_run_s_later_ones(workspace, capsys):
    """Was: resuming from an explicit older checkpoint (step-1 while the run had gone on to step-3) left the later
    ones in place, so the next --resume-from latest took the abandoned run's step-3 for this run's newest. Now they
    are removed at resume, with a line naming them: 'latest' is the resumed-from checkpoint until this run saves
    one, then this run's; checkpoints up to the step resumed from stay."""
    frame = synthetic_pairs(16, seed=14)
    common = dict(batch_size=8, max_steps=4, save_steps=1, save_total_limit=None)
    name = "resume-older"
    checkpoints = workspace["root"] / name / "checkpoints"
    RewardTrainer(config(workspace, name, **common), train_data=frame).train()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000001", "step-0000002", "step-0000003"]
    capsys.readouterr()

    stop_before_saving = stop_at(0)  # the resumed run dies before its first checkpoint

    older = checkpoints / "step-0000001"
    resumed = RewardTrainer(config(workspace, name, resume_from=str(older), **{**common, "save_steps": None}),
                            train_data=frame, callbacks=[stop_before_saving])
    with pytest.raises(Stop):
        resumed.train()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000001"]
    assert resumed.latest_checkpoint() == older
    err = capsys.readouterr().err
    assert "removed 2 later checkpoint(s)" in err and "step-0000002, step-0000003" in err

    # once the resumed run saves, 'latest' is its own newest checkpoint
    again = RewardTrainer(config(workspace, name, resume_from=str(older), **common), train_data=frame,
                          callbacks=[stop_at(2)])
    with pytest.raises(Stop):
        again.train()
    assert again.latest_checkpoint() == checkpoints / "step-0000002"
    assert json.loads((checkpoints / "step-0000002" / "trainer_state.json").read_text())["global_step"] == 2


@pytest.mark.parametrize("head", ["random", "even"])
def test_the_logged_training_accuracy_counts_pairs_as_the_evaluation_does(workspace, head):
    """Was: the pairwise task's logged training accuracy was the share of pairs with d > 0, whatever the label: a
    pair whose label favours the rejected side counted right when the model preferred chosen, a tie counted, and a
    pair scored exactly even counted wrong, where the evaluation's accuracy (pairwise_metrics) scores against the
    side the label favours, leaves ties out and counts an even pair half right. Now both use one rule (pair_hits)."""
    frame = synthetic_pairs(16, seed=15)
    # labels favouring chosen, favouring rejected, and two kinds of tie (sides within tolerance; P(tie) above both)
    frame["p_chosen"] = np.tile([0.9, 0.2, 0.45, 0.3], 4)
    frame["p_tie"] = np.tile([0.0, 0.0, 0.1, 0.4], 4)
    trainer = RewardTrainer(config(workspace, f"accuracy-{head}", batch_size=16, max_steps=1), train_data=frame)
    data = trainer.train_data
    logged = logged_sums(trainer, even=head == "even")["accuracy"]  # every pair scored exactly even, or not
    evaluated = trainer.evaluate(data, trainer.train_table)
    assert evaluated["n_ties"] == 8
    if head == "even":
        assert evaluated["accuracy"] == 0.5
    assert logged == pytest.approx(evaluated["accuracy"], abs=1e-6)


def test_a_run_killed_while_appending_to_metrics_jsonl_resumes(workspace):
    """Was: a run killed half-way through appending a line to metrics.jsonl left a partial last line, and resuming
    died on it with json's raw 'JSONDecodeError' while trimming the file. Now that line is dropped with the others
    written after the checkpoint (a step's line is written before its checkpoint), and the run resumes."""
    frame = synthetic_pairs(16, seed=16)
    common = dict(batch_size=8, max_steps=4, save_steps=2)

    stop = stop_at(3)

    with pytest.raises(Stop):
        RewardTrainer(config(workspace, "partial-line", **common), train_data=frame, callbacks=[stop]).train()
    metrics = workspace["root"] / "partial-line" / "metrics.jsonl"
    with open(metrics, "a", encoding="utf-8") as handle:
        handle.write('{"step": 4, "loss": 0.6')  # killed mid-line
    RewardTrainer(config(workspace, "partial-line", resume_from="latest", **common), train_data=frame).train()
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    # a line spoiled elsewhere was not left by a kill: one error naming the file and the line
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    with pytest.raises(AccordError, match="metrics.jsonl, line 2: not a JSON record"):
        RewardTrainer(config(workspace, "partial-line", resume_from="latest", **common), train_data=frame).train()


def test_a_fresh_run_in_a_folder_with_an_earlier_run_s_checkpoints_is_refused_or_overwrites(workspace, capsys):
    """Was: a fresh run (no resume_from) in a folder holding an earlier run's checkpoints kept them and deleted the
    earlier metrics.jsonl: 'latest' stayed the earlier run's newest checkpoint, and with save_total_limit the
    pruning, which keeps the highest steps, deleted this run's own checkpoints first. Now such a run is refused
    before a model loads, naming the folder and the way on; overwrite_output_dir starts afresh, removing them."""
    frame = synthetic_pairs(16, seed=17)
    name = "fresh-over-earlier"
    checkpoints = workspace["root"] / name / "checkpoints"
    RewardTrainer(config(workspace, name, max_steps=4, save_steps=1, save_total_limit=None),
                  train_data=frame).train()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000001", "step-0000002", "step-0000003"]
    before = {p.name: (p / "trainer_state.json").read_bytes() for p in checkpoints.iterdir()}

    shorter = dict(max_steps=3, save_steps=1, save_total_limit=1)
    with pytest.raises(AccordError, match=r"fresh-over-earlier: holds checkpoints of an earlier run \(newest "
                                          r"step-0000003\).*--resume-from latest.*--overwrite-output-dir"):
        RewardTrainer(config(workspace, name, model=str(workspace["root"] / "no-such-model"), **shorter),
                      train_data=frame)  # refused before the (missing) model is looked for
    assert {p.name: (p / "trainer_state.json").read_bytes() for p in checkpoints.iterdir()} == before

    capsys.readouterr()
    trainer = RewardTrainer(config(workspace, name, overwrite_output_dir=True, **shorter), train_data=frame)
    trainer.train()
    assert "removed 3 checkpoint(s) of an earlier run" in capsys.readouterr().err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000002"]  # this run's newest (limit 1)
    assert trainer.latest_checkpoint() == checkpoints / "step-0000002"
    records = [json.loads(line) for line in (workspace["root"] / name / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]


def test_overwrite_output_dir_and_resume_from_together_are_refused():
    with pytest.raises(AccordError, match="resume_from continues the earlier run that overwrite_output_dir removes"):
        RewardConfig(model="m", overwrite_output_dir=True, resume_from="latest").validate()


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_a_switch_that_is_not_true_or_false_is_refused_naming_it(value):
    """Was: a bool setting read from a config file was not checked: `progress: "no"` (text) was truthy and showed
    the bars, `lora: 1` turned LoRA on. Now one error names the setting (a YAML `no` is read as false, not text)."""
    with pytest.raises(AccordError, match=r"config: 'progress' must be true or false, got"):
        RewardConfig(model="m", progress=value).validate()


def test_training_from_a_saved_reward_model_goes_on_from_its_head(workspace):
    """``model`` naming a folder accord saved a reward model in loaded its backbone under a new, randomly started
    head: what the head had learned was dropped without a word. Now the saved model, head and all, trains on; a
    setting the saved model fixes otherwise is one error naming it."""
    first = config(workspace, "saved-first", model=workspace["bert"])
    train(first)
    saved = final_weights(first.output_dir)
    trainer = RewardTrainer(config(workspace, "saved-second", model=first.output_dir, seed=7))
    state = {k: v for k, v in trainer.unwrapped().state_dict().items()}
    heads = [k for k in saved if k.startswith("head.")]
    assert heads and all(torch.equal(state[k], saved[k]) for k in heads)
    assert torch.equal(state["backbone.embeddings.word_embeddings.weight"], saved["embeddings.word_embeddings.weight"])
    with pytest.raises(AccordError, match="uncertainty_head=True"):
        RewardTrainer(config(workspace, "saved-third", model=first.output_dir, uncertainty_head=True))


@pytest.mark.parametrize("head", [{"uncertainty_head": True}, {"ensemble_heads": 2}])
def test_a_saved_model_s_head_goes_on_training_without_restating_it(workspace, head):
    """Was: a model saved with an uncertainty head (or ensemble heads) went on training only when the setting was
    given again: left unset, the error said 'uncertainty_head=False (the saved model's: uncertainty_head=True); leave
    them unset', which it was, or that ensemble_heads, not given, 'asks for 1'. Now a setting left unset takes the
    saved head's, which trains on, and the run's config records it; one asked otherwise is still an error."""
    first = config(workspace, f"head-first-{list(head)[0]}", model=workspace["bert"], max_steps=1, **head)
    train(first)
    asked = config(workspace, f"head-second-{list(head)[0]}", model=first.output_dir, max_steps=1)
    trainer = RewardTrainer(asked)
    assert not asked.uncertainty_head and asked.ensemble_heads is None  # the caller's config stays as given
    saved = final_weights(first.output_dir)
    state = trainer.unwrapped().state_dict()
    assert all(torch.equal(state[k], saved[k]) for k in saved if k.startswith("head."))
    assert trainer.train().global_step == 1
    written = json.loads((Path(trainer.config.output_dir) / "reward_config.json").read_text())
    assert {name: written[name] for name in head} == head
    other = {"uncertainty_head": {"ensemble_heads": 3}, "ensemble_heads": {"ensemble_heads": 3}}[list(head)[0]]
    with pytest.raises(AccordError, match="ensemble_heads"):
        RewardTrainer(config(workspace, f"head-third-{list(head)[0]}", model=first.output_dir, **other))


@pytest.mark.parametrize("kind", ["bloom", "mpt"])
def test_a_backbone_without_sdpa_trains_and_asking_sdpa_of_it_names_the_setting(workspace, kind, capsys):
    """The trainer asked every backbone for sdpa attention: BLOOM and MPT have none, so `accord train` on them ended in
    transformers' 'does not support ... scaled_dot_product_attention' naming no setting. Unset, the kernel is now
    transformers' choice (sdpa where the backbone has it, else eager): they train; asked for sdpa, the error names
    --attn-implementation."""
    backbone = build_tiny_backbone(workspace["root"] / kind, kind, texts=[" ".join(GOOD + BAD + NEUTRAL)], seed=1)
    cfg = config(workspace, f"no-sdpa-{kind}", model=str(backbone), max_steps=1)
    trainer = RewardTrainer(cfg)
    assert trainer.unwrapped().backbone.config._attn_implementation == "eager"
    assert trainer.train().global_step == 1
    capsys.readouterr()
    assert cli_main(["train", "--model", str(backbone), "--train-path", workspace["data"], "--output-dir",
                     str(workspace["root"] / f"sdpa-{kind}"), "--attn-implementation", "sdpa", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--attn-implementation 'sdpa'" in err and "attn_implementation" not in err


@pytest.mark.parametrize("kind", ["bloom", "mpt"])
def test_share_prompt_on_a_backbone_that_cannot_take_it_is_one_error_naming_it(workspace, kind, capsys):
    """share_prompt runs a pair's responses after one copy of the prompt, each at the positions and under the mask
    it would have alone. BLOOM and MPT bias attention by ALiBi from the row's own layout: BLOOM ended in transformers'
    'too many values to unpack' traceback at the first step, and MPT trained on rejected responses scored otherwise
    than alone, without a word. Now both are refused before training, naming share_prompt (--share-prompt); a
    backbone that takes it trains with it."""
    backbone = build_tiny_backbone(workspace["root"] / f"{kind}-shared", kind, texts=[" ".join(GOOD + BAD + NEUTRAL)],
                                   seed=1)
    # eager: as transformers picks for them (named, the old main loaded them too)
    cfg = config(workspace, f"shared-{kind}", model=str(backbone), max_steps=1, share_prompt=True,
                 attn_implementation="eager")
    with pytest.raises(AccordError, match=r"config: share_prompt: the backbone \((Bloom|Mpt)Model\) cannot take a "
                                          r"shared prompt: .*; turn share_prompt off"):
        RewardTrainer(cfg)
    capsys.readouterr()
    assert cli_main(["train", "--model", str(backbone), "--train-path", workspace["data"], "--output-dir",
                     str(workspace["root"] / f"shared-cli-{kind}"), "--share-prompt", "--attn-implementation", "eager",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--share-prompt: the backbone" in err, err
    assert RewardTrainer(config(workspace, "shared-llama", max_steps=1, share_prompt=True)).train().global_step == 1


def _logged(folder: Path) -> list[dict]:
    """The log's lines without their timings (which differ between runs)."""
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("_per_s")}
            for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_run_over_a_finished_model_cut_short_leaves_the_earlier_model_its_log(workspace):
    """Was: a run over a finished model (overwrite_output_dir, or the library's train run again) deleted the earlier
    model's metrics.jsonl at its start, so a run cut short (a crash, Ctrl-C, before or after a checkpoint) left the
    earlier model's files without the record of how it was trained. Now this run logs beside it, and its log
    lands as metrics.jsonl with its model: the earlier model keeps its log until then; resumed, the run's final
    log is an uninterrupted run's, and it never holds the earlier model's lines."""
    frame = synthetic_pairs(40, seed=18)
    common = dict(batch_size=8, max_steps=4, save_steps=2, logging_steps=1, seed=3)
    name = "log-stays"
    out = workspace["root"] / name
    RewardTrainer(config(workspace, name, batch_size=8, max_steps=3, logging_steps=1), train_data=frame).train()
    earlier = (out / "metrics.jsonl").read_bytes()
    straight = config(workspace, "log-stays-straight", **common)
    RewardTrainer(straight, train_data=frame).train()

    for stop in (1, 3):  # before the run's first checkpoint, and after it
        with pytest.raises(Stop):
            RewardTrainer(config(workspace, name, overwrite_output_dir=True, **common), train_data=frame,
                          callbacks=[stop_at(stop)]).train()
        assert (out / "metrics.jsonl").read_bytes() == earlier
        assert RewardModel.from_pretrained(out).meta["global_step"] == 3
    RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame).train()
    assert RewardModel.from_pretrained(out).meta["global_step"] == 4
    assert _logged(out) == _logged(Path(straight.output_dir))
    assert not (out / "metrics.next.jsonl").exists()
    # resumed from an earlier checkpoint of the finished run: its log stays whole until the resumed run lands
    finished = (out / "metrics.jsonl").read_bytes()
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, resume_from=str(out / "checkpoints" / "step-0000002"), **common),
                      train_data=frame, callbacks=[stop_at(3)]).train()
    assert (out / "metrics.jsonl").read_bytes() == finished
    RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame).train()
    assert _logged(out) == _logged(Path(straight.output_dir))


def test_an_interrupt_while_saving_the_model_resumes_to_an_uninterrupted_run_s_log(workspace, monkeypatch):
    """Was: Ctrl-C while the finished run saved its model (after the final evaluation's line was logged) saved a
    checkpoint of the last step, and resuming it evaluated again and logged that line a second time: the log held
    two final evaluations where an uninterrupted run has one. Now the resumed run drops the line it writes again,
    and its log and weights are the uninterrupted run's."""
    from accord.reward.trainer import TrainingInterrupted

    frame = synthetic_pairs(24, seed=21)
    common = dict(batch_size=8, max_steps=2, logging_steps=1)
    straight = config(workspace, "save-interrupted-straight", **common)
    RewardTrainer(straight, train_data=frame, eval_data=frame).train()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    name = "save-interrupted"
    with monkeypatch.context() as patched:
        patched.setattr(RewardModel, "save_pretrained", interrupted)
        with pytest.raises(TrainingInterrupted, match="only evaluates and saves"):
            RewardTrainer(config(workspace, name, **common), train_data=frame, eval_data=frame).train()
    out = workspace["root"] / name
    assert not (out / "reward_model.json").exists()
    RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame, eval_data=frame).train()
    assert _logged(out) == _logged(Path(straight.output_dir))
    a, b = final_weights(straight.output_dir), final_weights(out)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_second_ctrl_c_during_training_names_the_checkpoint_to_resume(workspace, monkeypatch, capsys, tmp_path):
    """Was: a second Ctrl-C (which stops at once, not at the step's end) while the run trained or wrote a checkpoint
    came out of `accord train` as "interrupted before training started: nothing written", though the folder held the
    run's checkpoints and log. Now it says the run was interrupted after its steps done and names the checkpoint that
    --resume-from latest continues, from which the run resumes."""
    out = tmp_path / "twice-interrupted"
    real = RewardTrainer.save_checkpoint

    def ctrl_c_twice(self):
        saved = real(self)
        if self.global_step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # asks to stop at the step's end
            os.kill(os.getpid(), signal.SIGINT)  # stops at once
        return saved

    line = ["--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir", str(out),
            "--max-steps", "4", "--batch-size", "8", "--no-progress", "--save-steps", "1", "--stats-max-pairs", "8"]
    with monkeypatch.context() as patched:
        patched.setattr(RewardTrainer, "save_checkpoint", ctrl_c_twice)
        assert cli_main(line) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing written" not in err, err
    assert "after 2 of 4 steps" in err and str(out / "checkpoints" / "step-0000002") in err, err
    assert cli_main(line + ["--resume-from", "latest"]) == 0
    assert RewardModel.from_pretrained(out).meta["global_step"] == 4


@pytest.mark.parametrize("dies", ["checkpoint", "model"])
def test_a_full_disk_while_saving_is_one_line_that_says_what_is_kept(workspace, monkeypatch, capsys, tmp_path, dies):
    """Was: a full disk (or no permission) while `accord train` wrote a checkpoint or the finished model came out as
    a torch or safetensors traceback ending in "OSError: [Errno 28] No space left on device", naming neither the
    folder nor what was kept, and a checkpoint cut short left its half-written .partial folder taking the space. Now
    it is one line naming the folder and the checkpoint that resumes the run; the .partial folder is gone, the
    earlier checkpoint and model stay as they were, and the run resumes from that checkpoint."""
    import errno

    import safetensors.torch

    out = tmp_path / f"full-disk-{dies}"
    line = ["--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir", str(out),
            "--batch-size", "8", "--no-progress", "--save-steps", "1", "--logging-steps", "1", "--stats-max-pairs", "8",
            "--seed", "3"]
    assert cli_main(line + ["--max-steps", "1"]) == 0  # a finished model the next run goes over
    earlier = {name: data for name, data in _model_files(out).items()}
    real_save = torch.save

    def no_space_at_step_2(obj, target, *args, **kwargs):
        if "step-0000002" in str(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, target, *args, **kwargs)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    capsys.readouterr()
    with monkeypatch.context() as patched:
        if dies == "checkpoint":
            patched.setattr(torch, "save", no_space_at_step_2)
        else:
            patched.setattr(safetensors.torch, "save_file", no_space)  # the head's weights
        assert cli_main(line + ["--max-steps", "3", "--overwrite-output-dir"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("accord: error: folder ") and "No space left on device" in err, err
    assert str(out / "checkpoints" / ("step-0000001" if dies == "checkpoint" else "step-0000002")) in err, err
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == (
        ["step-0000001"] if dies == "checkpoint" else ["step-0000001", "step-0000002"])
    assert {name: data for name, data in _model_files(out).items() if name != "metrics.next.jsonl"} == earlier
    assert RewardModel.from_pretrained(out).meta["global_step"] == 1
    assert cli_main(line + ["--max-steps", "3", "--resume-from", "latest"]) == 0
    assert RewardModel.from_pretrained(out).meta["global_step"] == 3
    assert [json.loads(text)["step"] for text in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("damage", ["optimizer.bin missing", "model.safetensors cut", "random_states_0.pkl missing",
                                    "trainer_state.json cut"])
def test_resuming_a_checkpoint_copied_in_part_is_one_error_naming_the_file(workspace, damage):
    """Was: a checkpoint that lost a file or had one cut short (copied in part to another machine, a disk fault)
    resumed into a FileNotFoundError, safetensors' "incomplete metadata" or json's JSONDecodeError traceback, and one
    without its random states resumed without a word, its dropout no longer an uninterrupted run's. Now resuming it
    is one error naming the checkpoint and the file; the checkpoint records its files' sizes when it is saved."""
    frame = synthetic_pairs(16, seed=22)
    common = dict(batch_size=8, max_steps=2, save_steps=1)
    name = f"damaged-{damage.split()[0]}"
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, **common), train_data=frame, callbacks=[stop_at(1)]).train()
    checkpoint = workspace["root"] / name / "checkpoints" / "step-0000001"
    file, how = damage.split()
    if how == "missing":
        (checkpoint / file).unlink()
    else:
        (checkpoint / file).write_bytes((checkpoint / file).read_bytes()[:-20])
    trainer = RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame)
    with pytest.raises(AccordError, match=f"^folder {re.escape(str(checkpoint))}: a damaged checkpoint.*{file}") as err:
        trainer.train()
    assert len(str(err.value).splitlines()) == 1


def test_training_on_from_a_checkpoint_named_as_the_model_says_to_resume_it(workspace, tmp_path):
    """Was: a checkpoint folder named as the model (after a run stopped short of saving its model, the checkpoint
    is what there is) was "cannot load its config: Unrecognized model ... Should have a `model_type` key in its
    config.json", of a folder without one. Now the error says it is a training checkpoint and how to continue it."""
    frame = synthetic_pairs(16, seed=23)
    name = "checkpoint-as-model"
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, batch_size=8, max_steps=2, save_steps=1), train_data=frame,
                      callbacks=[stop_at(1)]).train()
    checkpoint = workspace["root"] / name / "checkpoints" / "step-0000001"
    with pytest.raises(AccordError, match=f"^model {re.escape(str(checkpoint))}: a training checkpoint, not a "
                                          f"backbone.*--resume-from {re.escape(str(checkpoint))}"):
        RewardTrainer(config(workspace, "from-checkpoint", model=str(checkpoint), max_steps=1), train_data=frame)


def test_a_checkpoint_a_kill_left_unfinished_goes_without_being_called_an_earlier_run_s(workspace, capsys):
    """Was: the .partial folder of a checkpoint a run was killed while writing (SIGKILL) was removed at the next
    run's start with "starting afresh (overwrite_output_dir): removed 1 checkpoint(s) of an earlier run
    (step-0000002.partial)", of a run not given overwrite_output_dir, or, resumed, as a later checkpoint of a run
    that went on from the one resumed. Now it goes without a word (it never was a checkpoint); complete later
    checkpoints are still named."""
    frame = synthetic_pairs(16, seed=24)
    common = dict(batch_size=8, max_steps=2, save_steps=1)
    name = "unfinished-checkpoint"
    partial = workspace["root"] / name / "checkpoints" / "step-0000002.partial"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"cut")
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, name, **common), train_data=frame, callbacks=[stop_at(1)]).train()
    assert not partial.exists()
    assert "removed" not in capsys.readouterr().err
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut")
    RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame).train()
    assert not partial.exists()
    assert "removed" not in capsys.readouterr().err


def test_a_full_disk_at_the_run_s_start_is_one_line_naming_the_folder(workspace, monkeypatch, capsys, tmp_path):
    """Was: a full disk when `accord train` started its output folder (reward_config.json, the log trimmed on resume)
    was a traceback ending in "OSError: [Errno 28] No space left on device"; now it is one line naming the folder."""
    import errno

    out = tmp_path / "full-at-start"
    real_write_text = Path.write_text

    def no_space_for_the_config(self, *args, **kwargs):
        if self.name.startswith(".reward_config.json."):  # atomic_path's temporary file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", no_space_for_the_config)
    assert cli_main(["--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir", str(out),
                     "--max-steps", "1", "--batch-size", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"accord: error: folder {out}: "), err
    assert "No space left on device" in err, err


@pytest.mark.parametrize("into", ["a new folder", "a finished model's folder"])
def test_resuming_another_folder_s_checkpoint_starts_from_that_run_s_log(workspace, into):
    """Was: a run resumed from a checkpoint of another output folder (--resume-from runA/checkpoints/step-N
    --output-dir runB) started its log from runB's own: none (the log began at step N+1, its first steps missing
    without a word) or, over a finished model there, that model's lines up to step N, another run's. Now it starts
    from the log of the run that saved the checkpoint, up to its step: the final log is an uninterrupted run's (and
    a finished model's own log stays whole until the new model lands)."""
    frame = synthetic_pairs(32, seed=25)
    common = dict(batch_size=8, max_steps=4, save_steps=2, logging_steps=1)
    tag = into.split()[1]
    straight = config(workspace, f"elsewhere-straight-{tag}", **common)
    RewardTrainer(straight, train_data=frame).train()
    with pytest.raises(Stop):
        RewardTrainer(config(workspace, f"elsewhere-a-{tag}", **common), train_data=frame,
                      callbacks=[stop_at(3)]).train()
    name = f"elsewhere-b-{tag}"
    checkpoint = workspace["root"] / f"elsewhere-a-{tag}" / "checkpoints" / "step-0000002"
    out = workspace["root"] / name
    if into != "a new folder":
        RewardTrainer(config(workspace, name, batch_size=8, max_steps=1, seed=7), train_data=frame).train()
        earlier = (out / "metrics.jsonl").read_bytes()
        with pytest.raises(Stop):
            RewardTrainer(config(workspace, name, resume_from=str(checkpoint), **common), train_data=frame,
                          callbacks=[stop_at(3)]).train()
        assert (out / "metrics.jsonl").read_bytes() == earlier
    RewardTrainer(config(workspace, name, resume_from=str(checkpoint), **common), train_data=frame).train()
    assert _logged(out) == _logged(Path(straight.output_dir))


class Terminated(Exception):
    """Raised by the SIGTERM handler the tests install: a run that left SIGTERM to it did not take it as Ctrl-C."""


def _terminated(signum, frame):
    raise Terminated


def test_sigterm_stops_at_the_step_s_end_with_a_checkpoint_and_resumes_to_an_uninterrupted_run(workspace, monkeypatch,
                                                                                                capsys, tmp_path):
    """Was: SIGTERM, with which a cluster scheduler pre-empts a job, was left to its default (or the caller's
    handler): the run died in the middle of a step with no checkpoint of it. Now it is taken as the first Ctrl-C:
    the step finishes, a checkpoint is saved, TrainingInterrupted says so (`accord train` exits with 143, 128 +
    SIGTERM), the earlier handler is back afterwards, and the resumed run's log and weights are an uninterrupted
    run's."""
    from accord.reward.trainer import TrainingInterrupted

    frame = synthetic_pairs(40, seed=23)
    common = dict(model=workspace["bert"], batch_size=8, max_steps=4, logging_steps=1)
    straight = config(workspace, "sigterm-straight", **common)
    RewardTrainer(straight, train_data=frame, eval_data=frame).train()

    def sigterm_at(step):
        def send(trainer, state):
            if state["step"] == step:
                os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler's pre-emption does
        return send

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        name = "sigterm"
        with pytest.raises(TrainingInterrupted, match="^interrupted at step [23] of 4: saved a resumable") as stopped:
            RewardTrainer(config(workspace, name, **common), train_data=frame, eval_data=frame,
                          callbacks=[sigterm_at(2)]).train()
        assert stopped.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is _terminated  # the earlier handler is back
        out = workspace["root"] / name
        step = int(str(stopped.value).split()[3])  # asked in step 2's callbacks: that step's end, or the next's
        assert stopped.value.checkpoint == out / "checkpoints" / f"step-{step:07d}"
        assert not (out / "reward_model.json").exists()
        RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame,
                      eval_data=frame).train()
        assert _logged(out) == _logged(Path(straight.output_dir))
        a, b = final_weights(straight.output_dir), final_weights(out)
        assert all(torch.equal(a[key], b[key]) for key in a)

        # `accord train` exits with 128 + SIGTERM, one line naming the checkpoint; a SIGTERM while the finished
        # run saves its model stops at once with a checkpoint of the last step, as Ctrl-C there does
        real_save = RewardModel.save_pretrained

        def pre_empted_while_saving(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            return real_save(*args, **kwargs)

        cli_out = tmp_path / "sigterm-cli"
        line = ["--model", workspace["bert"], "--train-path", workspace["data"], "--output-dir", str(cli_out),
                "--max-steps", "2", "--batch-size", "8", "--no-progress", "--stats-max-pairs", "8"]
        with monkeypatch.context() as patched:
            patched.setattr(RewardModel, "save_pretrained", pre_empted_while_saving)
            assert cli_main(line) == 128 + signal.SIGTERM
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(cli_out / "checkpoints" / "step-0000002") in err, err
        assert "after the last training step" in err, err
        assert signal.getsignal(signal.SIGTERM) is _terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("during", ["callbacks", "logging"])
def test_a_ctrl_c_during_the_last_step_s_logging_or_callbacks_is_honoured(workspace, monkeypatch, during):
    """Was: Ctrl-C while the last step logged or ran the callbacks was dropped (the loop had read the request
    before them, and stopped its handling with the loop): the run evaluated, saved the model and reported it finished.
    Now it stops as Ctrl-C while the finished run evaluates or saves does: a checkpoint of the last step, no model,
    TrainingInterrupted saying the interrupt came after the last step; the resumed run only evaluates and saves, and
    its log and weights are an uninterrupted run's."""
    from accord.reward.trainer import TrainingInterrupted

    # the handler the process had (Python's default_int_handler, or SIG_IGN where a shell started the run in the
    # background, as CI scripts and nohup do): the trainer must give it back
    sigint_before = signal.getsignal(signal.SIGINT)
    frame = synthetic_pairs(24, seed=24)
    common = dict(model=workspace["bert"], batch_size=8, max_steps=3, logging_steps=1)
    straight = config(workspace, f"late-ctrl-c-straight-{during}", **common)
    RewardTrainer(straight, train_data=frame, eval_data=frame).train()

    def ctrl_c(trainer, state=None):
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # asks to stop at the step's end

    name = f"late-ctrl-c-{during}"
    callbacks = [ctrl_c] if during == "callbacks" else []
    with monkeypatch.context() as patched:
        if during == "logging":
            real_log = RewardTrainer._log

            def logged_then_ctrl_c(self, record):
                real_log(self, record)
                if "loss" in record:
                    ctrl_c(self)
            patched.setattr(RewardTrainer, "_log", logged_then_ctrl_c)
        with pytest.raises(TrainingInterrupted, match="^interrupted after the last training step: saved a "
                                                      "resumable checkpoint to .*only evaluates and saves") as stopped:
            RewardTrainer(config(workspace, name, **common), train_data=frame, eval_data=frame,
                          callbacks=callbacks).train()
    out = workspace["root"] / name
    assert stopped.value.checkpoint == out / "checkpoints" / "step-0000003"
    assert not (out / "reward_model.json").exists()
    assert signal.getsignal(signal.SIGINT) is sigint_before
    RewardTrainer(config(workspace, name, resume_from="latest", **common), train_data=frame, eval_data=frame).train()
    assert _logged(out) == _logged(Path(straight.output_dir))
    a, b = final_weights(straight.output_dir), final_weights(out)
    assert all(torch.equal(a[key], b[key]) for key in a)
