"""Determinism: the same seed on the same machine gives identical soft labels, identical annotator tables and
identical reward-model weights, end to end (judgments -> `accord aggregate` -> cleaned dataset -> reward model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from accord.cli import main as accord_main
from accord.datasets import read_cleaned
from accord.datasets.synthetic import make_synthetic
from accord.reward import RewardConfig, train
from accord.reward.tiny import build_tiny_backbone
from conftest import QUICK_RATER_MODELS, fit_quick

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_pairs=150, n_annotators=20, judgments_per_pair=3, seed=5)


@pytest.mark.parametrize("name", list(QUICK_RATER_MODELS))
def test_same_seed_same_soft_labels_and_annotators(name, synthetic):
    first = fit_quick(name, synthetic.judgments, seed=3)
    second = fit_quick(name, synthetic.judgments, seed=3)
    pd.testing.assert_frame_equal(first.soft_labels_.to_frame(), second.soft_labels_.to_frame(), check_exact=True)
    if hasattr(first, "annotators_"):
        pd.testing.assert_frame_equal(first.annotators_, second.annotators_, check_exact=True)


def test_another_seed_changes_the_posterior_draws(synthetic):
    """The check above can fail: the uncertainty comes from random draws, and another seed draws others."""
    first = fit_quick("hierarchical-dawid-skene-vb", synthetic.judgments, seed=3)
    other = fit_quick("hierarchical-dawid-skene-vb", synthetic.judgments, seed=4)
    assert not np.array_equal(first.soft_labels_.uncertainty.to_numpy(), other.soft_labels_.uncertainty.to_numpy())


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    weights = load_file(str(directory / "model.safetensors"))
    weights.update({f"head.{k}": v for k, v in load_file(str(directory / "reward_head.safetensors")).items()})
    return weights


def test_pipeline_end_to_end_is_deterministic(synthetic, tmp_path, capsys):
    """`accord aggregate` twice (same seed) writes the same cleaned dataset; a reward model trained twice on it
    (same seed, dropout on) ends with bitwise-equal weights."""
    judgments_path = tmp_path / "judgments.parquet"
    synthetic.judgments.to_parquet(judgments_path)
    texts = synthetic.judgments[["prompt", "response_a", "response_b"]].stack().unique().tolist()
    backbone = build_tiny_backbone(tmp_path / "tiny-bert", "bert", texts=texts[:200], seed=1)
    results = []
    for run in ("first", "second"):
        cleaned = tmp_path / f"{run}.parquet"
        status = accord_main(["aggregate", "--input", str(judgments_path), "--method", "hierarchical-dawid-skene",
                              "--inference", "vb", "--seed", "7", "--output", str(cleaned), "--quiet"])
        assert status == 0
        config = RewardConfig(model=str(backbone), train_path=str(cleaned), output_dir=str(tmp_path / f"rm-{run}"),
                              batch_size=8, max_steps=5, learning_rate=2e-3, seed=11, disable_dropout=False,
                              save_steps=None, progress=False, stats_max_pairs=16)
        train(config)
        results.append((read_cleaned(cleaned), _weights(Path(config.output_dir))))
    capsys.readouterr()
    (table_a, weights_a), (table_b, weights_b) = results
    pd.testing.assert_frame_equal(table_a, table_b, check_exact=True)
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
