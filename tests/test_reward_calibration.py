"""Post-hoc temperature scaling of reward models: recovered exactly where the labels follow a tempered logistic,
saved in the model's metadata, applied by evaluate and score; bad input is one clear error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.cli import main as accord_main
from accord.datasets import AccordError
from accord.reward import RewardConfig, train
from accord.reward.calibration import apply_calibration, fit_temperature
from accord.reward.evaluate import evaluate, score
from accord.reward.model import META_FILE
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)
WORDS = "good helpful clear bad rude wrong the a answer question cat dog".split()


@settings(max_examples=30, deadline=None)
@given(temperature=st.floats(0.2, 5.0), bias=st.floats(-1.0, 1.0), seed=st.integers(0, 1000))
def test_the_temperature_of_tempered_soft_labels_is_recovered(temperature, bias, seed):
    d = np.random.default_rng(seed).normal(0, 3, 400)
    y = 1 / (1 + np.exp(-(d / temperature + bias)))
    fitted = fit_temperature(d, y, fit_bias=True)
    assert fitted["temperature"] == pytest.approx(temperature, rel=1e-3)
    assert fitted["bias"] == pytest.approx(bias, abs=1e-3)
    assert fitted["soft_nll_after"] <= fitted["soft_nll_before"] + 1e-12
    expected = d / fitted["temperature"] + fitted["bias"]
    np.testing.assert_allclose(apply_calibration(d, {"calibration": fitted}), expected, rtol=1e-12)
    np.testing.assert_allclose(apply_calibration(d, {}), d)


def test_bad_calibration_input_is_one_error():
    with pytest.raises(AccordError, match="at least 2 pairs"):
        fit_temperature(np.array([1.0]), np.array([0.5]))
    with pytest.raises(AccordError, match="in \\[0, 1\\]"):
        fit_temperature(np.array([1.0, 2.0]), np.array([0.5, 1.5]))
    with pytest.raises(AccordError, match="every pairwise logit is 0"):
        fit_temperature(np.zeros(3), np.array([0.2, 0.5, 0.9]))


def _pairs(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "prompt": [" ".join(rng.choice(WORDS[6:], 3)) for _ in range(n)],
        "chosen": [" ".join(rng.choice(WORDS[:3] + WORDS[6:], 6)) for _ in range(n)],
        "rejected": [" ".join(rng.choice(WORDS[3:], 6)) for _ in range(n)],
        "p_chosen": rng.uniform(0.55, 0.75, n),
    })


def test_calibrate_saves_the_temperature_and_evaluate_and_score_apply_it(tmp_path, capsys):
    bert = build_tiny_backbone(tmp_path / "bert", "bert", texts=[" ".join(WORDS)], seed=1)
    train_file, held_out = tmp_path / "train.jsonl", tmp_path / "held_out.jsonl"
    _pairs(48, 0).to_json(train_file, orient="records", lines=True)
    _pairs(40, 1).to_json(held_out, orient="records", lines=True)
    config = RewardConfig(model=str(bert), train_path=str(train_file), output_dir=str(tmp_path / "rm"), batch_size=8,
                          max_steps=12, learning_rate=3e-3, save_steps=None, progress=False, stats_max_pairs=8)
    train(config)
    before = evaluate(config.output_dir, str(held_out))
    raw = score(config.output_dir, _pairs(5, 2))["p_chosen_model"].to_numpy()
    assert accord_main(["calibrate", config.output_dir, str(held_out)]) == 0
    fitted = json.loads(capsys.readouterr().out)
    meta = json.loads((tmp_path / "rm" / META_FILE).read_text())
    assert meta["calibration"]["temperature"] == pytest.approx(fitted["temperature"]) and fitted["temperature"] > 0
    after = evaluate(config.output_dir, str(held_out))
    assert after["soft_nll"] <= before["soft_nll"] + 1e-9 and after["accuracy"] == before["accuracy"]
    tempered = score(config.output_dir, _pairs(5, 2))["p_chosen_model"].to_numpy()
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(logit(tempered), logit(raw) / fitted["temperature"], rtol=1e-4, atol=1e-6)
    # a folder that is not a reward model: one line, exit 2, nothing written
    capsys.readouterr()
    assert accord_main(["calibrate", str(tmp_path), str(held_out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an accord reward model" in err
    assert not (tmp_path / META_FILE).exists()
