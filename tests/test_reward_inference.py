"""What a user does with a trained reward model: score responses and pairs, score an ensemble, calibrate, from
Python and from `accord score` / `evaluate` / `calibrate`. The models are tiny random backbones with a random head,
saved as the trainer saves them (no training: the rewards only need to differ from response to response)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.reward.ensemble import score_ensemble
from accord.reward.evaluate import evaluate, score
from accord.reward.model import RewardModel, load_tokenizer
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)
WORDS = "good helpful clear bad rude wrong the a answer question cat dog".split()
MODEL_SETTINGS = st.sampled_from(["bert", "llama", "bert_uncertainty", "llama_heads"])


def save_random_model(backbone, folder, **settings):
    """A reward model on ``backbone`` with a random head, saved as the trainer saves one."""
    torch.manual_seed(0)
    model = RewardModel.from_backbone(str(backbone), **settings)
    heads = settings.get("ensemble_heads", 1)
    stats = {"mean": 0.1, "sd": 2.0, "n": 10.0}
    if heads > 1:
        stats["heads"] = [{"mean": 0.1 * h, "sd": 1.0 + h, "n": 10.0} for h in range(heads)]
    model.save_pretrained(folder, tokenizer=load_tokenizer(backbone, backbone), stats=stats,
                          extra_meta={"max_length": 32, "task": "pairwise"})
    return str(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    bert = build_tiny_backbone(root / "bert", "bert", texts=[" ".join(WORDS)], seed=1, max_positions=64)
    llama = build_tiny_backbone(root / "llama", "llama", texts=[" ".join(WORDS)], seed=1)
    return {"bert": save_random_model(bert, root / "rm_bert"),
            "llama": save_random_model(llama, root / "rm_llama"),
            "bert_uncertainty": save_random_model(bert, root / "rm_bert_u", uncertainty_head=True),
            "llama_heads": save_random_model(llama, root / "rm_llama_e3", ensemble_heads=3, head_seed=0)}


def texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, int(rng.integers(0, 6)))) for _ in range(n)]


# ----------------------------------------------------------------------------------------------------------------------
# the caller's rows
# ----------------------------------------------------------------------------------------------------------------------


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=MODEL_SETTINGS, pairs=st.booleans(), seed=st.integers(0, 1000))
def test_scores_come_back_on_the_rows_of_a_frame_with_any_index(models, kind, pairs, seed):
    # was: the index was reset to 0..n-1, so df["reward"] = score(rm, df)["reward"] put each reward on another row
    rng = np.random.default_rng(seed)
    n = 5
    columns = {"prompt": texts(rng, n)}
    columns.update({"chosen": texts(rng, n), "rejected": texts(rng, n)} if pairs else {"response": texts(rng, n)})
    plain = pd.DataFrame(columns)
    index = pd.Index(rng.permutation(100)[:n] * 7 + 3, name="row_id")
    frame = plain.set_axis(index)
    scored = score(models[kind], frame)
    assert scored.index.equals(index)
    column = "reward_chosen" if pairs else "reward"
    expected = score(models[kind], plain)[column].to_numpy()
    np.testing.assert_allclose(frame.assign(reward=scored[column])["reward"], expected, rtol=1e-5, atol=1e-6)


def test_an_ensemble_s_scores_come_back_on_the_rows_of_the_frame(models):
    frame = pd.DataFrame({"prompt": ["a", "the cat", "question"], "response": ["good", "bad rude", "clear answer"]},
                         index=["x", "y", "z"])
    scored = score_ensemble([models["bert"], models["llama"]], frame)
    assert list(scored.index) == ["x", "y", "z"]
    np.testing.assert_allclose(scored["reward_0"], score(models["bert"], frame)["reward_normalised"])


@pytest.mark.parametrize("member, stats", [("llama", None), ("llama", {"n": 4}),
                                           ("llama_heads", {"mean": 0.0, "sd": 1.0}),
                                           ("llama_heads", {"heads": [{"mean": 0.0, "sd": 1.0}]})])
def test_an_ensemble_member_without_its_training_statistics_is_refused_naming_it(models, tmp_path, capsys, member,
                                                                                  stats):
    # was: its rewards were taken as they came (mean 0, sd 1) beside members standardised by their own statistics,
    # so the ensemble's mean, spread and conservative reward mixed two scales without a word
    import json
    import shutil

    from accord.cli import main as accord_main

    folder = shutil.copytree(models[member], tmp_path / "member")
    (folder / "reward_stats.json").unlink()
    if stats is not None:
        (folder / "reward_stats.json").write_text(json.dumps(stats))
    data = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good", "bad"]}).to_json(data, orient="records", lines=True)
    assert accord_main(["score", f"{models['bert']},{folder}", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {folder}" in err and "reward_stats.json" in err, err


# ----------------------------------------------------------------------------------------------------------------------
# layouts
# ----------------------------------------------------------------------------------------------------------------------


def chat_responses() -> pd.DataFrame:
    return pd.DataFrame({"prompt": [[{"role": "user", "content": "question"}], [{"role": "user", "content": "cat"}]],
                         "response": [[{"role": "assistant", "content": "good clear answer"}],
                                      [{"role": "assistant", "content": "bad rude"}]]})


@pytest.mark.parametrize("kind", ["llama", "bert", "llama_heads"])
def test_chat_messages_read_from_parquet_score_as_the_same_messages(models, kind, tmp_path):
    # Parquet gives lists of messages back as numpy arrays: their repr was scored as the text (with an ensemble's
    # heads too), so the file scored otherwise than the same table in memory or in JSON Lines
    frame = chat_responses()
    frame.to_parquet(tmp_path / "chat.parquet")
    frame.to_json(tmp_path / "chat.jsonl", orient="records", lines=True)
    expected = score(models[kind], frame)["reward"].to_numpy()
    for path in (tmp_path / "chat.parquet", tmp_path / "chat.jsonl"):
        np.testing.assert_allclose(score(models[kind], str(path))["reward"], expected, rtol=1e-5, atol=1e-6)
    if kind == "llama_heads":
        scored = score_ensemble([models[kind]], str(tmp_path / "chat.parquet"))
        np.testing.assert_allclose(scored["reward_mean"], score_ensemble([models[kind]], frame)["reward_mean"],
                                   rtol=1e-5, atol=1e-6)


def test_chat_messages_without_a_prompt_score_as_the_same_messages_in_a_pair(models):
    # was: pairs of messages that share no prompt (assistant turns alone) failed with transformers' "Cannot apply
    # chat template to an empty conversation" traceback in score, evaluate and train, and a response given as
    # messages without a prompt got an empty user turn before it, so it scored otherwise than as a side of a pair
    from accord.reward.evaluate import evaluate

    user = {"role": "user", "content": "question"}
    good, bad = ([{"role": "assistant", "content": text}] for text in ("good clear answer", "bad rude"))
    for prefix in ([], [user]):
        pairs = pd.DataFrame({"chosen": [prefix + good], "rejected": [prefix + bad]})
        sides = score(models["llama"], pairs)
        responses = score(models["llama"], pd.DataFrame({"response": [prefix + good, prefix + bad]}))["reward"]
        np.testing.assert_allclose(responses, sides[["reward_chosen", "reward_rejected"]].to_numpy()[0], rtol=1e-5,
                                   atol=1e-6)
        assert evaluate(models["llama"], pairs.assign(p_chosen=1.0))["n_pairs"] == 1
    with_prompt = score(models["llama"], pd.DataFrame({"prompt": [[user]], "response": [good]}))["reward"]
    np.testing.assert_allclose(with_prompt, responses.to_numpy()[:1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("column, value", [
    ("response", {"role": "assistant", "content": "good"}), ("response", ["good", "bad"]), ("response", []),
    ("response", [{"content": "no role"}]), ("prompt", {"role": "user", "content": "question"}),
    ("prompt", [{"role": "user"}])])
@pytest.mark.parametrize("ensemble", [False, True])
def test_a_response_that_is_neither_a_text_nor_messages_is_one_line_naming_file_column_and_row(
        models, column, value, ensemble, tmp_path, capsys):
    # was: a single message (a dict), a list of texts or an empty list was scored as its repr, and messages without
    # a role were a KeyError traceback, where pairs refuse them naming the row
    from accord.cli import main as accord_main

    frame = pd.DataFrame({"prompt": ["question", "a", "cat"], "response": ["good", "bad", "clear"]})
    frame[column] = frame[column].astype(object)
    frame.at[2, column] = value
    data = tmp_path / "responses.jsonl"
    frame.to_json(data, orient="records", lines=True)
    model = f"{models['bert']},{models['llama']}" if ensemble else models["llama"]
    assert accord_main(["score", model, str(data), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"file {data}, column '{column}', row 2" in err and "chat messages" in err, err


@pytest.mark.parametrize("labels", [{"p_chosen": [0.7, np.nan, 0.2]}, {"weight": [2.0, 1.0, 0.5]},
                                    {"p_chosen": [0.9, 0.8, 0.1], "p_tie": [0.5, 0.0, 0.0]}, {"margin": ["big", 1, 2]}])
def test_score_of_pairs_reads_their_texts_and_no_label(models, labels, tmp_path):
    # was: the pairs' label columns were checked as training checks them, so pairs not rated yet (a missing
    # p_chosen) or a weight above 1 were refused, though scoring reads no label
    pairs = pd.DataFrame({"prompt": ["question", "", "the cat"], "chosen": ["good clear", "answer", "dog"],
                          "rejected": ["bad rude", "wrong", "a cat"]})
    expected = score(models["bert"], pairs)
    labelled = pairs.assign(**labels)
    labelled.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    for data in (labelled, str(tmp_path / "pairs.jsonl")):
        scored = score(models["bert"], data)
        pd.testing.assert_frame_equal(scored[expected.columns], expected, check_exact=False, rtol=1e-6)
        assert list(scored.columns[:len(labelled.columns)]) == list(labelled.columns)  # the labels go along


def save_decoder(kind: str, folder) -> str:
    """A tiny random decoder of a transformers model type outside accord.reward.tiny's, with its reward head."""
    from transformers import AutoConfig, AutoModel

    from accord.reward.tiny import word_tokenizer

    tokenizer = word_tokenizer([" ".join(WORDS)], decoder=True)
    sizes = {"opt": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                         word_embed_proj_dim=32),
             "mpt": dict(d_model=32, n_layers=2, n_heads=4)}[kind]
    config = AutoConfig.for_model(kind, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **sizes)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder / "backbone")
    tokenizer.save_pretrained(folder / "backbone")
    return save_random_model(folder / "backbone", folder / "rm")


@pytest.mark.parametrize("kind", ["opt", "mpt"])
def test_a_decoder_that_reads_no_position_ids_scores_each_response_alone(kind, tmp_path):
    # was: OPT and MPT (BLOOM, XGLM) build their causal mask without the position ids a packed row restarts, so a
    # packed response attended to the responses before it in its row: its reward changed with the batch size
    from accord.reward.evaluate import load_model

    model_dir = save_decoder(kind, tmp_path)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"prompt": texts(rng, 8), "response": texts(rng, 8)})
    alone = score(model_dir, frame, batch_size=1)["reward"].to_numpy()
    for batch_size in (3, 8):
        np.testing.assert_allclose(score(model_dir, frame, batch_size=batch_size)["reward"], alone, rtol=1e-5,
                                   atol=1e-5)
    pairs = pd.DataFrame({"prompt": frame["prompt"], "chosen": frame["response"], "rejected": texts(rng, 8)})
    np.testing.assert_allclose(score(model_dir, pairs)["reward_chosen"], alone, rtol=1e-5, atol=1e-5)
    assert not load_model(model_dir, "cpu")[0].packs_by_position()


def test_decoders_that_read_position_ids_keep_their_packed_rows(models):
    from accord.reward.evaluate import load_model

    assert load_model(models["llama"], "cpu")[0].packs_by_position()


@pytest.mark.parametrize("command, name", [("evaluate", "reward_model.json"), ("evaluate", "config.json"),
                                           ("evaluate", "tokenizer.json"), ("evaluate", "reward_stats.json"),
                                           ("evaluate", "model.safetensors"), ("score", "tokenizer.json")])
def test_an_out_that_names_a_file_of_the_model_is_refused_before_any_work(models, tmp_path, capsys, command, name):
    # was: accord evaluate rm pairs --out rm/reward_model.json wrote the metrics over the model's metadata (exit 0),
    # and the model no longer loaded; the model folder is an input as the data file is
    import shutil

    from accord.cli import main as accord_main

    model = shutil.copytree(models["bert"], tmp_path / "rm")
    data = tmp_path / "pairs.jsonl"
    pd.DataFrame({"chosen": ["good", "clear"], "rejected": ["bad", "rude"]}).to_json(data, orient="records",
                                                                                     lines=True)
    files = {path.name: path.read_bytes() for path in model.iterdir()}
    assert accord_main([command, str(model), str(data), "--out", str(model / name), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err and "file of the model" in err, err
    assert {path.name: path.read_bytes() for path in model.iterdir()} == files
    # a file of its own beside the model is written, and written again
    for _ in range(2):
        assert accord_main(["evaluate", str(model), str(data), "--out", str(model / "eval.json"), "--quiet"]) == 0
    assert (model / "eval.json").exists()


# ----------------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, what", [("reward_head.safetensors", "cannot load its head"),
                                        ("model.safetensors", "cannot load its backbone"),
                                        ("reward_model.json", "reward_model.json is not readable JSON"),
                                        ("reward_stats.json", "reward_stats.json is not readable JSON"),
                                        ("reward_model.json", "lacks")])
@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_model_file_cut_short_is_one_line_naming_the_folder_and_file(models, tmp_path, capsys, name, what,
                                                                       command):
    # was: a safetensors or JSON traceback (exit 1) for a file cut short by a copy or a download
    import shutil

    from accord.cli import main as accord_main

    model = shutil.copytree(models["bert"], tmp_path / "rm")
    if name == "reward_model.json" and what.endswith("lacks"):  # valid JSON, what the model is built from gone
        (model / name).write_text('{"task": "pairwise", "max_length": 32}')
        what = "reward_model.json lacks is_decoder, pooling, uncertainty_head"
    else:
        (model / name).write_bytes((model / name).read_bytes()[:30])
    data = tmp_path / "pairs.jsonl"
    pd.DataFrame({"chosen": ["good"], "rejected": ["bad"]}).to_json(data, orient="records", lines=True)
    assert accord_main([command, str(model), str(data), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {model}" in err and what in err, err


def test_a_model_saved_in_bfloat16_loads_and_scores_in_bfloat16(tmp_path):
    # was: loaded as float32 whatever it was saved in (twice the memory of the model saved), so its scores were not
    # the saved model's; training on from it still starts from float32 weights
    import json

    from accord.reward import RewardConfig, train
    from accord.reward.data import PairEncoder
    from accord.reward.evaluate import load_model, predict_responses

    llama = build_tiny_backbone(tmp_path / "llama", "llama", texts=[" ".join(WORDS)], seed=1)
    torch.manual_seed(0)
    saved = RewardModel.from_backbone(str(llama), dtype=torch.bfloat16)
    tokenizer = load_tokenizer(llama, llama)
    saved.save_pretrained(tmp_path / "rm", tokenizer=tokenizer, extra_meta={"max_length": 32, "task": "pairwise"})
    model, _ = load_model(tmp_path / "rm", "cpu")
    assert {p.dtype for p in model.backbone.parameters()} == {torch.bfloat16}
    assert model.head.weight.dtype == torch.float32
    responses = ["good clear answer", "bad rude wrong", "the cat"]
    encoded = PairEncoder(tokenizer, 32, True).encode([""] * 3, responses)
    expected, _ = predict_responses(saved, encoded, pad_token_id=tokenizer.pad_token_id)
    np.testing.assert_array_equal(score(tmp_path / "rm", pd.DataFrame({"response": responses}))["reward"], expected)
    pairs = tmp_path / "pairs.jsonl"
    pd.DataFrame({"chosen": responses[:1] * 8, "rejected": responses[1:2] * 8}).to_json(pairs, orient="records",
                                                                                        lines=True)
    config = RewardConfig(model=str(tmp_path / "rm"), train_path=str(pairs), output_dir=str(tmp_path / "rm2"),
                          batch_size=4, max_steps=1, save_steps=None, progress=False, stats_max_pairs=4)
    train(config)
    assert json.loads((tmp_path / "rm2" / "config.json").read_text())["dtype"] == "float32"


# ----------------------------------------------------------------------------------------------------------------------
# calibration
# ----------------------------------------------------------------------------------------------------------------------


def test_calibrate_prints_the_ece_before_and_after_as_evaluate_measures_them(models, tmp_path, capsys):
    # was: only the fit's objective (nll_before / nll_after) was printed, so whether the probabilities came closer
    # to the labels took an evaluate before and one after
    import json
    import shutil

    from accord.cli import main as accord_main

    model = shutil.copytree(models["bert"], tmp_path / "rm")
    rng = np.random.default_rng(3)
    held_out = tmp_path / "held_out.jsonl"
    pairs = pd.DataFrame({"prompt": texts(rng, 30), "chosen": texts(rng, 30), "rejected": texts(rng, 30)})
    d = score(model, pairs).eval("reward_chosen - reward_rejected").to_numpy()
    # labels that follow the model's ranking, more sharply than its probabilities do
    pairs["p_chosen"] = 1 / (1 + np.exp(-(3 * d + rng.normal(0, 0.3, 30))))
    pairs.to_json(held_out, orient="records", lines=True)
    assert accord_main(["evaluate", str(model), str(held_out), "--quiet"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert accord_main(["calibrate", str(model), str(held_out), "--quiet", "--objective", "soft"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert accord_main(["evaluate", str(model), str(held_out), "--quiet"]) == 0
    after = json.loads(capsys.readouterr().out)
    for name in ("ece", "soft_ece"):
        assert fitted[f"{name}_before"] == pytest.approx(before[name], rel=1e-6, abs=1e-9)
        assert fitted[f"{name}_after"] == pytest.approx(after[name], rel=1e-6, abs=1e-9)
    assert fitted["temperature"] != pytest.approx(1.0)


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_packed_gpt2_batch_prints_no_attention_mask_warning(tmp_path, capsys, command):
    """`accord score rm data --quiet` on a GPT-2 reward model printed transformers' "We strongly recommend passing in
    an `attention_mask`": a packed decoder row goes without a 2-D mask on purpose (its sequences are kept apart by
    their position ids) and its trailing padding is never read. The warning is gone; the rewards are those of
    unpacked rows, which do get a mask."""
    import logging

    from accord.cli import main as accord_main

    backbone = build_tiny_backbone(tmp_path / "gpt2", "gpt2", texts=[" ".join(WORDS)], seed=1, max_positions=64)
    model = save_random_model(backbone, tmp_path / "rm")
    data = tmp_path / "pairs.jsonl"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"prompt": texts(rng, 6), "chosen": texts(rng, 6), "rejected": texts(rng, 6)})
    frame.to_json(data, orient="records", lines=True)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    transformers_logger = logging.getLogger("transformers")
    logging.Logger.warning_once.cache_clear()  # transformers says it once per process
    transformers_logger.addHandler(handler)
    try:
        capsys.readouterr()
        assert accord_main([command, model, str(data), "--quiet", *(["--out", str(tmp_path / "s.csv")]
                                                                     if command == "score" else [])]) == 0
    finally:
        transformers_logger.removeHandler(handler)
    assert not [r.getMessage() for r in records if "attention_mask" in r.getMessage()]
    assert "attention_mask" not in capsys.readouterr().err
    packed = score(model, frame, batch_size=6)["reward_chosen"].to_numpy()
    np.testing.assert_allclose(packed, score(model, frame, batch_size=1)["reward_chosen"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", ["gpu", "cuda:7", "cuda0"])
def test_a_device_torch_cannot_use_is_one_error_naming_the_setting(models, device):
    """score(rm, frame, device="cuda") on a machine without CUDA was torch's AssertionError ('Torch not compiled
    with CUDA enabled') after the weights had loaded, and a typo torch's RuntimeError listing every device type.
    score, evaluate and score_ensemble now check the device first, naming the setting (as the rater models do)."""
    from accord.datasets import AccordError

    frame = pd.DataFrame({"prompt": ["a"], "response": ["good"]})
    pairs = pd.DataFrame({"prompt": ["a"], "chosen": ["good"], "rejected": ["bad"]})
    calls = [lambda: score(models["bert"], frame, device=device),
             lambda: evaluate(models["bert"], pairs, device=device),
             lambda: score_ensemble([models["bert"], models["llama"]], frame, device=device)]
    for call in calls:
        with pytest.raises(AccordError, match=f"^device (must be a torch device .*'{device}'|'{device}': this)"):
            call()


@pytest.mark.parametrize("pairs", [False, True])
def test_scoring_responses_longer_than_max_length_says_how_many_were_cut(models, pairs):
    """`accord score` cut responses longer than max_length without a word: two answers that part after the cut got
    one reward, where training and evaluate count the cuts. Now score warns with the count; nothing is said when
    everything fits."""
    import warnings

    long, short = " ".join(["good"] * 80), "good answer"
    if pairs:
        frame = pd.DataFrame({"prompt": ["a", "b"], "chosen": [long + " cat", short],
                              "rejected": [long + " dog", "bad"]})
        expected = "2 of the 4 responses of the pairs"
    else:
        frame = pd.DataFrame({"prompt": ["a", "b", "c"], "response": [long + " cat", long + " dog", short]})
        expected = "2 of the 3 responses"
    with pytest.warns(UserWarning, match=f"score: {expected} did not fit max_length 32"):
        scored = score(models["llama"], frame)
    column = "reward_chosen" if pairs else "reward"
    assert np.isfinite(scored[column]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score(models["llama"], frame.iloc[1:] if pairs else frame.iloc[2:])


@pytest.mark.parametrize("name, text, what", [
    ("reward_model.json", "[]", "reward_model.json holds [] where a JSON object belongs"),
    ("reward_model.json", "null", "reward_model.json holds null where a JSON object belongs"),
    ("reward_stats.json", '"x"', 'reward_stats.json holds "x" where a JSON object belongs'),
    ("reward_model.json", "later", "a reward model of format 'accord-reward-model/9'")])
@pytest.mark.parametrize("command", ["score", "evaluate", "calibrate"])
def test_metadata_that_is_no_object_or_of_a_later_format_is_one_line_naming_the_folder(models, tmp_path, capsys,
                                                                                      name, text, what, command):
    """A reward_model.json (or reward_stats.json) holding valid JSON that is no object was an AttributeError
    traceback ("'list' object has no attribute 'get'"); one whose 'format' is not the one this accord writes (a
    later layout) was read as this one without a word. Both are now one line naming the folder and the file."""
    import json
    import shutil

    from accord.cli import main as accord_main

    model = shutil.copytree(models["bert"], tmp_path / "rm")
    if text == "later":
        meta = json.loads((model / name).read_text())
        text = json.dumps({**meta, "format": "accord-reward-model/9"})
    (model / name).write_text(text)
    data = tmp_path / "pairs.jsonl"
    pd.DataFrame({"chosen": ["good", "clear"], "rejected": ["bad", "rude"], "p_chosen": [0.9, 0.2]}).to_json(
        data, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main([command, str(model), str(data), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {model}" in err and what in err, err
