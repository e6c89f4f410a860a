"""Paths that start with "~" mean the home folder in every reader and writer, as they do in pandas'."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from accord.aggregate import build_cleaned
from accord.datasets import make_synthetic, read_judgments, write_cleaned
from accord.models import DawidSkene


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.chdir(tmp_path)  # a literal "~" folder would appear here
    return folder


def test_a_home_path_is_read_and_written_in_the_home_folder(home, tmp_path):
    """read_judgments("~/j.csv") said "no such file" for a file pandas reads, and write_cleaned(..., "~/c.parquet")
    made a folder named "~" in the working folder."""
    table = make_synthetic(12, 4, 3, with_text=True, seed=0).judgments
    table.to_csv(home / "judgments.csv", index=False)
    judgments = read_judgments("~/judgments.csv")
    assert len(judgments) == len(table)
    written = write_cleaned(build_cleaned(DawidSkene().fit(judgments).soft_labels_, judgments), "~/cleaned.parquet")
    assert Path(written).resolve() == (home / "cleaned.parquet").resolve()
    assert len(pd.read_parquet(home / "cleaned.parquet")) == judgments["pair_id"].nunique()
    assert not (tmp_path / "~").exists()


def test_a_reward_model_trains_into_and_loads_from_a_home_path(home, tmp_path):
    """RewardConfig(output_dir="~/rm") trained into a folder named "~" in the working folder, and a saved model
    named by "~/rm" was not found."""
    from accord.reward import RewardConfig, evaluate, train
    from accord.reward.tiny import build_tiny_backbone

    table = make_synthetic(16, 4, 3, with_text=True, seed=0).judgments
    write_cleaned(build_cleaned(DawidSkene().fit(table).soft_labels_, table), home / "cleaned.parquet")
    backbone = build_tiny_backbone(home / "backbone", "bert", texts=list(table["response_a"]), seed=0)
    train(RewardConfig(model=f"~/{Path(backbone).name}", train_path="~/cleaned.parquet", output_dir="~/rm",
                       batch_size=4, max_steps=2, progress=False, stats_max_pairs=8))
    assert (home / "rm" / "reward_model.json").is_file() and not (tmp_path / "~").exists()
    assert 0.0 <= evaluate("~/rm", "~/cleaned.parquet")["accuracy"] <= 1.0


def test_a_combination_saved_under_a_home_path_is_the_one_scored(home, tmp_path):
    """save_combination("~/rm", ...) wrote reward_combination.json into the home folder, but load_combination (what
    score of a multi-attribute model reads) looked for it under a literal "~", found nothing and scored with the
    model's default combination in its place, unsaid; the combined reward's statistics were then the model's."""
    from accord.reward.attribute_combination import FixedWeights, load_combination, save_combination

    combination = FixedWeights({"helpful": 2.0}, ["helpful", "honest"])
    combination.stats_ = {"mean": 0.5, "sd": 2.0, "n": 8}
    written = save_combination("~/rm", combination)
    loaded = load_combination("~/rm", {"attributes": {"names": ["helpful", "honest"]}})
    assert loaded.coef_.tolist() == [2.0, 0.0] and loaded.stats_ == combination.stats_
    assert Path(written) == home / "rm" / "reward_combination.json"  # the path `accord combine` says it wrote
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("folder", [False, True])
def test_a_streamed_fit_reads_a_home_path_as_read_judgments_does(home, tmp_path, folder):
    """``accord aggregate --distributed 1 --input ~/judgments.parquet`` (a "~" the shell left, as in
    ``--input=~/...``) said "file ~/judgments.parquet: not found" where the single-process command reads it."""
    from accord.cli import main
    from accord.datasets.stream import read_judgment_shard

    table = make_synthetic(12, 4, 3, with_text=False, seed=0).judgments[["pair_id", "annotator", "label"]]
    name = "judgments"
    if folder:
        (home / name).mkdir()
        table.to_parquet(home / name / "part-0.parquet", index=False)
    else:
        name += ".parquet"
        table.to_parquet(home / name, index=False)
        assert len(read_judgments(f"~/{name}")) == len(table)
    shard = read_judgment_shard(f"~/{name}")
    assert len(shard.items) == len(table)
    assert main(["aggregate", f"--input=~/{name}", "--method", "dawid-skene", "--distributed", "1", "--quiet",
                 "--output", "~/soft.csv"]) == 0
    assert len(pd.read_csv(home / "soft.csv")) == table["pair_id"].nunique()
    assert not (tmp_path / "~").exists()
