"""The trainer core is task-agnostic: a toy per-attribute task (K rewards per response from one forward pass, a loss
per attribute, missing attributes masked) trains through the task interface; a new loss is one function and its
registration; the config is validated once per `accord train`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

from accord.reward import LOSSES, RewardConfig, RewardModel, RewardTask, RewardTrainer, register_loss, train
from accord.reward.__main__ import main as cli_main
from accord.reward.data import PairCollator, PairEncoder, TokenizedPairs, load_pairs
from accord.reward.losses import pair_loss_inputs
from accord.reward.task import model_inputs
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)

# attribute k is carried by one word of GOOD[k] (the better side) or BAD[k] (the worse side) in every response
ATTRIBUTES = ("helpful", "correct", "concise")
GOOD = ("helpful", "correct", "short")
BAD = ("useless", "wrong", "rambling")
FILLER = "the a answer question cat dog sat on mat water".split()


def attribute_pairs(n: int, seed: int, observed: float = 1.0) -> pd.DataFrame:
    """Pairs whose chosen side wins each attribute with probability 1/2; ``p_chosen_<attribute>`` is 0.9 or 0.1, and
    NaN (not rated) for a share ``1 - observed`` of the third attribute."""
    rng = np.random.default_rng(seed)
    wins = rng.random((n, len(ATTRIBUTES))) < 0.5

    def text(side_wins: np.ndarray) -> str:
        words = [GOOD[k] if side_wins[k] else BAD[k] for k in range(len(ATTRIBUTES))]
        words += list(rng.choice(FILLER, int(rng.integers(2, 6))))
        return " ".join(rng.permutation(words))

    frame = pd.DataFrame({"prompt": [" ".join(rng.choice(FILLER, 3)) for _ in range(n)],
                          "chosen": [text(w) for w in wins], "rejected": [text(~w) for w in wins]})
    labels = np.where(wins, 0.9, 0.1)
    labels[rng.random(n) >= observed, -1] = np.nan
    for k, name in enumerate(ATTRIBUTES):
        frame[f"p_chosen_{name}"] = labels[:, k]
    return frame


@dataclass
class AttributePairs:
    pairs: TokenizedPairs
    labels: np.ndarray  # (n, K) P(chosen better on attribute k); NaN where not rated

    def __len__(self) -> int:
        return len(self.pairs)


class AttributePairsTask(RewardTask):
    """K pairwise attributes: one head of K outputs, the configured pairwise loss per (pair, attribute), averaged
    over the pairs rated on that attribute in the whole step, summed over attributes."""

    name = "toy-attributes"
    unit = "pairs"
    loss_inputs = frozenset({"d", "p_chosen", "p_tie", "target", "weight", "weight_mean", "margin"})

    @property
    def num_outputs(self) -> int:
        return len(ATTRIBUTES)

    def read(self, source):
        return source.reset_index(drop=True)

    def bind(self, tokenizer, model):
        self.encoder = PairEncoder(tokenizer, self.config.max_length, model.is_decoder)
        self.collator = PairCollator(tokenizer.pad_token_id, packing=self.config.packing, pooling=model.pooling)
        return {"attributes": list(ATTRIBUTES)}

    def encode(self, table):
        pairs = self.encoder.encode_pairs(load_pairs(table[["prompt", "chosen", "rejected"]]))
        return AttributePairs(pairs, table[[f"p_chosen_{a}" for a in ATTRIBUTES]].to_numpy(np.float32))

    def cost(self, data):
        return data.pairs.lengths

    def collate(self, data, indices):
        batch = self.collator(data.pairs, indices)
        batch["labels"] = torch.from_numpy(data.labels[np.asarray(indices)])
        return batch

    def step_context(self, data, indices):
        rated = (~np.isnan(data.labels[indices])).sum(axis=0)
        return {"n_examples": len(indices), "rated": torch.from_numpy(np.maximum(rated, 1)).float()}

    def compute_loss(self, model, batch, step):
        out = model(**model_inputs(batch))
        n = batch["n_pairs"]
        d = out.reward[:n] - out.reward[n:]  # (B, K)
        labels = batch["labels"]
        rated = ~torch.isnan(labels)
        zeros = torch.zeros_like(labels)
        inputs = pair_loss_inputs(d, p_chosen=torch.nan_to_num(labels), p_tie=zeros, weight=torch.ones_like(labels),
                                  margin=zeros)
        per_element = torch.where(rated, self.loss({**self.loss_settings, **inputs}), zeros)
        loss = (per_element.sum(dim=0) / step["rated"].to(d.device)).sum()
        right = (d.detach() > 0) == (labels > 0.5)
        return loss, {"loss": per_element.detach().sum(), "accuracy": (right & rated).sum().float()}

    def evaluate(self, model, data, table, *, device, batch_size, progress):
        model.eval()
        with torch.no_grad():
            batch = self.collate(data, np.arange(len(data)))
            reward = model(**{k: v.to(device) for k, v in model_inputs(batch).items()}).reward
        model.train()
        n = len(data)
        d = (reward[:n] - reward[n:]).cpu().numpy()
        metrics = {}
        for k, name in enumerate(ATTRIBUTES):
            rated = ~np.isnan(data.labels[:, k])
            metrics[f"accuracy_{name}"] = float(((d[rated, k] > 0) == (data.labels[rated, k] > 0.5)).mean())
        return metrics


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    words = " ".join(GOOD + BAD + tuple(FILLER))
    return str(build_tiny_backbone(tmp_path_factory.mktemp("tasks") / "bert", "bert", texts=[words], seed=1))


def settings(bert, tmp_path, name, **overrides) -> RewardConfig:
    values = dict(model=bert, output_dir=str(tmp_path / name), batch_size=8, learning_rate=3e-3, save_steps=None,
                  logging_steps=1, progress=False, loss="soft_bce")
    values.update(overrides)
    return RewardConfig(**values)


def test_the_core_trains_a_per_attribute_head(bert, tmp_path):
    cfg = settings(bert, tmp_path, "attributes", num_epochs=6)
    trainer = RewardTrainer(cfg, task=AttributePairsTask(cfg), train_data=attribute_pairs(96, seed=0, observed=0.5),
                            eval_data=attribute_pairs(64, seed=1))
    assert trainer.unwrapped().head.out_features == len(ATTRIBUTES)
    result = trainer.train()
    # every attribute is learned from its own labels, the half-rated one included
    assert all(result.eval_metrics[f"accuracy_{name}"] >= 0.9 for name in ATTRIBUTES), result.eval_metrics
    loaded = RewardModel.from_pretrained(cfg.output_dir)
    assert loaded.num_outputs == len(ATTRIBUTES) and loaded.meta["task"] == "toy-attributes"
    batch = trainer.task.collate(trainer.eval_data, np.arange(4))
    with torch.no_grad():
        assert loaded(**model_inputs(batch)).reward.shape == (8, len(ATTRIBUTES))


def test_an_attribute_nobody_rated_is_masked_out(bert, tmp_path):
    frame = attribute_pairs(32, seed=2, observed=0.0)  # the last attribute is never rated
    cfg = settings(bert, tmp_path, "masked", max_steps=3)
    trainer = RewardTrainer(cfg, task=AttributePairsTask(cfg), train_data=frame)
    before = trainer.unwrapped().head.weight.detach().clone()
    trainer.train()
    after = trainer.unwrapped().head.weight.detach()
    assert torch.equal(before[-1], after[-1])  # no gradient ever reached the unrated attribute's head
    assert not torch.equal(before[:-1], after[:-1])


def test_per_attribute_gradient_does_not_depend_on_accumulation(bert, tmp_path):
    frame = attribute_pairs(32, seed=3, observed=0.5)
    common = dict(max_steps=2, group_by_length=False, adam_epsilon=1.0)  # large eps: updates linear in the gradient
    states = []
    for name, size, accumulation in (("one-batch", 8, 1), ("accumulated", 4, 2)):
        cfg = settings(bert, tmp_path, name, batch_size=size, gradient_accumulation_steps=accumulation, **common)
        trainer = RewardTrainer(cfg, task=AttributePairsTask(cfg), train_data=frame)
        trainer.train()
        states.append({k: v.detach().clone() for k, v in trainer.unwrapped().state_dict().items()})
    for key in states[0]:
        assert torch.allclose(states[0][key], states[1][key], atol=1e-6), key


@pytest.fixture
def hinge_calls():
    """A new loss: one function and its registration (removed again after the test); yields its calls."""
    calls = []

    @register_loss("test_hinge")
    def hinge_loss(d: torch.Tensor, target: torch.Tensor, hinge_margin: float = 1.0) -> torch.Tensor:
        calls.append(d.shape)
        return torch.relu(hinge_margin - (2.0 * target - 1.0) * d)

    yield calls
    del LOSSES["test_hinge"]


def test_a_new_loss_is_one_function_and_its_registration(bert, tmp_path, hinge_calls, capsys):
    frame = attribute_pairs(64, seed=4)
    pairs = frame.assign(p_chosen=frame["p_chosen_helpful"])[["prompt", "chosen", "rejected", "p_chosen"]]
    result = train(settings(bert, tmp_path, "hinge", loss="test_hinge", num_epochs=6, logging_steps=100),
                   train_data=pairs, eval_data=pairs)
    assert len(hinge_calls) == result.global_step  # the trainer read the registry, once per micro-batch
    assert result.eval_metrics["accuracy"] >= 0.9
    with pytest.raises(SystemExit):  # the command line offers it with the built-in ones
        cli_main(["train", "-h"])
    assert "test_hinge" in capsys.readouterr().out


def test_the_config_is_validated_once_per_train_command(bert, tmp_path, monkeypatch):
    calls = []
    original = RewardConfig.validate

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RewardConfig, "validate", counting)
    data = tmp_path / "pairs.jsonl"
    attribute_pairs(16, seed=5).assign(p_chosen=0.9).to_json(data, orient="records", lines=True)
    code = cli_main(["train", "--model", bert, "--train-path", str(data), "--output-dir", str(tmp_path / "once"),
                     "--max-steps", "1", "--batch-size", "8", "--no-progress", "--stats-max-pairs", "4"])
    assert code == 0 and len(calls) == 1



def test_a_taken_task_or_loss_name_is_refused_unless_replace_asks(monkeypatch):
    from accord.reward import PairwiseTask, get_task, losses, register_task, task

    monkeypatch.setattr(task, "TASKS", dict(task.TASKS))  # the registries are restored after the test
    monkeypatch.setattr(losses, "LOSSES", dict(losses.LOSSES))

    class Mine(PairwiseTask):
        name = "pairwise"

    with pytest.raises(ValueError, match="a task named 'pairwise' is already registered.*replace=True"):
        register_task(Mine)
    assert get_task("pairwise") is PairwiseTask  # the built-in task was not replaced
    assert register_task(replace=True)(Mine) is Mine and get_task("pairwise") is Mine

    def bradley_terry(d: torch.Tensor) -> torch.Tensor:
        return d

    with pytest.raises(ValueError, match="a loss named 'bradley_terry' is already registered.*replace=True"):
        register_loss("bradley_terry")(bradley_terry)
    assert losses.get_loss("bradley_terry").function is not bradley_terry
    register_loss("bradley_terry", replace=True)(bradley_terry)
    assert losses.get_loss("bradley_terry").function is bradley_terry
