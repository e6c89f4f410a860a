"""Reward-model ensembles and their conservative rewards (mean - k sd, mean - k var, min), in Python and from
`accord score`; an ensemble of one and a negative k are one clear error."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from accord.cli import main as accord_main
from accord.datasets import AccordError
from accord.reward import RewardConfig, train
from accord.reward.ensemble import conservative_reward
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)
WORDS = "good helpful clear bad rude wrong the a answer question cat dog".split()
members_st = arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 8)),
                    elements=st.floats(-10, 10, allow_nan=False))


@settings(max_examples=50, deadline=None)
@given(members=members_st, k=st.floats(0, 5))
def test_conservative_rewards_are_below_the_mean_and_as_defined(members, k):
    mean, sd = members.mean(0), members.std(0, ddof=1)
    np.testing.assert_allclose(conservative_reward(members, "mean"), mean)
    np.testing.assert_allclose(conservative_reward(members, "sd", k), mean - k * sd)
    np.testing.assert_allclose(conservative_reward(members, "var", k), mean - k * sd**2)
    np.testing.assert_allclose(conservative_reward(members, "min"), members.min(0))
    for kind in ("sd", "var", "min"):
        assert (conservative_reward(members, kind, k) <= mean + 1e-9).all()
    same = np.repeat(members[:1], 3, axis=0)  # members that agree: no penalty
    for kind in ("sd", "var", "min"):
        np.testing.assert_allclose(conservative_reward(same, kind, k), same[0], atol=1e-9)


def test_bad_ensembles_are_one_error():
    with pytest.raises(AccordError, match="at least 2"):
        conservative_reward(np.ones((1, 4)), "min")
    with pytest.raises(AccordError, match="k must be"):
        conservative_reward(np.ones((3, 4)), "sd", -1.0)
    with pytest.raises(AccordError, match="unknown kind"):
        conservative_reward(np.ones((3, 4)), "max")


@pytest.mark.parametrize("kind", ["sd", "var", "min", "mean"])
def test_a_nan_member_reward_is_one_error_naming_the_member_and_response(kind):
    # was: a NaN conservative reward for that response, without a word
    members = np.arange(12.0).reshape(3, 4)
    members[2, 1] = np.nan
    with pytest.raises(AccordError, match="member 2: its reward of response 1 is NaN"):
        conservative_reward(members, kind)


def tiny_backbone_and_pairs(folder):
    """A tiny random BERT and 32 preference pairs (chosen from the first three words, rejected from the next three)."""
    bert = build_tiny_backbone(folder / "bert", "bert", texts=[" ".join(WORDS)], seed=1)
    rng = np.random.default_rng(0)
    pairs = folder / "pairs.jsonl"
    pd.DataFrame({"chosen": [" ".join(rng.choice(WORDS[:3], 4)) for _ in range(32)],
                  "rejected": [" ".join(rng.choice(WORDS[3:6], 4)) for _ in range(32)],
                  "p_chosen": 0.8}).to_json(pairs, orient="records", lines=True)
    return bert, pairs


def test_accord_score_an_ensemble_and_its_bad_input(tmp_path, capsys):
    bert, data = tiny_backbone_and_pairs(tmp_path)
    dirs = []
    for seed in (1, 2):
        config = RewardConfig(model=str(bert), train_path=str(data), output_dir=str(tmp_path / f"rm{seed}"),
                              batch_size=8, max_steps=2, seed=seed, save_steps=None, progress=False,
                              stats_max_pairs=8)
        train(config)
        dirs.append(config.output_dir)
    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["good clear answer", "rude wrong", "cat dog"]}).to_json(responses, orient="records",
                                                                                     lines=True)
    scored = tmp_path / "scored.csv"
    assert accord_main(["score", ",".join(dirs), str(responses), "--conservative", "min", "--out", str(scored)]) == 0
    table = pd.read_csv(scored)
    members = table[["reward_0", "reward_1"]].to_numpy().T
    np.testing.assert_allclose(table["conservative_reward"], members.min(0))
    np.testing.assert_allclose(table["reward_mean"], members.mean(0))
    assert accord_main(["score", ",".join(dirs), str(responses), "--k", "2", "--out", str(scored)]) == 0
    table = pd.read_csv(scored)
    np.testing.assert_allclose(table["conservative_reward"], table["reward_mean"] - 2 * table["reward_sd"])
    for argv, message in (([dirs[0], "--conservative", "min"], "at least 2"),
                          ([",".join(dirs), "--conservative", "var", "--k", "-1"], "--k must be >= 0")):
        bad = tmp_path / "bad.csv"
        capsys.readouterr()
        assert accord_main(["score", argv[0], str(responses), *argv[1:], "--out", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and not bad.exists()


# -- ensemble heads: several scalar heads on one backbone ------------------------------------------------------------


@pytest.fixture(scope="module")
def heads_workspace(tmp_path_factory):
    """A tiny encoder, preference pairs, responses, and a 3-head model trained on them."""
    tmp = tmp_path_factory.mktemp("heads")
    bert, pairs = tiny_backbone_and_pairs(tmp)
    responses = tmp / "responses.jsonl"
    pd.DataFrame({"response": ["good clear answer", "rude wrong", "cat dog", "the helpful answer"]}).to_json(
        responses, orient="records", lines=True)
    config = heads_config(bert, pairs, tmp / "rm-heads", ensemble_heads=3)
    train(config)
    return {"tmp": tmp, "bert": bert, "pairs": pairs, "responses": responses, "heads": config.output_dir}


def heads_config(bert, pairs, output_dir, **overrides):
    settings = dict(model=str(bert), train_path=str(pairs), output_dir=str(output_dir), batch_size=8, max_steps=3,
                    learning_rate=1e-3, seed=5, save_steps=None, progress=False, stats_max_pairs=16)
    return RewardConfig(**{**settings, **overrides})


def test_ensemble_heads_train_apart_and_survive_a_save_load_round_trip(heads_workspace, tmp_path):
    from accord.reward.data import PairEncoder, load_pairs
    from accord.reward.evaluate import load_model, predict_pairs
    from accord.reward.model import RewardModel

    model, tokenizer = load_model(heads_workspace["heads"], "cpu")
    assert model.ensemble_heads == 3 and model.meta["ensemble_heads"] == 3 and len(model.stats["heads"]) == 3
    encoder = PairEncoder(tokenizer, 64, model.is_decoder, None)
    pairs = encoder.encode_pairs(load_pairs(str(heads_workspace["pairs"])))
    pred = {packing: predict_pairs(model, pairs, pad_token_id=tokenizer.pad_token_id, packing=packing)
            for packing in (True, False)}
    for key in ("reward_chosen", "members_chosen", "members_rejected"):  # packed and padded rows agree
        np.testing.assert_allclose(pred[True][key], pred[False][key], atol=1e-5)
    members = np.concatenate([pred[True]["members_chosen"], pred[True]["members_rejected"]])
    np.testing.assert_allclose(pred[True]["reward_chosen"], pred[True]["members_chosen"].mean(1), atol=1e-6)
    # the heads started apart and learned from different bootstraps: three different reward functions
    spread = members - members.mean(0)  # each head's rewards about its own mean
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.allclose(spread[:, a], spread[:, b], atol=1e-3)
    # saved and loaded again: the same heads, the same rewards
    model.save_pretrained(tmp_path / "again", tokenizer=tokenizer, stats=model.stats)
    again = RewardModel.from_pretrained(tmp_path / "again")
    assert again.ensemble_heads == 3
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    repeat = predict_pairs(again, pairs, pad_token_id=tokenizer.pad_token_id)
    np.testing.assert_array_equal(repeat["members_chosen"], pred[True]["members_chosen"])


def test_one_head_is_the_plain_model(heads_workspace):
    from accord.reward.model import RewardModel
    from accord.reward.trainer import RewardTrainer

    bert = str(heads_workspace["bert"])
    torch.manual_seed(11)
    plain = RewardModel.from_backbone(bert)
    torch.manual_seed(11)
    one = RewardModel.from_backbone(bert, ensemble_heads=1)
    assert one.ensemble_heads == 1 and one.head.weight.shape == plain.head.weight.shape
    assert torch.equal(one.head.weight, plain.head.weight) and torch.equal(one.head.bias, plain.head.bias)
    # trained: a model built with ensemble_heads=1 ends where the default trainer's model does, weights and all
    tmp = heads_workspace["tmp"]
    config = heads_config(bert, heads_workspace["pairs"], tmp / "rm-plain")
    default = RewardTrainer(config)
    default.train()
    torch.manual_seed(config.seed)  # the trainer seeds before it draws the head
    given = RewardModel.from_backbone(bert, attn_implementation="sdpa", ensemble_heads=1)
    explicit = RewardTrainer(heads_config(bert, heads_workspace["pairs"], tmp / "rm-one"), model=given)
    explicit.train()
    for key, value in default.unwrapped().state_dict().items():
        assert torch.equal(value, explicit.unwrapped().state_dict()[key]), key
    assert "ensemble_heads" not in default.unwrapped().meta


def test_heads_bootstrap_counts_are_per_head_and_fixed_per_pair(heads_workspace):
    from accord.reward.pairwise import PairwiseTask

    task = PairwiseTask(heads_config(heads_workspace["bert"], heads_workspace["pairs"], "unused", ensemble_heads=4))
    counts = task.bootstrap_counts(2000)
    assert counts.shape == (2000, 4) and (counts >= 0).all() and (counts == np.round(counts)).all()
    assert abs(counts.mean() - 1.0) < 0.05 and 0.3 < (counts == 0).mean() < 0.45  # Poisson(1): P(0) = e^-1
    assert not any(np.array_equal(counts[:, a], counts[:, b]) for a in range(4) for b in range(a + 1, 4))
    np.testing.assert_array_equal(PairwiseTask(task.config).bootstrap_counts(2000), counts)  # seeded


def test_each_head_learns_from_its_own_bootstrap_only(heads_workspace, tmp_path):
    from accord.reward.trainer import RewardTrainer

    trainer = RewardTrainer(heads_config(heads_workspace["bert"], heads_workspace["pairs"], tmp_path / "rm",
                                         ensemble_heads=3, loss="bradley_terry"))
    task, model = trainer.task, trainer.unwrapped()
    indices = np.arange(8)
    batch = task.collate(trainer.train_data, indices)
    np.testing.assert_array_equal(batch["bootstrap"].numpy(), task.bootstrap_counts(len(trainer.train_data))[:8])
    batch["bootstrap"] = torch.tensor([[0.0, 1.0, 2.0]]).repeat(8, 1)  # head 0 sees none of the pairs, head 2 twice
    loss, _ = task.compute_loss(model, batch, task.step_context(trainer.train_data, indices))
    model.zero_grad()
    loss.backward()
    assert torch.count_nonzero(model.head.weight.grad[0]) == 0 and torch.count_nonzero(model.head.weight.grad[1]) > 0
    with torch.no_grad():
        members = model(**{k: v for k, v in batch.items() if k in model.INPUTS}).members
        per_head = torch.nn.functional.softplus(-(members[:8] - members[8:])).mean(0)  # -log sigmoid(d)
    torch.testing.assert_close(loss.detach(), (per_head * torch.tensor([0.0, 1.0, 2.0])).sum() / 3)


def test_heads_gradient_does_not_depend_on_accumulation(heads_workspace, tmp_path):
    from accord.reward.trainer import RewardTrainer

    common = dict(ensemble_heads=3, max_steps=2, group_by_length=False, adam_epsilon=1.0)  # updates linear in grads
    states = []
    for name, batch, accumulation in (("big", 8, 1), ("small", 4, 2)):
        trainer = RewardTrainer(heads_config(heads_workspace["bert"], heads_workspace["pairs"], tmp_path / name,
                                             batch_size=batch, gradient_accumulation_steps=accumulation, **common))
        trainer.train()
        states.append(trainer.unwrapped().state_dict())
    for key, value in states[0].items():
        assert torch.allclose(value, states[1][key], atol=1e-6), key


def test_accord_score_uses_the_heads_as_the_ensemble(heads_workspace, tmp_path, capsys):
    from accord.reward.ensemble import head_rewards

    scored = tmp_path / "scored.csv"
    model_dir, responses = heads_workspace["heads"], heads_workspace["responses"]
    argv = ["score", model_dir, str(responses), "--conservative", "var", "--k", "0.5", "--out", str(scored)]
    assert accord_main(argv) == 0
    table = pd.read_csv(scored)
    members = table[[f"reward_{h}" for h in range(3)]].to_numpy().T
    assert "reward_3" not in table.columns
    np.testing.assert_allclose(members, head_rewards(model_dir, pd.read_json(responses, lines=True)), atol=1e-6)
    np.testing.assert_allclose(table["reward_sd"], members.std(0, ddof=1), atol=1e-9)
    np.testing.assert_allclose(table["conservative_reward"], conservative_reward(members, "var", 0.5), atol=1e-9)
    for kind in ("sd", "min"):
        assert accord_main(["score", model_dir, str(responses), "--conservative", kind, "--out", str(scored)]) == 0
        np.testing.assert_allclose(pd.read_csv(scored)["conservative_reward"], conservative_reward(members, kind),
                                   atol=1e-9)


def test_an_ensemble_of_heads_says_when_max_length_cuts_the_responses(heads_workspace, tmp_path, capsys):
    """Was: the heads of a model scored as an ensemble read only the beginning of responses --max-length cut, without
    a word, where a plain member (scored by `score`) warned of the same responses. Now both say how many were cut,
    naming --max-length on the command line."""
    from accord.reward.ensemble import score_ensemble

    responses = tmp_path / "long.jsonl"
    pd.DataFrame({"response": [" ".join(["good clear answer"] * 6), "rude wrong"]}).to_json(responses,
                                                                                          orient="records", lines=True)
    with pytest.warns(UserWarning, match="1 of the 2 responses did not fit max_length 8"):
        score_ensemble([heads_workspace["heads"]], responses, max_length=8)
    capsys.readouterr()
    assert accord_main(["score", heads_workspace["heads"], str(responses), "--conservative", "min", "--max-length",
                        "8", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "accord: warning: score: 1 of the 2 responses did not fit --max-length 8" in err, err


def test_bad_ensemble_heads_and_k_are_one_error(heads_workspace, tmp_path, capsys):
    from accord.reward.trainer import RewardTrainer

    common = ["train", "--model", str(heads_workspace["bert"]), "--train-path", str(heads_workspace["pairs"]),
              "--max-steps", "1", "--no-progress"]
    for heads in ("1", "0"):
        out = tmp_path / f"rm-{heads}"
        capsys.readouterr()
        assert accord_main([*common, "--output-dir", str(out), "--ensemble-heads", heads]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "at least 2 reward heads" in err and not out.exists()
    bad = tmp_path / "bad.csv"
    assert accord_main(["score", heads_workspace["heads"], str(heads_workspace["responses"]), "--k", "-1", "--out",
                        str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--k must be >= 0" in err and not bad.exists()
    config = heads_config(heads_workspace["bert"], heads_workspace["pairs"], tmp_path / "rm-u", ensemble_heads=2,
                          uncertainty_head=True)
    with pytest.raises(AccordError, match="set one of them"):
        RewardTrainer(config)
    with pytest.raises(AccordError, match="'ensemble_heads' is for the pairwise task"):
        RewardTrainer(heads_config(heads_workspace["bert"], heads_workspace["pairs"], tmp_path / "rm-s",
                                   ensemble_heads=2, task="steps"))


@pytest.mark.parametrize("second", ["same", "trailing_slash", "symlink"])
def test_a_model_named_twice_in_an_ensemble_is_one_error(heads_workspace, tmp_path, capsys, second):
    """`accord score rm,rm responses.jsonl` scored one model as two members, exit 0, the duplicate unsaid: for a
    plain model every reward_sd 0 and the conservative reward the reward itself, for one with ensemble heads each
    head twice (a smaller sd). Now it is one line naming the folder, before any model loads."""
    import os

    from accord.reward.ensemble import score_ensemble

    model = str(heads_workspace["heads"])
    twin = {"same": model, "trailing_slash": model + os.sep, "symlink": str(tmp_path / "link")}[second]
    if second == "symlink":
        os.symlink(model, twin)
    with pytest.raises(AccordError, match=f"folder {twin}: named twice in the ensemble"):
        score_ensemble([model, twin], heads_workspace["responses"])
    capsys.readouterr()
    assert accord_main(["score", f"{model},{twin}", str(heads_workspace["responses"]), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "named twice" in err, err


def test_an_ensemble_says_once_that_max_length_cut_the_responses(heads_workspace, tmp_path, capsys):
    """`accord score rm1,rm2 ... --max-length 8` said "1 of the 2 responses did not fit --max-length 8" once per
    member (each plain member scored and warned apart): the same responses, cut the same way, are said once."""
    import shutil
    import warnings

    from accord.reward.ensemble import score_ensemble

    plain = heads_config(heads_workspace["bert"], heads_workspace["pairs"], tmp_path / "rm-plain", max_steps=1)
    train(plain)
    responses = tmp_path / "long.jsonl"
    pd.DataFrame({"response": [" ".join(["good clear answer"] * 6), "rude wrong"]}).to_json(responses,
                                                                                          orient="records", lines=True)
    members = [plain.output_dir, heads_workspace["heads"]]
    twin = tmp_path / "rm-twin"
    shutil.copytree(plain.output_dir, twin)
    for names in ([plain.output_dir, str(twin)], members):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            score_ensemble(names, responses, max_length=8)
        cut = [str(w.message) for w in said if "did not fit max_length 8" in str(w.message)]
        assert len(cut) == 1, cut
        capsys.readouterr()
        assert accord_main(["score", ",".join(map(str, names)), str(responses), "--max-length", "8", "--quiet",
                            "--out", str(tmp_path / "scored.csv")]) == 0
        err = capsys.readouterr().err
        assert err.count("did not fit --max-length 8") == 1, err


@pytest.mark.parametrize("k", ["2", True, None, [1.0], 1 + 0j])
@pytest.mark.parametrize("kind", ["sd", "var"])
def test_a_k_of_the_wrong_kind_is_one_error_naming_k(kind, k):
    # was: numpy's TypeError for "2" ('isfinite' not supported) and a list, Python's for None and a complex number,
    # and True taken as k = 1 without a word
    with pytest.raises(AccordError, match=r"^k must be a finite number >= 0") as error:
        conservative_reward(np.arange(6.0).reshape(2, 3), kind, k)
    assert repr(k) in str(error.value)


def test_score_ensemble_refuses_a_k_of_the_wrong_kind_before_any_model_loads(tmp_path):
    from accord.reward.ensemble import score_ensemble

    # the folders hold no model: the setting is refused before they are read (was: after every member scored)
    with pytest.raises(AccordError, match=r"^k must be a finite number >= 0.*'1'"):
        score_ensemble([tmp_path / "a", tmp_path / "b"], pd.DataFrame({"response": ["x"]}), k="1")


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
@pytest.mark.parametrize("kind", ["sd", "var", "min", "mean"])
def test_an_infinite_member_reward_is_one_error_naming_the_member_and_response(kind, bad):
    # was: a NaN conservative reward under sd and var (inf - inf in the spread) and an infinite one under min and
    # mean, without a word; a NaN was refused already
    members = np.arange(12.0).reshape(3, 4)
    members[1, 2] = bad
    with pytest.raises(AccordError, match=rf"member 1: its reward of response 2 is {bad}"):
        conservative_reward(members, kind)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 1), ()])
def test_members_of_another_shape_than_members_by_responses_are_one_error_naming_the_shape(shape):
    # was: "an ensemble needs at least 2 reward models (got 0)" for two members' rewards of shape (2, 3, 1), and for
    # one row of rewards, neither of which is an ensemble of no member
    with pytest.raises(AccordError, match=rf"members must be a 2-d array \(members x responses\), got shape "
                                          rf"{re.escape(str(shape))}"):
        conservative_reward(np.ones(shape), "sd")


def test_one_folder_of_heads_given_bare_is_that_folder_not_its_letters(heads_workspace):
    # was: a bare text was read letter by letter ("folder r: not found" for "rm-heads") and a Path was Python's
    # "'PosixPath' object is not iterable", where one folder of a model with heads is an ensemble by itself
    from pathlib import Path

    from accord.reward.ensemble import score_ensemble

    folder, responses = heads_workspace["heads"], heads_workspace["responses"]
    expected = score_ensemble([folder], responses, conservative="min")
    for bare in (str(folder), Path(folder)):
        pd.testing.assert_frame_equal(score_ensemble(bare, responses, conservative="min"), expected)


def test_members_of_different_backbones_and_tokenizers_each_read_the_responses_their_own_way(tmp_path):
    # handled, not refused: a member is scored with its own tokenizer, chat layout and max_length, and put on the
    # common scale by its own training rewards' mean and sd, so a decoder and an encoder of other vocabularies are
    # one ensemble (Coste et al. train members apart; nothing in the spread needs one tokenizer)
    from accord.reward import score
    from accord.reward.ensemble import score_ensemble

    bert, data = tiny_backbone_and_pairs(tmp_path)
    llama = build_tiny_backbone(tmp_path / "llama", "llama", texts=[" ".join(WORDS[:8])], seed=2)
    dirs = []
    for name, backbone, length in (("bert", bert, 32), ("llama", llama, 24)):
        config = RewardConfig(model=str(backbone), train_path=str(data), output_dir=str(tmp_path / f"rm-{name}"),
                              batch_size=8, max_steps=2, max_length=length, save_steps=None, progress=False,
                              stats_max_pairs=8)
        train(config)
        dirs.append(config.output_dir)
    responses = pd.DataFrame({"prompt": ["the question", "", "a cat"],
                              "response": ["good clear answer", "rude wrong", "cat dog dog cat"]})
    table = score_ensemble(dirs, responses)
    for m, directory in enumerate(dirs):
        alone = score(directory, responses)["reward_normalised"].to_numpy()
        np.testing.assert_array_equal(table[f"reward_{m}"].to_numpy(), alone)
    members = table[["reward_0", "reward_1"]].to_numpy().T
    np.testing.assert_allclose(table["reward_sd"], members.std(axis=0, ddof=1))
