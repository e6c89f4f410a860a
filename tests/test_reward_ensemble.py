"""Reward-model ensembles and their conservative rewards (mean - k sd, mean - k var, min), in Python and from
`accord score`; an ensemble of one and a negative k are one clear error."""

from __future__ import annotations

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


def test_accord_score_an_ensemble_and_its_bad_input(tmp_path, capsys):
    bert = build_tiny_backbone(tmp_path / "bert", "bert", texts=[" ".join(WORDS)], seed=1)
    rng = np.random.default_rng(0)
    data = tmp_path / "pairs.jsonl"
    pd.DataFrame({"chosen": [" ".join(rng.choice(WORDS[:3], 4)) for _ in range(32)],
                  "rejected": [" ".join(rng.choice(WORDS[3:6], 4)) for _ in range(32)],
                  "p_chosen": 0.8}).to_json(data, orient="records", lines=True)
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
